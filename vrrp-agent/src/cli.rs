//! The command line's definition (clap), in the library so that the man page and the shell
//! completions can be generated from it (`cargo xtask deb`, the `gen-docs` example) without
//! running the daemon. `main.rs` parses it and acts on it.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// A VRRP daemon (RFC 9568 VRRPv3, RFC 3768 VRRPv2) with an XDP fast path, configured like
/// keepalived.
///
/// With `-f FILE` it reads a keepalived.conf (the VRRP part: global_defs, vrrp_instance,
/// vrrp_script, vrrp_sync_group, include). Without a file it runs one instance described by
/// the flags below (`--iface`, `--vip`, ...).
///
/// Signals: SIGTERM/SIGINT hand over make-before-break (priority 0, the VIPs kept until the new
/// master is heard, then removed) and exit; a second one exits at once; SIGHUP re-reads the file (unchanged instances keep state and VIPs, a
/// broken file is rejected); SIGUSR1 logs the status and writes it as JSON to --dump-path.
#[derive(Parser, Debug)]
#[command(name = "vrrp-agent", version, about, long_about, max_term_width = 100)]
#[command(args_conflicts_with_subcommands = true)]
#[command(after_long_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Option<Cmd>,

    /// keepalived.conf to read.
    #[arg(short = 'f', long = "config", value_name = "FILE", conflicts_with_all = ["vips"])]
    pub config: Option<PathBuf>,

    /// Config id for `@ID` / `@^ID` lines of the configuration, as keepalived's -i [default:
    /// the host name up to its first dot].
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,

    /// Check the configuration, print warnings and exit (like `keepalived -t`).
    #[arg(short = 't', long = "check")]
    pub check: bool,

    /// Interface of the quick single-instance setup.
    #[arg(long, value_name = "IFACE")]
    pub iface: Option<String>,

    /// Virtual IP of the quick setup, CIDR or plain (repeatable).
    #[arg(long = "vip", value_name = "ADDR[/LEN]")]
    pub vips: Vec<String>,

    /// Virtual router ID of the quick setup.
    #[arg(long, default_value_t = 51, value_parser = clap::value_parser!(u8).range(1..=255))]
    pub vrid: u8,

    /// Priority of the quick setup (255 = address owner).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=255))]
    pub priority: u8,

    /// Advertisement interval in seconds (fractions allowed with VRRPv3, e.g. 0.05).
    #[arg(long, default_value = "1")]
    pub advert_int: String,

    /// Initial state of the quick setup (keepalived's `state`).
    #[arg(long, value_enum, default_value_t = StateArg::Backup)]
    pub state: StateArg,

    /// VRRP version of the quick setup.
    #[arg(long = "vrrp-version", default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    pub vrrp_version: u8,

    /// Unicast peer instead of multicast (repeatable).
    #[arg(long = "unicast-peer", value_name = "ADDR")]
    pub unicast_peers: Vec<IpAddr>,

    /// Source address for unicast adverts.
    #[arg(long = "unicast-src", value_name = "ADDR")]
    pub unicast_src: Option<IpAddr>,

    /// Do not preempt a lower priority master (keepalived's `nopreempt`).
    #[arg(long)]
    pub nopreempt: bool,

    /// Receive adverts on raw sockets only, without XDP.
    #[arg(long)]
    pub no_xdp: bool,

    /// Do not start the guardian process (which sends priority 0 for us if the agent is
    /// killed while MASTER, so a backup takes over after its skew time).
    #[arg(long)]
    pub no_guardian: bool,

    /// SCHED_RR priority of the election thread, 1..99, or 0 for SCHED_OTHER [default: the
    /// config's vrrp_rt_priority, else 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=99))]
    pub rt_priority: Option<u8>,

    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    pub xdp_mode: XdpModeArg,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `vrrp_agent=debug`.
    #[arg(long, env = "VRRP_LOG", default_value = "info")]
    pub log: String,

    /// Log as JSON lines.
    #[arg(long)]
    pub log_json: bool,

    /// Control socket for `vrrp-agent status`, `reload` and `handover` [default: the
    /// config's vrrp_xdp_control_socket, else /run/vrrp-agent.sock].
    #[arg(long, value_name = "PATH")]
    pub control_socket: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics (or `vrrp_xdp_metrics` in global_defs).
    #[arg(long, value_name = "ADDR:PORT")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Where SIGUSR1 writes the status as JSON (keepalived writes /tmp/keepalived.data).
    #[arg(long, value_name = "PATH", default_value = crate::control::DEFAULT_DUMP_PATH)]
    pub dump_path: PathBuf,
}

pub const AFTER_HELP: &str = "\
EXAMPLES:
    vrrp-agent -f /etc/keepalived/keepalived.conf
        Run keepalived's VRRP configuration.
    vrrp-agent --check -f /etc/keepalived/keepalived.conf
        Validate it: errors and warnings as FILE:LINE:COL, exit status 1 on error.
    vrrp-agent --iface eth0 --vip 192.0.2.3/24 --priority 100 --advert-int 0.1
        One VRRPv3 instance (VRID 51) from flags, no file.
    vrrp-agent status [--json]
        The running agent's instances, peers, XDP counters and checks.

FILES:
    /run/vrrp-agent.sock          control socket (status, reload, handover)
    /tmp/vrrp-agent.data.json     SIGUSR1 status dump

EXIT STATUS:
    0 on a clean stop (SIGTERM/SIGINT) or a valid --check; 1 with a one-line error otherwise
    (bad configuration, missing interface, missing privileges, XDP refused in native mode).

keepalived.conf compatibility, metrics and the systemd unit: see the README.";

#[derive(clap::Subcommand, Debug)]
pub enum Cmd {
    /// Internal: the process that sends priority 0 if the agent is killed (started by the
    /// agent itself).
    #[command(hide = true)]
    Guardian,
    /// Show the running agent's instances, peers, data plane counters and checks.
    Status {
        /// Print the JSON snapshot instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "PATH", default_value = crate::control::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
    /// Make the running agent re-read its configuration (like SIGHUP), and say whether it took.
    Reload {
        #[arg(long, value_name = "PATH", default_value = crate::control::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
    /// Planned handover: the running agent gives up MASTER (priority 0) and stays as backup.
    Handover {
        /// Only this instance (default: every instance that is MASTER).
        instance: Option<String>,
        #[arg(long, value_name = "PATH", default_value = crate::control::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StateArg {
    Master,
    Backup,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum XdpModeArg {
    Auto,
    Native,
    Generic,
}

/// The keepalived.conf keywords vrrp-agent adds (keepalived warns about them and skips them):
/// (keyword and arguments, where it goes, what it does). The man page lists them; a test below
/// keeps the list in step with the parser.
pub const EXTENSION_KEYWORDS: &[(&str, &str, &str)] = &[
    (
        "vrrp_xdp_metrics ADDR:PORT",
        "global_defs",
        "serve Prometheus metrics at http://ADDR:PORT/metrics (like --metrics)",
    ),
    (
        "vrrp_xdp_control_socket PATH",
        "global_defs",
        "control socket for status, reload and handover (default /run/vrrp-agent.sock)",
    ),
    (
        "vrrp_xdp_mode auto|native|generic|off",
        "global_defs",
        "how the XDP program is attached; off receives adverts on raw sockets only",
    ),
    (
        "vrrp_xdp_notify_json PATH",
        "global_defs",
        "append every state event as a JSON line with a sequence number",
    ),
    (
        "vrrp_xdp_checksum_auto [BOOL]",
        "global_defs, vrrp_instance",
        "VRRPv3 over IPv4: answer each peer in the checksum form it uses (pseudo-header or \
         RFC 9568 strict); peers never heard get the v3_checksum_as_v2 form",
    ),
    (
        "vrrp_xdp_notify_split_brain CMD",
        "vrrp_instance",
        "run once per split-brain episode, with INSTANCE name kind source appended",
    ),
    (
        "vrrp_xdp_fence CMD",
        "vrrp_instance",
        "run once per split-brain episode (a STONITH-like action), same arguments",
    ),
    (
        "vrrp_xdp_heartbeat { interface IF; unicast_src_ip ADDR; unicast_peer { ADDR } }",
        "vrrp_instance",
        "a redundant heartbeat path: adverts also go unicast over IF, and the master is \
         declared down only when every path is silent",
    ),
    (
        "vrrp_xdp_v2_interop [on|off]",
        "vrrp_instance",
        "RFC 9568 §8.4: a VRRPv3 IPv4 instance also sends and hears VRRPv2, for a rolling \
         upgrade of a v2 cluster (whole-second advert_int)",
    ),
    (
        "vrrp_xdp_check NAME { http_get { url URL; status N; body TEXT; host NAME } | tcp ADDR:PORT; interval; timeout; fall; rise; weight }",
        "top level",
        "a built-in health check (no shell), referenced from track_script like a vrrp_script",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `vrrp_xdp_*` keyword the parser knows is documented here, and nothing else is.
    #[test]
    fn extension_keywords_match_the_parser() {
        let mut parsed: Vec<&str> = crate::config::known_keywords()
            .into_iter()
            .map(|(_, kw)| kw)
            .filter(|k| k.starts_with("vrrp_xdp_"))
            .collect();
        parsed.sort_unstable();
        parsed.dedup();
        let mut documented: Vec<&str> = EXTENSION_KEYWORDS
            .iter()
            .map(|(k, _, _)| k.split_whitespace().next().expect("keyword"))
            .collect();
        documented.sort_unstable();
        assert_eq!(parsed, documented);
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
