//! Notifications: keepalived's notify scripts and arguments, per-instance ordering, the
//! keepalived-format FIFO and the JSON-lines FIFO. No root needed; no speed assertions.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use vrrp_agent::config::{self, NotifySpec};
use vrrp_agent::notify::{Notifier, NotifierOptions, NotifyEvent, NotifyKind, NotifyState};
use vrrp_agent::proto::Priority;
use vrrp_agent::proto::vr::State;

const DEADLINE: Duration = Duration::from_secs(20);

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("vrrp-notify-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A script appending its arguments (and a tag) to `out`; run through /bin/sh so the file
/// is never exec'd while another test may hold it open for writing (ETXTBSY).
fn logger(dir: &Path, out: &Path) -> String {
    let path = dir.join("log.sh");
    std::fs::write(&path, format!("echo \"$*\" >> {}\n", out.display())).unwrap();
    format!("/bin/sh {}", path.display())
}

fn instance(name: &str, vrid: u8, body: &str) -> String {
    format!(
        "vrrp_instance {name} {{\n interface lo\n virtual_router_id {vrid}\n priority 100\n \
         virtual_ipaddress {{\n 192.0.2.{vrid}\n }}\n{body}\n}}\n"
    )
}

/// What the notifier takes from the configuration in `text`.
fn parse(text: &str) -> NotifySpec {
    match config::parse_str(text, "t.conf") {
        Ok(l) => NotifySpec::from_config(&l.config),
        Err(e) => panic!("config: {e}\n{text}"),
    }
}

fn ev(kind: NotifyKind, name: &str, state: NotifyState, prio: u8) -> NotifyEvent {
    NotifyEvent {
        kind,
        name: name.into(),
        state,
        priority: Priority(prio),
    }
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

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn state_mapping() {
    assert_eq!(
        NotifyState::from_state(State::Master),
        Some(NotifyState::Master)
    );
    assert_eq!(
        NotifyState::from_state(State::Stopped),
        Some(NotifyState::Stop)
    );
    assert_eq!(NotifyState::from_state(State::Initialize), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_run_in_order_with_keepalived_arguments() {
    let d = tmpdir("order");
    let out = d.join("out");
    let sh = logger(&d, &out);
    let text = instance(
        "VI_1",
        1,
        &format!(
            " notify_master \"{sh} master\"\n notify_backup \"{sh} backup\"\n \
             notify_fault \"{sh} fault\"\n notify_stop \"{sh} stop\"\n notify \"{sh} generic\""
        ),
    ) + &format!(
        "vrrp_sync_group G1 {{\n group {{\n VI_1\n }}\n notify_master \"{sh} grp-master\"\n \
         notify \"{sh} grp-generic\"\n}}\n"
    );
    let n = Notifier::new(&parse(&text), NotifierOptions::default()).unwrap();
    use NotifyKind::{Group, Instance};
    use NotifyState::{Backup, Fault, Master, Stop};
    assert_eq!(n.notify(ev(Instance, "VI_1", Master, 100)), 1);
    n.notify(ev(Instance, "VI_1", Backup, 90));
    n.notify(ev(Instance, "VI_1", Fault, 90));
    n.notify(ev(Group, "G1", Master, 100));
    n.notify(ev(Instance, "VI_1", Stop, 90));
    n.notify(ev(Instance, "no-scripts", Master, 1));
    n.shutdown().await;
    let got = lines(&out);
    let inst: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|l| !l.starts_with("grp-"))
        .collect();
    assert_eq!(
        inst,
        [
            "master",
            "generic INSTANCE VI_1 MASTER 100",
            "backup",
            "generic INSTANCE VI_1 BACKUP 90",
            "fault",
            "generic INSTANCE VI_1 FAULT 90",
            "stop",
            "generic INSTANCE VI_1 STOP 90",
        ]
    );
    // The group's own queue: priority is always 0 for a group (keepalived send_group_notifies).
    let group: Vec<&str> = got
        .iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("grp-"))
        .collect();
    assert_eq!(group, ["grp-master", "grp-generic GROUP G1 MASTER 0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_script_delays_only_its_instance() {
    let d = tmpdir("slow");
    let out = d.join("out");
    let gate = d.join("gate");
    let slow = d.join("slow.sh");
    // Waits (bounded) for the gate file, then logs.
    std::fs::write(
        &slow,
        format!(
            "i=0\nwhile [ ! -e {g} ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done\n\
             echo \"$*\" >> {o}\n",
            g = gate.display(),
            o = out.display()
        ),
    )
    .unwrap();
    let sh = logger(&d, &out);
    let text = instance(
        "A",
        1,
        &format!(
            " notify_master \"/bin/sh {} A-master\"\n notify_backup \"{sh} A-backup\"",
            slow.display()
        ),
    ) + &instance("B", 2, &format!(" notify_master \"{sh} B-master\""));
    let n = Notifier::new(&parse(&text), NotifierOptions::default()).unwrap();
    n.notify(ev(NotifyKind::Instance, "A", NotifyState::Master, 100));
    n.notify(ev(NotifyKind::Instance, "A", NotifyState::Backup, 100));
    n.notify(ev(NotifyKind::Instance, "B", NotifyState::Master, 100));
    eventually("B ran", || lines(&out).contains(&"B-master".to_string())).await;
    assert_eq!(lines(&out), ["B-master"], "A is still blocked on its gate");
    std::fs::write(&gate, "").unwrap();
    n.shutdown().await;
    assert_eq!(lines(&out), ["B-master", "A-master", "A-backup"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_script_timeout_kills_it() {
    let d = tmpdir("nto");
    let out = d.join("out");
    let sh = logger(&d, &out);
    let text = instance(
        "VI_1",
        1,
        &format!(" notify_master \"/bin/sleep 1000\"\n notify \"{sh} generic\""),
    );
    let n = Notifier::new(
        &parse(&text),
        NotifierOptions {
            script_timeout: Duration::from_millis(200),
            ..NotifierOptions::default()
        },
    )
    .unwrap();
    n.notify(ev(NotifyKind::Instance, "VI_1", NotifyState::Master, 100));
    tokio::time::timeout(DEADLINE, n.shutdown())
        .await
        .expect("the hung script was killed");
    assert_eq!(lines(&out), ["generic INSTANCE VI_1 MASTER 100"]);
}

/// Read `n` lines from a FIFO on a blocking thread, with a deadline.
async fn read_fifo(path: &Path, n: usize) -> Vec<String> {
    let path = path.to_path_buf();
    let h = tokio::task::spawn_blocking(move || {
        // The notifier holds the FIFO open read-write, so this open does not block.
        let f = std::fs::File::open(&path).unwrap();
        BufReader::new(f)
            .lines()
            .take(n)
            .map(Result::unwrap)
            .collect::<Vec<_>>()
    });
    tokio::time::timeout(DEADLINE, h)
        .await
        .expect("fifo lines in time")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_gets_keepalived_lines_and_json_in_order() {
    let d = tmpdir("fifo");
    let fifo = d.join("notify.fifo");
    let json = d.join("notify.json");
    let text = instance("VI_1", 1, "");
    let n = Notifier::new(
        &parse(&text),
        NotifierOptions {
            fifo: Some(fifo.clone()),
            json_fifo: Some(json.clone()),
            ..NotifierOptions::default()
        },
    )
    .unwrap();
    let mut sub = n.subscribe();
    // No reader yet: notify() must not block, the lines wait in the pipe.
    n.notify(ev(NotifyKind::Instance, "VI_1", NotifyState::Backup, 100));
    n.notify(ev(NotifyKind::Instance, "VI_1", NotifyState::Master, 100));
    n.notify(ev(NotifyKind::Group, "G1", NotifyState::Master, 100));
    n.notify(ev(NotifyKind::Instance, "VI_1", NotifyState::Stop, 0));
    let got = read_fifo(&fifo, 4).await;
    assert_eq!(
        got,
        [
            "INSTANCE \"VI_1\" BACKUP 100",
            "INSTANCE \"VI_1\" MASTER 100",
            "GROUP \"G1\" MASTER 0",
            "INSTANCE \"VI_1\" STOP 0",
        ]
    );
    let got = read_fifo(&json, 4).await;
    for (i, line) in got.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], i as u64 + 1, "{line}");
        assert!(v["ts"].as_f64().unwrap() > 1.0e9, "{line}");
    }
    let v: serde_json::Value = serde_json::from_str(&got[2]).unwrap();
    assert_eq!(
        (
            v["type"].as_str(),
            v["name"].as_str(),
            v["state"].as_str(),
            v["priority"].as_u64()
        ),
        (Some("GROUP"), Some("G1"), Some("MASTER"), Some(0))
    );
    let first = sub.recv().await.unwrap();
    assert_eq!((first.seq, first.event.state), (1, NotifyState::Backup));
    n.shutdown().await;
    // keepalived leaves the FIFO in place; so do we.
    assert!(fifo.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_full_pipe_does_not_block_and_keeps_order() {
    let d = tmpdir("full");
    let json = d.join("notify.json");
    let n = Notifier::new(
        &parse(&instance("VI_1", 1, "")),
        NotifierOptions {
            json_fifo: Some(json.clone()),
            ..NotifierOptions::default()
        },
    )
    .unwrap();
    // ~100 bytes per line × 3000 is well over a 64 KiB pipe buffer.
    const N: usize = 3000;
    for _ in 0..N {
        n.notify(ev(NotifyKind::Instance, "VI_1", NotifyState::Master, 100));
    }
    let got = read_fifo(&json, N).await;
    for (i, line) in got.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], i as u64 + 1);
    }
    n.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_path_that_is_a_regular_file_is_refused() {
    let d = tmpdir("notfifo");
    let p = d.join("plain");
    std::fs::write(&p, "").unwrap();
    let r = Notifier::new(
        &parse(&instance("VI_1", 1, "")),
        NotifierOptions {
            fifo: Some(p),
            ..NotifierOptions::default()
        },
    );
    assert!(r.is_err());
}

/// issue 16: `notify_master_rx_lower_pri` ran one process per lower-priority advert (300
/// adverts in ~1 s gave 298 concurrent children). A hook now never runs twice at once: calls
/// while it runs coalesce into one more run after it.
#[tokio::test]
async fn a_hook_called_in_a_burst_runs_one_at_a_time_and_coalesces() {
    let dir = tmpdir("hook-burst");
    let out = dir.join("out");
    let script = dir.join("hook.sh");
    // mkdir is atomic: a second concurrent run finds the directory and says so.
    std::fs::write(
        &script,
        format!(
            "mkdir {d}/running 2>/dev/null || echo overlap >> {o}\necho run >> {o}\nsleep 0.2\nrmdir {d}/running\n",
            d = dir.display(),
            o = out.display()
        ),
    )
    .unwrap();
    let cfg = parse(&instance(
        "VI_1",
        51,
        &format!(
            " notify_master_rx_lower_pri \"/bin/sh {}\"",
            script.display()
        ),
    ));
    let n = Notifier::new(&cfg, NotifierOptions::default()).unwrap();
    for _ in 0..300 {
        assert!(n.hook(
            "VI_1",
            vrrp_agent::notify::Hook::MasterRxLowerPriority,
            Vec::new()
        ));
    }
    eventually("the burst to be run", || {
        lines(&out).iter().any(|l| l == "run")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let l = lines(&out);
    assert!(!l.iter().any(|x| x == "overlap"), "two runs at once: {l:?}");
    let runs = l.iter().filter(|x| *x == "run").count();
    assert!((1..=2).contains(&runs), "{runs} runs for one burst: {l:?}");
    // The handles of finished runs are not kept.
    assert!(n.pending_tasks() <= 2, "{} tasks kept", n.pending_tasks());
    n.shutdown().await;
}
