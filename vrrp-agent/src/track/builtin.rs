//! Built-in checks that need no shell: TCP connect and HTTP GET over plain TCP.
//!
//! Proposed configuration (the reader does not know it yet):
//! ```text
//! vrrp_xdp_check chk_web {
//!     http_get {
//!         url http://192.0.2.10:8080/health   # IP literal; names are not resolved
//!         status 200                          # default 200
//!         body "ok"                           # optional substring of the body
//!         host www.example.com                # optional Host header
//!     }
//!     interval 2  timeout 1  rise 2  fall 2  weight -20 [reverse]  [init_fail]
//! }
//! vrrp_xdp_check chk_db { tcp 192.0.2.20:5432  interval 1  fall 3  weight 0 }
//! vrrp_instance VI_1 { ... track_script { chk_web  chk_db } }
//! ```
//! HTTPS is not implemented: it needs a TLS stack (rustls + a crypto provider), which is not
//! a small dependency.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Weight;

/// A built-in check, referenced from instances by name in `track_script`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinCheck {
    pub name: String,
    pub kind: BuiltinKind,
    /// Default 1 s (as `vrrp_script`).
    pub interval: Duration,
    /// 0 = the interval (as `vrrp_script`).
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    pub weight: Weight,
    pub init_fail: bool,
}

impl BuiltinCheck {
    /// A check with `vrrp_script`'s defaults (interval 1 s, rise/fall 1, weight 0).
    pub fn new(name: impl Into<String>, kind: BuiltinKind) -> Self {
        Self {
            name: name.into(),
            kind,
            interval: Duration::from_secs(1),
            timeout: Duration::ZERO,
            rise: 1,
            fall: 1,
            weight: Weight {
                value: 0,
                reverse: false,
            },
            init_fail: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuiltinKind {
    /// Up when a TCP connection to `addr` completes within the timeout.
    Tcp {
        addr: SocketAddr,
    },
    Http(HttpCheck),
}

/// `GET path` over HTTP/1.0 (so no chunked encoding), `Connection: close`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    pub addr: SocketAddr,
    pub path: String,
    /// Host header; defaults to the URL's authority.
    pub host: String,
    pub expect_status: u16,
    /// Substring the body must contain.
    pub expect_body: Option<String>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UrlError {
    #[error("only http:// URLs are supported (HTTPS is not implemented)")]
    Scheme,
    #[error("the URL host must be an IP address (names are not resolved): '{0}'")]
    Host(String),
    #[error("bad port in '{0}'")]
    Port(String),
}

impl HttpCheck {
    /// Parse `http://IP[:PORT][/PATH]` (IPv6 as `[addr]`). Status 200, no body check.
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        let rest = url.strip_prefix("http://").ok_or(UrlError::Scheme)?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, tail) = v6
                .split_once(']')
                .ok_or_else(|| UrlError::Host(authority.into()))?;
            (h, tail.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let ip: IpAddr = host.parse().map_err(|_| UrlError::Host(host.into()))?;
        let port = match port {
            None => 80,
            Some(p) => p.parse().map_err(|_| UrlError::Port(authority.into()))?,
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            path,
            host: authority.to_string(),
            expect_status: 200,
            expect_body: None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("i/o: {0}")]
    Io(std::io::Error),
    #[error("timed out")]
    Timeout,
    #[error("malformed HTTP response")]
    BadResponse,
    #[error("HTTP status {got}, expected {want}")]
    Status { got: u16, want: u16 },
    #[error("body does not contain the expected text")]
    Body,
}

/// Responses larger than this are cut (the body check sees the first 64 KiB).
const MAX_RESPONSE: usize = 64 * 1024;

/// Run one probe, bounded by `timeout`.
pub async fn probe(kind: &BuiltinKind, timeout: Duration) -> Result<String, ProbeError> {
    match tokio::time::timeout(timeout, probe_inner(kind)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout),
    }
}

async fn probe_inner(kind: &BuiltinKind) -> Result<String, ProbeError> {
    match kind {
        BuiltinKind::Tcp { addr } => {
            TcpStream::connect(addr)
                .await
                .map_err(ProbeError::Connect)?;
            Ok("connected".into())
        }
        BuiltinKind::Http(h) => http_get(h).await,
    }
}

async fn http_get(h: &HttpCheck) -> Result<String, ProbeError> {
    let mut s = TcpStream::connect(h.addr)
        .await
        .map_err(ProbeError::Connect)?;
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: vrrp-xdp-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        h.path, h.host
    );
    s.write_all(req.as_bytes()).await.map_err(ProbeError::Io)?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s.read(&mut buf).await.map_err(ProbeError::Io)?;
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&buf[..n]);
        if resp.len() >= MAX_RESPONSE || complete(&resp) {
            break;
        }
    }
    let (status, body) = parse_response(&resp).ok_or(ProbeError::BadResponse)?;
    if status != h.expect_status {
        return Err(ProbeError::Status {
            got: status,
            want: h.expect_status,
        });
    }
    if let Some(want) = &h.expect_body
        && !contains(body, want.as_bytes())
    {
        return Err(ProbeError::Body);
    }
    Ok(format!("HTTP {status}"))
}

fn header_end(resp: &[u8]) -> Option<usize> {
    resp.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
}

/// The whole response is in when Content-Length bytes of body have arrived (otherwise read to
/// EOF, the server closes with `Connection: close`).
fn complete(resp: &[u8]) -> bool {
    let Some(end) = header_end(resp) else {
        return false;
    };
    let head = String::from_utf8_lossy(&resp[..end]);
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .is_some_and(|len| resp.len() - end >= len)
}

/// Status code and body of a raw HTTP/1.x response.
fn parse_response(resp: &[u8]) -> Option<(u16, &[u8])> {
    let line_end = resp.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&resp[..line_end]).ok()?;
    let mut parts = line.split_ascii_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let body = header_end(resp).map_or(&[][..], |e| &resp[e..]);
    Some((status, body))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parsing() {
        let h = HttpCheck::from_url("http://192.0.2.10:8080/health?x=1").unwrap();
        assert_eq!(h.addr, "192.0.2.10:8080".parse().unwrap());
        assert_eq!(
            (h.path.as_str(), h.host.as_str()),
            ("/health?x=1", "192.0.2.10:8080")
        );
        let h = HttpCheck::from_url("http://[2001:db8::1]").unwrap();
        assert_eq!(h.addr, "[2001:db8::1]:80".parse().unwrap());
        assert_eq!(h.path, "/");
        let h = HttpCheck::from_url("http://127.0.0.1?q").unwrap();
        assert_eq!(h.path, "/?q");
        assert_eq!(
            HttpCheck::from_url("https://127.0.0.1/"),
            Err(UrlError::Scheme)
        );
        assert!(matches!(
            HttpCheck::from_url("http://example.com/"),
            Err(UrlError::Host(_))
        ));
        assert!(matches!(
            HttpCheck::from_url("http://127.0.0.1:x/"),
            Err(UrlError::Port(_))
        ));
    }

    #[test]
    fn response_parsing() {
        let r = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown";
        assert_eq!(parse_response(r), Some((503, &b"down"[..])));
        assert!(complete(r));
        assert!(!complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
        ));
        assert_eq!(parse_response(b"garbage\r\n\r\n"), None);
        assert_eq!(parse_response(b""), None);
        assert!(contains(b"all ok here", b"ok"));
        assert!(!contains(b"nope", b"ok"));
    }
}
