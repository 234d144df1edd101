//! Unicast across routers: two agents on two subnets (192.0.2.0/24 and 198.51.100.0/24,
//! 2001:db8:1::/64 and 2001:db8:2::/64) joined by a router namespace that forwards (and so
//! decrements the TTL / hop limit), unicast peers across it, with XDP and with `--no-xdp`.
//!
//! keepalived does not hold unicast adverts to TTL 255 (a peer may be routed hops away), only
//! to the `min_ttl`/`max_ttl` of the peer's `unicast_peer` line, and sends unicast with
//! `unicast_ttl`. Here lb1 sends with `unicast_ttl 64` and lb2 accepts lb1 only at TTL 63
//! (`min_ttl 63 max_ttl 63`): one master means both took effect. With `min_ttl 255` the
//! routed adverts are refused (counted as `bad_ttl`) and both become master.
#![cfg(feature = "lab")]

use std::time::Duration;

use nix::sys::signal::Signal;
use vrrp_tests::{Host, Lab, require_lab};

/// Generous: tests assert behaviour, never speed.
const T: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fam {
    V4,
    V6,
}

/// The addresses of one family: lb1, lb2, the router's side of each subnet, the VIP.
struct Plan {
    lb1: &'static str,
    lb2: &'static str,
    gw1: &'static str,
    gw2: &'static str,
    vip: &'static str,
}

impl Fam {
    fn plan(self) -> Plan {
        match self {
            Fam::V4 => Plan {
                lb1: "192.0.2.1",
                lb2: "198.51.100.2",
                gw1: "192.0.2.254",
                gw2: "198.51.100.254",
                vip: "192.0.2.100",
            },
            Fam::V6 => Plan {
                lb1: "2001:db8:1::1",
                lb2: "2001:db8:2::2",
                gw1: "2001:db8:1::fe",
                gw2: "2001:db8:2::fe",
                vip: "2001:db8:1::100",
            },
        }
    }
    fn prefix(self) -> u8 {
        match self {
            Fam::V4 => 24,
            Fam::V6 => 64,
        }
    }
    fn host_prefix(self) -> u8 {
        match self {
            Fam::V4 => 32,
            Fam::V6 => 128,
        }
    }
}

struct Routed {
    lab: Lab,
    lb1: Host,
    lb2: Host,
}

/// lb1 on `br0`, lb2 on `br1`, the router `rt` on both, forwarding both families.
fn routed(test: &str, fam: Fam) -> Routed {
    require_lab();
    let p = fam.plan();
    let pl = fam.prefix();
    let mut lab = Lab::new(test).expect("lab");
    let rt = lab
        .host_on("br0", "rt", &[&format!("{}/{pl}", p.gw1)])
        .expect("router");
    lab.join(&rt, "eth1", "br1", &[&format!("{}/{pl}", p.gw2)])
        .expect("router's second leg");
    lab.sh(
        &rt.ns,
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1",
    )
    .expect("forwarding");
    let lb1 = lab
        .host_on("br0", "lb1", &[&format!("{}/{pl}", p.lb1)])
        .expect("lb1");
    let lb2 = lab
        .host_on("br1", "lb2", &[&format!("{}/{pl}", p.lb2)])
        .expect("lb2");
    let v = if fam == Fam::V6 { "-6 " } else { "" };
    lab.ip(&lb1.ns, &format!("{v}route add default via {}", p.gw1))
        .expect("lb1 route");
    lab.ip(&lb2.ns, &format!("{v}route add default via {}", p.gw2))
        .expect("lb2 route");
    Routed { lab, lb1, lb2 }
}

/// One unicast instance: `me` sends to `peer` (with `peer_opts` on its line).
fn conf(
    fam: Fam,
    name: &str,
    priority: u8,
    me: &str,
    peer: &str,
    peer_opts: &str,
    extra: &str,
) -> String {
    let p = fam.plan();
    format!(
        "global_defs {{\n    router_id {name}\n}}\n\
         vrrp_instance VI_1 {{\n    state BACKUP\n    interface eth0\n    virtual_router_id 51\n    \
         priority {priority}\n    advert_int 1\n    version 3\n    unicast_src_ip {me}\n{extra}    \
         unicast_peer {{\n        {peer} {peer_opts}\n    }}\n    virtual_ipaddress {{\n        \
         {}/{}\n    }}\n}}\n",
        p.vip,
        fam.host_prefix()
    )
}

impl Routed {
    fn start(&mut self, lb1_conf: &str, lb2_conf: &str, extra: &[&str]) {
        let (lb1, lb2) = (self.lb1.clone(), self.lb2.clone());
        self.lab
            .agent_conf(&lb1, "lb1", lb1_conf, extra)
            .expect("start lb1");
        self.lab
            .agent_conf(&lb2, "lb2", lb2_conf, extra)
            .expect("start lb2");
    }

    /// The `bad_ttl` drops agent `name` counted: in its XDP program, or on its raw socket.
    fn bad_ttl(&self, name: &str, xdp: bool) -> u64 {
        let st = self.lab.status_json(name).expect("status");
        let n = if xdp {
            &st["dataplanes"][0]["counters"]["bad_ttl"]
        } else {
            &st["instances"][0]["drops"]["bad_ttl"]
        };
        n.as_u64().unwrap_or(0)
    }
}

/// One master across the router, and lb2 takes over when lb1 is killed.
fn one_master_across_a_router(test: &str, fam: Fam, extra: &[&str]) {
    let mut r = routed(test, fam);
    let p = fam.plan();
    // lb1's adverts leave with TTL 64 and arrive with 63: lb2 accepts exactly that.
    let lb1 = conf(fam, "lb1", 200, p.lb1, p.lb2, "", "    unicast_ttl 64\n");
    let lb2 = conf(fam, "lb2", 100, p.lb2, p.lb1, "min_ttl 63 max_ttl 63", "");
    r.start(&lb1, &lb2, extra);
    r.lab
        .wait_state("lb1", "VI_1", "MASTER", T)
        .expect("lb1 master");
    r.lab
        .wait_state("lb2", "VI_1", "BACKUP", T)
        .expect("lb2 backup");
    r.lab.wait_owner(p.vip, &["lb1"], T).expect("VIP on lb1");
    // Not a lucky moment: lb2 keeps hearing lb1 across the router.
    r.lab.stays("lb2", "VI_1", "BACKUP", Duration::from_secs(4));
    assert_eq!(r.lab.vip_owner(p.vip), ["lb1"]);
    assert_eq!(r.bad_ttl("lb2", !extra.contains(&"--no-xdp")), 0);
    r.lab.signal("lb1", Signal::SIGKILL).expect("kill lb1");
    r.lab
        .wait_state("lb2", "VI_1", "MASTER", T)
        .expect("lb2 takes over");
    r.lab.wait_owner(p.vip, &["lb2"], T).expect("VIP on lb2");
}

/// `min_ttl 255`: a peer must be on the link; routed adverts (TTL 254) are refused and
/// counted, so both become master.
fn min_ttl_255_refuses_a_routed_peer(test: &str, fam: Fam, extra: &[&str]) {
    let mut r = routed(test, fam);
    let p = fam.plan();
    let lb1 = conf(fam, "lb1", 200, p.lb1, p.lb2, "min_ttl 255", "");
    let lb2 = conf(fam, "lb2", 100, p.lb2, p.lb1, "min_ttl 255", "");
    r.start(&lb1, &lb2, extra);
    r.lab
        .wait_state("lb1", "VI_1", "MASTER", T)
        .expect("lb1 master");
    r.lab
        .wait_state("lb2", "VI_1", "MASTER", T)
        .expect("lb2 master too: it never heard lb1");
    let xdp = !extra.contains(&"--no-xdp");
    for name in ["lb1", "lb2"] {
        r.lab
            .wait_until(&format!("{name} to count bad_ttl"), T, || {
                Ok(r.bad_ttl(name, xdp) > 0)
            })
            .expect("bad_ttl counted");
    }
    r.lab.stays("lb2", "VI_1", "MASTER", Duration::from_secs(3));
    r.lab.stays("lb1", "VI_1", "MASTER", Duration::from_secs(1));
}

#[test]
fn routed_unicast_v4_xdp() {
    one_master_across_a_router("routed-v4-xdp", Fam::V4, &[]);
}

#[test]
fn routed_unicast_v4_no_xdp() {
    one_master_across_a_router("routed-v4-noxdp", Fam::V4, &["--no-xdp"]);
}

#[test]
fn routed_unicast_v6_xdp() {
    one_master_across_a_router("routed-v6-xdp", Fam::V6, &[]);
}

#[test]
fn routed_unicast_v6_no_xdp() {
    one_master_across_a_router("routed-v6-noxdp", Fam::V6, &["--no-xdp"]);
}

#[test]
fn routed_min_ttl_255_v4_xdp() {
    min_ttl_255_refuses_a_routed_peer("routed-min-v4-xdp", Fam::V4, &[]);
}

#[test]
fn routed_min_ttl_255_v4_no_xdp() {
    min_ttl_255_refuses_a_routed_peer("routed-min-v4-noxdp", Fam::V4, &["--no-xdp"]);
}

#[test]
fn routed_min_ttl_255_v6_xdp() {
    min_ttl_255_refuses_a_routed_peer("routed-min-v6-xdp", Fam::V6, &[]);
}

#[test]
fn routed_min_ttl_255_v6_no_xdp() {
    min_ttl_255_refuses_a_routed_peer("routed-min-v6-noxdp", Fam::V6, &["--no-xdp"]);
}
