#!/usr/bin/env python3
"""A Docker network plugin with one defect, chosen on the command line, for `drydock plugin
check` to catch (tests/it/plugin.rs). It speaks the remote driver protocol on a unix socket and
makes real links with `ip` (a veth pair per joined endpoint) in the namespace it runs in.

    defective_driver.py SOCKET DEFECT

DEFECT: none (a plugin that does its job), garbage-manifest (Plugin.Activate answers no
JSON), planet-scope (GetCapabilities answers Scope "planet"), address-rewritten
(CreateEndpoint answers an address of its own), missing-link (Join names a link that does not
exist), leaky (DeleteEndpoint leaves the link), accepts-anything (CreateEndpoint of an unknown
network succeeds), slow (GetCapabilities answers after 30 s).
"""

import json
import os
import socketserver
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler

SOCKET, DEFECT = sys.argv[1], sys.argv[2]
networks = set()
links = {}


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def answer(method, request):
    """The answer to one call: (status, body as bytes)."""
    if method == "Plugin.Activate":
        if DEFECT == "garbage-manifest":
            return 200, b"<html>not a manifest</html>"
        return 200, json.dumps({"Implements": ["NetworkDriver"]}).encode()
    if method == "NetworkDriver.GetCapabilities":
        if DEFECT == "slow":
            time.sleep(30)
        scope = "planet" if DEFECT == "planet-scope" else "local"
        return 200, json.dumps({"Scope": scope, "ConnectivityScope": scope}).encode()
    if method == "NetworkDriver.CreateNetwork":
        networks.add(request["NetworkID"])
        return 200, b"{}"
    if method == "NetworkDriver.DeleteNetwork":
        networks.discard(request["NetworkID"])
        return 200, b"{}"
    if method == "NetworkDriver.CreateEndpoint":
        if request["NetworkID"] not in networks and DEFECT != "accepts-anything":
            return 500, json.dumps({"Err": "no such network"}).encode()
        if DEFECT == "address-rewritten":
            return 200, json.dumps({"Interface": {"Address": "10.250.250.99/24"}}).encode()
        return 200, b"{}"
    if method == "NetworkDriver.Join":
        # Unique to this process: a leaky variant's links outlive it in the namespace.
        name = f"py{os.getpid() % 10000:04d}{request['EndpointID'][:6]}"
        if DEFECT != "missing-link":
            ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
        links[request["EndpointID"]] = name
        return 200, json.dumps({"InterfaceName": {"SrcName": name, "DstPrefix": "eth"},
                                "Gateway": "10.250.250.1"}).encode()
    if method == "NetworkDriver.DeleteEndpoint":
        name = links.pop(request["EndpointID"], None)
        if name and DEFECT not in ("leaky", "missing-link"):
            ip("link", "del", name)
        return 200, b"{}"
    if method.startswith("NetworkDriver."):
        return 200, b"{}"
    return 404, b"404 page not found"


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        request = json.loads(body) if body.strip() else {}
        status, reply = answer(self.path.lstrip("/"), request)
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1.2+json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCKET):
    os.unlink(SOCKET)
with Server(SOCKET, Handler) as server:
    print("serving", DEFECT, flush=True)
    server.serve_forever()
