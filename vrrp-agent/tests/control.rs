//! Control socket, status rendering, Prometheus endpoint and data dump. No root needed.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixStream};
use tokio::sync::{mpsc, watch};
use vrrp_agent::control::{
    CheckStatus, ControlCommand, ControlError, ControlServer, DataPlaneMode, DataPlaneStatus,
    ForeignVrid, HeartbeatPathInfo, HeartbeatPeerInfo, InstanceState, InstanceStatus, IpFamily,
    MetricsServer, PeerInfo, Snapshot, TransitionInfo, client_request, format_duration_ms,
    parse_reply, render_json, render_metrics, render_table, request_status, write_dump,
};

/// A unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vrrp-ctl-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn sample() -> Snapshot {
    let mut snap = Snapshot::new(4242, 1_700_000_000.25);
    snap.generated_at_unix = 1_700_003_600.25;
    snap.router_id = Some("lb1".into());
    snap.config_file = Some("/etc/keepalived/keepalived.conf".into());
    snap.instances = vec![
        InstanceStatus {
            name: "VI_1".into(),
            interface: "eth0".into(),
            vrid: 51,
            family: IpFamily::Ipv4,
            version: 3,
            state: InstanceState::Master,
            priority_base: 150,
            priority_effective: 140,
            master: Some("10.0.0.1".into()),
            master_priority: Some(140),
            advert_interval_ms: 1000,
            master_advert_interval_ms: Some(1000),
            vips: vec![
                "10.0.0.100/24".into(),
                "10.0.0.101/24".into(),
                "10.0.0.102/24".into(),
                "10.0.0.103/24".into(),
            ],
            sync_group: Some("G1".into()),
            fault_reasons: vec![],
            last_transition: Some(TransitionInfo {
                from: InstanceState::Backup,
                to: InstanceState::Master,
                reason: "master-down".into(),
                ago_ms: 312_000,
            }),
            transitions: BTreeMap::from([("startup".into(), 1), ("master-down".into(), 2)]),
            adverts_sent: 1234,
            adverts_received: 56,
            priority_zero_sent: 0,
            priority_zero_received: 1,
            drops: BTreeMap::from([
                ("auth-mismatch".into(), 3),
                ("weird\"re\\ason\nx".into(), 1),
            ]),
            peers: vec![PeerInfo {
                addr: "10.0.0.2".into(),
                priority: 100,
                interval_ms: 1000,
                last_seen_ago_ms: 300,
                checksum_form: None,
            }],
            split_brain_alarm: true,
            split_brain_episodes: 2,
            vip_conflicts: 5,
            timer_wakeups: 17,
            kernel_watch: false,
            master_silent_reports: 1,
            heartbeat_paths: vec![HeartbeatPathInfo {
                interface: "hb0".into(),
                source: "198.51.100.1".into(),
                adverts_sent: 77,
                send_errors: 0,
                decode_errors: 0,
                peers: vec![
                    HeartbeatPeerInfo {
                        addr: "198.51.100.2".into(),
                        adverts_received: 3,
                        priority: Some(100),
                        last_heard_ago_ms: Some(1500),
                    },
                    HeartbeatPeerInfo {
                        addr: "198.51.100.3".into(),
                        ..HeartbeatPeerInfo::default()
                    },
                ],
            }],
            heartbeat_restarts: 0,
            peers_evicted: 0,
            vips_restored: 0,
            vip_removals_held: 0,
            checksum_form_mismatches: 0,
            checksum_auto: true,
            checksum_forms_sent: vec!["pseudo_header".into(), "rfc9568".into()],
        },
        InstanceStatus {
            name: "VI_6".into(),
            interface: "eth1".into(),
            vrid: 7,
            family: IpFamily::Ipv6,
            version: 3,
            state: InstanceState::Fault,
            priority_base: 100,
            priority_effective: 100,
            advert_interval_ms: 100,
            vips: vec!["2001:db8::1/64".into()],
            fault_reasons: vec!["eth1 down".into()],
            ..InstanceStatus::default()
        },
    ];
    snap.dataplanes = vec![
        DataPlaneStatus {
            interface: "eth0".into(),
            mode: DataPlaneMode::Native,
            counters: BTreeMap::from([
                ("advert-consumed".into(), 9000),
                ("advert-to-agent".into(), 12),
                ("bad-ttl".into(), 0),
            ]),
            foreign_vrids: vec![ForeignVrid {
                vrid: 52,
                family: IpFamily::Ipv4,
                adverts: 17,
            }],
            arp_replies: 5,
            ns_replies: 0,
            xdp_tx_errors: Some(0),
            decode_errors: BTreeMap::new(),
            liveness_errors: 0,
        },
        DataPlaneStatus {
            interface: "eth1".into(),
            mode: DataPlaneMode::RawSocket,
            ..DataPlaneStatus::default()
        },
    ];
    snap.checks = vec![
        CheckStatus {
            name: "chk_haproxy".into(),
            kind: "script".into(),
            up: true,
            runs: 120,
            failures: 2,
            last_duration_ms: Some(12),
        },
        CheckStatus {
            name: "chk_new".into(),
            kind: "tcp".into(),
            up: false,
            runs: 0,
            failures: 0,
            last_duration_ms: None,
        },
    ];
    snap
}

// ---------------------------------------------------------------- control socket

struct Control {
    _dir: TempDir,
    path: PathBuf,
    tx: watch::Sender<Snapshot>,
    task: tokio::task::JoinHandle<Result<(), ControlError>>,
}

/// A server plus a fake daemon answering commands: reload succeeds, handover of "VI_1"
/// succeeds, of anything else fails.
async fn start_control() -> Control {
    let dir = TempDir::new();
    let path = dir.path("ctl.sock");
    let (tx, rx) = watch::channel(sample());
    let (cmd_tx, mut cmd_rx) = mpsc::channel(4);
    tokio::spawn(async move {
        while let Some(cmd) = cmd_rx.recv().await {
            match cmd {
                ControlCommand::Reload { reply } => {
                    let _ = reply.send(Ok("reloaded 2 instances".into()));
                }
                ControlCommand::Handover { instance, reply } => {
                    let _ = reply.send(match instance.as_deref() {
                        Some("VI_1") => Ok("VI_1 handed over".into()),
                        other => Err(format!("cannot hand over {other:?}")),
                    });
                }
            }
        }
    });
    let server = ControlServer::bind(&path).await.unwrap();
    let task = tokio::spawn(server.run(rx, cmd_tx));
    Control {
        _dir: dir,
        path,
        tx,
        task,
    }
}

#[tokio::test]
async fn status_round_trip() {
    let c = start_control().await;
    let mode = std::fs::metadata(&c.path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");

    let raw = client_request(&c.path, "status").await.unwrap();
    assert!(!raw.contains('\n'));
    let parsed: Snapshot = serde_json::from_str(&raw).unwrap();
    assert_eq!(parsed, sample());
    assert_eq!(request_status(&c.path).await.unwrap(), sample());

    // A new snapshot is what the next request sees.
    c.tx.send_modify(|s| s.instances[0].state = InstanceState::Backup);
    let snap = request_status(&c.path).await.unwrap();
    assert_eq!(snap.instances[0].state, InstanceState::Backup);
}

#[tokio::test]
async fn json_uses_keepalived_names() {
    let v: serde_json::Value = serde_json::from_str(&render_json(&sample())).unwrap();
    assert_eq!(v["instances"][0]["state"], "MASTER");
    assert_eq!(v["instances"][0]["family"], "ipv4");
    assert_eq!(v["instances"][0]["last_transition"]["from"], "BACKUP");
    assert_eq!(v["dataplanes"][1]["mode"], "raw-socket");
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    // Missing fields default, so older and newer agents stay readable.
    let s: Snapshot = serde_json::from_str(r#"{"pid":1,"instances":[{"name":"x"}]}"#).unwrap();
    assert_eq!(s.instances[0].state, InstanceState::Init);
}

#[tokio::test]
async fn reload_and_handover_reach_the_daemon() {
    let c = start_control().await;
    let r = client_request(&c.path, "reload").await.unwrap();
    assert_eq!(parse_reply(&r).unwrap(), "reloaded 2 instances");

    let r = client_request(&c.path, "handover VI_1").await.unwrap();
    assert_eq!(parse_reply(&r).unwrap(), "VI_1 handed over");

    let r = client_request(&c.path, "handover").await.unwrap();
    match parse_reply(&r) {
        Err(ControlError::Remote(e)) => assert_eq!(e, "cannot hand over None"),
        other => panic!("{other:?}"),
    }
    let v: serde_json::Value = serde_json::from_str(&r).unwrap();
    assert_eq!(v["ok"], false);

    let r = client_request(&c.path, "ping").await.unwrap();
    assert_eq!(parse_reply(&r).unwrap(), "pong");
}

#[tokio::test]
async fn command_without_daemon_fails_cleanly() {
    let dir = TempDir::new();
    let path = dir.path("ctl.sock");
    let (_tx, rx) = watch::channel(sample());
    let (cmd_tx, cmd_rx) = mpsc::channel(1);
    drop(cmd_rx);
    let server = ControlServer::bind(&path).await.unwrap();
    tokio::spawn(server.run(rx, cmd_tx));
    let r = client_request(&path, "reload").await.unwrap();
    assert!(
        matches!(parse_reply(&r), Err(ControlError::Remote(_))),
        "{r}"
    );
}

#[tokio::test]
async fn bad_requests_get_errors_and_the_server_survives() {
    let c = start_control().await;
    let stream = UnixStream::connect(&c.path).await.unwrap();
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = String::new();

    // Several requests on one connection; blank lines are skipped.
    wr.write_all(b"\n  \nfrobnicate\nstatus extra\n\xff\xfe\nping\r\n")
        .await
        .unwrap();
    for expect in ["unknown request", "too many arguments", "not UTF-8", "pong"] {
        line.clear();
        rd.read_line(&mut line).await.unwrap();
        assert!(line.contains(expect), "{expect}: {line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["ok"], expect == "pong");
    }

    // An endless line: an error, then the connection closes.
    wr.write_all(&vec![b'a'; 10_000]).await.unwrap();
    line.clear();
    rd.read_line(&mut line).await.unwrap();
    assert!(line.contains("longer than"), "{line}");
    line.clear();
    assert_eq!(rd.read_line(&mut line).await.unwrap(), 0);

    // A client that connects and leaves.
    drop(UnixStream::connect(&c.path).await.unwrap());

    assert_eq!(request_status(&c.path).await.unwrap(), sample());
    assert!(client_request(&c.path, "status\nreload").await.is_err());
}

#[tokio::test]
async fn stale_socket_replaced_live_one_refused() {
    let dir = TempDir::new();
    let path = dir.path("ctl.sock");

    // Stale: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let (tx, rx) = watch::channel(sample());
    let (cmd_tx, _cmd_rx) = mpsc::channel(1);
    let server = ControlServer::bind(&path).await.unwrap();

    // Live: a second agent must not steal the socket.
    match ControlServer::bind(&path).await {
        Err(ControlError::AlreadyRunning(p)) => assert_eq!(p, path),
        other => panic!("{other:?}"),
    }

    let task = tokio::spawn(server.run(rx, cmd_tx));
    assert_eq!(request_status(&path).await.unwrap(), sample());

    // The server ends when the daemon drops the sender, and removes its socket.
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(!path.exists());
    // No temporary directory left behind.
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
}

#[tokio::test]
async fn other_files_are_not_replaced() {
    let dir = TempDir::new();
    let path = dir.path("ctl.sock");
    std::fs::write(&path, "precious").unwrap();
    assert!(matches!(
        ControlServer::bind(&path).await,
        Err(ControlError::NotASocket(_))
    ));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test]
async fn socket_removed_when_server_dropped() {
    let c = start_control().await;
    assert!(c.path.exists());
    c.task.abort();
    let _ = c.task.await;
    assert!(!c.path.exists());
    // The client reports a missing agent as an error, not a hang.
    assert!(matches!(
        client_request(&c.path, "status").await,
        Err(ControlError::Io { .. })
    ));
}

#[tokio::test]
async fn drop_keeps_a_socket_that_is_not_ours() {
    let dir = TempDir::new();
    let path = dir.path("ctl.sock");
    let server = ControlServer::bind(&path).await.unwrap();
    // Another agent took over the path (e.g. after we were declared stale).
    std::fs::remove_file(&path).unwrap();
    let _other = std::os::unix::net::UnixListener::bind(&path).unwrap();
    drop(server);
    assert!(path.exists());
}

// ---------------------------------------------------------------- table

#[test]
fn table_shows_what_operators_look_for() {
    let t = render_table(&sample());
    println!("{t}");
    for want in [
        "vrrp-agent 0.1.0",
        "pid 4242",
        "up 1h00m",
        "router_id lb1",
        "INSTANCE",
        "VI_1",
        "eth0",
        "51",
        "MASTER!",
        "150/140",
        "10.0.0.1 (140)",
        "10.0.0.100/24,10.0.0.101/24,10.0.0.102/24,+1",
        "BACKUP->MASTER master-down, 5m12s ago",
        "FAULT",
        "2001:db8::1/64",
        "100ms",
        "! VI_1: split brain suspected",
        "! VI_6: FAULT: eth1 down",
        "sync group G1",
        "adverts sent 1234, received 56",
        "transitions: master-down 2, startup 1",
        "auth-mismatch 3",
        "10.0.0.2",
        "300ms ago",
        "HEARTBEAT",
        "hb0        198.51.100.1  198.51.100.2  100   1.5s ago    77",
        "hb0        198.51.100.1  198.51.100.3  -     never       77",
        "no peers heard",
        "Data plane eth0: native XDP",
        "advert-consumed",
        "9000",
        "foreign VRIDs: 52/ipv4 (17 adverts)",
        "ARP replies 5, NS replies 0, XDP_TX errors 0",
        "Data plane eth1: raw socket, no XDP",
        "no packets counted",
        "chk_haproxy",
        "DOWN",
        "12ms",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    // Zero counters are left out; control characters never reach the terminal.
    assert!(!t.contains("bad-ttl"));
    assert!(!t.contains('\u{1b}'));
    assert!(t.lines().all(|l| l == l.trim_end()));
    // Columns line up: the header and rows of the instance table start fields at one offset.
    let header = t.lines().find(|l| l.starts_with("INSTANCE")).unwrap();
    let row = t.lines().find(|l| l.starts_with("VI_1 ")).unwrap();
    assert_eq!(header.find("IFACE"), row.find("eth0"));
    assert_eq!(header.find("STATE"), row.find("MASTER!"));
}

#[test]
fn table_of_an_empty_agent() {
    let t = render_table(&Snapshot::new(1, 0.0));
    assert!(t.contains("No VRRP instances."), "{t}");
}

#[test]
fn durations() {
    for (ms, s) in [
        (0, "0ms"),
        (999, "999ms"),
        (1000, "1s"),
        (1050, "1s"),
        (12_345, "12.3s"),
        (312_000, "5m12s"),
        (3_600_000, "1h00m"),
        (11_040_000, "3h04m"),
        (183_600_000, "2d03h"),
        (u64::MAX, "213503982334d14h"),
    ] {
        assert_eq!(format_duration_ms(ms), s);
    }
}

// ---------------------------------------------------------------- metrics

async fn start_metrics() -> (SocketAddr, watch::Sender<Snapshot>) {
    let (tx, rx) = watch::channel(sample());
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(rx));
    (addr, tx)
}

/// Sends raw bytes, returns (status code, head, body).
async fn http(addr: SocketAddr, request: &[u8]) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let code = head.split(' ').nth(1).unwrap().parse().unwrap();
    (code, head.to_owned(), body.to_owned())
}

/// One sample line: `name{k="v",...} value`, with label values unescaped.
fn parse_sample(line: &str) -> Result<(String, BTreeMap<String, String>, f64), String> {
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .ok_or("no value")?;
    let name = &line[..name_end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err("bad name".into());
    }
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("no =")?;
            let key = &rest[..eq];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("bad label name {key:?}"));
            }
            let mut chars = rest[eq + 1..].strip_prefix('"').ok_or("no quote")?.chars();
            let mut value = String::new();
            loop {
                match chars.next().ok_or("unterminated")? {
                    '"' => break,
                    '\\' => match chars.next().ok_or("bad escape")? {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        c => return Err(format!("bad escape \\{c}")),
                    },
                    '\n' => return Err("raw newline".into()),
                    c => value.push(c),
                }
            }
            labels.insert(key.to_owned(), value);
            rest = chars.as_str();
            rest = rest.strip_prefix(',').unwrap_or(rest);
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before value")?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok((name.to_owned(), labels, value))
}

#[tokio::test]
async fn metrics_scrape() {
    let (addr, _tx) = start_metrics().await;
    let (code, head, body) = http(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n",
    )
    .await;
    assert_eq!(code, 200, "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    assert!(
        head.contains(&format!("Content-Length: {}", body.len())),
        "{head}"
    );
    assert_eq!(body, render_metrics(&sample()));

    let mut help = BTreeSet::new();
    let mut types = BTreeMap::new();
    let mut samples = Vec::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap();
            assert!(!text.is_empty());
            assert!(help.insert(name.to_owned()), "HELP twice for {name}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge"].contains(&kind), "{line}");
            assert!(help.contains(name), "TYPE before HELP for {name}");
            assert!(
                types.insert(name.to_owned(), kind.to_owned()).is_none(),
                "TYPE twice for {name}"
            );
            current = Some(name.to_owned());
        } else {
            let (name, labels, value) =
                parse_sample(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            // Samples follow their own family's TYPE line (families are not interleaved).
            assert_eq!(current.as_deref(), Some(name.as_str()), "{line}");
            let kind = types
                .get(&name)
                .unwrap_or_else(|| panic!("no TYPE for {name}"));
            assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
            samples.push((name, labels, value));
        }
    }
    let find = |name: &str, want: &[(&str, &str)]| -> f64 {
        let hits: Vec<f64> = samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        assert_eq!(hits.len(), 1, "{name} {want:?}: {hits:?}");
        hits[0]
    };
    let vi1 = [
        ("instance", "VI_1"),
        ("interface", "eth0"),
        ("vrid", "51"),
        ("family", "ipv4"),
    ];
    let with = |extra: (&'static str, &'static str)| {
        let mut l = vi1.to_vec();
        l.push(extra);
        l
    };
    assert_eq!(find("vrrp_instance_state", &with(("state", "MASTER"))), 1.0);
    for s in ["INIT", "BACKUP", "FAULT", "STOP"] {
        assert_eq!(find("vrrp_instance_state", &with(("state", s))), 0.0);
    }
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.0 == "vrrp_instance_state")
            .count(),
        10
    );
    assert_eq!(
        find("vrrp_instance_priority", &with(("kind", "base"))),
        150.0
    );
    assert_eq!(
        find("vrrp_instance_priority", &with(("kind", "effective"))),
        140.0
    );
    assert_eq!(
        find(
            "vrrp_instance_advert_interval_seconds",
            &[("instance", "VI_6")]
        ),
        0.1
    );
    let i = |name: &'static str| [("instance", name)];
    assert_eq!(
        find(
            "vrrp_transitions_total",
            &[("instance", "VI_1"), ("reason", "master-down")]
        ),
        2.0
    );
    assert_eq!(find("vrrp_adverts_sent_total", &i("VI_1")), 1234.0);
    assert_eq!(find("vrrp_adverts_received_total", &i("VI_1")), 56.0);
    assert_eq!(find("vrrp_priority_zero_received_total", &i("VI_1")), 1.0);
    assert_eq!(
        find("vrrp_advert_drops_total", &[("reason", "auth-mismatch")]),
        3.0
    );
    // Escaped label values survive the round trip.
    assert_eq!(
        find(
            "vrrp_advert_drops_total",
            &[("reason", "weird\"re\\ason\nx")]
        ),
        1.0
    );
    assert_eq!(find("vrrp_split_brain_episodes_total", &i("VI_1")), 2.0);
    assert_eq!(find("vrrp_vip_conflicts_total", &i("VI_1")), 5.0);
    assert_eq!(find("vrrp_split_brain_alarm", &i("VI_1")), 1.0);
    assert_eq!(find("vrrp_split_brain_alarm", &i("VI_6")), 0.0);
    assert_eq!(find("vrrp_instance_peers", &i("VI_1")), 1.0);
    let hb0 = [("instance", "VI_1"), ("interface", "hb0")];
    assert_eq!(find("vrrp_heartbeat_adverts_sent_total", &hb0), 77.0);
    assert_eq!(
        find(
            "vrrp_heartbeat_adverts_received_total",
            &[hb0[0], hb0[1], ("peer", "198.51.100.2")]
        ),
        3.0
    );
    let eth0 = ("interface", "eth0");
    assert_eq!(
        find(
            "vrrp_xdp_packets_total",
            &[eth0, ("reason", "advert-consumed")]
        ),
        9000.0
    );
    // Zero counters are still exported (rates need the series from the start).
    assert_eq!(
        find("vrrp_xdp_packets_total", &[eth0, ("reason", "bad-ttl")]),
        0.0
    );
    assert_eq!(
        find(
            "vrrp_xdp_foreign_vrid_adverts_total",
            &[eth0, ("vrid", "52"), ("family", "ipv4")]
        ),
        17.0
    );
    assert_eq!(find("vrrp_arp_replies_total", &[eth0]), 5.0);
    assert_eq!(find("vrrp_nd_replies_total", &[eth0]), 0.0);
    assert_eq!(find("vrrp_xdp_tx_errors_total", &[eth0]), 0.0);
    assert_eq!(
        find(
            "vrrp_dataplane_info",
            &[("interface", "eth1"), ("mode", "raw-socket")]
        ),
        1.0
    );
    let chk = [("check", "chk_haproxy")];
    assert_eq!(find("vrrp_check_up", &chk), 1.0);
    assert_eq!(find("vrrp_check_up", &[("check", "chk_new")]), 0.0);
    assert_eq!(find("vrrp_check_runs_total", &chk), 120.0);
    assert_eq!(find("vrrp_check_failures_total", &chk), 2.0);
    assert_eq!(find("vrrp_check_duration_seconds", &chk), 0.012);
    // No duration before the first run.
    assert!(
        !samples
            .iter()
            .any(|(n, l, _)| n == "vrrp_check_duration_seconds" && l["check"] == "chk_new")
    );
    assert_eq!(
        find("vrrp_agent_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );
    assert_eq!(find("process_start_time_seconds", &[]), 1_700_000_000.25);
}

#[tokio::test]
async fn metrics_follow_the_snapshot() {
    let (addr, tx) = start_metrics().await;
    tx.send_modify(|s| s.instances[0].adverts_sent = 99_999);
    let (_, _, body) = http(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(body.contains("vrrp_adverts_sent_total{instance=\"VI_1\"} 99999\n"));
}

#[tokio::test]
async fn metrics_other_requests() {
    let (addr, _tx) = start_metrics().await;
    let (code, _, _) = http(addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert_eq!(code, 404);
    let (code, _, _) = http(addr, b"GET /metricsx HTTP/1.1\r\n\r\n").await;
    assert_eq!(code, 404);
    let (code, head, _) = http(
        addr,
        b"POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
    )
    .await;
    assert_eq!(code, 405);
    assert!(head.contains("Allow: GET, HEAD"));
    let (code, head, body) = http(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(code, 200);
    assert!(body.is_empty());
    assert!(!head.contains("Content-Length: 0"));
}

#[tokio::test]
async fn metrics_survive_garbage() {
    let (addr, _tx) = start_metrics().await;
    let (code, _, _) = http(addr, b"\x00\xff\xfe garbage\r\n\r\n").await;
    assert_eq!(code, 400);
    let (code, _, _) = http(addr, b"GET\r\n\r\n").await;
    assert_eq!(code, 400);
    let (code, _, _) = http(addr, b"GET /metrics SMTP/1.0\r\n\r\n").await;
    assert_eq!(code, 400);
    // A head that never ends.
    let (code, _, _) = http(addr, &vec![b'A'; 20_000]).await;
    assert_eq!(code, 431);
    // A truncated request from a client that half-closes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /met").await.unwrap();
    s.shutdown().await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 400"));
    // Connect and vanish.
    drop(TcpStream::connect(addr).await.unwrap());

    let (code, _, body) = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
    assert_eq!(code, 200);
    assert!(body.contains("vrrp_agent_info"));
}

/// issue 16, defect 7: 16 connections that send nothing held every slot, and each scrape was
/// refused until they timed out (10 s). Now the oldest idle one makes room.
#[tokio::test]
async fn metrics_serve_a_scrape_while_idle_connections_hold_every_slot() {
    let (addr, _tx) = start_metrics().await;
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them all before the scrape arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let (code, _, body) = http(addr, b"GET /metrics HTTP/1.1\r\n\r\n").await;
        assert_eq!(code, 200);
        assert!(body.contains("vrrp_agent_info"));
    }
    // The oldest idle connection was the one closed for it.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), idle[0].read(&mut buf))
        .await
        .expect("the oldest idle connection is still open")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

/// A connection that never sends its request head is closed (the slot is not held for the
/// whole 10 s exchange limit).
#[tokio::test]
async fn metrics_close_a_connection_that_sends_nothing() {
    let (addr, _tx) = start_metrics().await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(8), s.read(&mut buf))
        .await
        .expect("an idle connection held past its head timeout")
        .unwrap_or(0);
    assert_eq!(n, 0);
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct LogBuf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// issue 16, defect 7: the endpoint has no authentication; binding beyond loopback says so.
#[tokio::test]
async fn metrics_on_a_non_loopback_address_warn_at_bind() {
    let log = LogBuf::default();
    let w = log.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || w.clone())
        .with_ansi(false)
        .finish();
    let _g = tracing::subscriber::set_default(sub);
    let text = |log: &LogBuf| String::from_utf8_lossy(&log.0.lock().unwrap()).into_owned();
    drop(
        MetricsServer::bind("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap(),
    );
    drop(
        MetricsServer::bind("[::1]:0".parse().unwrap())
            .await
            .unwrap(),
    );
    assert!(!text(&log).contains("WARN"), "{}", text(&log));
    drop(
        MetricsServer::bind("0.0.0.0:0".parse().unwrap())
            .await
            .unwrap(),
    );
    let got = text(&log);
    assert!(got.contains("WARN"), "{got}");
    assert!(
        got.contains(
            "metrics endpoint on 0.0.0.0:0, not a loopback address: it has no authentication"
        ),
        "{got}"
    );
}

#[tokio::test]
async fn metrics_stop_with_the_daemon() {
    let (tx, rx) = watch::channel(Snapshot::default());
    let server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let task = tokio::spawn(server.run(rx));
    drop(tx);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn metrics_of_an_empty_agent_still_parse() {
    let body = render_metrics(&Snapshot::default());
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        parse_sample(line).unwrap();
    }
    assert!(body.contains("# TYPE vrrp_instance_state gauge\n"));
}

// ---------------------------------------------------------------- dump

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn dump_written_atomically() {
    let dir = TempDir::new();
    let path = dir.path("vrrp-agent.data.json");
    std::fs::write(&path, "old").unwrap();
    write_dump(&path, &sample()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with("}\n"));
    assert_eq!(serde_json::from_str::<Snapshot>(&text).unwrap(), sample());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Only the dump itself: the temporary file was renamed, not left behind.
    assert_eq!(entries(&dir.0), ["vrrp-agent.data.json"]);

    // Overwrite again with other content.
    let mut snap = sample();
    snap.pid = 7;
    write_dump(&path, &snap).unwrap();
    let back: Snapshot = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back.pid, 7);
    assert_eq!(entries(&dir.0), ["vrrp-agent.data.json"]);
}

#[test]
fn dump_does_not_write_through_a_symlink() {
    let dir = TempDir::new();
    let target = dir.path("victim");
    std::fs::write(&target, "keep me").unwrap();
    let path = dir.path("vrrp-agent.data.json");
    std::os::unix::fs::symlink(&target, &path).unwrap();
    write_dump(&path, &sample()).unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert!(
        !std::fs::symlink_metadata(&path)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn dump_errors_are_reported() {
    let dir = TempDir::new();
    let path = dir.path("missing-dir/dump.json");
    assert!(write_dump(&path, &sample()).is_err());
    assert!(write_dump(Path::new("/"), &sample()).is_err());
}
