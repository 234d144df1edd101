//! What the driver holds open, by key: per interface its announcer and XDP program, per
//! (interface, source) its raw VRRP socket. Acquired when a configuration that needs them is
//! accepted, released when the last instance using them goes (reload included).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::resolve::Resolved;
use super::{DataPlaneChoice, Incoming, Rx};
use crate::io::announce::Announcer;
use crate::io::socket::AdvertSocket;
use crate::io::xdp::{self, DataPlane};
use crate::proto::Family;
use crate::proto::codec::{self, RxMeta};
use crate::proto::node::Node;

pub struct Iface {
    pub name: String,
    pub index: u32,
    pub announcer: Option<Arc<Announcer>>,
    pub dataplane: Option<DataPlane>,
    /// The driver's XDP TX error counter at the last look.
    pub tx_errors: Option<u64>,
    /// Adverts for VRIDs we do not run, per (ipv6, vrid), as of the `unknown_vrid` counter
    /// value beside it: re-read (512 lookups) only when that counter moved.
    pub foreign: (u64, Vec<(bool, u8, u64)>),
    reader: Option<JoinHandle<()>>,
}

pub struct Sock {
    pub sock: Arc<AdvertSocket>,
    pub family: Family,
    reader: Option<JoinHandle<()>>,
}

impl Drop for Iface {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        if let Some(r) = self.reader.take() {
            r.abort();
        }
    }
}

/// What one [`Resources::acquire`] opened, to undo it if the configuration is then refused.
#[derive(Default)]
pub struct Acquired {
    ifaces: Vec<u32>,
    socks: Vec<(u32, IpAddr)>,
}

pub struct Resources {
    pub ifaces: BTreeMap<u32, Iface>,
    pub socks: BTreeMap<(u32, IpAddr), Sock>,
    choice: DataPlaneChoice,
    tx: mpsc::Sender<Incoming>,
}

impl Resources {
    pub fn new(choice: DataPlaneChoice, tx: mpsc::Sender<Incoming>) -> Self {
        Self {
            ifaces: BTreeMap::new(),
            socks: BTreeMap::new(),
            choice,
            tx,
        }
    }

    /// Opens what `r` needs and is not open yet, and records in `r.node` which interfaces
    /// have XDP. On error everything this call opened is closed again.
    pub fn acquire(&mut self, r: &mut Resolved) -> Result<Acquired> {
        let mut got = Acquired::default();
        if let Err(e) = self.acquire_into(r, &mut got) {
            self.rollback(got);
            return Err(e);
        }
        for i in &mut r.node.ifaces {
            i.xdp = self
                .ifaces
                .get(&i.index)
                .is_some_and(|f| f.dataplane.is_some());
        }
        Ok(got)
    }

    fn acquire_into(&mut self, r: &Resolved, got: &mut Acquired) -> Result<()> {
        for spec in &r.node.ifaces {
            if self.ifaces.contains_key(&spec.index) {
                continue;
            }
            let link = &r.links[&spec.index];
            let announcer = match Announcer::open(&spec.name, spec.index) {
                Ok(a) => Some(Arc::new(a)),
                Err(e) => {
                    warn!(iface = %spec.name, error = %e, "cannot send gratuitous ARP / NA");
                    None
                }
            };
            // veth's native XDP runs on an skb whose packet type was set before the program
            // ran, so re-addressing a virtual MAC frame there still leaves it "for another
            // host" (seen in the lab); generic XDP re-classifies a frame whose destination
            // changed.
            let generic_for_vmac = r.vmac_ifaces.contains(&spec.index)
                && link.kind.as_deref() == Some("veth")
                && self.choice == DataPlaneChoice::Auto;
            if generic_for_vmac {
                info!(iface = %spec.name, "use_vmac on a veth: generic XDP, so frames for the virtual MAC reach the stack");
            }
            let (dataplane, reader) = self.attach(&spec.name, spec.index, generic_for_vmac)?;
            let mut dataplane = dataplane;
            if let Some(dp) = dataplane.as_mut() {
                dp.set_iface_mac(spec.mac)
                    .with_context(|| format!("configuring XDP on {}", spec.name))?;
            }
            self.ifaces.insert(
                spec.index,
                Iface {
                    name: spec.name.clone(),
                    index: spec.index,
                    announcer,
                    tx_errors: dataplane.as_ref().and_then(|d| d.xdp_tx_errors()),
                    foreign: (0, Vec::new()),
                    dataplane,
                    reader,
                },
            );
            got.ifaces.push(spec.index);
        }
        for (&(ifindex, src), &(family, multicast)) in &r.sockets {
            if self.socks.contains_key(&(ifindex, src)) {
                continue;
            }
            // One receiving socket per (interface, family): a second one would see every
            // advert twice. Further sources only send.
            let first = !self
                .socks
                .iter()
                .any(|((i, _), s)| *i == ifindex && s.family == family);
            let name = &r.links[&ifindex].name;
            let s = AdvertSocket::open(name, ifindex, src, first && multicast)
                .with_context(|| format!("advert socket on {name} from {src}"))?;
            // Where XDP consumes the adverts the socket only sends: what the program passes on
            // (other VRIDs, for keepalived and tcpdump) must not wake us.
            let xdp = self
                .ifaces
                .get(&ifindex)
                .is_some_and(|i| i.dataplane.is_some());
            if xdp {
                s.ignore_input()
                    .with_context(|| format!("advert socket on {name}"))?;
            }
            let s = Arc::new(s);
            let reader = (first && !xdp).then(|| spawn_reader(s.clone(), self.tx.clone()));
            self.socks.insert(
                (ifindex, src),
                Sock {
                    sock: s,
                    family,
                    reader,
                },
            );
            got.socks.push((ifindex, src));
        }
        Ok(())
    }

    pub fn rollback(&mut self, got: Acquired) {
        for k in got.socks {
            self.socks.remove(&k);
        }
        for i in got.ifaces {
            self.ifaces.remove(&i);
        }
    }

    /// Closes what no instance of `node` uses any more: the program detaches with its
    /// interface, the socket closes with its reader.
    pub fn release_unused(&mut self, node: &Node) {
        let (ifaces, socks) = crate::proto::node::resources_in_use(node.specs());
        let gone: Vec<_> = self
            .socks
            .iter()
            .filter(|(k, s)| {
                // A reading socket stays while another of its interface and family is used.
                let keeps_reading = s.reader.is_some()
                    && socks
                        .iter()
                        .any(|(i, a)| *i == k.0 && crate::proto::node::family(*a) == s.family);
                !socks.contains(k) && !keeps_reading
            })
            .map(|(k, _)| *k)
            .collect();
        for k in gone {
            info!(ifindex = k.0, src = %k.1, "advert socket no longer used: closed");
            self.socks.remove(&k);
        }
        let gone: Vec<u32> = self
            .ifaces
            .keys()
            .filter(|i| !ifaces.contains(i))
            .copied()
            .collect();
        for i in gone {
            if let Some(f) = self.ifaces.remove(&i) {
                info!(iface = %f.name, "interface no longer used: XDP detached, announcer closed");
            }
        }
    }

    fn attach(
        &self,
        name: &str,
        ifindex: u32,
        force_generic: bool,
    ) -> Result<(Option<DataPlane>, Option<JoinHandle<()>>)> {
        let choice = if force_generic {
            DataPlaneChoice::Generic
        } else {
            self.choice
        };
        if choice == DataPlaneChoice::Off {
            return Ok((None, None));
        }
        let mut dp = match DataPlane::attach(name, choice == DataPlaneChoice::Generic) {
            Ok(dp) => dp,
            Err(e) if choice == DataPlaneChoice::Auto => {
                warn!(iface = %name, error = %short(&e), "XDP unavailable; receiving adverts on raw sockets only");
                return Ok((None, None));
            }
            Err(e) => return Err(e).with_context(|| format!("attaching XDP to {name}")),
        };
        if choice == DataPlaneChoice::Native && dp.mode() != xdp::AttachMode::Native {
            bail!("native XDP requested but {name} only supports generic mode");
        }
        // Valid adverts are consumed in XDP from now on: only news reaches us, through the
        // events ring; unchanged ones just refresh the kernel timestamp.
        let events = dp.take_events()?;
        dp.set_mode(true)?;
        let reader = spawn_dataplane_reader(ifindex, events, self.tx.clone());
        info!(iface = %name, mode = %dp.mode(), "data plane: XDP validates, timestamps and absorbs adverts; answers ARP/ND for owned VIPs");
        Ok((Some(dp), Some(reader)))
    }

    pub fn dataplane(&mut self, ifindex: u32) -> Option<&mut DataPlane> {
        self.ifaces.get_mut(&ifindex)?.dataplane.as_mut()
    }
}

/// The first line of an error: a verifier log does not belong in a one-line warning.
fn short(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    match s.split_once('\n') {
        Some((first, _)) => format!("{first} (...)"),
        None => s,
    }
}

/// Forwards the XDP program's events (adverts with news, VIP conflicts, silent masters).
fn spawn_dataplane_reader(
    ifindex: u32,
    mut events: xdp::EventReader,
    tx: mpsc::Sender<Incoming>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let ev = match events.next().await {
                Ok(ev) => ev,
                Err(e) => {
                    warn!(ifindex, error = %e, "XDP event ring read error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let inc = match ev {
                xdp::DataPlaneEvent::Advert { packet, .. } => match codec::decode_ip(&packet) {
                    Ok((meta, d)) => Incoming::Advert(Rx {
                        ifindex,
                        family: crate::proto::node::family(meta.src),
                        src: meta.src,
                        result: Ok((d.advert, d.checksum)),
                        ttl: meta.unchecked_ttl(),
                    }),
                    Err(e) => {
                        debug!(ifindex, error = %e, "undecodable advert from the data plane");
                        continue;
                    }
                },
                // The ring is per interface: this one's, whatever the record says.
                xdp::DataPlaneEvent::MasterSilent { ipv6, vrid, .. } => {
                    Incoming::MasterSilent((ifindex, ipv6, vrid))
                }
                xdp::DataPlaneEvent::ArpConflict { vip, mac, .. } => Incoming::Conflict {
                    ifindex,
                    vip: IpAddr::V4(vip),
                    mac,
                },
                xdp::DataPlaneEvent::NaConflict { vip, mac, .. } => Incoming::Conflict {
                    ifindex,
                    vip: IpAddr::V6(vip),
                    mac,
                },
            };
            if tx.send(inc).await.is_err() {
                return;
            }
        }
    })
}

/// Reads adverts from one socket forever, decoding them off the main task.
fn spawn_reader(sock: Arc<AdvertSocket>, tx: mpsc::Sender<Incoming>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        loop {
            let r = match sock.recv(&mut buf).await {
                Ok(r) => r,
                Err(e) => {
                    warn!(iface = sock.ifname(), error = %e, "advert socket receive error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let meta = RxMeta {
                src: r.src,
                dst: r.dst,
                ttl: r.ttl,
            };
            let result = codec::decode(&meta, r.payload(&buf)).map(|d| (d.advert, d.checksum));
            let rx = Rx {
                ifindex: sock.ifindex(),
                family: sock.family(),
                src: r.src,
                result,
                ttl: meta.unchecked_ttl(),
            };
            if tx.send(Incoming::Advert(rx)).await.is_err() {
                return;
            }
        }
    })
}
