//! The guardian: a tiny child process that outlives a crashed agent.
//!
//! keepalived killed with SIGKILL leaves its VIPs bound and its peers wait a whole
//! Master_Down_Interval. We do better: the agent keeps the guardian told, over a pipe, what it
//! would have to say on leaving (the priority 0 adverts of each instance it is MASTER for, and
//! the VIPs bound for it). When the pipe reaches end-of-file without a clean goodbye, the agent
//! is gone: the guardian sends those priority 0 adverts (a backup takes over after its
//! Skew_Time instead of a Master_Down_Interval), unbinds the VIPs, and exits. It holds no
//! other state, so it cannot make a wrong decision of its own.
//!
//! The guardian ignores SIGTERM/SIGINT/SIGHUP: a stop of the whole service (systemd signals
//! every process of the unit) must let the agent hand over cleanly; the agent then says
//! goodbye and the guardian exits.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::process::{Child, ChildStdin, Command, Stdio};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::netlink::{Netlink, VipSpec};
use super::sched::{self, RealTime};
use super::socket::AdvertSocket;

/// The hidden command-line subcommand that runs [`run`].
pub const SUBCOMMAND: &str = "guardian";
/// The inherited `DEATH_RING` descriptors, comma-separated: readable once the agent is
/// SIGKILLed (the XDP object's tracepoint), which is milliseconds before the pipe's end.
const DEATH_FDS_ENV: &str = "VRRP_AGENT_GUARDIAN_DEATH_FDS";

#[derive(Debug, Error)]
pub enum GuardianError {
    #[error("cannot start the guardian process ({exe}): {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("the guardian process is gone: {0}")]
    Gone(std::io::Error),
}

pub use crate::proto::node::Armed;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Msg {
    Arm(Armed),
    Disarm(String),
    /// The agent exits cleanly: nothing to do.
    Goodbye,
}

/// The agent's end of the pipe.
#[derive(Debug)]
pub struct Guardian {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Guardian {
    /// Starts `<our executable> guardian` with a pipe on its standard input.
    pub fn spawn(rt: RealTime, death_rings: &[BorrowedFd<'_>]) -> Result<Self, GuardianError> {
        // /proc/self/exe still works if the binary was replaced by an upgrade.
        let exe = std::path::PathBuf::from("/proc/self/exe");
        // Inherited copies of the `DEATH_RING` descriptors (dup clears close-on-exec); ours
        // are closed again once the child has them.
        let inherited: Vec<OwnedFd> = death_rings
            .iter()
            .filter_map(|fd| {
                // SAFETY: dup of a valid descriptor; the result is checked and owned below.
                let raw = unsafe { libc::dup(fd.as_raw_fd()) };
                // SAFETY: a new descriptor nothing else owns.
                (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) })
            })
            .collect();
        let list: Vec<String> = inherited
            .iter()
            .map(|f| f.as_raw_fd().to_string())
            .collect();
        let mut child = Command::new(&exe)
            .arg(SUBCOMMAND)
            .env(sched::GUARDIAN_ENV, rt.to_env())
            .env(DEATH_FDS_ENV, list.join(","))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|source| GuardianError::Spawn {
                exe: exe.display().to_string(),
                source,
            })?;
        drop(inherited);
        let stdin = child.stdin.take();
        Ok(Self { child, stdin })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn send(&mut self, msg: &Msg) -> Result<(), GuardianError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(GuardianError::Gone(std::io::ErrorKind::BrokenPipe.into()));
        };
        // One short line into a pipe the guardian drains at once: never blocks in practice.
        let mut line = serde_json::to_vec(msg).map_err(|e| GuardianError::Gone(e.into()))?;
        line.push(b'\n');
        stdin.write_all(&line).map_err(GuardianError::Gone)
    }

    pub fn arm(&mut self, armed: Armed) -> Result<(), GuardianError> {
        self.send(&Msg::Arm(armed))
    }

    pub fn disarm(&mut self, key: &str) -> Result<(), GuardianError> {
        self.send(&Msg::Disarm(key.to_string()))
    }

    /// Clean exit: tell the guardian there is nothing to do, and reap it.
    pub fn goodbye(mut self) {
        let _ = self.send(&Msg::Goodbye);
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// What the guardian does when the agent is gone, from the messages it read.
#[derive(Debug, Default, PartialEq, Eq)]
struct Ledger {
    armed: BTreeMap<String, Armed>,
    goodbye: bool,
}

impl Ledger {
    fn apply(&mut self, line: &str) {
        match serde_json::from_str::<Msg>(line) {
            Ok(Msg::Arm(a)) => {
                self.armed.insert(a.key.clone(), a);
            }
            Ok(Msg::Disarm(k)) => {
                self.armed.remove(&k);
            }
            Ok(Msg::Goodbye) => self.goodbye = true,
            Err(e) => eprintln!("vrrp-agent guardian: ignoring a bad message: {e}"),
        }
    }
}

/// The guardian process: reads the agent's messages until end-of-file, then acts.
pub fn run() -> anyhow::Result<()> {
    // SAFETY: setting signal dispositions to SIG_IGN has no preconditions.
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    // The agent's scheduling does not pass through exec (SCHED_RESET_ON_FORK): take it again, so
    // the priority 0 leaves as soon as the agent is gone, whatever else the host runs.
    if let Some(rt) = std::env::var(sched::GUARDIAN_ENV)
        .ok()
        .and_then(|v| RealTime::from_env(&v))
        && let Err(e) = sched::make_realtime(rt)
    {
        // A warning, as the agent's own fallback: priority 0 after a crash may then wait
        // behind ordinary work on a busy host.
        tracing::warn!(
            "guardian: {e}: running SCHED_OTHER, so a busy host can delay the priority 0 advert"
        );
    }
    // Everything the release needs is made ahead (runtime, sockets): after the agent dies only
    // the sends are left.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let _enter = rt.enter();
    let mut ledger = Ledger::default();
    let mut sockets: BTreeMap<String, (String, IpAddr, AdvertSocket)> = BTreeMap::new();
    let death: Vec<OwnedFd> = std::env::var(DEATH_FDS_ENV)
        .unwrap_or_default()
        .split(',')
        .filter_map(|n| n.parse::<i32>().ok())
        .filter(|n| *n > 2)
        // SAFETY: descriptors the agent left open for us on purpose; nothing else uses them.
        .map(|n| unsafe { OwnedFd::from_raw_fd(n) })
        .collect();
    // Our own buffered reader on the pipe, so we can tell whether whole lines wait in it.
    let pipe = std::io::stdin().as_fd().try_clone_to_owned()?;
    let mut lines = std::io::BufReader::new(std::fs::File::from(pipe));
    let mut line = String::new();
    'read: loop {
        if !death.is_empty() && wait_input(&death) == Wake::Killed {
            break;
        }
        // The agent writes whole lines: read what is buffered before polling again.
        loop {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) | Err(_) => break 'read,
                Ok(_) => {
                    ledger.apply(line.trim_end());
                    sockets.retain(|k, _| ledger.armed.contains_key(k));
                    for a in ledger.armed.values() {
                        let fresh = sockets
                            .get(&a.key)
                            .is_some_and(|(i, s, _)| *i == a.ifname && *s == a.src);
                        if !fresh
                            && let Ok(sock) = AdvertSocket::open(&a.ifname, a.ifindex, a.src, false)
                        {
                            sockets.insert(a.key.clone(), (a.ifname.clone(), a.src, sock));
                        }
                    }
                }
            }
            if lines.buffer().is_empty() {
                break;
            }
        }
    }
    if ledger.goodbye || ledger.armed.is_empty() {
        return Ok(());
    }
    let sockets = sockets.into_iter().map(|(k, (_, _, s))| (k, s)).collect();
    rt.block_on(release(ledger.armed.into_values().collect(), sockets));
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum Wake {
    /// The pipe has data or reached its end.
    Input,
    /// A `DEATH_RING` became readable: the agent was SIGKILLed.
    Killed,
}

/// Blocks until standard input or one of the death rings is readable.
fn wait_input(death: &[OwnedFd]) -> Wake {
    let mut fds: Vec<libc::pollfd> = std::iter::once(0)
        .chain(death.iter().map(|f| f.as_raw_fd()))
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `fds` is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // Cannot poll: fall back to reading the pipe (its end still tells us).
            return Wake::Input;
        }
        if fds[1..].iter().any(|p| p.revents & libc::POLLIN != 0) {
            return Wake::Killed;
        }
        return Wake::Input;
    }
}

/// The agent died while MASTER: priority 0 first (that is what moves the VIP fast), then unbind.
async fn release(armed: Vec<Armed>, mut sockets: BTreeMap<String, AdvertSocket>) {
    for a in &armed {
        let sock = match sockets.remove(&a.key) {
            Some(s) => Ok(s),
            None => AdvertSocket::open(&a.ifname, a.ifindex, a.src, false),
        };
        match sock {
            Ok(sock) => {
                for (dst, msg) in &a.release {
                    if let Err(e) = sock.send(*dst, msg, a.ttl).await {
                        eprintln!(
                            "vrrp-agent guardian: {}: cannot send priority 0: {e}",
                            a.key
                        );
                    }
                }
            }
            Err(e) => eprintln!("vrrp-agent guardian: {}: {e}", a.key),
        }
    }
    match Netlink::new() {
        Ok(nl) => {
            for a in &armed {
                for (ifindex, addr, prefix) in &a.vips {
                    let _ = nl
                        .del_address(*ifindex, &VipSpec::new(*addr, *prefix))
                        .await;
                }
            }
        }
        Err(e) => eprintln!("vrrp-agent guardian: cannot unbind the VIPs: {e}"),
    }
    let names: Vec<&str> = armed.iter().map(|a| a.key.as_str()).collect();
    eprintln!(
        "vrrp-agent guardian: the agent died while MASTER of {}: sent priority 0 and unbound the VIPs",
        names.join(", ")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn armed(key: &str) -> Armed {
        Armed {
            key: key.into(),
            ifname: "eth0".into(),
            ifindex: 2,
            src: "192.0.2.1".parse().unwrap_or_else(|_| unreachable!()),
            release: vec![(
                "224.0.0.18".parse().unwrap_or_else(|_| unreachable!()),
                vec![0x31, 0x33, 0, 1],
            )],
            ttl: 255,
            vips: vec![(
                2,
                "192.0.2.3".parse().unwrap_or_else(|_| unreachable!()),
                24,
            )],
        }
    }

    fn line(m: &Msg) -> String {
        serde_json::to_string(m).unwrap_or_default()
    }

    #[test]
    fn ledger_tracks_arm_disarm_goodbye() {
        let mut l = Ledger::default();
        l.apply(&line(&Msg::Arm(armed("a"))));
        l.apply(&line(&Msg::Arm(armed("b"))));
        l.apply(&line(&Msg::Disarm("a".into())));
        l.apply("not json");
        assert_eq!(l.armed.keys().collect::<Vec<_>>(), vec!["b"]);
        assert!(!l.goodbye);
        // Arming again replaces.
        let mut b2 = armed("b");
        b2.ifindex = 7;
        l.apply(&line(&Msg::Arm(b2.clone())));
        assert_eq!(l.armed.get("b"), Some(&b2));
        l.apply(&line(&Msg::Goodbye));
        assert!(l.goodbye);
    }
}
