//! Fault injection (issue "Reliability", fault tests): the master's link flapping fast, the
//! backup's link blinking, a network partition and its heal, a backup restarted over and over
//! while the master runs, and restarts of a `nopreempt` pair. Each runs with the XDP data plane
//! and with `--no-xdp`.
//!
//! ```text
//!   lb01   192.0.2.1  (BACKUP, 50) ──┐
//!   lb02   192.0.2.2  (MASTER, 100) ─┼── br0 (ns vx-…-br: the partition's nft rule lives here)
//!   client 192.0.2.10 ───────────────┘      VIP 192.0.2.3, VRID 51, VRRPv3
//! ```
//!
//! Every check is on behaviour: states and transitions from the agents' logs and status, who
//! has the VIP bound, and who answers ARP for it (every answer counted, not just the first).
//! Waits are generous; nothing asserts how long anything took.
#![cfg(feature = "lab")]

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use nix::sys::signal::Signal;
use vrrp_tests::{
    Host, Instance, Lab, Transition, in_netns, keepalived_conf, parse_mac, require_lab,
};

const VIP: &str = "192.0.2.3";
const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
/// Generous: tests assert behaviour, never speed.
const T: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Xdp,
    NoXdp,
}

impl Mode {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Mode::Xdp => &[],
            Mode::NoXdp => &["--no-xdp"],
        }
    }
    fn tag(self) -> &'static str {
        match self {
            Mode::Xdp => "xdp",
            Mode::NoXdp => "noxdp",
        }
    }
}

/// Advert interval of the flap test: short, so that the burst covers both flaps the backup
/// never notices and flaps it takes over in (master down interval 3 × 0.1 s + skew).
const FAST: &str = "0.1";
/// Advert interval where a test asserts that a backup never takes over: a master down
/// interval (3 × 0.2 s + skew) well above the scheduling stalls of a loaded 2-core VM, so that
/// a slow master is not mistaken for a dead one.
const STEADY: &str = "0.2";

/// The seed's VI_1 as VRRPv3 with a short advert interval (`advert_int` seconds).
fn inst(state: &str, priority: u8, advert_int: &str) -> Instance {
    Instance {
        advert_int: advert_int.into(),
        version: 3,
        auth_pass: None,
        ..Instance::seed(state, priority)
    }
}

struct Net {
    lab: Lab,
    lb01: Host,
    lb02: Host,
    client: Host,
    mode: Mode,
}

fn net(test: &str, mode: Mode) -> Net {
    require_lab();
    let mut lab = Lab::new(&format!("{test}-{}", mode.tag())).expect("lab");
    let lb01 = lab.host("lb01", &["192.0.2.1/24"]).expect("lb01");
    let lb02 = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    let client = lab.host("client", &["192.0.2.10/24"]).expect("client");
    Net {
        lab,
        lb01,
        lb02,
        client,
        mode,
    }
}

impl Net {
    /// Starts agent `name` on `host` with one instance.
    fn start(&mut self, host: &Host, name: &str, i: &Instance) {
        let host = host.clone();
        let conf = keepalived_conf(&host.name, std::slice::from_ref(i));
        self.lab
            .agent_conf(&host, name, &conf, self.mode.flags())
            .unwrap_or_else(|e| panic!("start {name}: {e:#}"));
    }

    /// Starts lb02 (`i2`) and waits until it is MASTER, then lb01 (`i1`) and waits until it is
    /// BACKUP and has heard lb02: the same election every run, whatever the configured states.
    fn pair(&mut self, i1: &Instance, i2: &Instance) {
        let (lb01, lb02) = (self.lb01.clone(), self.lb02.clone());
        self.start(&lb02, "lb02", i2);
        self.lab
            .wait_state("lb02", "VI_1", "MASTER", T)
            .expect("lb02 master");
        self.lab.wait_owner(VIP, &["lb02"], T).expect("VIP on lb02");
        self.start(&lb01, "lb01", i1);
        self.lab
            .wait_state("lb01", "VI_1", "BACKUP", T)
            .expect("lb01 backup");
        self.wait_hears("lb01", "192.0.2.2");
        self.lab
            .wait_owner(VIP, &["lb02"], T)
            .expect("VIP on lb02 only");
    }

    /// Waits until agent `name`'s status names `master` as the current master (it has heard
    /// an advert from it, or it is `master` itself).
    fn wait_hears(&self, name: &str, master: &str) {
        self.lab
            .wait_until(&format!("{name} to know {master} as master"), T, || {
                let s = self.lab.status_json(name)?;
                Ok(s["instances"][0]["master"] == master)
            })
            .expect("status names the master");
    }

    /// The state in agent `name`'s status.
    fn status_state(&self, name: &str) -> String {
        let s = self
            .lab
            .status_json(name)
            .unwrap_or_else(|e| panic!("status of {name}: {e:#}"));
        s["instances"][0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Every MAC that answers an ARP request for the VIP from the client.
    fn arp_answerers(&self) -> BTreeSet<String> {
        let client = self.client.clone();
        let mac = parse_mac(&client.mac).expect("client MAC");
        let vip: Ipv4Addr = VIP.parse().expect("VIP");
        in_netns(&client.ns, move || {
            arp_answerers_here(&client.ifname, mac, CLIENT_IP, vip)
        })
        .expect("netns")
        .expect("ARP exchange")
    }

    /// Waits until exactly `host` answers ARP for the VIP, then asks once more: the answer is
    /// settled, not a moment of a handover.
    fn wait_sole_arp_answerer(&self, host: &Host) {
        let want: BTreeSet<String> = [host.mac.to_lowercase()].into();
        let mut last = BTreeSet::new();
        self.lab
            .wait_until(
                &format!("{} to be the only ARP answerer", host.name),
                T,
                || {
                    last = self.arp_answerers();
                    Ok(last == want)
                },
            )
            .unwrap_or_else(|e| panic!("{e:#}\nlast answerers: {last:?}"));
        let again = self.arp_answerers();
        assert_eq!(
            again,
            want,
            "ARP answerers for {VIP} changed again\n{}",
            self.lab.all_logs()
        );
    }

    /// Takes `host`'s link down for a moment and up again, and waits until agent `name` has
    /// been through FAULT and is BACKUP again: a blip shorter than any advert interval.
    fn blip(&self, host: &Host, name: &str) {
        let faults = |lab: &Lab| {
            lab.transitions(name, Some("VI_1"))
                .iter()
                .filter(|t| t.to == "FAULT")
                .count()
        };
        let before = faults(&self.lab);
        self.lab
            .sh(
                &host.ns,
                "ip link set eth0 down; sleep 0.05; ip link set eth0 up",
            )
            .expect("link blip");
        self.lab
            .wait_until(&format!("{name} to go through FAULT"), T, || {
                Ok(faults(&self.lab) > before)
            })
            .expect("the agent saw its link go down");
        self.lab
            .wait_state(name, "VI_1", "BACKUP", T)
            .expect("back to BACKUP after the blip");
    }
}

/// Sends three ARP requests for `vip` from `ifname` (sender `mac`/`ip`) through an AF_PACKET
/// socket and collects the sender MAC of every reply addressed to us within a bounded window.
/// `arping` stops at the first reply; a split brain shows as two answerers here.
fn arp_answerers_here(
    ifname: &str,
    mac: [u8; 6],
    ip: Ipv4Addr,
    vip: Ipv4Addr,
) -> Result<BTreeSet<String>> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    let cname = std::ffi::CString::new(ifname)?;
    // SAFETY: a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {ifname}");
    }
    let proto = vrrp_common::wire::ETH_P_ARP.to_be();
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto)) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a socket we own from here on.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    let sll_len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
    // SAFETY: the address is valid for the call.
    if unsafe { libc::bind(fd.as_raw_fd(), (&raw const sll).cast(), sll_len) } < 0 {
        bail!("bind to {ifname}: {}", std::io::Error::last_os_error());
    }
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 50_000,
    };
    // SAFETY: a valid timeval for SO_RCVTIMEO.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    if r < 0 {
        bail!("SO_RCVTIMEO: {}", std::io::Error::last_os_error());
    }
    let request = vrrp_agent::io::announce::arp_frame(
        vrrp_common::wire::ARPOP_REQUEST,
        [0xff; 6],
        mac,
        ip,
        [0; 6],
        vip,
    );
    let mut seen = BTreeSet::new();
    let mut buf = [0u8; 1600];
    let start = Instant::now();
    let mut sent = 0u32;
    // Three requests 300 ms apart, then listen a little longer: bounded, and enough for an
    // answer from a busy kernel. Replies to anyone else, and gratuitous ARP, are ignored.
    while start.elapsed() < Duration::from_millis(1500) {
        if sent < 3 && start.elapsed() >= Duration::from_millis(300) * sent {
            // SAFETY: buffer and address are valid for the call.
            let r = unsafe {
                libc::sendto(
                    fd.as_raw_fd(),
                    request.as_ptr().cast(),
                    request.len(),
                    0,
                    (&raw const sll).cast(),
                    sll_len,
                )
            };
            if r < 0 {
                bail!("sendto on {ifname}: {}", std::io::Error::last_os_error());
            }
            sent += 1;
        }
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EINTR)) {
                continue;
            }
            bail!("recv on {ifname}: {e}");
        }
        let f = buf.get(..n as usize).unwrap_or_default();
        // Ethernet (14) + ARP (28): op 2, sender protocol address the VIP, target us.
        if f.len() >= 42
            && f[20..22] == [0, 2]
            && f[28..32] == vip.octets()
            && f[38..42] == ip.octets()
        {
            let sha = &f[22..28];
            seen.insert(
                sha.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
            );
        }
    }
    Ok(seen)
}

/// Transitions of one run as a chain: each starts where the previous one ended.
fn assert_chained(name: &str, ts: &[Transition]) {
    for w in ts.windows(2) {
        assert_eq!(
            w[0].to, w[1].from,
            "{name}: a transition does not start where the previous ended:\n{}\n{}",
            w[0].line, w[1].line
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 1. The master's link flaps fast.
// ---------------------------------------------------------------------------------------------

/// Down/up times (seconds) of the flaps: most shorter than the master down interval
/// (3 × 0.1 s + skew), some longer, so that both "the backup never noticed" and "the backup
/// took over and gave back" happen within the burst.
const FLAPS: [(&str, &str); 20] = [
    ("0.01", "0.01"),
    ("0.02", "0.05"),
    ("0.05", "0.02"),
    ("0.6", "0.05"),
    ("0.01", "0.3"),
    ("0.1", "0.1"),
    ("0.02", "0.02"),
    ("0.4", "0.01"),
    ("0.01", "0.01"),
    ("0.2", "0.6"),
    ("0.05", "0.05"),
    ("0.01", "0.5"),
    ("0.8", "0.6"),
    ("0.02", "0.01"),
    ("0.01", "0.02"),
    ("0.15", "0.05"),
    ("0.05", "0.15"),
    ("0.5", "0.01"),
    ("0.01", "0.01"),
    ("0.03", "0.03"),
];

fn link_flap(mode: Mode) {
    let mut n = net("flap", mode);
    n.pair(&inst("BACKUP", 50, FAST), &inst("MASTER", 100, FAST));
    let before01 = n.lab.transitions("lb01", Some("VI_1")).len();
    let before02 = n.lab.transitions("lb02", Some("VI_1")).len();

    // One shell loop inside lb02's namespace: the flaps come as fast as `ip` and `sleep` go.
    let script: String = FLAPS
        .iter()
        .map(|(down, up)| {
            format!("ip link set eth0 down; sleep {down}; ip link set eth0 up; sleep {up}; ")
        })
        .collect();
    n.lab.sh(&n.lb02.ns, &script).expect("flap lb02's link");

    // After the burst the pair settles back: lb02 (100) master, lb01 backup.
    n.lab
        .wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master after the flaps");
    n.lab
        .wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup after the flaps");
    n.lab
        .wait_owner(VIP, &["lb02"], T)
        .expect("VIP on lb02 only after the flaps");
    // Settled: several master down intervals without a transition on either node.
    let t01 = n.lab.transitions("lb01", Some("VI_1")).len();
    n.lab
        .stays("lb02", "VI_1", "MASTER", Duration::from_secs(2));
    assert_eq!(
        n.lab.transitions("lb01", Some("VI_1")).len(),
        t01,
        "lb01 still flapping\n{}",
        n.lab.all_logs()
    );
    assert_eq!(n.status_state("lb02"), "MASTER");
    assert_eq!(n.status_state("lb01"), "BACKUP");
    n.wait_hears("lb01", "192.0.2.2");
    n.wait_sole_arp_answerer(&n.lb02);
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"]);

    // Bounded: per flap at most one takeover and one hand-back on lb01 (BACKUP → MASTER →
    // BACKUP), at most FAULT → BACKUP → MASTER on lb02 (plus its MASTER → FAULT), and a
    // little slack; a node that amplified the flaps (oscillating on its own) would exceed it.
    let flaps = FLAPS.len();
    let all01 = n.lab.transitions("lb01", Some("VI_1"));
    let all02 = n.lab.transitions("lb02", Some("VI_1"));
    let (d01, d02) = (all01.len() - before01, all02.len() - before02);
    eprintln!("{flaps} flaps: lb01 {d01} transitions, lb02 {d02} transitions");
    assert!(
        d01 <= 2 * flaps + 2,
        "lb01 made {d01} transitions for {flaps} flaps\n{}",
        n.lab.log("lb01")
    );
    assert!(
        d02 <= 3 * flaps + 2,
        "lb02 made {d02} transitions for {flaps} flaps\n{}",
        n.lab.log("lb02")
    );
    // The link really went down for the agent: lb02 went FAULT at least once.
    assert!(
        all02[before02..].iter().any(|t| t.to == "FAULT"),
        "lb02 never saw its link down\n{}",
        n.lab.log("lb02")
    );
    assert_chained("lb01", &all01);
    assert_chained("lb02", &all02);
    assert!(n.lab.running("lb01") && n.lab.running("lb02"));
}

#[test]
fn master_link_flap_xdp() {
    link_flap(Mode::Xdp);
}

#[test]
fn master_link_flap_no_xdp() {
    link_flap(Mode::NoXdp);
}

/// The backup's own link blinks (down and up within one advert interval), five times. The
/// backup goes FAULT and back to BACKUP each time and must then listen to the master again:
/// it stays BACKUP, and the VIP stays on the master alone. (With XDP this once made the backup
/// a second master for good: it forgot its master in FAULT while XDP went on absorbing the
/// master's unchanged adverts.)
fn backup_link_blip(mode: Mode) {
    let mut n = net("blip", mode);
    n.pair(&inst("BACKUP", 50, STEADY), &inst("MASTER", 100, STEADY));
    let master_before = n.lab.transitions("lb02", None);
    let lb01 = n.lb01.clone();
    for _ in 0..5 {
        n.blip(&lb01, "lb01");
        // Several master down intervals (3 × 0.2 s + skew) after the blip.
        n.lab
            .stays("lb01", "VI_1", "BACKUP", Duration::from_secs(2));
        assert_eq!(
            n.lab.vip_owner(VIP),
            ["lb02"],
            "split brain after a blip of the backup's link\n{}",
            n.lab.all_logs()
        );
    }
    n.wait_hears("lb01", "192.0.2.2");
    assert_eq!(n.lab.transitions("lb02", None), master_before);
    n.wait_sole_arp_answerer(&n.lb02);
}

#[test]
fn backup_link_blip_xdp() {
    backup_link_blip(Mode::Xdp);
}

#[test]
fn backup_link_blip_no_xdp() {
    backup_link_blip(Mode::NoXdp);
}

// ---------------------------------------------------------------------------------------------
// 2. Partition and heal.
// ---------------------------------------------------------------------------------------------

/// Where the partition's nft rule sits.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// On the bridge, between the nodes: protocol 112 is not forwarded in either direction.
    Bridge,
    /// In lb01's namespace, on input. The XDP program sees frames before netfilter does, so
    /// this only partitions a `--no-xdp` agent.
    Lb01Input,
}

fn partition_heal(mode: Mode, cut: Cut, equal_priority: bool) {
    let test = match (cut, equal_priority) {
        (Cut::Bridge, false) => "part-br",
        (Cut::Bridge, true) => "part-tie",
        (Cut::Lb01Input, _) => "part-in",
    };
    let mut n = net(test, mode);
    let p1 = if equal_priority { 100 } else { 50 };
    n.pair(&inst("BACKUP", p1, STEADY), &inst("MASTER", 100, STEADY));
    if equal_priority {
        // With equal priorities the higher primary address wins (RFC 9568 §6.4.3): make the
        // lower one (lb01) master first, so that the heal has to move mastership.
        n.lab.signal("lb02", Signal::SIGTERM).expect("term lb02");
        n.lab.wait_exit("lb02", T).expect("lb02 exits");
        n.lab
            .wait_state("lb01", "VI_1", "MASTER", T)
            .expect("lb01 master");
        let lb02 = n.lb02.clone();
        n.start(&lb02, "lb02-b", &inst("BACKUP", 100, STEADY));
        n.lab
            .wait_state("lb02-b", "VI_1", "BACKUP", T)
            .expect("lb02 backup");
        n.wait_hears("lb02-b", "192.0.2.1");
        n.lab.wait_owner(VIP, &["lb01"], T).expect("VIP on lb01");
    }
    // Before the partition `master` is master and `backup` backup. After the heal the winner
    // is the higher priority, or with equal priorities the higher address (lb02, 192.0.2.2):
    // the original master, or in the tie case the partition's second master.
    let (master, backup) = if equal_priority {
        ("lb01", "lb02-b")
    } else {
        ("lb02", "lb01")
    };
    let (winner, loser) = if equal_priority {
        (backup, master)
    } else {
        (master, backup)
    };
    let (winner_host, loser_host) = (n.lb02.clone(), n.lb01.clone());
    let winner_ip = "192.0.2.2";

    // The partition: protocol 112 dropped between the nodes. ARP still passes.
    let (ns, table) = match cut {
        Cut::Bridge => (n.lab.bridge_ns.clone(), "bridge vx_part"),
        Cut::Lb01Input => (n.lb01.ns.clone(), "inet vx_part"),
    };
    let hook = match cut {
        Cut::Bridge => "forward",
        Cut::Lb01Input => "input",
    };
    n.lab
        .sh(
            &ns,
            &format!(
                "nft add table {table} && \
                 nft add chain {table} c '{{ type filter hook {hook} priority 0; policy accept; }}' && \
                 nft add rule {table} c ip protocol 112 counter drop"
            ),
        )
        .expect("nft partition");

    // Both become master, and both bind the VIP.
    n.lab
        .wait_state(backup, "VI_1", "MASTER", T)
        .expect("the backup becomes master in the partition");
    n.lab
        .wait_until("both nodes to hold the VIP", T, || {
            Ok(n.lab.has_addr(&n.lb01, VIP)? && n.lab.has_addr(&n.lb02, VIP)?)
        })
        .expect("both bind the VIP");
    assert_eq!(n.lab.state(master, "VI_1").as_deref(), Some("MASTER"));
    assert_eq!(n.status_state(master), "MASTER");
    assert_eq!(n.status_state(backup), "MASTER");
    let listed = n
        .lab
        .sh(&ns, &format!("nft list table {table}"))
        .expect("nft list");
    assert!(
        !listed.contains("packets 0 "),
        "the rule dropped nothing: {listed}"
    );
    if mode == Mode::Xdp && matches!(cut, Cut::Bridge) {
        // The master's XDP program sees the other node's gratuitous ARP for its VIP.
        n.lab
            .wait_until("the master to count the claim on its VIP", T, || {
                let st = n.lab.status_json(master)?;
                Ok(st["instances"][0]["vip_conflicts"].as_u64() > Some(0))
            })
            .expect("split brain reported");
    }
    // The split brain holds for a while (several master down intervals): no flapping.
    n.lab
        .stays(master, "VI_1", "MASTER", Duration::from_secs(2));
    n.lab.stays(backup, "VI_1", "MASTER", Duration::ZERO);
    let loser_before = n.lab.transitions(loser, Some("VI_1")).len();
    let winner_before = n.lab.transitions(winner, Some("VI_1")).len();

    // Heal.
    n.lab
        .sh(&ns, &format!("nft delete table {table}"))
        .expect("nft heal");
    n.lab
        .wait_state(loser, "VI_1", "BACKUP", T)
        .expect("one of the two masters steps down");
    n.lab
        .wait_owner(VIP, &[winner_host.name.as_str()], T)
        .expect("VIP on the winner only");
    n.lab
        .stays(winner, "VI_1", "MASTER", Duration::from_secs(2));
    n.lab.stays(loser, "VI_1", "BACKUP", Duration::ZERO);
    assert_eq!(n.status_state(winner), "MASTER");
    assert_eq!(n.status_state(loser), "BACKUP");
    n.wait_hears(loser, winner_ip);
    n.wait_sole_arp_answerer(&winner_host);
    assert!(!n.lab.has_addr(&loser_host, VIP).expect("ip addr"));

    // The resolution is logged: the loser's one transition names the advert that won.
    let ts = n.lab.transitions(loser, Some("VI_1"));
    let ts = &ts[loser_before..];
    assert_eq!(
        ts.iter()
            .map(|t| (t.from.as_str(), t.to.as_str()))
            .collect::<Vec<_>>(),
        [("MASTER", "BACKUP")],
        "{loser}: {ts:?}\n{}",
        n.lab.all_logs()
    );
    assert!(
        ts[0]
            .line
            .contains(&format!("priority 100 from {winner_ip}")),
        "the step-down does not name the winning advert: {}",
        ts[0].line
    );
    // The winner stayed master through the heal.
    let after = n.lab.transitions(winner, Some("VI_1"));
    assert_eq!(
        after.len(),
        winner_before,
        "{winner} changed state at the heal: {:?}",
        after.get(winner_before..)
    );
}

#[test]
fn partition_on_the_bridge_and_heal_xdp() {
    partition_heal(Mode::Xdp, Cut::Bridge, false);
}

#[test]
fn partition_on_the_bridge_and_heal_no_xdp() {
    partition_heal(Mode::NoXdp, Cut::Bridge, false);
}

#[test]
fn partition_by_input_rule_and_heal_no_xdp() {
    partition_heal(Mode::NoXdp, Cut::Lb01Input, false);
}

#[test]
fn partition_heal_equal_priority_higher_address_wins_xdp() {
    partition_heal(Mode::Xdp, Cut::Bridge, true);
}

#[test]
fn partition_heal_equal_priority_higher_address_wins_no_xdp() {
    partition_heal(Mode::NoXdp, Cut::Bridge, true);
}

// ---------------------------------------------------------------------------------------------
// 3. A backup restarted over and over while the master runs.
// ---------------------------------------------------------------------------------------------

fn backup_restart_storm(mode: Mode) {
    let mut n = net("storm", mode);
    let i1 = inst("BACKUP", 50, STEADY);
    n.pair(&i1, &inst("MASTER", 100, STEADY));
    let master_before = n.lab.transitions("lb02", None);
    let lb01 = n.lb01.clone();
    let mut current = "lb01".to_string();
    for round in 0..10 {
        // Alternate a graceful stop and a hard kill.
        let sig = if round % 2 == 0 {
            Signal::SIGTERM
        } else {
            Signal::SIGKILL
        };
        n.lab.signal(&current, sig).expect("signal lb01");
        if sig == Signal::SIGTERM {
            let st = n.lab.wait_exit(&current, T).expect("lb01 exits");
            assert!(st.success(), "{current} exit status {st}");
        }
        let next = format!("lb01-r{round}");
        n.start(&lb01, &next, &i1);
        n.lab
            .wait_state(&next, "VI_1", "BACKUP", T)
            .expect("restarted lb01 backup");
        n.wait_hears(&next, "192.0.2.2");
        assert_eq!(
            n.lab.vip_owner(VIP),
            ["lb02"],
            "round {round}\n{}",
            n.lab.all_logs()
        );
        current = next;
    }
    // Let the last one run for a while, then check nothing moved anywhere.
    n.lab
        .stays(&current, "VI_1", "BACKUP", Duration::from_secs(2));
    assert_eq!(
        n.lab.transitions("lb02", None),
        master_before,
        "the master changed state during the restarts\n{}",
        n.lab.log("lb02")
    );
    assert_eq!(n.status_state("lb02"), "MASTER");
    let s = n.lab.status_json("lb02").expect("status");
    assert_eq!(s["instances"][0]["split_brain_alarm"], false, "{s}");
    for name in std::iter::once("lb01".to_string()).chain((0..10).map(|r| format!("lb01-r{r}"))) {
        let ts = n.lab.transitions(&name, None);
        assert!(
            ts.iter().all(|t| t.to != "MASTER"),
            "{name} became master: {ts:?}"
        );
    }
    assert_eq!(n.lab.vip_owner(VIP), ["lb02"]);
    n.wait_sole_arp_answerer(&n.lb02);
}

#[test]
fn backup_restart_storm_xdp() {
    backup_restart_storm(Mode::Xdp);
}

#[test]
fn backup_restart_storm_no_xdp() {
    backup_restart_storm(Mode::NoXdp);
}

// ---------------------------------------------------------------------------------------------
// 4. Restarting the master of a `nopreempt` pair.
// ---------------------------------------------------------------------------------------------

fn nopreempt_inst(priority: u8) -> Instance {
    Instance {
        nopreempt: true,
        ..inst("BACKUP", priority, STEADY)
    }
}

fn nopreempt_restart(mode: Mode) {
    let mut n = net("nopreempt", mode);
    let (i1, i2) = (nopreempt_inst(50), nopreempt_inst(100));
    n.pair(&i1, &i2);
    let (lb01, lb02) = (n.lb01.clone(), n.lb02.clone());
    let (mut name01, mut name02) = ("lb01".to_string(), "lb02".to_string());
    // Round 0 kills the master hard (its VIP stays bound), round 1 stops it gracefully.
    for (round, sig) in [Signal::SIGKILL, Signal::SIGTERM].into_iter().enumerate() {
        n.lab.signal(&name02, sig).expect("signal lb02");
        if sig == Signal::SIGTERM {
            let st = n.lab.wait_exit(&name02, T).expect("lb02 exits");
            assert!(st.success(), "{name02} exit status {st}");
        }
        n.lab
            .wait_state(&name01, "VI_1", "MASTER", T)
            .expect("lb01 takes over");
        n.lab
            .wait_until("lb01 binds the VIP", T, || n.lab.has_addr(&lb01, VIP))
            .expect("VIP on lb01");

        // lb02 (priority 100) comes back and must not preempt lb01 (50).
        name02 = format!("lb02-r{round}");
        n.start(&lb02, &name02, &i2);
        n.lab
            .wait_state(&name02, "VI_1", "BACKUP", T)
            .expect("restarted lb02 backup");
        n.wait_hears(&name02, "192.0.2.1");
        // A VIP the killed agent left bound is removed when the new one starts.
        n.lab
            .wait_owner(VIP, &["lb01"], T)
            .expect("VIP on lb01 only");
        let addrs = n
            .lab
            .ip(&lb02.ns, "-o addr show dev eth0")
            .expect("ip addr");
        assert!(
            !addrs
                .split_whitespace()
                .any(|w| w.starts_with("192.0.2.3/")),
            "round {round}: VIP still bound on lb02: {addrs}"
        );
        let master_ts = n.lab.transitions(&name01, Some("VI_1")).len();
        // Several master down intervals (3 × 0.2 s + skew): still backup.
        n.lab
            .stays(&name02, "VI_1", "BACKUP", Duration::from_secs(4));
        assert_eq!(
            n.lab.transitions(&name01, Some("VI_1")).len(),
            master_ts,
            "lb01 changed state after lb02 returned\n{}",
            n.lab.all_logs()
        );
        assert_eq!(n.status_state(&name02), "BACKUP");
        assert_eq!(n.status_state(&name01), "MASTER");
        assert!(
            n.lab
                .transitions(&name02, None)
                .iter()
                .all(|t| t.to != "MASTER"),
            "{name02} preempted\n{}",
            n.lab.log(&name02)
        );
        n.wait_sole_arp_answerer(&lb01);
        // Its link blinks: FAULT, BACKUP again, and still no preemption.
        n.blip(&lb02, &name02);
        n.lab
            .stays(&name02, "VI_1", "BACKUP", Duration::from_secs(2));
        assert_eq!(n.lab.vip_owner(VIP), ["lb01"], "{}", n.lab.all_logs());
        assert!(
            n.lab
                .transitions(&name02, None)
                .iter()
                .all(|t| t.to != "MASTER"),
            "{name02} preempted after its link blinked\n{}",
            n.lab.log(&name02)
        );

        // Hand back for the next round: lb01 stops, lb02 takes over, lb01 returns as backup.
        n.lab.signal(&name01, Signal::SIGTERM).expect("term lb01");
        n.lab.wait_exit(&name01, T).expect("lb01 exits");
        n.lab
            .wait_state(&name02, "VI_1", "MASTER", T)
            .expect("lb02 takes over");
        name01 = format!("lb01-r{round}");
        n.start(&lb01, &name01, &i1);
        n.lab
            .wait_state(&name01, "VI_1", "BACKUP", T)
            .expect("lb01 backup");
        n.wait_hears(&name01, "192.0.2.2");
        n.lab
            .wait_owner(VIP, &["lb02"], T)
            .expect("VIP on lb02 only");
    }
    n.wait_sole_arp_answerer(&lb02);
}

#[test]
fn nopreempt_master_restart_xdp() {
    nopreempt_restart(Mode::Xdp);
}

#[test]
fn nopreempt_master_restart_no_xdp() {
    nopreempt_restart(Mode::NoXdp);
}
