//! Health tracking: scripts, built-in TCP/HTTP checks, interfaces, files and processes, turned
//! into each instance's effective priority and fault flag.
//!
//! The rules are pure ([`calc`]); this module is the I/O around them. Every check runs as its
//! own tokio task and reports state changes to one aggregator task, which recomputes the
//! instances that reference the object and sends a [`TrackEvent`] when an instance's priority
//! or fault changes. Nothing here can block the election: the daemon only reads a channel.

pub mod builtin;
pub mod calc;
pub mod exec;
pub mod file;
pub mod process;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

pub use builtin::{BuiltinCheck, BuiltinKind, HttpCheck, ProbeError, UrlError};
pub use calc::{Contribution, Entry, Hysteresis, ObjKind, ObjState, PriorityCalc, Tracked};

use crate::config::{TrackFile, TrackProcess, TrackSpec, VrrpScript, Weight};
use crate::security;
use exec::Ids;

/// Sent when an instance's effective priority or fault changes, and once at start. An
/// instance tracking a weight-0 script gets its first event only after that script's first
/// result (keepalived keeps such an instance in INIT until then).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrackEvent {
    pub instance: String,
    pub tracked: Tracked,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CheckKind {
    Script,
    Tcp,
    Http,
    File,
    Process,
}

/// Status of one check for `status`/metrics.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub kind: CheckKind,
    /// After rise/fall (scripts, built-ins), quorum (processes); files: the last read parsed.
    pub up: bool,
    pub last_duration: Option<Duration>,
    /// e.g. "exit 1", "timed out", "HTTP 200", "connect: Connection refused", "value 5".
    pub last_result: String,
    pub runs: u64,
    pub failures: u64,
}

/// Knobs for [`Tracker::spawn_with`].
#[derive(Clone, Debug)]
pub struct TrackerOptions {
    /// How often tracked files are re-read (keepalived uses inotify: near-immediate).
    pub file_poll: Duration,
    /// How often /proc is scanned for tracked processes.
    pub process_poll: Duration,
    pub proc_root: PathBuf,
    pub sys_class_net: PathBuf,
}

impl Default for TrackerOptions {
    fn default() -> Self {
        Self {
            file_poll: Duration::from_millis(500),
            process_poll: Duration::from_secs(1),
            proc_root: PathBuf::from("/proc"),
            sys_class_net: PathBuf::from("/sys/class/net"),
        }
    }
}

/// One tracked object shared by all instances that reference it.
struct Obj {
    kind: ObjKind,
    name: String,
    state: ObjState,
}

struct InstCalc {
    name: String,
    calc: PriorityCalc,
    /// Object index of each entry of `calc`, in order.
    ids: Vec<usize>,
}

enum Msg {
    Update(usize, ObjState),
}

type Statuses = Arc<Mutex<Vec<CheckStatus>>>;
type Current = Arc<Mutex<HashMap<String, Tracked>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking holder cannot leave these plain data tables half-updated in a harmful way.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Owns every check of a configuration. Dropping it aborts the checks (and kills running
/// scripts' process groups); [`Tracker::stop`] does the same and waits.
pub struct Tracker {
    updates: mpsc::UnboundedSender<Msg>,
    interfaces: HashMap<String, usize>,
    checks: Statuses,
    current: Current,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Tracker {
    /// Start tracking for `spec` with default options. Must be called inside a tokio runtime.
    pub fn spawn(spec: &TrackSpec) -> (Self, mpsc::Receiver<TrackEvent>) {
        Self::spawn_with(spec, TrackerOptions::default())
    }

    pub fn spawn_with(
        spec: &TrackSpec,
        opts: TrackerOptions,
    ) -> (Self, mpsc::Receiver<TrackEvent>) {
        let mut reg = Registry::default();
        let mut insts = Vec::new();
        // Who runs each script, or why it may not run (keepalived check_vrrp_script_security).
        let policy = spec.policy.clone();
        let vetted: HashMap<&str, Result<security::Vetted, String>> = spec
            .scripts
            .iter()
            .map(|s| {
                let v = security::vet(&policy, &s.command, "vrrp_script");
                (s.name.as_str(), v)
            })
            .collect();
        let mut refused: Vec<(String, String)> = Vec::new();
        for inst in &spec.instances {
            let mut calc = PriorityCalc::new(inst.priority);
            let mut ids = Vec::new();
            let mut add = |kind, name: &str, w: Weight, calc: &mut PriorityCalc| {
                ids.push(reg.id(kind, name));
                calc.push(Entry {
                    kind,
                    name: name.to_string(),
                    weight: i32::from(w.value),
                    reverse: w.reverse,
                });
            };
            for r in &inst.interfaces {
                // A track_interface without weight faults the instance when down.
                let w = r.weight.unwrap_or(Weight {
                    value: 0,
                    reverse: false,
                });
                add(ObjKind::Interface, &r.name, w, &mut calc);
            }
            for r in &inst.scripts {
                // A refused script is dropped from the instance, as keepalived does: its
                // priority no longer depends on it (the config warnings say why).
                if let Some(Err(why)) = vetted.get(r.name.as_str()) {
                    if !refused.iter().any(|(n, _)| *n == r.name) {
                        refused.push((r.name.clone(), why.clone()));
                    }
                    continue;
                }
                let default = spec
                    .scripts
                    .iter()
                    .find(|s| s.name == r.name)
                    .map(|s| s.weight)
                    .or_else(|| {
                        spec.checks
                            .iter()
                            .find(|c| c.name == r.name)
                            .map(|c| c.weight)
                    });
                match default {
                    Some(d) => add(ObjKind::Script, &r.name, r.weight.unwrap_or(d), &mut calc),
                    None => tracing::warn!(
                        instance = %inst.name,
                        "track script {} not found, ignoring", r.name
                    ),
                }
            }
            for r in &inst.files {
                match spec.files.iter().find(|f| f.name == r.name) {
                    Some(f) => add(
                        ObjKind::File,
                        &r.name,
                        r.weight.unwrap_or(f.weight),
                        &mut calc,
                    ),
                    None => tracing::warn!(
                        instance = %inst.name,
                        "track file {} not found, ignoring", r.name
                    ),
                }
            }
            for r in &inst.processes {
                match spec.processes.iter().find(|p| p.name == r.name) {
                    Some(p) => add(
                        ObjKind::Process,
                        &r.name,
                        r.weight.unwrap_or(p.weight),
                        &mut calc,
                    ),
                    None => tracing::warn!(
                        instance = %inst.name,
                        "track process {} not found, ignoring", r.name
                    ),
                }
            }
            insts.push(InstCalc {
                name: inst.name.clone(),
                calc,
                ids,
            });
        }

        let (utx, urx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::channel(64);
        let checks: Statuses = Arc::default();
        let current: Current = Arc::default();
        let mut tasks = Vec::new();
        let mut interfaces = HashMap::new();
        let mut files = Vec::new();
        let mut procs = Vec::new();
        for (name, why) in &refused {
            let slot = push_status(&checks, name, CheckKind::Script);
            lock(&checks)[slot].last_result = format!("disabled: {why}");
        }

        for (id, obj) in reg.objs.iter_mut().enumerate() {
            match obj.kind {
                ObjKind::Interface => {
                    obj.state = iface_state(&opts.sys_class_net, &obj.name);
                    interfaces.insert(obj.name.clone(), id);
                }
                ObjKind::Script => {
                    let slot = push_status(&checks, &obj.name, CheckKind::Script);
                    let run = if let Some(s) = spec.scripts.iter().find(|s| s.name == obj.name) {
                        let mut s = s.clone();
                        let ids = match vetted.get(s.name.as_str()) {
                            Some(Ok(v)) => {
                                s.command.argv.clone_from(&v.argv);
                                v.ids.map(Ok)
                            }
                            Some(Err(why)) => Some(Err(why.clone())),
                            None => None,
                        };
                        RunSpec::Script(s, ids)
                    } else if let Some(c) = spec.checks.iter().find(|c| c.name == obj.name) {
                        lock(&checks)[slot].kind = match c.kind {
                            BuiltinKind::Tcp { .. } => CheckKind::Tcp,
                            BuiltinKind::Http(_) => CheckKind::Http,
                        };
                        RunSpec::Builtin(c.clone())
                    } else {
                        continue;
                    };
                    obj.state = run.hysteresis().state();
                    tasks.push(tokio::spawn(check_loop(
                        run,
                        id,
                        utx.clone(),
                        checks.clone(),
                        slot,
                    )));
                }
                ObjKind::File => {
                    if let Some(f) = spec.files.iter().find(|f| f.name == obj.name) {
                        if let Some(init) = f.init_file
                            && let Err(e) = file::apply_init(&f.path, init)
                        {
                            tracing::warn!(
                                "track file {}: init_file {}: {e}",
                                f.name,
                                f.path.display()
                            );
                        }
                        let slot = push_status(&checks, &obj.name, CheckKind::File);
                        let v = match file::read_value(&f.path) {
                            file::FileRead::Value(v) => v,
                            file::FileRead::Invalid => 0,
                        };
                        obj.state = ObjState::Value(v);
                        set_file_status(&checks, slot, v);
                        files.push((f.clone(), id, slot, v));
                    }
                }
                ObjKind::Process => {
                    if let Some(p) = spec.processes.iter().find(|p| p.name == obj.name) {
                        let slot = push_status(&checks, &obj.name, CheckKind::Process);
                        procs.push((p.clone(), id, slot));
                    }
                }
            }
        }

        if !procs.is_empty() {
            let seen = process::scan(&opts.proc_root);
            let mut watched = Vec::new();
            for (p, id, slot) in procs {
                let n = count(&p, &seen);
                let up = process::have_quorum(&p, n);
                reg.objs[id].state = if up { ObjState::Up } else { ObjState::Down };
                set_process_status(&checks, slot, up, n, false);
                let polls = polls_for(p.delay, opts.process_poll);
                watched.push((p, id, slot, process::Debounce::new(up, polls)));
            }
            tasks.push(tokio::spawn(process_loop(
                watched,
                opts.process_poll,
                opts.proc_root.clone(),
                utx.clone(),
                checks.clone(),
            )));
        }
        if !files.is_empty() {
            tasks.push(tokio::spawn(file_loop(
                files,
                opts.file_poll,
                utx.clone(),
                checks.clone(),
            )));
        }

        let states = reg.objs.iter().map(|o| o.state).collect();
        tasks.push(tokio::spawn(aggregate(
            urx,
            states,
            insts,
            etx,
            current.clone(),
        )));

        (
            Self {
                updates: utx,
                interfaces,
                checks,
                current,
                tasks: Mutex::new(tasks),
            },
            erx,
        )
    }

    /// Interface link state from the daemon's netlink watch (up = IFF_UP and IFF_RUNNING,
    /// keepalived's `IF_FLAGS_UP`). Interfaces no instance tracks are ignored.
    pub fn link_changed(&self, ifname: &str, up: bool) {
        if let Some(&id) = self.interfaces.get(ifname) {
            let s = if up { ObjState::Up } else { ObjState::Down };
            let _ = self.updates.send(Msg::Update(id, s));
        }
    }

    /// Per-check status (scripts, built-ins, files, processes), in configuration order.
    pub fn checks(&self) -> Vec<CheckStatus> {
        lock(&self.checks).clone()
    }

    /// The latest verdict of every instance that has one.
    pub fn current(&self) -> Vec<TrackEvent> {
        let mut v: Vec<_> = lock(&self.current)
            .iter()
            .map(|(k, t)| TrackEvent {
                instance: k.clone(),
                tracked: t.clone(),
            })
            .collect();
        v.sort_by(|a, b| a.instance.cmp(&b.instance));
        v
    }

    /// Stop every check, killing running scripts (their whole process group), and wait for
    /// the tasks to end.
    pub async fn stop(&self) {
        let tasks = std::mem::take(&mut *lock(&self.tasks));
        for t in &tasks {
            t.abort();
        }
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        for t in lock(&self.tasks).iter() {
            t.abort();
        }
    }
}

#[derive(Default)]
struct Registry {
    objs: Vec<Obj>,
    index: HashMap<(ObjKind, String), usize>,
}

impl Registry {
    fn id(&mut self, kind: ObjKind, name: &str) -> usize {
        if let Some(&i) = self.index.get(&(kind, name.to_string())) {
            return i;
        }
        let i = self.objs.len();
        self.objs.push(Obj {
            kind,
            name: name.to_string(),
            state: ObjState::Unknown,
        });
        self.index.insert((kind, name.to_string()), i);
        i
    }
}

fn push_status(checks: &Statuses, name: &str, kind: CheckKind) -> usize {
    let mut c = lock(checks);
    c.push(CheckStatus {
        name: name.to_string(),
        kind,
        up: false,
        last_duration: None,
        last_result: String::new(),
        runs: 0,
        failures: 0,
    });
    c.len() - 1
}

fn set_file_status(checks: &Statuses, slot: usize, v: i64) {
    if let Some(c) = lock(checks).get_mut(slot) {
        c.up = true;
        c.runs += 1;
        c.last_result = format!("value {v}");
    }
}

fn set_process_status(checks: &Statuses, slot: usize, up: bool, n: u32, delayed: bool) {
    if let Some(c) = lock(checks).get_mut(slot) {
        c.up = up;
        c.runs += 1;
        c.last_result = format!("{n} running{}", if delayed { " (delay)" } else { "" });
    }
}

/// keepalived's IF_FLAGS_UP from sysfs, for the state before the first netlink event.
fn iface_state(sys: &Path, name: &str) -> ObjState {
    const IFF_UP: u32 = 0x1;
    let dir = sys.join(name);
    let read = |f: &str| {
        std::fs::read_to_string(dir.join(f))
            .map(|s| s.trim().to_string())
            .ok()
    };
    let flags =
        read("flags").and_then(|s| u32::from_str_radix(s.trim_start_matches("0x"), 16).ok());
    // sysfs `flags` never shows IFF_RUNNING (the kernel adds it only in netlink replies), so
    // "running" is read from operstate, as keepalived's netlink view would report it; links
    // without an operstate ("unknown", e.g. lo) count as running when they have carrier.
    let running = match read("operstate").as_deref() {
        Some("up") => true,
        Some("unknown") => read("carrier").as_deref() == Some("1"),
        _ => false,
    };
    match flags {
        Some(f) if f & IFF_UP != 0 && running => ObjState::Up,
        _ => ObjState::Down,
    }
}

/// A script or a built-in check: what [`check_loop`] runs.
enum RunSpec {
    Script(VrrpScript, Option<Result<Ids, String>>),
    Builtin(BuiltinCheck),
}

impl RunSpec {
    fn name(&self) -> &str {
        match self {
            Self::Script(s, _) => &s.name,
            Self::Builtin(b) => &b.name,
        }
    }

    fn hysteresis(&self) -> Hysteresis {
        match self {
            Self::Script(s, _) => Hysteresis::new(s.rise, s.fall, s.init_fail),
            Self::Builtin(b) => Hysteresis::new(b.rise, b.fall, b.init_fail),
        }
    }

    /// (interval, timeout): a zero timeout is the interval (vrrp_script_thread).
    fn timing(&self) -> (Duration, Duration) {
        let (i, t) = match self {
            Self::Script(s, _) => (s.interval, s.timeout),
            Self::Builtin(b) => (b.interval, b.timeout),
        };
        let i = i.max(Duration::from_millis(10));
        (i, if t.is_zero() { i } else { t })
    }

    /// One run: (success, result text, captured output).
    async fn run_once(&self, timeout: Duration) -> (bool, String, String) {
        match self {
            Self::Script(s, ids) => {
                let ids = match ids {
                    Some(Err(e)) => return (false, format!("spawn failed: {e}"), String::new()),
                    Some(Ok(i)) => Some(*i),
                    None => None,
                };
                let r = exec::run(&s.command.argv, &[], ids, timeout).await;
                (r.outcome.success(), r.outcome.to_string(), r.output)
            }
            Self::Builtin(b) => match builtin::probe(&b.kind, timeout).await {
                Ok(m) => (true, m, String::new()),
                Err(e) => (false, e.to_string(), String::new()),
            },
        }
    }
}

/// keepalived's vrrp_script_thread: run every interval, never two runs of the same check at
/// once (the loop awaits each run; ticks missed meanwhile are skipped), rise/fall on results.
async fn check_loop(
    spec: RunSpec,
    id: usize,
    tx: mpsc::UnboundedSender<Msg>,
    checks: Statuses,
    slot: usize,
) {
    let (interval, timeout) = spec.timing();
    let mut hyst = spec.hysteresis();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let (start, _) = exec::now();
        let (ok, result, output) = spec.run_once(timeout).await;
        let took = exec::now().0.saturating_duration_since(start);
        if took > interval {
            tracing::info!(
                "Track script {} ran longer than its interval - skipping missed runs",
                spec.name()
            );
        }
        if !output.is_empty() {
            tracing::debug!(check = spec.name(), %result, "output: {}", output.trim_end());
        }
        let change = hyst.record(ok);
        {
            let mut c = lock(&checks);
            if let Some(c) = c.get_mut(slot) {
                c.runs += 1;
                c.failures += u64::from(!ok);
                c.last_duration = Some(took);
                c.last_result = result.clone();
                c.up = hyst.state() == ObjState::Up;
            }
        }
        if let Some(up) = change {
            // vrrp_script_child_thread's "VRRP_Script(%s) succeeded/failed".
            tracing::info!(
                "VRRP_Script({}) {} ({result})",
                spec.name(),
                if up { "succeeded" } else { "failed" }
            );
            let s = if up { ObjState::Up } else { ObjState::Down };
            if tx.send(Msg::Update(id, s)).is_err() {
                return;
            }
        }
    }
}

fn polls_for(delay: Duration, poll: Duration) -> u32 {
    if delay.is_zero() || poll.is_zero() {
        return 0;
    }
    u32::try_from(delay.as_nanos().div_ceil(poll.as_nanos())).unwrap_or(u32::MAX)
}

fn count(p: &TrackProcess, seen: &[process::ProcInfo]) -> u32 {
    let n = seen.iter().filter(|i| process::matches(p, i)).count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

type Watched = Vec<(TrackProcess, usize, usize, process::Debounce)>;

async fn process_loop(
    mut watched: Watched,
    poll: Duration,
    root: PathBuf,
    tx: mpsc::UnboundedSender<Msg>,
    checks: Statuses,
) {
    let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tick.tick().await;
    loop {
        tick.tick().await;
        let r = root.clone();
        let Ok(seen) = tokio::task::spawn_blocking(move || process::scan(&r)).await else {
            continue;
        };
        for (p, id, slot, deb) in &mut watched {
            let n = count(p, &seen);
            let now = process::have_quorum(p, n);
            let change = deb.feed(now);
            set_process_status(&checks, *slot, deb.reported(), n, now != deb.reported());
            if let Some(up) = change {
                // process_update_track_process_status: "Quorum %s for tracked process %s".
                tracing::info!(
                    "Quorum {} for tracked process {}",
                    if up { "gained" } else { "lost" },
                    p.name
                );
                let s = if up { ObjState::Up } else { ObjState::Down };
                if tx.send(Msg::Update(*id, s)).is_err() {
                    return;
                }
            }
        }
    }
}

async fn file_loop(
    mut files: Vec<(TrackFile, usize, usize, i64)>,
    poll: Duration,
    tx: mpsc::UnboundedSender<Msg>,
    checks: Statuses,
) {
    let mut tick = tokio::time::interval(poll.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tick.tick().await;
    let mut invalid = vec![false; files.len()];
    loop {
        tick.tick().await;
        // Off the async workers: a file on a hung network mount must not stall them.
        let paths: Vec<PathBuf> = files.iter().map(|f| f.0.path.clone()).collect();
        let Ok(reads) = tokio::task::spawn_blocking(move || {
            paths
                .iter()
                .map(|p| file::read_value(p))
                .collect::<Vec<_>>()
        })
        .await
        else {
            continue;
        };
        for (((f, id, slot, last), read), bad) in files.iter_mut().zip(reads).zip(&mut invalid) {
            match read {
                file::FileRead::Value(v) => {
                    *bad = false;
                    if v == *last {
                        continue;
                    }
                    tracing::info!("track file {} ({}) now {v}", f.name, f.path.display());
                    *last = v;
                    set_file_status(&checks, *slot, v);
                    if tx.send(Msg::Update(*id, ObjState::Value(v))).is_err() {
                        return;
                    }
                }
                file::FileRead::Invalid if !*bad => {
                    // keepalived: "Invalid number ... read from %s - ignoring" (once here,
                    // not every poll).
                    *bad = true;
                    tracing::info!("Invalid number read from {} - ignoring", f.path.display());
                }
                file::FileRead::Invalid => {}
            }
        }
    }
}

/// Applies object updates and emits instance verdicts when priority or fault change.
async fn aggregate(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    mut states: Vec<ObjState>,
    insts: Vec<InstCalc>,
    tx: mpsc::Sender<TrackEvent>,
    current: Current,
) {
    let mut last: Vec<Option<Tracked>> = vec![None; insts.len()];
    let all: Vec<usize> = (0..insts.len()).collect();
    if emit(&all, &states, &insts, &mut last, &tx, &current)
        .await
        .is_err()
    {
        return;
    }
    while let Some(Msg::Update(id, s)) = rx.recv().await {
        let Some(slot) = states.get_mut(id) else {
            continue;
        };
        if *slot == s {
            continue;
        }
        *slot = s;
        let affected: Vec<usize> = insts
            .iter()
            .enumerate()
            .filter(|(_, i)| i.ids.contains(&id))
            .map(|(n, _)| n)
            .collect();
        if emit(&affected, &states, &insts, &mut last, &tx, &current)
            .await
            .is_err()
        {
            return;
        }
    }
}

async fn emit(
    which: &[usize],
    states: &[ObjState],
    insts: &[InstCalc],
    last: &mut [Option<Tracked>],
    tx: &mpsc::Sender<TrackEvent>,
    current: &Current,
) -> Result<(), ()> {
    for &n in which {
        let (Some(inst), Some(prev)) = (insts.get(n), last.get_mut(n)) else {
            continue;
        };
        let s: Vec<ObjState> = inst
            .ids
            .iter()
            .map(|&i| states.get(i).copied().unwrap_or(ObjState::Unknown))
            .collect();
        let Some(t) = inst.calc.compute_states(&s) else {
            continue;
        };
        lock(current).insert(inst.name.clone(), t.clone());
        let changed = prev
            .as_ref()
            .is_none_or(|p| p.priority != t.priority || p.fault != t.fault);
        if changed {
            if let Some(p) = prev.as_ref()
                && p.priority != t.priority
            {
                // vrrp_set_effective_priority's message.
                tracing::info!(
                    "({}) Changing effective priority from {} to {}",
                    inst.name,
                    p.priority,
                    t.priority
                );
            }
            *prev = Some(t.clone());
            tx.send(TrackEvent {
                instance: inst.name.clone(),
                tracked: t,
            })
            .await
            .map_err(|_| ())?;
        } else {
            *prev = Some(t);
        }
    }
    Ok(())
}
