//! Redundant heartbeat paths (`vrrp_xdp_heartbeat`, local extension): which instance and path
//! an advert heard on a heartbeat interface belongs to, and what was heard there. The
//! liveness rules themselves are the router's (`proto::vr`, `HeartbeatAdvert`).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::proto::{Family, Priority, Vrid};

/// One path of an instance, as the driver resolved it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatSpec {
    pub iface: String,
    pub ifindex: u32,
    /// Our address on the path: the adverts' source, and our side of the tie-break.
    pub src: IpAddr,
    pub peers: Vec<IpAddr>,
}

/// A peer as last heard on a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeardPeer {
    pub last: Instant,
    pub priority: Priority,
    pub adverts: u64,
}

/// What a path heard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathState {
    pub heard: BTreeMap<IpAddr, HeardPeer>,
    pub decode_errors: u64,
}

impl PathState {
    pub fn heard(&mut self, now: Instant, src: IpAddr, priority: Priority) {
        let h = self.heard.entry(src).or_insert(HeardPeer {
            last: now,
            priority,
            adverts: 0,
        });
        h.last = now;
        h.priority = priority;
        h.adverts += 1;
    }
}

/// The instance (by position in `instances`) and path an advert from `src` for `vrid` on
/// heartbeat interface `ifindex` belongs to: the instance with that VRID and family whose
/// path there lists `src` as a peer. Anything else is dropped.
pub fn route<'a>(
    instances: impl IntoIterator<Item = (Family, Vrid, &'a [HeartbeatSpec])>,
    ifindex: u32,
    family: Family,
    vrid: Vrid,
    src: IpAddr,
) -> Option<(usize, usize)> {
    instances
        .into_iter()
        .enumerate()
        .find_map(|(i, (f, v, paths))| {
            if f != family || v != vrid {
                return None;
            }
            paths
                .iter()
                .position(|p| p.ifindex == ifindex && p.peers.contains(&src))
                .map(|p| (i, p))
        })
}

/// The guardian's entry for an instance's heartbeat path (the instance's own is its name).
pub fn guardian_key(instance: &str, iface: &str) -> String {
    format!("{instance} (heartbeat {iface})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_vrid_family_interface_and_peer() {
        let p = |ifindex, peer: &str| HeartbeatSpec {
            iface: format!("hb{ifindex}"),
            ifindex,
            src: "198.51.100.1".parse().unwrap(),
            peers: vec![peer.parse().unwrap()],
        };
        let a = [p(9, "198.51.100.2")];
        let b = [p(8, "198.51.100.2"), p(9, "198.51.100.3")];
        let v = |n| Vrid::new(n).unwrap();
        let all = || [(Family::V4, v(51), &a[..]), (Family::V4, v(52), &b[..])];
        let peer2: IpAddr = "198.51.100.2".parse().unwrap();
        let peer3: IpAddr = "198.51.100.3".parse().unwrap();
        assert_eq!(route(all(), 9, Family::V4, v(51), peer2), Some((0, 0)));
        assert_eq!(route(all(), 9, Family::V4, v(52), peer3), Some((1, 1)));
        assert_eq!(route(all(), 8, Family::V4, v(52), peer2), Some((1, 0)));
        // A peer of another path, the wrong VRID or family: dropped.
        assert_eq!(route(all(), 9, Family::V4, v(52), peer2), None);
        assert_eq!(route(all(), 9, Family::V6, v(51), peer2), None);
    }
}
