//! Scale: many instances (VRIDs 1..=N, one VIP each) on one interface, 100 ms VRRPv3
//! adverts, the daemon MASTER for all of them: its CPU (% of a core) and resident memory
//! (VmRSS summed over its processes), vrrp-agent beside keepalived.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::{Value, json};
use vrrp_tests::{Instance, Lab, keepalived_conf};

use super::{BenchOpts, Row, ns_cpu, ns_cpu_delta};
use vrrp_tests::ns_pids;

fn vip(vrid: u16) -> String {
    // 198.51.100.1-254 for VRIDs 1-254, 203.0.113.1 for 255.
    if vrid <= 254 {
        format!("198.51.100.{vrid}/24 dev eth0")
    } else {
        format!("203.0.113.{}/24 dev eth0", vrid - 254)
    }
}

fn conf(n: u16) -> String {
    let instances: Vec<Instance> = (1..=n)
        .map(|v| {
            let mut i = Instance::seed("MASTER", 100);
            i.name = format!("VI_{v}");
            i.vrid = v as u8;
            i.version = 3;
            i.auth_pass = None;
            i.advert_int = "0.1".into();
            i.vips = vec![vip(v)];
            i
        })
        .collect();
    keepalived_conf("scale", &instances)
}

/// VmRSS of a process, in kB.
fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn pss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    s.lines()
        .find(|l| l.starts_with("Pss:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

struct ScaleRun {
    masters: usize,
    cpu_pct: f64,
    rss_mb: f64,
    /// Proportional set size: shared pages (the binary, mapped by a guardian or helper
    /// process too) counted once.
    pss_mb: f64,
    procs: usize,
    secs: f64,
    startup_s: f64,
}

fn measure(lab: &Lab, ns: &str, secs: u64, startup: Instant, masters: usize) -> Result<ScaleRun> {
    let startup_s = startup.elapsed().as_secs_f64();
    // Past the start-up bursts (gratuitous ARPs, first adverts).
    std::thread::sleep(Duration::from_secs(2));
    let _ = lab;
    let c0 = ns_cpu(ns);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let c1 = ns_cpu(ns);
    let secs = t0.elapsed().as_secs_f64();
    let pids = ns_pids(ns);
    if pids.is_empty() {
        bail!("the daemon died during the window");
    }
    let rss: u64 = pids.iter().filter_map(|p| rss_kb(*p)).sum();
    let pss: u64 = pids.iter().filter_map(|p| pss_kb(*p)).sum();
    Ok(ScaleRun {
        masters,
        cpu_pct: 100.0 * ns_cpu_delta(&c0, &c1) / secs,
        rss_mb: rss as f64 / 1024.0,
        pss_mb: pss as f64 / 1024.0,
        procs: pids.len(),
        secs,
        startup_s,
    })
}

pub fn bench_scale(opts: &BenchOpts, rows: &mut Vec<Row>) -> Result<Value> {
    let n = opts.scale_instances.clamp(1, 255);
    let c = conf(n);
    let mut lab = Lab::new("bench-scale")?;
    let host = lab.host("master", &["192.0.2.1/24"])?;
    let timeout = Duration::from_secs(120);

    let t = Instant::now();
    lab.agent_conf(&host, "agent-scale", &c, &[])?;
    let masters = |lab: &Lab| {
        let mut set = std::collections::BTreeSet::new();
        for tr in lab.transitions("agent-scale", None) {
            if tr.to == "MASTER" {
                set.insert(tr.instance);
            } else {
                set.remove(&tr.instance);
            }
        }
        set.len()
    };
    lab.wait_until(&format!("{n} instances MASTER"), timeout, || {
        Ok(masters(&lab) >= n as usize)
    })?;
    let ours = measure(&lab, &host.ns, opts.scale_secs, t, masters(&lab))?;
    eprintln!(
        "  vrrp-agent: {} MASTER after {:.1}s; CPU {:.2}% RSS {:.1} MB ({} procs)",
        ours.masters, ours.startup_s, ours.cpu_pct, ours.rss_mb, ours.procs
    );
    let ours_tr = lab.transitions("agent-scale", None).len();
    super::stop_agent(&mut lab, "agent-scale")?;
    lab.wait_until("agent gone", Duration::from_secs(10), || {
        Ok(ns_pids(&host.ns).is_empty())
    })?;
    let _ = lab.sh_output(
        &host.ns,
        "ip addr flush dev eth0 scope global; ip addr add 192.0.2.1/24 dev eth0",
    );

    let t = Instant::now();
    lab.keepalived(&host, "ka-scale", &c)?;
    let ka_masters = |lab: &Lab| {
        lab.log("ka-scale")
            .lines()
            .filter(|l| l.contains("Entering MASTER STATE"))
            .count()
    };
    lab.wait_until(&format!("{n} keepalived instances MASTER"), timeout, || {
        Ok(ka_masters(&lab) >= n as usize)
    })?;
    let base = measure(&lab, &host.ns, opts.scale_secs, t, ka_masters(&lab))?;
    eprintln!(
        "  keepalived: {} MASTER after {:.1}s; CPU {:.2}% RSS {:.1} MB ({} procs)",
        base.masters, base.startup_s, base.cpu_pct, base.rss_mb, base.procs
    );

    let sec = "scale";
    rows.push(Row {
        section: sec,
        metric: format!("{n} instances, 100 ms v3 adverts: CPU, % of a core"),
        ours: Ok(ours.cpu_pct),
        base: Ok(base.cpu_pct),
        ratio_dir: Some(false),
        target: "agent < 3%".into(),
        met: Some(ours.cpu_pct < 3.0),
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: format!("{n} instances: RSS of all daemon processes (MB)"),
        ours: Ok(ours.rss_mb),
        base: Ok(base.rss_mb),
        ratio_dir: Some(false),
        target: "agent < 30 MB".into(),
        met: Some(ours.rss_mb < 30.0),
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: format!("{n} instances: PSS of all daemon processes, MB (info)"),
        ours: Ok(ours.pss_mb),
        base: Ok(base.pss_mb),
        ratio_dir: Some(false),
        target: String::new(),
        met: None,
        text: [None, None],
    });
    rows.push(Row {
        section: sec,
        metric: format!("{n} instances: start -> all MASTER (s)"),
        ours: Ok(ours.startup_s),
        base: Ok(base.startup_s),
        ratio_dir: None,
        target: String::new(),
        met: None,
        text: [None, None],
    });
    let j = |r: &ScaleRun| {
        json!({
            "masters": r.masters, "cpu_percent_of_core": r.cpu_pct, "rss_mb": r.rss_mb, "pss_mb": r.pss_mb,
            "processes": r.procs, "window_s": r.secs, "start_to_all_master_s": r.startup_s,
        })
    };
    Ok(json!({
        "instances": n,
        "advert_int": "0.1",
        "vrrp_version": 3,
        "cpu": "utime+stime of every process in the daemon's namespace over the window",
        "rss": "VmRSS summed over those processes",
        "agent_transitions_logged": ours_tr,
        "vrrp_agent": j(&ours),
        "keepalived": j(&base),
    }))
}
