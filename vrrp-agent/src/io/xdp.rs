//! Loads the embedded XDP object onto an interface and keeps its maps in sync.
//!
//! One copy of the object is loaded per interface, so every map is per interface. The
//! program is attached through a bpf_link owned by this process: it detaches when the
//! process exits, also on a crash.
//!
//! What the agent drives (map layouts in `vrrp_common::maps`):
//! - receive mode ([`DataPlane::set_mode`]): valid adverts passed to the stack (the initial
//!   mode, for a raw socket) or consumed in XDP: unchanged ones only refresh `ADVERTS`
//!   ([`DataPlane::advert_state`], read lazily when the master-down timer fires), the others
//!   arrive through [`EventReader`] as [`DataPlaneEvent::Advert`];
//! - per-VRID config ([`DataPlane::set_vrid`]) and unicast peers ([`DataPlane::set_peers`]);
//! - the master-silence timer of a backup ([`DataPlane::set_master_down`]): the program
//!   restarts a kernel timer on each advert of the master and reports
//!   [`DataPlaneEvent::MasterSilent`] when it runs out ([`DataPlane::silence`] reads it);
//! - owned VIPs ([`DataPlane::own_vip`] / [`DataPlane::disown_vip`]): ARP and NS answered
//!   with XDP_TX, conflicting claims reported as events;
//! - the dead-man gate ([`DataPlane::refresh_liveness`]): a hung agent stops answering;
//! - [`xdp_tx_errors`]: the driver's count of XDP_TX frames it could not send.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use aya::maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfError};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use vrrp_common::event::{
    EVENT_ADVERT, EVENT_ARP_CONFLICT, EVENT_HEADER_LEN, EVENT_MASTER_SILENT, EVENT_NA_CONFLICT,
    EventHeader, SILENT_RECORD_LEN, counter,
};
use vrrp_common::maps::{
    self, AdvertState, CFG_F_CONSUME_ADVERTS, DataPlaneConfig, DeathWatch, OWNED_F_ROUTER,
    OwnedVip, PeerKey, PeerLimits, SilenceTimer, VRID_SLOTS, VridConfig, vrid_slot,
};

/// The XDP object, embedded at build time (empty when built without `cargo xtask build`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp-xdp.bpf.o"));

/// Name of the program function in the object.
pub const PROGRAM: &str = "vrrp_xdp";

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "this vrrp-agent was built without its XDP object: build it with `cargo xtask build`, or run with --no-xdp"
    )]
    NoObject,
    #[error("loading the XDP object: {0}")]
    Load(#[from] Box<EbpfError>),
    #[error("the XDP object has no program `{PROGRAM}`")]
    NoProgram,
    #[error("the XDP object has no map `{0}`")]
    NoMap(&'static str),
    #[error("XDP program: {0}")]
    Program(#[from] Box<ProgramError>),
    #[error("XDP map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error(
        "cannot attach XDP to {iface} (native: {native}; generic: {generic}); run with --no-xdp to use raw sockets"
    )]
    Attach {
        iface: String,
        native: Box<ProgramError>,
        generic: Box<ProgramError>,
    },
    #[error("reading CLOCK_MONOTONIC: {0}")]
    Clock(#[source] io::Error),
    #[error("the `{}` ring buffer was already taken", maps::EVENTS)]
    EventsTaken,
    #[error("XDP events: {0}")]
    Events(#[source] io::Error),
    #[error("watching for a SIGKILL of the agent: {0}")]
    DeathWatch(String),
}

/// Maps a map-level error to [`XdpError::Map`] for `name`.
fn map_err(name: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |source| XdpError::Map { name, source }
}

/// Whether a map error is "no such key" (a delete of an absent entry).
fn is_enoent(e: &MapError) -> bool {
    match e {
        MapError::KeyNotFound => true,
        MapError::SyscallError(s) => s.io_error.raw_os_error() == Some(libc::ENOENT),
        _ => false,
    }
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AttachMode {
    /// In the driver (native XDP): the fast path, and XDP_TX works.
    Native,
    /// In the generic receive path (SKB mode): works everywhere, slower.
    Generic,
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

/// Loads the object without attaching it (tests run it with BPF_PROG_TEST_RUN).
pub fn load() -> Result<Ebpf, XdpError> {
    if OBJECT.is_empty() {
        return Err(XdpError::NoObject);
    }
    let mut ebpf = Ebpf::load(OBJECT).map_err(Box::new)?;
    program(&mut ebpf)?.load().map_err(Box::new)?;
    Ok(ebpf)
}

/// Where tracefs lives (systemd mounts it at boot; a bare container may not have it).
const TRACEFS: &str = "/sys/kernel/tracing";
const SIGNAL_GENERATE_FORMAT: &str = "/sys/kernel/tracing/events/signal/signal_generate/format";

/// Arms the SIGKILL watch: the tracepoint program on `signal/signal_generate` stamps `DEATH`
/// when a SIGKILL for process `pid` (the agent itself) is generated, and the XDP program stops
/// answering.
pub fn watch_death(ebpf: &mut Ebpf, pid: u32) -> Result<(), XdpError> {
    use aya::programs::TracePoint;
    let fail = |what: &str, e: &dyn std::fmt::Display| XdpError::DeathWatch(format!("{what}: {e}"));
    if !std::path::Path::new(SIGNAL_GENERATE_FORMAT).exists() {
        nix::mount::mount(
            Some("tracefs"),
            TRACEFS,
            Some("tracefs"),
            nix::mount::MsFlags::MS_NOSUID
                | nix::mount::MsFlags::MS_NODEV
                | nix::mount::MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(|e| fail(&format!("mounting tracefs at {TRACEFS}"), &e))?;
    }
    let format = std::fs::read_to_string(SIGNAL_GENERATE_FORMAT)
        .map_err(|e| fail(SIGNAL_GENERATE_FORMAT, &e))?;
    let off = |field: &str| {
        tracepoint_field_offset(&format, field).ok_or_else(|| {
            XdpError::DeathWatch(format!("{SIGNAL_GENERATE_FORMAT}: no field `{field}`"))
        })
    };
    let watch = DeathWatch {
        tgid: pid,
        sig_off: off("sig")?,
        pid_off: off("pid")?,
        result_off: off("result")?,
        ..DeathWatch::default()
    };
    let map = ebpf
        .map_mut(maps::DEATH)
        .ok_or(XdpError::NoMap(maps::DEATH))?;
    let mut arr: Array<&mut MapData, DeathWatch> =
        Array::try_from(map).map_err(map_err(maps::DEATH))?;
    arr.set(0, watch, 0).map_err(map_err(maps::DEATH))?;
    let prog: &mut TracePoint = ebpf
        .program_mut(maps::DEATH_PROGRAM)
        .ok_or_else(|| {
            fail(
                "the object",
                &format!("no program `{}`", maps::DEATH_PROGRAM),
            )
        })?
        .try_into()
        .map_err(|e| fail("program type", &e))?;
    prog.load()
        .map_err(|e| fail("loading the tracepoint program", &e))?;
    prog.attach("signal", "signal_generate")
        .map_err(|e| fail("attaching to signal/signal_generate", &e))?;
    Ok(())
}

/// The byte offset of `field` in a tracefs `format` file (`field:int sig;\toffset:8;...`).
pub fn tracepoint_field_offset(format: &str, field: &str) -> Option<u16> {
    format.lines().find_map(|l| {
        let l = l.trim();
        let decl = l.strip_prefix("field:")?.split(';').next()?;
        let name = decl.rsplit([' ', '*']).next()?;
        let name = name.split('[').next()?;
        if name != field {
            return None;
        }
        let off = l
            .split(';')
            .find_map(|p| p.trim().strip_prefix("offset:"))?;
        off.trim().parse().ok()
    })
}

/// The XDP program inside a loaded object.
pub fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM)
        .ok_or(XdpError::NoProgram)?
        .try_into()
        .map_err(|e| XdpError::Program(Box::new(e)))
}

/// The data plane of one interface: the loaded program, attached, and its maps.
pub struct DataPlane {
    ebpf: Ebpf,
    iface: String,
    mode: AttachMode,
    death_watch: bool,
    /// The last liveness write: (CLOCK_MONOTONIC ns, bound ns).
    liveness_written: Option<(u64, u64)>,
}

impl DataPlane {
    /// Loads and attaches to `iface`: native first, generic as the fallback.
    pub fn attach(iface: &str, force_generic: bool) -> Result<Self, XdpError> {
        let mut ebpf = load()?;
        let prog = program(&mut ebpf)?;
        let mode = if force_generic {
            prog.attach(iface, XdpMode::Skb).map_err(Box::new)?;
            AttachMode::Generic
        } else {
            match prog.attach(iface, XdpMode::Driver) {
                Ok(_) => AttachMode::Native,
                Err(ProgramError::UnknownInterface { name }) => {
                    return Err(XdpError::Program(Box::new(
                        ProgramError::UnknownInterface { name },
                    )));
                }
                Err(native) => match prog.attach(iface, XdpMode::Skb) {
                    Ok(_) => {
                        tracing::warn!(%iface, error = %native, "native XDP unavailable; attached in generic (SKB) mode");
                        AttachMode::Generic
                    }
                    Err(generic) => {
                        return Err(XdpError::Attach {
                            iface: iface.to_string(),
                            native: Box::new(native),
                            generic: Box::new(generic),
                        });
                    }
                },
            }
        };
        tracing::info!(%iface, %mode, "XDP program attached");
        let death_watch = match watch_death(&mut ebpf, std::process::id()) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(%iface, "{e}: if the agent is SIGKILLed, its node answers ARP/NS until the kernel has torn it down (milliseconds)");
                false
            }
        };
        Ok(Self {
            ebpf,
            iface: iface.to_string(),
            mode,
            death_watch,
            liveness_written: None,
        })
    }

    /// Whether a SIGKILL of the agent silences the responder at once (`DEATH`).
    pub fn death_watch(&self) -> bool {
        self.death_watch
    }

    /// The `DEATH_RING` map's descriptor, for the guardian (readable once the agent is killed).
    pub fn death_ring_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        if !self.death_watch {
            return None;
        }
        match self.ebpf.map(maps::DEATH_RING)? {
            Map::RingBuf(m) => {
                use std::os::fd::AsFd;
                Some(m.fd().as_fd())
            }
            _ => None,
        }
    }

    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Tells the program about a virtual router on this interface (or forgets it with the
    /// default, unconfigured value).
    pub fn set_vrid(&mut self, ipv6: bool, vrid: u8, cfg: VridConfig) -> Result<(), XdpError> {
        set_vrid(&mut self.ebpf, ipv6, vrid, cfg)
    }

    /// Sets the interval of a virtual router's master-silence timer (`None` stops using it):
    /// from the next advert of its master on, the program (re)starts the timer with it. A
    /// timer already running still fires once.
    pub fn set_master_down(
        &mut self,
        ipv6: bool,
        vrid: u8,
        interval: Option<Duration>,
    ) -> Result<(), XdpError> {
        set_master_down(&mut self.ebpf, ipv6, vrid, interval)
    }

    /// The master-silence timer of a virtual router as the program last started it.
    pub fn silence(&self, ipv6: bool, vrid: u8) -> Result<SilenceTimer, XdpError> {
        silence(&self.ebpf, ipv6, vrid)
    }

    /// Counters summed over CPUs, indexed by `vrrp_common::event::counter`.
    pub fn counters(&self) -> Result<[u64; counter::COUNT as usize], XdpError> {
        counters(&self.ebpf)
    }

    /// Adverts seen per (family, VRID) for VRIDs that are not ours: (ipv6, vrid, count).
    pub fn foreign_vrids(&self) -> Result<Vec<(bool, u8, u64)>, XdpError> {
        let sums = percpu_sums(&self.ebpf, maps::FOREIGN_VRIDS, VRID_SLOTS)?;
        Ok((0..VRID_SLOTS)
            .zip(sums)
            .filter(|(_, n)| *n > 0)
            .map(|(slot, n)| (slot >= 256, (slot % 256) as u8, n))
            .collect())
    }

    /// Chooses where valid adverts go: consumed in XDP (absorbed, or reported through
    /// [`EventReader`]) when `consume_adverts`, else passed to the stack for a raw socket.
    /// The program starts in raw-socket mode; an agent that reads events turns this on.
    pub fn set_mode(&mut self, consume_adverts: bool) -> Result<(), XdpError> {
        set_mode(&mut self.ebpf, consume_adverts)
    }

    /// Replaces the unicast peers allowed for a virtual router. They are enforced only while
    /// its `VridConfig` has `VRID_F_UNICAST_PEERS` (set through [`Self::set_vrid`]); with the
    /// flag and no peers, every advert for the VRID is dropped. Each peer's unicast adverts
    /// must arrive with a TTL in its limits.
    pub fn set_peers(
        &mut self,
        ipv6: bool,
        vrid: u8,
        peers: &[(IpAddr, PeerLimits)],
    ) -> Result<(), XdpError> {
        set_peers(&mut self.ebpf, ipv6, vrid, peers)
    }

    /// Answers ARP (IPv4) or Neighbor Solicitations (IPv6) for `addr` from now on, with
    /// `mac`; `router` sets the NA Router flag. Call it before binding the VIP when becoming
    /// master (DESIGN.md: never two answerers).
    pub fn own_vip(
        &mut self,
        addr: IpAddr,
        vrid: u8,
        mac: [u8; 6],
        router: bool,
    ) -> Result<(), XdpError> {
        own_vip(&mut self.ebpf, addr, vrid, mac, router)
    }

    /// Stops answering for `addr` (no error if it was not owned).
    pub fn disown_vip(&mut self, addr: IpAddr) -> Result<(), XdpError> {
        disown_vip(&mut self.ebpf, addr)
    }

    /// The interface's own MAC, which frames for an owned virtual MAC are re-addressed to.
    pub fn set_iface_mac(&mut self, mac: [u8; 6]) -> Result<(), XdpError> {
        update_config(&mut self.ebpf, |c| c.mac = mac)
    }

    /// Stamps the agent's liveness now and sets the dead-man bound: if no refresh comes
    /// within `bound`, the program stops answering ARP/NS (`Duration::ZERO` disables the gate).
    /// Refresh well within the bound, from the agent's main loop (not a separate thread,
    /// which would stay alive when the loop hangs).
    pub fn refresh_liveness(&mut self, bound: Duration) -> Result<(), XdpError> {
        // Every advert of every instance on the interface calls this: write (two map system
        // calls) only when half the bound has passed or the bound changed. The gate then sees
        // an age of at most half the bound plus one advert interval (the bound is at least
        // three), inside it.
        let now = monotonic_ns()?;
        let bound_ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        if let Some((at, b)) = self.liveness_written
            && b == bound_ns
            && now.saturating_sub(at) < bound_ns / 2
        {
            return Ok(());
        }
        refresh_liveness(&mut self.ebpf, bound)?;
        self.liveness_written = Some((now, bound_ns));
        Ok(())
    }

    /// The last valid advert the kernel saw for a virtual router, `None` before the first.
    /// Convert its `last_ns` with [`instant_of_mono_ns`].
    pub fn advert_state(&self, ipv6: bool, vrid: u8) -> Result<Option<AdvertState>, XdpError> {
        advert_state(&self.ebpf, ipv6, vrid)
    }

    /// The slot's previous holder, kept when another sender took the slot (`OTHERS`).
    pub fn others_state(&self, ipv6: bool, vrid: u8) -> Result<Option<AdvertState>, XdpError> {
        others_state(&self.ebpf, ipv6, vrid)
    }

    /// Forgets the advert state of a virtual router so that its next advert is reported as
    /// an event even if unchanged (e.g. after a state transition of the local instance).
    pub fn forget_advert(&mut self, ipv6: bool, vrid: u8) -> Result<(), XdpError> {
        forget_advert(&mut self.ebpf, ipv6, vrid)
    }

    /// The events reader (once: the ring buffer moves into it).
    pub fn take_events(&mut self) -> Result<EventReader, XdpError> {
        take_events(&mut self.ebpf)
    }

    /// The driver's XDP_TX error counter of this interface (see [`xdp_tx_errors`]). Read it
    /// from the namespace the interface lives in.
    pub fn xdp_tx_errors(&self) -> Option<u64> {
        xdp_tx_errors(&self.iface)
    }
}

pub fn set_vrid(ebpf: &mut Ebpf, ipv6: bool, vrid: u8, cfg: VridConfig) -> Result<(), XdpError> {
    let map = ebpf
        .map_mut(maps::VRID_CONFIG)
        .ok_or(XdpError::NoMap(maps::VRID_CONFIG))?;
    let mut arr: Array<&mut MapData, VridConfig> =
        Array::try_from(map).map_err(|source| XdpError::Map {
            name: maps::VRID_CONFIG,
            source,
        })?;
    arr.set(vrid_slot(ipv6, vrid), cfg, 0)
        .map_err(|source| XdpError::Map {
            name: maps::VRID_CONFIG,
            source,
        })
}

pub fn set_master_down(
    ebpf: &mut Ebpf,
    ipv6: bool,
    vrid: u8,
    interval: Option<Duration>,
) -> Result<(), XdpError> {
    let map = ebpf
        .map_mut(maps::VRID_CONFIG)
        .ok_or(XdpError::NoMap(maps::VRID_CONFIG))?;
    let mut arr: Array<&mut MapData, VridConfig> =
        Array::try_from(map).map_err(map_err(maps::VRID_CONFIG))?;
    let slot = vrid_slot(ipv6, vrid);
    let mut cfg = arr.get(&slot, 0).map_err(map_err(maps::VRID_CONFIG))?;
    cfg.master_down_ns = master_down_ns(interval);
    arr.set(slot, cfg, 0).map_err(map_err(maps::VRID_CONFIG))
}

/// `VridConfig::master_down_ns` for an interval: 0 (no timer) for `None`, at least 1 ns
/// otherwise.
pub fn master_down_ns(interval: Option<Duration>) -> u64 {
    match interval.map(|d| u64::try_from(d.as_nanos())) {
        None => 0,
        Some(Ok(0)) => 1,
        Some(Ok(ns)) => ns,
        Some(Err(_)) => u64::MAX,
    }
}

pub fn silence(ebpf: &Ebpf, ipv6: bool, vrid: u8) -> Result<SilenceTimer, XdpError> {
    let map = ebpf
        .map(maps::SILENCE)
        .ok_or(XdpError::NoMap(maps::SILENCE))?;
    let arr: Array<&MapData, SilenceTimer> =
        Array::try_from(map).map_err(map_err(maps::SILENCE))?;
    arr.get(&vrid_slot(ipv6, vrid), 0)
        .map_err(map_err(maps::SILENCE))
}

pub fn counters(ebpf: &Ebpf) -> Result<[u64; counter::COUNT as usize], XdpError> {
    let sums = percpu_sums(ebpf, maps::COUNTERS, counter::COUNT)?;
    let mut out = [0u64; counter::COUNT as usize];
    for (o, v) in out.iter_mut().zip(sums) {
        *o = v;
    }
    Ok(out)
}

/// The first `n` entries of a per-CPU `u64` array, each summed over CPUs.
fn percpu_sums(ebpf: &Ebpf, name: &'static str, n: u32) -> Result<Vec<u64>, XdpError> {
    let map = ebpf.map(name).ok_or(XdpError::NoMap(name))?;
    let arr: PerCpuArray<&MapData, u64> = PerCpuArray::try_from(map).map_err(map_err(name))?;
    (0..n)
        .map(|i| {
            arr.get(&i, 0)
                .map(|v| v.iter().sum())
                .map_err(map_err(name))
        })
        .collect()
}

fn config_array(ebpf: &mut Ebpf) -> Result<Array<&mut MapData, DataPlaneConfig>, XdpError> {
    let map = ebpf
        .map_mut(maps::CONFIG)
        .ok_or(XdpError::NoMap(maps::CONFIG))?;
    Array::try_from(map).map_err(map_err(maps::CONFIG))
}

/// Read-modify-write of the single `CONFIG` entry.
fn update_config(ebpf: &mut Ebpf, f: impl FnOnce(&mut DataPlaneConfig)) -> Result<(), XdpError> {
    let mut arr = config_array(ebpf)?;
    let mut cfg = arr.get(&0, 0).map_err(map_err(maps::CONFIG))?;
    f(&mut cfg);
    arr.set(0, cfg, 0).map_err(map_err(maps::CONFIG))
}

/// The `CONFIG` entry as the program sees it.
pub fn data_plane_config(ebpf: &mut Ebpf) -> Result<DataPlaneConfig, XdpError> {
    config_array(ebpf)?
        .get(&0, 0)
        .map_err(map_err(maps::CONFIG))
}

pub fn set_mode(ebpf: &mut Ebpf, consume_adverts: bool) -> Result<(), XdpError> {
    update_config(ebpf, |c| {
        if consume_adverts {
            c.flags |= CFG_F_CONSUME_ADVERTS;
        } else {
            c.flags &= !CFG_F_CONSUME_ADVERTS;
        }
    })
}

pub fn refresh_liveness(ebpf: &mut Ebpf, bound: Duration) -> Result<(), XdpError> {
    let now = monotonic_ns()?;
    let bound_ns = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    update_config(ebpf, |c| {
        c.liveness_ns = now;
        c.liveness_bound_ns = bound_ns;
    })
}

/// An address as the maps store it: IPv4 in the first 4 bytes, the rest zero.
fn addr16(addr: &IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    }
}

pub fn set_peers(
    ebpf: &mut Ebpf,
    ipv6: bool,
    vrid: u8,
    peers: &[(IpAddr, PeerLimits)],
) -> Result<(), XdpError> {
    let slot = vrid_slot(ipv6, vrid);
    let map = ebpf
        .map_mut(maps::PEERS)
        .ok_or(XdpError::NoMap(maps::PEERS))?;
    let mut hm: HashMap<&mut MapData, PeerKey, PeerLimits> =
        HashMap::try_from(map).map_err(map_err(maps::PEERS))?;
    let stale: Vec<PeerKey> = hm
        .keys()
        .filter_map(Result::ok)
        .filter(|k| k.slot == slot)
        .collect();
    for k in &stale {
        match hm.remove(k) {
            Ok(()) => {}
            Err(e) if is_enoent(&e) => {}
            Err(e) => return Err(map_err(maps::PEERS)(e)),
        }
    }
    for (p, limits) in peers.iter().filter(|p| p.0.is_ipv6() == ipv6) {
        let key = PeerKey {
            slot,
            addr: addr16(p),
        };
        hm.insert(key, *limits, 0).map_err(map_err(maps::PEERS))?;
    }
    Ok(())
}

pub fn own_vip(
    ebpf: &mut Ebpf,
    addr: IpAddr,
    vrid: u8,
    mac: [u8; 6],
    router: bool,
) -> Result<(), XdpError> {
    let value = OwnedVip {
        vrid,
        flags: if router { OWNED_F_ROUTER } else { 0 },
        mac,
    };
    match addr {
        IpAddr::V4(a) => {
            let map = ebpf
                .map_mut(maps::OWNED_VIPS)
                .ok_or(XdpError::NoMap(maps::OWNED_VIPS))?;
            let mut hm: HashMap<&mut MapData, u32, OwnedVip> =
                HashMap::try_from(map).map_err(map_err(maps::OWNED_VIPS))?;
            hm.insert(u32::from_ne_bytes(a.octets()), value, 0)
                .map_err(map_err(maps::OWNED_VIPS))
        }
        IpAddr::V6(a) => {
            let map = ebpf
                .map_mut(maps::OWNED_VIPS6)
                .ok_or(XdpError::NoMap(maps::OWNED_VIPS6))?;
            let mut hm: HashMap<&mut MapData, [u8; 16], OwnedVip> =
                HashMap::try_from(map).map_err(map_err(maps::OWNED_VIPS6))?;
            hm.insert(a.octets(), value, 0)
                .map_err(map_err(maps::OWNED_VIPS6))
        }
    }
}

pub fn disown_vip(ebpf: &mut Ebpf, addr: IpAddr) -> Result<(), XdpError> {
    let (name, res) = match addr {
        IpAddr::V4(a) => {
            let map = ebpf
                .map_mut(maps::OWNED_VIPS)
                .ok_or(XdpError::NoMap(maps::OWNED_VIPS))?;
            let mut hm: HashMap<&mut MapData, u32, OwnedVip> =
                HashMap::try_from(map).map_err(map_err(maps::OWNED_VIPS))?;
            (maps::OWNED_VIPS, hm.remove(&u32::from_ne_bytes(a.octets())))
        }
        IpAddr::V6(a) => {
            let map = ebpf
                .map_mut(maps::OWNED_VIPS6)
                .ok_or(XdpError::NoMap(maps::OWNED_VIPS6))?;
            let mut hm: HashMap<&mut MapData, [u8; 16], OwnedVip> =
                HashMap::try_from(map).map_err(map_err(maps::OWNED_VIPS6))?;
            (maps::OWNED_VIPS6, hm.remove(&a.octets()))
        }
    };
    match res {
        Ok(()) => Ok(()),
        Err(e) if is_enoent(&e) => Ok(()),
        Err(e) => Err(map_err(name)(e)),
    }
}

pub fn advert_state(ebpf: &Ebpf, ipv6: bool, vrid: u8) -> Result<Option<AdvertState>, XdpError> {
    let map = ebpf
        .map(maps::ADVERTS)
        .ok_or(XdpError::NoMap(maps::ADVERTS))?;
    let arr: Array<&MapData, AdvertState> = Array::try_from(map).map_err(map_err(maps::ADVERTS))?;
    let st = arr
        .get(&vrid_slot(ipv6, vrid), 0)
        .map_err(map_err(maps::ADVERTS))?;
    Ok((st.last_ns != 0).then_some(st))
}

/// The `DEATH` entry (its `dead_ns` is set once a watched SIGKILL was generated).
pub fn death_state(ebpf: &Ebpf) -> Result<DeathWatch, XdpError> {
    let map = ebpf.map(maps::DEATH).ok_or(XdpError::NoMap(maps::DEATH))?;
    let arr: Array<&MapData, DeathWatch> = Array::try_from(map).map_err(map_err(maps::DEATH))?;
    arr.get(&0, 0).map_err(map_err(maps::DEATH))
}

pub fn others_state(ebpf: &Ebpf, ipv6: bool, vrid: u8) -> Result<Option<AdvertState>, XdpError> {
    let map = ebpf
        .map(maps::OTHERS)
        .ok_or(XdpError::NoMap(maps::OTHERS))?;
    let arr: Array<&MapData, AdvertState> = Array::try_from(map).map_err(map_err(maps::OTHERS))?;
    let st = arr
        .get(&vrid_slot(ipv6, vrid), 0)
        .map_err(map_err(maps::OTHERS))?;
    Ok((st.last_ns != 0).then_some(st))
}

pub fn forget_advert(ebpf: &mut Ebpf, ipv6: bool, vrid: u8) -> Result<(), XdpError> {
    let map = ebpf
        .map_mut(maps::ADVERTS)
        .ok_or(XdpError::NoMap(maps::ADVERTS))?;
    let mut arr: Array<&mut MapData, AdvertState> =
        Array::try_from(map).map_err(map_err(maps::ADVERTS))?;
    arr.set(vrid_slot(ipv6, vrid), AdvertState::default(), 0)
        .map_err(map_err(maps::ADVERTS))
}

pub fn take_events(ebpf: &mut Ebpf) -> Result<EventReader, XdpError> {
    let map = ebpf.take_map(maps::EVENTS).ok_or(XdpError::EventsTaken)?;
    EventReader::new(map)
}

// ------------------------------------------------------------------------------------------
// Clocks: the program stamps with bpf_ktime_get_ns(), which is CLOCK_MONOTONIC.

/// CLOCK_MONOTONIC now, in nanoseconds (the clock of `bpf_ktime_get_ns`).
pub fn monotonic_ns() -> Result<u64, XdpError> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into `ts`, which we own.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return Err(XdpError::Clock(io::Error::last_os_error()));
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The `Instant` of a kernel timestamp (CLOCK_MONOTONIC ns). `std::time::Instant` is
/// CLOCK_MONOTONIC on Linux, but opaque: anchor both clocks now and offset.
pub fn instant_of_mono_ns(ns: u64) -> Result<Instant, XdpError> {
    #[expect(
        clippy::disallowed_methods,
        reason = "the I/O shell converts kernel timestamps; this is the driver's clock, not proto's"
    )]
    let now = Instant::now();
    let mono = monotonic_ns()?;
    Ok(if ns <= mono {
        now.checked_sub(Duration::from_nanos(mono - ns))
            .unwrap_or(now)
    } else {
        now + Duration::from_nanos(ns - mono)
    })
}

// ------------------------------------------------------------------------------------------
// Events.

/// What the data plane reports to the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DataPlaneEvent {
    /// A valid advert with news; `packet` is the IP packet from its header, for
    /// `proto::codec::decode_ip`. `truncated` when the packet was longer than a record
    /// (`vrrp_common::event::EVENT_DATA_MAX`): it cannot be decoded then.
    Advert {
        at: Instant,
        ifindex: u32,
        packet: Vec<u8>,
        truncated: bool,
    },
    /// The master-silence timer of a virtual router ran out: no advert from its master since
    /// `started_ns` (kernel time) for the interval set with [`DataPlane::set_master_down`].
    MasterSilent {
        at: Instant,
        ifindex: u32,
        ipv6: bool,
        vrid: u8,
        started_ns: u64,
    },
    /// Another node claims an IPv4 VIP we own (ARP reply or announcement from `mac`).
    ArpConflict {
        at: Instant,
        ifindex: u32,
        vip: Ipv4Addr,
        mac: [u8; 6],
    },
    /// Another node advertises an IPv6 VIP we own with link-layer address `mac`.
    NaConflict {
        at: Instant,
        ifindex: u32,
        vip: Ipv6Addr,
        mac: [u8; 6],
    },
}

/// The header of a raw `EVENTS` record, and its data.
pub fn split_record(record: &[u8]) -> Option<(EventHeader, &[u8])> {
    let h = record.get(..EVENT_HEADER_LEN)?;
    let u16_at = |o: usize| u16::from_ne_bytes([h[o], h[o + 1]]);
    let u32_at = |o: usize| u32::from_ne_bytes([h[o], h[o + 1], h[o + 2], h[o + 3]]);
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&h[8..16]);
    let header = EventHeader {
        kind: u16_at(0),
        _pad: u16_at(2),
        ifindex: u32_at(4),
        ts_ns: u64::from_ne_bytes(ts),
        len: u32_at(16),
        orig_len: u32_at(20),
    };
    let len = usize::try_from(header.len).ok()?;
    let data = record.get(EVENT_HEADER_LEN..EVENT_HEADER_LEN.checked_add(len)?)?;
    Some((header, data))
}

/// The link-layer address in the first option of type `want` among ND options.
fn nd_ll_option(mut opts: &[u8], want: u8) -> Option<[u8; 6]> {
    while opts.len() >= 8 {
        let len = usize::from(opts[1]) * 8;
        if len == 0 {
            return None;
        }
        if opts[0] == want {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&opts[2..8]);
            return Some(mac);
        }
        opts = opts.get(len..)?;
    }
    None
}

/// Decodes one raw `EVENTS` record; `at` is the reception time already converted. `None`
/// for a record this version does not understand (unknown kind, malformed).
pub fn parse_event(header: &EventHeader, data: &[u8], at: Instant) -> Option<DataPlaneEvent> {
    let ifindex = header.ifindex;
    match header.kind {
        EVENT_ADVERT => Some(DataPlaneEvent::Advert {
            at,
            ifindex,
            packet: data.to_vec(),
            truncated: header.len < header.orig_len,
        }),
        EVENT_MASTER_SILENT => {
            let d = data.get(..SILENT_RECORD_LEN)?;
            let slot = u32::from_ne_bytes(d[0..4].try_into().ok()?);
            if slot >= VRID_SLOTS {
                return None;
            }
            Some(DataPlaneEvent::MasterSilent {
                at,
                ifindex,
                ipv6: slot >= 256,
                vrid: (slot % 256) as u8,
                started_ns: u64::from_ne_bytes(d[8..16].try_into().ok()?),
            })
        }
        EVENT_ARP_CONFLICT => {
            // Ethernet (14) + ARP: sha at 8, spa at 14 in the ARP body (RFC 826).
            let sha: [u8; 6] = data.get(22..28)?.try_into().ok()?;
            let spa: [u8; 4] = data.get(28..32)?.try_into().ok()?;
            Some(DataPlaneEvent::ArpConflict {
                at,
                ifindex,
                vip: Ipv4Addr::from(spa),
                mac: sha,
            })
        }
        EVENT_NA_CONFLICT => {
            // Ethernet (14) + IPv6 (40) + NA: target at 8, options from 24 (RFC 4861 §4.4).
            let msg = data.get(54..)?;
            let target: [u8; 16] = msg.get(8..24)?.try_into().ok()?;
            let mac = nd_ll_option(msg.get(24..)?, 2)?;
            Some(DataPlaneEvent::NaConflict {
                at,
                ifindex,
                vip: Ipv6Addr::from(target),
                mac,
            })
        }
        _ => None,
    }
}

enum Ring {
    /// Not yet registered with tokio (so that synchronous use needs no runtime).
    Plain(RingBuf<MapData>),
    Async(AsyncFd<RingBuf<MapData>>),
}

/// Reads `EVENTS`: synchronously with [`Self::try_next`], or awaiting with [`Self::next`]
/// (the ring's fd in a `tokio::io::unix::AsyncFd`; needs a tokio runtime from then on).
pub struct EventReader {
    ring: Option<Ring>,
    /// Records that were not understood (unknown kind, malformed): a version mismatch.
    pub skipped: u64,
}

impl EventReader {
    pub fn new(map: Map) -> Result<Self, XdpError> {
        let ring = RingBuf::try_from(map).map_err(map_err(maps::EVENTS))?;
        Ok(Self {
            ring: Some(Ring::Plain(ring)),
            skipped: 0,
        })
    }

    fn ring_mut(&mut self) -> Option<&mut RingBuf<MapData>> {
        match self.ring.as_mut()? {
            Ring::Plain(r) => Some(r),
            Ring::Async(fd) => Some(fd.get_mut()),
        }
    }

    /// The next event if one is waiting; never blocks.
    pub fn try_next(&mut self) -> Option<DataPlaneEvent> {
        let mut skipped = 0;
        let ev = next_event(self.ring_mut()?, &mut skipped);
        self.skipped += skipped;
        ev
    }

    /// Every event waiting now.
    pub fn drain(&mut self) -> Vec<DataPlaneEvent> {
        std::iter::from_fn(|| self.try_next()).collect()
    }

    /// Waits for the next event.
    pub async fn next(&mut self) -> Result<DataPlaneEvent, XdpError> {
        if let Some(Ring::Plain(_)) = self.ring {
            let Some(Ring::Plain(r)) = self.ring.take() else {
                return Err(XdpError::EventsTaken);
            };
            // SAFETY: the RingBuf owns the map's fd, which stays open and the same for as
            // long as the RingBuf lives, i.e. as long as this AsyncFd.
            match unsafe { AsyncFd::register_with_interest(r, Interest::READABLE) } {
                Ok(fd) => self.ring = Some(Ring::Async(fd)),
                Err(e) => {
                    let (r, cause) = e.into_parts();
                    self.ring = Some(Ring::Plain(r));
                    return Err(XdpError::Events(cause));
                }
            }
        }
        let Some(Ring::Async(fd)) = self.ring.as_mut() else {
            return Err(XdpError::EventsTaken);
        };
        loop {
            let mut guard = fd.readable_mut().await.map_err(XdpError::Events)?;
            let mut skipped = 0;
            let ev = next_event(guard.get_inner_mut(), &mut skipped);
            self.skipped += skipped;
            if let Some(ev) = ev {
                // Readiness stays set: the next call looks again before waiting.
                return Ok(ev);
            }
            // Empty: wait for the producer's next wake-up (tokio keeps a newer one).
            guard.clear_ready();
        }
    }
}

impl AsRawFd for EventReader {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        match &self.ring {
            Some(Ring::Plain(r)) => r.as_raw_fd(),
            Some(Ring::Async(fd)) => fd.get_ref().as_raw_fd(),
            None => -1,
        }
    }
}

fn next_event(ring: &mut RingBuf<MapData>, skipped: &mut u64) -> Option<DataPlaneEvent> {
    loop {
        let item = ring.next()?;
        let Some((header, data)) = split_record(&item) else {
            *skipped += 1;
            continue;
        };
        let at = instant_of_mono_ns(header.ts_ns).ok()?;
        match parse_event(&header, data, at) {
            Some(ev) => return Some(ev),
            None => *skipped += 1,
        }
    }
}

// ------------------------------------------------------------------------------------------
// The driver's XDP_TX error counter (SIOCETHTOOL).

const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETH_SS_STATS: u32 = 1;
const ETH_GSTRING_LEN: usize = 32;

/// One SIOCETHTOOL request on `iface` with `data` as the command buffer.
fn ethtool(fd: i32, iface: &str, data: &mut [u8]) -> io::Result<()> {
    // SAFETY: an all-zero ifreq is a valid value (name empty, null data pointer).
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = iface.as_bytes();
    if name.len() >= ifr.ifr_name.len() || name.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    ifr.ifr_ifru.ifru_data = data.as_mut_ptr().cast();
    // SAFETY: `ifr` is a valid ifreq whose data pointer addresses `data`, sized by the caller
    // for the command it holds (the kernel writes within the lengths the command states).
    if unsafe { libc::ioctl(fd, libc::SIOCETHTOOL, &mut ifr) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sum of the driver statistics of `iface` whose name contains "xdp_tx_err" (veth:
/// `rx_queue_N_xdp_tx_errors`; others name it alike): frames an XDP program returned XDP_TX
/// for but the driver could not send. `None` if the driver has no such statistic or the
/// query fails. Runs in the calling thread's network namespace.
///
/// A data plane that answers ARP with XDP_TX must watch it: on a veth whose peer has no XDP
/// program, XDP_TX frames are dropped (TOOLCHAIN.md), and answering must go back to the kernel.
pub fn xdp_tx_errors(iface: &str) -> Option<u64> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).ok()?;
    let fd = sock.as_raw_fd();
    // struct ethtool_sset_info: cmd, reserved, sset_mask (u64), data[] (u32 per set).
    let mut info = [0u8; 24];
    info[0..4].copy_from_slice(&ETHTOOL_GSSET_INFO.to_ne_bytes());
    info[8..16].copy_from_slice(&(1u64 << ETH_SS_STATS).to_ne_bytes());
    ethtool(fd, iface, &mut info).ok()?;
    let mask = u64::from_ne_bytes(info[8..16].try_into().ok()?);
    if mask & (1 << ETH_SS_STATS) == 0 {
        return None;
    }
    let n = u32::from_ne_bytes(info[16..20].try_into().ok()?);
    let count = usize::try_from(n).ok()?;
    if count == 0 {
        return None;
    }
    // struct ethtool_gstrings: cmd, string_set, len, data[len * 32].
    let mut strings = vec![0u8; 12 + count * ETH_GSTRING_LEN];
    strings[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
    strings[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
    strings[8..12].copy_from_slice(&n.to_ne_bytes());
    ethtool(fd, iface, &mut strings).ok()?;
    // struct ethtool_stats: cmd, n_stats, data[n_stats] (u64).
    let mut stats = vec![0u8; 8 + count * 8];
    stats[0..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
    stats[4..8].copy_from_slice(&n.to_ne_bytes());
    ethtool(fd, iface, &mut stats).ok()?;
    let mut found = false;
    let mut total = 0u64;
    for i in 0..count {
        let raw = strings.get(12 + i * ETH_GSTRING_LEN..12 + (i + 1) * ETH_GSTRING_LEN)?;
        let name_len = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        let name = String::from_utf8_lossy(&raw[..name_len]);
        if name.contains("xdp_tx_err") {
            let v = stats.get(8 + i * 8..16 + i * 8)?;
            total = total.saturating_add(u64::from_ne_bytes(v.try_into().ok()?));
            found = true;
        }
    }
    found.then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vrrp_common::event::EVENT_HEADER_LEN;

    fn record(kind: u16, data: &[u8], orig_len: u32) -> Vec<u8> {
        let mut r = Vec::new();
        r.extend_from_slice(&kind.to_ne_bytes());
        r.extend_from_slice(&0u16.to_ne_bytes());
        r.extend_from_slice(&7u32.to_ne_bytes());
        r.extend_from_slice(&123u64.to_ne_bytes());
        r.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_ne_bytes());
        r.extend_from_slice(&orig_len.to_ne_bytes());
        assert_eq!(r.len(), EVENT_HEADER_LEN);
        r.extend_from_slice(data);
        // A record has a fixed capacity: trailing bytes beyond `len` are ignored.
        r.extend_from_slice(&[0xee; 16]);
        r
    }

    #[test]
    fn advert_records() {
        let rec = record(EVENT_ADVERT, &[0x45, 0, 0, 40], 40);
        let (h, data) = split_record(&rec).expect("record");
        assert_eq!((h.kind, h.ifindex, h.ts_ns), (EVENT_ADVERT, 7, 123));
        #[expect(clippy::disallowed_methods, reason = "test clock")]
        let at = Instant::now();
        match parse_event(&h, data, at) {
            Some(DataPlaneEvent::Advert {
                packet, truncated, ..
            }) => {
                assert_eq!(packet, vec![0x45, 0, 0, 40]);
                assert!(truncated);
            }
            other => panic!("{other:?}"),
        }
        assert!(split_record(&rec[..10]).is_none());
        let unknown = record(99, &[], 0);
        let (h, data) = split_record(&unknown).expect("record");
        assert_eq!(parse_event(&h, data, at), None);
    }

    #[test]
    fn master_silent_records() {
        #[expect(clippy::disallowed_methods, reason = "test clock")]
        let at = Instant::now();
        let mut data = Vec::new();
        data.extend_from_slice(&(256u32 + 42).to_ne_bytes());
        data.extend_from_slice(&0u32.to_ne_bytes());
        data.extend_from_slice(&123_456u64.to_ne_bytes());
        let rec = record(EVENT_MASTER_SILENT, &data, 16);
        let (h, d) = split_record(&rec).expect("record");
        assert_eq!(
            parse_event(&h, d, at),
            Some(DataPlaneEvent::MasterSilent {
                at,
                ifindex: 7,
                ipv6: true,
                vrid: 42,
                started_ns: 123_456
            })
        );
        // A slot beyond the maps, or a short record: not understood.
        let mut bad = data.clone();
        bad[..4].copy_from_slice(&VRID_SLOTS.to_ne_bytes());
        let rec = record(EVENT_MASTER_SILENT, &bad, 16);
        let (h, d) = split_record(&rec).expect("record");
        assert_eq!(parse_event(&h, d, at), None);
        let rec = record(EVENT_MASTER_SILENT, &data[..8], 8);
        let (h, d) = split_record(&rec).expect("record");
        assert_eq!(parse_event(&h, d, at), None);
    }

    #[test]
    fn master_down_intervals_for_the_program() {
        assert_eq!(master_down_ns(None), 0);
        assert_eq!(master_down_ns(Some(Duration::ZERO)), 1, "0 would mean none");
        assert_eq!(master_down_ns(Some(Duration::from_millis(38))), 38_000_000);
        assert_eq!(master_down_ns(Some(Duration::MAX)), u64::MAX);
    }

    #[test]
    fn conflict_records() {
        #[expect(clippy::disallowed_methods, reason = "test clock")]
        let at = Instant::now();
        let mac = [2, 0, 0, 0, 0, 9];
        let garp = crate::io::announce::garp_frame(mac, Ipv4Addr::new(192, 0, 2, 100));
        let rec = record(EVENT_ARP_CONFLICT, &garp, 42);
        let (h, data) = split_record(&rec).expect("record");
        assert_eq!(
            parse_event(&h, data, at),
            Some(DataPlaneEvent::ArpConflict {
                at,
                ifindex: 7,
                vip: Ipv4Addr::new(192, 0, 2, 100),
                mac
            })
        );
        let vip: Ipv6Addr = "2001:db8::100".parse().expect("addr");
        let na = crate::io::announce::unsolicited_na_frame(mac, vip, vip, false);
        let rec = record(EVENT_NA_CONFLICT, &na, 86);
        let (h, data) = split_record(&rec).expect("record");
        assert_eq!(
            parse_event(&h, data, at),
            Some(DataPlaneEvent::NaConflict {
                at,
                ifindex: 7,
                vip,
                mac
            })
        );
    }

    #[test]
    fn kernel_timestamps_become_instants() {
        let now = monotonic_ns().expect("clock");
        let past = instant_of_mono_ns(now - 1_000_000_000).expect("instant");
        #[expect(clippy::disallowed_methods, reason = "test clock")]
        let age = Instant::now().duration_since(past);
        assert!(
            age >= Duration::from_millis(999) && age < Duration::from_secs(5),
            "{age:?}"
        );
    }

    /// Whether the root-only test below can run: root and the embedded object; skipped
    /// with a message otherwise, unless `VRRP_LAB=1` (`cargo xtask test`), where it fails.
    fn bpf_ready() -> bool {
        let root = nix::unistd::geteuid().is_root();
        let lab = std::env::var("VRRP_LAB").is_ok_and(|v| !v.is_empty() && v != "0");
        match (root && !OBJECT.is_empty(), lab) {
            (true, _) => true,
            (false, true) => panic!(
                "VRRP_LAB is set but the XDP test cannot run (root: {root}, object embedded: {})",
                !OBJECT.is_empty()
            ),
            (false, false) => {
                eprintln!("skipped: needs root and the XDP object (cargo xtask test)");
                false
            }
        }
    }

    fn vector(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../testdata/vectors")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
            .filter_map(|b| u8::from_str_radix(b, 16).ok())
            .collect()
    }

    /// The async reader wakes up when the program (run with BPF_PROG_TEST_RUN) reports an
    /// advert.
    #[tokio::test]
    async fn event_reader_wakes_up_on_a_record() {
        use aya::programs::{TestRun, TestRunOptions};
        if !bpf_ready() {
            return;
        }
        let frame = vector("keepalived-v3-ipv4.hex");
        assert!(frame.len() > 34, "test vector");
        let vrid = frame[35];
        let mut ebpf = load().expect("load");
        set_vrid(
            &mut ebpf,
            false,
            vrid,
            VridConfig {
                flags: maps::VRID_F_CONFIGURED,
                ..Default::default()
            },
        )
        .expect("vrid");
        set_mode(&mut ebpf, true).expect("mode");
        let mut reader = take_events(&mut ebpf).expect("events");
        assert!(matches!(take_events(&mut ebpf), Err(XdpError::EventsTaken)));
        let waiter = tokio::spawn(async move { reader.next().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut out = vec![0u8; frame.len() + 64];
        let res = program(&mut ebpf)
            .expect("program")
            .test_run(TestRunOptions {
                data_in: Some(&frame),
                data_out: Some(&mut out),
                ..Default::default()
            })
            .expect("test run");
        assert_eq!(res.return_value, 1, "consumed: XDP_DROP");
        let ev = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken within 5 s")
            .expect("task")
            .expect("event");
        match ev {
            DataPlaneEvent::Advert {
                packet, truncated, ..
            } => {
                assert_eq!(packet.as_slice(), &frame[14..]);
                assert!(!truncated);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn loopback_has_no_xdp_tx_counter() {
        assert_eq!(xdp_tx_errors("lo"), None);
        assert_eq!(xdp_tx_errors("no-such-if-xyz"), None);
    }
}

#[cfg(test)]
mod format_tests {
    use super::tracepoint_field_offset;

    const SIGNAL_GENERATE: &str = "name: signal_generate
ID: 181
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;
\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

\tfield:int sig;\toffset:8;\tsize:4;\tsigned:1;
\tfield:int errno;\toffset:12;\tsize:4;\tsigned:1;
\tfield:int code;\toffset:16;\tsize:4;\tsigned:1;
\tfield:char comm[16];\toffset:20;\tsize:16;\tsigned:0;
\tfield:pid_t pid;\toffset:36;\tsize:4;\tsigned:1;
\tfield:int group;\toffset:40;\tsize:4;\tsigned:1;
\tfield:int result;\toffset:44;\tsize:4;\tsigned:1;
";

    #[test]
    fn offsets_come_from_the_format_file() {
        let f = SIGNAL_GENERATE;
        assert_eq!(tracepoint_field_offset(f, "sig"), Some(8));
        assert_eq!(tracepoint_field_offset(f, "pid"), Some(36));
        assert_eq!(tracepoint_field_offset(f, "result"), Some(44));
        assert_eq!(tracepoint_field_offset(f, "comm"), Some(20));
        // Not a prefix match: `common_pid` is not `pid`.
        assert_eq!(tracepoint_field_offset(f, "common"), None);
        assert_eq!(tracepoint_field_offset(f, "nope"), None);
    }
}
