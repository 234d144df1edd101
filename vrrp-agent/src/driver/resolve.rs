//! From keepalived.conf to the node's specs: interface indexes, source addresses, VIP
//! interfaces. Reads netlink only; acquires nothing (a file that is then refused has opened no
//! socket and attached no program).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use tracing::{debug, info, warn};

use crate::config::{self, Config};
use crate::io::netlink::{LinkInfo, Netlink};
use crate::proto::codec::ChecksumForm;
use crate::proto::node::{HeartbeatSpec, IfaceSpec, InstanceSpec, NodeConfig, VipBinding};
use crate::proto::vr::{self, VrConfig};
use crate::proto::{Family, VipSpec};

/// A configuration resolved against the interfaces as they are now.
pub struct Resolved {
    pub node: NodeConfig,
    /// Every interface an instance or heartbeat path runs on, by index.
    pub links: BTreeMap<u32, LinkInfo>,
    /// Primary interfaces with a `use_vmac` instance (veth: generic XDP, see `resources`).
    pub vmac_ifaces: Vec<u32>,
    /// Sockets the specs use: (interface, source) → (family, joins the multicast group, is a
    /// heartbeat path).
    pub sockets: BTreeMap<(u32, IpAddr), (Family, bool)>,
}

pub async fn resolve(nl: &Netlink, cfg: &Config) -> Result<Resolved> {
    let mut links: BTreeMap<u32, LinkInfo> = BTreeMap::new();
    let mut by_name: BTreeMap<String, u32> = BTreeMap::new();
    let mut node = NodeConfig {
        sync_groups: cfg
            .sync_groups
            .iter()
            .map(|g| {
                (
                    g.name.clone(),
                    g.instances.iter().map(|(n, _)| n.clone()).collect(),
                )
            })
            .collect(),
        garp_interval: cfg.global.garp_interval,
        gna_interval: cfg.global.gna_interval,
        ..NodeConfig::default()
    };
    let mut vmac_ifaces = Vec::new();
    let mut sockets = BTreeMap::new();
    let all_vips: Vec<IpAddr> = cfg
        .instances
        .iter()
        .flat_map(|i| i.vips.iter().chain(&i.excluded_vips).map(|v| v.addr))
        .collect();
    let mut link = async |name: &str,
                          links: &mut BTreeMap<u32, LinkInfo>|
           -> Result<LinkInfo, crate::io::netlink::NetlinkError> {
        if let Some(i) = by_name.get(name) {
            return Ok(links[i].clone());
        }
        let l = nl.link_by_name(name).await?;
        by_name.insert(name.to_string(), l.index);
        links.insert(l.index, l.clone());
        Ok(l)
    };
    for inst in &cfg.instances {
        // Said out loud rather than silently ignored: not enforced yet.
        if !inst.accept {
            warn!(
                "{}: instance {}: no_accept is not enforced: the master accepts traffic to its VIPs",
                inst.span, inst.name
            );
        }
        let l = link(&inst.interface, &mut links)
            .await
            .map_err(|e| anyhow!("{}: instance {}: {e}", inst.interface_span, inst.name))?;
        if !node.ifaces.iter().any(|i| i.index == l.index) {
            node.ifaces.push(IfaceSpec {
                index: l.index,
                name: l.name.clone(),
                mac: l.mac,
                up: l.up,
                xdp: false,
            });
        }
        if inst.vmac.is_some() && !vmac_ifaces.contains(&l.index) {
            vmac_ifaces.push(l.index);
        }
        let src = match inst.unicast_src {
            Some(a) => a,
            None => primary_address(nl, l.index, inst.family, &all_vips)
                .await
                .with_context(|| {
                    format!(
                        "{}: instance {}: no source address on {}",
                        inst.span, inst.name, inst.interface
                    )
                })?,
        };
        let multicast = cfg.instances.iter().any(|i| {
            i.interface == inst.interface && i.family == inst.family && i.unicast_peers.is_empty()
        });
        sockets.insert((l.index, src), (inst.family, multicast));
        let mut heartbeats = Vec::new();
        for h in &inst.heartbeats {
            let hl = link(&h.interface, &mut links).await.map_err(|e| {
                anyhow!(
                    "{}: instance {}: vrrp_xdp_heartbeat interface {}: {e}",
                    h.interface_span,
                    inst.name,
                    h.interface
                )
            })?;
            let hsrc = match h.src {
                Some(a) => a,
                None => primary_address(nl, hl.index, inst.family, &all_vips)
                    .await
                    .with_context(|| {
                        format!(
                            "{}: instance {}: no source address on heartbeat interface {}",
                            h.span, inst.name, h.interface
                        )
                    })?,
            };
            sockets
                .entry((hl.index, hsrc))
                .or_insert((inst.family, false));
            heartbeats.push(HeartbeatSpec {
                iface: h.interface.clone(),
                ifindex: hl.index,
                src: hsrc,
                peers: h.peers.iter().map(|p| p.0).collect(),
            });
        }
        let mut vips = Vec::new();
        for v in &inst.vips {
            let ifindex = match &v.dev {
                Some(dev) if dev != &inst.interface => {
                    link(dev, &mut links)
                        .await
                        .map_err(|e| anyhow!("{}: {e}", v.span))?
                        .index
                }
                _ => l.index,
            };
            vips.push(VipBinding {
                ifindex,
                spec: vip_spec(v),
            });
        }
        let destinations = if inst.unicast_peers.is_empty() {
            vec![match inst.family {
                Family::V4 => IpAddr::V4(cfg.global.mcast_group4),
                Family::V6 => IpAddr::V6(cfg.global.mcast_group6),
            }]
        } else {
            inst.unicast_peers.iter().map(|p| p.addr).collect()
        };
        node.instances.push(InstanceSpec {
            name: inst.name.clone(),
            iface: inst.interface.clone(),
            ifindex: l.index,
            vr: vr_config(cfg, inst, src),
            src,
            vips,
            destinations,
            // keepalived: unicast_ttl applies to unicast adverts only (and is refused without
            // peers by the config).
            ttl: inst.unicast_ttl.unwrap_or(vrrp_common::wire::VRRP_TTL),
            heartbeats,
            form: if inst.v3_checksum_as_v2 {
                ChecksumForm::WithoutPseudoHeader
            } else {
                ChecksumForm::WithPseudoHeader
            },
            form_auto: inst.checksum_auto,
            vmac: inst.vmac.as_ref().map(|v| {
                v.mac.unwrap_or(vrrp_common::wire::vmac(
                    inst.family == Family::V6,
                    inst.vrid.get(),
                ))
            }),
            vmac_xmit_base: inst.vmac.as_ref().is_some_and(|v| v.xmit_base),
            garp_repeat: inst.garp.master_repeat,
            garp_refresh_repeat: inst.garp.master_refresh_repeat,
            tracks: !(inst.track_scripts.is_empty()
                && inst.track_files.is_empty()
                && inst.track_processes.is_empty()
                && inst.track_interfaces.is_empty()),
        });
    }
    Ok(Resolved {
        node,
        links,
        vmac_ifaces,
        sockets,
    })
}

/// After the programs are attached: `use_vmac` needs XDP (no macvlan is made), so an instance
/// on an interface without it uses the interface MAC, with a warning.
pub fn settle_vmac(cfg: &Config, node: &mut NodeConfig) {
    for (spec, inst) in node.instances.iter_mut().zip(&cfg.instances) {
        let Some(mac) = spec.vmac else {
            continue;
        };
        let xdp = node.ifaces.iter().any(|i| i.index == spec.ifindex && i.xdp);
        if !xdp {
            warn!(
                "{}: instance {}: use_vmac needs the XDP data plane (no macvlan is made): ARP replies and adverts use the interface MAC",
                inst.span, inst.name
            );
            spec.vmac = None;
            continue;
        }
        let how = if spec.vmac_xmit_base {
            "adverts from the interface MAC (vmac_xmit_base)"
        } else {
            "adverts from the virtual MAC"
        };
        info!(
            instance = %inst.name,
            vmac = %crate::proto::MacDisplay(mac),
            iface = %inst.interface,
            "use_vmac without a macvlan: the virtual MAC goes into {}'s unicast filter while MASTER, XDP answers with it; {how}",
            inst.interface
        );
        if let Some(name) = inst.vmac.as_ref().and_then(|v| v.name.as_ref()) {
            debug!(instance = %inst.name, %name, "use_vmac interface name ignored: no macvlan is created");
        }
    }
}

async fn primary_address(
    nl: &Netlink,
    ifindex: u32,
    family: Family,
    vips: &[IpAddr],
) -> Result<IpAddr> {
    // An IPv6 link-local address may still be tentative right after the link came up.
    let mut last = None;
    for _ in 0..50 {
        match nl.primary_address(ifindex, family, vips).await {
            Ok(a) => return Ok(a),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow!("no address")))
}

fn vip_spec(v: &config::VirtualAddress) -> VipSpec {
    let mut s = VipSpec::new(v.addr, v.prefix_len);
    s.label = v.label.clone();
    s.broadcast = v.broadcast;
    s.scope = v.scope;
    // keepalived adds every IPv6 VIP with IFA_F_NODAD so it is never tentative.
    s.nodad = v.addr.is_ipv6() || v.nodad;
    s
}

/// The state machine's view of a keepalived instance.
fn vr_config(cfg: &Config, inst: &config::Instance, primary: IpAddr) -> VrConfig {
    let addresses: Vec<IpAddr> = inst.vips.iter().map(|v| v.addr).collect();
    let mut c = VrConfig::keepalived_defaults(inst.vrid, inst.family, primary, addresses);
    c.version = inst.version;
    c.priority = inst.priority;
    c.interval = inst.advert_int;
    c.preempt = inst.preempt;
    c.preempt_delay = inst.preempt_delay;
    c.accept = inst.accept;
    c.auth = inst.auth;
    c.initial = match inst.state {
        config::InitialState::Master => vr::InitialState::Master,
        config::InitialState::Backup => vr::InitialState::Backup,
    };
    c.unicast_peers = inst.unicast_peers.iter().map(|p| p.addr).collect();
    c.peer_ttl = inst
        .unicast_peers
        .iter()
        .filter(|p| p.ttl_given)
        .map(|p| {
            let r = vr::TtlRange {
                min: p.min_ttl,
                max: p.max_ttl,
            };
            (p.addr, r)
        })
        .collect();
    c.check_unicast_src = cfg.global.check_unicast_src || inst.check_unicast_src;
    c.v2_interop = inst.v2_interop;
    c.garp_master_delay = inst.garp.master_delay;
    c.first_address_link_local = inst.strict;
    c.garp_master_refresh =
        (!inst.garp.master_refresh.is_zero()).then_some(inst.garp.master_refresh);
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(text: &str) -> VrConfig {
        let l = config::parse_str(text, "t.conf").unwrap_or_else(|e| panic!("{e}"));
        let src: IpAddr = "192.0.2.1".parse().unwrap_or_else(|_| unreachable!());
        vr_config(&l.config, &l.config.instances[0], src)
    }

    /// Only peers with `min_ttl`/`max_ttl` carry a range; they turn on the source check, as
    /// `check_unicast_src` in the instance and the global `vrrp_check_unicast_src` do.
    #[test]
    fn peer_ttl_ranges_and_the_unicast_source_check() {
        const HEAD: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n \
                            virtual_ipaddress { 192.0.2.3 }\n";
        let near: IpAddr = "198.51.100.2".parse().unwrap_or_else(|_| unreachable!());
        let c = first(&format!(
            "{HEAD} unicast_peer {{\n  198.51.100.2 min_ttl 255\n  198.51.100.3\n }}\n}}\n"
        ));
        assert_eq!(c.peer_ttl, [(near, vr::TtlRange { min: 255, max: 255 })]);
        assert!(c.check_unicast_src);
        let plain = " unicast_peer {\n  198.51.100.2\n }\n";
        let c = first(&format!("{HEAD}{plain}}}\n"));
        assert!(c.peer_ttl.is_empty() && !c.check_unicast_src);
        assert!(first(&format!("{HEAD}{plain} check_unicast_src\n}}\n")).check_unicast_src);
        let global = format!("global_defs {{\n vrrp_check_unicast_src\n}}\n{HEAD}{plain}}}\n");
        assert!(first(&global).check_unicast_src);
    }
}
