//! What the tracker and the notifier need from a configuration, and nothing else: they take
//! these instead of the whole [`Config`], so neither depends on the rest of it.

use super::{
    BuiltinCheck, Config, Notify, ScriptUser, TrackFile, TrackProcess, TrackRef, VrrpScript,
};
use crate::proto::Priority;

/// Input of `track::Tracker`: the checks and which instance tracks what.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackSpec {
    pub instances: Vec<TrackedInstance>,
    pub scripts: Vec<VrrpScript>,
    /// `vrrp_xdp_check` blocks, referenced from `track_script` like a `vrrp_script`.
    pub checks: Vec<BuiltinCheck>,
    pub files: Vec<TrackFile>,
    pub processes: Vec<TrackProcess>,
    /// `global_defs script_user`: runs scripts that name no user.
    pub script_user: Option<ScriptUser>,
    /// `global_defs enable_script_security`.
    pub enable_script_security: bool,
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
            script_user: cfg.global.script_user.clone(),
            enable_script_security: cfg.global.enable_script_security,
        }
    }

    /// Who runs the scripts, and whether keepalived's script security applies.
    pub fn policy(&self) -> crate::security::ScriptPolicy {
        crate::security::ScriptPolicy {
            enable_script_security: self.enable_script_security,
            script_user: self.script_user.clone(),
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
    /// `global_defs script_user`: runs commands that name no user.
    pub script_user: Option<ScriptUser>,
    /// `global_defs enable_script_security`.
    pub enable_script_security: bool,
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
            script_user: cfg.global.script_user.clone(),
            enable_script_security: cfg.global.enable_script_security,
        }
    }

    /// Who runs the commands, and whether keepalived's script security applies.
    pub fn policy(&self) -> crate::security::ScriptPolicy {
        crate::security::ScriptPolicy {
            enable_script_security: self.enable_script_security,
            script_user: self.script_user.clone(),
        }
    }
}
