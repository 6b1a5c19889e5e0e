//! IP address management with the semantics of Docker Engine 20.10's default IPAM driver
//! (libnetwork `ipam/allocator.go`, `bitseq`, `ipamutils`), plus the address steps of network
//! creation and endpoint creation that sit around it (libnetwork `network.go`
//! `ipamAllocateVersion` / `ipamReleaseVersion`, `endpoint.go` `assignAddressVersion`).
//!
//! A sans-IO core: plain data in, plain data out, no clock, no randomness, no I/O. One [`Ipam`]
//! holds all pools of one engine (Docker's `LocalDefault` address space).
//!
//! What 20.10 does, as observed on Docker Engine 20.10.24 (and reproduced here):
//! - Automatic subnets come from the predefined list — 172.17.0.0/16, 172.18.0.0/16,
//!   172.19.0.0/16, 172.20.0.0/14, 172.24.0.0/14, 172.28.0.0/14 split into /16s, then
//!   192.168.0.0/16 split into /20s (31 subnets) — skipping any that overlaps a pool in use.
//!   The search starts at a cursor: just after the list entry handed out last, and back at the
//!   start of the list when that passes the end (it is reset to 0, not taken modulo). A freed
//!   subnet is therefore handed out again only once the search wraps. User subnets leave the
//!   cursor alone. When nothing fits: "could not find an available, non-overlapping IPv4 address
//!   pool among the defaults to assign to the network".
//! - Every pool has an address bitmap over the subnet: ordinal 0 (the network address) is
//!   reserved, and for IPv4 the last one (broadcast) too — also for /31 and /32, which
//!   therefore cannot even get a gateway in 20.10. Dynamic addresses are the lowest free ordinal
//!   (of the `--ip-range` when there is one, whose own first address is a valid pick); freed
//!   addresses are reused lowest first. The gateway is allocated like any dynamic address unless
//!   given, so with an `--ip-range` and no `--gateway` it is the range's first address.
//! - A pool with an `--ip-range` is a "sub-pool" sharing the bitmap of its subnet's "master"
//!   pool, reference-counted: a second network may use the same subnet with a different range
//!   (the IPAM accepts it; the bridge driver then refuses with its own conflict error), and a
//!   sub-pool's parent is created without any overlap check.
//! - IPv6 subnets wider than /64 use only a 2^64-1 ordinal space: a requested address keeps only
//!   the low 64 bits of its host part (`--ip6 fd00:db9:0:1::5` in `fd00:db9::/48` yields
//!   `fd00:db9::5`), and an IPv6 ip-range reaching the 2^64-1st ordinal cannot allocate.
//!
//! Error texts are the daemon's, i.e. what the docker CLI prints after "Error response from
//! daemon: ". The CLI's own client-side checks (`no matching subnet for gateway X` …) live in
//! `api::request`; whatever passes them reaches the daemon texts below.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

#[cfg(test)]
mod tests;

/// Docker's default local-scope address pools (libnetwork `ipamutils`
/// `localScopeDefaultNetworks`): a base network and the prefix length of the subnets it is split
/// into, in search order.
pub const DEFAULT_ADDRESS_POOLS: [(IpNetwork, u8); 7] = [
    (v4net(172, 17, 0, 0, 16), 16),
    (v4net(172, 18, 0, 0, 16), 16),
    (v4net(172, 19, 0, 0, 16), 16),
    (v4net(172, 20, 0, 0, 14), 16),
    (v4net(172, 24, 0, 0, 14), 16),
    (v4net(172, 28, 0, 0, 14), 16),
    (v4net(192, 168, 0, 0, 16), 20),
];

const fn v4net(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> IpNetwork {
    match ipnetwork::Ipv4Network::new_checked(Ipv4Addr::new(a, b, c, d), prefix) {
        Some(net) => IpNetwork::V4(net),
        None => panic!("bad default pool"),
    }
}

/// What a network asks of the IPAM for one IP version: one entry of `IPAM.Config` of
/// `docker network create` (`--subnet`, `--ip-range`, `--gateway`, `--aux-address`), or nothing
/// but `v6` for an automatically chosen subnet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRequest {
    /// `--subnet`; `None`: the next free predefined subnet. Need not be masked
    /// (`10.33.0.77/24` means 10.33.0.0/24, as in Docker).
    pub subnet: Option<IpNetwork>,
    /// `--ip-range`: dynamic addresses come from here. Docker checks only that its first address
    /// lies in the subnet (the CLI does); a wider range is cut down to the subnet's host bits.
    pub ip_range: Option<IpNetwork>,
    /// `--gateway`; `None`: the lowest free address (of the range when there is one).
    pub gateway: Option<IpAddr>,
    /// `--aux-address name=ip`: addresses reserved for the driver, never handed out. Reserved in
    /// this order (Docker walks a Go map, i.e. in random order, which only matters for which of
    /// two clashing names an error names).
    pub aux_addresses: Vec<(String, IpAddr)>,
    /// The IP version of an automatic subnet. Ignored when `subnet` is given (its version
    /// decides). 20.10 has no predefined IPv6 pools: `--ipv6` needs an IPv6 `--subnet`.
    pub v6: bool,
}

impl PoolRequest {
    /// A request for the next free predefined subnet of this IP version.
    pub fn auto(v6: bool) -> Self {
        Self {
            v6,
            ..Self::default()
        }
    }

    /// A request for this subnet (no range, gateway or auxiliary addresses).
    pub fn subnet(subnet: IpNetwork) -> Self {
        Self {
            subnet: Some(subnet),
            v6: subnet.is_ipv6(),
            ..Self::default()
        }
    }
}

/// A pool handed out by [`Ipam::request_pool`]: what `docker network inspect` reports of it, and
/// what the engine needs for `--ip` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pool {
    /// The subnet, masked (`10.33.0.77/24` was asked → `10.33.0.0/24`). Docker's inspect shows
    /// the user's own text in `IPAM.Config`, so the engine keeps that separately.
    pub subnet: IpNetwork,
    /// The gateway address, allocated from the pool (always `Some` with 20.10's default IPAM).
    pub gateway: Option<IpAddr>,
    /// The `--ip-range` as given (not masked, like Docker's `IPAM.Config.IPRange`).
    pub ip_range: Option<IpNetwork>,
    /// The auxiliary addresses reserved in the pool, in request order.
    pub aux_addresses: Vec<(String, IpAddr)>,
    /// Whether the subnet was given by the user (`--subnet`), not picked from the predefined
    /// pools: 20.10 refuses `--ip`/`--ip6` on networks without one.
    user_subnet: bool,
    /// `(start, end)` ordinals of the range in the subnet's bitmap.
    range: Option<(u64, u64)>,
}

impl Pool {
    /// Whether the subnet was user-configured (`--subnet`). 20.10 accepts `--ip`/`--ip6` only on
    /// networks whose subnet of that IP version was ("user specified IP address is supported
    /// only when connecting to networks with user configured subnets", printed by the engine).
    pub fn is_user_subnet(&self) -> bool {
        self.user_subnet
    }

    /// Whether the subnet contains `ip` — the test Docker's endpoint code applies to `--ip`
    /// before asking the IPAM (IPv4-mapped IPv6 addresses count as IPv4, as in Go).
    pub fn contains(&self, ip: IpAddr) -> bool {
        contains(&self.subnet, ip)
    }

    /// Whether the ip-range (if any) contains `ip`. Containers without `--ip` get addresses from
    /// the range; `--ip` may name any address of the subnet.
    pub fn range_contains(&self, ip: IpAddr) -> bool {
        self.ip_range.is_some_and(|range| contains(&range, ip))
    }

    /// Whether this is an IPv6 pool.
    pub fn is_v6(&self) -> bool {
        self.subnet.is_ipv6()
    }
}

/// Identifies a pool of an [`Ipam`]. Not reused after [`Ipam::release_pool`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PoolId(u64);

impl fmt::Display for PoolId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pool-{}", self.0)
    }
}

/// A refusal of the IPAM, or of the network/endpoint steps around it. `Display` is the daemon's
/// message exactly (what the docker CLI prints after "Error response from daemon: ").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// The subnet equals, contains or lies in the subnet of an existing pool (or the same subnet
    /// and ip-range are in use). `docker network create --subnet 192.168.128.0/17 n` while
    /// 192.168.0.0/16 is in use prints "Pool overlaps with other one on this address space"
    /// (no "invalid pool request: " prefix in 20.10). libnetwork `ipamapi.ErrPoolOverlap`.
    #[error("Pool overlaps with other one on this address space")]
    PoolOverlap,

    /// No predefined subnet is free. `docker network create n` with all 31 default subnets in
    /// use prints "could not find an available, non-overlapping IPv4 address pool among the
    /// defaults to assign to the network"; `docker network create --ipv6 n` (no IPv6 subnet;
    /// 20.10 has no IPv6 defaults) prints the same with "IPv6".
    #[error(
        "could not find an available, non-overlapping IPv{} address pool among the defaults to assign to the network",
        if *v6 { 6 } else { 4 }
    )]
    NoDefaultPool {
        /// IP version asked for.
        v6: bool,
    },

    /// An `IPAM.Config` entry without a subnet (API only: the CLI refuses `--gateway` or
    /// `--ip-range` without `--subnet` itself). `POST /networks/create` with
    /// `{"IPRange": "10.72.0.0/25"}` prints "Invalid subnet  : invalid CIDR address: " (sic).
    #[error("Invalid subnet  : invalid CIDR address: ")]
    MissingSubnet,

    /// The ip-range is of the other IP version than the subnet (API only: the CLI pairs ranges
    /// with subnets by containment). `{"Subnet": "10.70.0.0/24", "IPRange": "fd00::/64"}`
    /// prints "failed to parse pool request for address space \"LocalDefault\" pool
    /// \"10.70.0.0/24\" subpool \"fd00::/64\": failed to compute range's lowest ip address:
    /// cannot compute host portion ip address because ip and mask are not compatible:
    /// (net.IP{0xfd, 0x0, …}, net.IPMask{0xff, 0xff, 0xff, 0x0})".
    #[error(
        "failed to parse pool request for address space \"LocalDefault\" pool \"{subnet}\" subpool \"{range}\": failed to compute range's lowest ip address: cannot compute host portion ip address because ip and mask are not compatible: ({}, {})",
        go_ip_literal(range),
        go_mask_literal(subnet)
    )]
    RangeVersionMismatch {
        /// The subnet as given.
        subnet: IpNetwork,
        /// The ip-range as given.
        range: IpNetwork,
    },

    /// The raw IPAM refusal of an address outside the pool's subnet
    /// (`ipamapi.ErrIPOutOfRange`). Seen only inside [`IpamError::Gateway`]: API
    /// `{"Subnet": "10.61.0.0/24", "Gateway": "10.62.0.1"}` prints "failed to allocate gateway
    /// (10.62.0.1): Requested address is out of range". (`--ip` outside the subnet gets
    /// [`IpamError::NotInSubnets`] instead.)
    #[error("Requested address is out of range")]
    OutOfRange,

    /// The address is taken (by a container, the gateway, an auxiliary address, or it is the
    /// network or IPv4 broadcast address). `docker run --network n --ip 10.50.0.5 …` twice
    /// prints "Address already in use"; also inside [`IpamError::Gateway`] and
    /// [`IpamError::AuxAddress`]. `ipamapi.ErrIPAlreadyAllocated`.
    #[error("Address already in use")]
    AddressInUse,

    /// The pool's bitmap is full, or its ip-range is. As the IPAM says it: `docker run --ip
    /// 10.26.0.2` on a full 10.26.0.0/30 prints "No available addresses on this pool" (checked
    /// before whether that address is taken); `--subnet 10.25.0.0/31` prints "failed to allocate
    /// gateway (): No available addresses on this pool". A container without `--ip` gets
    /// [`IpamError::NoAvailableNetworkAddresses`] from the engine instead.
    /// `ipamapi.ErrNoAvailableIPs`.
    #[error("No available addresses on this pool")]
    NoAvailableAddresses,

    /// What the engine prints when a container without `--ip`/`--ip6` finds no free address on
    /// any pool of the network (libnetwork `assignAddressVersion`): `docker run --network s …` on
    /// a full network prints "no available IPv4 addresses on this network's address pools: s
    /// (5fbb7efc…)". The engine builds it from [`IpamError::NoAvailableAddresses`]; the IPAM
    /// never returns it.
    #[error(
        "no available IPv{} addresses on this network's address pools: {network} ({id})",
        if *v6 { 6 } else { 4 }
    )]
    NoAvailableNetworkAddresses {
        /// IP version.
        v6: bool,
        /// The network's name.
        network: String,
        /// The network's full ID.
        id: String,
    },

    /// A requested IPv6 address whose ordinal lies past the bitmap (the last address of a /64 or
    /// wider subnet, whose bitmap has 2^64-1 bits). `docker run --ip6 fd00:dbb::ffff:ffff:ffff:ffff`
    /// on fd00:dbb::/64 prints "bit does not belong to the sequence".
    #[error("bit does not belong to the sequence")]
    BitOutOfSequence,

    /// An ip-range reaching past the bitmap (an IPv6 range whose last ordinal is 2^64-1, e.g.
    /// `--subnet fd00:cc::/64 --ip-range fd00:cc::/64`), met by any dynamic allocation: `docker
    /// network create` prints "failed to allocate gateway (): invalid bit range [0,
    /// 18446744073709551615]".
    #[error("invalid bit range [{start}, {end}]")]
    InvalidBitRange {
        /// First ordinal of the range.
        start: u64,
        /// Last ordinal of the range.
        end: u64,
    },

    /// Allocating the gateway failed (`docker network create`): "failed to allocate gateway
    /// (10.20.0.0): Address already in use" for `--subnet 10.20.0.0/24 --gateway 10.20.0.0`;
    /// "failed to allocate gateway (): No available addresses on this pool" for a /31 or /32.
    #[error("failed to allocate gateway ({}): {source}", display_opt(gateway))]
    Gateway {
        /// The `--gateway` asked for, if any.
        gateway: Option<IpAddr>,
        /// The IPAM's refusal.
        source: Box<IpamError>,
    },

    /// An auxiliary address outside the subnet (API only: the CLI refuses it first with "no
    /// matching subnet for aux-address"). `{"Subnet": "10.63.0.0/24", "AuxiliaryAddresses":
    /// {"k": "10.64.0.1"}}` prints "auxiliary address: (k:10.64.0.1) must belong to the master
    /// pool: 10.63.0.0/24" (spelled right in 20.10.24).
    #[error("auxiliary address: ({name}:{ip}) must belong to the master pool: {subnet}")]
    AuxOutsideSubnet {
        /// The auxiliary address's name.
        name: String,
        /// The address.
        ip: IpAddr,
        /// The pool's (masked) subnet.
        subnet: IpNetwork,
    },

    /// Reserving an auxiliary address failed (`docker network create`): `--subnet 10.22.0.0/24
    /// --aux-address a=10.22.0.1` prints "failed to allocate secondary ip address
    /// (a:10.22.0.1): Address already in use" (the gateway took .1 first).
    #[error("failed to allocate secondary ip address ({name}:{ip}): {source}")]
    AuxAddress {
        /// The auxiliary address's name.
        name: String,
        /// The address.
        ip: IpAddr,
        /// The IPAM's refusal.
        source: Box<IpamError>,
    },

    /// `--ip`/`--ip6` outside the network's subnets (`docker run`, `docker network connect`):
    /// "Invalid address 10.99.0.5: It does not belong to any of this network's subnets" (later
    /// releases say "no configured subnet contains IP address …").
    #[error("Invalid address {ip}: It does not belong to any of this network's subnets")]
    NotInSubnets {
        /// The address asked for.
        ip: IpAddr,
    },

    /// `--default-address-pool` with a size shorter than the base's prefix (dockerd refuses to
    /// start): "invalid pools size: 8".
    #[error("invalid pools size: {size}")]
    InvalidPoolSize {
        /// The size asked for.
        size: u8,
    },

    /// The pool does not exist (released, or of another [`Ipam`]): "cannot find address pool
    /// for poolID:…" (internal; Docker names its pool IDs `LocalDefault/SUBNET[/RANGE]`).
    #[error("cannot find address pool for poolID:{0}")]
    UnknownPool(PoolId),
}

/// All pools of one engine, with Docker 20.10's default IPAM semantics (see the module docs).
#[derive(Debug, Clone)]
pub struct Ipam {
    /// The predefined pools: (masked base, size), split lazily.
    predefined: Vec<(IpNetwork, u8)>,
    /// How many subnets `predefined` splits into.
    predefined_len: u64,
    /// Where the next search of the predefined subnets starts (`predefinedStartIndices`).
    start: u64,
    /// Master pools by masked subnet: the plain pools, and the parents of sub-pools.
    masters: BTreeMap<IpNetwork, Master>,
    /// Sub-pools in use: (masked subnet, ip-range as given).
    subpools: BTreeSet<(IpNetwork, IpNetwork)>,
    /// The pools handed out.
    pools: BTreeMap<PoolId, Pool>,
    next_id: u64,
}

/// A master pool: its reference count (itself and its sub-pools) and address bitmap.
#[derive(Debug, Clone)]
struct Master {
    refs: u32,
    bitmap: Bitmap,
}

/// libnetwork `bitseq.Handle`, as a set of allocated ordinals.
#[derive(Debug, Clone)]
struct Bitmap {
    bits: u64,
    set: BTreeSet<u64>,
}

impl Bitmap {
    /// `insertBitMask`: ordinal 0 reserved, and the last one for IPv4.
    fn new(subnet: &IpNetwork) -> Self {
        let bits = ordinal_space(subnet);
        let mut set = BTreeSet::new();
        set.insert(0);
        if subnet.is_ipv4() {
            set.insert(bits - 1);
        }
        Self { bits, set }
    }

    fn unselected(&self) -> u64 {
        self.bits - self.set.len() as u64
    }

    fn set(&mut self, ordinal: u64) -> Result<(), IpamError> {
        if ordinal >= self.bits {
            return Err(IpamError::BitOutOfSequence);
        }
        if !self.set.insert(ordinal) {
            return Err(IpamError::AddressInUse);
        }
        Ok(())
    }

    /// `SetAny` / `SetAnyInRange` without serial allocation: the lowest free ordinal of
    /// `start..=end`.
    fn set_any(&mut self, start: u64, end: u64) -> Result<u64, IpamError> {
        let mut candidate = start;
        for &taken in self.set.range(start..=end) {
            if taken != candidate {
                break;
            }
            if taken == end {
                return Err(IpamError::NoAvailableAddresses);
            }
            candidate += 1;
        }
        self.set.insert(candidate);
        Ok(candidate)
    }

    fn unset(&mut self, ordinal: u64) {
        self.set.remove(&ordinal);
    }
}

impl Default for Ipam {
    fn default() -> Self {
        Self::new()
    }
}

impl Ipam {
    /// An IPAM with Docker's default local pools ([`DEFAULT_ADDRESS_POOLS`]) and no pool in use.
    /// Docker's default bridge takes 172.17.0.0/16 at engine start by asking for it explicitly
    /// (the engine elects it, see [`Ipam::predefined`]), which leaves the cursor at the start.
    pub fn new() -> Ipam {
        Self::with_default_address_pools(&DEFAULT_ADDRESS_POOLS)
            .expect("the default pools are valid")
    }

    /// An IPAM whose predefined pools are dockerd's `--default-address-pool base=B,size=S`
    /// options, in order, instead of the defaults: each base split into subnets of prefix
    /// length `size`. Fails as dockerd does when a size is shorter than its base's prefix (or
    /// longer than the address).
    ///
    /// # Errors
    /// [`IpamError::InvalidPoolSize`].
    pub fn with_default_address_pools(pools: &[(IpNetwork, u8)]) -> Result<Ipam, IpamError> {
        let mut predefined = Vec::with_capacity(pools.len());
        let mut predefined_len: u64 = 0;
        for &(base, size) in pools {
            let width = if base.is_ipv4() { 32 } else { 128 };
            if size == 0 || size < base.prefix() || size > width {
                return Err(IpamError::InvalidPoolSize { size });
            }
            let count = 1u64
                .checked_shl(u32::from(size - base.prefix()))
                .unwrap_or(u64::MAX);
            predefined_len = predefined_len.saturating_add(count);
            predefined.push((masked(&base), size));
        }
        Ok(Ipam {
            predefined,
            predefined_len,
            start: 0,
            masters: BTreeMap::new(),
            subpools: BTreeSet::new(),
            pools: BTreeMap::new(),
            next_id: 0,
        })
    }

    /// The predefined subnets in list order (not rotated by the cursor). The engine elects the
    /// default bridge's subnet from these as Docker does (the first one not overlapping a host
    /// route or interface) and asks for it explicitly.
    pub fn predefined(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        (0..self.predefined_len).map(|i| self.predefined_at(i))
    }

    /// Reserves a pool and allocates its gateway and auxiliary addresses: libnetwork
    /// `RequestPool` plus the rest of `ipamAllocateVersion` for one `IPAM.Config` entry.
    ///
    /// Without a subnet, the next free predefined subnet of `req.v6` is taken (moving the
    /// cursor). On failure nothing stays reserved — except as in Docker, where a failing
    /// auxiliary address releases the pool but not the gateway or earlier auxiliary addresses:
    /// those stay taken in a master shared with other networks (a sub-pool's subnet).
    ///
    /// # Errors
    /// [`IpamError::PoolOverlap`], [`IpamError::NoDefaultPool`], [`IpamError::MissingSubnet`],
    /// [`IpamError::RangeVersionMismatch`], [`IpamError::Gateway`],
    /// [`IpamError::AuxOutsideSubnet`], [`IpamError::AuxAddress`].
    pub fn request_pool(&mut self, req: &PoolRequest) -> Result<PoolId, IpamError> {
        self.request_pool_avoiding(req, |_| false)
    }

    /// [`Ipam::request_pool`], skipping automatic subnets for which `avoid` holds — Docker's
    /// `requestPoolHelper`, which skips predefined subnets overlapping a host route. Skipped
    /// subnets are held until the search ends, then released: the cursor moves past them.
    /// `avoid` is not consulted for user subnets.
    ///
    /// # Errors
    /// As [`Ipam::request_pool`].
    pub fn request_pool_avoiding(
        &mut self,
        req: &PoolRequest,
        mut avoid: impl FnMut(&IpNetwork) -> bool,
    ) -> Result<PoolId, IpamError> {
        let mut held = Vec::new();
        let found = loop {
            match self.reserve_pool(req) {
                Ok(id) if req.subnet.is_none() && avoid(&self.pools[&id].subnet) => held.push(id),
                other => break other,
            }
        };
        for id in held {
            self.drop_pool(id);
        }
        let id = found?;
        self.allocate_pool_addresses(id, req)?;
        Ok(id)
    }

    /// Releases a pool with its gateway and auxiliary addresses (libnetwork
    /// `ipamReleaseVersion`). Addresses still held by containers are not checked: release them
    /// first. Unknown ids are ignored.
    pub fn release_pool(&mut self, id: PoolId) {
        let Some(pool) = self.pools.get(&id) else {
            return;
        };
        let addresses: Vec<IpAddr> = pool
            .gateway
            .into_iter()
            .chain(pool.aux_addresses.iter().map(|(_, ip)| *ip))
            .collect();
        for ip in addresses {
            self.release_address(id, ip);
        }
        self.drop_pool(id);
    }

    /// The pool `id`.
    ///
    /// # Panics
    /// If there is no such pool (released, or of another [`Ipam`]); see [`Ipam::get`].
    pub fn pool(&self, id: PoolId) -> &Pool {
        self.get(id).unwrap_or_else(|| panic!("no IPAM pool {id}"))
    }

    /// The pool `id`, if it exists.
    pub fn get(&self, id: PoolId) -> Option<&Pool> {
        self.pools.get(&id)
    }

    /// The pools in use, in the order they were handed out.
    pub fn pools(&self) -> impl Iterator<Item = (PoolId, &Pool)> + '_ {
        self.pools.iter().map(|(id, pool)| (*id, pool))
    }

    /// Allocates an address of pool `id`: `wanted` (`--ip`, any address of the subnet, inside
    /// the ip-range or not), or else the lowest free one (of the range when there is one).
    ///
    /// The result may differ from `wanted` for IPv6 subnets wider than /64 (only the low 64
    /// bits of the host part count, as in 20.10). A full pool fails with
    /// [`IpamError::NoAvailableAddresses`] even when `wanted` is given; the engine turns it into
    /// [`IpamError::NoAvailableNetworkAddresses`] for dynamic requests.
    ///
    /// # Errors
    /// [`IpamError::NotInSubnets`], [`IpamError::AddressInUse`],
    /// [`IpamError::NoAvailableAddresses`], [`IpamError::BitOutOfSequence`],
    /// [`IpamError::InvalidBitRange`], [`IpamError::UnknownPool`].
    pub fn request_address(
        &mut self,
        id: PoolId,
        wanted: Option<IpAddr>,
    ) -> Result<IpAddr, IpamError> {
        let pool = self.pools.get(&id).ok_or(IpamError::UnknownPool(id))?;
        if let Some(ip) = wanted
            && !pool.contains(ip)
        {
            return Err(IpamError::NotInSubnets { ip: canonical(ip) });
        }
        self.allocate(id, wanted)
    }

    /// Frees an address of pool `id` (in the bitmap it shares with the pools of its subnet).
    /// Addresses outside the subnet and unknown pools are ignored.
    pub fn release_address(&mut self, id: PoolId, ip: IpAddr) {
        let Some(pool) = self.pools.get(&id) else {
            return;
        };
        if !pool.contains(ip) {
            return;
        }
        let subnet = pool.subnet;
        let ordinal = ordinal_of(&subnet, ip);
        if let Some(master) = self.masters.get_mut(&subnet) {
            master.bitmap.unset(ordinal);
        }
    }

    /// Whether `ip` is taken in pool `id`'s bitmap (by any network sharing its subnet), reserved
    /// network/broadcast addresses included.
    pub fn is_allocated(&self, id: PoolId, ip: IpAddr) -> bool {
        let Some(pool) = self.pools.get(&id) else {
            return false;
        };
        pool.contains(ip)
            && self
                .masters
                .get(&pool.subnet)
                .is_some_and(|m| m.bitmap.set.contains(&ordinal_of(&pool.subnet, ip)))
    }

    /// libnetwork `RequestPool`: parse, pick a predefined subnet if none is given, register.
    fn reserve_pool(&mut self, req: &PoolRequest) -> Result<PoolId, IpamError> {
        let (subnet, user_subnet) = match req.subnet {
            Some(subnet) => (masked(&subnet), true),
            None => {
                if req.ip_range.is_some() || req.gateway.is_some() || !req.aux_addresses.is_empty()
                {
                    return Err(IpamError::MissingSubnet);
                }
                (self.next_predefined(req.v6)?, false)
            }
        };
        let range = match (req.subnet, req.ip_range) {
            (Some(given), Some(range)) => Some(range_ordinals(&given, &range)?),
            _ => None,
        };
        match req.ip_range {
            None => {
                if self.masters.contains_key(&subnet) || self.overlaps_master(&subnet) {
                    return Err(IpamError::PoolOverlap);
                }
                self.masters.insert(
                    subnet,
                    Master {
                        refs: 1,
                        bitmap: Bitmap::new(&subnet),
                    },
                );
            }
            Some(ip_range) => {
                if !self.subpools.insert((subnet, ip_range)) {
                    return Err(IpamError::PoolOverlap);
                }
                // The parent is shared, or created without any overlap check (as in 20.10).
                self.masters
                    .entry(subnet)
                    .and_modify(|m| m.refs += 1)
                    .or_insert_with(|| Master {
                        refs: 1,
                        bitmap: Bitmap::new(&subnet),
                    });
            }
        }
        let id = PoolId(self.next_id);
        self.next_id += 1;
        self.pools.insert(
            id,
            Pool {
                subnet,
                gateway: None,
                ip_range: req.ip_range,
                aux_addresses: Vec::new(),
                user_subnet,
                range,
            },
        );
        Ok(id)
    }

    /// The gateway and auxiliary addresses of `ipamAllocateVersion`; on failure the pool is
    /// released the way Docker's deferred `ReleasePool` does (addresses stay set).
    fn allocate_pool_addresses(&mut self, id: PoolId, req: &PoolRequest) -> Result<(), IpamError> {
        let gateway = match self.allocate_checked(id, req.gateway) {
            Ok(gateway) => gateway,
            Err(source) => {
                self.drop_pool(id);
                return Err(IpamError::Gateway {
                    gateway: req.gateway.map(canonical),
                    source: Box::new(source),
                });
            }
        };
        self.pools.get_mut(&id).expect("pool just reserved").gateway = Some(gateway);
        for (name, ip) in &req.aux_addresses {
            let subnet = self.pools[&id].subnet;
            if !contains(&subnet, *ip) {
                self.drop_pool(id);
                return Err(IpamError::AuxOutsideSubnet {
                    name: name.clone(),
                    ip: canonical(*ip),
                    subnet,
                });
            }
            match self.allocate(id, Some(*ip)) {
                Ok(_) => self
                    .pools
                    .get_mut(&id)
                    .expect("pool just reserved")
                    .aux_addresses
                    .push((name.clone(), canonical(*ip))),
                Err(source) => {
                    self.drop_pool(id);
                    return Err(IpamError::AuxAddress {
                        name: name.clone(),
                        ip: canonical(*ip),
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(())
    }

    /// libnetwork `RequestAddress` (the IPAM's own check: out of the subnet → `OutOfRange`).
    fn allocate_checked(
        &mut self,
        id: PoolId,
        wanted: Option<IpAddr>,
    ) -> Result<IpAddr, IpamError> {
        if let Some(ip) = wanted
            && !self.pools[&id].contains(ip)
        {
            return Err(IpamError::OutOfRange);
        }
        self.allocate(id, wanted)
    }

    /// libnetwork `getAddress` on the master's bitmap; `wanted` is in the subnet.
    fn allocate(&mut self, id: PoolId, wanted: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        let pool = &self.pools[&id];
        let (subnet, range) = (pool.subnet, pool.range);
        let bitmap = &mut self
            .masters
            .get_mut(&subnet)
            .expect("a pool's master lives as long as the pool")
            .bitmap;
        if bitmap.unselected() == 0 {
            return Err(IpamError::NoAvailableAddresses);
        }
        let ordinal = match (wanted, range) {
            (Some(ip), _) => {
                let ordinal = ordinal_of(&subnet, ip);
                bitmap.set(ordinal)?;
                ordinal
            }
            (None, None) => bitmap.set_any(0, bitmap.bits - 1)?,
            (None, Some((start, end))) => {
                if end < start || end >= bitmap.bits {
                    return Err(IpamError::InvalidBitRange { start, end });
                }
                bitmap.set_any(start, end)?
            }
        };
        Ok(address_of(&subnet, ordinal))
    }

    /// libnetwork `ReleasePool`: drop the pool and one reference of its master.
    fn drop_pool(&mut self, id: PoolId) {
        let Some(pool) = self.pools.remove(&id) else {
            return;
        };
        if let Some(range) = pool.ip_range {
            self.subpools.remove(&(pool.subnet, range));
        }
        if let Some(master) = self.masters.get_mut(&pool.subnet) {
            master.refs -= 1;
            if master.refs == 0 {
                self.masters.remove(&pool.subnet);
            }
        }
    }

    /// libnetwork `getPredefinedPool`: search from the cursor, skipping the other IP version,
    /// subnets in use and subnets overlapping a master pool; the cursor moves just past the
    /// subnet found, back to 0 when that passes the end of the list.
    fn next_predefined(&mut self, v6: bool) -> Result<IpNetwork, IpamError> {
        let len = self.predefined_len;
        let start = if self.start >= len { 0 } else { self.start };
        for i in 0..len {
            let candidate = self.predefined_at((start + i) % len);
            if candidate.is_ipv6() != v6
                || self.masters.contains_key(&candidate)
                || self.overlaps_master(&candidate)
            {
                continue;
            }
            let next = start + i + 1;
            self.start = if next >= len { 0 } else { next };
            return Ok(candidate);
        }
        Err(IpamError::NoDefaultPool { v6 })
    }

    /// The `index`th predefined subnet.
    fn predefined_at(&self, mut index: u64) -> IpNetwork {
        for &(base, size) in &self.predefined {
            let count = 1u64
                .checked_shl(u32::from(size - base.prefix()))
                .unwrap_or(u64::MAX);
            if index < count {
                let width = if base.is_ipv4() { 32 } else { 128 };
                let step = 1u128.checked_shl(u32::from(width - size)).unwrap_or(0);
                let ip = from_u128(
                    base.is_ipv6(),
                    to_u128(base.ip()) + u128::from(index) * step,
                );
                return IpNetwork::new(ip, size).expect("prefix checked at construction");
            }
            index -= count;
        }
        unreachable!("predefined index out of range")
    }

    /// `addrSpace.contains`: whether `subnet` overlaps any master pool.
    fn overlaps_master(&self, subnet: &IpNetwork) -> bool {
        self.masters
            .keys()
            .any(|m| contains(m, subnet.ip()) || contains(subnet, m.ip()))
    }
}

/// Go's `(*net.IPNet).Contains`: IPv4-mapped IPv6 addresses count as IPv4.
fn contains(net: &IpNetwork, ip: IpAddr) -> bool {
    let ip = canonical(ip);
    if net.is_ipv4() != ip.is_ipv4() {
        return false;
    }
    let host = host_mask(net);
    to_u128(ip) & !host == to_u128(net.ip()) & !host
}

/// How Go sees an address: IPv4-mapped IPv6 addresses are IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

fn to_u128(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

fn from_u128(v6: bool, value: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(value))
    } else {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    }
}

fn host_bits(net: &IpNetwork) -> u32 {
    let width = if net.is_ipv4() { 32 } else { 128 };
    width - u32::from(net.prefix())
}

fn host_mask(net: &IpNetwork) -> u128 {
    1u128
        .checked_shl(host_bits(net))
        .map_or(u128::MAX, |v| v - 1)
}

fn masked(net: &IpNetwork) -> IpNetwork {
    let ip = from_u128(net.is_ipv6(), to_u128(net.ip()) & !host_mask(net));
    IpNetwork::new(ip, net.prefix()).expect("same prefix")
}

/// `insertBitMask`'s bitmap size: `uint64(1 << hostbits)`, which is 0 from 64 host bits on,
/// made 2^64-1 for IPv6.
fn ordinal_space(net: &IpNetwork) -> u64 {
    1u64.checked_shl(host_bits(net)).unwrap_or(u64::MAX)
}

/// `ipToUint64(GetHostPartIP(ip, mask))`: the host part, truncated to its low 64 bits.
fn ordinal_of(subnet: &IpNetwork, ip: IpAddr) -> u64 {
    (to_u128(canonical(ip)) & host_mask(subnet)) as u64
}

/// `generateAddress`: the subnet's address plus the ordinal.
fn address_of(subnet: &IpNetwork, ordinal: u64) -> IpAddr {
    from_u128(
        subnet.is_ipv6(),
        to_u128(subnet.network()).wrapping_add(u128::from(ordinal)),
    )
}

/// `getAddressRange`: the range's first and last addresses, reduced to ordinals of the subnet.
fn range_ordinals(subnet: &IpNetwork, range: &IpNetwork) -> Result<(u64, u64), IpamError> {
    if subnet.is_ipv4() != range.is_ipv4() {
        return Err(IpamError::RangeVersionMismatch {
            subnet: *subnet,
            range: *range,
        });
    }
    let range = masked(range);
    let start = ordinal_of(subnet, range.network());
    let end = ordinal_of(subnet, range.broadcast());
    Ok((start, end))
}

fn display_opt(ip: &Option<IpAddr>) -> String {
    ip.map(|ip| ip.to_string()).unwrap_or_default()
}

/// Go's `%#v` of a `net.IP` (the masked range address).
fn go_ip_literal(range: &IpNetwork) -> String {
    let bytes = match masked(range).ip() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    format!("net.IP{{{}}}", go_bytes(&bytes))
}

/// Go's `%#v` of a `net.IPMask` (the subnet's mask).
fn go_mask_literal(subnet: &IpNetwork) -> String {
    let bytes = match subnet.mask() {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    format!("net.IPMask{{{}}}", go_bytes(&bytes))
}

fn go_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:#x}"))
        .collect::<Vec<_>>()
        .join(", ")
}
