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
    /// No VRRP behaviour (mail, SNMP, DBus, process tuning, LVS settings): skipped, and listed
    /// in one warning per file.
    Ignored,
    /// VRRP behaviour vrrp-agent does not implement: warned with the reason, then skipped.
    Unsupported(&'static str),
    /// A whole keepalived subsystem that is not ours: one warning per block.
    Foreign(&'static str),
    Unknown,
}

/// What a parsed (`Known`) keyword does, beyond being read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Note {
    /// Takes effect.
    Acts,
    /// Takes effect in part; warned with what is missing.
    Partial(&'static str),
    /// Read and checked, but nothing acts on it yet; warned with the reason.
    NoEffect(&'static str),
}

/// One entry of a keyword table.
#[derive(Clone, Copy, Debug)]
pub(super) struct Kw {
    pub(super) name: &'static str,
    pub(super) class: Class,
    pub(super) note: Note,
}

impl Kw {
    /// Parsed and acted on in part: `what` says what is missing (warned where it is used).
    pub(super) const fn partial(mut self, what: &'static str) -> Kw {
        self.note = Note::Partial(what);
        self
    }

    /// Parsed and checked, but without effect yet: `why` is warned where it is used.
    pub(super) const fn no_effect(mut self, why: &'static str) -> Kw {
        self.note = Note::NoEffect(why);
        self
    }
}

const fn kw(name: &'static str, class: Class) -> Kw {
    Kw {
        name,
        class,
        note: Note::Acts,
    }
}

/// A keyword taking `min..=max` words and no block.
pub(super) const fn args(name: &'static str, min: usize, max: usize) -> Kw {
    kw(
        name,
        Class::Known {
            min,
            max,
            block: Blk::No,
        },
    )
}

/// A keyword taking a `{ }` block and no word.
pub(super) const fn block(name: &'static str) -> Kw {
    kw(
        name,
        Class::Known {
            min: 0,
            max: 0,
            block: Blk::Yes,
        },
    )
}

/// A keyword taking a name and a `{ }` block.
pub(super) const fn named_block(name: &'static str) -> Kw {
    kw(
        name,
        Class::Known {
            min: 1,
            max: 1,
            block: Blk::Yes,
        },
    )
}

/// No VRRP behaviour (mail, SNMP, DBus, process tuning, LVS settings): skipped and listed in
/// one warning per file.
pub(super) const fn ignored(name: &'static str) -> Kw {
    kw(name, Class::Ignored)
}

/// VRRP behaviour vrrp-agent does not implement: warned with `why`, then skipped.
pub(super) const fn unsupported(name: &'static str, why: &'static str) -> Kw {
    kw(name, Class::Unsupported(why))
}

/// A keepalived subsystem that is not ours: warned with `why`, block skipped.
pub(super) const fn foreign(name: &'static str, why: &'static str) -> Kw {
    kw(name, Class::Foreign(why))
}

pub(super) const LVS: &str = "not handled by vrrp-agent: keepalived's LVS part";
pub(super) const STATIC: &str =
    "not handled by vrrp-agent: keepalived's static addresses, routes and rules";
pub(super) const OTHER: &str = "not handled by vrrp-agent";
/// The reason for VRRP behaviour that is simply not implemented (yet).
pub(super) const NOT_YET: &str = "not implemented yet";

/// The table entry of `kw` in a `kind` block.
pub(super) fn entry(kind: Kind, kw: &str) -> Option<&'static Kw> {
    kind.table().iter().find(|e| e.name == kw)
}

pub(super) fn classify(kind: Kind, kw: &str) -> Class {
    entry(kind, kw).map_or(Class::Unknown, |e| e.class)
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

/// keepalived 2.4.3's VRRP-side keywords, `block<TAB>keyword` (scripts/keepalived-keywords.py).
#[cfg(test)]
const KEEPALIVED_KEYWORDS: &str = include_str!("../keepalived-2.4.3-keywords.txt");

/// What vrrp-agent does with keepalived keyword `kw` of block `block` (keepalived's block
/// names): (status, note), or None when the parser has no entry for it.
#[cfg(test)]
fn status(block: &str, kw: &str) -> Option<(&'static str, String)> {
    let kind = match block {
        "top level" => Kind::Root,
        "global_defs" => Kind::Global,
        "vrrp_instance" => Kind::Instance,
        "authentication" => Kind::Auth,
        "vrrp_script" => Kind::Script,
        "track_file" | "vrrp_track_file" => Kind::TrackFile,
        "vrrp_track_process" => Kind::TrackProcess,
        "vrrp_sync_group" => Kind::SyncGroup,
        // A block the parser skips as a whole: its keywords share the block's warning.
        other => {
            let parent = [Kind::Instance, Kind::Root]
                .into_iter()
                .find_map(|k| entry(k, other))?;
            return match parent.class {
                Class::Unsupported(why) | Class::Foreign(why) => Some((
                    "warns",
                    format!("inside `{other}`, which is warned about and skipped: {why}"),
                )),
                _ => None,
            };
        }
    };
    let e = entry(kind, kw)?;
    Some(match (e.class, e.note) {
        (Class::Known { .. }, Note::Acts) => ("acts", String::new()),
        (Class::Known { .. }, Note::Partial(what)) => ("partial", what.to_string()),
        (Class::Known { .. }, Note::NoEffect(why)) => ("warns", format!("no effect: {why}")),
        (Class::Ignored, _) => (
            "grouped",
            "one warning per file lists these (no VRRP behaviour)".to_string(),
        ),
        (Class::Unsupported(why), _) => ("warns", format!("not supported: {why}")),
        (Class::Foreign(why), _) => ("warns", format!("block skipped: {why}")),
        (Class::Unknown, _) => return None,
    })
}

#[cfg(test)]
mod keepalived_tests {
    use super::*;

    fn keepalived() -> Vec<(&'static str, &'static str)> {
        KEEPALIVED_KEYWORDS
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| l.split_once('\t').expect("block<TAB>keyword"))
            .collect()
    }

    /// Every keyword keepalived 2.4.3 accepts on the VRRP side has a status in the parser's
    /// tables: it acts, acts in part (warned), warns that it has no effect, or is listed in
    /// the per-file warning. None is unknown, none is silent.
    #[test]
    fn every_keepalived_keyword_has_a_status() {
        let missing: Vec<String> = keepalived()
            .into_iter()
            .filter(|(b, k)| status(b, k).is_none())
            .map(|(b, k)| format!("{b}: {k}"))
            .collect();
        assert!(missing.is_empty(), "no status for: {missing:#?}");
        assert!(keepalived().len() > 200, "keyword list looks truncated");
    }

    /// docs/keepalived-keywords.md is the table of those statuses; regenerate it with
    /// `VRRP_UPDATE_DOCS=1 cargo test -p vrrp-agent keyword_docs`.
    #[test]
    fn keyword_docs_table_is_current() {
        let rows: Vec<(&str, &str, &str, String)> = keepalived()
            .into_iter()
            .map(|(b, k)| {
                let (s, n) = status(b, k).unwrap_or(("unknown", String::new()));
                (b, k, s, n)
            })
            .collect();
        let count = |s: &str| rows.iter().filter(|r| r.2 == s).count();
        let mut doc = String::from(
            "# keepalived 2.4.3 keywords in vrrp-agent\n\n\
             Every VRRP-side keyword of keepalived 2.4.3 (its `install_keyword*` calls in \
             `keepalived/vrrp/`, `keepalived/core/global_parser.c` and \
             `keepalived/trackers/track_file.c`; LVS, BFD and checker keywords left out), \
             derived by `scripts/keepalived-keywords.py` into \
             `vrrp-agent/src/config/keepalived-2.4.3-keywords.txt`, and what vrrp-agent does \
             with it. Generated from the parser's keyword tables by the test \
             `keyword_docs_table_is_current`, which also fails when a keyword has no status.\n\n\
             - **acts**: takes effect;\n\
             - **partial**: takes effect in part; a warning at its `file:line:col` says what is \
             missing;\n\
             - **warns**: no effect in vrrp-agent; a warning at its `file:line:col` says so and \
             why;\n\
             - **grouped**: no VRRP behaviour (mail, SNMP, DBus, process tuning, LVS \
             settings); one warning per file lists them.\n\n",
        );
        doc.push_str(&format!(
            "{} keywords: {} act, {} partial, {} warn, {} grouped, {} unknown.\n\n",
            rows.len(),
            count("acts"),
            count("partial"),
            count("warns"),
            count("grouped"),
            count("unknown"),
        ));
        doc.push_str("| block | keyword | status | note |\n| --- | --- | --- | --- |\n");
        for (b, k, s, n) in &rows {
            doc.push_str(&format!(
                "| {b} | `{k}` | {s} | {} |\n",
                n.replace('|', "\\|")
            ));
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/keepalived-keywords.md"
        );
        if std::env::var_os("VRRP_UPDATE_DOCS").is_some() {
            std::fs::write(path, &doc).expect("write docs/keepalived-keywords.md");
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == doc,
            "docs/keepalived-keywords.md is out of date: run VRRP_UPDATE_DOCS=1 cargo test -p \
             vrrp-agent keyword_docs"
        );
    }
}
