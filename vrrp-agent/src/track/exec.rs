//! Running an external command the way keepalived does (keepalived/core/notify.c
//! `system_call_script`): direct exec of argv (no shell), optional uid/gid, its own process
//! group so a timeout kills the whole tree, `IFS`/`LD_PRELOAD`/`LD_LIBRARY_PATH` removed,
//! `PR_SET_PDEATHSIG` so scripts die with the agent. A script run as another user than root
//! gets a minimal environment ([`minimal_env`]) instead of the agent's.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Group, Pid, User};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command as TokioCommand;

use crate::config::ScriptUser;

/// Bytes of stdout/stderr kept per run (the rest is drained and dropped).
const OUTPUT_LIMIT: usize = 4096;
/// How long keepalived waits between SIGTERM and SIGKILL of a timed-out script
/// (vrrp_script_child_thread: `timeout = 2`).
const TERM_GRACE: Duration = Duration::from_secs(2);
/// After the script exits, how long to wait for its pipes to close (a background child may
/// hold them open).
const PIPE_GRACE: Duration = Duration::from_millis(200);

/// The one clock read of `track`/`notify`: check durations and event timestamps for status
/// output only. Decisions use tokio timers, never this value.
#[expect(
    clippy::disallowed_methods,
    reason = "durations/timestamps for status and the JSON event stream; no decision reads them"
)]
pub(crate) fn now() -> (tokio::time::Instant, std::time::SystemTime) {
    (tokio::time::Instant::now(), std::time::SystemTime::now())
}

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ExecError {
    #[error("empty command")]
    Empty,
    #[error("unknown user '{0}'")]
    UnknownUser(String),
    #[error("unknown group '{0}'")]
    UnknownGroup(String),
    #[error("cannot look up '{0}': {1}")]
    Lookup(String, nix::Error),
}

/// uid/gid resolved once (NSS lookups may be slow; do not repeat them every interval).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
}

/// Resolve `user [group]` as keepalived's `set_script_uid_gid`: the group defaults to the
/// user's primary group.
pub fn resolve_user(u: &ScriptUser) -> Result<Ids, ExecError> {
    let user = User::from_name(&u.user)
        .map_err(|e| ExecError::Lookup(u.user.clone(), e))?
        .ok_or_else(|| ExecError::UnknownUser(u.user.clone()))?;
    let gid = match &u.group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| ExecError::Lookup(g.clone(), e))?
                .ok_or_else(|| ExecError::UnknownGroup(g.clone()))?
                .gid
        }
        None => user.gid,
    };
    Ok(Ids {
        uid: user.uid.as_raw(),
        gid: gid.as_raw(),
    })
}

/// Variables passed through from the agent to a script run as another user (locale, time).
const PASSED_THROUGH: [&str; 3] = ["LANG", "LC_ALL", "TZ"];

/// The environment of a script run as `uid`: `PATH` (the standard one), `HOME`, `USER`,
/// `LOGNAME` and `SHELL` from its passwd entry, and [`PASSED_THROUGH`]. The passwd lookup is
/// cached per uid (NSS may be slow; scripts run every interval).
pub fn minimal_env(uid: u32) -> Vec<(String, String)> {
    type Cache = std::sync::Mutex<std::collections::HashMap<u32, Vec<(String, String)>>>;
    static CACHE: std::sync::OnceLock<Cache> = std::sync::OnceLock::new();
    let cache = CACHE.get_or_init(Cache::default);
    let mut cache = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut env = cache
        .entry(uid)
        .or_insert_with(|| {
            let mut env = vec![(
                "PATH".to_string(),
                crate::security::DEFAULT_PATH.to_string(),
            )];
            if let Ok(Some(u)) = User::from_uid(nix::unistd::Uid::from_raw(uid)) {
                env.push(("HOME".into(), u.dir.display().to_string()));
                env.push(("USER".into(), u.name.clone()));
                env.push(("LOGNAME".into(), u.name));
                env.push(("SHELL".into(), u.shell.display().to_string()));
            } else {
                env.push(("HOME".into(), "/".into()));
            }
            env
        })
        .clone();
    drop(cache);
    for k in PASSED_THROUGH {
        if let Ok(v) = std::env::var(k) {
            env.push((k.to_string(), v));
        }
    }
    env
}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    Signaled(i32),
    /// Killed at its timeout (counts as a failure, keepalived's "timed_out").
    TimedOut,
    SpawnFailed(String),
}

impl Outcome {
    pub fn success(&self) -> bool {
        matches!(self, Self::Exited(0))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(c) => write!(f, "exit {c}"),
            Self::Signaled(s) => write!(f, "signal {s}"),
            Self::TimedOut => f.write_str("timed out"),
            Self::SpawnFailed(e) => write!(f, "spawn failed: {e}"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct RunResult {
    pub outcome: Outcome,
    /// stdout then stderr, each truncated to 4 KiB, lossily decoded.
    pub output: String,
    pub duration: Duration,
}

/// Kills the process group if the run is abandoned (task aborted by `Tracker::stop`).
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pg) = self.0 {
            let _ = killpg(pg, Signal::SIGKILL);
        }
    }
}

/// Run `argv` (+ `extra` arguments) with a timeout. Never panics; spawn errors are an outcome.
pub async fn run(
    argv: &[String],
    extra: &[String],
    ids: Option<Ids>,
    timeout: Duration,
) -> RunResult {
    let (start, _) = now();
    let Some((prog, args)) = argv.split_first() else {
        return RunResult {
            outcome: Outcome::SpawnFailed(ExecError::Empty.to_string()),
            output: String::new(),
            duration: Duration::ZERO,
        };
    };
    let mut cmd = TokioCommand::new(prog);
    cmd.args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own process group: a timeout kills the script and everything it started.
        .process_group(0)
        .kill_on_drop(true)
        .env_remove("IFS")
        .env_remove("LD_PRELOAD")
        .env_remove("LD_LIBRARY_PATH");
    if let Some(ids) = ids {
        cmd.gid(ids.gid);
        cmd.uid(ids.uid);
        if ids.uid != 0 {
            // The agent's environment is root's (and systemd's): a script dropped to another
            // user gets only what a login would give it, so nothing of ours steers it.
            cmd.env_clear().envs(minimal_env(ids.uid));
        }
    }
    // SAFETY: the closure runs between fork and exec and only calls prctl(2), which is
    // async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            // keepalived: "If keepalived dies, we want the script to die".
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return RunResult {
                outcome: Outcome::SpawnFailed(format!("{prog}: {e}")),
                output: String::new(),
                duration: now().0.saturating_duration_since(start),
            };
        }
    };
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    let mut guard = GroupGuard(pgid);
    let out = child.stdout.take().map(|p| tokio::spawn(drain(p)));
    let err = child.stderr.take().map(|p| tokio::spawn(drain(p)));

    let outcome = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(st)) => from_status(st),
        Ok(Err(e)) => Outcome::SpawnFailed(format!("wait: {e}")),
        Err(_) => {
            // vrrp_script_child_thread: SIGTERM the group, SIGKILL 2 s later if still there.
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGTERM);
            }
            if tokio::time::timeout(TERM_GRACE, child.wait())
                .await
                .is_err()
            {
                if let Some(pg) = pgid {
                    let _ = killpg(pg, Signal::SIGKILL);
                }
                let _ = child.wait().await;
            }
            // "make sure any children it created have died too".
            if let Some(pg) = pgid {
                let _ = killpg(pg, Signal::SIGKILL);
            }
            Outcome::TimedOut
        }
    };
    guard.0 = None;

    let mut output = String::new();
    for h in [out, err].into_iter().flatten() {
        let abort = h.abort_handle();
        match tokio::time::timeout(PIPE_GRACE, h).await {
            Ok(Ok(bytes)) => output.push_str(&String::from_utf8_lossy(&bytes)),
            _ => abort.abort(),
        }
    }
    RunResult {
        outcome,
        output,
        duration: now().0.saturating_duration_since(start),
    }
}

fn from_status(st: ExitStatus) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match (st.code(), st.signal()) {
        (Some(c), _) => Outcome::Exited(c),
        (None, Some(s)) => Outcome::Signaled(s),
        (None, None) => Outcome::Exited(-1),
    }
}

/// Read a pipe to its end, keeping the first [`OUTPUT_LIMIT`] bytes (draining the rest so the
/// child never blocks on a full pipe).
async fn drain(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => return kept,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
}
