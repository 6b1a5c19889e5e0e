//! A network's address pools and where they come from: the engine's own IPAM (`default`), or
//! an IPAM plugin (`--ipam-driver NAME`). libnetwork's steps around either are here: the pools
//! of a new network with their gateways and auxiliary addresses (network.go `ipamAllocate`),
//! their release (`ipamRelease`), an endpoint's addresses (endpoint.go `assignAddress`) and
//! their release (`releaseAddress`). The rest of the engine sees [`Pools`] only.
//!
//! With a plugin, as libnetwork: one `RequestPool` per configured subnet of each family (IPv4
//! first; IPv6 only with `--ipv6`), or one without a subnet; a pool without a subnet that
//! overlaps a link route of the docker host or one of its nameservers is held and another asked
//! for (`requestPoolHelper`); the gateway is the pool's `Data` gateway unless the user gave one
//! or there is none, when it is asked for (`RequestAddressType: com.docker.network.gateway`).
//! A failure releases what was requested before it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteScope};
use rtnetlink::RouteMessageBuilder;

use super::{Engine, EngineError, EngineResult};
use crate::api::body::NetworkCreate;
use crate::driver::IpamData;
use crate::ipam::{Ipam, IpamError, PoolId, PoolRequest};
use crate::plugin::RemoteIpam;
use crate::plugin::protocol::{GATEWAY, REQUEST_ADDRESS_TYPE, RequestPool};

/// The option of an endpoint's `RequestAddress` naming its MAC, for an IPAM that requires one
/// (libnetwork `netlabel.MacAddress`).
const MAC_ADDRESS: &str = "com.docker.network.endpoint.macaddress";

/// How many overlapping pools a plugin may give in a row before the engine gives up (dockerd
/// asks forever).
const OVERLAPPING_POOLS: usize = 64;

/// Where a network's addresses come from.
#[derive(Debug, Clone)]
pub(crate) enum Pools {
    /// The engine's own IPAM: its pools by id, IPv4 first (none for host and null).
    BuiltIn(Vec<PoolId>),
    /// An IPAM plugin.
    Plugin(PluginPools),
    /// The null IPAM (`--ipam-driver null`, libnetwork `ipams/null`): one IPv4 pool,
    /// `0.0.0.0/0`, that gives no address, not even a gateway; for drivers that address their
    /// endpoints themselves (the built-in ones refuse it: "ipv4 pool is empty").
    Null,
}

/// The built-in IPAM's address spaces (libnetwork `ipamapi`).
pub(crate) const LOCAL_DEFAULT: &str = "LocalDefault";
/// Of global-scope networks.
pub(crate) const GLOBAL_DEFAULT: &str = "GlobalDefault";

/// The null IPAM's name (and address space) and its one pool.
pub(crate) const NULL_IPAM: &str = "null";
const NULL_POOL: IpNetwork =
    IpNetwork::V4(ipnetwork::Ipv4Network::new_checked(Ipv4Addr::UNSPECIFIED, 0).unwrap());

/// A network's pools from an IPAM plugin.
#[derive(Debug, Clone)]
pub(crate) struct PluginPools {
    pub(crate) ipam: Arc<RemoteIpam>,
    /// The pools it gave, IPv4 first.
    pub(crate) pools: Vec<PluginPool>,
}

/// One pool a plugin gave a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PluginPool {
    pub(crate) id: String,
    /// As the plugin wrote it.
    pub(crate) subnet: IpNetwork,
    /// Asked for as an IPv6 pool.
    pub(crate) v6: bool,
    /// With the prefix the plugin gave it.
    pub(crate) gateway: Option<IpNetwork>,
    /// `--aux-address` names and the addresses the plugin reserved for them.
    pub(crate) aux: Vec<(String, IpNetwork)>,
}

impl Pools {
    /// What the network's driver gets of its pools: subnets and gateways, IPv4 first.
    pub(crate) fn ipam_data(&self, ipam: &Ipam) -> Vec<IpamData> {
        match self {
            Pools::BuiltIn(ids) => (ids.iter().map(|id| ipam.pool(*id)))
                .map(|pool| IpamData {
                    subnet: pool.subnet,
                    gateway: (pool.gateway).map(|gateway| {
                        IpNetwork::new(gateway, pool.subnet.prefix())
                            .expect("a gateway in its subnet")
                    }),
                })
                .collect(),
            Pools::Null => vec![IpamData {
                subnet: NULL_POOL,
                gateway: None,
            }],
            Pools::Plugin(plugin) => (plugin.pools.iter())
                .map(|pool| IpamData {
                    subnet: pool.subnet,
                    gateway: pool.gateway,
                })
                .collect(),
        }
    }

    /// The address space of the pools, as their IPAM names it: the built-in IPAM's local or
    /// global default, a plugin's own, the null IPAM's `null`.
    pub(crate) fn address_space(&self, local: bool) -> String {
        match (self, local) {
            (Pools::BuiltIn(_), true) => LOCAL_DEFAULT.into(),
            (Pools::BuiltIn(_), false) => GLOBAL_DEFAULT.into(),
            (Pools::Plugin(plugin), local) => plugin.ipam.address_space(local).into(),
            (Pools::Null, _) => NULL_IPAM.into(),
        }
    }

    /// `IPAM.Driver` in inspect.
    pub(crate) fn driver_name(&self) -> &str {
        match self {
            Pools::BuiltIn(_) => "default",
            Pools::Plugin(plugin) => plugin.ipam.name(),
            Pools::Null => NULL_IPAM,
        }
    }
}

impl Engine {
    /// A new network's pools: from the built-in IPAM, or from `plugin` (the bridge driver
    /// takes one IPv4 subnet only). A network `local` in scope takes the plugin's local
    /// address space, and its pools without a subnet avoid the docker host's link routes; one
    /// of global scope takes the global space, as it comes.
    pub(super) async fn allocate_pools(
        &mut self,
        body: &NetworkCreate,
        bridge: bool,
        local: bool,
        plugin: Option<Arc<RemoteIpam>>,
    ) -> EngineResult<Pools> {
        let requests = pool_requests(body, bridge)?;
        if body.ipam.driver == NULL_IPAM {
            return null_pools(&requests, body.enable_ipv6);
        }
        let Some(ipam) = plugin else {
            return self.request_builtin_pools(requests, body.enable_ipv6);
        };
        // dockerd refuses a configuration without a subnet before any IPAM sees it.
        if requests.iter().any(|r| r.subnet.is_none()) {
            return Err(EngineError::new(IpamError::MissingSubnet.to_string()));
        }
        let avoid = match local {
            true => self.avoided_subnets().await,
            false => Vec::new(),
        };
        let pools = (allocate_from_plugin(&ipam, requests, body, local, &avoid).await)
            .map_err(EngineError::new)?;
        Ok(Pools::Plugin(PluginPools { ipam, pools }))
    }

    /// The built-in IPAM's pools for `requests`, with an automatic IPv4 one when none is
    /// IPv4 (20.10 has no default IPv6 pools: `--ipv6` needs an IPv6 subnet).
    fn request_builtin_pools(
        &mut self,
        mut requests: Vec<PoolRequest>,
        ipv6: bool,
    ) -> EngineResult<Pools> {
        if ipv6 && !requests.iter().any(|r| r.v6) {
            return Err(EngineError::new(
                IpamError::NoDefaultPool { v6: true }.to_string(),
            ));
        }
        if !requests.iter().any(|r| !r.v6) {
            requests.insert(0, PoolRequest::auto(false));
        }
        let mut pools = Vec::new();
        for request in &requests {
            match self.ipam.request_pool(request) {
                Ok(pool) => pools.push(pool),
                Err(e) => {
                    for pool in pools {
                        self.ipam.release_pool(pool);
                    }
                    return Err(EngineError::new(e.to_string()));
                }
            }
        }
        Ok(Pools::BuiltIn(pools))
    }

    /// Releases a network's pools with their gateways and auxiliary addresses (what fails is
    /// logged, as dockerd does).
    pub(super) async fn release_pools(&mut self, pools: &Pools) {
        match pools {
            Pools::BuiltIn(ids) => ids.iter().for_each(|id| self.ipam.release_pool(*id)),
            Pools::Plugin(plugin) => release_plugin_pools(&plugin.ipam, &plugin.pools).await,
            Pools::Null => {}
        }
    }

    /// The subnets a pool the engine did not ask for by subnet must not overlap: the docker
    /// host's IPv4 link routes (of its main table) and its nameservers (libnetwork
    /// `FindAvailableNetwork`).
    async fn avoided_subnets(&self) -> Vec<IpNetwork> {
        let mut avoid: Vec<IpNetwork> = (self.options.host_resolvers.iter())
            .map(|ip| IpNetwork::from(*ip))
            .collect();
        match link_routes(&self.host).await {
            Ok(routes) => avoid.extend(routes),
            Err(e) => tracing::warn!("reading the docker host's routes: {e}"),
        }
        avoid
    }

    /// An endpoint's addresses on local network `n`: one of each family the network has
    /// (`wanted`: `--ip`, `--ip6`), as libnetwork's `assignAddress`; an IPAM that requires a
    /// MAC gets `mac`, made up first when there is none. What was assigned is released when
    /// a later family fails.
    pub(super) async fn assign_addresses(
        &mut self,
        n: usize,
        wanted: [Option<IpAddr>; 2],
        mac: &mut Option<[u8; 6]>,
    ) -> EngineResult<Vec<IpNetwork>> {
        let pools = self.networks[n].pools.clone();
        let mut assigned = Vec::new();
        for (v6, want) in [(false, wanted[0]), (true, wanted[1])] {
            let address = match &pools {
                Pools::BuiltIn(ids) => self.assign_builtin(n, ids, v6, want),
                Pools::Plugin(plugin) => {
                    (assign_from_plugin(plugin, v6, want, mac).await).map_err(EngineError::new)
                }
                Pools::Null => Ok(None),
            };
            match address {
                Ok(address) => assigned.extend(address),
                Err(e) => {
                    self.release_addresses(&pools, &assigned).await;
                    return Err(e);
                }
            }
        }
        Ok(assigned)
    }

    /// An address of family `v6` from the built-in IPAM: from the first of the network's
    /// pools of that family that has one (the one containing `want` when given; a network has
    /// several IPv4 pools only with a driver that allows them: macvlan).
    fn assign_builtin(
        &mut self,
        n: usize,
        ids: &[PoolId],
        v6: bool,
        want: Option<IpAddr>,
    ) -> EngineResult<Option<IpNetwork>> {
        let family: Vec<PoolId> = (ids.iter().copied())
            .filter(|p| self.ipam.pool(*p).subnet.is_ipv6() == v6)
            .collect();
        let Some(&first) = family.first() else {
            return Ok(None);
        };
        let mut candidates: Vec<PoolId> = (family.into_iter())
            .filter(|p| want.is_none_or(|ip| self.ipam.pool(*p).subnet.contains(ip)))
            .collect();
        if candidates.is_empty() {
            // The first pool gives Docker's text for an address in none of them.
            candidates.push(first);
        }
        let mut error = None;
        for pool in candidates {
            let subnet = self.ipam.pool(pool).subnet;
            match self.ipam.request_address(pool, want) {
                Ok(ip) => {
                    let address = IpNetwork::new(ip, subnet.prefix()).expect("in its subnet");
                    return Ok(Some(address));
                }
                Err(e) => {
                    error.get_or_insert(e);
                }
            }
        }
        // A dynamic request that found every pool full: libnetwork's own text.
        let error = match (error.expect("a pool was asked"), want) {
            (IpamError::NoAvailableAddresses, None) => IpamError::NoAvailableNetworkAddresses {
                v6,
                network: self.networks[n].name.clone(),
                id: self.networks[n].id.clone(),
            },
            (e, _) => e,
        };
        Err(EngineError::new(error.to_string()))
    }

    /// Gives an endpoint's addresses back to the pools of its network that hold them (what
    /// fails is logged, as dockerd does).
    pub(super) async fn release_addresses(&mut self, pools: &Pools, addresses: &[IpNetwork]) {
        match pools {
            Pools::BuiltIn(ids) => {
                for address in addresses {
                    for id in ids {
                        if self.ipam.pool(*id).subnet.contains(address.ip()) {
                            self.ipam.release_address(*id, address.ip());
                        }
                    }
                }
            }
            Pools::Plugin(plugin) => release_from_plugin(plugin, addresses).await,
            Pools::Null => {}
        }
    }
}

/// The null IPAM's answer to a new network's pool requests, in libnetwork's order (IPv4
/// first): a subnet asked for is refused, and so is IPv6.
fn null_pools(requests: &[PoolRequest], ipv6: bool) -> EngineResult<Pools> {
    if requests.iter().any(|r| r.subnet.is_some()) {
        return Err(EngineError::new(
            "null ipam driver does not handle specific address pool requests",
        ));
    }
    if ipv6 {
        return Err(EngineError::new(
            "null ipam driver does not handle IPv6 address pool pool requests",
        ));
    }
    Ok(Pools::Null)
}

/// The pools a create request asks for: one per configured subnet (IPv6 ones only with
/// `--ipv6`), in order; the bridge driver takes one IPv4 subnet only.
fn pool_requests(body: &NetworkCreate, bridge: bool) -> EngineResult<Vec<PoolRequest>> {
    let mut requests = Vec::new();
    for config in &body.ipam.config {
        let subnet = parse_net(config.subnet.as_deref())?;
        let v6 = subnet.is_some_and(|s| s.is_ipv6());
        if v6 && !body.enable_ipv6 {
            continue;
        }
        let aux = (config.auxiliary_addresses.iter().flatten())
            .map(|(k, v)| Ok((k.clone(), parse_ip(v)?)))
            .collect::<EngineResult<Vec<_>>>()?;
        requests.push(PoolRequest {
            subnet,
            ip_range: parse_net(config.ip_range.as_deref())?,
            gateway: config.gateway.as_deref().map(parse_ip).transpose()?,
            aux_addresses: aux,
            v6,
        });
    }
    if bridge && requests.iter().filter(|r| !r.v6).count() > 1 {
        return Err(EngineError::new(
            "bridge driver doesn't support multiple subnets",
        ));
    }
    Ok(requests)
}

fn parse_net(text: Option<&str>) -> EngineResult<Option<IpNetwork>> {
    text.filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| EngineError::new(format!("invalid CIDR address: {t}")))
        })
        .transpose()
}

fn parse_ip(text: &str) -> EngineResult<IpAddr> {
    text.parse()
        .map_err(|_| EngineError::new(format!("ParseAddr(\"{text}\"): unable to parse IP")))
}

/// libnetwork's `ipamAllocate` with a plugin: the IPv4 pools, then (with `--ipv6`) the IPv6
/// ones, each family's configured subnets or one pool without. A failure in a family releases
/// that family's pools (`ReleasePool`, last first), and an IPv6 failure the IPv4 pools with
/// their gateways and auxiliary addresses.
async fn allocate_from_plugin(
    ipam: &RemoteIpam,
    requests: Vec<PoolRequest>,
    body: &NetworkCreate,
    local: bool,
    avoid: &[IpNetwork],
) -> Result<Vec<PluginPool>, String> {
    let mut made: Vec<PluginPool> = Vec::new();
    for v6 in [false, true] {
        if v6 && !body.enable_ipv6 {
            break;
        }
        let mut family: Vec<PoolRequest> =
            (requests.iter()).filter(|r| r.v6 == v6).cloned().collect();
        if family.is_empty() {
            family.push(PoolRequest::auto(v6));
        }
        let mut this: Vec<PluginPool> = Vec::new();
        for request in &family {
            let asked = PoolAsk {
                request,
                space: ipam.address_space(local),
                options: &body.ipam.options,
                avoid,
            };
            match allocate_plugin_pool(ipam, &asked).await {
                Ok(pool) => this.push(pool),
                Err(e) => {
                    for pool in this.iter().rev() {
                        release_pool(ipam, &pool.id).await;
                    }
                    release_plugin_pools(ipam, &made).await;
                    return Err(e);
                }
            }
        }
        made.extend(this);
    }
    Ok(made)
}

/// One `RequestPool` as libnetwork makes it.
struct PoolAsk<'a> {
    request: &'a PoolRequest,
    /// The plugin's default address space for the network's scope.
    space: &'a str,
    /// `--ipam-opt`.
    options: &'a BTreeMap<String, String>,
    /// What a pool without a subnet must not overlap.
    avoid: &'a [IpNetwork],
}

/// One pool of a network (libnetwork's `ipamAllocateVersion` for one configuration): the
/// pool, its gateway, its auxiliary addresses. The pool is released when a later step fails.
async fn allocate_plugin_pool(
    ipam: &RemoteIpam,
    asked: &PoolAsk<'_>,
) -> Result<PluginPool, String> {
    let request = asked.request;
    let given = request_pool_avoiding(ipam, asked).await?;
    let mut pool = PluginPool {
        id: given.id.clone(),
        subnet: given.subnet,
        v6: request.v6,
        gateway: None,
        aux: Vec::new(),
    };
    let gateway_and_aux = async {
        pool.gateway = given.gateway()?;
        if request.gateway.is_some() || pool.gateway.is_none() {
            let options = BTreeMap::from([(REQUEST_ADDRESS_TYPE.to_string(), GATEWAY.to_string())]);
            let gateway = ipam
                .request_address(&pool.id, request.gateway, options)
                .await;
            let shown = request.gateway.map(|g| g.to_string()).unwrap_or_default();
            pool.gateway =
                Some(gateway.map_err(|e| format!("failed to allocate gateway ({shown}): {e}"))?);
        }
        for (name, ip) in &request.aux_addresses {
            if !pool.subnet.contains(*ip) {
                return Err(format!(
                    "auxiliary address: ({name}:{ip}) must belong to the master pool: {}",
                    pool.subnet
                ));
            }
            let reserved = ipam
                .request_address(&pool.id, Some(*ip), BTreeMap::new())
                .await;
            let reserved = reserved.map_err(|e| {
                format!("failed to allocate secondary ip address ({name}:{ip}): {e}")
            })?;
            pool.aux.push((name.clone(), reserved));
        }
        Ok(())
    };
    match gateway_and_aux.await {
        Ok(()) => Ok(pool),
        Err(e) => {
            release_pool(ipam, &pool.id).await;
            Err(e)
        }
    }
}

/// `RequestPool`, asked again while a pool without a subnet overlaps what it must avoid (the
/// overlapping ones are held until then, then released, last first: libnetwork's
/// `requestPoolHelper`).
async fn request_pool_avoiding(
    ipam: &RemoteIpam,
    asked: &PoolAsk<'_>,
) -> Result<crate::plugin::GivenPool, String> {
    let request = asked.request;
    let body = RequestPool {
        address_space: asked.space.to_string(),
        pool: request.subnet.map(|s| s.to_string()).unwrap_or_default(),
        sub_pool: request.ip_range.map(|r| r.to_string()).unwrap_or_default(),
        options: asked.options.clone(),
        v6: request.v6,
    };
    let mut held = Vec::new();
    let found = loop {
        let given = match ipam.request_pool(&body).await {
            Ok(given) => given,
            Err(e) => break Err(e),
        };
        let overlaps =
            |net: &IpNetwork| net.contains(given.subnet.ip()) || given.subnet.contains(net.ip());
        let valid = !given.subnet.ip().is_unspecified();
        if request.subnet.is_some() || !valid || !asked.avoid.iter().any(overlaps) {
            break Ok(given);
        }
        held.push(given.id);
        if held.len() == OVERLAPPING_POOLS {
            break Err(format!(
                "the IPAM plugin gave {OVERLAPPING_POOLS} pools in a row that overlap the docker host's routes"
            ));
        }
    };
    for id in held.iter().rev() {
        release_pool(ipam, id).await;
    }
    found
}

/// `ReleasePool`, its failure logged.
async fn release_pool(ipam: &RemoteIpam, id: &str) {
    if let Err(e) = ipam.release_pool(id).await {
        tracing::warn!("Failed to release address pool {id}: {e}");
    }
}

/// libnetwork's `ipamReleaseVersion` for each family: each pool's gateway, its auxiliary
/// addresses, then the pool (failures logged).
async fn release_plugin_pools(ipam: &RemoteIpam, pools: &[PluginPool]) {
    for pool in pools {
        if let Some(gateway) = pool.gateway
            && let Err(e) = ipam.release_address(&pool.id, gateway.ip()).await
        {
            tracing::warn!("Failed to release gateway ip address {}: {e}", gateway.ip());
        }
        for (name, address) in &pool.aux {
            if pool.subnet.contains(address.ip())
                && let Err(e) = ipam.release_address(&pool.id, address.ip()).await
            {
                tracing::warn!("Failed to release secondary ip address {name} ({address}): {e}");
            }
        }
        release_pool(ipam, &pool.id).await;
    }
}

/// libnetwork's `assignAddressVersion` with a plugin: `RequestAddress` in the first pool of
/// the family (the first containing `want` when given); a refusal is final (a plugin's never
/// reads as the built-in's "no available addresses"). No pool of the family: no address.
async fn assign_from_plugin(
    plugin: &PluginPools,
    v6: bool,
    want: Option<IpAddr>,
    mac: &mut Option<[u8; 6]>,
) -> Result<Option<IpNetwork>, String> {
    let family: Vec<&PluginPool> = plugin.pools.iter().filter(|p| p.v6 == v6).collect();
    if family.is_empty() {
        return Ok(None);
    }
    let found = (family.into_iter()).find(|p| want.is_none_or(|ip| p.subnet.contains(ip)));
    let Some(pool) = found.map(|p| p.id.clone()) else {
        let ip = want.expect("any pool takes a dynamic request");
        return Err(format!(
            "Invalid address {ip}: It does not belong to any of this network's subnets"
        ));
    };
    let mut options = BTreeMap::new();
    if plugin.ipam.requires_mac_address() {
        let mac = *mac.get_or_insert_with(random_mac);
        options.insert(MAC_ADDRESS.to_string(), crate::mac::text(mac));
    }
    plugin
        .ipam
        .request_address(&pool, want, options)
        .await
        .map(Some)
}

/// libnetwork's `releaseAddress` with a plugin: each address from the pool of its family
/// holding it (IPv6 ones only when global unicast, as libnetwork).
async fn release_from_plugin(plugin: &PluginPools, addresses: &[IpNetwork]) {
    for address in addresses {
        let ip = address.ip();
        if let IpAddr::V6(v6) = ip
            && (v6.is_unicast_link_local()
                || v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast())
        {
            continue;
        }
        let pool = (plugin.pools.iter()).find(|p| p.v6 == ip.is_ipv6() && p.subnet.contains(ip));
        let Some(pool) = pool else {
            continue;
        };
        if let Err(e) = plugin.ipam.release_address(&pool.id, ip).await {
            tracing::warn!("Failed to release ip address {ip}: {e}");
        }
    }
}

/// A MAC as libnetwork's `GenerateRandomMAC` makes one: random, unicast, locally
/// administered.
fn random_mac() -> [u8; 6] {
    let mut mac = [0u8; 6];
    mac.iter_mut().for_each(|b| *b = fastrand::u8(..));
    mac[0] = (mac[0] & !0x01) | 0x02;
    mac
}

/// The destinations of the IPv4 link-scope routes of `host`'s main table (libnetwork
/// `CheckRouteOverlaps`).
async fn link_routes(host: &drydock_netsim::Netns) -> std::io::Result<Vec<IpNetwork>> {
    let nl = host.netlink()?;
    let request = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let routes: Result<Vec<_>, _> = nl.route().get(request).execute().try_collect().await;
    nl.close().await;
    let routes = routes.map_err(std::io::Error::other)?;
    Ok((routes.iter())
        .filter(|r| r.header.table == 254 && r.header.scope == RouteScope::Link)
        .filter_map(|r| {
            r.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
                    IpNetwork::new(IpAddr::V4(*ip), r.header.destination_prefix_length).ok()
                }
                _ => None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::http::{StatusCode, Uri};
    use serde_json::{Value, json};

    use super::*;
    use crate::api::body::{Ipam as IpamBody, IpamConfig};
    use crate::driver::NetworkRequest;
    use crate::plugin::client::{Address, Client, Patience};

    /// What the fake plugin answers an `IpamDriver` call: a status and a body.
    type Answer = (u16, Value);

    /// An IPAM plugin whose answers `script` gives, on a socket in a fresh folder; the calls
    /// it got, each as one line.
    struct Fake {
        _dir: tempfile::TempDir,
        calls: Arc<Mutex<Vec<String>>>,
        ipam: Arc<RemoteIpam>,
    }

    impl Fake {
        async fn start(script: impl Fn(&str, &Value) -> Answer + Send + Sync + 'static) -> Fake {
            let calls = Arc::new(Mutex::new(Vec::new()));
            let (log, script) = (calls.clone(), Arc::new(script));
            let app = axum::Router::new().fallback(move |uri: Uri, body: axum::body::Bytes| {
                let (log, script) = (log.clone(), script.clone());
                async move {
                    let method = uri.path().trim_start_matches("/IpamDriver.").to_string();
                    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let (status, answer) = match method.as_str() {
                        "/Plugin.Activate" => (200, json!({"Implements": ["IpamDriver"]})),
                        "GetCapabilities" => (200, json!({})),
                        "GetDefaultAddressSpaces" => {
                            (200, json!({"LocalDefaultAddressSpace": "Local", "GlobalDefaultAddressSpace": "Global"}))
                        }
                        _ => {
                            log.lock().unwrap().push(line(&method, &body));
                            script(&method, &body)
                        }
                    };
                    (StatusCode::from_u16(status).unwrap(), axum::Json(answer))
                }
            });
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fake.sock");
            let listener = tokio::net::UnixListener::bind(&path).unwrap();
            tokio::spawn(async move { axum::serve(listener, app).await });
            let client = Client::new(Address::Unix(path), Patience::default());
            let ipam = Arc::new(RemoteIpam::activate("fake", client).await.unwrap());
            Fake {
                _dir: dir,
                calls,
                ipam,
            }
        }

        fn calls(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
    }

    /// A call as one line: the method and the fields that matter.
    fn line(method: &str, body: &Value) -> String {
        let field = |key: &str| body[key].as_str().unwrap_or_default().to_string();
        match method {
            "RequestPool" => {
                let v6 = if body["V6"] == json!(true) { " v6" } else { "" };
                let words = [field("AddressSpace"), field("Pool"), field("SubPool")];
                format!("RequestPool {}{v6}", words.join(" ").trim_end())
            }
            "RequestAddress" => {
                let kind = body["Options"][REQUEST_ADDRESS_TYPE]
                    .as_str()
                    .map(|_| " gateway");
                let mac = body["Options"][MAC_ADDRESS].as_str().map(|_| " mac");
                let (pool, address) = (field("PoolID"), field("Address"));
                let address = if address.is_empty() { "any" } else { &address };
                let extra = format!("{}{}", kind.unwrap_or(""), mac.unwrap_or(""));
                format!("RequestAddress {pool} {address}{extra}")
            }
            "ReleaseAddress" => format!("ReleaseAddress {} {}", field("PoolID"), field("Address")),
            "ReleasePool" => format!("ReleasePool {}", field("PoolID")),
            other => other.to_string(),
        }
    }

    /// A plugin giving each pool asked for by subnet under its subnet's name, automatic ones
    /// from `auto` in turn, a gateway `.1` in the data unless `no_data`, and addresses as
    /// asked for (`.9` when any).
    fn pools_as_asked(auto: Vec<&'static str>, no_data: bool) -> impl Fn(&str, &Value) -> Answer {
        let next = Mutex::new(auto.into_iter());
        move |method, body| match method {
            "RequestPool" => {
                let pool = match body["Pool"].as_str().unwrap() {
                    "" => next.lock().unwrap().next().unwrap().to_string(),
                    given => given.to_string(),
                };
                let net: IpNetwork = pool.parse().unwrap();
                let gateway = IpNetwork::new(nth(net, 1), net.prefix()).unwrap();
                let data = match no_data {
                    true => json!({}),
                    false => json!({GATEWAY: gateway.to_string()}),
                };
                (200, json!({"PoolID": pool, "Pool": pool, "Data": data}))
            }
            "RequestAddress" => {
                let net: IpNetwork = body["PoolID"].as_str().unwrap().parse().unwrap();
                let ip = match body["Address"].as_str().unwrap() {
                    "" => nth(net, 9),
                    given => given.parse().unwrap(),
                };
                let address = IpNetwork::new(ip, net.prefix()).unwrap();
                (200, json!({"Address": address.to_string()}))
            }
            _ => (200, json!({})),
        }
    }

    /// The `n`th address of `net`.
    fn nth(net: IpNetwork, n: u8) -> IpAddr {
        match net.network() {
            IpAddr::V4(ip) => IpAddr::V4(Ipv4Addr::from(u32::from(ip) + u32::from(n))),
            IpAddr::V6(ip) => IpAddr::V6((u128::from(ip) + u128::from(n)).into()),
        }
    }

    /// A create request of `configs` (subnet, range, gateway; empty: not given).
    fn create(ipv6: bool, configs: &[(&str, &str, &str)]) -> NetworkCreate {
        let text = |t: &str| (!t.is_empty()).then(|| t.to_string());
        let config = (configs.iter())
            .map(|(subnet, range, gateway)| IpamConfig {
                subnet: text(subnet),
                ip_range: text(range),
                gateway: text(gateway),
                auxiliary_addresses: None,
            })
            .collect();
        NetworkCreate {
            enable_ipv6: ipv6,
            ipam: IpamBody {
                driver: "fake".into(),
                options: BTreeMap::new(),
                config,
            },
            ..NetworkCreate::default()
        }
    }

    async fn allocate(
        fake: &Fake,
        body: &NetworkCreate,
        avoid: &[IpNetwork],
    ) -> Result<Vec<PluginPool>, String> {
        let requests = pool_requests(body, false).unwrap();
        allocate_from_plugin(&fake.ipam, requests, body, true, avoid).await
    }

    #[tokio::test]
    async fn plugin_pools_take_the_data_gateway_unless_the_user_gave_one() {
        let fake = Fake::start(pools_as_asked(vec!["172.18.0.0/16"], false)).await;
        let body = create(
            true,
            &[
                ("10.78.0.0/24", "10.78.0.128/25", "10.78.0.254"),
                ("fd00:78::/64", "", ""),
            ],
        );
        let pools = allocate(&fake, &body, &[]).await.unwrap();
        assert_eq!(
            fake.calls(),
            [
                "RequestPool Local 10.78.0.0/24 10.78.0.128/25",
                "RequestAddress 10.78.0.0/24 10.78.0.254 gateway",
                "RequestPool Local fd00:78::/64 v6",
            ]
        );
        let gateways: Vec<String> = (pools.iter())
            .map(|p| p.gateway.unwrap().to_string())
            .collect();
        assert_eq!(gateways, ["10.78.0.254/24", "fd00:78::1/64"]);
        // Nothing configured: one IPv4 pool, any; without --ipv6 no IPv6 pool.
        let pools = allocate(&fake, &create(false, &[]), &[]).await.unwrap();
        assert_eq!(fake.calls(), ["RequestPool Local"]);
        assert_eq!(pools[0].subnet.to_string(), "172.18.0.0/16");
        release_plugin_pools(&fake.ipam, &pools).await;
        assert_eq!(
            fake.calls(),
            [
                "ReleaseAddress 172.18.0.0/16 172.18.0.1",
                "ReleasePool 172.18.0.0/16"
            ]
        );
    }

    #[tokio::test]
    async fn plugin_pools_without_a_data_gateway_ask_for_one() {
        let fake = Fake::start(pools_as_asked(vec![], true)).await;
        let pools = allocate(&fake, &create(false, &[("10.79.0.0/24", "", "")]), &[])
            .await
            .unwrap();
        assert_eq!(
            fake.calls(),
            [
                "RequestPool Local 10.79.0.0/24",
                "RequestAddress 10.79.0.0/24 any gateway"
            ]
        );
        assert_eq!(pools[0].gateway.unwrap().to_string(), "10.79.0.9/24");
    }

    #[tokio::test]
    async fn plugin_failures_release_what_was_requested_before_them() {
        let refuse = |what: &'static str| {
            let pools = pools_as_asked(vec![], false);
            move |method: &str, body: &Value| {
                let text = format!("{method} {body}");
                match text.contains(what) {
                    true => (200, json!({"Error": "no"})),
                    false => pools(method, body),
                }
            }
        };
        // The gateway refused: its pool goes.
        let fake = Fake::start(refuse("10.78.0.254")).await;
        let body = create(false, &[("10.78.0.0/24", "", "10.78.0.254")]);
        let error = allocate(&fake, &body, &[]).await.unwrap_err();
        assert_eq!(
            error,
            "failed to allocate gateway (10.78.0.254): remote: no"
        );
        let calls = fake.calls();
        assert_eq!(calls[2..], ["ReleasePool 10.78.0.0/24"]);
        // The IPv6 pool refused: the IPv4 pool goes with its gateway.
        let fake = Fake::start(refuse("fd00:79::/64")).await;
        let body = create(true, &[("10.79.0.0/24", "", ""), ("fd00:79::/64", "", "")]);
        let error = allocate(&fake, &body, &[]).await.unwrap_err();
        assert_eq!(error, "remote: no");
        assert_eq!(
            fake.calls(),
            [
                "RequestPool Local 10.79.0.0/24",
                "RequestPool Local fd00:79::/64 v6",
                "ReleaseAddress 10.79.0.0/24 10.79.0.1",
                "ReleasePool 10.79.0.0/24",
            ]
        );
        // A refused status reads as the client's, and a data gateway that does not parse.
        let fake = Fake::start(|method: &str, body: &Value| match method {
            "RequestPool" => {
                // The first pool's gateway has no prefix.
                let pool = body["Pool"].as_str().unwrap();
                let gateway = pool
                    .replace(".0/24", ".1")
                    .replace("10.81.0.1", "10.81.0.1/24");
                (
                    200,
                    json!({"PoolID": "p", "Pool": pool, "Data": {GATEWAY: gateway}}),
                )
            }
            _ => (500, json!({"Err": "broken"})),
        })
        .await;
        let body = create(false, &[("10.80.0.0/24", "", "")]);
        let error = allocate(&fake, &body, &[]).await.unwrap_err();
        assert_eq!(
            error,
            "failed to parse gateway address (10.80.0.1) returned by ipam driver: invalid CIDR address: 10.80.0.1"
        );
        assert_eq!(fake.calls()[1..], ["ReleasePool p"]);
        let body = create(false, &[("10.81.0.0/24", "", "10.81.0.7")]);
        let error = allocate(&fake, &body, &[]).await.unwrap_err();
        assert_eq!(
            error,
            "failed to allocate gateway (10.81.0.7): IpamDriver.RequestAddress: broken"
        );
        assert_eq!(fake.calls()[2..], ["ReleasePool p"]);
    }

    #[tokio::test]
    async fn plugin_pools_overlapping_the_docker_host_are_held_then_released() {
        let auto = vec!["172.17.0.0/16", "10.10.0.0/16", "172.18.0.0/16"];
        let fake = Fake::start(pools_as_asked(auto, false)).await;
        let avoid = [
            "172.17.0.0/16".parse().unwrap(),
            "10.10.0.0/24".parse().unwrap(),
        ];
        let pools = allocate(&fake, &create(false, &[]), &avoid).await.unwrap();
        assert_eq!(pools[0].subnet.to_string(), "172.18.0.0/16");
        assert_eq!(
            fake.calls(),
            [
                "RequestPool Local",
                "RequestPool Local",
                "RequestPool Local",
                "ReleasePool 10.10.0.0/16",
                "ReleasePool 172.17.0.0/16",
            ]
        );
        // A subnet asked for is taken as given.
        let body = create(false, &[("172.17.0.0/24", "", "")]);
        let pools = allocate(&fake, &body, &avoid).await.unwrap();
        assert_eq!(pools[0].subnet.to_string(), "172.17.0.0/24");
        // A network of global scope: the plugin's global address space.
        let body = create(false, &[("10.84.0.0/24", "", "")]);
        let requests = pool_requests(&body, false).unwrap();
        allocate_from_plugin(&fake.ipam, requests, &body, false, &[])
            .await
            .unwrap();
        assert_eq!(fake.calls()[1..], ["RequestPool Global 10.84.0.0/24"]);
    }

    #[tokio::test]
    async fn plugin_addresses_follow_libnetworks_endpoint_rules() {
        let fake = Fake::start(pools_as_asked(vec![], false)).await;
        let body = create(false, &[("10.81.0.0/24", "", ""), ("10.82.0.0/24", "", "")]);
        let pools = allocate(&fake, &body, &[]).await.unwrap();
        fake.calls();
        let plugin = PluginPools {
            ipam: fake.ipam.clone(),
            pools,
        };
        let mut mac = None;
        let any = assign_from_plugin(&plugin, false, None, &mut mac)
            .await
            .unwrap();
        assert_eq!(any.unwrap().to_string(), "10.81.0.9/24");
        let wanted = Some("10.82.0.5".parse().unwrap());
        let chosen = assign_from_plugin(&plugin, false, wanted, &mut mac)
            .await
            .unwrap();
        assert_eq!(chosen.unwrap().to_string(), "10.82.0.5/24");
        let outside = Some("10.83.0.5".parse().unwrap());
        let refused = assign_from_plugin(&plugin, false, outside, &mut mac).await;
        assert_eq!(
            refused.unwrap_err(),
            "Invalid address 10.83.0.5: It does not belong to any of this network's subnets"
        );
        // No IPv6 pool: no IPv6 address, and nothing asked.
        let none = assign_from_plugin(&plugin, true, None, &mut mac)
            .await
            .unwrap();
        assert_eq!(none, None);
        assert_eq!(mac, None);
        release_from_plugin(&plugin, &[any.unwrap(), chosen.unwrap()]).await;
        assert_eq!(
            fake.calls(),
            [
                "RequestAddress 10.81.0.0/24 any",
                "RequestAddress 10.82.0.0/24 10.82.0.5",
                "ReleaseAddress 10.81.0.0/24 10.81.0.9",
                "ReleaseAddress 10.82.0.0/24 10.82.0.5",
            ]
        );
    }

    #[test]
    fn the_null_ipam_takes_no_subnet_nor_ipv6_and_gives_its_one_pool() {
        let subnet = PoolRequest {
            subnet: Some("10.5.0.0/24".parse().unwrap()),
            ..PoolRequest::default()
        };
        let refused = null_pools(&[subnet], false).unwrap_err().to_string();
        assert_eq!(
            refused,
            "null ipam driver does not handle specific address pool requests"
        );
        let refused = null_pools(&[], true).unwrap_err().to_string();
        assert_eq!(
            refused,
            "null ipam driver does not handle IPv6 address pool pool requests"
        );
        let pools = null_pools(&[], false).unwrap();
        let data = pools.ipam_data(&Ipam::new());
        assert_eq!(data.len(), 1);
        assert_eq!(data[0].subnet.to_string(), "0.0.0.0/0");
        assert_eq!(data[0].gateway, None);
        assert_eq!(
            (pools.driver_name(), pools.address_space(true).as_str()),
            ("null", "null")
        );
        let request = NetworkRequest {
            id: "n".into(),
            options: BTreeMap::new(),
            pools: data,
            address_space: pools.address_space(true),
            internal: false,
            ipv6: false,
        };
        let refused = crate::driver::check_ipv4_pool(&request).unwrap_err();
        assert_eq!(refused.to_string(), "ipv4 pool is empty");
    }

    #[test]
    fn random_macs_are_unicast_and_locally_administered() {
        for _ in 0..64 {
            let mac = random_mac();
            assert_eq!(mac[0] & 0x03, 0x02, "{mac:02x?}");
        }
    }
}
