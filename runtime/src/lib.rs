//! drydock's reference engine: Docker's network drivers (bridge, host, none; later macvlan,
//! ipvlan, overlay, remote plugins), IPAM, published ports and firewall rules, running in the
//! network namespace of a netsim lab host. Knows nothing of scenarios.

pub mod api;
pub mod firewall;
pub mod ipam;
pub mod proxy;
