//! The fault injector: draw a fault from the seeded PRNG, inject it, restore, wait for the
//! three nodes to converge back to the configured priorities.
//!
//! Every random draw is made before the fault runs and depends on nothing but the PRNG, so
//! the same seed gives the same sequence of faults (their timing is the machine's).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::RngExt;

use super::{INSTS, NODE_NAMES, Soak};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// SIGKILL of the VRRP process alone: the agent (its guardian survives), keepalived's
    /// VRRP child (its parent respawns it).
    KillDaemon,
    /// Every process of the node's namespace stopped then SIGKILLed (`crash_namespace`).
    Crash,
    /// SIGSTOP of the VRRP process for a random time, then SIGCONT (a hung daemon).
    Stop,
    /// The node's interface down for a random time.
    LinkDown,
    /// A few fast down/up cycles of the node's interface.
    Flap,
    /// VRRP (protocol 112) dropped on the bridge to and from the node's port.
    Partition,
    /// The priority of one instance changed in the file, then SIGHUP.
    Hup,
    /// The track script's flag file created: every instance of the node goes FAULT.
    TrackFail,
    /// `vrrp-agent handover` (agents only).
    Handover,
    /// SIGTERM, a pause, a new start.
    Restart,
}

pub const KINDS: [Kind; 10] = [
    Kind::KillDaemon,
    Kind::Crash,
    Kind::Stop,
    Kind::LinkDown,
    Kind::Flap,
    Kind::Partition,
    Kind::Hup,
    Kind::TrackFail,
    Kind::Handover,
    Kind::Restart,
];

impl Kind {
    pub fn key(self) -> &'static str {
        match self {
            Kind::KillDaemon => "kill_daemon",
            Kind::Crash => "crash",
            Kind::Stop => "stop",
            Kind::LinkDown => "link_down",
            Kind::Flap => "flap",
            Kind::Partition => "partition",
            Kind::Hup => "hup",
            Kind::TrackFail => "track_fail",
            Kind::Handover => "handover",
            Kind::Restart => "restart",
        }
    }

    /// How long after the fault the daemon can notice it at all: the track script runs once
    /// a second (plus its own start), everything else acts at once.
    pub fn detect(self) -> Duration {
        match self {
            Kind::TrackFail => Duration::from_millis(1300),
            _ => Duration::ZERO,
        }
    }
}

/// One injected fault, as the report and violations show it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FaultRec {
    pub index: usize,
    pub kind: Kind,
    pub node: &'static str,
    /// The parameters drawn (durations, priorities), for humans.
    pub params: String,
    /// Seconds since the faults began.
    pub at_s: f64,
    #[serde(skip)]
    pub t0: Instant,
    /// When the restore began (link up, SIGCONT, heal, restart...).
    #[serde(skip)]
    pub heal: Instant,
    /// When the nodes were seen converged again (None: never).
    #[serde(skip)]
    pub converged: Option<Instant>,
    pub converge_ms: Option<f64>,
    /// The allowance the convergence had from the heal.
    pub converge_bound_ms: f64,
}

/// What was drawn for one fault.
struct Plan {
    kind: Kind,
    node: usize,
    /// The fault's main duration (hold time, down time, pause).
    hold: Duration,
    /// Flap: the (down, up) pairs.
    flaps: Vec<(Duration, Duration)>,
    /// Hup: the instance and its new priority.
    hup: (usize, u8),
    /// The quiet time after convergence before the next fault.
    quiet: Duration,
}

fn ms(r: &mut impl rand::Rng, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(r.random_range(lo..=hi))
}

impl Soak {
    fn draw(&mut self) -> Plan {
        let r = &mut self.rng;
        let kind = KINDS[r.random_range(0..KINDS.len())];
        // keepalived has no handover command: the agents only.
        let node = if kind == Kind::Handover {
            r.random_range(0..2)
        } else {
            r.random_range(0..3)
        };
        let hold = match kind {
            Kind::Stop | Kind::LinkDown => ms(r, 100, 3000),
            Kind::Partition => ms(r, 500, 4000),
            Kind::TrackFail | Kind::Hup => ms(r, 1500, 4000),
            _ => ms(r, 100, 2000),
        };
        let flaps = (0..r.random_range(2..=6))
            .map(|_| (ms(r, 5, 100), ms(r, 5, 100)))
            .collect();
        // One of the node's instances: either below the next priority (the role moves) or a
        // small change that moves nothing.
        let k = r.random_range(0..INSTS.len());
        let own = INSTS[k].prio[node];
        let demote = r.random_bool(0.5);
        let new = if demote { 40 } else { own.saturating_add(5) };
        let quiet = ms(r, 200, 1000);
        Plan {
            kind,
            node,
            hold,
            flaps,
            hup: (k, new),
            quiet,
        }
    }

    /// Draws, injects and restores one fault, then waits for convergence.
    pub fn one_fault(&mut self) -> Result<()> {
        let p = self.draw();
        let n = p.node;
        let params = match p.kind {
            Kind::Flap => format!("{:?}", p.flaps),
            Kind::Hup => format!(
                "{} priority {} -> {} for {:?}",
                INSTS[p.hup.0].name, INSTS[p.hup.0].prio[n], p.hup.1, p.hold
            ),
            Kind::Handover | Kind::KillDaemon if self.nodes[n].keepalived => {
                "respawned by keepalived's parent".into()
            }
            _ => format!("{:?}", p.hold),
        };
        let t0 = Instant::now();
        let mut rec = FaultRec {
            index: self.faults.len(),
            kind: p.kind,
            node: NODE_NAMES[n],
            params,
            at_s: self.rel(t0),
            t0,
            heal: t0,
            converged: None,
            converge_ms: None,
            converge_bound_ms: 0.0,
        };
        println!(
            "soak: fault #{} at {:.1} s: {} on {} ({})",
            rec.index,
            rec.at_s,
            p.kind.key(),
            rec.node,
            rec.params
        );
        let (t0, heal, restarted) = self.inject(&p)?;
        // Handing back may restart an agent (when keepalived took the role over).
        let restarted = restarted || p.kind == Kind::Handover;
        rec.t0 = t0;
        rec.heal = heal;
        // Two master-down intervals of the slowest instance after the heal, plus what a
        // restarted daemon needs to start (load the XDP object, read its file) and the
        // track script's period, plus 1 s of scheduling tolerance on the shared machine.
        let slowest = INSTS
            .iter()
            .map(|i| i.master_down_max())
            .max()
            .unwrap_or_default();
        let mut bound = slowest * 2 + Duration::from_secs(1) + p.kind.detect();
        if restarted {
            bound += Duration::from_secs(3);
        }
        rec.converge_bound_ms = bound.as_secs_f64() * 1e3;
        // Wait well past the bound, so that a late convergence is measured, not guessed.
        let waited = self.wait_converged_since(heal, bound + Duration::from_secs(30));
        if let Ok(c) = waited {
            rec.converged = Some(c);
            rec.converge_ms = Some(c.saturating_duration_since(heal).as_secs_f64() * 1e3);
        }
        self.faults.push(rec);
        waited.map_err(|e| e.context("the nodes did not converge after the fault"))?;
        std::thread::sleep(p.quiet);
        Ok(())
    }

    fn wait_converged_since(&self, from: Instant, timeout: Duration) -> Result<Instant> {
        let left = (from + timeout).saturating_duration_since(Instant::now());
        self.wait_converged(left)
    }

    /// Injects the fault and restores; (instant of the fault, instant of the heal, whether a
    /// daemon was started again).
    fn inject(&mut self, p: &Plan) -> Result<(Instant, Instant, bool)> {
        let n = p.node;
        let name = self.nodes[n].name.clone();
        let host = self.nodes[n].host.clone();
        let ka = self.nodes[n].keepalived;
        let pause = |d: Duration| std::thread::sleep(d);
        Ok(match p.kind {
            Kind::KillDaemon => {
                let pid = self.vrrp_pid(n).context("no VRRP process")?;
                let t0 = Instant::now();
                kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
                if ka {
                    // keepalived's parent respawns the child: that is its restore.
                    (t0, t0, false)
                } else {
                    let _ = self.lab.wait_exit(&name, Duration::from_secs(5));
                    (t0, self.down_then_start(n, p.hold)?, true)
                }
            }
            Kind::Crash => {
                let t0 = vrrp_tests::crash_namespace(&host.ns)?;
                let _ = self.lab.wait_exit(&name, Duration::from_secs(5));
                (t0, self.down_then_start(n, p.hold)?, true)
            }
            Kind::Stop => {
                let pid = Pid::from_raw(self.vrrp_pid(n).context("no VRRP process")? as i32);
                let t0 = Instant::now();
                kill(pid, Signal::SIGSTOP)?;
                pause(p.hold);
                let heal = Instant::now();
                kill(pid, Signal::SIGCONT)?;
                (t0, heal, false)
            }
            Kind::LinkDown => {
                let t0 = Instant::now();
                self.lab.link(&host, false)?;
                pause(p.hold);
                let heal = Instant::now();
                self.lab.link(&host, true)?;
                (t0, heal, false)
            }
            Kind::Flap => {
                let t0 = Instant::now();
                let mut heal = t0;
                for (down, up) in &p.flaps {
                    self.lab.link(&host, false)?;
                    pause(*down);
                    heal = Instant::now();
                    self.lab.link(&host, true)?;
                    pause(*up);
                }
                (t0, heal, false)
            }
            Kind::Partition => {
                let t0 = Instant::now();
                self.partition(&host.port, true)?;
                pause(p.hold);
                let heal = Instant::now();
                self.partition(&host.port, false)?;
                (t0, heal, false)
            }
            Kind::Hup => {
                let (k, prio) = p.hup;
                self.nodes[n].prio_override[k] = Some(prio);
                self.rewrite_conf(n)?;
                let t0 = Instant::now();
                self.lab.signal(&name, Signal::SIGHUP)?;
                pause(p.hold);
                self.nodes[n].prio_override[k] = None;
                self.rewrite_conf(n)?;
                let heal = Instant::now();
                self.lab.signal(&name, Signal::SIGHUP)?;
                (t0, heal, false)
            }
            Kind::TrackFail => {
                let flag = self.nodes[n].flag.clone();
                let t0 = Instant::now();
                std::fs::write(&flag, "down\n")?;
                pause(p.hold);
                let heal = Instant::now();
                std::fs::remove_file(&flag)?;
                (t0, heal, false)
            }
            Kind::Handover => {
                let t0 = Instant::now();
                // Refused when the agent is master of nothing; that is an answer too.
                let _ = self.handover(n, None);
                pause(p.hold);
                let heal = Instant::now();
                self.hand_back()?;
                (t0, heal, false)
            }
            Kind::Restart => {
                let t0 = Instant::now();
                self.lab.signal(&name, Signal::SIGTERM)?;
                if self.lab.wait_exit(&name, Duration::from_secs(15)).is_err() {
                    self.notes
                        .push(format!("{name} did not exit within 15 s of SIGTERM"));
                }
                (t0, self.down_then_start(n, p.hold)?, true)
            }
        })
    }

    /// Node `n` stays down for `hold`, then its daemon starts afresh; the instant of the start.
    fn down_then_start(&mut self, n: usize, hold: Duration) -> Result<Instant> {
        std::thread::sleep(hold);
        self.wipe(n)?;
        let heal = Instant::now();
        self.start_daemon(n)?;
        Ok(heal)
    }

    /// SIGKILLs whatever is left in node `n`'s namespace before a new start (a dead agent's
    /// guardian that has not finished, keepalived's parent), as systemd's stop would, and
    /// notes anything that outlived its daemon by more than 3 s.
    fn wipe(&mut self, n: usize) -> Result<()> {
        let ns = self.nodes[n].host.ns.clone();
        let deadline = Instant::now() + Duration::from_secs(3);
        while !vrrp_tests::ns_pids(&ns).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = vrrp_tests::ns_pids(&ns);
        if !left.is_empty() && !self.nodes[n].keepalived {
            self.notes.push(format!(
                "fault #{}: {} process(es) of node {} outlived the agent by 3 s: {:?}",
                self.faults.len(),
                left.len(),
                NODE_NAMES[n],
                left.iter()
                    .map(|p| super::leaks::cmdline(*p))
                    .collect::<Vec<_>>()
            ));
        }
        for p in left {
            let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
        }
        let name = self.nodes[n].name.clone();
        let _ = self.lab.wait_exit(&name, Duration::from_secs(5));
        Ok(())
    }

    /// The partition's nft table in the bridge namespace: protocol 112 to and from `port`.
    fn partition(&self, port: &str, cut: bool) -> Result<()> {
        let script = if cut {
            format!(
                "nft add table bridge vx_soak && \
                 nft add chain bridge vx_soak c '{{ type filter hook forward priority 0; policy accept; }}' && \
                 nft add rule bridge vx_soak c iifname {port} ip protocol 112 drop && \
                 nft add rule bridge vx_soak c oifname {port} ip protocol 112 drop && \
                 nft add rule bridge vx_soak c iifname {port} ip6 nexthdr 112 drop && \
                 nft add rule bridge vx_soak c oifname {port} ip6 nexthdr 112 drop"
            )
        } else {
            "nft delete table bridge vx_soak".into()
        };
        self.lab.sh(&self.lab.bridge_ns, &script)?;
        Ok(())
    }

    /// `vrrp-agent handover [INSTANCE]` on agent node `n`.
    fn handover(&self, n: usize, instance: Option<&str>) -> Result<()> {
        let sock = self.lab.path(&format!("{}.sock", self.nodes[n].name));
        let mut c = std::process::Command::new(vrrp_tests::agent_bin());
        c.arg("handover");
        if let Some(i) = instance {
            c.arg(i);
        }
        let out = c.arg("--socket").arg(&sock).output()?;
        if !out.status.success() {
            bail!(
                "handover on {}: {}{}",
                NODE_NAMES[n],
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// After a handover the old master does not preempt back: whichever agent holds an
    /// instance it does not own hands that instance on, until the owners hold all of theirs
    /// (at most a few rounds: each hands the role to a higher-priority backup or the owner).
    /// keepalived cannot hand over: when it holds an agent's instance, the owner is restarted
    /// once (a fresh agent preempts, as it would after a reboot) and given the instance's
    /// master-down interval to do so before the next round looks again.
    fn hand_back(&mut self) -> Result<()> {
        let mut restarted = [false; 3];
        for _ in 0..3 {
            let mut moved = false;
            let mut settle = Duration::from_millis(1500);
            for (k, i) in INSTS.iter().enumerate() {
                let owner = i.owner();
                let Some(holder) = self.answerer(k) else {
                    continue;
                };
                if holder == owner {
                    continue;
                }
                moved = true;
                if !self.nodes[holder].keepalived {
                    let _ = self.handover(holder, Some(i.name));
                } else if !restarted[owner] {
                    restarted[owner] = true;
                    let name = self.nodes[owner].name.clone();
                    self.lab.signal(&name, Signal::SIGTERM)?;
                    let _ = self.lab.wait_exit(&name, Duration::from_secs(15));
                    self.wipe(owner)?;
                    self.start_daemon(owner)?;
                    self.notes.push(format!(
                        "fault #{}: keepalived held {} after the handover: {} restarted",
                        self.faults.len(),
                        i.name,
                        NODE_NAMES[owner]
                    ));
                    settle = settle.max(i.master_down_max() + Duration::from_secs(2));
                }
            }
            if !moved {
                break;
            }
            std::thread::sleep(settle);
        }
        Ok(())
    }

    /// The node that answered the latest answered probe of instance `k`.
    fn answerer(&self, k: usize) -> Option<usize> {
        let log = self.probers[k].log.lock().ok()?;
        let last = log.answered.iter().rev().take(50).find(|a| **a != 0)?;
        self.nodes.iter().position(|n| log.bit(n.mac) & last != 0)
    }
}
