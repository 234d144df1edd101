//! Root-only tests of the I/O shell (`io::netlink`, `io::socket`, `io::announce`) against the
//! real kernel, in network namespaces each test creates and removes (LAB.md).
//!
//! Topology of every test:
//! ```text
//!   ns vx-<pid>-io-<n>  (A)                    ns vx-<pid>-io-<n+1>  (B)
//!   eth0 192.0.2.1/24 2001:db8::1/64 ── veth ── eth0 192.0.2.2/24 2001:db8::2/64
//! ```
//! The test process enters a namespace on a dedicated OS thread (`setns` affects only the
//! calling thread) and runs a current-thread tokio runtime there, so the harness's other
//! threads stay where they are. Not root: skipped with a message, unless `VRRP_LAB=1` (set by
//! `cargo xtask test`), where it fails.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use nix::sched::CloneFlags;
use vrrp_agent::io::announce::{Announcer, garp_frame, unsolicited_na_frame};
use vrrp_agent::io::netlink::{LinkEvent, Netlink, NetlinkError, VipSpec};
use vrrp_agent::io::socket::{AdvertSocket, GROUP_V4, GROUP_V6, SocketError};
use vrrp_agent::proto::Family;

const DEADLINE: Duration = Duration::from_secs(10);

/// Whether the lab tests can run here; see the module comment.
fn lab_ready() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let lab = std::env::var("VRRP_LAB").is_ok_and(|v| !v.is_empty() && v != "0");
    match (root, lab) {
        (true, _) => true,
        (false, true) => panic!(
            "VRRP_LAB is set but these tests are not running as root: they need root \
             (CAP_SYS_ADMIN for namespaces, CAP_NET_ADMIN, CAP_NET_RAW)"
        ),
        (false, false) => {
            eprintln!("skipped: needs root (set VRRP_LAB=1)");
            false
        }
    }
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

static NEXT_NS: AtomicU32 = AtomicU32::new(0);

/// Two namespaces joined by a veth; removed on drop, also when the test panics.
struct Lab {
    a: String,
    b: String,
    created: Vec<String>,
}

impl Lab {
    fn new() -> Self {
        let mut lab = Lab {
            a: String::new(),
            b: String::new(),
            created: Vec::new(),
        };
        // Register each name before creating it, so that Drop removes whatever exists.
        for _ in 0..2 {
            let n = NEXT_NS.fetch_add(1, Ordering::Relaxed);
            let name = format!("vx-{}-io-{n}", std::process::id());
            lab.created.push(name.clone());
            run("ip", &["netns", "add", &name]);
        }
        lab.a = lab.created[0].clone();
        lab.b = lab.created[1].clone();
        let (a, b) = (lab.a.as_str(), lab.b.as_str());
        run(
            "ip",
            &[
                "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b,
            ],
        );
        for (ns, v4, v6) in [
            (a, "192.0.2.1/24", "2001:db8::1/64"),
            (b, "192.0.2.2/24", "2001:db8::2/64"),
        ] {
            run("ip", &["-n", ns, "link", "set", "lo", "up"]);
            run("ip", &["-n", ns, "addr", "add", v4, "dev", "eth0"]);
            run("ip", &["-n", ns, "addr", "add", v6, "dev", "eth0", "nodad"]);
            run("ip", &["-n", ns, "link", "set", "eth0", "up"]);
        }
        lab
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // The tests start no long-lived child processes (every `ip` call is waited for), so the
        // namespaces are all there is to remove.
        for ns in &self.created {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// Runs `f` on a new OS thread inside namespace `ns`, on a current-thread tokio runtime, and
/// returns its result (a panic in it is re-raised here).
fn in_ns<F, Fut, R>(ns: &str, f: F) -> R
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = R>,
    R: Send,
{
    let path = format!("/run/netns/{ns}");
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {path}: {e}"));
            nix::sched::setns(&file, CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(f())
        });
        match h.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        }
    })
}

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {DEADLINE:?} waiting for {what}"))
}

/// The link-local address of eth0 once DAD is over.
async fn link_local(nl: &Netlink, ifindex: u32) -> IpAddr {
    // Polled in 100 ms steps up to DEADLINE (tests do not read the clock: clippy.toml).
    let tries = DEADLINE.as_millis() / 100;
    for _ in 0..tries {
        match nl.primary_address(ifindex, Family::V6, &[]).await {
            Ok(a) => return a,
            Err(NetlinkError::NoPrimaryAddress { .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no link-local address on ifindex {ifindex}: {e}"),
        }
    }
    panic!("ifindex {ifindex} still has no usable link-local address after {DEADLINE:?}");
}

fn addr_lines(ns: &str) -> String {
    run("ip", &["-n", ns, "-o", "addr", "show", "dev", "eth0"])
}

fn line_with<'a>(out: &'a str, needle: &str) -> Option<&'a str> {
    out.lines().find(|l| l.contains(needle))
}

#[test]
fn link_lookup() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    in_ns(&lab.a, || async {
        let nl = Netlink::new().expect("netlink");
        let eth0 = nl.link_by_name("eth0").await.expect("eth0");
        assert!(eth0.index > 1);
        assert_eq!(eth0.name, "eth0");
        assert_eq!(eth0.mtu, 1500);
        assert!(eth0.up, "eth0 is up with its peer up: {eth0:?}");
        assert_ne!(eth0.mac, [0; 6]);
        assert_eq!(nl.link_by_index(eth0.index).await.expect("by index"), eth0);
        let err = nl.link_by_name("nosuch0").await.unwrap_err();
        assert!(
            matches!(err, NetlinkError::LinkNotFound { ref name } if name == "nosuch0"),
            "{err:?}"
        );
        assert!(err.to_string().contains("nosuch0"), "{err}");
        assert!(matches!(
            nl.link_by_index(999_999).await,
            Err(NetlinkError::LinkIndexNotFound { index: 999_999 })
        ));
        assert_eq!(
            nl.primary_address(eth0.index, Family::V4, &[])
                .await
                .expect("v4 primary"),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
        );
    });
}

#[test]
fn ipv4_vip_with_label_is_idempotent() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let a = lab.a.clone();
    in_ns(&lab.a, || async move {
        let nl = Netlink::new().expect("netlink");
        let idx = nl.link_by_name("eth0").await.expect("eth0").index;
        let vip_addr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
        let mut vip = VipSpec::new(vip_addr, 24);
        vip.label = Some("eth0:vip".into());
        vip.broadcast = Some(Ipv4Addr::new(192, 0, 2, 255));
        nl.add_address(idx, &vip).await.expect("add");
        nl.add_address(idx, &vip)
            .await
            .expect("second add is not an error");

        let out = addr_lines(&a);
        let line =
            line_with(&out, "192.0.2.100/24").unwrap_or_else(|| panic!("VIP missing:\n{out}"));
        assert!(line.contains("eth0:vip"), "label missing: {line}");
        assert!(
            line.contains("brd 192.0.2.255"),
            "broadcast missing: {line}"
        );
        assert_eq!(out.matches("192.0.2.100/").count(), 1, "{out}");

        let addrs = nl.addresses(idx).await.expect("addresses");
        let entry = addrs.iter().find(|x| x.addr == vip_addr).expect("listed");
        assert_eq!(entry.prefix_len, 24);
        assert_eq!(entry.label.as_deref(), Some("eth0:vip"));
        assert!(entry.secondary, "same subnet as 192.0.2.1: secondary");
        // The VIP never becomes the advert source.
        assert_eq!(
            nl.primary_address(idx, Family::V4, &[vip_addr])
                .await
                .expect("primary"),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))
        );

        // A /32 VIP outside the interface subnet, no label: primary among its own, excluded.
        let lone = VipSpec::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200)), 32);
        nl.add_address(idx, &lone).await.expect("add /32");
        assert!(line_with(&addr_lines(&a), "192.0.2.200/32").is_some());

        nl.del_address(idx, &vip).await.expect("del");
        nl.del_address(idx, &vip)
            .await
            .expect("second del is not an error");
        nl.del_address(idx, &lone).await.expect("del /32");
        let out = addr_lines(&a);
        assert!(!out.contains("192.0.2.100"), "{out}");
        assert!(!out.contains("192.0.2.200"), "{out}");
        assert!(out.contains("192.0.2.1/24"), "the primary stays: {out}");

        // Bad input is an error naming the VIP, not a panic or a kernel round-trip.
        let mut bad = VipSpec::new(vip_addr, 24);
        bad.label = Some("x".repeat(16));
        let err = nl.add_address(idx, &bad).await.unwrap_err();
        assert!(err.to_string().contains("192.0.2.100/24"), "{err}");
    });
}

#[test]
fn ipv6_vip_is_nodad_and_idempotent() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let a = lab.a.clone();
    in_ns(&lab.a, || async move {
        let nl = Netlink::new().expect("netlink");
        let idx = nl.link_by_name("eth0").await.expect("eth0").index;
        let vip_addr: IpAddr = "2001:db8::100".parse().unwrap();
        let vip = VipSpec::new(vip_addr, 64);
        assert!(vip.nodad);
        nl.add_address(idx, &vip).await.expect("add");
        nl.add_address(idx, &vip).await.expect("second add");

        // Control: the same kind of address without NODAD starts tentative, so the check
        // below means something.
        let mut dad = VipSpec::new("2001:db8::101".parse().unwrap(), 64);
        dad.nodad = false;
        nl.add_address(idx, &dad).await.expect("add with DAD");

        let out = addr_lines(&a);
        let line =
            line_with(&out, "2001:db8::100/64").unwrap_or_else(|| panic!("VIP missing:\n{out}"));
        assert!(
            !line.contains("tentative"),
            "NODAD VIP is tentative: {line}"
        );
        let control = line_with(&out, "2001:db8::101/64").expect("control address");
        assert!(
            control.contains("tentative"),
            "control not tentative: {control}"
        );

        let addrs = nl.addresses(idx).await.expect("addresses");
        let entry = addrs.iter().find(|x| x.addr == vip_addr).expect("listed");
        assert_eq!(entry.prefix_len, 64);
        assert!(!entry.tentative);
        assert!(
            addrs
                .iter()
                .any(|x| x.addr.to_string() == "2001:db8::101" && x.tentative)
        );

        let ll = link_local(&nl, idx).await;
        assert!(ll.to_string().starts_with("fe80::"), "{ll}");

        nl.del_address(idx, &vip).await.expect("del");
        nl.del_address(idx, &vip).await.expect("second del");
        nl.del_address(idx, &dad).await.expect("del control");
        let out = addr_lines(&a);
        assert!(!out.contains("2001:db8::100"), "{out}");
    });
}

#[test]
fn link_watch_sees_veth_down_and_up() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let b = lab.b.clone();
    in_ns(&lab.a, || async move {
        let nl = Netlink::new().expect("netlink");
        // Subscribe first, then read the state: no change can fall in between.
        let mut events = nl.link_events().expect("link events");
        let idx = nl.link_by_name("eth0").await.expect("eth0").index;

        async fn wait_for(
            events: &mut (impl futures::Stream<Item = LinkEvent> + Unpin),
            idx: u32,
            up: bool,
        ) {
            within(&format!("link {idx} up={up}"), async {
                while let Some(ev) = events.next().await {
                    if ev.index == idx && ev.up == up && !ev.deleted && !ev.lost {
                        return;
                    }
                }
                panic!("link event stream ended");
            })
            .await;
        }

        // The peer going down takes our carrier away.
        run("ip", &["-n", &b, "link", "set", "eth0", "down"]);
        wait_for(&mut events, idx, false).await;
        assert!(!nl.link_by_index(idx).await.expect("eth0").up);
        run("ip", &["-n", &b, "link", "set", "eth0", "up"]);
        wait_for(&mut events, idx, true).await;
        assert!(nl.link_by_index(idx).await.expect("eth0").up);

        // Administratively down here.
        run("ip", &["link", "set", "eth0", "down"]);
        wait_for(&mut events, idx, false).await;
        run("ip", &["link", "set", "eth0", "up"]);
        wait_for(&mut events, idx, true).await;
    });
}

/// Opens a receiving socket in B, signals, waits for one packet; meanwhile A sends (repeatedly,
/// bounded, until B has it) with `send`. Returns what B received, the bytes up to the end of
/// the VRRP message (IPv4: from the IP header on), A's source address and B's eth0 index.
/// `ttl` is what A asks for (`unicast_ttl`; the group gets 255 whatever it is).
fn exchange(
    lab: &Lab,
    family: Family,
    b_joins: bool,
    dst_of: impl FnOnce(IpAddr) -> IpAddr + Send,
    msg: &[u8],
    ttl: u8,
) -> (vrrp_agent::io::socket::Received, Vec<u8>, IpAddr, u32) {
    let (ready_tx, ready_rx) = mpsc::channel::<IpAddr>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            in_ns(&lab.b, || async move {
                let nl = Netlink::new().expect("netlink");
                let idx = nl.link_by_name("eth0").await.expect("eth0").index;
                let src = match family {
                    Family::V4 => nl.primary_address(idx, Family::V4, &[]).await.expect("v4"),
                    Family::V6 => link_local(&nl, idx).await,
                };
                let sock = AdvertSocket::open("eth0", idx, src, b_joins).expect("B socket");
                // Unicast tests send to B's global address.
                let target = match family {
                    Family::V4 => src,
                    Family::V6 => "2001:db8::2".parse().unwrap(),
                };
                ready_tx.send(target).expect("ready");
                let mut buf = vec![0u8; 2048];
                let got = within("a VRRP packet in B", sock.recv(&mut buf))
                    .await
                    .expect("recv");
                let _ = done_tx.send(());
                let raw = buf[..got.payload.end].to_vec();
                (got, raw, idx)
            })
        });
        let sender_src = in_ns(&lab.a, move || async move {
            let target = ready_rx.recv_timeout(DEADLINE).expect("B ready");
            let dst = dst_of(target);
            let nl = Netlink::new().expect("netlink");
            let idx = nl.link_by_name("eth0").await.expect("eth0").index;
            let src = match family {
                Family::V4 => nl.primary_address(idx, Family::V4, &[]).await.expect("v4"),
                Family::V6 => link_local(&nl, idx).await,
            };
            let sock = AdvertSocket::open("eth0", idx, src, true).expect("A socket");
            for _ in 0..50 {
                sock.send(dst, msg, ttl).await.expect("send");
                if done_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                    break;
                }
            }
            src
        });
        let (got, payload, idx) = match receiver.join() {
            Ok(r) => r,
            Err(p) => std::panic::resume_unwind(p),
        };
        (got, payload, sender_src, idx)
    })
}

/// A VRRPv3 advert for VRID 51, priority 100, 1 s, one address (bytes only: no codec here).
const V3_ADVERT_V4: [u8; 12] = [0x31, 51, 100, 1, 0x00, 100, 0x00, 0x00, 192, 0, 2, 100];

#[test]
fn advert_multicast_ipv4() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let (got, raw, src, b_idx) = exchange(
        &lab,
        Family::V4,
        true,
        |_| GROUP_V4.into(),
        &V3_ADVERT_V4,
        64,
    );
    assert_eq!(got.payload(&raw), V3_ADVERT_V4);
    assert_eq!(raw[1], 0xc0, "TOS: internetwork control, as keepalived");
    assert_eq!(raw[9], 112, "protocol VRRP");
    assert_eq!(src, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
    assert_eq!(got.src, src);
    assert_eq!(got.dst, IpAddr::V4(GROUP_V4));
    assert_eq!(got.ttl, 255);
    assert_eq!(got.ifindex, b_idx);
    assert_eq!(
        got.payload.start, 20,
        "the IPv4 header precedes the message"
    );
    assert!(!got.truncated);
}

#[test]
fn advert_multicast_ipv6() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let mut msg = vec![0x31, 51, 100, 1, 0x00, 100, 0x00, 0x00];
    msg.extend_from_slice(&"2001:db8::100".parse::<Ipv6Addr>().unwrap().octets());
    let (got, raw, src, b_idx) = exchange(&lab, Family::V6, true, |_| GROUP_V6.into(), &msg, 64);
    assert_eq!(got.payload(&raw), msg);
    assert!(src.to_string().starts_with("fe80::"), "{src}");
    assert_eq!(got.src, src, "source is A's link-local address");
    assert_eq!(got.dst, IpAddr::V6(GROUP_V6));
    assert_eq!(got.ttl, 255);
    assert_eq!(got.ifindex, b_idx);
    assert_eq!(got.payload, 0..msg.len());
}

#[test]
fn advert_unicast_ipv4() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let (got, raw, src, _) = exchange(&lab, Family::V4, false, |peer| peer, &V3_ADVERT_V4, 64);
    assert_eq!(got.payload(&raw), V3_ADVERT_V4);
    assert_eq!(got.src, src);
    assert_eq!(got.dst, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)));
    assert_eq!(got.ttl, 64, "unicast_ttl");
}

#[test]
fn advert_unicast_ipv6() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let msg = [0x31, 7, 200, 0, 0x00, 100, 0x00, 0x00];
    let (got, raw, src, _) = exchange(&lab, Family::V6, false, |peer| peer, &msg, 7);
    assert_eq!(got.payload(&raw), msg);
    assert_eq!(got.src, src);
    assert_eq!(got.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(got.ttl, 7, "unicast_ttl");
}

#[test]
fn socket_family_mismatch_is_an_error() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    in_ns(&lab.a, || async {
        let nl = Netlink::new().expect("netlink");
        let idx = nl.link_by_name("eth0").await.expect("eth0").index;
        let sock = AdvertSocket::open("eth0", idx, Ipv4Addr::new(192, 0, 2, 1).into(), true)
            .expect("open");
        let err = sock.send(GROUP_V6.into(), &[0; 8], 255).await.unwrap_err();
        assert!(matches!(err, SocketError::FamilyMismatch { .. }), "{err:?}");
        assert!(err.to_string().contains("ff02::12"), "{err}");
    });
}

/// CAP_NET_RAW is per thread: drop it from this thread's effective set and open a socket.
#[test]
fn missing_cap_net_raw_says_so() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    in_ns(&lab.a, || async {
        drop_effective_cap_net_raw();
        let err =
            AdvertSocket::open("eth0", 2, Ipv4Addr::new(192, 0, 2, 1).into(), true).unwrap_err();
        assert!(matches!(err, SocketError::NeedsPrivilege { .. }), "{err:?}");
        assert!(
            err.to_string().contains("needs CAP_NET_RAW: run as root"),
            "{err}"
        );
        let err = Announcer::open("eth0", 2).unwrap_err();
        assert!(
            err.to_string().contains("needs CAP_NET_RAW: run as root"),
            "{err}"
        );
    });
}

fn drop_effective_cap_net_raw() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    let mut hdr = Header {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` records (version 3) into `data` and reads `hdr`; both
    // are live and of the layout the kernel expects. pid 0 is the calling thread.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut hdr, data.as_mut_ptr()) };
    assert_eq!(rc, 0, "capget: {}", std::io::Error::last_os_error());
    data[0].effective &= !(1 << CAP_NET_RAW);
    // SAFETY: as above; capset only reads. It changes this thread's capabilities only.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut hdr, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

/// A blocking AF_PACKET socket in the current namespace receiving `ethertype` on `ifindex`.
fn packet_receiver(ifindex: u32, ethertype: u16) -> socket2::Socket {
    let sock = socket2::Socket::new(
        socket2::Domain::PACKET,
        socket2::Type::RAW,
        Some(socket2::Protocol::from(i32::from(ethertype.to_be()))),
    )
    .expect("AF_PACKET socket");
    let sll = libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: ethertype.to_be(),
        sll_ifindex: ifindex as i32,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    };
    // SAFETY: `sll` is a live, initialised sockaddr_ll of the size passed.
    let rc = unsafe {
        libc::bind(
            sock.as_raw_fd(),
            std::ptr::from_ref(&sll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "bind AF_PACKET: {}", std::io::Error::last_os_error());
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("SO_RCVTIMEO");
    sock
}

/// B captures frames of `ethertype` until one starts with the frame A sent.
fn announce_seen(lab: &Lab, ethertype: u16, build: impl FnOnce([u8; 6]) -> Vec<u8> + Send) {
    let (ready_tx, ready_rx) = mpsc::channel::<()>();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let (frame_tx, frame_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::scope(|s| {
        let receiver = s.spawn(|| {
            in_ns(&lab.b, || async move {
                let idx = Netlink::new()
                    .expect("netlink")
                    .link_by_name("eth0")
                    .await
                    .expect("eth0")
                    .index;
                let sock = packet_receiver(idx, ethertype);
                ready_tx.send(()).expect("ready");
                let expected = frame_rx.recv_timeout(DEADLINE).expect("frame from A");
                let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 2048];
                // Bounded: 50 idle reads of 200 ms (DEADLINE), or 10 000 other frames.
                let (mut idle, mut frames) = (0, 0);
                while idle < 50 && frames < 10_000 {
                    let Ok(n) = sock.recv(&mut buf) else {
                        idle += 1;
                        continue;
                    };
                    frames += 1;
                    // SAFETY: recv initialised the first `n` bytes.
                    let got: Vec<u8> = buf[..n]
                        .iter()
                        .map(|b| unsafe { b.assume_init() })
                        .collect();
                    if got.len() >= expected.len() && got[..expected.len()] == expected[..] {
                        let _ = done_tx.send(());
                        return;
                    }
                }
                panic!("B never saw the frame {expected:02x?}");
            })
        });
        in_ns(&lab.a, move || async move {
            ready_rx.recv_timeout(DEADLINE).expect("B ready");
            let link = Netlink::new()
                .expect("netlink")
                .link_by_name("eth0")
                .await
                .expect("eth0");
            let frame = build(link.mac);
            frame_tx.send(frame.clone()).expect("frame to B");
            let ann = Announcer::open("eth0", link.index).expect("announcer");
            for _ in 0..25 {
                ann.send_frame(&frame).await.expect("send frame");
                if done_rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                    break;
                }
            }
        });
        if let Err(p) = receiver.join() {
            std::panic::resume_unwind(p);
        }
    });
}

#[test]
fn garp_reaches_peer() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    announce_seen(&lab, 0x0806, |mac| {
        garp_frame(mac, Ipv4Addr::new(192, 0, 2, 100)).to_vec()
    });
}

#[test]
fn unsolicited_na_reaches_peer() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
    announce_seen(&lab, 0x86dd, |mac| {
        unsolicited_na_frame(mac, vip, vip, false).to_vec()
    });
}

#[test]
fn announcer_rejects_runt_frame() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    in_ns(&lab.a, || async {
        let idx = Netlink::new()
            .expect("netlink")
            .link_by_name("eth0")
            .await
            .expect("eth0")
            .index;
        let ann = Announcer::open("eth0", idx).expect("announcer");
        assert!(ann.send_frame(&[0xff; 10]).await.is_err());
    });
}

#[test]
fn fdb_self_entry_for_vmac() {
    if !lab_ready() {
        return;
    }
    let lab = Lab::new();
    let a = lab.a.clone();
    in_ns(&lab.a, || async move {
        let nl = Netlink::new().expect("netlink");
        let idx = nl.link_by_name("eth0").await.expect("eth0").index;
        let vmac = vrrp_common::wire::vmac(false, 51);
        let fdb = || run("bridge", &["-n", &a, "fdb", "show", "dev", "eth0"]);
        nl.fdb_add_self(idx, vmac).await.expect("fdb add");
        nl.fdb_add_self(idx, vmac).await.expect("second fdb add");
        let out = fdb();
        let line =
            line_with(&out, "00:00:5e:00:01:33").unwrap_or_else(|| panic!("no entry:\n{out}"));
        assert!(
            line.contains("self") && line.contains("permanent"),
            "{line}"
        );
        nl.fdb_del_self(idx, vmac).await.expect("fdb del");
        nl.fdb_del_self(idx, vmac).await.expect("second fdb del");
        let out = fdb();
        assert!(!out.contains("00:00:5e:00:01:33"), "{out}");
    });
}
