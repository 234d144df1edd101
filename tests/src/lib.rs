//! The namespace lab (../shared/LAB.md): hosts in network namespaces joined by a bridge,
//! processes started inside them, and guaranteed cleanup.
//!
//! ```text
//!   ns vx-<pid>-<n>-br           ns vx-<pid>-<n>-<host>
//!   +--------------------+       +------------------+
//!   | br0 -- <host> veth |=======| eth0 (veth)      |   one pair per host; XDP_PASS on the
//!   |     \- <host2> ... |       | 192.0.2.x/24 ... |   bridge-side ends so XDP_TX works
//!   +--------------------+       +------------------+
//! ```
//! Everything a `Lab` creates (namespaces, processes by PID, its temporary directory) is
//! removed when it is dropped, also when the test panics.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod systemd;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Fails loudly unless the lab can run: root, and the XDP object built.
pub fn require_lab() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    assert!(
        root,
        "lab tests need root (network namespaces, XDP): run `cargo xtask test` as root"
    );
    assert!(
        std::env::var_os("VRRP_EBPF_OBJ").is_some(),
        "VRRP_EBPF_OBJ is not set: run the lab tests through `cargo xtask test`"
    );
}

/// Path of the XDP object (built by `cargo xtask build`).
pub fn ebpf_object() -> PathBuf {
    std::env::var_os("VRRP_EBPF_OBJ")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/bpfel-unknown-none/release/vrrp-ebpf"))
}

/// Path of the agent binary (built by `cargo xtask build`).
pub fn agent_bin() -> PathBuf {
    std::env::var_os("VRRP_AGENT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/release/vrrp-agent"))
}

/// A host of the lab.
#[derive(Clone, Debug)]
pub struct Host {
    pub name: String,
    /// Its network namespace.
    pub ns: String,
    /// The interface inside the host namespace.
    pub ifname: String,
    /// The bridge-side veth end, in the bridge namespace.
    pub port: String,
    pub mac: String,
}

/// A process the lab started.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

pub struct Lab {
    pub tag: String,
    pub dir: PathBuf,
    pub bridge_ns: String,
    namespaces: Vec<String>,
    /// Bridges in `bridge_ns`: `br0`, and the other segments [`Lab::host_on`] asked for.
    bridges: Vec<String>,
    procs: Vec<Proc>,
    hosts: Vec<Host>,
    /// Keeps the XDP_PASS programs on the bridge ports attached (bpf_links die with them).
    pass_programs: Vec<aya::Ebpf>,
    keep_dir: bool,
}

impl Lab {
    /// A new lab: a bridge namespace with `br0`, and a private directory for logs/configs.
    pub fn new(test: &str) -> Result<Self> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("vx-{}-{n}", std::process::id());
        let dir = std::env::temp_dir().join(format!("{tag}-{test}"));
        fs::create_dir_all(&dir)?;
        let mut lab = Self {
            bridge_ns: format!("{tag}-br"),
            tag,
            dir,
            namespaces: Vec::new(),
            bridges: Vec::new(),
            procs: Vec::new(),
            hosts: Vec::new(),
            pass_programs: Vec::new(),
            keep_dir: std::env::var_os("VRRP_LAB_KEEP").is_some(),
        };
        let br = lab.bridge_ns.clone();
        lab.add_ns(&br)?;
        lab.bridge("br0")?;
        Ok(lab)
    }

    /// A bridge (one L2 segment) in the bridge namespace, made once.
    fn bridge(&mut self, name: &str) -> Result<()> {
        if self.bridges.iter().any(|b| b == name) {
            return Ok(());
        }
        let br = self.bridge_ns.clone();
        self.ip(&br, &format!("link add {name} type bridge"))?;
        // No STP delay, no multicast snooping: VRRP multicast must reach every port at once.
        self.ip(
            &br,
            &format!("link set {name} type bridge forward_delay 0 stp_state 0 mcast_snooping 0"),
        )?;
        self.ip(&br, &format!("link set {name} up"))?;
        self.bridges.push(name.to_string());
        Ok(())
    }

    fn add_ns(&mut self, ns: &str) -> Result<()> {
        run_cmd(Command::new("ip").args(["netns", "add", ns]))?;
        self.namespaces.push(ns.to_string());
        self.ip(ns, "link set lo up")?;
        Ok(())
    }

    /// Runs `ip -n NS ARGS...`.
    pub fn ip(&self, ns: &str, args: &str) -> Result<String> {
        let mut c = Command::new("ip");
        c.args(["-n", ns]).args(args.split_whitespace());
        run_cmd(&mut c)
    }

    /// A host joined to the bridge; `addrs` in CIDR form (`192.0.2.1/24`, `2001:db8::1/64`).
    pub fn host(&mut self, name: &str, addrs: &[&str]) -> Result<Host> {
        self.host_on("br0", name, addrs)
    }

    /// A host joined to `bridge`, another L2 segment than `br0` if named so (made on first
    /// use): hosts on different bridges talk only through a router ([`Lab::join`]).
    pub fn host_on(&mut self, bridge: &str, name: &str, addrs: &[&str]) -> Result<Host> {
        let ns = format!("{}-{name}", self.tag);
        self.add_ns(&ns)?;
        // IPv6 DAD would hold addresses tentative for a second; the lab needs them at once.
        self.sh(
            &ns,
            "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0",
        )?;
        let port = format!("p-{name}");
        let mac = self.plug(&ns, "eth0", bridge, &port, addrs)?;
        let host = Host {
            name: name.to_string(),
            ns,
            ifname: "eth0".into(),
            port,
            mac,
        };
        self.hosts.push(host.clone());
        Ok(host)
    }

    /// One more interface `ifname` for `host`, on `bridge` (a router between segments).
    pub fn join(&mut self, host: &Host, ifname: &str, bridge: &str, addrs: &[&str]) -> Result<()> {
        let port = format!("p-{}-{ifname}", host.name);
        self.plug(&host.ns, ifname, bridge, &port, addrs).map(drop)
    }

    /// A veth from `ns` (`ifname`, up, with `addrs`) to a port of `bridge`; its MAC.
    fn plug(
        &mut self,
        ns: &str,
        ifname: &str,
        bridge: &str,
        port: &str,
        addrs: &[&str],
    ) -> Result<String> {
        self.bridge(bridge)?;
        run_cmd(Command::new("ip").args([
            "link",
            "add",
            ifname,
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            &self.bridge_ns,
        ]))?;
        let br = self.bridge_ns.clone();
        self.ip(&br, &format!("link set {port} master {bridge}"))?;
        self.ip(&br, &format!("link set {port} up"))?;
        self.sh(
            ns,
            &format!("sysctl -qw net.ipv6.conf.{ifname}.accept_dad=0"),
        )?;
        for a in addrs {
            self.ip(ns, &format!("addr add {a} dev {ifname}"))?;
        }
        self.ip(ns, &format!("link set {ifname} up"))?;
        self.attach_pass(port)?;
        self.sh(ns, &format!("cat /sys/class/net/{ifname}/address"))
    }

    /// Attaches the object's `xdp_pass` program to a bridge port (in the bridge namespace).
    fn attach_pass(&mut self, port: &str) -> Result<()> {
        let ns = self.bridge_ns.clone();
        let port = port.to_string();
        let obj = ebpf_object();
        let ebpf = in_netns(&ns, move || -> Result<aya::Ebpf> {
            let mut ebpf =
                aya::Ebpf::load_file(&obj).with_context(|| format!("loading {}", obj.display()))?;
            let prog: &mut aya::programs::Xdp = ebpf
                .program_mut("xdp_pass")
                .context("no xdp_pass program in the object")?
                .try_into()?;
            prog.load()?;
            prog.attach(&port, aya::programs::XdpMode::Driver)
                .with_context(|| format!("attaching xdp_pass to {port}"))?;
            Ok(ebpf)
        })??;
        self.pass_programs.push(ebpf);
        Ok(())
    }

    /// Runs a shell command inside a namespace and returns its stdout.
    pub fn sh(&self, ns: &str, script: &str) -> Result<String> {
        run_cmd(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", script]))
    }

    /// Like `sh` but returns the whole output, whatever the exit status.
    pub fn sh_output(&self, ns: &str, script: &str) -> Result<Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", script])
            .output()?)
    }

    /// Starts a program inside a namespace, its output in `<lab dir>/<name>.log`.
    pub fn spawn(&mut self, ns: &str, name: &str, program: &Path, args: &[String]) -> Result<u32> {
        let log = self.dir.join(format!("{name}.log"));
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let err = out.try_clone()?;
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .with_context(|| format!("starting {} in {ns}", program.display()))?;
        let pid = child.id();
        self.procs.push(Proc {
            name: name.to_string(),
            child,
            log,
        });
        Ok(pid)
    }

    /// Sends a signal to a process the lab started; reaps it if it was SIGKILL.
    pub fn signal(&mut self, name: &str, sig: nix::sys::signal::Signal) -> Result<()> {
        let p = self
            .procs
            .iter_mut()
            .rev()
            .find(|p| p.name == name)
            .with_context(|| format!("no running process {name}"))?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(p.child.id() as i32), sig)?;
        if sig == nix::sys::signal::Signal::SIGKILL {
            let _ = p.child.wait();
        }
        Ok(())
    }

    /// Waits for a process to exit; returns its exit status.
    pub fn wait_exit(&mut self, name: &str, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let p = self
                .procs
                .iter_mut()
                .rev()
                .find(|p| p.name == name)
                .with_context(|| format!("no process {name}"))?;
            if let Some(st) = p.child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                bail!("{name} did not exit within {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The log of a process the lab started.
    pub fn log(&self, name: &str) -> String {
        fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// A path inside the lab's private directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn hosts(&self) -> &[Host] {
        &self.hosts
    }

    /// Sets a host's interface down or up.
    pub fn link(&self, host: &Host, up: bool) -> Result<()> {
        self.ip(
            &host.ns,
            &format!(
                "link set {} {}",
                host.ifname,
                if up { "up" } else { "down" }
            ),
        )?;
        Ok(())
    }

    /// Polls `check` every 20 ms until it is true; the deadline is generous on purpose
    /// (tests assert behaviour, not speed).
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<bool>,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last_err = None;
        loop {
            match check() {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => last_err = Some(e),
            }
            if Instant::now() > deadline {
                match last_err {
                    Some(e) => bail!(
                        "timed out waiting for {what} (last error: {e:#})\n{}",
                        self.all_logs()
                    ),
                    None => bail!("timed out waiting for {what}\n{}", self.all_logs()),
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether a host has an address bound (as `ip addr` shows it).
    pub fn has_addr(&self, host: &Host, addr: &str) -> Result<bool> {
        let out = self.ip(&host.ns, &format!("-o addr show dev {}", host.ifname))?;
        Ok(out
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr)))
    }

    /// Every process log, for failure messages.
    pub fn all_logs(&self) -> String {
        let mut s = String::new();
        for p in &self.procs {
            let log = fs::read_to_string(&p.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            s.push_str(&format!(
                "----- {} (last {} lines) -----\n",
                p.name,
                tail.len()
            ));
            for l in tail.into_iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "lab {} failed; process logs:\n{}",
                self.tag,
                self.all_logs()
            );
        }
        for p in &mut self.procs {
            if let Ok(None) = p.child.try_wait() {
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
        // Kill anything still running inside our namespaces (e.g. helpers a test started
        // through `sh`, keepalived's VRRP child, tshark's dumpcap) and wait until they are
        // gone, then remove the namespaces: their veths go with them.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut alive = false;
            for ns in &self.namespaces {
                if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                        if let Ok(pid) = pid.parse::<i32>() {
                            alive = true;
                            let _ = nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            );
                        }
                    }
                }
            }
            if !alive || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.pass_programs.clear();
        for ns in self.namespaces.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        if !self.keep_dir && !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `f` on a fresh thread that has entered network namespace `ns` (setns affects only
/// the calling thread, so the rest of the process stays where it is).
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let path = format!("/run/netns/{ns}");
    let handle = std::thread::spawn(move || -> Result<T> {
        let file = fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering {path}"))?;
        Ok(f())
    });
    handle
        .join()
        .map_err(|_| anyhow::anyhow!("thread in {ns} panicked"))?
}

/// The processes in network namespace `ns` (`ip netns pids`).
pub fn ns_pids(ns: &str) -> Vec<u32> {
    Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A crash of a whole host: every process in namespace `ns` stopped first, then SIGKILLed, so
/// that none of them acts on another's death (the guardian would send priority 0 at the
/// agent's SIGKILL; a host dies all at once). Returns the instant just before the first
/// signal; an error if the namespace has no process.
pub fn crash_namespace(ns: &str) -> Result<Instant> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let pids = ns_pids(ns);
    if pids.is_empty() {
        bail!("no process in namespace {ns}");
    }
    let t0 = Instant::now();
    for &p in &pids {
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGSTOP);
    }
    for &p in &pids {
        let _ = kill(Pid::from_raw(p as i32), Signal::SIGKILL);
    }
    Ok(t0)
}

/// Runs a command; its stdout on success, an error with stderr otherwise.
pub fn run_cmd(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

// ---------------------------------------------------------------------------------------------
// Agents, keepalived, logs, VIP ownership, ARP, captures and raw frames.
// ---------------------------------------------------------------------------------------------

/// Debian's keepalived, the interoperability peer.
pub const KEEPALIVED_BIN: &str = "/usr/sbin/keepalived";

/// A state transition as the agent logs it:
/// `state transition instance=VI_1 vrid=51 from="BACKUP" to="MASTER" reason=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub instance: String,
    pub from: String,
    pub to: String,
    /// The whole log line, for messages.
    pub line: String,
}

/// The value of `key=` in a tracing log line (quotes removed), if present.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!(" {key}=");
    let start = line.find(&pat)? + pat.len();
    let rest = line.get(start..)?;
    if let Some(quoted) = rest.strip_prefix('"') {
        let end = quoted.find('"')?;
        quoted.get(..end)
    } else {
        let end = rest.find(' ').unwrap_or(rest.len());
        rest.get(..end)
    }
}

/// Every state transition an agent log shows, of `instance` (all instances with `None`).
pub fn transitions(log: &str, instance: Option<&str>) -> Vec<Transition> {
    log.lines()
        .filter(|l| l.contains("state transition"))
        .filter_map(|l| {
            let t = Transition {
                instance: field(l, "instance")?.to_string(),
                from: field(l, "from")?.to_string(),
                to: field(l, "to")?.to_string(),
                line: l.to_string(),
            };
            match instance {
                Some(i) if i != t.instance => None,
                _ => Some(t),
            }
        })
        .collect()
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Result<[u8; 6]> {
    let mut mac = [0u8; 6];
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() != 6 {
        bail!("not a MAC address: {s:?}");
    }
    for (b, p) in mac.iter_mut().zip(parts) {
        *b = u8::from_str_radix(p, 16).with_context(|| format!("not a MAC address: {s:?}"))?;
    }
    Ok(mac)
}

/// An Ethernet II frame around `payload`.
pub fn eth_frame(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// The Ethernet multicast MAC of 224.0.0.18 (VRRP over IPv4).
pub const VRRP_MAC_V4: [u8; 6] = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x12];
/// The Ethernet multicast MAC of ff02::12 (VRRP over IPv6).
pub const VRRP_MAC_V6: [u8; 6] = [0x33, 0x33, 0x00, 0x00, 0x00, 0x12];

impl Lab {
    /// Writes `contents` to `<lab dir>/<name>` and returns the path.
    pub fn write_file(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Starts `vrrp-agent ARGS` inside the host's namespace; its log is `<lab dir>/<name>.log`
    /// (see [`Lab::log`]). Use a new `name` for each start, so each log holds one run.
    pub fn agent(&mut self, host: &Host, name: &str, args: &[&str]) -> Result<u32> {
        let bin = agent_bin();
        if !bin.exists() {
            bail!(
                "agent binary {} does not exist: build it (`cargo xtask build --debug`) or set VRRP_AGENT_BIN",
                bin.display()
            );
        }
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // Files the agent would otherwise share with every other agent on the machine
        // (namespaces do not separate the filesystem): one of each per agent, in the lab dir.
        for (flag, file) in [
            ("--control-socket", format!("{name}.sock")),
            ("--dump-path", format!("{name}.data.json")),
        ] {
            if !args.iter().any(|a| a == flag) {
                args.push(flag.to_string());
                args.push(self.path(&file).display().to_string());
            }
        }
        self.spawn(&host.ns, name, &bin, &args)
    }

    /// `vrrp-agent status --json` of the agent started as `name` (its control socket is
    /// `<lab dir>/<name>.sock`), parsed.
    pub fn status_json(&self, name: &str) -> Result<serde_json::Value> {
        let sock = self.path(&format!("{name}.sock"));
        let out = run_cmd(
            Command::new(agent_bin())
                .args(["status", "--json", "--socket"])
                .arg(&sock),
        )?;
        serde_json::from_str(&out).with_context(|| format!("status of {name} is not JSON: {out}"))
    }

    /// Writes `conf` to `<lab dir>/<name>.conf` and starts `vrrp-agent -f` on it, with
    /// `extra` flags (e.g. `--no-xdp`).
    pub fn agent_conf(
        &mut self,
        host: &Host,
        name: &str,
        conf: &str,
        extra: &[&str],
    ) -> Result<u32> {
        let path = self.write_file(&format!("{name}.conf"), conf)?;
        let path = path.display().to_string();
        let mut args = vec!["-f", path.as_str()];
        args.extend_from_slice(extra);
        self.agent(host, name, &args)
    }

    /// Writes `conf` to `<lab dir>/<name>.conf` and starts Debian's keepalived (VRRP only, in
    /// the foreground, logging to `<lab dir>/<name>.log`) in the host's namespace, with its
    /// own pid files so it never meets another instance's.
    pub fn keepalived(&mut self, host: &Host, name: &str, conf: &str) -> Result<u32> {
        if !Path::new(KEEPALIVED_BIN).exists() {
            bail!("{KEEPALIVED_BIN} is missing: install Debian's keepalived (`cargo xtask deps`)");
        }
        let conf = self.write_file(&format!("{name}.conf"), conf)?;
        let pid = self.path(&format!("{name}.pid"));
        let vrrp_pid = self.path(&format!("{name}.vrrp.pid"));
        // A stale pid file (an earlier run under the same name) makes keepalived refuse to
        // start if its PID was reused.
        let _ = fs::remove_file(&pid);
        let _ = fs::remove_file(&vrrp_pid);
        let args: Vec<String> = [
            "-n",
            "-l",
            "-D",
            "-G",
            "--vrrp",
            "-f",
            &conf.display().to_string(),
            "-p",
            &pid.display().to_string(),
            "-r",
            &vrrp_pid.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        self.spawn(&host.ns, name, Path::new(KEEPALIVED_BIN), &args)
    }

    /// The PID of the latest process started under `name`, if it still runs.
    pub fn pid(&mut self, name: &str) -> Option<u32> {
        let p = self.procs.iter_mut().rev().find(|p| p.name == name)?;
        match p.child.try_wait() {
            Ok(None) => Some(p.child.id()),
            _ => None,
        }
    }

    /// Whether the latest process started under `name` still runs.
    pub fn running(&mut self, name: &str) -> bool {
        self.pid(name).is_some()
    }

    /// The state transitions in the log of agent `name`, of `instance` (all with `None`).
    pub fn transitions(&self, name: &str, instance: Option<&str>) -> Vec<Transition> {
        transitions(&self.log(name), instance)
    }

    /// The state of `instance` according to the last transition agent `name` logged.
    pub fn state(&self, name: &str, instance: &str) -> Option<String> {
        self.transitions(name, Some(instance)).pop().map(|t| t.to)
    }

    /// Holds for `d`, then asserts that agent `name` logged no transition of `instance`
    /// meanwhile and that the instance is in `state`.
    pub fn stays(&self, name: &str, instance: &str, state: &str, d: Duration) {
        let before = self.transitions(name, Some(instance)).len();
        std::thread::sleep(d);
        let after = self.transitions(name, Some(instance));
        assert_eq!(
            after.len(),
            before,
            "{name} {instance} changed state: {:?}\n{}",
            after.get(before..),
            self.all_logs()
        );
        assert_eq!(self.state(name, instance).as_deref(), Some(state));
    }

    /// Waits until agent `name` logs that `instance` entered `state` (`MASTER`, `BACKUP`,
    /// `FAULT`) and that is its latest transition.
    pub fn wait_state(
        &self,
        name: &str,
        instance: &str,
        state: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.wait_until(&format!("{name} {instance} to be {state}"), timeout, || {
            Ok(self.state(name, instance).as_deref() == Some(state))
        })
    }

    /// Waits until the log of process `name` contains `needle`.
    pub fn wait_log(&self, name: &str, needle: &str, timeout: Duration) -> Result<()> {
        self.wait_until(&format!("{needle:?} in {name}'s log"), timeout, || {
            Ok(self.log(name).contains(needle))
        })
    }

    /// The lab hosts that have `vip` bound on their interface, in the order they were added.
    pub fn vip_owner(&self, vip: &str) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|h| self.has_addr(h, vip).unwrap_or(false))
            .map(|h| h.name.clone())
            .collect()
    }

    /// Waits until exactly the hosts `owners` have `vip` bound.
    pub fn wait_owner(&self, vip: &str, owners: &[&str], timeout: Duration) -> Result<()> {
        self.wait_until(
            &format!("{vip} owned by exactly {owners:?}"),
            timeout,
            || Ok(self.vip_owner(vip) == owners),
        )
    }

    /// Asks for `ip` with one ARP request (`arping -c1 -w1`) from `from`'s interface; the
    /// MAC address of the first reply, lower case, or `None` without a reply.
    pub fn arp_who_has(&self, from: &Host, ip: &str) -> Option<String> {
        let out = self
            .sh_output(&from.ns, &format!("arping -c1 -w1 -I {} {ip}", from.ifname))
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout);
        // iputils: "Unicast reply from 192.0.2.3 [AA:BB:CC:DD:EE:FF]  0.6ms"
        text.lines()
            .filter(|l| l.contains("reply from"))
            .find_map(|l| {
                let start = l.find('[')? + 1;
                let end = l.get(start..)?.find(']')? + start;
                l.get(start..end).map(str::to_lowercase)
            })
    }

    /// Retries [`Lab::arp_who_has`] until a reply comes back; its MAC.
    pub fn wait_arp_reply(&self, from: &Host, ip: &str, timeout: Duration) -> Result<String> {
        let mut mac = None;
        self.wait_until(&format!("an ARP reply for {ip}"), timeout, || {
            mac = self.arp_who_has(from, ip);
            Ok(mac.is_some())
        })?;
        mac.context("no ARP reply")
    }

    /// Starts tshark on the host's interface with capture filter `filter`, writing
    /// `<lab dir>/<name>.pcapng`. It stops by itself after `count` packets or `secs` seconds
    /// (killed with the lab otherwise). Returns once tshark reports it is capturing.
    /// Collect with [`Lab::capture_wait`].
    pub fn capture(
        &mut self,
        host: &Host,
        name: &str,
        filter: &str,
        count: u32,
        secs: u32,
    ) -> Result<PathBuf> {
        let file = self.path(&format!("{name}.pcapng"));
        let args: Vec<String> = vec![
            "-n".into(),
            "-q".into(),
            "-i".into(),
            host.ifname.clone(),
            "-f".into(),
            filter.into(),
            "-c".into(),
            count.to_string(),
            "-a".into(),
            format!("duration:{secs}"),
            "-w".into(),
            file.display().to_string(),
        ];
        self.spawn(&host.ns, name, Path::new("tshark"), &args)?;
        self.wait_log(name, "Capturing on", Duration::from_secs(20))?;
        Ok(file)
    }

    /// Waits for capture `name` to end (count reached or duration over) and returns its file.
    pub fn capture_wait(&mut self, name: &str, timeout: Duration) -> Result<PathBuf> {
        self.wait_exit(name, timeout)?;
        Ok(self.path(&format!("{name}.pcapng")))
    }

    /// Reads a capture with `tshark -r FILE -Y FILTER -T fields -e F...`: one row per packet.
    pub fn tshark_fields(
        &self,
        file: &Path,
        display_filter: &str,
        fields: &[&str],
    ) -> Result<Vec<Vec<String>>> {
        let mut c = Command::new("tshark");
        c.arg("-n").arg("-r").arg(file).args([
            "-Y",
            display_filter,
            "-T",
            "fields",
            "-E",
            "separator=|",
        ]);
        for f in fields {
            c.args(["-e", f]);
        }
        let out = run_cmd(&mut c)?;
        Ok(out
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| l.split('|').map(|s| s.trim().to_string()).collect())
            .collect())
    }

    /// Sends raw Ethernet `frames` out of the host's interface through an AF_PACKET socket,
    /// cycling through them until `max_packets` are sent or `max_time` is over (bounded floods,
    /// LAB.md). Returns how many were sent.
    pub fn send_frames(
        &self,
        host: &Host,
        frames: Vec<Vec<u8>>,
        max_packets: u64,
        max_time: Duration,
    ) -> Result<u64> {
        if frames.is_empty() {
            return Ok(0);
        }
        let ifname = host.ifname.clone();
        in_netns(&host.ns, move || {
            send_frames_here(&ifname, &frames, max_packets, max_time)
        })?
    }
}

/// The body of [`Lab::send_frames`], in the current thread's namespace.
fn send_frames_here(
    ifname: &str,
    frames: &[Vec<u8>],
    max_packets: u64,
    max_time: Duration,
) -> Result<u64> {
    let cname = std::ffi::CString::new(ifname)?;
    // SAFETY: a valid NUL-terminated string.
    let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if ifindex == 0 {
        bail!("no interface {ifname}");
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a socket we own from here on.
    let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
    // SAFETY: sockaddr_ll is plain data; zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = ifindex as i32;
    sll.sll_halen = 6;
    let deadline = Instant::now() + max_time;
    let mut sent = 0u64;
    let mut i = 0usize;
    while sent < max_packets && Instant::now() < deadline {
        let f = &frames[i % frames.len()];
        i += 1;
        // SAFETY: buffer and address are valid for the call.
        let r = unsafe {
            libc::sendto(
                raw,
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const sll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOBUFS) || e.raw_os_error() == Some(libc::EAGAIN) {
                std::thread::sleep(Duration::from_micros(200));
                continue;
            }
            bail!("sendto on {ifname}: {e}");
        }
        sent += 1;
    }
    Ok(sent)
}

/// One `vrrp_instance` of a generated keepalived.conf, written one keyword per line so that
/// Debian's keepalived and vrrp-agent read it the same way.
#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    /// `MASTER` or `BACKUP`.
    pub state: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    /// Seconds, fractions allowed with VRRPv3 (`"0.1"`).
    pub advert_int: String,
    /// 2 or 3.
    pub version: u8,
    /// `authentication { auth_type PASS auth_pass P }` (VRRPv2 only).
    pub auth_pass: Option<String>,
    /// `virtual_ipaddress` lines, e.g. `192.0.2.3/24 dev eth0 label eth0:3`.
    pub vips: Vec<String>,
    pub nopreempt: bool,
    pub unicast_src: Option<String>,
    pub unicast_peers: Vec<String>,
    pub native_ipv6: bool,
}

impl Instance {
    /// The seed's VI_1 (SEED.md): VRID 51, advert_int 1, PASS 1111, VIP 192.0.2.3/24 label
    /// eth0:3; VRRPv2 (keepalived's default).
    pub fn seed(state: &str, priority: u8) -> Self {
        Self {
            name: "VI_1".into(),
            state: state.into(),
            interface: "eth0".into(),
            vrid: 51,
            priority,
            advert_int: "1".into(),
            version: 2,
            auth_pass: Some("1111".into()),
            vips: vec!["192.0.2.3/24 dev eth0 label eth0:3".into()],
            nopreempt: false,
            unicast_src: None,
            unicast_peers: Vec::new(),
            native_ipv6: false,
        }
    }

    /// [`Instance::seed`] as VRRPv3 at 100 ms adverts, without authentication.
    pub fn fast(state: &str, priority: u8) -> Self {
        Self {
            advert_int: "0.1".into(),
            version: 3,
            auth_pass: None,
            ..Self::seed(state, priority)
        }
    }

    /// The instance's text.
    pub fn render(&self) -> String {
        let mut s = format!("vrrp_instance {} {{\n", self.name);
        s.push_str(&format!("    state {}\n", self.state));
        s.push_str(&format!("    interface {}\n", self.interface));
        s.push_str(&format!("    virtual_router_id {}\n", self.vrid));
        s.push_str(&format!("    priority {}\n", self.priority));
        s.push_str(&format!("    advert_int {}\n", self.advert_int));
        s.push_str(&format!("    version {}\n", self.version));
        if self.nopreempt {
            s.push_str("    nopreempt\n");
        }
        if self.native_ipv6 {
            s.push_str("    native_ipv6\n");
        }
        if let Some(p) = &self.auth_pass {
            s.push_str("    authentication {\n        auth_type PASS\n");
            s.push_str(&format!("        auth_pass {p}\n    }}\n"));
        }
        if let Some(src) = &self.unicast_src {
            s.push_str(&format!("    unicast_src_ip {src}\n"));
        }
        if !self.unicast_peers.is_empty() {
            s.push_str("    unicast_peer {\n");
            for p in &self.unicast_peers {
                s.push_str(&format!("        {p}\n"));
            }
            s.push_str("    }\n");
        }
        s.push_str("    virtual_ipaddress {\n");
        for v in &self.vips {
            s.push_str(&format!("        {v}\n"));
        }
        s.push_str("    }\n}\n");
        s
    }
}

/// A whole keepalived.conf: `global_defs { router_id R }` and the instances.
pub fn keepalived_conf(router_id: &str, instances: &[Instance]) -> String {
    let mut s = format!("global_defs {{\n    router_id {router_id}\n}}\n");
    for i in instances {
        s.push_str(&i.render());
    }
    s
}

/// A lab config file (`testdata/lab/NAME`), e.g. the seed's configs one keyword per line.
pub fn lab_config(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/lab")
        .join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

impl Lab {
    /// Resolves `ip` from `from` through the kernel's neighbour table (ARP for IPv4, neighbour
    /// discovery for IPv6): flushes the entry, sends one UDP datagram to it (port 9, discard)
    /// and returns the MAC the kernel learnt (lower case), or `None` within about 1.5 s.
    /// (There is no ping in the lab image; for a plain ARP request see [`Lab::arp_who_has`].)
    pub fn nd_who_has(&self, from: &Host, ip: &str) -> Option<String> {
        let addr: std::net::IpAddr = ip.parse().ok()?;
        let _ = self.ip(
            &from.ns,
            &format!("neigh flush to {ip} dev {}", from.ifname),
        );
        self.poke(from, ip).ok()?;
        let deadline = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < deadline {
            if let Some(mac) = self.neigh_mac(from, &addr.to_string()) {
                return Some(mac);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Sends one UDP datagram from `from` to `ip` port 9 (discard), which makes the kernel
    /// resolve `ip` if its neighbour entry is missing.
    pub fn poke(&self, from: &Host, ip: &str) -> Result<()> {
        let addr: std::net::IpAddr = ip
            .parse()
            .with_context(|| format!("not an address: {ip}"))?;
        in_netns(&from.ns, move || -> std::io::Result<()> {
            let bind = if addr.is_ipv6() {
                "[::]:0"
            } else {
                "0.0.0.0:0"
            };
            let sock = std::net::UdpSocket::bind(bind)?;
            sock.send_to(b"vrrp-xdp lab", std::net::SocketAddr::new(addr, 9))?;
            Ok(())
        })??;
        Ok(())
    }

    /// The MAC `from`'s neighbour table holds for `ip` (lower case), without asking the
    /// network: `None` if there is no usable entry.
    pub fn neigh_mac(&self, from: &Host, ip: &str) -> Option<String> {
        let out = self
            .ip(&from.ns, &format!("neigh show to {ip} dev {}", from.ifname))
            .ok()?;
        if out.contains("INCOMPLETE") || out.contains("FAILED") {
            return None;
        }
        let words: Vec<&str> = out.split_whitespace().collect();
        let i = words.iter().position(|w| *w == "lladdr")?;
        words.get(i + 1).map(|m| m.to_lowercase())
    }

    /// Retries [`Lab::nd_who_has`] until the address resolves; its MAC.
    pub fn wait_nd_reply(&self, from: &Host, ip: &str, timeout: Duration) -> Result<String> {
        let mut mac = None;
        self.wait_until(&format!("a neighbour advert for {ip}"), timeout, || {
            mac = self.nd_who_has(from, ip);
            Ok(mac.is_some())
        })?;
        mac.context("no neighbour advert")
    }
}
