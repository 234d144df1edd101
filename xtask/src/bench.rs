//! `cargo xtask bench`: speed figures, each beside a baseline measured in the same run, in
//! namespace labs (../shared/LAB.md). Prints a table and writes `target/bench/bench-<unix>.json`.
//!
//! 1. ARP: replies/s and CPU per reply of the XDP responder vs the kernel's own ARP
//!    (`--no-xdp`), one AF_PACKET `sendmmsg` sender in a client namespace.
//! 2. Flood: bounded protocol-112 flood (unknown VRID, bad TTL, bad checksum, lower priority)
//!    at a master+backup pair: agent CPU and state changes vs keepalived's.
//! 3. Steady state: a BACKUP hearing 10 ms adverts: wake-ups/s and CPU, XDP vs `--no-xdp`.
//! 4. Failover (bench/failover.rs): what a client probing the VIP with ARP every 1 ms sees on
//!    link down, crash, daemon-only SIGKILL, SIGTERM and `handover`, vrrp-agent vs keepalived,
//!    at VRRPv3 10 ms adverts and at the seed's VRRPv2 advert_int 1, idle and loaded.
//! 5. Scale (bench/scale.rs): 255 instances on one interface, 100 ms adverts: CPU and RSS.

mod failover;
pub mod probe;
mod scale;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Value, json};
use vrrp_tests::{Host, Instance, Lab, in_netns, keepalived_conf, ns_pids, parse_mac};

use crate::build::{self, BuildOpts};
use crate::deps;
use crate::util;

const VIP: &str = "192.0.2.3";
const VIP_OCTETS: [u8; 4] = [192, 0, 2, 3];

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Section {
    Arp,
    Flood,
    Steady,
    /// VRRPv3, 10 ms adverts.
    Failover,
    /// VRRPv2, advert_int 1 (the seed's setup).
    FailoverV2,
    Scale,
}

#[derive(Args, Debug)]
pub struct BenchOpts {
    /// Sections to run, comma-separated (default: all).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub only: Vec<Section>,
    /// Failover scenarios to run, comma-separated (default: all): link_down, crash,
    /// daemon_kill, sigterm, handover, link_down_loaded, crash_loaded.
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<String>,
    /// Repetitions of each failover scenario at 10 ms adverts.
    #[arg(long, default_value_t = 20)]
    pub reps: usize,
    /// Repetitions of each failover scenario at advert_int 1: that many labs run in parallel.
    #[arg(long, default_value_t = 20)]
    pub v2_reps: usize,
    /// Instances of the scale row (VRIDs 1..=N).
    #[arg(long, default_value_t = 255)]
    pub scale_instances: u16,
    /// Seconds of the scale row's CPU window.
    #[arg(long, default_value_t = 6)]
    pub scale_secs: u64,
    /// Use this agent binary (and the XDP object already built) instead of building them.
    #[arg(long, value_name = "PATH")]
    pub agent_bin: Option<std::path::PathBuf>,
    /// Seconds of each ARP run (one per mode and repeat).
    #[arg(long, default_value_t = 3)]
    pub arp_secs: u64,
    /// ARP runs per mode (the table shows medians).
    #[arg(long, default_value_t = 3)]
    pub arp_repeat: usize,
    /// Packet cap of each ARP run.
    #[arg(long, default_value_t = 20_000_000)]
    pub arp_max_packets: u64,
    /// Seconds of each protocol-112 flood.
    #[arg(long, default_value_t = 6)]
    pub flood_secs: u64,
    /// Packet cap of each flood.
    #[arg(long, default_value_t = 50_000_000)]
    pub flood_max_packets: u64,
    /// Seconds of each steady-state window.
    #[arg(long, default_value_t = 6)]
    pub steady_secs: u64,
}

/// A measured value, or why there is none.
type Val = std::result::Result<f64, String>;

struct Row {
    section: &'static str,
    metric: String,
    ours: Val,
    base: Val,
    /// `Some(true)`: higher is better for the ratio ours/base; `Some(false)`: base/ours.
    ratio_dir: Option<bool>,
    target: String,
    met: Option<bool>,
    /// Shown instead of the value when set (e.g. "33.1 / 38.0" for median / p99).
    text: [Option<String>; 2],
}

impl Row {
    fn ratio(&self) -> Option<f64> {
        let (a, b) = (self.ours.as_ref().ok()?, self.base.as_ref().ok()?);
        let r = match self.ratio_dir? {
            true => a / b,
            false => b / a,
        };
        r.is_finite().then_some(r)
    }
}

pub fn main(opts: &BenchOpts) -> Result<()> {
    if !util::is_root() {
        bail!("the bench builds network namespaces and attaches XDP: run it as root");
    }
    let t_start = Instant::now();
    deps::ensure_debian_packages(deps::BENCH_PACKAGES)?;
    let agent = match &opts.agent_bin {
        Some(p) => {
            std::fs::canonicalize(p).with_context(|| format!("agent binary {}", p.display()))?
        }
        None => build::build_all(&BuildOpts { debug: false })?,
    };
    let obj = build::ebpf_object();
    // SAFETY: single-threaded at this point; the lab harness reads these.
    unsafe {
        std::env::set_var("VRRP_EBPF_OBJ", &obj);
        std::env::set_var("VRRP_AGENT_BIN", &agent);
    }
    let t0 = Instant::now();
    let mut rows = Vec::new();
    let mut raw = serde_json::Map::new();
    let want = |s: Section| opts.only.is_empty() || opts.only.contains(&s);
    type SectionFn = fn(&BenchOpts, &mut Vec<Row>) -> Result<Value>;
    let sections: [(Section, &'static str, &str, SectionFn); 6] = [
        (
            Section::Arp,
            "arp",
            "ARP responder (XDP vs kernel)",
            bench_arp,
        ),
        (
            Section::Flood,
            "flood",
            "protocol-112 flood (vrrp-agent vs keepalived)",
            bench_flood,
        ),
        (
            Section::Steady,
            "steady",
            "steady-state BACKUP (XDP vs --no-xdp)",
            bench_steady,
        ),
        (
            Section::Failover,
            "failover_v3_10ms",
            "failover, VRRPv3 10 ms adverts (vrrp-agent vs keepalived)",
            failover::bench_v3,
        ),
        (
            Section::FailoverV2,
            "failover_v2_1s",
            "failover, VRRPv2 advert_int 1, labs in parallel (vrrp-agent vs keepalived)",
            failover::bench_v2,
        ),
        (
            Section::Scale,
            "scale",
            "scale: instances on one interface (vrrp-agent vs keepalived)",
            scale::bench_scale,
        ),
    ];
    let chosen: Vec<_> = sections.iter().filter(|s| want(s.0)).collect();
    let mut timings = serde_json::Map::new();
    for (i, (_, key, what, f)) in chosen.iter().enumerate() {
        eprintln!("bench: {}/{} {what}", i + 1, chosen.len());
        let ts = Instant::now();
        match f(opts, &mut rows) {
            Ok(v) => {
                raw.insert((*key).into(), v);
            }
            Err(e) => not_measured(&mut rows, key, &mut raw, e),
        }
        timings.insert((*key).into(), json!(ts.elapsed().as_secs_f64()));
        eprintln!("bench: {key} took {:.0} s", ts.elapsed().as_secs_f64());
    }
    let elapsed = t0.elapsed();

    let machine = machine_info();
    println!(
        "\nvrrp-xdp bench, {} on {} (kernel {}, {} cores); keepalived: {}",
        machine.date, machine.cpu, machine.kernel, machine.cores, machine.keepalived
    );
    print_table(&rows);
    println!(
        "notes: ARP CPU is system-wide (/proc/stat, all non-idle jiffies of both cores during the \
         window): the namespaces' work runs in softirq and cannot be attributed to the master \
         alone, so it includes the sender, the bridge and the client. Flood/steady CPU is \
         utime+stime of the daemon's processes (/proc/PID/stat); XDP work in softirq is not in \
         it (system-wide CPU is in the JSON). Wake-ups = voluntary+nonvoluntary context switches \
         over /proc/PID/task/*/status."
    );

    let unix = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = util::root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("bench-{unix}.json"));
    let doc = json!({
        "unix_time": unix,
        "seconds": elapsed.as_secs_f64(),
        "seconds_including_build": t_start.elapsed().as_secs_f64(),
        "cpus": num_cpus(),
        "date": machine.date,
        "kernel": machine.kernel,
        "cpu_model": machine.cpu,
        "keepalived": machine.keepalived,
        "sections": opts.only.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>(),
        "section_seconds": timings,
        "rows": rows.iter().map(|r| json!({
            "section": r.section,
            "metric": r.metric,
            "vrrp_agent": val_json(&r.ours),
            "baseline": val_json(&r.base),
            "vrrp_agent_text": r.text[0],
            "baseline_text": r.text[1],
            "ratio": r.ratio(),
            "target": r.target,
            "met": r.met,
        })).collect::<Vec<_>>(),
        "raw": raw,
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc)?)?;
    if rows.iter().any(|r| {
        r.section == "arp"
            && r.metric.starts_with("system CPU-s in")
            && r.ours
                .as_ref()
                .is_ok_and(|c| *c >= 0.9 * num_cpus() as f64 * opts.arp_secs as f64)
    }) {
        println!(
            "ARP: all {} cores were saturated in the window (sender + softirq + receiver), so \
             CPU per reply there is the inverse of throughput.",
            num_cpus()
        );
    }
    println!(
        "bench took {:.0} s ({:.0} s with the build); JSON: {}",
        elapsed.as_secs_f64(),
        t_start.elapsed().as_secs_f64(),
        path.display()
    );
    Ok(())
}

struct Machine {
    date: String,
    kernel: String,
    cores: usize,
    cpu: String,
    keepalived: String,
}

fn machine_info() -> Machine {
    let out = |c: &mut std::process::Command| {
        c.output()
            .map(|o| {
                let mut s = String::from_utf8_lossy(&o.stdout).to_string();
                s.push_str(&String::from_utf8_lossy(&o.stderr));
                s.lines().next().unwrap_or("").trim().to_string()
            })
            .unwrap_or_else(|e| format!("unknown ({e})"))
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    Machine {
        date: out(std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"])),
        kernel: out(std::process::Command::new("uname").arg("-r")),
        cores: num_cpus(),
        cpu,
        keepalived: out(std::process::Command::new(vrrp_tests::KEEPALIVED_BIN).arg("--version")),
    }
}

fn not_measured(
    rows: &mut Vec<Row>,
    section: &'static str,
    raw: &mut serde_json::Map<String, Value>,
    e: anyhow::Error,
) {
    eprintln!("bench: {section} failed: {e:#}");
    let why = format!("not measured: {e}");
    rows.push(Row {
        section,
        metric: "(whole section)".into(),
        ours: Err(why.clone()),
        base: Err(why),
        ratio_dir: None,
        target: String::new(),
        met: None,
        text: [None, None],
    });
    raw.insert(section.into(), json!({ "error": format!("{e:#}") }));
}

fn val_json(v: &Val) -> Value {
    match v {
        Ok(x) => json!(x),
        Err(e) => json!(e),
    }
}

fn fmt_val(v: &Val) -> String {
    match v {
        Ok(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Ok(x) if x.abs() >= 10.0 => format!("{x:.1}"),
        Ok(x) => format!("{x:.3}"),
        Err(e) => e.clone(),
    }
}

fn print_table(rows: &[Row]) {
    let header = [
        "section",
        "metric",
        "vrrp-agent",
        "baseline",
        "ratio",
        "target",
        "result",
    ];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.section.to_string(),
                r.metric.clone(),
                r.text[0].clone().unwrap_or_else(|| fmt_val(&r.ours)),
                r.text[1].clone().unwrap_or_else(|| fmt_val(&r.base)),
                r.ratio()
                    .map(|x| format!("{x:.2}x"))
                    .unwrap_or_else(|| "-".into()),
                r.target.clone(),
                match r.met {
                    Some(true) => "met".into(),
                    Some(false) => "MISSED".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut w = header.map(str::len);
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.len());
        }
    }
    let line = |c: &[String]| {
        let parts: Vec<String> = c
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<width$}", width = w[i]))
            .collect();
        println!("{}", parts.join(" | ").trim_end());
    };
    println!();
    line(&header.map(String::from));
    println!(
        "{}",
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for c in &cells {
        line(c);
    }
    println!();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

// ---------------------------------------------------------------------------------------------
// CPU and wake-up accounting.

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// System-wide non-idle CPU seconds so far (user+nice+system+irq+softirq+steal, /proc/stat).
fn system_busy() -> Result<f64> {
    let s = std::fs::read_to_string("/proc/stat")?;
    let line = s.lines().next().context("empty /proc/stat")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if f.len() < 8 {
        bail!("short /proc/stat line: {line}");
    }
    // user nice system idle iowait irq softirq steal
    let busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
    Ok(busy as f64 / clk_tck())
}

/// utime+stime of a process (all its threads), in seconds.
fn proc_cpu(pid: u32) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = s.rsplit_once(") ").context("bad /proc/PID/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime 15.
    let ut: u64 = f.get(11).context("no utime")?.parse()?;
    let st: u64 = f.get(12).context("no stime")?.parse()?;
    Ok((ut + st) as f64 / clk_tck())
}

/// CPU seconds per PID of every process in a namespace.
fn ns_cpu(ns: &str) -> Vec<(u32, f64)> {
    ns_pids(ns)
        .into_iter()
        .filter_map(|p| proc_cpu(p).ok().map(|c| (p, c)))
        .collect()
}

/// CPU seconds spent between two `ns_cpu` snapshots by processes alive at the end (a process
/// started in between counts from zero).
fn ns_cpu_delta(before: &[(u32, f64)], after: &[(u32, f64)]) -> f64 {
    after
        .iter()
        .map(|(p, c)| {
            let b = before
                .iter()
                .find(|(q, _)| q == p)
                .map(|x| x.1)
                .unwrap_or(0.0);
            c - b
        })
        .sum()
}

/// Context switches (voluntary + nonvoluntary) summed over a process's threads.
fn ctx_switches(pid: u32) -> Result<u64> {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let Ok(s) = std::fs::read_to_string(t?.path().join("status")) else {
            continue;
        };
        for l in s.lines() {
            if l.starts_with("voluntary_ctxt_switches:")
                || l.starts_with("nonvoluntary_ctxt_switches:")
            {
                total += l
                    .split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(total)
}

// ---------------------------------------------------------------------------------------------
// Frames and AF_PACKET.

fn arp_request(client_mac: [u8; 6], client_ip: [u8; 4], target: [u8; 4]) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&client_mac);
    f[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
    f[14..16].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    f[16..18].copy_from_slice(&0x0800u16.to_be_bytes()); // IPv4
    f[18] = 6;
    f[19] = 4;
    f[20..22].copy_from_slice(&1u16.to_be_bytes()); // request
    f[22..28].copy_from_slice(&client_mac);
    f[28..32].copy_from_slice(&client_ip);
    // tha stays zero
    f[38..42].copy_from_slice(&target);
    f
}

fn csum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        let hi = c.first().copied().unwrap_or(0);
        let lo = c.get(1).copied().unwrap_or(0);
        sum += u32::from(u16::from_be_bytes([hi, lo]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A VRRPv3 advert over IPv4 to 224.0.0.18, built by hand (IP checksum always right).
fn vrrp_v3_frame(
    src_mac: [u8; 6],
    src_ip: [u8; 4],
    vrid: u8,
    prio: u8,
    ttl: u8,
    good_vrrp_checksum: bool,
) -> Vec<u8> {
    let dst_ip = [224, 0, 0, 18];
    // VRRP: version 3 type 1, vrid, prio, count 1, max advert int 1 cs (10 ms), checksum, VIP.
    let mut v = vec![0x31, vrid, prio, 1, 0x00, 0x01, 0, 0];
    v.extend_from_slice(&VIP_OCTETS);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src_ip);
    pseudo.extend_from_slice(&dst_ip);
    pseudo.extend_from_slice(&[0, 112]);
    pseudo.extend_from_slice(&(v.len() as u16).to_be_bytes());
    let mut s: u32 = 0;
    for c in pseudo.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    let mut ck = csum(&v, s);
    if !good_vrrp_checksum {
        ck ^= 0x5a5a;
    }
    v[6..8].copy_from_slice(&ck.to_be_bytes());
    vrrp_ip_frame(src_mac, src_ip, ttl, &v)
}

/// A VRRPv2 advert (RFC 3768) over IPv4 to 224.0.0.18: advert_int 1 s, simple password
/// authentication with `pass` (keepalived's `auth_type PASS`).
fn vrrp_v2_frame(
    src_mac: [u8; 6],
    src_ip: [u8; 4],
    vrid: u8,
    prio: u8,
    ttl: u8,
    good_vrrp_checksum: bool,
    pass: &[u8],
) -> Vec<u8> {
    // Version 2 type 1, vrid, prio, count 1, auth type 1 (PASS), advert int 1, checksum.
    let mut v = vec![0x21, vrid, prio, 1, 1, 1, 0, 0];
    v.extend_from_slice(&VIP_OCTETS);
    let mut auth = [0u8; 8];
    for (d, s) in auth.iter_mut().zip(pass) {
        *d = *s;
    }
    v.extend_from_slice(&auth);
    // VRRPv2's checksum covers the VRRP message only (no pseudo-header).
    let mut ck = csum(&v, 0);
    if !good_vrrp_checksum {
        ck ^= 0x5a5a;
    }
    v[6..8].copy_from_slice(&ck.to_be_bytes());
    vrrp_ip_frame(src_mac, src_ip, ttl, &v)
}

/// Ethernet + IPv4 (protocol 112, to 224.0.0.18, checksum right) around a VRRP message.
fn vrrp_ip_frame(src_mac: [u8; 6], src_ip: [u8; 4], ttl: u8, v: &[u8]) -> Vec<u8> {
    let dst_ip = [224, 0, 0, 18];
    let total = 20 + v.len();
    let mut ip = vec![
        0x45,
        0xc0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0,
        0,
        ttl,
        112,
        0,
        0,
    ];
    ip.extend_from_slice(&src_ip);
    ip.extend_from_slice(&dst_ip);
    let ipck = csum(&ip, 0);
    ip[10..12].copy_from_slice(&ipck.to_be_bytes());
    let mut f = Vec::with_capacity(14 + total);
    f.extend_from_slice(&[0x01, 0x00, 0x5e, 0x00, 0x00, 0x12]);
    f.extend_from_slice(&src_mac);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(v);
    f
}

fn ifindex(ifname: &str) -> Result<i32> {
    let c = std::ffi::CString::new(ifname)?;
    // SAFETY: a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        bail!("no interface {ifname}");
    }
    Ok(i as i32)
}

fn packet_socket(proto: u16) -> Result<OwnedFd> {
    // SAFETY: plain socket(2); checked below.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto.to_be())) };
    if fd < 0 {
        bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh socket we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn setsockopt_int(fd: &OwnedFd, level: i32, opt: i32, v: i32) -> Result<()> {
    // SAFETY: v lives for the call; the length matches.
    let r = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            opt,
            (&raw const v).cast(),
            std::mem::size_of::<i32>() as u32,
        )
    };
    if r < 0 {
        bail!(
            "setsockopt {level}/{opt}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn sll(ifindex: i32, proto: u16) -> libc::sockaddr_ll {
    // SAFETY: sockaddr_ll is plain data; zero is valid.
    let mut a: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    a.sll_family = libc::AF_PACKET as u16;
    a.sll_protocol = proto.to_be();
    a.sll_ifindex = ifindex;
    a.sll_halen = 6;
    a
}

/// Sends `frames` in `sendmmsg` batches of 64 from `ifname` (current thread's namespace) until
/// `max_packets` or `max_time`; returns (sent, elapsed).
fn blast(
    ifname: &str,
    frames: &[Vec<u8>],
    max_packets: u64,
    max_time: Duration,
    stop: Option<&AtomicBool>,
) -> Result<(u64, Duration)> {
    const BATCH: usize = 64;
    let idx = ifindex(ifname)?;
    let fd = packet_socket(0)?;
    // Straight to the driver: the sender should not measure the qdisc (same in both runs).
    let _ = setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1);
    let mut addr = sll(idx, 0);
    let mut iov: Vec<libc::iovec> = (0..BATCH)
        .map(|i| {
            let f = &frames[i % frames.len()];
            libc::iovec {
                iov_base: f.as_ptr() as *mut libc::c_void,
                iov_len: f.len(),
            }
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = (0..BATCH)
        .map(|i| {
            // SAFETY: msghdr is plain data; zero is valid.
            let mut h: libc::msghdr = unsafe { std::mem::zeroed() };
            h.msg_name = (&raw mut addr).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            h.msg_iov = &raw mut iov[i];
            h.msg_iovlen = 1;
            libc::mmsghdr {
                msg_hdr: h,
                msg_len: 0,
            }
        })
        .collect();
    let start = Instant::now();
    let deadline = start + max_time;
    let mut sent = 0u64;
    while sent < max_packets
        && Instant::now() < deadline
        && !stop.is_some_and(|s| s.load(Ordering::Relaxed))
    {
        let n = BATCH.min((max_packets - sent) as usize);
        // SAFETY: msgs/iov/addr/frames outlive the call; n <= BATCH.
        let r = unsafe { libc::sendmmsg(fd.as_raw_fd(), msgs.as_mut_ptr(), n as u32, 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR) => {
                    std::thread::sleep(Duration::from_micros(50));
                    continue;
                }
                _ => bail!("sendmmsg on {ifname}: {e}"),
            }
        }
        sent += r as u64;
    }
    Ok((sent, start.elapsed()))
}

/// An AF_PACKET socket bound to `ifname` receiving incoming ARP (not our own), with a
/// `rcvbuf`-byte buffer and a `timeout_us` receive timeout so loops can check their stop flag.
fn arp_receiver(ifname: &str, rcvbuf: i32, timeout_us: i64) -> Result<OwnedFd> {
    packet_receiver(ifname, 0x0806, rcvbuf, timeout_us)
}

/// [`arp_receiver`] for any ethertype (the prober's IPv6 side reads Neighbor Advertisements).
fn packet_receiver(ifname: &str, ethertype: u16, rcvbuf: i32, timeout_us: i64) -> Result<OwnedFd> {
    let idx = ifindex(ifname)?;
    let fd = packet_socket(ethertype)?;
    setsockopt_int(&fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
    let _ = setsockopt_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, rcvbuf);
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: timeout_us,
    };
    // SAFETY: tv lives for the call; the length matches.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    let addr = sll(idx, ethertype);
    // SAFETY: addr is a valid sockaddr_ll.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&raw const addr).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if r < 0 {
        bail!("bind: {}", std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Counts ARP replies from `VIP` arriving on `ifname` until `stop`; returns (counted, socket
/// drops).
fn count_arp_replies(ifname: &str, stop: &AtomicBool, ready: &AtomicBool) -> Result<(u64, u64)> {
    let fd = arp_receiver(ifname, 16 << 20, 100_000)?;
    ready.store(true, Ordering::SeqCst);
    let mut buf = [0u8; 64];
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r >= 42 && buf[20..22] == [0, 2] && buf[28..32] == VIP_OCTETS {
            n += 1;
        }
    }
    // SAFETY: tpacket_stats is plain data.
    let mut st: libc::tpacket_stats = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as u32;
    // SAFETY: st and len are valid for the call.
    unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&raw mut st).cast(),
            &mut len,
        )
    };
    Ok((n, u64::from(st.tp_drops)))
}

// ---------------------------------------------------------------------------------------------
// Lab helpers.

fn last_state(lab: &Lab, name: &str) -> Option<String> {
    lab.transitions(name, None).pop().map(|t| t.to)
}

fn wait_last_state(lab: &Lab, name: &str, state: &str, timeout: Duration) -> Result<()> {
    lab.wait_until(&format!("{name} in {state}"), timeout, || {
        Ok(last_state(lab, name).as_deref() == Some(state))
    })
}

fn stop_agent(lab: &mut Lab, name: &str) -> Result<()> {
    if lab.running(name) {
        lab.signal(name, nix::sys::signal::Signal::SIGTERM)?;
        if lab.wait_exit(name, Duration::from_secs(10)).is_err() {
            lab.signal(name, nix::sys::signal::Signal::SIGKILL)?;
        }
    }
    Ok(())
}

/// Sum of a named counter over the agent's data planes (`vrrp-agent status --json`).
fn agent_counter(lab: &Lab, name: &str, counter: &str) -> Result<u64> {
    let sock = lab.path(&format!("{name}.sock"));
    let out = util::output(
        std::process::Command::new(vrrp_tests::agent_bin())
            .args(["status", "--json", "--socket"])
            .arg(&sock),
    )?;
    let v: Value = serde_json::from_str(&out).context("status --json")?;
    fn walk(v: &Value, key: &str, acc: &mut u64) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == key {
                        *acc += x.as_u64().unwrap_or(0);
                    } else {
                        walk(x, key, acc);
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, key, acc)),
            _ => {}
        }
    }
    let mut acc = 0;
    walk(&v, counter, &mut acc);
    Ok(acc)
}

// ---------------------------------------------------------------------------------------------
// 1. ARP.

struct ArpRun {
    sent: u64,
    secs: f64,
    replies: u64,
    drops: u64,
    cpu: f64,
    xdp_replied: Option<u64>,
    deadman: Option<u64>,
}

fn arp_once(lab: &Lab, client: &Host, agent: &str, xdp: bool, opts: &BenchOpts) -> Result<ArpRun> {
    let mac = parse_mac(&client.mac)?;
    let frame = arp_request(mac, [192, 0, 2, 10], VIP_OCTETS);
    let stop = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(AtomicBool::new(false));
    let (ns, ifn) = (client.ns.clone(), client.ifname.clone());
    let (s2, r2) = (stop.clone(), ready.clone());
    let rx = std::thread::spawn(move || in_netns(&ns, move || count_arp_replies(&ifn, &s2, &r2)));
    let t = Instant::now();
    while !ready.load(Ordering::SeqCst) && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = if xdp {
        Some((
            agent_counter(lab, agent, "arp_replied")?,
            agent_counter(lab, agent, "deadman_silenced")?,
        ))
    } else {
        None
    };
    let cpu0 = system_busy()?;
    let (ns, ifn) = (client.ns.clone(), client.ifname.clone());
    let (max, secs) = (opts.arp_max_packets, opts.arp_secs);
    let (sent, dt) = in_netns(&ns, move || {
        blast(&ifn, &[frame], max, Duration::from_secs(secs), None)
    })??;
    std::thread::sleep(Duration::from_millis(300));
    let cpu1 = system_busy()?;
    stop.store(true, Ordering::SeqCst);
    let (replies, drops) = rx
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))???;
    let after = if xdp {
        Some((
            agent_counter(lab, agent, "arp_replied")?,
            agent_counter(lab, agent, "deadman_silenced")?,
        ))
    } else {
        None
    };
    Ok(ArpRun {
        sent,
        secs: dt.as_secs_f64(),
        replies: replies + drops,
        drops,
        cpu: cpu1 - cpu0,
        xdp_replied: before.zip(after).map(|(b, a)| a.0 - b.0),
        deadman: before.zip(after).map(|(b, a)| a.1 - b.1),
    })
}

fn bench_arp(opts: &BenchOpts, rows: &mut Vec<Row>) -> Result<Value> {
    let mut lab = Lab::new("bench-arp")?;
    let master = lab.host("master", &["192.0.2.1/24"])?;
    let client = lab.host("client", &["192.0.2.10/24"])?;
    let mut runs: Vec<(bool, ArpRun)> = Vec::new();
    let mut raw = Vec::new();
    for i in 0..opts.arp_repeat.max(1) {
        for xdp in [true, false] {
            let name = format!("arp-{}-{i}", if xdp { "xdp" } else { "kernel" });
            let mut args = vec![
                "--iface",
                "eth0",
                "--vip",
                "192.0.2.3/24",
                "--priority",
                "100",
                "--state",
                "master",
                // VRRPv3 at 100 ms: MASTER within a few hundred ms, adverts still negligible.
                "--advert-int",
                "0.1",
            ];
            if !xdp {
                args.push("--no-xdp");
            }
            lab.agent(&master, &name, &args)?;
            wait_last_state(&lab, &name, "MASTER", Duration::from_secs(20))?;
            lab.wait_owner(VIP, &["master"], Duration::from_secs(10))?;
            lab.wait_arp_reply(&client, VIP, Duration::from_secs(10))?;
            std::thread::sleep(Duration::from_millis(500));
            let r = arp_once(&lab, &client, &name, xdp, opts)?;
            eprintln!(
                "  {name}: sent {} in {:.2}s, replies {} ({} socket drops), {:.2} CPU-s{}",
                r.sent,
                r.secs,
                r.replies,
                r.drops,
                r.cpu,
                r.xdp_replied
                    .map(|x| format!(
                        ", agent arp_replied {x}, deadman_silenced {}",
                        r.deadman.unwrap_or(0)
                    ))
                    .unwrap_or_default()
            );
            raw.push(json!({
                "run": name, "xdp": xdp, "sent": r.sent, "seconds": r.secs,
                "replies_received": r.replies, "receiver_socket_drops": r.drops,
                "system_cpu_seconds": r.cpu, "agent_arp_replied": r.xdp_replied,
                "agent_deadman_silenced": r.deadman,
            }));
            stop_agent(&mut lab, &name)?;
            lab.wait_owner(VIP, &[], Duration::from_secs(10))?;
            runs.push((xdp, r));
        }
    }
    let pick = |xdp: bool, f: &dyn Fn(&ArpRun) -> f64| {
        median(
            runs.iter()
                .filter(|(x, _)| *x == xdp)
                .map(|(_, r)| f(r))
                .collect(),
        )
    };
    let rps = |r: &ArpRun| r.replies as f64 / r.secs;
    let sps = |r: &ArpRun| r.sent as f64 / r.secs;
    let cpu = |r: &ArpRun| r.cpu;
    let us_per = |r: &ArpRun| r.cpu * 1e6 / r.replies.max(1) as f64;
    let per_cpu_s = |r: &ArpRun| r.replies as f64 / r.cpu.max(1e-9);
    let cpu_per_m = |r: &ArpRun| r.cpu * 1e6 / r.replies.max(1) as f64;
    let sec = "arp";
    let none = |metric: &str, ours: f64, base: f64, dir: Option<bool>| Row {
        section: sec,
        metric: metric.into(),
        ours: Ok(ours),
        base: Ok(base),
        ratio_dir: dir,
        target: String::new(),
        met: None,
        text: [None, None],
    };
    rows.push(none(
        "requests sent/s (same sender)",
        pick(true, &sps),
        pick(false, &sps),
        Some(true),
    ));
    rows.push(none(
        "replies/s (XDP vs kernel ARP)",
        pick(true, &rps),
        pick(false, &rps),
        Some(true),
    ));
    rows.push(none(
        &format!("system CPU-s in {} s window", opts.arp_secs),
        pick(true, &cpu),
        pick(false, &cpu),
        None,
    ));
    rows.push(none(
        "system CPU-s per million replies",
        pick(true, &cpu_per_m),
        pick(false, &cpu_per_m),
        Some(false),
    ));
    rows.push(none(
        "system CPU-us per reply",
        pick(true, &us_per),
        pick(false, &us_per),
        Some(false),
    ));
    let xdp_share =
        |r: &ArpRun| 100.0 * r.xdp_replied.unwrap_or(0) as f64 / r.replies.max(1) as f64;
    rows.push(Row {
        section: sec,
        metric: "% of replies counted by XDP (arp_replied)".into(),
        ours: Ok(pick(true, &xdp_share)),
        base: Err("n/a (kernel)".into()),
        ratio_dir: None,
        target: String::new(),
        met: None,
        text: [None, None],
    });
    let cap = num_cpus() as f64 * opts.arp_secs as f64;
    if runs.iter().any(|(_, r)| r.cpu >= 0.9 * cap) {
        eprintln!(
            "  note: the machine was CPU-saturated during ARP runs ({cap:.0} CPU-s available): \
             CPU per reply is then the inverse of throughput"
        );
    }
    let (a, b) = (pick(true, &per_cpu_s), pick(false, &per_cpu_s));
    rows.push(Row {
        section: sec,
        metric: "replies per system CPU-second".into(),
        ours: Ok(a),
        base: Ok(b),
        ratio_dir: Some(true),
        target: ">= 5x".into(),
        met: Some(a / b >= 5.0),
        text: [None, None],
    });
    Ok(json!({ "runs": raw, "repeat": opts.arp_repeat, "cpu": "system-wide /proc/stat" }))
}

// ---------------------------------------------------------------------------------------------
// 2. Flood.

/// The flood as VRRPv2 (the seed's VI_1: PASS 1111), for the advert_int 1 rows.
fn flood_frames_v2(flooder: &Host) -> Result<Vec<Vec<u8>>> {
    let mac = parse_mac(&flooder.mac)?;
    let src = [192, 0, 2, 20];
    let p = b"1111";
    Ok(vec![
        vrrp_v2_frame(mac, src, 99, 200, 255, true, p), // unknown VRID
        vrrp_v2_frame(mac, src, 51, 200, 64, true, p),  // bad TTL
        vrrp_v2_frame(mac, src, 51, 200, 255, false, p), // bad VRRP checksum
        vrrp_v2_frame(mac, src, 51, 1, 255, true, p),   // same VRID, lower priority
    ])
}

fn flood_frames(flooder: &Host) -> Result<Vec<Vec<u8>>> {
    let mac = parse_mac(&flooder.mac)?;
    let src = [192, 0, 2, 20];
    Ok(vec![
        vrrp_v3_frame(mac, src, 99, 200, 255, true), // unknown VRID
        vrrp_v3_frame(mac, src, 51, 200, 64, true),  // bad TTL
        vrrp_v3_frame(mac, src, 51, 200, 255, false), // bad VRRP checksum
        vrrp_v3_frame(mac, src, 51, 1, 255, true),   // same VRID, lower priority
    ])
}

struct FloodRun {
    /// The master daemon's CPU-s over a window as long as the flood, just before it (its own
    /// adverts and timers), and the window's length.
    quiet_master: f64,
    quiet_secs: f64,
    sent: u64,
    secs: f64,
    cpu_master: f64,
    cpu_backup: f64,
    system_cpu: f64,
    transitions: usize,
}

/// Floods while measuring the daemons in `master`/`backup`; `transitions` counts state changes
/// in the logs of `names`.
fn flood_once(
    lab: &Lab,
    flooder: &Host,
    master: &Host,
    backup: &Host,
    count_transitions: &dyn Fn() -> usize,
    opts: &BenchOpts,
) -> Result<FloodRun> {
    let frames = flood_frames(flooder)?;
    let _ = lab;
    let q0 = ns_cpu(&master.ns);
    let tq = Instant::now();
    std::thread::sleep(Duration::from_secs(opts.flood_secs.min(3)));
    let quiet_master = ns_cpu_delta(&q0, &ns_cpu(&master.ns));
    let quiet_secs = tq.elapsed().as_secs_f64();
    let t0 = count_transitions();
    let (m0, b0) = (ns_cpu(&master.ns), ns_cpu(&backup.ns));
    if m0.is_empty() || b0.is_empty() {
        bail!("no daemon process in the master or backup namespace");
    }
    let s0 = system_busy()?;
    let (ns, ifn) = (flooder.ns.clone(), flooder.ifname.clone());
    let (max, secs) = (opts.flood_max_packets, opts.flood_secs);
    let (sent, dt) = in_netns(&ns, move || {
        blast(&ifn, &frames, max, Duration::from_secs(secs), None)
    })??;
    let s1 = system_busy()?;
    let (m1, b1) = (ns_cpu(&master.ns), ns_cpu(&backup.ns));
    // Transitions the flood caused may show a little later (timers): look once more.
    std::thread::sleep(Duration::from_millis(500));
    Ok(FloodRun {
        quiet_master,
        quiet_secs,
        sent,
        secs: dt.as_secs_f64(),
        cpu_master: ns_cpu_delta(&m0, &m1),
        cpu_backup: ns_cpu_delta(&b0, &b1),
        system_cpu: s1 - s0,
        transitions: count_transitions() - t0,
    })
}

fn flood_instance(state: &str, prio: u8, advert: &str) -> Instance {
    let mut i = Instance::seed(state, prio);
    i.version = 3;
    i.auth_pass = None;
    i.advert_int = advert.into();
    i
}

fn keepalived_transitions(log: &str) -> usize {
    log.lines()
        .filter(|l| l.contains("Entering") && l.contains("STATE"))
        .count()
}

fn bench_flood(opts: &BenchOpts, rows: &mut Vec<Row>) -> Result<Value> {
    let advert = "0.01";
    let mut lab = Lab::new("bench-flood")?;
    let backup = lab.host("backup", &["192.0.2.1/24"])?;
    let master = lab.host("master", &["192.0.2.2/24"])?;
    let flooder = lab.host("flooder", &["192.0.2.20/24"])?;

    // vrrp-agent pair (XDP mode).
    let cb = keepalived_conf("backup", &[flood_instance("BACKUP", 50, advert)]);
    let cm = keepalived_conf("master", &[flood_instance("MASTER", 100, advert)]);
    lab.agent_conf(&backup, "agent-backup", &cb, &[])?;
    lab.agent_conf(&master, "agent-master", &cm, &[])?;
    wait_last_state(&lab, "agent-master", "MASTER", Duration::from_secs(20))?;
    wait_last_state(&lab, "agent-backup", "BACKUP", Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_secs(1));
    let count_agent = || {
        lab.transitions("agent-master", None).len() + lab.transitions("agent-backup", None).len()
    };
    let ours = flood_once(&lab, &flooder, &master, &backup, &count_agent, opts)?;
    eprintln!(
        "  vrrp-agent: sent {} in {:.2}s; CPU master {:.3}s backup {:.3}s; {} transitions",
        ours.sent, ours.secs, ours.cpu_master, ours.cpu_backup, ours.transitions
    );
    let owner_after_ours = lab.vip_owner(VIP);
    stop_agent(&mut lab, "agent-master")?;
    stop_agent(&mut lab, "agent-backup")?;
    lab.wait_owner(VIP, &[], Duration::from_secs(10))?;

    // keepalived pair, same configs.
    lab.keepalived(&backup, "ka-backup", &cb)?;
    lab.keepalived(&master, "ka-master", &cm)?;
    lab.wait_log(
        "ka-master",
        "Entering MASTER STATE",
        Duration::from_secs(30),
    )?;
    lab.wait_log(
        "ka-backup",
        "Entering BACKUP STATE",
        Duration::from_secs(30),
    )?;
    std::thread::sleep(Duration::from_secs(1));
    let count_ka = || {
        keepalived_transitions(&lab.log("ka-master"))
            + keepalived_transitions(&lab.log("ka-backup"))
    };
    let base = flood_once(&lab, &flooder, &master, &backup, &count_ka, opts)?;
    eprintln!(
        "  keepalived: sent {} in {:.2}s; CPU master {:.3}s backup {:.3}s; {} transitions",
        base.sent, base.secs, base.cpu_master, base.cpu_backup, base.transitions
    );
    let ka_advert_note = lab
        .log("ka-master")
        .lines()
        .chain(lab.log("ka-backup").lines())
        .filter(|l| l.contains("advert"))
        .map(str::to_string)
        .collect::<Vec<_>>();

    let pct = |cpu: f64, r: &FloodRun| 100.0 * cpu / r.secs;
    let sec = "flood";
    rows.push(Row {
        section: sec,
        metric: "flood packets/s sent".into(),
        ours: Ok(ours.sent as f64 / ours.secs),
        base: Ok(base.sent as f64 / base.secs),
        ratio_dir: None,
        target: String::new(),
        met: None,
        text: [None, None],
    });
    for (what, o, b) in [
        (
            "master daemon CPU, % of a core",
            pct(ours.cpu_master, &ours),
            pct(base.cpu_master, &base),
        ),
        (
            "backup daemon CPU, % of a core",
            pct(ours.cpu_backup, &ours),
            pct(base.cpu_backup, &base),
        ),
    ] {
        rows.push(Row {
            section: sec,
            metric: what.into(),
            ours: Ok(o),
            base: Ok(b),
            ratio_dir: Some(false),
            target: "agent < 1%".into(),
            met: Some(o < 1.0),
            text: [None, None],
        });
    }
    rows.push(Row {
        section: sec,
        metric: "master daemon CPU with no flood (info), % of a core".into(),
        ours: Ok(100.0 * ours.quiet_master / ours.quiet_secs),
        base: Ok(100.0 * base.quiet_master / base.quiet_secs),
        ratio_dir: Some(false),
        target: String::new(),
        met: None,
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: "state transitions during flood".into(),
        ours: Ok(ours.transitions as f64),
        base: Ok(base.transitions as f64),
        ratio_dir: None,
        target: "agent 0".into(),
        met: Some(ours.transitions == 0),
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: "system-wide CPU-s (info)".into(),
        ours: Ok(ours.system_cpu),
        base: Ok(base.system_cpu),
        ratio_dir: None,
        target: String::new(),
        met: None,
        text: [None, None],
    });
    let j = |r: &FloodRun| {
        json!({
            "sent": r.sent, "seconds": r.secs, "cpu_master_s": r.cpu_master,
            "cpu_backup_s": r.cpu_backup, "system_cpu_s": r.system_cpu,
            "quiet_master_cpu_s": r.quiet_master, "quiet_seconds": r.quiet_secs,
            "transitions": r.transitions,
        })
    };
    Ok(json!({
        "advert_int": advert,
        "frames": ["unknown VRID 99", "VRID 51 TTL 64", "VRID 51 bad VRRP checksum", "VRID 51 priority 1"],
        "vrrp_agent": j(&ours),
        "vip_owner_after_agent_flood": owner_after_ours,
        "keepalived": j(&base),
        "keepalived_advert_log_lines": ka_advert_note,
    }))
}

// ---------------------------------------------------------------------------------------------
// 3. Steady state.

struct SteadyRun {
    wakeups: u64,
    cpu: f64,
    secs: f64,
    transitions: usize,
}

fn bench_steady(opts: &BenchOpts, rows: &mut Vec<Row>) -> Result<Value> {
    let mut lab = Lab::new("bench-steady")?;
    let master = lab.host("master", &["192.0.2.2/24"])?;
    let backup = lab.host("backup", &["192.0.2.1/24"])?;
    let quick = |prio: &'static str, state: &'static str| {
        vec![
            "--iface",
            "eth0",
            "--vip",
            "192.0.2.3/24",
            "--priority",
            prio,
            "--state",
            state,
            "--advert-int",
            "0.01",
        ]
    };
    lab.agent(&master, "master", &quick("100", "master"))?;
    wait_last_state(&lab, "master", "MASTER", Duration::from_secs(20))?;
    let mut runs = Vec::new();
    for xdp in [true, false] {
        let name = if xdp { "backup-xdp" } else { "backup-noxdp" };
        let mut args = quick("50", "backup");
        if !xdp {
            args.push("--no-xdp");
        }
        let pid = lab.agent(&backup, name, &args)?;
        wait_last_state(&lab, name, "BACKUP", Duration::from_secs(20))?;
        std::thread::sleep(Duration::from_secs(1));
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if !comm.trim().starts_with("vrrp-agent") {
            bail!("PID {pid} is {comm:?}, not the agent");
        }
        let tr0 = lab.transitions(name, None).len();
        let (w0, c0, t0) = (ctx_switches(pid)?, proc_cpu(pid)?, Instant::now());
        std::thread::sleep(Duration::from_secs(opts.steady_secs));
        let (w1, c1, secs) = (
            ctx_switches(pid)?,
            proc_cpu(pid)?,
            t0.elapsed().as_secs_f64(),
        );
        let r = SteadyRun {
            wakeups: w1 - w0,
            cpu: c1 - c0,
            secs,
            transitions: lab.transitions(name, None).len() - tr0,
        };
        eprintln!(
            "  {name}: {} wake-ups, {:.3} CPU-s in {:.1}s, {} transitions",
            r.wakeups, r.cpu, r.secs, r.transitions
        );
        stop_agent(&mut lab, name)?;
        runs.push(r);
    }
    let (x, k) = (&runs[0], &runs[1]);
    let sec = "steady";
    let (wx, wk) = (x.wakeups as f64 / x.secs, k.wakeups as f64 / k.secs);
    rows.push(Row {
        section: sec,
        metric: "BACKUP wake-ups/s (XDP vs --no-xdp)".into(),
        ours: Ok(wx),
        base: Ok(wk),
        ratio_dir: Some(false),
        target: ">= 10x fewer".into(),
        met: Some(wk / wx.max(1e-9) >= 10.0),
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: "BACKUP CPU, % of a core".into(),
        ours: Ok(100.0 * x.cpu / x.secs),
        base: Ok(100.0 * k.cpu / k.secs),
        ratio_dir: Some(false),
        target: String::new(),
        met: None,
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: "state transitions in window".into(),
        ours: Ok(x.transitions as f64),
        base: Ok(k.transitions as f64),
        ratio_dir: None,
        target: "0".into(),
        met: Some(x.transitions == 0 && k.transitions == 0),
        text: [None, None],
    });
    let j = |r: &SteadyRun| json!({ "wakeups": r.wakeups, "cpu_s": r.cpu, "seconds": r.secs, "transitions": r.transitions });
    Ok(json!({ "advert_int": "0.01", "xdp": j(x), "no_xdp": j(k) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_flood_frame_checksums() {
        let f = vrrp_v2_frame(
            [2, 0, 0, 0, 0, 1],
            [192, 0, 2, 20],
            51,
            1,
            255,
            true,
            b"1111",
        );
        // Ethernet 14 + IPv4 20 + VRRPv2 (8 + 4 VIP + 8 auth).
        assert_eq!(f.len(), 14 + 20 + 20);
        assert_eq!(csum(&f[14..34], 0), 0, "IPv4 header checksum");
        assert_eq!(csum(&f[34..], 0), 0, "VRRPv2 checksum");
        assert_eq!(f[34], 0x21);
        assert_eq!(&f[46..50], b"1111");
        let bad = vrrp_v2_frame(
            [2, 0, 0, 0, 0, 1],
            [192, 0, 2, 20],
            51,
            1,
            255,
            false,
            b"1111",
        );
        assert_ne!(csum(&bad[34..], 0), 0);
    }
}
