//! drydock's reference engine: Docker's network drivers (bridge, host, none, macvlan, ipvlan,
//! overlay, remote plugins), IPAM, published ports and embedded DNS, running on netsim hosts.
//!
//! Nothing is implemented yet: the engine arrives with its issues (see ARCHITECTURE.md). This
//! crate exists so the workspace has its final shape and dependency direction from the start.
