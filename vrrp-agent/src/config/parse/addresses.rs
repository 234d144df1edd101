//! `virtual_ipaddress` entries (keepalived's vrrp_ipaddress.c).

use std::net::{IpAddr, Ipv4Addr};

use super::*;
use crate::config::ConfigError;
use crate::config::lexer::Tok;
use crate::config::tree::Block;
use crate::config::types::*;

/// rt_scopes names, as find_rttables_scope() knows them.
pub(super) fn scope(tok: &Tok) -> Res<u8> {
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
pub(super) fn address(tok: &Tok) -> Res<(IpAddr, u8)> {
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
pub(super) fn vips(ctx: &mut Ctx<'_>, block: Option<&Block>) -> Res<Vec<VirtualAddress>> {
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

pub(super) fn new_vip(tok: &Tok) -> Res<VirtualAddress> {
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

pub(super) fn finish_vip(
    ctx: &mut Ctx<'_>,
    mut v: VirtualAddress,
    brd: Option<&Tok>,
) -> Res<VirtualAddress> {
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
