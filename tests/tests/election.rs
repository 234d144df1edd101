//! The election end to end: two load balancers (lb01, lb02) running vrrp-agent and a client on
//! one bridge, as in the seed (SEED.md): lb02 master priority 100, lb01 backup priority 50,
//! VIP 192.0.2.3/24 label eth0:3. Failover, preemption, multi-instance, unicast, IPv6, PASS
//! authentication and bad input on the wire.
//!
//! Every test asserts behaviour (states, VIP owners, ARP replies) with generous deadlines.
#![cfg(feature = "lab")]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use nix::sys::signal::Signal;
use vrrp_agent::proto::codec::{ChecksumForm, encode_ip};
use vrrp_agent::proto::{Advert, Auth, Centisecs, Priority, Version, Vrid};
use vrrp_tests::{
    Host, Instance, Lab, VRRP_MAC_V4, eth_frame, keepalived_conf, lab_config, parse_mac,
    require_lab,
};

const VIP: &str = "192.0.2.3";
const VIP2: &str = "192.0.2.4";
const VIP6: &str = "2001:db8::100";
/// Generous: tests assert behaviour, never speed.
const T: Duration = Duration::from_secs(20);

/// A seed config as SEED.md writes it (testdata/config: several keywords on one line, which
/// vrrp-agent accepts with a warning).
fn seed_config(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/config")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Net {
    lab: Lab,
    lb01: Host,
    lb02: Host,
    client: Host,
}

fn net(test: &str) -> Net {
    require_lab();
    let mut lab = Lab::new(test).expect("lab");
    let lb01 = lab
        .host("lb01", &["192.0.2.1/24", "2001:db8::1/64"])
        .expect("lb01");
    let lb02 = lab
        .host("lb02", &["192.0.2.2/24", "2001:db8::2/64"])
        .expect("lb02");
    let client = lab
        .host("client", &["192.0.2.10/24", "2001:db8::10/64"])
        .expect("client");
    Net {
        lab,
        lb01,
        lb02,
        client,
    }
}

impl Net {
    /// Starts both agents on the seed's single-instance configs and waits for the election.
    fn seed_pair(&mut self, extra: &[&str]) {
        let (lb01, lb02) = (self.lb01.clone(), self.lb02.clone());
        self.lab
            .agent_conf(&lb02, "lb02", &lab_config("seed-lb02.conf"), extra)
            .expect("start lb02");
        self.lab
            .agent_conf(&lb01, "lb01", &lab_config("seed-lb01.conf"), extra)
            .expect("start lb01");
        self.lab
            .wait_state("lb02", "VI_1", "MASTER", T)
            .expect("lb02 master");
        self.lab
            .wait_state("lb01", "VI_1", "BACKUP", T)
            .expect("lb01 backup");
        self.lab
            .wait_owner(VIP, &["lb02"], T)
            .expect("VIP on lb02 only");
    }
}

#[test]
fn seed_single_instance_one_owner_and_arp() {
    let mut n = net("seed-single");
    n.seed_pair(&[]);
    // The label is kept (keepalived's `label eth0:3`).
    let shown = n
        .lab
        .ip(&n.lb02.ns, "-o -4 addr show dev eth0")
        .expect("ip addr");
    assert!(
        shown
            .lines()
            .any(|l| l.contains(VIP) && l.contains("eth0:3")),
        "VIP without its label: {shown}"
    );
    // The client's ARP request for the VIP is answered with lb02's MAC.
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(
        mac,
        n.lb02.mac.to_lowercase(),
        "ARP reply from the wrong host"
    );
    // Stable: lb01 never became master, one owner.
    n.lab
        .stays("lb01", "VI_1", "BACKUP", Duration::from_secs(4));
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"]);
    assert!(
        !n.lab
            .transitions("lb01", None)
            .iter()
            .any(|t| t.to == "MASTER"),
        "lb01 was master at some point:\n{}",
        n.lab.log("lb01")
    );
    assert_eq!(
        n.lab.arp_who_has(&n.client, VIP),
        Some(n.lb02.mac.to_lowercase())
    );
}

#[test]
fn failover_on_sigkill_of_the_master() {
    let mut n = net("sigkill");
    n.seed_pair(&[]);
    n.lab.signal("lb02", Signal::SIGKILL).expect("kill lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab
        .wait_until("lb01 binds the VIP", T, || n.lab.has_addr(&n.lb01, VIP))
        .expect("VIP on lb01");
    // The guardian sent priority 0 for the killed agent: lb01 took over after its skew time,
    // not a master-down interval, and the guardian unbound lb02's VIP.
    let st = n.lab.status_json("lb01").expect("status");
    let i = &st["instances"][0];
    assert_eq!(i["transitions"]["priority_zero_received"], 1, "{st}");
    assert!(
        i["last_transition"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("priority 0 received from 192.0.2.2")),
        "{st}"
    );
    n.lab
        .wait_owner(VIP, &["lb01"], T)
        .expect("VIP unbound on the killed agent's node");
    let lb02_log = n.lab.log("lb02");
    assert!(
        lb02_log.contains("guardian: the agent died while MASTER"),
        "{lb02_log}"
    );
    no_arp_replies_from(&n, &n.lb02, 3);
}

/// A shell command outside the lab's namespaces; its output.
fn host_sh(script: &str) -> String {
    vrrp_tests::run_cmd(std::process::Command::new("sh").args(["-c", script]))
        .unwrap_or_else(|e| panic!("{script}: {e:#}"))
}

/// Asks for the VIP `count` times from the client; fails if `host` answers any of them.
fn no_arp_replies_from(n: &Net, host: &Host, count: u32) {
    let out = n
        .lab
        .sh(
            &n.client.ns,
            &format!(
                "arping -c {count} -w {count} -I {} {VIP} || true",
                n.client.ifname
            ),
        )
        .expect("arping");
    assert!(
        out.contains(&format!("Sent {count} probes")),
        "arping did not run: {out}"
    );
    let mac = host.mac.to_uppercase();
    assert!(
        !out.to_uppercase().contains(&mac),
        "{} ({mac}) answered ARP for the VIP:\n{out}",
        host.name
    );
}

/// Every process in the host's namespace, SIGKILLed at once: the agent and its guardian die
/// together, as in a crash of the whole daemon (keepalived leaves the VIP answered by the
/// kernel then). The VIP stays bound on the dead node, yet nothing there answers for it.
#[test]
fn crash_of_the_whole_daemon_leaves_no_answerer() {
    let mut n = net("crash");
    n.seed_pair(&[]);
    let pids = host_sh(&format!("ip netns pids {}", n.lb02.ns));
    assert!(pids.lines().count() >= 2, "agent and guardian: {pids}");
    vrrp_tests::crash_namespace(&n.lb02.ns).expect("crash lb02");
    // From the instant of the kill: the stale VIP is still bound on lb02 (a start removes it),
    // but the kernel there does not answer for it.
    assert!(
        n.lab.has_addr(&n.lb02, VIP).expect("ip addr"),
        "VIP gone from lb02"
    );
    no_arp_replies_from(&n, &n.lb02, 3);
    // The kernel did try to answer: its replies were dropped by the filter the agent left.
    let table = n
        .lab
        .sh(&n.lb02.ns, "nft list table arp vrrp_xdp")
        .expect("filter table");
    let dropped: u64 = table
        .split("counter packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "no kernel ARP reply dropped:\n{table}");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, n.lb01.mac.to_lowercase());
    no_arp_replies_from(&n, &n.lb02, 3);
    // A restart removes the stale VIP and the filter, and preempts back (priority 100).
    let lb02 = n.lb02.clone();
    n.lab
        .agent_conf(&lb02, "lb02-again", &lab_config("seed-lb02.conf"), &[])
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-again", "VI_1", "MASTER", T)
        .expect("lb02 master again");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP on lb02 only");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, n.lb02.mac.to_lowercase());
}

/// Without XDP the kernel answers ARP, so no filter is installed and a crash behaves as
/// keepalived's; the guardian still moves the VIP.
#[test]
fn no_xdp_mode_installs_no_kernel_filter() {
    let mut n = net("nofilter");
    n.seed_pair(&["--no-xdp"]);
    let rules = n.lab.sh(&n.lb02.ns, "nft list ruleset").unwrap_or_default();
    assert!(!rules.contains("vrrp_xdp"), "{rules}");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, n.lb02.mac.to_lowercase());
}

/// `vrrp-agent handover`: lb02 gives MASTER to lb01 (make-before-break) and does not preempt
/// back although its priority is higher.
#[test]
fn handover_command_moves_the_vip_and_does_not_preempt_back() {
    let mut n = net("handover");
    n.seed_pair(&[]);
    let sock = n.lab.path("lb02.sock");
    let out = host_sh(&format!(
        "{} handover --socket {}",
        vrrp_tests::agent_bin().display(),
        sock.display()
    ));
    assert!(out.contains("handing over: VI_1"), "{out}");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab
        .wait_state("lb02", "VI_1", "BACKUP", T)
        .expect("lb02 backup");
    n.lab.wait_owner(VIP, &["lb01"], T).expect("VIP on lb01");
    let st = n.lab.status_json("lb02").expect("status");
    assert_eq!(
        st["instances"][0]["transitions"]["handed_over"], 1,
        "lb02 did not hand over: {st}"
    );
    // Yielded: lb02 (100) accepts lb01 (50) as master instead of preempting.
    n.lab
        .stays("lb02", "VI_1", "BACKUP", Duration::from_secs(5));
    let st = n.lab.status_json("lb01").expect("status");
    assert_eq!(st["instances"][0]["state"], "MASTER", "{st}");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, n.lb01.mac.to_lowercase());
}

#[test]
fn failover_on_master_link_down_and_back() {
    let mut n = net("linkdown");
    n.seed_pair(&[]);
    n.lab.link(&n.lb02, false).expect("link down");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab
        .wait_until("lb01 binds the VIP", T, || n.lab.has_addr(&n.lb01, VIP))
        .expect("VIP on lb01");
    n.lab
        .wait_state("lb02", "VI_1", "FAULT", T)
        .expect("lb02 fault");
    // Like keepalived, a node in FAULT does not hold the VIP.
    n.lab
        .wait_until("lb02 releases the VIP in FAULT", T, || {
            Ok(!n.lab.has_addr(&n.lb02, VIP)?)
        })
        .expect("VIP released on lb02");
    n.lab.link(&n.lb02, true).expect("link up");
    // lb02 comes back and preempts (priority 100 > 50).
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master again");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup again");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP back on lb02 only");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, n.lb02.mac.to_lowercase());
}

#[test]
fn graceful_stop_hands_over_and_releases() {
    let mut n = net("sigterm");
    n.seed_pair(&[]);
    // The client talks to the VIP: its neighbour table holds lb02's MAC.
    let mac = n.lab.wait_nd_reply(&n.client, VIP, T).expect("resolve VIP");
    assert_eq!(mac, n.lb02.mac.to_lowercase());
    n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
    n.lab
        .wait_exit("lb02", T)
        .map(|st| assert!(st.success(), "lb02 exit status {st}\n{}", n.lab.log("lb02")))
        .expect("lb02 exits");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab
        .wait_owner(VIP, &["lb01"], T)
        .expect("VIP on lb01 only");
    let log = n.lab.log("lb02");
    assert!(log.contains("SIGTERM: handing over"), "{log}");
    // Make-before-break: lb02 kept the VIP until it heard lb01 as master.
    assert!(log.contains("new master"), "{log}");
    assert!(!log.contains("no new master within"), "{log}");
    assert!(log.contains("vrrp-agent stopped"), "{log}");
    // lb01's gratuitous ARP moved the client's entry to lb01 without the client asking.
    let lb01_mac = n.lb01.mac.to_lowercase();
    n.lab
        .wait_until("the client's neighbour entry to follow the VIP", T, || {
            Ok(n.lab.neigh_mac(&n.client, VIP).as_deref() == Some(lb01_mac.as_str()))
        })
        .expect("gratuitous ARP updates the client");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, n.lb01.mac.to_lowercase());
}

#[test]
fn preempt_back_when_the_master_returns() {
    let mut n = net("preempt");
    n.seed_pair(&[]);
    n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
    n.lab.wait_exit("lb02", T).expect("lb02 exits");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab.wait_owner(VIP, &["lb01"], T).expect("VIP on lb01");
    let mac = n.lab.wait_nd_reply(&n.client, VIP, T).expect("resolve VIP");
    assert_eq!(mac, n.lb01.mac.to_lowercase());
    let lb02 = n.lb02.clone();
    n.lab
        .agent_conf(&lb02, "lb02-again", &lab_config("seed-lb02.conf"), &[])
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-again", "VI_1", "MASTER", T)
        .expect("lb02 preempts");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 yields");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP back on lb02 only");
    // lb02's gratuitous ARP moved the client's entry back without the client asking.
    let lb02_mac = n.lb02.mac.to_lowercase();
    n.lab
        .wait_until("the client's neighbour entry to follow the VIP", T, || {
            Ok(n.lab.neigh_mac(&n.client, VIP).as_deref() == Some(lb02_mac.as_str()))
        })
        .expect("gratuitous ARP updates the client");
    let mac = n.lab.wait_arp_reply(&n.client, VIP, T).expect("ARP reply");
    assert_eq!(mac, lb02_mac);
}

#[test]
fn nopreempt_returning_node_stays_backup() {
    let mut n = net("nopreempt");
    n.seed_pair(&[]);
    n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
    n.lab.wait_exit("lb02", T).expect("lb02 exits");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab.wait_owner(VIP, &["lb01"], T).expect("VIP on lb01");
    // keepalived's nopreempt needs state BACKUP.
    let mut inst = Instance::seed("BACKUP", 100);
    inst.nopreempt = true;
    let lb02 = n.lb02.clone();
    n.lab
        .agent_conf(&lb02, "lb02-again", &keepalived_conf("lb02", &[inst]), &[])
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-again", "VI_1", "BACKUP", T)
        .expect("lb02 backup");
    // Well past the master down interval (3 × 1 s + skew): still backup.
    n.lab
        .stays("lb02-again", "VI_1", "BACKUP", Duration::from_secs(6));
    n.lab.stays("lb01", "VI_1", "MASTER", Duration::ZERO);
    assert_eq!(n.lab.vip_owner(VIP), ["lb01"]);
}

#[test]
fn dual_master_each_node_one_vip_then_survivor_takes_both() {
    let mut n = net("dual");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    n.lab
        .agent_conf(&lb01, "lb01", &seed_config("seed-dual-lb01.conf"), &[])
        .expect("start lb01");
    n.lab
        .agent_conf(&lb02, "lb02", &seed_config("seed-dual-lb02.conf"), &[])
        .expect("start lb02");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 VI_1 master");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 VI_1 backup");
    n.lab
        .wait_state("lb01", "VI_2", "MASTER", T)
        .expect("lb01 VI_2 master");
    n.lab
        .wait_state("lb02", "VI_2", "BACKUP", T)
        .expect("lb02 VI_2 backup");
    n.lab.wait_owner(VIP, &["lb02"], T).expect(".3 on lb02");
    n.lab.wait_owner(VIP2, &["lb01"], T).expect(".4 on lb01");
    assert_eq!(
        n.lab.wait_arp_reply(&n.client, VIP, T).expect("arp .3"),
        n.lb02.mac.to_lowercase()
    );
    assert_eq!(
        n.lab.wait_arp_reply(&n.client, VIP2, T).expect("arp .4"),
        n.lb01.mac.to_lowercase()
    );
    // The node dies: its agent is killed and its link goes with it.
    n.lab.signal("lb01", Signal::SIGKILL).expect("kill lb01");
    n.lab.link(&n.lb01, false).expect("lb01 link down");
    n.lab
        .wait_state("lb02", "VI_2", "MASTER", T)
        .expect("lb02 VI_2 master");
    n.lab.stays("lb02", "VI_1", "MASTER", Duration::ZERO);
    n.lab
        .wait_until("both VIPs on lb02", T, || {
            Ok(n.lab.has_addr(&n.lb02, VIP)? && n.lab.has_addr(&n.lb02, VIP2)?)
        })
        .expect("survivor owns both VIPs");
    assert_eq!(
        n.lab.wait_arp_reply(&n.client, VIP2, T).expect("arp .4"),
        n.lb02.mac.to_lowercase()
    );
}

#[test]
fn unicast_failover() {
    let mut n = net("unicast");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let mut i2 = Instance::seed("MASTER", 100);
    i2.unicast_src = Some("192.0.2.2".into());
    i2.unicast_peers = vec!["192.0.2.1".into()];
    let mut i1 = Instance::seed("BACKUP", 50);
    i1.unicast_src = Some("192.0.2.1".into());
    i1.unicast_peers = vec!["192.0.2.2".into()];
    n.lab
        .agent_conf(&lb02, "lb02", &keepalived_conf("lb02", &[i2.clone()]), &[])
        .expect("start lb02");
    n.lab
        .agent_conf(&lb01, "lb01", &keepalived_conf("lb01", &[i1]), &[])
        .expect("start lb01");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup");
    n.lab.wait_owner(VIP, &["lb02"], T).expect("VIP on lb02");
    // No multicast adverts: the client hears none.
    let client = n.client.clone();
    n.lab
        .capture(&client, "client-cap", "ip proto 112", 5, 3)
        .expect("capture");
    let cap = n.lab.capture_wait("client-cap", T).expect("capture ends");
    let seen = n
        .lab
        .tshark_fields(&cap, "vrrp", &["ip.dst"])
        .expect("read capture");
    assert!(
        seen.iter()
            .all(|r| r.first().map(String::as_str) != Some("224.0.0.18")),
        "multicast adverts in unicast mode: {seen:?}"
    );
    // Stays stable, then fails over when the master dies.
    n.lab
        .stays("lb01", "VI_1", "BACKUP", Duration::from_secs(3));
    n.lab.signal("lb02", Signal::SIGKILL).expect("kill lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab
        .wait_until("lb01 binds the VIP", T, || n.lab.has_addr(&n.lb01, VIP))
        .expect("VIP on lb01");
    // And back: lb02 restarts (its VIP was left bound by SIGKILL) and preempts.
    n.lab
        .agent_conf(&lb02, "lb02-again", &keepalived_conf("lb02", &[i2]), &[])
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-again", "VI_1", "MASTER", T)
        .expect("lb02 master again");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup again");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP on lb02 only");
}

fn v6_instance(state: &str, priority: u8) -> Instance {
    Instance {
        version: 3,
        advert_int: "0.2".into(),
        auth_pass: None,
        vips: vec![format!("{VIP6}/64 dev eth0")],
        native_ipv6: true,
        ..Instance::seed(state, priority)
    }
}

#[test]
fn ipv6_vrrpv3_failover() {
    let mut n = net("ipv6");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    n.lab
        .agent_conf(
            &lb02,
            "lb02",
            &keepalived_conf("lb02", &[v6_instance("MASTER", 100)]),
            &[],
        )
        .expect("start lb02");
    n.lab
        .agent_conf(
            &lb01,
            "lb01",
            &keepalived_conf("lb01", &[v6_instance("BACKUP", 50)]),
            &[],
        )
        .expect("start lb01");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup");
    n.lab.wait_owner(VIP6, &["lb02"], T).expect("VIP6 on lb02");
    // 15 advert intervals: stable.
    n.lab
        .stays("lb01", "VI_1", "BACKUP", Duration::from_secs(3));
    // The client's neighbour solicitation for the VIP is answered with lb02's MAC.
    let mac = n.lab.wait_nd_reply(&n.client, VIP6, T).expect("ND reply");
    assert_eq!(mac, n.lb02.mac.to_lowercase());
    // Graceful stop: lb01 takes over and lb02 releases.
    n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab.wait_owner(VIP6, &["lb01"], T).expect("VIP6 on lb01");
    n.lab.wait_exit("lb02", T).expect("lb02 exits");
    let mac = n.lab.wait_nd_reply(&n.client, VIP6, T).expect("ND reply");
    assert_eq!(mac, n.lb01.mac.to_lowercase());
    // lb02 returns and preempts; then a hard kill fails over again.
    n.lab
        .agent_conf(
            &lb02,
            "lb02-again",
            &keepalived_conf("lb02", &[v6_instance("MASTER", 100)]),
            &[],
        )
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-again", "VI_1", "MASTER", T)
        .expect("lb02 master again");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup again");
    n.lab
        .wait_owner(VIP6, &["lb02"], T)
        .expect("VIP6 on lb02 again");
    n.lab
        .signal("lb02-again", Signal::SIGKILL)
        .expect("kill lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master after kill");
    n.lab
        .wait_until("lb01 binds VIP6", T, || n.lab.has_addr(&n.lb01, VIP6))
        .expect("VIP6 on lb01");
    // lb02 back, then the whole daemon (agent and guardian) dies: its kernel keeps VIP6 bound
    // but sends no Neighbor Advertisement for it.
    n.lab
        .agent_conf(
            &lb02,
            "lb02-third",
            &keepalived_conf("lb02", &[v6_instance("MASTER", 100)]),
            &[],
        )
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-third", "VI_1", "MASTER", T)
        .expect("lb02 master again");
    n.lab
        .wait_owner(VIP6, &["lb02"], T)
        .expect("VIP6 on lb02 again");
    vrrp_tests::crash_namespace(&n.lb02.ns).expect("crash lb02");
    assert!(
        n.lab.has_addr(&n.lb02, VIP6).expect("ip addr"),
        "VIP6 gone from lb02"
    );
    let lb02_mac = n.lb02.mac.to_lowercase();
    for _ in 0..3 {
        let mac = n.lab.nd_who_has(&n.client, VIP6);
        assert_ne!(
            mac.as_deref(),
            Some(lb02_mac.as_str()),
            "the dead lb02 answered NS"
        );
    }
    let table = n
        .lab
        .sh(&n.lb02.ns, "nft list table ip6 vrrp_xdp")
        .expect("filter table");
    assert!(
        !table.contains("counter packets 0 "),
        "no kernel NA dropped:\n{table}"
    );
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master after the crash");
    let mac = n.lab.wait_nd_reply(&n.client, VIP6, T).expect("ND reply");
    assert_eq!(mac, n.lb01.mac.to_lowercase());
}

#[test]
fn vrrpv2_pass_auth_failover_and_back() {
    let mut n = net("v2-pass");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let mk = |state: &str, prio: u8| Instance {
        vrid: 77,
        auth_pass: Some("s3cr3t".into()),
        ..Instance::seed(state, prio)
    };
    n.lab
        .agent_conf(
            &lb02,
            "lb02",
            &keepalived_conf("lb02", &[mk("MASTER", 100)]),
            &[],
        )
        .expect("start lb02");
    n.lab
        .agent_conf(
            &lb01,
            "lb01",
            &keepalived_conf("lb01", &[mk("BACKUP", 50)]),
            &[],
        )
        .expect("start lb01");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup");
    n.lab.wait_owner(VIP, &["lb02"], T).expect("VIP on lb02");
    n.lab
        .stays("lb01", "VI_1", "BACKUP", Duration::from_secs(4));
    n.lab.signal("lb02", Signal::SIGKILL).expect("kill lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab
        .wait_until("lb01 binds the VIP", T, || n.lab.has_addr(&n.lb01, VIP))
        .expect("VIP on lb01");
    n.lab
        .agent_conf(
            &lb02,
            "lb02-again",
            &keepalived_conf("lb02", &[mk("MASTER", 100)]),
            &[],
        )
        .expect("restart lb02");
    n.lab
        .wait_state("lb02-again", "VI_1", "MASTER", T)
        .expect("lb02 master again");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup again");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP on lb02 only");
}

/// Malformed and foreign adverts for the seed's VRID 51 (VRRPv2, PASS 1111), each claiming
/// priority 200 so that any one accepted would make lb02 yield (a visible state change).
fn bad_frames(src_mac: [u8; 6]) -> Vec<(&'static str, Vec<u8>)> {
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));
    let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let vip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));
    let good = Advert {
        version: Version::V2,
        vrid: Vrid::new(51).expect("vrid"),
        priority: Priority(200),
        interval: Centisecs::from_secs(1),
        addresses: vec![vip],
        auth: Auth::Pass(*b"1111\0\0\0\0"),
    };
    let ip = |a: &Advert, ttl: u8| {
        let mut out = Vec::new();
        encode_ip(
            a,
            src,
            dst,
            ttl,
            ChecksumForm::WithoutPseudoHeader,
            &mut out,
        )
        .expect("encode");
        out
    };
    // Fixes the IPv4 header checksum after an edit of the header.
    let fix_ip_csum = |p: &mut Vec<u8>| {
        p[10] = 0;
        p[11] = 0;
        let mut sum = 0u32;
        for c in p[..20].chunks(2) {
            sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let c = !(sum as u16);
        p[10..12].copy_from_slice(&c.to_be_bytes());
    };
    // Recomputes the VRRP checksum (no pseudo-header: VRRPv2) after an edit of the message.
    let fix_vrrp_csum = |p: &mut Vec<u8>| {
        p[26] = 0;
        p[27] = 0;
        let mut sum = 0u32;
        for c in p[20..].chunks(2) {
            let hi = c[0];
            let lo = c.get(1).copied().unwrap_or(0);
            sum += u32::from(u16::from_be_bytes([hi, lo]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        let c = !(sum as u16);
        p[26..28].copy_from_slice(&c.to_be_bytes());
    };
    let mut v = Vec::new();
    v.push(("ttl 254", ip(&good, 254)));
    let mut p = ip(&good, 255);
    p[27] ^= 0x55;
    v.push(("bad VRRP checksum", p));
    let mut p = ip(&good, 255);
    p[24] = 2; // auth type 2 (IP AH, RFC 2338; reserved since RFC 3768)
    fix_vrrp_csum(&mut p);
    v.push(("auth type 2 (AH)", p));
    let wrong_pass = Advert {
        auth: Auth::Pass(*b"9999\0\0\0\0"),
        ..good.clone()
    };
    v.push(("wrong password", ip(&wrong_pass, 255)));
    let no_auth = Advert {
        auth: Auth::None,
        ..good.clone()
    };
    v.push(("no authentication", ip(&no_auth, 255)));
    let wrong_int = Advert {
        interval: Centisecs::from_secs(2),
        ..good.clone()
    };
    v.push(("advert_int 2 (ours is 1)", ip(&wrong_int, 255)));
    let mut p = ip(&good, 255);
    p[20] = 0x22; // version 2, type 2
    fix_vrrp_csum(&mut p);
    v.push(("type 2", p));
    let mut p = ip(&good, 255);
    p[20] = 0x41; // version 4
    fix_vrrp_csum(&mut p);
    v.push(("version 4", p));
    let mut p = ip(&good, 255);
    p[23] = 3; // count 3, one address present
    fix_vrrp_csum(&mut p);
    v.push(("count larger than the message", p));
    // Truncated: the IP packet holds only the first 6 bytes of the VRRP message.
    let mut p = ip(&good, 255);
    p.truncate(26);
    p[2..4].copy_from_slice(&26u16.to_be_bytes());
    fix_ip_csum(&mut p);
    v.push(("truncated to 6 bytes", p));
    // Unknown VRID: valid otherwise, nobody here runs VRID 99.
    let foreign = Advert {
        vrid: Vrid::new(99).expect("vrid"),
        ..good.clone()
    };
    v.push(("unknown VRID 99", ip(&foreign, 255)));
    // A VRRPv3 advert for our VRRPv2 instance.
    let v3 = Advert {
        version: Version::V3,
        auth: Auth::None,
        ..good.clone()
    };
    let mut out = Vec::new();
    encode_ip(&v3, src, dst, 255, ChecksumForm::WithPseudoHeader, &mut out).expect("encode v3");
    v.push(("VRRPv3 to a VRRPv2 instance", out));
    // Bad IPv4 header checksum (the kernel drops it; the XDP program must not crash on it).
    let mut p = ip(&good, 255);
    p[10] ^= 0xff;
    v.push(("bad IPv4 header checksum", p));
    v.into_iter()
        .map(|(what, ipp)| (what, eth_frame(VRRP_MAC_V4, src_mac, 0x0800, &ipp)))
        .collect()
}

/// The drop reason the agent's raw-socket path counts for each kind of `bad_frames` (its
/// status `drops`: codec and configuration checks). None: not counted per instance (the kernel
/// drops a bad IPv4 header checksum; an unknown VRID is counted per agent).
fn raw_socket_reason(what: &str) -> Option<&'static str> {
    Some(match what {
        "ttl 254" => "bad_ttl",
        "bad VRRP checksum" => "bad_checksum",
        "auth type 2 (AH)" => "auth_type_ah",
        "wrong password" | "no authentication" => "auth_mismatch",
        "advert_int 2 (ours is 1)" => "interval_mismatch",
        "type 2" => "bad_type",
        "version 4" => "bad_version",
        "count larger than the message" | "truncated to 6 bytes" => "truncated",
        "VRRPv3 to a VRRPv2 instance" => "version_mismatch",
        _ => return None,
    })
}

/// The instance's drop counters from `vrrp-agent status --json`.
fn drops(lab: &vrrp_tests::Lab, name: &str) -> std::collections::BTreeMap<String, u64> {
    let s = lab.status_json(name).expect("status");
    s["instances"][0]["drops"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn flood_leaves_election_unchanged(test: &str, extra: &[&str]) {
    let mut n = net(test);
    let attacker = n
        .lab
        .host("attacker", &["192.0.2.20/24"])
        .expect("attacker");
    n.seed_pair(extra);
    // Settle: both agents have made their choice.
    std::thread::sleep(Duration::from_secs(2));
    let before01 = n.lab.transitions("lb01", None);
    let before02 = n.lab.transitions("lb02", None);
    let frames = bad_frames(parse_mac(&attacker.mac).expect("mac"));
    let raw_socket = extra.contains(&"--no-xdp");
    // Every kind on its own first, so that an accepted kind is named.
    for (what, f) in &frames {
        let before = drops(&n.lab, "lb02");
        n.lab
            .send_frames(&attacker, vec![f.clone()], 20, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("sending {what}: {e:#}"));
        std::thread::sleep(Duration::from_millis(300));
        // Without XDP the agent sees them all: each kind is counted under its own reason,
        // and under no other.
        if let Some(reason) = raw_socket.then(|| raw_socket_reason(what)).flatten() {
            let mut moved = Vec::new();
            n.lab
                .wait_until(&format!("lb02 to count {what:?} as {reason}"), T, || {
                    let now = drops(&n.lab, "lb02");
                    moved = now
                        .iter()
                        .filter(|(k, v)| before.get(*k).copied().unwrap_or(0) != **v)
                        .map(|(k, _)| k.clone())
                        .collect::<Vec<_>>();
                    Ok(moved == [reason])
                })
                .unwrap_or_else(|e| panic!("{what}: drops moved {moved:?}: {e:#}"));
        }
        for (name, before) in [("lb01", &before01), ("lb02", &before02)] {
            let now = n.lab.transitions(name, None);
            assert_eq!(
                &now,
                before,
                "{name} changed state after 20 frames of kind {what:?}\n{}",
                n.lab.all_logs()
            );
        }
    }
    let sent = n
        .lab
        .send_frames(
            &attacker,
            frames.iter().map(|(_, f)| f.clone()).collect(),
            20_000,
            Duration::from_secs(10),
        )
        .expect("flood");
    assert!(sent > 0, "nothing sent");
    // Longer than a master down interval (3 s + skew) after the flood.
    std::thread::sleep(Duration::from_secs(4));
    let after01 = n.lab.transitions("lb01", None);
    let after02 = n.lab.transitions("lb02", None);
    assert_eq!(
        after01,
        before01,
        "lb01 changed state under bad input ({sent} frames sent)\n{}",
        n.lab.all_logs()
    );
    assert_eq!(
        after02,
        before02,
        "lb02 changed state under bad input ({sent} frames sent)\n{}",
        n.lab.all_logs()
    );
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"]);
    assert!(
        n.lab.running("lb01") && n.lab.running("lb02"),
        "{}",
        n.lab.all_logs()
    );
    if !extra.contains(&"--no-xdp") {
        // The XDP program dropped them: its counters (in the status) show the drops.
        let st = n.lab.status_json("lb02").expect("status");
        let counters = &st["dataplanes"][0]["counters"];
        for c in ["bad_ttl", "bad_checksum", "unknown_vrid"] {
            assert!(
                counters[c].as_u64() > Some(0),
                "no {c} drops counted by XDP: {counters}"
            );
        }
    }
    // Still a working pair: the master's graceful stop hands over.
    n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    n.lab.wait_owner(VIP, &["lb01"], T).expect("VIP on lb01");
}

#[test]
fn bad_input_on_the_wire_changes_nothing_xdp() {
    flood_leaves_election_unchanged("bad-input-xdp", &[]);
}

#[test]
fn bad_input_on_the_wire_changes_nothing_no_xdp() {
    flood_leaves_election_unchanged("bad-input-noxdp", &["--no-xdp"]);
}

/// The harness itself: a test that panics with agents and keepalived running leaves no
/// namespace and no process behind.
#[test]
fn lab_cleans_up_after_a_failing_test() {
    require_lab();
    let seen: std::sync::Mutex<Option<(String, std::path::PathBuf, Vec<u32>)>> =
        std::sync::Mutex::new(None);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut n = net("cleanup");
        n.seed_pair(&[]);
        let client = n.client.clone();
        n.lab
            .keepalived(
                &client,
                "ka",
                &keepalived_conf("client", &[Instance::seed("BACKUP", 10)]),
            )
            .expect("start keepalived");
        n.lab
            .wait_log("ka", "Entering BACKUP STATE", T)
            .expect("keepalived up");
        let mut pids: Vec<u32> = ["lb01", "lb02", "ka"]
            .iter()
            .map(|p| n.lab.pid(p).expect("running"))
            .collect();
        // Everything running in the lab's namespaces (keepalived's VRRP child too).
        for h in n.lab.hosts() {
            let out = vrrp_tests::run_cmd(
                std::process::Command::new("ip").args(["netns", "pids", &h.ns]),
            )
            .expect("ip netns pids");
            pids.extend(out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
        }
        assert!(pids.len() > 3, "keepalived's child is missing: {pids:?}");
        *seen.lock().expect("lock") = Some((n.lab.tag.clone(), n.lab.dir.clone(), pids));
        panic!("deliberate failure with the lab running");
    }));
    assert!(result.is_err(), "the closure panics");
    let (tag, dir, pids) = seen
        .lock()
        .expect("lock")
        .take()
        .expect("the lab came up before the panic");
    // The failed lab keeps its logs for the post-mortem; this one was deliberate.
    let _ = std::fs::remove_dir_all(dir);
    for pid in pids {
        // Gone, or a zombie waiting for init to reap it (its parent was killed too).
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("gone");
        assert!(
            state == "gone" || state == "Z" || state == "X",
            "process {pid} survived the failing test: {stat}"
        );
    }
    let left = vrrp_tests::run_cmd(std::process::Command::new("ip").args(["netns", "list"]))
        .expect("ip netns list");
    let prefix = format!("{tag}-");
    assert!(
        !left.lines().any(|l| l.starts_with(&prefix)),
        "namespaces left behind: {left}"
    );
}

/// A partition (lb02's adverts dropped on their way out) makes lb01 master too. lb02, still
/// MASTER, hears lb01's adverts and raises the split-brain alarm: log, status, metric, and its
/// split-brain and fence hooks run once for the whole episode. After the heal lb01 yields, and
/// the alarm clears.
#[test]
fn split_brain_alarm_and_fence_run_once_per_episode() {
    let mut n = net("splitbrain");
    let fence = n.lab.path("fence.log");
    let alarm = n.lab.path("alarm.log");
    let script = |name: &str, out: &std::path::Path| {
        let p = n
            .lab
            .write_file(
                name,
                &format!("#!/bin/sh\necho \"$*\" >> {}\n", out.display()),
            )
            .expect("hook script");
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        p.display().to_string()
    };
    let (alarm_sh, fence_sh) = (script("alarm.sh", &alarm), script("fence.sh", &fence));
    let hooks = format!(
        "    vrrp_xdp_notify_split_brain {alarm_sh}\n    vrrp_xdp_fence {fence_sh}\n    virtual_router_id 51"
    );
    let lb02_conf = lab_config("seed-lb02.conf").replace("    virtual_router_id 51", &hooks);
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    n.lab
        .agent_conf(&lb02, "lb02", &lb02_conf, &[])
        .expect("start lb02");
    n.lab
        .agent_conf(&lb01, "lb01", &lab_config("seed-lb01.conf"), &[])
        .expect("start lb01");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup");
    // Partition: lb02's adverts never leave lb02 (XDP sees incoming frames before nftables, so
    // the drop is on output).
    n.lab
        .sh(
            &n.lb02.ns,
            "nft add table inet part && nft add chain inet part out '{ type filter hook output priority 0; }' && nft add rule inet part out ip protocol 112 drop",
        )
        .expect("partition");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master during the partition");
    n.lab
        .wait_until("lb02's status shows the alarm", T, || {
            let st = n.lab.status_json("lb02")?;
            Ok(st["instances"][0]["split_brain_alarm"] == true)
        })
        .expect("alarm in status");
    n.lab
        .wait_until("the fence hook ran", T, || Ok(fence.exists()))
        .expect("fence ran");
    // The episode goes on (lb01 keeps advertising): the hooks do not run again.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(lb02_state(&n), "MASTER");
    let fenced = std::fs::read_to_string(&fence).unwrap_or_default();
    assert_eq!(
        fenced.lines().count(),
        1,
        "fence ran more than once: {fenced}"
    );
    assert!(
        fenced.contains("INSTANCE VI_1 other_master 192.0.2.1"),
        "{fenced}"
    );
    let alarmed = std::fs::read_to_string(&alarm).unwrap_or_default();
    assert_eq!(alarmed.lines().count(), 1, "{alarmed}");
    // Heal: lb01 hears lb02 (priority 100) and yields; the alarm clears.
    n.lab
        .sh(&n.lb02.ns, "nft delete table inet part")
        .expect("heal");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 yields after the heal");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP on lb02 only");
    n.lab
        .wait_until("the alarm clears", T, || {
            let st = n.lab.status_json("lb02")?;
            Ok(st["instances"][0]["split_brain_alarm"] == false)
        })
        .expect("alarm clears");
    let st = n.lab.status_json("lb02").expect("status");
    assert_eq!(st["instances"][0]["split_brain_episodes"], 1, "{st}");
    let fenced = std::fs::read_to_string(&fence).unwrap_or_default();
    assert_eq!(fenced.lines().count(), 1, "{fenced}");
}

fn lb02_state(n: &Net) -> String {
    n.lab.state("lb02", "VI_1").unwrap_or_default()
}

/// keepalived's `use_vmac` without a macvlan: the master answers ARP with the virtual MAC
/// 00:00:5e:00:01:33 (VRID 51), its adverts come from it, the VMAC is in its interface's
/// unicast filter, and traffic the client sends to the VMAC reaches the VIP (XDP re-addresses
/// it to the interface). After failover the backup takes over the same MAC.
#[test]
fn use_vmac_without_macvlan() {
    let mut n = net("vmac");
    let vmac = "00:00:5e:00:01:33";
    let with_vmac = |name: &str| {
        lab_config(name).replace(
            "    virtual_router_id 51",
            "    use_vmac\n    virtual_router_id 51",
        )
    };
    let (lb01, lb02, client) = (n.lb01.clone(), n.lb02.clone(), n.client.clone());
    n.lab
        .agent_conf(&lb02, "lb02", &with_vmac("seed-lb02.conf"), &[])
        .expect("start lb02");
    n.lab
        .agent_conf(&lb01, "lb01", &with_vmac("seed-lb01.conf"), &[])
        .expect("start lb01");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup");
    let mac = n.lab.wait_arp_reply(&client, VIP, T).expect("ARP reply");
    assert_eq!(mac, vmac);
    let fdb = n.lab.sh(&lb02.ns, "bridge fdb show dev eth0").expect("fdb");
    assert!(fdb.contains(&format!("{vmac} self permanent")), "{fdb}");
    // The client reaches the VIP through the virtual MAC.
    let ping = n
        .lab
        .sh(
            &client.ns,
            &format!("ip neigh flush dev eth0; ping -c 3 -W 2 {VIP}"),
        )
        .expect("ping the VIP through the VMAC");
    assert!(ping.contains("3 received"), "{ping}");
    assert_eq!(n.lab.neigh_mac(&client, VIP).as_deref(), Some(vmac));
    // The master's adverts come from the virtual MAC.
    n.lab
        .capture(&client, "vmac-cap", "ip proto 112", 3, 10)
        .expect("capture");
    let file = n.lab.capture_wait("vmac-cap", T).expect("capture ends");
    let rows = n
        .lab
        .tshark_fields(&file, "vrrp", &["eth.src", "ip.src"])
        .expect("tshark");
    assert!(!rows.is_empty(), "no adverts captured");
    for r in &rows {
        assert_eq!(r[0], vmac, "advert not from the VMAC: {rows:?}");
        assert_eq!(r[1], "192.0.2.2");
    }
    // Failover: lb01 takes the same virtual MAC; lb02 drops it from its filter.
    n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
    n.lab.wait_exit("lb02", T).expect("lb02 exits");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    let fdb = n.lab.sh(&lb02.ns, "bridge fdb show dev eth0").expect("fdb");
    assert!(!fdb.contains(vmac), "{fdb}");
    let mac = n.lab.wait_arp_reply(&client, VIP, T).expect("ARP reply");
    assert_eq!(mac, vmac);
    let ping = n
        .lab
        .sh(&client.ns, &format!("ping -c 3 -W 2 {VIP}"))
        .expect("ping the VIP on lb01");
    assert!(ping.contains("3 received"), "{ping}");
    let st = n.lab.status_json("lb01").expect("status");
    let c = &st["dataplanes"][0]["counters"]["vmac_to_host"];
    assert!(c.as_u64().unwrap_or(0) > 0, "{st}");
}

/// The checksum forms lb01's instance sends now, from `vrrp-agent status --json`.
fn forms_sent(lab: &vrrp_tests::Lab) -> Vec<String> {
    let s = lab.status_json("lb01").expect("status");
    s["instances"][0]["checksum_forms_sent"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// issue 18 item 1: a strict RFC 9568 peer (checksum without the pseudo-header) drops our
/// default adverts and claims master at a lower priority. With `vrrp_xdp_checksum_auto` the
/// master answers it in its form too, on the wire, and stays master: XDP passes the new
/// sender's advert up with its form; raw sockets see every advert.
fn checksum_auto_answers_a_strict_peer(test: &str, extra: &[&str]) {
    let mut n = net(test);
    let strict = n.lab.host("strict", &["192.0.2.20/24"]).expect("strict");
    let mut inst = Instance::seed("MASTER", 200);
    inst.version = 3;
    inst.auth_pass = None;
    inst.advert_int = "0.1".into();
    let conf = keepalived_conf("lb01", &[inst]).replace(
        "    router_id lb01\n",
        "    router_id lb01\n    vrrp_xdp_checksum_auto\n",
    );
    let lb01 = n.lb01.clone();
    n.lab
        .agent_conf(&lb01, "lb01", &conf, extra)
        .expect("start lb01");
    n.lab
        .wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master");
    assert_eq!(forms_sent(&n.lab), ["pseudo_header"]);

    let (ours, theirs) = (
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)),
    );
    let group = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
    let advert = |priority: u8| Advert {
        version: Version::V3,
        vrid: Vrid::new(51).expect("vrid"),
        priority: Priority(priority),
        interval: Centisecs(10),
        addresses: vec![VIP.parse().expect("vip")],
        auth: Auth::None,
    };
    let mut ip = Vec::new();
    encode_ip(
        &advert(100),
        theirs,
        group,
        255,
        ChecksumForm::WithoutPseudoHeader,
        &mut ip,
    )
    .expect("encode");
    let frame = eth_frame(
        VRRP_MAC_V4,
        parse_mac(&strict.mac).expect("mac"),
        0x0800,
        &ip,
    );
    n.lab
        .send_frames(&strict, vec![frame], 10, Duration::from_secs(1))
        .expect("send the strict peer's adverts");
    n.lab
        .wait_until("lb01 to send both forms", T, || {
            Ok(forms_sent(&n.lab) == ["pseudo_header", "rfc9568"])
        })
        .expect("both forms");

    // On the wire: lb01's adverts carry both checksums, ours and the strict peer's form.
    let checksum = |form| {
        let mut p = Vec::new();
        encode_ip(&advert(200), ours, group, 255, form, &mut p).expect("encode");
        format!("0x{:02x}{:02x}", p[26], p[27])
    };
    let want = [
        checksum(ChecksumForm::WithPseudoHeader),
        checksum(ChecksumForm::WithoutPseudoHeader),
    ];
    let cap = n
        .lab
        .capture(
            &strict,
            "cap",
            "ip proto 112 and src host 192.0.2.1",
            20,
            10,
        )
        .expect("capture");
    let file = n
        .lab
        .capture_wait("cap", Duration::from_secs(30))
        .unwrap_or(cap);
    let seen: Vec<String> = n
        .lab
        .tshark_fields(&file, "vrrp", &["vrrp.checksum"])
        .expect("tshark")
        .into_iter()
        .filter_map(|r| r.into_iter().next())
        .collect();
    for w in &want {
        assert!(seen.contains(w), "{w} not among {seen:?} (want {want:?})");
    }
    assert_eq!(n.lab.state("lb01", "VI_1").as_deref(), Some("MASTER"));
}

#[test]
fn checksum_auto_answers_a_strict_peer_xdp() {
    checksum_auto_answers_a_strict_peer("csum-auto", &[]);
}

#[test]
fn checksum_auto_answers_a_strict_peer_raw_socket() {
    checksum_auto_answers_a_strict_peer("csum-auto-raw", &["--no-xdp"]);
}

/// RFC 9568 §6.4.3: the master's Neighbor Advertisements for its IPv6 VIPs set the Router
/// flag, the unsolicited ones it sends on becoming master and XDP's answers to a client's
/// solicitation, with `net.ipv6.conf.eth0.forwarding` off (a load balancer; before, the flag
/// followed that sysctl, as keepalived's).
#[test]
fn ipv6_master_neighbor_adverts_set_the_router_flag() {
    let mut n = net("na-router");
    let (lb02, client) = (n.lb02.clone(), n.client.clone());
    let fwd = n
        .lab
        .sh(&lb02.ns, "cat /proc/sys/net/ipv6/conf/eth0/forwarding")
        .expect("sysctl");
    assert_eq!(fwd.trim(), "0", "the lab host does not forward");
    n.lab
        .capture(&client, "na", "icmp6 and ip6[40] == 136", 2, 20)
        .expect("capture");
    n.lab
        .agent_conf(
            &lb02,
            "lb02",
            &keepalived_conf("lb02", &[v6_instance("MASTER", 100)]),
            &[],
        )
        .expect("start lb02");
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    let file = n
        .lab
        .capture_wait("na", Duration::from_secs(30))
        .expect("unsolicited NAs");
    let rows = n
        .lab
        .tshark_fields(
            &file,
            "icmpv6.type == 136",
            &["icmpv6.nd.na.target_address", "icmpv6.nd.na.flag.r"],
        )
        .expect("tshark");
    assert!(!rows.is_empty(), "no NA captured");
    for r in &rows {
        assert_eq!(r[0], VIP6, "{rows:?}");
        assert!(r[1] == "1" || r[1] == "True", "Router flag clear: {rows:?}");
    }
    // XDP's answer to the client's solicitation: the kernel marks the neighbour a router.
    let mac = n.lab.wait_nd_reply(&client, VIP6, T).expect("ND reply");
    assert_eq!(mac, lb02.mac.to_lowercase());
    let neigh = n
        .lab
        .ip(&client.ns, &format!("-6 neigh show to {VIP6} dev eth0"))
        .expect("neigh");
    assert!(neigh.split_whitespace().any(|w| w == "router"), "{neigh}");
}
