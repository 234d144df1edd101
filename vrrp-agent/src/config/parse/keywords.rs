//! The keyword tables: for every block kind, which keywords it knows and how each is read.
//! Each block's table lives next to the parser of that block (`KEYWORDS` in `global.rs`,
//! `instance.rs`, ...), so adding a keyword is an entry there plus its arm in that parser.

use super::{check, document, global, instance, sync_group, track};

pub(super) const MANY: usize = usize::MAX;

/// The kinds of keyword block.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Root,
    Global,
    Instance,
    Auth,
    Script,
    TrackFile,
    TrackProcess,
    SyncGroup,
    /// `vrrp_xdp_check NAME { ... }` (our extension).
    Check,
    /// `http_get { ... }` inside a `vrrp_xdp_check`.
    HttpGet,
    /// `vrrp_xdp_heartbeat { ... }` inside a `vrrp_instance` (our extension).
    Heartbeat,
}

impl Kind {
    pub(super) const ALL: [Kind; 11] = [
        Kind::Root,
        Kind::Global,
        Kind::Instance,
        Kind::Auth,
        Kind::Script,
        Kind::TrackFile,
        Kind::TrackProcess,
        Kind::SyncGroup,
        Kind::Check,
        Kind::HttpGet,
        Kind::Heartbeat,
    ];

    /// The block's name as written in a file (`global_defs`, `vrrp_instance`, ...).
    pub(super) fn name(self) -> &'static str {
        match self {
            Kind::Root => "top level",
            Kind::Global => "global_defs",
            Kind::Instance => "vrrp_instance",
            Kind::Auth => "authentication",
            Kind::Script => "vrrp_script",
            Kind::TrackFile => "track_file",
            Kind::TrackProcess => "vrrp_track_process",
            Kind::SyncGroup => "vrrp_sync_group",
            Kind::Check => "vrrp_xdp_check",
            Kind::HttpGet => "http_get",
            Kind::Heartbeat => "vrrp_xdp_heartbeat",
        }
    }

    /// The keyword table of this block kind.
    pub(super) fn table(self) -> &'static [Kw] {
        match self {
            Kind::Root => document::KEYWORDS,
            Kind::Global => global::KEYWORDS,
            Kind::Instance => instance::KEYWORDS,
            Kind::Auth => instance::AUTH_KEYWORDS,
            Kind::Script => track::SCRIPT_KEYWORDS,
            Kind::TrackFile => track::TRACK_FILE_KEYWORDS,
            Kind::TrackProcess => track::TRACK_PROCESS_KEYWORDS,
            Kind::SyncGroup => sync_group::KEYWORDS,
            Kind::Check => check::KEYWORDS,
            Kind::HttpGet => check::HTTP_GET_KEYWORDS,
            Kind::Heartbeat => instance::HEARTBEAT_KEYWORDS,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Blk {
    No,
    Yes,
}

/// How a keyword is handled in a given block.
#[derive(Clone, Copy, Debug)]
pub(super) enum Class {
    /// Parsed: number of words after it, and whether it takes a `{ }` block.
    Known {
        min: usize,
        max: usize,
        block: Blk,
    },
    /// Accepted without a word: keepalived behaviour that is not VRRP's (mail, SNMP, ...).
    Ignored,
    /// VRRP behaviour vrrp-agent does not implement: warned, then skipped.
    Unsupported,
    /// A whole keepalived subsystem that is not ours: one warning per block.
    Foreign(&'static str),
    Unknown,
}

/// One entry of a keyword table.
#[derive(Clone, Copy, Debug)]
pub(super) struct Kw {
    pub(super) name: &'static str,
    pub(super) class: Class,
}

/// A keyword taking `min..=max` words and no block.
pub(super) const fn args(name: &'static str, min: usize, max: usize) -> Kw {
    Kw {
        name,
        class: Class::Known {
            min,
            max,
            block: Blk::No,
        },
    }
}

/// A keyword taking a `{ }` block and no word.
pub(super) const fn block(name: &'static str) -> Kw {
    Kw {
        name,
        class: Class::Known {
            min: 0,
            max: 0,
            block: Blk::Yes,
        },
    }
}

/// A keyword taking a name and a `{ }` block.
pub(super) const fn named_block(name: &'static str) -> Kw {
    Kw {
        name,
        class: Class::Known {
            min: 1,
            max: 1,
            block: Blk::Yes,
        },
    }
}

/// Accepted and skipped: no VRRP behaviour.
pub(super) const fn ignored(name: &'static str) -> Kw {
    Kw {
        name,
        class: Class::Ignored,
    }
}

/// VRRP behaviour vrrp-agent does not implement: warned, then skipped.
pub(super) const fn unsupported(name: &'static str) -> Kw {
    Kw {
        name,
        class: Class::Unsupported,
    }
}

/// A keepalived subsystem that is not ours: warned with `why`, block skipped.
pub(super) const fn foreign(name: &'static str, why: &'static str) -> Kw {
    Kw {
        name,
        class: Class::Foreign(why),
    }
}

pub(super) const LVS: &str = "not handled by vrrp-agent: keepalived's LVS part";
pub(super) const STATIC: &str =
    "not handled by vrrp-agent: keepalived's static addresses, routes and rules";
pub(super) const OTHER: &str = "not handled by vrrp-agent";

pub(super) fn classify(kind: Kind, kw: &str) -> Class {
    kind.table()
        .iter()
        .find(|e| e.name == kw)
        .map_or(Class::Unknown, |e| e.class)
}

/// Every keyword the parser knows, with the name of the block it belongs to.
pub(crate) fn known_keywords() -> impl Iterator<Item = (&'static str, &'static str)> {
    Kind::ALL
        .into_iter()
        .flat_map(|k| k.table().iter().map(move |e| (k.name(), e.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name listed twice in one table would make the order of the entries matter.
    #[test]
    fn no_keyword_is_listed_twice_in_a_block() {
        for kind in Kind::ALL {
            let mut seen = std::collections::HashSet::new();
            for e in kind.table() {
                assert!(seen.insert(e.name), "{} twice in {:?}", e.name, kind);
            }
        }
    }
}
