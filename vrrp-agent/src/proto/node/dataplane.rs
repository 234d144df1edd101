//! The data-plane planner (local policy): the XDP map state the routers' state calls for, and
//! the difference from what was last written. Pure: the node computes, the driver writes.
//!
//! Per interface with XDP: which VRIDs the program serves (with v2 password and interval, the
//! unicast allowlist, and whether frames for the virtual MAC are ours), which VIPs it answers
//! ARP/NS for and with which MAC; and across interfaces, the VIPs the kernel must never answer
//! for (`kfilter`), because XDP does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vrrp_common::maps::{
    PeerLimits, VRID_F_AUTH_PASS, VRID_F_CONFIGURED, VRID_F_FIRST_LINK_LOCAL, VRID_F_UNICAST_PEERS,
    VRID_F_V2, VRID_F_V2_INTEROP, VRID_F_VMAC_OWNED, VRID_F_YIELD, VridConfig,
};

use crate::proto::vr::TtlRange;
use crate::proto::{Auth, Family, Version};

/// One VRID slot of an interface's program. `master_down_ns` stays 0 here: the master-silence
/// timer is the driver's (`Action::Watch`), and it keeps its value when writing a slot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    pub cfg: VridConfig,
    /// The unicast peers, each with the TTL range its unicast adverts must arrive with.
    pub peers: Vec<(IpAddr, PeerLimits)>,
}

/// What one instance contributes.
#[derive(Clone, Debug)]
pub struct Contribution<'a> {
    pub ifindex: u32,
    pub family: Family,
    pub vrid: u8,
    pub version: Version,
    pub interval_cs: u16,
    /// RFC 9568 §8.4: a v3 instance that takes VRRPv2 adverts too.
    pub v2_interop: bool,
    /// The priority of our last advert, if any.
    pub advertised: Option<u8>,
    pub auth: Auth,
    pub unicast_peers: &'a [IpAddr],
    /// `VrConfig::peer_ttl`.
    pub peer_ttl: &'a [(IpAddr, TtlRange)],
    /// The interface has XDP and its XDP_TX works.
    pub answers: bool,
    pub has_xdp: bool,
    /// The router asked for ownership (MASTER) and XDP answers here.
    pub owned: bool,
    /// The MAC answers carry (virtual MAC or the interface's).
    pub mac: [u8; 6],
    pub vmac: bool,
    /// RFC 9568 erratum 8300 in strict mode (`VrConfig::first_address_link_local`).
    pub first_link_local: bool,
    /// VIPs on the instance's own interface (others are bound, not answered by XDP).
    pub own_vips: Vec<IpAddr>,
    pub all_vips: &'a [IpAddr],
}

/// The whole wanted state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub slots: BTreeMap<(u32, bool, u8), Slot>,
    pub owned: BTreeMap<(u32, IpAddr), (u8, [u8; 6])>,
    /// Sorted, deduplicated.
    pub kfilter: Vec<IpAddr>,
}

/// A write to one interface's program.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum DpOp {
    /// Peers first, then the slot (the allowlist is in force once the flag is).
    SetSlot {
        ifindex: u32,
        ipv6: bool,
        vrid: u8,
        slot: Slot,
    },
    Own {
        ifindex: u32,
        vip: IpAddr,
        vrid: u8,
        mac: [u8; 6],
    },
    Disown {
        ifindex: u32,
        vip: IpAddr,
    },
}

/// In transcripts: what the slot tells the program (the timer is the driver's).
impl serde::Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Slot", 5)?;
        st.serialize_field("flags", &self.cfg.flags)?;
        st.serialize_field("interval_cs", &self.cfg.interval_cs)?;
        if self.cfg.flags & VRID_F_YIELD != 0 {
            st.serialize_field("own_priority", &self.cfg.own_priority)?;
        } else {
            st.skip_field("own_priority")?;
        }
        let pass = (self.cfg.flags & VRID_F_AUTH_PASS != 0).then(|| {
            String::from_utf8_lossy(&self.cfg.auth_pass)
                .trim_end_matches('\0')
                .to_string()
        });
        st.serialize_field("auth_pass", &pass)?;
        let addrs: Vec<IpAddr> = self.peers.iter().map(|p| p.0).collect();
        st.serialize_field("peers", &addrs)?;
        // Only where configured: transcripts without min_ttl/max_ttl stay as they were.
        let limited: Vec<(IpAddr, u8, u8)> = self
            .peers
            .iter()
            .filter(|p| p.1 != PeerLimits::ANY)
            .map(|(a, l)| (*a, l.min_ttl, l.max_ttl))
            .collect();
        if limited.is_empty() {
            st.skip_field("peer_ttl")?;
        } else {
            st.serialize_field("peer_ttl", &limited)?;
        }
        st.end()
    }
}

pub fn plan<'a>(contribs: impl IntoIterator<Item = Contribution<'a>>) -> Plan {
    let mut p = Plan::default();
    for c in contribs {
        if c.answers {
            p.kfilter.extend(c.all_vips.iter().copied());
        }
        if !c.has_xdp {
            continue;
        }
        let mut cfg = VridConfig {
            flags: VRID_F_CONFIGURED,
            ..VridConfig::default()
        };
        // keepalived's unicast_peer list doubles as an allowlist, enforced in XDP.
        if !c.unicast_peers.is_empty() {
            cfg.flags |= VRID_F_UNICAST_PEERS;
        }
        if c.version == Version::V2 {
            cfg.flags |= VRID_F_V2;
            cfg.interval_cs = c.interval_cs;
            if let Auth::Pass(pw) = c.auth {
                cfg.flags |= VRID_F_AUTH_PASS;
                cfg.auth_pass = pw;
            }
        }
        if c.v2_interop {
            // v2 adverts are held to our interval and password, as on a v2 instance (RFC 3768
            // §7.1).
            cfg.flags |= VRID_F_V2_INTEROP;
            cfg.interval_cs = c.interval_cs;
            if let Auth::Pass(pw) = c.auth {
                cfg.flags |= VRID_F_AUTH_PASS;
                cfg.auth_pass = pw;
            }
        }
        // VRRPv3 only: a v2 advert with another address list (another cluster on our VRID,
        // RFC 3768 §7.1) is dropped by the agent but not by XDP, and must not silence us.
        if c.owned
            && c.version == Version::V3
            && let Some(p) = c.advertised
        {
            cfg.flags |= VRID_F_YIELD;
            cfg.own_priority = p;
        }
        if c.owned && c.vmac {
            cfg.flags |= VRID_F_VMAC_OWNED;
        }
        if c.first_link_local && c.family == Family::V6 {
            cfg.flags |= VRID_F_FIRST_LINK_LOCAL;
        }
        p.slots.insert(
            (c.ifindex, c.family == Family::V6, c.vrid),
            Slot {
                cfg,
                peers: c
                    .unicast_peers
                    .iter()
                    .map(|a| {
                        let r = c
                            .peer_ttl
                            .iter()
                            .find(|p| p.0 == *a)
                            .map_or(TtlRange::ANY, |p| p.1);
                        (*a, PeerLimits::new(r.min, r.max))
                    })
                    .collect(),
            },
        );
        if c.owned {
            for v in c.own_vips {
                p.owned.insert((c.ifindex, v), (c.vrid, c.mac));
            }
        }
    }
    p.kfilter.sort();
    p.kfilter.dedup();
    p
}

/// The writes that take interfaces from `old` to `new`. An interface in `fresh` had its
/// program just attached: every one of its 510 slots is written (an empty slot forgets a VRID).
pub fn diff(old: &Plan, new: &Plan, fresh: &[u32]) -> Vec<DpOp> {
    let mut ops = Vec::new();
    let empty = Slot {
        cfg: VridConfig::default(),
        peers: Vec::new(),
    };
    for &ifindex in fresh {
        for ipv6 in [false, true] {
            for vrid in 1..=255u8 {
                let slot = new.slots.get(&(ifindex, ipv6, vrid)).unwrap_or(&empty);
                ops.push(DpOp::SetSlot {
                    ifindex,
                    ipv6,
                    vrid,
                    slot: slot.clone(),
                });
            }
        }
    }
    for (k, s) in &new.slots {
        if !fresh.contains(&k.0) && old.slots.get(k) != Some(s) {
            ops.push(DpOp::SetSlot {
                ifindex: k.0,
                ipv6: k.1,
                vrid: k.2,
                slot: s.clone(),
            });
        }
    }
    for k in old.slots.keys() {
        if !fresh.contains(&k.0) && !new.slots.contains_key(k) {
            ops.push(DpOp::SetSlot {
                ifindex: k.0,
                ipv6: k.1,
                vrid: k.2,
                slot: empty.clone(),
            });
        }
    }
    // Disown before own: a VIP moving between instances is never answered twice.
    for (ifindex, vip) in old.owned.keys() {
        if !new.owned.contains_key(&(*ifindex, *vip)) {
            ops.push(DpOp::Disown {
                ifindex: *ifindex,
                vip: *vip,
            });
        }
    }
    for ((ifindex, vip), (vrid, mac)) in &new.owned {
        if old.owned.get(&(*ifindex, *vip)) != Some(&(*vrid, *mac)) {
            ops.push(DpOp::Own {
                ifindex: *ifindex,
                vip: *vip,
                vrid: *vrid,
                mac: *mac,
            });
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c<'a>(vips: &'a [IpAddr], owned: bool) -> Contribution<'a> {
        Contribution {
            ifindex: 7,
            family: Family::V4,
            vrid: 51,
            version: Version::V2,
            interval_cs: 100,
            v2_interop: false,
            advertised: None,
            auth: Auth::Pass(*b"1111\0\0\0\0"),
            unicast_peers: &[],
            peer_ttl: &[],
            answers: true,
            has_xdp: true,
            owned,
            mac: [2, 0, 0, 0, 0, 1],
            vmac: false,
            first_link_local: false,
            own_vips: vips.to_vec(),
            all_vips: vips,
        }
    }

    #[test]
    fn erratum_8300_strict_ipv6_slots_check_the_first_address_in_xdp() {
        // Without the flag XDP timed such an advert like any other while the router dropped it.
        let v4: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let v6: Vec<IpAddr> = vec!["fe80::3".parse().unwrap()];
        let strict = |vips, family| Contribution {
            family,
            version: Version::V3,
            first_link_local: true,
            ..c(vips, false)
        };
        let p = plan([strict(&v6, Family::V6)]);
        assert_ne!(
            p.slots[&(7, true, 51)].cfg.flags & VRID_F_FIRST_LINK_LOCAL,
            0
        );
        // IPv4 has no such rule; without strict mode no flag either.
        let p = plan([strict(&v4, Family::V4)]);
        assert_eq!(
            p.slots[&(7, false, 51)].cfg.flags & VRID_F_FIRST_LINK_LOCAL,
            0
        );
        let lax = Contribution {
            first_link_local: false,
            ..strict(&v6, Family::V6)
        };
        assert_eq!(
            plan([lax]).slots[&(7, true, 51)].cfg.flags & VRID_F_FIRST_LINK_LOCAL,
            0
        );
    }

    #[test]
    fn a_backup_configures_its_slot_and_filters_but_owns_nothing() {
        let vips: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let p = plan([c(&vips, false)]);
        let s = &p.slots[&(7, false, 51)];
        assert_eq!(
            s.cfg.flags,
            VRID_F_CONFIGURED | VRID_F_V2 | VRID_F_AUTH_PASS
        );
        assert_eq!(s.cfg.interval_cs, 100);
        assert!(p.owned.is_empty());
        assert_eq!(p.kfilter, vips);
    }

    #[test]
    fn becoming_master_owns_and_leaving_disowns_only_what_changed() {
        let vips: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let backup = plan([c(&vips, false)]);
        let master = plan([c(&vips, true)]);
        assert_eq!(
            diff(&backup, &master, &[]),
            vec![DpOp::Own {
                ifindex: 7,
                vip: vips[0],
                vrid: 51,
                mac: [2, 0, 0, 0, 0, 1]
            }]
        );
        assert_eq!(
            diff(&master, &backup, &[]),
            vec![DpOp::Disown {
                ifindex: 7,
                vip: vips[0]
            }]
        );
        assert!(diff(&master, &master, &[]).is_empty());
    }

    #[test]
    fn a_fresh_program_gets_every_slot_and_a_removed_vrid_is_forgotten() {
        let vips: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let p = plan([c(&vips, false)]);
        let ops = diff(&Plan::default(), &p, &[7]);
        assert_eq!(ops.len(), 510);
        let gone = diff(&p, &Plan::default(), &[]);
        assert_eq!(
            gone,
            vec![DpOp::SetSlot {
                ifindex: 7,
                ipv6: false,
                vrid: 51,
                slot: Slot {
                    cfg: VridConfig::default(),
                    peers: vec![]
                }
            }]
        );
    }

    #[test]
    fn xdp_tx_failing_hands_answers_and_the_filter_back_to_the_kernel() {
        let vips: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let mut failing = c(&vips, false);
        failing.answers = false;
        let p = plan([failing]);
        assert!(p.kfilter.is_empty());
        assert!(p.owned.is_empty());
    }

    #[test]
    fn vmac_flag_follows_ownership() {
        let vips: Vec<IpAddr> = vec!["192.0.2.3".parse().unwrap()];
        let mut m = c(&vips, true);
        m.vmac = true;
        assert_ne!(
            plan([m.clone()]).slots[&(7, false, 51)].cfg.flags & VRID_F_VMAC_OWNED,
            0
        );
        m.owned = false;
        assert_eq!(
            plan([m]).slots[&(7, false, 51)].cfg.flags & VRID_F_VMAC_OWNED,
            0
        );
    }
}
