//! Raw IP sockets (protocol 112) that send and receive VRRP adverts on one interface.
//!
//! The socket deals in VRRP message bytes and addresses only: the caller encodes and decodes
//! with `proto::codec` and applies the RFC receive checks (TTL 255, source, checksum) to the
//! [`Received`] metadata. The kernel computes no VRRP checksum (IPV6_CHECKSUM is left off on
//! purpose so that a bad checksum reaches the codec as a countable decode error instead of
//! being dropped silently).
//!
//! One socket serves both directions. It is not `bind()`-ed to the source address, because a
//! raw socket bound to a local address only receives packets sent *to* that address and would
//! miss 224.0.0.18 / ff02::12; the source is given per packet with IP_PKTINFO / IPV6_PKTINFO
//! instead.

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::ops::Range;
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, SockaddrStorage,
    recvmsg, sendmsg, setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use vrrp_common::wire::{IPPROTO_VRRP, IPV4_MIN_HLEN, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TTL};

use crate::proto::Family;

/// 224.0.0.18, where IPv4 adverts go (RFC 9568 §5.1.1.2).
pub const GROUP_V4: Ipv4Addr = Ipv4Addr::new(
    VRRP_GROUP_V4[0],
    VRRP_GROUP_V4[1],
    VRRP_GROUP_V4[2],
    VRRP_GROUP_V4[3],
);
/// ff02::12, where IPv6 adverts go (RFC 9568 §5.1.2.2).
pub const GROUP_V6: Ipv6Addr = Ipv6Addr::from_bits(u128::from_be_bytes(VRRP_GROUP_V6));

/// IP precedence "internetwork control" (DSCP CS6), the TOS / traffic class keepalived gives
/// adverts (`if_setsockopt_priority`), so switches queue them as control traffic.
const TOS_NETWORK_CONTROL: u32 = 0xc0;

/// Errors of the advert socket, naming the interface and addresses involved.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("opening a raw {family:?} socket for VRRP on {ifname} needs CAP_NET_RAW: run as root")]
    NeedsPrivilege {
        family: Family,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("setting up the {family:?} VRRP socket on {ifname}: {op}")]
    Setup {
        family: Family,
        ifname: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{what} {addr} is not {family:?}, the family of the VRRP socket on {ifname}")]
    FamilyMismatch {
        what: &'static str,
        addr: IpAddr,
        family: Family,
        ifname: String,
    },
    #[error("interface name {ifname:?} is not valid")]
    BadInterfaceName { ifname: String },
    #[error("sending a VRRP advert from {src} to {dst} on {ifname}")]
    Send {
        src: IpAddr,
        dst: IpAddr,
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("receiving VRRP on {ifname}")]
    Recv {
        ifname: String,
        #[source]
        source: io::Error,
    },
    #[error("malformed IPv4 header in a {len}-byte packet received on {ifname}")]
    MalformedIpv4 { len: usize, ifname: String },
}

/// One received VRRP packet: where it came from and where the VRRP message lies in the
/// caller's buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The IP source (the sender's primary or link-local address).
    pub src: IpAddr,
    /// The IP destination: the group, or our address for unicast peers. IPv6:
    /// `::` if the kernel gave no IPV6_PKTINFO (never expected).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit as received; RFC 9568 §7.1 requires 255. IPv6: 0 if the
    /// kernel gave no IPV6_HOPLIMIT, which fails that check.
    pub ttl: u8,
    /// The interface the packet arrived on (0 if unknown).
    pub ifindex: u32,
    /// The VRRP message within the buffer passed to [`AdvertSocket::recv`]. For IPv4 the
    /// buffer starts with the IP header (raw IPv4 sockets deliver it), for IPv6 with the VRRP
    /// message.
    pub payload: Range<usize>,
    /// The buffer was too small and the packet was cut.
    pub truncated: bool,
}

impl Received {
    /// The VRRP message bytes.
    pub fn payload<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.payload.clone()).unwrap_or_default()
    }
}

/// A raw VRRP socket on one interface and address family.
#[derive(Debug)]
pub struct AdvertSocket {
    fd: AsyncFd<Socket>,
    family: Family,
    ifname: String,
    ifindex: u32,
    src: IpAddr,
}

fn family_of(a: IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// Parses the IPv4 header a raw socket hands over: (src, dst, ttl, payload range).
fn parse_ipv4(pkt: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr, u8, Range<usize>)> {
    let first = *pkt.first()?;
    let ihl = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || ihl < IPV4_MIN_HLEN || pkt.len() < ihl {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    let src = Ipv4Addr::new(pkt[12], pkt[13], pkt[14], pkt[15]);
    let dst = Ipv4Addr::new(pkt[16], pkt[17], pkt[18], pkt[19]);
    // The kernel has already checked total length; min() keeps a truncated read in bounds.
    let end = total.clamp(ihl, pkt.len());
    Some((src, dst, pkt[8], ihl..end))
}

impl AdvertSocket {
    /// Opens a raw socket for VRRP on `ifname` (index `ifindex`), sending from `src` (IPv4: the
    /// interface's primary address; IPv6: its link-local address). The family follows `src`.
    /// `join_multicast` joins 224.0.0.18 / ff02::12 on the interface; leave it off for
    /// unicast-only instances.
    ///
    /// Must be called inside a tokio runtime, in the network namespace of the interface.
    pub fn open(
        ifname: &str,
        ifindex: u32,
        src: IpAddr,
        join_multicast: bool,
    ) -> Result<Self, SocketError> {
        let family = family_of(src);
        let setup = |op: &'static str| {
            let ifname = ifname.to_owned();
            move |source| SocketError::Setup {
                family,
                ifname,
                op,
                source,
            }
        };
        if ifname.is_empty() || ifname.len() > 15 || ifname.contains('\0') {
            return Err(SocketError::BadInterfaceName {
                ifname: ifname.to_owned(),
            });
        }
        let domain = match family {
            Family::V4 => Domain::IPV4,
            Family::V6 => Domain::IPV6,
        };
        let proto = Protocol::from(i32::from(IPPROTO_VRRP));
        let sock = Socket::new(domain, Type::RAW.nonblocking().cloexec(), Some(proto)).map_err(
            |source| match source.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => SocketError::NeedsPrivilege {
                    family,
                    ifname: ifname.to_owned(),
                    source,
                },
                _ => setup("socket()")(source),
            },
        )?;
        // Only this interface: adverts are link-local by definition (RFC 9568 §5.1.1.2).
        sock.bind_device(Some(ifname.as_bytes()))
            .map_err(setup("SO_BINDTODEVICE"))?;
        let ttl = u32::from(VRRP_TTL);
        match family {
            Family::V4 => {
                sock.set_ttl_v4(ttl).map_err(setup("IP_TTL"))?;
                sock.set_tos_v4(TOS_NETWORK_CONTROL)
                    .map_err(setup("IP_TOS"))?;
                sock.set_multicast_ttl_v4(ttl)
                    .map_err(setup("IP_MULTICAST_TTL"))?;
                sock.set_multicast_loop_v4(false)
                    .map_err(setup("IP_MULTICAST_LOOP"))?;
                // Only the groups this socket joined, not every group of the host.
                sock.set_multicast_all_v4(false)
                    .map_err(setup("IP_MULTICAST_ALL"))?;
                set_multicast_if_index_v4(&sock, ifindex).map_err(setup("IP_MULTICAST_IF"))?;
                // The receiving interface comes back in an IP_PKTINFO control message.
                setsockopt(&sock, sockopt::Ipv4PacketInfo, &true)
                    .map_err(|e| setup("IP_PKTINFO")(e.into()))?;
                if join_multicast {
                    sock.join_multicast_v4_n(&GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
                        .map_err(setup("IP_ADD_MEMBERSHIP 224.0.0.18"))?;
                }
            }
            Family::V6 => {
                sock.set_tclass_v6(TOS_NETWORK_CONTROL)
                    .map_err(setup("IPV6_TCLASS"))?;
                sock.set_unicast_hops_v6(ttl)
                    .map_err(setup("IPV6_UNICAST_HOPS"))?;
                sock.set_multicast_hops_v6(ttl)
                    .map_err(setup("IPV6_MULTICAST_HOPS"))?;
                sock.set_multicast_loop_v6(false)
                    .map_err(setup("IPV6_MULTICAST_LOOP"))?;
                sock.set_multicast_all_v6(false)
                    .map_err(setup("IPV6_MULTICAST_ALL"))?;
                sock.set_multicast_if_v6(ifindex)
                    .map_err(setup("IPV6_MULTICAST_IF"))?;
                // The IPv6 header is not delivered: destination and hop limit come as control
                // messages.
                sock.set_recv_hoplimit_v6(true)
                    .map_err(setup("IPV6_RECVHOPLIMIT"))?;
                setsockopt(&sock, sockopt::Ipv6RecvPacketInfo, &true)
                    .map_err(|e| setup("IPV6_RECVPKTINFO")(e.into()))?;
                if join_multicast {
                    sock.join_multicast_v6(&GROUP_V6, ifindex)
                        .map_err(setup("IPV6_ADD_MEMBERSHIP ff02::12"))?;
                }
            }
        }
        let fd = register(sock).map_err(setup("registering with tokio"))?;
        Ok(Self {
            fd,
            family,
            ifname: ifname.to_owned(),
            ifindex,
            src,
        })
    }

    /// Receives nothing from now on (a socket filter that drops every packet in the kernel):
    /// where XDP consumes our adverts, the socket only sends, and what XDP passes on (other
    /// VRIDs) must not wake the agent.
    pub fn ignore_input(&self) -> Result<(), SocketError> {
        // BPF_RET | BPF_K with k = 0: keep zero bytes of every packet.
        let drop_all = [socket2::SockFilter::new(0x06, 0, 0, 0)];
        self.fd
            .get_ref()
            .attach_filter(&drop_all)
            .map_err(|source| SocketError::Setup {
                family: self.family,
                ifname: self.ifname.clone(),
                op: "SO_ATTACH_FILTER (drop all input)",
                source,
            })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The source address adverts are sent from.
    pub fn source(&self) -> IpAddr {
        self.src
    }

    /// Changes the source address, e.g. after the interface's primary address changed.
    pub fn set_source(&mut self, src: IpAddr) -> Result<(), SocketError> {
        self.check_family("source", src)?;
        self.src = src;
        Ok(())
    }

    fn check_family(&self, what: &'static str, addr: IpAddr) -> Result<(), SocketError> {
        if family_of(addr) == self.family {
            Ok(())
        } else {
            Err(SocketError::FamilyMismatch {
                what,
                addr,
                family: self.family,
                ifname: self.ifname.clone(),
            })
        }
    }

    /// Sends one VRRP message (already encoded, checksum included) to `dst`: the group
    /// ([`GROUP_V4`] / [`GROUP_V6`]) or a unicast peer. The kernel adds the IP header with our
    /// source address and TTL / hop limit 255, or `ttl` for a unicast `dst` (keepalived's
    /// `unicast_ttl`: per packet, as instances with different ones may share the socket).
    pub async fn send(&self, dst: IpAddr, vrrp_message: &[u8], ttl: u8) -> Result<(), SocketError> {
        self.check_family("destination", dst)?;
        let fd = self.fd.get_ref().as_raw_fd();
        let iov = [IoSlice::new(vrrp_message)];
        // The ifindex is signed in the C structs; an index that does not fit cannot exist.
        let c_ifindex = i32::try_from(self.ifindex).unwrap_or(0);
        let res = match (self.src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let info = libc::in_pktinfo {
                    ipi_ifindex: c_ifindex,
                    ipi_spec_dst: libc::in_addr {
                        s_addr: u32::from(src).to_be(),
                    },
                    ipi_addr: libc::in_addr { s_addr: 0 },
                };
                let to = SockaddrIn::from(SocketAddrV4::new(dst, 0));
                let ttl = unicast_ttl(dst.into(), ttl);
                send_or_wait(&self.fd, || {
                    let info = ControlMessage::Ipv4PacketInfo(&info);
                    let sent = match &ttl {
                        Some(t) => sendmsg(
                            fd,
                            &iov,
                            &[info, ControlMessage::Ipv4Ttl(t)],
                            MsgFlags::empty(),
                            Some(&to),
                        ),
                        None => sendmsg(fd, &iov, &[info], MsgFlags::empty(), Some(&to)),
                    };
                    sent.map_err(io::Error::from)
                })
                .await
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                // Link-scoped destinations (ff02::12, fe80::/10 peers) need the zone.
                let scope = if dst.is_multicast() || dst.segments()[0] & 0xffc0 == 0xfe80 {
                    self.ifindex
                } else {
                    0
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
                let hops = unicast_ttl(dst.into(), ttl);
                send_or_wait(&self.fd, || {
                    let info = ControlMessage::Ipv6PacketInfo(&info);
                    let sent = match &hops {
                        Some(h) => sendmsg(
                            fd,
                            &iov,
                            &[info, ControlMessage::Ipv6HopLimit(h)],
                            MsgFlags::empty(),
                            Some(&to),
                        ),
                        None => sendmsg(fd, &iov, &[info], MsgFlags::empty(), Some(&to)),
                    };
                    sent.map_err(io::Error::from)
                })
                .await
            }
            // check_family above and set_source keep src and dst in the socket's family.
            (src, dst) => {
                return Err(SocketError::FamilyMismatch {
                    what: "destination",
                    addr: dst,
                    family: family_of(src),
                    ifname: self.ifname.clone(),
                });
            }
        };
        res.map(drop).map_err(|source| SocketError::Send {
            src: self.src,
            dst,
            ifname: self.ifname.clone(),
            source,
        })
    }

    /// Waits for the next VRRP packet. `buf` should hold a whole packet (the interface MTU);
    /// a shorter one sets [`Received::truncated`].
    pub async fn recv(&self, buf: &mut [u8]) -> Result<Received, SocketError> {
        let fd = self.fd.get_ref().as_raw_fd();
        let mut cmsg_buf = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
        let family = self.family;
        let res = self
            .fd
            .async_io(Interest::READABLE, |_| {
                let mut iov = [IoSliceMut::new(&mut *buf)];
                let msg = recvmsg::<SockaddrStorage>(
                    fd,
                    &mut iov,
                    Some(&mut cmsg_buf),
                    MsgFlags::empty(),
                )
                .map_err(io::Error::from)?;
                let mut meta = RecvMeta {
                    len: msg.bytes,
                    truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
                    src: None,
                    dst: None,
                    hop_limit: None,
                    ifindex: 0,
                };
                if family == Family::V6 {
                    meta.src = msg
                        .address
                        .as_ref()
                        .and_then(|a| a.as_sockaddr_in6())
                        .map(|a| a.ip());
                }
                // A truncated control buffer only loses metadata; the defaults fail closed.
                if let Ok(cmsgs) = msg.cmsgs() {
                    for c in cmsgs {
                        match c {
                            ControlMessageOwned::Ipv4PacketInfo(i) => {
                                meta.ifindex = u32::try_from(i.ipi_ifindex).unwrap_or(0);
                            }
                            ControlMessageOwned::Ipv6PacketInfo(i) => {
                                meta.ifindex = i.ipi6_ifindex;
                                meta.dst = Some(Ipv6Addr::from(i.ipi6_addr.s6_addr));
                            }
                            ControlMessageOwned::Ipv6HopLimit(h) => {
                                meta.hop_limit = u8::try_from(h).ok();
                            }
                            _ => {}
                        }
                    }
                }
                Ok(meta)
            })
            .await
            .map_err(|source| SocketError::Recv {
                ifname: self.ifname.clone(),
                source,
            })?;
        let len = res.len.min(buf.len());
        match self.family {
            Family::V4 => {
                let (src, dst, ttl, payload) =
                    parse_ipv4(&buf[..len]).ok_or_else(|| SocketError::MalformedIpv4 {
                        len,
                        ifname: self.ifname.clone(),
                    })?;
                Ok(Received {
                    src: src.into(),
                    dst: dst.into(),
                    ttl,
                    ifindex: res.ifindex,
                    payload,
                    truncated: res.truncated,
                })
            }
            Family::V6 => Ok(Received {
                src: res.src.unwrap_or(Ipv6Addr::UNSPECIFIED).into(),
                dst: res.dst.unwrap_or(Ipv6Addr::UNSPECIFIED).into(),
                ttl: res.hop_limit.unwrap_or(0),
                ifindex: res.ifindex,
                payload: 0..len,
                truncated: res.truncated,
            }),
        }
    }
}

/// The TTL / hop limit control message value for a send to `dst`: `ttl` for a unicast
/// destination when it is not the socket's 255, none otherwise (the group always gets 255).
fn unicast_ttl(dst: IpAddr, ttl: u8) -> Option<libc::c_int> {
    (!dst.is_multicast() && ttl != VRRP_TTL).then_some(libc::c_int::from(ttl))
}

struct RecvMeta {
    len: usize,
    truncated: bool,
    src: Option<Ipv6Addr>,
    dst: Option<Ipv6Addr>,
    hop_limit: Option<u8>,
    ifindex: u32,
}

/// Registers a socket with the current tokio reactor; an error (not a panic) outside a runtime.
pub(crate) fn register(sock: Socket) -> io::Result<AsyncFd<Socket>> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(io::Error::other("not inside a tokio runtime"));
    }
    // Readable only: with write interest too, every send wakes the runtime once more when the
    // socket's buffer drains (an edge-triggered EPOLLOUT nobody waits for). Sends go out at
    // once and wait for room only when the kernel says so ([`send_or_wait`]).
    // SAFETY: `Socket` owns its descriptor: it stays open and the same for as long as the
    // AsyncFd owns the Socket, and closes only when the AsyncFd drops it.
    unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }.map_err(io::Error::from)
}

/// Runs the non-blocking send `f` on `sock`; if the kernel has no room (EAGAIN), waits until
/// the socket is writable, through a registration made for that wait only, and tries again.
pub(crate) async fn send_or_wait<R>(
    sock: &AsyncFd<Socket>,
    mut f: impl FnMut() -> io::Result<R>,
) -> io::Result<R> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let dup = sock.get_ref().try_clone()?;
                // SAFETY: as in `register`; the duplicate lives only for this wait.
                let w = unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }
                    .map_err(io::Error::from)?;
                let mut g = w.writable().await?;
                g.clear_ready();
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// IP_MULTICAST_IF by interface index (`struct ip_mreqn`); socket2 only takes an address.
fn set_multicast_if_index_v4(sock: &Socket, ifindex: u32) -> io::Result<()> {
    let mreqn = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: i32::try_from(ifindex)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?,
    };
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::ip_mreqn>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `mreqn` is a live, initialised ip_mreqn and `len` is its exact size; the kernel
    // only reads it during the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            std::ptr::from_ref(&mreqn).cast(),
            len,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups() {
        assert_eq!(GROUP_V4.to_string(), "224.0.0.18");
        assert_eq!(GROUP_V6.to_string(), "ff02::12");
    }

    #[test]
    fn ipv4_header_parsing() {
        let mut pkt = vec![
            0x45, 0xc0, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0xff, 0x70, 0x00, 0x00, 192, 0, 2, 1,
            224, 0, 0, 18,
        ];
        pkt.extend_from_slice(&[0x31, 0x33, 0x64, 0x01, 0x00, 0x64, 0x00, 0x00]);
        pkt.extend_from_slice(&[192, 0, 2, 100]);
        let (src, dst, ttl, range) = parse_ipv4(&pkt).unwrap();
        assert_eq!(src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(dst, GROUP_V4);
        assert_eq!(ttl, 255);
        assert_eq!(range, 20..32);
        // Ethernet padding after the datagram is not part of the VRRP message.
        pkt.extend_from_slice(&[0; 6]);
        assert_eq!(parse_ipv4(&pkt).unwrap().3, 20..32);
        // A read cut short stays in bounds.
        assert_eq!(parse_ipv4(&pkt[..25]).unwrap().3, 20..25);
    }

    #[test]
    fn ipv4_header_rejects_garbage() {
        assert!(parse_ipv4(&[]).is_none());
        assert!(parse_ipv4(&[0x45; 10]).is_none());
        let mut bad_ihl = [0u8; 20];
        bad_ihl[0] = 0x44;
        assert!(parse_ipv4(&bad_ihl).is_none());
        let mut v6 = [0u8; 20];
        v6[0] = 0x65;
        assert!(parse_ipv4(&v6).is_none());
        let mut long_ihl = [0u8; 20];
        long_ihl[0] = 0x4f;
        assert!(parse_ipv4(&long_ihl).is_none());
    }

    #[test]
    fn payload_accessor_is_bounds_safe() {
        let r = Received {
            src: Ipv4Addr::LOCALHOST.into(),
            dst: GROUP_V4.into(),
            ttl: 255,
            ifindex: 1,
            payload: 4..100,
            truncated: false,
        };
        assert!(r.payload(&[0; 10]).is_empty());
        let r = Received { payload: 2..4, ..r };
        assert_eq!(r.payload(&[1, 2, 3, 4, 5]), &[3, 4]);
    }
}
