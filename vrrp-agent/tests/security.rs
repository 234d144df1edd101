//! Script security as keepalived's (issue 16, defect 5), against the real file system and a
//! real user: a script in a world-writable directory is refused with `enable_script_security`
//! (track and notify), runs as the configured user otherwise (the uid it sees, its minimal
//! environment), and `--check` reports the refusal and risky configuration files.
//!
//! Needs root (a user is created for it and removed by a guard; scripts are run as that
//! user). Not root: skipped with a message, unless `VRRP_LAB=1` (set by `cargo xtask test`),
//! where it fails. The tests run one at a time (`SERIAL`) so that no other test's fork holds
//! a script open for writing while it is exec'd (ETXTBSY).

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vrrp_agent::config::{self, Config, NotifySpec, TrackSpec};
use vrrp_agent::notify::{NotifierOptions, NotifyEvent, NotifyKind, NotifyState};
use vrrp_agent::proto::Priority;
use vrrp_agent::track::{Tracker, TrackerOptions};

/// One test at a time: a fork by one test while another writes the script it then execs
/// would make that exec fail (ETXTBSY).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn root_ready() -> bool {
    let root = nix::unistd::geteuid().is_root();
    let lab = std::env::var("VRRP_LAB").is_ok_and(|v| !v.is_empty() && v != "0");
    match (root, lab) {
        (true, _) => true,
        (false, true) => panic!(
            "VRRP_LAB is set but this test is not running as root: it creates a user and runs \
             scripts as that user"
        ),
        (false, false) => {
            eprintln!("skipped: needs root (set VRRP_LAB=1)");
            false
        }
    }
}

/// A system user for this test, removed on drop (also when the test panics).
struct TestUser {
    name: String,
    uid: u32,
}

impl TestUser {
    fn create() -> Self {
        let name = format!("vxsec{}", std::process::id());
        let _ = Command::new("userdel").arg(&name).output();
        let out = Command::new("useradd")
            .args(["--system", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", &name])
            .output()
            .expect("useradd");
        assert!(
            out.status.success(),
            "useradd {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let uid = nix::unistd::User::from_name(&name)
            .expect("getpwnam")
            .expect("the user just created")
            .uid
            .as_raw();
        Self { name, uid }
    }
}

impl Drop for TestUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

/// The test's directory, removed on drop.
struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn conf(global: &str, script: &str, out: &Path, user: &str) -> String {
    format!(
        "global_defs {{\n{global}\n}}\n\
         vrrp_script chk {{\n script \"{script} {track}\"\n interval 1\n weight -20\n{user}\n}}\n\
         vrrp_instance VI_1 {{\n interface lo\n virtual_router_id 1\n priority 100\n \
         virtual_ipaddress {{\n 192.0.2.1\n }}\n track_script {{\n chk\n }}\n \
         notify_master \"{script} {notify}\"\n}}\n",
        track = out.with_extension("track").display(),
        notify = out.with_extension("notify").display(),
    )
}

fn load(p: &Path) -> (Config, Vec<String>) {
    let l = config::load(p).unwrap_or_else(|e| panic!("{e}"));
    let w = l.warnings.iter().map(ToString::to_string).collect();
    (l.config, w)
}

fn check(p: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
        .arg("--check")
        .arg("-f")
        .arg(p)
        .output()
        .expect("vrrp-agent --check");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "--check refused the file: {text}");
    text
}

fn opts() -> TrackerOptions {
    TrackerOptions {
        file_poll: Duration::from_millis(50),
        process_poll: Duration::from_millis(50),
        ..TrackerOptions::default()
    }
}

/// What [`run_both`] saw: what the track script and notify_master wrote (None: not run), the
/// checks' status and VI_1's tracked priority and fault.
struct Ran {
    track: Option<String>,
    notify: Option<String>,
    checks: Vec<vrrp_agent::track::CheckStatus>,
    tracked: Option<(u8, bool)>,
}

/// Run the config's track script and notify_master once.
async fn run_both(cfg: &Config, out: &Path) -> Ran {
    let (t, _rx) = Tracker::spawn_with(&TrackSpec::from_config(cfg), opts());
    let n = vrrp_agent::notify::Notifier::new(
        &NotifySpec::from_config(cfg),
        NotifierOptions::default(),
    )
    .expect("notifier");
    n.notify(NotifyEvent {
        kind: NotifyKind::Instance,
        name: "VI_1".into(),
        state: NotifyState::Master,
        priority: Priority(100),
    });
    n.shutdown().await;
    let track = out.with_extension("track");
    // The check runs at once, then every second: 3 s is plenty for it to have run.
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while !track.exists() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    })
    .await;
    let checks = t.checks();
    let tracked = t
        .current()
        .into_iter()
        .find(|e| e.instance == "VI_1")
        .map(|e| (e.tracked.priority.0, e.tracked.fault));
    t.stop().await;
    let read = |p: PathBuf| std::fs::read_to_string(p).ok();
    Ran {
        track: read(track),
        notify: read(out.with_extension("notify")),
        checks,
        tracked,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_security_refuses_writable_paths_and_runs_scripts_as_the_configured_user() {
    if !root_ready() {
        return;
    }
    let _serial = SERIAL.lock().await;
    let user = TestUser::create();
    let dir = Dir(std::env::temp_dir().join(format!("vrrp-sec-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    chmod(&dir.0, 0o755);
    // World-writable, not sticky: anyone may replace the script in it.
    let ww = dir.0.join("ww");
    std::fs::create_dir(&ww).expect("mkdir ww");
    chmod(&ww, 0o777);
    let script = ww.join("probe.sh");
    std::fs::write(&script, "#!/bin/sh\nid -u > \"$1\"\nenv >> \"$1\"\n").expect("script");
    chmod(&script, 0o755);
    let script = script.display().to_string();

    // 1. enable_script_security, run as root: refused, reported, never run.
    let out = ww.join("a");
    let p = dir.0.join("a.conf");
    std::fs::write(
        &p,
        conf(
            " enable_script_security\n script_user root",
            &script,
            &out,
            "",
        ),
    )
    .expect("conf");
    let (cfg, warnings) = load(&p);
    let refused = |w: &Vec<String>, what: &str| {
        w.iter().any(|l| {
            l.contains(what)
                && l.contains(&format!(
                    "Unsafe permissions found for script '{script}' - disabling"
                ))
        })
    };
    assert!(refused(&warnings, "vrrp_script chk"), "{warnings:#?}");
    assert!(
        refused(&warnings, "notify_master of vrrp_instance VI_1"),
        "{warnings:#?}"
    );
    let text = check(&p);
    assert!(
        text.contains("Unsafe permissions found for script"),
        "{text}"
    );
    let ran = run_both(&cfg, &out).await;
    assert_eq!(ran.track, None, "the refused track script ran");
    assert_eq!(ran.notify, None, "the refused notify script ran");
    // keepalived drops a refused track script from the instance: its weight no longer counts,
    // and the status says why.
    assert_eq!(ran.tracked, Some((100, false)), "{:?}", ran.checks);
    assert!(
        ran.checks.iter().any(|c| c.name == "chk"
            && c.last_result
                .starts_with("disabled: Unsafe permissions found")),
        "{:?}",
        ran.checks
    );

    // 2. No enable_script_security, script_user (global) and `user` (per script): runs as that
    // user, with a minimal environment; the path is not judged (not run as root), and the
    // summary says security is off.
    let out = ww.join("b");
    let p = dir.0.join("b.conf");
    std::fs::write(
        &p,
        conf(
            &format!(" script_user {}", user.name),
            &script,
            &out,
            &format!(" user {}", user.name),
        ),
    )
    .expect("conf");
    let (cfg, warnings) = load(&p);
    assert!(
        warnings.iter().any(|w| w.ends_with(
            "SECURITY VIOLATION - scripts are being executed but script_security not enabled."
        )),
        "{warnings:#?}"
    );
    assert!(
        !warnings.iter().any(|w| w.contains("Unsafe")),
        "{warnings:#?}"
    );
    let ran = run_both(&cfg, &out).await;
    for (what, got) in [("track", ran.track), ("notify", ran.notify)] {
        let got = got.unwrap_or_else(|| panic!("the {what} script did not run"));
        let mut lines = got.lines();
        assert_eq!(
            lines.next(),
            Some(user.uid.to_string().as_str()),
            "{what}: {got}"
        );
        let env: Vec<&str> = lines.collect();
        assert!(
            env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
            "{what}: {env:?}"
        );
        assert!(
            env.contains(&format!("USER={}", user.name).as_str()),
            "{what}: {env:?}"
        );
        assert!(
            !env.iter().any(|l| l.starts_with("CARGO")),
            "{what}: the agent's environment leaked: {env:?}"
        );
    }

    // 3. No enable_script_security and no user (and no keepalived_script): root runs it, with
    // keepalived's warnings.
    if nix::unistd::User::from_name("keepalived_script")
        .ok()
        .flatten()
        .is_none()
    {
        let out = ww.join("c");
        let p = dir.0.join("c.conf");
        std::fs::write(&p, conf("", &script, &out, "")).expect("conf");
        let (cfg, warnings) = load(&p);
        assert!(
            warnings.iter().any(|w| w.contains(&format!(
                "vrrp_script chk: Unsafe permissions found for script '{script}' ("
            ))),
            "{warnings:#?}"
        );
        assert!(
            warnings.iter().any(|w| w.ends_with(
                "SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts."
            )),
            "{warnings:#?}"
        );
        let track = run_both(&cfg, &out)
            .await
            .track
            .expect("the track script did not run");
        assert_eq!(track.lines().next(), Some("0"), "{track}");
    } else {
        eprintln!("part 3 skipped: user keepalived_script exists on this host");
    }

    // 4. Configuration files someone else can change: warned at load and by --check, by path.
    let inc = dir.0.join("inc.conf");
    std::fs::write(&inc, "! nothing\n").expect("include");
    chown(&inc, Some(user.uid), None).expect("chown");
    let p = dir.0.join("d.conf");
    std::fs::write(
        &p,
        format!(
            "include {}\n{}",
            inc.display(),
            conf("", "/bin/true", &out, "")
        ),
    )
    .expect("conf");
    chmod(&p, 0o666);
    let (_, warnings) = load(&p);
    let text = check(&p);
    for w in [
        format!(
            "configuration file {} is world-writable (mode 0666)",
            p.display()
        ),
        format!(
            "configuration file {} is owned by uid {} (neither root",
            inc.display(),
            user.uid
        ),
    ] {
        assert!(
            warnings.iter().any(|l| l.contains(&w)),
            "{w}: {warnings:#?}"
        );
        assert!(text.contains(&w), "{w}: {text}");
    }
}

/// issue 16, defect 7: `vrrp-agent status` by a user who may not open the control socket
/// said "connect to PATH (is vrrp-agent running?)"; it says permission denied.
#[test]
fn status_says_permission_denied_when_it_is() {
    if !root_ready() {
        return;
    }
    let _serial = SERIAL.blocking_lock();
    let dir = Dir(std::env::temp_dir().join(format!("vrrp-sec-status-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("mkdir");
    chmod(&dir.0, 0o755);
    let sock = dir.0.join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).expect("bind");
    chmod(&sock, 0o600);
    let out = Command::new("setpriv")
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .arg(env!("CARGO_BIN_EXE_vrrp-agent"))
        .args(["status", "--socket"])
        .arg(&sock)
        .output()
        .expect("setpriv");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("connect to {}: permission denied", sock.display())),
        "{err}"
    );
    assert!(!err.contains("is vrrp-agent running"), "{err}");
}
