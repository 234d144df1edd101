//! `global_defs`.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::tree::Stmt;
use crate::config::types::*;
use crate::proto::Version;

/// `global_defs` keywords.
pub(super) const KEYWORDS: &[Kw] = &[
    args("router_id", 1, 1),
    args("vrrp_version", 1, 1),
    args("vrrp_garp_master_delay", 1, 1),
    args("vrrp_garp_master_repeat", 1, 1),
    args("vrrp_garp_master_refresh", 1, 1),
    args("vrrp_garp_master_refresh_repeat", 1, 1),
    args("vrrp_garp_interval", 1, 1),
    args("vrrp_gna_interval", 1, 1),
    args("vrrp_mcast_group4", 1, 1),
    args("vrrp_mcast_group6", 1, 1),
    args("vrrp_xdp_metrics", 1, 1),
    args("vrrp_xdp_control_socket", 1, 1),
    args("vrrp_xdp_mode", 1, 1),
    args("vrrp_xdp_notify_json", 1, 1),
    args("vrrp_xdp_checksum_auto", 0, 1),
    args("vrrp_rt_priority", 1, 1),
    args("vrrp_rlimit_rttime", 1, 1),
    args("vrrp_rlimit_rtime", 1, 1),
    // keepalived >= 2.2.5: `notify_fifo FILENAME [username [groupname]]`.
    args("notify_fifo", 1, 3),
    args("vrrp_notify_fifo", 1, 3),
    args("vrrp_skip_check_adv_addr", 0, 1).no_effect(NOT_YET),
    args("v3_checksum_as_v2", 0, 1),
    args("vrrp_strict", 0, 0).partial(
        "traffic to the VIPs is not filtered (keepalived drops it with iptables/nftables)",
    ),
    args("vrrp_check_unicast_src", 0, 0),
    args("enable_script_security", 0, 0),
    args("script_user", 1, 2),
    // Keywords without VRRP behaviour (mail, SNMP, DBus, process tuning, LVS) are listed in one
    // warning per file; the others that have no effect in vrrp-agent are warned one by one.
    ignored("notification_email"),
    ignored("notification_email_from"),
    ignored("smtp_server"),
    ignored("smtp_helo_name"),
    ignored("smtp_connect_timeout"),
    ignored("smtp_alert"),
    ignored("smtp_alert_vrrp"),
    ignored("smtp_alert_checker"),
    ignored("no_email_faults"),
    ignored("checker_log_all_failures"),
    unsupported("startup_script", NOT_YET),
    unsupported("startup_script_timeout", NOT_YET),
    unsupported("shutdown_script", NOT_YET),
    unsupported("shutdown_script_timeout", NOT_YET),
    ignored("process_names"),
    ignored("process_name"),
    ignored("vrrp_process_name"),
    ignored("checker_process_name"),
    ignored("lvs_process_name"),
    ignored("bfd_process_name"),
    ignored("lvs_timeouts"),
    ignored("lvs_flush"),
    ignored("lvs_flush_on_stop"),
    ignored("lvs_flush_onstop"),
    ignored("lvs_sync_daemon"),
    ignored("vrrp_priority"),
    ignored("vrrp_no_swap"),
    ignored("vrrp_cpu_affinity"),
    ignored("checker_priority"),
    ignored("checker_no_swap"),
    ignored("checker_rt_priority"),
    ignored("checker_cpu_affinity"),
    ignored("checker_rlimit_rttime"),
    ignored("checker_rlimit_rtime"),
    ignored("bfd_priority"),
    ignored("bfd_no_swap"),
    ignored("bfd_rt_priority"),
    ignored("bfd_cpu_affinity"),
    ignored("bfd_rlimit_rttime"),
    ignored("bfd_rlimit_rtime"),
    ignored("snmp_socket"),
    ignored("enable_traps"),
    ignored("enable_snmp_vrrp"),
    ignored("enable_snmp_keepalived"),
    ignored("enable_snmp_rfc"),
    ignored("enable_snmp_rfcv2"),
    ignored("enable_snmp_rfcv3"),
    ignored("enable_snmp_checker"),
    ignored("enable_dbus"),
    ignored("dbus_service_name"),
    ignored("vrrp_netlink_cmd_rcv_bufs"),
    ignored("vrrp_netlink_cmd_rcv_bufs_force"),
    ignored("vrrp_netlink_monitor_rcv_bufs"),
    ignored("vrrp_netlink_monitor_rcv_bufs_force"),
    ignored("process_monitor_rcv_bufs"),
    ignored("process_monitor_rcv_bufs_force"),
    ignored("lvs_netlink_cmd_rcv_bufs"),
    ignored("lvs_netlink_cmd_rcv_bufs_force"),
    ignored("lvs_netlink_monitor_rcv_bufs"),
    ignored("lvs_netlink_monitor_rcv_bufs_force"),
    ignored("rs_init_notifies"),
    ignored("no_checker_emails"),
    ignored("vrrp_rx_bufs_policy"),
    ignored("vrrp_rx_bufs_multiplier"),
    ignored("umask"),
    ignored("random_seed"),
    unsupported(
        "reload_check_config",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "reload_time_file",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "reload_repeat",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "reload_file",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "include_check",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "config_save_dir",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "tmp_config_directory",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported(
        "data_use_instance",
        "keepalived's reload and config-copy machinery (vrrp-agent rereads its file on SIGHUP)",
    ),
    unsupported("dynamic_interfaces", NOT_YET),
    unsupported(
        "vrrp_iptables",
        "vrrp-agent installs no iptables/nftables rules for VIPs",
    ),
    unsupported(
        "vrrp_ipsets",
        "vrrp-agent installs no iptables/nftables rules for VIPs",
    ),
    unsupported(
        "nftables",
        "vrrp-agent installs no iptables/nftables rules for VIPs",
    ),
    unsupported(
        "nftables_priority",
        "vrrp-agent installs no iptables/nftables rules for VIPs",
    ),
    unsupported(
        "nftables_ifindex",
        "vrrp-agent installs no iptables/nftables rules for VIPs",
    ),
    ignored("nftables_ipvs"),
    ignored("nftables_ipvs_priority"),
    ignored("nftables_ipvs_start_fwmark"),
    unsupported(
        "nftables_counters",
        "vrrp-agent installs no iptables/nftables rules for VIPs",
    ),
    ignored("lvs_notify_fifo"),
    ignored("lvs_notify_fifo_script"),
    unsupported("fifo_write_vrrp_states_on_reload", NOT_YET),
    unsupported("vrrp_notify_priority_changes", NOT_YET),
    unsupported("max_auto_priority", NOT_YET),
    unsupported("min_auto_priority_delay", NOT_YET),
    unsupported(
        "linkbeat_use_polling",
        "vrrp-agent follows link state through netlink only",
    ),
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
    unsupported("log_unknown_vrids", NOT_YET),
    unsupported("default_interface", NOT_YET),
    // VRRP behaviour vrrp-agent does not implement.
    unsupported("vrrp_garp_lower_prio_delay", NOT_YET),
    unsupported("vrrp_garp_lower_prio_repeat", NOT_YET),
    unsupported("vrrp_down_timer_adverts", NOT_YET),
    unsupported("vrrp_min_garp", NOT_YET),
    unsupported("vrrp_garp_extra_if", NOT_YET),
    unsupported("vrrp_vmac_garp_intvl", NOT_YET),
    unsupported("vrrp_lower_prio_no_advert", NOT_YET),
    unsupported("vrrp_higher_prio_send_advert", NOT_YET),
    unsupported("vrrp_startup_delay", NOT_YET),
    unsupported("disable_local_igmp", NOT_YET),
    unsupported("vmac_prefix", NOT_YET),
    unsupported("vmac_addr_prefix", NOT_YET),
    unsupported(
        "notify_fifo_script",
        "the FIFO is written, but no script is started to read it",
    ),
    unsupported(
        "vrrp_notify_fifo_script",
        "the FIFO is written, but no script is started to read it",
    ),
    ignored("use_symlink_paths"),
    ignored("dbus_no_interface_name"),
    ignored("json_version"),
    unsupported("vrrp_delay_after_boot", NOT_YET),
    unsupported("vrrp_owner_ignore_adverts", NOT_YET),
    unsupported(
        "iproute_usr_dir",
        "routes and rules tables are not read by vrrp-agent",
    ),
    unsupported(
        "iproute_etc_dir",
        "routes and rules tables are not read by vrrp-agent",
    ),
    unsupported(
        "state_dump_file",
        "keepalived's state and statistics dumps (vrrp-agent: `vrrp-agent status`, metrics)",
    ),
    unsupported(
        "stats_dump_file",
        "keepalived's state and statistics dumps (vrrp-agent: `vrrp-agent status`, metrics)",
    ),
    unsupported(
        "json_dump_file",
        "keepalived's state and statistics dumps (vrrp-agent: `vrrp-agent status`, metrics)",
    ),
];

/// Which keyword set `notify_fifo`. keepalived writes VRRP events to both its global FIFO and
/// its VRRP FIFO; we write one, so the more specific `vrrp_notify_fifo` wins.
#[derive(Default)]
pub(super) struct FifoSource {
    pub(super) global: Option<PathBuf>,
    pub(super) vrrp: Option<PathBuf>,
}

pub(super) fn global_defs(
    ctx: &mut Ctx<'_>,
    g: &mut GlobalDefs,
    fifo: &mut FifoSource,
    stmts: &[Stmt],
) -> Res<()> {
    let mut it = ItemIter::new(Kind::Global, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "notify_fifo" | "vrrp_notify_fifo" => {
                let t = item.arg(0)?;
                if let Some(owner) = item.opt(1) {
                    ctx.warn(
                        &owner.span,
                        format!(
                            "'{}' owner and group are not supported by vrrp-agent - ignored \
                             (the FIFO is created with mode 0644)",
                            item.name()
                        ),
                    );
                }
                let path = PathBuf::from(&t.text);
                let slot = if item.name() == "vrrp_notify_fifo" {
                    &mut fifo.vrrp
                } else {
                    &mut fifo.global
                };
                *slot = Some(path);
                if let (Some(a), Some(b)) = (&fifo.global, &fifo.vrrp)
                    && a != b
                {
                    ctx.warn(
                        &t.span,
                        format!(
                            "both notify_fifo and vrrp_notify_fifo are set: vrrp-agent writes \
                             VRRP events only to the vrrp_notify_fifo ({}), not to {}",
                            b.display(),
                            a.display()
                        ),
                    );
                }
                g.notify_fifo = fifo.vrrp.clone().or_else(|| fifo.global.clone());
            }
            "vrrp_xdp_notify_json" => g.notify_json = Some(PathBuf::from(&item.arg(0)?.text)),
            "router_id" => g.router_id = Some(item.arg(0)?.text.clone()),
            "vrrp_version" => {
                g.vrrp_version = match uint(item.arg(0)?, 2, 3, "vrrp_version")? {
                    2 => Version::V2,
                    _ => Version::V3,
                }
            }
            "vrrp_garp_master_delay" => {
                g.garp.master_delay = secs(item.arg(0)?, "vrrp_garp_master_delay")?
            }
            "vrrp_garp_master_repeat" => {
                g.garp.master_repeat = repeat(ctx, item.arg(0)?, item.name())?
            }
            "vrrp_garp_master_refresh" => {
                g.garp.master_refresh = secs(item.arg(0)?, "vrrp_garp_master_refresh")?
            }
            "vrrp_garp_master_refresh_repeat" => {
                g.garp.master_refresh_repeat = repeat(ctx, item.arg(0)?, item.name())?
            }
            "vrrp_garp_interval" => {
                g.garp_interval = Duration::from_micros(micros(item.arg(0)?, item.name())?)
            }
            "vrrp_gna_interval" => {
                g.gna_interval = Duration::from_micros(micros(item.arg(0)?, item.name())?)
            }
            "vrrp_mcast_group4" => {
                let t = item.arg(0)?;
                match ip(t, "vrrp_mcast_group4")? {
                    IpAddr::V4(a) if a.is_multicast() => g.mcast_group4 = a,
                    _ => return err(t, "vrrp_mcast_group4 must be an IPv4 multicast address"),
                }
            }
            "vrrp_mcast_group6" => {
                let t = item.arg(0)?;
                match ip(t, "vrrp_mcast_group6")? {
                    IpAddr::V6(a) if a.is_multicast() => g.mcast_group6 = a,
                    _ => return err(t, "vrrp_mcast_group6 must be an IPv6 multicast address"),
                }
            }
            "vrrp_skip_check_adv_addr" => g.skip_check_adv_addr = opt_bool(&item)?,
            "v3_checksum_as_v2" => g.v3_checksum_as_v2 = opt_bool(&item)?,
            "vrrp_xdp_checksum_auto" => g.xdp.checksum_auto = opt_bool(&item)?,
            "vrrp_strict" => g.strict = true,
            "vrrp_check_unicast_src" => g.check_unicast_src = true,
            "enable_script_security" => g.enable_script_security = true,
            "script_user" => {
                g.script_user = Some(ScriptUser {
                    user: item.arg(0)?.text.clone(),
                    group: item.opt(1).map(|t| t.text.clone()),
                })
            }
            "vrrp_xdp_metrics" => {
                let t = item.arg(0)?;
                g.xdp.metrics = Some(t.text.parse::<SocketAddr>().or_else(|_| {
                    err(
                        t,
                        format!("vrrp_xdp_metrics '{}': expected ADDR:PORT", t.text),
                    )
                })?);
            }
            // keepalived: 1..99 (SCHED_RR); 0 is ours, for "stay SCHED_OTHER" (our default is
            // real-time, see io::sched).
            "vrrp_rt_priority" => {
                g.rt_priority = Some(uint(item.arg(0)?, 0, 99, item.name())? as u8)
            }
            "vrrp_rlimit_rttime" | "vrrp_rlimit_rtime" => {
                g.rlimit_rttime_us = Some(uint(item.arg(0)?, 1, u64::from(u32::MAX), item.name())?)
            }
            "vrrp_xdp_control_socket" => {
                g.xdp.control_socket = Some(PathBuf::from(&item.arg(0)?.text))
            }
            "vrrp_xdp_mode" => {
                let t = item.arg(0)?;
                g.xdp.mode = match t.text.as_str() {
                    "auto" => XdpMode::Auto,
                    "native" | "drv" => XdpMode::Native,
                    "generic" | "skb" => XdpMode::Generic,
                    "off" | "none" => XdpMode::Off,
                    _ => return err(t, "vrrp_xdp_mode must be auto, native, generic or off"),
                };
            }
            _ => {}
        }
    }
    Ok(())
}
