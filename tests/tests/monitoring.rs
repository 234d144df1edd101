//! contrib/prometheus (alert rules) and contrib/grafana (dashboard) against the metrics the
//! agent really exports.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn contrib(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib")
        .join(rel)
}

/// Every metric family the agent's /metrics can carry: the `# TYPE` lines, which the renderer
/// writes for every family even with nothing configured.
fn exported() -> BTreeSet<String> {
    let text = vrrp_agent::control::render_metrics(&Default::default());
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The `vrrp_*` metric names a PromQL expression references (label names and values of ours
/// never start with `vrrp_`; `vrrp_xdp_*` config keywords do not appear in expressions).
fn referenced(expr: &str, into: &mut BTreeSet<String>) {
    let mut rest = expr;
    while let Some(i) = rest.find("vrrp_") {
        let before_ok = i == 0
            || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(tail.len());
        if before_ok {
            into.insert(tail[..end].to_string());
        }
        rest = &tail[end..];
    }
}

fn rule_exprs() -> Vec<String> {
    let rules = std::fs::read_to_string(contrib("prometheus/vrrp-agent.rules.yml")).expect("rules");
    rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .map(|e| e.trim().to_string())
        .collect()
}

fn dashboard_exprs() -> Vec<String> {
    let text = std::fs::read_to_string(contrib("grafana/vrrp-agent.json")).expect("dashboard");
    let dash: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "definition", serde_json::Value::String(s)) => {
                            out.push(s.clone())
                        }
                        _ => walk(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dash, &mut out);
    out
}

#[test]
fn rules_and_dashboard_use_only_exported_metrics() {
    let exported = exported();
    assert!(exported.contains("vrrp_instance_state"), "{exported:?}");
    for (what, exprs, at_least) in [
        ("contrib/prometheus/vrrp-agent.rules.yml", rule_exprs(), 8),
        ("contrib/grafana/vrrp-agent.json", dashboard_exprs(), 15),
    ] {
        assert!(
            exprs.len() >= at_least,
            "{what}: only {} expressions",
            exprs.len()
        );
        let mut names = BTreeSet::new();
        for e in &exprs {
            assert!(e.contains("vrrp_"), "{what}: no vrrp_ metric in {e}");
            referenced(e, &mut names);
        }
        let unknown: Vec<&String> = names.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{what} references metrics the agent does not export: {unknown:?}"
        );
    }
}

/// `promtool test rules` on the rules' unit tests (promtool: Debian's `prometheus`, installed
/// by `cargo xtask test`).
#[cfg(feature = "lab")]
#[test]
fn prometheus_rules_pass_promtool() {
    let dir = contrib("prometheus");
    for args in [
        &["check", "rules", "vrrp-agent.rules.yml"][..],
        &["test", "rules", "vrrp-agent.rules.test.yml"][..],
    ] {
        let out = std::process::Command::new("promtool")
            .current_dir(&dir)
            .args(args)
            .output()
            .expect("promtool (Debian package prometheus) is not installed: run through `cargo xtask test`");
        assert!(
            out.status.success(),
            "promtool {args:?}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
