//! Local policy, not RFC: a new configuration applied in place (`Input::Config`, on reload).

use std::time::Instant;

use super::receive::same_set;
use super::timers::later;
use super::{AnnounceKind, ConfigError, Output, Priority, State, Version, VirtualRouter, VrConfig};

impl VirtualRouter {
    pub(super) fn reconfigure(&mut self, now: Instant, mut cfg: VrConfig) {
        if let Err(error) = cfg.validate() {
            self.emit(Output::ConfigRejected { error });
            return;
        }
        if cfg.vrid != self.cfg.vrid
            || cfg.version != self.cfg.version
            || cfg.family != self.cfg.family
        {
            self.emit(Output::ConfigRejected {
                error: ConfigError::IdentityChanged,
            });
            return;
        }
        cfg.normalize();
        // Keep the tracking offset (effective - base) across a base priority change.
        let delta = if self.cfg.is_owner() {
            0
        } else {
            i16::from(self.effective.get()) - i16::from(self.cfg.priority.get())
        };
        let addresses_changed = !same_set(&cfg.addresses, &self.cfg.addresses);
        let interval = cfg.interval;
        let new_base = cfg.priority;
        self.cfg = cfg;
        let target = if self.cfg.is_owner() {
            Priority::OWNER
        } else {
            Priority((i16::from(new_base.get()) + delta).clamp(1, 254) as u8)
        };
        if target != self.effective {
            if self.cfg.is_owner() {
                let from = self.effective;
                self.effective = target;
                self.emit(Output::PriorityChanged { from, to: target });
            } else {
                self.set_effective(target);
            }
        }
        match self.state {
            State::Master => {
                self.master_adver_int = interval;
                if addresses_changed {
                    self.emit(Output::RemoveVips);
                    self.emit(Output::InstallVips);
                    self.emit(Output::Announce {
                        kind: AnnounceKind::BecomeMaster,
                    });
                }
                let next = later(now, interval.as_duration());
                self.deadline = Some(self.deadline.map_or(next, |d| d.min(next)));
            }
            State::Backup => {
                if self.cfg.version == Version::V2 {
                    self.master_adver_int = interval;
                }
            }
            State::Initialize | State::Fault | State::Stopped => {
                self.master_adver_int = interval;
            }
        }
    }
}
