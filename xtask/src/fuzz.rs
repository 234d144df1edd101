//! `cargo xtask fuzz`: the cargo-fuzz targets of `fuzz/` (the VRRP codec, the keepalived.conf
//! parser, the XDP verdict), each for a bounded time, seeded from `testdata/`.
//!
//! Installs what it needs: a C++ compiler (libfuzzer-sys builds libFuzzer), the nightly
//! toolchain (shared with the eBPF build) and a pinned cargo-fuzz under
//! `target/cargo-fuzz/<version>/`, once. Working files live under `target/fuzz/`: the build,
//! the seeds (rewritten on every run), the corpus (kept, so runs build on each other).
//! Crash inputs land in `fuzz/artifacts/<target>/` (cargo-fuzz's place, ignored by git).

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::util::{self, run};
use crate::{deps, toolchain};

/// cargo-fuzz release used (built with the nightly; 0.13 builds with rustc 1.97).
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Every target in fuzz/Cargo.toml.
pub const TARGETS: &[&str] = &["codec_decode", "config_parse", "xdp_classify"];

/// Debian packages: libfuzzer-sys compiles libFuzzer (C++).
const PACKAGES: &[&str] = &["g++"];

/// One input taking longer than this is a hang, reported like a crash.
const INPUT_TIMEOUT_SECS: u64 = 10;

#[derive(Args, Debug)]
pub struct FuzzOpts {
    /// Seconds to fuzz each target.
    #[arg(long, default_value_t = 60)]
    pub secs: u64,
    /// Only this target (repeatable); default: all of them.
    #[arg(long = "target", value_name = "NAME")]
    pub targets: Vec<String>,
}

/// What one bounded run of one target gave.
pub struct TargetRun {
    pub target: String,
    /// Inputs executed (libFuzzer's "Done N runs").
    pub execs: u64,
    /// Files in the corpus directory after the run.
    pub corpus: usize,
    /// Why the run failed: a crash (with its artifact) or a libFuzzer error.
    pub failure: Option<String>,
}

pub fn main(opts: &FuzzOpts) -> Result<()> {
    let targets = select(&opts.targets)?;
    let runs = run_targets(opts.secs, &targets)?;
    let failed: Vec<&TargetRun> = runs.iter().filter(|r| r.failure.is_some()).collect();
    if failed.is_empty() {
        println!(
            "fuzz: {} target(s) ran {} s each without a crash",
            runs.len(),
            opts.secs
        );
        return Ok(());
    }
    for r in &failed {
        eprintln!(
            "fuzz: {}: {}",
            r.target,
            r.failure.as_deref().unwrap_or_default()
        );
    }
    bail!(
        "{} fuzz target(s) failed: {}",
        failed.len(),
        failed
            .iter()
            .map(|r| r.target.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn select(names: &[String]) -> Result<Vec<&'static str>> {
    if names.is_empty() {
        return Ok(TARGETS.to_vec());
    }
    names
        .iter()
        .map(|n| {
            TARGETS
                .iter()
                .copied()
                .find(|t| t == n)
                .with_context(|| format!("no fuzz target {n}; there are {}", TARGETS.join(", ")))
        })
        .collect()
}

/// Installs what is missing, builds every target once, then runs each for `secs` seconds.
/// A crash is a failed [`TargetRun`]; an error is a broken setup.
pub fn run_targets(secs: u64, targets: &[&str]) -> Result<Vec<TargetRun>> {
    deps::ensure_debian_packages(PACKAGES)?;
    toolchain::nightly_sysroot()?;
    let bin_dir = ensure_cargo_fuzz()?;
    let root = util::root();
    let work = root.join("target/fuzz");
    let path = match std::env::var_os("PATH") {
        Some(p) => {
            let mut dirs = vec![bin_dir];
            dirs.extend(std::env::split_paths(&p));
            std::env::join_paths(dirs)?
        }
        None => bin_dir.into_os_string(),
    };
    let cargo_fuzz = |sub: &str| {
        let mut c = Command::new("cargo");
        c.current_dir(root.join("fuzz"))
            .env("PATH", &path)
            .args(["+nightly", "fuzz", sub])
            // Release with debug assertions (overflow checks); no sanitizer: the code under
            // test is safe Rust, and the budget buys more executions without ASan. (cargo-fuzz's
            // one codegen unit kept: 16 cost far more executions than they saved build time.)
            .args(["-O", "-a", "-s", "none", "--target-dir"])
            .arg(work.join("build"));
        c
    };
    run(&mut cargo_fuzz("build"))?;
    let mut runs = Vec::new();
    for t in targets {
        let seeds = work.join("seeds").join(t);
        let corpus = work.join("corpus").join(t);
        write_seeds(t, &seeds)?;
        fs::create_dir_all(&corpus)?;
        let mut cmd = cargo_fuzz("run");
        cmd.arg(t)
            .arg(&corpus)
            .arg(&seeds)
            .arg("--")
            .arg(format!("-max_total_time={secs}"))
            .arg(format!("-timeout={INPUT_TIMEOUT_SECS}"))
            .arg("-print_final_stats=1");
        let r = run_one(t, &mut cmd, &corpus)?;
        println!(
            "fuzz: {t}: {} executions in {secs} s, corpus {} inputs{}",
            r.execs,
            r.corpus,
            if r.failure.is_some() { ", FAILED" } else { "" }
        );
        runs.push(r);
    }
    Ok(runs)
}

/// Runs one target, echoing libFuzzer's output (stderr), and reads its outcome from it.
fn run_one(target: &str, cmd: &mut Command, corpus: &Path) -> Result<TargetRun> {
    eprintln!("+ {}", util::show(cmd));
    let mut child = cmd
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start cargo fuzz run")?;
    let err = child.stderr.take().context("no stderr")?;
    let mut execs = 0;
    let mut artifact = None;
    let mut last_lines: Vec<String> = Vec::new();
    for line in BufReader::new(err).lines() {
        let line = line?;
        // Status lines arrive often: show only the interesting ones.
        if !line.starts_with('#') || line.contains("DONE") || line.contains("INITED") {
            eprintln!("{line}");
        }
        if let Some(n) = line
            .strip_prefix("Done ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
        {
            execs = n;
        }
        if let Some(p) = line.split("Test unit written to ").nth(1) {
            artifact = Some(p.trim().to_string());
        }
        last_lines.push(line);
        if last_lines.len() > 40 {
            last_lines.remove(0);
        }
    }
    let status = child.wait()?;
    let corpus_len = fs::read_dir(corpus).map(|d| d.count()).unwrap_or(0);
    let failure = if status.success() {
        None
    } else {
        Some(match artifact {
            Some(a) => {
                let path = util::root().join("fuzz").join(&a);
                format!(
                    "crashed ({status}); input: {}; replay with `cd fuzz && cargo +nightly fuzz \
                     run -O -a -s none --target-dir ../target/fuzz/build \
                     {target} {}`",
                    path.display(),
                    path.display()
                )
            }
            None => format!("failed ({status}):\n{}", last_lines.join("\n")),
        })
    };
    Ok(TargetRun {
        target: target.to_string(),
        execs,
        corpus: corpus_len,
        failure,
    })
}

/// cargo-fuzz, built once with the nightly into `target/cargo-fuzz/<version>/`.
fn ensure_cargo_fuzz() -> Result<PathBuf> {
    let prefix = util::root()
        .join("target/cargo-fuzz")
        .join(CARGO_FUZZ_VERSION);
    let bin = prefix.join("bin");
    if bin.join("cargo-fuzz").exists() {
        return Ok(bin);
    }
    eprintln!("xtask: installing cargo-fuzz {CARGO_FUZZ_VERSION} (once; about a minute)");
    // A debug build: it only drives cargo, and builds in half the time (CI builds it cold).
    run(Command::new("cargo")
        .args([
            "+nightly",
            "install",
            "--debug",
            "--locked",
            "cargo-fuzz",
            "--version",
        ])
        .arg(CARGO_FUZZ_VERSION)
        .arg("--root")
        .arg(&prefix))?;
    if !bin.join("cargo-fuzz").exists() {
        bail!(
            "cargo install cargo-fuzz left no {}",
            bin.join("cargo-fuzz").display()
        );
    }
    Ok(bin)
}

// ------------------------------------------------------------------------------------------
// Seeds.

/// Writes the seed inputs of `target` into `dir` (emptied first), from testdata/.
fn write_seeds(target: &str, dir: &Path) -> Result<()> {
    if dir.exists() {
        fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    fs::create_dir_all(dir)?;
    let testdata = util::root().join("testdata");
    let mut n = 0;
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        n += 1;
        fs::write(dir.join(format!("seed-{n:03}-{name}")), bytes)
            .with_context(|| format!("writing seed {name}"))
    };
    match target {
        "codec_decode" | "xdp_classify" => {
            for (name, frame) in vectors(&testdata.join("vectors"))? {
                if target == "codec_decode" {
                    // The codec reads IP packets: drop the Ethernet header.
                    put(&name, frame.get(ETH_HLEN..).unwrap_or_default())?;
                } else {
                    put(&name, &frame)?;
                }
            }
            if target == "xdp_classify" {
                put("arp-request", &arp_request())?;
                put("neighbor-solicitation", &neighbor_solicitation())?;
            }
        }
        "config_parse" => {
            for f in files(&testdata.join("config"))?
                .into_iter()
                .chain(files(&testdata.join("lab"))?)
            {
                let name = f
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                put(&name, &fs::read(&f)?)?;
            }
        }
        other => bail!("no seeds for fuzz target {other}"),
    }
    if n == 0 {
        bail!("no seed for fuzz target {target} in {}", testdata.display());
    }
    Ok(())
}

const ETH_HLEN: usize = 14;

/// The frames of testdata/vectors/*.hex (hex bytes, `#` comment lines).
fn vectors(dir: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for f in files(dir)? {
        if f.extension().is_none_or(|e| e != "hex") {
            continue;
        }
        let text = fs::read_to_string(&f)?;
        let bytes = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
            .map(|b| u8::from_str_radix(b, 16))
            .collect::<Result<Vec<u8>, _>>()
            .with_context(|| format!("{}: bad hex", f.display()))?;
        let name = f
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        out.push((name, bytes));
    }
    Ok(out)
}

/// Regular files under `dir`, recursively, sorted.
fn files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let p = e?.path();
            if p.is_dir() {
                todo.push(p);
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Who-has 192.0.2.100 (the VIP the xdp_classify target owns) from 192.0.2.2.
fn arp_request() -> Vec<u8> {
    let sha = [0x02, 0, 0, 0, 0, 0x02];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&sha);
    f.extend_from_slice(&[192, 0, 2, 2]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[192, 0, 2, 100]);
    f
}

/// A Neighbor Solicitation for 2001:db8::100 (the VIP the xdp_classify target owns) from
/// 2001:db8::2 with a source link-layer address option and a valid checksum (RFC 4861 §4.3).
fn neighbor_solicitation() -> Vec<u8> {
    let mac = [0x02, 0, 0, 0, 0, 0x02];
    let mut src = [0u8; 16];
    src[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    src[15] = 2;
    let mut target = [0u8; 16];
    target[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    target[14] = 1;
    // Solicited-node multicast ff02::1:ff00:100 (RFC 4291 §2.7.1) and its MAC.
    let mut dst = [0u8; 16];
    dst[..2].copy_from_slice(&[0xff, 0x02]);
    dst[11..14].copy_from_slice(&[1, 0xff, 0]);
    dst[14..].copy_from_slice(&target[14..]);
    let mut msg = vec![135, 0, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&target);
    msg.extend_from_slice(&[1, 1]);
    msg.extend_from_slice(&mac);
    let mut sum: u64 = 0;
    for w in src.chunks(2).chain(dst.chunks(2)).chain(msg.chunks(2)) {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    sum += msg.len() as u64 + 58;
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let c = (!(sum as u16)).to_be_bytes();
    msg[2] = c[0];
    msg[3] = c[1];
    let mut f = vec![0x33, 0x33, 0xff, 0, 0x01, 0x00];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
    f.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&msg);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selecting_targets() {
        assert_eq!(select(&[]).unwrap(), TARGETS);
        assert_eq!(
            select(&["config_parse".to_string()]).unwrap(),
            ["config_parse"]
        );
        assert!(select(&["nope".to_string()]).is_err());
    }

    #[test]
    fn the_ns_seed_has_a_valid_checksum() {
        let f = neighbor_solicitation();
        let ip = &f[ETH_HLEN..];
        let mut sum: u64 = 0;
        for w in ip[8..40].chunks(2).chain(ip[40..].chunks(2)) {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        sum += (ip.len() - 40) as u64 + 58;
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        assert_eq!(sum, 0xffff);
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[4], ip[5]])),
            ip.len() - 40
        );
    }

    #[test]
    fn every_target_has_seeds() {
        let dir = std::env::temp_dir().join(format!("xtask-fuzz-seeds-{}", std::process::id()));
        for t in TARGETS {
            write_seeds(t, &dir).unwrap();
            assert!(fs::read_dir(&dir).unwrap().count() > 3, "{t}");
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_target_list_matches_the_fuzz_crate() {
        let manifest = fs::read_to_string(util::root().join("fuzz/Cargo.toml")).unwrap();
        let mut bins: Vec<&str> = manifest
            .lines()
            .filter_map(|l| l.strip_prefix("name = \""))
            .filter_map(|l| l.strip_suffix('"'))
            .filter(|n| *n != "vrrp-fuzz")
            .collect();
        bins.sort_unstable();
        assert_eq!(bins, TARGETS);
    }
}
