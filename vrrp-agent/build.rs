//! Embeds the XDP object built by `cargo xtask build`. Without it the agent still builds (so a
//! plain `cargo build` works) and runs with `--no-xdp`; asking for XDP then says what to run.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=VRRP_EBPF_OBJ");
    println!("cargo:rustc-check-cfg=cfg(vrrp_no_ebpf)");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let src = env::var_os("VRRP_EBPF_OBJ")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("../target/bpfel-unknown-none/release/vrrp-ebpf"));
    println!("cargo:rerun-if-changed={}", src.display());
    let out = PathBuf::from(env::var("OUT_DIR").unwrap_or_default()).join("vrrp-xdp.bpf.o");
    match fs::read(&src) {
        Ok(bytes) => {
            if let Err(e) = fs::write(&out, bytes) {
                panic!("cannot write {}: {e}", out.display());
            }
        }
        Err(_) => {
            println!(
                "cargo:warning=XDP object {} not found: run `cargo xtask build` for an agent with its XDP fast path (this build can only run with --no-xdp)",
                src.display()
            );
            println!("cargo:rustc-cfg=vrrp_no_ebpf");
            if let Err(e) = fs::write(&out, []) {
                panic!("cannot write {}: {e}", out.display());
            }
        }
    }
}
