//! What the tracker and the notifier need from a configuration, and nothing else: they take
//! these instead of the whole [`Config`], so neither depends on the rest of it.

use super::{BuiltinCheck, Config, Notify, TrackFile, TrackProcess, TrackRef, VrrpScript};
use crate::proto::Priority;
use crate::security::ScriptPolicy;

/// Input of `track::Tracker`: the checks and which instance tracks what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackSpec {
    pub instances: Vec<TrackedInstance>,
    pub scripts: Vec<VrrpScript>,
    /// `vrrp_xdp_check` blocks, referenced from `track_script` like a `vrrp_script`.
    pub checks: Vec<BuiltinCheck>,
    pub files: Vec<TrackFile>,
    pub processes: Vec<TrackProcess>,
    /// Who runs the scripts (`script_user`) and whether `enable_script_security` applies.
    pub policy: ScriptPolicy,
}

/// One instance's tracking references and its base priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackedInstance {
    pub name: String,
    pub priority: Priority,
    pub interfaces: Vec<TrackRef>,
    pub scripts: Vec<TrackRef>,
    pub files: Vec<TrackRef>,
    pub processes: Vec<TrackRef>,
}

impl TrackSpec {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            instances: cfg
                .instances
                .iter()
                .map(|i| TrackedInstance {
                    name: i.name.clone(),
                    priority: i.priority,
                    interfaces: i.track_interfaces.clone(),
                    scripts: i.track_scripts.clone(),
                    files: i.track_files.clone(),
                    processes: i.track_processes.clone(),
                })
                .collect(),
            scripts: cfg.scripts.clone(),
            checks: cfg.checks.clone(),
            files: cfg.track_files.clone(),
            processes: cfg.track_processes.clone(),
            policy: ScriptPolicy::from_global(&cfg.global),
        }
    }
}

/// Input of `notify::Notifier`: the `notify*` commands of instances and sync groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NotifySpec {
    /// Instance name and its commands.
    pub instances: Vec<(String, Notify)>,
    /// Sync group name and its commands.
    pub groups: Vec<(String, Notify)>,
    /// Who runs the scripts (`script_user`) and whether `enable_script_security` applies.
    pub policy: ScriptPolicy,
}

impl NotifySpec {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            instances: cfg
                .instances
                .iter()
                .map(|i| (i.name.clone(), i.notify.clone()))
                .collect(),
            groups: cfg
                .sync_groups
                .iter()
                .map(|g| (g.name.clone(), g.notify.clone()))
                .collect(),
            policy: ScriptPolicy::from_global(&cfg.global),
        }
    }
}
