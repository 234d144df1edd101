//! Value parsers shared by the block parsers: numbers, times, addresses, weights, commands.

use std::net::IpAddr;
use std::time::Duration;

use super::*;
use crate::config::ConfigError;
use crate::config::lexer::Tok;
use crate::config::tree::Block;
use crate::config::types::*;
use crate::proto::Family;

pub(super) fn err<T>(tok: &Tok, message: impl Into<String>) -> Res<T> {
    Err(ConfigError::at(&tok.span, message))
}

pub(super) fn uint(tok: &Tok, min: u64, max: u64, what: &str) -> Res<u64> {
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

pub(super) fn int(tok: &Tok, min: i64, max: i64, what: &str) -> Res<i64> {
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
pub(super) fn micros(tok: &Tok, what: &str) -> Res<u64> {
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

pub(super) fn secs(tok: &Tok, what: &str) -> Res<Duration> {
    Ok(Duration::from_secs(uint(
        tok,
        0,
        u64::from(u32::MAX),
        what,
    )?))
}

/// check_true_false(); no value means true, as keepalived's optional-bool keywords do.
pub(super) fn opt_bool(item: &Item<'_>) -> Res<bool> {
    match item.opt(0).map(|t| t.text.as_str()) {
        None | Some("true" | "on" | "yes") => Ok(true),
        Some("false" | "off" | "no") => Ok(false),
        Some(_) => err(
            item.opt(0).unwrap_or(item.kw),
            format!("'{}' expects true/false, on/off or yes/no", item.name()),
        ),
    }
}

pub(super) fn ip(tok: &Tok, what: &str) -> Res<IpAddr> {
    tok.text
        .parse::<IpAddr>()
        .or_else(|_| err(tok, format!("{what} '{}' is not an IP address", tok.text)))
}

pub(super) fn family_of(a: &IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

pub(super) fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// Weight ranges differ per keyword in keepalived: vrrp_script's is ±253
/// (vrrp_vscript_weight_handler), track_interface/track_script take ±254 and turn it into ±253
/// (vrrp_track.c), track_file/track_process take ±254 as is (track_file.c).
#[derive(Clone, Copy)]
pub(super) enum Limit {
    Script,
    Clamp254,
    Plain254,
}

/// A weight after `weight`, with an optional `reverse`/`noreverse`.
pub(super) fn weight(ctx: &mut Ctx<'_>, toks: &[Tok], limit: Limit, at: &Tok) -> Res<Weight> {
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
pub(super) fn split_command(text: &str, tok: &Tok) -> Res<Vec<String>> {
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

pub(super) fn command(item: &Item<'_>) -> Res<Command> {
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

pub(super) fn set_once<T>(ctx: &mut Ctx<'_>, slot: &mut Option<T>, value: T, item: &Item<'_>) {
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

pub(super) fn notify_item(ctx: &mut Ctx<'_>, notify: &mut Notify, item: &Item<'_>) -> Res<bool> {
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
pub(super) fn value_words(block: Option<&Block>) -> Res<Vec<&Tok>> {
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
pub(super) fn value_lines(block: Option<&Block>) -> Res<Vec<&[Tok]>> {
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

/// garp repeat counts: keepalived allows 0 for backward compatibility and makes it 1.
pub(super) fn repeat(ctx: &mut Ctx<'_>, tok: &Tok, what: &str) -> Res<u32> {
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
