//! [`DataPlane`] on the host: the program's maps as plain fields, its effects recorded, so
//! that unit tests and the fuzz target run [`super::run`] and look at everything it did.

use std::vec;
use std::vec::Vec;

use super::{Action, DataPlane};
use crate::event::{EVENT_DATA_MAX, EVENT_DATA_SMALL, counter};
use crate::maps::{
    AdvertState, DataPlaneConfig, OwnedVip, PeerKey, PeerLimits, VRID_SLOTS, VridConfig, vrid_slot,
};
use crate::wire::ETH_HLEN;

/// An `EVENTS` record as the kernel would post it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub kind: u16,
    /// The bytes copied (at most the record's capacity).
    pub data: Vec<u8>,
    /// The length asked for (`EventHeader::orig_len`).
    pub orig_len: usize,
}

/// A `SILENCE` timer (re)start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Silence {
    pub slot: u32,
    pub interval_ns: u64,
    pub started_ns: u64,
}

/// The maps of one interface, the clock, and what the program did. The per-slot arrays hold
/// only the slots written (absent ones read as zero, like a fresh array map): the fuzz target
/// builds a plane per case and input.
#[derive(Clone, Debug)]
pub struct Plane {
    pub now_ns: u64,
    /// `CONFIG[0]`; `None` as if the lookup failed.
    pub config: Option<DataPlaneConfig>,
    /// `VRID_CONFIG`, by slot.
    pub vrids: Vec<(u32, VridConfig)>,
    /// `PEERS`.
    pub peers: Vec<(PeerKey, PeerLimits)>,
    pub owned4: Vec<([u8; 4], OwnedVip)>,
    pub owned6: Vec<([u8; 16], OwnedVip)>,
    /// `DEATH[0].dead_ns != 0`.
    pub killed: bool,
    /// `ADVERTS` and `OTHERS`, by slot.
    pub adverts: Vec<(u32, AdvertState)>,
    pub others: Vec<(u32, AdvertState)>,
    pub counters: Vec<u64>,
    /// `FOREIGN_VRIDS`, by slot.
    pub foreign: Vec<(u32, u64)>,
    /// The ring refuses every reservation.
    pub ring_full: bool,
    pub events: Vec<Event>,
    pub timers: Vec<Silence>,
    /// The frame as the program leaves it (writes and tail adjustments applied).
    pub frame: Vec<u8>,
}

impl Default for Plane {
    fn default() -> Self {
        Self {
            now_ns: 0,
            config: Some(DataPlaneConfig::default()),
            vrids: Vec::new(),
            peers: Vec::new(),
            owned4: Vec::new(),
            owned6: Vec::new(),
            killed: false,
            adverts: Vec::new(),
            others: Vec::new(),
            counters: vec![0; counter::COUNT as usize],
            foreign: Vec::new(),
            ring_full: false,
            events: Vec::new(),
            timers: Vec::new(),
            frame: Vec::new(),
        }
    }
}

impl Plane {
    /// `VRID_CONFIG[vrid_slot(ipv6, vrid)] = cfg`.
    pub fn set_vrid(&mut self, ipv6: bool, vrid: u8, cfg: VridConfig) {
        *entry(&mut self.vrids, vrid_slot(ipv6, vrid)) = cfg;
    }

    /// `VRID_CONFIG[slot]`, to change in place.
    pub fn vrid_mut(&mut self, slot: u32) -> &mut VridConfig {
        entry(&mut self.vrids, slot)
    }

    /// `ADVERTS[slot]`.
    pub fn advert(&self, slot: u32) -> AdvertState {
        get(&self.adverts, slot)
    }

    /// `OTHERS[slot]`.
    pub fn other(&self, slot: u32) -> AdvertState {
        get(&self.others, slot)
    }

    /// The data-plane config, created if the lookup was made to fail.
    pub fn config_mut(&mut self) -> &mut DataPlaneConfig {
        self.config.get_or_insert_with(DataPlaneConfig::default)
    }

    /// Runs the program on `frame`; the counters, maps and records accumulate across runs.
    pub fn run(&mut self, frame: &[u8]) -> Action {
        self.frame = frame.to_vec();
        super::run(frame, self)
    }

    /// The counters that moved since `before` (index, delta).
    pub fn moved(&self, before: &[u64]) -> Vec<(u32, u64)> {
        (0..counter::COUNT)
            .filter(|&i| self.counters[i as usize] != before[i as usize])
            .map(|i| (i, self.counters[i as usize] - before[i as usize]))
            .collect()
    }
}

impl DataPlane for Plane {
    fn vrid_config(&self, slot: u32) -> Option<VridConfig> {
        in_range(slot).then(|| get(&self.vrids, slot))
    }

    fn config(&self) -> Option<DataPlaneConfig> {
        self.config
    }

    fn peer(&self, key: &PeerKey) -> Option<PeerLimits> {
        self.peers.iter().find(|(k, _)| k == key).map(|(_, l)| *l)
    }

    fn owned4(&self, addr: [u8; 4]) -> Option<OwnedVip> {
        self.owned4
            .iter()
            .find(|(a, _)| *a == addr)
            .map(|(_, v)| *v)
    }

    fn owned6(&self, addr: &[u8; 16]) -> Option<OwnedVip> {
        self.owned6.iter().find(|(a, _)| a == addr).map(|(_, v)| *v)
    }

    fn agent_killed(&self) -> bool {
        self.killed
    }

    fn now_ns(&self) -> u64 {
        self.now_ns
    }

    fn slots(&mut self, slot: u32) -> (Option<&mut AdvertState>, Option<&mut AdvertState>) {
        if !in_range(slot) {
            return (None, None);
        }
        (
            Some(entry(&mut self.adverts, slot)),
            Some(entry(&mut self.others, slot)),
        )
    }

    fn count(&mut self, c: u32) {
        if let Some(n) = self.counters.get_mut(c as usize) {
            *n += 1;
        }
    }

    fn count_foreign(&mut self, slot: u32) {
        if in_range(slot) {
            *entry(&mut self.foreign, slot) += 1;
        }
    }

    /// As the kernel program does it: a record of fixed capacity, filled by
    /// `bpf_xdp_load_bytes`, which fails when the bytes run past the frame.
    fn report(&mut self, kind: u16, off: usize, len: usize) -> bool {
        if self.ring_full {
            self.count(counter::EVENT_RING_FULL);
            return false;
        }
        let cap = if len <= EVENT_DATA_SMALL {
            EVENT_DATA_SMALL
        } else {
            EVENT_DATA_MAX
        };
        let n = len.min(cap);
        let Some(data) = self.frame.get(off..off + n) else {
            return false;
        };
        if n == 0 {
            return false;
        }
        self.events.push(Event {
            kind,
            data: data.to_vec(),
            orig_len: len,
        });
        true
    }

    fn start_silence(&mut self, slot: u32, interval_ns: u64, now_ns: u64) {
        self.timers.push(Silence {
            slot,
            interval_ns,
            started_ns: now_ns,
        });
    }

    fn write<const N: usize>(&mut self, bytes: &[u8; N]) -> bool {
        match self.frame.get_mut(..N) {
            Some(head) => {
                head.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }

    /// `bpf_xdp_adjust_tail` refuses to cut into the Ethernet header.
    fn adjust_tail(&mut self, delta: i32) -> bool {
        let len = self.frame.len() as i64 + i64::from(delta);
        if len < ETH_HLEN as i64 {
            return false;
        }
        self.frame.resize(len as usize, 0);
        true
    }
}

/// Whether an array map of [`VRID_SLOTS`] entries has `slot` (its lookup fails otherwise).
fn in_range(slot: u32) -> bool {
    slot < VRID_SLOTS
}

/// A slot's value, zero if never written.
fn get<T: Copy + Default>(slots: &[(u32, T)], slot: u32) -> T {
    slots
        .iter()
        .find(|(s, _)| *s == slot)
        .map_or_else(T::default, |(_, v)| *v)
}

/// A slot's value to write, created zero.
fn entry<T: Default>(slots: &mut Vec<(u32, T)>, slot: u32) -> &mut T {
    let i = match slots.iter().position(|(s, _)| *s == slot) {
        Some(i) => i,
        None => {
            slots.push((slot, T::default()));
            slots.len() - 1
        }
    };
    &mut slots[i].1
}
