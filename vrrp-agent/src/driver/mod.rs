//! The driver: the only part of the agent that does I/O for the election. One `select!` loop
//! reads the clock once per turn, feeds the sans-IO [`Node`], and performs its actions
//! ([`perform`]). Interfaces, sockets and XDP programs are held by key ([`resources`]).
//!
//! Start-up order matters (a refused start must change nothing): the control socket is taken
//! first (it says whether another agent runs here), then the metrics endpoint; only then are
//! programs attached, sockets opened, and stale VIPs and filters cleared.

mod housekeeping;
mod perform;
mod reload;
mod resolve;
mod resources;

use reload::{TrackKey, notifier, spawn_tracker, track_key};

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, watch};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::control::{self, ControlCommand, Snapshot};
use crate::io::guardian::Guardian;
use crate::io::kfilter;
use crate::io::netlink::Netlink;
use crate::notify::Notifier;
use crate::proto::codec;
use crate::proto::node::{InstanceId, KernelSlot, Node, NodeInput, SlotKey};
use crate::proto::{Advert, Family};
use crate::track::{TrackEvent, Tracker};

pub use perform::IoStats;

/// How the daemon receives adverts and whether XDP is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DataPlaneChoice {
    /// Native XDP, falling back to generic, falling back to raw sockets only (with a warning).
    Auto,
    Native,
    Generic,
    /// No XDP at all: raw sockets only (`--no-xdp`).
    Off,
}

pub struct Options {
    pub config: Config,
    pub config_path: Option<PathBuf>,
    pub dataplane: DataPlaneChoice,
    /// The status/control unix socket (`vrrp-agent status` talks to it).
    pub control_socket: PathBuf,
    /// Prometheus endpoint, if any.
    pub metrics: Option<std::net::SocketAddr>,
    /// Where SIGUSR1 writes the JSON status (keepalived writes /tmp/keepalived.data).
    pub dump_path: PathBuf,
    /// Start the guardian process that sends priority 0 if the agent is killed.
    pub guardian: bool,
    /// Real-time scheduling for the election (and the guardian).
    pub realtime: crate::io::sched::RealTime,
}

/// A received advert or decode error, from a socket reader task.
pub(crate) struct Rx {
    pub ifindex: u32,
    pub family: Family,
    pub src: IpAddr,
    /// With the checksum form the sender used.
    pub result: Result<(Advert, codec::ChecksumForm), codec::DecodeError>,
    /// `RxMeta::unchecked_ttl`: a unicast advert's TTL, for the instance to check.
    pub ttl: Option<u8>,
}

/// What the socket readers and the XDP event readers hand to the main task.
pub(crate) enum Incoming {
    Advert(Rx),
    /// Another MAC claims one of our VIPs (ARP reply / gratuitous ARP / NA).
    Conflict {
        ifindex: u32,
        vip: IpAddr,
        mac: [u8; 6],
    },
    /// The kernel timer watching a backup's master ran out.
    MasterSilent(SlotKey),
}

/// The driver's clock. The only place the agent reads time (clippy forbids it elsewhere).
#[expect(clippy::disallowed_methods, reason = "the driver owns the clock")]
fn now() -> Instant {
    Instant::now()
}

/// The driver's housekeeping period (dead-man stamp, XDP_TX watch, status).
const TICK: Duration = Duration::from_secs(1);

/// How often (in ticks) the kernel ARP/NA filter is checked for removal behind our back: each
/// check runs `nft` twice.
const FILTER_CHECK_TICKS: u64 = 5;

/// The driver's state: the node, what it holds open, and the I/O actors around it.
pub(crate) struct Driver {
    node: Node,
    netlink: Netlink,
    res: resources::Resources,
    rx: mpsc::Receiver<Incoming>,
    tracker: Tracker,
    track_rx: mpsc::Receiver<TrackEvent>,
    track_key: TrackKey,
    notifier: Option<Notifier>,
    guardian: Option<Guardian>,
    /// The master-silence timer interval written per slot (ns, 0 = none) and CLOCK_MONOTONIC
    /// ns right after the write (see `wake::Kernel`).
    watch: BTreeMap<SlotKey, (u64, u64)>,
    pub io: IoStats,
    snapshot: watch::Sender<Snapshot>,
    config_path: Option<PathBuf>,
    router_id: Option<String>,
    started_unix: f64,
    scheduling: String,
    /// The VIPs of the kernel ARP/NA filter we installed (removed on exit), if any.
    kfilter: Option<Vec<IpAddr>>,
    /// Housekeeping ticks, for what is checked less often than every second.
    ticks: u64,
}

/// Runs the agent until SIGTERM/SIGINT, then releases everything.
pub async fn run(opts: Options) -> Result<()> {
    // First the lock: a second agent must stop here, before it touches anything.
    let server = control::ControlServer::bind(&opts.control_socket)
        .await
        .with_context(|| format!("control socket {}", opts.control_socket.display()))?;
    let metrics_addr = opts.metrics.or(opts.config.global.xdp.metrics);
    let metrics = match metrics_addr {
        Some(addr) => Some(
            control::MetricsServer::bind(addr)
                .await
                .with_context(|| format!("metrics endpoint {addr}"))?,
        ),
        None => None,
    };
    if opts.dataplane == DataPlaneChoice::Off {
        info!("data plane: raw sockets only (--no-xdp)");
    }
    let netlink = Netlink::new().context("opening rtnetlink")?;
    let mut resolved = resolve::resolve(&netlink, &opts.config).await?;
    let (tx, rx) = mpsc::channel(1024);
    let mut res = resources::Resources::new(opts.dataplane, tx);
    res.acquire(&mut resolved)?;
    resolve::settle_vmac(&opts.config, &mut resolved.node);
    let node = Node::new(resolved.node, now()).map_err(|e| anyhow!("{e}"))?;
    let (tracker, track_rx) = spawn_tracker(&opts.config);
    let mut d = Driver {
        node,
        netlink,
        res,
        rx,
        tracker,
        track_rx,
        track_key: track_key(&opts.config),
        notifier: Some(notifier(&opts.config)?),
        guardian: None,
        watch: BTreeMap::new(),
        io: IoStats::default(),
        snapshot: watch::channel(Snapshot::default()).0,
        config_path: opts.config_path,
        router_id: opts.config.global.router_id.clone(),
        started_unix: crate::control::unix_now(),
        scheduling: String::new(),
        kfilter: None,
        ticks: 0,
    };
    let r = d
        .serve(
            opts.realtime,
            opts.guardian,
            opts.dump_path,
            server,
            metrics,
        )
        .await;
    if r.is_err() {
        // Nothing half-started stays behind.
        d.shutdown().await;
    }
    r
}

impl Driver {
    async fn serve(
        &mut self,
        realtime: crate::io::sched::RealTime,
        want_guardian: bool,
        dump_path: PathBuf,
        server: control::ControlServer,
        metrics: Option<control::MetricsServer>,
    ) -> Result<()> {
        // A crash of an earlier run may have left our VIPs bound, VMAC filters, the filter.
        self.feed(NodeInput::Prepare).await;
        trim_heap();
        // After the set-up (the XDP load runs long in the kernel, which RLIMIT_RTTIME counts).
        match crate::io::sched::make_realtime(realtime) {
            Ok(()) => info!(
                scheduling = %crate::io::sched::describe_current(),
                rlimit_rttime_us = realtime.rlimit_rttime_us,
                "election thread scheduling"
            ),
            Err(e) => warn!("{e}: running SCHED_OTHER, so a busy host can delay our adverts"),
        }
        self.scheduling = crate::io::sched::describe_current();
        if want_guardian {
            let rings: Vec<_> = self
                .res
                .ifaces
                .values()
                .filter_map(|i| i.dataplane.as_ref()?.death_ring_fd())
                .collect();
            match Guardian::spawn(realtime, &rings) {
                Ok(g) => {
                    debug!(pid = g.pid(), "guardian started");
                    self.guardian = Some(g);
                }
                Err(e) => {
                    warn!("{e}: a killed agent's VIPs move after the master-down interval instead")
                }
            }
        }
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (cmd_tx, mut cmd_rx) = mpsc::channel::<ControlCommand>(8);
        let srx = self.snapshot.subscribe();
        let control_task = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = server.run(srx, cmd_tx).await {
                warn!(error = %e, "control socket stopped");
            }
        }));
        let _metrics_task = metrics.map(|m| {
            info!(addr = ?m.local_addr().ok(), "Prometheus metrics at /metrics");
            let srx = self.snapshot.subscribe();
            AbortOnDrop(tokio::spawn(async move {
                if let Err(e) = m.run(srx).await {
                    warn!(error = %e, "metrics endpoint stopped");
                }
            }))
        });
        let mut tick = crate::io::ticker::Ticker::new(TICK).context("the housekeeping timer")?;
        let mut timer = crate::io::ticker::Deadline::new().context("the election timer")?;
        let mut links = self.netlink.link_events().context("watching links")?;
        let mut addrs = self
            .netlink
            .address_events()
            .context("watching addresses")?;
        // Refresh the link state after subscribing, so no change is lost in between.
        self.refresh_links().await;
        self.feed(NodeInput::Start).await;
        info!(
            instances = self.node.instances().count(),
            "vrrp-agent running"
        );
        // Set by the first SIGTERM/SIGINT: masters hand over make-before-break and we exit once
        // every instance has stopped, or at this hard deadline.
        let mut stopping: Option<Instant> = None;
        loop {
            if let Some(hard) = stopping
                && (now() >= hard || self.node.all_stopped())
            {
                break;
            }
            let deadline = match (self.node.poll_timeout(), stopping) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            timer.set(deadline, now()).context("the election timer")?;
            tokio::select! {
                Some(inc) = self.rx.recv() => self.on_incoming(inc).await,
                ev = links.next() => match ev {
                    Some(ev) => self.on_link(ev).await,
                    None => bail!("the netlink link watch ended"),
                },
                Some(gone) = addrs.next() => {
                    self.feed(NodeInput::AddressRemoved { ifindex: gone.ifindex, addr: gone.addr }).await;
                }
                res = timer.fired() => {
                    res.context("the election timer")?;
                    self.on_timer(None).await;
                }
                _ = term.recv() => if self.begin_stop(&mut stopping, "SIGTERM").await { break },
                _ = int.recv() => if self.begin_stop(&mut stopping, "SIGINT").await { break },
                _ = usr1.recv() => {
                    let snap = self.snapshot_now();
                    control::log_status(&snap);
                    match control::write_dump(&dump_path, &snap) {
                        Ok(()) => info!(path = %dump_path.display(), "status written"),
                        Err(e) => warn!(path = %dump_path.display(), error = %e, "cannot write the status dump"),
                    }
                }
                res = tick.tick() => {
                    if let Err(e) = res {
                        bail!("the housekeeping timer failed: {e}");
                    }
                    if crate::io::sched::take_demoted() {
                        self.scheduling = crate::io::sched::describe_current();
                        error!(
                            "a thread ran {} µs without sleeping (RLIMIT_RTTIME): it is SCHED_OTHER from now on",
                            realtime.rlimit_rttime_us
                        );
                    }
                    self.data_plane_watch().await;
                    self.ticks += 1;
                    if self.ticks.is_multiple_of(FILTER_CHECK_TICKS) {
                        self.check_kernel_filter().await;
                    }
                    self.feed(NodeInput::Tick).await;
                    // Backstops due before the next tick are taken now: one wake-up, not two.
                    self.on_timer(Some(now() + TICK)).await;
                }
                Some(cmd) = cmd_rx.recv() => self.on_command(cmd).await,
                Some(ev) = self.track_rx.recv() => {
                    self.feed(NodeInput::Tracking {
                        instance: ev.instance,
                        priority: ev.tracked.priority,
                        fault: ev.tracked.fault,
                        reasons: ev.tracked.reasons,
                    }).await;
                }
                _ = hup.recv() => {
                    info!("SIGHUP: reloading the configuration");
                    if let Err(e) = self.reload().await {
                        error!("reload rejected, the running configuration stays: {e:#}");
                    }
                }
            }
        }
        self.shutdown().await;
        drop(control_task);
        Ok(())
    }

    /// Hands one input to the node and performs what it asks for.
    async fn feed(&mut self, input: NodeInput) {
        self.node.handle(now(), input);
        self.drain().await;
    }

    async fn on_incoming(&mut self, inc: Incoming) {
        let input = match inc {
            Incoming::Advert(rx) => {
                let (result, form) = match rx.result {
                    Ok((a, form)) => (Ok(a), Some(form)),
                    Err(e) => (Err(e), None),
                };
                NodeInput::Advert {
                    ifindex: rx.ifindex,
                    family: rx.family,
                    src: rx.src,
                    result,
                    form,
                    ttl: rx.ttl,
                }
            }
            Incoming::Conflict { ifindex, vip, mac } => NodeInput::VipClaimed { ifindex, vip, mac },
            Incoming::MasterSilent(key) => NodeInput::MasterSilent {
                key,
                slot: self.kernel_slot(key),
            },
        };
        self.feed(input).await;
    }

    /// Reads what the data plane holds for a slot (see [`KernelSlot`]).
    fn kernel_slot(&mut self, key: SlotKey) -> KernelSlot {
        let (ifindex, ipv6, vrid) = key;
        let Some(dp) = self.res.dataplane(ifindex) else {
            return KernelSlot::default();
        };
        KernelSlot {
            current: dp.advert_state(ipv6, vrid).ok().flatten(),
            others: dp.others_state(ipv6, vrid).ok().flatten(),
            mono_now_ns: crate::io::xdp::monotonic_ns().unwrap_or(0),
        }
    }

    async fn on_timer(&mut self, early: Option<Instant>) {
        let t = now();
        let slots = self
            .node
            .kernel_reads(t, early)
            .into_iter()
            .map(|k| (k, self.kernel_slot(k)))
            .collect();
        self.node.handle(t, NodeInput::Timer { early, slots });
        self.drain().await;
    }

    async fn on_link(&mut self, ev: crate::io::netlink::LinkEvent) {
        // track_interface may name interfaces no instance runs on.
        if !ev.lost {
            let name = match self.res.ifaces.get(&ev.index) {
                Some(i) => Some(i.name.clone()),
                None => self
                    .netlink
                    .link_by_index(ev.index)
                    .await
                    .ok()
                    .map(|l| l.name),
            };
            if let Some(name) = name {
                self.tracker.link_changed(&name, ev.up && !ev.deleted);
            }
            self.feed(NodeInput::Link {
                ifindex: ev.index,
                up: ev.up && !ev.deleted,
            })
            .await;
        } else {
            // Notifications were lost: re-read every interface.
            self.refresh_links().await;
        }
    }

    async fn refresh_links(&mut self) {
        let indexes: Vec<u32> = self.res.ifaces.keys().copied().collect();
        for ifindex in indexes {
            if let Ok(l) = self.netlink.link_by_index(ifindex).await {
                self.feed(NodeInput::Link { ifindex, up: l.up }).await;
            }
        }
    }

    /// The first stop signal starts a make-before-break exit; a second one means now.
    /// Returns whether to leave the loop at once.
    async fn begin_stop(&mut self, stopping: &mut Option<Instant>, signal: &str) -> bool {
        if stopping.is_some() {
            info!("{signal} again: releasing at once and exiting");
            return true;
        }
        let masters = self.node.masters();
        if masters > 0 {
            info!(
                masters,
                "{signal}: handing over (VIPs kept until the new master is heard), then exiting"
            );
        } else {
            info!("{signal}: exiting");
        }
        *stopping = Some(self.node.begin_stop(now()));
        self.drain().await;
        false
    }

    async fn on_command(&mut self, cmd: ControlCommand) {
        match cmd {
            ControlCommand::Reload { reply } => {
                info!("reload requested over the control socket");
                let r = self
                    .reload()
                    .await
                    .map(|()| "configuration reloaded".to_string())
                    .map_err(|e| format!("{e:#}"));
                if let Err(e) = &r {
                    error!("reload rejected, the running configuration stays: {e}");
                }
                let _ = reply.send(r);
            }
            ControlCommand::Handover { instance, reply } => {
                let r = self
                    .node
                    .handover(now(), instance.as_deref())
                    .map(|names| {
                        format!(
                            "handing over: {} (VIPs held until the new master is heard)",
                            names.join(", ")
                        )
                    })
                    .map_err(|e| e.to_string());
                self.drain().await;
                let _ = reply.send(r);
            }
        }
        self.publish();
    }

    fn snapshot_now(&self) -> Snapshot {
        control::snapshot::build(&control::snapshot::Sources {
            node: &self.node,
            res_ifaces: self
                .res
                .ifaces
                .values()
                .map(|i| control::snapshot::IfaceIo {
                    name: &i.name,
                    index: i.index,
                    dataplane: i.dataplane.as_ref(),
                    tx_errors: i.tx_errors,
                    foreign: &i.foreign.1,
                })
                .collect(),
            io: &self.io,
            checks: self.tracker.checks(),
            router_id: self.router_id.clone(),
            config_file: self.config_path.as_ref().map(|p| p.display().to_string()),
            scheduling: self.scheduling.clone(),
            started_unix: self.started_unix,
            now: now(),
        })
    }

    /// Publishes the current state to the status socket and the metrics endpoint.
    fn publish(&self) {
        self.snapshot.send_replace(self.snapshot_now());
    }

    async fn shutdown(&mut self) {
        self.feed(NodeInput::Shutdown).await;
        if self.kfilter.take().is_some()
            && let Err(e) = kfilter::clear().await
        {
            warn!(error = %e, "cannot remove the kernel ARP/NA filter");
        }
        if let Some(g) = self.guardian.take() {
            g.goodbye();
        }
        self.tracker.stop().await;
        if let Some(n) = self.notifier.take() {
            // Runs the queued notify_stop scripts before exiting.
            n.shutdown().await;
        }
        info!("vrrp-agent stopped");
    }

    fn id_name(&self, id: InstanceId) -> String {
        self.node
            .instance(id)
            .map(|i| i.spec.name.clone())
            .unwrap_or_else(|| id.to_string())
    }
}

/// Aborts a task when dropped (the control and metrics servers end with the loop).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Gives the heap the set-up freed back to the system: loading the program parses the
/// kernel's BTF (megabytes), and glibc would otherwise keep those pages resident for ever.
fn trim_heap() {
    // SAFETY: malloc_trim has no preconditions.
    unsafe { libc::malloc_trim(0) };
}
