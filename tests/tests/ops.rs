//! Operations on a running pair (issue "Operations"): status over the control socket,
//! Prometheus metrics, SIGUSR1 dump, reload (SIGHUP and `vrrp-agent reload`) without any
//! state change, a broken reload rejected, `--check`, and one-line start-up errors.
//!
//! ```text
//!   lb01 192.0.2.1 (BACKUP, 50) ──┐
//!   lb02 192.0.2.2 (MASTER, 100) ─┴── br0      VIP 192.0.2.3, VRID 51
//! ```
#![cfg(feature = "lab")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use nix::sys::signal::Signal;
use vrrp_tests::{Instance, Lab, agent_bin, in_netns, keepalived_conf, require_lab, run_cmd};

const WAIT: Duration = Duration::from_secs(20);

/// Starts the seed pair with control sockets and a metrics endpoint on lb02.
fn pair(lab: &mut Lab) -> (vrrp_tests::Host, vrrp_tests::Host) {
    let lb01 = lab.host("lb01", &["192.0.2.1/24"]).expect("lb01");
    let lb02 = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    let s1 = lab.path("lb01.sock").display().to_string();
    let s2 = lab.path("lb02.sock").display().to_string();
    let dump = lab.path("lb02.dump.json").display().to_string();
    lab.agent_conf(
        &lb01,
        "lb01",
        &keepalived_conf("lb01", &[Instance::fast("BACKUP", 50)]),
        &["--control-socket", &s1],
    )
    .expect("lb01 agent");
    lab.agent_conf(
        &lb02,
        "lb02",
        &keepalived_conf("lb02", &[Instance::fast("MASTER", 100)]),
        &[
            "--control-socket",
            &s2,
            "--metrics",
            "127.0.0.1:9650",
            "--dump-path",
            &dump,
        ],
    )
    .expect("lb02 agent");
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    lab.wait_owner("192.0.2.3", &["lb02"], WAIT)
        .expect("VIP on lb02");
    (lb01, lb02)
}

fn status_json(lab: &Lab, name: &str) -> serde_json::Value {
    lab.status_json(name).expect("vrrp-agent status")
}

#[test]
fn status_metrics_and_dump_describe_the_running_pair() {
    require_lab();
    let mut lab = Lab::new("ops-status").expect("lab");
    let (_lb01, lb02) = pair(&mut lab);

    // Status: lb02 is MASTER and has heard lb01's adverts? No: a backup stays silent. lb01
    // has heard lb02 (its master) with priority 100.
    lab.wait_until("lb01 to list lb02 as a peer", WAIT, || {
        let s = status_json(&lab, "lb01");
        let inst = &s["instances"][0];
        Ok(inst["state"] == "BACKUP"
            && inst["master"] == "192.0.2.2"
            && inst["peers"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|p| p["addr"] == "192.0.2.2" && p["priority"] == 100)
            }))
    })
    .expect("lb01 status");
    let s2 = status_json(&lab, "lb02");
    assert_eq!(s2["instances"][0]["state"], "MASTER", "{s2}");
    assert_eq!(s2["instances"][0]["vips"][0], "192.0.2.3/24", "{s2}");
    assert!(
        s2["instances"][0]["adverts_sent"].as_u64().unwrap_or(0) > 0,
        "{s2}"
    );
    let mode = s2["dataplanes"][0]["mode"].as_str().unwrap_or("");
    assert!(["native", "generic", "raw-socket"].contains(&mode), "{s2}");

    // The table form names the instance and its state.
    let table = run_cmd(
        std::process::Command::new(agent_bin())
            .args(["status", "--socket"])
            .arg(lab.path("lb02.sock")),
    )
    .expect("status table");
    assert!(
        table.contains("VI_1") && table.contains("MASTER"),
        "{table}"
    );

    // Prometheus, scraped from inside lb02's namespace.
    let metrics = in_netns(&lb02.ns, || -> std::io::Result<String> {
        let mut c = TcpStream::connect("127.0.0.1:9650")?;
        c.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
        let mut s = String::new();
        c.read_to_string(&mut s)?;
        Ok(s)
    })
    .expect("netns")
    .expect("scrape");
    assert!(metrics.starts_with("HTTP/1."), "{metrics}");
    assert!(
        metrics.contains(
            "vrrp_instance_state{instance=\"VI_1\",interface=\"eth0\",vrid=\"51\",family=\"ipv4\",state=\"MASTER\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("# TYPE vrrp_adverts_sent_total counter"),
        "{metrics}"
    );

    // SIGUSR1 writes the same JSON to the dump path.
    let dump = lab.path("lb02.dump.json");
    lab.signal("lb02", Signal::SIGUSR1).expect("SIGUSR1");
    lab.wait_until("the SIGUSR1 dump", WAIT, || Ok(dump.exists()))
        .expect("dump");
    let text = std::fs::read_to_string(&dump).expect("read dump");
    let v: serde_json::Value = serde_json::from_str(&text).expect("dump is JSON");
    assert_eq!(v["instances"][0]["name"], "VI_1");
}

#[test]
fn reload_under_a_running_pair_changes_nothing_and_a_broken_file_is_rejected() {
    require_lab();
    let mut lab = Lab::new("ops-reload").expect("lab");
    let (_lb01, _lb02) = pair(&mut lab);
    std::thread::sleep(Duration::from_secs(1));
    let before = (
        lab.transitions("lb01", None).len(),
        lab.transitions("lb02", None).len(),
    );

    // Unchanged file: SIGHUP on both, several times, and the socket command.
    for _ in 0..3 {
        lab.signal("lb01", Signal::SIGHUP).expect("hup lb01");
        lab.signal("lb02", Signal::SIGHUP).expect("hup lb02");
        std::thread::sleep(Duration::from_millis(300));
    }
    let out = run_cmd(
        std::process::Command::new(agent_bin())
            .args(["reload", "--socket"])
            .arg(lab.path("lb02.sock")),
    )
    .expect("vrrp-agent reload");
    assert!(out.contains("reloaded"), "{out}");
    lab.wait_until("4 reloads logged by lb02", WAIT, || {
        Ok(lab.log("lb02").matches("configuration reloaded").count() >= 4)
    })
    .expect("reloads");
    // Several master-down intervals (3 x 0.1 s + skew) pass: a missed advert would show.
    std::thread::sleep(Duration::from_secs(2));
    let after = (
        lab.transitions("lb01", None).len(),
        lab.transitions("lb02", None).len(),
    );
    assert_eq!(
        before,
        after,
        "a reload caused a state change:\n{}",
        lab.all_logs()
    );
    assert_eq!(lab.vip_owner("192.0.2.3"), vec!["lb02".to_string()]);

    // A broken file is rejected and the running configuration stays.
    let conf = lab.path("lb02.conf");
    let good = std::fs::read_to_string(&conf).expect("conf");
    std::fs::write(&conf, format!("{good}\nvrrp_instance BROKEN {{\n")).expect("write");
    let out = std::process::Command::new(agent_bin())
        .args(["reload", "--socket"])
        .arg(lab.path("lb02.sock"))
        .output()
        .expect("run reload");
    assert!(!out.status.success(), "a broken reload was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lb02.conf:"),
        "the error does not say where: {err}"
    );
    assert!(lab.running("lb02"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
    assert_eq!(lab.vip_owner("192.0.2.3"), vec!["lb02".to_string()]);

    // A changed priority is applied in place: no transition, the new priority advertised.
    std::fs::write(&conf, good.replace("priority 100", "priority 120")).expect("write");
    lab.signal("lb02", Signal::SIGHUP).expect("hup");
    lab.wait_until("lb01 to hear priority 120", WAIT, || {
        let s = status_json(&lab, "lb01");
        Ok(s["instances"][0]["master_priority"] == 120)
    })
    .expect("priority applied");
    let after2 = (
        lab.transitions("lb01", None).len(),
        lab.transitions("lb02", None).len(),
    );
    assert_eq!(
        before,
        after2,
        "an in-place change caused a state change:\n{}",
        lab.all_logs()
    );
}

#[test]
fn check_mode_and_startup_errors_name_the_place_and_the_fix() {
    require_lab();
    let lab = Lab::new("ops-errors").expect("lab");
    let bad = lab
        .write_file(
            "bad.conf",
            "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 300\n}\n",
        )
        .expect("write");
    let out = std::process::Command::new(agent_bin())
        .arg("--check")
        .arg("-f")
        .arg(&bad)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.conf:3:"), "{err}");
    assert!(
        err.lines().filter(|l| l.starts_with("vrrp-agent:")).count() == 1,
        "not one line: {err}"
    );

    let good = lab
        .write_file(
            "good.conf",
            &keepalived_conf("lb01", &[Instance::fast("BACKUP", 50)]),
        )
        .expect("write");
    let out = std::process::Command::new(agent_bin())
        .arg("--check")
        .arg("-f")
        .arg(&good)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));

    // A missing interface: one line that names it and where it was configured.
    let out = std::process::Command::new(agent_bin())
        .args([
            "--iface",
            "vx-nosuch0",
            "--vip",
            "192.0.2.3/24",
            "--control-socket",
        ])
        .arg(lab.path("x.sock"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"vx-nosuch0\" not found"), "{err}");
}

/// The systemd unit's commands are ones the agent accepts: its ExecStartPre check passes on a
/// good file, and its ExecStart arguments parse (checked with `--check` appended). Its
/// capability bounding set holds what the agent uses, and under exactly that set the election
/// thread and the guardian run SCHED_RR (issue 16, defect 6: without CAP_SYS_NICE both fell
/// back to SCHED_OTHER).
#[test]
fn systemd_unit_commands_are_accepted_by_the_agent() {
    require_lab();
    let mut lab = Lab::new("ops-unit").expect("lab");
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/vrrp-agent.service"),
    )
    .expect("unit file");
    let conf = lab
        .write_file(
            "keepalived.conf",
            &keepalived_conf("lb01", &[Instance::fast("BACKUP", 50)]),
        )
        .expect("write");
    let bin = agent_bin();
    for key in ["ExecStartPre=", "ExecStart="] {
        let line = unit
            .lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no {key} in the unit"));
        let mut words: Vec<String> = line[key.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect();
        assert_eq!(words[0], "/usr/sbin/vrrp-agent", "{line}");
        words[0] = bin.display().to_string();
        for w in &mut words {
            if w == "/etc/vrrp-agent/keepalived.conf" {
                *w = conf.display().to_string();
            }
        }
        if !words.iter().any(|w| w == "--check") {
            words.push("--check".into());
        }
        let out = std::process::Command::new(&words[0])
            .args(&words[1..])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The agent as the unit starts it: root with the unit's bounding set (setpriv applies it
    // the way systemd does, before the exec).
    let caps: Vec<&str> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .expect("a CapabilityBoundingSet= line")
        .split_whitespace()
        .collect();
    let set = caps
        .iter()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect::<Vec<_>>()
        .join(",");
    let host = lab.host("lb02", &["192.0.2.2/24"]).expect("host");
    let master = lab
        .write_file(
            "unit.conf",
            &keepalived_conf("lb02", &[Instance::fast("MASTER", 100)]),
        )
        .expect("write");
    let args: Vec<String> = vec![
        "--bounding-set".into(),
        format!("-all,{set}"),
        bin.display().to_string(),
        "-f".into(),
        master.display().to_string(),
        "--control-socket".into(),
        lab.path("unit.sock").display().to_string(),
        "--dump-path".into(),
        lab.path("unit.data.json").display().to_string(),
    ];
    let pid = lab
        .spawn(
            &host.ns,
            "unit",
            std::path::Path::new("/usr/bin/setpriv"),
            &args,
        )
        .expect("agent under setpriv");
    lab.wait_state("unit", "VI_1", "MASTER", WAIT)
        .expect("master with the unit's capabilities");
    // `ip netns exec` and setpriv exec in place: the pid is the agent's.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).expect("comm");
    assert_eq!(comm.trim(), "vrrp-agent");
    let log = std::fs::read_to_string(lab.path("unit.log")).unwrap_or_default();
    assert_eq!(
        sched_of(pid),
        (2, 10),
        "the election thread is not SCHED_RR 10 under the unit's capabilities {caps:?}: {log}"
    );
    guardian_is_realtime(
        &lab,
        pid,
        "guardian real-time under the unit's capabilities",
    );
    assert!(
        !log.contains("running SCHED_OTHER"),
        "a scheduling fallback under the unit: {log}"
    );
    // What the code asks the kernel for, each named in the unit (see its comment): missing one
    // fails at run time only, on the machine that lacks it.
    for need in [
        "CAP_NET_ADMIN",
        "CAP_NET_RAW",
        "CAP_BPF",
        "CAP_PERFMON",
        "CAP_SYS_ADMIN",
        "CAP_SYS_NICE",
        "CAP_SYS_RESOURCE",
        "CAP_SETUID",
        "CAP_SETGID",
        "CAP_KILL",
    ] {
        assert!(
            caps.contains(&need),
            "{need} is not in the unit's bounding set {caps:?}"
        );
    }
}

/// (policy, rt_priority) of a thread from /proc/PID/stat (fields 41 and 40).
/// The agent `pid`'s guardian (its child) becomes SCHED_RR 10 after its exec.
fn guardian_is_realtime(lab: &Lab, pid: u32, what: &str) {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).expect("children");
    let guardian: u32 = children
        .split_whitespace()
        .next()
        .expect("a guardian child")
        .parse()
        .expect("pid");
    lab.wait_until("the guardian to be SCHED_RR", WAIT, || {
        Ok(sched_of(guardian) == (2, 10))
    })
    .expect(what);
}

fn sched_of(pid: u32) -> (u32, u32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let tail = &stat[stat.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = tail.split_whitespace().collect();
    // `tail` starts at field 3.
    (
        f[41 - 3].parse().expect("policy"),
        f[40 - 3].parse().expect("rt_priority"),
    )
}

#[test]
fn the_election_runs_real_time_and_its_guardian_too_unless_told_not_to() {
    require_lab();
    let mut lab = Lab::new("ops-rt").expect("lab");
    let lb01 = lab.host("lb01", &["192.0.2.1/24"]).expect("lb01");
    let lb02 = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    let s1 = lab.path("lb01.sock").display().to_string();
    let s2 = lab.path("lb02.sock").display().to_string();
    // lb01: vrrp_rt_priority 0 in the file (SCHED_OTHER); lb02: the default.
    let conf1 = keepalived_conf("lb01", &[Instance::fast("BACKUP", 50)]).replacen(
        "global_defs {",
        "global_defs {\n    vrrp_rt_priority 0",
        1,
    );
    assert!(conf1.contains("vrrp_rt_priority 0"), "{conf1}");
    lab.agent_conf(&lb01, "lb01", &conf1, &["--control-socket", &s1])
        .expect("lb01 agent");
    lab.agent_conf(
        &lb02,
        "lb02",
        &keepalived_conf("lb02", &[Instance::fast("MASTER", 100)]),
        &["--control-socket", &s2],
    )
    .expect("lb02 agent");
    lab.wait_state("lb02", "VI_1", "MASTER", WAIT)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", WAIT)
        .expect("lb01 backup");
    let p2 = lab.pid("lb02").expect("lb02 pid");
    assert_eq!(sched_of(p2), (2, 10), "lb02: SCHED_RR 10 by default");
    // The guardian (the agent's child) takes the same priority after its exec.
    guardian_is_realtime(&lab, p2, "guardian real-time");
    let p1 = lab.pid("lb01").expect("lb01 pid");
    assert_eq!(
        sched_of(p1),
        (0, 0),
        "lb01: vrrp_rt_priority 0 keeps SCHED_OTHER"
    );
    let s = status_json(&lab, "lb02");
    assert_eq!(s["scheduling"], "SCHED_RR 10", "{s}");
}

/// issue 16, defects 1 and 2. A second start on a host where an agent runs (a typo'd
/// `systemctl start`, a second unit) is refused and changes nothing: before, it removed the
/// live master's VIP and rewrote the nftables ARP/NA filter, then said "already listening".
/// A VIP removed behind the running master's back comes back. A start that fails later (the
/// metrics port taken) leaves nothing behind either.
#[test]
fn a_refused_second_start_changes_nothing_and_a_removed_vip_comes_back() {
    require_lab();
    let mut lab = Lab::new("ops-second").expect("lab");
    let (_lb01, lb02) = pair(&mut lab);
    let filter = |lab: &Lab| lab.sh(&lb02.ns, "nft list table arp vrrp_xdp").is_ok();
    assert!(filter(&lab), "no kernel filter on the master");
    let before = lab.transitions("lb02", None).len();
    let second = format!(
        "{} -f {} --control-socket {} --dump-path {} 2>&1",
        agent_bin().display(),
        lab.path("lb02.conf").display(),
        lab.path("lb02.sock").display(),
        lab.path("second.json").display()
    );
    let out = lab.sh_output(&lb02.ns, &second).expect("second start");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "a second agent started: {text}");
    assert!(text.contains("already"), "{text}");
    assert!(
        lab.has_addr(&lb02, "192.0.2.3").expect("addr"),
        "VIP gone: {text}"
    );
    assert!(
        filter(&lab),
        "the second start removed the kernel filter: {text}"
    );
    lab.stays("lb02", "VI_1", "MASTER", Duration::from_secs(1));
    assert_eq!(lab.transitions("lb02", None).len(), before);

    // Taken away behind the master's back: restored, and counted.
    lab.ip(
        &lb02.ns,
        &format!("addr del 192.0.2.3/24 dev {}", lb02.ifname),
    )
    .expect("ip addr del");
    lab.wait_until("the VIP to be restored", WAIT, || {
        lab.has_addr(&lb02, "192.0.2.3")
    })
    .expect("restored");
    let s = status_json(&lab, "lb02");
    assert!(
        s["instances"][0]["vips_restored"].as_u64() >= Some(1),
        "{s}\n{}",
        lab.log("lb02")
    );

    // The kernel filter removed behind the master's back: restored too (checked every 5 s).
    lab.sh(&lb02.ns, "nft delete table arp vrrp_xdp")
        .expect("nft delete");
    assert!(!filter(&lab));
    lab.wait_until("the kernel filter to be restored", WAIT, || {
        Ok(filter(&lab))
    })
    .expect("filter restored");
    let s = status_json(&lab, "lb02");
    assert!(s["kernel_filter_restored"].as_u64() >= Some(1), "{s}");

    // A start that fails after the lock (metrics port taken) leaves no filter and no VIP.
    let lb03 = lab.host("lb03", &["192.0.2.5/24"]).expect("lb03");
    let busy = in_netns(&lb03.ns, || {
        std::net::TcpListener::bind("127.0.0.1:9651").expect("bind")
    })
    .expect("netns");
    let conf = lab
        .write_file(
            "lb03.conf",
            &keepalived_conf("lb03", &[Instance::fast("MASTER", 200)]),
        )
        .expect("conf");
    let failing = format!(
        "{} -f {} --control-socket {} --metrics 127.0.0.1:9651 2>&1",
        agent_bin().display(),
        conf.display(),
        lab.path("lb03.sock").display()
    );
    let out = lab.sh_output(&lb03.ns, &failing).expect("failing start");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("metrics"), "{text}");
    assert!(
        lab.sh(&lb03.ns, "nft list table arp vrrp_xdp").is_err(),
        "a failed start left the kernel filter: {text}"
    );
    assert!(!lab.has_addr(&lb03, "192.0.2.3").expect("addr"));
    drop(busy);
}

/// Whether an XDP program is attached to `dev` in `ns`.
fn has_xdp(lab: &Lab, ns: &str, dev: &str) -> bool {
    lab.ip(ns, &format!("-d link show dev {dev}"))
        .map(|out| out.contains("prog/xdp"))
        .unwrap_or(false)
}

/// issue 13 defects: a reload that dropped an interface kept its socket and XDP program, and a
/// reload attached XDP to a new interface before the file was accepted (a refused file then
/// left it attached). Now what no instance uses is released, and a refused file acquires
/// nothing.
#[test]
fn a_reload_releases_an_unused_interface_and_a_refused_one_attaches_nothing() {
    require_lab();
    let mut lab = Lab::new("ops-release").expect("lab");
    let lb = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    // A second interface inside the host: a veth pair whose peer stays in the namespace.
    lab.ip(&lb.ns, "link add eth1 type veth peer name eth1p")
        .expect("veth");
    lab.ip(&lb.ns, "link set eth1p up").expect("up");
    lab.ip(&lb.ns, "link set eth1 up").expect("up");
    lab.ip(&lb.ns, "addr add 198.51.100.1/24 dev eth1")
        .expect("addr");
    let second = |vips: &str| {
        format!(
            "vrrp_instance VI_2 {{\n    state MASTER\n    interface eth1\n    virtual_router_id 60\n    priority 100\n    advert_int 0.1\n    version 3\n{vips}}}\n"
        )
    };
    let one = keepalived_conf("lb02", &[Instance::fast("MASTER", 100)]);
    let both = format!(
        "{one}{}",
        second("    virtual_ipaddress {\n        198.51.100.10/24\n    }\n")
    );
    lab.agent_conf(&lb, "lb02", &both, &[]).expect("agent");
    lab.wait_state("lb02", "VI_2", "MASTER", WAIT)
        .expect("VI_2 master");
    assert!(has_xdp(&lab, &lb.ns, "eth1"), "no XDP on eth1 at start");
    let reload = |lab: &Lab| {
        std::process::Command::new(agent_bin())
            .args(["reload", "--socket"])
            .arg(lab.path("lb02.sock"))
            .output()
            .expect("vrrp-agent reload")
    };

    // VI_2 goes: eth1's program and socket go with it.
    lab.write_file("lb02.conf", &one).expect("write");
    let out = reload(&lab);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lab.wait_until("eth1's XDP program to be detached", WAIT, || {
        Ok(!has_xdp(&lab, &lb.ns, "eth1"))
    })
    .unwrap_or_else(|e| panic!("{e:#}\n{}", lab.log("lb02")));
    let s = status_json(&lab, "lb02");
    assert_eq!(s["instances"].as_array().map(Vec::len), Some(1), "{s}");
    assert!(
        s["dataplanes"]
            .as_array()
            .is_some_and(|d| d.iter().all(|d| d["interface"] != "eth1")),
        "{s}"
    );

    // A file the routers refuse (VI_2 with no address) is refused whole, and eth1 gets no
    // program on the way.
    lab.write_file("lb02.conf", &format!("{one}{}", second("")))
        .expect("write");
    let out = reload(&lab);
    assert!(!out.status.success(), "a broken file was accepted");
    assert!(
        !has_xdp(&lab, &lb.ns, "eth1"),
        "a refused reload attached XDP to eth1\n{}",
        lab.log("lb02")
    );
    lab.stays("lb02", "VI_1", "MASTER", Duration::ZERO);
}
