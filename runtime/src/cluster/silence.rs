//! Which leases have gone silent, judged by a lease holder from the beats it sees through a
//! store: etcd counts leases in whole seconds and lets them lapse up to half a second late (its
//! lessor's expiry loop), too slow for a node's death to reach the others within a second. So
//! every lease also beats (a key written every [`BEAT`]), and each holder counts, in the order
//! the store passed them on, its own beats since each other lease's last one: a lease that
//! missed [`SILENT_BEATS`] of them is silent, and its holder revokes it for the dead.
//!
//! Counting beats rather than time makes a stalled store or a stalled process harmless: a
//! store that delays every beat delays the judge's own too, and events queued while the judge
//! was stalled are counted in their order. A beat of the judge written just before another
//! lease's last one may come through just after it: a lease is named after between
//! `SILENT_BEATS - 1` and `SILENT_BEATS` beats of silence (500 to 600 ms).

use std::collections::HashMap;
use std::time::Duration;

use super::store::LeaseId;

/// How often a lease beats.
pub const BEAT: Duration = Duration::from_millis(100);
/// How many of a judge's own beats another lease may miss before it is silent.
pub const SILENT_BEATS: u32 = 6;
/// Where beats are written: `beats/LEASE` (the lease's id in hex).
pub const BEATS: &str = "beats/";

/// The key lease `id` beats on.
pub fn beat_key(id: LeaseId) -> String {
    format!("{BEATS}{id:x}")
}

/// The lease a beat key is of.
pub fn lease_of(key: &str) -> Option<LeaseId> {
    LeaseId::from_str_radix(key.strip_prefix(BEATS)?, 16).ok()
}

/// A lease holder's count of the other leases' silence.
#[derive(Debug)]
pub struct Silence {
    own: LeaseId,
    /// The other leases, and how many of our beats each has missed since its last.
    missed: HashMap<LeaseId, u32>,
}

impl Silence {
    /// The judge of lease `own`, knowing the other leases beating when it starts.
    pub fn new(own: LeaseId, beating: impl IntoIterator<Item = LeaseId>) -> Self {
        let missed = (beating.into_iter())
            .filter(|&id| id != own)
            .map(|id| (id, 0))
            .collect();
        Self { own, missed }
    }

    /// A beat of `id` came through. Returns the leases silent now: those that have just missed
    /// [`SILENT_BEATS`] of ours, or another [`SILENT_BEATS`] since (their revocation failed).
    pub fn beat(&mut self, id: LeaseId) -> Vec<LeaseId> {
        if id != self.own {
            self.missed.insert(id, 0);
            return Vec::new();
        }
        let mut silent: Vec<LeaseId> = (self.missed.iter_mut())
            .filter_map(|(&id, missed)| {
                *missed += 1;
                (*missed % SILENT_BEATS == 0).then_some(id)
            })
            .collect();
        silent.sort_unstable();
        silent
    }

    /// Lease `id`'s beat key is gone: the lease ended.
    pub fn ended(&mut self, id: LeaseId) {
        self.missed.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: LeaseId = 0xa;
    const NONE: [LeaseId; 0] = [];

    fn own_beats(silence: &mut Silence, count: u32) -> Vec<LeaseId> {
        (0..count).flat_map(|_| silence.beat(OWN)).collect()
    }

    #[test]
    fn beat_keys_name_their_lease_in_hex() {
        assert_eq!(beat_key(0x694d9a1b2c), "beats/694d9a1b2c");
        assert_eq!(lease_of("beats/694d9a1b2c"), Some(0x694d9a1b2c));
        assert_eq!(lease_of("beats/zz"), None);
        assert_eq!(lease_of("nodes/694d9a1b2c"), None);
    }

    #[test]
    fn a_lease_that_misses_enough_of_our_beats_is_silent() {
        let mut silence = Silence::new(OWN, [OWN, 0xb, 0xc]);
        assert_eq!(own_beats(&mut silence, SILENT_BEATS - 1), NONE);
        assert_eq!(silence.beat(0xc), NONE);
        assert_eq!(silence.beat(OWN), [0xb]);
        assert_eq!(own_beats(&mut silence, SILENT_BEATS - 1), [0xc]);
    }

    #[test]
    fn a_beating_lease_is_never_silent() {
        let mut silence = Silence::new(OWN, [0xb]);
        for _ in 0..100 {
            assert_eq!(silence.beat(OWN), NONE);
            assert_eq!(silence.beat(0xb), NONE);
        }
    }

    #[test]
    fn without_our_own_beats_nobody_is_judged() {
        // The store is stalled, or we are cut off from it: the others' beats stop too.
        let mut silence = Silence::new(OWN, [0xb]);
        assert_eq!(silence.beat(0xc), NONE);
        assert_eq!(silence.missed.len(), 2);
    }

    #[test]
    fn a_silent_lease_is_named_again_until_it_ends() {
        let mut silence = Silence::new(OWN, [0xb]);
        assert_eq!(own_beats(&mut silence, SILENT_BEATS), [0xb]);
        assert_eq!(own_beats(&mut silence, SILENT_BEATS), [0xb]);
        silence.ended(0xb);
        assert_eq!(own_beats(&mut silence, 3 * SILENT_BEATS), NONE);
    }
}
