//! Redundant heartbeat paths (`vrrp_xdp_heartbeat`): the seed's two load balancers on the
//! usual primary segment, plus a direct veth between them that carries the same instance's
//! adverts unicast. Heartbeat adverts are liveness only: the backup declares the master down
//! only when every path is silent.
//!
//! ```text
//!   ns vx-..-br: br0 ─ p-lb01, p-lb02                 (primary: 192.0.2.0/24, VRRP multicast)
//!   ns vx-..-lb01: eth0 192.0.2.1   hb0 198.51.100.1 ─┐
//!                                                     │ direct veth (heartbeat, unicast)
//!   ns vx-..-lb02: eth0 192.0.2.2   hb0 198.51.100.2 ─┘
//! ```
//! The primary path is cut by dropping protocol 112 on the way out of eth0 (XDP sees incoming
//! frames before netfilter, so an input rule would not hide adverts from an XDP-mode agent).
//! Every test asserts behaviour (states, VIP owners, counters), never speed.
#![cfg(feature = "lab")]

use std::time::Duration;

use nix::sys::signal::Signal;
use vrrp_tests::{Host, Lab, lab_config, require_lab};

const VIP: &str = "192.0.2.3";
/// Generous: tests assert behaviour, never speed.
const T: Duration = Duration::from_secs(20);
/// Several master-down intervals of the seed's backup (3 × 1 s + skew 0.8 s).
const HOLD: Duration = Duration::from_secs(12);

struct Net {
    lab: Lab,
    lb01: Host,
    lb02: Host,
}

fn net(test: &str) -> Net {
    require_lab();
    let mut lab = Lab::new(test).expect("lab");
    let lb01 = lab.host("lb01", &["192.0.2.1/24"]).expect("lb01");
    let lb02 = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    // The heartbeat link: one veth, each end in a host's namespace (gone with them).
    vrrp_tests::run_cmd(std::process::Command::new("ip").args([
        "link", "add", "hb0", "netns", &lb01.ns, "type", "veth", "peer", "name", "hb0", "netns",
        &lb02.ns,
    ]))
    .expect("heartbeat veth");
    for (h, a) in [(&lb01, "198.51.100.1/24"), (&lb02, "198.51.100.2/24")] {
        lab.ip(&h.ns, &format!("addr add {a} dev hb0"))
            .expect("hb0 address");
        lab.ip(&h.ns, "link set hb0 up").expect("hb0 up");
    }
    Net { lab, lb01, lb02 }
}

/// The seed config of `host` (lb01 or lb02), with a heartbeat path to the other node.
fn with_heartbeat(host: &str) -> String {
    let (us, peer) = match host {
        "lb01" => ("198.51.100.1", "198.51.100.2"),
        _ => ("198.51.100.2", "198.51.100.1"),
    };
    let block = format!(
        "    vrrp_xdp_heartbeat {{\n        interface hb0\n        unicast_src_ip {us}\n        unicast_peer {{\n            {peer}\n        }}\n    }}\n    virtual_ipaddress {{\n"
    );
    let conf = lab_config(&format!("seed-{host}.conf"));
    assert!(conf.contains("    virtual_ipaddress {\n"));
    conf.replace("    virtual_ipaddress {\n", &block)
}

/// Drops every VRRP packet `host` sends out of eth0 (and only eth0: the heartbeat goes on).
fn cut_primary(n: &Net, host: &Host) {
    n.lab
        .sh(
            &host.ns,
            "nft add table inet hbcut && nft add chain inet hbcut out '{ type filter hook output priority 0; }' && nft add rule inet hbcut out oifname eth0 ip protocol 112 drop",
        )
        .expect("cut the primary path");
}

/// Every process in the host's namespace SIGKILLed at once: agent and guardian, the whole
/// daemon, so nothing speaks for it on any path.
fn kill_whole_daemon(host: &Host) {
    vrrp_tests::crash_namespace(&host.ns).expect("kill the daemon");
}

impl Net {
    /// Starts lb02 (master, 100) and lb01 (backup, 50) and waits for the election.
    fn start(&mut self, lb01_conf: &str, lb02_conf: &str, extra: &[&str]) {
        let (lb01, lb02) = (self.lb01.clone(), self.lb02.clone());
        self.lab
            .agent_conf(&lb02, "lb02", lb02_conf, extra)
            .expect("start lb02");
        self.lab
            .wait_state("lb02", "VI_1", "MASTER", T)
            .expect("lb02 master");
        self.lab
            .agent_conf(&lb01, "lb01", lb01_conf, extra)
            .expect("start lb01");
        self.lab
            .wait_state("lb01", "VI_1", "BACKUP", T)
            .expect("lb01 backup");
        self.lab
            .wait_owner(VIP, &["lb02"], T)
            .expect("VIP on lb02 only");
    }

    fn status(&self, name: &str) -> serde_json::Value {
        self.lab.status_json(name).expect("status")
    }

    /// Heartbeat adverts agent `name` heard from its peer.
    fn heartbeat_heard(&self, name: &str) -> u64 {
        self.status(name)["instances"][0]["heartbeat_paths"][0]["peers"][0]["adverts_received"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Valid adverts agent `name` saw on the primary path: XDP's `valid` counter, or the
    /// instance's received adverts with `--no-xdp`.
    fn primary_heard(&self, name: &str, xdp: bool) -> u64 {
        let st = self.status(name);
        if xdp {
            st["dataplanes"][0]["counters"]["valid"].as_u64()
        } else {
            st["instances"][0]["adverts_received"].as_u64()
        }
        .unwrap_or_else(|| panic!("no advert counter in {st}"))
    }
}

/// (1) The primary path is cut, the heartbeat path is not: the backup stays BACKUP and the
/// VIP keeps exactly one owner. (2) The master's whole daemon dies: every path is silent and
/// the backup takes over after its master-down interval.
fn heartbeat_holds_the_backup_then_all_silent_fails_over(test: &str, extra: &[&str]) {
    let xdp = !extra.contains(&"--no-xdp");
    let mut n = net(test);
    n.start(&with_heartbeat("lb01"), &with_heartbeat("lb02"), extra);
    n.lab
        .wait_until("lb01 hears lb02 on the heartbeat path", T, || {
            Ok(n.heartbeat_heard("lb01") > 0)
        })
        .expect("heartbeat heard");
    let st = n.status("lb02");
    let path = &st["instances"][0]["heartbeat_paths"][0];
    assert_eq!(path["interface"], "hb0", "{st}");
    assert_eq!(path["source"], "198.51.100.2", "{st}");
    assert!(path["adverts_sent"].as_u64().unwrap_or(0) > 0, "{st}");

    cut_primary(&n, &n.lb02);
    // Let adverts already on their way arrive before taking the baseline.
    std::thread::sleep(Duration::from_millis(1500));
    let primary_before = n.primary_heard("lb01", xdp);
    let heartbeat_before = n.heartbeat_heard("lb01");
    n.lab.stays("lb01", "VI_1", "BACKUP", HOLD);
    assert_eq!(
        n.primary_heard("lb01", xdp),
        primary_before,
        "the primary path was not cut"
    );
    assert!(
        n.heartbeat_heard("lb01") > heartbeat_before,
        "the heartbeat path fell silent too"
    );
    assert_eq!(n.lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"], "exactly one VIP owner");
    let st = n.status("lb01");
    assert!(
        st["instances"][0]["heartbeat_restarts"]
            .as_u64()
            .unwrap_or(0)
            > 0,
        "{st}"
    );
    if xdp {
        // The kernel did report the primary-path master silent; the agent kept waiting.
        assert!(
            st["instances"][0]["master_silent_reports"]
                .as_u64()
                .unwrap_or(0)
                > 0,
            "{st}"
        );
    }

    // (2) All paths silent.
    kill_whole_daemon(&n.lb02);
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 takes over once every path is silent");
    n.lab
        .wait_until("lb01 binds the VIP", T, || n.lab.has_addr(&n.lb01, VIP))
        .expect("VIP on lb01");
    let last = n
        .lab
        .transitions("lb01", Some("VI_1"))
        .pop()
        .expect("a transition");
    assert!(
        last.line.contains("master down after"),
        "not a master-down takeover: {}",
        last.line
    );
}

#[test]
fn heartbeat_keeps_the_backup_while_the_primary_path_is_cut_xdp() {
    heartbeat_holds_the_backup_then_all_silent_fails_over("hb-xdp", &[]);
}

#[test]
fn heartbeat_keeps_the_backup_while_the_primary_path_is_cut_no_xdp() {
    heartbeat_holds_the_backup_then_all_silent_fails_over("hb-noxdp", &["--no-xdp"]);
}

/// The control: the same cut without heartbeat paths makes two masters.
#[test]
fn without_heartbeat_the_same_cut_makes_two_masters() {
    let mut n = net("hb-control");
    n.start(
        &lab_config("seed-lb01.conf"),
        &lab_config("seed-lb02.conf"),
        &[],
    );
    cut_primary(&n, &n.lb02);
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master during the cut");
    n.lab
        .wait_owner(VIP, &["lb01", "lb02"], T)
        .expect("two VIP owners");
    assert_eq!(n.lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
}

/// The agent alone is killed while the primary path is cut: its guardian's priority 0 goes
/// over the heartbeat path too, so the backup takes over after its skew time, and the
/// guardian unbinds the VIP (one owner).
#[test]
fn guardian_priority_zero_goes_over_the_heartbeat_path() {
    let mut n = net("hb-guardian");
    n.start(&with_heartbeat("lb01"), &with_heartbeat("lb02"), &[]);
    n.lab
        .wait_until("lb01 hears lb02 on the heartbeat path", T, || {
            Ok(n.heartbeat_heard("lb01") > 0)
        })
        .expect("heartbeat heard");
    cut_primary(&n, &n.lb02);
    n.lab
        .stays("lb01", "VI_1", "BACKUP", Duration::from_secs(5));
    n.lab.signal("lb02", Signal::SIGKILL).expect("kill lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    let st = n.lab.status_json("lb01").expect("status");
    assert!(
        st["instances"][0]["last_transition"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("priority 0 received from 198.51.100.2")),
        "{st}"
    );
    n.lab
        .wait_owner(VIP, &["lb01"], T)
        .expect("VIP on lb01 only");
}

/// Two masters that hear each other only on the heartbeat path (the primary segment cut, the
/// heartbeat link down while they started): both stay MASTER (heartbeat adverts never decide
/// the election) and both raise the split-brain alarm.
#[test]
fn two_masters_on_the_heartbeat_path_raise_the_split_brain_alarm() {
    let mut n = net("hb-splitbrain");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    // The whole primary segment cut in the bridge, ARP included: the only evidence of the
    // other master is then its heartbeat adverts (not its gratuitous ARPs).
    let br = n.lab.bridge_ns.clone();
    n.lab
        .sh(
            &br,
            "nft add table bridge hbcut && nft add chain bridge hbcut cut '{ type filter hook forward priority 0; }' && nft add rule bridge hbcut cut drop",
        )
        .expect("cut the bridge");
    for h in [&lb01, &lb02] {
        n.lab.ip(&h.ns, "link set hb0 down").expect("hb0 down");
    }
    n.lab
        .agent_conf(&lb02, "lb02", &with_heartbeat("lb02"), &[])
        .expect("start lb02");
    n.lab
        .agent_conf(&lb01, "lb01", &with_heartbeat("lb01"), &[])
        .expect("start lb01");
    for name in ["lb01", "lb02"] {
        n.lab
            .wait_state(name, "VI_1", "MASTER", T)
            .expect("master on both sides of the cut");
    }
    for h in [&lb01, &lb02] {
        n.lab.ip(&h.ns, "link set hb0 up").expect("hb0 up");
    }
    for name in ["lb01", "lb02"] {
        n.lab
            .wait_until(&format!("{name}'s split-brain alarm"), T, || {
                let st = n.lab.status_json(name)?;
                Ok(st["instances"][0]["split_brain_alarm"] == true)
            })
            .expect("alarm");
        let log = n.lab.log(name);
        assert!(
            log.contains("another master heard on a heartbeat path"),
            "{log}"
        );
        assert!(
            log.lines()
                .any(|l| l.contains("SPLIT BRAIN") && l.contains("heartbeat_master")),
            "{log}"
        );
    }
    n.lab
        .stays("lb01", "VI_1", "MASTER", Duration::from_secs(3));
    assert_eq!(n.lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
}

/// A heartbeat interface that does not exist stops the start with an error naming it.
#[test]
fn unknown_heartbeat_interface_is_a_clear_start_error() {
    let mut n = net("hb-unknown");
    let lb01 = n.lb01.clone();
    let conf = with_heartbeat("lb01").replace("interface hb0", "interface hbnone");
    n.lab
        .agent_conf(&lb01, "lb01", &conf, &[])
        .expect("start lb01");
    let st = n.lab.wait_exit("lb01", T).expect("lb01 exits");
    assert!(!st.success(), "{st}");
    let log = n.lab.log("lb01");
    assert!(
        log.contains("instance VI_1: vrrp_xdp_heartbeat interface hbnone"),
        "{log}"
    );
}

/// A heartbeat path added by a reload (SIGHUP) to a running pair: no state change, the path
/// works at once, and it holds the backup when the primary path is cut.
#[test]
fn a_reload_adds_a_heartbeat_path_in_place() {
    let mut n = net("hb-reload");
    n.start(
        &lab_config("seed-lb01.conf"),
        &lab_config("seed-lb02.conf"),
        &[],
    );
    for name in ["lb02", "lb01"] {
        n.lab
            .write_file(&format!("{name}.conf"), &with_heartbeat(name))
            .expect("new config");
        n.lab.signal(name, Signal::SIGHUP).expect("SIGHUP");
        n.lab
            .wait_log(name, "configuration reloaded", T)
            .expect("reloaded");
    }
    n.lab
        .wait_until("lb01 hears lb02 on the new heartbeat path", T, || {
            Ok(n.heartbeat_heard("lb01") > 0)
        })
        .expect("heartbeat heard");
    assert_eq!(
        n.lab.transitions("lb01", Some("VI_1")).len(),
        1,
        "only startup"
    );
    assert_eq!(n.lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
    cut_primary(&n, &n.lb02);
    n.lab.stays("lb01", "VI_1", "BACKUP", HOLD);
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"], "exactly one VIP owner");
}
