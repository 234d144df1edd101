//! Carrying out the node's actions: sockets, netlink, the XDP maps, the guardian, scripts.
//! Every failure is logged (rate-limited where it can repeat per advert) and counted.

use std::collections::BTreeMap;
use std::time::Instant;

use tracing::{debug, error, info, warn};

use super::{Driver, now};
use crate::io::announce;
use crate::io::kfilter;
use crate::io::xdp;
use crate::notify::{Hook, NotifyEvent, NotifyKind, NotifyState};
use crate::proto::node::{Action, Announce, DpOp, HookKind, InstanceId, SlotKey};
use crate::proto::{MacDisplay, Priority};
use crate::wake;

/// What the driver counts about its own I/O, for the status.
#[derive(Debug, Default)]
pub struct IoStats {
    /// Per instance and heartbeat path: (adverts sent, send errors, failing now).
    pub heartbeat: BTreeMap<(InstanceId, usize), (u64, u64, bool)>,
    /// Failed writes of the dead-man stamp (answers stop if it goes stale).
    pub liveness: Throttle,
    /// Failed advert sends.
    pub send: Throttle,
    /// Times the kernel ARP/NA filter was found removed and put back.
    pub filter_restored: u64,
}

/// An error that can repeat every advert: every one is counted, one in [`LOG_EVERY`] logged.
#[derive(Debug, Default)]
pub struct Throttle {
    pub count: u64,
    logged: Option<Instant>,
}

/// One log line per this long for an error that can repeat every advert.
const LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Throttle {
    /// Counts one failure at `t`; whether to log it.
    pub fn failed(&mut self, t: Instant) -> bool {
        self.count += 1;
        if self
            .logged
            .is_none_or(|l| t.saturating_duration_since(l) >= LOG_EVERY)
        {
            self.logged = Some(t);
            return true;
        }
        false
    }
}

impl Driver {
    /// Performs every action the node has queued, in order.
    pub(super) async fn drain(&mut self) {
        while let Some(a) = self.node.poll_action() {
            self.perform(a).await;
        }
    }

    async fn perform(&mut self, a: Action) {
        match a {
            Action::SendAdvert { id, priority } => self.send_advert(id, priority).await,
            Action::RefreshLiveness { ifindex, bound } => {
                if let Some(dp) = self.res.dataplane(ifindex)
                    && let Err(e) = dp.refresh_liveness(bound)
                    && self.io.liveness.failed(now())
                {
                    error!(ifindex, error = %e, failures = self.io.liveness.count, "cannot refresh the XDP liveness stamp: the dead-man gate will silence ARP/ND answers for our VIPs");
                }
            }
            Action::Watch {
                id,
                key,
                master_down,
                master,
                backup,
            } => {
                let cover = self.watch(key, master_down, master, backup);
                self.node
                    .handle(now(), crate::proto::node::NodeInput::Cover { id, cover });
            }
            Action::ForgetAdvert { key } => {
                if let Some(dp) = self.res.dataplane(key.0)
                    && let Err(e) = dp.forget_advert(key.1, key.2)
                {
                    warn!(vrid = key.2, error = %e, "cannot reset the XDP advert state");
                }
            }
            Action::Dataplane(op) => self.dataplane_op(op),
            Action::Announce(a) => self.announce(a),
            Action::InstallVips { id, vips } => {
                for v in &vips {
                    if let Err(e) = self.netlink.add_address(v.ifindex, &v.spec).await {
                        error!(instance = %self.id_name(id), vip = %v.spec.addr, error = %e, "cannot bind VIP");
                    }
                }
            }
            Action::RemoveVips { id, vips } => {
                for v in &vips {
                    // Also stale VIPs at start-up, which are usually not there: no error then.
                    if let Err(e) = self.netlink.del_address(v.ifindex, &v.spec).await {
                        debug!(instance = %self.id_name(id), vip = %v.spec.addr, error = %e, "VIP not unbound");
                    }
                }
            }
            Action::VmacFilter { ifindex, mac, add } => {
                let r = if add {
                    self.netlink.fdb_add_self(ifindex, mac).await
                } else {
                    self.netlink.fdb_del_self(ifindex, mac).await
                };
                if let Err(e) = r {
                    warn!(ifindex, mac = %MacDisplay(mac), error = %e, "virtual MAC filter");
                }
            }
            Action::ArpAnnounce { iface } => vmac_arp_announce(&iface),
            Action::KernelFilter(vips) => self.kernel_filter(vips).await,
            Action::GuardianArm(armed) => {
                if let Some(g) = self.guardian.as_mut()
                    && let Err(e) = g.arm(armed)
                {
                    warn!("{e}: a killed agent's VIPs move after the master-down interval instead");
                    self.guardian = None;
                }
            }
            Action::GuardianDisarm(key) => {
                if let Some(g) = self.guardian.as_mut()
                    && let Err(e) = g.disarm(&key)
                {
                    warn!("{e}");
                    self.guardian = None;
                }
            }
            Action::Notify(n) => {
                if let (Some(notifier), Some(state)) =
                    (&self.notifier, NotifyState::from_state(n.state))
                {
                    notifier.notify(NotifyEvent {
                        kind: if n.group {
                            NotifyKind::Group
                        } else {
                            NotifyKind::Instance
                        },
                        name: n.name,
                        state,
                        priority: n.priority,
                    });
                }
            }
            Action::Hook {
                instance,
                hook,
                args,
            } => {
                if let Some(n) = &self.notifier {
                    let hook = match hook {
                        HookKind::MasterRxLowerPriority => Hook::MasterRxLowerPriority,
                        HookKind::SplitBrain => Hook::SplitBrain,
                        HookKind::Fence => Hook::Fence,
                    };
                    if n.hook(&instance, hook, args) && hook == Hook::Fence {
                        warn!(%instance, "split brain: fence hook started");
                    }
                }
            }
            Action::Publish => self.publish(),
        }
    }

    async fn send_advert(&mut self, id: InstanceId, priority: Priority) {
        let Some(out) = self.node.adverts(id, priority) else {
            return;
        };
        let (ifindex, src, from_vmac, ttl) = (out.ifindex, out.src, out.from_vmac, out.ttl);
        let sock = self.res.socks.get(&(ifindex, src)).map(|s| s.sock.clone());
        let announcer = self
            .res
            .ifaces
            .get(&ifindex)
            .and_then(|i| i.announcer.clone());
        let mut failed = None;
        for (dst, buf) in out.adverts {
            // use_vmac: only a whole frame on the packet socket can carry the virtual MAC.
            if let (Some(mac), Some(a)) = (from_vmac, announcer.as_ref())
                && let Some(frame) = announce::vrrp_multicast_frame(mac, src, *dst, buf)
            {
                if let Err(e) = a.send_frame(&frame).await {
                    failed = Some((*dst, e.to_string()));
                }
                continue;
            }
            if let Some(s) = &sock
                && let Err(e) = s.send(*dst, buf, ttl).await
            {
                failed = Some((*dst, e.to_string()));
            }
        }
        if let Some((dst, e)) = failed
            && self.io.send.failed(now())
        {
            warn!(instance = %self.id_name(id), %dst, error = %e, failures = self.io.send.count, "cannot send advert");
        }
        if self
            .node
            .instance(id)
            .is_some_and(|i| !i.spec.heartbeats.is_empty())
        {
            self.send_heartbeats(id, priority).await;
        }
    }

    async fn send_heartbeats(&mut self, id: InstanceId, priority: Priority) {
        let name = self.id_name(id);
        for (path, ifindex, src, msgs) in self.node.heartbeat_adverts(id, priority) {
            let Some(sock) = self.res.socks.get(&(ifindex, src)).map(|s| s.sock.clone()) else {
                continue;
            };
            let st = self.io.heartbeat.entry((id, path)).or_default();
            for (dst, buf) in msgs {
                // Heartbeat paths are links: held to 255 both ways.
                match sock.send(dst, &buf, vrrp_common::wire::VRRP_TTL).await {
                    Ok(()) => {
                        st.0 += 1;
                        if st.2 {
                            info!(instance = %name, ifindex, "heartbeat path sends again");
                            st.2 = false;
                        }
                    }
                    Err(e) => {
                        st.1 += 1;
                        if !st.2 {
                            warn!(instance = %name, ifindex, %dst, error = %e, "cannot send on the heartbeat path (warned once until it works again)");
                            st.2 = true;
                        }
                    }
                }
            }
        }
    }

    /// Keeps the data plane's master-silence timer at `master_down`, and reads whether the
    /// driver may sleep on it (only while the slot's sender is our master: a lower-priority
    /// sender takes the slot once the master is silent).
    fn watch(
        &mut self,
        key: SlotKey,
        master_down: Option<std::time::Duration>,
        master: Option<std::net::IpAddr>,
        backup: bool,
    ) -> Option<wake::Cover> {
        let (ifindex, ipv6, vrid) = key;
        let dp = self.res.ifaces.get_mut(&ifindex)?.dataplane.as_mut()?;
        let want = xdp::master_down_ns(master_down);
        let written = self.watch.get(&key).copied().unwrap_or((0, 0));
        if want != written.0 {
            match dp
                .set_master_down(ipv6, vrid, master_down)
                .and_then(|()| xdp::monotonic_ns())
            {
                Ok(at) => {
                    self.watch.insert(key, (want, at));
                }
                Err(e) => {
                    warn!(vrid, error = %e, "cannot set the kernel master-silence timer");
                }
            }
        }
        let (written_ns, written_at_ns) = self.watch.get(&key).copied().unwrap_or((0, 0));
        if !backup || written_ns == 0 {
            return None;
        }
        let follows = matches!(dp.advert_state(ipv6, vrid), Ok(Some(st)) if Some(addr_of(&st, ipv6)) == master);
        if !follows {
            return None;
        }
        let (Ok(silence), Ok(now_ns)) = (dp.silence(ipv6, vrid), xdp::monotonic_ns()) else {
            return None;
        };
        let kernel = wake::Kernel {
            written_ns,
            written_at_ns,
            started_ns: silence.started_ns,
            interval_ns: silence.interval_ns,
            now_ns,
        };
        // Half a tick beyond the backstop: the housekeeping tick before it takes it (one
        // wake-up a second in steady state, not two).
        let backstop = wake::backstop(master_down?) + super::TICK / 2;
        wake::Cover::new(&kernel, now(), backstop, |ns| {
            xdp::instant_of_mono_ns(ns).ok()
        })
    }

    fn dataplane_op(&mut self, op: DpOp) {
        match op {
            DpOp::SetSlot {
                ifindex,
                ipv6,
                vrid,
                slot,
            } => {
                let mut cfg = slot.cfg;
                // The master-silence timer is the driver's: a slot write keeps it.
                cfg.master_down_ns = self.watch.get(&(ifindex, ipv6, vrid)).map_or(0, |w| w.0);
                let Some(dp) = self.res.dataplane(ifindex) else {
                    return;
                };
                if let Err(e) = dp
                    .set_peers(ipv6, vrid, &slot.peers)
                    .and_then(|()| dp.set_vrid(ipv6, vrid, cfg))
                {
                    error!(ifindex, vrid, error = %e, "cannot configure the XDP program's VRID");
                }
            }
            DpOp::Own {
                ifindex,
                vip,
                vrid,
                mac,
            } => {
                let Some(dp) = self.res.dataplane(ifindex) else {
                    return;
                };
                if let Err(e) = dp.own_vip(vip, vrid, mac, announce::NA_ROUTER) {
                    warn!(%vip, error = %e, "XDP responder update failed");
                }
            }
            DpOp::Disown { ifindex, vip } => {
                if let Some(dp) = self.res.dataplane(ifindex)
                    && let Err(e) = dp.disown_vip(vip)
                {
                    warn!(%vip, error = %e, "XDP responder update failed");
                }
            }
        }
    }

    /// Brings the kernel ARP/NA filter in line with the VIPs XDP answers for. Also clears a
    /// filter a crashed run left, when there is nothing to filter now.
    async fn kernel_filter(&mut self, want: Vec<std::net::IpAddr>) {
        let r = if want.is_empty() {
            kfilter::clear().await
        } else {
            kfilter::install(&want).await
        };
        match r {
            Ok(()) => {
                self.kfilter = (!want.is_empty()).then(|| want.clone());
                if !want.is_empty() {
                    info!(
                        vips = want.len(),
                        table = kfilter::TABLE,
                        "kernel ARP/NA replies for the VIPs dropped (XDP answers them; a crash leaves no answerer)"
                    );
                }
            }
            Err(e) if want.is_empty() => debug!(error = %e, "no kernel filter to clear"),
            Err(e) => {
                warn!(error = %e, "cannot keep the kernel from answering ARP/NA for the VIPs: if this agent is killed while MASTER, the kernel answers for the VIPs it leaves bound until the next start");
                self.node.kernel_filter_failed();
            }
        }
    }

    /// Gratuitous ARP / unsolicited NA, in a task so repeats and their spacing never hold up
    /// the election.
    fn announce(&self, a: Announce) {
        let Some(iface) = self.res.ifaces.get(&a.ifindex) else {
            return;
        };
        let Some(announcer) = iface.announcer.clone() else {
            return;
        };
        let frames = announce::announcement_frames(a.mac, &a.vips);
        tokio::spawn(async move {
            for round in 0..a.repeat {
                for f in &frames {
                    if let Err(e) = announcer.send_frame(f).await {
                        warn!(instance = %a.instance, error = %e, "cannot send gratuitous ARP / NA");
                    }
                    if !a.gap.is_zero() {
                        tokio::time::sleep(a.gap).await;
                    }
                }
                debug!(instance = %a.instance, round, kind = ?a.kind, "announced VIPs");
            }
        });
    }
}

/// The sender of a data plane advert record.
fn addr_of(st: &vrrp_common::maps::AdvertState, ipv6: bool) -> std::net::IpAddr {
    crate::proto::node::advert_source(st, ipv6)
}

/// With `use_vmac` the kernel must not send ARP requests from a VIP with the interface MAC
/// (clients would learn that MAC for the VIP): `arp_announce = 2` picks the interface's own
/// address as the sender, as keepalived's VMAC setup recommends.
fn vmac_arp_announce(iface: &str) {
    let path = format!("/proc/sys/net/ipv4/conf/{iface}/arp_announce");
    let now = std::fs::read_to_string(&path).unwrap_or_default();
    if now.trim().parse::<u8>().is_ok_and(|v| v >= 2) {
        return;
    }
    match std::fs::write(&path, "2") {
        Ok(()) => {
            info!(%iface, "use_vmac: net.ipv4.conf.{iface}.arp_announce set to 2 (ARP requests never come from a VIP)")
        }
        Err(e) => {
            warn!(%iface, error = %e, "use_vmac: cannot set arp_announce = 2: clients may learn the interface MAC for a VIP")
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    use crate::proto::clock::test_epoch as clock;

    /// issue 13: a failed liveness write was dropped with `let _`: the dead-man gate then
    /// silenced ARP replies with no log line. Every failure is counted now, and logged once
    /// per five seconds.
    #[test]
    fn every_failure_is_counted_and_logged_once_per_interval() {
        let t0 = clock();
        let mut t = Throttle::default();
        assert!(t.failed(t0));
        assert!(!t.failed(t0 + Duration::from_secs(1)));
        assert!(!t.failed(t0 + Duration::from_secs(4)));
        assert!(t.failed(t0 + Duration::from_secs(5)));
        assert_eq!(t.count, 4);
    }
}
