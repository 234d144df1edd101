//! Builds the XDP object (nightly, bpfel-unknown-none) and the agent that embeds it.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};
use clap::Args;

use crate::toolchain;
use crate::util::{self, run};

#[derive(Args, Clone, Debug)]
pub struct BuildOpts {
    /// Build the agent in the dev profile (the XDP object is always optimised: the verifier
    /// rejects unoptimised BPF).
    #[arg(long)]
    pub debug: bool,
}

/// Where the XDP object lands.
pub fn ebpf_object() -> PathBuf {
    util::root().join("target/bpfel-unknown-none/release/vrrp-ebpf")
}

pub fn build_ebpf() -> Result<PathBuf> {
    // For development: keep the last good object while the eBPF crate is mid-edit.
    if std::env::var_os("XTASK_REUSE_EBPF").is_some() && ebpf_object().exists() {
        eprintln!(
            "xtask: XTASK_REUSE_EBPF set: reusing {}",
            ebpf_object().display()
        );
        return Ok(ebpf_object());
    }
    let tc = toolchain::ensure()?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![tc.bin_dir.clone()];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = Command::new("cargo");
    cmd.current_dir(util::root())
        .args(["+nightly", "build", "--release", "-p", "vrrp-ebpf"])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .env("PATH", std::env::join_paths(paths)?)
        .env("LD_LIBRARY_PATH", &tc.llvm_lib_dir)
        // BTF makes verifier logs readable and map definitions self-describing.
        .env(
            "CARGO_TARGET_BPFEL_UNKNOWN_NONE_RUSTFLAGS",
            "-C debuginfo=2 -C link-arg=--btf",
        )
        // A stable toolchain selected by the caller's environment must not win over +nightly.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER");
    run(&mut cmd)?;
    let obj = ebpf_object();
    if !obj.exists() {
        bail!("the eBPF build succeeded but {} is missing", obj.display());
    }
    Ok(obj)
}

/// Builds the eBPF object, then the agent with it embedded; returns the agent's path.
pub fn build_all(opts: &BuildOpts) -> Result<PathBuf> {
    let obj = build_ebpf()?;
    let mut cmd = Command::new("cargo");
    cmd.current_dir(util::root())
        .args(["build", "-p", "vrrp-agent", "--bin", "vrrp-agent"])
        .env("VRRP_EBPF_OBJ", &obj);
    if !opts.debug {
        cmd.arg("--release");
    }
    run(&mut cmd)?;
    Ok(agent_path(opts.debug))
}

pub fn agent_path(debug: bool) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| util::root().join("target"));
    target
        .join(if debug { "debug" } else { "release" })
        .join("vrrp-agent")
}
