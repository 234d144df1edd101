//! Statements to the typed [`Config`]: keyword tables, value parsing, keepalived's defaults
//! and completion rules (keepalived/vrrp/vrrp.c vrrp_complete_instance), then cross-checks.
//!
//! Where keepalived reports a "config error" and carries on with a guess, we refuse (an
//! error) when the guess changes behaviour, and warn when it only drops something.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::lexer::Tok;
use super::tree::{Block, Stmt};
use super::types::*;
use super::{BuiltinCheck, BuiltinKind, ConfigError, Diagnostic, HttpCheck, Span, UrlError};
use crate::proto::{Auth, Centisecs, Family, Priority, Version, Vrid};

type Res<T> = Result<T, ConfigError>;

const MANY: usize = usize::MAX;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Root,
    Global,
    Instance,
    Auth,
    Script,
    TrackFile,
    TrackProcess,
    SyncGroup,
    /// `vrrp_xdp_check NAME { ... }` (our extension).
    Check,
    /// `http_get { ... }` inside a `vrrp_xdp_check`.
    HttpGet,
    /// `vrrp_xdp_heartbeat { ... }` inside a `vrrp_instance` (our extension).
    Heartbeat,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Blk {
    No,
    Yes,
}

/// How a keyword is handled in a given block.
#[derive(Clone, Copy, Debug)]
enum Class {
    /// Parsed: number of words after it, and whether it takes a `{ }` block.
    Known {
        min: usize,
        max: usize,
        block: Blk,
    },
    /// Accepted without a word: keepalived behaviour that is not VRRP's (mail, SNMP, ...).
    Ignored,
    /// VRRP behaviour vrrp-agent does not implement: warned, then skipped.
    Unsupported,
    /// A whole keepalived subsystem that is not ours: one warning per block.
    Foreign(&'static str),
    Unknown,
}

const fn k(min: usize, max: usize) -> Class {
    Class::Known {
        min,
        max,
        block: Blk::No,
    }
}
const BLOCK: Class = Class::Known {
    min: 0,
    max: 0,
    block: Blk::Yes,
};
const NAMED_BLOCK: Class = Class::Known {
    min: 1,
    max: 1,
    block: Blk::Yes,
};

const LVS: &str = "not handled by vrrp-agent: keepalived's LVS part";
const STATIC: &str = "not handled by vrrp-agent: keepalived's static addresses, routes and rules";
const OTHER: &str = "not handled by vrrp-agent";

/// global_defs keywords with no VRRP behaviour (mail, SNMP, process tuning, LVS, firewall,
/// reload): accepted silently, like keepalived accepts them.
const GLOBAL_IGNORED: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "no_email_faults",
    "checker_log_all_failures",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "lvs_process_name",
    "bfd_process_name",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_flush_onstop",
    "lvs_sync_daemon",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_cpu_affinity",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_cpu_affinity",
    "checker_rlimit_rttime",
    "checker_rlimit_rtime",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "enable_dbus",
    "dbus_service_name",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "rs_init_notifies",
    "no_checker_emails",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "dynamic_interfaces",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_counters",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "fifo_write_vrrp_states_on_reload",
    "vrrp_notify_priority_changes",
    "max_auto_priority",
    "min_auto_priority_delay",
    "linkbeat_use_polling",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
    "log_unknown_vrids",
    "default_interface",
];

/// global_defs keywords that change VRRP behaviour in ways vrrp-agent does not implement.
const GLOBAL_UNSUPPORTED: &[&str] = &[
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_down_timer_adverts",
    "vrrp_min_garp",
    "vrrp_garp_extra_if",
    "vrrp_vmac_garp_intvl",
    "vrrp_lower_prio_no_advert",
    "vrrp_higher_prio_send_advert",
    "vrrp_startup_delay",
    "disable_local_igmp",
    "vmac_prefix",
    "vmac_addr_prefix",
    // The FIFO itself is written (notify_fifo); a script reading it is not started for you.
    "notify_fifo_script",
    "vrrp_notify_fifo_script",
];

const INSTANCE_UNSUPPORTED: &[&str] = &[
    "mcast_dst_ip",
    "unicast_ttl",
    "unicast_fault_no_peer",
    "check_unicast_src",
    "old_unicast_checksum",
    "track_src_ip",
    "use_vmac_addr",
    "use_ipvlan",
    "vrf",
    "promote_secondaries",
    "linkbeat_use_polling",
    "virtual_routes",
    "virtual_rules",
    "lvs_sync_daemon_interface",
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "down_timer_adverts",
    "garp_extra_if",
    "vmac_garp_intvl",
    "lower_prio_no_advert",
    "higher_prio_send_advert",
    "kernel_rx_buf_size",
    "track_bfd",
    "notify_deleted",
    "notify_priority_changes",
];

fn classify(kind: Kind, kw: &str) -> Class {
    match kind {
        Kind::Root => match kw {
            "global_defs" => BLOCK,
            "vrrp_instance" | "vrrp_script" | "vrrp_sync_group" | "track_file"
            | "vrrp_track_file" | "vrrp_track_process" | "vrrp_xdp_check" => NAMED_BLOCK,
            // install_keyword_root() in global_parser.c: process-level settings.
            "net_namespace"
            | "net_namespace_ipvs"
            | "namespace_with_ipsets"
            | "use_pid_dir"
            | "instance"
            | "child_wait_time"
            | "linkbeat_use_polling" => Class::Ignored,
            "virtual_server" | "virtual_server_group" | "real_server" => Class::Foreign(LVS),
            "static_ipaddress" | "static_routes" | "static_rules" | "track_group" => {
                Class::Foreign(STATIC)
            }
            "garp_group" | "linkbeat_interfaces" | "interface_up_down_delays" | "bfd_instance" => {
                Class::Foreign(OTHER)
            }
            _ => Class::Unknown,
        },
        Kind::Global => match kw {
            "router_id"
            | "vrrp_version"
            | "vrrp_garp_master_delay"
            | "vrrp_garp_master_repeat"
            | "vrrp_garp_master_refresh"
            | "vrrp_garp_master_refresh_repeat"
            | "vrrp_garp_interval"
            | "vrrp_gna_interval"
            | "vrrp_mcast_group4"
            | "vrrp_mcast_group6"
            | "vrrp_xdp_metrics"
            | "vrrp_xdp_control_socket"
            | "vrrp_xdp_mode"
            | "vrrp_xdp_notify_json"
            | "vrrp_rt_priority"
            | "vrrp_rlimit_rttime"
            | "vrrp_rlimit_rtime" => k(1, 1),
            // keepalived ≥ 2.2.5: `notify_fifo FILENAME [username [groupname]]`.
            "notify_fifo" | "vrrp_notify_fifo" => k(1, 3),
            "vrrp_skip_check_adv_addr" | "v3_checksum_as_v2" => k(0, 1),
            "vrrp_strict" | "vrrp_check_unicast_src" | "enable_script_security" => k(0, 0),
            "script_user" => k(1, 2),
            _ if GLOBAL_IGNORED.contains(&kw) => Class::Ignored,
            _ if GLOBAL_UNSUPPORTED.contains(&kw) => Class::Unsupported,
            _ => Class::Unknown,
        },
        Kind::Instance => match kw {
            "state"
            | "interface"
            | "virtual_router_id"
            | "priority"
            | "advert_int"
            | "version"
            | "preempt_delay"
            | "unicast_src_ip"
            | "mcast_src_ip"
            | "garp_master_delay"
            | "garp_master_repeat"
            | "garp_master_refresh"
            | "garp_master_refresh_repeat" => k(1, 1),
            "authentication"
            | "virtual_ipaddress"
            | "virtual_ipaddress_excluded"
            | "unicast_peer"
            | "track_interface"
            | "track_script"
            | "track_file"
            | "track_process"
            | "vrrp_xdp_heartbeat" => BLOCK,
            "nopreempt" | "preempt" | "native_ipv6" | "vmac_xmit_base" | "accept" | "no_accept"
            | "dont_track_primary" => k(0, 0),
            "use_vmac" => k(0, 2),
            "skip_check_adv_addr" | "strict_mode" | "v3_checksum_as_v2" => k(0, 1),
            "notify_master"
            | "notify_backup"
            | "notify_fault"
            | "notify_stop"
            | "notify"
            | "notify_master_rx_lower_pri"
            | "vrrp_xdp_notify_split_brain"
            | "vrrp_xdp_fence" => k(1, 3),
            // Mail and log verbosity: no VRRP behaviour.
            "smtp_alert" | "debug" => Class::Ignored,
            _ if INSTANCE_UNSUPPORTED.contains(&kw) => Class::Unsupported,
            _ => Class::Unknown,
        },
        Kind::Auth => match kw {
            "auth_type" | "auth_pass" => k(1, 1),
            _ => Class::Unknown,
        },
        Kind::Script => match kw {
            "script" | "interval" | "timeout" | "rise" | "fall" => k(1, 1),
            "weight" | "user" => k(1, 2),
            "init_fail" => k(0, 0),
            _ => Class::Unknown,
        },
        Kind::TrackFile => match kw {
            "file" => k(1, 1),
            "weight" => k(1, 2),
            "init_file" => k(0, 2),
            _ => Class::Unknown,
        },
        Kind::TrackProcess => match kw {
            "process" => k(1, MANY),
            "weight" => k(1, 2),
            "quorum" | "quorum_max" | "delay" => k(1, 1),
            "param_match" => k(0, 1),
            "full_command" => k(0, 0),
            "terminate_delay" | "fork_delay" => Class::Unsupported,
            _ => Class::Unknown,
        },
        Kind::Check => match kw {
            "tcp" | "interval" | "timeout" | "rise" | "fall" => k(1, 1),
            "http_get" => BLOCK,
            "weight" => k(1, 2),
            "init_fail" => k(0, 0),
            _ => Class::Unknown,
        },
        Kind::HttpGet => match kw {
            "url" | "status" | "body" | "host" => k(1, 1),
            _ => Class::Unknown,
        },
        Kind::Heartbeat => match kw {
            "interface" | "unicast_src_ip" => k(1, 1),
            "unicast_peer" => BLOCK,
            _ => Class::Unknown,
        },
        Kind::SyncGroup => match kw {
            "group" => BLOCK,
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                k(1, 3)
            }
            "smtp_alert" | "notify_priority_changes" => Class::Ignored,
            "track_interface"
            | "track_script"
            | "track_file"
            | "track_process"
            | "track_bfd"
            | "global_tracking"
            | "sync_group_tracking_weight" => Class::Unsupported,
            _ => Class::Unknown,
        },
    }
}

/// One keyword with its words (and block) after [`split`].
struct Item<'a> {
    kw: &'a Tok,
    args: &'a [Tok],
    block: Option<&'a Block>,
}

impl Item<'_> {
    fn name(&self) -> &str {
        &self.kw.text
    }
    fn arg(&self, n: usize) -> Res<&Tok> {
        self.args.get(n).ok_or_else(|| {
            ConfigError::at(&self.kw.span, format!("'{}' needs a value", self.kw.text))
        })
    }
    fn opt(&self, n: usize) -> Option<&Tok> {
        self.args.get(n)
    }
}

struct Ctx<'w> {
    warnings: &'w mut Vec<Diagnostic>,
}

impl Ctx<'_> {
    fn warn(&mut self, span: &Span, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            span: span.clone(),
            message: message.into(),
        });
    }

    /// Cut a statement into keyword items. keepalived hands a handler the whole line and the
    /// handler reads the words it wants, silently dropping the rest; so `state BACKUP
    /// interface eth0` is only `state BACKUP` to keepalived. We read each keyword instead
    /// (what the author meant), and warn where keepalived would read the line differently.
    fn split<'a>(&mut self, kind: Kind, stmt: &'a Stmt) -> Vec<Item<'a>> {
        let words = stmt.words.as_slice();
        let is_kw = |t: &Tok| !t.quoted && !matches!(classify(kind, &t.text), Class::Unknown);
        let mut items = Vec::new();
        let mut i = 0;
        let mut warned = false;
        while let Some(kw) = words.get(i) {
            let (min, max) = match classify(kind, &kw.text) {
                Class::Known { min, max, .. } => (min, max),
                // keepalived reports the keyword and ignores the whole line.
                Class::Unknown => (words.len(), MANY),
                _ => (0, MANY),
            };
            let mut j = (i + 1).saturating_add(min).min(words.len());
            while j < words.len() && j - (i + 1) < max && !words.get(j).is_some_and(is_kw) {
                j += 1;
            }
            items.push(Item {
                kw,
                args: words.get(i + 1..j).unwrap_or_default(),
                block: None,
            });
            let Some(next) = words.get(j) else { break };
            if is_kw(next) {
                if !warned {
                    self.warn(
                        &next.span,
                        format!(
                            "'{}' on the same line as '{}': keepalived reads only the first \
                             keyword of a line and ignores the rest; vrrp-agent reads both",
                            next.text, kw.text
                        ),
                    );
                    warned = true;
                }
                i = j;
            } else {
                self.warn(
                    &next.span,
                    format!(
                        "extra parameter '{}' after '{}' ignored",
                        next.text, kw.text
                    ),
                );
                break;
            }
        }
        if let Some(last) = items.last_mut() {
            last.block = stmt.block.as_ref();
        }
        items
    }

    /// Items of a keyword block, with unknown, ignored and foreign keywords dealt with and
    /// block presence checked. Returns only the known ones.
    fn items<'a>(&mut self, kind: Kind, stmts: &'a [Stmt]) -> Res<Vec<Item<'a>>> {
        let mut out = Vec::new();
        for stmt in stmts {
            for item in self.split(kind, stmt) {
                match classify(kind, item.name()) {
                    Class::Known { block, .. } => {
                        match (block, item.block) {
                            (Blk::Yes, None) => {
                                return Err(ConfigError::at(
                                    &item.kw.span,
                                    format!("'{}' needs a '{{ }}' block", item.name()),
                                ));
                            }
                            (Blk::No, Some(b)) => {
                                return Err(ConfigError::at(
                                    &b.open,
                                    format!("unexpected '{{' after '{}'", item.name()),
                                ));
                            }
                            _ => {}
                        }
                        out.push(item);
                    }
                    Class::Ignored => {}
                    Class::Unsupported => self.warn(
                        &item.kw.span,
                        format!("'{}' is not supported by vrrp-agent - ignored", item.name()),
                    ),
                    Class::Foreign(msg) => {
                        self.warn(&item.kw.span, format!("'{}' {msg}", item.name()))
                    }
                    Class::Unknown => self.warn(
                        &item.kw.span,
                        format!("unknown keyword '{}' - ignored", item.name()),
                    ),
                }
            }
        }
        Ok(out)
    }
}

/// Items statement by statement, so that warnings come out in file order.
struct ItemIter<'a> {
    kind: Kind,
    stmts: &'a [Stmt],
    pos: usize,
    buf: std::collections::VecDeque<Item<'a>>,
}

impl<'a> ItemIter<'a> {
    fn new(kind: Kind, stmts: &'a [Stmt]) -> Self {
        Self {
            kind,
            stmts,
            pos: 0,
            buf: std::collections::VecDeque::new(),
        }
    }

    fn next(&mut self, ctx: &mut Ctx<'_>) -> Res<Option<Item<'a>>> {
        loop {
            if let Some(item) = self.buf.pop_front() {
                return Ok(Some(item));
            }
            let Some(stmt) = self.stmts.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            self.buf = ctx.items(self.kind, std::slice::from_ref(stmt))?.into();
        }
    }
}

// ---- value parsing -------------------------------------------------------------------------

fn err<T>(tok: &Tok, message: impl Into<String>) -> Res<T> {
    Err(ConfigError::at(&tok.span, message))
}

fn uint(tok: &Tok, min: u64, max: u64, what: &str) -> Res<u64> {
    match tok.text.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) && tok.text.bytes().all(|b| b.is_ascii_digit()) => Ok(v),
        _ => err(
            tok,
            format!(
                "{what} '{}' is invalid: must be between {min} and {max}",
                tok.text
            ),
        ),
    }
}

fn int(tok: &Tok, min: i64, max: i64, what: &str) -> Res<i64> {
    match tok.text.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) && !tok.text.starts_with('+') => Ok(v),
        _ => err(
            tok,
            format!(
                "{what} '{}' is invalid: must be between {min} and {max}",
                tok.text
            ),
        ),
    }
}

/// read_decimal_unsigned_strvec() with TIMER_HZ_DIGITS (6): seconds with up to 6 decimals,
/// returned in microseconds.
fn micros(tok: &Tok, what: &str) -> Res<u64> {
    let bad = || {
        err(
            tok,
            format!(
                "{what} '{}' is invalid: expected seconds, e.g. 1 or 0.5",
                tok.text
            ),
        )
    };
    let (int_part, frac) = tok.text.split_once('.').unwrap_or((&tok.text, ""));
    if int_part.is_empty() && frac.is_empty()
        || frac.len() > 6
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return bad();
    }
    let whole: u64 = if int_part.is_empty() {
        0
    } else {
        match int_part.parse::<u64>() {
            Ok(v) if v <= u64::from(u32::MAX) => v,
            _ => return bad(),
        }
    };
    let mut f: u64 = 0;
    // Pad the fraction to 6 digits: "5" is 500000 µs.
    for b in frac.bytes().chain(std::iter::repeat(b'0')).take(6) {
        f = f * 10 + u64::from(b - b'0');
    }
    Ok(whole * 1_000_000 + f)
}

fn secs(tok: &Tok, what: &str) -> Res<Duration> {
    Ok(Duration::from_secs(uint(
        tok,
        0,
        u64::from(u32::MAX),
        what,
    )?))
}

/// check_true_false(); no value means true, as keepalived's optional-bool keywords do.
fn opt_bool(item: &Item<'_>) -> Res<bool> {
    match item.opt(0).map(|t| t.text.as_str()) {
        None | Some("true" | "on" | "yes") => Ok(true),
        Some("false" | "off" | "no") => Ok(false),
        Some(_) => err(
            item.opt(0).unwrap_or(item.kw),
            format!("'{}' expects true/false, on/off or yes/no", item.name()),
        ),
    }
}

fn ip(tok: &Tok, what: &str) -> Res<IpAddr> {
    tok.text
        .parse::<IpAddr>()
        .or_else(|_| err(tok, format!("{what} '{}' is not an IP address", tok.text)))
}

fn family_of(a: &IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// Weight ranges differ per keyword in keepalived: vrrp_script's is ±253
/// (vrrp_vscript_weight_handler), track_interface/track_script take ±254 and turn it into ±253
/// (vrrp_track.c), track_file/track_process take ±254 as is (track_file.c).
#[derive(Clone, Copy)]
enum Limit {
    Script,
    Clamp254,
    Plain254,
}

/// A weight after `weight`, with an optional `reverse`/`noreverse`.
fn weight(ctx: &mut Ctx<'_>, toks: &[Tok], limit: Limit, at: &Tok) -> Res<Weight> {
    let (limit, clamp) = match limit {
        Limit::Script => (253, false),
        Limit::Clamp254 => (254, true),
        Limit::Plain254 => (254, false),
    };
    let Some(v) = toks.first() else {
        return err(at, "'weight' needs a value");
    };
    let mut value = int(v, -limit, limit, "weight")?;
    if clamp && value.abs() == 254 {
        // keepalived: "weight for %s cannot be +/-254. Setting to +/-253".
        ctx.warn(
            &v.span,
            "weight cannot be +/-254 - using +/-253 as keepalived does",
        );
        value = value.signum() * 253;
    }
    let reverse = match toks.get(1).map(|t| t.text.as_str()) {
        None | Some("noreverse") => false,
        Some("reverse") => true,
        Some(_) => {
            return toks.get(1).map_or(err(at, "bad weight option"), |t| {
                err(t, format!("unknown weight option '{}'", t.text))
            });
        }
    };
    if let Some(extra) = toks.get(2) {
        return err(extra, format!("unexpected '{}' after weight", extra.text));
    }
    Ok(Weight {
        value: i16::try_from(value).unwrap_or(0),
        reverse,
    })
}

/// alloc_strvec_quoted_escaped(): split a command line honouring '...' and "..." quotes and
/// backslash escapes.
fn split_command(text: &str, tok: &Tok) -> Res<Vec<String>> {
    let mut argv = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\\') => {
                let Some(n) = chars.next() else {
                    return err(tok, "command ends with a lone '\\'");
                };
                cur.push(match n {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    other => other,
                });
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    argv.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return err(tok, "command has an unterminated quote");
    }
    if in_word {
        argv.push(cur);
    }
    if argv.is_empty() {
        return err(tok, "empty command");
    }
    Ok(argv)
}

fn command(item: &Item<'_>) -> Res<Command> {
    let tok = item.arg(0)?;
    Ok(Command {
        argv: split_command(&tok.text, tok)?,
        user: item.opt(1).map(|u| ScriptUser {
            user: u.text.clone(),
            group: item.opt(2).map(|g| g.text.clone()),
        }),
        span: tok.span.clone(),
    })
}

fn set_once<T>(ctx: &mut Ctx<'_>, slot: &mut Option<T>, value: T, item: &Item<'_>) {
    if slot.is_some() {
        // keepalived: "%s script already specified - ignoring".
        ctx.warn(
            &item.kw.span,
            format!(
                "'{}' already given - ignoring this one as keepalived does",
                item.name()
            ),
        );
    } else {
        *slot = Some(value);
    }
}

fn notify_item(ctx: &mut Ctx<'_>, notify: &mut Notify, item: &Item<'_>) -> Res<bool> {
    let slot = match item.name() {
        "notify_master" => &mut notify.master,
        "notify_backup" => &mut notify.backup,
        "notify_fault" => &mut notify.fault,
        "notify_stop" => &mut notify.stop,
        "notify" => &mut notify.any,
        "notify_master_rx_lower_pri" => &mut notify.master_rx_lower_pri,
        "vrrp_xdp_notify_split_brain" => &mut notify.split_brain,
        "vrrp_xdp_fence" => &mut notify.fence,
        _ => return Ok(false),
    };
    let cmd = command(item)?;
    set_once(ctx, slot, cmd, item);
    Ok(true)
}

/// The words of a value block (`group { A B }`), every word an entry.
fn value_words(block: Option<&Block>) -> Res<Vec<&Tok>> {
    let mut out = Vec::new();
    for stmt in block.map(|b| b.stmts.as_slice()).unwrap_or_default() {
        if let Some(b) = &stmt.block {
            return Err(ConfigError::at(&b.open, "unexpected '{' in a list"));
        }
        out.extend(stmt.words.iter());
    }
    Ok(out)
}

/// The lines of a value block (`track_script { chk weight 2 }`), one entry per line.
fn value_lines(block: Option<&Block>) -> Res<Vec<&[Tok]>> {
    let mut out = Vec::new();
    for stmt in block.map(|b| b.stmts.as_slice()).unwrap_or_default() {
        if let Some(b) = &stmt.block {
            return Err(ConfigError::at(&b.open, "unexpected '{' in a list"));
        }
        if !stmt.words.is_empty() {
            out.push(stmt.words.as_slice());
        }
    }
    Ok(out)
}

// ---- the document --------------------------------------------------------------------------

pub(crate) fn parse(stmts: &[Stmt], warnings: &mut Vec<Diagnostic>) -> Res<Config> {
    let mut ctx = Ctx { warnings };
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

/// Which keyword set `notify_fifo`. keepalived writes VRRP events to both its global FIFO and
/// its VRRP FIFO; we write one, so the more specific `vrrp_notify_fifo` wins.
#[derive(Default)]
struct FifoSource {
    global: Option<PathBuf>,
    vrrp: Option<PathBuf>,
}

fn global_defs(
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

/// garp repeat counts: keepalived allows 0 for backward compatibility and makes it 1.
fn repeat(ctx: &mut Ctx<'_>, tok: &Tok, what: &str) -> Res<u32> {
    let v = uint(tok, 0, u64::from(u32::MAX), what)?;
    if v == 0 {
        ctx.warn(
            &tok.span,
            format!("{what} must be greater than 0 - using 1 as keepalived does"),
        );
        return Ok(1);
    }
    Ok(u32::try_from(v).unwrap_or(u32::MAX))
}

// ---- vrrp_instance -------------------------------------------------------------------------

/// An instance as written, before keepalived's completion rules.
struct RawInstance {
    name: String,
    span: Span,
    state: Option<(InitialState, Span)>,
    interface: Option<(String, Span)>,
    vrid: Option<(Vrid, Span)>,
    priority: Option<(Priority, Span)>,
    advert_us: Option<(u64, Span)>,
    version: Option<(Version, Span)>,
    auth_type: Option<(AuthType, Span)>,
    auth_pass: Option<[u8; 8]>,
    vips: Vec<VirtualAddress>,
    excluded_vips: Vec<VirtualAddress>,
    nopreempt: Option<Span>,
    preempt_delay: Option<(Duration, Span)>,
    unicast_src: Option<(IpAddr, Span)>,
    unicast_peers: Vec<UnicastPeer>,
    heartbeats: Vec<Heartbeat>,
    garp: GarpOverrides,
    native_ipv6: Option<Span>,
    vmac: Option<Vmac>,
    vmac_xmit_base: bool,
    accept: Option<bool>,
    dont_track_primary: bool,
    track_interfaces: Vec<TrackRef>,
    track_scripts: Vec<TrackRef>,
    track_files: Vec<TrackRef>,
    track_processes: Vec<TrackRef>,
    notify: Notify,
    skip_check_adv_addr: Option<bool>,
    strict: Option<bool>,
    v3_checksum_as_v2: Option<bool>,
}

#[derive(Default)]
struct GarpOverrides {
    master_delay: Option<Duration>,
    master_repeat: Option<u32>,
    master_refresh: Option<Duration>,
    master_refresh_repeat: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthType {
    Pass,
}

fn instance(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<RawInstance> {
    let mut r = RawInstance {
        name: name.text.clone(),
        span: name.span.clone(),
        state: None,
        interface: None,
        vrid: None,
        priority: None,
        advert_us: None,
        version: None,
        auth_type: None,
        auth_pass: None,
        vips: Vec::new(),
        excluded_vips: Vec::new(),
        nopreempt: None,
        preempt_delay: None,
        unicast_src: None,
        unicast_peers: Vec::new(),
        heartbeats: Vec::new(),
        garp: GarpOverrides::default(),
        native_ipv6: None,
        vmac: None,
        vmac_xmit_base: false,
        accept: None,
        dont_track_primary: false,
        track_interfaces: Vec::new(),
        track_scripts: Vec::new(),
        track_files: Vec::new(),
        track_processes: Vec::new(),
        notify: Notify::default(),
        skip_check_adv_addr: None,
        strict: None,
        v3_checksum_as_v2: None,
    };
    let mut it = ItemIter::new(Kind::Instance, stmts);
    while let Some(item) = it.next(ctx)? {
        if notify_item(ctx, &mut r.notify, &item)? {
            continue;
        }
        match item.name() {
            "state" => {
                let t = item.arg(0)?;
                let s = match t.text.as_str() {
                    "MASTER" => InitialState::Master,
                    "BACKUP" => InitialState::Backup,
                    _ => {
                        return err(
                            t,
                            format!("state '{}' is invalid: MASTER or BACKUP", t.text),
                        );
                    }
                };
                // keepalived: "state previously set as MASTER - ignoring BACKUP".
                if !(s == InitialState::Backup
                    && r.state
                        .as_ref()
                        .is_some_and(|p| p.0 == InitialState::Master))
                {
                    r.state = Some((s, t.span.clone()));
                }
            }
            "interface" => {
                let t = item.arg(0)?;
                // IFNAMSIZ is 16 including the NUL.
                if t.text.len() >= 16 {
                    return err(t, format!("interface name '{}' is too long", t.text));
                }
                r.interface = Some((t.text.clone(), t.span.clone()));
            }
            "virtual_router_id" => {
                let t = item.arg(0)?;
                let v = uint(t, 1, 255, "virtual_router_id")?;
                let vrid = u8::try_from(v).ok().and_then(Vrid::new);
                let Some(vrid) = vrid else {
                    return err(t, "virtual_router_id must be between 1 and 255");
                };
                r.vrid = Some((vrid, t.span.clone()));
            }
            "priority" => {
                let t = item.arg(0)?;
                let v = uint(t, 1, 255, "priority")?;
                r.priority = Some((Priority(u8::try_from(v).unwrap_or(100)), t.span.clone()));
            }
            "advert_int" => {
                let t = item.arg(0)?;
                let us = micros(t, "advert_int")?;
                // vrrp_adv_handler(): TIMER_HZ/100 ..= 255 s.
                if !(10_000..=255_000_000).contains(&us) {
                    return err(
                        t,
                        format!("advert_int '{}' must be between 0.01 and 255", t.text),
                    );
                }
                r.advert_us = Some((us, t.span.clone()));
            }
            "version" => {
                let t = item.arg(0)?;
                let v = match uint(t, 2, 3, "version")? {
                    2 => Version::V2,
                    _ => Version::V3,
                };
                r.version = Some((v, t.span.clone()));
            }
            "authentication" => auth(ctx, &mut r, item.block)?,
            "virtual_ipaddress" => r.vips.extend(vips(ctx, item.block)?),
            "virtual_ipaddress_excluded" => r.excluded_vips.extend(vips(ctx, item.block)?),
            "nopreempt" => r.nopreempt = Some(item.kw.span.clone()),
            "preempt" => r.nopreempt = None,
            "preempt_delay" => {
                let t = item.arg(0)?;
                let us = micros(t, "preempt_delay")?;
                // TIMER_MAX_SEC is 1000 in keepalived 2.2.
                if us > 1_000_000_000 {
                    return err(t, "preempt_delay must be between 0 and 1000 seconds");
                }
                r.preempt_delay = Some((Duration::from_micros(us), t.span.clone()));
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                let t = item.arg(0)?;
                r.unicast_src = Some((ip(t, item.name())?, t.span.clone()));
            }
            "unicast_peer" => r.unicast_peers.extend(peers(item.block)?),
            "vrrp_xdp_heartbeat" => {
                let h = heartbeat(ctx, item.kw, item.block)?;
                if let Some(o) = r.heartbeats.iter().find(|o| o.interface == h.interface) {
                    return err(
                        item.kw,
                        format!(
                            "a vrrp_xdp_heartbeat on {} is already defined at {}: list every \
                             peer of that interface in one block",
                            h.interface, o.span
                        ),
                    );
                }
                r.heartbeats.push(h);
            }
            "garp_master_delay" => {
                r.garp.master_delay = Some(secs(item.arg(0)?, "garp_master_delay")?)
            }
            "garp_master_repeat" => {
                r.garp.master_repeat = Some(repeat(ctx, item.arg(0)?, item.name())?)
            }
            "garp_master_refresh" => {
                r.garp.master_refresh = Some(secs(item.arg(0)?, "garp_master_refresh")?)
            }
            "garp_master_refresh_repeat" => {
                r.garp.master_refresh_repeat = Some(repeat(ctx, item.arg(0)?, item.name())?)
            }
            "native_ipv6" => r.native_ipv6 = Some(item.kw.span.clone()),
            "use_vmac" => r.vmac = Some(vmac(&item)?),
            "vmac_xmit_base" => r.vmac_xmit_base = true,
            "accept" => r.accept = Some(true),
            "no_accept" => r.accept = Some(false),
            "dont_track_primary" => r.dont_track_primary = true,
            "track_interface" => {
                for line in value_lines(item.block)? {
                    r.track_interfaces
                        .push(track_ref(ctx, line, Limit::Clamp254)?);
                }
            }
            "track_script" => {
                for line in value_lines(item.block)? {
                    let t = track_ref(ctx, line, Limit::Clamp254)?;
                    if r.track_scripts.iter().any(|o| o.name == t.name) {
                        ctx.warn(
                            &t.span,
                            format!("duplicate track_script '{}' - ignoring", t.name),
                        );
                        continue;
                    }
                    r.track_scripts.push(t);
                }
            }
            "track_file" => {
                for line in value_lines(item.block)? {
                    r.track_files.push(track_ref(ctx, line, Limit::Plain254)?);
                }
            }
            "track_process" => {
                for line in value_lines(item.block)? {
                    r.track_processes
                        .push(track_ref(ctx, line, Limit::Plain254)?);
                }
            }
            "skip_check_adv_addr" => r.skip_check_adv_addr = Some(opt_bool(&item)?),
            "strict_mode" => r.strict = Some(opt_bool(&item)?),
            "v3_checksum_as_v2" => r.v3_checksum_as_v2 = Some(opt_bool(&item)?),
            _ => {}
        }
    }
    Ok(r)
}

fn auth(ctx: &mut Ctx<'_>, r: &mut RawInstance, block: Option<&Block>) -> Res<()> {
    let stmts = block.map(|b| b.stmts.as_slice()).unwrap_or_default();
    let mut it = ItemIter::new(Kind::Auth, stmts);
    while let Some(item) = it.next(ctx)? {
        let t = item.arg(0)?;
        match item.name() {
            "auth_type" => match t.text.as_str() {
                "PASS" => r.auth_type = Some((AuthType::Pass, t.span.clone())),
                // IPsec AH (RFC 2338) was dropped from VRRPv2 by RFC 3768.
                "AH" => return err(t, "auth_type AH is not supported by vrrp-agent"),
                _ => return err(t, format!("auth_type '{}' is invalid: PASS or AH", t.text)),
            },
            _ => {
                let bytes = t.text.as_bytes();
                if bytes.len() > 8 {
                    // vrrp_auth_pass_handler(): "Truncating auth_pass to 8 characters".
                    ctx.warn(
                        &t.span,
                        "auth_pass is longer than 8 characters - truncated, as keepalived does",
                    );
                }
                let mut pass = [0u8; 8];
                for (d, s) in pass.iter_mut().zip(bytes) {
                    *d = *s;
                }
                r.auth_pass = Some(pass);
            }
        }
    }
    Ok(())
}

/// rt_scopes names, as find_rttables_scope() knows them.
fn scope(tok: &Tok) -> Res<u8> {
    Ok(match tok.text.as_str() {
        "global" | "universe" => 0,
        "site" => 200,
        "link" => 253,
        "host" => 254,
        "nowhere" => 255,
        _ => u8::try_from(uint(tok, 0, 255, "scope")?).unwrap_or(0),
    })
}

/// parse_ipaddress(): family by the presence of ':', optional /PREFIX.
fn address(tok: &Tok) -> Res<(IpAddr, u8)> {
    let (a, p) = match tok.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (tok.text.as_str(), None),
    };
    let addr: IpAddr = a
        .parse()
        .or_else(|_| err(tok, format!("'{}' is not an IP address", tok.text)))?;
    let max = match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    };
    let prefix = match p {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(v) if v <= max && p.bytes().all(|b| b.is_ascii_digit()) => v,
            _ => {
                return err(
                    tok,
                    format!("prefix length '{p}' must be between 0 and {max}"),
                );
            }
        },
    };
    Ok((addr, prefix))
}

/// virtual_ipaddress entries (vrrp_ipaddress.c alloc_ipaddress()).
fn vips(ctx: &mut Ctx<'_>, block: Option<&Block>) -> Res<Vec<VirtualAddress>> {
    let mut out = Vec::new();
    for line in value_lines(block)? {
        let mut words = line.iter();
        let mut warned = false;
        let Some(first) = words.next() else { continue };
        let mut cur = new_vip(first)?;
        let mut brd: Option<&Tok> = None;
        while let Some(w) = words.next() {
            let mut value = |what: &str| {
                words
                    .next()
                    .ok_or_else(|| ConfigError::at(&w.span, format!("'{what}' needs a value")))
            };
            match w.text.as_str() {
                "dev" => {
                    if cur.dev.is_some() {
                        return err(w, "'dev' given twice for one address");
                    }
                    cur.dev = Some(value("dev")?.text.clone());
                }
                "scope" => cur.scope = Some(scope(value("scope")?)?),
                "brd" | "broadcast" => {
                    let v = value("brd")?;
                    if cur.addr.is_ipv6() {
                        return err(w, "an IPv6 address cannot have a broadcast address");
                    }
                    brd = Some(v);
                }
                "label" => {
                    let v = value("label")?;
                    if v.text.len() >= 16 {
                        return err(
                            v,
                            format!("label '{}' is longer than 15 characters", v.text),
                        );
                    }
                    cur.label = Some(v.text.clone());
                }
                "peer" => {
                    let _ = value("peer")?;
                    ctx.warn(
                        &w.span,
                        "'peer' addresses are not supported by vrrp-agent - ignored",
                    );
                }
                "preferred_lft" => {
                    let v = value("preferred_lft")?;
                    cur.preferred_lft = Some(if v.text == "forever" {
                        u32::MAX
                    } else {
                        u32::try_from(uint(v, 0, u64::from(u32::MAX), "preferred_lft")?)
                            .unwrap_or(u32::MAX)
                    });
                }
                "home" => cur.home = true,
                "-nodad" => cur.nodad = true,
                "mngtmpaddr" => cur.mngtmpaddr = true,
                "noprefixroute" => cur.noprefixroute = true,
                "autojoin" => cur.autojoin = true,
                "no_track" => cur.no_track = true,
                "use_vmac" => cur.use_vmac = true,
                _ if address(w).is_ok() => {
                    // keepalived takes one address per line and rejects the rest; reading the
                    // next address is what the author meant.
                    if !warned {
                        ctx.warn(
                            &w.span,
                            "several addresses on one line: keepalived reads only the first; \
                             vrrp-agent reads each",
                        );
                        warned = true;
                    }
                    out.push(finish_vip(ctx, cur, brd.take())?);
                    cur = new_vip(w)?;
                }
                _ => {
                    return err(
                        w,
                        format!("unknown option '{}' for a virtual address", w.text),
                    );
                }
            }
        }
        out.push(finish_vip(ctx, cur, brd)?);
    }
    Ok(out)
}

fn new_vip(tok: &Tok) -> Res<VirtualAddress> {
    let (addr, prefix_len) = address(tok)?;
    Ok(VirtualAddress {
        addr,
        prefix_len,
        broadcast: None,
        dev: None,
        label: None,
        scope: None,
        no_track: false,
        nodad: false,
        noprefixroute: false,
        home: false,
        mngtmpaddr: false,
        autojoin: false,
        use_vmac: false,
        preferred_lft: None,
        span: tok.span.clone(),
    })
}

fn finish_vip(ctx: &mut Ctx<'_>, mut v: VirtualAddress, brd: Option<&Tok>) -> Res<VirtualAddress> {
    if let (Some(b), IpAddr::V4(a)) = (brd, v.addr) {
        let mask = u32::MAX.checked_shr(u32::from(v.prefix_len)).unwrap_or(0);
        v.broadcast = match b.text.as_str() {
            "+" | "-" if v.prefix_len > 30 => {
                ctx.warn(
                    &b.span,
                    format!(
                        "prefix /{} is too long for a broadcast address - ignored",
                        v.prefix_len
                    ),
                );
                None
            }
            "+" => Some(Ipv4Addr::from(u32::from(a) | mask)),
            "-" => Some(Ipv4Addr::from(u32::from(a) & !mask)),
            t => Some(
                t.parse()
                    .or_else(|_| err(b, format!("broadcast '{t}' is not an IPv4 address")))?,
            ),
        };
    }
    if v.addr.is_ipv6() {
        if v.scope.take().is_some() {
            ctx.warn(
                &v.span,
                "IPv6 addresses cannot have a scope - ignored, as keepalived does",
            );
        }
        if v.label.take().is_some() {
            ctx.warn(
                &v.span,
                "IPv6 addresses cannot have a label - ignored, as keepalived does",
            );
        }
    }
    Ok(v)
}

fn peers(block: Option<&Block>) -> Res<Vec<UnicastPeer>> {
    let mut out = Vec::new();
    for line in value_lines(block)? {
        let Some(first) = line.first() else { continue };
        let mut p = UnicastPeer {
            addr: ip(first, "unicast_peer")?,
            min_ttl: 0,
            max_ttl: 255,
            span: first.span.clone(),
        };
        let mut rest = line.get(1..).unwrap_or_default().iter();
        while let Some(opt) = rest.next() {
            let Some(v) = rest.next() else {
                return err(opt, format!("'{}' needs a value", opt.text));
            };
            let ttl = u8::try_from(uint(v, 0, 255, &opt.text)?).unwrap_or(255);
            match opt.text.as_str() {
                "min_ttl" => p.min_ttl = ttl,
                "max_ttl" => p.max_ttl = ttl,
                _ => return err(opt, format!("unknown unicast_peer option '{}'", opt.text)),
            }
        }
        if p.min_ttl > p.max_ttl {
            return err(
                first,
                "min_ttl is greater than max_ttl: every packet would be dropped",
            );
        }
        out.push(p);
    }
    Ok(out)
}

/// `vrrp_xdp_heartbeat { interface IF  [unicast_src_ip A]  unicast_peer { A ... } }`, our
/// extension inside a `vrrp_instance`: a redundant heartbeat path (see [`Heartbeat`]).
/// Family checks against the instance come in [`complete`].
fn heartbeat(ctx: &mut Ctx<'_>, kw: &Tok, block: Option<&Block>) -> Res<Heartbeat> {
    let stmts = block.map(|b| b.stmts.as_slice()).unwrap_or_default();
    let mut interface: Option<(String, Span)> = None;
    let mut src = None;
    let mut peers: Vec<(IpAddr, Span)> = Vec::new();
    let mut it = ItemIter::new(Kind::Heartbeat, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "interface" => {
                let t = item.arg(0)?;
                // IFNAMSIZ is 16 including the NUL.
                if t.text.is_empty() || t.text.len() >= 16 {
                    return err(t, format!("interface name '{}' is invalid", t.text));
                }
                interface = Some((t.text.clone(), t.span.clone()));
            }
            "unicast_src_ip" => {
                let t = item.arg(0)?;
                src = Some(ip(t, "unicast_src_ip")?);
            }
            "unicast_peer" => {
                for line in value_lines(item.block)? {
                    let Some(first) = line.first() else { continue };
                    // keepalived's min_ttl/max_ttl are not offered: nothing would enforce them.
                    if let Some(extra) = line.get(1) {
                        return err(
                            extra,
                            format!(
                                "unexpected '{}': a vrrp_xdp_heartbeat peer is one address",
                                extra.text
                            ),
                        );
                    }
                    let a = ip(first, "unicast_peer")?;
                    if peers.iter().any(|(p, _)| *p == a) {
                        return err(first, format!("unicast_peer {a} is listed twice"));
                    }
                    if src == Some(a) {
                        return err(first, format!("unicast_peer {a} is our own unicast_src_ip"));
                    }
                    peers.push((a, first.span.clone()));
                }
            }
            _ => {}
        }
    }
    let Some((interface, interface_span)) = interface else {
        return err(kw, "vrrp_xdp_heartbeat has no 'interface'");
    };
    if peers.is_empty() {
        return err(kw, "vrrp_xdp_heartbeat has no unicast_peer");
    }
    if let Some(s) = src
        && let Some((_, span)) = peers.iter().find(|(p, _)| *p == s)
    {
        return Err(ConfigError::at(
            span,
            format!("unicast_peer {s} is our own unicast_src_ip"),
        ));
    }
    Ok(Heartbeat {
        interface,
        interface_span,
        src,
        peers,
        span: kw.span.clone(),
    })
}

/// `use_vmac [NAME] [MAC]` (vrrp_vmac_handler()).
fn vmac(item: &Item<'_>) -> Res<Vmac> {
    let mut v = Vmac {
        name: None,
        mac: None,
        xmit_base: false,
    };
    for t in item.args {
        if t.text.contains(':') {
            let parts: Vec<&str> = t.text.split(':').collect();
            let mut mac = [0u8; 6];
            if parts.len() != 6 {
                return err(t, format!("use_vmac MAC address '{}' is invalid", t.text));
            }
            for (d, p) in mac.iter_mut().zip(&parts) {
                *d = match u8::from_str_radix(p, 16) {
                    Ok(b) if !p.is_empty() && p.len() <= 2 => b,
                    _ => return err(t, format!("use_vmac MAC address '{}' is invalid", t.text)),
                };
            }
            if mac[0] & 1 != 0 {
                return err(t, "use_vmac MAC address is multicast");
            }
            v.mac = Some(mac);
        } else {
            // dev_name_valid() from the kernel.
            if t.text.len() >= 16 || t.text == "." || t.text == ".." || t.text.contains('/') {
                return err(
                    t,
                    format!("use_vmac interface name '{}' is invalid", t.text),
                );
            }
            v.name = Some(t.text.clone());
        }
    }
    Ok(v)
}

/// `NAME [weight N [reverse|noreverse]]` in track_* blocks.
fn track_ref(ctx: &mut Ctx<'_>, line: &[Tok], limit: Limit) -> Res<TrackRef> {
    let Some(name) = line.first() else {
        return Err(ConfigError::at(&Span::new("", 0, 0), "empty track entry"));
    };
    let weight = match line.get(1) {
        None => None,
        Some(w) if w.text == "weight" => {
            Some(weight(ctx, line.get(2..).unwrap_or_default(), limit, w)?)
        }
        Some(w) => {
            return err(
                w,
                format!("unknown option '{}' (expected 'weight')", w.text),
            );
        }
    };
    Ok(TrackRef {
        name: name.text.clone(),
        weight,
        span: name.span.clone(),
    })
}

/// keepalived's vrrp_complete_instance(): defaults and consistency, in its order.
fn complete(ctx: &mut Ctx<'_>, r: RawInstance, g: &GlobalDefs) -> Res<Instance> {
    let Some((interface, interface_span)) = r.interface else {
        return Err(ConfigError::at(
            &r.span,
            format!("vrrp_instance '{}' has no 'interface'", r.name),
        ));
    };
    let Some((vrid, vrid_span)) = r.vrid else {
        return Err(ConfigError::at(
            &r.span,
            format!("vrrp_instance '{}' has no 'virtual_router_id'", r.name),
        ));
    };
    let strict = r.strict.unwrap_or(g.strict);
    let mut defaulted = Defaulted::default();

    // Family: the first VIP decides (alloc_vrrp_vip()), else the source address, else
    // native_ipv6, else IPv4.
    let family = r
        .vips
        .first()
        .map(|v| family_of(&v.addr))
        .or(r.unicast_src.as_ref().map(|s| family_of(&s.0)))
        .or(r.native_ipv6.as_ref().map(|_| Family::V6))
        .unwrap_or(Family::V4);
    if let (Some(span), Family::V4) = (&r.native_ipv6, family) {
        return Err(ConfigError::at(span, "native_ipv6 with IPv4 addresses"));
    }
    for v in &r.vips {
        if family_of(&v.addr) != family {
            // keepalived drops the address ("address family must match VRRP instance -
            // ignoring"); an instance advertises one family, so we refuse instead.
            return Err(ConfigError::at(
                &v.span,
                format!(
                    "{} address in an {} instance: one vrrp_instance carries one address \
                     family (use a second instance, or virtual_ipaddress_excluded)",
                    family_name(family_of(&v.addr)),
                    family_name(family)
                ),
            ));
        }
    }
    if let Some((a, span)) = &r.unicast_src
        && family_of(a) != family
    {
        return Err(ConfigError::at(
            span,
            format!(
                "unicast_src_ip must be {} like the instance",
                family_name(family)
            ),
        ));
    }
    for p in &r.unicast_peers {
        if family_of(&p.addr) != family {
            return Err(ConfigError::at(
                &p.span,
                format!(
                    "unicast_peer must be {} like the instance",
                    family_name(family)
                ),
            ));
        }
    }
    for h in &r.heartbeats {
        // Adverts carry the instance's addresses and are checked against its family, so a
        // heartbeat path carries them in that family too.
        if let Some(s) = h.src
            && family_of(&s) != family
        {
            return Err(ConfigError::at(
                &h.span,
                format!(
                    "vrrp_xdp_heartbeat unicast_src_ip must be {} like the instance",
                    family_name(family)
                ),
            ));
        }
        if let Some((_, span)) = h.peers.iter().find(|(p, _)| family_of(p) != family) {
            return Err(ConfigError::at(
                span,
                format!(
                    "vrrp_xdp_heartbeat unicast_peer must be {} like the instance",
                    family_name(family)
                ),
            ));
        }
        if h.interface == interface {
            return Err(ConfigError::at(
                &h.interface_span,
                format!(
                    "vrrp_xdp_heartbeat interface {} is the instance's own interface: a \
                     heartbeat path needs a second one",
                    h.interface
                ),
            ));
        }
    }

    // Version: IPv6 needs v3 (RFC 3768 is IPv4 only); else the instance's, else global.
    let version = match (r.version, family) {
        (Some((Version::V2, span)), Family::V6) => {
            return Err(ConfigError::at(
                &span,
                "VRRP version 2 cannot carry IPv6 addresses",
            ));
        }
        (Some((v, _)), _) => v,
        (None, Family::V6) => Version::V3,
        (None, Family::V4) => {
            defaulted.version = true;
            g.vrrp_version
        }
    };

    let mut vips = r.vips;
    let mut excluded_vips = r.excluded_vips;
    if vips.is_empty() {
        if version == Version::V3 || strict {
            return Err(ConfigError::at(
                &r.span,
                format!("vrrp_instance '{}' has no virtual_ipaddress", r.name),
            ));
        }
        ctx.warn(
            &r.span,
            format!("vrrp_instance '{}' has no virtual_ipaddress", r.name),
        );
    }
    // The address count field is 8 bits: keepalived moves the excess to the eVIPs.
    if vips.len() > 255 {
        ctx.warn(
            &r.span,
            "more than 255 virtual addresses - the excess is not advertised",
        );
        excluded_vips.splice(0..0, vips.split_off(255));
    }

    // Priority from state, then state from priority.
    let (priority, state) = match (r.priority, r.state) {
        (Some((p, _)), Some((s, _))) => (p, s),
        (Some((p, _)), None) => {
            defaulted.state = true;
            let s = if p == Priority::OWNER {
                InitialState::Master
            } else {
                InitialState::Backup
            };
            (p, s)
        }
        (None, Some((s, span))) => {
            defaulted.priority = true;
            if s == InitialState::Master {
                // keepalived 2.2: no priority + state MASTER means the address owner.
                ctx.warn(
                    &span,
                    "no priority with state MASTER: using 255 (address owner), as keepalived does",
                );
                (Priority::OWNER, s)
            } else {
                (Priority(100), s)
            }
        }
        (None, None) => {
            defaulted.priority = true;
            defaulted.state = true;
            (Priority(100), InitialState::Backup)
        }
    };
    let owner = priority == Priority::OWNER;
    let state = if strict && (state == InitialState::Master) != owner {
        ctx.warn(
            &r.span,
            "strict mode: state MASTER must match being address owner - corrected",
        );
        if owner {
            InitialState::Master
        } else {
            InitialState::Backup
        }
    } else {
        state
    };

    let auth = match (r.auth_type, r.auth_pass) {
        (None, _) => Auth::None,
        (Some((_, span)), _) if strict => {
            ctx.warn(
                &span,
                "strict mode does not support authentication - ignored",
            );
            Auth::None
        }
        (Some((_, span)), _) if version == Version::V3 => {
            ctx.warn(
                &span,
                "VRRP version 3 has no authentication - ignored, as keepalived does",
            );
            Auth::None
        }
        (Some((_, span)), pass) => match pass {
            Some(p) if p.first().is_some_and(|&b| b != 0) => Auth::Pass(p),
            _ => {
                ctx.warn(
                    &span,
                    "auth_type PASS without auth_pass - no authentication, as keepalived does",
                );
                Auth::None
            }
        },
    };

    let mut preempt = r.nopreempt.is_none();
    if let Some(span) = &r.nopreempt {
        if owner {
            ctx.warn(
                span,
                "nopreempt is incompatible with priority 255 - ignored",
            );
            preempt = true;
        } else if state == InitialState::Master {
            ctx.warn(
                span,
                "nopreempt does not work with initial state MASTER - ignored",
            );
            preempt = true;
        }
    }
    let mut preempt_delay = Duration::ZERO;
    if let Some((d, span)) = r.preempt_delay {
        if state == InitialState::Master {
            ctx.warn(
                &span,
                "preempt_delay does not work with initial state MASTER - ignored",
            );
        } else if strict {
            ctx.warn(
                &span,
                "preempt_delay is incompatible with strict mode - ignored",
            );
        } else if !preempt {
            ctx.warn(
                &span,
                "preempt_delay is incompatible with nopreempt - ignored",
            );
        } else {
            preempt_delay = d;
        }
    }

    let mut accept = r.accept.unwrap_or(owner || !strict);
    if accept && !owner && strict && version == Version::V2 {
        ctx.warn(
            &r.span,
            "accept mode with VRRPv2 does not comply with RFC 3768 in strict mode - disabled",
        );
        accept = false;
    }

    // Advert interval, rounded the way vrrp_complete_instance() rounds it.
    let advert_int = match r.advert_us {
        None => {
            defaulted.advert_int = true;
            Centisecs::from_secs(1)
        }
        Some((us, span)) => match version {
            Version::V2 => {
                let mut s = (us + 500_000) / 1_000_000;
                if us % 1_000_000 != 0 {
                    s = s.max(1);
                    let msg = format!(
                        "VRRPv2 advert_int must be whole seconds - rounded to {s}, \
                         as keepalived does"
                    );
                    ctx.warn(&span, msg);
                }
                Centisecs::from_secs(u8::try_from(s).unwrap_or(255))
            }
            Version::V3 => {
                let mut cs = (us + 5_000) / 10_000;
                if us % 10_000 != 0 {
                    cs = cs.max(1);
                    ctx.warn(
                        &span,
                        format!(
                            "VRRPv3 advert_int must be in units of 10ms - rounded to {}",
                            Centisecs(u16::try_from(cs).unwrap_or(u16::MAX))
                        ),
                    );
                }
                if cs > u64::from(Centisecs::V3_MAX.get()) {
                    ctx.warn(
                        &span,
                        "VRRPv3 advert_int must be less than 40.96s - using 40.95s, \
                         as keepalived does",
                    );
                    cs = u64::from(Centisecs::V3_MAX.get());
                }
                Centisecs(u16::try_from(cs).unwrap_or(Centisecs::V3_MAX.get()))
            }
        },
    };

    if let (Family::V6, true, Some(IpAddr::V6(a))) = (
        family,
        r.unicast_peers.is_empty(),
        vips.first().map(|v| v.addr),
    ) {
        // RFC 9568 §5.1.2.2: the source of v6 adverts is link-local; keepalived expects the
        // first VIP to be one.
        if !a.is_unicast_link_local()
            && let Some(v) = vips.first()
        {
            ctx.warn(
                &v.span,
                "the first IPv6 virtual address should be link-local",
            );
        }
    }

    let garp = Garp {
        master_delay: r.garp.master_delay.unwrap_or(g.garp.master_delay),
        master_repeat: r.garp.master_repeat.unwrap_or(g.garp.master_repeat),
        master_refresh: r.garp.master_refresh.unwrap_or(g.garp.master_refresh),
        master_refresh_repeat: r
            .garp
            .master_refresh_repeat
            .unwrap_or(g.garp.master_refresh_repeat),
    };
    let vmac = match (r.vmac, r.vmac_xmit_base) {
        (Some(mut v), xb) => {
            v.xmit_base = xb;
            Some(v)
        }
        (None, true) => {
            ctx.warn(&r.span, "vmac_xmit_base without use_vmac - ignored");
            None
        }
        (None, false) => None,
    };
    // keepalived refuses unicast peers in strict mode on a multicast-capable interface.
    if strict && let Some(p) = r.unicast_peers.first() {
        return Err(ConfigError::at(
            &p.span,
            "unicast peers are not allowed in strict mode",
        ));
    }

    Ok(Instance {
        name: r.name,
        span: r.span,
        state,
        interface,
        interface_span,
        vrid,
        vrid_span,
        priority,
        advert_int,
        version,
        family,
        auth,
        vips,
        excluded_vips,
        preempt,
        preempt_delay,
        unicast_src: r.unicast_src.map(|s| s.0),
        unicast_peers: r.unicast_peers,
        heartbeats: r.heartbeats,
        garp,
        native_ipv6: r.native_ipv6.is_some(),
        vmac,
        accept,
        dont_track_primary: r.dont_track_primary,
        track_interfaces: r.track_interfaces,
        track_scripts: r.track_scripts,
        track_files: r.track_files,
        track_processes: r.track_processes,
        notify: r.notify,
        skip_check_adv_addr: r.skip_check_adv_addr.unwrap_or(g.skip_check_adv_addr),
        strict,
        v3_checksum_as_v2: r.v3_checksum_as_v2.unwrap_or(g.v3_checksum_as_v2),
        defaulted,
    })
}

// ---- trackers and groups -------------------------------------------------------------------

fn script(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<VrrpScript> {
    let mut command_: Option<Command> = None;
    let mut s = VrrpScript {
        name: name.text.clone(),
        span: name.span.clone(),
        command: Command {
            argv: Vec::new(),
            user: None,
            span: name.span.clone(),
        },
        interval: Duration::from_secs(1),
        timeout: Duration::ZERO,
        weight: Weight {
            value: 0,
            reverse: false,
        },
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    let mut user = None;
    let mut it = ItemIter::new(Kind::Script, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "script" => command_ = Some(command(&item)?),
            "interval" | "timeout" => {
                let t = item.arg(0)?;
                let mut v = uint(t, 0, u64::from(u32::MAX), item.name())?;
                if v == 0 {
                    // "vrrp script interval must be greater than 0, setting to 1".
                    ctx.warn(
                        &t.span,
                        format!("{} must be greater than 0 - using 1", item.name()),
                    );
                    v = 1;
                }
                let d = Duration::from_secs(v);
                if item.name() == "interval" {
                    s.interval = d;
                } else {
                    s.timeout = d;
                }
            }
            "weight" => s.weight = weight(ctx, item.args, Limit::Script, item.kw)?,
            "rise" => {
                s.rise = u32::try_from(uint(item.arg(0)?, 1, i32::MAX as u64, "rise")?).unwrap_or(1)
            }
            "fall" => {
                s.fall = u32::try_from(uint(item.arg(0)?, 1, i32::MAX as u64, "fall")?).unwrap_or(1)
            }
            "user" => {
                user = Some(ScriptUser {
                    user: item.arg(0)?.text.clone(),
                    group: item.opt(1).map(|t| t.text.clone()),
                })
            }
            "init_fail" => s.init_fail = true,
            _ => {}
        }
    }
    let Some(mut cmd) = command_ else {
        // keepalived: "No script set for vrrp_script %s - removing"; a track_script naming it
        // would then fail, so refuse here where the cause is.
        return err(name, format!("vrrp_script '{}' has no 'script'", name.text));
    };
    cmd.user = user;
    s.command = cmd;
    Ok(s)
}

/// `vrrp_xdp_check NAME { ... }`, our extension: a TCP connect or HTTP GET check run inside
/// the agent (no shell, no fork), referenced from `track_script` like a `vrrp_script`.
///
/// ```text
/// vrrp_xdp_check chk_web {
///     http_get {
///         url http://192.0.2.10:8080/health   # IP literal only; default port 80, path /
///         status 200                          # expected status, default 200
///         body "ok"                           # optional: the body must contain this
///         host www.example.com                # optional Host header (default: the URL's)
///     }
///     interval 2      # seconds, decimals allowed; default 1
///     timeout 1       # seconds, decimals allowed; default = interval
///     rise 2          # default 1
///     fall 2          # default 1
///     weight -20 [reverse]                    # -253..253, default 0 (0: FAULT when down)
///     init_fail       # start as failed
/// }
/// vrrp_xdp_check chk_db {
///     tcp 192.0.2.20:5432                     # IP:PORT ([v6]:PORT); up when connect succeeds
/// }
/// ```
/// Exactly one of `tcp` and `http_get` (`http://` or `https://`, the latter without certificate
/// verification, like keepalived's `SSL_GET`). A name is shared
/// with `vrrp_script`s: the same name for both is an error.
fn xdp_check(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<BuiltinCheck> {
    let mut kind: Option<(BuiltinKind, &Tok)> = None;
    let mut c = BuiltinCheck::new(
        name.text.clone(),
        BuiltinKind::Tcp {
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        },
    );
    let mut it = ItemIter::new(Kind::Check, stmts);
    while let Some(item) = it.next(ctx)? {
        let k = match item.name() {
            "tcp" => {
                let t = item.arg(0)?;
                let addr = t.text.parse::<SocketAddr>().or_else(|_| {
                    err(
                        t,
                        format!(
                            "tcp '{}': expected IP:PORT or [IPv6]:PORT (names are not resolved)",
                            t.text
                        ),
                    )
                })?;
                if addr.port() == 0 {
                    return err(t, format!("tcp '{}': port 0", t.text));
                }
                Some(BuiltinKind::Tcp { addr })
            }
            "http_get" => {
                let stmts = item.block.map(|b| b.stmts.as_slice()).unwrap_or_default();
                Some(BuiltinKind::Http(http_get(ctx, item.kw, stmts)?))
            }
            "interval" | "timeout" => {
                let t = item.arg(0)?;
                let us = micros(t, item.name())?;
                if us == 0 {
                    return err(t, format!("{} must be greater than 0", item.name()));
                }
                let d = Duration::from_micros(us);
                if item.name() == "interval" {
                    c.interval = d;
                } else {
                    c.timeout = d;
                }
                None
            }
            "weight" => {
                c.weight = weight(ctx, item.args, Limit::Script, item.kw)?;
                None
            }
            "rise" => {
                c.rise =
                    u32::try_from(uint(item.arg(0)?, 1, i32::MAX as u64, "rise")?).unwrap_or(1);
                None
            }
            "fall" => {
                c.fall =
                    u32::try_from(uint(item.arg(0)?, 1, i32::MAX as u64, "fall")?).unwrap_or(1);
                None
            }
            "init_fail" => {
                c.init_fail = true;
                None
            }
            _ => None,
        };
        if let Some(k) = k {
            if let Some((_, first)) = &kind {
                return err(
                    item.kw,
                    format!(
                        "vrrp_xdp_check '{}' already has '{}' at {}: one check per block",
                        name.text, first.text, first.span
                    ),
                );
            }
            kind = Some((k, item.kw));
        }
    }
    let Some((k, _)) = kind else {
        return err(
            name,
            format!("vrrp_xdp_check '{}' has no 'tcp' or 'http_get'", name.text),
        );
    };
    c.kind = k;
    Ok(c)
}

fn http_get(ctx: &mut Ctx<'_>, kw: &Tok, stmts: &[Stmt]) -> Res<HttpCheck> {
    let mut check: Option<HttpCheck> = None;
    let mut status = None;
    let mut body = None;
    let mut host = None;
    let mut it = ItemIter::new(Kind::HttpGet, stmts);
    while let Some(item) = it.next(ctx)? {
        let t = item.arg(0)?;
        match item.name() {
            "url" => {
                if check.is_some() {
                    return err(item.kw, "'url' is already given in this http_get");
                }
                // `https://` is accepted: TLS without certificate verification (SSL_GET).
                let h = HttpCheck::from_url(&t.text).or_else(|e| {
                    let msg = match e {
                        UrlError::Scheme => {
                            format!(
                                "url '{}': only http:// and https:// URLs are supported",
                                t.text
                            )
                        }
                        e => format!("url '{}': {e}", t.text),
                    };
                    err(t, msg)
                })?;
                check = Some(h);
            }
            "status" => status = Some(u16::try_from(uint(t, 100, 599, "status")?).unwrap_or(200)),
            "body" => body = Some(t.text.clone()),
            "host" => {
                if t.text.is_empty() || t.text.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return err(t, format!("host '{}' is not a valid Host header", t.text));
                }
                host = Some(t.text.clone());
            }
            _ => {}
        }
    }
    let Some(mut h) = check else {
        return err(kw, "http_get has no 'url'");
    };
    if let Some(s) = status {
        h.expect_status = s;
    }
    h.expect_body = body;
    if let Some(host) = host {
        h.host = host;
    }
    Ok(h)
}

fn track_file(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<TrackFile> {
    let mut path = None;
    let mut w = Weight {
        value: 1,
        reverse: false,
    };
    let mut init_file = None;
    let mut it = ItemIter::new(Kind::TrackFile, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "file" => path = Some(PathBuf::from(&item.arg(0)?.text)),
            "weight" => w = weight(ctx, item.args, Limit::Plain254, item.kw)?,
            "init_file" => {
                let mut f = InitFile {
                    value: 0,
                    overwrite: false,
                };
                for t in item.args {
                    if t.text == "overwrite" {
                        f.overwrite = true;
                    } else {
                        f.value = int(
                            t,
                            i64::from(i32::MIN),
                            i64::from(i32::MAX),
                            "init_file value",
                        )?;
                    }
                }
                init_file = Some(f);
            }
            _ => {}
        }
    }
    let Some(path) = path else {
        return err(name, format!("track_file '{}' has no 'file'", name.text));
    };
    Ok(TrackFile {
        name: name.text.clone(),
        span: name.span.clone(),
        path,
        weight: w,
        init_file,
    })
}

fn track_process(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<TrackProcess> {
    let mut t = TrackProcess {
        name: name.text.clone(),
        span: name.span.clone(),
        process: String::new(),
        params: Vec::new(),
        weight: Weight {
            value: 0,
            reverse: false,
        },
        quorum: 1,
        quorum_max: u32::MAX,
        delay: Duration::ZERO,
    };
    let mut it = ItemIter::new(Kind::TrackProcess, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "process" => {
                t.process = item.arg(0)?.text.clone();
                t.params = item.args.iter().skip(1).map(|a| a.text.clone()).collect();
            }
            "weight" => t.weight = weight(ctx, item.args, Limit::Plain254, item.kw)?,
            "quorum" => {
                t.quorum = u32::try_from(uint(item.arg(0)?, 1, 65535, "quorum")?).unwrap_or(1)
            }
            "quorum_max" => {
                t.quorum_max =
                    u32::try_from(uint(item.arg(0)?, 1, u64::from(u32::MAX), "quorum_max")?)
                        .unwrap_or(u32::MAX)
            }
            "delay" => t.delay = Duration::from_micros(micros(item.arg(0)?, "delay")?),
            // Matching rules beyond the exact command are not implemented.
            "param_match" | "full_command" => ctx.warn(
                &item.kw.span,
                format!("'{}' is not supported by vrrp-agent - ignored", item.name()),
            ),
            _ => {}
        }
    }
    if t.process.is_empty() {
        return err(
            name,
            format!("vrrp_track_process '{}' has no 'process'", name.text),
        );
    }
    if t.quorum > t.quorum_max {
        return err(name, "quorum is greater than quorum_max");
    }
    Ok(t)
}

fn sync_group(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<SyncGroup> {
    let mut g = SyncGroup {
        name: name.text.clone(),
        span: name.span.clone(),
        instances: Vec::new(),
        notify: Notify::default(),
    };
    let mut seen = HashSet::new();
    let mut it = ItemIter::new(Kind::SyncGroup, stmts);
    while let Some(item) = it.next(ctx)? {
        if notify_item(ctx, &mut g.notify, &item)? {
            continue;
        }
        if item.name() == "group" {
            for w in value_words(item.block)? {
                if !seen.insert(w.text.clone()) {
                    return err(w, format!("'{}' is listed twice in the group", w.text));
                }
                g.instances.push((w.text.clone(), w.span.clone()));
            }
        }
    }
    Ok(g)
}
