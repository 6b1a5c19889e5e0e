#!/usr/bin/env python3
"""A Docker network plugin with one defect, chosen on the command line, for `drydock plugin
check` to catch (tests/it/plugin.rs). It speaks the remote driver protocol on a unix socket and
makes real links with `ip` in the namespace it runs in: a bridge per network (with the
network's gateway address), a veth pair per joined endpoint, its host end on the bridge. Like
any plugin that forwards, it opens dockerd's FORWARD chain (policy drop) to its bridges with
`iptables`.

    defective_driver.py SOCKET DEFECT[,DEFECT...]

DEFECT: none (a plugin that does its job; `docker network create -o refuse=STATUS` is
refused with that HTTP status and an `Err`), garbage-manifest (Plugin.Activate answers no
JSON), planet-scope (GetCapabilities answers Scope "planet"), address-rewritten
(CreateEndpoint answers an address of its own), missing-link (Join names a link that does not
exist), garbage-endpoint (CreateEndpoint answers no JSON), leaky (DeleteEndpoint leaves the
link), accepts-anything (CreateEndpoint of an unknown network succeeds), slow
(GetCapabilities answers after 30 s), oper-info-refused (EndpointOperInfo answers an Err),
no-oper-info (EndpointOperInfo is not served: 404), ipam-manifest (Plugin.Activate lists
IpamDriver too, whose calls it does not serve); and some that are no defects:
global-scope (GetCapabilities answers Scope "global"), no-gateway (Join gives no gateway),
no-gateway-service (nor the gateway service: DisableGatewayService), fixed-mac
(CreateEndpoint gives each endpoint the MAC a0:b1:c2:d3:e4:f5, as moby's tests' plugin
does). Several, comma-separated, combine.
"""

import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

SOCKET, DEFECTS = sys.argv[1], set(sys.argv[2].split(","))
LOCK = threading.Lock()
networks = {}  # network id: (bridge, gateway address or "")
links = {}


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True)


def iptables(*args):
    return subprocess.run(["iptables", *args], capture_output=True).returncode == 0


def open_forward():
    """Rewrites chain PYPLUG, jumped to first from dockerd's FORWARD chain: traffic between two
    of the plugin's bridges dropped (networks are isolated), the rest of theirs accepted."""
    bridges = [bridge for bridge, _ in networks.values()]
    iptables("-N", "PYPLUG")
    iptables("-F", "PYPLUG")
    for a in bridges:
        for b in bridges:
            if a != b:
                iptables("-A", "PYPLUG", "-i", a, "-o", b, "-j", "DROP")
    for bridge in bridges:
        for way in ("-i", "-o"):
            iptables("-A", "PYPLUG", way, bridge, "-j", "ACCEPT")
    if not iptables("-C", "FORWARD", "-j", "PYPLUG"):
        iptables("-I", "FORWARD", "-j", "PYPLUG")


def log(*words):
    """A line of output: each call and its answer, for a run's failure dump (NAME.log)."""
    try:
        print(*words, flush=True)
    except OSError:  # nobody reads the output any more
        pass


def answer(method, request):
    """The answer to one call: (status, body as bytes)."""
    if method == "Plugin.Activate":
        if "garbage-manifest" in DEFECTS:
            return 200, b"<html>not a manifest</html>"
        kinds = ["NetworkDriver", "IpamDriver"] if "ipam-manifest" in DEFECTS else ["NetworkDriver"]
        return 200, json.dumps({"Implements": kinds}).encode()
    if method == "NetworkDriver.GetCapabilities":
        scope = "planet" if "planet-scope" in DEFECTS else "global" if "global-scope" in DEFECTS else "local"
        return 200, json.dumps({"Scope": scope, "ConnectivityScope": scope}).encode()
    if method == "NetworkDriver.CreateNetwork":
        generic = (request.get("Options") or {}).get("com.docker.network.generic") or {}
        if "refuse" in generic:  # -o refuse=STATUS: a refusal, as asked
            return int(generic["refuse"]), json.dumps({"Err": "refused as asked"}).encode()
        network = request["NetworkID"]
        if network not in networks:
            bridge = "pyb" + network[:10]
            ip("link", "add", bridge, "type", "bridge")
            pools = request.get("IPv4Data") or [{}]
            gateway = pools[0].get("Gateway", "")
            if gateway:
                ip("address", "add", gateway, "dev", bridge)
            ip("link", "set", bridge, "up")
            networks[network] = (bridge, gateway.split("/")[0])
            open_forward()
        return 200, b"{}"
    if method == "NetworkDriver.DeleteNetwork":
        bridge, _ = networks.pop(request["NetworkID"], (None, None))
        if bridge:
            open_forward()
            ip("link", "del", bridge)
        return 200, b"{}"
    if method == "NetworkDriver.CreateEndpoint":
        if request["NetworkID"] not in networks and "accepts-anything" not in DEFECTS:
            return 500, json.dumps({"Err": "no such network"}).encode()
        if "fixed-mac" in DEFECTS:
            return 200, json.dumps({"Interface": {"MacAddress": "a0:b1:c2:d3:e4:f5"}}).encode()
        if "garbage-endpoint" in DEFECTS:
            return 200, b"<html>not an endpoint</html>"
        if "address-rewritten" in DEFECTS:
            return 200, json.dumps({"Interface": {"Address": "10.250.250.99/24"}}).encode()
        return 200, b"{}"
    if method == "NetworkDriver.Join":
        # Unique to this process: a leaky variant's links outlive it in the namespace.
        name = f"py{os.getpid() % 10000:04d}{request['EndpointID'][:6]}"
        bridge, gateway = networks.get(request["NetworkID"], (None, ""))
        if "missing-link" not in DEFECTS:
            ip("link", "add", name, "type", "veth", "peer", "name", name + "p")
            if bridge:
                ip("link", "set", name + "p", "master", bridge, "up")
        links[request["EndpointID"]] = name
        answer = {"InterfaceName": {"SrcName": name, "DstPrefix": "eth"}, "Gateway": gateway}
        if DEFECTS & {"no-gateway", "no-gateway-service"}:
            answer["Gateway"] = ""
            answer["DisableGatewayService"] = "no-gateway-service" in DEFECTS
        return 200, json.dumps(answer).encode()
    if method == "NetworkDriver.EndpointOperInfo":
        if "oper-info-refused" in DEFECTS:
            return 200, json.dumps({"Err": "no info today"}).encode()
        if "no-oper-info" in DEFECTS:
            return 404, b"404 page not found"
        return 200, json.dumps({"Value": {}}).encode()
    if method == "NetworkDriver.DeleteEndpoint":
        name = links.pop(request["EndpointID"], None)
        if name and not DEFECTS & {"leaky", "missing-link"}:
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
        method = self.path.lstrip("/")
        if "slow" in DEFECTS and method == "NetworkDriver.GetCapabilities":
            time.sleep(30)
        with LOCK:  # calls come at once (threads); links and rules change one at a time
            status, reply = answer(method, request)
            log(method, json.dumps(request), "->", status, reply.decode(errors="replace"))
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
    print("serving", ",".join(sorted(DEFECTS)), flush=True)
    server.serve_forever()
