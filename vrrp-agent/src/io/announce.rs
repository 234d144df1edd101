//! Gratuitous ARP and unsolicited Neighbor Advertisement: pure frame builders and an
//! AF_PACKET sender.
//!
//! The builders are sans-IO and byte-exact copies of what keepalived 2.x puts on the wire
//! (`keepalived/vrrp/vrrp_arp.c`, `vrrp_ndisc.c`), so that switches and hosts see the same
//! frames after a migration. They are also the reference frames for the XDP ARP/NS responder
//! tests, hence the NS and plain ARP builders beside them.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;

use socket2::{Domain, Socket, Type};
use tokio::io::unix::AsyncFd;
use vrrp_common::wire::{
    ARP_LEN, ARPHRD_ETHER, ARPOP_REQUEST, ETH_HLEN, ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ICMPV6_NA,
    ICMPV6_NS, IPPROTO_ICMPV6, IPV6_HLEN,
};

/// Ethernet broadcast, the destination (and, as keepalived does, the target hardware address)
/// of a gratuitous ARP.
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];
/// 33:33:00:00:00:01, the Ethernet mapping of ff02::1 (RFC 2464 §7).
pub const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
/// ff02::1, all nodes on the link.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Length of an ARP frame over Ethernet, without padding (the NIC pads to 60 bytes).
pub const ARP_FRAME_LEN: usize = ETH_HLEN + ARP_LEN;
/// ICMPv6 NA or NS with one link-layer address option: 4 + 4 + 16 + 8 bytes.
pub const ND_MSG_LEN: usize = 32;
/// Length of an NA or NS frame: Ethernet + IPv6 + ND message.
pub const ND_FRAME_LEN: usize = ETH_HLEN + IPV6_HLEN + ND_MSG_LEN;

/// NA flags (RFC 4861 §4.4).
pub const NA_FLAG_ROUTER: u8 = 0x80;
pub const NA_FLAG_SOLICITED: u8 = 0x40;
pub const NA_FLAG_OVERRIDE: u8 = 0x20;
/// ND option types (RFC 4861 §4.6.1).
const ND_OPT_SOURCE_LL: u8 = 1;
const ND_OPT_TARGET_LL: u8 = 2;
/// RFC 4861 §7.1.2: ND messages must be sent, and are only accepted, with hop limit 255.
const ND_HOP_LIMIT: u8 = 255;

/// A whole Ethernet frame carrying one VRRP message from `src_mac` to a multicast `dst` (the
/// VRRP group): for `use_vmac`, whose adverts must come from the virtual MAC (RFC 9568 §7.3),
/// which a raw IP socket cannot do. IP header as the kernel writes ours: TOS / traffic class
/// 0xc0, TTL / hop limit 255, no options. `None` for a unicast `dst` or mixed families.
pub fn vrrp_multicast_frame(
    src_mac: [u8; 6],
    src: std::net::IpAddr,
    dst: std::net::IpAddr,
    vrrp_message: &[u8],
) -> Option<Vec<u8>> {
    let mut f = Vec::with_capacity(ETH_HLEN + IPV6_HLEN + vrrp_message.len());
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) if d.is_multicast() => {
            let o = d.octets();
            f.extend_from_slice(&[0x01, 0x00, 0x5e, o[1] & 0x7f, o[2], o[3]]);
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            let total = u16::try_from(20 + vrrp_message.len()).ok()?;
            let mut ip = [0u8; 20];
            ip[0] = 0x45;
            ip[1] = 0xc0;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[8] = 255;
            ip[9] = 112;
            ip[12..16].copy_from_slice(&s.octets());
            ip[16..20].copy_from_slice(&d.octets());
            let mut sum: u32 = ip
                .chunks(2)
                .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            ip[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) if d.is_multicast() => {
            let o = d.octets();
            f.extend_from_slice(&[0x33, 0x33, o[12], o[13], o[14], o[15]]);
            f.extend_from_slice(&src_mac);
            f.extend_from_slice(&0x86ddu16.to_be_bytes());
            let plen = u16::try_from(vrrp_message.len()).ok()?;
            // Version 6, traffic class 0xc0, flow label 0.
            f.extend_from_slice(&[0x6c, 0x00, 0x00, 0x00]);
            f.extend_from_slice(&plen.to_be_bytes());
            f.extend_from_slice(&[112, 255]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => return None,
    }
    f.extend_from_slice(vrrp_message);
    Some(f)
}

/// An ARP frame over Ethernet (RFC 826), 42 bytes without padding.
///
/// `eth_dst` is the Ethernet destination; `sha`/`spa` the sender hardware and protocol
/// addresses (the Ethernet source is `sha`); `tha`/`tpa` the target ones.
pub fn arp_frame(
    op: u16,
    eth_dst: [u8; 6],
    sha: [u8; 6],
    spa: Ipv4Addr,
    tha: [u8; 6],
    tpa: Ipv4Addr,
) -> [u8; ARP_FRAME_LEN] {
    let mut f = [0u8; ARP_FRAME_LEN];
    f[0..6].copy_from_slice(&eth_dst);
    f[6..12].copy_from_slice(&sha);
    f[12..14].copy_from_slice(&ETH_P_ARP.to_be_bytes());
    f[14..16].copy_from_slice(&ARPHRD_ETHER.to_be_bytes());
    f[16..18].copy_from_slice(&ETH_P_IP.to_be_bytes());
    f[18] = 6; // hardware address length
    f[19] = 4; // protocol address length
    f[20..22].copy_from_slice(&op.to_be_bytes());
    f[22..28].copy_from_slice(&sha);
    f[28..32].copy_from_slice(&spa.octets());
    f[32..38].copy_from_slice(&tha);
    f[38..42].copy_from_slice(&tpa.octets());
    f
}

/// The gratuitous ARP keepalived sends for an IPv4 VIP (`send_gratuitous_arp_immediate` in
/// `vrrp_arp.c`): an ARP *request* to Ethernet broadcast, with sender and target protocol
/// address both the VIP, sender hardware address `src_mac`, and target hardware address the
/// broadcast address ff:ff:ff:ff:ff:ff (keepalived copies `hw_addr_bcast` there, not zeros).
/// 42 bytes; no padding, as keepalived sends it.
pub fn garp_frame(src_mac: [u8; 6], vip: Ipv4Addr) -> [u8; ARP_FRAME_LEN] {
    arp_frame(
        ARPOP_REQUEST,
        BROADCAST_MAC,
        src_mac,
        vip,
        BROADCAST_MAC,
        vip,
    )
}

/// The Internet checksum (RFC 1071) of an ICMPv6 message over the IPv6 pseudo-header
/// (RFC 8200 §8.1). `msg` is the whole ICMPv6 message with its checksum field zeroed (or, to
/// verify, as received: a correct message then yields 0).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = pair.first().copied().unwrap_or(0);
            let lo = pair.get(1).copied().unwrap_or(0);
            sum += u32::from(u16::from_be_bytes([hi, lo]));
        }
    };
    add(&src.octets());
    add(&dst.octets());
    // Upper-layer length (32 bits) and next header; ND messages are far below 4 GiB.
    let len = u32::try_from(msg.len()).unwrap_or(u32::MAX);
    add(&len.to_be_bytes());
    add(&[0, 0, 0, IPPROTO_ICMPV6]);
    add(msg);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // Truncation is the point: the sum has been folded into 16 bits above.
    !(sum as u16)
}

/// The variable fields of an NA or NS frame.
struct Nd {
    eth_dst: [u8; 6],
    src_mac: [u8; 6],
    ip_src: Ipv6Addr,
    ip_dst: Ipv6Addr,
    icmp_type: u8,
    /// NA: R/S/O flags; NS: reserved, 0.
    flags: u8,
    target: Ipv6Addr,
    /// Source (NS) or target (NA) link-layer address option, carrying `src_mac`.
    opt_type: u8,
}

/// Ethernet + IPv6 header + a 32-byte ND message (type, flags byte, target, one link-layer
/// address option carrying `src_mac`), with the checksum filled in.
fn nd_frame(nd: &Nd) -> [u8; ND_FRAME_LEN] {
    let Nd {
        eth_dst,
        src_mac,
        ip_src,
        ip_dst,
        icmp_type,
        flags,
        target,
        opt_type,
    } = *nd;
    let mut f = [0u8; ND_FRAME_LEN];
    f[0..6].copy_from_slice(&eth_dst);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ETH_P_IPV6.to_be_bytes());
    let ip = &mut f[ETH_HLEN..ETH_HLEN + IPV6_HLEN];
    ip[0] = 0x60; // version 6, traffic class 0, flow label 0
    // ND_MSG_LEN is 32: it fits.
    ip[4..6].copy_from_slice(&(ND_MSG_LEN as u16).to_be_bytes());
    ip[6] = IPPROTO_ICMPV6;
    ip[7] = ND_HOP_LIMIT;
    ip[8..24].copy_from_slice(&ip_src.octets());
    ip[24..40].copy_from_slice(&ip_dst.octets());
    let msg = &mut f[ETH_HLEN + IPV6_HLEN..];
    msg[0] = icmp_type;
    msg[1] = 0; // code
    // msg[2..4]: checksum, below; msg[4]: flags (NA) or reserved (NS); msg[5..8] reserved.
    msg[4] = flags;
    msg[8..24].copy_from_slice(&target.octets());
    msg[24] = opt_type;
    msg[25] = 1; // option length in units of 8 bytes
    msg[26..32].copy_from_slice(&src_mac);
    let csum = icmpv6_checksum(ip_src, ip_dst, msg);
    msg[2..4].copy_from_slice(&csum.to_be_bytes());
    f
}

/// The unsolicited Neighbor Advertisement keepalived sends for an IPv6 VIP
/// (`ndisc_send_unsolicited_na_immediate` in `vrrp_ndisc.c`, RFC 4861 §7.2.6):
/// Ethernet 33:33:00:00:00:01 from `src_mac`; IPv6 from `src_ip` to ff02::1, hop limit 255;
/// ICMPv6 type 136 code 0 with Override set, Solicited clear, Router set when `router`;
/// target `vip`; a Target Link-Layer Address option with `src_mac`. 86 bytes.
///
/// keepalived uses the VIP itself as the IPv6 source (`src_ip == vip`), as we do; it sets the
/// Router flag only when `net.ipv6.conf.<if>.forwarding` is on, we always ([`NA_ROUTER`]).
pub fn unsolicited_na_frame(
    src_mac: [u8; 6],
    src_ip: Ipv6Addr,
    vip: Ipv6Addr,
    router: bool,
) -> [u8; ND_FRAME_LEN] {
    let flags = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    nd_frame(&Nd {
        eth_dst: ALL_NODES_MAC,
        src_mac,
        ip_src: src_ip,
        ip_dst: ALL_NODES,
        icmp_type: ICMPV6_NA,
        flags,
        target: vip,
        opt_type: ND_OPT_TARGET_LL,
    })
}

/// The solicited-node multicast address of `target` (RFC 4291 §2.7.1): ff02::1:ffXX:XXXX.
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// A Neighbor Solicitation for `target` from `src_ip`/`src_mac` to the target's
/// solicited-node group, with a Source Link-Layer Address option (RFC 4861 §4.3). 86 bytes.
/// Used to exercise the XDP NS responder; the agent itself does not solicit.
pub fn neighbor_solicitation_frame(
    src_mac: [u8; 6],
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
) -> [u8; ND_FRAME_LEN] {
    let group = solicited_node(target);
    let g = group.octets();
    let eth_dst = [0x33, 0x33, g[12], g[13], g[14], g[15]];
    nd_frame(&Nd {
        eth_dst,
        src_mac,
        ip_src: src_ip,
        ip_dst: group,
        icmp_type: ICMPV6_NS,
        flags: 0,
        target,
        opt_type: ND_OPT_SOURCE_LL,
    })
}

/// RFC 9568 §6.4.3 (item: the Active Router's Neighbor Advertisements): the master's NAs for
/// its IPv6 addresses, unsolicited and XDP's solicited ones, set the Router flag. The virtual
/// router is a router whatever this host's `forwarding` sysctl says (keepalived looks at the
/// sysctl: off, its NAs say "not a router" and a host drops the VIP from its default routers,
/// RFC 4861 §7.2.5).
pub const NA_ROUTER: bool = true;

/// The frames announcing a new master's VIPs from `mac`: a gratuitous ARP per IPv4 VIP, an
/// unsolicited NA (Router flag set, [`NA_ROUTER`]) per IPv6 VIP.
pub fn announcement_frames(mac: [u8; 6], vips: &[IpAddr]) -> Vec<Vec<u8>> {
    vips.iter()
        .map(|v| match v {
            IpAddr::V4(v) => garp_frame(mac, *v).to_vec(),
            IpAddr::V6(v) => unsolicited_na_frame(mac, *v, *v, NA_ROUTER).to_vec(),
        })
        .collect()
}

/// Errors of the announcement sender.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("opening an AF_PACKET socket on {ifname} needs CAP_NET_RAW: run as root")]
    NeedsPrivilege {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("setting up the AF_PACKET socket on {ifname}: {op}")]
    Setup {
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("frame of {len} bytes is shorter than an Ethernet header")]
    FrameTooShort { len: usize },
    #[error("sending a {len}-byte frame on {ifname}")]
    Send {
        ifname: String,
        len: usize,
        #[source]
        source: io::Error,
    },
}

/// Sends ready-made Ethernet frames on one interface through an AF_PACKET socket, as keepalived
/// does for GARP and NA. The socket is opened with protocol 0, so it receives nothing.
#[derive(Debug)]
pub struct Announcer {
    fd: AsyncFd<Socket>,
    ifname: String,
    ifindex: u32,
}

fn sockaddr_ll(ifindex: i32, protocol: u16) -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: ifindex,
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

const SOCKADDR_LL_LEN: libc::socklen_t =
    std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;

impl Announcer {
    /// Opens the sender on `ifname` (index `ifindex`). Must be called inside a tokio runtime,
    /// in the interface's network namespace.
    pub fn open(ifname: &str, ifindex: u32) -> Result<Self, AnnounceError> {
        let setup = |op: &'static str| {
            let ifname = ifname.to_owned();
            move |source| AnnounceError::Setup { ifname, op, source }
        };
        let c_ifindex = i32::try_from(ifindex)
            .map_err(|_| setup("interface index")(io::ErrorKind::InvalidInput.into()))?;
        let sock = Socket::new(Domain::PACKET, Type::RAW.nonblocking().cloexec(), None).map_err(
            |source| match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => AnnounceError::NeedsPrivilege {
                    ifname: ifname.to_owned(),
                    source,
                },
                _ => setup("socket(AF_PACKET)")(source),
            },
        )?;
        // Bound to the interface with protocol 0: the socket never joins the receive path.
        let sll = sockaddr_ll(c_ifindex, 0);
        // SAFETY: `sll` is a live, initialised sockaddr_ll and SOCKADDR_LL_LEN is its size; the
        // kernel only reads it during the call.
        let rc = unsafe {
            libc::bind(
                sock.as_raw_fd(),
                std::ptr::from_ref(&sll).cast(),
                SOCKADDR_LL_LEN,
            )
        };
        if rc != 0 {
            return Err(setup("bind")(io::Error::last_os_error()));
        }
        let fd = crate::io::socket::register(sock).map_err(setup("registering with tokio"))?;
        Ok(Self {
            fd,
            ifname: ifname.to_owned(),
            ifindex,
        })
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends one complete Ethernet frame (destination MAC first) as is.
    pub async fn send_frame(&self, frame: &[u8]) -> Result<(), AnnounceError> {
        let ethertype = frame
            .get(12..14)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(AnnounceError::FrameTooShort { len: frame.len() })?;
        // The address gives the kernel the skb protocol (as keepalived sets sll_protocol);
        // the frame bytes go out unchanged.
        let sll = sockaddr_ll(i32::try_from(self.ifindex).unwrap_or(0), ethertype);
        let fd = self.fd.get_ref().as_raw_fd();
        crate::io::socket::send_or_wait(&self.fd, || {
            // SAFETY: `frame` and `sll` outlive the call; the lengths passed are theirs.
            let n = unsafe {
                libc::sendto(
                    fd,
                    frame.as_ptr().cast(),
                    frame.len(),
                    0,
                    std::ptr::from_ref(&sll).cast(),
                    SOCKADDR_LL_LEN,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(())
            }
        })
        .await
        .map_err(|source| AnnounceError::Send {
            ifname: self.ifname.clone(),
            len: frame.len(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];

    /// RFC 1071 checked the other way: the 16-bit one's-complement sum of a correct message,
    /// checksum included, over the pseudo-header is all ones. Written independently of
    /// `icmpv6_checksum` (64-bit accumulator, 32-bit words, explicit pseudo-header buffer).
    fn verify_icmpv6(src: Ipv6Addr, dst: Ipv6Addr, msg: &[u8]) -> bool {
        let mut buf = Vec::new();
        buf.extend_from_slice(&src.octets());
        buf.extend_from_slice(&dst.octets());
        buf.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        buf.extend_from_slice(&[0, 0, 0, 58]);
        buf.extend_from_slice(msg);
        while buf.len() % 4 != 0 {
            buf.push(0);
        }
        let mut acc: u64 = buf
            .chunks(4)
            .map(|w| u64::from(u32::from_be_bytes([w[0], w[1], w[2], w[3]])))
            .sum();
        while acc > 0xffff {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc == 0xffff
    }

    #[test]
    fn garp_matches_keepalived_bytes() {
        let f = garp_frame(MAC, Ipv4Addr::new(192, 0, 2, 100));
        #[rustfmt::skip]
        let expected: [u8; 42] = [
            // Ethernet: broadcast <- our MAC, ARP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,
            0x08, 0x06,
            // ARP: Ethernet/IPv4, hlen 6, plen 4, op 1 (request)
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            // sender: our MAC, the VIP
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30, 192, 0, 2, 100,
            // target: broadcast MAC (keepalived's hw_addr_bcast), the VIP
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 192, 0, 2, 100,
        ];
        assert_eq!(f, expected);
    }

    #[test]
    fn arp_reply_layout() {
        let f = arp_frame(
            2,
            [1, 2, 3, 4, 5, 6],
            MAC,
            Ipv4Addr::new(192, 0, 2, 1),
            [1, 2, 3, 4, 5, 6],
            Ipv4Addr::new(192, 0, 2, 2),
        );
        assert_eq!(&f[0..6], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(&f[6..12], &MAC);
        assert_eq!(&f[20..22], &[0, 2]);
        assert_eq!(&f[28..32], &[192, 0, 2, 1]);
        assert_eq!(&f[38..42], &[192, 0, 2, 2]);
    }

    #[test]
    fn unsolicited_na_matches_keepalived_bytes() {
        let vip: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let f = unsolicited_na_frame(MAC, vip, vip, false);
        #[rustfmt::skip]
        let expected: [u8; 86] = [
            // Ethernet: 33:33:00:00:00:01 <- our MAC, IPv6
            0x33, 0x33, 0x00, 0x00, 0x00, 0x01,
            0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,
            0x86, 0xdd,
            // IPv6: version 6, payload 32, ICMPv6, hop limit 255
            0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff,
            // source: the VIP (keepalived)
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
            // destination: ff02::1
            0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
            // ICMPv6 NA, code 0, checksum, flags O, reserved
            0x88, 0x00, 0x78, 0xed, 0x20, 0x00, 0x00, 0x00,
            // target: the VIP
            0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00,
            // option 2 (target link-layer address), length 1 (8 bytes), our MAC
            0x02, 0x01, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30,
        ];
        assert_eq!(f, expected);
        assert!(verify_icmpv6(vip, ALL_NODES, &f[54..]));
        assert_eq!(icmpv6_checksum(vip, ALL_NODES, &f[54..]), 0);
    }

    #[test]
    fn na_router_flag_and_checksum() {
        let vip: Ipv6Addr = "2001:db8:1::abcd".parse().unwrap();
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let f = unsolicited_na_frame(MAC, ll, vip, true);
        assert_eq!(f[54 + 4], NA_FLAG_ROUTER | NA_FLAG_OVERRIDE);
        assert_eq!(&f[22..38], &ll.octets());
        assert!(verify_icmpv6(ll, ALL_NODES, &f[54..]));
        // A flipped bit is caught.
        let mut bad = f;
        bad[60] ^= 1;
        assert!(!verify_icmpv6(ll, ALL_NODES, &bad[54..]));
    }

    #[test]
    fn ns_layout_and_checksum() {
        let src: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        let f = neighbor_solicitation_frame(MAC, src, target);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        let group = solicited_node(target);
        assert_eq!(group.to_string(), "ff02::1:ff12:3456");
        assert_eq!(&f[38..54], &group.octets());
        assert_eq!(f[54], ICMPV6_NS);
        assert_eq!(f[54 + 4], 0);
        assert_eq!(&f[54 + 8..54 + 24], &target.octets());
        assert_eq!(&f[54 + 24..], &[1, 1, 0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);
        assert!(verify_icmpv6(src, group, &f[54..]));
    }

    #[test]
    fn checksum_of_odd_length() {
        // RFC 1071: an odd trailing byte is padded with zero on the right.
        let a: Ipv6Addr = "::1".parse().unwrap();
        let odd = [0x80, 0x00, 0x00, 0x00, 0x01];
        let c = icmpv6_checksum(a, a, &odd);
        let mut with = odd.to_vec();
        with[2..4].copy_from_slice(&c.to_be_bytes());
        assert!(verify_icmpv6(a, a, &with));
    }

    #[test]
    fn rfc9568_6_4_3_the_masters_nas_set_the_router_flag() {
        // Before: only with net.ipv6.conf.IF.forwarding on (off on a load balancer).
        let vips: Vec<IpAddr> = vec![
            "192.0.2.3".parse().unwrap(),
            "fe80::3".parse().unwrap(),
            "2001:db8::3".parse().unwrap(),
        ];
        let f = announcement_frames(MAC, &vips);
        assert_eq!(f.len(), 3);
        assert_eq!(f[0], garp_frame(MAC, "192.0.2.3".parse().unwrap()).to_vec());
        for (frame, vip) in f[1..].iter().zip(&vips[1..]) {
            let IpAddr::V6(vip) = vip else { unreachable!() };
            assert_eq!(frame[54], ICMPV6_NA);
            assert_eq!(frame[54 + 4], NA_FLAG_ROUTER | NA_FLAG_OVERRIDE);
            assert_eq!(&frame[54 + 8..54 + 24], &vip.octets());
            assert!(verify_icmpv6(*vip, ALL_NODES, &frame[54..]));
        }
    }
}
