//! The driver: owns the clock, the sockets, netlink and the data plane, and feeds the sans-IO
//! virtual routers. One task, one `select!` over received adverts, link events, signals and
//! the earliest timer deadline of all instances.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};
use vrrp_common::maps::{
    AdvertState, VRID_F_AUTH_PASS, VRID_F_CONFIGURED, VRID_F_UNICAST_PEERS, VRID_F_V2,
    VRID_F_VMAC_OWNED, VridConfig,
};

use crate::config::{self, Config};
use crate::control::{self, ControlCommand, Snapshot};
use crate::io::announce::{self, Announcer};
use crate::io::guardian::{self, Guardian};
use crate::io::kfilter;
use crate::io::netlink::{Netlink, VipSpec};
use crate::io::socket::AdvertSocket;
use crate::io::xdp::{self, DataPlane};
use crate::notify::{Hook, Notifier, NotifierOptions, NotifyEvent, NotifyKind, NotifyState};
use crate::proto::codec::{self, ChecksumForm, RxMeta};
use crate::proto::sync::SyncGroups;
use crate::proto::vr::{self, AnnounceKind, Input, Output, Reason, State, VirtualRouter, VrConfig};
use crate::proto::{Advert, Auth, Family, Priority, Version};
use crate::track::{TrackEvent, Tracker, TrackerOptions};
use crate::wake;

/// How the daemon receives adverts and whether XDP is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPlaneChoice {
    /// Native XDP, falling back to generic, falling back to raw sockets only (with a warning).
    Auto,
    Native,
    Generic,
    /// No XDP at all: raw sockets only (`--no-xdp`).
    Off,
}

pub struct Options {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub dataplane: DataPlaneChoice,
    /// The status/control unix socket (`vrrp-agent status` talks to it).
    pub control_socket: PathBuf,
    /// Prometheus endpoint, if any.
    pub metrics: Option<std::net::SocketAddr>,
    /// Where SIGUSR1 writes the JSON status (keepalived writes /tmp/keepalived.data).
    pub dump_path: PathBuf,
    /// Start the guardian process that sends priority 0 if the agent is killed.
    pub guardian: bool,
    /// Real-time scheduling for the election (and the guardian).
    pub realtime: crate::io::sched::RealTime,
}

/// The sender of a data plane advert record.
fn addr_of(st: &AdvertState, ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(std::net::Ipv6Addr::from(st.src))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::new(
            st.src[0], st.src[1], st.src[2], st.src[3],
        ))
    }
}

/// The driver's clock. The only place the agent reads time (clippy forbids it elsewhere).
#[expect(clippy::disallowed_methods, reason = "the driver owns the clock")]
fn now() -> Instant {
    Instant::now()
}

/// A received advert or decode error, from a socket reader task.
struct Rx {
    ifindex: u32,
    family: Family,
    src: IpAddr,
    result: Result<Advert, codec::DecodeError>,
}

/// What the socket readers and the XDP event readers hand to the main task.
enum Incoming {
    Advert(Rx),
    /// Another MAC claims one of our VIPs (ARP reply / gratuitous ARP / NA): a split-brain signal.
    Conflict {
        ifindex: u32,
        vip: IpAddr,
        mac: [u8; 6],
    },
    /// The kernel timer watching a backup's master ran out (`xdp::DataPlaneEvent::MasterSilent`).
    MasterSilent {
        ifindex: u32,
        ipv6: bool,
        vrid: u8,
    },
}

/// One raw VRRP socket per (interface, family, source address).
struct Sock {
    sock: Arc<AdvertSocket>,
    ifindex: u32,
    family: Family,
}

struct Iface {
    name: String,
    index: u32,
    mac: [u8; 6],
    up: bool,
    announcer: Option<Arc<Announcer>>,
    dataplane: Option<DataPlane>,
    /// XDP answers ARP/ND for owned VIPs; false once XDP_TX was seen failing.
    xdp_answers: bool,
    /// The driver's XDP TX error counter at the last look.
    tx_errors: Option<u64>,
    /// Adverts for VRIDs we do not run, per (ipv6, vrid), as of the `unknown_vrid` counter
    /// value beside it: re-read (512 lookups) only when that counter moved.
    foreign: (u64, Vec<(bool, u8, u64)>),
}

struct VipBinding {
    ifindex: u32,
    spec: VipSpec,
}

/// A redundant heartbeat path of an instance (`vrrp_xdp_heartbeat`): every advert also goes
/// unicast to `peers` over `iface`, and theirs there are liveness only (proto::vr
/// `heartbeat_rx`). No XDP on that interface: its raw socket reads them.
struct HeartbeatPath {
    iface: String,
    ifindex: u32,
    /// Index into `Daemon::socks`.
    sock: usize,
    /// Our address on the path: the adverts' source, and our side of the tie-break.
    src: IpAddr,
    peers: Vec<IpAddr>,
    heard: BTreeMap<IpAddr, HeardPeer>,
    adverts_sent: u64,
    send_errors: u64,
    decode_errors: u64,
    /// Sends are failing (warned once, until one succeeds again).
    failing: bool,
}

impl HeartbeatPath {
    /// What a reload compares.
    fn key(&self) -> (u32, usize, IpAddr, &[IpAddr]) {
        (self.ifindex, self.sock, self.src, &self.peers)
    }
}

/// A heartbeat peer as last heard.
#[derive(Clone, Copy, Debug)]
struct HeardPeer {
    last: Instant,
    priority: Priority,
    adverts: u64,
}

struct Instance {
    cfg: config::Instance,
    /// The configuration given to the state machine, before its own fix-ups (for reload).
    vr_cfg: VrConfig,
    vr: VirtualRouter,
    iface: usize,
    sock: usize,
    vips: Vec<VipBinding>,
    /// Where adverts go: the multicast group or the unicast peers.
    destinations: Vec<IpAddr>,
    /// The last encoded adverts, by (priority, source): a master re-sends the same bytes every
    /// interval (hundreds of instances: no encoding per advert). Cleared on reload.
    advert_cache: Option<AdvertCache>,
    /// `vrrp_xdp_heartbeat` paths.
    heartbeats: Vec<HeartbeatPath>,
    form: ChecksumForm,
    installed: bool,
    /// Started (RFC Startup event given). An instance tracking a weight-0 check waits in
    /// Initialize for the check's first result, as keepalived does.
    started: bool,
    /// The last tracking result applied.
    tracked: Option<crate::track::Tracked>,
    /// The newest kernel timestamp of an absorbed advert already given to the router.
    kernel_seen_ns: u64,
    /// The master-silence timer interval written for the data plane (ns, 0 = none), and
    /// CLOCK_MONOTONIC ns right after the write (see `wake::Kernel`).
    watch_ns: u64,
    watch_at_ns: u64,
    /// The kernel timer the driver may sleep on instead of the router's deadline.
    cover: Option<wake::Cover>,
    /// Times the driver woke up on a timer for this instance (its deadline or the backstop).
    timer_wakeups: u64,
    /// Master-silent reports from the data plane.
    silent_reports: u64,
    /// VIPs currently written to the XDP responder.
    xdp_owned: bool,
    /// keepalived `use_vmac`, when it is in effect (it needs the XDP data plane): the virtual
    /// MAC our ARP/NA answers, gratuitous ARPs and multicast adverts use while MASTER.
    vmac: Option<[u8; 6]>,
    /// Claims on our VIPs from other MACs seen by the data plane.
    conflicts: u64,
    /// The split-brain episode in progress, if any.
    split_brain: Option<SplitBrain>,
    split_brain_episodes: u64,
    peers: BTreeMap<IpAddr, Peer>,
    decode_errors: BTreeMap<&'static str, u64>,
    transitions: BTreeMap<String, u64>,
}

/// Evidence, while MASTER, that another node acts as master too.
#[derive(Clone, Debug)]
struct SplitBrain {
    last: Instant,
}

/// (priority, source address, each destination with its encoded VRRP message).
type AdvertCache = (Priority, IpAddr, Vec<(IpAddr, Vec<u8>)>);

impl Instance {
    /// When the driver must wake up for this instance (see `wake::wake_at`).
    fn wake_at(&self) -> Option<Instant> {
        wake::wake_at(self.vr.poll_timeout(), self.cover)
    }
}

/// A router heard on the VRID.
#[derive(Clone, Debug)]
pub struct Peer {
    pub priority: Priority,
    pub interval: crate::proto::Centisecs,
    pub last_seen: Instant,
}

pub struct Daemon {
    netlink: Netlink,
    ifaces: Vec<Iface>,
    socks: Vec<Sock>,
    instances: Vec<Instance>,
    garp_interval: Duration,
    gna_interval: Duration,
    rx_tx: mpsc::Sender<Incoming>,
    rx_rx: mpsc::Receiver<Incoming>,
    unknown_vrid: u64,
    dataplane: DataPlaneChoice,
    config_path: Option<PathBuf>,
    router_id: Option<String>,
    control_socket: PathBuf,
    metrics: Option<std::net::SocketAddr>,
    dump_path: PathBuf,
    started_unix: f64,
    snapshot: watch::Sender<Snapshot>,
    tracker: Tracker,
    track_rx: mpsc::Receiver<TrackEvent>,
    /// What the running tracker was built from (a reload keeps it when this is unchanged).
    track_key: TrackKey,
    /// keepalived's vrrp_sync_group: instances that move together.
    sync: SyncGroups,
    /// Each group's common state, for the group notify scripts.
    group_state: BTreeMap<String, State>,
    notifier: Option<Notifier>,
    /// Sends priority 0 for us if we die while MASTER ([`guardian`]).
    guardian: Option<Guardian>,
    want_guardian: bool,
    realtime: crate::io::sched::RealTime,
    /// What the election thread runs as (status), e.g. `SCHED_RR 10`.
    scheduling: String,
    /// The VIPs the kernel is kept from answering for ([`kfilter`]); `None`: not installed.
    kfilter: Option<Vec<IpAddr>>,
}

/// The parts of a configuration the tracker depends on.
type TrackKey = (
    Vec<config::VrrpScript>,
    Vec<config::TrackFile>,
    Vec<config::TrackProcess>,
    Vec<crate::track::BuiltinCheck>,
    Vec<(String, Priority, Vec<Vec<config::TrackRef>>)>,
);

fn track_key(cfg: &Config) -> TrackKey {
    // Spans are left out: moving a block in the file changes nothing.
    let mut scripts = cfg.scripts.clone();
    for s in &mut scripts {
        s.span = config::Span::default();
        s.command.span = config::Span::default();
    }
    let mut files = cfg.track_files.clone();
    for f in &mut files {
        f.span = config::Span::default();
    }
    let mut procs = cfg.track_processes.clone();
    for p in &mut procs {
        p.span = config::Span::default();
    }
    let refs = |v: &[config::TrackRef]| {
        v.iter()
            .map(|r| config::TrackRef {
                span: config::Span::default(),
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    let insts = cfg
        .instances
        .iter()
        .map(|i| {
            (
                i.name.clone(),
                i.priority,
                vec![
                    refs(&i.track_scripts),
                    refs(&i.track_files),
                    refs(&i.track_processes),
                    refs(&i.track_interfaces),
                ],
            )
        })
        .collect();
    (scripts, files, procs, cfg.checks.clone(), insts)
}

fn sync_groups(cfg: &Config) -> SyncGroups {
    let g = SyncGroups::new(cfg.sync_groups.iter().map(|g| {
        (
            g.name.clone(),
            g.instances
                .iter()
                .map(|(n, _)| n.clone())
                .collect::<Vec<_>>(),
        )
    }));
    for w in g.warnings() {
        warn!("vrrp_sync_group: {w:?}");
    }
    g
}

fn spawn_tracker(cfg: &Config) -> (Tracker, mpsc::Receiver<TrackEvent>) {
    Tracker::spawn_with(
        &config::TrackSpec::from_config(cfg),
        TrackerOptions::default(),
    )
}

fn notifier(cfg: &Config) -> Result<Notifier> {
    Notifier::new(
        &config::NotifySpec::from_config(cfg),
        NotifierOptions {
            fifo: cfg.global.notify_fifo.clone(),
            json_fifo: cfg.global.notify_json.clone(),
            ..NotifierOptions::default()
        },
    )
    .context("notify scripts / FIFO")
}

impl Daemon {
    /// Resolves interfaces and addresses, opens sockets, attaches XDP and builds the routers.
    /// Nothing is bound or sent yet.
    pub async fn new(opts: Options) -> Result<Self> {
        let netlink = Netlink::new().context("opening rtnetlink")?;
        let (rx_tx, rx_rx) = mpsc::channel(1024);
        let (tracker, track_rx) = spawn_tracker(&opts.config);
        let track_key = track_key(&opts.config);
        let notifier = notifier(&opts.config)?;
        let mut daemon = Self {
            tracker,
            track_rx,
            track_key,
            sync: sync_groups(&opts.config),
            group_state: BTreeMap::new(),
            notifier: Some(notifier),
            netlink,
            ifaces: Vec::new(),
            socks: Vec::new(),
            instances: Vec::new(),
            garp_interval: opts.config.global.garp_interval,
            gna_interval: opts.config.global.gna_interval,
            rx_tx,
            rx_rx,
            unknown_vrid: 0,
            dataplane: opts.dataplane,
            config_path: opts.config_path,
            router_id: opts.config.global.router_id.clone(),
            control_socket: opts.control_socket,
            metrics: opts.metrics.or(opts.config.global.xdp.metrics),
            dump_path: opts.dump_path,
            started_unix: unix_now(),
            snapshot: watch::channel(Snapshot::default()).0,
            guardian: None,
            want_guardian: opts.guardian,
            realtime: opts.realtime,
            scheduling: String::new(),
            kfilter: None,
        };
        if opts.dataplane == DataPlaneChoice::Off {
            info!("data plane: raw sockets only (--no-xdp)");
        }
        let cfg = opts.config;
        for inst in &cfg.instances {
            let built = daemon.build_instance(&cfg, inst).await?;
            daemon.instances.push(built);
        }
        daemon.sync_vrids()?;
        Ok(daemon)
    }

    /// The interface an instance runs on, opened (announcer, XDP) on first use.
    async fn iface(
        &mut self,
        name: &str,
        span: &config::Span,
        instance: &str,
        wants_vmac: bool,
    ) -> Result<usize> {
        if let Some(i) = self.ifaces.iter().position(|i| i.name == name) {
            return Ok(i);
        }
        let link = self
            .netlink
            .link_by_name(name)
            .await
            .map_err(|e| anyhow!("{span}: instance {instance}: {e}"))?;
        let announcer = match Announcer::open(name, link.index) {
            Ok(a) => Some(Arc::new(a)),
            Err(e) => {
                warn!(iface = %name, error = %e, "cannot send gratuitous ARP / NA");
                None
            }
        };
        // veth's native XDP runs on an skb whose packet type was set before the program ran,
        // so re-addressing a virtual MAC frame there still leaves it "for another host" (seen
        // in the lab); generic XDP re-classifies a frame whose destination changed.
        let generic_for_vmac = wants_vmac
            && link.kind.as_deref() == Some("veth")
            && self.dataplane == DataPlaneChoice::Auto;
        if generic_for_vmac {
            info!(iface = %name, "use_vmac on a veth: generic XDP, so frames for the virtual MAC reach the stack");
        }
        let mut dataplane = self.attach_dataplane(name, link.index, generic_for_vmac)?;
        if let Some(dp) = dataplane.as_mut() {
            dp.set_iface_mac(link.mac)
                .with_context(|| format!("configuring XDP on {name}"))?;
        }
        self.ifaces.push(Iface {
            name: name.to_string(),
            index: link.index,
            mac: link.mac,
            up: link.up,
            announcer,
            tx_errors: dataplane.as_ref().and_then(|d| d.xdp_tx_errors()),
            foreign: (0, Vec::new()),
            xdp_answers: dataplane.is_some(),
            dataplane,
        });
        Ok(self.ifaces.len() - 1)
    }

    fn attach_dataplane(
        &self,
        name: &str,
        ifindex: u32,
        force_generic: bool,
    ) -> Result<Option<DataPlane>> {
        let choice = if force_generic {
            DataPlaneChoice::Generic
        } else {
            self.dataplane
        };
        if choice == DataPlaneChoice::Off {
            return Ok(None);
        }
        let dp = match DataPlane::attach(name, choice == DataPlaneChoice::Generic) {
            Ok(dp) => dp,
            Err(e) if choice == DataPlaneChoice::Auto => {
                warn!(iface = %name, error = %short(&e), "XDP unavailable; receiving adverts on raw sockets only");
                return Ok(None);
            }
            Err(e) => return Err(e).with_context(|| format!("attaching XDP to {name}")),
        };
        if choice == DataPlaneChoice::Native && dp.mode() != xdp::AttachMode::Native {
            bail!("native XDP requested but {name} only supports generic mode");
        }
        // Valid adverts are consumed in XDP from now on: only news reaches us, through the
        // events ring; unchanged ones just refresh the kernel timestamp.
        let mut dp = dp;
        let events = dp.take_events()?;
        dp.set_mode(true)?;
        spawn_dataplane_reader(ifindex, events, self.rx_tx.clone());
        info!(iface = %name, mode = %dp.mode(), "data plane: XDP validates, timestamps and absorbs adverts; answers ARP/ND for owned VIPs");
        Ok(Some(dp))
    }

    /// Tells each interface's XDP program which VRIDs it serves (and forgets the others).
    fn sync_vrids(&mut self) -> Result<()> {
        for i in 0..self.ifaces.len() {
            if self.ifaces[i].dataplane.is_none() {
                continue;
            }
            for ipv6 in [false, true] {
                for vrid in 1..=255u8 {
                    let (c, peers) = self.vrid_config(i, ipv6, vrid);
                    if let Some(dp) = self.ifaces[i].dataplane.as_mut() {
                        dp.set_peers(ipv6, vrid, &peers)?;
                        dp.set_vrid(ipv6, vrid, c)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// What interface `i`'s XDP program must know of a VRID, and its unicast allowlist.
    fn vrid_config(&self, i: usize, ipv6: bool, vrid: u8) -> (VridConfig, Vec<IpAddr>) {
        let inst = self.instances.iter().find(|inst| {
            inst.iface == i
                && (inst.cfg.family == Family::V6) == ipv6
                && inst.cfg.vrid.get() == vrid
        });
        let mut c = VridConfig::default();
        let peers: Vec<IpAddr> = inst
            .map(|i| i.cfg.unicast_peers.iter().map(|p| p.addr).collect())
            .unwrap_or_default();
        if let Some(inst) = inst {
            c.flags = VRID_F_CONFIGURED;
            // What the instance last asked for stays (see `sync_watch`).
            c.master_down_ns = inst.watch_ns;
            // keepalived's unicast_peer list doubles as an allowlist, enforced in XDP.
            if !peers.is_empty() {
                c.flags |= VRID_F_UNICAST_PEERS;
            }
            if inst.cfg.version == Version::V2 {
                c.flags |= VRID_F_V2;
                c.interval_cs = inst.cfg.advert_int.get();
                if let Auth::Pass(p) = inst.cfg.auth {
                    c.flags |= VRID_F_AUTH_PASS;
                    c.auth_pass = p;
                }
            }
            if inst.xdp_owned && inst.vmac.is_some() {
                c.flags |= VRID_F_VMAC_OWNED;
            }
        }
        (c, peers)
    }

    async fn build_instance(&mut self, cfg: &Config, inst: &config::Instance) -> Result<Instance> {
        // Said out loud rather than silently ignored: these keepalived features are not here yet.
        if !inst.accept {
            warn!(
                "{}: instance {}: no_accept is not enforced: the master accepts traffic to its VIPs",
                inst.span, inst.name
            );
        }
        let wants_vmac = cfg
            .instances
            .iter()
            .any(|i| i.interface == inst.interface && i.vmac.is_some());
        let iface = self
            .iface(
                &inst.interface,
                &inst.interface_span,
                &inst.name,
                wants_vmac,
            )
            .await?;
        let ifindex = self.ifaces[iface].index;
        let vmac = match &inst.vmac {
            None => None,
            Some(_) if self.ifaces[iface].dataplane.is_none() => {
                warn!(
                    "{}: instance {}: use_vmac needs the XDP data plane (no macvlan is made): ARP replies and adverts use the interface MAC",
                    inst.span, inst.name
                );
                None
            }
            Some(v) => {
                let mac = v.mac.unwrap_or(vrrp_common::wire::vmac(
                    inst.family == Family::V6,
                    inst.vrid.get(),
                ));
                let how = if v.xmit_base {
                    "adverts from the interface MAC (vmac_xmit_base)"
                } else {
                    "adverts from the virtual MAC"
                };
                info!(
                    instance = %inst.name,
                    vmac = %crate::io::netlink::MacDisplay(mac),
                    iface = %inst.interface,
                    "use_vmac without a macvlan: the virtual MAC goes into {}'s unicast filter while MASTER, XDP answers with it; {how}",
                    inst.interface
                );
                if let Some(name) = &v.name {
                    debug!(instance = %inst.name, %name, "use_vmac interface name ignored: no macvlan is created");
                }
                vmac_arp_announce(&inst.interface);
                Some(mac)
            }
        };
        let all_vips: Vec<IpAddr> = cfg
            .instances
            .iter()
            .flat_map(|i| i.vips.iter().chain(&i.excluded_vips).map(|v| v.addr))
            .collect();
        let src = match inst.unicast_src {
            Some(a) => a,
            None => primary_address(&self.netlink, ifindex, inst.family, &all_vips)
                .await
                .with_context(|| {
                    format!(
                        "{}: instance {}: no source address on {}",
                        inst.span, inst.name, inst.interface
                    )
                })?,
        };
        let sock = match self
            .socks
            .iter()
            .position(|s| s.ifindex == ifindex && s.sock.source() == src)
        {
            Some(s) => s,
            None => {
                // One receiving socket per (interface, family): a second one would see every
                // advert twice. Further sources only send.
                let first_of_family = !self
                    .socks
                    .iter()
                    .any(|s| s.ifindex == ifindex && s.family == inst.family);
                let multicast = cfg.instances.iter().any(|i| {
                    i.interface == inst.interface
                        && i.family == inst.family
                        && i.unicast_peers.is_empty()
                });
                let s =
                    AdvertSocket::open(&inst.interface, ifindex, src, first_of_family && multicast)
                        .with_context(|| format!("instance {}", inst.name))?;
                let s = Arc::new(s);
                let idx = self.socks.len();
                if first_of_family {
                    spawn_reader(s.clone(), self.rx_tx.clone());
                }
                self.socks.push(Sock {
                    sock: s,
                    ifindex,
                    family: inst.family,
                });
                idx
            }
        };
        let mut heartbeats = Vec::new();
        for h in &inst.heartbeats {
            heartbeats.push(self.heartbeat_path(inst, h, &all_vips).await?);
        }
        let mut vips = Vec::new();
        for v in &inst.vips {
            let vindex = match &v.dev {
                Some(dev) if dev != &inst.interface => {
                    self.netlink
                        .link_by_name(dev)
                        .await
                        .map_err(|e| anyhow!("{}: {e}", v.span))?
                        .index
                }
                _ => ifindex,
            };
            vips.push(VipBinding {
                ifindex: vindex,
                spec: vip_spec(v),
            });
        }
        let destinations = if inst.unicast_peers.is_empty() {
            vec![match inst.family {
                Family::V4 => IpAddr::V4(cfg.global.mcast_group4),
                Family::V6 => IpAddr::V6(cfg.global.mcast_group6),
            }]
        } else {
            inst.unicast_peers.iter().map(|p| p.addr).collect()
        };
        let vr_cfg = vr_config(cfg, inst, src);
        let vr = VirtualRouter::new(vr_cfg.clone(), now())
            .map_err(|e| anyhow!("{}: instance {}: {e}", inst.span, inst.name))?;
        let form = if inst.v3_checksum_as_v2 {
            ChecksumForm::WithoutPseudoHeader
        } else {
            ChecksumForm::WithPseudoHeader
        };
        Ok(Instance {
            cfg: inst.clone(),
            vr_cfg,
            vr,
            iface,
            sock,
            vips,
            destinations,
            advert_cache: None,
            heartbeats,
            form,
            installed: false,
            started: false,
            tracked: None,
            kernel_seen_ns: 0,
            watch_ns: 0,
            watch_at_ns: 0,
            cover: None,
            timer_wakeups: 0,
            silent_reports: 0,
            xdp_owned: false,
            vmac,
            conflicts: 0,
            split_brain: None,
            split_brain_episodes: 0,
            peers: BTreeMap::new(),
            decode_errors: BTreeMap::new(),
            transitions: BTreeMap::new(),
        })
    }

    /// Opens a `vrrp_xdp_heartbeat` path: its interface, source address and raw socket (one
    /// reading socket per interface and family, as on the primary path; no multicast).
    async fn heartbeat_path(
        &mut self,
        inst: &config::Instance,
        h: &config::Heartbeat,
        vips: &[IpAddr],
    ) -> Result<HeartbeatPath> {
        let link = self.netlink.link_by_name(&h.interface).await.map_err(|e| {
            anyhow!(
                "{}: instance {}: vrrp_xdp_heartbeat interface {}: {e}",
                h.interface_span,
                inst.name,
                h.interface
            )
        })?;
        let src = match h.src {
            Some(a) => a,
            None => primary_address(&self.netlink, link.index, inst.family, vips)
                .await
                .with_context(|| {
                    format!(
                        "{}: instance {}: no source address on heartbeat interface {}",
                        h.span, inst.name, h.interface
                    )
                })?,
        };
        let sock = match self
            .socks
            .iter()
            .position(|s| s.ifindex == link.index && s.sock.source() == src)
        {
            Some(s) => s,
            None => {
                let first_of_family = !self
                    .socks
                    .iter()
                    .any(|s| s.ifindex == link.index && s.family == inst.family);
                let s = AdvertSocket::open(&h.interface, link.index, src, false).with_context(
                    || {
                        format!(
                            "instance {}: vrrp_xdp_heartbeat on {}",
                            inst.name, h.interface
                        )
                    },
                )?;
                let s = Arc::new(s);
                if first_of_family {
                    spawn_reader(s.clone(), self.rx_tx.clone());
                }
                self.socks.push(Sock {
                    sock: s,
                    ifindex: link.index,
                    family: inst.family,
                });
                self.socks.len() - 1
            }
        };
        info!(instance = %inst.name, iface = %h.interface, %src, peers = ?h.peers.iter().map(|p| p.0).collect::<Vec<_>>(), "heartbeat path: our adverts also go unicast to the peers here; theirs only keep a master alive (liveness only)");
        Ok(HeartbeatPath {
            iface: h.interface.clone(),
            ifindex: link.index,
            sock,
            src,
            peers: h.peers.iter().map(|p| p.0).collect(),
            heard: BTreeMap::new(),
            adverts_sent: 0,
            send_errors: 0,
            decode_errors: 0,
            failing: false,
        })
    }

    /// SIGHUP: re-reads the configuration. Unchanged instances keep their state, timers and
    /// VIPs; changed ones are updated in place where the state machine allows it (same VRID,
    /// version, family and interface), else replaced; removed ones release their VIPs. A
    /// broken file changes nothing.
    async fn reload(&mut self) -> Result<()> {
        let Some(path) = self.config_path.clone() else {
            bail!("no configuration file to reload (started from command-line flags)");
        };
        let loaded = config::load(&path)?;
        for w in &loaded.warnings {
            warn!("{w}");
        }
        let cfg = loaded.config;
        // Build every new or changed instance first, so an error leaves everything as it was.
        let mut plan = Vec::new();
        for inst in &cfg.instances {
            let old = self.instances.iter().position(|o| o.cfg.name == inst.name);
            let built = self.build_instance(&cfg, inst).await?;
            plan.push((old, built));
        }
        self.garp_interval = cfg.global.garp_interval;
        self.gna_interval = cfg.global.gna_interval;
        let t = now();
        let mut next = Vec::new();
        // Masters updated in place: the guardian learns their new adverts.
        let mut rearm: Vec<String> = Vec::new();
        let mut old_instances: Vec<Option<Instance>> = std::mem::take(&mut self.instances)
            .into_iter()
            .map(Some)
            .collect();
        for (old, built) in plan {
            match old.and_then(|o| old_instances[o].take()) {
                Some(mut inst) => {
                    let same_identity = inst.iface == built.iface
                        && inst.cfg.vrid == built.cfg.vrid
                        && inst.cfg.family == built.cfg.family
                        && inst.cfg.version == built.cfg.version;
                    let unchanged = inst.vr_cfg == built.vr_cfg
                        && inst
                            .vips
                            .iter()
                            .map(|v| (&v.spec, v.ifindex))
                            .eq(built.vips.iter().map(|v| (&v.spec, v.ifindex)))
                        && inst.destinations == built.destinations
                        && inst
                            .heartbeats
                            .iter()
                            .map(HeartbeatPath::key)
                            .eq(built.heartbeats.iter().map(HeartbeatPath::key))
                        && inst.form == built.form
                        && inst.sock == built.sock;
                    if unchanged {
                        inst.cfg = built.cfg;
                        next.push(inst);
                    } else if same_identity
                        && inst
                            .vips
                            .iter()
                            .map(|v| &v.spec)
                            .eq(built.vips.iter().map(|v| &v.spec))
                    {
                        info!(instance = %inst.cfg.name, "configuration changed: updating in place");
                        inst.vr.handle(t, Input::Config(built.vr_cfg.clone()));
                        inst.cfg = built.cfg;
                        inst.vr_cfg = built.vr_cfg;
                        inst.destinations = built.destinations;
                        // The guardian forgets the old paths; `rearm` gives it the new ones.
                        for p in &inst.heartbeats {
                            if let Some(g) = self.guardian.as_mut() {
                                let _ = g.disarm(&heartbeat_guardian_key(&inst.cfg.name, &p.iface));
                            }
                        }
                        if inst.installed {
                            rearm.push(inst.cfg.name.clone());
                        }
                        inst.heartbeats = built.heartbeats;
                        inst.form = built.form;
                        inst.sock = built.sock;
                        next.push(inst);
                    } else {
                        info!(instance = %inst.cfg.name, "configuration changed: restarting the instance");
                        self.instances = vec![inst];
                        self.feed(0, t, Input::Shutdown).await;
                        self.remove_vips_of(0).await;
                        self.instances.clear();
                        next.push(built);
                    }
                }
                None => {
                    info!(instance = %built.cfg.name, "new instance");
                    next.push(built);
                }
            }
        }
        for inst in old_instances.into_iter().flatten() {
            info!(instance = %inst.cfg.name, "instance removed: releasing it");
            self.instances = vec![inst];
            self.feed(0, t, Input::Shutdown).await;
            self.remove_vips_of(0).await;
            self.instances.clear();
        }
        self.instances = next;
        self.sync_vrids()?;
        self.sync = sync_groups(&cfg);
        for idx in 0..self.instances.len() {
            if self.instances[idx].started {
                let join =
                    self.sync
                        .join(&self.instances[idx].cfg.name)
                        .unwrap_or(Input::SyncJoin {
                            group: String::new(),
                            peers: Vec::new(),
                        });
                self.feed(idx, t, join).await;
            }
        }
        // Checks follow the new file; an unchanged tracker keeps running so that no check
        // result is forgotten (a restarted check would read "unknown" until it runs again).
        let key = track_key(&cfg);
        if key != self.track_key {
            self.tracker.stop().await;
            let (tracker, track_rx) = spawn_tracker(&cfg);
            self.tracker = tracker;
            self.track_rx = track_rx;
            self.track_key = key;
            for inst in &mut self.instances {
                inst.tracked = None;
            }
        }
        if let Some(old) = self.notifier.take() {
            old.shutdown().await;
        }
        self.notifier = Some(notifier(&cfg)?);
        for idx in 0..self.instances.len() {
            if rearm.contains(&self.instances[idx].cfg.name) && self.instances[idx].installed {
                self.arm_guardian(idx);
            }
        }
        // Outputs of in-place updates, and start-up of new instances.
        for idx in 0..self.instances.len() {
            if !self.instances[idx].started {
                if !self.waits_for_tracking(idx) {
                    self.start(idx, t).await;
                }
            } else {
                while let Some(out) = self.instances[idx].vr.poll_output() {
                    self.act(idx, out).await;
                }
            }
        }
        trim_heap();
        for inst in &mut self.instances {
            inst.advert_cache = None;
        }
        info!(instances = self.instances.len(), "configuration reloaded");
        Ok(())
    }

    /// Runs until SIGTERM/SIGINT, then releases everything (priority 0, VIPs removed).
    pub async fn run(mut self) -> Result<()> {
        // A crash of an earlier run may have left our VIPs bound (RFC 9568 §6.4.1: Initialize
        // owns no address).
        self.remove_all_vips().await;
        for idx in 0..self.instances.len() {
            self.vmac_filter(idx, false).await;
        }
        self.sync_kernel_filter().await;
        trim_heap();
        // After the set-up (the XDP load runs long in the kernel, which RLIMIT_RTTIME counts).
        match crate::io::sched::make_realtime(self.realtime) {
            Ok(()) => info!(
                scheduling = %crate::io::sched::describe_current(),
                rlimit_rttime_us = self.realtime.rlimit_rttime_us,
                "election thread scheduling"
            ),
            Err(e) => warn!("{e}: running SCHED_OTHER, so a busy host can delay our adverts"),
        }
        self.scheduling = crate::io::sched::describe_current();
        if self.want_guardian {
            let rings: Vec<_> = self
                .ifaces
                .iter()
                .filter_map(|i| i.dataplane.as_ref()?.death_ring_fd())
                .collect();
            match Guardian::spawn(self.realtime, &rings) {
                Ok(g) => {
                    debug!(pid = g.pid(), "guardian started");
                    self.guardian = Some(g);
                }
                Err(e) => {
                    warn!("{e}: a killed agent's VIPs move after the master-down interval instead")
                }
            }
        }
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<ControlCommand>(8);
        let server = control::ControlServer::bind(&self.control_socket)
            .await
            .with_context(|| format!("control socket {}", self.control_socket.display()))?;
        let rx = self.snapshot.subscribe();
        let control_task = tokio::spawn(async move {
            if let Err(e) = server.run(rx, cmd_tx).await {
                warn!(error = %e, "control socket stopped");
            }
        });
        let metrics_task = match self.metrics {
            Some(addr) => {
                let m = control::MetricsServer::bind(addr)
                    .await
                    .with_context(|| format!("metrics endpoint {addr}"))?;
                info!(addr = ?m.local_addr().ok(), "Prometheus metrics at /metrics");
                let rx = self.snapshot.subscribe();
                Some(tokio::spawn(async move {
                    if let Err(e) = m.run(rx).await {
                        warn!(error = %e, "metrics endpoint stopped");
                    }
                }))
            }
            None => None,
        };
        let mut tick = crate::io::ticker::Ticker::new(TICK).context("the housekeeping timer")?;
        let mut timer = crate::io::ticker::Deadline::new().context("the election timer")?;
        let mut links = self.netlink.link_events().context("watching links")?;
        // Refresh the link state after subscribing, so no change is lost in between.
        for i in 0..self.ifaces.len() {
            if let Ok(l) = self.netlink.link_by_index(self.ifaces[i].index).await {
                self.ifaces[i].up = l.up;
            }
        }
        let t = now();
        for idx in 0..self.instances.len() {
            if !self.instances[idx].started && !self.waits_for_tracking(idx) {
                self.start(idx, t).await;
            }
        }
        info!(instances = self.instances.len(), "vrrp-agent running");
        // Set by the first SIGTERM/SIGINT: masters hand over make-before-break and we exit once
        // every instance has stopped, or at this hard deadline.
        let mut stopping: Option<Instant> = None;
        loop {
            if let Some(hard) = stopping
                && (now() >= hard
                    || self
                        .instances
                        .iter()
                        .all(|i| i.vr.state() == State::Stopped))
            {
                break;
            }
            let deadline = match (self.next_deadline(), stopping) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            timer.set(deadline, now()).context("the election timer")?;
            tokio::select! {
                Some(inc) = self.rx_rx.recv() => self.on_incoming(inc).await,
                ev = links.next() => match ev {
                    Some(ev) => self.on_link(ev).await,
                    None => bail!("the netlink link watch ended"),
                },
                res = timer.fired() => {
                    res.context("the election timer")?;
                    self.on_timeout(None).await
                }
                _ = term.recv() => if self.begin_stop(&mut stopping, "SIGTERM").await { break },
                _ = int.recv() => if self.begin_stop(&mut stopping, "SIGINT").await { break },
                _ = usr1.recv() => {
                    self.log_status();
                    let snap = self.build_snapshot();
                    match control::write_dump(&self.dump_path, &snap) {
                        Ok(()) => info!(path = %self.dump_path.display(), "status written"),
                        Err(e) => warn!(path = %self.dump_path.display(), error = %e, "cannot write the status dump"),
                    }
                }
                res = tick.tick() => {
                    if let Err(e) = res {
                        bail!("the housekeeping timer failed: {e}");
                    }
                    self.split_brain_expire();
                    if crate::io::sched::take_demoted() {
                        self.scheduling = crate::io::sched::describe_current();
                        error!(
                            "a thread ran {} µs without sleeping (RLIMIT_RTTIME): it is SCHED_OTHER from now on",
                            self.realtime.rlimit_rttime_us
                        );
                    }
                    if self.data_plane_watch() {
                        self.sync_kernel_filter().await;
                    }
                    // Backstops due before the next tick are taken now: one wake-up, not two.
                    self.on_timeout(Some(now() + TICK)).await;
                    self.publish();
                }
                Some(cmd) = cmd_rx.recv() => self.on_command(cmd).await,
                Some(ev) = self.track_rx.recv() => self.on_track(ev).await,
                _ = hup.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    if let Err(e) = self.reload().await {
                        error!("reload rejected, the running configuration stays: {e:#}");
                    }
                }
            }
        }
        self.shutdown().await;
        control_task.abort();
        if let Some(t) = metrics_task {
            t.abort();
        }
        Ok(())
    }

    /// The first stop signal starts a make-before-break exit (`Input::Resign`); a second one
    /// means now. Returns whether to leave the loop at once.
    async fn begin_stop(&mut self, stopping: &mut Option<Instant>, signal: &str) -> bool {
        if stopping.is_some() {
            info!("{signal} again: releasing at once and exiting");
            return true;
        }
        let t = now();
        let longest = self
            .instances
            .iter()
            .map(|i| i.vr.master_down_interval())
            .max()
            .unwrap_or_default();
        *stopping = Some(t + longest + Duration::from_secs(1));
        let masters = self
            .instances
            .iter()
            .filter(|i| i.vr.state() == State::Master)
            .count();
        if masters > 0 {
            info!(
                masters,
                "{signal}: handing over (VIPs kept until the new master is heard), then exiting"
            );
        } else {
            info!("{signal}: exiting");
        }
        for idx in 0..self.instances.len() {
            self.feed(idx, t, Input::Resign { exit: true }).await;
        }
        false
    }

    /// The RFC's Startup event, after telling the router its link state.
    async fn start(&mut self, idx: usize, t: Instant) {
        self.instances[idx].started = true;
        if let Some(join) = self.sync.join(&self.instances[idx].cfg.name) {
            self.feed(idx, t, join).await;
        }
        let up = self.ifaces[self.instances[idx].iface].up;
        if !up {
            self.feed(idx, t, Input::Link { up: false }).await;
        }
        self.feed(idx, t, Input::Startup).await;
    }

    /// Whether the instance tracks something whose failure means FAULT and has no result yet.
    fn waits_for_tracking(&self, idx: usize) -> bool {
        let inst = &self.instances[idx];
        let tracks = !(inst.cfg.track_scripts.is_empty()
            && inst.cfg.track_files.is_empty()
            && inst.cfg.track_processes.is_empty()
            && inst.cfg.track_interfaces.is_empty());
        tracks && inst.tracked.is_none()
    }

    /// A change of an instance's tracked priority or fault state.
    async fn on_track(&mut self, ev: TrackEvent) {
        let Some(idx) = self
            .instances
            .iter()
            .position(|i| i.cfg.name == ev.instance)
        else {
            return;
        };
        if self.instances[idx].tracked.as_ref() == Some(&ev.tracked) {
            return;
        }
        self.instances[idx].tracked = Some(ev.tracked.clone());
        let t = now();
        if ev.tracked.fault || !ev.tracked.reasons.is_empty() {
            info!(instance = %ev.instance, priority = %ev.tracked.priority, fault = ev.tracked.fault, reasons = %ev.tracked.reasons.join("; "), "tracking changed");
        } else {
            info!(instance = %ev.instance, priority = %ev.tracked.priority, "tracking changed");
        }
        self.feed(idx, t, Input::Fault(ev.tracked.fault)).await;
        self.feed(idx, t, Input::Priority(ev.tracked.priority))
            .await;
        if !self.instances[idx].started {
            self.start(idx, t).await;
        }
    }

    async fn on_command(&mut self, cmd: ControlCommand) {
        match cmd {
            ControlCommand::Reload { reply } => {
                info!("reload requested over the control socket");
                let r = self
                    .reload()
                    .await
                    .map(|()| "configuration reloaded".to_string())
                    .map_err(|e| format!("{e:#}"));
                if let Err(e) = &r {
                    error!("reload rejected, the running configuration stays: {e}");
                }
                let _ = reply.send(r);
            }
            ControlCommand::Handover { instance, reply } => {
                let r = self.handover(instance.as_deref()).await;
                let _ = reply.send(r);
            }
        }
        self.publish();
    }

    /// Planned handover, make-before-break: each selected master sends priority 0 (a backup
    /// takes over after its skew time) and keeps answering for its VIPs until the new master's
    /// first advert; then it stays a backup without preempting back.
    async fn handover(&mut self, instance: Option<&str>) -> Result<String, String> {
        let t = now();
        let mut done = Vec::new();
        for idx in 0..self.instances.len() {
            let inst = &self.instances[idx];
            if instance.is_some_and(|n| n != inst.cfg.name) || inst.vr.state() != State::Master {
                continue;
            }
            done.push(inst.cfg.name.clone());
            self.feed(idx, t, Input::Resign { exit: false }).await;
        }
        match (done.is_empty(), instance) {
            (true, Some(n)) => Err(format!(
                "instance {n} is not MASTER here (or does not exist)"
            )),
            (true, None) => Err("no instance is MASTER here".into()),
            (false, _) => Ok(format!(
                "handing over: {} (VIPs held until the new master is heard)",
                done.join(", ")
            )),
        }
    }

    /// Publishes the current state to the status socket and the metrics endpoint.
    fn publish(&self) {
        let snap = self.build_snapshot();
        self.snapshot.send_replace(snap);
    }

    fn build_snapshot(&self) -> Snapshot {
        let t = now();
        let mut snap = Snapshot::new(std::process::id(), self.started_unix);
        snap.generated_at_unix = unix_now();
        snap.router_id = self.router_id.clone();
        snap.config_file = self.config_path.as_ref().map(|p| p.display().to_string());
        snap.scheduling = self.scheduling.clone();
        for inst in &self.instances {
            let st = inst.vr.status(t);
            let c = &st.counters;
            let mut drops: BTreeMap<String, u64> = BTreeMap::new();
            for (k, v) in [
                ("vrid_mismatch", c.dropped_vrid),
                ("version_mismatch", c.dropped_version),
                ("family_mismatch", c.dropped_family),
                ("auth_mismatch", c.dropped_auth),
                ("interval_mismatch", c.dropped_interval),
                ("owner_ignores_adverts", c.dropped_owner),
                ("unknown_unicast_source", c.dropped_unknown_unicast_src),
                ("own_address", c.dropped_own_address),
            ] {
                if v > 0 {
                    drops.insert(k.to_string(), v);
                }
            }
            for (k, v) in &inst.decode_errors {
                *drops.entry((*k).to_string()).or_default() += v;
            }
            snap.instances.push(control::InstanceStatus {
                name: inst.cfg.name.clone(),
                interface: inst.cfg.interface.clone(),
                vrid: inst.cfg.vrid.get(),
                family: inst.cfg.family.into(),
                version: inst.cfg.version.number(),
                state: st.state.into(),
                priority_base: st.base_priority.get(),
                priority_effective: st.effective_priority.get(),
                master: match st.state {
                    State::Master => Some(self.socks[inst.sock].sock.source().to_string()),
                    _ => st.master.map(|m| m.addr.to_string()),
                },
                master_priority: match st.state {
                    State::Master => Some(st.effective_priority.get()),
                    _ => st.master.map(|m| m.priority.get()),
                },
                advert_interval_ms: u64::from(inst.cfg.advert_int.get()) * 10,
                master_advert_interval_ms: st.master.map(|m| u64::from(m.interval.get()) * 10),
                vips: inst
                    .vips
                    .iter()
                    .map(|v| format!("{}/{}", v.spec.addr, v.spec.prefix_len))
                    .collect(),
                last_transition: inst.vr.last_transition().map(|r| control::TransitionInfo {
                    from: r.from.into(),
                    to: r.to.into(),
                    reason: describe(&r.reason),
                    ago_ms: t.saturating_duration_since(r.at).as_millis() as u64,
                }),
                transitions: inst.transitions.clone(),
                split_brain_alarm: inst.split_brain.is_some(),
                split_brain_episodes: inst.split_brain_episodes,
                vip_conflicts: inst.conflicts,
                timer_wakeups: inst.timer_wakeups,
                kernel_watch: inst.cover.is_some(),
                master_silent_reports: inst.silent_reports,
                heartbeat_restarts: c.heartbeat_restarts,
                heartbeat_paths: inst
                    .heartbeats
                    .iter()
                    .map(|h| control::HeartbeatPathInfo {
                        interface: h.iface.clone(),
                        source: h.src.to_string(),
                        adverts_sent: h.adverts_sent,
                        send_errors: h.send_errors,
                        decode_errors: h.decode_errors,
                        peers: h
                            .peers
                            .iter()
                            .map(|p| {
                                let heard = h.heard.get(p);
                                control::HeartbeatPeerInfo {
                                    addr: p.to_string(),
                                    adverts_received: heard.map_or(0, |x| x.adverts),
                                    priority: heard.map(|x| x.priority.get()),
                                    last_heard_ago_ms: heard.map(|x| {
                                        t.saturating_duration_since(x.last).as_millis() as u64
                                    }),
                                }
                            })
                            .collect(),
                    })
                    .collect(),
                adverts_sent: c.adverts_tx,
                adverts_received: c.adverts_rx,
                priority_zero_sent: c.priority_zero_tx,
                priority_zero_received: c.priority_zero_rx,
                drops,
                peers: inst
                    .peers
                    .iter()
                    .map(|(a, p)| control::PeerInfo {
                        addr: a.to_string(),
                        priority: p.priority.get(),
                        interval_ms: u64::from(p.interval.get()) * 10,
                        last_seen_ago_ms: t.saturating_duration_since(p.last_seen).as_millis()
                            as u64,
                    })
                    .collect(),
                ..Default::default()
            });
        }
        for iface in &self.ifaces {
            let mut d = control::DataPlaneStatus {
                interface: iface.name.clone(),
                mode: control::DataPlaneMode::RawSocket,
                ..Default::default()
            };
            if let Some(dp) = &iface.dataplane {
                d.mode = match dp.mode() {
                    xdp::AttachMode::Native => control::DataPlaneMode::Native,
                    xdp::AttachMode::Generic => control::DataPlaneMode::Generic,
                };
                if let Ok(c) = dp.counters() {
                    for (i, v) in c.iter().enumerate() {
                        d.counters
                            .insert(vrrp_common::event::counter::NAMES[i].to_string(), *v);
                    }
                    d.xdp_tx_errors = iface.tx_errors;
                    d.arp_replies = c[vrrp_common::event::counter::ARP_REPLIED as usize];
                    d.ns_replies = c[vrrp_common::event::counter::NS_REPLIED as usize];
                }
                {
                    d.foreign_vrids = iface
                        .foreign
                        .1
                        .iter()
                        .copied()
                        .map(|(ipv6, vrid, n)| control::ForeignVrid {
                            vrid,
                            family: if ipv6 {
                                control::IpFamily::Ipv6
                            } else {
                                control::IpFamily::Ipv4
                            },
                            adverts: n,
                        })
                        .collect();
                }
            }
            snap.dataplanes.push(d);
        }
        for c in self.tracker.checks() {
            snap.checks.push(control::CheckStatus {
                name: c.name,
                kind: format!("{:?}", c.kind).to_lowercase(),
                up: c.up,
                runs: c.runs,
                failures: c.failures,
                last_duration_ms: c.last_duration.map(|d| d.as_millis() as u64),
            });
        }
        snap
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.instances.iter().filter_map(Instance::wake_at).min()
    }

    /// Wakes the instances whose time has come; with `early`, also those sleeping on a kernel
    /// timer whose backstop is due by then.
    async fn on_timeout(&mut self, early: Option<Instant>) {
        let t = now();
        for idx in 0..self.instances.len() {
            let inst = &self.instances[idx];
            let Some(w) = inst.wake_at() else {
                continue;
            };
            // A master's advert due within a twentieth of its interval goes now, as if at its
            // time: with hundreds of instances the adverts share wake-ups (timer slack), and
            // the phase of each is kept.
            let master = inst.vr.state() == State::Master;
            let slack = inst.cfg.advert_int.as_duration() / 20;
            let due = w <= t
                || (master && w <= t + slack)
                || early.is_some_and(|e| inst.cover.is_some() && w <= e);
            if !due {
                continue;
            }
            self.instances[idx].timer_wakeups += 1;
            if master && w > t {
                self.feed(idx, w, Input::Timeout).await;
                continue;
            }
            // The master-down timer reads the kernel's timestamps lazily: adverts that said
            // nothing new were absorbed in XDP, so a fresher one may exist. Re-arm from it.
            if self.instances[idx].vr.state() == State::Backup
                && let Some((src, at, ns)) = self.kernel_advert(idx)
            {
                self.instances[idx].kernel_seen_ns = ns;
                self.feed(idx, t, Input::AdvertSeenAt { src, at }).await;
            }
            self.feed(idx, t, Input::Timeout).await;
        }
    }

    /// The last advert the data plane absorbed from the instance's master, if newer than the
    /// last one given to the router: (source, time, kernel ns). The slot follows the master
    /// (`takes_slot`); when another sender took it after a silence of the master, the master's
    /// record moved to `OTHERS`, which is read too.
    fn kernel_advert(&self, idx: usize) -> Option<(IpAddr, Instant, u64)> {
        let inst = &self.instances[idx];
        let dp = self.ifaces[inst.iface].dataplane.as_ref()?;
        let ipv6 = inst.cfg.family == Family::V6;
        let vrid = inst.cfg.vrid.get();
        let master = inst.vr.master().map(|m| m.addr)?;
        let of_master = |st: Option<AdvertState>| {
            st.filter(|st| addr_of(st, ipv6) == master)
                .map(|st| st.last_ns)
        };
        let ns = of_master(dp.advert_state(ipv6, vrid).ok()?)
            .or_else(|| of_master(dp.others_state(ipv6, vrid).ok().flatten()))?;
        if ns <= inst.kernel_seen_ns {
            return None;
        }
        let at = xdp::instant_of_mono_ns(ns).ok()?;
        Some((master, at, ns))
    }

    /// The kernel timer watching a backup's master ran out: the master was silent for the
    /// Master_Down_Interval. The router gets the master's last advert time, then its timeout.
    async fn on_master_silent(&mut self, ifindex: u32, ipv6: bool, vrid: u8) {
        let t = now();
        let Some(idx) = self.instances.iter().position(|i| {
            self.ifaces[i.iface].index == ifindex
                && (i.cfg.family == Family::V6) == ipv6
                && i.cfg.vrid.get() == vrid
        }) else {
            return;
        };
        self.instances[idx].silent_reports += 1;
        // The kernel watches the primary path only. Heartbeat-path adverts (user space) move
        // the router's own deadline past this report, so the Timeout below then does nothing,
        // and with the kernel timer run out `sync_watch` finds no cover: the driver wakes at
        // the router's deadline from then on.
        // A report from before a transition (the timer may fire once after the watch stopped)
        // still only feeds a Timeout, which the router checks against its own deadline.
        if self.instances[idx].vr.state() == State::Backup
            && let Some((src, at, ns)) = self.kernel_advert(idx)
        {
            self.instances[idx].kernel_seen_ns = ns;
            self.feed(idx, t, Input::AdvertSeenAt { src, at }).await;
        }
        self.feed(idx, t, Input::Timeout).await;
    }

    /// Keeps the data plane's master-silence timer in step with the router (a backup's
    /// Master_Down_Interval, which follows the priority and the learned interval; none in any
    /// other state), and reads whether the driver may sleep on it.
    fn sync_watch(&mut self, idx: usize) {
        let inst = &mut self.instances[idx];
        let Some(dp) = self.ifaces[inst.iface].dataplane.as_mut() else {
            return;
        };
        let ipv6 = inst.cfg.family == Family::V6;
        let vrid = inst.cfg.vrid.get();
        let backup = inst.vr.state() == State::Backup;
        let mdi = inst.vr.master_down_interval();
        let want = backup.then_some(mdi);
        if xdp::master_down_ns(want) != inst.watch_ns {
            match dp
                .set_master_down(ipv6, vrid, want)
                .and_then(|()| xdp::monotonic_ns())
            {
                Ok(at) => {
                    inst.watch_ns = xdp::master_down_ns(want);
                    inst.watch_at_ns = at;
                }
                Err(e) => {
                    warn!(instance = %inst.cfg.name, error = %e, "cannot set the kernel master-silence timer");
                }
            }
        }
        inst.cover = None;
        if !backup || inst.watch_ns == 0 {
            return;
        }
        // The kernel timer is restarted by the slot's sender: it covers only while that is our
        // master (a lower-priority sender takes the slot once the master is silent).
        let master = inst.vr.master().map(|m| m.addr);
        let follows = matches!(dp.advert_state(ipv6, vrid), Ok(Some(st)) if Some(addr_of(&st, ipv6)) == master);
        if !follows {
            return;
        }
        let (Ok(silence), Ok(now_ns)) = (dp.silence(ipv6, vrid), xdp::monotonic_ns()) else {
            return;
        };
        let kernel = wake::Kernel {
            written_ns: inst.watch_ns,
            written_at_ns: inst.watch_at_ns,
            started_ns: silence.started_ns,
            interval_ns: silence.interval_ns,
            now_ns,
        };
        // Half a tick beyond the backstop: the housekeeping tick before it takes it (one
        // wake-up a second in steady state, not two).
        let backstop = wake::backstop(mdi) + TICK / 2;
        inst.cover = wake::Cover::new(&kernel, now(), backstop, |ns| {
            xdp::instant_of_mono_ns(ns).ok()
        });
    }

    /// Clears the data plane's record of the instance's master, so that its next advert is
    /// reported even if unchanged. After a transition the router must hear the other side
    /// again: a new master would otherwise never hear the adverts of a better one that
    /// were already being absorbed (both would stay master until that one fell silent), and
    /// adverts absorbed before the instance started would never reach it.
    fn forget_advert(&mut self, idx: usize) {
        let inst = &self.instances[idx];
        let Some(dp) = self.ifaces[inst.iface].dataplane.as_mut() else {
            return;
        };
        if let Err(e) = dp.forget_advert(inst.cfg.family == Family::V6, inst.cfg.vrid.get()) {
            warn!(instance = %inst.cfg.name, error = %e, "cannot reset the XDP advert state");
        }
    }

    /// Writes or clears the instance's VIPs in the XDP ARP/ND responder, and keeps the
    /// dead-man gate fresh.
    fn set_xdp_ownership(&mut self, idx: usize, own: bool) {
        let inst = &self.instances[idx];
        let iface = &mut self.ifaces[inst.iface];
        let Some(dp) = iface.dataplane.as_mut() else {
            return;
        };
        if own && !iface.xdp_answers {
            // XDP_TX does not work here: leave the answers to the kernel (the VIP is bound).
            return;
        }
        let router = announce::ipv6_forwarding(&iface.name);
        let bound = liveness_bound(inst.cfg.advert_int);
        let mac = inst.vmac.unwrap_or(iface.mac);
        for v in inst.vips.iter().filter(|v| v.ifindex == iface.index) {
            let r = if own {
                dp.refresh_liveness(bound)
                    .and_then(|()| dp.own_vip(v.spec.addr, inst.cfg.vrid.get(), mac, router))
            } else {
                dp.disown_vip(v.spec.addr)
            };
            if let Err(e) = r {
                warn!(instance = %inst.cfg.name, vip = %v.spec.addr, error = %e, "XDP responder update failed");
            }
        }
        self.instances[idx].xdp_owned = own;
        if self.instances[idx].vmac.is_some() {
            // Frames for the virtual MAC are ours exactly while we answer with it.
            let (i, ipv6, vrid) = {
                let inst = &self.instances[idx];
                (
                    inst.iface,
                    inst.cfg.family == Family::V6,
                    inst.cfg.vrid.get(),
                )
            };
            let (c, _) = self.vrid_config(i, ipv6, vrid);
            if let Some(dp) = self.ifaces[i].dataplane.as_mut()
                && let Err(e) = dp.set_vrid(ipv6, vrid, c)
            {
                warn!(instance = %self.instances[idx].cfg.name, error = %e, "cannot update the XDP virtual MAC flag");
            }
        }
    }

    /// `use_vmac`: the virtual MAC in (or out of) the interface's unicast filter, so the NIC
    /// accepts frames sent to it (`bridge fdb add MAC dev IF self permanent`).
    async fn vmac_filter(&self, idx: usize, add: bool) {
        let inst = &self.instances[idx];
        let Some(mac) = inst.vmac else {
            return;
        };
        let ifindex = self.ifaces[inst.iface].index;
        let r = if add {
            self.netlink.fdb_add_self(ifindex, mac).await
        } else {
            self.netlink.fdb_del_self(ifindex, mac).await
        };
        if let Err(e) = r {
            warn!(instance = %inst.cfg.name, error = %e, "virtual MAC filter");
        }
    }

    /// Every second: the dead-man gate stays fresh, and a data plane whose XDP_TX fails stops
    /// answering so the kernel's ARP/ND does it (never worse than the kernel).
    fn data_plane_watch(&mut self) -> bool {
        let mut fell_back = false;
        for i in 0..self.ifaces.len() {
            let bound = self
                .instances
                .iter()
                .filter(|inst| inst.iface == i && inst.xdp_owned)
                .map(|inst| liveness_bound(inst.cfg.advert_int))
                .max();
            let iface = &mut self.ifaces[i];
            let Some(dp) = iface.dataplane.as_mut() else {
                continue;
            };
            if let Some(bound) = bound
                && let Err(e) = dp.refresh_liveness(bound)
            {
                warn!(iface = %iface.name, error = %e, "cannot refresh the XDP liveness stamp");
            }
            if let Ok(c) = dp.counters() {
                let unknown = c[vrrp_common::event::counter::DROP_UNKNOWN_VRID as usize];
                if unknown != iface.foreign.0
                    && let Ok(f) = dp.foreign_vrids()
                {
                    iface.foreign = (unknown, f);
                }
            }
            // XDP_TX is only used for owned VIPs: nothing to watch (three ioctls) before.
            if bound.is_none() {
                continue;
            }
            let errors = dp.xdp_tx_errors();
            if let (Some(now), Some(before)) = (errors, iface.tx_errors)
                && now > before
                && iface.xdp_answers
            {
                warn!(iface = %iface.name, errors = now - before, "XDP_TX fails on this interface: the kernel answers ARP/ND for the VIPs from now on");
                iface.xdp_answers = false;
                fell_back = true;
            }
            iface.tx_errors = errors;
        }
        for idx in 0..self.instances.len() {
            let inst = &self.instances[idx];
            if inst.xdp_owned && !self.ifaces[inst.iface].xdp_answers {
                self.set_xdp_ownership(idx, false);
            }
        }
        fell_back
    }

    /// The VIPs XDP answers for: the kernel must not answer for them, even after we die.
    fn xdp_answered_vips(&self) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self
            .instances
            .iter()
            .filter(|inst| {
                let iface = &self.ifaces[inst.iface];
                iface.dataplane.is_some() && iface.xdp_answers
            })
            .flat_map(|inst| inst.vips.iter().map(|b| b.spec.addr))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Brings the kernel ARP/NA filter in line with [`Self::xdp_answered_vips`]. Also clears
    /// a filter a crashed run left, when there is nothing to filter now.
    async fn sync_kernel_filter(&mut self) {
        let want = self.xdp_answered_vips();
        if self.kfilter.as_ref() == Some(&want) {
            return;
        }
        let r = if want.is_empty() {
            kfilter::clear().await
        } else {
            kfilter::install(&want).await
        };
        match r {
            Ok(()) => {
                if !want.is_empty() {
                    info!(
                        vips = want.len(),
                        table = kfilter::TABLE,
                        "kernel ARP/NA replies for the VIPs dropped (XDP answers them; a crash leaves no answerer)"
                    );
                }
                self.kfilter = Some(want);
            }
            Err(e) if want.is_empty() => debug!(error = %e, "no kernel filter to clear"),
            Err(e) => {
                warn!(error = %e, "cannot keep the kernel from answering ARP/NA for the VIPs: if this agent is killed while MASTER, the kernel answers for the VIPs it leaves bound until the next start");
                self.kfilter = None;
            }
        }
    }

    /// Another node acts as master for the instance while we are MASTER. The first signal of
    /// an episode raises the alarm (log, status, metric) and runs the split-brain and fence
    /// hooks once. Within one advert interval of becoming master (the old master may not have
    /// heard us yet) and while handing over (the new master announces itself) it is expected.
    fn split_brain_signal(&mut self, idx: usize, kind: &str, source: String) {
        let t = now();
        let inst = &mut self.instances[idx];
        if inst.vr.state() != State::Master || inst.vr.status(t).resigning {
            return;
        }
        let grace = inst.cfg.advert_int.as_duration();
        if inst
            .vr
            .last_transition()
            .is_some_and(|r| r.to == State::Master && t.saturating_duration_since(r.at) < grace)
        {
            debug!(instance = %inst.cfg.name, kind, %source, "another master right after our takeover: expected");
            return;
        }
        if let Some(sb) = inst.split_brain.as_mut() {
            sb.last = t;
            return;
        }
        inst.split_brain = Some(SplitBrain { last: t });
        inst.split_brain_episodes += 1;
        let name = inst.cfg.name.clone();
        error!(instance = %name, kind, %source, "SPLIT BRAIN: another node acts as master for our VRID while we are MASTER");
        if let Some(n) = &self.notifier {
            let args = vec![
                "INSTANCE".to_string(),
                name.clone(),
                kind.to_string(),
                source.clone(),
            ];
            n.hook(&name, Hook::SplitBrain, args.clone());
            if n.hook(&name, Hook::Fence, args) {
                warn!(instance = %name, %source, "split brain: fence hook started");
            }
        }
        self.publish();
    }

    /// Ends split-brain episodes that went quiet for a master-down interval, or whose instance
    /// is no longer MASTER.
    fn split_brain_expire(&mut self) {
        let t = now();
        let mut changed = false;
        for inst in &mut self.instances {
            let Some(sb) = &inst.split_brain else {
                continue;
            };
            let quiet = t.saturating_duration_since(sb.last) > inst.vr.master_down_interval();
            if quiet || inst.vr.state() != State::Master {
                info!(instance = %inst.cfg.name, state = state_name(inst.vr.state()), "split brain over");
                inst.split_brain = None;
                changed = true;
            }
        }
        if changed {
            self.publish();
        }
    }

    /// Tells the guardian what to say for the instance if we die now: priority 0 and its VIPs.
    fn arm_guardian(&mut self, idx: usize) {
        if self.guardian.is_none() {
            return;
        }
        let release = self.encoded_adverts(idx, Priority::RELEASE);
        let inst = &self.instances[idx];
        let sock = &self.socks[inst.sock].sock;
        let armed = guardian::Armed {
            key: inst.cfg.name.clone(),
            ifname: sock.ifname().to_string(),
            ifindex: sock.ifindex(),
            src: sock.source(),
            release,
            vips: inst
                .vips
                .iter()
                .map(|v| (v.ifindex, v.spec.addr, v.spec.prefix_len))
                .collect(),
        };
        // Heartbeat paths hear the priority 0 too: with the primary path cut, it is the only
        // way the backup learns at once that we are gone.
        let mut all = vec![armed];
        all.extend(self.heartbeat_releases(idx));
        for armed in all {
            if let Some(g) = self.guardian.as_mut()
                && let Err(e) = g.arm(armed)
            {
                warn!("{e}: a killed agent's VIPs move after the master-down interval instead");
                self.guardian = None;
            }
        }
    }

    fn disarm_guardian(&mut self, idx: usize) {
        let inst = &self.instances[idx];
        let mut keys = vec![inst.cfg.name.clone()];
        keys.extend(
            inst.heartbeats
                .iter()
                .map(|p| heartbeat_guardian_key(&inst.cfg.name, &p.iface)),
        );
        for key in keys {
            if let Some(g) = self.guardian.as_mut()
                && let Err(e) = g.disarm(&key)
            {
                warn!("{e}");
                self.guardian = None;
            }
        }
    }

    async fn on_incoming(&mut self, inc: Incoming) {
        match inc {
            Incoming::Advert(rx) => self.on_rx(rx).await,
            Incoming::MasterSilent {
                ifindex,
                ipv6,
                vrid,
            } => self.on_master_silent(ifindex, ipv6, vrid).await,
            Incoming::Conflict { ifindex, vip, mac } => {
                let iface = self
                    .ifaces
                    .iter()
                    .find(|i| i.index == ifindex)
                    .map(|i| i.name.clone())
                    .unwrap_or_default();
                let mac = crate::io::netlink::MacDisplay(mac);
                for idx in 0..self.instances.len() {
                    let inst = &mut self.instances[idx];
                    if !inst.vips.iter().any(|v| v.spec.addr == vip) {
                        continue;
                    }
                    // Only a claim while we hold the VIP is a conflict; during a handover the new
                    // master's gratuitous ARP can reach us just before its advert does.
                    if inst.vr.state() != State::Master {
                        debug!(instance = %inst.cfg.name, %vip, "VIP announced by another node while we are not master");
                        continue;
                    }
                    inst.conflicts += 1;
                    if inst.split_brain.is_none() {
                        warn!(instance = %inst.cfg.name, %iface, %vip, %mac, "another node claims our VIP while we are MASTER");
                    } else {
                        debug!(instance = %inst.cfg.name, %iface, %vip, %mac, "another node claims our VIP while we are MASTER");
                    }
                    self.split_brain_signal(idx, "vip_claimed", format!("{vip} by {mac}"));
                }
            }
        }
    }

    async fn on_rx(&mut self, rx: Rx) {
        let t = now();
        let (ifindex, family) = (rx.ifindex, rx.family);
        // No instance runs on a heartbeat interface (the config refuses it).
        if self
            .instances
            .iter()
            .any(|i| i.heartbeats.iter().any(|p| p.ifindex == ifindex))
        {
            self.on_heartbeat_rx(t, rx).await;
            return;
        }
        let advert = match rx.result {
            Ok(a) => a,
            Err(e) => {
                // Counted against every instance of the interface/family: the VRID may be
                // unreadable, and a malformed packet never changes state.
                debug!(src = %rx.src, error = %e, "malformed advert dropped");
                for inst in self
                    .instances
                    .iter_mut()
                    .filter(|i| self.ifaces[i.iface].index == ifindex && i.cfg.family == family)
                {
                    *inst.decode_errors.entry(e.kind()).or_default() += 1;
                }
                return;
            }
        };
        let Some(idx) = self.instances.iter().position(|i| {
            self.ifaces[i.iface].index == ifindex
                && i.cfg.family == family
                && i.cfg.vrid == advert.vrid
        }) else {
            self.unknown_vrid += 1;
            debug!(src = %rx.src, vrid = %advert.vrid, "advert for a VRID we do not run");
            return;
        };
        self.instances[idx].peers.insert(
            rx.src,
            Peer {
                priority: advert.priority,
                interval: advert.interval,
                last_seen: t,
            },
        );
        self.feed(
            idx,
            t,
            Input::Advert {
                src: rx.src,
                advert,
            },
        )
        .await;
    }

    /// An advert (or decode error) on a heartbeat interface: to the instance with that VRID
    /// whose path there lists the sender as a peer; anything else is dropped.
    async fn on_heartbeat_rx(&mut self, t: Instant, rx: Rx) {
        let (ifindex, family, src) = (rx.ifindex, rx.family, rx.src);
        let advert = match rx.result {
            Ok(a) => a,
            Err(e) => {
                debug!(%src, error = %e, "malformed advert on a heartbeat path dropped");
                for inst in self.instances.iter_mut().filter(|i| i.cfg.family == family) {
                    for p in inst
                        .heartbeats
                        .iter_mut()
                        .filter(|p| p.ifindex == ifindex && p.peers.contains(&src))
                    {
                        p.decode_errors += 1;
                    }
                }
                return;
            }
        };
        let found = self.instances.iter().enumerate().find_map(|(idx, i)| {
            if i.cfg.family != family || i.cfg.vrid != advert.vrid {
                return None;
            }
            i.heartbeats
                .iter()
                .position(|p| p.ifindex == ifindex && p.peers.contains(&src))
                .map(|pi| (idx, pi))
        });
        let Some((idx, pi)) = found else {
            debug!(%src, vrid = %advert.vrid, "advert on a heartbeat path from no configured peer of that VRID: dropped");
            return;
        };
        let path = &mut self.instances[idx].heartbeats[pi];
        let local = path.src;
        let heard = path.heard.entry(src).or_insert(HeardPeer {
            last: t,
            priority: advert.priority,
            adverts: 0,
        });
        heard.last = t;
        heard.priority = advert.priority;
        heard.adverts += 1;
        self.feed(idx, t, Input::HeartbeatAdvert { src, local, advert })
            .await;
    }

    async fn on_link(&mut self, ev: crate::io::netlink::LinkEvent) {
        let t = now();
        // track_interface may name interfaces no instance runs on.
        if !ev.lost {
            let name = match self.ifaces.iter().find(|i| i.index == ev.index) {
                Some(i) => Some(i.name.clone()),
                None => self
                    .netlink
                    .link_by_index(ev.index)
                    .await
                    .ok()
                    .map(|l| l.name),
            };
            if let Some(name) = name {
                self.tracker.link_changed(&name, ev.up && !ev.deleted);
            }
        }
        let changed: Vec<(usize, bool)> = if ev.lost {
            // Notifications were lost: re-read every interface.
            let mut v = Vec::new();
            for i in 0..self.ifaces.len() {
                if let Ok(l) = self.netlink.link_by_index(self.ifaces[i].index).await {
                    v.push((i, l.up));
                }
            }
            v
        } else {
            self.ifaces
                .iter()
                .position(|i| i.index == ev.index)
                .map(|i| vec![(i, ev.up && !ev.deleted)])
                .unwrap_or_default()
        };
        for (i, up) in changed {
            if self.ifaces[i].up == up {
                continue;
            }
            self.ifaces[i].up = up;
            info!(iface = %self.ifaces[i].name, up, "link state changed");
            for idx in 0..self.instances.len() {
                if self.instances[idx].iface == i {
                    self.feed(idx, t, Input::Link { up }).await;
                }
            }
        }
    }

    /// Hands an input to one router and carries out everything it asks for, in order. A
    /// change that a sync group must follow becomes inputs to the other members, fed the same
    /// way until nothing more follows (group-caused changes are not echoed back).
    async fn feed(&mut self, idx: usize, t: Instant, input: Input) {
        let mut queue = std::collections::VecDeque::from([(idx, input)]);
        let mut changed = false;
        let mut touched = Vec::new();
        while let Some((i, input)) = queue.pop_front() {
            if !touched.contains(&i) {
                touched.push(i);
            }
            let name = self.instances[i].cfg.name.clone();
            let before = self.instances[i].vr.sync_status();
            self.instances[i].vr.handle(t, input);
            while let Some(out) = self.instances[i].vr.poll_output() {
                changed |= matches!(
                    out,
                    Output::Transition { .. } | Output::PriorityChanged { .. }
                );
                for (member, inp) in self.sync.on_output(&name, &out) {
                    if let Some(j) = self.instances.iter().position(|x| x.cfg.name == member) {
                        queue.push_back((j, inp));
                    }
                }
                let transition = matches!(out, Output::Transition { .. });
                self.act(i, out).await;
                if transition {
                    self.group_notify(&name);
                }
            }
            let after = self.instances[i].vr.sync_status();
            for (member, inp) in self.sync.on_status(&name, before, after) {
                if let Some(j) = self.instances.iter().position(|x| x.cfg.name == member) {
                    queue.push_back((j, inp));
                }
            }
        }
        for i in touched {
            self.sync_watch(i);
        }
        if changed {
            self.publish();
        }
    }

    /// keepalived's group notify scripts: when every member of a sync group is in the same
    /// state and that differs from the group's last one.
    fn group_notify(&mut self, member: &str) {
        let Some(group) = self.sync.group_of(member).map(str::to_string) else {
            return;
        };
        let members: Vec<String> = self
            .sync
            .groups()
            .find(|(g, _)| *g == group)
            .map(|(_, m)| m.to_vec())
            .unwrap_or_default();
        let states: Vec<State> = members
            .iter()
            .filter_map(|m| {
                self.instances
                    .iter()
                    .find(|i| &i.cfg.name == m)
                    .map(|i| i.vr.state())
            })
            .collect();
        let Some(first) = states.first().copied() else {
            return;
        };
        if states.iter().any(|s| *s != first) || self.group_state.get(&group) == Some(&first) {
            return;
        }
        self.group_state.insert(group.clone(), first);
        if let (Some(n), Some(state)) = (&self.notifier, NotifyState::from_state(first)) {
            info!(group = %group, state = state_name(first), "sync group state");
            n.notify(NotifyEvent {
                kind: NotifyKind::Group,
                name: group,
                state,
                priority: Priority(0),
            });
        }
    }

    async fn act(&mut self, idx: usize, out: Output) {
        // The hot path (every advert of every master) first, without the name's allocation.
        if let Output::SendAdvert { priority } = out {
            return self.send_advert(idx, priority).await;
        }
        let name = self.instances[idx].cfg.name.clone();
        match out {
            Output::SendAdvert { .. } => {}
            Output::Announce { kind } => self.announce(idx, kind),
            Output::InstallVips => {
                let inst = &mut self.instances[idx];
                for v in &inst.vips {
                    if let Err(e) = self.netlink.add_address(v.ifindex, &v.spec).await {
                        error!(instance = %name, vip = %v.spec.addr, error = %e, "cannot bind VIP");
                    }
                }
                inst.installed = true;
                self.arm_guardian(idx);
            }
            Output::RemoveVips => {
                let inst = &mut self.instances[idx];
                for v in &inst.vips {
                    if let Err(e) = self.netlink.del_address(v.ifindex, &v.spec).await {
                        error!(instance = %name, vip = %v.spec.addr, error = %e, "cannot unbind VIP");
                    }
                }
                inst.installed = false;
                self.disarm_guardian(idx);
            }
            Output::SetXdpOwnership(own) => {
                if own {
                    self.vmac_filter(idx, true).await;
                }
                self.set_xdp_ownership(idx, own);
                if !own {
                    self.vmac_filter(idx, false).await;
                }
            }
            Output::Transition { from, to, reason } => {
                self.forget_advert(idx);
                let inst = &mut self.instances[idx];
                *inst
                    .transitions
                    .entry(reason_label(&reason).to_string())
                    .or_default() += 1;
                if let (Some(n), Some(state)) = (&self.notifier, NotifyState::from_state(to)) {
                    n.notify(NotifyEvent {
                        kind: NotifyKind::Instance,
                        name: name.clone(),
                        state,
                        priority: inst.vr.effective_priority(),
                    });
                }
                info!(
                    instance = %name,
                    vrid = %inst.cfg.vrid,
                    from = state_name(from),
                    to = state_name(to),
                    reason = %describe(&reason),
                    "state transition"
                );
            }
            Output::Dropped { src, reason } => {
                debug!(instance = %name, %src, ?reason, "advert dropped");
            }
            Output::Warning { src, warning } => {
                warn!(instance = %name, %src, ?warning, "advert does not match our configuration");
            }
            Output::MasterRxLowerPriority { src, priority } => {
                // Once per episode at info: in a partition this repeats every advert interval.
                if self.instances[idx].split_brain.is_some() {
                    debug!(instance = %name, %src, %priority, "master heard a lower priority advert; re-asserting");
                } else {
                    info!(instance = %name, %src, %priority, "master heard a lower priority advert; re-asserting");
                }
                if let Some(n) = &self.notifier {
                    n.hook(&name, Hook::MasterRxLowerPriority, Vec::new());
                }
                self.split_brain_signal(idx, "other_master", src.to_string());
            }
            Output::PriorityChanged { from, to } => {
                info!(instance = %name, %from, %to, "effective priority changed");
            }
            Output::HeartbeatMaster {
                src,
                priority,
                better,
            } => {
                // Heartbeat paths are liveness only (proto::vr `heartbeat_rx`): we stay MASTER
                // and say so loudly, once per episode; the fence hook may act.
                if self.instances[idx].split_brain.is_none() {
                    warn!(instance = %name, %src, %priority, better, "another master heard on a heartbeat path while we are MASTER; staying MASTER (heartbeat paths never decide the election)");
                }
                self.split_brain_signal(idx, "heartbeat_master", src.to_string());
            }
            Output::ConfigRejected { error } => {
                error!(instance = %name, %error, "configuration change rejected");
            }
            Output::ResignTimedOut { resumed: true } => {
                warn!(instance = %name, "handover: no new master within the master-down interval; staying MASTER");
            }
            Output::ResignTimedOut { resumed: false } => {
                warn!(instance = %name, "stopping: no new master within the master-down interval; releasing the VIPs anyway");
            }
        }
    }

    async fn send_advert(&mut self, idx: usize, priority: Priority) {
        if self.instances[idx].xdp_owned {
            let bound = liveness_bound(self.instances[idx].cfg.advert_int);
            let iface = self.instances[idx].iface;
            if let Some(dp) = self.ifaces[iface].dataplane.as_mut() {
                let _ = dp.refresh_liveness(bound);
            }
        }
        let inst = &self.instances[idx];
        let sock = &self.socks[inst.sock].sock;
        // use_vmac: a master's multicast adverts come from the virtual MAC (RFC 9568 §7.3),
        // unless vmac_xmit_base; only a whole frame on the packet socket can say so.
        let from_vmac = inst
            .vmac
            .filter(|_| inst.vr.state() == State::Master)
            .filter(|_| !inst.cfg.vmac.as_ref().is_some_and(|v| v.xmit_base));
        let src = sock.source();
        let cached = matches!(&inst.advert_cache, Some((p, s, _)) if *p == priority && *s == src);
        if !cached {
            let enc = self.encoded_adverts(idx, priority);
            self.instances[idx].advert_cache = Some((priority, src, enc));
        }
        let inst = &self.instances[idx];
        let sock = &self.socks[inst.sock].sock;
        let announcer = self.ifaces[inst.iface].announcer.as_ref();
        let adverts = inst.advert_cache.as_ref().map_or(&[][..], |c| &c.2[..]);
        for (dst, buf) in adverts {
            let (dst, buf) = (*dst, &buf[..]);
            if let (Some(mac), Some(a)) = (from_vmac, announcer)
                && let Some(frame) = announce::vrrp_multicast_frame(mac, sock.source(), dst, buf)
            {
                if let Err(e) = a.send_frame(&frame).await {
                    warn!(instance = %inst.cfg.name, %dst, error = %e, "cannot send advert");
                }
                continue;
            }
            if let Err(e) = sock.send(dst, buf).await {
                warn!(instance = %inst.cfg.name, %dst, error = %e, "cannot send advert");
            }
        }
        self.send_heartbeats(idx, priority).await;
    }

    /// The same advert unicast to every heartbeat peer, from our address on its path (the
    /// checksum covers that source and destination).
    async fn send_heartbeats(&mut self, idx: usize, priority: Priority) {
        if self.instances[idx].heartbeats.is_empty() {
            return;
        }
        let advert = self.advert(idx, priority);
        let inst = &mut self.instances[idx];
        for p in &mut inst.heartbeats {
            let sock = &self.socks[p.sock].sock;
            for dst in &p.peers {
                let mut buf = Vec::with_capacity(64);
                if let Err(e) = codec::encode(&advert, p.src, *dst, inst.form, &mut buf) {
                    error!(instance = %inst.cfg.name, error = %e, "cannot encode heartbeat advert");
                    continue;
                }
                match sock.send(*dst, &buf).await {
                    Ok(()) => {
                        p.adverts_sent += 1;
                        if p.failing {
                            info!(instance = %inst.cfg.name, iface = %p.iface, "heartbeat path sends again");
                            p.failing = false;
                        }
                    }
                    Err(e) => {
                        p.send_errors += 1;
                        if !p.failing {
                            warn!(instance = %inst.cfg.name, iface = %p.iface, %dst, error = %e, "cannot send on the heartbeat path (warned once until it works again)");
                            p.failing = true;
                        }
                    }
                }
            }
        }
    }

    /// What the guardian must send on each heartbeat path if we die while MASTER: the
    /// priority 0 advert to every peer (no VIPs: the primary entry unbinds them).
    fn heartbeat_releases(&self, idx: usize) -> Vec<guardian::Armed> {
        let inst = &self.instances[idx];
        let advert = self.advert(idx, Priority::RELEASE);
        let mut out = Vec::new();
        for p in &inst.heartbeats {
            let mut release = Vec::new();
            for dst in &p.peers {
                let mut buf = Vec::with_capacity(64);
                if codec::encode(&advert, p.src, *dst, inst.form, &mut buf).is_ok() {
                    release.push((*dst, buf));
                }
            }
            out.push(guardian::Armed {
                key: heartbeat_guardian_key(&inst.cfg.name, &p.iface),
                ifname: p.iface.clone(),
                ifindex: p.ifindex,
                src: p.src,
                release,
                vips: Vec::new(),
            });
        }
        out
    }

    /// The instance's advert with `priority`, encoded for each destination.
    fn encoded_adverts(&self, idx: usize, priority: Priority) -> Vec<(IpAddr, Vec<u8>)> {
        let inst = &self.instances[idx];
        let sock = &self.socks[inst.sock].sock;
        let advert = self.advert(idx, priority);
        let mut out = Vec::with_capacity(inst.destinations.len());
        for dst in &inst.destinations {
            let mut buf = Vec::with_capacity(64);
            if let Err(e) = codec::encode(&advert, sock.source(), *dst, inst.form, &mut buf) {
                error!(instance = %inst.cfg.name, error = %e, "cannot encode advert");
                return Vec::new();
            }
            out.push((*dst, buf));
        }
        out
    }

    /// The instance's advert with `priority`.
    fn advert(&self, idx: usize, priority: Priority) -> Advert {
        let inst = &self.instances[idx];
        Advert {
            version: inst.cfg.version,
            vrid: inst.cfg.vrid,
            priority,
            interval: inst.cfg.advert_int,
            // VRRPv2/v3 carry at most 255 addresses (the config moves the rest to excluded).
            addresses: inst
                .vips
                .iter()
                .map(|v| v.spec.addr)
                .filter(|a| family_of(*a) == inst.cfg.family)
                .collect(),
            auth: if inst.cfg.version == Version::V2 {
                inst.cfg.auth
            } else {
                Auth::None
            },
        }
    }

    /// Gratuitous ARP / unsolicited NA for the instance's VIPs, in a task so repeats and their
    /// spacing never hold up the election.
    fn announce(&self, idx: usize, kind: AnnounceKind) {
        let inst = &self.instances[idx];
        let iface = &self.ifaces[inst.iface];
        let Some(announcer) = iface.announcer.clone() else {
            return;
        };
        let repeat = match kind {
            AnnounceKind::Refresh => inst.cfg.garp.master_refresh_repeat,
            _ => inst.cfg.garp.master_repeat,
        }
        .max(1);
        let router = announce::ipv6_forwarding(&iface.name);
        let mac = inst.vmac.unwrap_or(iface.mac);
        let mut frames: Vec<Vec<u8>> = Vec::new();
        for v in &inst.vips {
            match v.spec.addr {
                IpAddr::V4(a) => frames.push(announce::garp_frame(mac, a).to_vec()),
                IpAddr::V6(a) => {
                    frames.push(announce::unsolicited_na_frame(mac, a, a, router).to_vec())
                }
            }
        }
        let gap = if inst.cfg.family == Family::V4 {
            self.garp_interval
        } else {
            self.gna_interval
        };
        let name = inst.cfg.name.clone();
        tokio::spawn(async move {
            for round in 0..repeat {
                for f in &frames {
                    if let Err(e) = announcer.send_frame(f).await {
                        warn!(instance = %name, error = %e, "cannot send gratuitous ARP / NA");
                    }
                    if !gap.is_zero() {
                        tokio::time::sleep(gap).await;
                    }
                }
                debug!(instance = %name, round, ?kind, "announced VIPs");
            }
        });
    }

    async fn remove_vips_of(&self, idx: usize) {
        for v in &self.instances[idx].vips {
            let _ = self.netlink.del_address(v.ifindex, &v.spec).await;
        }
    }

    async fn remove_all_vips(&self) {
        for inst in &self.instances {
            for v in &inst.vips {
                let _ = self.netlink.del_address(v.ifindex, &v.spec).await;
            }
        }
    }

    async fn shutdown(&mut self) {
        let t = now();
        for idx in 0..self.instances.len() {
            self.feed(idx, t, Input::Shutdown).await;
        }
        self.remove_all_vips().await;
        if self.kfilter.take().is_some()
            && let Err(e) = kfilter::clear().await
        {
            warn!(error = %e, "cannot remove the kernel ARP/NA filter");
        }
        if let Some(g) = self.guardian.take() {
            g.goodbye();
        }
        self.tracker.stop().await;
        if let Some(n) = self.notifier.take() {
            // Runs the queued notify_stop scripts before exiting.
            n.shutdown().await;
        }
        info!("vrrp-agent stopped");
    }

    fn log_status(&self) {
        let t = now();
        for inst in &self.instances {
            let st = inst.vr.status(t);
            info!(
                instance = %inst.cfg.name,
                state = state_name(st.state),
                priority = %st.effective_priority,
                master = ?st.master.map(|m| m.addr),
                "status"
            );
        }
        for iface in &self.ifaces {
            if let Some(dp) = &iface.dataplane
                && let Ok(c) = dp.counters()
            {
                let nz: Vec<String> = c
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| **v > 0)
                    .map(|(i, v)| format!("{}={v}", vrrp_common::event::counter::NAMES[i]))
                    .collect();
                info!(iface = %iface.name, mode = %dp.mode(), counters = %nz.join(" "), "data plane");
            }
        }
    }
}

/// Reads adverts from one socket forever, decoding them off the main task.
/// Forwards the XDP program's events (adverts with news, VIP conflicts) to the main task.
fn spawn_dataplane_reader(ifindex: u32, mut events: xdp::EventReader, tx: mpsc::Sender<Incoming>) {
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
                        family: family_of(meta.src),
                        src: meta.src,
                        result: Ok(d.advert),
                    }),
                    Err(e) => {
                        debug!(ifindex, error = %e, "undecodable advert from the data plane");
                        continue;
                    }
                },
                xdp::DataPlaneEvent::MasterSilent {
                    ifindex: _,
                    ipv6,
                    vrid,
                    ..
                } => Incoming::MasterSilent {
                    // The ring is per interface: this one's, whatever the record says.
                    ifindex,
                    ipv6,
                    vrid,
                },
                xdp::DataPlaneEvent::ArpConflict {
                    ifindex, vip, mac, ..
                } => Incoming::Conflict {
                    ifindex,
                    vip: IpAddr::V4(vip),
                    mac,
                },
                xdp::DataPlaneEvent::NaConflict {
                    ifindex, vip, mac, ..
                } => Incoming::Conflict {
                    ifindex,
                    vip: IpAddr::V6(vip),
                    mac,
                },
            };
            if tx.send(inc).await.is_err() {
                return;
            }
        }
    });
}

fn spawn_reader(sock: Arc<AdvertSocket>, tx: mpsc::Sender<Incoming>) {
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
            let result = codec::decode(&meta, r.payload(&buf)).map(|d| d.advert);
            let rx = Rx {
                ifindex: sock.ifindex(),
                family: sock.family(),
                src: r.src,
                result,
            };
            if tx.send(Incoming::Advert(rx)).await.is_err() {
                return;
            }
        }
    });
}

async fn primary_address(
    nl: &Netlink,
    ifindex: u32,
    family: Family,
    vips: &[IpAddr],
) -> Result<IpAddr> {
    // An IPv6 link-local address may still be tentative right after the link came up.
    let mut last = None;
    for _ in 0..50 {
        match nl.primary_address(ifindex, family, vips).await {
            Ok(a) => return Ok(a),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow!("no address")))
}

/// With `use_vmac` the kernel must not send ARP requests from a VIP with the interface MAC
/// (clients would learn that MAC for the VIP): `arp_announce = 2` picks the interface's own
/// address as the sender, as keepalived's VMAC setup recommends.
fn vmac_arp_announce(iface: &str) {
    let path = format!("/proc/sys/net/ipv4/conf/{iface}/arp_announce");
    let now = std::fs::read_to_string(&path).unwrap_or_default();
    if now.trim().parse::<u8>().is_ok_and(|v| v >= 2) {
        return;
    }
    match std::fs::write(&path, "2") {
        Ok(()) => {
            info!(%iface, "use_vmac: net.ipv4.conf.{iface}.arp_announce set to 2 (ARP requests never come from a VIP)")
        }
        Err(e) => {
            warn!(%iface, error = %e, "use_vmac: cannot set arp_announce = 2: clients may learn the interface MAC for a VIP")
        }
    }
}

/// The guardian's entry for an instance's heartbeat path (the instance's own is its name).
fn heartbeat_guardian_key(instance: &str, iface: &str) -> String {
    format!("{instance} (heartbeat {iface})")
}

/// The driver's housekeeping period (dead-man stamp, XDP_TX watch, status).
const TICK: Duration = Duration::from_secs(1);

/// How stale the agent's liveness stamp may get before XDP stops answering for its VIPs: three
/// advert intervals (the backup's own patience), at least 100 ms so scheduling noise at short
/// intervals does not silence a healthy master.
fn liveness_bound(advert_int: crate::proto::Centisecs) -> Duration {
    (advert_int.as_duration() * 3).max(Duration::from_millis(100))
}

/// Gives the heap the set-up freed back to the system: loading the program parses the
/// kernel's BTF (megabytes), and glibc would otherwise keep those pages resident for ever.
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}

fn unix_now() -> f64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "wall-clock time for the status snapshot"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The first line of an error: a verifier log does not belong in a one-line warning.
fn short(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    match s.split_once('\n') {
        Some((first, _)) => format!("{first} (...)"),
        None => s,
    }
}

fn vip_spec(v: &config::VirtualAddress) -> VipSpec {
    let mut s = VipSpec::new(v.addr, v.prefix_len);
    s.label = v.label.clone();
    s.broadcast = v.broadcast;
    s.scope = v.scope;
    // keepalived adds every IPv6 VIP with IFA_F_NODAD so it is never tentative.
    s.nodad = v.addr.is_ipv6() || v.nodad;
    s
}

fn family_of(a: IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// The state machine's view of a keepalived instance.
fn vr_config(cfg: &Config, inst: &config::Instance, primary: IpAddr) -> VrConfig {
    let addresses: Vec<IpAddr> = inst.vips.iter().map(|v| v.addr).collect();
    let mut c = VrConfig::keepalived_defaults(inst.vrid, inst.family, primary, addresses);
    c.version = inst.version;
    c.priority = inst.priority;
    c.interval = inst.advert_int;
    c.preempt = inst.preempt;
    c.preempt_delay = inst.preempt_delay;
    c.accept = inst.accept;
    c.auth = inst.auth;
    c.initial = match inst.state {
        config::InitialState::Master => vr::InitialState::Master,
        config::InitialState::Backup => vr::InitialState::Backup,
    };
    c.unicast_peers = inst.unicast_peers.iter().map(|p| p.addr).collect();
    c.check_unicast_src = cfg.global.check_unicast_src;
    c.garp_master_delay = inst.garp.master_delay;
    c.garp_master_refresh =
        (!inst.garp.master_refresh.is_zero()).then_some(inst.garp.master_refresh);
    c
}

pub fn state_name(s: State) -> &'static str {
    match s {
        State::Initialize => "INIT",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
        State::Stopped => "STOP",
    }
}

pub fn reason_label(r: &Reason) -> &'static str {
    match r {
        Reason::Startup => "startup",
        Reason::Owner => "owner",
        Reason::InitialMaster { .. } => "initial_master",
        Reason::MasterDown { .. } => "master_down",
        Reason::PriorityZeroReceived { .. } => "priority_zero_received",
        Reason::Preempt { .. } => "preempt",
        Reason::HigherPriority { .. } => "higher_priority",
        Reason::LinkDown => "link_down",
        Reason::LinkUp => "link_up",
        Reason::TrackFailed => "track_failed",
        Reason::TrackRecovered => "track_recovered",
        Reason::Shutdown => "shutdown",
        Reason::HandedOver { .. } => "handed_over",
        Reason::SyncGroup { .. } => "sync_group",
    }
}

/// A transition reason as an operator reads it in the log.
pub fn describe(r: &Reason) -> String {
    match r {
        Reason::Startup => "startup".into(),
        Reason::Owner => "address owner (priority 255)".into(),
        Reason::InitialMaster { after } => {
            format!(
                "configured state MASTER and no master heard for {} ms",
                after.as_millis()
            )
        }
        Reason::MasterDown { after } => {
            format!("master down after {} ms without adverts", after.as_millis())
        }
        Reason::PriorityZeroReceived { src } => {
            format!("priority 0 received from {src} (master leaving)")
        }
        Reason::Preempt { src, priority } => {
            format!("preempted lower priority master {src} (priority {priority})")
        }
        Reason::HigherPriority { src, priority } => {
            // Also the equal-priority tie-break, which the higher address wins.
            format!("a better master: priority {priority} from {src}")
        }
        Reason::LinkDown => "interface down".into(),
        Reason::LinkUp => "interface up".into(),
        Reason::TrackFailed => "tracked check failed".into(),
        Reason::TrackRecovered => "tracked checks recovered".into(),
        Reason::Shutdown => "shutdown".into(),
        Reason::HandedOver { to } => format!("handed over: new master {to} heard"),
        Reason::SyncGroup {
            group,
            member,
            event,
        } => {
            format!("sync group {group}: member {member} went {event:?}")
        }
    }
}
