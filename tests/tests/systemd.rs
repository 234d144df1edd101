//! The Debian package under a real systemd as PID 1 (issue 17, item 2): a container booted
//! from a debootstrapped bookworm (tests/src/systemd.rs), joined to the lab bridge, with the
//! .deb installed by dpkg; the unit driven with systemctl beside a peer agent in an ordinary
//! lab namespace.
//!
//! ```text
//!   sd   192.0.2.1 (container: systemd, vrrp-agent.service MASTER 100) ──┐
//!   peer 192.0.2.2 (vrrp-agent BACKUP 50) ─────────────────────────────────┼── br0
//!   client 192.0.2.10 (ARP probes) ────────────────────────────────────────┘  VIP 192.0.2.3
//! ```
//! Root; `cargo xtask test` builds the package (VRRP_DEB) and the root file system
//! (VRRP_SYSTEMD_ROOT). Assertions are on behaviour: unit states, VIP owners, ARP replies,
//! the agents' states and counters, the journal.
#![cfg(feature = "lab")]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use vrrp_tests::systemd::{Container, rootfs};
use vrrp_tests::{Host, Instance, Lab, keepalived_conf, require_lab, transitions};

const VIP: &str = "192.0.2.3";
const UNIT: &str = "vrrp-agent.service";
const CONF: &str = "/etc/vrrp-agent/keepalived.conf";
const T: Duration = Duration::from_secs(30);

fn deb() -> PathBuf {
    PathBuf::from(std::env::var_os("VRRP_DEB").expect(
        "VRRP_DEB is not set: `cargo xtask test` builds the package (cargo xtask deb) and sets it",
    ))
}

/// A container on a new lab host `sd`, with the package installed by dpkg, as an operator
/// would: neither enabled nor started by the installation.
fn packaged(lab: &mut Lab) -> (Host, Container) {
    let sd = lab.host("sd", &["192.0.2.1/24"]).expect("host sd");
    let c = Container::boot(lab, &sd, &rootfs()).expect("boot systemd");
    c.copy_in(&deb(), "/tmp/vrrp-agent.deb")
        .expect("copy the .deb");
    c.ok(&["dpkg", "-i", "/tmp/vrrp-agent.deb"])
        .expect("dpkg -i");
    assert_eq!(
        c.text(&["systemctl", "is-enabled", UNIT]).unwrap(),
        "disabled"
    );
    assert_eq!(
        c.text(&["systemctl", "is-active", UNIT]).unwrap(),
        "inactive"
    );
    (sd, c)
}

/// The state of VI_1 in the container's `vrrp-agent status` (default control socket,
/// /run/vrrp-agent.sock); None while the agent is not up.
fn state(c: &Container) -> Option<String> {
    let out = c.ok(&["vrrp-agent", "status", "--json"]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v["instances"][0]["state"].as_str().map(str::to_string)
}

/// Every MAC that answers one ARP request burst for `ip` from `from` (lower case).
fn arp_answerers(lab: &Lab, from: &Host, ip: &str) -> BTreeSet<String> {
    let out = lab
        .sh_output(&from.ns, &format!("arping -c3 -w3 -I {} {ip}", from.ifname))
        .expect("arping");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("reply from"))
        .filter_map(|l| {
            let (_, rest) = l.split_once('[')?;
            Some(rest.split(']').next()?.to_lowercase())
        })
        .collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn systemd_runs_the_package_start_reload_kill_restart_stop() {
    require_lab();
    let mut lab = Lab::new("systemd-unit").expect("lab");
    let (sd, c) = packaged(&mut lab);
    let peer = lab.host("peer", &["192.0.2.2/24"]).expect("peer");
    let client = lab.host("client", &["192.0.2.10/24"]).expect("client");
    lab.agent_conf(
        &peer,
        "peer",
        &keepalived_conf("peer", &[Instance::fast("BACKUP", 50)]),
        &[],
    )
    .expect("peer agent");
    lab.wait_state("peer", "VI_1", "MASTER", T)
        .expect("the peer alone is master");

    // systemctl start: the container's agent preempts and owns the VIP.
    c.write(
        &lab,
        CONF,
        &keepalived_conf("sd", &[Instance::fast("MASTER", 100)]),
    )
    .expect("write the config");
    c.ok(&["systemctl", "start", UNIT])
        .expect("systemctl start");
    lab.wait_until("the container's agent to be MASTER", T, || {
        Ok(state(&c).as_deref() == Some("MASTER"))
    })
    .expect("MASTER");
    lab.wait_state("peer", "VI_1", "BACKUP", T)
        .expect("peer backup");
    lab.wait_owner(VIP, &["sd"], T).expect("VIP on sd only");
    assert_eq!(
        arp_answerers(&lab, &client, VIP),
        BTreeSet::from([sd.mac.to_lowercase()])
    );
    // The journal has the transitions, each with its reason.
    lab.wait_until("the journal to show MASTER", T, || {
        Ok(transitions(&c.journal(UNIT), Some("VI_1"))
            .last()
            .is_some_and(|t| t.to == "MASTER"))
    })
    .expect("journal");
    let journal = c.journal(UNIT);
    let ts = transitions(&journal, Some("VI_1"));
    assert!(
        ts.iter()
            .all(|t| t.line.contains(" reason=") && !t.line.ends_with("reason=")),
        "a transition without its reason:\n{journal}"
    );
    assert!(
        ts.len() >= 2 && ts[0].to == "BACKUP" && ts[0].line.contains("reason=startup"),
        "{journal}"
    );

    // systemctl reload: SIGHUP (ExecReload), the same process, no state change anywhere.
    let pid = c.prop(UNIT, "MainPID").expect("MainPID");
    let before = (
        transitions(&c.journal(UNIT), None).len(),
        lab.transitions("peer", None).len(),
    );
    c.ok(&["systemctl", "reload", UNIT])
        .expect("systemctl reload");
    lab.wait_until("the reload in the journal", T, || {
        Ok(count(&c.journal(UNIT), "configuration reloaded") == 1)
    })
    .expect("reloaded");
    // Several master-down intervals (3 × 0.1 s + skew): a missed advert would show.
    std::thread::sleep(Duration::from_secs(2));
    let after = (
        transitions(&c.journal(UNIT), None).len(),
        lab.transitions("peer", None).len(),
    );
    assert_eq!(
        before,
        after,
        "a reload changed a state:\n{}",
        c.journal(UNIT)
    );
    assert_eq!(c.prop(UNIT, "MainPID").unwrap(), pid);
    assert_eq!(lab.vip_owner(VIP), ["sd"]);
    // The reload re-read the file: a new priority is advertised, still without a transition.
    c.write(
        &lab,
        CONF,
        &keepalived_conf("sd", &[Instance::fast("MASTER", 120)]),
    )
    .expect("write the config");
    c.ok(&["systemctl", "reload", UNIT])
        .expect("systemctl reload");
    lab.wait_until("the peer to hear priority 120", T, || {
        Ok(lab.status_json("peer")?["instances"][0]["master_priority"] == 120)
    })
    .expect("priority applied");
    assert_eq!(lab.transitions("peer", None).len(), before.1);

    // systemctl kill of the main process only: its guardian (KillMode=mixed keeps it out of
    // the stop signal, not out of the cgroup) sends priority 0 and unbinds the VIP; then
    // Restart=on-failure brings the agent back, and it preempts.
    let peer_masters = |lab: &Lab| {
        lab.transitions("peer", Some("VI_1"))
            .iter()
            .filter(|t| t.to == "MASTER")
            .count()
    };
    let masters0 = peer_masters(&lab);
    c.ok(&[
        "systemctl",
        "kill",
        "--kill-whom=main",
        "--signal=KILL",
        UNIT,
    ])
    .expect("systemctl kill --kill-whom=main");
    lab.wait_until("the peer to hear the guardian's priority 0", T, || {
        Ok(lab.status_json("peer")?["instances"][0]["transitions"]["priority_zero_received"] == 1)
    })
    .expect("priority 0 from the guardian");
    lab.wait_until("the guardian in the journal", T, || {
        Ok(c.journal(UNIT)
            .contains("guardian: the agent died while MASTER of VI_1"))
    })
    .expect("guardian logged");
    lab.wait_until("Restart=on-failure to restart the agent", T, || {
        Ok(c.prop(UNIT, "NRestarts")? == "1" && c.prop(UNIT, "ActiveState")? == "active")
    })
    .expect("restarted");
    assert_ne!(c.prop(UNIT, "MainPID").unwrap(), pid);
    lab.wait_until("the restarted agent to be MASTER", T, || {
        Ok(state(&c).as_deref() == Some("MASTER"))
    })
    .expect("MASTER again");
    lab.wait_state("peer", "VI_1", "BACKUP", T)
        .expect("peer backup again");
    lab.wait_owner(VIP, &["sd"], T).expect("VIP on sd only");
    assert_eq!(peer_masters(&lab), masters0 + 1, "{}", lab.log("peer"));

    // systemctl kill of the whole unit (agent and guardian): the node falls silent, the peer
    // takes over on its master-down timer, and nothing on the container answers ARP for the
    // VIP (the kernel filter outlives the agent). A drop-in holds the restart back meanwhile.
    c.ok(&["mkdir", "-p", "/etc/systemd/system/vrrp-agent.service.d"])
        .expect("mkdir");
    c.write(
        &lab,
        "/etc/systemd/system/vrrp-agent.service.d/hold.conf",
        "[Service]\nRestartSec=300\n",
    )
    .expect("drop-in");
    c.ok(&["systemctl", "daemon-reload"])
        .expect("daemon-reload");
    c.ok(&["systemctl", "kill", "--signal=KILL", UNIT])
        .expect("systemctl kill");
    lab.wait_until("the unit to wait for its restart", T, || {
        Ok(c.prop(UNIT, "SubState")? == "auto-restart")
    })
    .expect("auto-restart");
    lab.wait_state("peer", "VI_1", "MASTER", T)
        .expect("the peer takes over");
    lab.wait_until("the peer to own the VIP", T, || lab.has_addr(&peer, VIP))
        .expect("VIP on the peer");
    assert_eq!(
        arp_answerers(&lab, &client, VIP),
        BTreeSet::from([peer.mac.to_lowercase()]),
        "the killed node still answers ARP for the VIP"
    );
    // Back: without the hold, started by hand; it reclaims the VIP (stale binding cleared).
    c.ok(&["rm", "/etc/systemd/system/vrrp-agent.service.d/hold.conf"])
        .expect("rm drop-in");
    c.ok(&["systemctl", "daemon-reload"])
        .expect("daemon-reload");
    c.ok(&["systemctl", "start", UNIT])
        .expect("systemctl start");
    lab.wait_until("the agent to be MASTER again", T, || {
        Ok(state(&c).as_deref() == Some("MASTER"))
    })
    .expect("MASTER again");
    lab.wait_state("peer", "VI_1", "BACKUP", T)
        .expect("peer backup again");
    lab.wait_owner(VIP, &["sd"], T).expect("VIP on sd only");

    // systemctl stop: SIGTERM to the agent alone, make-before-break: at every sample one of
    // the two holds the VIP, and the container gave it up only after hearing the peer.
    let guardian_lines = count(&c.journal(UNIT), "guardian:");
    let mut stop = c
        .cmd(&["systemctl", "stop", UNIT])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("stop");
    let mut samples = 0;
    let mut gaps = 0;
    loop {
        let owners = lab.vip_owner(VIP);
        samples += 1;
        if owners.is_empty() {
            gaps += 1;
        }
        if stop.try_wait().expect("wait").is_some() && owners == ["peer"] {
            break;
        }
        assert!(samples < 10_000, "no handover: owners {owners:?}");
    }
    assert!(stop.wait().unwrap().success(), "systemctl stop failed");
    eprintln!("systemctl stop: {samples} samples of the VIP's owners, {gaps} without one");
    assert_eq!(
        gaps, 0,
        "{gaps} of {samples} samples saw no owner of the VIP"
    );
    lab.wait_state("peer", "VI_1", "MASTER", T)
        .expect("peer master");
    let journal = c.journal(UNIT);
    let tail = &journal[journal.rfind("SIGTERM: handing over").expect(&journal)..];
    assert!(tail.contains("new master"), "{tail}");
    assert!(!tail.contains("no new master within"), "{tail}");
    assert!(tail.contains("vrrp-agent stopped"), "{tail}");
    assert_eq!(
        count(&journal, "guardian:"),
        guardian_lines,
        "the guardian acted on a clean stop:\n{tail}"
    );
    assert_eq!(c.prop(UNIT, "ActiveState").unwrap(), "inactive");
    assert_eq!(c.prop(UNIT, "Result").unwrap(), "success");
    assert_eq!(
        arp_answerers(&lab, &client, VIP),
        BTreeSet::from([peer.mac.to_lowercase()])
    );
}

#[test]
fn systemd_verifies_the_unit_and_keepalived_conflicts() {
    require_lab();
    let mut lab = Lab::new("systemd-verify").expect("lab");
    let (_sd, c) = packaged(&mut lab);

    // systemd-analyze verify on the installed unit: no complaint at all (it checks that every
    // command exists and is executable, the man page of Documentation=, the directives).
    let out = c
        .output(&[
            "systemd-analyze",
            "verify",
            "/lib/systemd/system/vrrp-agent.service",
        ])
        .expect("systemd-analyze");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
    // Each program the unit runs comes from the package or one of its dependencies, so an
    // installation that satisfies the package satisfies the unit (/bin/kill is procps').
    let unit = c
        .ok(&["cat", "/lib/systemd/system/vrrp-agent.service"])
        .unwrap();
    let depends = c
        .ok(&["dpkg-query", "-W", "-f=${Depends}", "vrrp-agent"])
        .unwrap();
    let deps: BTreeSet<&str> = depends
        .split(',')
        .filter_map(|d| d.split_whitespace().next())
        .collect();
    for line in unit.lines().filter(|l| l.starts_with("Exec")) {
        let (_, cmd) = line.split_once('=').unwrap();
        let prog = cmd.trim_start_matches(['-', '@', ':', '+', '!']);
        let prog = prog.split_whitespace().next().unwrap();
        let owner = c
            .ok(&["dpkg", "-S", prog])
            .unwrap_or_else(|e| panic!("{e}"));
        let pkg = owner.split(':').next().unwrap().trim();
        assert!(
            pkg == "vrrp-agent" || deps.contains(pkg),
            "{line}: {prog} is {pkg}'s, which the package does not depend on ({depends})"
        );
    }

    // Conflicts=keepalived.service: starting either stops the other, and the one stopped is
    // gone before the other starts (the stop is ordered first), so that the two never run at
    // once: when `systemctl start` returns, the other is already inactive. keepalived (Debian's
    // 2.2.7, in the container too) really runs: its own VIP comes and goes with it.
    c.write(
        &lab,
        CONF,
        &keepalived_conf("sd", &[Instance::fast("MASTER", 100)]),
    )
    .expect("write the config");
    let mut k = Instance::fast("MASTER", 100);
    k.name = "K_1".into();
    k.vrid = 60;
    k.vips = vec!["192.0.2.60/24 dev eth0".into()];
    c.write(
        &lab,
        "/etc/keepalived/keepalived.conf",
        &keepalived_conf("sd-keepalived", &[k]),
    )
    .expect("write keepalived.conf");
    let sd = lab.hosts()[0].clone();
    c.ok(&["systemctl", "start", UNIT])
        .expect("start vrrp-agent");
    lab.wait_until("vrrp-agent to own the VIP", T, || lab.has_addr(&sd, VIP))
        .expect("VIP");
    c.ok(&["systemctl", "start", "keepalived.service"])
        .expect("start keepalived");
    assert_eq!(
        c.text(&["systemctl", "is-active", UNIT]).unwrap(),
        "inactive"
    );
    assert_eq!(
        c.text(&["systemctl", "is-active", "keepalived.service"])
            .unwrap(),
        "active"
    );
    lab.wait_until("keepalived to own its VIP", T, || {
        lab.has_addr(&sd, "192.0.2.60")
    })
    .expect("keepalived's VIP");
    lab.wait_until("vrrp-agent's VIP to go", T, || Ok(!lab.has_addr(&sd, VIP)?))
        .expect("VIP released");
    c.ok(&["systemctl", "start", UNIT])
        .expect("start vrrp-agent");
    assert_eq!(
        c.text(&["systemctl", "is-active", "keepalived.service"])
            .unwrap(),
        "inactive"
    );
    assert_eq!(c.text(&["systemctl", "is-active", UNIT]).unwrap(), "active");
    lab.wait_until("vrrp-agent to own the VIP again", T, || {
        lab.has_addr(&sd, VIP)
    })
    .expect("VIP");
    lab.wait_until("keepalived's VIP to go", T, || {
        Ok(!lab.has_addr(&sd, "192.0.2.60")?)
    })
    .expect("keepalived's VIP released");

    // Removing the package stops the running agent first (prerm, under this systemd): it
    // hands over and releases the VIP rather than being left running without its files.
    c.ok(&["dpkg", "-r", "vrrp-agent"]).expect("dpkg -r");
    assert_eq!(
        c.text(&["systemctl", "is-active", UNIT]).unwrap(),
        "inactive"
    );
    assert!(
        !lab.has_addr(&sd, VIP).unwrap(),
        "the VIP outlived the package"
    );
    let journal = c.journal(UNIT);
    assert!(journal.contains("SIGTERM: handing over"), "{journal}");
    assert!(journal.contains("vrrp-agent stopped"), "{journal}");
}
