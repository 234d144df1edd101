//! The invariant checker and the report: reads the probe logs after the run, the fault list,
//! the process samples and what is left after the lab is gone.
//!
//! Tolerances (stated in the report too):
//! - Two answerers for a VIP: allowed inside a declared partition window (from the cut to the
//!   convergence after the heal); elsewhere at most `DUAL_TOLERANCE` consecutive probes (an
//!   owner change: the new master answers from its transition, the old one until the new
//!   master's first advert reaches it). Runs split by fewer than `DUAL_MERGE` probes count
//!   as one, so a lost reply cannot hide a long overlap.
//! - A gap (probes nobody answered) at most: what the fault needs to be noticed (the track
//!   script's period) + the slowest backup's master-down interval (3 adverts + skew) +
//!   `GAP_TOLERANCE`.
//! - Convergence to the configured owners within two master-down intervals of the slowest
//!   instance after the heal, plus 1 s, plus 3 s when a daemon was started again.
//! - RSS and open fds of every agent process (agent and guardian) below `RSS_MAX_KB` and
//!   `FDS_MAX`, and a process sampled 10 times or more grows by at most `RSS_GROWTH_KB` and
//!   `FDS_GROWTH` from its first sample to its last.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;
use serde_json::{Value, json};

use super::fault::{FaultRec, KINDS, Kind};
use super::leaks::cmdline;
use super::{INSTS, NODE_NAMES, Node, PERIOD, Soak};
use crate::bench::probe::ProbeLog;

pub const DUAL_TOLERANCE: usize = 10;
pub const DUAL_MERGE: usize = 5;
pub const GAP_TOLERANCE: Duration = Duration::from_millis(100);
pub const RSS_MAX_KB: u64 = 128 * 1024;
pub const FDS_MAX: u64 = 256;
pub const RSS_GROWTH_KB: u64 = 8 * 1024;
pub const FDS_GROWTH: u64 = 8;
/// Probes shown before and after a violation.
const WINDOW: usize = 300;

#[derive(Clone, Debug, Serialize)]
pub struct Violation {
    /// dual, gap, convergence, leak, rss, fds.
    pub what: &'static str,
    /// Whose behaviour it is: ours (vrrp-agent) or keepalived.
    pub imp: &'static str,
    pub vip: Option<&'static str>,
    pub at_s: Option<f64>,
    pub fault: Option<usize>,
    pub detail: String,
    /// Who answered each probe around it (run-length: a, b, k, several in capitals, `.`
    /// nobody, `x` another MAC; `|` marks the violation's start).
    pub window: String,
}

/// The worst gap of one cell of the table, and where it was.
#[derive(Default, Debug, Serialize)]
pub struct WorstGap {
    pub ms: f64,
    pub gaps: usize,
    pub fault: usize,
    pub vip: &'static str,
    pub at_s: f64,
    /// Who answered around it (as in violations).
    pub window: String,
}

#[derive(Default, Debug, Serialize)]
pub struct ProcStat {
    pub node: String,
    pub cmd: String,
    pub samples: u64,
    pub rss_kb: (u64, u64, u64),
    pub fds: (u64, u64, u64),
}

/// RSS and fd samples of the agents' processes, by PID.
#[derive(Default)]
pub struct ProcSamples {
    pub by_pid: BTreeMap<u32, ProcStat>,
}

impl ProcSamples {
    pub fn sample(&mut self, nodes: &[Node]) {
        for (i, n) in nodes.iter().enumerate().filter(|(_, n)| !n.keepalived) {
            for pid in vrrp_tests::ns_pids(&n.host.ns) {
                let Some(rss) = rss_kb(pid) else { continue };
                let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
                    .map(|d| d.count() as u64)
                    .unwrap_or(0);
                let s = self.by_pid.entry(pid).or_insert_with(|| ProcStat {
                    node: NODE_NAMES[i].into(),
                    cmd: cmdline(pid),
                    rss_kb: (rss, rss, rss),
                    fds: (fds, fds, fds),
                    ..ProcStat::default()
                });
                s.samples += 1;
                s.rss_kb = (s.rss_kb.0, s.rss_kb.1.max(rss), rss);
                s.fds = (s.fds.0, s.fds.1.max(fds), fds);
            }
        }
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let l = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Serialize)]
pub struct Report {
    pub seed: u64,
    pub duration_s: f64,
    pub faults_by_kind: BTreeMap<&'static str, usize>,
    pub faults: Vec<FaultRec>,
    pub violations: Vec<Violation>,
    /// Worst gap (ms) by fault kind, when the faulted node owned the VIP: `v3_ours`,
    /// `v3_keepalived`, `v2_ours`, `v2_keepalived` (`v3_not_owner`, `v2_not_owner`: the
    /// faulted node was a backup of that VIP), with the number of gaps seen.
    pub worst_gap_ms: BTreeMap<&'static str, BTreeMap<String, WorstGap>>,
    /// Overlaps (two answerers) within the tolerance or inside a partition window.
    pub tolerated_overlaps: BTreeMap<String, (usize, usize)>,
    pub probes: Vec<Value>,
    pub processes: Vec<ProcStat>,
    pub leaks: Vec<String>,
    pub notes: Vec<String>,
    pub tolerances: Value,
    pub error: Option<String>,
}

fn imp_of(n: usize) -> &'static str {
    if n == 2 { "keepalived" } else { "ours" }
}

impl Soak {
    pub fn report(&mut self, duration: Duration) -> Report {
        let mut r = Report {
            seed: self.seed,
            duration_s: duration.as_secs_f64(),
            faults_by_kind: KINDS.iter().map(|k| (k.key(), 0)).collect(),
            faults: self.faults.clone(),
            violations: Vec::new(),
            worst_gap_ms: BTreeMap::new(),
            tolerated_overlaps: BTreeMap::new(),
            probes: Vec::new(),
            processes: Vec::new(),
            leaks: Vec::new(),
            notes: self.notes.clone(),
            tolerances: json!({
                "dual_probes": DUAL_TOLERANCE,
                "dual_merge_probes": DUAL_MERGE,
                "gap_ms_over_master_down": GAP_TOLERANCE.as_secs_f64() * 1e3,
                "rss_max_kb": RSS_MAX_KB, "fds_max": FDS_MAX,
                "rss_growth_kb": RSS_GROWTH_KB, "fds_growth": FDS_GROWTH,
            }),
            error: None,
        };
        for f in &self.faults {
            *r.faults_by_kind.entry(f.kind.key()).or_default() += 1;
            let late = f.converge_ms.is_none_or(|c| c > f.converge_bound_ms);
            if late {
                let n = node_index(f.node);
                r.violations.push(Violation {
                    what: "convergence",
                    imp: imp_of(n),
                    vip: None,
                    at_s: Some(f.at_s),
                    fault: Some(f.index),
                    detail: format!(
                        "converged {} after the heal, allowed {:.0} ms",
                        f.converge_ms
                            .map(|c| format!("{c:.0} ms"))
                            .unwrap_or_else(|| "never".into()),
                        f.converge_bound_ms
                    ),
                    window: String::new(),
                });
            }
        }
        for k in 0..INSTS.len() {
            let Ok(log) = self.probers[k].log.lock() else {
                continue;
            };
            self.check_vip(k, &log, &mut r);
        }
        for s in self.samples.by_pid.values() {
            let n = node_index(&s.node);
            let mut bad = |what, detail: String| {
                r.violations.push(Violation {
                    what,
                    imp: imp_of(n),
                    vip: None,
                    at_s: None,
                    fault: None,
                    detail,
                    window: String::new(),
                })
            };
            if s.rss_kb.1 > RSS_MAX_KB
                || (s.samples >= 10 && s.rss_kb.2 > s.rss_kb.0 + RSS_GROWTH_KB)
            {
                bad(
                    "rss",
                    format!("{} {}: RSS first/max/last {:?} kB", s.node, s.cmd, s.rss_kb),
                );
            }
            if s.fds.1 > FDS_MAX || (s.samples >= 10 && s.fds.2 > s.fds.0 + FDS_GROWTH) {
                bad(
                    "fds",
                    format!("{} {}: fds first/max/last {:?}", s.node, s.cmd, s.fds),
                );
            }
        }
        r.processes = std::mem::take(&mut self.samples.by_pid)
            .into_values()
            .collect();
        r
    }

    /// The fault whose cycle contains `t` (the last one injected at or before it).
    fn fault_at(&self, t: Instant) -> Option<&FaultRec> {
        self.faults.iter().rev().find(|f| f.t0 <= t)
    }

    fn check_vip(&self, k: usize, log: &ProbeLog, r: &mut Report) {
        let inst = &INSTS[k];
        let bits: Vec<u32> = self.nodes.iter().map(|n| log.bit(n.mac)).collect();
        // Replies to the last probes may still be in flight.
        let end = log.sent.len().saturating_sub(50);
        let begin = log.seq_at(self.start);
        let answered = (begin..end).filter(|&i| log.answered[i] != 0).count();
        r.probes.push(json!({
            "vip": inst.vip, "probes": end.saturating_sub(begin), "answered": answered,
            "unmatched_replies": log.unmatched,
        }));
        let mut i = begin;
        while i < end {
            let a = log.answered[i];
            if a.count_ones() >= 2 {
                // A run of overlaps, merged across short interruptions.
                let s = i;
                let mut last = i;
                let mut j = i + 1;
                while j < end && j - last <= DUAL_MERGE {
                    if log.answered[j].count_ones() >= 2 {
                        last = j;
                    }
                    j += 1;
                }
                let len = last + 1 - s;
                self.judge_dual(k, log, &bits, s, len, r);
                i = last + 1;
            } else if a == 0 {
                let s = i;
                while i < end && log.answered[i] == 0 {
                    i += 1;
                }
                if s > begin && i < end {
                    self.judge_gap(k, log, &bits, s, i, r);
                }
            } else {
                i += 1;
            }
        }
    }

    fn judge_dual(
        &self,
        k: usize,
        log: &ProbeLog,
        bits: &[u32],
        s: usize,
        len: usize,
        r: &mut Report,
    ) {
        let t = log.sent[s];
        let f = self.fault_at(t);
        let in_partition = f.is_some_and(|f| {
            f.kind == Kind::Partition
                && t <= f.converged.unwrap_or(f.heal + Duration::from_secs(10))
        });
        let who: Vec<usize> = (0..3).filter(|&n| log.answered[s] & bits[n] != 0).collect();
        let faulted = f.map(|f| node_index(f.node));
        let imp = match faulted {
            Some(n) if who.contains(&n) => imp_of(n),
            _ if who.contains(&2) => "keepalived",
            _ => "ours",
        };
        let key = format!(
            "{}_{imp}",
            if in_partition {
                "partition"
            } else {
                "owner_change"
            }
        );
        if in_partition || len <= DUAL_TOLERANCE {
            let e = r.tolerated_overlaps.entry(key).or_default();
            e.0 += 1;
            e.1 = e.1.max(len);
            return;
        }
        r.violations.push(Violation {
            what: "dual",
            imp,
            vip: Some(INSTS[k].vip),
            at_s: Some(self.rel(t)),
            fault: f.map(|f| f.index),
            detail: format!(
                "{len} probes ({:.1} ms) answered by two or more of {:?}",
                (log.sent[s + len - 1] - t).as_secs_f64() * 1e3 + 1.0,
                who.iter().map(|&n| NODE_NAMES[n]).collect::<Vec<_>>()
            ),
            window: timeline(log, bits, s, s + len),
        });
    }

    fn judge_gap(
        &self,
        k: usize,
        log: &ProbeLog,
        bits: &[u32],
        s: usize,
        e: usize,
        r: &mut Report,
    ) {
        let inst = &INSTS[k];
        let gap = (log.sent[e] - log.sent[s - 1]).saturating_sub(PERIOD);
        let f = self.fault_at(log.sent[s]);
        let kind = f.map(|f| f.kind);
        let bound =
            kind.map(Kind::detect).unwrap_or_default() + inst.master_down_max() + GAP_TOLERANCE;
        let owner = inst.owner();
        if let Some(f) = f {
            let n = node_index(f.node);
            let col = if n == owner {
                format!("v{}_{}", inst.version, imp_of(n))
            } else {
                format!("v{}_not_owner", inst.version)
            };
            let w = r
                .worst_gap_ms
                .entry(f.kind.key())
                .or_default()
                .entry(col)
                .or_default();
            w.gaps += 1;
            if gap.as_secs_f64() * 1e3 >= w.ms {
                *w = WorstGap {
                    ms: gap.as_secs_f64() * 1e3,
                    gaps: w.gaps,
                    fault: f.index,
                    vip: inst.vip,
                    at_s: self.rel(log.sent[s]),
                    window: timeline(log, bits, s, e),
                };
            }
        }
        if gap <= bound {
            return;
        }
        let imp = match f.map(|f| node_index(f.node)) {
            Some(n) if n == owner => imp_of(n),
            _ => imp_of(owner),
        };
        r.violations.push(Violation {
            what: "gap",
            imp,
            vip: Some(inst.vip),
            at_s: Some(self.rel(log.sent[s])),
            fault: f.map(|f| f.index),
            detail: format!(
                "no answer for {:.1} ms, allowed {:.0} ms",
                gap.as_secs_f64() * 1e3,
                bound.as_secs_f64() * 1e3
            ),
            window: timeline(log, bits, s, e),
        });
    }
}

fn node_index(name: &str) -> usize {
    NODE_NAMES.iter().position(|n| *n == name).unwrap_or(0)
}

/// Run-length coded answerers from `WINDOW` probes before `s` to `WINDOW` after `e`.
fn timeline(log: &ProbeLog, bits: &[u32], s: usize, e: usize) -> String {
    let from = s.saturating_sub(WINDOW);
    let to = (e + WINDOW).min(log.answered.len());
    let sym = |a: u32| -> String {
        if a == 0 {
            return ".".into();
        }
        let mut v: String = (0..3)
            .filter(|&n| a & bits[n] != 0)
            .map(|n| NODE_NAMES[n].to_string())
            .collect();
        if a & !bits.iter().fold(0, |x, b| x | b) != 0 {
            v.push('x');
        }
        if v.len() > 1 { v.to_uppercase() } else { v }
    };
    let mut out = String::new();
    let mut run: Option<(String, usize)> = None;
    for i in from..to {
        let c = sym(log.answered[i]);
        if i == s {
            if let Some((rc, k)) = run.take() {
                out.push_str(&format!("{rc}{k} "));
            }
            out.push_str("| ");
        }
        run = match run {
            Some((rc, k)) if rc == c => Some((rc, k + 1)),
            Some((rc, k)) => {
                out.push_str(&format!("{rc}{k} "));
                Some((c, 1))
            }
            None => Some((c, 1)),
        };
    }
    if let Some((rc, k)) = run {
        out.push_str(&format!("{rc}{k}"));
    }
    out
}

impl Report {
    /// Violations of vrrp-agent's behaviour (keepalived's are the baseline).
    pub fn ours(&self) -> usize {
        self.violations.iter().filter(|v| v.imp == "ours").count()
    }

    pub fn print(&self) {
        println!(
            "\nsoak report: seed {}, {:.0} s",
            self.seed, self.duration_s
        );
        println!("faults by kind:");
        for (k, n) in &self.faults_by_kind {
            println!("  {k:<12} {n}");
        }
        println!("worst gap, ms (gaps seen), when the faulted node owned the VIP:");
        println!(
            "  {:<12} {:>14} {:>14} {:>14} {:>14}",
            "kind", "v3 ours", "v3 keepalived", "v2 ours", "v2 keepalived"
        );
        for (k, cols) in &self.worst_gap_ms {
            let c = |key: &str| {
                cols.get(key)
                    .map(|g| format!("{:.1} ({})", g.ms, g.gaps))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "  {k:<12} {:>14} {:>14} {:>14} {:>14}",
                c("v3_ours"),
                c("v3_keepalived"),
                c("v2_ours"),
                c("v2_keepalived")
            );
        }
        println!("where (fault #, VIP, s):");
        for (k, cols) in &self.worst_gap_ms {
            for (c, g) in cols {
                println!(
                    "  {k} {c}: {:.1} ms at fault #{} {} {:.1} s: {}",
                    g.ms, g.fault, g.vip, g.at_s, g.window
                );
            }
        }
        println!(
            "tolerated overlaps (count, longest in probes): {:?}",
            self.tolerated_overlaps
        );
        for p in &self.processes {
            println!(
                "  process {} [{}]: {} samples, RSS kB first/max/last {:?}, fds {:?}",
                p.node, p.cmd, p.samples, p.rss_kb, p.fds
            );
        }
        for n in &self.notes {
            println!("note: {n}");
        }
        for l in &self.leaks {
            println!("LEAK: {l}");
        }
        let ours = self.ours();
        println!(
            "violations: {} ({ours} ours, {} keepalived's)",
            self.violations.len(),
            self.violations.len() - ours
        );
        for v in &self.violations {
            println!(
                "\nVIOLATION {} ({}) vip {:?} at {:?} s, fault #{:?}: {}\n  replay: --seed {}",
                v.what, v.imp, v.vip, v.at_s, v.fault, v.detail, self.seed
            );
            let upto = v.fault.map(|i| i + 1).unwrap_or(self.faults.len());
            for f in &self.faults[..upto] {
                println!(
                    "  #{} {:.1} s {} on {} ({})",
                    f.index,
                    f.at_s,
                    f.kind.key(),
                    f.node,
                    f.params
                );
            }
            if !v.window.is_empty() {
                println!("  probes (1 ms each): {}", v.window);
            }
        }
    }

    pub fn write(&self) -> Result<PathBuf> {
        let dir = crate::util::root().join("target/soak");
        std::fs::create_dir_all(&dir)?;
        let unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let path = dir.join(format!("soak-{unix}-seed{}.json", self.seed));
        std::fs::write(&path, serde_json::to_string_pretty(self)?)?;
        Ok(path)
    }
}
