//! `cargo xtask demo`: the seed's scenario in network namespaces. Two load balancers (lb01,
//! lb02) share a VIP with the seed's keepalived.conf files; a client keeps fetching a page
//! from the VIP; lb02 (the master) dies, lb01 takes over, lb02 comes back and preempts.
//!
//! ```text
//!   client 192.0.2.10 ──┐
//!   lb01   192.0.2.1  ──┼── br0      VIP 192.0.2.3 (VRID 51), served by whoever is MASTER
//!   lb02   192.0.2.2  ──┘
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use clap::Args;
use vrrp_tests::{Host, Lab};

use crate::build::{self, BuildOpts};
use crate::deps;
use crate::util;

const VIP: &str = "192.0.2.3";

#[derive(Args, Debug)]
pub struct DemoOpts {
    /// Advertisement interval in seconds. The seed uses 1 (VRRPv2); a fractional value
    /// switches to VRRPv3 (e.g. 0.05).
    #[arg(long, default_value = "1")]
    pub advert_int: String,
    /// Keep the lab directory (agent logs, configs) after the demo.
    #[arg(long)]
    pub keep: bool,
}

/// What the client saw at one probe.
#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Served(String),
    NoAnswer,
}

pub fn main(opts: &DemoOpts) -> Result<()> {
    if !util::is_root() {
        anyhow::bail!("the demo builds network namespaces and attaches XDP: run it as root");
    }
    deps::ensure_debian_packages(deps::DEMO_PACKAGES)?;
    let agent = build::build_all(&BuildOpts { debug: false })?;
    let obj = build::ebpf_object();
    // SAFETY: single-threaded at this point; the lab harness reads it to find the XDP object.
    unsafe { std::env::set_var("VRRP_EBPF_OBJ", &obj) };
    if opts.keep {
        // SAFETY: as above.
        unsafe { std::env::set_var("VRRP_LAB_KEEP", "1") };
    }

    let start = Instant::now();
    let wall0 = SystemTime::now();
    let mut lab = Lab::new("demo")?;
    let lb01 = lab.host("lb01", &["192.0.2.1/24"])?;
    let lb02 = lab.host("lb02", &["192.0.2.2/24"])?;
    let client = lab.host("client", &["192.0.2.10/24"])?;
    say(
        start,
        &format!(
            "lab {} up: lb01 192.0.2.1, lb02 192.0.2.2, client 192.0.2.10, VIP {VIP}",
            lab.tag
        ),
    );
    for h in [&lb01, &lb02] {
        web_server(h)?;
    }

    let (conf1, conf2) = seed_configs(&opts.advert_int)?;
    let c1 = lab.path("lb01.conf");
    let c2 = lab.path("lb02.conf");
    std::fs::write(&c1, conf1)?;
    std::fs::write(&c2, conf2)?;
    let dir = lab.dir.clone();
    // Namespaces share the filesystem: each agent gets its own control socket and dump file.
    let args = |c: &std::path::Path| {
        let name = c
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        vec![
            "-f".to_string(),
            c.display().to_string(),
            "--control-socket".to_string(),
            dir.join(format!("{name}.sock")).display().to_string(),
            "--dump-path".to_string(),
            dir.join(format!("{name}.dump.json")).display().to_string(),
        ]
    };
    lab.spawn(&lb01.ns, "lb01", &agent, &args(&c1))?;
    lab.spawn(&lb02.ns, "lb02", &agent, &args(&c2))?;
    say(
        start,
        "started vrrp-agent on lb01 (BACKUP, priority 50) and lb02 (MASTER, priority 100) with the seed's configs",
    );

    let probes = client_probe(&client)?;
    let mut timeline = Timeline {
        start,
        wall0,
        last: None,
        seen_lines: [0, 0],
        probes,
    };

    timeline
        .until(&lab, Duration::from_secs(20), |s| {
            s == &Seen::Served("lb02".into())
        })
        .context("the client never reached lb02 through the VIP")?;
    timeline.watch(&lab, Duration::from_secs(2));

    say(
        start,
        ">>> lb02 crashes: every process on it is killed (SIGKILL) and its link goes down",
    );
    let crash = Instant::now();
    // The whole host, not only the agent: its guardian (which would send priority 0 for a
    // killed agent) dies too, so lb01 waits out the master-down interval.
    // Stopped first, so that no process acts on another's death (a host dies all at once).
    vrrp_tests::crash_namespace(&lb02.ns)?;
    // Reaps the agent (already killed above, a zombie until then).
    let _ = lab.signal("lb02", nix_sigkill());
    lab.link(&lb02, false)?;
    let t_over = timeline
        .until(&lab, Duration::from_secs(30), |s| {
            s == &Seen::Served("lb01".into())
        })
        .context("lb01 never took over")?;
    let failover = t_over.duration_since(crash);
    timeline.watch(&lab, Duration::from_secs(2));

    say(
        start,
        ">>> lb02 comes back: link up, vrrp-agent restarted (it removes the stale VIP first)",
    );
    lab.link(&lb02, true)?;
    let back = Instant::now();
    lab.spawn(&lb02.ns, "lb02", &agent, &args(&c2))?;
    let t_back = timeline
        .until(&lab, Duration::from_secs(30), |s| {
            s == &Seen::Served("lb02".into())
        })
        .context("lb02 never preempted back")?;
    timeline.watch(&lab, Duration::from_secs(2));

    println!();
    println!("summary (advert_int {}):", opts.advert_int);
    println!(
        "  failover: client served by lb01 {:.0} ms after lb02 died",
        failover.as_secs_f64() * 1e3
    );
    println!(
        "  preempt:  client served by lb02 {:.0} ms after lb02's agent restarted",
        t_back.duration_since(back).as_secs_f64() * 1e3
    );
    println!("  (master-down interval = 3 x advert_int + skew; the client probes every 20 ms)");
    if opts.keep {
        println!("  logs and configs kept in {}", lab.dir.display());
    }
    say(start, "cleaning up (agents stopped, namespaces removed)");
    drop(lab);
    Ok(())
}

/// Moves the calling thread into a network namespace (setns affects only this thread).
fn enter_netns(ns: &str) -> Result<()> {
    let path = format!("/run/netns/{ns}");
    let f = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("entering {path}"))?;
    Ok(())
}

fn nix_sigkill() -> nix::sys::signal::Signal {
    nix::sys::signal::Signal::SIGKILL
}

/// The seed's configs, with another advert interval if asked (fractional → VRRPv3).
fn seed_configs(advert_int: &str) -> Result<(String, String)> {
    let root = util::root().join("testdata/config");
    let mut a = std::fs::read_to_string(root.join("seed-lb01.conf"))?;
    let mut b = std::fs::read_to_string(root.join("seed-lb02.conf"))?;
    if advert_int != "1" {
        let v3 = advert_int.contains('.');
        for c in [&mut a, &mut b] {
            *c = c.replace("advert_int 1", &format!("advert_int {advert_int}"));
            if v3 {
                // VRRPv3 has no authentication (RFC 9568 §9.1).
                *c = c.replace("advert_int", "version 3\n    advert_int");
                *c = c.replace(
                    "    authentication { auth_type PASS  auth_pass 1111 }\n",
                    "",
                );
            }
        }
    }
    Ok((a, b))
}

/// A tiny web server on 0.0.0.0:80 in a host's namespace that says who it is.
fn web_server(host: &Host) -> Result<()> {
    let name = host.name.clone();
    let ns = host.ns.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let listener = enter_netns(&ns).and_then(|_| Ok(TcpListener::bind("0.0.0.0:80")?));
        let listener = match listener {
            Ok(l) => {
                let _ = tx.send(Ok(()));
                l
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        for conn in listener.incoming().flatten() {
            let mut conn = conn;
            let mut buf = [0u8; 512];
            let _ = conn.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{name}\n",
                    name.len() + 1
                )
                .as_bytes(),
            );
        }
    });
    rx.recv().context("web server thread died")?
}

/// The client fetches http://VIP/ every 20 ms and reports who answered.
fn client_probe(client: &Host) -> Result<mpsc::Receiver<(Instant, Seen)>> {
    let ns = client.ns.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if enter_netns(&ns).is_err() {
            return;
        }
        let addr: SocketAddr = format!("{VIP}:80").parse().expect("static address");
        loop {
            let seen = fetch(&addr).map(Seen::Served).unwrap_or(Seen::NoAnswer);
            if tx.send((Instant::now(), seen)).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    Ok(rx)
}

fn fetch(addr: &SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(addr, Duration::from_millis(100)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.rsplit("\r\n\r\n")
        .next()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
}

struct Timeline {
    start: Instant,
    wall0: SystemTime,
    last: Option<Seen>,
    seen_lines: [usize; 2],
    probes: mpsc::Receiver<(Instant, Seen)>,
}

impl Timeline {
    /// Prints probe changes and agent transitions until `done` holds for a probe; returns the
    /// time of that probe.
    fn until(
        &mut self,
        lab: &Lab,
        timeout: Duration,
        done: impl Fn(&Seen) -> bool,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.agent_lines(lab);
            if let Ok((t, seen)) = self.probes.recv_timeout(Duration::from_millis(50)) {
                self.show(t, &seen);
                if done(&seen) {
                    return Ok(t);
                }
            }
        }
        anyhow::bail!("timed out\n{}", lab.all_logs())
    }

    fn watch(&mut self, lab: &Lab, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.agent_lines(lab);
            if let Ok((t, seen)) = self.probes.recv_timeout(Duration::from_millis(50)) {
                self.show(t, &seen);
            }
        }
    }

    fn show(&mut self, t: Instant, seen: &Seen) {
        if self.last.as_ref() == Some(seen) {
            return;
        }
        let what = match seen {
            Seen::Served(by) => format!("client: http://{VIP}/ served by {by}"),
            Seen::NoAnswer => format!("client: http://{VIP}/ no answer"),
        };
        say(
            self.start,
            &format!(
                "{what}  [{:.3}s]",
                t.duration_since(self.start).as_secs_f64()
            ),
        );
        self.last = Some(seen.clone());
    }

    /// New "state transition" lines of both agents, with the agents' own timestamps.
    fn agent_lines(&mut self, lab: &Lab) {
        for (i, name) in ["lb01", "lb02"].iter().enumerate() {
            let log = lab.log(name);
            let lines: Vec<&str> = log.lines().collect();
            for l in lines.iter().skip(self.seen_lines[i]) {
                if let Some(msg) = transition(l) {
                    let at = agent_time(l, self.wall0)
                        .map(|s| format!("{s:8.3}s"))
                        .unwrap_or_else(|| "        ".into());
                    println!("  {at}  {name}: {msg}");
                }
            }
            self.seen_lines[i] = lines.len();
        }
    }
}

fn say(start: Instant, msg: &str) {
    println!("  {:8.3}s  {msg}", start.elapsed().as_secs_f64());
}

/// "... state transition instance=VI_1 vrid=51 from=\"BACKUP\" to=\"MASTER\" reason=..." →
/// "VI_1 BACKUP -> MASTER (reason)".
fn transition(line: &str) -> Option<String> {
    let rest = line.split("state transition ").nth(1)?;
    let field = |k: &str| {
        rest.split(&format!("{k}=")).nth(1).map(|v| {
            if let Some(v) = v.strip_prefix('"') {
                v.split('"').next().unwrap_or("").to_string()
            } else if k == "reason" {
                v.to_string()
            } else {
                v.split_whitespace().next().unwrap_or("").to_string()
            }
        })
    };
    Some(format!(
        "{} {} -> {} ({})",
        field("instance")?,
        field("from")?,
        field("to")?,
        field("reason")?
    ))
}

/// Seconds since the demo started, from the agent's RFC 3339 log timestamp.
fn agent_time(line: &str, wall0: SystemTime) -> Option<f64> {
    let ts = line.split_whitespace().next()?;
    let tod = ts.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = tod.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    let line_sod = h * 3600.0 + m * 60.0 + s;
    let since_epoch = wall0
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?
        .as_secs_f64();
    let start_sod = since_epoch % 86400.0;
    Some(line_sod - start_sod)
}
