//! `cargo xtask test`: the whole suite. Unit tests, then (as root) the XDP program on crafted
//! frames and the namespace lab, then a short run of each fuzz target. In CI a lab test that
//! cannot run is a failure, not a skip.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::build::{self, BuildOpts};
use crate::deb;
use crate::deps;
use crate::fuzz;
use crate::rootfs;
use crate::soak;
use crate::util::{self, run};

#[derive(Args, Debug)]
pub struct TestOpts {
    /// Only the tests that need neither root nor the XDP object.
    #[arg(long)]
    pub unit: bool,
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    pub no_lint: bool,
    /// Seconds each fuzz target runs after the tests (each target counts as one test); 0 skips
    /// them.
    #[arg(long, default_value_t = 15, value_name = "SECS")]
    pub fuzz_secs: u64,
    /// Seconds of the randomized fault soak (`cargo xtask soak`, one test); 0 skips it.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub soak_secs: u64,
    /// The soak's seed (a fixed one by default, so that CI replays the same fault sequence and
    /// a failure replays with `cargo xtask soak --seed`).
    #[arg(long, default_value_t = 1, value_name = "SEED")]
    pub soak_seed: u64,
    /// Passed to the test binaries (a name filter, `--nocapture`, ...).
    #[arg(last = true)]
    pub args: Vec<String>,
}

#[derive(Default)]
struct Tally {
    passed: u64,
    failed: u64,
    ignored: u64,
}

pub fn main(opts: &TestOpts) -> Result<()> {
    let root = util::root();
    let ci = std::env::var_os("CI").is_some();
    if !opts.no_lint {
        run(Command::new("cargo")
            .current_dir(&root)
            .args(["fmt", "--all", "--", "--check"]))?;
    }
    let mut tally = Tally::default();
    if opts.unit {
        if !opts.no_lint {
            clippy(&root)?;
        }
        cargo_test(
            &mut tally,
            &["--workspace", "--exclude", "vrrp-ebpf"],
            &[],
            &opts.args,
        )?;
        return finish(&tally);
    }
    if !util::is_root() {
        bail!(
            "the lab and XDP tests need root (network namespaces, BPF): run `sudo -E cargo xtask test`, \
             or `cargo xtask test --unit` for the unprivileged part"
        );
    }
    deps::ensure_debian_packages(deps::TEST_PACKAGES)?;
    let agent = build::build_all(&BuildOpts { debug: true })?;
    let obj = build::ebpf_object();
    if !opts.no_lint {
        clippy(&root)?;
    }
    let mut env: Vec<(&str, String)> = vec![
        ("VRRP_LAB", "1".into()),
        ("VRRP_EBPF_OBJ", obj.display().to_string()),
        ("VRRP_AGENT_BIN", agent.display().to_string()),
    ];
    // The package needs a release build: only when a test that installs it is selected (a run
    // without a filter, or a filter naming it), so subsets stay quick. Without VRRP_DEB the
    // package test fails, it does not skip.
    let systemd = SYSTEMD_TESTS.iter().any(|t| selects(&opts.args, t));
    if selects(&opts.args, DEB_TEST) || systemd {
        env.push(("VRRP_DEB", deb::build_deb()?.display().to_string()));
    }
    // The systemd tests boot a real systemd in a debootstrapped root (made once, cached).
    if systemd {
        env.push(("VRRP_SYSTEMD_ROOT", rootfs::ensure()?.display().to_string()));
    }
    cargo_test(
        &mut tally,
        &["--workspace", "--exclude", "vrrp-ebpf"],
        &env,
        &opts.args,
    )?;
    cargo_test(
        &mut tally,
        &["-p", "vrrp-tests", "--features", "lab"],
        &env,
        &opts.args,
    )?;
    if opts.soak_secs > 0 {
        soak_once(&mut tally, &agent, opts.soak_secs, opts.soak_seed);
    }
    if opts.fuzz_secs > 0 {
        fuzz_all(&mut tally, opts.fuzz_secs)?;
    }
    if ci && tally.ignored > 0 {
        eprintln!("xtask: {} test(s) were ignored", tally.ignored);
    }
    finish(&tally)
}

/// The soak for `secs` seconds with `seed`: one passed or failed test.
fn soak_once(tally: &mut Tally, agent: &std::path::Path, secs: u64, seed: u64) {
    match soak::run(agent, std::time::Duration::from_secs(secs), seed) {
        // keepalived's violations are the report's baseline, not a failure of ours.
        Ok(r) if r.ours() == 0 => {
            println!("soak ({secs} s, seed {seed}) ... ok");
            tally.passed += 1;
        }
        Ok(r) => {
            println!(
                "soak ({secs} s, seed {seed}) ... FAILED: {} violation(s) of vrrp-agent",
                r.ours()
            );
            tally.failed += 1;
        }
        Err(e) => {
            println!("soak ({secs} s, seed {seed}) ... FAILED: {e:#}");
            tally.failed += 1;
        }
    }
}

/// The lab test that installs the Debian package (tests/tests/deb.rs).
const DEB_TEST: &str = "deb_package_installs_removes_and_purges";

/// The lab tests that boot systemd in a container and install the package there
/// (tests/tests/systemd.rs).
const SYSTEMD_TESTS: &[&str] = &[
    "systemd_runs_the_package_start_reload_kill_restart_stop",
    "systemd_verifies_the_unit_and_keepalived_conflicts",
];

/// Whether cargo test's name filters in `args` select the test `name`: no filter selects
/// everything; a filter selects names containing it. Flags (`--nocapture`, ...) are not filters.
fn selects(args: &[String], name: &str) -> bool {
    let mut filters = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            // libtest options that take a value: the value is not a filter.
            "--skip" | "--test-threads" | "--format" | "--color" | "-Z" | "--logfile" => {
                it.next();
            }
            s if s.starts_with('-') => {}
            s => filters.push(s),
        }
    }
    filters.is_empty() || filters.iter().any(|f| name.contains(f))
}

/// Every fuzz target for `secs` seconds; one passed or failed test each.
fn fuzz_all(tally: &mut Tally, secs: u64) -> Result<()> {
    let runs = match fuzz::run_targets(secs, fuzz::TARGETS) {
        Ok(r) => r,
        Err(e) => {
            let _ = finish(tally);
            return Err(e.context("the fuzz targets could not run"));
        }
    };
    for r in runs {
        match r.failure {
            None => {
                println!("fuzz {} ... ok", r.target);
                tally.passed += 1;
            }
            Some(why) => {
                println!("fuzz {} ... FAILED: {why}", r.target);
                tally.failed += 1;
            }
        }
    }
    Ok(())
}

fn clippy(root: &std::path::Path) -> Result<()> {
    run(Command::new("cargo").current_dir(root).args([
        "clippy",
        "--workspace",
        "--exclude",
        "vrrp-ebpf",
        "--all-targets",
        "--all-features",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Runs `cargo test`, streaming its output and adding up its "test result:" lines.
fn cargo_test(
    tally: &mut Tally,
    sel: &[&str],
    env: &[(&str, String)],
    args: &[String],
) -> Result<()> {
    let mut cmd = Command::new("cargo");
    cmd.current_dir(util::root()).arg("test").args(sel);
    for (k, v) in env {
        cmd.env(k, v);
    }
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    eprintln!("+ {}", util::show(&cmd));
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start cargo test")?;
    let out = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.trim().strip_prefix("test result: ") {
            tally.passed += field(rest, "passed");
            tally.failed += field(rest, "failed");
            tally.ignored += field(rest, "ignored");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let _ = finish(tally);
        bail!("cargo test failed ({status})");
    }
    Ok(())
}

fn field(summary: &str, name: &str) -> u64 {
    summary
        .split([';', '.'])
        .filter_map(|p| p.trim().strip_suffix(name))
        .filter_map(|n| n.trim().parse().ok())
        .next()
        .unwrap_or(0)
}

fn finish(t: &Tally) -> Result<()> {
    println!();
    println!(
        "{} passed, {} failed, {} skipped",
        t.passed, t.failed, t.ignored
    );
    if t.passed == 0 {
        bail!("no test ran");
    }
    if t.failed > 0 {
        bail!("{} test(s) failed", t.failed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn filters_select_like_libtest() {
        assert!(selects(&[], DEB_TEST));
        assert!(selects(&args(&["--nocapture"]), DEB_TEST));
        assert!(selects(&args(&["deb_"]), DEB_TEST));
        assert!(!selects(&args(&["split_brain"]), DEB_TEST));
        assert!(!selects(&args(&["--skip", "deb", "split"]), DEB_TEST));
    }
}
