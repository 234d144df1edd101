//! The typed configuration: what the rest of the agent consumes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::{BuiltinCheck, Span};
use crate::proto::{Auth, Centisecs, Family, Priority, Version, Vrid};

/// The whole configuration, in file order.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    pub global: GlobalDefs,
    pub instances: Vec<Instance>,
    pub scripts: Vec<VrrpScript>,
    pub track_files: Vec<TrackFile>,
    pub track_processes: Vec<TrackProcess>,
    pub sync_groups: Vec<SyncGroup>,
    /// `vrrp_xdp_check NAME { tcp ADDR:PORT | http_get { ... } ... }`: built-in checks that
    /// need no shell, referenced from `track_script` like a `vrrp_script`.
    pub checks: Vec<BuiltinCheck>,
}

/// `global_defs`, VRRP part. Defaults are keepalived's (keepalived/core/global_data.c).
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    /// `vrrp_version`; keepalived's default is 2 (IPv6 instances use 3 regardless).
    pub vrrp_version: Version,
    pub garp: Garp,
    /// `vrrp_garp_interval`: delay between gratuitous ARPs on one interface (0 = none).
    pub garp_interval: Duration,
    /// `vrrp_gna_interval`: delay between unsolicited NAs on one interface (0 = none).
    pub gna_interval: Duration,
    pub mcast_group4: Ipv4Addr,
    pub mcast_group6: Ipv6Addr,
    pub skip_check_adv_addr: bool,
    pub strict: bool,
    pub check_unicast_src: bool,
    /// keepalived ≥ 2.2.8 `v3_checksum_as_v2`: VRRPv3 over IPv4 without the pseudo-header.
    pub v3_checksum_as_v2: bool,
    pub enable_script_security: bool,
    pub script_user: Option<ScriptUser>,
    /// keepalived's `notify_fifo PATH` (`vrrp_notify_fifo` too): `INSTANCE "VI_1" MASTER 100`.
    pub notify_fifo: Option<PathBuf>,
    /// `vrrp_xdp_notify_json PATH`: the same events as JSON lines with sequence numbers.
    pub notify_json: Option<PathBuf>,
    pub xdp: XdpSettings,
    /// `vrrp_rt_priority`: SCHED_RR priority (None: our default, 0: SCHED_OTHER).
    pub rt_priority: Option<u8>,
    /// `vrrp_rlimit_rttime`: RLIMIT_RTTIME in microseconds while real-time.
    pub rlimit_rttime_us: Option<u64>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        Self {
            router_id: None,
            vrrp_version: Version::V2,
            garp: Garp::default(),
            garp_interval: Duration::ZERO,
            gna_interval: Duration::ZERO,
            mcast_group4: Ipv4Addr::new(224, 0, 0, 18),
            mcast_group6: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
            skip_check_adv_addr: false,
            strict: false,
            check_unicast_src: false,
            v3_checksum_as_v2: false,
            enable_script_security: false,
            script_user: None,
            notify_fifo: None,
            notify_json: None,
            xdp: XdpSettings::default(),
            rt_priority: None,
            rlimit_rttime_us: None,
        }
    }
}

/// Our own `global_defs` extensions (`vrrp_xdp_*`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct XdpSettings {
    /// `vrrp_xdp_metrics ADDR:PORT`: Prometheus endpoint.
    pub metrics: Option<SocketAddr>,
    /// `vrrp_xdp_control_socket PATH`: status/reload unix socket.
    pub control_socket: Option<PathBuf>,
    /// `vrrp_xdp_mode native|generic|off`.
    pub mode: XdpMode,
    /// `vrrp_xdp_checksum_auto [BOOL]`: the default of the instances' `vrrp_xdp_checksum_auto`.
    pub checksum_auto: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native driver mode, falling back to generic when the driver lacks it.
    #[default]
    Auto,
    Native,
    Generic,
    /// No XDP program: adverts on a raw socket only.
    Off,
}

/// Gratuitous ARP / NA settings (keepalived/include/vrrp.h defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Garp {
    /// `garp_master_delay`: second burst after becoming master (default 5 s).
    pub master_delay: Duration,
    /// `garp_master_repeat`: GARPs per burst (default 5).
    pub master_repeat: u32,
    /// `garp_master_refresh`: periodic refresh while master (default 0 = none).
    pub master_refresh: Duration,
    /// `garp_master_refresh_repeat`: GARPs per refresh (default 1).
    pub master_refresh_repeat: u32,
}

impl Default for Garp {
    fn default() -> Self {
        Self {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            master_refresh: Duration::ZERO,
            master_refresh_repeat: 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialState {
    Master,
    Backup,
}

/// A `vrrp_instance`, completed with keepalived's defaults (vrrp.c vrrp_complete_instance).
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub name: String,
    pub span: Span,
    pub state: InitialState,
    pub interface: String,
    pub interface_span: Span,
    pub vrid: Vrid,
    pub vrid_span: Span,
    pub priority: Priority,
    pub advert_int: Centisecs,
    pub version: Version,
    pub family: Family,
    pub auth: Auth,
    pub vips: Vec<VirtualAddress>,
    pub excluded_vips: Vec<VirtualAddress>,
    /// False with `nopreempt`.
    pub preempt: bool,
    pub preempt_delay: Duration,
    pub unicast_src: Option<IpAddr>,
    pub unicast_peers: Vec<UnicastPeer>,
    /// `unicast_ttl`: the TTL / hop limit of our unicast adverts (default 255). keepalived
    /// ignores it without unicast peers, and so do we (with its warning).
    pub unicast_ttl: Option<u8>,
    /// Per-instance `check_unicast_src`, also set by `min_ttl`/`max_ttl` on a `unicast_peer`
    /// line (as keepalived does); the global `vrrp_check_unicast_src` applies besides.
    pub check_unicast_src: bool,
    /// `vrrp_xdp_heartbeat { ... }` blocks (our extension): redundant heartbeat paths.
    pub heartbeats: Vec<Heartbeat>,
    pub garp: Garp,
    pub native_ipv6: bool,
    pub vmac: Option<Vmac>,
    /// Accept mode; keepalived's default is on unless strict (then only for the owner).
    pub accept: bool,
    pub dont_track_primary: bool,
    pub track_interfaces: Vec<TrackRef>,
    pub track_scripts: Vec<TrackRef>,
    pub track_files: Vec<TrackRef>,
    pub track_processes: Vec<TrackRef>,
    pub notify: Notify,
    pub skip_check_adv_addr: bool,
    pub strict: bool,
    pub v3_checksum_as_v2: bool,
    /// Our `vrrp_xdp_v2_interop`: RFC 9568 §8.4 VRRPv2 interoperation.
    pub v2_interop: bool,
    /// `vrrp_xdp_checksum_auto` (our extension): answer each peer in the VRRPv3 IPv4 checksum
    /// form it uses; `v3_checksum_as_v2` gives the form for peers never heard.
    pub checksum_auto: bool,
    /// Which values were not written and came from a default.
    pub defaulted: Defaulted,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defaulted {
    pub state: bool,
    pub priority: bool,
    pub advert_int: bool,
    pub version: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub label: Option<String>,
    /// rtnetlink scope (0 global, 200 site, 253 link, 254 host, 255 nowhere).
    pub scope: Option<u8>,
    pub no_track: bool,
    pub nodad: bool,
    pub noprefixroute: bool,
    pub home: bool,
    pub mngtmpaddr: bool,
    pub autojoin: bool,
    pub use_vmac: bool,
    /// `preferred_lft`; `forever` is `u32::MAX`.
    pub preferred_lft: Option<u32>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnicastPeer {
    pub addr: IpAddr,
    /// keepalived's `min_ttl` / `max_ttl`: the range the peer's unicast adverts must arrive
    /// with (0..=255 when not given).
    pub min_ttl: u8,
    pub max_ttl: u8,
    /// The line had `min_ttl` or `max_ttl` (keepalived then checks the instance's unicast
    /// sources).
    pub ttl_given: bool,
    pub span: Span,
}

/// `vrrp_xdp_heartbeat { interface IF  unicast_src_ip A  unicast_peer { A ... } }` inside a
/// `vrrp_instance` (our extension): the instance's adverts also go unicast to `peers` over
/// `interface`, and adverts from them there keep a backup from declaring the master down
/// (liveness only; see `proto::vr` `heartbeat_rx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub interface: String,
    pub interface_span: Span,
    /// The source address; `None`: the interface's first address of the instance's family.
    pub src: Option<IpAddr>,
    /// At least one, all of the instance's family.
    pub peers: Vec<(IpAddr, Span)>,
    /// The `vrrp_xdp_heartbeat` keyword.
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vmac {
    pub name: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub xmit_base: bool,
}

/// A reference from an instance to a tracked object, with an optional weight override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackRef {
    pub name: String,
    pub weight: Option<Weight>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Weight {
    pub value: i16,
    pub reverse: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub master: Option<Command>,
    pub backup: Option<Command>,
    pub fault: Option<Command>,
    pub stop: Option<Command>,
    /// `notify`: called on every transition with type, name, state and priority appended.
    pub any: Option<Command>,
    pub master_rx_lower_pri: Option<Command>,
    /// `vrrp_xdp_notify_split_brain`: run once when a split-brain episode starts while MASTER
    /// (another master's adverts for our VRID, or another MAC claiming our VIP), with
    /// `INSTANCE NAME KIND SOURCE` appended.
    pub split_brain: Option<Command>,
    /// `vrrp_xdp_fence`: like the split-brain hook (same arguments), for a fencing action
    /// (STONITH); run once per episode.
    pub fence: Option<Command>,
}

/// A command line split like keepalived's alloc_strvec_quoted_escaped, plus who runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    pub user: Option<ScriptUser>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

/// `vrrp_script` (defaults: keepalived/include/vrrp_track.h, vrrp_data.c alloc_vrrp_script).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpScript {
    pub name: String,
    pub span: Span,
    pub command: Command,
    /// Default 1 s.
    pub interval: Duration,
    /// Default 0 = the interval.
    pub timeout: Duration,
    pub weight: Weight,
    pub rise: u32,
    pub fall: u32,
    pub init_fail: bool,
}

/// `track_file` / `vrrp_track_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackFile {
    pub name: String,
    pub span: Span,
    pub path: PathBuf,
    pub weight: Weight,
    pub init_file: Option<InitFile>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitFile {
    pub value: i64,
    pub overwrite: bool,
}

/// `vrrp_track_process`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackProcess {
    pub name: String,
    pub span: Span,
    pub process: String,
    pub params: Vec<String>,
    pub weight: Weight,
    pub quorum: u32,
    pub quorum_max: u32,
    pub delay: Duration,
}

/// `vrrp_sync_group`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncGroup {
    pub name: String,
    pub span: Span,
    pub instances: Vec<(String, Span)>,
    pub notify: Notify,
}
