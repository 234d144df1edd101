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
            procs: Vec::new(),
            hosts: Vec::new(),
            pass_programs: Vec::new(),
            keep_dir: std::env::var_os("VRRP_LAB_KEEP").is_some(),
        };
        let br = lab.bridge_ns.clone();
        lab.add_ns(&br)?;
        lab.ip(&br, "link add br0 type bridge")?;
        // No STP delay, no multicast snooping: VRRP multicast must reach every port at once.
        lab.ip(
            &br,
            "link set br0 type bridge forward_delay 0 stp_state 0 mcast_snooping 0",
        )?;
        lab.ip(&br, "link set br0 up")?;
        Ok(lab)
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
        let ns = format!("{}-{name}", self.tag);
        self.add_ns(&ns)?;
        let port = format!("p-{name}");
        run_cmd(Command::new("ip").args([
            "link",
            "add",
            "eth0",
            "netns",
            &ns,
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            &self.bridge_ns,
        ]))?;
        let br = self.bridge_ns.clone();
        self.ip(&br, &format!("link set {port} master br0"))?;
        self.ip(&br, &format!("link set {port} up"))?;
        // IPv6 DAD would hold addresses tentative for a second; the lab needs them at once.
        self.sh(&ns, "sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.eth0.accept_dad=0")?;
        for a in addrs {
            self.ip(&ns, &format!("addr add {a} dev eth0"))?;
        }
        self.ip(&ns, "link set eth0 up")?;
        self.attach_pass(&port)?;
        let mac = self.sh(&ns, "cat /sys/class/net/eth0/address")?;
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
        // through `sh`), then remove the namespaces: their veths go with them.
        for ns in &self.namespaces {
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                    }
                }
            }
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
