//! Transcript tests for the node (`proto::node`): decisions above one router, in the real
//! types (`NodeConfig`, `NodeInput`, `Action`, serialized with serde).
//!
//! Each `testdata/node/*.jsonl` file is a scenario, one JSON object per line:
//! - `{"comment": "..."}`: free text, kept as is.
//! - `{"config": NodeConfig}`: first, once.
//! - `{"t": ms, "in": NodeInput}`: an input at `t` milliseconds from the start.
//! - `{"t": ms, "reload": NodeConfig}`, `{"t": ms, "handover": "VI_1" | null}`,
//!   `{"t": ms, "stop": true}`: the node's reload, handover and first-stop-signal calls.
//! - `{"until": ms}`: fire every timer due up to `ms` (each firing is a `Timer` input).
//! - Generated, after each of the above: `{"t": ms, "do": Action}` for each action (slot
//!   writes that only clear a VRID are summed up as `{"t": ms, "cleared_slots": n}`), the
//!   call's result (`"plan"`, `"handover"`, `"error"`), and `{"t": ms, "states": {...}}`.
//!
//! `UPDATE_TRANSCRIPTS=1 cargo test -p vrrp-agent --test node_transcripts` rewrites the
//! generated lines instead of comparing; review the diff as data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vrrp_agent::proto::clock;
use vrrp_agent::proto::node::{Action, DpOp, Node, NodeConfig, NodeInput};

/// The fake clock's one real reading; everything else is this plus a Duration.
#[expect(clippy::disallowed_methods, reason = "the base of the fake clock")]
fn base() -> Instant {
    Instant::now()
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/node")
}

fn is_generated(v: &Value) -> bool {
    ["do", "states", "plan", "handover", "error", "cleared_slots"]
        .iter()
        .any(|k| v.get(k).is_some())
}

struct Run {
    t0: Instant,
    node: Option<Node>,
    out: Vec<String>,
}

impl Run {
    fn ms(&self, t: Instant) -> f64 {
        (t.saturating_duration_since(self.t0).as_secs_f64() * 1e6).round() / 1e3
    }

    fn emit(&mut self, v: Value) {
        self.out.push(serde_json::to_string(&v).expect("json"));
    }

    fn drain(&mut self, t: Instant) {
        let ms = self.ms(t);
        let mut cleared = 0;
        let node = self.node.as_mut().expect("config first");
        let mut lines = Vec::new();
        while let Some(a) = node.poll_action() {
            if let Action::Dataplane(DpOp::SetSlot { slot, .. }) = &a
                && slot.cfg.flags == 0
            {
                cleared += 1;
                continue;
            }
            lines.push(json!({"t": ms, "do": a}));
        }
        if cleared > 0 {
            lines.push(json!({"t": ms, "cleared_slots": cleared}));
        }
        let states: BTreeMap<String, String> = node
            .instances()
            .map(|(_, i)| (i.spec.name.clone(), i.vr.state().to_string()))
            .collect();
        lines.push(json!({"t": ms, "states": states}));
        for l in lines {
            self.emit(l);
        }
    }

    fn at(&self, v: &Value) -> Instant {
        let ms = v["t"].as_f64().expect("t");
        self.t0 + Duration::from_secs_f64(ms / 1000.0)
    }

    fn step(&mut self, v: &Value) {
        if let Some(c) = v.get("config") {
            let cfg: NodeConfig = serde_json::from_value(c.clone()).expect("config");
            self.node = Some(Node::new(cfg, self.t0).expect("valid config"));
            return;
        }
        if let Some(until) = v.get("until") {
            let end = self.t0 + Duration::from_secs_f64(until.as_f64().expect("ms") / 1000.0);
            loop {
                let node = self.node.as_mut().expect("config first");
                let Some(t) = node.poll_timeout().filter(|t| *t <= end) else {
                    break;
                };
                node.handle(
                    t,
                    NodeInput::Timer {
                        early: None,
                        slots: Vec::new(),
                    },
                );
                self.drain(t);
            }
            return;
        }
        let t = self.at(v);
        let ms = self.ms(t);
        let node = self.node.as_mut().expect("config first");
        if let Some(i) = v.get("in") {
            let input: NodeInput =
                serde_json::from_value(i.clone()).unwrap_or_else(|e| panic!("input {i}: {e}"));
            node.handle(t, input);
        } else if let Some(c) = v.get("reload") {
            let cfg: NodeConfig = serde_json::from_value(c.clone()).expect("reload config");
            let r = node.reload(cfg, t);
            let line = match r {
                Ok(plan) => json!({"t": ms, "plan": plan}),
                Err(e) => json!({"t": ms, "error": e.to_string()}),
            };
            self.emit(line);
        } else if let Some(h) = v.get("handover") {
            let r = node.handover(t, h.as_str());
            let line = match r {
                Ok(names) => json!({"t": ms, "handover": names}),
                Err(e) => json!({"t": ms, "error": e.to_string()}),
            };
            self.emit(line);
        } else if v.get("stop").is_some() {
            node.begin_stop(t);
        } else {
            panic!("unknown line {v}");
        }
        self.drain(t);
    }
}

fn run_file(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).expect("read");
    let t0 = base();
    clock::set_epoch(t0);
    let mut run = Run {
        t0,
        node: None,
        out: Vec::new(),
    };
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("{}: {e}: {line}", path.display()));
        if is_generated(&v) {
            continue;
        }
        run.out.push(line.to_string());
        if v.get("comment").is_none() {
            run.step(&v);
        }
    }
    let mut got = run.out.join("\n");
    got.push('\n');
    (text, got)
}

#[test]
fn node_transcripts() {
    let update = std::env::var_os("UPDATE_TRANSCRIPTS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("testdata/node")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no node transcripts");
    let mut failed = Vec::new();
    for f in &files {
        let (want, got) = run_file(f);
        if update {
            std::fs::write(f, &got).expect("write");
        } else if want != got {
            let first = want
                .lines()
                .zip(got.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(want.lines().count().min(got.lines().count()));
            failed.push(format!(
                "{}: first difference at line {}:\n  want {}\n  got  {}",
                f.display(),
                first + 1,
                want.lines().nth(first).unwrap_or("<end>"),
                got.lines().nth(first).unwrap_or("<end>")
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{}\n(UPDATE_TRANSCRIPTS=1 rewrites them; review the diff)",
        failed.join("\n")
    );
}
