//! The routers heard on a VRID, for `status`: bounded, so that spoofed sources cannot grow it
//! (one burst of 200,000 spoofed IPv6 adverts once made 91,304 entries). Full, the entry
//! heard longest ago makes room and the eviction is counted.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use crate::proto::{Centisecs, Priority};

/// Entries kept per instance: far more routers than any real VRID has.
pub const PEERS_MAX: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub priority: Priority,
    pub interval: Centisecs,
    pub last_seen: Instant,
    /// The checksum form of its last advert (unknown from the data plane's absorbed ones).
    pub form: Option<crate::proto::codec::ChecksumForm>,
}

#[derive(Clone, Debug, Default)]
pub struct PeerTable {
    peers: BTreeMap<IpAddr, Peer>,
    evictions: u64,
}

impl PeerTable {
    /// An advert whose form is unknown keeps the form last heard from that peer.
    pub fn heard(&mut self, src: IpAddr, mut peer: Peer) {
        if peer.form.is_none() {
            peer.form = self.peers.get(&src).and_then(|p| p.form);
        }
        if !self.peers.contains_key(&src)
            && self.peers.len() >= PEERS_MAX
            && let Some(oldest) = self
                .peers
                .iter()
                .min_by_key(|(_, p)| p.last_seen)
                .map(|(a, _)| *a)
        {
            self.peers.remove(&oldest);
            self.evictions += 1;
        }
        self.peers.insert(src, peer);
    }

    pub fn get(&self, src: &IpAddr) -> Option<&Peer> {
        self.peers.get(src)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&IpAddr, &Peer)> {
        self.peers.iter()
    }

    pub fn len(&self) -> usize {
        self.peers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    pub fn evictions(&self) -> u64 {
        self.evictions
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;
    use std::time::Duration;

    use super::*;

    use crate::proto::clock::test_epoch as clock;

    #[test]
    fn spoofed_sources_cannot_grow_the_table_and_the_real_master_stays() {
        let t0 = clock();
        let mut t = PeerTable::default();
        let master: IpAddr = "2001:db8::1".parse().unwrap();
        let p = |at| Peer {
            priority: Priority(100),
            interval: Centisecs(100),
            last_seen: at,
            form: None,
        };
        for i in 0..10_000u32 {
            let at = t0 + Duration::from_micros(u64::from(i));
            // The master talks every 100 spoofed adverts: it is never the oldest.
            if i % 50 == 0 {
                t.heard(master, p(at));
            }
            let spoof = IpAddr::V6(Ipv6Addr::from(
                0x2001_0db8_0000_0000_0000_0000_0001_0000u128 + u128::from(i),
            ));
            t.heard(spoof, p(at));
        }
        assert_eq!(t.len(), PEERS_MAX);
        assert!(t.evictions() >= 10_000 - PEERS_MAX as u64);
        assert!(t.iter().any(|(a, _)| *a == master));
    }
}
