//! `cargo xtask soak`: one VIP owner, proved by randomized faults (issue 16).
//!
//! Three nodes on one bridged segment (`a` and `b` run vrrp-agent, `k` Debian's keepalived)
//! carry five instances; a client namespace probes every VIP every 1 ms (ARP / Neighbor
//! Solicitation, `bench::probe`). A fault injector driven by a seeded PRNG hits one node at a
//! time, restores it and waits for convergence; `soak::check` reads the probe logs for the
//! invariants (never two answerers outside a partition, bounded takeover gaps, convergence
//! after each heal) and the end checks look for leaked processes, namespaces, nft tables and
//! BPF links. The fault sequence depends only on the seed, so `--seed S` replays a run.

mod check;
mod fault;
mod leaks;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use rand::SeedableRng;
use rand::rngs::StdRng;
use vrrp_tests::{Host, Instance, Lab, keepalived_conf, parse_mac};

use crate::bench::probe::{Prober, Target};
use crate::build::{self, BuildOpts};
use crate::deps;
use crate::util;

pub use check::Report;

#[derive(Args, Debug)]
pub struct SoakOpts {
    /// How long to inject faults.
    #[arg(long, default_value_t = 5)]
    pub minutes: u64,
    /// PRNG seed (a random one, printed, if absent): the same seed replays the same faults.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use the dev-profile agent.
    #[arg(long)]
    pub debug: bool,
}

/// The probe period: what a client with a 1 ms ARP timer sees.
pub const PERIOD: Duration = Duration::from_millis(1);

/// One VRRP instance of the soak, the same on all three nodes except for the priority.
pub struct Inst {
    pub name: &'static str,
    pub vrid: u8,
    pub version: u8,
    pub advert: Duration,
    pub vip: &'static str,
    pub prefix: u8,
    /// Priority on nodes a, b, k: the highest is the owner the run converges to.
    pub prio: [u8; 3],
}

/// Each node owns a VRRPv3 instance and the VRRPv2 ownership is split between an agent and
/// keepalived, so every fault kind hits ours and keepalived's node as the owner, at both
/// versions (the report compares them).
pub const INSTS: [Inst; 5] = [
    Inst {
        name: "VI_A3",
        vrid: 41,
        version: 3,
        advert: Duration::from_millis(100),
        vip: "192.0.2.41",
        prefix: 24,
        prio: [150, 100, 50],
    },
    Inst {
        name: "VI_B6",
        vrid: 42,
        version: 3,
        advert: Duration::from_millis(100),
        vip: "2001:db8::42",
        prefix: 64,
        prio: [100, 150, 50],
    },
    Inst {
        name: "VI_K3",
        vrid: 43,
        version: 3,
        advert: Duration::from_millis(100),
        vip: "192.0.2.43",
        prefix: 24,
        prio: [100, 50, 150],
    },
    Inst {
        name: "VI_A2",
        vrid: 44,
        version: 2,
        advert: Duration::from_secs(1),
        vip: "192.0.2.44",
        prefix: 24,
        prio: [150, 50, 100],
    },
    Inst {
        name: "VI_K2",
        vrid: 45,
        version: 2,
        advert: Duration::from_secs(1),
        vip: "192.0.2.45",
        prefix: 24,
        prio: [100, 50, 150],
    },
];

impl Inst {
    /// The node index with the highest priority.
    pub fn owner(&self) -> usize {
        (0..3).max_by_key(|&i| self.prio[i]).unwrap_or(0)
    }

    /// RFC 5798 master-down interval of a backup at `prio`: 3 adverts plus its skew.
    pub fn master_down(&self, prio: u8) -> Duration {
        self.advert * 3 + self.advert * u32::from(256 - u16::from(prio)) / 256
    }

    /// The longest master-down interval of any backup.
    pub fn master_down_max(&self) -> Duration {
        self.master_down(*self.prio.iter().min().unwrap_or(&1))
    }
}

pub const NODE_NAMES: [&str; 3] = ["a", "b", "k"];

/// A node: its host and the daemon currently started on it.
pub struct Node {
    pub host: Host,
    pub mac: [u8; 6],
    pub keepalived: bool,
    /// The lab process name of the current daemon (empty: none running).
    pub name: String,
    starts: u32,
    /// A priority that differs from `INSTS` (a SIGHUP fault), per instance.
    pub prio_override: [Option<u8>; INSTS.len()],
    /// The track script fails while this file exists.
    pub flag: PathBuf,
}

pub struct Soak {
    pub lab: Lab,
    pub nodes: Vec<Node>,
    pub probers: Vec<Prober>,
    pub rng: StdRng,
    pub seed: u64,
    pub start: Instant,
    /// Every fault so far, in order.
    pub faults: Vec<fault::FaultRec>,
    pub notes: Vec<String>,
    pub samples: check::ProcSamples,
}

pub fn main(opts: &SoakOpts) -> Result<()> {
    if !util::is_root() {
        bail!("the soak needs root (network namespaces, XDP): run `sudo -E cargo xtask soak`");
    }
    deps::ensure_debian_packages(deps::TEST_PACKAGES)?;
    let agent = build::build_all(&BuildOpts { debug: opts.debug })?;
    let seed = opts.seed.unwrap_or_else(random_seed);
    let report = run(&agent, Duration::from_secs(opts.minutes * 60), seed)?;
    // keepalived's violations are the baseline the report compares against; ours fail.
    if report.ours() > 0 {
        bail!(
            "{} violation(s) of vrrp-agent; replay with `cargo xtask soak --minutes {} --seed {seed}`",
            report.ours(),
            opts.minutes
        );
    }
    Ok(())
}

pub fn random_seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.as_nanos() as u64 ^ u64::from(std::process::id()).rotate_left(32)
}

/// Runs the soak for `duration` with `agent` (release or debug build) and `seed`; prints the
/// report, writes it under `target/soak/` and returns it. An error means the soak itself
/// could not run (the lab, a prober, no convergence at all), not a violation.
pub fn run(agent: &Path, duration: Duration, seed: u64) -> Result<Report> {
    // SAFETY: set before any thread of ours reads the environment (the lab reads these).
    unsafe {
        std::env::set_var("VRRP_AGENT_BIN", agent);
        std::env::set_var("VRRP_EBPF_OBJ", build::ebpf_object());
    }
    println!(
        "soak: seed {seed}, {} s of faults, agent {}",
        duration.as_secs(),
        agent.display()
    );
    let _rt = Realtime::enter();
    let links_before = leaks::bpf_link_ids();
    let mut soak = Soak::new(seed)?;
    let tag = soak.lab.tag.clone();
    let dir = soak.lab.dir.clone();
    let result = soak.drive(duration);
    let mut report = soak.report(duration);
    if let Err(e) = &result {
        report.error = Some(format!("{e:#}"));
    }
    // Clean exits: agents remove their nft table and XDP link; then the lab goes.
    report.leaks.extend(soak.shutdown());
    drop(soak);
    report
        .leaks
        .extend(leaks::after_lab(&tag, &dir, &links_before));
    report.print();
    let path = report.write()?;
    println!("soak: report written to {}", path.display());
    if let Some(e) = &report.error {
        bail!("the soak stopped early: {e}");
    }
    Ok(report)
}

/// The controller thread shares the probe logs' mutexes with the real-time prober threads: if
/// it were preempted while holding one (the machine is shared and busy), the probers would
/// stall behind it and replies would be matched late, which reads as gaps that no client saw.
/// So it runs real-time too, below the probers, for the run only; `SCHED_RESET_ON_FORK` keeps
/// the daemons it starts (the agents, keepalived) on their own policy.
struct Realtime;

impl Realtime {
    fn enter() -> Self {
        Self::set(libc::SCHED_FIFO | libc::SCHED_RESET_ON_FORK, 40);
        Self
    }

    fn set(policy: i32, prio: i32) {
        let p = libc::sched_param {
            sched_priority: prio,
        };
        // SAFETY: p is valid; pid 0 is the calling thread.
        if unsafe { libc::sched_setscheduler(0, policy, &p) } != 0 {
            eprintln!(
                "soak: cannot set the controller's scheduling ({}): gaps may include probe stalls",
                std::io::Error::last_os_error()
            );
        }
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        Self::set(libc::SCHED_OTHER, 0);
    }
}

impl Soak {
    fn new(seed: u64) -> Result<Self> {
        let mut lab = Lab::new("soak")?;
        let mut nodes = Vec::new();
        for (i, n) in NODE_NAMES.iter().enumerate() {
            let host = lab.host(
                n,
                &[
                    &format!("192.0.2.{}/24", i + 1),
                    &format!("2001:db8::{}/64", i + 1),
                ],
            )?;
            nodes.push(Node {
                mac: parse_mac(&host.mac)?,
                keepalived: i == 2,
                flag: lab.path(&format!("{n}.fail")),
                host,
                name: String::new(),
                starts: 0,
                prio_override: [None; INSTS.len()],
            });
        }
        let client = lab.host("client", &["192.0.2.10/24", "2001:db8::10/64"])?;
        let mut probers = Vec::new();
        for i in &INSTS {
            // 20 sender addresses: replies name their probe over 20 ms of reordering.
            probers.push(Prober::start_target(
                &client,
                PERIOD,
                20,
                Target::parse(i.vip)?,
            )?);
        }
        let mut s = Self {
            lab,
            nodes,
            probers,
            rng: StdRng::seed_from_u64(seed),
            seed,
            start: Instant::now(),
            faults: Vec::new(),
            notes: Vec::new(),
            samples: check::ProcSamples::default(),
        };
        // Backups first, so the owners start into a listening segment.
        for n in [1, 0, 2] {
            s.start_daemon(n)?;
        }
        s.wait_converged(Duration::from_secs(60))
            .context("the three nodes did not converge at start")?;
        s.start = Instant::now();
        Ok(s)
    }

    /// The configuration of node `n` with its current priorities.
    pub fn conf(&self, n: usize) -> String {
        let node = &self.nodes[n];
        let insts: Vec<Instance> = INSTS
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let mut x = Instance::seed("BACKUP", node.prio_override[k].unwrap_or(i.prio[n]));
                x.name = i.name.into();
                x.vrid = i.vrid;
                x.version = i.version;
                x.advert_int = format!("{}", i.advert.as_secs_f64());
                x.auth_pass = (i.version == 2).then(|| "soak".into());
                x.vips = vec![format!("{}/{} dev eth0", i.vip, i.prefix)];
                x
            })
            .collect();
        let mut c = keepalived_conf(NODE_NAMES[n], &insts);
        // No weight: a failing check puts every instance of the node into FAULT.
        let script = format!(
            "vrrp_script chk_flag {{\n    script \"/usr/bin/test ! -e {}\"\n    interval 1\n    fall 1\n    rise 1\n}}\n",
            node.flag.display()
        );
        c = c.replacen("vrrp_instance", &format!("{script}vrrp_instance"), 1);
        c.replace(
            "    }\n}\n",
            "    }\n    track_script {\n        chk_flag\n    }\n}\n",
        )
    }

    pub fn start_daemon(&mut self, n: usize) -> Result<()> {
        let conf = self.conf(n);
        let node = &mut self.nodes[n];
        node.starts += 1;
        let name = format!("{}{}", NODE_NAMES[n], node.starts);
        let host = node.host.clone();
        if node.keepalived {
            self.lab.keepalived(&host, &name, &conf)?;
        } else {
            self.lab.agent_conf(&host, &name, &conf, &[])?;
        }
        self.nodes[n].name = name;
        Ok(())
    }

    /// Rewrites node `n`'s configuration file in place (for SIGHUP).
    pub fn rewrite_conf(&self, n: usize) -> Result<()> {
        let path = self.lab.path(&format!("{}.conf", self.nodes[n].name));
        std::fs::write(&path, self.conf(n)).with_context(|| format!("writing {}", path.display()))
    }

    /// The PID of node `n`'s VRRP process: the agent, or keepalived's VRRP child.
    pub fn vrrp_pid(&mut self, n: usize) -> Option<u32> {
        let name = self.nodes[n].name.clone();
        if self.nodes[n].keepalived {
            // Right after a kill the parent is still respawning the child, and the pid file
            // names the dead one for a moment: wait for a live process.
            let f = self.lab.path(&format!("{name}.vrrp.pid"));
            let until = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let pid: Option<u32> = std::fs::read_to_string(&f)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                let live = pid.is_some_and(|p| {
                    std::fs::read_to_string(format!("/proc/{p}/stat"))
                        .ok()
                        .and_then(|st| st.rsplit(") ").next().map(|r| !r.starts_with('Z')))
                        .unwrap_or(false)
                });
                if live || std::time::Instant::now() >= until {
                    return pid.filter(|_| live);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            self.lab.pid(&name)
        }
    }

    /// Whether every VIP is answered by its owner alone over the last 300 ms.
    pub fn converged(&self) -> Result<bool> {
        for (k, i) in INSTS.iter().enumerate() {
            if self.probers[k].failed() {
                bail!("the prober of {} stopped", i.vip);
            }
            let log = self.probers[k]
                .log
                .lock()
                .map_err(|_| anyhow::anyhow!("probe log poisoned"))?;
            let owner = self.nodes[i.owner()].mac;
            if !crate::bench::probe::settled(&log, owner, Duration::from_millis(300), PERIOD) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Waits for convergence; the instant it was first seen (the end of the 300 ms span).
    pub fn wait_converged(&self, timeout: Duration) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.converged()? {
                return Ok(Instant::now() - Duration::from_millis(300));
            }
            if Instant::now() > deadline {
                bail!("no convergence within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Seconds since the faults began (for the fault list and violations).
    pub fn rel(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64()
    }

    fn drive(&mut self, duration: Duration) -> Result<()> {
        while self.start.elapsed() < duration {
            self.one_fault()?;
            self.samples.sample(&self.nodes);
        }
        Ok(())
    }

    /// Stops every daemon the clean way and checks what they leave in their namespaces.
    fn shutdown(&mut self) -> Vec<String> {
        let mut left = Vec::new();
        for n in 0..3 {
            let name = self.nodes[n].name.clone();
            if name.is_empty() {
                continue;
            }
            let _ = self.lab.signal(&name, nix::sys::signal::Signal::SIGTERM);
            if self.lab.wait_exit(&name, Duration::from_secs(15)).is_err() {
                left.push(format!("{name} did not exit within 15 s of SIGTERM"));
            }
        }
        std::thread::sleep(Duration::from_millis(500));
        for node in &self.nodes {
            left.extend(leaks::node_leftovers(&self.lab, node));
        }
        left
    }
}
