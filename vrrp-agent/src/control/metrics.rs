//! Prometheus metrics: the text exposition format (0.0.4) rendered from a [`Snapshot`], and a
//! minimal HTTP/1.1 endpoint serving `GET /metrics`.
//!
//! Hand-written on purpose: the format is a few lines of text and the endpoint one route, so a
//! metrics library or web framework would only add dependencies to the daemon.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::{ControlError, InstanceStatus, Snapshot};

/// The `Content-Type` of the classic Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Requests heads larger than this are refused (431).
const MAX_HEAD: usize = 8192;
/// Whole request/response exchange, so a slow or silent client cannot hold a slot.
const CONN_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that sent no complete request head by then is closed: scrapers send theirs at
/// once, so only idle or hostile clients wait that long.
const HEAD_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_CONNECTIONS: usize = 16;

/// Why binding `addr` deserves a warning, if it does: the endpoint has no authentication, so
/// anything that can reach a non-loopback address reads the instances, peers and counters.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    (!addr.ip().is_loopback()).then(|| {
        format!(
            "metrics endpoint on {addr}, not a loopback address: it has no authentication, so \
             whoever reaches it reads the instances, peers and counters (bind 127.0.0.1 or \
             [::1], or filter the port)"
        )
    })
}

/// One connection being served, oldest first in [`MetricsServer::run`]'s list.
struct Conn {
    task: tokio::task::AbortHandle,
    /// Set once its request head has arrived: from then on it is being answered, not idle.
    busy: Arc<AtomicBool>,
}

/// Renders the snapshot in the Prometheus text format.
pub fn render_metrics(snap: &Snapshot) -> String {
    let mut w = Writer::default();
    let insts = &snap.instances;

    w.family("vrrp_agent_info", "gauge", "vrrp-agent build information.");
    w.sample("vrrp_agent_info", &[("version", &snap.version)], 1);
    w.family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
    );
    w.sample("process_start_time_seconds", &[], snap.started_at_unix);

    w.family(
        "vrrp_instance_state",
        "gauge",
        "VRRP instance state: 1 for the current state, 0 for the others.",
    );
    for i in insts {
        for s in super::InstanceState::ALL {
            let v = u64::from(i.state == s);
            instance_sample(
                &mut w,
                "vrrp_instance_state",
                i,
                Some(("state", s.as_str())),
                v,
            );
        }
    }
    w.family(
        "vrrp_instance_priority",
        "gauge",
        "VRRP priority: configured (base) and after tracking (effective).",
    );
    for i in insts {
        for (kind, p) in [
            ("base", i.priority_base),
            ("effective", i.priority_effective),
        ] {
            let v = u64::from(p);
            instance_sample(&mut w, "vrrp_instance_priority", i, Some(("kind", kind)), v);
        }
    }
    w.family(
        "vrrp_instance_advert_interval_seconds",
        "gauge",
        "Configured advertisement interval.",
    );
    for i in insts {
        let secs = ms_to_secs(i.advert_interval_ms);
        instance_sample(
            &mut w,
            "vrrp_instance_advert_interval_seconds",
            i,
            None,
            secs,
        );
    }
    w.family(
        "vrrp_instance_peers",
        "gauge",
        "Other routers currently heard on the VRID.",
    );
    for i in insts {
        let n = u64::try_from(i.peers.len()).unwrap_or(u64::MAX);
        w.sample("vrrp_instance_peers", &[("instance", &i.name)], n);
    }
    w.family(
        "vrrp_heartbeat_adverts_sent_total",
        "counter",
        "Adverts sent on a vrrp_xdp_heartbeat path (to all its peers).",
    );
    for i in insts {
        for h in &i.heartbeat_paths {
            let labels = [("instance", i.name.as_str()), ("interface", &h.interface)];
            w.sample("vrrp_heartbeat_adverts_sent_total", &labels, h.adverts_sent);
        }
    }
    w.family(
        "vrrp_heartbeat_adverts_received_total",
        "counter",
        "Adverts heard from a peer on a vrrp_xdp_heartbeat path (liveness only).",
    );
    for i in insts {
        for h in &i.heartbeat_paths {
            for p in &h.peers {
                let labels = [
                    ("instance", i.name.as_str()),
                    ("interface", &h.interface),
                    ("peer", &p.addr),
                ];
                w.sample(
                    "vrrp_heartbeat_adverts_received_total",
                    &labels,
                    p.adverts_received,
                );
            }
        }
    }
    w.family(
        "vrrp_split_brain_alarm",
        "gauge",
        "1 during a split-brain episode: while master, another master's adverts or another MAC claiming a virtual address.",
    );
    for i in insts {
        let v = u64::from(i.split_brain_alarm);
        w.sample("vrrp_split_brain_alarm", &[("instance", &i.name)], v);
    }
    w.family(
        "vrrp_split_brain_episodes_total",
        "counter",
        "Split-brain episodes (each ran the split-brain and fence hooks once).",
    );
    for i in insts {
        w.sample(
            "vrrp_split_brain_episodes_total",
            &[("instance", &i.name)],
            i.split_brain_episodes,
        );
    }
    w.family(
        "vrrp_vip_conflicts_total",
        "counter",
        "ARP/NA claims on the virtual addresses from other MACs while master.",
    );
    for i in insts {
        w.sample(
            "vrrp_vip_conflicts_total",
            &[("instance", &i.name)],
            i.vip_conflicts,
        );
    }
    for (name, help, get) in [
        (
            "vrrp_vips_restored_total",
            "VIPs put back after something else removed them while master.",
            (|i: &super::InstanceStatus| i.vips_restored) as fn(&super::InstanceStatus) -> u64,
        ),
        (
            "vrrp_vip_removals_held_total",
            "VIP removals whose restore waited for the back-off (something keeps removing them).",
            |i| i.vip_removals_held,
        ),
        (
            "vrrp_peers_evicted_total",
            "Peers dropped from the bounded peer table to make room (spoofed sources).",
            |i| i.peers_evicted,
        ),
        (
            "vrrp_checksum_form_mismatches_total",
            "Adverts in the other VRRPv3 checksum form than the one we send.",
            |i| i.checksum_form_mismatches,
        ),
    ] {
        w.family(name, "counter", help);
        for i in insts {
            w.sample(name, &[("instance", &i.name)], get(i));
        }
    }

    w.family(
        "vrrp_transitions_total",
        "counter",
        "State transitions, by reason.",
    );
    for i in insts {
        for (reason, n) in &i.transitions {
            let labels = [("instance", i.name.as_str()), ("reason", reason.as_str())];
            w.sample("vrrp_transitions_total", &labels, *n);
        }
    }
    let per_instance: [CounterOf; 4] = [
        ("vrrp_adverts_sent_total", "Advertisements sent.", |i| {
            i.adverts_sent
        }),
        (
            "vrrp_adverts_received_total",
            "Advertisements received and accepted.",
            |i| i.adverts_received,
        ),
        (
            "vrrp_priority_zero_sent_total",
            "Priority 0 advertisements sent (master resigning).",
            |i| i.priority_zero_sent,
        ),
        (
            "vrrp_priority_zero_received_total",
            "Priority 0 advertisements received.",
            |i| i.priority_zero_received,
        ),
    ];
    for (name, help, get) in per_instance {
        w.family(name, "counter", help);
        for i in insts {
            w.sample(name, &[("instance", &i.name)], get(i));
        }
    }
    w.family(
        "vrrp_advert_drops_total",
        "counter",
        "Advertisements discarded by the agent's receive checks, by reason.",
    );
    for i in insts {
        for (reason, n) in &i.drops {
            let labels = [("instance", i.name.as_str()), ("reason", reason.as_str())];
            w.sample("vrrp_advert_drops_total", &labels, *n);
        }
    }

    let dps = &snap.dataplanes;
    w.family(
        "vrrp_dataplane_info",
        "gauge",
        "Receive path per interface (mode: native, generic, raw-socket).",
    );
    for d in dps {
        let labels = [
            ("interface", d.interface.as_str()),
            ("mode", d.mode.as_str()),
        ];
        w.sample("vrrp_dataplane_info", &labels, 1);
    }
    w.family(
        "vrrp_xdp_packets_total",
        "counter",
        "Packets seen by the XDP program, by verdict reason.",
    );
    for d in dps {
        for (reason, n) in &d.counters {
            let labels = [
                ("interface", d.interface.as_str()),
                ("reason", reason.as_str()),
            ];
            w.sample("vrrp_xdp_packets_total", &labels, *n);
        }
    }
    w.family(
        "vrrp_xdp_foreign_vrid_adverts_total",
        "counter",
        "Advertisements for VRIDs not configured on the interface.",
    );
    for d in dps {
        for f in &d.foreign_vrids {
            let vrid = f.vrid.to_string();
            let labels = [
                ("interface", d.interface.as_str()),
                ("vrid", vrid.as_str()),
                ("family", f.family.as_str()),
            ];
            w.sample("vrrp_xdp_foreign_vrid_adverts_total", &labels, f.adverts);
        }
    }
    w.family(
        "vrrp_arp_replies_total",
        "counter",
        "ARP requests for virtual addresses answered by the XDP program.",
    );
    for d in dps {
        let labels = [("interface", d.interface.as_str())];
        w.sample("vrrp_arp_replies_total", &labels, d.arp_replies);
    }
    w.family(
        "vrrp_nd_replies_total",
        "counter",
        "Neighbor solicitations for virtual addresses answered by the XDP program.",
    );
    for d in dps {
        let labels = [("interface", d.interface.as_str())];
        w.sample("vrrp_nd_replies_total", &labels, d.ns_replies);
    }
    w.family(
        "vrrp_xdp_tx_errors_total",
        "counter",
        "Replies the XDP program failed to transmit.",
    );
    for d in dps {
        if let Some(n) = d.xdp_tx_errors {
            let labels = [("interface", d.interface.as_str())];
            w.sample("vrrp_xdp_tx_errors_total", &labels, n);
        }
    }

    let checks = &snap.checks;
    w.family(
        "vrrp_check_up",
        "gauge",
        "1 if the tracked check currently succeeds.",
    );
    for c in checks {
        w.sample("vrrp_check_up", &[("check", &c.name)], u64::from(c.up));
    }
    w.family("vrrp_check_runs_total", "counter", "Check runs.");
    for c in checks {
        w.sample("vrrp_check_runs_total", &[("check", &c.name)], c.runs);
    }
    w.family("vrrp_check_failures_total", "counter", "Failed check runs.");
    for c in checks {
        w.sample(
            "vrrp_check_failures_total",
            &[("check", &c.name)],
            c.failures,
        );
    }
    w.family(
        "vrrp_check_duration_seconds",
        "gauge",
        "Duration of the last finished check run.",
    );
    for c in checks {
        if let Some(ms) = c.last_duration_ms {
            let secs = ms_to_secs(ms);
            w.sample("vrrp_check_duration_seconds", &[("check", &c.name)], secs);
        }
    }
    w.out
}

/// A per-instance counter: name, help, accessor.
type CounterOf = (&'static str, &'static str, fn(&InstanceStatus) -> u64);

/// A sample labelled with the instance's identity, plus one extra label.
fn instance_sample(
    w: &mut Writer,
    name: &str,
    i: &InstanceStatus,
    extra: Option<(&str, &str)>,
    value: impl Into<Value>,
) {
    let vrid = i.vrid.to_string();
    let mut labels = vec![
        ("instance", i.name.as_str()),
        ("interface", i.interface.as_str()),
        ("vrid", vrid.as_str()),
        ("family", i.family.as_str()),
    ];
    labels.extend(extra);
    w.sample(name, &labels, value);
}

fn ms_to_secs(ms: u64) -> f64 {
    // Precision loss only above 2^53 ms, far beyond any interval or duration.
    #[expect(clippy::cast_precision_loss, reason = "see above")]
    let ms = ms as f64;
    ms / 1000.0
}

enum Value {
    U(u64),
    F(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::U(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::F(v)
    }
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (n, (k, v)) in labels.iter().enumerate() {
                if n > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        self.out.push(' ');
        match value.into() {
            Value::U(v) => {
                let _ = write!(self.out, "{v}");
            }
            Value::F(v) if v.is_nan() => self.out.push_str("NaN"),
            Value::F(v) if v.is_infinite() => {
                self.out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
            }
            // Rust's Display never uses an exponent and round-trips, which Prometheus parses.
            Value::F(v) => {
                let _ = write!(self.out, "{v}");
            }
        }
        self.out.push('\n');
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text escapes backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A bound metrics endpoint.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
}

impl MetricsServer {
    pub async fn bind(addr: SocketAddr) -> Result<Self, ControlError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ControlError::BindTcp { addr, source })?;
        if let Some(w) = exposure_warning(addr) {
            tracing::warn!("{w}");
        }
        Ok(Self { listener })
    }

    /// The bound address (to learn the port after binding port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the snapshot sender is dropped; open connections are aborted when this
    /// returns or its future is dropped.
    ///
    /// At most [`MAX_CONNECTIONS`] at once. When all are taken, a new connection replaces the
    /// oldest one that has not sent its request yet, so idle connections (a client's pool, a
    /// port scan, a hostile host) never keep a scrape out; only when every slot is answering a
    /// request is the new one refused.
    pub async fn run(self, rx: watch::Receiver<Snapshot>) -> Result<(), ControlError> {
        let mut conns = JoinSet::new();
        let mut open: Vec<Conn> = Vec::new();
        let mut closed = rx.clone();
        loop {
            tokio::select! {
                res = self.listener.accept() => match res {
                    Ok((stream, _)) => {
                        open.retain(|c| !c.task.is_finished());
                        if open.len() >= MAX_CONNECTIONS {
                            match open.iter().position(|c| !c.busy.load(Ordering::Relaxed)) {
                                Some(i) => {
                                    open.remove(i).task.abort();
                                    tracing::debug!("metrics: all slots taken, closing the oldest idle connection");
                                }
                                None => {
                                    tracing::debug!("metrics: too many connections, refusing one");
                                    continue;
                                }
                            }
                        }
                        let rx = rx.clone();
                        let busy = Arc::new(AtomicBool::new(false));
                        let flag = Arc::clone(&busy);
                        let task = conns.spawn(async move {
                            let _ = timeout(CONN_TIMEOUT, handle_conn(stream, &rx, &flag)).await;
                        });
                        open.push(Conn { task, busy });
                    }
                    Err(e) => {
                        tracing::warn!("metrics: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                res = closed.changed() => if res.is_err() {
                    return Ok(());
                },
            }
        }
    }
}

/// Binds `addr` and serves `GET /metrics` until the snapshot sender is dropped.
pub async fn serve_metrics(
    addr: SocketAddr,
    rx: watch::Receiver<Snapshot>,
) -> Result<(), ControlError> {
    MetricsServer::bind(addr).await?.run(rx).await
}

enum Head {
    Complete(Vec<u8>),
    TooLarge,
    Closed,
}

async fn read_head(stream: &mut TcpStream) -> std::io::Result<Head> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            // A head cut short is still answered (with 400 if it does not parse).
            return Ok(if buf.is_empty() {
                Head::Closed
            } else {
                Head::Complete(buf)
            });
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find_head_end(&buf) {
            buf.truncate(end);
            return Ok(Head::Complete(buf));
        }
        if buf.len() > MAX_HEAD {
            return Ok(Head::TooLarge);
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn handle_conn(mut stream: TcpStream, rx: &watch::Receiver<Snapshot>, busy: &AtomicBool) {
    let response = match timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(Head::Complete(head))) => {
            busy.store(true, Ordering::Relaxed);
            respond(&head, rx)
        }
        Ok(Ok(Head::TooLarge)) => {
            busy.store(true, Ordering::Relaxed);
            plain(
                431,
                "Request Header Fields Too Large",
                "request too large\n",
            )
        }
        Ok(Ok(Head::Closed) | Err(_)) | Err(_) => return,
    };
    if stream.write_all(&response).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    // Drain what the client still sends (a body we ignore), so closing does not reset the
    // connection before it read the response.
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match timeout(Duration::from_secs(1), stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

fn respond(head: &[u8], rx: &watch::Receiver<Snapshot>) -> Vec<u8> {
    let Some(line) = head.split(|b| *b == b'\n').next() else {
        return plain(400, "Bad Request", "bad request\n");
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let Ok(line) = std::str::from_utf8(line) else {
        return plain(400, "Bad Request", "bad request\n");
    };
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return plain(400, "Bad Request", "bad request\n");
    };
    if !version.starts_with("HTTP/1.") {
        return plain(400, "Bad Request", "bad request\n");
    }
    let path = target.split('?').next().unwrap_or_default();
    if path != "/metrics" {
        return plain(404, "Not Found", "not found; try /metrics\n");
    }
    match *method {
        "GET" | "HEAD" => {
            let body = render_metrics(&rx.borrow());
            response(
                200,
                "OK",
                CONTENT_TYPE,
                &[],
                body.as_bytes(),
                *method == "HEAD",
            )
        }
        _ => response(
            405,
            "Method Not Allowed",
            "text/plain; charset=utf-8",
            &[("Allow", "GET, HEAD")],
            b"method not allowed\n",
            false,
        ),
    }
}

fn plain(code: u16, reason: &str, body: &str) -> Vec<u8> {
    response(
        code,
        reason,
        "text/plain; charset=utf-8",
        &[],
        body.as_bytes(),
        false,
    )
}

fn response(
    code: u16,
    reason: &str,
    content_type: &str,
    extra: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        let _ = write!(s, "{k}: {v}\r\n");
    }
    s.push_str("\r\n");
    let mut out = s.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}
