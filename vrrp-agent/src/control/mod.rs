//! Operations: the state snapshot the daemon publishes, the status socket (server and client),
//! the human table, Prometheus metrics and the SIGUSR1 data dump.
//!
//! The daemon owns a `watch::Sender<Snapshot>` and replaces the snapshot whenever something
//! changes (and at least once a second for counters). Everything here only reads snapshots, so
//! a slow client or scraper never blocks the protocol.
//!
//! Ages (`*_ago_ms`) are computed by the daemon when it builds the snapshot: nothing in this
//! module reads a clock.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

mod dump;
mod metrics;
mod render;
mod server;
pub mod snapshot;

pub use dump::{DEFAULT_DUMP_PATH, write_dump};
pub use metrics::{
    CONTENT_TYPE as METRICS_CONTENT_TYPE, MetricsServer, render_metrics, serve_metrics,
};
pub use render::{format_duration_ms, render_json, render_table};
pub use server::{
    CommandReply, ControlCommand, ControlReply, ControlServer, DEFAULT_SOCKET_PATH, client_request,
    parse_reply, request_status, serve_control,
};
pub use snapshot::log_status;

/// Everything `vrrp-agent status` shows, as plain data the daemon fills in.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    /// The agent's crate version (`env!("CARGO_PKG_VERSION")`).
    pub version: String,
    pub pid: u32,
    /// Process start, seconds since the Unix epoch (`process_start_time_seconds`).
    pub started_at_unix: f64,
    /// When the daemon built this snapshot, seconds since the Unix epoch (0 if unknown).
    /// Lets a client show uptime and notice a stale snapshot without a clock of its own.
    pub generated_at_unix: f64,
    pub router_id: Option<String>,
    pub config_file: Option<String>,
    /// The election thread's scheduling policy, e.g. `SCHED_RR 10`.
    pub scheduling: String,
    pub instances: Vec<InstanceStatus>,
    pub dataplanes: Vec<DataPlaneStatus>,
    /// Times the kernel ARP/NA filter was found removed behind our back and put back.
    pub kernel_filter_restored: u64,
    pub checks: Vec<CheckStatus>,
}

impl Snapshot {
    /// An empty snapshot carrying this crate's version and the given pid.
    pub fn new(pid: u32, started_at_unix: f64) -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            pid,
            started_at_unix,
            ..Self::default()
        }
    }
}

/// One `vrrp_instance`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub family: IpFamily,
    /// VRRP version, 2 or 3.
    pub version: u8,
    pub state: InstanceState,
    /// Configured priority.
    pub priority_base: u8,
    /// After tracking weights.
    pub priority_effective: u8,
    /// The current master's address (ours when we are master), if known.
    pub master: Option<String>,
    pub master_priority: Option<u8>,
    /// Our own advertisement interval.
    pub advert_interval_ms: u64,
    /// The interval learned from the master's adverts (VRRPv3).
    pub master_advert_interval_ms: Option<u64>,
    pub vips: Vec<String>,
    pub sync_group: Option<String>,
    /// Why the instance is in FAULT (interface down, failed tracked script, ...).
    pub fault_reasons: Vec<String>,
    pub last_transition: Option<TransitionInfo>,
    /// Transitions so far, by reason label (e.g. "master-down", "higher-priority").
    pub transitions: BTreeMap<String, u64>,
    pub adverts_sent: u64,
    pub adverts_received: u64,
    pub priority_zero_sent: u64,
    pub priority_zero_received: u64,
    /// Adverts discarded by user-space receive checks, by reason label.
    pub drops: BTreeMap<String, u64>,
    pub peers: Vec<PeerInfo>,
    /// A split-brain episode is in progress: while we are master, another master's adverts
    /// for our VRID, or another MAC claiming one of our VIPs.
    pub split_brain_alarm: bool,
    /// Split-brain episodes so far (each ran the split-brain and fence hooks once).
    pub split_brain_episodes: u64,
    /// ARP/NA claims on our VIPs from other MACs seen while master.
    pub vip_conflicts: u64,
    /// Times the agent woke up on a timer for this instance (its own deadlines, and the
    /// backstop while the kernel watches the master).
    pub timer_wakeups: u64,
    /// The data plane's kernel timer watches the master for us (a backup with XDP): the
    /// agent sleeps until the master is silent instead of waking per Master_Down_Interval.
    pub kernel_watch: bool,
    /// Reports of the kernel timer that the master went silent.
    pub master_silent_reports: u64,
    /// `vrrp_xdp_heartbeat` paths (liveness only).
    pub heartbeat_paths: Vec<HeartbeatPathInfo>,
    /// Heartbeat adverts that restarted our master-down timer as a backup.
    pub heartbeat_restarts: u64,
    /// Adverts whose VRRPv3 checksum form differs from the one we send.
    pub checksum_form_mismatches: u64,
    /// `vrrp_xdp_checksum_auto` is on.
    pub checksum_auto: bool,
    /// The checksum forms of the adverts we send now, in sending order ("pseudo_header",
    /// "rfc9568"): two on a mixed segment in auto mode. Empty for VRRPv2 and IPv6 (one form).
    pub checksum_forms_sent: Vec<String>,
    /// VIPs put back after something else removed them while we were MASTER.
    pub vips_restored: u64,
    /// Removals of our VIPs whose restore waited for the back-off (something keeps removing
    /// them).
    #[serde(default)]
    pub vip_removals_held: u64,
    /// Peers dropped from `peers` to make room (the table is bounded: spoofed sources).
    pub peers_evicted: u64,
}

/// One redundant heartbeat path of an instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeartbeatPathInfo {
    pub interface: String,
    /// Our source address on the path.
    pub source: String,
    pub adverts_sent: u64,
    pub send_errors: u64,
    pub decode_errors: u64,
    pub peers: Vec<HeartbeatPeerInfo>,
}

/// A configured heartbeat peer; the rest is `None` until it is first heard.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HeartbeatPeerInfo {
    pub addr: String,
    pub adverts_received: u64,
    pub priority: Option<u8>,
    pub last_heard_ago_ms: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransitionInfo {
    pub from: InstanceState,
    pub to: InstanceState,
    pub reason: String,
    pub ago_ms: u64,
}

/// Another router heard on this VRID.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeerInfo {
    pub addr: String,
    pub priority: u8,
    pub interval_ms: u64,
    pub last_seen_ago_ms: u64,
    /// The checksum form of its last advert passed up: "pseudo_header" (keepalived, FRR) or
    /// "rfc9568" (VRRP message only, strict RFC 9568 routers), when known.
    pub checksum_form: Option<String>,
}

/// The receive path of one interface.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DataPlaneStatus {
    pub interface: String,
    pub mode: DataPlaneMode,
    /// Per-reason XDP counters (summed over CPUs), by reason label.
    pub counters: BTreeMap<String, u64>,
    /// Adverts for VRIDs we do not run on this interface.
    pub foreign_vrids: Vec<ForeignVrid>,
    pub arp_replies: u64,
    pub ns_replies: u64,
    /// `None` when the data plane cannot transmit (raw-socket mode).
    pub xdp_tx_errors: Option<u64>,
    /// Malformed adverts the agent decoded on this interface, by reason (once each).
    pub decode_errors: BTreeMap<String, u64>,
    /// Failed writes of the dead-man stamp (the gate silences answers when it goes stale).
    pub liveness_errors: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ForeignVrid {
    pub vrid: u8,
    pub family: IpFamily,
    pub adverts: u64,
}

/// A `vrrp_script`, `track_interface`, `track_file` or built-in check.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CheckStatus {
    pub name: String,
    /// "script", "interface", "file", "tcp", "http", ...
    pub kind: String,
    pub up: bool,
    pub runs: u64,
    pub failures: u64,
    /// `None` until the first run finished.
    pub last_duration_ms: Option<u64>,
}

/// The states as keepalived names them (`INIT`, `BACKUP`, `MASTER`, `FAULT`, `STOP`).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum InstanceState {
    #[default]
    #[serde(rename = "INIT")]
    Init,
    #[serde(rename = "BACKUP")]
    Backup,
    #[serde(rename = "MASTER")]
    Master,
    #[serde(rename = "FAULT")]
    Fault,
    #[serde(rename = "STOP")]
    Stop,
}

impl InstanceState {
    /// All states, for gauges that must show 0 for the states an instance is not in.
    pub const ALL: [Self; 5] = [
        Self::Init,
        Self::Backup,
        Self::Master,
        Self::Fault,
        Self::Stop,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Init => "INIT",
            Self::Backup => "BACKUP",
            Self::Master => "MASTER",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
        }
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<crate::proto::vr::State> for InstanceState {
    fn from(s: crate::proto::vr::State) -> Self {
        use crate::proto::vr::State;
        match s {
            State::Initialize => Self::Init,
            State::Backup => Self::Backup,
            State::Master => Self::Master,
            State::Fault => Self::Fault,
            State::Stopped => Self::Stop,
        }
    }
}

#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    #[default]
    Ipv4,
    Ipv6,
}

impl IpFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<crate::proto::Family> for IpFamily {
    fn from(f: crate::proto::Family) -> Self {
        match f {
            crate::proto::Family::V4 => Self::Ipv4,
            crate::proto::Family::V6 => Self::Ipv6,
        }
    }
}

/// How adverts reach the agent on an interface.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum DataPlaneMode {
    /// XDP in the driver.
    #[default]
    Native,
    /// XDP in the generic (skb) hook.
    Generic,
    /// `--no-xdp`: a raw socket, no fast path.
    RawSocket,
}

impl DataPlaneMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Generic => "generic",
            Self::RawSocket => "raw-socket",
        }
    }
}

impl fmt::Display for DataPlaneMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of the control socket, the metrics endpoint and the dump.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another agent is already listening on {0}")]
    AlreadyRunning(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error("bind {addr}")]
    BindTcp {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: timed out")]
    Timeout(&'static str),
    #[error("control protocol: {0}")]
    Protocol(String),
    #[error("invalid JSON from the agent: {0}")]
    Json(#[from] serde_json::Error),
    /// The daemon answered the request with an error.
    #[error("{0}")]
    Remote(String),
}

/// Seconds since the Unix epoch, for the snapshot (0 if the clock is before it).
pub fn unix_now() -> f64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "wall-clock time for the status snapshot"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
