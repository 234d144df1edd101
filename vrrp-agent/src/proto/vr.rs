//! The virtual-router state machine: RFC 9568 (VRRPv3) and RFC 3768 (VRRPv2), with keepalived's
//! choices where the RFCs leave room (each such place names the keepalived function it mirrors).
//!
//! Sans-IO in the shape of smoltcp/quinn: the driver feeds [`Input`]s with the current time,
//! drains [`Output`]s with [`VirtualRouter::poll_output`] after every [`VirtualRouter::handle`],
//! and calls `handle(now, Input::Timeout)` once `now >= poll_timeout()`. Timers are data; a
//! spurious or early `Timeout` is harmless because deadlines are compared with `now`.
//!
//! Lifecycle: [`VirtualRouter::new`] leaves the router in `Initialize` so the driver can report
//! link and tracking state first; `Input::Startup` is the RFC's Startup event.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::advert::{Advert, Auth};
use super::types::{Centisecs, Family, Priority, Version, Vrid};

/// keepalived's `VRRP_DOWN_TIMER_ADVERTS`: adverts missed before the master is declared down
/// (RFC 9568 §6.1 and RFC 3768 §6.1 fix it at 3; keepalived's `down_timer_adverts` can change it).
pub const DEFAULT_DOWN_TIMER_ADVERTS: u8 = 3;

/// The state the instance wants at startup: keepalived's `state MASTER|BACKUP`.
///
/// keepalived derives it from the priority when it is not configured (`vrrp_complete_instance`:
/// owner → MASTER, else BACKUP); [`InitialState::for_priority`] gives that default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum InitialState {
    Backup,
    Master,
}

impl InitialState {
    /// keepalived's default when `state` is not configured.
    pub const fn for_priority(p: Priority) -> Self {
        if p.0 == Priority::OWNER.0 {
            Self::Master
        } else {
            Self::Backup
        }
    }
}

/// The configuration of one virtual router, already resolved from keepalived.conf (global
/// defaults and `vrrp_strict` applied by the config layer).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrConfig {
    pub vrid: Vrid,
    pub version: Version,
    pub family: Family,
    /// Base priority, 1..=255 (255 = address owner).
    pub priority: Priority,
    /// Advertisement_Interval. VRRPv2 requires whole seconds.
    pub interval: Centisecs,
    /// `false` is keepalived's `nopreempt`.
    pub preempt: bool,
    /// keepalived's `preempt_delay` (see `backup_rx` for its exact semantics).
    pub preempt_delay: Duration,
    /// Accept_Mode (RFC 9568 §6.1). Only stored: the I/O shell decides address binding; see
    /// [`VirtualRouter::accepts_vip_traffic`].
    pub accept: bool,
    /// The virtual addresses, all of `family`.
    pub addresses: Vec<IpAddr>,
    /// Our own primary address: the advert source, and the tie-breaker (RFC 9568 §6.4.3).
    pub primary: IpAddr,
    /// VRRPv2 authentication (RFC 3768 §5.3.6). Forced to `Auth::None` for VRRPv3.
    pub auth: Auth,
    pub initial: InitialState,
    pub unicast_peers: Vec<IpAddr>,
    /// keepalived's `check_unicast_src`: drop unicast adverts from addresses not in
    /// `unicast_peers`. Off by default in keepalived.
    pub check_unicast_src: bool,
    /// keepalived's `down_timer_adverts` (1..=100, default 3).
    pub down_timer_adverts: u8,
    /// keepalived's `lower_prio_no_advert`: as master, do not re-advertise on a lower priority
    /// advert.
    pub lower_prio_no_advert: bool,
    /// keepalived's `higher_prio_send_advert`: as master, advertise once more before yielding.
    pub higher_prio_send_advert: bool,
    /// keepalived's `garp_lower_prio_repeat` != 0: as master, re-announce on a lower priority
    /// advert.
    pub garp_lower_prio: bool,
    /// keepalived's `garp_master_delay` (default 5 s; zero = no second burst).
    pub garp_master_delay: Duration,
    /// keepalived's `garp_master_refresh` (default none).
    pub garp_master_refresh: Option<Duration>,
    /// keepalived's `owner_ignore_adverts`: an address owner drops every advert, as RFC 3768
    /// §7.1 and RFC 9568 §7.1 literally say. keepalived's default (false) processes them.
    pub owner_ignore_adverts: bool,
}

impl VrConfig {
    /// A configuration with keepalived's defaults for everything not given (non-strict mode):
    /// VRRPv2, priority 100, advert_int 1 s, preempt, accept, garp_master_delay 5 s.
    pub fn keepalived_defaults(
        vrid: Vrid,
        family: Family,
        primary: IpAddr,
        addresses: Vec<IpAddr>,
    ) -> Self {
        Self {
            vrid,
            version: Version::V2,
            family,
            priority: Priority(100),
            interval: Centisecs(100),
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept: true,
            addresses,
            primary,
            auth: Auth::None,
            initial: InitialState::Backup,
            unicast_peers: Vec::new(),
            check_unicast_src: false,
            down_timer_adverts: DEFAULT_DOWN_TIMER_ADVERTS,
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            garp_lower_prio: true,
            garp_master_delay: Duration::from_secs(5),
            garp_master_refresh: None,
            owner_ignore_adverts: false,
        }
    }

    fn is_owner(&self) -> bool {
        self.priority == Priority::OWNER
    }

    /// Rejects what no VRRP router can run.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.priority == Priority::RELEASE {
            return Err(ConfigError::PriorityZero);
        }
        if self.interval.get() == 0 {
            return Err(ConfigError::IntervalZero);
        }
        match self.version {
            // RFC 9568 §5.2.7: a 12-bit field.
            Version::V3 if self.interval > Centisecs::V3_MAX => {
                return Err(ConfigError::IntervalTooLarge(self.interval));
            }
            Version::V2 => {
                // RFC 3768 §5.3.7: 8-bit whole seconds; RFC 3768 is IPv4 only.
                if !self.interval.get().is_multiple_of(100) || self.interval.get() > 255 * 100 {
                    return Err(ConfigError::V2Interval(self.interval));
                }
                if self.family == Family::V6 {
                    return Err(ConfigError::V2Ipv6);
                }
            }
            Version::V3 => {}
        }
        if self.addresses.is_empty() {
            return Err(ConfigError::NoAddresses);
        }
        if self.addresses.len() > 255 {
            return Err(ConfigError::TooManyAddresses(self.addresses.len()));
        }
        if let Some(a) = self
            .addresses
            .iter()
            .find(|a| family_of(**a) != self.family)
        {
            return Err(ConfigError::AddressFamily(*a));
        }
        if family_of(self.primary) != self.family {
            return Err(ConfigError::AddressFamily(self.primary));
        }
        if self.down_timer_adverts == 0 || self.down_timer_adverts > 100 {
            return Err(ConfigError::DownTimerAdverts(self.down_timer_adverts));
        }
        Ok(())
    }

    /// keepalived's silent corrections in `vrrp_complete_instance` (it logs and resets).
    fn normalize(&mut self) {
        if self.version == Version::V3 {
            // RFC 9568 §9.1: no authentication in v3.
            self.auth = Auth::None;
        }
        // "nopreempt is incompatible with priority 255" / "will not work with initial state
        // MASTER": keepalived clears nopreempt (and preempt_delay with state MASTER).
        if self.is_owner() || self.initial == InitialState::Master {
            self.preempt = true;
        }
        if self.initial == InitialState::Master || !self.preempt {
            self.preempt_delay = Duration::ZERO;
        }
    }
}

/// Errors in a [`VrConfig`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize)]
pub enum ConfigError {
    #[error("priority 0 is reserved for a master that is leaving (RFC 9568 §5.2.4)")]
    PriorityZero,
    #[error("advertisement interval must not be zero")]
    IntervalZero,
    #[error("advertisement interval {0} exceeds the 12-bit VRRPv3 field (40.95s)")]
    IntervalTooLarge(Centisecs),
    #[error("VRRPv2 advertisement interval {0} must be whole seconds, 1..=255")]
    V2Interval(Centisecs),
    #[error("VRRPv2 (RFC 3768) is IPv4 only")]
    V2Ipv6,
    #[error("no virtual addresses")]
    NoAddresses,
    #[error("{0} virtual addresses, at most 255 fit in an advert")]
    TooManyAddresses(usize),
    #[error("address {0} is not of the virtual router's family")]
    AddressFamily(IpAddr),
    #[error("down_timer_adverts {0} outside 1..=100")]
    DownTimerAdverts(u8),
    #[error("VRID, version or family changed; create a new virtual router instead")]
    IdentityChanged,
}

/// States: RFC 9568 §6.4 plus keepalived's FAULT and a terminal Stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    Initialize,
    Backup,
    Master,
    /// keepalived's FAULT: interface down or a tracked failure with weight 0.
    Fault,
    /// After `Input::Shutdown`; `Input::Startup` starts again.
    Stopped,
}

/// Why a transition happened (logs, status, notify scripts).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Reason {
    /// Initialize → Backup.
    Startup,
    /// Initialize (or Fault) → Master as the address owner.
    Owner,
    /// keepalived `state MASTER` for a non-owner: no master heard during one interval.
    InitialMaster {
        after: Duration,
    },
    /// Master_Down_Timer fired.
    MasterDown {
        after: Duration,
    },
    /// The master sent priority 0 and Skew_Time passed.
    PriorityZeroReceived {
        src: IpAddr,
    },
    /// We preempted a lower priority master (its adverts were discarded until it timed out).
    Preempt {
        src: IpAddr,
        priority: Priority,
    },
    /// Master → Backup: a better advert.
    HigherPriority {
        src: IpAddr,
        priority: Priority,
    },
    LinkDown,
    LinkUp,
    TrackFailed,
    TrackRecovered,
    Shutdown,
    /// Master → Backup after `Input::Resign`: the new master's first advert was seen.
    HandedOver {
        to: IpAddr,
    },
    /// keepalived `vrrp_sync_group`: another member of our sync group moved us.
    SyncGroup {
        group: String,
        member: String,
        event: SyncEvent,
    },
}

/// What a sync-group member did (for [`Reason::SyncGroup`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncEvent {
    /// The member became MASTER (keepalived `vrrp_sync_master`).
    Master,
    /// The member left MASTER for BACKUP (keepalived `vrrp_sync_backup`).
    Backup,
    /// The member went FAULT by its own cause (keepalived `vrrp_sync_fault`).
    Fault,
    /// The member's own fault cleared (keepalived `try_up_instance` → `vrrp_sync_backup`).
    Recovered,
}

/// What other sync-group members need to know about one router, beyond its state transitions
/// (see [`super::sync`]). Compare before and after each `handle`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct SyncStatus {
    /// Our own FAULT causes (link down or a weight-0 tracking failure), not a sync group's:
    /// keepalived's `flags_if_fault`, counted in the group's `num_member_fault`.
    pub fault: bool,
    /// Our Master_Down_Timer fired but the sync group held us in Backup: keepalived's
    /// `wantstate == MASTER` while `state == BACKUP` (`vrrp_sync_can_goto_master`).
    pub wants_master: bool,
}

/// Receive checks that discard an advert (RFC 9568 §7.1, RFC 3768 §7.1). Never a state change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum DropReason {
    VridMismatch {
        got: Vrid,
    },
    VersionMismatch {
        got: Version,
    },
    /// Source or addresses of the other family.
    FamilyMismatch,
    /// RFC 3768 §7.1: authentication type or password differ.
    AuthMismatch,
    /// RFC 3768 §7.1: a v2 advert interval must equal ours.
    IntervalMismatch {
        ours: Centisecs,
        theirs: Centisecs,
    },
    /// We are the address owner and `owner_ignore_adverts` is set.
    OwnerIgnoresAdverts,
    /// Unicast source not in `unicast_peers` (with `check_unicast_src`).
    UnknownUnicastSource,
    /// Our own primary address as source: a loop.
    OwnAddress,
}

/// Accepted, but worth a log line (RFC 9568 §7.1 "MUST log"; keepalived logs and processes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RxWarning {
    /// RFC 9568 §7.1 / RFC 3768 §7.1: the address list differs from ours. keepalived
    /// (`vrrp_check_packet`) counts `addr_list_err`, logs, and still processes the advert.
    AddressListMismatch,
    /// VRRPv3 interval differs from ours: keepalived logs and learns it (RFC 9568 §6.4.2).
    IntervalMismatch { ours: Centisecs, theirs: Centisecs },
}

/// What an `Announce` is for; the I/O shell picks the repeat count (keepalived's
/// `garp_master_repeat`, `garp_lower_prio_repeat`, `garp_master_refresh_repeat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum AnnounceKind {
    BecomeMaster,
    /// `garp_master_delay` after becoming master.
    Delayed,
    Refresh,
    /// Master heard a lower priority advert.
    LowerPriority,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// RFC 9568 §6.4.1 Startup event.
    Startup,
    Advert {
        src: IpAddr,
        advert: Advert,
    },
    /// A deadline may have passed.
    Timeout,
    Link {
        up: bool,
    },
    /// Effective priority from tracking (base + weights). Clamped to 1..=254 and ignored by an
    /// address owner, as keepalived's `vrrp_set_effective_priority`; failures that should stop
    /// the instance are `Fault(true)`.
    Priority(Priority),
    /// Some tracked object with weight 0 is failed (true) / none is (false); the tracking
    /// layer aggregates. The link state is separate (`Link`), FAULT lasts while either holds.
    Fault(bool),
    Config(VrConfig),
    Shutdown,
    /// Planned handover, make-before-break: a Master sends priority 0 and stops advertising but
    /// keeps its addresses (and keeps answering for them) until the new master's first advert
    /// arrives; then it leaves for Backup, or for Stopped when `exit`. If no one takes over
    /// within a Master_Down_Interval it resumes (or, when `exit`, releases and stops). After a
    /// handover we do not preempt back until we become Master again by the usual rules. Not a
    /// Master: `exit` stops at once, otherwise nothing happens.
    Resign {
        exit: bool,
    },
    /// An advert heard on a redundant heartbeat path (our `vrrp_xdp_heartbeat` extension: the
    /// same instance's adverts, sent unicast over a second interface) from `src`, one of that
    /// path's configured peers; `local` is our own address on that path. Liveness only: it
    /// never makes anyone Master and takes no part in the election (see `heartbeat_rx`).
    HeartbeatAdvert {
        src: IpAddr,
        local: IpAddr,
        advert: Advert,
    },
    /// The data plane absorbed an advert from `src` identical to the last one it passed up, at
    /// `at` (its timestamp). Re-processed as that advert received at `at`.
    AdvertSeenAt {
        src: IpAddr,
        #[serde(with = "super::clock::ms")]
        at: Instant,
    },
    /// keepalived `vrrp_sync_group`: we are a member of `group` with `peers` (the other members).
    /// Empty `peers` leaves the group. Send before `Startup` and again after a reload.
    SyncJoin {
        group: String,
        peers: Vec<String>,
    },
    /// `member` became MASTER by its own cause (keepalived `vrrp_sync_master`): a Backup follows
    /// at once (as `vrrp_state_goto_master`), so does a Fault with no fault left of its own.
    SyncMaster {
        group: String,
        member: String,
    },
    /// `member` left MASTER for BACKUP by its own cause (keepalived `vrrp_sync_backup`): a Master
    /// leaves as `vrrp_state_leave_master(advF = false)` does: no priority 0 advert, VIPs
    /// removed, Master_Down_Timer re-armed.
    SyncBackup {
        group: String,
        member: String,
    },
    /// `member`'s own FAULT causes appeared (true) or cleared (false) (keepalived
    /// `down_instance` → `vrrp_sync_fault`, `try_up_instance` → `vrrp_sync_backup`). We stay
    /// FAULT while any member, or our link or tracking, is at fault (`num_member_fault`).
    SyncFault {
        group: String,
        member: String,
        fault: bool,
    },
    /// `member` is (not) held in Backup wanting MASTER ([`SyncStatus::wants_master`]); read by
    /// our own `vrrp_sync_can_goto_master` check.
    SyncWantMaster {
        group: String,
        member: String,
        want: bool,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Output {
    SendAdvert {
        priority: Priority,
    },
    /// Gratuitous ARP / unsolicited NA for the virtual addresses.
    Announce {
        kind: AnnounceKind,
    },
    /// Bind the virtual addresses. Never twice without a `RemoveVips` between.
    InstallVips,
    /// Unbind the virtual addresses installed by the last `InstallVips`.
    RemoveVips,
    SetXdpOwnership(bool),
    Transition {
        from: State,
        to: State,
        reason: Reason,
    },
    Dropped {
        src: IpAddr,
        reason: DropReason,
    },
    Warning {
        src: IpAddr,
        warning: RxWarning,
    },
    /// keepalived's `notify_master_rx_lower_pri`.
    MasterRxLowerPriority {
        src: IpAddr,
        priority: Priority,
    },
    PriorityChanged {
        from: Priority,
        to: Priority,
    },
    /// While Master, a heartbeat peer keeps advertising (priority > 0) on a heartbeat path:
    /// it is a second master. `better` when it would win the RFC 9568 §6.4.3 comparison
    /// (priority, then the heartbeat addresses). We stay Master (see `heartbeat_rx`): the
    /// driver raises the split-brain alarm.
    HeartbeatMaster {
        src: IpAddr,
        priority: Priority,
        better: bool,
    },
    /// `Input::Config` was not applied; the old configuration stays.
    ConfigRejected {
        error: ConfigError,
    },
    /// A resigning Master heard no new master within a Master_Down_Interval: it kept (when
    /// resuming) or released (when exiting) the addresses.
    ResignTimedOut {
        resumed: bool,
    },
}

/// The master as seen from Backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MasterInfo {
    pub addr: IpAddr,
    pub priority: Priority,
    pub interval: Centisecs,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionRecord {
    pub at: Instant,
    pub from: State,
    pub to: State,
    pub reason: Reason,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Adverts that passed the receive checks.
    pub adverts_rx: u64,
    /// `AdvertSeenAt` replays.
    pub adverts_seen: u64,
    pub adverts_tx: u64,
    pub priority_zero_rx: u64,
    pub priority_zero_tx: u64,
    pub became_master: u64,
    pub released_master: u64,
    /// `Input::Resign` as Master (planned handovers and make-before-break stops).
    pub resigned: u64,
    pub dropped_vrid: u64,
    pub dropped_version: u64,
    pub dropped_family: u64,
    pub dropped_auth: u64,
    pub dropped_interval: u64,
    pub dropped_owner: u64,
    pub dropped_unknown_unicast_src: u64,
    pub dropped_own_address: u64,
    pub address_list_mismatch: u64,
    pub interval_mismatch: u64,
    /// Lower priority adverts discarded in Backup to preempt (RFC 9568 §6.4.2).
    pub discarded_lower_priority: u64,
    /// Adverts while Initialize/Fault/Stopped (keepalived ignores them).
    pub ignored_not_running: u64,
    /// `AdvertSeenAt` from a source we hold no advert for.
    pub seen_unmatched: u64,
    /// Master_Down_Timer expiries held in Backup by the sync group
    /// (keepalived `vrrp_sync_can_goto_master` false).
    pub sync_held: u64,
    /// Heartbeat-path adverts that passed the receive checks.
    pub heartbeat_rx: u64,
    /// Heartbeat-path adverts that restarted the Master_Down_Timer in Backup.
    pub heartbeat_restarts: u64,
    /// Heartbeat-path priority 0 adverts (Master_Down_Timer set to Skew_Time in Backup).
    pub heartbeat_priority_zero_rx: u64,
    /// Heartbeat-path adverts with a priority we would preempt: they restart nothing.
    pub heartbeat_lower_priority: u64,
    /// `Output::HeartbeatMaster` emitted (a second master heard on a heartbeat path).
    pub heartbeat_conflicts: u64,
}

/// A serializable snapshot for the status socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub vrid: Vrid,
    pub state: State,
    pub base_priority: Priority,
    pub effective_priority: Priority,
    pub master: Option<MasterInfo>,
    pub master_adver_int: Centisecs,
    pub master_down_interval: Duration,
    /// Master that sent priority 0 and holds its addresses until the new master is heard.
    pub resigning: bool,
    /// Backup after a handover: lower priority masters are accepted (no preemption back).
    pub yielded: bool,
    pub last_transition: Option<TransitionStatus>,
    pub counters: Counters,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TransitionStatus {
    pub from: State,
    pub to: State,
    pub reason: Reason,
    /// How long ago, at the time of the snapshot.
    pub ago: Duration,
}

/// What makes a Backup take over when its Master_Down_Timer fires (keepalived's
/// `next_master_reason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    NoResponse,
    InitialMaster,
    PriorityZero(IpAddr),
    Preempt(IpAddr, Priority),
}

/// Our sync group as this router knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SyncMembership {
    group: String,
    /// The other members, each with whether it is held in Backup wanting MASTER.
    peers: BTreeMap<String, bool>,
}

/// RFC 9568 §6.1 Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256 centiseconds;
/// RFC 3768 §6.1 Skew_Time = (256 - Priority) / 256 seconds.
///
/// Computed in nanoseconds, which is exact for v2 and within 0.5 ns for v3 (keepalived truncates
/// to microseconds: `VRRP_TIMER_SKEW_CALC`).
pub fn skew_time(version: Version, priority: Priority, master_adver_int: Centisecs) -> Duration {
    let weight = 256 - u64::from(priority.get());
    let unit_ns = match version {
        Version::V3 => u64::from(master_adver_int.get()) * 10_000_000,
        Version::V2 => 1_000_000_000,
    };
    Duration::from_nanos(weight * unit_ns / 256)
}

/// RFC 9568 §6.1 / RFC 3768 §6.1: Master_Down_Interval = 3 * Master_Adver_Interval + Skew_Time
/// (3 is keepalived's `down_timer_adverts`). For v2 the interval is always the configured one.
pub fn master_down_interval(
    version: Version,
    priority: Priority,
    master_adver_int: Centisecs,
    down_timer_adverts: u8,
) -> Duration {
    master_adver_int.as_duration() * u32::from(down_timer_adverts)
        + skew_time(version, priority, master_adver_int)
}

fn family_of(a: IpAddr) -> Family {
    match a {
        IpAddr::V4(_) => Family::V4,
        IpAddr::V6(_) => Family::V6,
    }
}

/// RFC 9568 §6.4.3: "based on an unsigned integer comparison of the IPvX addresses in network
/// byte order". `None` across families (dropped before this is asked).
fn addr_cmp(a: IpAddr, b: IpAddr) -> Option<Ordering> {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => Some(u32::from(a).cmp(&u32::from(b))),
        (IpAddr::V6(a), IpAddr::V6(b)) => Some(u128::from(a).cmp(&u128::from(b))),
        _ => None,
    }
}

fn later(t: Instant, d: Duration) -> Instant {
    // An Instant this far in the future cannot be represented; firing early is the safe side.
    t.checked_add(d).unwrap_or(t)
}

fn same_set(a: &[IpAddr], b: &[IpAddr]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// Senders remembered for `AdvertSeenAt` replays.
const HEARD_MAX: usize = 8;

/// Consecutive heartbeat-path adverts of another master (none more than a Master_Down_Interval
/// apart) before a Master reports it. One is expected during every ordinary takeover: the new
/// master's first advert goes out on both paths, and the heartbeat copy may arrive before the
/// primary one that makes us yield (or before ours makes it yield).
const HEARTBEAT_CONFLICT_ADVERTS: u32 = 2;

/// Another master heard on a heartbeat path while we are Master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeartbeatConflict {
    last: Instant,
    count: u32,
}

/// One virtual router (one VRID on one interface, one family).
#[derive(Debug)]
pub struct VirtualRouter {
    cfg: VrConfig,
    state: State,
    effective: Priority,
    /// RFC 9568 §6.1 Master_Adver_Interval: learned from the master in Backup (v3).
    master_adver_int: Centisecs,
    /// Adver_Timer in Master, Master_Down_Timer in Backup, none otherwise.
    deadline: Option<Instant>,
    /// When the Master_Down_Timer was last (re)armed, for `Reason::MasterDown { after }`.
    armed_at: Instant,
    cause: Cause,
    garp_at: Option<Instant>,
    garp_refresh_at: Option<Instant>,
    /// keepalived's `preempt_time`: lower priority adverts are accepted until then.
    preempt_at: Option<Instant>,
    link_up: bool,
    track_fault: bool,
    /// Our sync group and its other members, each with whether it wants MASTER.
    sync: Option<SyncMembership>,
    /// Members (with their group) whose own FAULT holds us in FAULT (keepalived
    /// `num_member_fault`).
    sync_faults: BTreeMap<String, String>,
    /// keepalived `GROUP_STATE(sgroup) == VRRP_STATE_MAST` as far as we know.
    group_master: bool,
    /// keepalived `wantstate == MASTER` while Backup: held by `vrrp_sync_can_goto_master`.
    sync_held: bool,
    master: Option<MasterInfo>,
    /// `Input::Resign` in progress (Master only): `Some(exit)`.
    resign: Option<bool>,
    /// After a handover, to this master: accept its adverts whatever their priority (behave
    /// as `nopreempt` towards it) until we are Master again. Only its: a third sender's
    /// lower-priority adverts (a flood) must not hold us in BACKUP when it dies.
    yielded_to: Option<IpAddr>,
    /// The last advert that passed the checks, for `AdvertSeenAt` and for warning once.
    last_rx: Option<(IpAddr, Advert)>,
    /// The last advert of each recent sender, for `AdvertSeenAt`: the data plane replays the
    /// master's timestamps even when another sender (a stray router, a flood) was heard last.
    heard: BTreeMap<IpAddr, Advert>,
    last_transition: Option<TransitionRecord>,
    /// Another master heard on a heartbeat path during this Master episode.
    heartbeat_conflict: Option<HeartbeatConflict>,
    counters: Counters,
    out: VecDeque<Output>,
}

impl VirtualRouter {
    /// A router in `Initialize`; send `Input::Startup` to start it.
    pub fn new(mut cfg: VrConfig, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        cfg.normalize();
        Ok(Self {
            effective: cfg.priority,
            master_adver_int: cfg.interval,
            cfg,
            state: State::Initialize,
            deadline: None,
            armed_at: now,
            cause: Cause::NoResponse,
            garp_at: None,
            garp_refresh_at: None,
            preempt_at: None,
            link_up: true,
            track_fault: false,
            sync: None,
            sync_faults: BTreeMap::new(),
            group_master: false,
            sync_held: false,
            master: None,
            resign: None,
            yielded_to: None,
            last_rx: None,
            heard: BTreeMap::new(),
            last_transition: None,
            heartbeat_conflict: None,
            counters: Counters::default(),
            out: VecDeque::new(),
        })
    }

    /// Processes one input. Never blocks, never reads a clock.
    pub fn handle(&mut self, now: Instant, input: Input) {
        match input {
            Input::Startup => {
                if matches!(self.state, State::Initialize | State::Stopped) {
                    self.startup(now);
                }
            }
            Input::Shutdown => self.shutdown(now),
            Input::Resign { exit } => self.resign(now, exit),
            Input::Timeout => self.on_timeout(now),
            Input::Link { up } => {
                self.link_up = up;
                let reason = if up { Reason::LinkUp } else { Reason::LinkDown };
                self.reevaluate_fault(now, reason);
            }
            Input::Fault(failed) => {
                self.track_fault = failed;
                let reason = if failed {
                    Reason::TrackFailed
                } else {
                    Reason::TrackRecovered
                };
                self.reevaluate_fault(now, reason);
            }
            Input::Priority(p) => self.set_effective(p),
            Input::Advert { src, advert } => self.receive(now, now, src, advert, false),
            Input::HeartbeatAdvert { src, local, advert } => {
                self.heartbeat_rx(now, src, local, &advert)
            }
            Input::AdvertSeenAt { src, at } => {
                let at = at.min(now);
                match self.heard.get(&src) {
                    Some(adv) => {
                        let adv = adv.clone();
                        self.counters.adverts_seen += 1;
                        self.receive(now, at, src, adv, true);
                    }
                    _ => self.counters.seen_unmatched += 1,
                }
            }
            Input::Config(cfg) => self.reconfigure(now, cfg),
            Input::SyncJoin { group, peers } => self.sync_join(now, group, peers),
            Input::SyncMaster { group, member } => self.sync_master(now, group, member),
            Input::SyncBackup { group, member } => self.sync_backup(now, group, member),
            Input::SyncFault {
                group,
                member,
                fault,
            } => self.sync_fault(now, group, member, fault),
            Input::SyncWantMaster {
                group: _,
                member,
                want,
            } => {
                if let Some(s) = self.sync.as_mut() {
                    s.peers.insert(member, want);
                }
            }
        }
    }

    /// What the other members of our sync group must hear about ([`super::sync`]).
    pub fn sync_status(&self) -> SyncStatus {
        SyncStatus {
            fault: !self.link_up || self.track_fault,
            wants_master: self.sync_held,
        }
    }

    /// The members whose own FAULT holds us in FAULT.
    pub fn sync_faults(&self) -> impl Iterator<Item = &str> {
        self.sync_faults.keys().map(String::as_str)
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The one next deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.deadline, self.garp_at, self.garp_refresh_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &VrConfig {
        &self.cfg
    }

    pub fn effective_priority(&self) -> Priority {
        self.effective
    }

    /// The current master: ourselves in Master, the last accepted advertiser in Backup.
    pub fn master(&self) -> Option<MasterInfo> {
        match self.state {
            State::Master => Some(MasterInfo {
                addr: self.cfg.primary,
                priority: self.effective,
                interval: self.cfg.interval,
            }),
            State::Backup => self.master,
            _ => None,
        }
    }

    pub fn master_adver_int(&self) -> Centisecs {
        self.master_adver_int
    }

    pub fn skew_time(&self) -> Duration {
        skew_time(self.cfg.version, self.effective, self.master_adver_int)
    }

    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.cfg.version,
            self.effective,
            self.master_adver_int,
            self.cfg.down_timer_adverts,
        )
    }

    pub fn last_transition(&self) -> Option<&TransitionRecord> {
        self.last_transition.as_ref()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// RFC 9568 §6.4.3 (Accept_Mode): the master accepts packets addressed to the virtual
    /// addresses if it is the owner or Accept_Mode is set.
    pub fn accepts_vip_traffic(&self) -> bool {
        self.state == State::Master && (self.cfg.is_owner() || self.cfg.accept)
    }

    pub fn status(&self, now: Instant) -> Status {
        Status {
            vrid: self.cfg.vrid,
            state: self.state,
            base_priority: self.cfg.priority,
            effective_priority: self.effective,
            master: self.master(),
            master_adver_int: self.master_adver_int,
            master_down_interval: self.master_down_interval(),
            resigning: self.resign.is_some(),
            yielded: self.yielded_to.is_some(),
            last_transition: self.last_transition.as_ref().map(|t| TransitionStatus {
                from: t.from,
                to: t.to,
                reason: t.reason.clone(),
                ago: now.saturating_duration_since(t.at),
            }),
            counters: self.counters.clone(),
        }
    }

    // ---- transitions ----

    fn emit(&mut self, o: Output) {
        self.out.push_back(o);
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        if to != State::Master {
            self.resign = None;
        }
        self.heartbeat_conflict = None;
        self.last_transition = Some(TransitionRecord {
            at: now,
            from,
            to,
            reason: reason.clone(),
        });
        self.emit(Output::Transition { from, to, reason });
    }

    fn send_advert(&mut self, priority: Priority) {
        self.counters.adverts_tx += 1;
        if priority == Priority::RELEASE {
            self.counters.priority_zero_tx += 1;
        }
        self.emit(Output::SendAdvert { priority });
    }

    fn fault_reason(&self) -> Option<Reason> {
        if !self.link_up {
            Some(Reason::LinkDown)
        } else if self.track_fault {
            Some(Reason::TrackFailed)
        } else {
            self.sync_faults
                .iter()
                .next()
                .map(|(member, group)| Reason::SyncGroup {
                    group: group.clone(),
                    member: member.clone(),
                    event: SyncEvent::Fault,
                })
        }
    }

    /// keepalived `vrrp_sync_can_goto_master` is false: the group is not MASTER and some other
    /// member does not want MASTER ("prefer backup state to avoid thrashing").
    fn sync_blocks_master(&self) -> bool {
        !self.group_master
            && self
                .sync
                .as_ref()
                .is_some_and(|s| s.peers.values().any(|wants| !wants))
    }

    /// RFC 9568 §6.4.1 Startup; keepalived `vrrp_init_state`.
    fn startup(&mut self, now: Instant) {
        self.master_adver_int = self.cfg.interval;
        self.master = None;
        self.heard.clear();
        self.yielded_to = None;
        self.sync_held = false;
        self.group_master = false;
        if let Some(reason) = self.fault_reason() {
            // keepalived enters FAULT from init when the interface is down or a script failed.
            self.transition(now, State::Fault, reason);
            return;
        }
        match (self.cfg.is_owner(), self.cfg.initial) {
            // RFC 9568 §6.4.1: priority 255 goes straight to Master. keepalived does the same
            // for an owner with (default) `state MASTER`, via a 1 µs master-down timer.
            // In a sync group that may not go MASTER (`vrrp_init_state` takes the group's state)
            // it waits like a non-owner `state MASTER`.
            (true, InitialState::Master) if !self.sync_blocks_master() => {
                self.become_master(now, Reason::Owner);
            }
            (_, initial) => {
                self.transition(now, State::Backup, Reason::Startup);
                self.preempt_at = None;
                if initial == InitialState::Master {
                    // keepalived `vrrp_init_state`: a non-owner with `state MASTER` starts in
                    // BACKUP but waits only Master_Adver_Interval + SKEW_MIN (interval/256), "to
                    // ensure there is no other master".
                    let wait = self.master_adver_int.as_duration()
                        + skew_time(self.cfg.version, Priority(255), self.master_adver_int);
                    self.arm_master_down(now, wait, Cause::InitialMaster);
                } else {
                    self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
                }
            }
        }
    }

    fn arm_master_down(&mut self, at: Instant, wait: Duration, cause: Cause) {
        self.deadline = Some(later(at, wait));
        self.armed_at = at;
        self.cause = cause;
    }

    /// RFC 9568 §6.4.2 (Master_Down_Timer fires) / §6.4.1 (owner): send an advert, announce,
    /// start the Adver_Timer. Order from keepalived `vrrp_state_master_tx`: the advert first so
    /// the old master drops the addresses before our gratuitous ARPs.
    fn become_master(&mut self, now: Instant, reason: Reason) {
        // keepalived `vrrp_state_become_master`: back to our own interval.
        self.master_adver_int = self.cfg.interval;
        self.transition(now, State::Master, reason);
        self.counters.became_master += 1;
        self.send_advert(self.effective);
        self.emit(Output::SetXdpOwnership(true));
        self.emit(Output::InstallVips);
        self.emit(Output::Announce {
            kind: AnnounceKind::BecomeMaster,
        });
        self.deadline = Some(later(now, self.cfg.interval.as_duration()));
        self.garp_at =
            (!self.cfg.garp_master_delay.is_zero()).then(|| later(now, self.cfg.garp_master_delay));
        self.garp_refresh_at = self
            .cfg
            .garp_master_refresh
            .filter(|d| !d.is_zero())
            .map(|d| later(now, self.cfg.garp_master_delay + d));
        self.master = None;
        self.preempt_at = None;
        self.sync_held = false;
        self.yielded_to = None;
        // keepalived `vrrp_sync_master` sets the group state MASTER.
        self.group_master = true;
    }

    /// Undo `become_master`'s effects on the host, in reverse order.
    fn release_master(&mut self) {
        self.counters.released_master += 1;
        self.emit(Output::RemoveVips);
        self.emit(Output::SetXdpOwnership(false));
        self.garp_at = None;
        self.garp_refresh_at = None;
    }

    fn shutdown(&mut self, now: Instant) {
        match self.state {
            State::Master => {
                self.transition(now, State::Stopped, Reason::Shutdown);
                // RFC 9568 §6.4.3 Shutdown: send an advert with priority 0 so a backup takes
                // over after Skew_Time (keepalived `vrrp_restore_interface(advF = true)`).
                self.send_advert(Priority::RELEASE);
                self.release_master();
            }
            State::Backup | State::Fault | State::Initialize => {
                self.transition(now, State::Stopped, Reason::Shutdown);
            }
            State::Stopped => {}
        }
        self.deadline = None;
        self.master = None;
        self.sync_held = false;
        self.group_master = false;
    }

    /// `Input::Resign`.
    fn resign(&mut self, now: Instant, exit: bool) {
        match self.state {
            State::Master => {
                if let Some(was) = self.resign {
                    self.resign = Some(was || exit);
                    return;
                }
                self.resign = Some(exit);
                self.counters.resigned += 1;
                // RFC 9568 §6.4.3 priority 0: a backup takes over after its Skew_Time. We keep
                // the addresses until its first advert, so clients always have an answer.
                self.send_advert(Priority::RELEASE);
                self.garp_at = None;
                self.garp_refresh_at = None;
                self.deadline = Some(later(now, self.master_down_interval()));
            }
            _ if exit => self.shutdown(now),
            _ => {}
        }
    }

    fn reevaluate_fault(&mut self, now: Instant, reason: Reason) {
        let faulted = self.fault_reason();
        match (self.state, faulted) {
            (State::Initialize | State::Stopped | State::Fault, Some(_)) => {}
            (State::Initialize | State::Stopped, None) => {}
            (State::Backup | State::Master, Some(why)) => {
                // A sync input names the member that moved us; our own causes come first.
                let why = match (&why, reason) {
                    (Reason::SyncGroup { .. }, r @ Reason::SyncGroup { .. }) => r,
                    _ => why,
                };
                self.enter_fault(now, why);
            }
            (State::Fault, None) => self.leave_fault(now, reason),
            (State::Backup | State::Master, None) => {}
        }
    }

    fn enter_fault(&mut self, now: Instant, reason: Reason) {
        let was_master = self.state == State::Master;
        self.yielded_to = None;
        self.transition(now, State::Fault, reason);
        if was_master {
            // keepalived `vrrp_state_leave_master` (wantstate FAULT) sends priority 0 so the
            // backup takes over after Skew_Time rather than Master_Down_Interval.
            self.send_advert(Priority::RELEASE);
            self.release_master();
        }
        self.deadline = None;
        self.master = None;
        self.sync_held = false;
        // keepalived `vrrp_sync_fault` sets the group state FAULT.
        self.group_master = false;
    }

    /// keepalived `try_up_instance` + `vrrp_state_leave_fault`: the owner with `state MASTER`
    /// goes straight to Master, everyone else to Backup with a fresh Master_Down_Timer.
    fn leave_fault(&mut self, now: Instant, reason: Reason) {
        self.master_adver_int = self.cfg.interval;
        self.sync_held = false;
        // `try_up_instance`: "If the sync group can't go to master, we must go to backup state".
        if self.cfg.is_owner()
            && self.cfg.initial == InitialState::Master
            && !self.sync_blocks_master()
        {
            self.become_master(now, reason);
        } else {
            self.transition(now, State::Backup, reason);
            self.preempt_at = None;
            self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
        }
    }

    // ---- sync groups (keepalived vrrp_sync.c) ----

    fn sync_join(&mut self, now: Instant, group: String, peers: Vec<String>) {
        let old = self.sync.take();
        let before = self.sync_faults.len();
        if peers.is_empty() {
            self.sync_faults.clear();
            self.group_master = false;
        } else {
            let peers: BTreeMap<String, bool> = peers
                .into_iter()
                .map(|p| {
                    let wants = old.as_ref().and_then(|o| o.peers.get(&p)).copied();
                    (p, wants.unwrap_or(false))
                })
                .collect();
            self.sync_faults.retain(|m, _| peers.contains_key(m));
            self.sync = Some(SyncMembership {
                group: group.clone(),
                peers,
            });
        }
        if self.sync_faults.len() != before {
            let reason = Reason::SyncGroup {
                group,
                member: String::new(),
                event: SyncEvent::Recovered,
            };
            self.reevaluate_fault(now, reason);
        }
    }

    /// keepalived `vrrp_sync_master` for another member: `wantstate = MASTER` and
    /// `vrrp_state_goto_master` unless already MASTER, from BACKUP or FAULT (our own FAULT
    /// causes still win: keepalived never has a member up while `num_member_fault` is non-zero).
    fn sync_master(&mut self, now: Instant, group: String, member: String) {
        self.group_master = true;
        // A member that is MASTER is not at fault.
        self.sync_faults.remove(&member);
        let go = match self.state {
            State::Backup => true,
            State::Fault => self.fault_reason().is_none(),
            State::Master | State::Initialize | State::Stopped => false,
        };
        if go {
            let reason = Reason::SyncGroup {
                group,
                member,
                event: SyncEvent::Master,
            };
            self.become_master(now, reason);
        }
    }

    /// keepalived `vrrp_sync_backup` for another member: a MASTER leaves through
    /// `vrrp_state_leave_master(isync, false)` with `wantstate = BACKUP` (no priority 0 advert,
    /// unlike FAULT), the Master_Down_Timer re-armed (`VRRP_MS_DOWN_TIMER`); a FAULT left only
    /// by this member's fault goes BACKUP (`vrrp_state_leave_fault`).
    fn sync_backup(&mut self, now: Instant, group: String, member: String) {
        self.group_master = false;
        let was_fault = self.sync_faults.remove(&member).is_some();
        let reason = Reason::SyncGroup {
            group,
            member,
            event: SyncEvent::Backup,
        };
        match self.state {
            State::Master => {
                self.transition(now, State::Backup, reason);
                self.release_master();
                self.preempt_at = None;
                self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
                self.master = None;
            }
            State::Fault if was_fault => self.reevaluate_fault(now, reason),
            _ => {}
        }
    }

    /// keepalived `down_instance` → `vrrp_sync_fault` (a MASTER leaves with a priority 0
    /// advert, `vrrp_state_leave_master` with `wantstate = FAULT`) and `try_up_instance` →
    /// `vrrp_sync_backup` (up again once `num_member_fault` is zero).
    fn sync_fault(&mut self, now: Instant, group: String, member: String, fault: bool) {
        let changed = if fault {
            self.group_master = false;
            self.sync_faults
                .insert(member.clone(), group.clone())
                .is_none()
        } else {
            self.sync_faults.remove(&member).is_some()
        };
        if changed {
            let event = if fault {
                SyncEvent::Fault
            } else {
                SyncEvent::Recovered
            };
            let reason = Reason::SyncGroup {
                group,
                member,
                event,
            };
            self.reevaluate_fault(now, reason);
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        match self.state {
            State::Master if self.resign.is_some() => {
                if self.deadline.is_some_and(|d| d <= now) {
                    let exit = self.resign == Some(true);
                    self.emit(Output::ResignTimedOut { resumed: !exit });
                    if exit {
                        self.shutdown(now);
                    } else {
                        // Nobody took over: stay the one owner rather than leave none.
                        self.resign = None;
                        self.send_advert(self.effective);
                        self.deadline = Some(later(now, self.cfg.interval.as_duration()));
                    }
                }
            }
            State::Master => {
                if self.deadline.is_some_and(|d| d <= now) {
                    // RFC 9568 §6.4.3: Adver_Timer fires → send, reset to Advertisement_Interval.
                    self.send_advert(self.effective);
                    self.deadline = Some(later(now, self.cfg.interval.as_duration()));
                }
                if self.garp_at.is_some_and(|d| d <= now) {
                    self.garp_at = None;
                    self.emit(Output::Announce {
                        kind: AnnounceKind::Delayed,
                    });
                }
                if let Some(refresh) = self.cfg.garp_master_refresh
                    && self.garp_refresh_at.is_some_and(|d| d <= now)
                {
                    self.garp_refresh_at = Some(later(now, refresh));
                    self.emit(Output::Announce {
                        kind: AnnounceKind::Refresh,
                    });
                }
            }
            State::Backup => {
                if self.deadline.is_some_and(|d| d <= now) {
                    let after = now.saturating_duration_since(self.armed_at);
                    let reason = match self.cause {
                        Cause::NoResponse => Reason::MasterDown { after },
                        Cause::InitialMaster => Reason::InitialMaster { after },
                        Cause::PriorityZero(src) => Reason::PriorityZeroReceived { src },
                        Cause::Preempt(src, priority) => Reason::Preempt { src, priority },
                    };
                    if self.sync_blocks_master() {
                        // keepalived `vrrp_state_goto_master` → `vrrp_sync_can_goto_master`
                        // false: stay BACKUP wanting MASTER, re-arm ms_down_timer.
                        self.sync_held = true;
                        self.counters.sync_held += 1;
                        let cause = self.cause;
                        self.arm_master_down(now, self.master_down_interval(), cause);
                        return;
                    }
                    // RFC 9568 §6.4.2: Master_Down_Timer fires → become Master.
                    self.become_master(now, reason);
                }
            }
            State::Initialize | State::Fault | State::Stopped => {}
        }
    }

    /// keepalived `vrrp_set_effective_priority`.
    fn set_effective(&mut self, p: Priority) {
        // The owner's priority is never changed by tracking.
        if self.cfg.is_owner() {
            return;
        }
        let new = Priority(p.get().clamp(1, 254));
        if new == self.effective {
            return;
        }
        let old_down = self.master_down_interval();
        let from = self.effective;
        self.effective = new;
        if self.state == State::Backup
            && let Some(d) = self.deadline
        {
            // keepalived shifts the running Master_Down_Timer by the change in Skew_Time, so a
            // higher priority takes over sooner.
            let new_down = self.master_down_interval();
            self.deadline = Some(if new_down >= old_down {
                later(d, new_down - old_down)
            } else {
                d.checked_sub(old_down - new_down).unwrap_or(d)
            });
        }
        // In Master the next advert carries the new priority (keepalived does not send at once).
        self.emit(Output::PriorityChanged { from, to: new });
    }

    fn reconfigure(&mut self, now: Instant, mut cfg: VrConfig) {
        if let Err(error) = cfg.validate() {
            self.emit(Output::ConfigRejected { error });
            return;
        }
        if cfg.vrid != self.cfg.vrid
            || cfg.version != self.cfg.version
            || cfg.family != self.cfg.family
        {
            self.emit(Output::ConfigRejected {
                error: ConfigError::IdentityChanged,
            });
            return;
        }
        cfg.normalize();
        // Keep the tracking offset (effective - base) across a base priority change.
        let delta = if self.cfg.is_owner() {
            0
        } else {
            i16::from(self.effective.get()) - i16::from(self.cfg.priority.get())
        };
        let addresses_changed = !same_set(&cfg.addresses, &self.cfg.addresses);
        let interval = cfg.interval;
        let new_base = cfg.priority;
        self.cfg = cfg;
        let target = if self.cfg.is_owner() {
            Priority::OWNER
        } else {
            Priority((i16::from(new_base.get()) + delta).clamp(1, 254) as u8)
        };
        if target != self.effective {
            if self.cfg.is_owner() {
                let from = self.effective;
                self.effective = target;
                self.emit(Output::PriorityChanged { from, to: target });
            } else {
                self.set_effective(target);
            }
        }
        match self.state {
            State::Master => {
                self.master_adver_int = interval;
                if addresses_changed {
                    self.emit(Output::RemoveVips);
                    self.emit(Output::InstallVips);
                    self.emit(Output::Announce {
                        kind: AnnounceKind::BecomeMaster,
                    });
                }
                let next = later(now, interval.as_duration());
                self.deadline = Some(self.deadline.map_or(next, |d| d.min(next)));
            }
            State::Backup => {
                if self.cfg.version == Version::V2 {
                    self.master_adver_int = interval;
                }
            }
            State::Initialize | State::Fault | State::Stopped => {
                self.master_adver_int = interval;
            }
        }
    }

    // ---- receiving ----

    /// RFC 9568 §7.1 / RFC 3768 §7.1 receive checks that depend on configuration, in
    /// keepalived's order (`vrrp_check_packet`). The codec has done the rest.
    /// `unicast_allowlist`: apply `check_unicast_src` (primary path only; the driver accepts
    /// heartbeat adverts from the path's configured peers only).
    fn check(
        &mut self,
        src: IpAddr,
        adv: &Advert,
        unicast_allowlist: bool,
    ) -> Result<(), DropReason> {
        if adv.vrid != self.cfg.vrid {
            self.counters.dropped_vrid += 1;
            return Err(DropReason::VridMismatch { got: adv.vrid });
        }
        if adv.version != self.cfg.version {
            self.counters.dropped_version += 1;
            return Err(DropReason::VersionMismatch { got: adv.version });
        }
        if family_of(src) != self.cfg.family
            || adv
                .addresses
                .iter()
                .any(|a| family_of(*a) != self.cfg.family)
        {
            self.counters.dropped_family += 1;
            return Err(DropReason::FamilyMismatch);
        }
        if self.cfg.version == Version::V2 {
            // RFC 3768 §7.1: MUST perform the authentication given by Auth Type.
            if adv.auth != self.cfg.auth {
                self.counters.dropped_auth += 1;
                return Err(DropReason::AuthMismatch);
            }
            // RFC 3768 §7.1: MUST verify the Adver Interval equals ours, else discard.
            // keepalived: "to prevent concurrent VRID running => multiple master in 1 VRID".
            if adv.interval != self.cfg.interval {
                self.counters.dropped_interval += 1;
                return Err(DropReason::IntervalMismatch {
                    ours: self.cfg.interval,
                    theirs: adv.interval,
                });
            }
        }
        if src == self.cfg.primary {
            self.counters.dropped_own_address += 1;
            return Err(DropReason::OwnAddress);
        }
        // RFC 9568 §7.1: the owner discards adverts; keepalived only with owner_ignore_adverts.
        if self.cfg.owner_ignore_adverts && self.effective == Priority::OWNER {
            self.counters.dropped_owner += 1;
            return Err(DropReason::OwnerIgnoresAdverts);
        }
        if unicast_allowlist
            && self.cfg.check_unicast_src
            && !self.cfg.unicast_peers.is_empty()
            && !self.cfg.unicast_peers.contains(&src)
        {
            self.counters.dropped_unknown_unicast_src += 1;
            return Err(DropReason::UnknownUnicastSource);
        }
        Ok(())
    }

    fn warnings(&mut self, src: IpAddr, adv: &Advert, replay: bool) {
        let mut found = Vec::new();
        if self.cfg.version == Version::V3 && adv.interval != self.cfg.interval {
            self.counters.interval_mismatch += 1;
            found.push(RxWarning::IntervalMismatch {
                ours: self.cfg.interval,
                theirs: adv.interval,
            });
        }
        if !same_set(&adv.addresses, &self.cfg.addresses) {
            self.counters.address_list_mismatch += 1;
            found.push(RxWarning::AddressListMismatch);
        }
        // Log once per distinct advert (keepalived rate-limits these logs the same way).
        let new = self
            .last_rx
            .as_ref()
            .is_none_or(|(s, a)| *s != src || a != adv);
        if !replay && new {
            for warning in found {
                self.emit(Output::Warning { src, warning });
            }
        }
    }

    /// `now` is when we act (sends, advert timer); `at` is when the advert arrived (master-down
    /// timer), different only for `AdvertSeenAt`.
    fn receive(&mut self, now: Instant, at: Instant, src: IpAddr, adv: Advert, replay: bool) {
        if !matches!(self.state, State::Backup | State::Master) {
            // keepalived `vrrp_dispatcher_read`: ignored in FAULT and INIT.
            self.counters.ignored_not_running += 1;
            return;
        }
        if let Err(reason) = self.check(src, &adv, true) {
            self.emit(Output::Dropped { src, reason });
            return;
        }
        self.warnings(src, &adv, replay);
        if !replay {
            self.counters.adverts_rx += 1;
        }
        if adv.priority == Priority::RELEASE {
            self.counters.priority_zero_rx += 1;
        }
        match self.state {
            State::Backup => self.backup_rx(at, src, &adv, replay),
            State::Master => self.master_rx(now, src, &adv),
            _ => {}
        }
        if self.heard.len() >= HEARD_MAX && !self.heard.contains_key(&src) {
            // Bounded: a flood of spoofed sources forgets old ones, never the current master.
            let master = self.master.map(|m| m.addr);
            if let Some(old) = self.heard.keys().find(|k| Some(**k) != master).copied() {
                self.heard.remove(&old);
            }
        }
        self.heard.insert(src, adv.clone());
        self.last_rx = Some((src, adv));
    }

    /// RFC 9568 §6.4.2 (Backup, ADVERTISEMENT received); keepalived `vrrp_state_backup`.
    fn backup_rx(&mut self, at: Instant, src: IpAddr, adv: &Advert, replay: bool) {
        if adv.priority == Priority::RELEASE {
            // RFC 9568 §6.4.2: priority 0 → Master_Down_Timer = Skew_Time.
            self.arm_master_down(at, self.skew_time(), Cause::PriorityZero(src));
            return;
        }
        // keepalived: with preempt_delay, lower priority adverts are still accepted until
        // preempt_time (armed by the first one) has passed; then they are discarded and the
        // master-down timer runs out. This applies whenever we are Backup, not only at startup.
        let delaying = !self.cfg.preempt_delay.is_zero() && self.preempt_at.is_none_or(|t| t > at);
        // RFC 9568 §6.4.2: accept if Preempt_Mode is False or the priority is >= ours. After a
        // handover we accept the master we handed over to, whatever its priority.
        if !self.cfg.preempt
            || self.yielded_to == Some(src)
            || adv.priority >= self.effective
            || delaying
        {
            // RFC 9568 §6.4.2: Master_Adver_Interval := the advert's; Skew_Time and
            // Master_Down_Interval are recomputed from it (master_down_interval() reads it).
            // An interval of 0 would make us take over at once on every advert: not learnt.
            if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
                self.master_adver_int = adv.interval;
            }
            let wait = self.master_down_interval();
            let next = later(at, wait);
            // A replayed timestamp may be older than a reset we already did: never go back.
            if !(replay && self.deadline.is_some_and(|d| d > next)) {
                self.arm_master_down(at, wait, Cause::NoResponse);
            }
            self.master = Some(MasterInfo {
                addr: src,
                priority: adv.priority,
                interval: adv.interval,
            });
            // keepalived: "We might have been held in backup by a sync group ... Now we have
            // received a higher priority advert, we want to be in BACKUP state."
            self.sync_held = false;
            if !self.cfg.preempt_delay.is_zero() {
                if adv.priority >= self.effective {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(later(at, self.cfg.preempt_delay));
                }
            }
        } else {
            // RFC 9568 §6.4.2: discard; the running timer makes us preempt. A lower priority
            // sender is only "the master we preempt" when no better master is known: a third
            // host's low priority adverts (a stray router, a flood) must not displace the
            // master whose adverts keep resetting our timer (and whose kernel timestamps the
            // driver trusts), or we would take over while it is alive.
            self.counters.discarded_lower_priority += 1;
            if self
                .master
                .is_none_or(|m| m.addr == src || m.priority < self.effective)
            {
                self.cause = Cause::Preempt(src, adv.priority);
                self.master = Some(MasterInfo {
                    addr: src,
                    priority: adv.priority,
                    interval: adv.interval,
                });
            }
        }
    }

    /// RFC 9568 §6.4.3 (Master, ADVERTISEMENT received); keepalived `vrrp_state_master_rx`.
    fn master_rx(&mut self, now: Instant, src: IpAddr, adv: &Advert) {
        let ours = self.effective;
        let theirs = adv.priority;
        let src_higher = addr_cmp(src, self.cfg.primary) == Some(Ordering::Greater);
        if let Some(exit) = self.resign {
            if theirs != Priority::RELEASE {
                self.handed_over(now, src, adv, exit);
            }
            return;
        }
        if theirs == Priority::RELEASE {
            // RFC 9568 §6.4.3: priority 0 → send an advert, reset the Adver_Timer.
            self.send_advert(ours);
            self.deadline = Some(later(now, self.cfg.interval.as_duration()));
            return;
        }
        // RFC 9568 §6.4.3: higher priority, or equal priority and a higher primary address.
        let better = theirs > ours || (theirs == ours && src_higher);
        if better {
            if self.cfg.higher_prio_send_advert {
                self.send_advert(ours);
            }
            // RFC 9568 §6.4.3: Master_Adver_Interval := the advert's (not 0, as in backup_rx).
            if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
                self.master_adver_int = adv.interval;
            }
            self.transition(
                now,
                State::Backup,
                Reason::HigherPriority {
                    src,
                    priority: theirs,
                },
            );
            self.release_master();
            self.preempt_at = None;
            // keepalived TSM MASTER → BACKUP: `vrrp_sync_backup` sets the group state BACKUP.
            self.group_master = false;
            let wait = self.master_down_interval();
            self.arm_master_down(now, wait, Cause::NoResponse);
            self.master = Some(MasterInfo {
                addr: src,
                priority: theirs,
                interval: adv.interval,
            });
        } else {
            // RFC 9568 §6.4.3 says discard. keepalived (default, non-strict) re-advertises at
            // once to force a new election and re-sends gratuitous ARPs, because a lower
            // priority master has probably been announcing the addresses (split brain).
            if !self.cfg.lower_prio_no_advert {
                self.send_advert(ours);
                self.deadline = Some(later(now, self.cfg.interval.as_duration()));
            }
            if self.cfg.garp_lower_prio {
                self.emit(Output::Announce {
                    kind: AnnounceKind::LowerPriority,
                });
            }
            self.emit(Output::MasterRxLowerPriority {
                src,
                priority: theirs,
            });
        }
    }

    /// An advert on a heartbeat path (`Input::HeartbeatAdvert`): liveness only.
    ///
    /// Backup: it restarts the Master_Down_Timer exactly when the same advert on the primary
    /// path would have (RFC 9568 §6.4.2: priority >= ours, or no preemption), so the master is
    /// declared down only once every path is silent; priority 0 sets Skew_Time as on the
    /// primary path. It never changes who we think the master is, nor the learned interval, and
    /// a lower priority (one we would preempt) restarts nothing: preemption follows the primary
    /// path's rules alone.
    ///
    /// Master: the peer advertising too means two masters. We stay Master and report it
    /// (`Output::HeartbeatMaster`, the split-brain alarm) rather than yield, because the
    /// heartbeat path proves the peer alive, not reachable by the clients on the primary
    /// segment: yielding to a peer whose primary link is cut would leave nobody serving the
    /// VIPs, while two masters on the two sides of a primary-path partition each serve their
    /// side, and the primary path's own rules settle the election once it heals. A resigning
    /// Master waits for the new master on the primary path for the same reason.
    fn heartbeat_rx(&mut self, now: Instant, src: IpAddr, local: IpAddr, adv: &Advert) {
        if !matches!(self.state, State::Backup | State::Master) {
            self.counters.ignored_not_running += 1;
            return;
        }
        if src == local {
            self.counters.dropped_own_address += 1;
            self.emit(Output::Dropped {
                src,
                reason: DropReason::OwnAddress,
            });
            return;
        }
        if let Err(reason) = self.check(src, adv, false) {
            self.emit(Output::Dropped { src, reason });
            return;
        }
        self.counters.heartbeat_rx += 1;
        match self.state {
            State::Backup => {
                if adv.priority == Priority::RELEASE {
                    // RFC 9568 §6.4.2, as on the primary path: the master is leaving.
                    self.counters.heartbeat_priority_zero_rx += 1;
                    self.arm_master_down(now, self.skew_time(), Cause::PriorityZero(src));
                    return;
                }
                let delaying =
                    !self.cfg.preempt_delay.is_zero() && self.preempt_at.is_none_or(|t| t > now);
                // Heartbeat adverts come from configured peers only: the one we yielded to.
                if !self.cfg.preempt
                    || self.yielded_to.is_some()
                    || adv.priority >= self.effective
                    || delaying
                {
                    // The interval the advert carries (VRRPv3), not learnt: a master with a
                    // longer interval than ours must not look silent between its adverts.
                    let int = if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
                        adv.interval
                    } else {
                        self.master_adver_int
                    };
                    let wait = master_down_interval(
                        self.cfg.version,
                        self.effective,
                        int,
                        self.cfg.down_timer_adverts,
                    )
                    .max(self.master_down_interval());
                    // Never earlier than a restart the primary path already gave us.
                    let keep = self.cause == Cause::NoResponse
                        && self.deadline.is_some_and(|d| d > later(now, wait));
                    if !keep {
                        self.arm_master_down(now, wait, Cause::NoResponse);
                    }
                    self.counters.heartbeat_restarts += 1;
                } else {
                    self.counters.heartbeat_lower_priority += 1;
                }
            }
            State::Master => {
                if self.resign.is_some() {
                    return;
                }
                if adv.priority == Priority::RELEASE {
                    // The other master is leaving: no conflict any more.
                    self.heartbeat_conflict = None;
                    return;
                }
                let window = self.master_down_interval();
                let count = match self.heartbeat_conflict {
                    Some(c) if now.saturating_duration_since(c.last) <= window => {
                        c.count.saturating_add(1)
                    }
                    _ => 1,
                };
                self.heartbeat_conflict = Some(HeartbeatConflict { last: now, count });
                if count >= HEARTBEAT_CONFLICT_ADVERTS {
                    self.counters.heartbeat_conflicts += 1;
                    // RFC 9568 §6.4.3 with the heartbeat addresses, which both ends compare
                    // the same way.
                    let better = adv.priority > self.effective
                        || (adv.priority == self.effective
                            && addr_cmp(src, local) == Some(Ordering::Greater));
                    self.emit(Output::HeartbeatMaster {
                        src,
                        priority: adv.priority,
                        better,
                    });
                }
            }
            State::Initialize | State::Fault | State::Stopped => {}
        }
    }

    /// The new master's first advert reached a resigning Master: only now the addresses go.
    fn handed_over(&mut self, now: Instant, src: IpAddr, adv: &Advert, exit: bool) {
        if exit {
            self.transition(now, State::Stopped, Reason::Shutdown);
            self.release_master();
            self.deadline = None;
            self.master = None;
            self.group_master = false;
            return;
        }
        if self.cfg.version == Version::V3 && adv.interval.get() != 0 {
            self.master_adver_int = adv.interval;
        }
        self.transition(now, State::Backup, Reason::HandedOver { to: src });
        self.release_master();
        self.preempt_at = None;
        self.group_master = false;
        self.yielded_to = Some(src);
        self.arm_master_down(now, self.master_down_interval(), Cause::NoResponse);
        self.master = Some(MasterInfo {
            addr: src,
            priority: adv.priority,
            interval: adv.interval,
        });
    }
}

#[cfg(test)]
mod tests;
