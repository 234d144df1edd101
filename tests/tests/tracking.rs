//! Health tracking and notifications in the lab (issue "Health tracking and notifications",
//! item 4): the seed's track script that gives the VIP away when the web service dies on a
//! healthy machine, the same with the built-in HTTP check, a hanging check killed at its
//! timeout, track_interface, notify scripts and the notify FIFOs.
//!
//! ```text
//!   lb01   192.0.2.1  (BACKUP, 90)  ──┐   each LB runs a small web service on :8080
//!   lb02   192.0.2.2  (MASTER, 100) ──┼── br0      VIP 192.0.2.3, VRID 51, VRRPv3 0.1 s
//!   client 192.0.2.10               ──┘
//! ```
//! A failed check weighs -20: the master's 100 becomes 80, below the backup's 90, so the VIP
//! moves; when the check recovers the master preempts back. Configurations:
//! testdata/lab/tracking/.
#![cfg(feature = "lab")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use vrrp_tests::{Host, Lab, in_netns, lab_config, require_lab, run_cmd};

/// Generous: tests assert behaviour, never speed.
const WAIT: Duration = Duration::from_secs(30);
const VIP: &str = "192.0.2.3";
const PORT: u16 = 8080;

// ---- helpers -------------------------------------------------------------------------------

/// A tiny HTTP/1.0 service on 0.0.0.0:PORT inside a namespace, answering every request with
/// `200 OK` and the host's name as the body. Stopped (its socket closed) on drop.
struct WebService {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl WebService {
    fn start(host: &Host) -> Self {
        let ns_path = format!("/run/netns/{}", host.ns);
        let body = host.name.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let bound = (|| -> anyhow::Result<TcpListener> {
                let f = std::fs::File::open(&ns_path)?;
                nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)?;
                let l = TcpListener::bind(("0.0.0.0", PORT))?;
                l.set_nonblocking(true)?;
                Ok(l)
            })();
            let listener = match bound {
                Ok(l) => {
                    let _ = ready_tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 2048];
                        let mut req = Vec::new();
                        // Read the request head (a plain TCP connect sends none: EOF).
                        while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => req.extend_from_slice(&buf[..n]),
                            }
                        }
                        if !req.is_empty() {
                            let resp = format!(
                                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = s.write_all(resp.as_bytes());
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        ready_rx
            .recv()
            .expect("web service thread")
            .unwrap_or_else(|e| panic!("web service in {}: {e:#}", host.ns));
        Self {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for WebService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `GET /` on VIP:PORT from `from`'s namespace: the body (the serving host's name), or `None`.
fn http_get_vip(from: &Host) -> Option<String> {
    let r = in_netns(&from.ns, || -> std::io::Result<String> {
        let addr = SocketAddr::from(([192, 0, 2, 3], PORT));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_millis(1000)))?;
        s.write_all(b"GET / HTTP/1.0\r\nHost: vip\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        Ok(resp)
    });
    let resp = r.ok()?.ok()?;
    if !resp.starts_with("HTTP/1.0 200") {
        return None;
    }
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// Waits until the client's request to the VIP is answered by `host`.
fn wait_served_by(lab: &Lab, client: &Host, host: &str) {
    let mut last = None;
    lab.wait_until(
        &format!("the VIP's web service answered by {host}"),
        WAIT,
        || {
            last = http_get_vip(client);
            Ok(last.as_deref() == Some(host))
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\nlast answer: {last:?}"));
}

/// The lab and the seed's hosts: lb01, lb02 and a client.
fn topology(test: &str) -> (Lab, Host, Host, Host) {
    let mut lab = Lab::new(test).expect("lab");
    let lb01 = lab.host("lb01", &["192.0.2.1/24"]).expect("lb01");
    let lb02 = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    let client = lab.host("client", &["192.0.2.10/24"]).expect("client");
    (lab, lb01, lb02, client)
}

/// testdata/lab/tracking/NAME with its placeholders filled in.
fn conf(lab: &Lab, name: &str, router: &str, state: &str, prio: u8) -> String {
    lab_config(&format!("tracking/{name}"))
        .replace("@ROUTER@", router)
        .replace("@STATE@", state)
        .replace("@PRIO@", &prio.to_string())
        .replace("@DIR@", &lab.dir.display().to_string())
}

/// Writes an executable script into the lab directory.
fn script(lab: &Lab, name: &str, body: &str) -> std::path::PathBuf {
    let path = lab.write_file(name, body).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Starts the seed pair on template `name`: lb02 MASTER 100, lb01 BACKUP 90.
fn start_pair(lab: &mut Lab, lb01: &Host, lb02: &Host, name: &str) {
    let c2 = conf(lab, name, "lb02", "MASTER", 100);
    let c1 = conf(lab, name, "lb01", "BACKUP", 90);
    lab.agent_conf(lb02, "lb02", &c2, &[]).expect("lb02 agent");
    lab.agent_conf(lb01, "lb01", &c1, &[]).expect("lb01 agent");
}

fn status_json(lab: &Lab, name: &str) -> serde_json::Value {
    lab.status_json(name).expect("vrrp-agent status")
}

/// `(state, priority_effective)` of VI_1 in agent `name`'s status.
fn instance_status(lab: &Lab, name: &str) -> (String, u64) {
    let s = status_json(lab, name);
    let i = &s["instances"][0];
    (
        i["state"].as_str().unwrap_or_default().to_string(),
        i["priority_effective"].as_u64().unwrap_or_default(),
    )
}

fn wait_status(lab: &Lab, name: &str, state: &str, prio: u64) {
    let mut last = (String::new(), 0);
    lab.wait_until(
        &format!("{name} status {state} priority {prio}"),
        WAIT,
        || {
            last = instance_status(lab, name);
            Ok(last.0 == state && last.1 == prio)
        },
    )
    .unwrap_or_else(|e| panic!("{e:#}\nlast status of {name}: {last:?}"));
}

/// The check `check` in agent `name`'s status.
fn check_status(lab: &Lab, name: &str, check: &str) -> serde_json::Value {
    let s = status_json(lab, name);
    s["checks"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == check).cloned())
        .unwrap_or_else(|| panic!("no check {check} in {name}'s status: {s:#}"))
}

fn stop_agent(lab: &mut Lab, name: &str) {
    lab.signal(name, Signal::SIGTERM).expect("SIGTERM");
    let st = lab.wait_exit(name, WAIT).expect("agent exits");
    assert!(st.success(), "{name} exit status {st}\n{}", lab.log(name));
}

/// The seed's scenario for one kind of check: the web service dies on the master, the VIP
/// moves to the backup while both agents keep running; it comes back, the master preempts.
fn web_check_moves_the_vip(test: &str, template: &str, kind: &str) {
    let (mut lab, lb01, lb02, client) = topology(test);
    script(
        &lab,
        "chk.sh",
        &format!(
            "#!/bin/bash\n# exit 0 iff something accepts connections on 127.0.0.1:{PORT}\n(exec 3<>/dev/tcp/127.0.0.1/{PORT}) 2>/dev/null\n"
        ),
    );
    let _web01 = WebService::start(&lb01);
    let web02 = WebService::start(&lb02);
    start_pair(&mut lab, &lb01, &lb02, template);

    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    lab.wait_owner(VIP, &["lb02"], WAIT).expect("VIP on lb02");
    wait_status(&lab, "lb02", "MASTER", 100);
    wait_served_by(&lab, &client, "lb02");
    let c = check_status(&lab, "lb02", "chk_web");
    assert_eq!(c["kind"], kind, "{c}");

    // nginx dies on a healthy machine.
    drop(web02);
    lab.wait_state("lb01", "VI_1", "MASTER", WAIT)
        .expect("lb01 takes over");
    lab.wait_state("lb02", "VI_1", "BACKUP", WAIT)
        .expect("lb02 steps down");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect("VIP on lb01");
    wait_status(&lab, "lb02", "BACKUP", 80);
    wait_served_by(&lab, &client, "lb01");
    let c = check_status(&lab, "lb02", "chk_web");
    assert_eq!(c["up"], false, "{c}");
    assert!(
        lab.running("lb01") && lab.running("lb02"),
        "{}",
        lab.all_logs()
    );

    // It comes back: lb02 (100 > 90) preempts.
    let _web02 = WebService::start(&lb02);
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 preempts");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup again");
    lab.wait_owner(VIP, &["lb02"], WAIT)
        .expect("VIP back on lb02");
    wait_status(&lab, "lb02", "MASTER", 100);
    wait_served_by(&lab, &client, "lb02");
    // The backup's own check never failed.
    wait_status(&lab, "lb01", "BACKUP", 90);
    assert!(
        lab.running("lb01") && lab.running("lb02"),
        "{}",
        lab.all_logs()
    );

    stop_agent(&mut lab, "lb02");
    stop_agent(&mut lab, "lb01");
}

// ---- tests ---------------------------------------------------------------------------------

#[test]
fn track_script_moves_the_vip_when_the_service_dies() {
    require_lab();
    web_check_moves_the_vip("trk-script", "script.conf", "script");
}

#[test]
fn builtin_http_check_moves_the_vip_when_the_service_dies() {
    require_lab();
    web_check_moves_the_vip("trk-http", "builtin.conf", "http");
}

/// Is `pid` a live (not zombie) process?
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "PID (comm) STATE ...": a zombie has been killed already.
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z"),
        Err(_) => false,
    }
}

/// `sleep 1000` processes in a namespace.
fn sleeps_in(host: &Host) -> Vec<i32> {
    let out = run_cmd(std::process::Command::new("ip").args(["netns", "pids", &host.ns]))
        .unwrap_or_default();
    out.split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| c == b"sleep\x001000\x00" || c.ends_with(b"/sleep\x001000\x00"))
        })
        .filter(|p| alive(*p))
        .collect()
}

#[test]
fn hanging_script_is_killed_at_its_timeout_and_counts_as_failed() {
    require_lab();
    let (mut lab, lb01, lb02, _client) = topology("trk-hang");
    let pids = lab.path("hang.pids");
    // The hang is in a child, so only killing the process group (as keepalived does) ends it.
    script(
        &lab,
        "hang.sh",
        &format!(
            "#!/bin/sh\nsleep 1000 &\necho $! >> {}\nwait\n",
            pids.display()
        ),
    );
    let c2 = conf(&lab, "hang.conf", "lb02", "MASTER", 100);
    let c1 = conf(&lab, "plain.conf", "lb01", "BACKUP", 90);
    lab.agent_conf(&lb02, "lb02", &c2, &[]).expect("lb02 agent");
    lab.agent_conf(&lb01, "lb01", &c1, &[]).expect("lb01 agent");

    // The weight-0 check fails (timed out): lb02 is FAULT, lb01 holds the VIP.
    lab.wait_state("lb02", "VI_1", "FAULT", WAIT)
        .expect("lb02 FAULT");
    lab.wait_state("lb01", "VI_1", "MASTER", WAIT)
        .expect("lb01 master");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect("VIP on lb01");
    assert!(
        lab.transitions("lb02", Some("VI_1"))
            .iter()
            .all(|t| t.to != "MASTER"),
        "lb02 must never be MASTER with its only check hanging\n{}",
        lab.log("lb02")
    );

    // Several runs, each killed at its timeout: only the latest may still be running.
    lab.wait_until("three runs of hang.sh", WAIT, || {
        Ok(std::fs::read_to_string(&pids)
            .unwrap_or_default()
            .lines()
            .count()
            >= 3)
    })
    .expect("runs");
    let c = check_status(&lab, "lb02", "chk_hang");
    assert_eq!(c["up"], false, "{c}");
    assert!(c["failures"].as_u64().unwrap_or(0) >= 1, "{c}");
    let started: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let (older, _latest) = started.split_at(started.len() - 1);
    lab.wait_until("the timed-out runs' sleep 1000 to be gone", WAIT, || {
        Ok(older.iter().all(|p| !alive(*p)))
    })
    .unwrap_or_else(|e| {
        let live: Vec<_> = older.iter().filter(|p| alive(**p)).collect();
        panic!("{e:#}\nstill alive: {live:?}")
    });
    let running = sleeps_in(&lb02);
    assert!(
        running.len() <= 2,
        "at most the current run (and one in its kill grace) may hold a sleep: {running:?}"
    );

    // The agent stops: its running check goes with it (first make sure a run is seen, so
    // that "none left" below means something).
    lab.wait_until("a running sleep 1000 in lb02's namespace", WAIT, || {
        Ok(!sleeps_in(&lb02).is_empty())
    })
    .expect("hang.sh's sleep is visible while it runs");
    stop_agent(&mut lab, "lb02");
    lab.wait_until("no sleep 1000 left in lb02's namespace", WAIT, || {
        Ok(sleeps_in(&lb02).is_empty())
    })
    .unwrap_or_else(|e| panic!("{e:#}\nleft: {:?}", sleeps_in(&lb02)));
    stop_agent(&mut lab, "lb01");
}

/// lb02 tracks `trk0`, one end of a veth pair inside its namespace (the lab kernel has no
/// dummy interfaces), created up or down; lb01 runs the plain seed backup.
fn interface_pair(test: &str, up_at_start: bool) -> (Lab, Host) {
    let (mut lab, lb01, lb02, _client) = topology(test);
    lab.ip(&lb02.ns, "link add trk0 type veth peer name trk1")
        .expect("veth");
    lab.ip(&lb02.ns, "link set trk1 up").expect("trk1 up");
    if up_at_start {
        lab.ip(&lb02.ns, "link set trk0 up").expect("trk0 up");
    }
    let c2 = conf(&lab, "interface.conf", "lb02", "MASTER", 100);
    let c1 = conf(&lab, "plain.conf", "lb01", "BACKUP", 90);
    lab.agent_conf(&lb02, "lb02", &c2, &[]).expect("lb02 agent");
    lab.agent_conf(&lb01, "lb01", &c1, &[]).expect("lb01 agent");
    (lab, lb02)
}

fn trk0(lab: &Lab, lb02: &Host, up: bool) {
    let how = if up { "up" } else { "down" };
    lab.ip(&lb02.ns, &format!("link set trk0 {how}"))
        .expect("set trk0");
}

#[test]
fn track_interface_down_faults_the_master_and_the_backup_takes_over() {
    require_lab();
    // trk0 starts down: lb02 starts in FAULT and the backup serves.
    let (mut lab, lb02) = interface_pair("trk-iface", false);
    lab.wait_state("lb02", "VI_1", "FAULT", WAIT)
        .expect("lb02 FAULT");
    lab.wait_state("lb01", "VI_1", "MASTER", WAIT)
        .expect("lb01 master");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect("VIP on lb01");

    // Up: lb02 leaves FAULT and preempts (100 > 90).
    trk0(&lab, &lb02, true);
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    lab.wait_owner(VIP, &["lb02"], WAIT).expect("VIP on lb02");

    // Down: FAULT, the VIP leaves lb02 and the backup takes it.
    trk0(&lab, &lb02, false);
    lab.wait_state("lb02", "VI_1", "FAULT", WAIT)
        .expect("lb02 FAULT");
    lab.wait_state("lb01", "VI_1", "MASTER", WAIT)
        .expect("lb01 takes over");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect("VIP on lb01");
    let s = status_json(&lab, "lb02");
    assert_eq!(s["instances"][0]["state"], "FAULT", "{s:#}");

    // Up again: back.
    trk0(&lab, &lb02, true);
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 back");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup again");
    lab.wait_owner(VIP, &["lb02"], WAIT)
        .expect("VIP back on lb02");

    stop_agent(&mut lab, "lb02");
    stop_agent(&mut lab, "lb01");
}

#[test]
fn track_interface_up_at_start_lets_the_master_start() {
    require_lab();
    let (mut lab, lb02) = interface_pair("trk-iface-up", true);
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    lab.wait_owner(VIP, &["lb02"], WAIT).expect("VIP on lb02");
    assert!(
        lab.transitions("lb02", Some("VI_1"))
            .iter()
            .all(|t| t.to != "FAULT"),
        "trk0 is up: no FAULT\n{}",
        lab.log("lb02")
    );
    trk0(&lab, &lb02, false);
    lab.wait_state("lb02", "VI_1", "FAULT", WAIT)
        .expect("lb02 FAULT");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect("VIP on lb01");
    stop_agent(&mut lab, "lb02");
    stop_agent(&mut lab, "lb01");
}

/// A backup that leaves FAULT while the master talks hears it again and stays backup. With
/// XDP the master's unchanged adverts were absorbed meanwhile (and the router forgot its
/// master in FAULT): the agent resets the data plane's record on each transition so that the
/// next advert reaches the router instead of a master-down timeout.
#[test]
fn a_backup_leaving_fault_hears_the_master_again() {
    require_lab();
    let (mut lab, lb01, lb02, _client) = topology("trk-backup-fault");
    lab.ip(&lb01.ns, "link add trk0 type veth peer name trk1")
        .expect("veth");
    lab.ip(&lb01.ns, "link set trk1 up").expect("trk1 up");
    lab.ip(&lb01.ns, "link set trk0 up").expect("trk0 up");
    let c2 = conf(&lab, "plain.conf", "lb02", "MASTER", 100);
    let c1 = conf(&lab, "interface.conf", "lb01", "BACKUP", 90);
    lab.agent_conf(&lb02, "lb02", &c2, &[]).expect("lb02 agent");
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.agent_conf(&lb01, "lb01", &c1, &[]).expect("lb01 agent");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    let absorbed = || {
        status_json(&lab, "lb01")["dataplanes"][0]["counters"]["advert_absorbed"]
            .as_u64()
            .unwrap_or(0)
    };
    lab.wait_until("lb01 knows its master", WAIT, || {
        Ok(status_json(&lab, "lb01")["instances"][0]["master"] == "192.0.2.2")
    })
    .expect("master known");
    lab.ip(&lb01.ns, "link set trk0 down").expect("trk0 down");
    lab.wait_state("lb01", "VI_1", "FAULT", WAIT)
        .expect("lb01 FAULT");
    // The master's adverts go on, absorbed in XDP while lb01 is FAULT.
    let before = absorbed();
    lab.wait_until("adverts absorbed during FAULT", WAIT, || {
        Ok(absorbed() >= before + 5)
    })
    .expect("absorbed");
    lab.ip(&lb01.ns, "link set trk0 up").expect("trk0 up");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup again");
    // Several Master_Down_Intervals (0.3 s + skew) with the master talking.
    let seen = lab.transitions("lb01", Some("VI_1")).len();
    std::thread::sleep(Duration::from_secs(3));
    let after = lab.transitions("lb01", Some("VI_1"));
    assert!(
        after.len() == seen,
        "lb01 changed state after leaving FAULT: {:?}\n{}",
        after.get(seen..),
        lab.all_logs()
    );
    assert_eq!(lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
    stop_agent(&mut lab, "lb02");
    stop_agent(&mut lab, "lb01");
}

/// The notify pair: lb02 MASTER 100, lb01 BACKUP 90, both with notify scripts and FIFOs;
/// `<router>.down` makes that router's check fail (-20).
fn notify_pair(test: &str) -> (Lab, Host, Host) {
    let (mut lab, lb01, lb02, _client) = topology(test);
    script(&lab, "up.sh", "#!/bin/sh\n[ ! -e \"$1\" ]\n");
    script(
        &lab,
        "rec.sh",
        "#!/bin/sh\nout=$1\nshift\necho \"$*\" >> \"$out\"\n",
    );
    // One at a time, so that the notified sequence is deterministic: lb02 is MASTER before
    // lb01 starts (started together, a slow start of lb02 lets lb01 be MASTER first).
    let c2 = conf(&lab, "notify.conf", "lb02", "MASTER", 100);
    let c1 = conf(&lab, "notify.conf", "lb01", "BACKUP", 90);
    lab.agent_conf(&lb02, "lb02", &c2, &[]).expect("lb02 agent");
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.agent_conf(&lb01, "lb01", &c1, &[]).expect("lb01 agent");
    (lab, lb01, lb02)
}

fn lines(lab: &Lab, file: &str) -> Vec<String> {
    std::fs::read_to_string(lab.path(file))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_lines(lab: &Lab, file: &str, want: &[&str]) {
    let mut got = Vec::new();
    lab.wait_until(&format!("{file} to read {want:?}"), WAIT, || {
        got = lines(lab, file);
        Ok(got.len() >= want.len())
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{file}: {got:?}"));
    assert_eq!(got, want, "{file}");
}

/// Fails lb02's check, waits for the VIP on lb01, then restores it and waits for lb02 again.
fn move_and_back(lab: &Lab) {
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    lab.wait_owner(VIP, &["lb02"], WAIT).expect("VIP on lb02");
    lab.write_file("lb02.down", "").expect("down flag");
    lab.wait_state("lb01", "VI_1", "MASTER", WAIT)
        .expect("lb01 master");
    lab.wait_state("lb02", "VI_1", "BACKUP", WAIT)
        .expect("lb02 backup");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect("VIP on lb01");
    std::fs::remove_file(lab.path("lb02.down")).expect("remove down flag");
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master again");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup again");
    lab.wait_owner(VIP, &["lb02"], WAIT)
        .expect("VIP on lb02 again");
}

#[test]
fn notify_scripts_record_transitions_in_order_with_keepalived_arguments() {
    require_lab();
    let (mut lab, _lb01, _lb02) = notify_pair("trk-notify");
    move_and_back(&lab);
    // notify_<state> first, then the generic `notify` with TYPE NAME STATE PRIORITY
    // (keepalived's notify_script_exec; the priority is the effective one). `state MASTER`
    // (not the address owner) starts in BACKUP and times out to MASTER at once, notifying
    // both, as keepalived 2.2's vrrp_init_state() does.
    wait_lines(
        &lab,
        "lb02.notify",
        &[
            "backup",
            "any INSTANCE VI_1 BACKUP 100",
            "master",
            "any INSTANCE VI_1 MASTER 100",
            "backup",
            "any INSTANCE VI_1 BACKUP 80",
            "master",
            "any INSTANCE VI_1 MASTER 100",
        ],
    );
    wait_lines(
        &lab,
        "lb01.notify",
        &[
            "backup",
            "any INSTANCE VI_1 BACKUP 90",
            "master",
            "any INSTANCE VI_1 MASTER 90",
            "backup",
            "any INSTANCE VI_1 BACKUP 90",
        ],
    );
    // Stopping runs notify_stop and `notify ... STOP`.
    stop_agent(&mut lab, "lb01");
    let got = lines(&lab, "lb01.notify");
    assert_eq!(
        got.get(6..).unwrap_or_default(),
        ["stop", "any INSTANCE VI_1 STOP 90"],
        "{got:?}"
    );
    stop_agent(&mut lab, "lb02");
}

/// Reads what is in a FIFO now, without blocking (the agent keeps it open read-write, so the
/// lines wait in the pipe until someone reads them).
struct FifoReader {
    file: std::fs::File,
    buf: Vec<u8>,
}

impl FifoReader {
    fn open(lab: &Lab, name: &str) -> Self {
        let path = lab.path(name);
        lab.wait_until(&format!("{} to exist", path.display()), WAIT, || {
            Ok(std::fs::metadata(&path)
                .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_fifo(&m.file_type())))
        })
        .expect("FIFO created by the agent");
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .expect("open FIFO");
        Self {
            file,
            buf: Vec::new(),
        }
    }

    fn lines(&mut self) -> Vec<String> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.file.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&self.buf)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

#[test]
fn notify_fifo_lines_in_order() {
    require_lab();
    let (mut lab, _lb01, _lb02) = notify_pair("trk-fifo");
    let mut fifo02 = FifoReader::open(&lab, "lb02.fifo");
    let mut fifo01 = FifoReader::open(&lab, "lb01.fifo");
    let mut json02 = FifoReader::open(&lab, "lb02.json");
    move_and_back(&lab);
    let want02 = [
        "INSTANCE \"VI_1\" BACKUP 100",
        "INSTANCE \"VI_1\" MASTER 100",
        "INSTANCE \"VI_1\" BACKUP 80",
        "INSTANCE \"VI_1\" MASTER 100",
    ];
    let want01 = [
        "INSTANCE \"VI_1\" BACKUP 90",
        "INSTANCE \"VI_1\" MASTER 90",
        "INSTANCE \"VI_1\" BACKUP 90",
    ];
    for (fifo, want, name) in [
        (&mut fifo02, &want02[..], "lb02"),
        (&mut fifo01, &want01[..], "lb01"),
    ] {
        let mut got = Vec::new();
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            got = fifo.lines();
            if got.len() >= want.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(got, want, "{name}'s notify_fifo\n{}", lab.all_logs());
    }
    // The JSON stream: the same events with seq 1, 2, ...
    let events: Vec<serde_json::Value> = json02
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let got: Vec<(u64, &str, &str, u64)> = events
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap_or(0),
                e["name"].as_str().unwrap_or(""),
                e["state"].as_str().unwrap_or(""),
                e["priority"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "VI_1", "BACKUP", 100),
            (2, "VI_1", "MASTER", 100),
            (3, "VI_1", "BACKUP", 80),
            (4, "VI_1", "MASTER", 100)
        ],
        "{events:?}"
    );
    stop_agent(&mut lab, "lb01");
    stop_agent(&mut lab, "lb02");
}

/// A sync group moves together: lb02 masters VI_1 and VI_2 (grouped); only VI_1 tracks
/// trk0. trk0 down puts VI_1 in FAULT and VI_2 follows, so both VIPs go to lb01; trk0 up
/// brings both back.
#[test]
fn sync_group_members_move_together() {
    require_lab();
    let (mut lab, lb01, lb02, _client) = topology("trk-sync");
    lab.ip(&lb02.ns, "link add trk0 type veth peer name trk1")
        .expect("veth");
    lab.ip(&lb02.ns, "link set trk1 up").expect("trk1 up");
    lab.ip(&lb02.ns, "link set trk0 up").expect("trk0 up");
    let c2 = conf(&lab, "sync.conf", "lb02", "MASTER", 100)
        .replace("@TRACK@", "track_interface {\n        trk0\n    }");
    let c1 = conf(&lab, "sync.conf", "lb01", "BACKUP", 90).replace("@TRACK@", "");
    lab.agent_conf(&lb02, "lb02", &c2, &[]).expect("lb02 agent");
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 VI_1 master");
    lab.wait_state("lb02", "VI_2", "MASTER", WAIT)
        .expect("lb02 VI_2 master");
    lab.agent_conf(&lb01, "lb01", &c1, &[]).expect("lb01 agent");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 VI_1 backup");
    lab.wait_state("lb01", "VI_2", "BACKUP", WAIT)
        .expect("lb01 VI_2 backup");
    lab.wait_owner(VIP, &["lb02"], WAIT).expect(".3 on lb02");
    lab.wait_owner("192.0.2.4", &["lb02"], WAIT)
        .expect(".4 on lb02");

    // Only VI_1 tracks trk0, yet VI_2 leaves with it.
    trk0(&lab, &lb02, false);
    lab.wait_state("lb02", "VI_1", "FAULT", WAIT)
        .expect("VI_1 FAULT");
    lab.wait_state("lb02", "VI_2", "FAULT", WAIT)
        .expect("VI_2 follows into FAULT");
    lab.wait_owner(VIP, &["lb01"], WAIT).expect(".3 on lb01");
    lab.wait_owner("192.0.2.4", &["lb01"], WAIT)
        .expect(".4 on lb01");
    let st = lab.status_json("lb02").expect("status");
    let follower = st["instances"]
        .as_array()
        .and_then(|a| a.iter().find(|i| i["name"] == "VI_2"))
        .cloned()
        .unwrap_or_default();
    assert!(
        follower["last_transition"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("sync group G")),
        "the follower's transition does not name the group: {st}"
    );

    // Recovery: both come back to lb02 (100 > 90).
    trk0(&lab, &lb02, true);
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("VI_1 back");
    lab.wait_state("lb02", "VI_2", "MASTER", WAIT)
        .expect("VI_2 back");
    lab.wait_owner(VIP, &["lb02"], WAIT)
        .expect(".3 back on lb02");
    lab.wait_owner("192.0.2.4", &["lb02"], WAIT)
        .expect(".4 back on lb02");
    stop_agent(&mut lab, "lb02");
    stop_agent(&mut lab, "lb01");
}
