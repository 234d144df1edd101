//! keepalived's vrrp_complete_instance(): an instance's defaults and consistency rules.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::config::ConfigError;
use crate::config::types::*;
use crate::proto::{Auth, Centisecs, Family, Priority, Version};

/// keepalived's vrrp_complete_instance(): defaults and consistency, in its order.
pub(super) fn complete(ctx: &mut Ctx<'_>, mut r: RawInstance, g: &GlobalDefs) -> Res<Instance> {
    let Some((interface, interface_span)) = r.interface.take() else {
        return Err(ConfigError::at(
            &r.span,
            format!("vrrp_instance '{}' has no 'interface'", r.name),
        ));
    };
    let Some((vrid, vrid_span)) = r.vrid.take() else {
        return Err(ConfigError::at(
            &r.span,
            format!("vrrp_instance '{}' has no 'virtual_router_id'", r.name),
        ));
    };
    let strict = r.strict.unwrap_or(g.strict);
    let mut defaulted = Defaulted::default();
    let family = family(&r, &interface)?;
    let version = version(&r, family, g, &mut defaulted)?;
    let (vips, excluded_vips) = vip_lists(ctx, &mut r, version, strict)?;
    let (priority, state) = priority_state(ctx, &r, strict, &mut defaulted);
    let owner = priority == Priority::OWNER;
    // With VRRPv2 interoperation the v2 copies carry the v2 nodes' authentication.
    let interop = r.v2_interop.as_ref().is_some_and(|(on, _)| *on);
    let auth = auth_of(ctx, &r, strict, if interop { Version::V2 } else { version });
    let (preempt, preempt_delay) = preemption(ctx, &r, owner, state, strict);
    let accept = accept_mode(ctx, &r, owner, strict, version);
    let advert_int = advert_int(ctx, &r, version, &mut defaulted);
    first_v6_vip(ctx, &r, family, &vips, strict)?;
    let garp = garp(&r.garp, g);
    let vmac = vmac_of(ctx, &mut r);
    let v2_interop = match r.v2_interop.take() {
        Some((true, span)) => {
            // RFC 9568 §8.4: the v2 routers of the upgrade must be able to hear us.
            if version != Version::V3 || family != Family::V4 {
                return Err(ConfigError::at(
                    &span,
                    "vrrp_xdp_v2_interop is for a VRRPv3 IPv4 instance (version 3) that \
                     replaces a VRRPv2 router during an upgrade",
                ));
            }
            if !advert_int.get().is_multiple_of(100) || advert_int.get() > 255 * 100 {
                return Err(ConfigError::at(
                    &span,
                    format!(
                        "vrrp_xdp_v2_interop needs a whole-second advert_int (1..255), the \
                         one the VRRPv2 routers use; this instance has {advert_int}"
                    ),
                ));
            }
            true
        }
        _ => false,
    };
    // keepalived refuses unicast peers in strict mode on a multicast-capable interface.
    if strict && let Some(p) = r.unicast_peers.first() {
        return Err(ConfigError::at(
            &p.span,
            "unicast peers are not allowed in strict mode",
        ));
    }

    // keepalived: "Cannot use unicast_ttl without unicast peers - resetting".
    let unicast_ttl = match r.unicast_ttl {
        Some((_, span)) if r.unicast_peers.is_empty() => {
            ctx.warn(
                &span,
                "unicast_ttl has no effect without unicast_peer: multicast adverts are sent \
                 with TTL 255",
            );
            None
        }
        t => t.map(|t| t.0),
    };

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
        unicast_ttl,
        check_unicast_src: r.check_unicast_src,
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
        v2_interop,
        checksum_auto: r.checksum_auto.unwrap_or(g.xdp.checksum_auto),
        defaulted,
    })
}

/// The instance's address family, and every address of the instance in it.
fn family(r: &RawInstance, interface: &str) -> Res<Family> {
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
    Ok(family)
}

/// The VRRP version of the instance.
fn version(
    r: &RawInstance,
    family: Family,
    g: &GlobalDefs,
    defaulted: &mut Defaulted,
) -> Res<Version> {
    // Version: IPv6 needs v3 (RFC 3768 is IPv4 only); else the instance's, else global.
    let version = match (r.version.clone(), family) {
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
    Ok(version)
}

/// The advertised and the excluded virtual addresses.
fn vip_lists(
    ctx: &mut Ctx<'_>,
    r: &mut RawInstance,
    version: Version,
    strict: bool,
) -> Res<(Vec<VirtualAddress>, Vec<VirtualAddress>)> {
    let mut vips = std::mem::take(&mut r.vips);
    let mut excluded_vips = std::mem::take(&mut r.excluded_vips);
    if vips.is_empty() {
        if version == Version::V3 || strict {
            return Err(ConfigError::at(
                &r.span,
                format!("vrrp_instance '{}' has no virtual_ipaddress", r.name),
            ));
        }
        // keepalived only warns here ("No VIP specified; at least one is sensible") and
        // sends adverts with no address; vrrp-agent's codec and XDP program refuse those
        // (RFC 9568 §5.2.5 has at least one), so the router would refuse the instance at
        // start: say so now, where `--check` sees it.
        return Err(ConfigError::at(
            &r.span,
            format!(
                "vrrp_instance '{}' has no virtual_ipaddress: vrrp-agent needs at least one \
                 (keepalived runs a VRRPv2 instance without, advertising no address)",
                r.name
            ),
        ));
    }
    // The address count field is 8 bits: keepalived moves the excess to the eVIPs.
    if vips.len() > 255 {
        ctx.warn(
            &r.span,
            "more than 255 virtual addresses - the excess is not advertised",
        );
        excluded_vips.splice(0..0, vips.split_off(255));
    }
    Ok((vips, excluded_vips))
}

/// Priority from state, then state from priority; strict mode ties MASTER to the owner.
fn priority_state(
    ctx: &mut Ctx<'_>,
    r: &RawInstance,
    strict: bool,
    defaulted: &mut Defaulted,
) -> (Priority, InitialState) {
    // Priority from state, then state from priority.
    let (priority, state) = match (r.priority.clone(), r.state.clone()) {
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
    (priority, state)
}

/// The authentication the instance's adverts carry.
fn auth_of(ctx: &mut Ctx<'_>, r: &RawInstance, strict: bool, version: Version) -> Auth {
    match (r.auth_type.clone(), r.auth_pass) {
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
    }
}

/// Whether the instance preempts, and after what delay.
fn preemption(
    ctx: &mut Ctx<'_>,
    r: &RawInstance,
    owner: bool,
    state: InitialState,
    strict: bool,
) -> (bool, Duration) {
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
    if let Some((d, span)) = r.preempt_delay.clone() {
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
    (preempt, preempt_delay)
}

/// Accept_Mode (RFC 9568 §6.1).
fn accept_mode(
    ctx: &mut Ctx<'_>,
    r: &RawInstance,
    owner: bool,
    strict: bool,
    version: Version,
) -> bool {
    let mut accept = r.accept.unwrap_or(owner || !strict);
    if accept && !owner && strict && version == Version::V2 {
        ctx.warn(
            &r.span,
            "accept mode with VRRPv2 does not comply with RFC 3768 in strict mode - disabled",
        );
        accept = false;
    }
    accept
}

/// The advert interval, rounded the way vrrp_complete_instance() rounds it.
fn advert_int(
    ctx: &mut Ctx<'_>,
    r: &RawInstance,
    version: Version,
    defaulted: &mut Defaulted,
) -> Centisecs {
    // Advert interval, rounded the way vrrp_complete_instance() rounds it.
    match r.advert_us.clone() {
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
    }
}

/// IPv6 adverts come from a link-local address: say so when the first VIP is not one.
/// RFC 9568 §5.2.9: the first IPv6 address of an advert is the virtual router's link-local
/// one, and erratum 8300 makes receivers discard adverts where it is not. keepalived 2.4.3
/// (`vrrp_complete_instance`, multicast instances only) refuses the list in strict mode and
/// only logs otherwise; so do we (a warning; the router then drops such adverts in strict
/// mode only, see `VrConfig::first_address_link_local`). keepalived adds no address itself.
fn first_v6_vip(
    ctx: &mut Ctx<'_>,
    r: &RawInstance,
    family: Family,
    vips: &[VirtualAddress],
    strict: bool,
) -> Res<()> {
    if let (Family::V6, true, Some(v)) = (family, r.unicast_peers.is_empty(), vips.first())
        && let IpAddr::V6(a) = v.addr
        && !a.is_unicast_link_local()
    {
        if strict {
            return Err(ConfigError::at(
                &v.span,
                "the first IPv6 virtual address must be link-local in strict mode \
                 (RFC 9568 §5.2.9, erratum 8300), as keepalived requires",
            ));
        }
        ctx.warn(
            &v.span,
            "the first IPv6 virtual address should be link-local (RFC 9568 §5.2.9): strict \
             RFC 9568 routers discard adverts that list another first (erratum 8300)",
        );
    }
    Ok(())
}

/// The instance's gratuitous ARP / NA settings over the global ones.
fn garp(r: &GarpOverrides, g: &GlobalDefs) -> Garp {
    Garp {
        master_delay: r.master_delay.unwrap_or(g.garp.master_delay),
        master_repeat: r.master_repeat.unwrap_or(g.garp.master_repeat),
        master_refresh: r.master_refresh.unwrap_or(g.garp.master_refresh),
        master_refresh_repeat: r
            .master_refresh_repeat
            .unwrap_or(g.garp.master_refresh_repeat),
    }
}

/// `use_vmac` with `vmac_xmit_base`.
fn vmac_of(ctx: &mut Ctx<'_>, r: &mut RawInstance) -> Option<Vmac> {
    match (r.vmac.take(), r.vmac_xmit_base) {
        (Some(mut v), xb) => {
            v.xmit_base = xb;
            Some(v)
        }
        (None, true) => {
            ctx.warn(&r.span, "vmac_xmit_base without use_vmac - ignored");
            None
        }
        (None, false) => None,
    }
}
