//! How the proto types read in logs, status and notify scripts.

use std::fmt;

use super::vr::{Reason, State};

/// keepalived's state names (`INIT`, `BACKUP`, `MASTER`, `FAULT`, `STOP`).
impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
            State::Stopped => "STOP",
        })
    }
}

/// A transition reason as an operator reads it in the log.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("startup"),
            Reason::Owner => f.write_str("address owner (priority 255)"),
            Reason::InitialMaster { after } => write!(
                f,
                "configured state MASTER and no master heard for {} ms",
                after.as_millis()
            ),
            Reason::MasterDown { after } => {
                write!(
                    f,
                    "master down after {} ms without adverts",
                    after.as_millis()
                )
            }
            Reason::PriorityZeroReceived { src } => {
                write!(f, "priority 0 received from {src} (master leaving)")
            }
            Reason::Preempt { src, priority } => {
                write!(
                    f,
                    "preempted lower priority master {src} (priority {priority})"
                )
            }
            // Also the equal-priority tie-break, which the higher address wins.
            Reason::HigherPriority { src, priority } => {
                write!(f, "a better master: priority {priority} from {src}")
            }
            Reason::LinkDown => f.write_str("interface down"),
            Reason::LinkUp => f.write_str("interface up"),
            Reason::TrackFailed => f.write_str("tracked check failed"),
            Reason::TrackRecovered => f.write_str("tracked checks recovered"),
            Reason::Shutdown => f.write_str("shutdown"),
            Reason::HandedOver { to } => write!(f, "handed over: new master {to} heard"),
            Reason::SyncGroup {
                group,
                member,
                event,
            } => write!(f, "sync group {group}: member {member} went {event:?}"),
        }
    }
}

impl Reason {
    /// A stable label for metrics and the status' transition counts.
    pub fn label(&self) -> &'static str {
        match self {
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
}

impl super::vr::DropReason {
    /// A stable label for logs, counters and metrics.
    pub fn label(&self) -> &'static str {
        use super::vr::DropReason as D;
        match self {
            D::VridMismatch { .. } => "vrid_mismatch",
            D::VersionMismatch { .. } => "version_mismatch",
            D::FamilyMismatch => "family_mismatch",
            D::AuthMismatch => "auth_mismatch",
            D::IntervalMismatch { .. } => "interval_mismatch",
            D::OwnerIgnoresAdverts => "owner_ignores_adverts",
            D::UnknownUnicastSource => "unknown_unicast_source",
            // The codec's label for the same RFC check: one counter, whoever refused it.
            D::BadTtl { .. } => "bad_ttl",
            D::OwnAddress => "own_address",
            D::AddressListMismatch => "address_list_mismatch",
            D::V2FromV3Sender => "v2_from_v3_sender",
            D::FirstAddressNotLinkLocal => "first_address_not_link_local",
        }
    }
}
