//! `vrrp_instance` as written (its completion is `complete.rs`), with `authentication`,
//! `unicast_peer`, `vrrp_xdp_heartbeat`, `use_vmac` and the `track_*` lists.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::config::lexer::Tok;
use crate::config::tree::{Block, Stmt};
use crate::config::types::*;
use crate::config::{ConfigError, Span};
use crate::proto::{Priority, Version, Vrid};

/// `vrrp_instance` keywords.
pub(super) const KEYWORDS: &[Kw] = &[
    args("state", 1, 1),
    args("interface", 1, 1),
    args("virtual_router_id", 1, 1),
    args("priority", 1, 1),
    args("advert_int", 1, 1),
    args("version", 1, 1),
    args("preempt_delay", 1, 1),
    args("unicast_src_ip", 1, 1),
    args("mcast_src_ip", 1, 1),
    args("garp_master_delay", 1, 1),
    args("garp_master_repeat", 1, 1),
    args("garp_master_refresh", 1, 1),
    args("garp_master_refresh_repeat", 1, 1),
    block("authentication"),
    block("virtual_ipaddress"),
    block("virtual_ipaddress_excluded"),
    block("unicast_peer"),
    args("unicast_ttl", 1, 1),
    args("check_unicast_src", 0, 0),
    block("track_interface"),
    block("track_script"),
    block("track_file"),
    block("track_process"),
    block("vrrp_xdp_heartbeat"),
    args("dont_track_primary", 0, 0).no_effect(NOT_YET),
    args("nopreempt", 0, 0),
    args("preempt", 0, 0),
    args("native_ipv6", 0, 0),
    args("vmac_xmit_base", 0, 0),
    args("accept", 0, 0),
    args("no_accept", 0, 0).partial(
        "traffic to the VIPs is not filtered (keepalived drops it with iptables/nftables)",
    ),
    args("use_vmac", 0, 2),
    args("skip_check_adv_addr", 0, 1).no_effect(NOT_YET),
    args("strict_mode", 0, 1).partial(
        "traffic to the VIPs is not filtered (keepalived drops it with iptables/nftables)",
    ),
    args("v3_checksum_as_v2", 0, 1),
    args("vrrp_xdp_v2_interop", 0, 1),
    args("vrrp_xdp_checksum_auto", 0, 1),
    args("notify_master", 1, 3),
    args("notify_backup", 1, 3),
    args("notify_fault", 1, 3),
    args("notify_stop", 1, 3),
    args("notify", 1, 3),
    args("notify_master_rx_lower_pri", 1, 3),
    args("vrrp_xdp_notify_split_brain", 1, 3),
    args("vrrp_xdp_fence", 1, 3),
    ignored("smtp_alert"),
    unsupported(
        "debug",
        "log verbosity is set with RUST_LOG / --log-level, not per instance",
    ),
    unsupported("mcast_dst_ip", NOT_YET),
    unsupported("unicast_fault_no_peer", NOT_YET),
    unsupported(
        "old_unicast_checksum",
        "keepalived < 1.3.6 unicast checksums are not produced",
    ),
    unsupported("track_src_ip", NOT_YET),
    unsupported("use_vmac_addr", NOT_YET),
    unsupported(
        "use_ipvlan",
        "ipvlan interfaces are not created by vrrp-agent",
    ),
    unsupported("vrf", "VRF interfaces are not handled by vrrp-agent"),
    unsupported("promote_secondaries", NOT_YET),
    unsupported(
        "linkbeat_use_polling",
        "vrrp-agent follows link state through netlink only",
    ),
    unsupported("virtual_routes", NOT_YET),
    unsupported("virtual_rules", NOT_YET),
    unsupported(
        "lvs_sync_daemon_interface",
        "keepalived's LVS sync daemon is not part of vrrp-agent",
    ),
    unsupported("garp_lower_prio_delay", NOT_YET),
    unsupported("garp_lower_prio_repeat", NOT_YET),
    unsupported("down_timer_adverts", NOT_YET),
    unsupported("garp_extra_if", NOT_YET),
    unsupported("vmac_garp_intvl", NOT_YET),
    unsupported("lower_prio_no_advert", NOT_YET),
    unsupported("higher_prio_send_advert", NOT_YET),
    unsupported(
        "kernel_rx_buf_size",
        "the receive buffer is sized by vrrp-agent",
    ),
    unsupported("track_bfd", "BFD is not part of vrrp-agent"),
    unsupported("notify_deleted", NOT_YET),
    unsupported("notify_priority_changes", NOT_YET),
    unsupported("no_virtual_ipaddress", NOT_YET),
    unsupported("timer_expired_backup", NOT_YET),
    unsupported("thread_timer_expired", NOT_YET),
    unsupported("owner_ignore_adverts", NOT_YET),
    // keepalived 2.4 (draft-cassen-vrrp-auth-hmac); its sub-keywords go with it.
    unsupported("auth_hmac", NOT_YET),
];

/// `authentication { }` keywords.
pub(super) const AUTH_KEYWORDS: &[Kw] = &[args("auth_type", 1, 1), args("auth_pass", 1, 1)];

/// `vrrp_xdp_heartbeat { }` keywords.
pub(super) const HEARTBEAT_KEYWORDS: &[Kw] = &[
    args("interface", 1, 1),
    args("unicast_src_ip", 1, 1),
    block("unicast_peer"),
];

/// An instance as written, before keepalived's completion rules.
pub(super) struct RawInstance {
    pub(super) name: String,
    pub(super) span: Span,
    pub(super) state: Option<(InitialState, Span)>,
    pub(super) interface: Option<(String, Span)>,
    pub(super) vrid: Option<(Vrid, Span)>,
    pub(super) priority: Option<(Priority, Span)>,
    pub(super) advert_us: Option<(u64, Span)>,
    pub(super) version: Option<(Version, Span)>,
    pub(super) auth_type: Option<(AuthType, Span)>,
    pub(super) auth_pass: Option<[u8; 8]>,
    pub(super) vips: Vec<VirtualAddress>,
    pub(super) excluded_vips: Vec<VirtualAddress>,
    pub(super) nopreempt: Option<Span>,
    pub(super) preempt_delay: Option<(Duration, Span)>,
    pub(super) unicast_src: Option<(IpAddr, Span)>,
    pub(super) unicast_peers: Vec<UnicastPeer>,
    pub(super) unicast_ttl: Option<(u8, Span)>,
    pub(super) check_unicast_src: bool,
    pub(super) heartbeats: Vec<Heartbeat>,
    pub(super) garp: GarpOverrides,
    pub(super) native_ipv6: Option<Span>,
    pub(super) vmac: Option<Vmac>,
    pub(super) vmac_xmit_base: bool,
    pub(super) accept: Option<bool>,
    pub(super) dont_track_primary: bool,
    pub(super) track_interfaces: Vec<TrackRef>,
    pub(super) track_scripts: Vec<TrackRef>,
    pub(super) track_files: Vec<TrackRef>,
    pub(super) track_processes: Vec<TrackRef>,
    pub(super) notify: Notify,
    pub(super) skip_check_adv_addr: Option<bool>,
    pub(super) strict: Option<bool>,
    pub(super) v3_checksum_as_v2: Option<bool>,
    /// Our `vrrp_xdp_v2_interop [bool]`, where it was written.
    pub(super) v2_interop: Option<(bool, crate::config::Span)>,
    pub(super) checksum_auto: Option<bool>,
}

#[derive(Default)]
pub(super) struct GarpOverrides {
    pub(super) master_delay: Option<Duration>,
    pub(super) master_repeat: Option<u32>,
    pub(super) master_refresh: Option<Duration>,
    pub(super) master_refresh_repeat: Option<u32>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthType {
    Pass,
}

pub(super) fn instance(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<RawInstance> {
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
        unicast_ttl: None,
        check_unicast_src: false,
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
        v2_interop: None,
        checksum_auto: None,
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
            "unicast_peer" => {
                let ps = peers(item.block)?;
                // keepalived (alloc_vrrp_unicast_peer): a TTL option turns on the instance's
                // unicast source check.
                r.check_unicast_src |= ps.iter().any(|p| p.ttl_given);
                r.unicast_peers.extend(ps);
            }
            "unicast_ttl" => {
                let t = item.arg(0)?;
                let v = uint(t, 0, 255, "unicast_ttl")?;
                r.unicast_ttl = Some((u8::try_from(v).unwrap_or(255), t.span.clone()));
            }
            "check_unicast_src" => r.check_unicast_src = true,
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
            "vrrp_xdp_v2_interop" => {
                r.v2_interop = Some((opt_bool(&item)?, item.kw.span.clone()));
            }
            "vrrp_xdp_checksum_auto" => r.checksum_auto = Some(opt_bool(&item)?),
            _ => {}
        }
    }
    Ok(r)
}

pub(super) fn auth(ctx: &mut Ctx<'_>, r: &mut RawInstance, block: Option<&Block>) -> Res<()> {
    let stmts = block.map(|b| b.stmts.as_slice()).unwrap_or_default();
    let mut it = ItemIter::new(Kind::Auth, stmts);
    while let Some(item) = it.next(ctx)? {
        let t = item.arg(0)?;
        match item.name() {
            "auth_type" => match t.text.as_str() {
                "PASS" => r.auth_type = Some((AuthType::Pass, t.span.clone())),
                // IPsec AH (RFC 2338) was dropped from VRRPv2 by RFC 3768.
                "AH" => {
                    // Running without it would be worse than refusing: AH peers drop our
                    // adverts and both sides become master.
                    return err(
                        t,
                        "auth_type AH is not supported by vrrp-agent (IPsec AH was dropped \
                         from VRRP by RFC 3768; peers using it would drop our adverts): use \
                         PASS or no authentication on every router of the instance",
                    );
                }
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

pub(super) fn peers(block: Option<&Block>) -> Res<Vec<UnicastPeer>> {
    let mut out = Vec::new();
    for line in value_lines(block)? {
        let Some(first) = line.first() else { continue };
        let mut p = UnicastPeer {
            addr: ip(first, "unicast_peer")?,
            min_ttl: 0,
            max_ttl: 255,
            ttl_given: false,
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
            p.ttl_given = true;
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
pub(super) fn heartbeat(ctx: &mut Ctx<'_>, kw: &Tok, block: Option<&Block>) -> Res<Heartbeat> {
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
pub(super) fn vmac(item: &Item<'_>) -> Res<Vmac> {
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
pub(super) fn track_ref(ctx: &mut Ctx<'_>, line: &[Tok], limit: Limit) -> Res<TrackRef> {
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
