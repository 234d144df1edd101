//! Failover rows: what a client probing the VIP with ARP every millisecond sees when the
//! master fails (link down, crash, the daemon alone killed) or steps down (SIGTERM, the
//! `handover` command), vrrp-agent beside keepalived in the same lab, master priority 100,
//! backup 50.
//!
//! VRRPv3 at 10 ms adverts runs one lab, repetition after repetition. advert_int 1 (VRRPv2,
//! the seed's setup) takes seconds per repetition, so it runs one lab per repetition, all in
//! parallel and in lock-step (a barrier before each scenario), each its own bridge.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};
use vrrp_tests::{Host, Instance, Lab, in_netns, keepalived_conf, ns_pids, parse_mac};

use super::probe::{Prober, Sample, analyse, settled, spawn_in_netns};
use super::{BenchOpts, Row, blast, flood_frames, flood_frames_v2, flood_instance, num_cpus};

const MASTER_PRIO: u8 = 100;
const BACKUP_PRIO: u8 = 50;
const VIP_CIDR: &str = "192.0.2.3/24";

/// One advert setting and the waits that go with it.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    pub key: &'static str,
    pub label: &'static str,
    pub version: u8,
    pub advert: &'static str,
    pub interval: Duration,
    /// How long after the fault the client is watched.
    pub window: Duration,
    /// Restored = every probe over this span answered by the master alone.
    pub settle_span: Duration,
    /// Then this much longer, so the backup's timers run from several adverts.
    pub settle: Duration,
    pub restore_timeout: Duration,
    /// How long keepalived's parent gets to respawn its VRRP child and win back the VIP
    /// before the master is restarted.
    pub respawn_timeout: Duration,
    /// How long the load runs before the fault.
    pub load_lead: Duration,
    /// The client's ARP probe interval.
    pub probe_period: Duration,
    /// Sender IPs the probes cycle through (see probe.rs): 100 ms of probes.
    pub probe_residues: u8,
}

pub const V3_10MS: Setting = Setting {
    key: "v3_10ms",
    label: "VRRPv3 10 ms",
    version: 3,
    advert: "0.01",
    interval: Duration::from_millis(10),
    window: Duration::from_millis(300),
    settle_span: Duration::from_millis(100),
    settle: Duration::from_millis(100),
    restore_timeout: Duration::from_secs(20),
    respawn_timeout: Duration::from_secs(3),
    load_lead: Duration::from_millis(200),
    probe_period: Duration::from_millis(1),
    probe_residues: 100,
};

pub const V2_1S: Setting = Setting {
    key: "v2_1s",
    label: "VRRPv2 1 s",
    version: 2,
    advert: "1",
    interval: Duration::from_secs(1),
    window: Duration::from_secs(5),
    settle_span: Duration::from_millis(500),
    settle: Duration::from_millis(1500),
    // Many labs start their agents at once (each loads and verifies its XDP program).
    restore_timeout: Duration::from_secs(90),
    respawn_timeout: Duration::from_secs(10),
    load_lead: Duration::from_millis(500),
    // Twenty labs probe at once; 5 ms resolves outages of seconds and keeps the machine free.
    probe_period: Duration::from_millis(5),
    // 50 ms of probes: twenty labs' neighbour entries must fit the kernel's table.
    probe_residues: 10,
};

impl Setting {
    /// Skew_Time of the backup (RFC 9568 §6.1; RFC 3768 uses the same fraction of a second).
    pub fn skew_ms(&self) -> f64 {
        f64::from(256 - u16::from(BACKUP_PRIO)) / 256.0 * self.interval.as_secs_f64() * 1e3
    }

    /// Master_Down_Interval: the earliest a backup may take over from a silent master.
    pub fn floor_ms(&self) -> f64 {
        3.0 * self.interval.as_secs_f64() * 1e3 + self.skew_ms()
    }

    /// The soonest after a fault a backup can take over by failover: the fault comes up to
    /// one interval after the last advert; less a quarter interval for the jitter of a busy
    /// machine's timers. Sooner is a takeover for another reason (split brain, bogus advert).
    pub fn earliest_ms(&self) -> f64 {
        self.floor_ms() - 1.25 * self.interval.as_secs_f64() * 1e3
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Impl {
    Agent,
    Keepalived,
}

impl Impl {
    fn key(self) -> &'static str {
        match self {
            Impl::Agent => "vrrp_agent",
            Impl::Keepalived => "keepalived",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// `ip link set eth0 down` in the master's namespace (an ioctl, timed to the call).
    LinkDown,
    /// SIGKILL of every process in the master's namespace (the whole daemon).
    Crash,
    /// SIGKILL of the agent alone / keepalived's VRRP child alone; the rest lives on.
    DaemonKill,
    /// SIGTERM to the daemon.
    Term,
    /// `vrrp-agent handover` over the control socket (vrrp-agent only).
    Handover,
}

#[derive(Clone, Copy, Debug)]
struct Scenario {
    fault: Fault,
    /// Both cores busy (CPU hog) and a protocol-112 flood on the segment.
    loaded: bool,
}

impl Scenario {
    fn key(&self) -> String {
        let f = match self.fault {
            Fault::LinkDown => "link_down",
            Fault::Crash => "crash",
            Fault::DaemonKill => "daemon_kill",
            Fault::Term => "sigterm",
            Fault::Handover => "handover",
        };
        if self.loaded {
            format!("{f}_loaded")
        } else {
            f.to_string()
        }
    }
}

fn scenarios(imp: Impl, only: &[String]) -> Vec<Scenario> {
    let mut v = all_scenarios(imp);
    if !only.is_empty() {
        v.retain(|s| only.contains(&s.key()));
    }
    v
}

fn all_scenarios(imp: Impl) -> Vec<Scenario> {
    let s = |fault, loaded| Scenario { fault, loaded };
    let mut v = vec![
        s(Fault::LinkDown, false),
        s(Fault::Crash, false),
        s(Fault::DaemonKill, false),
        s(Fault::Term, false),
    ];
    if imp == Impl::Agent {
        v.push(s(Fault::Handover, false));
    }
    v.push(s(Fault::LinkDown, true));
    v.push(s(Fault::Crash, true));
    v
}

// ---------------------------------------------------------------------------------------------
// Load: a CPU hog on every core and a protocol-112 flood.

/// The running hog: its stop flag and threads.
type HogRun = (Arc<AtomicBool>, Vec<JoinHandle<()>>);

/// Busy threads, one per core, shared by whoever needs load (counted).
#[derive(Default)]
pub struct Hog {
    inner: Mutex<(usize, Option<HogRun>)>,
}

/// Bound on one hog run, whatever happens to its owner.
const HOG_CAP: Duration = Duration::from_secs(120);

impl Hog {
    fn acquire(&self) {
        let Ok(mut g) = self.inner.lock() else { return };
        if g.0 == 0 {
            let stop = Arc::new(AtomicBool::new(false));
            let threads = (0..num_cpus())
                .map(|_| {
                    let stop = stop.clone();
                    std::thread::spawn(move || {
                        let t = Instant::now();
                        let mut x = 1u64;
                        while !stop.load(Ordering::Relaxed) && t.elapsed() < HOG_CAP {
                            for _ in 0..10_000 {
                                x = std::hint::black_box(
                                    x.wrapping_mul(6364136223846793005).wrapping_add(1),
                                );
                            }
                        }
                    })
                })
                .collect();
            g.1 = Some((stop, threads));
        }
        g.0 += 1;
    }

    fn release(&self) {
        let Ok(mut g) = self.inner.lock() else { return };
        g.0 = g.0.saturating_sub(1);
        if g.0 == 0
            && let Some((stop, threads)) = g.1.take()
        {
            stop.store(true, Ordering::SeqCst);
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

/// The load of one loaded repetition; released on drop.
struct Load<'a> {
    hog: &'a Hog,
    stop: Arc<AtomicBool>,
    flood: Option<JoinHandle<Result<(u64, Duration)>>>,
}

impl<'a> Load<'a> {
    fn start(hog: &'a Hog, flooder: &Host, version: u8) -> Result<Self> {
        // The bench's flood, in the version the pair speaks, so it reaches its checks.
        let frames = match version {
            2 => flood_frames_v2(flooder)?,
            _ => flood_frames(flooder)?,
        };
        let stop = Arc::new(AtomicBool::new(false));
        hog.acquire();
        let (s, ifn) = (stop.clone(), flooder.ifname.clone());
        let flood = spawn_in_netns(&flooder.ns, move || {
            blast(&ifn, &frames, 50_000_000, HOG_CAP, Some(&s))
        });
        Ok(Self {
            hog,
            stop,
            flood: Some(flood),
        })
    }

    /// Stops the load; the flood's (packets sent, duration).
    fn finish(mut self) -> Result<(u64, Duration)> {
        self.stop.store(true, Ordering::SeqCst);
        match self.flood.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(anyhow::anyhow!("flood thread panicked")),
            None => Ok((0, Duration::ZERO)),
        }
    }
}

impl Drop for Load<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.flood.take() {
            let _ = h.join();
        }
        self.hog.release();
    }
}

// ---------------------------------------------------------------------------------------------
// A master/backup pair, a client probing the VIP and a flooder, on one bridge.

struct Pair {
    lab: Lab,
    master: Host,
    backup: Host,
    flooder: Host,
    mmac: [u8; 6],
    bmac: [u8; 6],
    prober: Prober,
    set: Setting,
    imp: Impl,
    starts: usize,
    master_name: String,
    backup_name: String,
    /// Things worth knowing that are not samples (e.g. a restore that needed a restart).
    notes: Vec<String>,
    flood_pps: Vec<f64>,
}

impl Pair {
    fn new(test: &str, set: Setting) -> Result<Self> {
        let mut lab = Lab::new(test)?;
        let backup = lab.host("backup", &["192.0.2.1/24"])?;
        let master = lab.host("master", &["192.0.2.2/24"])?;
        let client = lab.host("client", &["192.0.2.10/24"])?;
        let flooder = lab.host("flooder", &["192.0.2.20/24"])?;
        let prober = Prober::start(&client, set.probe_period, set.probe_residues)?;
        Ok(Self {
            mmac: parse_mac(&master.mac)?,
            bmac: parse_mac(&backup.mac)?,
            lab,
            master,
            backup,
            flooder,
            prober,
            set,
            imp: Impl::Agent,
            starts: 0,
            master_name: String::new(),
            backup_name: String::new(),
            notes: Vec::new(),
            flood_pps: Vec::new(),
        })
    }

    fn conf(&self, master: bool) -> String {
        let (state, prio, id) = if master {
            ("MASTER", MASTER_PRIO, "master")
        } else {
            ("BACKUP", BACKUP_PRIO, "backup")
        };
        let i = if self.set.version == 2 {
            // The seed's VI_1 as it is (VRRPv2, advert_int 1, PASS auth).
            Instance::seed(state, prio)
        } else {
            flood_instance(state, prio, self.set.advert)
        };
        keepalived_conf(id, &[i])
    }

    fn launch(&mut self, on_master: bool) -> Result<()> {
        self.starts += 1;
        let who = if on_master { "m" } else { "b" };
        let name = match self.imp {
            Impl::Agent => format!("agent-{who}{}", self.starts),
            Impl::Keepalived => format!("ka-{who}{}", self.starts),
        };
        let conf = self.conf(on_master);
        let host = if on_master {
            self.master.clone()
        } else {
            self.backup.clone()
        };
        match self.imp {
            Impl::Agent => self.lab.agent_conf(&host, &name, &conf, &[])?,
            Impl::Keepalived => self.lab.keepalived(&host, &name, &conf)?,
        };
        if on_master {
            self.master_name = name;
        } else {
            self.backup_name = name;
        }
        Ok(())
    }

    fn start(&mut self, imp: Impl) -> Result<()> {
        self.imp = imp;
        self.launch(false)?;
        // The backup first, so it is listening when the master starts.
        std::thread::sleep(self.set.interval.min(Duration::from_millis(300)) * 3);
        self.launch(true)?;
        self.wait_restored()
    }

    /// Waits until the master alone answers every probe, then lets it settle.
    fn wait_restored(&self) -> Result<()> {
        self.wait_restored_within(self.set.restore_timeout)
    }

    fn wait_restored_within(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.prober.failed() {
                bail!("the ARP prober stopped");
            }
            let ok = {
                let log = self
                    .prober
                    .log
                    .lock()
                    .map_err(|_| anyhow::anyhow!("probe log poisoned"))?;
                settled(&log, self.mmac, self.set.settle_span, self.set.probe_period)
            };
            if ok {
                std::thread::sleep(self.set.settle);
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "{} did not become the only VIP owner within {:?}\n{}",
                    self.master_name,
                    timeout,
                    self.lab.all_logs()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs everything in `host`'s namespace and reaps what the lab started there.
    fn wipe(&mut self, on_master: bool) {
        let (ns, name) = if on_master {
            (self.master.ns.clone(), self.master_name.clone())
        } else {
            (self.backup.ns.clone(), self.backup_name.clone())
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = ns_pids(&ns);
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            for p in pids {
                let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !name.is_empty() {
            let _ = self.lab.wait_exit(&name, Duration::from_secs(2));
        }
    }

    /// What a reboot leaves: no VIP on the interface, no firewall state.
    fn scrub(&self, host: &Host) {
        let _ = self.lab.sh_output(
            &host.ns,
            &format!(
                "ip addr del {VIP_CIDR} dev {} 2>/dev/null; nft flush ruleset 2>/dev/null",
                host.ifname
            ),
        );
    }

    /// Starts the master's daemon afresh (after a wipe), `reboot`: as after a host reboot.
    fn restart_master(&mut self, reboot: bool) -> Result<()> {
        self.wipe(true);
        if reboot {
            self.scrub(&self.master.clone());
        }
        self.launch(true)?;
        self.wait_restored()
    }

    fn stop(&mut self) {
        self.wipe(true);
        self.wipe(false);
        self.scrub(&self.master.clone());
        self.scrub(&self.backup.clone());
        self.master_name.clear();
        self.backup_name.clear();
    }

    fn rep(&mut self, scn: Scenario, hog: &Hog) -> Result<Sample> {
        let load = if scn.loaded {
            let l = Load::start(hog, &self.flooder, self.set.version)?;
            std::thread::sleep(self.set.load_lead);
            Some(l)
        } else {
            None
        };
        let t0 = self.fault(scn.fault);
        if let Ok(t0) = &t0 {
            // The window, and a little for the last replies in flight.
            let end = *t0 + self.set.window + Duration::from_millis(50);
            std::thread::sleep(end.saturating_duration_since(Instant::now()));
        }
        if let Some(l) = load {
            match l.finish() {
                Ok((sent, dt)) if dt > Duration::ZERO => {
                    self.flood_pps.push(sent as f64 / dt.as_secs_f64());
                }
                Ok(_) => {}
                Err(e) => self.notes.push(format!("flood failed: {e:#}")),
            }
        }
        let t0 = t0?;
        let sample = {
            let log = self
                .prober
                .log
                .lock()
                .map_err(|_| anyhow::anyhow!("probe log poisoned"))?;
            let before = if scn.loaded {
                self.set.load_lead
            } else {
                Duration::ZERO
            };
            analyse(
                &log,
                t0,
                before,
                self.set.window,
                self.mmac,
                self.bmac,
                self.set.probe_period,
            )
        };
        let tr = Instant::now();
        self.restore(scn.fault)?;
        let mut sample = sample;
        sample.restore_ms = tr.elapsed().as_secs_f64() * 1e3;
        Ok(sample)
    }

    /// Injects the fault; the instant it happened (taken just before the system call).
    fn fault(&mut self, f: Fault) -> Result<Instant> {
        match f {
            Fault::LinkDown => {
                let ifn = self.master.ifname.clone();
                in_netns(&self.master.ns, move || set_link_down(&ifn))?
            }
            Fault::Crash => vrrp_tests::crash_namespace(&self.master.ns),
            Fault::DaemonKill => {
                let pid = match self.imp {
                    Impl::Agent => self.lab.pid(&self.master_name),
                    Impl::Keepalived => {
                        let f = self.lab.path(&format!("{}.vrrp.pid", self.master_name));
                        std::fs::read_to_string(&f)
                            .ok()
                            .and_then(|s| s.trim().parse().ok())
                    }
                }
                .with_context(|| format!("no daemon PID for {}", self.master_name))?;
                let t0 = Instant::now();
                kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
                Ok(t0)
            }
            Fault::Term => {
                let pid = self
                    .lab
                    .pid(&self.master_name)
                    .with_context(|| format!("{} is not running", self.master_name))?;
                let t0 = Instant::now();
                kill(Pid::from_raw(pid as i32), Signal::SIGTERM)?;
                Ok(t0)
            }
            Fault::Handover => {
                let sock = self.lab.path(&format!("{}.sock", self.master_name));
                let t0 = Instant::now();
                let out = std::process::Command::new(vrrp_tests::agent_bin())
                    .args(["handover", "--socket"])
                    .arg(&sock)
                    .output()?;
                if !out.status.success() {
                    bail!(
                        "vrrp-agent handover failed: {}{}",
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                Ok(t0)
            }
        }
    }

    /// Back to the master owning the VIP, the backup listening.
    fn restore(&mut self, f: Fault) -> Result<()> {
        match f {
            Fault::LinkDown => {
                self.lab.link(&self.master, true)?;
                self.wait_restored_or_restart("link up", self.set.restore_timeout)
            }
            Fault::Crash => self.restart_master(true),
            // keepalived's parent respawns its VRRP child; whatever the agent leaves running
            // (a supervisor) is wiped and the agent started again, as systemd would.
            Fault::DaemonKill if self.imp == Impl::Keepalived => {
                self.wait_restored_or_restart("VRRP child respawn", self.set.respawn_timeout)
            }
            Fault::DaemonKill | Fault::Term => {
                let _ = self
                    .lab
                    .wait_exit(&self.master_name, Duration::from_secs(5));
                self.restart_master(false)
            }
            // The old master yielded (it does not preempt back after a handover): hand back.
            Fault::Handover => {
                let sock = self.lab.path(&format!("{}.sock", self.backup_name));
                let out = std::process::Command::new(vrrp_tests::agent_bin())
                    .args(["handover", "--socket"])
                    .arg(&sock)
                    .output()?;
                if !out.status.success() {
                    self.notes.push(format!(
                        "handing back failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                self.wait_restored_or_restart("handing back", self.set.restore_timeout)
            }
        }
    }

    fn wait_restored_or_restart(&mut self, what: &str, timeout: Duration) -> Result<()> {
        if self.wait_restored_within(timeout).is_ok() {
            return Ok(());
        }
        self.notes.push(format!(
            "{}: no recovery by {what} within {timeout:?}; master restarted",
            self.imp.key(),
        ));
        self.restart_master(false)
    }
}

/// Sets `ifname` (current thread's namespace) down with one SIOCSIFFLAGS; the instant before.
fn set_link_down(ifname: &str) -> Result<Instant> {
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        bail!("socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain data; zero is valid.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    let name = ifname.as_bytes();
    if name.len() >= ifr.ifr_name.len() {
        bail!("interface name too long: {ifname}");
    }
    for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
        *d = *s as libc::c_char;
    }
    // SAFETY: ifr is a valid ifreq for these requests.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut ifr) } < 0 {
        bail!("SIOCGIFFLAGS {ifname}: {}", std::io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled the flags member.
    unsafe { ifr.ifr_ifru.ifru_flags &= !(libc::IFF_UP as libc::c_short) };
    let t0 = Instant::now();
    // SAFETY: as above.
    if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCSIFFLAGS, &ifr) } < 0 {
        bail!("SIOCSIFFLAGS {ifname}: {}", std::io::Error::last_os_error());
    }
    Ok(t0)
}

// ---------------------------------------------------------------------------------------------
// Running the scenarios.

/// Samples (or errors) per implementation and scenario key.
type Results = BTreeMap<(Impl, String), Vec<std::result::Result<Sample, String>>>;

/// VRRPv3, 10 ms adverts: one lab, `opts.reps` repetitions of each scenario in turn.
pub fn bench_v3(opts: &BenchOpts, rows: &mut Vec<Row>) -> Result<Value> {
    let set = V3_10MS;
    let hog = Hog::default();
    let mut pair = Pair::new("bench-failover", set)?;
    let mut results = Results::new();
    let t = Instant::now();
    for imp in [Impl::Agent, Impl::Keepalived] {
        if let Err(e) = pair.start(imp) {
            pair.notes
                .push(format!("{}: did not start: {e:#}", imp.key()));
            pair.stop();
            continue;
        }
        'scn: for scn in scenarios(imp, &opts.scenarios) {
            let ts = Instant::now();
            let v = results.entry((imp, scn.key())).or_default();
            for _ in 0..opts.reps.max(1) {
                match pair.rep(scn, &hog) {
                    Ok(s) => v.push(Ok(s)),
                    Err(e) => {
                        eprintln!("  {} {}: {e:#}", imp.key(), scn.key());
                        v.push(Err(format!("{e:#}")));
                        if let Err(e) = pair.restart_master(true) {
                            pair.notes.push(format!(
                                "{} {}: gave up, restart failed: {e:#}",
                                imp.key(),
                                scn.key()
                            ));
                            break 'scn;
                        }
                    }
                }
            }
            eprintln!(
                "  {} {}: {} reps in {:.1}s: {}",
                imp.key(),
                scn.key(),
                v.len(),
                ts.elapsed().as_secs_f64(),
                brief(v)
            );
        }
        pair.stop();
    }
    let flood_pps = super::median(pair.flood_pps.clone());
    let notes = pair.notes.clone();
    drop(pair);
    push_rows(rows, set, &results, opts.reps);
    Ok(results_json(set, &results, &notes, flood_pps, t.elapsed()))
}

enum Step {
    Start(Impl),
    Run(Impl, Scenario),
    Stop,
}

/// advert_int 1 (VRRPv2, the seed's VI_1): `opts.v2_reps` labs in parallel, one repetition
/// of each scenario in each, in lock-step so the loaded scenarios share the hog.
pub fn bench_v2(opts: &BenchOpts, rows: &mut Vec<Row>) -> Result<Value> {
    let set = V2_1S;
    let n = opts.v2_reps.max(1);
    let hog = Arc::new(Hog::default());
    let barrier = Arc::new(Barrier::new(n));
    let t = Instant::now();
    let handles: Vec<_> = (0..n)
        .map(|k| {
            let (hog, barrier) = (hog.clone(), barrier.clone());
            let only = opts.scenarios.clone();
            std::thread::spawn(move || {
                let mut steps = Vec::new();
                for imp in [Impl::Agent, Impl::Keepalived] {
                    steps.push(Step::Start(imp));
                    steps.extend(scenarios(imp, &only).into_iter().map(|s| Step::Run(imp, s)));
                    steps.push(Step::Stop);
                }
                let mut out: Vec<(Impl, String, std::result::Result<Sample, String>)> = Vec::new();
                let mut notes = Vec::new();
                let mut pair = match Pair::new(&format!("bench-failover-v2-{k}"), set) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        notes.push(format!("lab {k}: {e:#}"));
                        None
                    }
                };
                // Whether the current implementation runs in this lab.
                let mut up = false;
                for step in steps {
                    // Every lab passes every barrier, whatever failed, or the others hang.
                    barrier.wait();
                    let Some(p) = pair.as_mut() else { continue };
                    match step {
                        Step::Start(imp) => match p.start(imp) {
                            Ok(()) => up = true,
                            Err(e) => {
                                notes.push(format!("lab {k}: {} did not start: {e:#}", imp.key()));
                                up = false;
                            }
                        },
                        Step::Run(imp, scn) => {
                            if !up {
                                out.push((imp, scn.key(), Err("not started".into())));
                                continue;
                            }
                            match p.rep(scn, &hog) {
                                Ok(s) => out.push((imp, scn.key(), Ok(s))),
                                Err(e) => {
                                    out.push((imp, scn.key(), Err(format!("{e:#}"))));
                                    if let Err(e) = p.restart_master(true) {
                                        notes.push(format!(
                                            "lab {k}: {} gave up after {}: {e:#}",
                                            imp.key(),
                                            scn.key()
                                        ));
                                        up = false;
                                    }
                                }
                            }
                        }
                        Step::Stop => {
                            p.stop();
                            up = false;
                        }
                    }
                }
                let pps = pair
                    .as_ref()
                    .map(|p| p.flood_pps.clone())
                    .unwrap_or_default();
                if let Some(p) = pair.as_ref() {
                    notes.extend(p.notes.iter().map(|x| format!("lab {k}: {x}")));
                }
                (out, notes, pps)
            })
        })
        .collect();
    let mut results = Results::new();
    let mut notes = Vec::new();
    let mut pps = Vec::new();
    for h in handles {
        match h.join() {
            Ok((out, n, p)) => {
                for (imp, key, r) in out {
                    results.entry((imp, key)).or_default().push(r);
                }
                notes.extend(n);
                pps.extend(p);
            }
            Err(_) => notes.push("a lab thread panicked".into()),
        }
    }
    for ((imp, key), v) in &results {
        eprintln!("  {} {key}: {}", imp.key(), brief(v));
    }
    push_rows(rows, set, &results, n);
    // Each lab floods its own segment at once: the figure is the sum over labs.
    let total_pps = pps.iter().sum::<f64>() / (pps.len().max(1) as f64 / n as f64);
    Ok(results_json(set, &results, &notes, total_pps, t.elapsed()))
}

fn brief(v: &[std::result::Result<Sample, String>]) -> String {
    let ok: Vec<&Sample> = v.iter().filter_map(|r| r.as_ref().ok()).collect();
    let take: Vec<(f64, bool)> = ok.iter().map(|s| takeover(s)).collect();
    let gap: Vec<(f64, bool)> = ok.iter().map(|s| (s.gap_ms, s.gap_censored)).collect();
    format!(
        "takeover {} ms, gap {} ms, {} errors",
        Stat::of(&take)
            .map(|s| s.text())
            .unwrap_or_else(|| "-".into()),
        Stat::of(&gap)
            .map(|s| s.text())
            .unwrap_or_else(|| "-".into()),
        v.len() - ok.len()
    )
}

// ---------------------------------------------------------------------------------------------
// Statistics and rows.

/// The window length stands in for "not within the window" (a lower bound).
fn takeover(s: &Sample) -> (f64, bool) {
    match s.takeover_ms {
        Some(x) => (x, false),
        None => (s.window_ms, true),
    }
}

fn old_answered(s: &Sample) -> (f64, bool) {
    (s.old_answered_ms.unwrap_or(0.0), s.old_censored)
}

/// Median and p99 (nearest rank: the maximum below 100 samples) of possibly censored values.
#[derive(Clone, Copy, Debug)]
pub struct Stat {
    pub median: f64,
    pub median_censored: bool,
    pub p99: f64,
    pub p99_censored: bool,
    pub n: usize,
}

impl Stat {
    pub fn of(v: &[(f64, bool)]) -> Option<Stat> {
        if v.is_empty() {
            return None;
        }
        let mut v = v.to_vec();
        // Censored values (lower bounds) sort above every measured one.
        v.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.total_cmp(&b.0)));
        let n = v.len();
        let (median, median_censored) = if n % 2 == 1 {
            v[n / 2]
        } else {
            let (a, b) = (v[n / 2 - 1], v[n / 2]);
            if b.1 { b } else { ((a.0 + b.0) / 2.0, false) }
        };
        let rank = ((0.99 * n as f64).ceil() as usize).clamp(1, n) - 1;
        let (p99, p99_censored) = v[rank];
        Some(Stat {
            median,
            median_censored,
            p99,
            p99_censored,
            n,
        })
    }

    pub fn text(&self) -> String {
        let f = |x: f64, c: bool| {
            let s = if x >= 100.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.1}")
            };
            if c { format!(">={s}") } else { s }
        };
        format!(
            "{} / {}",
            f(self.median, self.median_censored),
            f(self.p99, self.p99_censored)
        )
    }
}

/// Whether a statistic meets its target.
type Judge = Box<dyn Fn(&Stat) -> bool>;

struct Metric {
    /// Row text; `{}` is not used, plain.
    label: String,
    ours_key: Option<String>,
    base_key: Option<String>,
    base_na: &'static str,
    value: fn(&Sample) -> (f64, bool),
    /// Leave out repetitions where the backup answered before the fault (no takeover to time);
    /// any such repetition fails the target.
    exclude_split: bool,
    target: String,
    met: Option<Judge>,
}

fn push_rows(rows: &mut Vec<Row>, set: Setting, r: &Results, reps: usize) {
    let floor = set.floor_ms();
    let skew = set.skew_ms();
    let section: &'static str = match set.version {
        2 => "failover v2 1s",
        _ => "failover v3 10ms",
    };
    let near_floor = move |s: &Stat| {
        !s.median_censored && !s.p99_censored && s.median <= floor + 3.0 && s.p99 <= floor + 10.0
    };
    let floor_target = format!("med <= {:.1}, p99 <= {:.1}", floor + 3.0, floor + 10.0);
    let k = |s: &str| Some(s.to_string());
    let gap = |s: &Sample| (s.gap_ms, s.gap_censored);
    let mut metrics = vec![
        Metric {
            label: "link down: fault -> backup answers (ms)".into(),
            ours_key: k("link_down"),
            base_key: k("link_down"),
            base_na: "",
            value: takeover,
            exclude_split: true,
            target: floor_target.clone(),
            met: Some(Box::new(near_floor)),
        },
        Metric {
            label: "link down + load: fault -> backup answers (ms)".into(),
            ours_key: k("link_down_loaded"),
            base_key: k("link_down_loaded"),
            base_na: "",
            value: takeover,
            exclude_split: true,
            target: floor_target.clone(),
            met: Some(Box::new(near_floor)),
        },
        Metric {
            label: "crash (all daemon procs SIGKILL): fault -> backup answers (ms)".into(),
            ours_key: k("crash"),
            base_key: k("crash"),
            base_na: "",
            value: takeover,
            exclude_split: true,
            target: floor_target.clone(),
            met: Some(Box::new(near_floor)),
        },
        Metric {
            label: "crash + load: fault -> backup answers (ms)".into(),
            ours_key: k("crash_loaded"),
            base_key: k("crash_loaded"),
            base_na: "",
            value: takeover,
            exclude_split: true,
            target: floor_target.clone(),
            met: Some(Box::new(near_floor)),
        },
        Metric {
            label: "crash: dead node still answered ARP until (ms)".into(),
            ours_key: k("crash"),
            base_key: k("crash"),
            base_na: "",
            value: old_answered,
            exclude_split: false,
            target: String::new(),
            met: None,
        },
        Metric {
            label: "agent SIGKILL (ka: VRRP child): fault -> backup answers (ms)".into(),
            ours_key: k("daemon_kill"),
            base_key: k("daemon_kill"),
            base_na: "",
            value: takeover,
            exclude_split: true,
            target: format!("<= {:.1} (skew + 5)", skew + 5.0),
            met: Some(Box::new(move |s: &Stat| {
                !s.p99_censored && s.p99 <= skew + 5.0
            })),
        },
        Metric {
            label: "agent SIGKILL (ka: VRRP child): dead node answered until (ms)".into(),
            ours_key: k("daemon_kill"),
            base_key: k("daemon_kill"),
            base_na: "",
            value: old_answered,
            exclude_split: false,
            target: "0 (<= 1 probe)".into(),
            met: Some(Box::new(|s: &Stat| !s.p99_censored && s.p99 <= 1.0)),
        },
        Metric {
            label: "SIGTERM: client-visible gap (ms)".into(),
            ours_key: k("sigterm"),
            base_key: k("sigterm"),
            base_na: "",
            value: gap,
            exclude_split: false,
            target: "0".into(),
            met: Some(Box::new(|s: &Stat| !s.p99_censored && s.p99 < 0.5)),
        },
        Metric {
            label: "SIGTERM: fault -> backup answers (ms)".into(),
            ours_key: k("sigterm"),
            base_key: k("sigterm"),
            base_na: "",
            value: takeover,
            exclude_split: true,
            target: String::new(),
            met: None,
        },
        Metric {
            label: "handover command: client-visible gap (ms)".into(),
            ours_key: k("handover"),
            base_key: None,
            base_na: "n/a (no such command)",
            value: gap,
            exclude_split: false,
            target: "0".into(),
            met: Some(Box::new(|s: &Stat| !s.p99_censored && s.p99 < 0.5)),
        },
        Metric {
            label: "handover command: command -> backup answers (ms)".into(),
            ours_key: k("handover"),
            base_key: None,
            base_na: "n/a (no such command)",
            value: takeover,
            exclude_split: true,
            target: String::new(),
            met: None,
        },
    ];
    // The outage a client sees on link down: the longest unanswered stretch.
    metrics.insert(
        1,
        Metric {
            label: "link down: longest unanswered gap (ms)".into(),
            ours_key: k("link_down"),
            base_key: k("link_down"),
            base_na: "",
            value: gap,
            exclude_split: false,
            target: String::new(),
            met: None,
        },
    );
    let cell = |imp: Impl,
                key: &Option<String>,
                na: &str,
                m: &Metric|
     -> (Val, Option<String>, Option<Stat>) {
        let Some(key) = key else {
            return (Err(na.to_string()), None, None);
        };
        let Some(v) = r.get(&(imp, key.clone())) else {
            return (Err("not run".into()), None, None);
        };
        let ok: Vec<(f64, bool)> = v
            .iter()
            .filter_map(|x| x.as_ref().ok())
            .filter(|s| !m.exclude_split || s.new_before_fault == 0)
            .map(|s| (m.value)(s))
            .collect();
        let errors = v.iter().filter(|x| x.is_err()).count();
        let split = v
            .iter()
            .filter(|x| m.exclude_split && x.as_ref().is_ok_and(|s| s.new_before_fault > 0))
            .count();
        match Stat::of(&ok) {
            None if split > 0 => (Err(format!("none: split brain in all {split}")), None, None),
            None => (Err(format!("no sample ({errors} errors)")), None, None),
            Some(s) => {
                let mut t = s.text();
                if s.n < reps {
                    t.push_str(&format!(" (n={})", s.n));
                }
                (Ok(s.median), Some(t), Some(s))
            }
        }
    };
    let ran = |imp: Impl, k: &Option<String>| {
        k.as_ref()
            .is_some_and(|k| r.contains_key(&(imp, k.clone())))
    };
    for m in &metrics {
        if !ran(Impl::Agent, &m.ours_key) && !ran(Impl::Keepalived, &m.base_key) {
            continue;
        }
        let (ours, ot, os) = cell(Impl::Agent, &m.ours_key, "", m);
        let (base, bt, _) = cell(Impl::Keepalived, &m.base_key, m.base_na, m);
        // A split brain or a takeover sooner than failover allows fails a timing target.
        let earliest = set.earliest_ms();
        // (Only where the target is the failover floor: a supervisor's priority 0 after an
        // agent SIGKILL is meant to be faster.)
        let split = m.ours_key.as_ref().is_some_and(|k| {
            let floor_target = k.starts_with("link_down") || k.starts_with("crash");
            split_count(r, Impl::Agent, k) > 0
                || floor_target
                    && r.get(&(Impl::Agent, k.clone())).is_some_and(|v| {
                        v.iter().filter_map(|x| x.as_ref().ok()).any(|s| {
                            s.new_before_fault == 0 && s.takeover_ms.is_some_and(|t| t < earliest)
                        })
                    })
        });
        let met = match (&m.met, os) {
            (Some(_), _) if m.exclude_split && split => Some(false),
            (Some(f), Some(s)) => Some(f(&s)),
            (Some(_), None) => Some(false),
            _ => None,
        };
        rows.push(Row {
            section,
            metric: m.label.clone(),
            ours,
            base,
            ratio_dir: None,
            target: m.target.clone(),
            met,
            text: [ot, bt],
        });
    }
    let stall = |imp: Impl| -> (Val, Option<String>) {
        let v: Vec<(f64, bool)> = r
            .iter()
            .filter(|((i, _), _)| *i == imp)
            .flat_map(|(_, v)| v.iter().filter_map(|x| x.as_ref().ok()))
            .map(|s| (s.probe_stall_ms, false))
            .collect();
        match Stat::of(&v) {
            Some(s) => (Ok(s.median), Some(format!("{} (n={})", s.text(), s.n))),
            None => (Err("no sample".into()), None),
        }
    };
    let ((o, ot), (b, bt)) = (stall(Impl::Agent), stall(Impl::Keepalived));
    rows.push(Row {
        section,
        metric: format!(
            "noise: longest pause of the {} ms prober in a window (ms)",
            set.probe_period.as_millis()
        ),
        ours: o,
        base: b,
        ratio_dir: None,
        target: String::new(),
        met: None,
        text: [ot, bt],
    });
    // Split brains, and takeovers sooner than failover can explain (Setting::earliest_ms).
    let earliest = set.earliest_ms();
    for key in ["link_down", "crash", "link_down_loaded", "crash_loaded"] {
        if !ran(Impl::Agent, &Some(key.into())) && !ran(Impl::Keepalived, &Some(key.into())) {
            continue;
        }
        let cell = |imp| -> (Val, Option<String>) {
            let Some(v) = r.get(&(imp, key.to_string())) else {
                return (Err("not run".into()), None);
            };
            let ok: Vec<&Sample> = v.iter().filter_map(|x| x.as_ref().ok()).collect();
            if ok.is_empty() {
                return (Err(format!("no sample ({} errors)", v.len())), None);
            }
            let split = ok.iter().filter(|s| s.new_before_fault > 0).count();
            let early = ok
                .iter()
                .filter(|s| s.new_before_fault == 0)
                .filter(|s| s.takeover_ms.is_some_and(|t| t < earliest))
                .count();
            (
                Ok((split + early) as f64),
                Some(format!("{split} + {early} of {}", ok.len())),
            )
        };
        let ((o, ot), (b, bt)) = (cell(Impl::Agent), cell(Impl::Keepalived));
        rows.push(Row {
            section,
            metric: format!(
                "{key}: reps with backup answering before the fault + taking over < {earliest:.0} ms"
            ),
            met: o.as_ref().ok().map(|x| *x == 0.0),
            text: [ot, bt],
            ours: o,
            base: b,
            ratio_dir: None,
            target: "0 + 0".into(),
        });
    }
}

type Val = super::Val;

/// Repetitions where the backup answered before the fault.
fn split_count(r: &Results, imp: Impl, key: &str) -> usize {
    r.get(&(imp, key.to_string()))
        .map(|v| {
            v.iter()
                .filter(|x| x.as_ref().is_ok_and(|s| s.new_before_fault > 0))
                .count()
        })
        .unwrap_or(0)
}

fn results_json(
    set: Setting,
    r: &Results,
    notes: &[String],
    flood_pps: f64,
    took: Duration,
) -> Value {
    let mut by_impl: BTreeMap<&str, serde_json::Map<String, Value>> = BTreeMap::new();
    for ((imp, key), v) in r {
        let samples: Vec<Value> = v
            .iter()
            .map(|x| match x {
                Ok(s) => serde_json::to_value(s).unwrap_or(Value::Null),
                Err(e) => json!({ "error": e }),
            })
            .collect();
        by_impl
            .entry(imp.key())
            .or_default()
            .insert(key.clone(), Value::Array(samples));
    }
    json!({
        "setting": set.label,
        "key": set.key,
        "vrrp_version": set.version,
        "advert_int_s": set.interval.as_secs_f64(),
        "master_priority": MASTER_PRIO,
        "backup_priority": BACKUP_PRIO,
        "skew_ms": set.skew_ms(),
        "master_down_interval_ms": set.floor_ms(),
        "window_ms": set.window.as_secs_f64() * 1e3,
        "probe_period_ms": set.probe_period.as_secs_f64() * 1e3,
        "p99": "nearest rank; with fewer than 100 samples it is the maximum",
        "censored": "takeover_ms null = no answer from the backup within the window (shown as >= window); old_censored = the old master still answered at the end of the window",
        "load": format!(
            "{} busy threads (nice 0) + protocol-112 flood from a 4th host (VRRPv{} frames: unknown VRID, TTL 64, bad checksum, same VRID priority 1)",
            num_cpus(),
            set.version
        ),
        "flood_packets_per_s": flood_pps,
        "seconds": took.as_secs_f64(),
        "notes": notes,
        "samples": by_impl,
    })
}
