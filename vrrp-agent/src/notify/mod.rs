//! State-change notifications: keepalived's notify scripts and notify FIFO
//! (keepalived/vrrp/vrrp_notify.c `send_instance_notifies`, `send_group_notifies`,
//! `notify_script_exec`, `notify_fifo`), plus a JSON-lines stream with sequence numbers.
//!
//! Differences from keepalived, on purpose: the scripts of one instance (or group) run one at
//! a time in event order (`notify_<state>` then `notify`), so a MASTER script never races the
//! BACKUP script of the next transition; a slow script delays only its own instance. A script
//! still running after `script_timeout` is killed (process group), since it would otherwise
//! hold up that instance's queue forever.
//!
//! Outputs:
//! - `notify_fifo PATH` (global_defs, as keepalived): lines `INSTANCE "VI_1" MASTER 100` /
//!   `GROUP "G1" BACKUP 0`, byte-for-byte keepalived's format, so existing consumers work.
//! - `vrrp_xdp_notify_json PATH` (our extension): one JSON object per line, e.g.
//!   `{"seq":1,"ts":1723572000.123,"type":"INSTANCE","name":"VI_1","state":"MASTER","priority":100}`;
//!   `seq` starts at 1 and increases by one per event, so a consumer can detect loss.
//!
//! Both FIFOs are created (mode 0644) if missing and opened read-write non-blocking, as
//! keepalived's `fifo_open`: a missing reader never blocks or fails a write, lines wait in the
//! pipe buffer; when the buffer is full they wait in memory (bounded) and are retried.

mod fifo;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::config::{Command, Notify, NotifySpec};
use crate::proto::Priority;
use crate::proto::vr::State;
use crate::security;
use crate::track::exec::{self, Ids};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NotifyKind {
    Instance,
    Group,
}

impl NotifyKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Instance => "INSTANCE",
            Self::Group => "GROUP",
        }
    }
}

/// The states keepalived notifies, spelled as it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum NotifyState {
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Master => "MASTER",
            Self::Backup => "BACKUP",
            Self::Fault => "FAULT",
            Self::Stop => "STOP",
        }
    }

    /// The notification for entering `s`; `Initialize` has none (keepalived's get_iscript).
    pub const fn from_state(s: State) -> Option<Self> {
        match s {
            State::Master => Some(Self::Master),
            State::Backup => Some(Self::Backup),
            State::Fault => Some(Self::Fault),
            State::Stopped => Some(Self::Stop),
            State::Initialize => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NotifyEvent {
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    pub name: String,
    pub state: NotifyState,
    /// The instance's effective priority; groups always report 0 (keepalived
    /// `send_group_notifies`), whatever is given here.
    pub priority: Priority,
}

/// An event as delivered on the JSON stream and to subscribers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeqEvent {
    pub seq: u64,
    /// Unix time in seconds (millisecond precision).
    pub ts: f64,
    #[serde(flatten)]
    pub event: NotifyEvent,
}

impl SeqEvent {
    /// keepalived's notify FIFO line (vrrp_notify.c notify_fifo), with its newline.
    pub fn keepalived_line(&self) -> String {
        let e = &self.event;
        format!(
            "{} \"{}\" {} {}\n",
            e.kind.as_str(),
            e.name,
            e.state.as_str(),
            e.priority
        )
    }

    /// The JSON-lines form, with its newline.
    pub fn json_line(&self) -> String {
        let mut s = serde_json::to_string(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[derive(Clone, Debug)]
pub struct NotifierOptions {
    /// `notify_fifo PATH`: keepalived-format lines.
    pub fifo: Option<PathBuf>,
    /// `vrrp_xdp_notify_json PATH`: JSON lines with `seq` and `ts`.
    pub json_fifo: Option<PathBuf>,
    /// A notify script still running after this is killed (with its process group).
    pub script_timeout: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        Self {
            fifo: None,
            json_fifo: None,
            script_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notify fifo {path}: {source}")]
    Fifo {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A configured command with its user resolved once.
struct Script {
    argv: Vec<String>,
    ids: Option<Result<Ids, String>>,
}

#[derive(Default)]
struct Scripts {
    master: Option<Script>,
    backup: Option<Script>,
    fault: Option<Script>,
    stop: Option<Script>,
    any: Option<Script>,
    rx_lower: Option<Script>,
    split_brain: Option<Script>,
    fence: Option<Script>,
}

impl Scripts {
    /// Each command vetted as keepalived does (`security::vet`): a refused one stays
    /// configured but each event only logs why it does not run.
    fn new(n: &Notify, policy: &security::ScriptPolicy) -> Self {
        let s = |c: &Option<Command>, what: &str| {
            c.as_ref().map(|c| match security::vet(policy, c, what) {
                Ok(v) => Script {
                    argv: v.argv,
                    ids: v.ids.map(Ok),
                },
                Err(why) => Script {
                    argv: c.argv.clone(),
                    ids: Some(Err(why)),
                },
            })
        };
        Self {
            master: s(&n.master, "notify_master"),
            backup: s(&n.backup, "notify_backup"),
            fault: s(&n.fault, "notify_fault"),
            stop: s(&n.stop, "notify_stop"),
            any: s(&n.any, "notify"),
            rx_lower: s(&n.master_rx_lower_pri, "notify_master_rx_lower_pri"),
            split_brain: s(&n.split_brain, "vrrp_xdp_notify_split_brain"),
            fence: s(&n.fence, "vrrp_xdp_fence"),
        }
    }

    fn is_empty(&self) -> bool {
        self.master.is_none()
            && self.backup.is_none()
            && self.fault.is_none()
            && self.stop.is_none()
            && self.any.is_none()
            && self.rx_lower.is_none()
            && self.split_brain.is_none()
            && self.fence.is_none()
    }

    fn for_hook(&self, h: Hook) -> Option<&Script> {
        match h {
            Hook::MasterRxLowerPriority => self.rx_lower.as_ref(),
            Hook::SplitBrain => self.split_brain.as_ref(),
            Hook::Fence => self.fence.as_ref(),
        }
    }

    fn for_state(&self, s: NotifyState) -> Option<&Script> {
        match s {
            NotifyState::Master => self.master.as_ref(),
            NotifyState::Backup => self.backup.as_ref(),
            NotifyState::Fault => self.fault.as_ref(),
            NotifyState::Stop => self.stop.as_ref(),
        }
    }
}

type Key = (NotifyKind, String);

struct Inner {
    seq: u64,
    queues: HashMap<Key, mpsc::UnboundedSender<NotifyEvent>>,
    tasks: Vec<JoinHandle<()>>,
    fifo: Option<mpsc::UnboundedSender<SeqEvent>>,
}

/// Runs notify scripts and writes the event streams. Cheap to call from the daemon loop:
/// [`Notifier::notify`] never blocks.
pub struct Notifier {
    scripts: HashMap<Key, Arc<Scripts>>,
    timeout: Duration,
    inner: Mutex<Inner>,
    bus: broadcast::Sender<SeqEvent>,
    /// Hooks running now, each with the arguments of the one run still owed (coalesced).
    hooks: Arc<Mutex<HookRuns>>,
}

type HookRuns = HashMap<(String, Hook), Option<Vec<String>>>;

fn lock_hooks(m: &Mutex<HookRuns>) -> MutexGuard<'_, HookRuns> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock(m: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Notifier {
    /// Build from the instances' and sync groups' `notify*` settings; opens (creating if
    /// needed) the FIFOs. Must be called inside a tokio runtime.
    pub fn new(spec: &NotifySpec, opts: NotifierOptions) -> Result<Self, NotifyError> {
        let policy = spec.policy.clone();
        let mut scripts = HashMap::new();
        for (name, notify) in &spec.instances {
            let s = Scripts::new(notify, &policy);
            if !s.is_empty() {
                scripts.insert((NotifyKind::Instance, name.clone()), Arc::new(s));
            }
        }
        for (name, notify) in &spec.groups {
            let s = Scripts::new(notify, &policy);
            if !s.is_empty() {
                scripts.insert((NotifyKind::Group, name.clone()), Arc::new(s));
            }
        }
        let mut sinks = Vec::new();
        for (path, json) in [(&opts.fifo, false), (&opts.json_fifo, true)] {
            if let Some(p) = path {
                let f = fifo::open(p).map_err(|source| NotifyError::Fifo {
                    path: p.clone(),
                    source,
                })?;
                sinks.push(fifo::Sink::new(p.clone(), f, json));
            }
        }
        let mut tasks = Vec::new();
        let fifo_tx = if sinks.is_empty() {
            None
        } else {
            let (tx, rx) = mpsc::unbounded_channel();
            tasks.push(tokio::spawn(fifo::writer(sinks, rx)));
            Some(tx)
        };
        Ok(Self {
            scripts,
            timeout: opts.script_timeout,
            inner: Mutex::new(Inner {
                seq: 0,
                queues: HashMap::new(),
                tasks,
                fifo: fifo_tx,
            }),
            bus: broadcast::channel(256).0,
            hooks: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    /// Queue one state change: scripts (in order, per instance/group), FIFO lines, subscribers.
    /// Returns the event's sequence number.
    pub fn notify(&self, mut ev: NotifyEvent) -> u64 {
        if ev.kind == NotifyKind::Group {
            ev.priority = Priority(0);
        }
        let key = (ev.kind, ev.name.clone());
        // One lock around numbering and queueing keeps every stream in seq order.
        let mut inner = lock(&self.inner);
        inner.seq += 1;
        let seq = inner.seq;
        let ts = exec::now()
            .1
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| (d.as_millis() as f64) / 1000.0);
        let sev = SeqEvent {
            seq,
            ts,
            event: ev.clone(),
        };
        if let Some(scripts) = self.scripts.get(&key) {
            let tx = match inner.queues.get(&key) {
                Some(tx) if !tx.is_closed() => tx.clone(),
                _ => {
                    let (tx, rx) = mpsc::unbounded_channel();
                    let h = tokio::spawn(run_queue(scripts.clone(), rx, self.timeout));
                    inner.tasks.retain(|t| !t.is_finished());
                    inner.tasks.push(h);
                    inner.queues.insert(key, tx.clone());
                    tx
                }
            };
            let _ = tx.send(ev);
        }
        if let Some(f) = &inner.fifo {
            let _ = f.send(sev.clone());
        }
        let _ = self.bus.send(sev);
        seq
    }

    /// Runs one of an instance's event hooks with `extra` arguments appended, in a task of its
    /// own (a hook never waits behind state notifications). Whether it was configured.
    pub fn hook(&self, instance: &str, hook: Hook, extra: Vec<String>) -> bool {
        let Some(scripts) = self
            .scripts
            .get(&(NotifyKind::Instance, instance.to_string()))
            .cloned()
        else {
            return false;
        };
        if scripts.for_hook(hook).is_none() {
            return false;
        }
        // Never two runs of one hook at once (a lower-priority advert every interval, a
        // flood of them): a call while it runs leaves one more run, with the latest
        // arguments, for when it ends.
        let key = (instance.to_string(), hook);
        {
            let mut hooks = lock_hooks(&self.hooks);
            if let Some(pending) = hooks.get_mut(&key) {
                *pending = Some(extra);
                return true;
            }
            hooks.insert(key.clone(), None);
        }
        let timeout = self.timeout;
        let hooks = self.hooks.clone();
        let h = tokio::spawn(async move {
            let mut extra = extra;
            loop {
                if let Some(s) = scripts.for_hook(hook) {
                    let ev = NotifyEvent {
                        kind: NotifyKind::Instance,
                        name: key.0.clone(),
                        state: NotifyState::Master,
                        priority: Priority(0),
                    };
                    run_one(s, &extra, &ev, timeout).await;
                }
                let mut hooks = lock_hooks(&hooks);
                match hooks.get_mut(&key).and_then(Option::take) {
                    Some(next) => extra = next,
                    None => {
                        hooks.remove(&key);
                        return;
                    }
                }
            }
        });
        let mut inner = lock(&self.inner);
        inner.tasks.retain(|t| !t.is_finished());
        inner.tasks.push(h);
        true
    }

    /// Script and hook tasks still held (finished ones are reaped on the next call).
    pub fn pending_tasks(&self) -> usize {
        lock(&self.inner).tasks.len()
    }

    /// The same events, in order, with their sequence numbers (for the control socket).
    pub fn subscribe(&self) -> broadcast::Receiver<SeqEvent> {
        self.bus.subscribe()
    }

    /// Let every queued script run and every FIFO line be written (or given up on), then
    /// return. Use after queueing the STOP notifications at shutdown.
    pub async fn shutdown(self) {
        let tasks = {
            let mut inner = lock(&self.inner);
            inner.queues.clear();
            inner.fifo = None;
            std::mem::take(&mut inner.tasks)
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Event hooks of an instance, beside its state notifications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hook {
    /// keepalived `notify_master_rx_lower_pri`: MASTER heard a lower priority advert.
    MasterRxLowerPriority,
    /// `vrrp_xdp_notify_split_brain`.
    SplitBrain,
    /// `vrrp_xdp_fence`.
    Fence,
}

/// One instance's (or group's) scripts, one event at a time.
async fn run_queue(
    scripts: Arc<Scripts>,
    mut rx: mpsc::UnboundedReceiver<NotifyEvent>,
    timeout: Duration,
) {
    while let Some(ev) = rx.recv().await {
        // send_instance_notifies: the notify_<state> script first, then the generic one.
        if let Some(s) = scripts.for_state(ev.state) {
            run_one(s, &[], &ev, timeout).await;
        }
        if let Some(s) = &scripts.any {
            // notify_script_exec: "script {GROUP|INSTANCE} NAME {MASTER|BACKUP|FAULT|STOP} PRIO".
            let extra = [
                ev.kind.as_str().to_string(),
                ev.name.clone(),
                ev.state.as_str().to_string(),
                ev.priority.to_string(),
            ];
            run_one(s, &extra, &ev, timeout).await;
        }
    }
}

async fn run_one(s: &Script, extra: &[String], ev: &NotifyEvent, timeout: Duration) {
    let ids = match &s.ids {
        Some(Err(e)) => {
            tracing::warn!(name = %ev.name, "notify script {:?}: {e}", s.argv);
            return;
        }
        Some(Ok(i)) => Some(*i),
        None => None,
    };
    let r = exec::run(&s.argv, extra, ids, timeout).await;
    if r.outcome.success() {
        tracing::debug!(name = %ev.name, state = ev.state.as_str(), "notify script {:?}: {}", s.argv, r.outcome);
    } else {
        tracing::warn!(name = %ev.name, state = ev.state.as_str(), "notify script {:?}: {}", s.argv, r.outcome);
    }
    if !r.output.is_empty() {
        tracing::debug!(name = %ev.name, "notify script output: {}", r.output.trim_end());
    }
}
