//! Built-in checks that need no shell: TCP connect and HTTP GET over plain TCP or TLS.
//!
//! Proposed configuration (the reader does not know it yet):
//! ```text
//! vrrp_xdp_check chk_web {
//!     http_get {
//!         url http://192.0.2.10:8080/health   # IP literal; names are not resolved
//!                                             # (or https://..., default port 443)
//!         status 200                          # default 200
//!         body "ok"                           # optional substring of the body
//!         host www.example.com                # optional Host header
//!     }
//!     interval 2  timeout 1  rise 2  fall 2  weight -20 [reverse]  [init_fail]
//! }
//! vrrp_xdp_check chk_db { tcp 192.0.2.20:5432  interval 1  fall 3  weight 0 }
//! vrrp_instance VI_1 { ... track_script { chk_web  chk_db } }
//! ```
//!
//! HTTPS (keepalived's `SSL_GET`) runs the same request over TLS (rustls, `ring` provider,
//! TLS 1.2 and 1.3). **The server certificate is not verified** — not its chain, name or
//! validity dates — as keepalived's `SSL_GET` does by default: health checks usually hit
//! internal services with self-signed certificates, and the check only asks "does the service
//! answer correctly". The handshake signature is still checked against the presented
//! certificate's key. SNI carries the `host` value (without its port) when it is a DNS name;
//! for an IP literal (the default, as the URL host is always an IP) no SNI is sent. Connect,
//! handshake, request and response together are bounded by the check's `timeout`.

use std::time::Duration;

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub use crate::config::{BuiltinCheck, BuiltinKind, HttpCheck, UrlError};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The TLS handshake failed (e.g. a plain-HTTP server behind an `https://` URL).
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
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
    let tcp = TcpStream::connect(h.addr)
        .await
        .map_err(ProbeError::Connect)?;
    let _ = tcp.set_nodelay(true);
    let (proto, resp) = if h.tls {
        let connector = TlsConnector::from(tls_config());
        let tls = connector
            .connect(server_name(h), tcp)
            .await
            .map_err(ProbeError::Tls)?;
        ("HTTPS", exchange(h, tls).await?)
    } else {
        ("HTTP", exchange(h, tcp).await?)
    };
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
    Ok(format!("{proto} {status}"))
}

/// Send the request and read the raw response (up to `MAX_RESPONSE`).
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    h: &HttpCheck,
    mut s: S,
) -> Result<Vec<u8>, ProbeError> {
    let req = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: vrrp-xdp-check\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        h.path, h.host
    );
    s.write_all(req.as_bytes()).await.map_err(ProbeError::Io)?;
    s.flush().await.map_err(ProbeError::Io)?;
    let mut resp = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match s.read(&mut buf).await {
            Ok(n) => n,
            // Many HTTPS servers close without a TLS close_notify; what arrived is the response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !resp.is_empty() => 0,
            Err(e) => return Err(ProbeError::Io(e)),
        };
        if n == 0 {
            break;
        }
        resp.extend_from_slice(&buf[..n]);
        if resp.len() >= MAX_RESPONSE || complete(&resp) {
            break;
        }
    }
    Ok(resp)
}

/// SNI: the `host` value without its port when it is a DNS name; for an IP literal rustls
/// sends no SNI.
fn server_name(h: &HttpCheck) -> ServerName<'static> {
    let host = &h.host;
    let name = if let Some(v6) = host.strip_prefix('[') {
        v6.split_once(']').map_or(v6, |(a, _)| a)
    } else {
        match host.rsplit_once(':') {
            // A bare IPv6 address has several colons: leave it whole.
            Some((n, p)) if !n.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => host,
        }
    };
    match ServerName::try_from(name) {
        Ok(ServerName::DnsName(d)) => ServerName::DnsName(d.to_owned()),
        _ => ServerName::IpAddress(h.addr.ip().into()),
    }
}

/// One client configuration for all HTTPS checks: ring, TLS 1.2/1.3, no verification.
fn tls_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let verifier = Arc::new(NoCertificateVerification(
                provider.signature_verification_algorithms,
            ));
            let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(verifier)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts any server certificate (as keepalived's `SSL_GET` without `verify`), but still
/// checks the handshake signature against the certificate's key.
#[derive(Debug)]
struct NoCertificateVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoCertificateVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
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
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn sni_only_for_dns_names() {
        let mut h = HttpCheck::from_url("https://192.0.2.10:8443/").unwrap();
        let ip = |s: &str| ServerName::IpAddress(s.parse::<IpAddr>().unwrap().into());
        assert_eq!(server_name(&h), ip("192.0.2.10"));
        h.host = "www.example.com:8443".into();
        assert_eq!(
            server_name(&h),
            ServerName::try_from("www.example.com").unwrap()
        );
        h.host = "www.example.com".into();
        assert_eq!(
            server_name(&h),
            ServerName::try_from("www.example.com").unwrap()
        );
        h.host = "[2001:db8::1]:8443".into();
        assert_eq!(server_name(&h), ip("192.0.2.10"));
        h.host = "2001:db8::1".into();
        assert_eq!(server_name(&h), ip("192.0.2.10"));
        h.host = "bad name!".into();
        assert_eq!(server_name(&h), ip("192.0.2.10"));
        // Building the configuration must not panic.
        let _ = tls_config();
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
