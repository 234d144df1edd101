//! Transcript tests for the virtual-router state machine (DESIGN.md habit 5), in its own
//! types: `VrConfig`, `Input` and `Output` (de)serialize with serde, instants as
//! milliseconds from the start (`proto::clock`).
//!
//! Each `testdata/transcripts/*.jsonl` file is a scenario, one JSON object per line:
//! - `{"comment": "..."}`: free text, kept as is.
//! - `{"config": VrConfig}`: the router's configuration (first, once).
//! - `{"t": ms, "in": Input}`: an input at `t` milliseconds from the start. Sync group
//!   inputs stand for what the other members did (keepalived `vrrp_sync.c`).
//! - `{"until": ms}`: fire every timer due up to `ms` (each firing is a `Timeout` input).
//! - `{"t": ms, "out": Output}` and `{"t": ms, "state": ..., "next": ms|null}`: expected
//!   outputs, and the state and next deadline after each input. These lines are generated.
//!
//! `UPDATE_TRANSCRIPTS=1 cargo test -p vrrp-agent --test transcripts` rewrites the generated
//! lines instead of comparing; review the diff as data. The node's own transcripts are in
//! `node_transcripts.rs`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use vrrp_agent::proto::clock;
use vrrp_agent::proto::vr::{Input, VirtualRouter, VrConfig};

/// The fake clock's one real reading; everything else is this plus a Duration.
#[expect(clippy::disallowed_methods, reason = "the base of the fake clock")]
fn base() -> Instant {
    Instant::now()
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
}

/// Replays one transcript; returns the regenerated text.
fn replay(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("readable transcript");
    let t0 = base();
    clock::set_epoch(t0);
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
            let cfg: VrConfig =
                serde_json::from_value(c.clone()).unwrap_or_else(|e| panic!("{where_}: {e}"));
            let vr =
                VirtualRouter::new(cfg.clone(), t0).unwrap_or_else(|e| panic!("{where_}: {e}"));
            kept.push(line.to_string());
            run = Some(Run {
                t0,
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
            let input: Input =
                serde_json::from_value(i.clone()).unwrap_or_else(|e| panic!("{where_}: {e}"));
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
