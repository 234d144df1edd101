//! SIGHUP: the configuration re-read, resolved, checked by the node, then acquired and
//! applied; and what the tracker and the notifier are rebuilt from.

use anyhow::{Context, Result, anyhow, bail};
use tokio::sync::mpsc;
use tracing::warn;

use super::{Driver, now, resolve, trim_heap};
use crate::config::{self, Config};
use crate::notify::{Notifier, NotifierOptions};
use crate::track::{TrackEvent, Tracker, TrackerOptions};

/// The parts of a configuration the tracker depends on.
pub(super) type TrackKey = (
    Vec<config::VrrpScript>,
    Vec<config::TrackFile>,
    Vec<config::TrackProcess>,
    Vec<config::BuiltinCheck>,
    Vec<(String, crate::proto::Priority, Vec<Vec<config::TrackRef>>)>,
);

pub(super) fn track_key(cfg: &Config) -> TrackKey {
    // Spans are left out: moving a block in the file changes nothing.
    let mut scripts = cfg.scripts.clone();
    for s in &mut scripts {
        s.span = config::Span::default();
        s.command.span = config::Span::default();
    }
    let mut files = cfg.track_files.clone();
    for f in &mut files {
        f.span = config::Span::default();
    }
    let mut procs = cfg.track_processes.clone();
    for p in &mut procs {
        p.span = config::Span::default();
    }
    let refs = |v: &[config::TrackRef]| {
        v.iter()
            .map(|r| config::TrackRef {
                span: config::Span::default(),
                ..r.clone()
            })
            .collect::<Vec<_>>()
    };
    let insts = cfg
        .instances
        .iter()
        .map(|i| {
            let all = [
                &i.track_scripts,
                &i.track_files,
                &i.track_processes,
                &i.track_interfaces,
            ];
            (i.name.clone(), i.priority, all.map(|r| refs(r)).to_vec())
        })
        .collect();
    (scripts, files, procs, cfg.checks.clone(), insts)
}

pub(super) fn spawn_tracker(cfg: &Config) -> (Tracker, mpsc::Receiver<TrackEvent>) {
    Tracker::spawn_with(
        &config::TrackSpec::from_config(cfg),
        TrackerOptions::default(),
    )
}

pub(super) fn notifier(cfg: &Config) -> Result<Notifier> {
    Notifier::new(
        &config::NotifySpec::from_config(cfg),
        NotifierOptions {
            fifo: cfg.global.notify_fifo.clone(),
            json_fifo: cfg.global.notify_json.clone(),
            ..NotifierOptions::default()
        },
    )
    .context("notify scripts / FIFO")
}

impl Driver {
    /// SIGHUP: re-reads the configuration (see `proto::node::reload`). A broken file changes
    /// nothing: it is parsed, resolved and checked by the node before anything is opened, and
    /// what was opened for it is closed again if the node then refuses it.
    pub(super) async fn reload(&mut self) -> Result<()> {
        let Some(path) = self.config_path.clone() else {
            bail!("no configuration file to reload (started from command-line flags)");
        };
        let loaded = config::load(&path)?;
        for w in &loaded.warnings {
            warn!("{w}");
        }
        let cfg = loaded.config;
        let mut resolved = resolve::resolve(&self.netlink, &cfg).await?;
        let t = now();
        self.node
            .plan_reload(&resolved.node, t)
            .map_err(|e| anyhow!("{e}"))?;
        let got = self.res.acquire(&mut resolved)?;
        resolve::settle_vmac(&cfg, &mut resolved.node);
        if let Err(e) = self.node.reload(resolved.node, t) {
            self.res.rollback(got);
            bail!("{e}");
        }
        self.drain().await;
        self.res.release_unused(&self.node);
        self.watch.retain(|k, _| self.res.ifaces.contains_key(&k.0));
        // Checks follow the new file; an unchanged tracker keeps running so that no check
        // result is forgotten (a restarted check would read "unknown" until it runs again).
        let key = track_key(&cfg);
        if key != self.track_key {
            self.tracker.stop().await;
            let (tracker, track_rx) = spawn_tracker(&cfg);
            self.tracker = tracker;
            self.track_rx = track_rx;
            self.track_key = key;
        }
        if let Some(old) = self.notifier.take() {
            old.shutdown().await;
        }
        self.notifier = Some(notifier(&cfg)?);
        self.router_id = cfg.global.router_id.clone();
        trim_heap();
        Ok(())
    }
}
