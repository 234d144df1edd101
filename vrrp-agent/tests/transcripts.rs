//! Transcript tests for the virtual-router state machine (DESIGN.md habit 5).
//!
//! Each `testdata/transcripts/*.jsonl` file is a scenario, one JSON object per line:
//! - `{"comment": "..."}`: free text, kept as is.
//! - `{"config": {...}}`: the router's configuration (first, once); see [`TConfig`].
//! - `{"t": ms, "in": ...}`: an input at `t` milliseconds from the start; see [`TInput`]. Sync
//!   group inputs stand for what the other members did (keepalived `vrrp_sync.c`).
//! - `{"until": ms}`: fire every timer due up to `ms` (each firing is a `Timeout` input).
//! - `{"t": ms, "out": ...}` and `{"t": ms, "state": ..., "next": ms|null}`: expected outputs,
//!   and the state and next deadline after each input. These lines are generated.
//!
//! `UPDATE_TRANSCRIPTS=1 cargo test -p vrrp-agent --test transcripts` rewrites the generated
//! lines instead of comparing; review the diff as data.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use vrrp_agent::proto::vr::{InitialState, Input, VirtualRouter, VrConfig};
use vrrp_agent::proto::{Advert, Auth, Centisecs, Family, Priority, Version, Vrid};

/// The configuration as written in transcripts: keepalived's names and defaults.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TConfig {
    vrid: u8,
    #[serde(default = "three")]
    version: u8,
    priority: u8,
    #[serde(default = "hundred")]
    interval_cs: u16,
    #[serde(default = "yes")]
    preempt: bool,
    #[serde(default)]
    preempt_delay_ms: u64,
    #[serde(default = "yes")]
    accept: bool,
    addresses: Vec<IpAddr>,
    primary: IpAddr,
    #[serde(default)]
    password: Option<String>,
    /// "MASTER" or "BACKUP"; derived from the priority when absent, as keepalived does.
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    unicast_peers: Vec<IpAddr>,
    #[serde(default)]
    check_unicast_src: bool,
    #[serde(default = "three")]
    down_timer_adverts: u8,
    #[serde(default)]
    lower_prio_no_advert: bool,
    #[serde(default)]
    higher_prio_send_advert: bool,
    #[serde(default = "yes")]
    garp_lower_prio: bool,
    #[serde(default)]
    garp_master_delay_ms: u64,
    #[serde(default)]
    garp_master_refresh_ms: Option<u64>,
    #[serde(default)]
    owner_ignore_adverts: bool,
}

/// The fake clock's one real reading; everything else is this plus a Duration.
#[expect(clippy::disallowed_methods, reason = "the base of the fake clock")]
fn base() -> Instant {
    Instant::now()
}

fn three() -> u8 {
    3
}
fn hundred() -> u16 {
    100
}
fn yes() -> bool {
    true
}

fn version(v: u8) -> Version {
    if v == 2 { Version::V2 } else { Version::V3 }
}

fn password(p: &Option<String>) -> Auth {
    match p {
        None => Auth::None,
        Some(p) => {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(p.bytes()) {
                *d = s;
            }
            Auth::Pass(b)
        }
    }
}

impl TConfig {
    fn build(&self) -> VrConfig {
        let family = match self.primary {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        };
        let vrid = Vrid::new(self.vrid).expect("vrid 1..=255");
        let mut c =
            VrConfig::keepalived_defaults(vrid, family, self.primary, self.addresses.clone());
        c.version = version(self.version);
        c.priority = Priority(self.priority);
        c.interval = Centisecs(self.interval_cs);
        c.preempt = self.preempt;
        c.preempt_delay = Duration::from_millis(self.preempt_delay_ms);
        c.accept = self.accept;
        c.auth = password(&self.password);
        c.initial = match self.state.as_deref() {
            Some("MASTER") => InitialState::Master,
            Some("BACKUP") => InitialState::Backup,
            Some(other) => panic!("state {other}"),
            None => InitialState::for_priority(c.priority),
        };
        c.unicast_peers = self.unicast_peers.clone();
        c.check_unicast_src = self.check_unicast_src;
        c.down_timer_adverts = self.down_timer_adverts;
        c.lower_prio_no_advert = self.lower_prio_no_advert;
        c.higher_prio_send_advert = self.higher_prio_send_advert;
        c.garp_lower_prio = self.garp_lower_prio;
        c.garp_master_delay = Duration::from_millis(self.garp_master_delay_ms);
        c.garp_master_refresh = self.garp_master_refresh_ms.map(Duration::from_millis);
        c.owner_ignore_adverts = self.owner_ignore_adverts;
        c
    }
}

/// An advert as written in transcripts: fields default to the router's own configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TAdvert {
    src: IpAddr,
    priority: u8,
    #[serde(default)]
    interval_cs: Option<u16>,
    #[serde(default)]
    vrid: Option<u8>,
    #[serde(default)]
    version: Option<u8>,
    #[serde(default)]
    addresses: Option<Vec<IpAddr>>,
    #[serde(default)]
    password: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TSeen {
    src: IpAddr,
    /// Milliseconds from the start.
    at: f64,
}

#[derive(Clone, Debug, Deserialize)]
enum TInput {
    Startup,
    Shutdown,
    Timeout,
    Advert(TAdvert),
    Link(bool),
    Priority(u8),
    Fault(bool),
    Seen(TSeen),
    /// Replaces the whole configuration.
    Config(TConfig),
    /// keepalived `vrrp_sync_group` inputs, as `Input`'s variants.
    SyncJoin {
        group: String,
        peers: Vec<String>,
    },
    SyncMaster {
        group: String,
        member: String,
    },
    SyncBackup {
        group: String,
        member: String,
    },
    SyncFault {
        group: String,
        member: String,
        fault: bool,
    },
    SyncWantMaster {
        group: String,
        member: String,
        want: bool,
    },
}

fn at(ms: f64) -> Duration {
    Duration::from_nanos((ms * 1e6).round() as u64)
}

/// Milliseconds, as an integer when whole (the common case, and easier to read).
fn ms(d: Duration) -> String {
    let n = d.as_nanos();
    if n.is_multiple_of(1_000_000) {
        (n / 1_000_000).to_string()
    } else {
        (n as f64 / 1e6).to_string()
    }
}

struct Run {
    t0: Instant,
    cfg: VrConfig,
    vr: VirtualRouter,
    lines: Vec<String>,
}

impl Run {
    fn input(&mut self, t: Duration, input: Input) {
        self.vr.handle(self.t0 + t, input);
        // Written by hand so that "t" comes first.
        while let Some(o) = self.vr.poll_output() {
            let out = serde_json::to_string(&o).expect("outputs serialize");
            self.lines.push(format!(r#"{{"t":{},"out":{out}}}"#, ms(t)));
        }
        let next = self
            .vr
            .poll_timeout()
            .map_or_else(|| "null".to_string(), |d| ms(d - self.t0));
        let state = serde_json::to_string(&self.vr.state()).expect("state serializes");
        self.lines.push(format!(
            r#"{{"t":{},"state":{state},"next":{next}}}"#,
            ms(t)
        ));
    }

    fn convert(&self, input: TInput) -> Input {
        match input {
            TInput::Startup => Input::Startup,
            TInput::Shutdown => Input::Shutdown,
            TInput::Timeout => Input::Timeout,
            TInput::Link(up) => Input::Link { up },
            TInput::Priority(p) => Input::Priority(Priority(p)),
            TInput::Fault(f) => Input::Fault(f),
            TInput::Seen(s) => Input::AdvertSeenAt {
                src: s.src,
                at: self.t0 + at(s.at),
            },
            TInput::Config(c) => Input::Config(c.build()),
            TInput::SyncJoin { group, peers } => Input::SyncJoin { group, peers },
            TInput::SyncMaster { group, member } => Input::SyncMaster { group, member },
            TInput::SyncBackup { group, member } => Input::SyncBackup { group, member },
            TInput::SyncFault {
                group,
                member,
                fault,
            } => Input::SyncFault {
                group,
                member,
                fault,
            },
            TInput::SyncWantMaster {
                group,
                member,
                want,
            } => Input::SyncWantMaster {
                group,
                member,
                want,
            },
            TInput::Advert(a) => Input::Advert {
                src: a.src,
                advert: Advert {
                    version: a.version.map_or(self.cfg.version, version),
                    vrid: a
                        .vrid
                        .map_or(self.cfg.vrid, |v| Vrid::new(v).expect("vrid 1..=255")),
                    priority: Priority(a.priority),
                    interval: a.interval_cs.map_or(self.cfg.interval, Centisecs),
                    addresses: a.addresses.unwrap_or_else(|| self.cfg.addresses.clone()),
                    auth: if a.password.is_some() {
                        password(&a.password)
                    } else {
                        self.cfg.auth
                    },
                },
            },
        }
    }
}

/// Replays one transcript; returns the regenerated text.
fn replay(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("readable transcript");
    let t0 = base();
    let mut run: Option<Run> = None;
    let mut kept = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let where_ = format!("{}:{}", path.display(), n + 1);
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{where_}: {e}"));
        if v.get("out").is_some() || v.get("state").is_some() {
            continue; // generated
        }
        if v.get("comment").is_some() {
            match run.as_mut() {
                Some(r) => r.lines.push(line.to_string()),
                None => kept.push(line.to_string()),
            }
        } else if let Some(c) = v.get("config") {
            let tc: TConfig =
                serde_json::from_value(c.clone()).unwrap_or_else(|e| panic!("{where_}: {e}"));
            let cfg = tc.build();
            let vr =
                VirtualRouter::new(cfg.clone(), t0).unwrap_or_else(|e| panic!("{where_}: {e}"));
            kept.push(line.to_string());
            run = Some(Run {
                t0,
                cfg,
                vr,
                lines: std::mem::take(&mut kept),
            });
        } else if let Some(until) = v.get("until").and_then(Value::as_f64) {
            let r = run
                .as_mut()
                .unwrap_or_else(|| panic!("{where_}: no config yet"));
            r.lines.push(line.to_string());
            let end = t0 + at(until);
            while let Some(d) = r.vr.poll_timeout().filter(|d| *d <= end) {
                r.input(d - t0, Input::Timeout);
            }
        } else if let (Some(t), Some(i)) = (v.get("t").and_then(Value::as_f64), v.get("in")) {
            let r = run
                .as_mut()
                .unwrap_or_else(|| panic!("{where_}: no config yet"));
            r.lines.push(line.to_string());
            let ti: TInput =
                serde_json::from_value(i.clone()).unwrap_or_else(|e| panic!("{where_}: {e}"));
            if let TInput::Config(c) = &ti {
                r.cfg = c.build();
            }
            let input = r.convert(ti);
            r.input(at(t), input);
        } else {
            panic!("{where_}: unknown line {line}");
        }
    }
    let lines = run.map(|r| r.lines).unwrap_or(kept);
    let mut generated = lines.join("\n");
    generated.push('\n');
    (text, generated)
}

fn transcripts() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/transcripts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

#[test]
fn transcripts_replay() {
    let update = std::env::var_os("UPDATE_TRANSCRIPTS").is_some_and(|v| v == "1");
    let files = transcripts();
    assert!(!files.is_empty(), "no transcripts found");
    let mut failures = Vec::new();
    for path in files {
        let (expected, got) = replay(&path);
        if expected == got {
            continue;
        }
        if update {
            std::fs::write(&path, &got).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            eprintln!("updated {}", path.display());
            continue;
        }
        let first = expected
            .lines()
            .zip(got.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}:\n  expected {a}\n  got      {b}", i + 1))
            .unwrap_or_else(|| "length differs".to_string());
        failures.push(format!("{}: {first}", path.display()));
    }
    assert!(
        failures.is_empty(),
        "transcripts differ (UPDATE_TRANSCRIPTS=1 to regenerate):\n{}",
        failures.join("\n")
    );
}
