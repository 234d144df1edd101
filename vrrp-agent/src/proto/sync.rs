//! keepalived's `vrrp_sync_group`: instances that move together (keepalived `vrrp_sync.c`).
//!
//! Pure and stateless: [`SyncGroups`] turns what one member did into the [`Input`]s for the
//! other members; each [`VirtualRouter`](super::vr::VirtualRouter) keeps what it was told (which
//! members are at fault, whether the group is MASTER, which members want MASTER).
//!
//! The driver, for every input it feeds to a member `m` (including the ones returned here):
//! 1. `let before = vr.sync_status();`, then `vr.handle(now, input)`;
//! 2. for each `Output::Transition { from, to, reason }`: queue
//!    [`SyncGroups::on_transition`]`(m, from, to, &reason)` (or use [`SyncGroups::on_output`]);
//! 3. queue [`SyncGroups::on_status`]`(m, before, vr.sync_status())`;
//! 4. feed the queued `(member, input)` pairs the same way until the queue is empty.
//!
//! At setup (before `Startup`) and after a reload, feed each member [`SyncGroups::join`].
//!
//! Convergence: transitions caused by a sync input (`Reason::SyncGroup`) are not propagated,
//! as keepalived's `vrrp_sync_*` move the other members directly without running their TSM
//! handlers; and sync inputs never change a member's own fault, only (once) its
//! `wants_master`, whose `SyncWantMaster` produces nothing further.
//!
//! Deliberate differences from keepalived: `vrrp_sync_master` moves the other members in list
//! order and can leave one of three or more held in BACKUP (its `can_goto_master` sees a later
//! member not yet wanting MASTER); here every Backup member follows. Group tracking scripts
//! (`track_script` on the group, `sgroup_tracking_weight`) belong to the tracking layer.

use std::collections::HashMap;

use serde::Serialize;

use super::vr::{Input, Output, Reason, State, SyncStatus};

/// A configuration problem keepalived reports and ignores (`vrrp_sync_set_group`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum SyncWarning {
    /// "Virtual router %s cannot exist in more than one sync group; ignoring %s".
    InSeveralGroups {
        member: String,
        kept: String,
        ignored: String,
    },
    /// "no matching virtual router found in group declaration - removing".
    Empty { group: String },
    /// "has only 1 virtual router(s) - this probably isn't what you want".
    SingleMember { group: String, member: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Group {
    name: String,
    members: Vec<String>,
}

/// The sync groups of one daemon.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncGroups {
    groups: Vec<Group>,
    /// Member name → index in `groups`.
    by_member: HashMap<String, usize>,
    warnings: Vec<SyncWarning>,
}

impl SyncGroups {
    /// Groups as `(name, member instance names)`. Like keepalived `vrrp_sync_set_group`, a
    /// member already in an earlier group (or twice in one) is ignored, and a group left
    /// empty is dropped; see [`SyncGroups::warnings`].
    pub fn new<G, M, I>(groups: I) -> Self
    where
        I: IntoIterator<Item = (G, M)>,
        G: Into<String>,
        M: IntoIterator,
        M::Item: Into<String>,
    {
        let mut out = Self::default();
        for (name, members) in groups {
            let name = name.into();
            let idx = out.groups.len();
            let mut kept = Vec::new();
            for m in members {
                let m: String = m.into();
                if let Some(&other) = out.by_member.get(&m) {
                    let prior = if other == idx {
                        name.clone()
                    } else {
                        out.groups[other].name.clone()
                    };
                    out.warnings.push(SyncWarning::InSeveralGroups {
                        member: m,
                        kept: prior,
                        ignored: name.clone(),
                    });
                    continue;
                }
                out.by_member.insert(m.clone(), idx);
                kept.push(m);
            }
            match kept.len() {
                0 => {
                    out.warnings.push(SyncWarning::Empty { group: name });
                    continue;
                }
                1 => out.warnings.push(SyncWarning::SingleMember {
                    group: name.clone(),
                    member: kept[0].clone(),
                }),
                _ => {}
            }
            out.groups.push(Group {
                name,
                members: kept,
            });
        }
        out
    }

    pub fn warnings(&self) -> &[SyncWarning] {
        &self.warnings
    }

    /// The group `member` belongs to.
    pub fn group_of(&self, member: &str) -> Option<&str> {
        self.group(member).map(|g| g.name.as_str())
    }

    /// The groups as `(name, members)`.
    pub fn groups(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.groups
            .iter()
            .map(|g| (g.name.as_str(), g.members.as_slice()))
    }

    fn group(&self, member: &str) -> Option<&Group> {
        self.by_member.get(member).map(|&i| &self.groups[i])
    }

    /// `Input::SyncJoin` for `member`, or `None` if it is in no group.
    pub fn join(&self, member: &str) -> Option<Input> {
        let g = self.group(member)?;
        Some(Input::SyncJoin {
            group: g.name.clone(),
            peers: others(g, member).map(str::to_string).collect(),
        })
    }

    /// The inputs for the other members after `member` went `from` → `to` for `reason`
    /// (keepalived's `VRRP_TSM` table, `vrrp_scheduler.c`):
    /// - BACKUP/FAULT/INIT → MASTER: `vrrp_sync_master` → `Input::SyncMaster`;
    /// - MASTER → BACKUP: `vrrp_sync_backup` → `Input::SyncBackup`.
    ///
    /// Nothing for a transition caused by the group itself (`Reason::SyncGroup`), nor for
    /// FAULT: that follows the member's own fault causes ([`SyncGroups::on_status`]).
    pub fn on_transition(
        &self,
        member: &str,
        from: State,
        to: State,
        reason: &Reason,
    ) -> Vec<(String, Input)> {
        let Some(g) = self.group(member) else {
            return Vec::new();
        };
        if matches!(reason, Reason::SyncGroup { .. }) || from == to {
            return Vec::new();
        }
        let make: fn(String, String) -> Input = match (from, to) {
            (_, State::Master) => |group, member| Input::SyncMaster { group, member },
            (State::Master, State::Backup) => |group, member| Input::SyncBackup { group, member },
            _ => return Vec::new(),
        };
        others(g, member)
            .map(|o| (o.to_string(), make(g.name.clone(), member.to_string())))
            .collect()
    }

    /// [`SyncGroups::on_transition`] for an `Output::Transition`; nothing for other outputs.
    pub fn on_output(&self, member: &str, out: &Output) -> Vec<(String, Input)> {
        match out {
            Output::Transition { from, to, reason } => {
                self.on_transition(member, *from, *to, reason)
            }
            _ => Vec::new(),
        }
    }

    /// The inputs for the other members after `member`'s [`SyncStatus`] went `before` →
    /// `after`: its own fault (keepalived `down_instance` → `vrrp_sync_fault`,
    /// `try_up_instance` → `vrrp_sync_backup`) as `Input::SyncFault`, then whether it is held
    /// wanting MASTER (read by `vrrp_sync_can_goto_master`) as `Input::SyncWantMaster`.
    /// Nothing when unchanged.
    pub fn on_status(
        &self,
        member: &str,
        before: SyncStatus,
        after: SyncStatus,
    ) -> Vec<(String, Input)> {
        let Some(g) = self.group(member) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for o in others(g, member) {
            if before.fault != after.fault {
                out.push((
                    o.to_string(),
                    Input::SyncFault {
                        group: g.name.clone(),
                        member: member.to_string(),
                        fault: after.fault,
                    },
                ));
            }
            if before.wants_master != after.wants_master {
                out.push((
                    o.to_string(),
                    Input::SyncWantMaster {
                        group: g.name.clone(),
                        member: member.to_string(),
                        want: after.wants_master,
                    },
                ));
            }
        }
        out
    }
}

fn others<'a>(g: &'a Group, member: &'a str) -> impl Iterator<Item = &'a str> {
    g.members
        .iter()
        .map(String::as_str)
        .filter(move |m| *m != member)
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::proto::vr::SyncEvent;

    fn groups() -> SyncGroups {
        SyncGroups::new([("G", vec!["VI_1", "VI_2", "VI_3"]), ("H", vec!["VI_9"])])
    }

    fn by_sync(member: &str, event: SyncEvent) -> Reason {
        Reason::SyncGroup {
            group: "G".into(),
            member: member.into(),
            event,
        }
    }

    #[test]
    fn warnings_as_vrrp_sync_set_group() {
        let g = SyncGroups::new([("A", vec!["x", "y", "x"]), ("B", vec!["y"]), ("C", vec![])]);
        assert_eq!(
            g.warnings(),
            &[
                SyncWarning::InSeveralGroups {
                    member: "x".into(),
                    kept: "A".into(),
                    ignored: "A".into(),
                },
                SyncWarning::InSeveralGroups {
                    member: "y".into(),
                    kept: "A".into(),
                    ignored: "B".into(),
                },
                SyncWarning::Empty { group: "B".into() },
                SyncWarning::Empty { group: "C".into() },
            ]
        );
        assert_eq!(g.groups().count(), 1);
        assert_eq!(g.group_of("y"), Some("A"));
        assert!(matches!(
            groups().warnings(),
            [SyncWarning::SingleMember { .. }]
        ));
    }

    #[test]
    fn join_lists_the_other_members() {
        assert_eq!(
            groups().join("VI_2"),
            Some(Input::SyncJoin {
                group: "G".into(),
                peers: vec!["VI_1".into(), "VI_3".into()],
            })
        );
        assert_eq!(groups().join("nobody"), None);
    }

    #[test]
    fn master_and_backup_transitions_reach_the_others() {
        let g = groups();
        let out = g.on_transition("VI_1", State::Backup, State::Master, &Reason::Startup);
        let master = |m: &str| Input::SyncMaster {
            group: "G".into(),
            member: m.into(),
        };
        assert_eq!(
            out,
            vec![
                ("VI_2".to_string(), master("VI_1")),
                ("VI_3".to_string(), master("VI_1")),
            ]
        );
        // From FAULT (try_up_instance → vrrp_sync_master) too.
        assert_eq!(
            g.on_transition("VI_3", State::Fault, State::Master, &Reason::LinkUp)
                .len(),
            2
        );
        let src = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let higher = Reason::HigherPriority {
            src,
            priority: crate::proto::Priority(200),
        };
        assert_eq!(
            g.on_transition("VI_2", State::Master, State::Backup, &higher),
            vec![
                (
                    "VI_1".to_string(),
                    Input::SyncBackup {
                        group: "G".into(),
                        member: "VI_2".into()
                    }
                ),
                (
                    "VI_3".to_string(),
                    Input::SyncBackup {
                        group: "G".into(),
                        member: "VI_2".into()
                    }
                ),
            ]
        );
    }

    #[test]
    fn nothing_for_fault_startup_or_ungrouped() {
        let g = groups();
        for (from, to, r) in [
            (State::Master, State::Fault, Reason::LinkDown),
            (State::Fault, State::Backup, Reason::LinkUp),
            (State::Initialize, State::Backup, Reason::Startup),
            (State::Master, State::Stopped, Reason::Shutdown),
        ] {
            assert_eq!(g.on_transition("VI_1", from, to, &r), vec![]);
        }
        let after = Duration::from_secs(1);
        let r = Reason::MasterDown { after };
        assert_eq!(
            g.on_transition("VI_7", State::Backup, State::Master, &r),
            vec![]
        );
        // A group of one has nobody to tell.
        assert_eq!(
            g.on_transition("VI_9", State::Backup, State::Master, &r),
            vec![]
        );
    }

    #[test]
    fn transitions_caused_by_the_group_do_not_echo() {
        let g = groups();
        for e in [
            SyncEvent::Master,
            SyncEvent::Backup,
            SyncEvent::Fault,
            SyncEvent::Recovered,
        ] {
            for (from, to) in [
                (State::Backup, State::Master),
                (State::Master, State::Backup),
                (State::Fault, State::Master),
            ] {
                assert_eq!(
                    g.on_transition("VI_2", from, to, &by_sync("VI_1", e)),
                    vec![]
                );
            }
        }
        let out = Output::Transition {
            from: State::Backup,
            to: State::Master,
            reason: by_sync("VI_1", SyncEvent::Master),
        };
        assert_eq!(g.on_output("VI_2", &out), vec![]);
        assert_eq!(g.on_output("VI_2", &Output::InstallVips), vec![]);
    }

    #[test]
    fn status_changes_only() {
        let g = groups();
        let ok = SyncStatus::default();
        let faulted = SyncStatus {
            fault: true,
            wants_master: false,
        };
        let wants = SyncStatus {
            fault: false,
            wants_master: true,
        };
        assert_eq!(g.on_status("VI_1", ok, ok), vec![]);
        assert_eq!(g.on_status("VI_1", faulted, faulted), vec![]);
        assert_eq!(
            g.on_status("VI_1", ok, faulted),
            vec![
                (
                    "VI_2".to_string(),
                    Input::SyncFault {
                        group: "G".into(),
                        member: "VI_1".into(),
                        fault: true
                    }
                ),
                (
                    "VI_3".to_string(),
                    Input::SyncFault {
                        group: "G".into(),
                        member: "VI_1".into(),
                        fault: true
                    }
                ),
            ]
        );
        assert_eq!(
            g.on_status("VI_3", wants, ok),
            vec![
                (
                    "VI_1".to_string(),
                    Input::SyncWantMaster {
                        group: "G".into(),
                        member: "VI_3".into(),
                        want: false
                    }
                ),
                (
                    "VI_2".to_string(),
                    Input::SyncWantMaster {
                        group: "G".into(),
                        member: "VI_3".into(),
                        want: false
                    }
                ),
            ]
        );
        assert_eq!(g.on_status("VI_7", ok, faulted), vec![]);
    }
}
