//! Interoperability with Debian's keepalived (2.2.7) as the peer on the same VRID: VRRPv2 with
//! and without PASS authentication, VRRPv3 over IPv4 and IPv6, in both roles; and a capture
//! of our adverts read by tshark (no malformed packet, good checksums).
//!
//! Both sides read the same generated config (one keyword per line). Tests assert behaviour
//! (states, VIP owners) with generous deadlines.
#![cfg(feature = "lab")]

use std::time::Duration;

use nix::sys::signal::Signal;
use vrrp_tests::{Host, Instance, Lab, keepalived_conf, require_lab};

const VIP: &str = "192.0.2.3";
const VIP6: &str = "2001:db8::100";
const T: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug)]
enum Flavor {
    V2,
    V2Pass,
    V3,
    V3Ipv6,
}

impl Flavor {
    fn instance(self, state: &str, priority: u8) -> Instance {
        let seed = Instance::seed(state, priority);
        match self {
            Self::V2 => Instance {
                auth_pass: None,
                ..seed
            },
            Self::V2Pass => seed,
            Self::V3 => Instance {
                version: 3,
                advert_int: "0.5".into(),
                auth_pass: None,
                ..seed
            },
            Self::V3Ipv6 => Instance {
                version: 3,
                advert_int: "0.5".into(),
                auth_pass: None,
                vips: vec![format!("{VIP6}/64 dev eth0")],
                native_ipv6: true,
                ..seed
            },
        }
    }

    fn vip(self) -> &'static str {
        match self {
            Self::V3Ipv6 => VIP6,
            _ => VIP,
        }
    }

    /// Comfortably more than the master down interval (3 adverts + skew).
    fn hold(self) -> Duration {
        match self {
            Self::V2 | Self::V2Pass => Duration::from_secs(5),
            Self::V3 | Self::V3Ipv6 => Duration::from_secs(3),
        }
    }
}

/// Lines of a keepalived log where it complains about what it received.
fn keepalived_complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            let l = l.to_lowercase();
            [
                "invalid",
                "mismatch",
                "bad ",
                "wrong",
                "checksum",
                "ttl",
                "malformed",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect()
}

struct Net {
    lab: Lab,
    lb01: Host,
    lb02: Host,
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
    Net { lab, lb01, lb02 }
}

/// keepalived master (priority 100, lb02) + our agent backup (50, lb01): the agent stays
/// backup; keepalived's graceful stop (priority 0) makes the agent master; keepalived's return
/// preempts it back.
fn keepalived_master_agent_backup(test: &str, f: Flavor) {
    let mut n = net(test);
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let vip = f.vip();
    let ka_conf = keepalived_conf("lb02", &[f.instance("MASTER", 100)]);
    n.lab
        .keepalived(&lb02, "ka", &ka_conf)
        .expect("start keepalived");
    n.lab
        .wait_owner(vip, &["lb02"], T)
        .expect("keepalived binds the VIP");
    n.lab
        .agent_conf(
            &lb01,
            "agent",
            &keepalived_conf("lb01", &[f.instance("BACKUP", 50)]),
            &[],
        )
        .expect("start agent");
    n.lab
        .wait_state("agent", "VI_1", "BACKUP", T)
        .expect("agent backup");
    n.lab.stays("agent", "VI_1", "BACKUP", f.hold());
    assert_eq!(n.lab.vip_owner(vip), ["lb02"], "{}", n.lab.all_logs());
    assert!(n.lab.running("ka"), "keepalived died:\n{}", n.lab.log("ka"));

    // Graceful stop of keepalived: priority 0, the agent takes over at once.
    n.lab
        .signal("ka", Signal::SIGTERM)
        .expect("term keepalived");
    n.lab
        .wait_state("agent", "VI_1", "MASTER", T)
        .expect("agent master");
    n.lab
        .wait_owner(vip, &["lb01"], T)
        .expect("VIP on the agent's host only");
    n.lab.wait_exit("ka", T).expect("keepalived exits");
    let last = n
        .lab
        .transitions("agent", Some("VI_1"))
        .pop()
        .expect("transition");
    assert!(
        last.line.contains("priority 0"),
        "the agent did not take over on keepalived's priority 0 advert: {}",
        last.line
    );

    // keepalived returns and preempts (100 > 50).
    n.lab
        .keepalived(&lb02, "ka-again", &ka_conf)
        .expect("restart keepalived");
    n.lab
        .wait_state("agent", "VI_1", "BACKUP", T)
        .expect("agent backup again");
    n.lab
        .wait_owner(vip, &["lb02"], T)
        .expect("VIP back on keepalived's host");
    n.lab.stays("agent", "VI_1", "BACKUP", f.hold());
    assert_eq!(n.lab.vip_owner(vip), ["lb02"]);
    for name in ["ka", "ka-again"] {
        let log = n.lab.log(name);
        assert!(
            keepalived_complaints(&log).is_empty(),
            "keepalived ({name}) complains about our adverts: {:?}",
            keepalived_complaints(&log)
        );
    }
}

/// Our agent master (100, lb02) + keepalived backup (50, lb01): keepalived stays backup (does
/// not bind the VIP) until the agent's graceful stop, then takes the VIP.
fn agent_master_keepalived_backup(test: &str, f: Flavor) {
    let mut n = net(test);
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let vip = f.vip();
    n.lab
        .agent_conf(
            &lb02,
            "agent",
            &keepalived_conf("lb02", &[f.instance("MASTER", 100)]),
            &[],
        )
        .expect("start agent");
    n.lab
        .wait_state("agent", "VI_1", "MASTER", T)
        .expect("agent master");
    n.lab
        .wait_owner(vip, &["lb02"], T)
        .expect("agent binds the VIP");
    n.lab
        .keepalived(
            &lb01,
            "ka",
            &keepalived_conf("lb01", &[f.instance("BACKUP", 50)]),
        )
        .expect("start keepalived");
    n.lab
        .wait_log("ka", "Entering BACKUP STATE", T)
        .expect("keepalived backup");
    // Several master down intervals: keepalived never binds the VIP, the agent stays master.
    let deadline = std::time::Instant::now() + f.hold();
    while std::time::Instant::now() < deadline {
        assert_eq!(n.lab.vip_owner(vip), ["lb02"], "{}", n.lab.all_logs());
        std::thread::sleep(Duration::from_millis(200));
    }
    n.lab.stays("agent", "VI_1", "MASTER", Duration::ZERO);
    assert!(
        !n.lab.log("ka").contains("Entering MASTER STATE"),
        "keepalived became master beside our agent:\n{}",
        n.lab.all_logs()
    );

    // The agent's graceful stop (priority 0): keepalived takes the VIP.
    n.lab.signal("agent", Signal::SIGTERM).expect("term agent");
    n.lab.wait_exit("agent", T).expect("agent exits");
    n.lab
        .wait_owner(vip, &["lb01"], T)
        .expect("keepalived takes the VIP");
    n.lab
        .wait_log("ka", "Entering MASTER STATE", T)
        .expect("keepalived master");

    // The agent returns and preempts keepalived (100 > 50).
    n.lab
        .agent_conf(
            &lb02,
            "agent-again",
            &keepalived_conf("lb02", &[f.instance("MASTER", 100)]),
            &[],
        )
        .expect("restart agent");
    n.lab
        .wait_state("agent-again", "VI_1", "MASTER", T)
        .expect("agent master again");
    n.lab
        .wait_owner(vip, &["lb02"], T)
        .expect("VIP back on the agent's host");
    n.lab.stays("agent-again", "VI_1", "MASTER", f.hold());
    assert_eq!(n.lab.vip_owner(vip), ["lb02"], "{}", n.lab.all_logs());
    let log = n.lab.log("ka");
    assert!(
        log.contains("Backup received priority 0 advertisement"),
        "keepalived did not see our priority 0 advert:\n{log}"
    );
    assert!(
        keepalived_complaints(&log).is_empty(),
        "keepalived complains about our adverts: {:?}",
        keepalived_complaints(&log)
    );
}

#[test]
fn v2_keepalived_master_agent_backup() {
    keepalived_master_agent_backup("ka-master-v2", Flavor::V2);
}

#[test]
fn v2_pass_keepalived_master_agent_backup() {
    keepalived_master_agent_backup("ka-master-v2-pass", Flavor::V2Pass);
}

#[test]
fn v3_keepalived_master_agent_backup() {
    keepalived_master_agent_backup("ka-master-v3", Flavor::V3);
}

#[test]
fn v3_ipv6_keepalived_master_agent_backup() {
    keepalived_master_agent_backup("ka-master-v3-ipv6", Flavor::V3Ipv6);
}

#[test]
fn v2_agent_master_keepalived_backup() {
    agent_master_keepalived_backup("agent-master-v2", Flavor::V2);
}

#[test]
fn v2_pass_agent_master_keepalived_backup() {
    agent_master_keepalived_backup("agent-master-v2-pass", Flavor::V2Pass);
}

#[test]
fn v3_agent_master_keepalived_backup() {
    agent_master_keepalived_backup("agent-master-v3", Flavor::V3);
}

#[test]
fn v3_ipv6_agent_master_keepalived_backup() {
    agent_master_keepalived_backup("agent-master-v3-ipv6", Flavor::V3Ipv6);
}

/// tshark reads our adverts (VRRPv2 with and without PASS, VRRPv3 over IPv4 and IPv6) as
/// well-formed VRRP with good checksums. With tshark's default preference the IPv4 VRRPv3
/// checksum includes the pseudo-header, which is what the agent sends by default.
#[test]
fn capture_of_our_adverts_is_well_formed() {
    let mut n = net("capture");
    let lb02 = n.lb02.clone();
    let lb01 = n.lb01.clone();
    let mut insts = Vec::new();
    for (i, f) in [Flavor::V2, Flavor::V2Pass, Flavor::V3, Flavor::V3Ipv6]
        .into_iter()
        .enumerate()
    {
        let mut inst = f.instance("MASTER", 100);
        inst.name = format!("VI_{}", i + 1);
        inst.vrid = 60 + i as u8;
        if matches!(f, Flavor::V3 | Flavor::V3Ipv6) {
            inst.advert_int = "0.2".into();
        }
        inst.vips = match f {
            Flavor::V3Ipv6 => vec![format!("2001:db8::{}/64 dev eth0", 101 + i)],
            _ => vec![format!("192.0.2.{}/24 dev eth0", 101 + i)],
        };
        insts.push(inst);
    }
    n.lab
        .agent_conf(&lb02, "agent", &keepalived_conf("lb02", &insts), &[])
        .expect("start agent");
    for i in 1..=4 {
        n.lab
            .wait_state("agent", &format!("VI_{i}"), "MASTER", T)
            .expect("agent master");
    }
    n.lab
        .capture(&lb01, "cap", "ip proto 112 or ip6 proto 112", 60, 10)
        .expect("start tshark");
    let file = n
        .lab
        .capture_wait("cap", Duration::from_secs(30))
        .expect("capture ends");
    let rows = n
        .lab
        .tshark_fields(
            &file,
            "vrrp",
            &[
                "vrrp.version",
                "vrrp.virt_rtr_id",
                "vrrp.checksum.status",
                "ip.ttl",
                "ipv6.hlim",
                "_ws.expert",
            ],
        )
        .expect("read capture");
    assert!(
        !rows.is_empty(),
        "no advert captured:\n{}",
        n.lab.all_logs()
    );
    for vrid in 60..64 {
        assert!(
            rows.iter()
                .any(|r| r.get(1).map(String::as_str) == Some(&vrid.to_string())),
            "no advert of VRID {vrid} in the capture: {rows:?}"
        );
    }
    for r in &rows {
        assert_eq!(
            r.get(2).map(String::as_str),
            Some("1"),
            "checksum not good: {r:?}"
        );
        let hops = if r[3].is_empty() { &r[4] } else { &r[3] };
        assert_eq!(hops, "255", "TTL / hop limit not 255: {r:?}");
        assert!(
            r.get(5).is_none_or(|e| e.is_empty()),
            "tshark expert info: {r:?}"
        );
    }
    let malformed = n
        .lab
        .tshark_fields(
            &file,
            "_ws.malformed || _ws.expert.severity >= \"Warning\"",
            &["frame.number"],
        )
        .expect("read capture");
    assert!(malformed.is_empty(), "malformed packets: {malformed:?}");
}

/// issue 18 item 3: keepalived running other VRIDs on the same interfaces as the agent (the
/// cut-over of the migration guide). The agent's XDP program dropped adverts for VRIDs it does
/// not run, so the backup's keepalived never heard its master and took the VIP too. It passes
/// them now (still counted as unknown_vrid).
#[test]
fn keepalived_and_the_agent_side_by_side_on_one_interface() {
    let mut n = net("interop-side");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let ours = |state: &str, prio: u8| Instance {
        version: 3,
        advert_int: "0.5".into(),
        auth_pass: None,
        ..Instance::seed(state, prio)
    };
    let theirs = |state: &str, prio: u8| Instance {
        name: "VI_2".into(),
        vrid: 52,
        vips: vec!["192.0.2.4/24 dev eth0".into()],
        ..ours(state, prio)
    };
    n.lab
        .agent_conf(
            &lb02,
            "agent02",
            &keepalived_conf("lb02", &[ours("MASTER", 100)]),
            &[],
        )
        .expect("agent lb02");
    n.lab
        .keepalived(
            &lb02,
            "ka02",
            &keepalived_conf("lb02", &[theirs("MASTER", 100)]),
        )
        .expect("keepalived lb02");
    n.lab
        .wait_owner("192.0.2.4", &["lb02"], T)
        .expect("keepalived on lb02 binds .4");
    n.lab
        .agent_conf(
            &lb01,
            "agent01",
            &keepalived_conf("lb01", &[ours("BACKUP", 50)]),
            &[],
        )
        .expect("agent lb01");
    n.lab
        .keepalived(
            &lb01,
            "ka01",
            &keepalived_conf("lb01", &[theirs("BACKUP", 50)]),
        )
        .expect("keepalived lb01");
    n.lab
        .wait_state("agent01", "VI_1", "BACKUP", T)
        .expect("agent lb01 backup");
    n.lab
        .wait_log("ka01", "Entering BACKUP STATE", T)
        .expect("keepalived lb01 backup");
    // Longer than either master-down interval: each backup hears its own master.
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"], "{}", n.lab.all_logs());
    assert_eq!(
        n.lab.vip_owner("192.0.2.4"),
        ["lb02"],
        "keepalived on lb01 did not hear its master through the agent's XDP program\n{}",
        n.lab.all_logs()
    );
    assert!(
        !n.lab.log("ka01").contains("Entering MASTER STATE"),
        "{}",
        n.lab.log("ka01")
    );
    let st = n.lab.status_json("agent01").expect("status");
    assert!(
        st["dataplanes"][0]["counters"]["unknown_vrid"].as_u64() > Some(0),
        "VRID 52 not counted: {st}"
    );
    n.lab.stays("agent01", "VI_1", "BACKUP", Duration::ZERO);
}

/// Asserts for `d` (sampled every 100 ms) that exactly `owner` holds the VIP.
fn sole_owner_for(lab: &Lab, vip: &str, owner: &str, d: Duration) {
    let deadline = std::time::Instant::now() + d;
    while std::time::Instant::now() < deadline {
        assert_eq!(lab.vip_owner(vip), [owner], "{}", lab.all_logs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The agent's config for an upgraded node: VRRPv3 with RFC 9568 §8.4 interoperation.
fn upgraded(router: &str, state: &str, priority: u8) -> String {
    let mut conf = keepalived_conf(router, &[Flavor::V2Pass.instance(state, priority)]);
    conf = conf.replace(
        "    version 2\n",
        "    version 3\n    vrrp_xdp_v2_interop\n",
    );
    assert!(conf.contains("vrrp_xdp_v2_interop"));
    conf
}

/// RFC 9568 §8.4 (checklist item 58): a VRRPv2 keepalived pair (the seed's, PASS 1111)
/// upgraded to VRRPv3 one node at a time. keepalived 2.2.7 drops v3 adverts on a v2 instance, so without the v2 copies either
/// side of the mixed pair would become master beside the other. Never two VIP owners.
#[test]
fn v2_keepalived_pair_upgraded_to_v3_one_node_at_a_time() {
    let mut n = net("v2v3");
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let v2 = |router: &str, state: &str, prio: u8| {
        keepalived_conf(router, &[Flavor::V2Pass.instance(state, prio)])
    };
    n.lab
        .keepalived(&lb01, "ka01", &v2("lb01", "MASTER", 100))
        .expect("keepalived lb01");
    n.lab
        .keepalived(&lb02, "ka02", &v2("lb02", "BACKUP", 50))
        .expect("keepalived lb02");
    n.lab
        .wait_owner(VIP, &["lb01"], T)
        .expect("v2 pair: lb01 owns");
    n.lab
        .wait_log("ka02", "Entering BACKUP STATE", T)
        .expect("keepalived lb02 backup");

    // Upgrade the master first: its graceful stop hands over to keepalived on lb02, then the
    // agent (priority 100, v3 + v2) preempts it. keepalived hears the v2 copy and backs off.
    n.lab.signal("ka01", Signal::SIGTERM).expect("stop ka01");
    n.lab.wait_exit("ka01", T).expect("ka01 exits");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("ka02 takes over");
    n.lab
        .agent_conf(&lb01, "agent01", &upgraded("lb01", "MASTER", 100), &[])
        .expect("agent lb01");
    n.lab
        .wait_state("agent01", "VI_1", "MASTER", T)
        .expect("agent lb01 master");
    n.lab
        .wait_owner(VIP, &["lb01"], T)
        .expect("keepalived lb02 gives the VIP up on our v2 adverts");
    sole_owner_for(&n.lab, VIP, "lb01", Duration::from_secs(6));
    assert!(n.lab.running("ka02"), "{}", n.lab.log("ka02"));
    let ka02 = n.lab.log("ka02");
    let backups = ka02.matches("Entering BACKUP STATE").count();
    assert!(backups >= 2, "keepalived lb02 went back to BACKUP:\n{ka02}");

    // Upgrade the backup: keepalived's v2 master is gone, the agent's v2 copies are ignored
    // (it also sends v3) and its v3 adverts keep lb02 backup.
    n.lab.signal("ka02", Signal::SIGTERM).expect("stop ka02");
    n.lab.wait_exit("ka02", T).expect("ka02 exits");
    n.lab
        .agent_conf(&lb02, "agent02", &upgraded("lb02", "BACKUP", 50), &[])
        .expect("agent lb02");
    n.lab
        .wait_state("agent02", "VI_1", "BACKUP", T)
        .expect("agent lb02 backup");
    n.lab
        .stays("agent02", "VI_1", "BACKUP", Duration::from_secs(5));
    sole_owner_for(&n.lab, VIP, "lb01", Duration::ZERO);
    let s = n.lab.status_json("agent02").expect("status");
    let drops = &s["instances"][0]["drops"]["v2_from_v3_sender"];
    assert!(
        drops.as_u64() >= Some(1),
        "lb02 ignored lb01's v2 copies: {s}"
    );

    // The upgraded pair fails over as any v3 pair.
    n.lab
        .signal("agent01", Signal::SIGTERM)
        .expect("stop agent lb01");
    n.lab
        .wait_state("agent02", "VI_1", "MASTER", T)
        .expect("agent lb02 master");
    n.lab.wait_owner(VIP, &["lb02"], T).expect("lb02 owns");
}
