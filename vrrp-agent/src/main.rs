//! vrrp-agent: the command line. No protocol logic here.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use vrrp_agent::config;
use vrrp_agent::driver::{self, DataPlaneChoice, Options};

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
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,

    /// keepalived.conf to read.
    #[arg(short = 'f', long = "config", value_name = "FILE", conflicts_with_all = ["vips"])]
    config: Option<PathBuf>,

    /// Check the configuration, print warnings and exit (like `keepalived -t`).
    #[arg(short = 't', long = "check")]
    check: bool,

    /// Interface of the quick single-instance setup.
    #[arg(long, value_name = "IFACE")]
    iface: Option<String>,

    /// Virtual IP of the quick setup, CIDR or plain (repeatable).
    #[arg(long = "vip", value_name = "ADDR[/LEN]")]
    vips: Vec<String>,

    /// Virtual router ID of the quick setup.
    #[arg(long, default_value_t = 51, value_parser = clap::value_parser!(u8).range(1..=255))]
    vrid: u8,

    /// Priority of the quick setup (255 = address owner).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u8).range(1..=255))]
    priority: u8,

    /// Advertisement interval in seconds (fractions allowed with VRRPv3, e.g. 0.05).
    #[arg(long, default_value = "1")]
    advert_int: String,

    /// Initial state of the quick setup (keepalived's `state`).
    #[arg(long, value_enum, default_value_t = StateArg::Backup)]
    state: StateArg,

    /// VRRP version of the quick setup.
    #[arg(long = "vrrp-version", default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=3))]
    vrrp_version: u8,

    /// Unicast peer instead of multicast (repeatable).
    #[arg(long = "unicast-peer", value_name = "ADDR")]
    unicast_peers: Vec<IpAddr>,

    /// Source address for unicast adverts.
    #[arg(long = "unicast-src", value_name = "ADDR")]
    unicast_src: Option<IpAddr>,

    /// Do not preempt a lower priority master (keepalived's `nopreempt`).
    #[arg(long)]
    nopreempt: bool,

    /// Receive adverts on raw sockets only, without XDP.
    #[arg(long)]
    no_xdp: bool,

    /// Do not start the guardian process (which sends priority 0 for us if the agent is
    /// killed while MASTER, so a backup takes over after its skew time).
    #[arg(long)]
    no_guardian: bool,

    /// SCHED_RR priority of the election thread, 1..99, or 0 for SCHED_OTHER [default: the
    /// config's vrrp_rt_priority, else 10].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(0..=99))]
    rt_priority: Option<u8>,

    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = XdpModeArg::Auto)]
    xdp_mode: XdpModeArg,

    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `vrrp_agent=debug`.
    #[arg(long, env = "VRRP_LOG", default_value = "info")]
    log: String,

    /// Log as JSON lines.
    #[arg(long)]
    log_json: bool,

    /// Control socket for `vrrp-agent status`, `reload` and `handover` [default: the
    /// config's vrrp_xdp_control_socket, else /run/vrrp-agent.sock].
    #[arg(long, value_name = "PATH")]
    control_socket: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics (or `vrrp_xdp_metrics` in global_defs).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics: Option<std::net::SocketAddr>,

    /// Where SIGUSR1 writes the status as JSON (keepalived writes /tmp/keepalived.data).
    #[arg(long, value_name = "PATH", default_value = vrrp_agent::control::DEFAULT_DUMP_PATH)]
    dump_path: PathBuf,
}

const AFTER_HELP: &str = "\
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
enum Cmd {
    /// Internal: the process that sends priority 0 if the agent is killed (started by the
    /// agent itself).
    #[command(hide = true)]
    Guardian,
    /// Show the running agent's instances, peers, data plane counters and checks.
    Status {
        /// Print the JSON snapshot instead of a table.
        #[arg(long)]
        json: bool,
        #[arg(long, value_name = "PATH", default_value = vrrp_agent::control::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
    /// Make the running agent re-read its configuration (like SIGHUP), and say whether it took.
    Reload {
        #[arg(long, value_name = "PATH", default_value = vrrp_agent::control::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
    /// Planned handover: the running agent gives up MASTER (priority 0) and stays as backup.
    Handover {
        /// Only this instance (default: every instance that is MASTER).
        instance: Option<String>,
        #[arg(long, value_name = "PATH", default_value = vrrp_agent::control::DEFAULT_SOCKET_PATH)]
        socket: PathBuf,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StateArg {
    Master,
    Backup,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum XdpModeArg {
    Auto,
    Native,
    Generic,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vrrp-agent: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cli: &Cli) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if cli.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn client(cmd: &Cmd) -> Result<()> {
    use vrrp_agent::control;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        match cmd {
            Cmd::Status { json, socket } => {
                let snap = control::request_status(socket)
                    .await
                    .map_err(client_error)?;
                if *json {
                    println!("{}", control::render_json(&snap));
                } else {
                    print!("{}", control::render_table(&snap));
                }
            }
            Cmd::Reload { socket } => {
                let r = control::client_request(socket, "reload")
                    .await
                    .map_err(client_error)?;
                println!("{}", control::parse_reply(&r)?);
            }
            Cmd::Handover { instance, socket } => {
                let req = match instance {
                    Some(i) => format!("handover {i}"),
                    None => "handover".to_string(),
                };
                let r = control::client_request(socket, &req)
                    .await
                    .map_err(client_error)?;
                println!("{}", control::parse_reply(&r)?);
            }
            // Run before the client (it has no runtime of its own to share).
            Cmd::Guardian => {}
        }
        Ok(())
    })
}

/// A control-socket client's error, with what the operator can do about the usual ones.
fn client_error(e: vrrp_agent::control::ControlError) -> anyhow::Error {
    use std::io::ErrorKind;
    let vrrp_agent::control::ControlError::Io { source, .. } = &e else {
        return e.into();
    };
    match source.kind() {
        ErrorKind::PermissionDenied => anyhow::anyhow!(
            "{e}: permission denied (the control socket is mode 0600, for the agent's user: \
             run this as root)"
        ),
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => {
            anyhow::anyhow!("{e}: {source} (is vrrp-agent running?)")
        }
        _ => e.into(),
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(Cmd::Guardian) = &cli.cmd {
        return vrrp_agent::io::guardian::run();
    }
    if let Some(cmd) = &cli.cmd {
        return client(cmd);
    }
    let (loaded, path) = match &cli.config {
        Some(p) => (config::load(p)?, Some(p.clone())),
        None => {
            let text = quick_config(&cli)?;
            (config::parse_str(&text, "<command line>")?, None)
        }
    };
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if cli.check {
        println!(
            "configuration OK: {} instance(s), {} warning(s)",
            loaded.config.instances.len(),
            loaded.warnings.len()
        );
        return Ok(());
    }
    if loaded.config.instances.is_empty() {
        bail!("no vrrp_instance configured: nothing to do");
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        tracing::warn!(
            "not running as root: raw sockets, netlink and XDP need CAP_NET_RAW, CAP_NET_ADMIN and CAP_BPF"
        );
    }
    let dataplane = match (cli.no_xdp, cli.xdp_mode) {
        (true, _) => DataPlaneChoice::Off,
        (false, XdpModeArg::Auto) => match loaded.config.global.xdp.mode {
            config::XdpMode::Off => DataPlaneChoice::Off,
            config::XdpMode::Native => DataPlaneChoice::Native,
            config::XdpMode::Generic => DataPlaneChoice::Generic,
            config::XdpMode::Auto => DataPlaneChoice::Auto,
        },
        (false, XdpModeArg::Native) => DataPlaneChoice::Native,
        (false, XdpModeArg::Generic) => DataPlaneChoice::Generic,
    };
    // One thread: the election's work is tiny and a timer wake-up costs a few context switches
    // instead of a handful across workers (measured: ~2 vs ~7 per wake-up). Scripts are child
    // processes and /proc scans run on the blocking pool, so nothing here blocks the election.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(async move {
        let control_socket = cli
            .control_socket
            .clone()
            .or_else(|| loaded.config.global.xdp.control_socket.clone())
            .unwrap_or_else(|| PathBuf::from(vrrp_agent::control::DEFAULT_SOCKET_PATH));
        let realtime = vrrp_agent::io::sched::RealTime::resolve(
            cli.rt_priority.or(loaded.config.global.rt_priority),
            loaded.config.global.rlimit_rttime_us,
        );
        driver::run(Options {
            config: loaded.config,
            config_path: path,
            dataplane,
            control_socket,
            metrics: cli.metrics,
            dump_path: cli.dump_path.clone(),
            guardian: !cli.no_guardian,
            realtime,
        })
        .await
    })
}

/// The quick setup as keepalived.conf text, so flags and files share one validation path.
fn quick_config(cli: &Cli) -> Result<String> {
    let Some(iface) = &cli.iface else {
        bail!(
            "give a keepalived.conf with -f FILE, or a quick setup with --iface IFACE --vip ADDR"
        );
    };
    if cli.vips.is_empty() {
        bail!("--vip ADDR is required with --iface (or give -f FILE)");
    }
    let mut s = String::new();
    s.push_str("vrrp_instance VI_1 {\n");
    s.push_str(&format!("    interface {iface}\n"));
    s.push_str(&format!(
        "    state {}\n",
        match cli.state {
            StateArg::Master => "MASTER",
            StateArg::Backup => "BACKUP",
        }
    ));
    s.push_str(&format!("    virtual_router_id {}\n", cli.vrid));
    s.push_str(&format!("    priority {}\n", cli.priority));
    s.push_str(&format!("    advert_int {}\n", cli.advert_int));
    s.push_str(&format!("    version {}\n", cli.vrrp_version));
    if cli.nopreempt {
        s.push_str("    nopreempt\n");
    }
    if cli.vips.iter().any(|v| v.contains(':')) {
        s.push_str("    native_ipv6\n");
    }
    if let Some(src) = cli.unicast_src {
        s.push_str(&format!("    unicast_src_ip {src}\n"));
    }
    if !cli.unicast_peers.is_empty() {
        s.push_str("    unicast_peer {\n");
        for p in &cli.unicast_peers {
            s.push_str(&format!("        {p}\n"));
        }
        s.push_str("    }\n");
    }
    s.push_str("    virtual_ipaddress {\n");
    for v in &cli.vips {
        s.push_str(&format!("        {v}\n"));
    }
    s.push_str("    }\n}\n");
    Ok(s)
}
