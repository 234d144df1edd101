//! RFC 9568 §6.4.3 Master (RFC 3768 §6.4.3): taking over, adverts received, the Adver_Timer.

use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Instant;

use super::receive::addr_cmp;
use super::timers::later;
use super::{
    Advert, AnnounceKind, Cause, MasterInfo, Output, Priority, Reason, State, Version,
    VirtualRouter,
};

/// The least time between two gratuitous ARP / NA bursts for losing adverts (local policy:
/// keepalived sends one per advert).
pub const LOWER_PRIO_ANNOUNCE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl VirtualRouter {
    /// RFC 9568 §6.4.2 (Master_Down_Timer fires) / §6.4.1 (owner): send an advert, announce,
    /// start the Adver_Timer. Make-before-break: XDP answers for the VIPs *before* our first
    /// advert leaves, because that advert is what makes a resigning master (a handover, a
    /// SIGTERM) stop answering; answering only after it left the client without an answer
    /// until our XDP map was written. Then, from keepalived `vrrp_state_master_tx`, the advert
    /// before the addresses and our gratuitous ARPs, so the old master drops them first.
    pub(super) fn become_master(&mut self, now: Instant, reason: Reason) {
        // keepalived `vrrp_state_become_master`: back to our own interval.
        self.master_adver_int = self.cfg.interval;
        self.transition(now, State::Master, reason);
        self.counters.became_master += 1;
        self.emit(Output::SetXdpOwnership(true));
        self.send_advert(self.effective);
        self.emit(Output::InstallVips);
        self.emit(Output::Announce {
            kind: AnnounceKind::BecomeMaster,
        });
        self.deadline = Some(later(now, self.cfg.interval.as_duration()));
        self.garp_at =
            (!self.cfg.garp_master_delay.is_zero()).then(|| later(now, self.cfg.garp_master_delay));
        self.garp_refresh_at = self
            .cfg
            .garp_master_refresh
            .filter(|d| !d.is_zero())
            .map(|d| later(now, self.cfg.garp_master_delay + d));
        self.master = None;
        self.preempt_at = None;
        self.sync_held = false;
        self.yielded_to = None;
        // keepalived `vrrp_sync_master` sets the group state MASTER.
        self.group_master = true;
    }

    /// Undo `become_master`'s effects on the host, in reverse order.
    pub(super) fn release_master(&mut self) {
        self.counters.released_master += 1;
        self.emit(Output::RemoveVips);
        self.emit(Output::SetXdpOwnership(false));
        self.garp_at = None;
        self.garp_refresh_at = None;
    }

    /// RFC 9568 §6.4.3 (Master, ADVERTISEMENT received); keepalived `vrrp_state_master_rx`.
    pub(super) fn master_rx(&mut self, now: Instant, src: IpAddr, adv: &Advert) {
        let ours = self.effective;
        let theirs = adv.priority;
        let src_higher = addr_cmp(src, self.cfg.primary) == Some(Ordering::Greater);
        if let Some(exit) = self.resign {
            if theirs != Priority::RELEASE {
                self.handed_over(now, src, adv, exit);
            }
            return;
        }
        if theirs == Priority::RELEASE {
            // RFC 9568 §6.4.3: priority 0 → send an advert, reset the Adver_Timer.
            self.send_advert(ours);
            self.deadline = Some(later(now, self.cfg.interval.as_duration()));
            return;
        }
        // RFC 9568 §6.4.3: higher priority, or equal priority and a higher primary address.
        let better = theirs > ours || (theirs == ours && src_higher);
        if better {
            if self.cfg.higher_prio_send_advert {
                self.send_advert(ours);
            }
            // RFC 9568 §6.4.3: Master_Adver_Interval := the advert's (not 0, as in backup_rx).
            if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
                self.master_adver_int = adv.interval;
            }
            self.transition(
                now,
                State::Backup,
                Reason::HigherPriority {
                    src,
                    priority: theirs,
                },
            );
            self.release_master();
            self.preempt_at = None;
            // keepalived TSM MASTER → BACKUP: `vrrp_sync_backup` sets the group state BACKUP.
            self.group_master = false;
            let wait = self.master_down_interval();
            self.arm_master_down(now, wait, Cause::NoResponse);
            self.master = Some(MasterInfo {
                addr: src,
                priority: theirs,
                interval: adv.interval,
            });
        } else {
            // RFC 9568 §6.4.3 says discard. keepalived (default, non-strict) re-advertises at
            // once to force a new election and re-sends gratuitous ARPs, because a lower
            // priority master has probably been announcing the addresses (split brain).
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(ours);
                self.deadline = Some(later(now, self.cfg.interval.as_duration()));
            }
            // One burst per LOWER_PRIO_ANNOUNCE_EVERY at most: a stream (or flood) of losing
            // adverts must not become a stream of gratuitous ARP bursts.
            let due = self.lower_prio_announced.is_none_or(|t| {
                now.saturating_duration_since(t)
                    >= LOWER_PRIO_ANNOUNCE_EVERY.max(self.cfg.interval.as_duration())
            });
            if self.cfg.garp_lower_prio && due {
                self.lower_prio_announced = Some(now);
                self.emit(Output::Announce {
                    kind: AnnounceKind::LowerPriority,
                });
            }
            self.emit(Output::MasterRxLowerPriority {
                src,
                priority: theirs,
            });
        }
    }

    /// A `Timeout` in Master: RFC 9568 §6.4.3 Adver_Timer; keepalived's delayed and periodic
    /// announces.
    pub(super) fn master_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| d <= now) {
            // RFC 9568 §6.4.3: Adver_Timer fires → send, reset to Advertisement_Interval.
            self.send_advert(self.effective);
            self.deadline = Some(later(now, self.cfg.interval.as_duration()));
        }
        if self.garp_at.is_some_and(|d| d <= now) {
            self.garp_at = None;
            self.emit(Output::Announce {
                kind: AnnounceKind::Delayed,
            });
        }
        if let Some(refresh) = self.cfg.garp_master_refresh
            && self.garp_refresh_at.is_some_and(|d| d <= now)
        {
            self.garp_refresh_at = Some(later(now, refresh));
            self.emit(Output::Announce {
                kind: AnnounceKind::Refresh,
            });
        }
    }
}
