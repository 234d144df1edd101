//! A real systemd as PID 1 of a container on a lab host (tests/tests/systemd.rs).
//!
//! `systemd-nspawn` needs the host's system bus, which this machine has not; so the container
//! is made by hand, the way nspawn does it: in the host's network namespace, a new PID and
//! mount namespace (`unshare -f -p -m`), an overlay over the cached root file system (made by
//! `cargo xtask rootfs`, never written to), proc, `/sys` and `/dev` bound in, a tmpfs on
//! `/run`, and `chroot ROOT /lib/systemd/systemd --system` with `container=other`.
//!
//! systemd mounts the cgroup hierarchies and manages its own cgroup as the root of its tree;
//! the container is first moved into a cgroup of its own (named after the host's namespace),
//! so that two containers, or a container and the host, never share `system.slice`. Dropping
//! the [`Container`] kills its PID 1 (the kernel kills the rest of the PID namespace; the
//! mount namespace and its mounts go with the last process) and removes that cgroup.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{Host, Lab};

/// Mounts the overlay, enters a cgroup of its own and execs systemd (run by `unshare`).
/// Arguments: the cached root, the container's directory, the cgroup name.
const BOOT: &str = r#"set -eu
lower=$1 dir=$2 cg=$3
mkdir -p "$dir/upper" "$dir/work" "$dir/root" "$dir/cg1" "$dir/cg2"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$dir/upper,workdir=$dir/work" "$dir/root"
# `ip netns exec` mounted a fresh /sys without the cgroup hierarchies: mount the two systemd
# uses, just long enough to move this shell (and so systemd) into a cgroup of its own.
if mount -t cgroup -o none,name=systemd cgroup "$dir/cg1" 2>/dev/null; then
    mkdir -p "$dir/cg1/$cg"; echo $$ > "$dir/cg1/$cg/cgroup.procs"; umount "$dir/cg1"
fi
mount -t cgroup2 cgroup2 "$dir/cg2"
mkdir -p "$dir/cg2/$cg"; echo $$ > "$dir/cg2/$cg/cgroup.procs"; umount "$dir/cg2"
mount -t proc proc "$dir/root/proc"
mount --rbind /sys "$dir/root/sys"
mount --rbind /dev "$dir/root/dev"
mount -t tmpfs -o mode=755 tmpfs "$dir/root/run"
exec env container=other chroot "$dir/root" /lib/systemd/systemd --system
"#;

/// The cached root file system (`cargo xtask test` sets VRRP_SYSTEMD_ROOT).
pub fn rootfs() -> PathBuf {
    let root = std::env::var_os("VRRP_SYSTEMD_ROOT")
        .map(PathBuf::from)
        .expect(
            "VRRP_SYSTEMD_ROOT is not set: `cargo xtask test` makes the root file system \
         (cargo xtask rootfs) and sets it",
        );
    assert!(
        root.join("lib/systemd/systemd").exists(),
        "{} holds no systemd",
        root.display()
    );
    root
}

pub struct Container {
    /// systemd, PID 1 of the container (its PID in ours).
    pub pid: u32,
    /// The container's root as its own mount namespace sees it.
    pub root: PathBuf,
    /// The cgroup the container lives in, under each hierarchy's root.
    cgroup: String,
}

impl Container {
    /// Boots systemd on `host` (its network namespace) over `lower`, and waits until
    /// `systemctl is-system-running` says `running`.
    pub fn boot(lab: &mut Lab, host: &Host, lower: &Path) -> Result<Self> {
        let dir = lab.path(&format!("{}-container", host.name));
        fs::create_dir_all(&dir)?;
        let script = lab.write_file(&format!("{}-boot.sh", host.name), BOOT)?;
        let cgroup = format!("{}-systemd", host.ns);
        let args: Vec<String> = [
            "-f",
            "-p",
            "-m",
            "--propagation",
            "private",
            "/bin/sh",
            &script.display().to_string(),
            &lower.display().to_string(),
            &dir.display().to_string(),
            &cgroup,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let name = format!("{}-systemd", host.name);
        let unshare = lab.spawn(&host.ns, &name, Path::new("/usr/bin/unshare"), &args)?;
        // unshare -f forks: systemd is its only child (the shell exec'd into it).
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid = loop {
            let kids = fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
                .unwrap_or_default();
            if let Some(pid) = kids.split_whitespace().next().and_then(|p| p.parse().ok()) {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "systemd" {
                    break pid;
                }
            }
            if Instant::now() > deadline {
                bail!("systemd did not start:\n{}", lab.log(&name));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let c = Self {
            pid,
            root: dir.join("root"),
            cgroup,
        };
        let mut last = String::new();
        let up = lab.wait_until("systemd to be running", Duration::from_secs(60), || {
            last = c.text(&["systemctl", "is-system-running"])?;
            Ok(last == "running")
        });
        if up.is_err() {
            let failed = c
                .text(&["systemctl", "--failed", "--no-pager"])
                .unwrap_or_default();
            bail!(
                "systemd in the container is {last:?}, not running:\n{failed}\n{}",
                lab.log(&name)
            );
        }
        Ok(c)
    }

    /// `args` run inside the container (its mount, PID and network namespaces, chrooted).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid.to_string(), "-m", "-p", "-n", "chroot"])
            .arg(&self.root)
            .args(args);
        c
    }

    /// The whole output of `args` inside the container, whatever its status.
    pub fn output(&self, args: &[&str]) -> Result<Output> {
        let mut c = self.cmd(args);
        c.output().with_context(|| format!("running {c:?}"))
    }

    /// stdout (trimmed) of `args` inside the container, whatever its status.
    pub fn text(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// stdout of `args` inside the container; an error with its output if it fails.
    pub fn ok(&self, args: &[&str]) -> Result<String> {
        let out = self.output(args)?;
        if !out.status.success() {
            bail!(
                "{args:?} in the container failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Copies the host's file `from` to `to` inside the container (the overlay is mounted in
    /// the container's mount namespace only, so the copy runs there, outside the chroot).
    pub fn copy_in(&self, from: &Path, to: &str) -> Result<()> {
        let dest = self.root.join(to.trim_start_matches('/'));
        crate::run_cmd(
            Command::new("nsenter")
                .args(["-t", &self.pid.to_string(), "-m", "cp"])
                .arg(from)
                .arg(&dest),
        )?;
        Ok(())
    }

    /// Writes `contents` to `to` inside the container (through a file in the lab directory).
    pub fn write(&self, lab: &Lab, to: &str, contents: &str) -> Result<()> {
        let name = format!("copy-in-{}", to.replace('/', "_"));
        let tmp = lab.write_file(&name, contents)?;
        self.copy_in(&tmp, to)
    }

    /// A property of a unit (`systemctl show -p NAME --value UNIT`).
    pub fn prop(&self, unit: &str, name: &str) -> Result<String> {
        self.ok(&["systemctl", "show", "-p", name, "--value", unit])
    }

    /// The unit's journal, messages only (`journalctl -u UNIT -o cat`).
    pub fn journal(&self, unit: &str) -> String {
        self.text(&["journalctl", "-u", unit, "-o", "cat", "--no-pager"])
            .unwrap_or_default()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        // PID 1 of the namespace: the kernel kills every other process in it.
        let _ = kill(nix::unistd::Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        // Its cgroups, deepest first, once the processes have left them.
        let mut dirs = Vec::new();
        if let Ok(hier) = fs::read_dir("/sys/fs/cgroup") {
            for h in hier.flatten() {
                collect_dirs(&h.path().join(&self.cgroup), &mut dirs);
            }
        }
        collect_dirs(&Path::new("/sys/fs/cgroup").join(&self.cgroup), &mut dirs);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dirs.is_empty() && Instant::now() < deadline {
            dirs.retain(|d| fs::remove_dir(d).is_err() && d.exists());
            if !dirs.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if !dirs.is_empty() {
            eprintln!("container cgroups left behind: {dirs:?}");
        }
    }
}

/// `dir` and every directory below it, children before their parents.
fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    if !dir.is_dir() {
        return;
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                collect_dirs(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}
