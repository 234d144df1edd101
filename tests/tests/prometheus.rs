//! Debian's Prometheus, in a namespace of the lab, scraping two agents with the shipped alert
//! rules (contrib/prometheus/vrrp-agent.rules.yml): a partition makes two masters and the
//! split-brain alert fires; after the heal it clears. Root, like every lab test.
#![cfg(feature = "lab")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vrrp_tests::{Lab, in_netns, lab_config, require_lab};

const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";
/// Generous: a scrape and rule evaluation every second, `for: 10s`, a VRRPv2 master-down of
/// about 3.6 s, all on a loaded 2-core machine.
const T: Duration = Duration::from_secs(90);

/// GET http://127.0.0.1:9090/PATH inside namespace `ns`: the body.
fn get(ns: &str, path: &str) -> anyhow::Result<String> {
    let req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    in_netns(ns, move || -> anyhow::Result<String> {
        let mut s = TcpStream::connect(("127.0.0.1", 9090))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(req.as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok(body)
    })?
}

/// The alerts Prometheus has in state `state` ("pending" or "firing"), by name.
fn alerts(ns: &str, state: &str) -> anyhow::Result<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(&get(ns, "/api/v1/alerts")?)?;
    Ok(v["data"]["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["state"] == state)
                .filter_map(|x| x["labels"]["alertname"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Healthy targets Prometheus scrapes.
fn targets_up(ns: &str) -> anyhow::Result<usize> {
    let v: serde_json::Value = serde_json::from_str(&get(ns, "/api/v1/targets")?)?;
    Ok(v["data"]["activeTargets"]
        .as_array()
        .map(|a| a.iter().filter(|t| t["health"] == "up").count())
        .unwrap_or(0))
}

#[test]
fn prometheus_split_brain_alert_fires_in_a_partition_and_clears_after_the_heal() {
    require_lab();
    assert!(
        Path::new(PROMETHEUS_BIN).exists(),
        "{PROMETHEUS_BIN} is missing: install Debian's prometheus (`cargo xtask deps`)"
    );
    let mut lab = Lab::new("prometheus").expect("lab");
    let lb01 = lab.host("lb01", &["192.0.2.1/24"]).expect("lb01");
    let lb02 = lab.host("lb02", &["192.0.2.2/24"]).expect("lb02");
    let mon = lab.host("mon", &["192.0.2.20/24"]).expect("mon");

    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib/prometheus/vrrp-agent.rules.yml")
        .canonicalize()
        .expect("rules file");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n\
         scrape_configs:\n  - job_name: vrrp\n    static_configs:\n      - targets: ['192.0.2.1:9650', '192.0.2.2:9650']\n",
        rules.display()
    );
    let config = lab.write_file("prometheus.yml", &config).expect("config");
    let tsdb = lab.path("tsdb");
    // Its own namespace, so 127.0.0.1:9090 is its own; its own data directory in the lab dir.
    lab.spawn(
        &mon.ns,
        "prometheus",
        Path::new(PROMETHEUS_BIN),
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", tsdb.display()),
            "--web.listen-address=127.0.0.1:9090".into(),
        ],
    )
    .expect("start prometheus");

    lab.agent_conf(
        &lb02,
        "lb02",
        &lab_config("seed-lb02.conf"),
        &["--metrics", "192.0.2.2:9650"],
    )
    .expect("start lb02");
    lab.agent_conf(
        &lb01,
        "lb01",
        &lab_config("seed-lb01.conf"),
        &["--metrics", "192.0.2.1:9650"],
    )
    .expect("start lb01");
    lab.wait_state("lb02", "VI_1", "MASTER", T)
        .expect("lb02 master");
    lab.wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 backup");
    lab.wait_until("prometheus scrapes both agents", T, || {
        Ok(targets_up(&mon.ns).unwrap_or(0) == 2)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.log("prometheus")));
    assert!(
        !alerts(&mon.ns, "firing")
            .expect("alerts")
            .contains(&"VrrpSplitBrain".to_string()),
        "split-brain alert before the partition"
    );

    // Partition: lb02's adverts never leave lb02 (on output: XDP sees input before nftables).
    lab.sh(
        &lb02.ns,
        "nft add table inet part && nft add chain inet part out '{ type filter hook output priority 0; }' && nft add rule inet part out ip protocol 112 drop",
    )
    .expect("partition");
    lab.wait_state("lb01", "VI_1", "MASTER", T)
        .expect("lb01 master during the partition");
    lab.wait_until("VrrpSplitBrain fires", T, || {
        Ok(alerts(&mon.ns, "firing")?.contains(&"VrrpSplitBrain".to_string()))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", lab.log("prometheus")));
    // Not asserted here: VrrpSplitBrainSeen (lb02's own vrrp_split_brain_alarm). In this
    // partition the agent's episode ends about 4 s after it starts and restarts within a second
    // (its log shows it), and in the one run so far the alert was never seen firing; the rule
    // is covered by the promtool unit tests.

    // Heal: lb01 hears the higher priority master again and yields.
    lab.sh(&lb02.ns, "nft delete table inet part")
        .expect("heal");
    lab.wait_state("lb01", "VI_1", "BACKUP", T)
        .expect("lb01 yields after the heal");
    lab.wait_until("the split-brain alerts clear", T, || {
        let a = alerts(&mon.ns, "firing")?;
        Ok(!a.iter().any(|n| n.starts_with("VrrpSplitBrain")))
    })
    .expect("alerts clear");
    assert_eq!(lab.state("lb02", "VI_1").as_deref(), Some("MASTER"));
}
