//! Published ports: host port allocation (Docker's portallocator), the userland proxy and the
//! firewall's DNAT bindings for each `-p`.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use drydock_netsim::Netns;

use super::model::{Container, Published};
use super::{Engine, EngineError, EngineResult};
use crate::api::body::PortBinding;
use crate::firewall::Binding;
use crate::proxy::{Protocol, Proxy};

/// Docker's fallback when the kernel's range cannot be read.
const FALLBACK_RANGE: (u16, u16) = (49153, 65535);

/// The ephemeral port range of the docker host (`net.ipv4.ip_local_port_range`).
pub(super) fn ephemeral_range(host: &Netns) -> (u16, u16) {
    let read = host.run(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range"));
    let Ok(Ok(text)) = read else {
        return FALLBACK_RANGE;
    };
    let mut numbers = text.split_whitespace().filter_map(|n| n.parse().ok());
    match (numbers.next(), numbers.next()) {
        (Some(low), Some(high)) if low <= high => (low, high),
        _ => FALLBACK_RANGE,
    }
}

/// Host ports in use, per address and protocol, as Docker's portallocator tracks them.
#[derive(Debug)]
pub(super) struct PortAllocator {
    range: (u16, u16),
    used: BTreeSet<(IpAddr, Protocol, u16)>,
    /// Where the next ephemeral search starts: Docker hands them out in turn.
    next: u16,
}

impl PortAllocator {
    pub(super) fn new(range: (u16, u16)) -> Self {
        Self {
            range,
            used: BTreeSet::new(),
            next: range.0,
        }
    }

    /// Takes `wanted` (a port, a range `low..=high` to pick from, or any ephemeral port).
    fn allocate(
        &mut self,
        ip: IpAddr,
        protocol: Protocol,
        wanted: Option<(u16, u16)>,
    ) -> Result<u16, String> {
        match wanted {
            Some((port, high)) if port == high => {
                if !self.used.insert((ip, protocol, port)) {
                    return Err(format!(
                        "Bind for {}:{port} failed: port is already allocated",
                        show(ip)
                    ));
                }
                Ok(port)
            }
            Some((low, high)) => {
                let port = (low..=high)
                    .find(|p| !self.used.contains(&(ip, protocol, *p)))
                    .ok_or_else(|| {
                        format!(
                            "Bind for {}:{low}-{high} failed: port is already allocated",
                            show(ip)
                        )
                    })?;
                self.used.insert((ip, protocol, port));
                Ok(port)
            }
            None => {
                let (low, high) = self.range;
                let span = u32::from(high - low) + 1;
                let port = (0..span)
                    .map(|i| low + ((u32::from(self.next - low) + i) % span) as u16)
                    .find(|p| !self.used.contains(&(ip, protocol, *p)))
                    .ok_or_else(|| "all ports are allocated".to_string())?;
                self.next = if port == high { low } else { port + 1 };
                self.used.insert((ip, protocol, port));
                Ok(port)
            }
        }
    }

    fn release(&mut self, ip: IpAddr, protocol: Protocol, port: u16) {
        self.used.remove(&(ip, protocol, port));
    }
}

/// `0.0.0.0` and `::` as Docker prints them.
fn show(ip: IpAddr) -> String {
    ip.to_string()
}

/// `"80/tcp"` → (80, tcp).
fn container_port(key: &str) -> Option<(u16, Protocol)> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((port.parse().ok()?, protocol))
}

/// libnetwork's `maxAllocatePortAttempts`: how many ephemeral host ports one binding tries.
const ALLOCATE_ATTEMPTS: usize = 10;

/// Puts the bindings in the order dockerd hands them to libnetwork (go-connections'
/// `SortPortMap`): a binding is moved before the one ahead of it when its host port is higher,
/// or its container port is, or the ports are equal and it is TCP. That comparison is no
/// strict order, so the result is what Go's sort makes of it on a short list: an insertion
/// sort. Chosen host ports thus come before ephemeral ones, which cannot take them first.
fn docker_order(bindings: &mut [(String, PortBinding)]) {
    // go-connections' `toInt`: a range counts as its first port, anything unreadable as 0.
    let host_port = |b: &PortBinding| match host_ports(&b.host_port) {
        Ok(Some((low, _))) => low,
        _ => 0,
    };
    let less = |a: &(String, PortBinding), b: &(String, PortBinding)| {
        let (pa, pb) = (container_port(&a.0), container_port(&b.0));
        let (na, nb) = (pa.map_or(0, |p| p.0), pb.map_or(0, |p| p.0));
        host_port(&a.1) > host_port(&b.1)
            || na > nb
            || (na == nb && pa.is_some_and(|p| p.1 == Protocol::Tcp))
    };
    for i in 1..bindings.len() {
        let mut j = i;
        while j > 0 && less(&bindings[j], &bindings[j - 1]) {
            bindings.swap(j, j - 1);
            j -= 1;
        }
    }
}

/// A HostPort: empty (ephemeral), `8080`, or a range `8000-8010`.
fn host_ports(text: &str) -> Result<Option<(u16, u16)>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || format!("invalid host port {text}");
    match text.split_once('-') {
        Some((low, high)) => Ok(Some((
            low.parse().map_err(|_| bad())?,
            high.parse().map_err(|_| bad())?,
        ))),
        None => {
            let port = text.parse().map_err(|_| bad())?;
            Ok(Some((port, port)))
        }
    }
}

impl Engine {
    /// Publishes a starting container's ports towards `target` (its address on the network
    /// whose endpoint is its gateway); a binding without a host address binds `default_ip`
    /// (that network's `host_binding_ipv4`) when it is a specific one. On error, what was
    /// published is withdrawn.
    pub(super) fn publish(
        &mut self,
        index: usize,
        target: IpAddr,
        endpoint: &str,
        default_ip: Option<IpAddr>,
    ) -> EngineResult<()> {
        let config = &self.containers[index].config;
        let mut wanted: Vec<(String, PortBinding)> = Vec::new();
        for (key, bindings) in &config.host_config.port_bindings {
            for binding in bindings {
                wanted.push((key.clone(), binding.clone()));
            }
        }
        if config.host_config.publish_all_ports {
            for key in config.exposed_ports.keys() {
                if !config.host_config.port_bindings.contains_key(key) {
                    wanted.push((key.clone(), PortBinding::default()));
                }
            }
        }
        docker_order(&mut wanted);
        let name = self.containers[index].name.clone();
        let mut published = Vec::new();
        for (key, binding) in wanted {
            match self.publish_one(&key, &binding, target, default_ip) {
                Ok(mut made) => published.append(&mut made),
                Err(message) => {
                    for p in published {
                        self.withdraw(p);
                    }
                    return Err(EngineError::new(format!(
                        "driver failed programming external connectivity on endpoint {name} ({endpoint}): {message}"
                    )));
                }
            }
        }
        self.containers[index].published = published;
        Ok(())
    }

    /// One `-p` binding. An ephemeral one whose host port cannot be bound (another process
    /// holds it) moves on to the next port in turn, as libnetwork does, [`ALLOCATE_ATTEMPTS`]
    /// times at most; a chosen port or range fails at once.
    fn publish_one(
        &mut self,
        key: &str,
        binding: &PortBinding,
        target: IpAddr,
        default_ip: Option<IpAddr>,
    ) -> Result<Vec<Published>, String> {
        let ephemeral = host_ports(&binding.host_port)?.is_none();
        let mut attempt = 1;
        loop {
            match self.publish_attempt(key, binding, target, default_ip) {
                Err(e) if ephemeral && attempt < ALLOCATE_ATTEMPTS => {
                    tracing::debug!("publishing {key}: {e}; retry {attempt}");
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// One attempt at a `-p` binding: for an empty host address, the network's default one if
    /// specific, else `0.0.0.0` and `::` with one host port.
    fn publish_attempt(
        &mut self,
        key: &str,
        binding: &PortBinding,
        target: IpAddr,
        default_ip: Option<IpAddr>,
    ) -> Result<Vec<Published>, String> {
        let (port, protocol) =
            container_port(key).ok_or_else(|| format!("invalid container port {key}"))?;
        let wanted = host_ports(&binding.host_port)?;
        let specific = default_ip.filter(|ip| !ip.is_unspecified());
        let addresses: Vec<IpAddr> =
            if let (true, Some(ip)) = (binding.host_ip.is_empty(), specific) {
                vec![ip]
            } else if binding.host_ip.is_empty() {
                vec![
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                ]
            } else {
                vec![
                    binding
                        .host_ip
                        .parse()
                        .map_err(|_| format!("invalid host IP {}", binding.host_ip))?,
                ]
            };
        let host_port = self.ports.allocate(addresses[0], protocol, wanted)?;
        let mut made: Vec<Published> = Vec::new();
        for (i, ip) in addresses.iter().enumerate() {
            if i > 0
                && self
                    .ports
                    .allocate(*ip, protocol, Some((host_port, host_port)))
                    .is_err()
            {
                // `::` is already taken by someone else: Docker publishes IPv4 only then.
                continue;
            }
            let undo = |engine: &mut Engine, made: Vec<Published>| {
                engine.ports.release(*ip, protocol, host_port);
                for p in made {
                    engine.withdraw(p);
                }
            };
            let proxy = match Proxy::start(
                &self.host,
                protocol,
                SocketAddr::new(*ip, host_port),
                SocketAddr::new(target, port),
            ) {
                Ok(proxy) => proxy,
                Err(e) => {
                    undo(self, made);
                    let listen = SocketAddr::new(*ip, host_port);
                    let family = if ip.is_ipv4() { "4" } else { "6" };
                    return Err(if e.kind() == std::io::ErrorKind::AddrInUse {
                        format!(
                            "Error starting userland proxy: listen {protocol}{family} {listen}: bind: address already in use"
                        )
                    } else {
                        format!("Error starting userland proxy: {e}")
                    });
                }
            };
            // The kernel DNATs IPv4 traffic from other machines; the proxy serves the rest.
            let binding = match (*ip, target) {
                (IpAddr::V4(v4), IpAddr::V4(_)) => Some(Binding {
                    proto: protocol,
                    host_ip: (!v4.is_unspecified()).then_some(*ip),
                    host_port,
                    container_ip: target,
                    container_port: port,
                }),
                _ => None,
            };
            if let Some(b) = &binding
                && let Err(e) = self.firewall.publish(b)
            {
                drop(proxy);
                undo(self, made);
                return Err(format!("firewall: {e}"));
            }
            made.push(Published {
                port: key.to_string(),
                host_ip: show(*ip),
                host_port,
                proxy: Some(proxy),
                binding,
            });
        }
        Ok(made)
    }

    /// Withdraws one published port: firewall, proxy, allocation.
    pub(super) fn withdraw(&mut self, published: Published) {
        if let Some(binding) = &published.binding
            && let Err(e) = self.firewall.unpublish(binding)
        {
            tracing::warn!("unpublishing {binding}: {e}");
        }
        drop(published.proxy);
        if let (Ok(ip), Some((_, protocol))) =
            (published.host_ip.parse(), container_port(&published.port))
        {
            self.ports.release(ip, protocol, published.host_port);
        }
    }

    /// Withdraws every published port of a container.
    pub(super) fn withdraw_all(&mut self, index: usize) {
        let published = std::mem::take(&mut self.containers[index].published);
        for p in published {
            self.withdraw(p);
        }
    }
}

/// `NetworkSettings.Ports` of a container: bindings made, `null` for exposed ports not
/// published, nothing when it has no gateway endpoint to publish on.
pub(super) fn ports_json(container: &Container, can_publish: bool) -> serde_json::Value {
    let mut ports = serde_json::Map::new();
    if container.state != super::model::State::Running || !can_publish {
        return serde_json::Value::Object(ports);
    }
    for key in container.config.exposed_ports.keys() {
        ports.insert(key.clone(), serde_json::Value::Null);
    }
    for p in &container.published {
        let entry = ports
            .entry(p.port.clone())
            .or_insert(serde_json::Value::Array(Vec::new()));
        if !entry.is_array() {
            *entry = serde_json::Value::Array(Vec::new());
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(
                serde_json::json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}),
            );
        }
    }
    serde_json::Value::Object(ports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_go_in_dockers_order() {
        let binding = |key: &str, host_port: &str| {
            let b = PortBinding {
                host_port: host_port.into(),
                ..PortBinding::default()
            };
            (key.to_string(), b)
        };
        // A chosen host port first, then the higher container port, TCP before UDP.
        let mut bindings = vec![
            binding("53/udp", ""),
            binding("53/tcp", ""),
            binding("80/tcp", ""),
            binding("8080/tcp", "32771"),
        ];
        docker_order(&mut bindings);
        let order: Vec<&str> = bindings.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(order, ["8080/tcp", "80/tcp", "53/tcp", "53/udp"]);
    }

    #[test]
    fn ports_are_allocated_like_dockers_portallocator() {
        let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        let mut ports = PortAllocator::new((32768, 32770));
        assert_eq!(
            ports.allocate(any, Protocol::Tcp, Some((8080, 8080))),
            Ok(8080)
        );
        assert_eq!(
            ports.allocate(any, Protocol::Tcp, Some((8080, 8080))),
            Err("Bind for 0.0.0.0:8080 failed: port is already allocated".into())
        );
        assert_eq!(
            ports.allocate(any, Protocol::Udp, Some((8080, 8080))),
            Ok(8080)
        );
        assert_eq!(ports.allocate(any, Protocol::Tcp, None), Ok(32768));
        assert_eq!(ports.allocate(any, Protocol::Tcp, None), Ok(32769));
        ports.release(any, Protocol::Tcp, 32768);
        // In turn, not lowest first: 32770, then back to 32768.
        assert_eq!(ports.allocate(any, Protocol::Tcp, None), Ok(32770));
        assert_eq!(ports.allocate(any, Protocol::Tcp, None), Ok(32768));
        assert_eq!(
            ports.allocate(any, Protocol::Tcp, Some((9000, 9001))),
            Ok(9000)
        );
        assert_eq!(
            ports.allocate(any, Protocol::Tcp, Some((9000, 9001))),
            Ok(9001)
        );
        assert_eq!(host_ports("8000-8010"), Ok(Some((8000, 8010))));
        assert_eq!(container_port("53/udp"), Some((53, Protocol::Udp)));
    }
}
