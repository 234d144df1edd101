//! The eBPF toolchain bootstrap of TOOLCHAIN.md, automated: nightly with rust-src, and a
//! bpf-linker built against the nightly's own LLVM (no LLVM download exists for this machine).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util::{self, output, run};

/// bpf-linker release known to build against LLVM 22 (TOOLCHAIN.md).
const BPF_LINKER_VERSION: &str = "0.13.0";
const NIGHTLY: &str = "nightly";

pub struct EbpfToolchain {
    /// Directory holding `bpf-linker`, to be put first on PATH.
    pub bin_dir: PathBuf,
    /// The nightly's lib directory (holds libLLVM), for the linker's dynamic loader.
    pub llvm_lib_dir: PathBuf,
}

/// Makes sure nightly + rust-src + bpf-linker are there, installing what is missing.
pub fn ensure() -> Result<EbpfToolchain> {
    let sysroot = nightly_sysroot()?;
    ensure_rust_src(&sysroot)?;
    let llvm_lib_dir = sysroot.join("lib");
    let llvm = find_libllvm(&llvm_lib_dir)?;
    let bin_dir = ensure_bpf_linker(&llvm_lib_dir, &llvm)?;
    Ok(EbpfToolchain {
        bin_dir,
        llvm_lib_dir,
    })
}

pub fn nightly_sysroot() -> Result<PathBuf> {
    let probe = || {
        output(
            Command::new("rustc")
                .arg(format!("+{NIGHTLY}"))
                .args(["--print", "sysroot"]),
        )
    };
    match probe() {
        Ok(s) => Ok(PathBuf::from(s)),
        Err(_) => {
            eprintln!("xtask: the nightly toolchain is missing; installing it with rustup");
            run(Command::new("rustup").args([
                "toolchain",
                "install",
                NIGHTLY,
                "--profile",
                "minimal",
                "--component",
                "rust-src",
            ]))?;
            Ok(PathBuf::from(probe()?))
        }
    }
}

fn ensure_rust_src(sysroot: &Path) -> Result<()> {
    if sysroot
        .join("lib/rustlib/src/rust/library/core/Cargo.toml")
        .exists()
    {
        return Ok(());
    }
    eprintln!("xtask: nightly lacks rust-src (needed for -Z build-std=core); adding it");
    run(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", NIGHTLY]))
}

/// The real `libLLVM.so.<ver>-rust-<ver>` of the nightly. Its `libLLVM-*.so` sibling is a
/// text linker script, which llvm-sys cannot use.
fn find_libllvm(lib: &Path) -> Result<PathBuf> {
    let mut found = None;
    for e in fs::read_dir(lib).with_context(|| format!("reading {}", lib.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("libLLVM.so.") && name.contains("-rust-") {
            found = Some(e.path());
        }
    }
    found.with_context(|| {
        format!(
            "no libLLVM.so.*-rust-* in {}: this nightly does not ship LLVM as a shared library",
            lib.display()
        )
    })
}

/// Builds bpf-linker once per nightly LLVM and caches it under `target/bpf-linker/<llvm>/`.
fn ensure_bpf_linker(lib_dir: &Path, llvm: &Path) -> Result<PathBuf> {
    let llvm_name = llvm
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .context("libLLVM path has no file name")?;
    // "libLLVM.so.22.1-rust-1.97.0-nightly" -> major "22" selects bpf-linker's llvm-22 feature.
    let major = llvm_name
        .trim_start_matches("libLLVM.so.")
        .split('.')
        .next()
        .filter(|m| m.chars().all(|c| c.is_ascii_digit()) && !m.is_empty())
        .with_context(|| format!("cannot read the LLVM major version from {llvm_name}"))?
        .to_string();
    let prefix = util::root().join("target/bpf-linker").join(&llvm_name);
    let bin = prefix.join("bin/bpf-linker");
    if bin.exists() {
        return Ok(prefix.join("bin"));
    }
    eprintln!(
        "xtask: building bpf-linker {BPF_LINKER_VERSION} against {llvm_name} (once; about 2 minutes)"
    );
    let plib = prefix.join("lib");
    fs::create_dir_all(&plib)?;
    for link in [plib.join("libLLVM.so"), plib.join(&llvm_name)] {
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(llvm, &link)
            .with_context(|| format!("symlinking {}", link.display()))?;
    }
    let status = Command::new("cargo")
        .args([
            "install",
            "bpf-linker",
            "--locked",
            "--version",
            BPF_LINKER_VERSION,
        ])
        .args([
            "--no-default-features",
            "--features",
            &format!("llvm-{major}"),
        ])
        .arg("--root")
        .arg(&prefix)
        .env("LLVM_PREFIX", &prefix)
        .env("LD_LIBRARY_PATH", lib_dir)
        .status()
        .context("cannot run cargo install")?;
    if !status.success() || !bin.exists() {
        bail!("building bpf-linker failed ({status}); see the cargo output above");
    }
    Ok(prefix.join("bin"))
}
