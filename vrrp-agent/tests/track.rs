//! Tracking I/O: scripts (rise/fall, timeout kill, no overlap), built-in TCP/HTTP checks,
//! track_file, track_process and interfaces, through `Tracker`'s event stream. No root needed.
//! No speed assertions: "eventually" waits use generous deadlines.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::Receiver;
use tokio_rustls::TlsAcceptor;
use vrrp_agent::config::{self, Config, Span, TrackRef, TrackSpec, Weight};
use vrrp_agent::proto::Priority;
use vrrp_agent::track::builtin::probe;
use vrrp_agent::track::{
    BuiltinCheck, BuiltinKind, CheckKind, HttpCheck, ProbeError, TrackEvent, Tracker,
    TrackerOptions,
};

const DEADLINE: Duration = Duration::from_secs(20);

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vrrp-track-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One instance VI_1 (priority 100) on `lo`, plus `extra` top-level blocks and `track`
/// lines inside the instance.
fn config(extra: &str, track: &str) -> Config {
    let text = format!(
        "{extra}\nvrrp_instance VI_1 {{\n interface lo\n virtual_router_id 1\n priority 100\n \
         virtual_ipaddress {{\n 192.0.2.1\n }}\n{track}\n}}\n"
    );
    match config::parse_str(&text, "t.conf") {
        Ok(l) => l.config,
        Err(e) => panic!("config: {e}\n{text}"),
    }
}

/// A `vrrp_script` running `/bin/sh FILE` (not exec'ing the file itself avoids ETXTBSY
/// races with other tests forking while it is being written).
fn script(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, body).unwrap();
    format!(
        "vrrp_script {name} {{\n script \"/bin/sh {}\"\n}}",
        path.display()
    )
}

fn fast(cfg: &mut Config, interval_ms: u64, timeout_ms: u64, rise: u32, fall: u32) {
    for s in &mut cfg.scripts {
        s.interval = Duration::from_millis(interval_ms);
        s.timeout = Duration::from_millis(timeout_ms);
        s.rise = rise;
        s.fall = fall;
    }
}

fn opts() -> TrackerOptions {
    TrackerOptions {
        file_poll: Duration::from_millis(50),
        process_poll: Duration::from_millis(50),
        ..TrackerOptions::default()
    }
}

fn track_ref(name: &str, weight: Option<i16>) -> TrackRef {
    TrackRef {
        name: name.into(),
        weight: weight.map(|value| Weight {
            value,
            reverse: false,
        }),
        span: Span::new("t.conf", 1, 1),
    }
}

/// Wait for the next event matching `want`, skipping others.
async fn until(
    rx: &mut Receiver<TrackEvent>,
    what: &str,
    want: impl Fn(&TrackEvent) -> bool,
) -> TrackEvent {
    let r = tokio::time::timeout(DEADLINE, async {
        while let Some(ev) = rx.recv().await {
            if want(&ev) {
                return Some(ev);
            }
        }
        None
    })
    .await;
    match r {
        Ok(Some(ev)) => ev,
        _ => panic!("no event: {what}"),
    }
}

fn prio(p: u8, fault: bool) -> impl Fn(&TrackEvent) -> bool {
    move |e| e.instance == "VI_1" && e.tracked.priority == Priority(p) && e.tracked.fault == fault
}

async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let r = tokio::time::timeout(DEADLINE, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "never: {what}");
}

/// Gone, or a zombie no one reaped yet (this container may lack a reaping init).
fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, r)| r.trim_start().starts_with('Z')),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_toggles_after_rise_and_fall() {
    let d = tmpdir("rise");
    let flag = d.join("ok");
    std::fs::write(&flag, "").unwrap();
    let s = script(&d, "chk", &format!("test -e {}\n", flag.display()));
    let mut cfg = config(&s, "track_script {\n chk weight -20\n}");
    fast(&mut cfg, 50, 2000, 2, 2);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    // Initial value: unknown script, weight -20 → nothing subtracted.
    until(&mut rx, "initial 100", prio(100, false)).await;
    eventually("first success", || t.checks()[0].up).await;
    std::fs::remove_file(&flag).unwrap();
    until(&mut rx, "down after fall", prio(80, false)).await;
    let c = t.checks();
    assert_eq!((c[0].kind, c[0].up), (CheckKind::Script, false));
    assert!(c[0].failures >= 2, "fall 2 needs two failures: {c:?}");
    assert_eq!(c[0].last_result, "exit 1");
    let failures = c[0].failures;
    std::fs::write(&flag, "").unwrap();
    until(&mut rx, "up after rise", prio(100, false)).await;
    let c = t.checks();
    assert!(
        c[0].runs - failures >= 3,
        "one earlier success + rise 2: {c:?}"
    );
    assert_eq!(t.current()[0].tracked.priority, Priority(100));
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_script_waits_for_first_result_then_faults() {
    let d = tmpdir("w0");
    let s = script(&d, "chk", "exit 3\n");
    let mut cfg = config(&s, "track_script {\n chk\n}");
    fast(&mut cfg, 100, 2000, 1, 1);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    // The first event already carries the script's result (no "unknown" event before it).
    let ev = until(&mut rx, "first event", |e| e.instance == "VI_1").await;
    assert!(ev.tracked.fault, "{ev:?}");
    assert_eq!(ev.tracked.priority, Priority(100));
    assert!(ev.tracked.reasons[0].contains("chk"), "{ev:?}");
    assert_eq!(t.checks()[0].last_result, "exit 3");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_script_is_killed_at_timeout_and_fails() {
    let d = tmpdir("hang");
    let pids = d.join("pids");
    // The shell and a child of it: both must die (the whole process group is killed).
    let s = script(
        &d,
        "hang",
        &format!(
            "echo $$ >> {p}\nsleep 1000 &\necho $! >> {p}\nwait\n",
            p = pids.display()
        ),
    );
    let mut cfg = config(&s, "track_script {\n hang weight -30\n}");
    fast(&mut cfg, 5000, 300, 1, 1);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    until(&mut rx, "timed out = failed", prio(70, false)).await;
    let c = t.checks();
    assert_eq!(c[0].last_result, "timed out");
    assert_eq!(c[0].failures, 1);
    let written = std::fs::read_to_string(&pids).unwrap();
    let pids: Vec<&str> = written.lines().collect();
    assert_eq!(pids.len(), 2, "{written}");
    for p in pids {
        eventually(&format!("pid {p} gone"), || process_gone(p)).await;
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_never_overlap() {
    let d = tmpdir("overlap");
    let lock = d.join("lock");
    let log = d.join("log");
    // Each run takes ~300 ms with a 50 ms interval: an overlapping run would find the lock.
    let s = script(
        &d,
        "slow",
        &format!(
            "mkdir {l} 2>/dev/null || echo overlap >> {g}\necho run >> {g}\nsleep 0.3\nrmdir {l}\n",
            l = lock.display(),
            g = log.display()
        ),
    );
    let mut cfg = config(&s, "track_script {\n slow weight 10\n}");
    fast(&mut cfg, 50, 5000, 1, 1);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    until(&mut rx, "up", prio(110, false)).await;
    eventually("four runs", || t.checks()[0].runs >= 4).await;
    t.stop().await;
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("overlap"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_kills_running_scripts() {
    let d = tmpdir("stop");
    let pid = d.join("pid");
    let s = script(
        &d,
        "hang",
        &format!("echo $$ > {}\nexec sleep 1000\n", pid.display()),
    );
    let mut cfg = config(&s, "track_script {\n hang weight 5\n}");
    fast(&mut cfg, 1000, 60_000, 1, 1);
    let (t, _rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    eventually("script started", || {
        std::fs::read_to_string(&pid).is_ok_and(|s| !s.trim().is_empty())
    })
    .await;
    let p = std::fs::read_to_string(&pid).unwrap();
    assert!(!process_gone(&p));
    t.stop().await;
    eventually("killed by stop", || process_gone(&p)).await;
}

fn with_builtin(check: BuiltinCheck, weight: Option<i16>) -> (Config, TrackerOptions) {
    let mut cfg = config("", "");
    cfg.instances[0]
        .track_scripts
        .push(track_ref(&check.name, weight));
    cfg.checks.push(check);
    (cfg, opts())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_check_up_and_down() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accept = tokio::spawn(async move {
        loop {
            if l.accept().await.is_err() {
                break;
            }
        }
    });
    let mut c = BuiltinCheck::new("tcp", BuiltinKind::Tcp { addr });
    c.interval = Duration::from_millis(50);
    c.timeout = Duration::from_secs(2);
    c.weight = Weight {
        value: -10,
        reverse: false,
    };
    let (cfg, o) = with_builtin(c, None);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), o);
    until(&mut rx, "initial", prio(100, false)).await;
    eventually("connected", || t.checks()[0].up).await;
    assert_eq!(t.checks()[0].kind, CheckKind::Tcp);
    // Close the listener: connections are refused.
    accept.abort();
    let _ = accept.await;
    until(&mut rx, "refused", prio(90, false)).await;
    assert!(
        t.checks()[0].last_result.starts_with("connect"),
        "{:?}",
        t.checks()
    );
    t.stop().await;
}

/// Answer one HTTP/1.0 request with the current (status, body).
async fn serve_one<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, resp: Arc<Mutex<(u16, String)>>) {
    let mut buf = vec![0u8; 2048];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        // Not HTTP (e.g. a TLS ClientHello): answer 400 and close, as web servers do.
        if !b"GET ".starts_with(&got[..got.len().min(4)]) {
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                .await;
            return;
        }
    }
    let req = String::from_utf8_lossy(&got);
    assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req}");
    assert!(req.contains("\r\nHost: "), "{req}");
    let (code, body) = resp.lock().unwrap().clone();
    let msg = format!(
        "HTTP/1.1 {code} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(msg.as_bytes()).await;
    let _ = s.flush().await;
}

/// A tiny HTTP/1.0 server answering with the current (status, body); over TLS with `tls`.
/// Aborting the returned task closes the listener.
async fn serve(
    resp: Arc<Mutex<(u16, String)>>,
    tls: Option<TlsAcceptor>,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let resp = resp.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => serve_one(s, resp).await,
                    Some(acceptor) => {
                        if let Ok(s) = acceptor.accept(s).await {
                            serve_one(s, resp).await;
                        }
                    }
                }
            });
        }
    });
    (addr, task)
}

async fn http_server(resp: Arc<Mutex<(u16, String)>>) -> SocketAddr {
    serve(resp, None).await.0
}

/// A TLS acceptor with the self-signed test certificate (EC P-256, CN vrrp-xdp-test, SAN
/// 127.0.0.1/localhost), made once with `openssl req -x509 -newkey ec ...`.
fn tls_acceptor() -> TlsAcceptor {
    let cert = CertificateDer::from_pem_slice(include_bytes!("../../testdata/tls/selfsigned.crt"))
        .unwrap();
    let key =
        PrivateKeyDer::from_pem_slice(include_bytes!("../../testdata/tls/selfsigned.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_check_status_and_body() {
    let resp = Arc::new(Mutex::new((200, "all ok".to_string())));
    let addr = http_server(resp.clone()).await;
    let mut h = HttpCheck::from_url(&format!("http://{addr}/health")).unwrap();
    h.expect_body = Some("ok".into());
    let mut c = BuiltinCheck::new("web", BuiltinKind::Http(h));
    c.interval = Duration::from_millis(50);
    c.timeout = Duration::from_secs(2);
    // Weight 0: a failed check faults the instance.
    let (cfg, o) = with_builtin(c, None);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), o);
    until(&mut rx, "up", prio(100, false)).await;
    assert_eq!(t.checks()[0].last_result, "HTTP 200");
    assert_eq!(t.checks()[0].kind, CheckKind::Http);

    *resp.lock().unwrap() = (503, "ok".into());
    until(&mut rx, "status mismatch", prio(100, true)).await;
    assert!(
        t.checks()[0].last_result.contains("503"),
        "{:?}",
        t.checks()
    );

    *resp.lock().unwrap() = (200, "nope".into());
    eventually("body mismatch reported", || {
        t.checks()[0].last_result.contains("body")
    })
    .await;
    assert!(!t.checks()[0].up);

    *resp.lock().unwrap() = (200, "ok".into());
    until(&mut rx, "up again", prio(100, false)).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_check_status_body_and_server_gone() {
    let resp = Arc::new(Mutex::new((200, "all ok".to_string())));
    let (addr, server) = serve(resp.clone(), Some(tls_acceptor())).await;
    let mut h = HttpCheck::from_url(&format!("https://{addr}/health")).unwrap();
    assert!(h.tls);
    h.expect_body = Some("ok".into());
    // SNI for a DNS name in the Host header; the self-signed certificate is not verified.
    h.host = "www.example.com".into();
    let mut c = BuiltinCheck::new("web_tls", BuiltinKind::Http(h));
    c.interval = Duration::from_millis(50);
    c.timeout = Duration::from_secs(2);
    let (cfg, o) = with_builtin(c, None);
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), o);
    until(&mut rx, "up", prio(100, false)).await;
    assert_eq!(t.checks()[0].last_result, "HTTPS 200");
    assert_eq!(t.checks()[0].kind, CheckKind::Http);

    *resp.lock().unwrap() = (503, "ok".into());
    until(&mut rx, "status mismatch", prio(100, true)).await;
    assert!(
        t.checks()[0].last_result.contains("503"),
        "{:?}",
        t.checks()
    );

    *resp.lock().unwrap() = (200, "nope".into());
    eventually("body mismatch reported", || {
        t.checks()[0].last_result.contains("body")
    })
    .await;
    assert!(!t.checks()[0].up);

    *resp.lock().unwrap() = (200, "ok".into());
    until(&mut rx, "up again", prio(100, false)).await;

    server.abort();
    let _ = server.await;
    until(&mut rx, "server gone", prio(100, true)).await;
    assert!(
        t.checks()[0].last_result.contains("connect"),
        "{:?}",
        t.checks()
    );
    t.stop().await;
}

#[tokio::test]
async fn https_probe_errors() {
    let resp = Arc::new(Mutex::new((200, "ok".to_string())));
    let timeout = Duration::from_secs(2);

    // A plain-HTTP server behind an https:// URL: the handshake fails, clearly.
    let (plain, _server) = serve(resp.clone(), None).await;
    let h = HttpCheck::from_url(&format!("https://{plain}/health")).unwrap();
    let e = probe(&BuiltinKind::Http(h), timeout).await.unwrap_err();
    assert!(matches!(e, ProbeError::Tls(_)), "{e:?}");
    // "TLS handshake: received corrupt message of type InvalidContentType"
    assert!(e.to_string().starts_with("TLS handshake: "), "{e}");

    // A server that accepts and never answers the handshake: the check's timeout bounds it.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let h =
        HttpCheck::from_url(&format!("https://{}/health", silent.local_addr().unwrap())).unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let e = probe(&BuiltinKind::Http(h), Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(matches!(e, ProbeError::Timeout), "{e:?}");
    hold.abort();

    // The TLS server works with the default Host (an IP literal: no SNI).
    let (addr, server) = serve(resp, Some(tls_acceptor())).await;
    let h = HttpCheck::from_url(&format!("https://{addr}/health")).unwrap();
    let kind = BuiltinKind::Http(h);
    assert_eq!(probe(&kind, timeout).await.unwrap(), "HTTPS 200");
    server.abort();
    let _ = server.await;
    let e = probe(&kind, timeout).await.unwrap_err();
    assert!(matches!(e, ProbeError::Connect(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_file_value_changes() {
    let d = tmpdir("file");
    let f = d.join("prio");
    std::fs::write(&f, "0\n").unwrap();
    let cfg = config(
        &format!(
            "vrrp_track_file tf {{\n file {}\n weight 2\n}}",
            f.display()
        ),
        "track_file {\n tf\n}",
    );
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    until(&mut rx, "initial", prio(100, false)).await;
    std::fs::write(&f, "10\n").unwrap();
    until(&mut rx, "value 10 × 2", prio(120, false)).await;
    std::fs::write(&f, "-200\n").unwrap();
    until(&mut rx, "-400 clamps to -254: FAULT", prio(100, true)).await;
    std::fs::write(&f, "junk").unwrap();
    std::fs::remove_file(&f).unwrap();
    until(&mut rx, "missing file is 0", prio(100, false)).await;
    assert_eq!(t.checks()[0].kind, CheckKind::File);
    assert_eq!(t.checks()[0].last_result, "value 0");
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_interface_link_changes() {
    let cfg = config(
        "",
        "track_interface {\n vrxdp-nonexist\n vrxdp-other weight -15\n}",
    );
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    // Both absent: down. Unweighted → FAULT; weight -15 subtracts.
    until(&mut rx, "initial", prio(85, true)).await;
    t.link_changed("vrxdp-nonexist", true);
    until(&mut rx, "fault cleared", prio(85, false)).await;
    t.link_changed("vrxdp-other", true);
    until(&mut rx, "weight restored", prio(100, false)).await;
    t.link_changed("eth-untracked", false);
    t.link_changed("vrxdp-nonexist", false);
    until(&mut rx, "fault again", prio(100, true)).await;
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn track_process_quorum() {
    let d = tmpdir("proc");
    // A copy of sleep with a name no other process has.
    let bin = d.join("vrxdp_tproc");
    std::fs::copy("/bin/sleep", &bin).unwrap();
    let cfg = config(
        "vrrp_track_process tp {\n process vrxdp_tproc\n weight 0\n}",
        "track_process {\n tp\n}",
    );
    let (t, mut rx) = Tracker::spawn_with(&TrackSpec::from_config(&cfg), opts());
    until(&mut rx, "not running: fault", prio(100, true)).await;
    let mut child = std::process::Command::new(&bin)
        .arg("1000")
        .spawn()
        .unwrap();
    until(&mut rx, "quorum gained", prio(100, false)).await;
    assert!(t.checks()[0].up);
    child.kill().unwrap();
    child.wait().unwrap();
    until(&mut rx, "quorum lost", prio(100, true)).await;
    t.stop().await;
}
