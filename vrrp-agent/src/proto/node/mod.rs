//! Every virtual router of the process, above the RFC machine: sans-IO, in the shape of
//! quinn-proto's `Endpoint`. It routes received adverts to routers by interface, family and
//! VRID, fans sync-group changes out, keeps the data-plane plan, split-brain episodes and
//! heartbeat paths, and applies reloads. It performs no I/O: the driver feeds
//! [`NodeInput`]s with the time, drains [`Action`]s with [`Node::poll_action`], and calls
//! `handle(now, NodeInput::Timer { .. })` once `now >= poll_timeout()`.
//!
//! Rules from the RFCs live in [`crate::proto::vr`]; everything here is local policy, each in
//! its own module: [`split_brain`], [`heartbeat`], [`reload`], [`dataplane`], [`peers`].

mod act;
pub mod dataplane;
pub mod heartbeat;
mod input;
pub mod peers;
pub mod reload;
pub mod restore;
pub mod split_brain;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tracing::{error, info, warn};
use vrrp_common::maps::AdvertState;

use crate::proto::codec::{self, ChecksumForm, DecodeError};
use crate::proto::sync::SyncGroups;
use crate::proto::vr::{AnnounceKind, ConfigError, Input, Output, State, VirtualRouter, VrConfig};
use crate::proto::{Advert, Auth, Family, Priority, Version, VipSpec};
use crate::wake;

pub use dataplane::DpOp;
pub use heartbeat::HeartbeatSpec;

/// An instance of this process. Ids are never reused: a restarted instance gets a new one, so
/// a late answer about the old one cannot touch the new.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InstanceId(pub u32);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// An interface as the driver opened it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceSpec {
    pub index: u32,
    pub name: String,
    pub mac: [u8; 6],
    /// Link state when opened.
    pub up: bool,
    /// An XDP program is attached (else raw sockets only).
    pub xdp: bool,
}

/// A VIP and the interface it is bound on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VipBinding {
    pub ifindex: u32,
    pub spec: VipSpec,
}

/// One instance, resolved by the driver (interface index, source address, VIP interfaces).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub name: String,
    pub iface: String,
    pub ifindex: u32,
    /// The state machine's configuration, before its own fix-ups.
    pub vr: VrConfig,
    /// The advert socket's source address (the socket is keyed by `(ifindex, src)`).
    pub src: IpAddr,
    pub vips: Vec<VipBinding>,
    /// The multicast group or the unicast peers.
    pub destinations: Vec<IpAddr>,
    /// The TTL / hop limit adverts to `destinations` leave with: 255 (RFC 9568 §5.1.1.3), or
    /// keepalived's `unicast_ttl` to unicast peers.
    #[serde(default = "rfc_ttl", skip_serializing_if = "is_rfc_ttl")]
    pub ttl: u8,
    pub heartbeats: Vec<HeartbeatSpec>,
    /// The checksum form we send (VRRPv3 over IPv4), and to peers never heard in auto mode.
    pub form: ChecksumForm,
    /// `vrrp_xdp_checksum_auto`: answer each peer in the form it uses (see
    /// [`Instance::form_plan`]).
    #[serde(default)]
    pub form_auto: bool,
    /// `use_vmac` in effect (needs XDP): the MAC answers, GARPs and adverts use while MASTER.
    pub vmac: Option<[u8; 6]>,
    /// `vmac_xmit_base`: adverts from the interface MAC anyway.
    pub vmac_xmit_base: bool,
    /// `garp_master_repeat`, `garp_master_refresh_repeat`.
    pub garp_repeat: u32,
    pub garp_refresh_repeat: u32,
    /// The instance tracks something: it waits in Initialize for the first result.
    pub tracks: bool,
}

fn rfc_ttl() -> u8 {
    vrrp_common::wire::VRRP_TTL
}

/// Left out of transcripts when it is the RFC's 255.
fn is_rfc_ttl(ttl: &u8) -> bool {
    *ttl == vrrp_common::wire::VRRP_TTL
}

/// Everything the node runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeConfig {
    pub ifaces: Vec<IfaceSpec>,
    pub instances: Vec<InstanceSpec>,
    pub sync_groups: Vec<(String, Vec<String>)>,
    pub garp_interval: Duration,
    pub gna_interval: Duration,
}

/// What the data plane holds for a VRID slot, read by the driver: the last advert it passed
/// up or absorbed (`ADVERTS`), the slot's previous holder (`OTHERS`), and CLOCK_MONOTONIC at
/// the read, so that kernel stamps convert to `Instant`s without a clock here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelSlot {
    pub current: Option<AdvertState>,
    pub others: Option<AdvertState>,
    pub mono_now_ns: u64,
}

/// A VRID slot of an interface's program: `(ifindex, ipv6, vrid)`.
pub type SlotKey = (u32, bool, u8);

/// Everything the node is told. (De)serializable for transcripts; what only the kernel can
/// say (its slots, its timer cover, the driver's early wake-up) is left out of them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum NodeInput {
    /// Before anything starts: clear what a crashed run may have left (VIPs bound, virtual MAC
    /// filters, the kernel ARP/NA filter). RFC 9568 §6.4.1: Initialize owns no address.
    Prepare,
    /// The RFC's Startup event for every instance not waiting for its first tracking result.
    Start,
    /// An advert (or the reason it did not decode) from a raw socket or the XDP events ring.
    Advert {
        ifindex: u32,
        family: Family,
        src: IpAddr,
        result: Result<Advert, DecodeError>,
        /// The checksum form the sender used (RFC 9568 §5.2.8 or the pseudo-header one).
        #[serde(default)]
        form: Option<ChecksumForm>,
        /// `RxMeta::unchecked_ttl`: the TTL of an advert to our unicast address, which the
        /// codec left to the instance (see `vr::Input::Advert`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u8>,
    },
    /// The kernel timer watching a backup's master ran out.
    MasterSilent {
        key: SlotKey,
        #[serde(skip)]
        slot: KernelSlot,
    },
    /// The driver's timer fired (or the housekeeping tick, with `early`: instances sleeping on
    /// a kernel timer whose backstop is due by then are taken now). `slots` holds the kernel
    /// reads [`Node::kernel_reads`] asked for.
    Timer {
        #[serde(skip)]
        early: Option<Instant>,
        #[serde(skip)]
        slots: Vec<(SlotKey, KernelSlot)>,
    },
    /// The answer to [`Action::Watch`]: whether the driver may sleep on the kernel timer.
    Cover {
        id: InstanceId,
        #[serde(skip)]
        cover: Option<wake::Cover>,
    },
    /// Another MAC claims one of our VIPs (seen by XDP).
    VipClaimed {
        ifindex: u32,
        vip: IpAddr,
        mac: [u8; 6],
    },
    Link {
        ifindex: u32,
        up: bool,
    },
    /// The tracking result of an instance (priority, weight-0 failure).
    Tracking {
        instance: String,
        priority: Priority,
        fault: bool,
        reasons: Vec<String>,
    },
    /// An address went from an interface (netlink): if it is a VIP we hold, someone took it
    /// behind our back (`ip addr flush`, another program) and it is restored.
    AddressRemoved {
        ifindex: u32,
        addr: IpAddr,
    },
    /// XDP_TX fails on an interface: the kernel answers ARP/ND there from now on.
    XdpTxFailing {
        ifindex: u32,
    },
    /// Housekeeping, once a second: split-brain episodes expire, the dead-man stamp is kept
    /// fresh, the status is published.
    Tick,
    /// Every router stops (priority 0 from masters, VIPs removed).
    Shutdown,
}

/// keepalived's notify scripts and FIFO lines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notify {
    pub group: bool,
    pub name: String,
    pub state: State,
    pub priority: Priority,
}

/// Per-instance hooks (`notify_master_rx_lower_pri`, our split-brain and fence hooks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum HookKind {
    MasterRxLowerPriority,
    SplitBrain,
    Fence,
}

/// Gratuitous ARPs / unsolicited NAs for an instance's VIPs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Announce {
    pub instance: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    pub vips: Vec<IpAddr>,
    pub repeat: u32,
    /// Between two frames.
    pub gap: Duration,
    pub kind: AnnounceKind,
}

/// What the guardian must do for one MASTER instance (or one of its heartbeat paths) if the
/// agent dies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Armed {
    /// The instance name, or [`heartbeat::guardian_key`] (arming again replaces it).
    pub key: String,
    pub ifname: String,
    pub ifindex: u32,
    /// The advert socket's source address.
    pub src: IpAddr,
    /// Each destination with its encoded priority 0 VRRP message (checksum included).
    pub release: Vec<(IpAddr, Vec<u8>)>,
    /// Their TTL (`InstanceSpec::ttl`).
    #[serde(default = "rfc_ttl", skip_serializing_if = "is_rfc_ttl")]
    pub ttl: u8,
    /// VIPs to unbind: (interface index, address, prefix length).
    pub vips: Vec<(u32, IpAddr, u8)>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum Action {
    /// Send the instance's advert: [`Node::adverts`] has its bytes.
    SendAdvert {
        id: InstanceId,
        priority: Priority,
    },
    Announce(Announce),
    InstallVips {
        id: InstanceId,
        vips: Vec<VipBinding>,
    },
    /// Also stale ones at [`NodeInput::Prepare`], and a stopped instance's (no error then).
    RemoveVips {
        id: InstanceId,
        vips: Vec<VipBinding>,
    },
    Dataplane(DpOp),
    /// Clear the slot's advert record so the next advert is reported even if unchanged.
    ForgetAdvert {
        key: SlotKey,
    },
    /// Keep the slot's master-silence timer at `master_down` (`None`: unused) and answer with
    /// [`NodeInput::Cover`] (only while `backup`, from `master`'s adverts).
    Watch {
        id: InstanceId,
        key: SlotKey,
        master_down: Option<Duration>,
        master: Option<IpAddr>,
        backup: bool,
    },
    /// Stamp the dead-man gate of an interface's program (answers stop if it goes stale).
    RefreshLiveness {
        ifindex: u32,
        bound: Duration,
    },
    /// The virtual MAC in (or out of) the interface's unicast filter.
    VmacFilter {
        ifindex: u32,
        mac: [u8; 6],
        add: bool,
    },
    /// `use_vmac`: `arp_announce = 2` on the interface.
    ArpAnnounce {
        iface: String,
    },
    /// The VIPs the kernel must not answer ARP/NA for (empty: remove the filter).
    KernelFilter(Vec<IpAddr>),
    GuardianArm(Armed),
    GuardianDisarm(String),
    Notify(Notify),
    Hook {
        instance: String,
        hook: HookKind,
        args: Vec<String>,
    },
    /// The status changed: publish a snapshot.
    Publish,
}

/// (priority, source address, each destination with its encoded VRRP message).
type AdvertCache = (Priority, IpAddr, Vec<(IpAddr, Vec<u8>)>);

/// One instance: its spec, its router, and what the node knows around it.
#[derive(Debug)]
pub struct Instance {
    pub spec: InstanceSpec,
    pub vr: VirtualRouter,
    pub installed: bool,
    /// The RFC Startup event was given.
    pub started: bool,
    /// The last tracking result applied: (priority, fault, reasons).
    pub tracked: Option<(Priority, bool, Vec<String>)>,
    /// The newest kernel timestamp of an absorbed advert already given to the router.
    pub kernel_seen_ns: u64,
    /// The kernel timer the driver may sleep on instead of the router's deadline.
    pub cover: Option<wake::Cover>,
    /// What the last `Watch` asked for.
    watch: Option<Option<Duration>>,
    pub timer_wakeups: u64,
    pub silent_reports: u64,
    /// The router asked for XDP ownership of its VIPs (MASTER).
    pub wants_ownership: bool,
    pub conflicts: u64,
    /// VIPs restored after someone else removed them while we were MASTER.
    pub vips_restored: u64,
    /// The priority of our last advert (XDP yields to a higher one while we own the VIPs).
    pub advertised: Option<Priority>,
    /// Paces restores against something that keeps removing our VIPs.
    pub restore: restore::Backoff,
    pub split_brain: split_brain::SplitBrain,
    pub peers: peers::PeerTable,
    pub paths: Vec<heartbeat::PathState>,
    pub transitions: BTreeMap<String, u64>,
    advert_cache: Option<AdvertCache>,
    /// Rate limit of the "advert does not match" warning: when it was last logged.
    warned_at: Option<Instant>,
    /// Adverts whose checksum form differs from ours, and the peers warned about it.
    pub form_mismatches: u64,
    form_warned: BTreeSet<IpAddr>,
    /// Rate limit of the receive-discard warnings, per (reason, sender).
    discards_logged: BTreeMap<(&'static str, IpAddr), Instant>,
}

impl Instance {
    fn new(spec: InstanceSpec, now: Instant) -> Result<Self, ConfigError> {
        let vr = VirtualRouter::new(spec.vr.clone(), now)?;
        Ok(Self {
            paths: vec![heartbeat::PathState::default(); spec.heartbeats.len()],
            spec,
            vr,
            installed: false,
            started: false,
            tracked: None,
            kernel_seen_ns: 0,
            cover: None,
            watch: None,
            timer_wakeups: 0,
            silent_reports: 0,
            wants_ownership: false,
            conflicts: 0,
            vips_restored: 0,
            advertised: None,
            restore: restore::Backoff::default(),
            split_brain: split_brain::SplitBrain::default(),
            peers: peers::PeerTable::default(),
            transitions: BTreeMap::new(),
            advert_cache: None,
            warned_at: None,
            discards_logged: BTreeMap::new(),
            form_mismatches: 0,
            form_warned: BTreeSet::new(),
        })
    }

    /// When the driver must wake up for this instance (see [`wake::wake_at`]).
    pub fn wake_at(&self) -> Option<Instant> {
        wake::wake_at(self.vr.poll_timeout(), self.cover)
    }

    fn key(&self) -> SlotKey {
        (
            self.spec.ifindex,
            self.spec.vr.family == Family::V6,
            self.spec.vr.vrid.get(),
        )
    }

    fn waits_for_tracking(&self) -> bool {
        self.spec.tracks && self.tracked.is_none()
    }

    /// The instance's advert with `priority`.
    fn advert(&self, priority: Priority) -> Advert {
        let c = &self.spec.vr;
        Advert {
            version: c.version,
            vrid: c.vrid,
            priority,
            interval: c.interval,
            // VRRPv2/v3 carry at most 255 addresses (the config moves the rest to excluded).
            addresses: self
                .spec
                .vips
                .iter()
                .map(|v| v.spec.addr)
                .filter(|a| family(*a) == c.family)
                .collect(),
            auth: if c.version == Version::V2 {
                c.auth
            } else {
                Auth::None
            },
        }
    }

    /// Our form to each destination (heartbeat paths: their peers are agents, which accept
    /// both forms).
    fn encode_to(
        &self,
        priority: Priority,
        src: IpAddr,
        dsts: &[IpAddr],
    ) -> Vec<(IpAddr, Vec<u8>)> {
        let plan: Vec<_> = dsts.iter().map(|d| (*d, self.spec.form)).collect();
        self.encode_plan(priority, src, &plan)
    }

    fn encode_plan(
        &self,
        priority: Priority,
        src: IpAddr,
        plan: &[(IpAddr, ChecksumForm)],
    ) -> Vec<(IpAddr, Vec<u8>)> {
        let advert = self.advert(priority);
        let mut out = Vec::with_capacity(plan.len());
        for (dst, form) in plan {
            let mut buf = Vec::with_capacity(64);
            if let Err(e) = codec::encode(&advert, src, *dst, *form, &mut buf) {
                error!(instance = %self.spec.name, error = %e, "cannot encode advert");
                return Vec::new();
            }
            out.push((*dst, buf));
        }
        if self.spec.vr.v2_interop {
            // RFC 9568 §8.4: a v2 copy of each advert, for the v2 routers of a rolling upgrade
            // (they drop the v3 one); v3 routers ignore it since we send v3 too.
            let v2 = Advert {
                version: Version::V2,
                auth: self.spec.vr.auth,
                ..advert
            };
            let mut dsts: Vec<IpAddr> = Vec::with_capacity(plan.len());
            for (dst, _) in plan {
                if !dsts.contains(dst) {
                    dsts.push(*dst);
                }
            }
            for dst in &dsts {
                let mut buf = Vec::with_capacity(64);
                // VRRPv2 has one checksum form (RFC 3768 §5.3.8): `form` is not used.
                match codec::encode(&v2, src, *dst, self.spec.form, &mut buf) {
                    Ok(()) => out.push((*dst, buf)),
                    Err(e) => {
                        error!(instance = %self.spec.name, error = %e, "cannot encode VRRPv2 advert");
                    }
                }
            }
        }
        out
    }

    /// The primary path's messages: (destination, checksum form), in sending order. Without
    /// `vrrp_xdp_checksum_auto`, or where only one form exists (VRRPv2, IPv6), ours to each.
    /// In auto mode a unicast peer gets the form it was last heard in (ours if never heard);
    /// a multicast group gets ours first, then the other form if a peer in the table uses it
    /// (a mixed segment: two messages per interval).
    ///
    /// A form is not aged out by time: a peer of the other form that accepted our advert in
    /// its form is a silent backup, indistinguishable from a gone one, and dropping its form
    /// would make it master again a master-down interval later, and again after each hold.
    /// It goes when no peer in the table uses it (the peer switched forms, or was evicted),
    /// or at restart.
    pub fn form_plan(&self) -> Vec<(IpAddr, ChecksumForm)> {
        let (v, f) = (self.spec.vr.version, self.spec.vr.family);
        let ours = self.spec.form.effective(v, f);
        let auto = self.spec.form_auto && (v, f) == (Version::V3, Family::V4);
        let mut out = Vec::with_capacity(self.spec.destinations.len() + 1);
        for dst in &self.spec.destinations {
            if !auto {
                out.push((*dst, ours));
            } else if dst.is_multicast() {
                out.push((*dst, ours));
                let other = match ours {
                    ChecksumForm::WithPseudoHeader => ChecksumForm::WithoutPseudoHeader,
                    ChecksumForm::WithoutPseudoHeader => ChecksumForm::WithPseudoHeader,
                };
                if self.peers.iter().any(|(_, p)| p.form == Some(other)) {
                    out.push((*dst, other));
                }
            } else {
                let theirs = self.peers.get(dst).and_then(|p| p.form);
                out.push((*dst, theirs.unwrap_or(ours)));
            }
        }
        out
    }
}

/// One advert to send: see [`Node::adverts`].
#[derive(Debug)]
pub struct AdvertOut<'a> {
    pub ifindex: u32,
    pub src: IpAddr,
    /// `InstanceSpec::ttl`.
    pub ttl: u8,
    /// `use_vmac`: a whole frame from this MAC on the packet socket.
    pub from_vmac: Option<[u8; 6]>,
    pub adverts: &'a [(IpAddr, Vec<u8>)],
}

/// The same advert for each heartbeat path: (path index, interface index, source, messages).
pub type HeartbeatOut = (usize, u32, IpAddr, Vec<(IpAddr, Vec<u8>)>);

/// Why a reload was refused: nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("instance {instance}: {error}")]
    Router {
        instance: String,
        error: ConfigError,
    },
}

/// Why a handover was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandoverError {
    #[error("instance {0} is not MASTER here (or does not exist)")]
    NotMaster(String),
    #[error("no instance is MASTER here")]
    NoMaster,
}

#[derive(Debug, Default)]
pub struct Node {
    instances: BTreeMap<InstanceId, Instance>,
    next_id: u32,
    ifaces: BTreeMap<u32, Iface>,
    sync: SyncGroups,
    /// Each group's common state, for the group notify scripts.
    group_state: BTreeMap<String, State>,
    garp_interval: Duration,
    gna_interval: Duration,
    actions: VecDeque<Action>,
    /// The data-plane state last asked for, and whether it may have changed since.
    written: dataplane::Plan,
    kfilter: Option<Vec<IpAddr>>,
    dp_dirty: bool,
    /// Interfaces whose program was attached since the last plan (all slots get written).
    fresh: Vec<u32>,
    /// Adverts for VRIDs we do not run (raw-socket path).
    pub unknown_vrid: u64,
    /// Malformed adverts, per interface and family (counted once, whatever runs there).
    pub decode_errors: BTreeMap<(u32, Family), BTreeMap<&'static str, u64>>,
    /// The dead-man gate of each interface whose program answers for us, as last stamped.
    gates: BTreeMap<u32, Gate>,
    /// Times a gate was found closed by a stall of ours (SIGSTOP, a hung host) and reopened
    /// only after our adverts.
    pub gate_stalls: u64,
}

/// The dead-man gate of one interface, as the node last stamped it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Gate {
    stamped: Instant,
    bound: Duration,
    /// Found closed by a stall: it reopens at this time, not before.
    hold: Option<Instant>,
}

/// After a stall of ours long enough for the gate to close, a peer may own our VIPs: our
/// adverts go out first, and XDP answers again this long after them, once the adverts queued
/// meanwhile were heard and a lower-priority master that took over has seen ours. Reopening
/// at once gave two answerers for as long as that master took to yield (13.8 ms in the soak).
pub const GATE_REOPEN_HOLD: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct Iface {
    pub spec: IfaceSpec,
    pub up: bool,
    /// XDP answers ARP/ND for owned VIPs; false once XDP_TX was seen failing.
    pub xdp_answers: bool,
}

/// How stale the agent's liveness stamp may get before XDP stops answering for its VIPs: three
/// advert intervals (the backup's own patience), at least 100 ms so scheduling noise at short
/// intervals does not silence a healthy master.
pub fn liveness_bound(advert_int: crate::proto::Centisecs) -> Duration {
    (advert_int.as_duration() * 3).max(Duration::from_millis(100))
}

/// The family of an address.
pub fn family(a: IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// The sender of a data plane advert record.
pub fn advert_source(st: &AdvertState, ipv6: bool) -> IpAddr {
    if ipv6 {
        IpAddr::V6(std::net::Ipv6Addr::from(st.src))
    } else {
        IpAddr::V4(std::net::Ipv4Addr::new(
            st.src[0], st.src[1], st.src[2], st.src[3],
        ))
    }
}

/// Minimum spacing of the per-instance "advert does not match our configuration" warning: a
/// flood of such adverts must not flood the log.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// (reason, sender) pairs whose discards are logged per instance; others are only counted.
const DISCARD_LOG_PEERS: usize = 32;

impl Node {
    /// A node running `cfg`; nothing happens before [`NodeInput::Prepare`] and
    /// [`NodeInput::Start`].
    pub fn new(cfg: NodeConfig, now: Instant) -> Result<Self, ReloadError> {
        let mut node = Self::default();
        node.check(&cfg, now)?;
        node.apply_globals(&cfg);
        for spec in cfg.instances {
            node.add(spec, now);
        }
        Ok(node)
    }

    fn apply_globals(&mut self, cfg: &NodeConfig) {
        for i in &cfg.ifaces {
            match self.ifaces.get_mut(&i.index) {
                Some(known) => {
                    // A program attached since (reload): its slots need writing.
                    if i.xdp && !known.spec.xdp {
                        self.fresh.push(i.index);
                    }
                    known.spec = i.clone();
                }
                None => {
                    if i.xdp {
                        self.fresh.push(i.index);
                    }
                    self.ifaces.insert(
                        i.index,
                        Iface {
                            spec: i.clone(),
                            up: i.up,
                            xdp_answers: i.xdp,
                        },
                    );
                }
            }
        }
        self.ifaces
            .retain(|k, _| cfg.ifaces.iter().any(|i| i.index == *k));
        self.garp_interval = cfg.garp_interval;
        self.gna_interval = cfg.gna_interval;
        self.sync = SyncGroups::new(cfg.sync_groups.iter().cloned());
        for w in self.sync.warnings() {
            warn!("vrrp_sync_group: {w:?}");
        }
        self.dp_dirty = true;
    }

    /// Every router the configuration would create must be valid.
    fn check(&self, cfg: &NodeConfig, now: Instant) -> Result<(), ReloadError> {
        for s in &cfg.instances {
            VirtualRouter::new(s.vr.clone(), now).map_err(|error| ReloadError::Router {
                instance: s.name.clone(),
                error,
            })?;
        }
        Ok(())
    }

    fn add(&mut self, spec: InstanceSpec, now: Instant) -> InstanceId {
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        if spec.vmac.is_some() {
            self.actions.push_back(Action::ArpAnnounce {
                iface: spec.iface.clone(),
            });
        }
        // `check` validated the configuration.
        if let Ok(inst) = Instance::new(spec, now) {
            self.instances.insert(id, inst);
        }
        self.dp_dirty = true;
        id
    }

    // ---- the read-only view --------------------------------------------------------------

    pub fn instances(&self) -> impl Iterator<Item = (InstanceId, &Instance)> {
        self.instances.iter().map(|(k, v)| (*k, v))
    }

    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(&id)
    }

    pub fn ifaces(&self) -> impl Iterator<Item = &Iface> {
        self.ifaces.values()
    }

    /// Interfaces, sockets and paths the instances use: what the driver must keep open.
    pub fn specs(&self) -> impl Iterator<Item = &InstanceSpec> {
        self.instances.values().map(|i| &i.spec)
    }

    /// Every instance has stopped.
    pub fn all_stopped(&self) -> bool {
        self.instances
            .values()
            .all(|i| i.vr.state() == State::Stopped)
    }

    /// The longest Master_Down_Interval of all instances.
    pub fn longest_master_down(&self) -> Duration {
        self.instances
            .values()
            .map(|i| i.vr.master_down_interval())
            .max()
            .unwrap_or_default()
    }

    pub fn masters(&self) -> usize {
        self.instances
            .values()
            .filter(|i| i.vr.state() == State::Master)
            .count()
    }

    // ---- the sans-IO interface -----------------------------------------------------------

    pub fn poll_action(&mut self) -> Option<Action> {
        if self.actions.is_empty() && self.dp_dirty {
            self.plan_dataplane();
        }
        self.actions.pop_front()
    }

    /// When the driver must call `handle(.., NodeInput::Timer { .. })` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let holds = self.gates.values().filter_map(|g| g.hold);
        let restores = self.instances.values().filter_map(|i| i.restore.due());
        self.instances
            .values()
            .filter_map(Instance::wake_at)
            .chain(holds)
            .chain(restores)
            .min()
    }

    /// The kernel slots to read before `NodeInput::Timer { early, .. }` at `now`: those of
    /// the backups that are due, whose master's absorbed adverts the router must see first.
    pub fn kernel_reads(&self, now: Instant, early: Option<Instant>) -> Vec<SlotKey> {
        self.instances
            .values()
            .filter(|i| i.vr.state() == State::Backup && self.has_xdp(i))
            .filter(|i| self.due(i, now, early).is_some())
            .map(Instance::key)
            .collect()
    }

    /// The bytes of an advert an [`Action::SendAdvert`] asked for: encoded once per priority
    /// and source, then re-sent (hundreds of instances: no encoding per advert).
    pub fn adverts(&mut self, id: InstanceId, priority: Priority) -> Option<AdvertOut<'_>> {
        let inst = self.instances.get_mut(&id)?;
        let src = inst.spec.src;
        let cached = matches!(&inst.advert_cache, Some((p, s, _)) if *p == priority && *s == src);
        if !cached {
            let enc = inst.encode_plan(priority, src, &inst.form_plan());
            inst.advert_cache = Some((priority, src, enc));
        }
        // use_vmac: a master's multicast adverts come from the virtual MAC (RFC 9568 §7.3),
        // unless vmac_xmit_base.
        let from_vmac = inst
            .spec
            .vmac
            .filter(|_| inst.vr.state() == State::Master && !inst.spec.vmac_xmit_base);
        Some(AdvertOut {
            ifindex: inst.spec.ifindex,
            src,
            ttl: inst.spec.ttl,
            from_vmac,
            adverts: inst.advert_cache.as_ref().map_or(&[][..], |c| &c.2[..]),
        })
    }

    /// The same advert unicast to every heartbeat peer, from our address on its path (the
    /// checksum covers that source and destination).
    pub fn heartbeat_adverts(&self, id: InstanceId, priority: Priority) -> Vec<HeartbeatOut> {
        let Some(inst) = self.instances.get(&id) else {
            return Vec::new();
        };
        inst.spec
            .heartbeats
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    i,
                    p.ifindex,
                    p.src,
                    inst.encode_to(priority, p.src, &p.peers),
                )
            })
            .collect()
    }

    /// Planned handover, make-before-break: each selected master sends priority 0 (a backup
    /// takes over after its skew time) and keeps answering for its VIPs until the new master's
    /// first advert; then it stays a backup without preempting back.
    pub fn handover(
        &mut self,
        now: Instant,
        instance: Option<&str>,
    ) -> Result<Vec<String>, HandoverError> {
        let chosen: Vec<InstanceId> = self
            .instances
            .iter()
            .filter(|(_, i)| {
                instance.is_none_or(|n| n == i.spec.name) && i.vr.state() == State::Master
            })
            .map(|(id, _)| *id)
            .collect();
        let names = chosen
            .iter()
            .map(|id| self.instances[id].spec.name.clone())
            .collect::<Vec<_>>();
        for id in chosen {
            self.feed(id, now, Input::Resign { exit: false });
        }
        match (names.is_empty(), instance) {
            (true, Some(n)) => Err(HandoverError::NotMaster(n.to_string())),
            (true, None) => Err(HandoverError::NoMaster),
            (false, _) => Ok(names),
        }
    }

    /// The first stop signal: masters hand over make-before-break and every router stops.
    /// Returns the hard deadline of the exit.
    pub fn begin_stop(&mut self, now: Instant) -> Instant {
        let hard = now + self.longest_master_down() + Duration::from_secs(1);
        let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
        for id in ids {
            self.feed(id, now, Input::Resign { exit: true });
        }
        hard
    }

    /// What a reload of `cfg` would do, or why it is refused. Changes nothing.
    pub fn plan_reload(
        &self,
        cfg: &NodeConfig,
        now: Instant,
    ) -> Result<reload::ReloadPlan, ReloadError> {
        self.check(cfg, now)?;
        Ok(reload::plan(
            self.instances.values().map(|i| &i.spec),
            &cfg.instances,
        ))
    }

    /// Applies a reload (SIGHUP): see [`reload`]. Refused (nothing changed) when a router of
    /// the new configuration is invalid. Every member of every sync group stays in the node
    /// throughout, so a stopping member is seen with the others.
    pub fn reload(
        &mut self,
        cfg: NodeConfig,
        now: Instant,
    ) -> Result<reload::ReloadPlan, ReloadError> {
        let plan = self.plan_reload(&cfg, now)?;
        let by_name = |node: &Self, name: &str| {
            node.instances
                .iter()
                .find(|(_, i)| i.spec.name == name)
                .map(|(id, _)| *id)
        };
        // Stop what goes first, while the group still sees every member.
        for name in &plan.removed {
            if let Some(id) = by_name(self, name) {
                info!(instance = %name, "instance removed: releasing it");
                self.retire(id, now);
            }
        }
        self.apply_globals(&cfg);
        let mut order = Vec::new();
        for ((name, change), spec) in plan.instances.iter().zip(cfg.instances) {
            let old = by_name(self, name);
            match (change, old) {
                (reload::Change::Keep, Some(id)) => {
                    if let Some(inst) = self.instances.get_mut(&id) {
                        inst.spec = spec;
                        inst.advert_cache = None;
                    }
                    order.push(id);
                }
                (reload::Change::Update, Some(id)) => {
                    info!(instance = %name, "configuration changed: updating in place");
                    let installed = {
                        let inst = self.instances.get_mut(&id).expect("found by name");
                        let old_paths = std::mem::take(&mut inst.spec.heartbeats);
                        for p in &old_paths {
                            self.actions.push_back(Action::GuardianDisarm(
                                heartbeat::guardian_key(name, &p.iface),
                            ));
                        }
                        inst.paths = vec![heartbeat::PathState::default(); spec.heartbeats.len()];
                        inst.spec = spec;
                        inst.advert_cache = None;
                        inst.installed
                    };
                    let vr_cfg = self.instances[&id].spec.vr.clone();
                    self.feed(id, now, Input::Config(vr_cfg));
                    // Masters updated in place: the guardian learns their new adverts.
                    if installed {
                        self.arm_guardian(id);
                    }
                    order.push(id);
                }
                (_, old) => {
                    if let Some(id) = old {
                        info!(instance = %name, "configuration changed: restarting the instance");
                        self.retire(id, now);
                    } else {
                        info!(instance = %name, "new instance");
                    }
                    order.push(self.add(spec, now));
                }
            }
        }
        // Ids follow the new file's order for the view; keep the map as is (ids are ordered
        // by creation), the order only matters for start-up below.
        for id in &order {
            let (started, name) = {
                let i = &self.instances[id];
                (i.started, i.spec.name.clone())
            };
            if started {
                let join = self.sync.join(&name).unwrap_or(Input::SyncJoin {
                    group: String::new(),
                    peers: Vec::new(),
                });
                self.feed(*id, now, join);
            }
        }
        for id in order {
            let i = &self.instances[&id];
            if !i.started && !i.waits_for_tracking() {
                self.start(id, now);
            }
        }
        self.actions.push_back(Action::Publish);
        info!(instances = self.instances.len(), "configuration reloaded");
        Ok(plan)
    }

    /// Stops an instance for good (removed or replaced by a reload): priority 0 if MASTER,
    /// VIPs removed; its sync group hears it like any other member's change.
    fn retire(&mut self, id: InstanceId, now: Instant) {
        self.feed(id, now, Input::Shutdown);
        if let Some(inst) = self.instances.remove(&id) {
            self.actions.push_back(Action::RemoveVips {
                id,
                vips: inst.spec.vips.clone(),
            });
            self.actions.extend(disarm(&inst.spec));
        }
        self.dp_dirty = true;
    }

    pub fn handle(&mut self, now: Instant, input: NodeInput) {
        match input {
            NodeInput::Prepare => {
                let stale: Vec<_> = self
                    .instances
                    .iter()
                    .map(|(id, i)| (*id, i.spec.vips.clone(), i.spec.vmac, i.spec.ifindex))
                    .collect();
                for (id, vips, vmac, ifindex) in stale {
                    self.actions.push_back(Action::RemoveVips { id, vips });
                    if let Some(mac) = vmac {
                        self.actions.push_back(Action::VmacFilter {
                            ifindex,
                            mac,
                            add: false,
                        });
                    }
                }
                self.dp_dirty = true;
            }
            NodeInput::Start => {
                let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
                for id in ids {
                    let i = &self.instances[&id];
                    if !i.started && !i.waits_for_tracking() {
                        self.start(id, now);
                    }
                }
            }
            NodeInput::Advert {
                ifindex,
                family,
                src,
                result,
                form,
                ttl,
            } => self.on_advert(now, (ifindex, family), src, result, form, ttl),
            NodeInput::MasterSilent { key, slot } => self.on_master_silent(now, key, slot),
            NodeInput::Timer { early, slots } => self.on_timer(now, early, &slots),
            NodeInput::Cover { id, cover } => {
                if let Some(i) = self.instances.get_mut(&id) {
                    i.cover = cover;
                }
            }
            NodeInput::VipClaimed { ifindex, vip, mac } => self.on_claim(now, ifindex, vip, mac),
            NodeInput::Link { ifindex, up } => self.on_link(now, ifindex, up),
            NodeInput::Tracking {
                instance,
                priority,
                fault,
                reasons,
            } => self.on_tracking(now, &instance, priority, fault, reasons),
            NodeInput::AddressRemoved { ifindex, addr } => {
                self.on_address_removed(now, ifindex, addr);
            }
            NodeInput::XdpTxFailing { ifindex } => {
                if let Some(i) = self.ifaces.get_mut(&ifindex)
                    && i.xdp_answers
                {
                    warn!(iface = %i.spec.name, "XDP_TX fails on this interface: the kernel answers ARP/ND for the VIPs from now on");
                    i.xdp_answers = false;
                    self.dp_dirty = true;
                }
            }
            NodeInput::Tick => self.on_tick(now),
            NodeInput::Shutdown => {
                let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
                for id in ids {
                    self.feed(id, now, Input::Shutdown);
                }
                for (id, i) in &self.instances {
                    self.actions.push_back(Action::RemoveVips {
                        id: *id,
                        vips: i.spec.vips.clone(),
                    });
                }
                self.dp_dirty = true;
            }
        }
    }
}

/// The guardian forgets an instance and its heartbeat paths.
fn disarm(spec: &InstanceSpec) -> impl Iterator<Item = Action> + '_ {
    std::iter::once(Action::GuardianDisarm(spec.name.clone())).chain(
        spec.heartbeats
            .iter()
            .map(|p| Action::GuardianDisarm(heartbeat::guardian_key(&spec.name, &p.iface))),
    )
}

/// The interfaces (by index) and advert sockets (by interface and source) that `specs` use:
/// the driver keeps exactly these open.
pub fn resources_in_use<'a>(
    specs: impl IntoIterator<Item = &'a InstanceSpec>,
) -> (BTreeSet<u32>, BTreeSet<(u32, IpAddr)>) {
    let mut ifaces = BTreeSet::new();
    let mut socks = BTreeSet::new();
    for s in specs {
        ifaces.insert(s.ifindex);
        socks.insert((s.ifindex, s.src));
        for h in &s.heartbeats {
            socks.insert((h.ifindex, h.src));
        }
    }
    (ifaces, socks)
}

#[cfg(test)]
pub(crate) mod tests;
