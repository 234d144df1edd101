//! Built-in check definitions (`vrrp_xdp_check`): what the configuration says; the tracker
//! runs them (`track::builtin`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::Weight;

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

/// `GET path` over HTTP/1.0 (so no chunked encoding), `Connection: close`; over TLS for
/// `https://` URLs (the server certificate is not verified, see `track::builtin`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    pub addr: SocketAddr,
    /// `https://`: TLS without certificate verification.
    pub tls: bool,
    pub path: String,
    /// Host header; defaults to the URL's authority.
    pub host: String,
    pub expect_status: u16,
    /// Substring the body must contain.
    pub expect_body: Option<String>,
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum UrlError {
    #[error("only http:// and https:// URLs are supported")]
    Scheme,
    #[error("the URL host must be an IP address (names are not resolved): '{0}'")]
    Host(String),
    #[error("bad port in '{0}'")]
    Port(String),
}

impl HttpCheck {
    /// Parse `http[s]://IP[:PORT][/PATH]` (IPv6 as `[addr]`; port 80, or 443 for https).
    /// Status 200, no body check. The scheme is matched case-insensitively.
    pub fn from_url(url: &str) -> Result<Self, UrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(UrlError::Scheme)?;
        let tls = if scheme.eq_ignore_ascii_case("http") {
            false
        } else if scheme.eq_ignore_ascii_case("https") {
            true
        } else {
            return Err(UrlError::Scheme);
        };
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
            None if tls => 443,
            None => 80,
            Some(p) => p.parse().map_err(|_| UrlError::Port(authority.into()))?,
        };
        Ok(Self {
            addr: SocketAddr::new(ip, port),
            tls,
            path,
            host: authority.to_string(),
            expect_status: 200,
            expect_body: None,
        })
    }
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
        assert!(!h.tls);
        let h = HttpCheck::from_url("https://127.0.0.1/").unwrap();
        assert!(h.tls);
        assert_eq!(h.addr, "127.0.0.1:443".parse().unwrap());
        let h = HttpCheck::from_url("HTTPS://[::1]:8443/x").unwrap();
        assert_eq!((h.tls, h.addr), (true, "[::1]:8443".parse().unwrap()));
        assert_eq!(
            HttpCheck::from_url("ftp://127.0.0.1/"),
            Err(UrlError::Scheme)
        );
        assert_eq!(HttpCheck::from_url("127.0.0.1/"), Err(UrlError::Scheme));
        assert!(matches!(
            HttpCheck::from_url("http://example.com/"),
            Err(UrlError::Host(_))
        ));
        assert!(matches!(
            HttpCheck::from_url("http://127.0.0.1:x/"),
            Err(UrlError::Port(_))
        ));
    }
}
