//! `vrrp_xdp_check` (our extension) and its `http_get`.

use std::net::SocketAddr;
use std::time::Duration;

use super::*;
use crate::config::lexer::Tok;
use crate::config::tree::Stmt;
use crate::config::{BuiltinCheck, BuiltinKind, HttpCheck, UrlError};

/// `vrrp_xdp_check` keywords.
pub(super) const KEYWORDS: &[Kw] = &[
    args("tcp", 1, 1),
    args("interval", 1, 1),
    args("timeout", 1, 1),
    args("rise", 1, 1),
    args("fall", 1, 1),
    block("http_get"),
    args("weight", 1, 2),
    args("init_fail", 0, 0),
];

/// `http_get { }` keywords.
pub(super) const HTTP_GET_KEYWORDS: &[Kw] = &[
    args("url", 1, 1),
    args("status", 1, 1),
    args("body", 1, 1),
    args("host", 1, 1),
];

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
pub(super) fn xdp_check(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<BuiltinCheck> {
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

pub(super) fn http_get(ctx: &mut Ctx<'_>, kw: &Tok, stmts: &[Stmt]) -> Res<HttpCheck> {
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
