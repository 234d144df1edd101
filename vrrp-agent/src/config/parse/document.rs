//! The document loop: top-level blocks in file order, then the cross-checks between them.

use std::collections::HashMap;

use super::*;
use crate::config::tree::Stmt;
use crate::config::types::*;
use crate::config::{BuiltinCheck, ConfigError, Diagnostic};

/// Top-level keywords.
pub(super) const KEYWORDS: &[Kw] = &[
    block("global_defs"),
    named_block("vrrp_instance"),
    named_block("vrrp_script"),
    named_block("vrrp_sync_group"),
    named_block("track_file"),
    named_block("vrrp_track_file"),
    named_block("vrrp_track_process"),
    named_block("vrrp_xdp_check"),
    unsupported(
        "net_namespace",
        "vrrp-agent runs in the namespace it is started in; use ip netns exec",
    ),
    unsupported(
        "net_namespace_ipvs",
        "vrrp-agent runs in the namespace it is started in; use ip netns exec",
    ),
    unsupported(
        "namespace_with_ipsets",
        "vrrp-agent runs in the namespace it is started in; use ip netns exec",
    ),
    unsupported(
        "use_pid_dir",
        "keepalived's multi-instance pid and file naming, not used by vrrp-agent",
    ),
    unsupported(
        "instance",
        "keepalived's multi-instance pid and file naming, not used by vrrp-agent",
    ),
    unsupported(
        "child_wait_time",
        "vrrp-agent is one process (no children to wait for)",
    ),
    unsupported(
        "linkbeat_use_polling",
        "vrrp-agent follows link state through netlink only",
    ),
    foreign("virtual_server", LVS),
    foreign("virtual_server_group", LVS),
    foreign("real_server", LVS),
    foreign("static_ipaddress", STATIC),
    foreign("static_routes", STATIC),
    foreign("static_rules", STATIC),
    foreign("track_group", STATIC),
    foreign("garp_group", OTHER),
    foreign("linkbeat_interfaces", OTHER),
    foreign("interface_up_down_delays", OTHER),
    foreign("bfd_instance", OTHER),
];

pub(crate) fn parse(stmts: &[Stmt], warnings: &mut Vec<Diagnostic>) -> Res<Config> {
    let mut ctx = Ctx::new(warnings);
    let mut global = GlobalDefs::default();
    let mut raw_instances = Vec::new();
    let mut scripts: Vec<VrrpScript> = Vec::new();
    let mut track_files: Vec<TrackFile> = Vec::new();
    let mut track_processes: Vec<TrackProcess> = Vec::new();
    let mut sync_groups: Vec<SyncGroup> = Vec::new();
    let mut checks: Vec<BuiltinCheck> = Vec::new();
    let mut fifo = FifoSource::default();
    // Where each vrrp_script was defined, to mirror keepalived's order dependence.
    let mut order: usize = 0;
    let mut script_order: HashMap<String, usize> = HashMap::new();

    let mut it = ItemIter::new(Kind::Root, stmts);
    while let Some(item) = it.next(&mut ctx)? {
        order += 1;
        let stmts = item.block.map(|b| b.stmts.as_slice()).unwrap_or_default();
        match item.name() {
            "global_defs" => global_defs(&mut ctx, &mut global, &mut fifo, stmts)?,
            "vrrp_instance" => {
                let name = item.arg(0)?;
                raw_instances.push((instance(&mut ctx, name, stmts)?, order));
            }
            "vrrp_script" => {
                let name = item.arg(0)?;
                let s = script(&mut ctx, name, stmts)?;
                if scripts.iter().any(|o| o.name == s.name) {
                    return err(name, format!("vrrp_script '{}' is already defined", s.name));
                }
                if checks.iter().any(|o| o.name == s.name) {
                    return err(
                        name,
                        format!(
                            "vrrp_script '{}': a vrrp_xdp_check of that name is already defined",
                            s.name
                        ),
                    );
                }
                script_order.insert(s.name.clone(), order);
                scripts.push(s);
            }
            "track_file" | "vrrp_track_file" => {
                let name = item.arg(0)?;
                let t = track_file(&mut ctx, name, stmts)?;
                if track_files.iter().any(|o| o.name == t.name) {
                    return err(name, format!("track_file '{}' is already defined", t.name));
                }
                track_files.push(t);
            }
            "vrrp_track_process" => {
                let name = item.arg(0)?;
                let t = track_process(&mut ctx, name, stmts)?;
                if track_processes.iter().any(|o| o.name == t.name) {
                    return err(
                        name,
                        format!("vrrp_track_process '{}' is already defined", t.name),
                    );
                }
                track_processes.push(t);
            }
            "vrrp_xdp_check" => {
                let name = item.arg(0)?;
                let c = xdp_check(&mut ctx, name, stmts)?;
                if checks.iter().any(|o| o.name == c.name) {
                    return err(
                        name,
                        format!("vrrp_xdp_check '{}' is already defined", c.name),
                    );
                }
                if scripts.iter().any(|o| o.name == c.name) {
                    return err(
                        name,
                        format!(
                            "vrrp_xdp_check '{}': a vrrp_script of that name is already defined",
                            c.name
                        ),
                    );
                }
                checks.push(c);
            }
            "vrrp_sync_group" => {
                let name = item.arg(0)?;
                let g = sync_group(&mut ctx, name, stmts)?;
                if sync_groups.iter().any(|o| o.name == g.name) {
                    // keepalived: "vrrp sync group %s already defined".
                    return err(
                        name,
                        format!("vrrp_sync_group '{}' is already defined", g.name),
                    );
                }
                sync_groups.push(g);
            }
            _ => {}
        }
    }

    ctx.warn_grouped();

    let mut instances: Vec<Instance> = Vec::new();
    for (raw, at) in raw_instances {
        let inst = complete(&mut ctx, raw, &global)?;
        for t in &inst.track_scripts {
            match script_order.get(&t.name) {
                // Our checks are not keepalived's, so keepalived's order rule does not apply.
                None if checks.iter().any(|c| c.name == t.name) => {}
                None => {
                    return Err(ConfigError::at(
                        &t.span,
                        format!(
                            "track_script '{}': no vrrp_script or vrrp_xdp_check of that name",
                            t.name
                        ),
                    ));
                }
                Some(&def) if def > at => ctx.warn(
                    &t.span,
                    format!(
                        "vrrp_script '{}' is defined after this instance: keepalived 2.2 \
                         ignores it here (define it first)",
                        t.name
                    ),
                ),
                Some(_) => {}
            }
        }
        for t in &inst.track_files {
            if !track_files.iter().any(|f| f.name == t.name) {
                return Err(ConfigError::at(
                    &t.span,
                    format!("track_file '{}': no track_file block of that name", t.name),
                ));
            }
        }
        for t in &inst.track_processes {
            if !track_processes.iter().any(|f| f.name == t.name) {
                return Err(ConfigError::at(
                    &t.span,
                    format!(
                        "track_process '{}': no vrrp_track_process of that name",
                        t.name
                    ),
                ));
            }
        }
        if let Some(other) = instances.iter().find(|o| o.name == inst.name) {
            return Err(ConfigError::at(
                &inst.span,
                format!(
                    "vrrp_instance '{}' is already defined at {}",
                    inst.name, other.span
                ),
            ));
        }
        // One VRID per interface and family: the virtual MAC and the advert stream are
        // keyed by it (RFC 9568 §7.3), so two instances would fight over both.
        if let Some(other) = instances.iter().find(|o| {
            o.vrid == inst.vrid && o.interface == inst.interface && o.family == inst.family
        }) {
            return Err(ConfigError::at(
                &inst.vrid_span,
                format!(
                    "virtual_router_id {} on {} ({}) is already used by vrrp_instance '{}'",
                    inst.vrid,
                    inst.interface,
                    family_name(inst.family),
                    other.name
                ),
            ));
        }
        instances.push(inst);
    }
    // A heartbeat interface must not carry an instance: its XDP program would consume (or
    // drop as unknown VRIDs) the heartbeat adverts, and its socket would read them as adverts
    // of the primary path.
    for inst in &instances {
        for h in &inst.heartbeats {
            if let Some(other) = instances.iter().find(|o| o.interface == h.interface) {
                return Err(ConfigError::at(
                    &h.interface_span,
                    format!(
                        "vrrp_xdp_heartbeat interface {} is the interface of vrrp_instance \
                         '{}': a heartbeat path needs an interface no instance runs on",
                        h.interface, other.name
                    ),
                ));
            }
        }
    }

    let mut grouped: HashMap<&str, &str> = HashMap::new();
    for g in &sync_groups {
        for (name, span) in &g.instances {
            if !instances.iter().any(|i| &i.name == name) {
                return Err(ConfigError::at(
                    span,
                    format!("vrrp_sync_group '{}': no vrrp_instance '{name}'", g.name),
                ));
            }
            if let Some(other) = grouped.insert(name, &g.name) {
                return Err(ConfigError::at(
                    span,
                    format!("vrrp_instance '{name}' is already in vrrp_sync_group '{other}'"),
                ));
            }
        }
        if g.instances.len() < 2 {
            // keepalived: "Sync group %s has only %u virtual router(s) - this probably isn't
            // what you want".
            ctx.warn(
                &g.span,
                format!("vrrp_sync_group '{}' has fewer than 2 instances", g.name),
            );
        }
    }

    Ok(Config {
        global,
        instances,
        scripts,
        track_files,
        track_processes,
        sync_groups,
        checks,
    })
}
