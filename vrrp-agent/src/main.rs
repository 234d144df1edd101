//! vrrp-agent: the command line. No protocol logic here.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;
use vrrp_agent::cli::{Cli, Cmd, StateArg, XdpModeArg};
use vrrp_agent::config;
use vrrp_agent::driver::{self, DataPlaneChoice, Options};

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

/// `--check`: the behaviours that will differ from keepalived's for this file
/// (`config::differences`, from docs/migrating-from-keepalived.md).
fn print_differences(cli: &Cli, cfg: &config::Config, path: Option<&std::path::Path>) {
    use config::differences::{RunChoices, differences};
    let run = RunChoices {
        no_xdp: cli.no_xdp,
        xdp_forced: !matches!(cli.xdp_mode, XdpModeArg::Auto),
        rt_priority: cli.rt_priority,
        no_guardian: cli.no_guardian,
    };
    let found = differences(cfg, path, run);
    if found.is_empty() {
        return;
    }
    println!(
        "{} behaviour(s) will differ from keepalived's (docs/migrating-from-keepalived.md):",
        found.len()
    );
    for d in found {
        println!("  {d}");
    }
}

fn run(cli: Cli) -> Result<()> {
    if let Some(Cmd::Guardian) = &cli.cmd {
        return vrrp_agent::io::guardian::run();
    }
    if let Some(cmd) = &cli.cmd {
        return client(cmd);
    }
    if let Some(id) = &cli.config_id {
        vrrp_agent::config::set_config_id(id);
    }
    let (loaded, path) = match &cli.config {
        Some(p) => (config::load(p), Some(p.clone())),
        None => {
            let text = quick_config(&cli)?;
            (config::parse_str(&text, "<command line>"), None)
        }
    };
    // The warnings met before an error come first: a typo warned about is often its cause.
    let loaded = loaded.inspect_err(|e| {
        for w in e.warnings() {
            tracing::warn!("{w}");
        }
    })?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if cli.check {
        // As `keepalived -t`: the host too (interfaces; scripts and users were judged while
        // loading), and a file with nothing for us is a failure, not "OK".
        let host = config::check_interfaces(&loaded.config, std::path::Path::new("/sys/class/net"));
        for w in &host {
            tracing::warn!("{w}");
        }
        if loaded.config.instances.is_empty() {
            bail!(
                "no vrrp_instance configured: nothing for vrrp-agent to do (keepalived's LVS, \
                 checker and BFD blocks are not vrrp-agent's)"
            );
        }
        println!(
            "configuration OK: {} instance(s), {} warning(s)",
            loaded.config.instances.len(),
            loaded.warnings.len() + host.len()
        );
        print_differences(&cli, &loaded.config, path.as_deref());
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
