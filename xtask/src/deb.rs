//! `cargo xtask deb`: the Debian package `vrrp-agent_<version>_amd64.deb`, made by cargo-deb
//! (pinned, built once into `target/cargo-deb/<version>/`) from the release agent with its XDP
//! object embedded, the systemd unit, the example configuration (a conffile), the man page and
//! the shell completions that the `gen-docs` example generates from the clap definitions.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::build::{self, BuildOpts};
use crate::util::{self, output, run};

/// cargo-deb release used (builds with rustc 1.95).
const CARGO_DEB_VERSION: &str = "3.8.0";

/// Where generated assets land; vrrp-agent/Cargo.toml's `[package.metadata.deb]` names them.
pub fn assets_dir() -> PathBuf {
    util::root().join("target/deb-assets")
}

/// Builds everything and the package; returns the .deb's path.
pub fn build_deb() -> Result<PathBuf> {
    let agent = build::build_all(&BuildOpts { debug: false })?;
    let assets = assets_dir();
    run(Command::new("cargo")
        .current_dir(util::root())
        .args([
            "run",
            "-q",
            "-p",
            "vrrp-agent",
            "--example",
            "gen-docs",
            "--",
        ])
        .arg(&assets)
        // As build_all sets it: the same environment reuses the test build's artifacts.
        .env("VRRP_EBPF_OBJ", build::ebpf_object()))?;
    for f in [
        "vrrp-agent.8",
        "vrrp-agent.bash",
        "_vrrp-agent",
        "vrrp-agent.fish",
    ] {
        if !assets.join(f).is_file() {
            bail!("gen-docs left no {}", assets.join(f).display());
        }
    }
    let cargo_deb = ensure_cargo_deb()?;
    let out_dir = util::root().join("target/debian");
    std::fs::create_dir_all(&out_dir)?;
    // --no-build: cargo-deb would rebuild without VRRP_EBPF_OBJ; xtask built the agent above.
    // --strip: the release profile keeps line tables (benchmarks, perf); the package does not.
    let printed = output(
        Command::new(&cargo_deb)
            .current_dir(util::root())
            .args([
                "deb",
                "-p",
                "vrrp-agent",
                "--no-build",
                "--strip",
                "--output",
            ])
            .arg(&out_dir),
    )?;
    let deb = printed
        .lines()
        .map(str::trim)
        .rfind(|l| l.ends_with(".deb"))
        .map(PathBuf::from)
        .with_context(|| format!("cargo-deb printed no .deb path: {printed}"))?;
    if !deb.is_file() {
        bail!("cargo-deb named {} but it does not exist", deb.display());
    }
    eprintln!("xtask: built {} (agent {})", deb.display(), agent.display());
    Ok(deb)
}

/// cargo-deb, built once into `target/cargo-deb/<version>/`.
fn ensure_cargo_deb() -> Result<PathBuf> {
    let prefix = util::root()
        .join("target/cargo-deb")
        .join(CARGO_DEB_VERSION);
    let bin = prefix.join("bin/cargo-deb");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("xtask: installing cargo-deb {CARGO_DEB_VERSION} (once; a few minutes)");
    run(Command::new("cargo")
        .args(["install", "--locked", "cargo-deb", "--version"])
        .arg(CARGO_DEB_VERSION)
        .arg("--root")
        .arg(&prefix))?;
    if !bin.exists() {
        bail!("cargo install cargo-deb left no {}", bin.display());
    }
    Ok(bin)
}
