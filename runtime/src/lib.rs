//! drydock's reference engine: Docker's network drivers (bridge, host, none, macvlan, ipvlan,
//! overlay in swarm mode with its control plane in [`cluster`]; remote plugins to come), IPAM,
//! published ports, firewall rules and the embedded DNS server, running in the network
//! namespace of a netsim lab host; the docker command language that drives it ([`api`]); and
//! Docker Engine API 1.41 served on a unix socket ([`server`]). Knows nothing of scenarios.

pub mod api;
pub mod cluster;
mod datapath;
pub mod dns;
pub mod driver;
pub mod engine;
pub mod fallback;
pub mod firewall;
pub mod ipam;
mod mac;
mod nfnl;
pub mod plugin;
pub mod proxy;
pub mod server;
