//! `cargo xtask`: what cargo alone cannot do — the eBPF toolchain bootstrap and build, running
//! the agent, the namespace demo, the root test suite, the benchmarks and the fuzzers.

mod bench;
mod build;
mod deb;
mod demo;
mod deps;
mod fuzz;
mod keepalived;
mod rootfs;
mod soak;
mod test;
mod toolchain;
mod util;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "vrrp-xdp build, run, demo and test tasks"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Install what is missing (nightly rust-src, bpf-linker), build the XDP object, then the
    /// agent with the object embedded.
    Build(build::BuildOpts),
    /// Build, then run the agent with the given arguments (e.g. `-- --iface eth0`).
    Run {
        #[command(flatten)]
        build: build::BuildOpts,
        /// Arguments for vrrp-agent.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Every test: unit tests, then the root-only XDP and namespace lab tests.
    Test(test::TestOpts),
    /// The seed's two load balancers in namespaces: failover and preempt-back, with a timeline.
    Demo(demo::DemoOpts),
    /// Benchmarks in namespace labs (ARP responder, protocol-112 flood, steady-state BACKUP,
    /// failover as a client sees it, 255-instance scale), each beside a baseline measured in
    /// the same run (keepalived where it applies); prints a table and writes JSON.
    Bench(bench::BenchOpts),
    /// Run the cargo-fuzz targets (codec, config parser, XDP verdict) for a bounded time each,
    /// installing cargo-fuzz if needed; fails on a crash and names its input.
    Fuzz(fuzz::FuzzOpts),
    /// The randomized fault soak: two agents and keepalived, every VIP probed every 1 ms,
    /// faults drawn from a seeded PRNG, invariants checked (one owner, bounded gaps,
    /// convergence, no leaks); report as JSON under `target/soak/`.
    Soak(soak::SoakOpts),
    /// Build the Debian package target/debian/vrrp-agent_<version>_amd64.deb (cargo-deb):
    /// the release agent, the systemd unit, the man page, shell completions, an example config.
    Deb,
    /// Install the Debian packages the lab tests and the demo use (keepalived, tshark, ...).
    Deps,
    /// Build keepalived 2.4.3 from its source tarball into target/keepalived-2.4.3/ (once),
    /// the auth_hmac interoperability peer.
    Keepalived,
    /// Make the systemd lab test's root file system (debootstrap, bookworm minbase with
    /// systemd) under target/systemd-rootfs/ (once) and print its path.
    Rootfs,
}

fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Build(opts) => build::build_all(&opts).map(|_| ()),
        Cmd::Run { build, args } => {
            let agent = build::build_all(&build)?;
            util::exec(std::process::Command::new(agent).args(args))
        }
        Cmd::Test(opts) => test::main(&opts),
        Cmd::Demo(opts) => demo::main(&opts),
        Cmd::Bench(opts) => bench::main(&opts),
        Cmd::Fuzz(opts) => fuzz::main(&opts),
        Cmd::Soak(opts) => soak::main(&opts),
        Cmd::Deb => deb::build_deb().map(|_| ()),
        Cmd::Deps => deps::ensure_debian_packages(deps::TEST_PACKAGES),
        Cmd::Keepalived => keepalived::ensure().map(|p| println!("{}", p.display())),
        Cmd::Rootfs => rootfs::ensure().map(|p| println!("{}", p.display())),
    }
}
