//! rtnetlink: interface lookup, VIP add/remove, link watch and the self FDB entry for the
//! virtual MAC.
//!
//! No protocol logic lives here: the driver decides *when* to bind a VIP, this module only
//! knows *how*. Every request runs on the tokio runtime that created the [`Netlink`] handle,
//! and in the network namespace of the thread that called [`Netlink::new`] (netlink sockets
//! are bound to a namespace when they are created).

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::channel::mpsc::UnboundedReceiver;
use futures::{Stream, StreamExt, TryStreamExt};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::neighbour::{
    NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::sys::SocketAddr;
use tokio::task::JoinHandle;

use crate::proto::Family;

/// Linux limits interface names and IPv4 address labels to IFNAMSIZ - 1 bytes.
const IFNAMSIZ_MAX: usize = 15;

/// Errors of the netlink layer, each naming the interface or address involved.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("opening a netlink socket")]
    Connect(#[source] std::io::Error),
    #[error("Netlink::new must be called inside a tokio runtime")]
    NoRuntime,
    #[error("interface {name:?} not found")]
    LinkNotFound { name: String },
    #[error("interface index {index} not found")]
    LinkIndexNotFound { index: u32 },
    #[error("querying interface {what}")]
    Link {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("interface {what} has no usable link-layer address")]
    NoMac { what: String },
    #[error("adding {vip} to ifindex {ifindex}")]
    AddAddress {
        vip: String,
        ifindex: u32,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("deleting {vip} from ifindex {ifindex}")]
    DelAddress {
        vip: String,
        ifindex: u32,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("listing the addresses of ifindex {ifindex}")]
    ListAddresses {
        ifindex: u32,
        #[source]
        source: rtnetlink::Error,
    },
    #[error(
        "ifindex {ifindex} has no usable {family:?} source address \
         (IPv4: a primary address that is not a VIP; IPv6: a non-tentative fe80:: address)"
    )]
    NoPrimaryAddress { ifindex: u32, family: Family },
    #[error("invalid VIP {vip}: {reason}")]
    InvalidVip { vip: String, reason: &'static str },
    #[error("{op} fdb entry {mac} self on ifindex {ifindex}")]
    Fdb {
        op: &'static str,
        mac: MacDisplay,
        ifindex: u32,
        #[source]
        source: rtnetlink::Error,
    },
}

pub use crate::proto::MacDisplay;

/// What the driver needs to know about an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// Administratively up and operationally running (`IFF_UP && IFF_RUNNING`, as keepalived
    /// tests it): a veth whose peer is down is not up.
    pub up: bool,
    pub mtu: u32,
    /// The link kind (`veth`, `bridge`, ...); `None` for a physical NIC.
    pub kind: Option<String>,
}

pub use crate::proto::VipSpec;

impl VipSpec {
    fn validate(&self) -> Result<(), NetlinkError> {
        let reason = match self.addr {
            IpAddr::V4(_) if self.prefix_len > 32 => Some("prefix length above 32"),
            IpAddr::V6(_) if self.prefix_len > 128 => Some("prefix length above 128"),
            IpAddr::V6(_) if self.label.is_some() => Some("labels exist for IPv4 only"),
            IpAddr::V6(_) if self.broadcast.is_some() => Some("broadcast is IPv4 only"),
            _ => None,
        }
        .or_else(|| match &self.label {
            Some(l) if l.is_empty() || l.len() > IFNAMSIZ_MAX || l.contains('\0') => {
                Some("label must be 1 to 15 bytes without NUL")
            }
            _ => None,
        });
        match reason {
            Some(reason) => Err(NetlinkError::InvalidVip {
                vip: self.to_string(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// The RTM_NEWADDR / RTM_DELADDR body. Built by hand rather than with rtnetlink's builder,
    /// which would add an IFA_BROADCAST keepalived does not send.
    fn message(&self, ifindex: u32, add: bool) -> AddressMessage {
        let mut msg = AddressMessage::default();
        msg.header.family = match self.addr {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.prefix_len = self.prefix_len;
        msg.header.index = ifindex;
        if let Some(scope) = self.scope {
            msg.header.scope = AddressScope::from(scope);
        }
        msg.attributes.push(AddressAttribute::Local(self.addr));
        msg.attributes.push(AddressAttribute::Address(self.addr));
        if add {
            if self.nodad {
                // Both the 8-bit header field and IFA_FLAGS, like iproute2: the kernel reads
                // IFA_FLAGS when present and the header otherwise.
                msg.header.flags = AddressHeaderFlags::Nodad;
                msg.attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
            if let Some(brd) = self.broadcast {
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
            if let Some(label) = &self.label {
                msg.attributes.push(AddressAttribute::Label(label.clone()));
            }
        }
        msg
    }
}

impl fmt::Display for VipSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix_len)?;
        if let Some(l) = &self.label {
            write!(f, " label {l}")?;
        }
        Ok(())
    }
}

/// One address currently on an interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub label: Option<String>,
    /// IFA_F_SECONDARY (IPv4): not the primary address of its subnet.
    pub secondary: bool,
    /// IFA_F_TENTATIVE or IFA_F_DADFAILED (IPv6): cannot be used as a source yet.
    pub tentative: bool,
}

/// A change of a link's usable state, from the RTMGRP_LINK multicast group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkEvent {
    /// The interface; 0 when `lost`.
    pub index: u32,
    /// Same meaning as [`LinkInfo::up`]; always `false` when `deleted` or `lost`.
    pub up: bool,
    /// RTM_DELLINK: the interface is gone.
    pub deleted: bool,
    /// The kernel dropped notifications (netlink overrun, ENOBUFS): any link may have changed
    /// unseen, so re-read the state of every tracked interface.
    pub lost: bool,
}

/// A handle on one rtnetlink connection. Cheap requests, no caching: the kernel is the source
/// of truth.
pub struct Netlink {
    handle: rtnetlink::Handle,
    conn: JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

fn is_errno(err: &rtnetlink::Error, errno: i32) -> bool {
    matches!(err, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

fn link_up(flags: LinkFlags) -> bool {
    flags.contains(LinkFlags::Up | LinkFlags::Running)
}

fn link_info(msg: LinkMessage, what: &str) -> Result<LinkInfo, NetlinkError> {
    let mut name = String::new();
    let mut mac = None;
    let mut mtu = 0;
    let mut kind = None;
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => name = n,
            LinkAttribute::LinkInfo(infos) => {
                kind = infos.iter().find_map(|i| match i {
                    netlink_packet_route::link::LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                });
            }
            LinkAttribute::Address(a) => mac = <[u8; 6]>::try_from(a.as_slice()).ok(),
            LinkAttribute::Mtu(m) => mtu = m,
            _ => {}
        }
    }
    let mac = mac.ok_or_else(|| NetlinkError::NoMac {
        what: what.to_owned(),
    })?;
    Ok(LinkInfo {
        index: msg.header.index,
        name,
        mac,
        up: link_up(msg.header.flags),
        mtu,
        kind,
    })
}

fn if_address(msg: &AddressMessage) -> Option<IfAddress> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    // IFA_FLAGS carries all 32 bits; the header only the low 8.
    let mut flags = u32::from(msg.header.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
    // links, and the only one IPv6 sends.
    let addr = local.or(address)?;
    Some(IfAddress {
        addr,
        prefix_len: msg.header.prefix_len,
        label,
        secondary: flags & AddressFlags::Secondary.bits() != 0,
        tentative: flags & (AddressFlags::Tentative | AddressFlags::Dadfailed).bits() != 0,
    })
}

fn is_link_local_v6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

impl Netlink {
    /// Opens a netlink connection in the calling thread's network namespace and spawns its
    /// driver task on the current tokio runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let (conn, handle, _unsolicited) =
            rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
        let conn = rt.spawn(conn);
        Ok(Self { handle, conn })
    }

    async fn get_link(
        &self,
        req: rtnetlink::LinkGetRequest,
        what: String,
        not_found: NetlinkError,
    ) -> Result<LinkInfo, NetlinkError> {
        let mut links = req.execute();
        match links.try_next().await {
            Ok(Some(msg)) => link_info(msg, &what),
            Ok(None) => Err(not_found),
            Err(e) if is_errno(&e, libc::ENODEV) => Err(not_found),
            Err(source) => Err(NetlinkError::Link { what, source }),
        }
    }

    /// Looks an interface up by name.
    pub async fn link_by_name(&self, name: &str) -> Result<LinkInfo, NetlinkError> {
        let req = self.handle.link().get().match_name(name);
        let not_found = NetlinkError::LinkNotFound {
            name: name.to_owned(),
        };
        self.get_link(req, format!("{name:?}"), not_found).await
    }

    /// Looks an interface up by index.
    pub async fn link_by_index(&self, index: u32) -> Result<LinkInfo, NetlinkError> {
        let req = self.handle.link().get().match_index(index);
        let not_found = NetlinkError::LinkIndexNotFound { index };
        self.get_link(req, format!("index {index}"), not_found)
            .await
    }

    /// Adds a VIP. Adding an address that is already there is not an error (EEXIST is
    /// swallowed), so a restart or a repeated transition to master is harmless.
    pub async fn add_address(&self, ifindex: u32, vip: &VipSpec) -> Result<(), NetlinkError> {
        vip.validate()?;
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix_len);
        *req.message_mut() = vip.message(ifindex, true);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(source) => Err(NetlinkError::AddAddress {
                vip: vip.to_string(),
                ifindex,
                source,
            }),
        }
    }

    /// Removes a VIP. Removing an address that is not there is not an error
    /// (EADDRNOTAVAIL is swallowed), nor is an interface that has just vanished (ENODEV).
    pub async fn del_address(&self, ifindex: u32, vip: &VipSpec) -> Result<(), NetlinkError> {
        vip.validate()?;
        let req = self.handle.address().del(vip.message(ifindex, false));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) || is_errno(&e, libc::ENODEV) => Ok(()),
            Err(source) => Err(NetlinkError::DelAddress {
                vip: vip.to_string(),
                ifindex,
                source,
            }),
        }
    }

    /// All addresses of one interface, both families, in kernel order (primary first).
    pub async fn addresses(&self, ifindex: u32) -> Result<Vec<IfAddress>, NetlinkError> {
        let msgs: Vec<AddressMessage> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(ifindex)
            .execute()
            .try_collect()
            .await
            .map_err(|source| NetlinkError::ListAddresses { ifindex, source })?;
        Ok(msgs.iter().filter_map(if_address).collect())
    }

    /// The source address for adverts on an interface.
    ///
    /// IPv4: the first primary IPv4 address that is not in `exclude` (the VIPs), as keepalived
    /// picks it. IPv6: the first non-tentative link-local address, since RFC 9568 §5.1.2.1
    /// requires adverts to come from the link-local address. An interface whose link-local
    /// address is still in DAD returns `NoPrimaryAddress`; retry later.
    pub async fn primary_address(
        &self,
        ifindex: u32,
        family: Family,
        exclude: &[IpAddr],
    ) -> Result<IpAddr, NetlinkError> {
        let addrs = self.addresses(ifindex).await?;
        addrs
            .into_iter()
            .find(|a| match (family, a.addr) {
                (Family::V4, IpAddr::V4(_)) => !a.secondary && !exclude.contains(&a.addr),
                (Family::V6, IpAddr::V6(v6)) => is_link_local_v6(&v6) && !a.tentative,
                _ => false,
            })
            .map(|a| a.addr)
            .ok_or(NetlinkError::NoPrimaryAddress { ifindex, family })
    }

    fn fdb_message(ifindex: u32, mac: [u8; 6]) -> NeighbourMessage {
        let mut msg = NeighbourMessage::default();
        msg.header.family = AddressFamily::Bridge;
        msg.header.ifindex = ifindex;
        msg.header.state = NeighbourState::Permanent;
        msg.header.flags = NeighbourFlags::Own;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        msg
    }

    /// `bridge fdb add MAC dev IF self permanent`: adds `mac` to the device's own unicast
    /// filter, so frames sent to the VRRP virtual MAC are received without a macvlan. On a
    /// device without unicast filtering the kernel turns on promiscuous mode. Idempotent.
    pub async fn fdb_add_self(&self, ifindex: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut req = self.handle.neighbours().add_bridge(ifindex, &mac);
        *req.message_mut() = Self::fdb_message(ifindex, mac);
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            Err(source) => Err(NetlinkError::Fdb {
                op: "adding",
                mac: MacDisplay(mac),
                ifindex,
                source,
            }),
        }
    }

    /// `bridge fdb del MAC dev IF self`. Deleting a missing entry is not an error.
    pub async fn fdb_del_self(&self, ifindex: u32, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let req = self
            .handle
            .neighbours()
            .del(Self::fdb_message(ifindex, mac));
        match req.execute().await {
            Ok(()) => Ok(()),
            Err(e)
                if is_errno(&e, libc::ENOENT)
                    || is_errno(&e, libc::EADDRNOTAVAIL)
                    || is_errno(&e, libc::ENODEV) =>
            {
                Ok(())
            }
            Err(source) => Err(NetlinkError::Fdb {
                op: "deleting",
                mac: MacDisplay(mac),
                ifindex,
                source,
            }),
        }
    }

    /// Subscribes to link changes (RTMGRP_LINK) on a second netlink connection.
    ///
    /// The stream yields an event the first time it sees an interface and then only when its
    /// usable state changes (the kernel sends RTM_NEWLINK for many unrelated reasons).
    /// Subscribe before reading the initial state with [`Netlink::link_by_name`] so that no
    /// change falls in between. An event with `lost` set means notifications were dropped;
    /// the stream ends if the socket fails. Dropping the stream closes the connection.
    pub fn link_events(&self) -> Result<LinkEvents, NetlinkError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let (conn, _handle, rx) =
            rtnetlink::new_multicast_connection(&[rtnetlink::MulticastGroup::Link])
                .map_err(NetlinkError::Connect)?;
        Ok(LinkEvents {
            rx,
            conn: rt.spawn(conn),
            last: HashMap::new(),
        })
    }
}

impl Netlink {
    /// Subscribes to address removals (RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR) on a
    /// connection of its own: a VIP taken away behind the agent's back (`ip addr flush`, a
    /// second agent's start-up) is noticed and restored.
    pub fn address_events(&self) -> Result<AddressEvents, NetlinkError> {
        let rt = tokio::runtime::Handle::try_current().map_err(|_| NetlinkError::NoRuntime)?;
        let (conn, _handle, rx) = rtnetlink::new_multicast_connection(&[
            rtnetlink::MulticastGroup::Ipv4Ifaddr,
            rtnetlink::MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(NetlinkError::Connect)?;
        Ok(AddressEvents {
            rx,
            conn: rt.spawn(conn),
        })
    }
}

/// An address removed from an interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressRemoved {
    pub ifindex: u32,
    pub addr: IpAddr,
}

/// The stream returned by [`Netlink::address_events`].
pub struct AddressEvents {
    rx: Unsolicited,
    conn: JoinHandle<()>,
}

impl Drop for AddressEvents {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Stream for AddressEvents {
    type Item = AddressRemoved;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<AddressRemoved>> {
        loop {
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) =
                        msg.payload
                        && let Some(a) = if_address(&m)
                    {
                        return Poll::Ready(Some(AddressRemoved {
                            ifindex: m.header.index,
                            addr: a.addr,
                        }));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

type Unsolicited = UnboundedReceiver<(NetlinkMessage<RouteNetlinkMessage>, SocketAddr)>;

/// The stream returned by [`Netlink::link_events`].
pub struct LinkEvents {
    rx: Unsolicited,
    conn: JoinHandle<()>,
    last: HashMap<u32, bool>,
}

impl Drop for LinkEvents {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl LinkEvents {
    fn event(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) -> Option<LinkEvent> {
        match msg.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(link)) => {
                let index = link.header.index;
                let up = link_up(link.header.flags);
                let changed = self.last.insert(index, up) != Some(up);
                changed.then_some(LinkEvent {
                    index,
                    up,
                    deleted: false,
                    lost: false,
                })
            }
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelLink(link)) => {
                let index = link.header.index;
                self.last.remove(&index);
                Some(LinkEvent {
                    index,
                    up: false,
                    deleted: true,
                    lost: false,
                })
            }
            NetlinkPayload::Overrun(_) => {
                // What we remember may be stale now: report the next message of every link.
                self.last.clear();
                Some(LinkEvent {
                    index: 0,
                    up: false,
                    deleted: false,
                    lost: true,
                })
            }
            _ => None,
        }
    }
}

impl Stream for LinkEvents {
    type Item = LinkEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<LinkEvent>> {
        loop {
            match self.rx.poll_next_unpin(cx) {
                Poll::Ready(Some((msg, _))) => {
                    if let Some(ev) = self.event(msg) {
                        return Poll::Ready(Some(ev));
                    }
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vip_validation() {
        let mut v = VipSpec::new("192.0.2.10".parse().unwrap(), 24);
        assert!(!v.nodad);
        v.label = Some("eth0:vip".into());
        assert!(v.validate().is_ok());
        v.label = Some("a-label-too-long-for-linux".into());
        assert!(v.validate().is_err());

        let mut v6 = VipSpec::new("2001:db8::10".parse().unwrap(), 64);
        assert!(v6.nodad, "keepalived sets NODAD on every IPv6 VIP");
        assert!(v6.validate().is_ok());
        v6.label = Some("eth0:6".into());
        let err = v6.validate().unwrap_err().to_string();
        assert!(err.contains("2001:db8::10/64"), "{err}");
        let v6 = VipSpec::new("2001:db8::10".parse().unwrap(), 129);
        assert!(v6.validate().is_err());
    }

    #[test]
    fn add_message_has_no_implicit_broadcast() {
        let v = VipSpec::new("192.0.2.10".parse().unwrap(), 24);
        let msg = v.message(3, true);
        assert!(
            !msg.attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Broadcast(_)))
        );
        let v6 = VipSpec::new("2001:db8::10".parse().unwrap(), 64);
        let msg = v6.message(3, true);
        assert!(msg.header.flags.contains(AddressHeaderFlags::Nodad));
        assert!(
            msg.attributes
                .contains(&AddressAttribute::Flags(AddressFlags::Nodad))
        );
    }

    #[test]
    fn link_local_detection() {
        assert!(is_link_local_v6(&"fe80::1".parse().unwrap()));
        assert!(is_link_local_v6(&"febf::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"fec0::1".parse().unwrap()));
        assert!(!is_link_local_v6(&"2001:db8::1".parse().unwrap()));
    }
}
