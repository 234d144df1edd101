//! The XDP program run on crafted frames with BPF_PROG_TEST_RUN (root), every verdict and
//! counter checked; then attached to a veth in a namespace for real.
//!
//! The valid frames are adverts captured from Debian's keepalived (testdata/vectors); the
//! invalid ones are mutations of them.
#![cfg(feature = "lab")]

use std::path::PathBuf;

use aya::Ebpf;
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use vrrp_common::event::counter;
use vrrp_common::maps::{VRID_F_AUTH_PASS, VRID_F_CONFIGURED, VRID_F_V2, VridConfig, vrid_slot};
use vrrp_tests::{Lab, ebpf_object, in_netns, require_lab};

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;

fn vector(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.split_whitespace())
        .map(|b| u8::from_str_radix(b, 16).unwrap_or_else(|e| panic!("{name}: bad hex {b}: {e}")))
        .collect()
}

struct Prog {
    ebpf: Ebpf,
}

impl Prog {
    fn load() -> Self {
        require_lab();
        let mut ebpf = Ebpf::load_file(ebpf_object()).expect("load XDP object");
        let prog: &mut Xdp = ebpf
            .program_mut("vrrp_xdp")
            .expect("program")
            .try_into()
            .expect("xdp");
        prog.load().expect("verifier accepts vrrp_xdp");
        Self { ebpf }
    }

    fn configure(&mut self, ipv6: bool, vrid: u8, cfg: VridConfig) {
        let mut arr: Array<&mut MapData, VridConfig> =
            Array::try_from(self.ebpf.map_mut("VRID_CONFIG").expect("map")).expect("array");
        arr.set(vrid_slot(ipv6, vrid), cfg, 0).expect("set");
    }

    fn counters(&self) -> Vec<u64> {
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("COUNTERS").expect("map")).expect("percpu");
        (0..counter::COUNT)
            .map(|i| arr.get(&i, 0).expect("get").iter().sum())
            .collect()
    }

    fn foreign(&self, ipv6: bool, vrid: u8) -> u64 {
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(self.ebpf.map("FOREIGN_VRIDS").expect("map")).expect("percpu");
        arr.get(&vrid_slot(ipv6, vrid), 0)
            .expect("get")
            .iter()
            .sum()
    }

    /// Runs one frame; returns the action and which counters moved (index, delta).
    fn run(&mut self, frame: &[u8]) -> (u32, Vec<(u32, u64)>) {
        let before = self.counters();
        let prog: &Xdp = self
            .ebpf
            .program("vrrp_xdp")
            .expect("program")
            .try_into()
            .expect("xdp");
        let mut out = vec![0u8; frame.len() + 256];
        let res = prog
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .expect("BPF_PROG_TEST_RUN");
        let after = self.counters();
        let moved = (0..counter::COUNT)
            .filter(|&i| after[i as usize] != before[i as usize])
            .map(|i| (i, after[i as usize] - before[i as usize]))
            .collect();
        (res.return_value, moved)
    }
}

fn v3() -> VridConfig {
    VridConfig {
        flags: VRID_F_CONFIGURED,
        ..Default::default()
    }
}

fn v2(pass: Option<&[u8; 8]>) -> VridConfig {
    let mut c = VridConfig {
        flags: VRID_F_CONFIGURED | VRID_F_V2,
        ..Default::default()
    };
    if let Some(p) = pass {
        c.flags |= VRID_F_AUTH_PASS;
        c.auth_pass = *p;
    }
    c
}

/// Offsets in an untagged Ethernet + IPv4 frame.
const IP: usize = 14;
const VRRP4: usize = 34;
const VRRP6: usize = 54;

fn ones_sum(data: &[u8]) -> u32 {
    let mut s = 0u32;
    for ch in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([ch[0], *ch.get(1).unwrap_or(&0)]));
    }
    s
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// Rewrites the VRRP checksum of an IPv4 frame in the RFC 9568 form (no pseudo-header).
fn rfc_form_v4(mut f: Vec<u8>) -> Vec<u8> {
    f[VRRP4 + 6] = 0;
    f[VRRP4 + 7] = 0;
    let c = fold(ones_sum(&f[VRRP4..]));
    f[VRRP4 + 6..VRRP4 + 8].copy_from_slice(&c.to_be_bytes());
    f
}

fn fix_ipv4_header_checksum(f: &mut [u8]) {
    f[IP + 10] = 0;
    f[IP + 11] = 0;
    let c = fold(ones_sum(&f[IP..IP + 20]));
    f[IP + 10..IP + 12].copy_from_slice(&c.to_be_bytes());
}

fn vrid_of(f: &[u8], ipv6: bool) -> u8 {
    f[if ipv6 { VRRP6 } else { VRRP4 } + 1]
}

#[test]
fn valid_keepalived_adverts_pass_and_count() {
    let mut p = Prog::load();
    for (name, ipv6, cfg, form) in [
        (
            "keepalived-v3-ipv4.hex",
            false,
            v3(),
            Some(counter::V3_CSUM_WITH_PSEUDO),
        ),
        (
            "keepalived-v3-ipv4-frac.hex",
            false,
            v3(),
            Some(counter::V3_CSUM_WITH_PSEUDO),
        ),
        (
            "keepalived-v3-ipv4-prio0.hex",
            false,
            v3(),
            Some(counter::V3_CSUM_WITH_PSEUDO),
        ),
        ("keepalived-v3-ipv6.hex", true, v3(), None),
        ("keepalived-v3-ipv6-frac.hex", true, v3(), None),
        ("keepalived-v2-noauth.hex", false, v2(None), None),
        (
            "keepalived-v2-auth.hex",
            false,
            v2(Some(b"1111\0\0\0\0")),
            None,
        ),
    ] {
        let f = vector(name);
        p.configure(ipv6, vrid_of(&f, ipv6), cfg);
        let (action, moved) = p.run(&f);
        assert_eq!(action, XDP_PASS, "{name}");
        let mut want = vec![(counter::ADVERT_VALID, 1)];
        if let Some(c) = form {
            want.push((c, 1));
        }
        want.sort();
        assert_eq!(moved, want, "{name}");
    }
}

#[test]
fn rfc9568_checksum_form_is_accepted_and_counted() {
    let mut p = Prog::load();
    let f = rfc_form_v4(vector("keepalived-v3-ipv4.hex"));
    p.configure(false, vrid_of(&f, false), v3());
    let (action, moved) = p.run(&f);
    assert_eq!(action, XDP_PASS);
    assert_eq!(
        moved,
        vec![
            (counter::ADVERT_VALID, 1),
            (counter::V3_CSUM_WITHOUT_PSEUDO, 1)
        ]
    );
}

#[test]
fn every_drop_reason_is_counted() {
    let mut p = Prog::load();
    let base = vector("keepalived-v3-ipv4.hex");
    let vrid = vrid_of(&base, false);
    p.configure(false, vrid, v3());
    let m = |f: fn(&mut Vec<u8>)| {
        let mut v = base.clone();
        f(&mut v);
        v
    };
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        ("ttl 64", m(|f| f[IP + 8] = 64), counter::DROP_BAD_TTL),
        (
            "version 4",
            m(|f| f[VRRP4] = 0x41),
            counter::DROP_BAD_VERSION,
        ),
        (
            "version 2 on a v3 VRID",
            m(|f| f[VRRP4] = 0x21),
            counter::DROP_BAD_VERSION,
        ),
        ("type 2", m(|f| f[VRRP4] = 0x32), counter::DROP_BAD_TYPE),
        (
            "count beyond length",
            m(|f| f[VRRP4 + 3] = 9),
            counter::DROP_BAD_LENGTH,
        ),
        (
            "count zero",
            m(|f| f[VRRP4 + 3] = 0),
            counter::DROP_BAD_LENGTH,
        ),
        (
            "truncated frame",
            m(|f| f.truncate(VRRP4 + 5)),
            counter::DROP_TRUNCATED,
        ),
        (
            "frame shorter than IP length",
            m(|f| f.truncate(f.len() - 2)),
            counter::DROP_TRUNCATED,
        ),
        (
            "more fragments",
            m(|f| f[IP + 6] = 0x20),
            counter::DROP_FRAGMENT,
        ),
        (
            "corrupted address",
            m(|f| f[VRRP4 + 9] ^= 0x40),
            counter::DROP_BAD_CHECKSUM,
        ),
        (
            "corrupted checksum",
            m(|f| f[VRRP4 + 7] ^= 1),
            counter::DROP_BAD_CHECKSUM,
        ),
    ];
    for (what, frame, reason) in cases {
        let (action, moved) = p.run(&frame);
        assert_eq!(action, XDP_DROP, "{what}");
        assert_eq!(moved, vec![(reason, 1)], "{what}");
    }

    // VRRPv2 password mismatch.
    let f2 = vector("keepalived-v2-auth.hex");
    p.configure(false, vrid_of(&f2, false), v2(Some(b"2222\0\0\0\0")));
    assert_eq!(p.run(&f2), (XDP_DROP, vec![(counter::DROP_AUTH, 1)]));

    // IPv6 with a bad hop limit and a corrupted checksum.
    let mut f6 = vector("keepalived-v3-ipv6.hex");
    p.configure(true, vrid_of(&f6, true), v3());
    f6[IP + 7] = 1;
    assert_eq!(p.run(&f6), (XDP_DROP, vec![(counter::DROP_BAD_TTL, 1)]));
    let mut f6 = vector("keepalived-v3-ipv6.hex");
    f6[VRRP6 + 20] ^= 0xff;
    assert_eq!(
        p.run(&f6),
        (XDP_DROP, vec![(counter::DROP_BAD_CHECKSUM, 1)])
    );
}

#[test]
fn unknown_vrid_is_dropped_and_counted_per_vrid() {
    let mut p = Prog::load();
    let f = vector("keepalived-v3-ipv4.hex");
    let vrid = vrid_of(&f, false);
    let (action, moved) = p.run(&f);
    assert_eq!(
        (action, moved),
        (XDP_DROP, vec![(counter::DROP_UNKNOWN_VRID, 1)])
    );
    assert_eq!(p.foreign(false, vrid), 1);
    // The same VRID over IPv6 is another virtual router (RFC 9568 §7.3).
    p.configure(true, vrid, v3());
    p.run(&f);
    assert_eq!(p.foreign(false, vrid), 2);
}

#[test]
fn everything_else_passes_untouched() {
    let mut p = Prog::load();
    let base = vector("keepalived-v3-ipv4.hex");
    let mut udp = base.clone();
    udp[IP + 9] = 17;
    let mut arp = vec![0xffu8; 6];
    arp.extend_from_slice(&base[6..12]);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0u8; 28]);
    let mut vlan = base.clone();
    vlan[12] = 0x81;
    vlan[13] = 0x00;
    let mut bad_ihl = base.clone();
    bad_ihl[IP] = 0x43;
    let mut v6_ext = vector("keepalived-v3-ipv6.hex");
    v6_ext[IP + 6] = 0; // hop-by-hop options header first
    let short = base[..14].to_vec();
    for (what, f) in [
        ("udp", udp),
        ("arp", arp),
        ("vlan-tagged", vlan),
        ("ipv4 header length below 20", bad_ihl),
        ("ipv6 extension header", v6_ext),
        ("ethernet header only", short),
    ] {
        assert_eq!(p.run(&f), (XDP_PASS, vec![]), "{what}");
    }
}

/// The program attached to a veth for real: native mode, and a keepalived advert sent from
/// another namespace is counted.
#[test]
fn attaches_natively_to_a_veth_and_counts_real_frames() {
    require_lab();
    let mut lab = Lab::new("xdp-attach").expect("lab");
    let a = lab.host("a", &["192.0.2.1/24"]).expect("host a");
    let b = lab.host("b", &["192.0.2.2/24"]).expect("host b");
    let frame = vector("keepalived-v3-ipv4.hex");
    let vrid = vrid_of(&frame, false);
    let ns = a.ns.clone();
    let plane = in_netns(&ns, move || {
        let mut plane = vrrp_agent::io::xdp::DataPlane::attach("eth0", false).expect("attach");
        plane
            .set_vrid(
                false,
                vrid,
                VridConfig {
                    flags: VRID_F_CONFIGURED,
                    ..Default::default()
                },
            )
            .expect("configure");
        plane
    })
    .expect("netns thread");
    assert_eq!(plane.mode(), vrrp_agent::io::xdp::AttachMode::Native);
    let shown = lab.ip(&a.ns, "link show dev eth0").expect("ip link");
    assert!(
        shown.contains("xdp"),
        "ip link does not show the program: {shown}"
    );

    send_frames(&b.ns, "eth0", &frame, 5);
    lab.wait_until(
        "5 adverts counted as valid",
        std::time::Duration::from_secs(10),
        || Ok(plane.counters()?[counter::ADVERT_VALID as usize] >= 5),
    )
    .expect("counted");
    let mut bad = frame.clone();
    bad[IP + 8] = 1;
    // A real off-link sender has a valid IP header checksum (the stack drops others early).
    fix_ipv4_header_checksum(&mut bad);
    send_frames(&b.ns, "eth0", &bad, 3);
    lab.wait_until(
        "3 bad-TTL drops",
        std::time::Duration::from_secs(10),
        || Ok(plane.counters()?[counter::DROP_BAD_TTL as usize] >= 3),
    )
    .expect("counted");
    drop(plane);
    let shown = lab.ip(&a.ns, "link show dev eth0").expect("ip link");
    assert!(
        !shown.contains("prog/xdp"),
        "the program outlived its owner: {shown}"
    );
}

/// Sends raw Ethernet frames from a namespace through an AF_PACKET socket.
fn send_frames(ns: &str, ifname: &str, frame: &[u8], n: usize) {
    let frame = frame.to_vec();
    let ifname = ifname.to_string();
    in_netns(ns, move || {
        // SAFETY: plain socket(2); the fd is closed below.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let cname = std::ffi::CString::new(ifname).expect("name");
        // SAFETY: cname is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        assert!(ifindex > 0);
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as i32;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        for _ in 0..n {
            // SAFETY: frame and sll are valid for the lengths given.
            let r = unsafe {
                libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    (&sll as *const libc::sockaddr_ll).cast(),
                    std::mem::size_of::<libc::sockaddr_ll>() as u32,
                )
            };
            assert_eq!(
                r,
                frame.len() as isize,
                "sendto: {}",
                std::io::Error::last_os_error()
            );
        }
        // SAFETY: fd is ours.
        unsafe { libc::close(fd) };
    })
    .expect("netns thread");
}
