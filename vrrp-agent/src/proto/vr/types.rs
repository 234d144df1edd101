//! States, inputs, outputs, reasons and counters of a virtual router.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{Advert, Centisecs, ConfigError, Priority, SyncEvent, Version, VrConfig, Vrid};

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
    /// RFC 9568 §7.1: the TTL / hop limit is not 255; for a unicast advert of a unicast
    /// instance, not in its peer's `min_ttl..=max_ttl` (keepalived `check_ttl_hl`).
    BadTtl {
        ttl: u8,
        min: u8,
        max: u8,
    },
    /// Our own primary address as source: a loop.
    OwnAddress,
    /// RFC 3768 §7.1: a VRRPv2 advert not from the address owner whose address list differs
    /// from ours MUST be dropped (one cluster cannot depose another by VRID collision).
    AddressListMismatch,
    /// RFC 9568 §8.4: in v2 interoperation, a v2 advert from a router that also sends v3.
    V2FromV3Sender,
    /// RFC 9568 erratum 8300 (§7.1): an IPv6 advert's first address must be link-local
    /// (with `first_address_link_local`).
    FirstAddressNotLinkLocal,
}

/// Accepted, but worth a log line (RFC 9568 §7.1 "MUST log"; keepalived logs and processes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum RxWarning {
    /// RFC 9568 §7.1 / RFC 3768 §7.1: the address list differs from ours. keepalived
    /// (`vrrp_check_packet`) counts `addr_list_err`, logs, and still processes the advert.
    AddressListMismatch,
    /// VRRPv3 interval differs from ours: keepalived logs and learns it (RFC 9568 §6.4.2).
    IntervalMismatch { ours: Centisecs, theirs: Centisecs },
    /// RFC 9568 erratum 8298 / item 53: we are the address owner (priority 255) and another
    /// router advertises 255 too: two owners of one VRID is a misconfiguration.
    AnotherOwner,
    /// Another router advertises our own priority: the election falls to the primary
    /// address tie-break (RFC 9568 §6.4.3), which is rarely what was meant.
    EqualPriority,
    /// RFC 9568 erratum 8300: the first IPv6 address is not link-local; strict RFC 9568 routers
    /// discard such adverts (we do with `vrrp_strict`).
    FirstAddressNotLinkLocal,
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
        /// The TTL / hop limit of an advert sent to our unicast address, which the codec does
        /// not hold to 255 (keepalived: a unicast peer may be routed hops away): the instance
        /// checks it. `None`: sent to the group, held to 255 by the codec already.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ttl: Option<u8>,
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
        #[serde(with = "crate::proto::clock::ms")]
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
    /// `member` is (not) held in Backup wanting MASTER ([`super::SyncStatus::wants_master`]); read by
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
    /// TTL / hop limit refused (see `DropReason::BadTtl`).
    pub dropped_ttl: u64,
    pub dropped_own_address: u64,
    /// RFC 3768 §7.1: a VRRPv2 advert from a non-owner whose address list differs from ours.
    pub dropped_address_list: u64,
    /// RFC 9568 §8.4: v2 adverts ignored because their sender also sends v3.
    pub dropped_v2_from_v3: u64,
    /// RFC 9568 erratum 8300: IPv6 adverts whose first address is not link-local, dropped.
    pub dropped_first_not_link_local: u64,
    /// The same, accepted (without `first_address_link_local`).
    pub first_not_link_local: u64,
    /// Adverts of another priority-255 router while we own the addresses.
    pub another_owner: u64,
    /// Adverts at our own effective priority (decided by the address tie-break).
    pub equal_priority: u64,
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
pub(super) enum Cause {
    NoResponse,
    InitialMaster,
    PriorityZero(IpAddr),
    Preempt(IpAddr, Priority),
}
