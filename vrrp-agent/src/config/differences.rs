//! What `vrrp-agent --check` says will behave differently from keepalived for one file: the
//! points of docs/migrating-from-keepalived.md ("What differs, and why"), each only when the
//! file (and the command line's data-plane choice) makes it apply. Pure: a [`Config`] in, a list
//! out, so every rule is unit-tested without a machine.

use std::fmt;
use std::path::Path;

use super::{Config, Span, XdpMode};

/// The path the Debian package's unit reads.
pub const PACKAGE_CONFIG: &str = "/etc/vrrp-agent/keepalived.conf";

/// What the command line changes about the differences (`--no-xdp`, `--xdp-mode`,
/// `--rt-priority`, `--no-guardian`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunChoices {
    /// `--no-xdp`: no XDP program whatever the file says.
    pub no_xdp: bool,
    /// `--xdp-mode native|generic` given: XDP whatever the file says.
    pub xdp_forced: bool,
    /// `--rt-priority N`.
    pub rt_priority: Option<u8>,
    /// `--no-guardian`.
    pub no_guardian: bool,
}

/// One behaviour that differs from keepalived's, with where the file asks for it when one
/// place does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// A short name (stable, for tests and grep).
    pub topic: &'static str,
    pub span: Option<Span>,
    pub text: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.span {
            Some(s) => write!(f, "{s}: {}: {}", self.topic, self.text),
            None => write!(f, "{}: {}", self.topic, self.text),
        }
    }
}

/// The differences that apply to `cfg` read from `path` (None: the command-line instance).
pub fn differences(cfg: &Config, path: Option<&Path>, run: RunChoices) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut add = |topic, span: Option<&Span>, text: String| {
        out.push(Difference {
            topic,
            span: span.cloned(),
            text,
        })
    };
    let first = cfg.instances.first();
    let xdp = !run.no_xdp && (run.xdp_forced || cfg.global.xdp.mode != XdpMode::Off);
    if let Some(inst) = first {
        if xdp {
            add(
                "xdp-arp",
                Some(&inst.span),
                "the master's XDP program answers ARP requests and Neighbor Solicitations for \
                 the VIPs itself, before the kernel (arp_ignore/arp_filter sysctls and \
                 netfilter ARP rules do not change those replies); keepalived leaves them to \
                 the kernel"
                    .into(),
            );
            add(
                "xdp-firewall",
                Some(&inst.span),
                "XDP sees adverts before netfilter: an input rule dropping protocol 112 does \
                 not hide adverts from vrrp-agent (drop them on the sender's output, or run \
                 --no-xdp / vrrp_xdp_mode off)"
                    .into(),
            );
        }
        add(
            "stop",
            Some(&inst.span),
            "SIGTERM (systemctl stop) hands over make-before-break: priority 0, the VIPs kept \
             until the new master is heard; keepalived releases at once and clients see a gap"
                .into(),
        );
        if !run.no_guardian {
            add(
                "guardian",
                Some(&inst.span),
                "if the agent is killed, a guardian process sends priority 0 and unbinds the \
                 VIPs, and an nftables table (arp/ip6 vrrp_xdp, needs nft) keeps the kernel from \
                 answering ARP/NS for VIPs left bound; keepalived's node keeps answering for \
                 its VIPs after its VRRP process dies"
                    .into(),
            );
        }
        if run.rt_priority.or(cfg.global.rt_priority).is_none() {
            add(
                "scheduling",
                None,
                "no vrrp_rt_priority: the election thread runs SCHED_RR priority 10 \
                 (keepalived: SCHED_OTHER); vrrp_rt_priority 0 or --rt-priority 0 keeps \
                 SCHED_OTHER"
                    .into(),
            );
        }
        add(
            "dump",
            None,
            "SIGUSR1 writes the status as JSON to /tmp/vrrp-agent.data.json (keepalived: \
             /tmp/keepalived.data); `vrrp-agent status` shows it too"
                .into(),
        );
    }
    for inst in &cfg.instances {
        if !inst.accept {
            add(
                "no-accept",
                Some(&inst.span),
                format!(
                    "instance {}: no accept mode (no_accept, or vrrp_strict without accept) is \
                     not enforced: the master accepts traffic to its VIPs, where keepalived \
                     would drop it with firewall rules",
                    inst.name
                ),
            );
        }
        if inst.vmac.is_some() {
            add(
                "use-vmac",
                Some(&inst.span),
                format!(
                    "instance {}: use_vmac creates no macvlan interface (no vrrp.{} device for \
                     scripts or firewall rules): the master answers from the virtual MAC on {} \
                     itself, puts it in the interface's unicast filter and sets arp_announce 2 \
                     there",
                    inst.name, inst.vrid, inst.interface
                ),
            );
        }
    }
    if let Some(inst) = cfg
        .instances
        .iter()
        .find(|i| i.family == crate::proto::Family::V6)
    {
        add(
            "na-router",
            Some(&inst.span),
            "the master's Neighbor Advertisements for IPv6 VIPs set the Router flag (RFC 9568 \
             §6.4.3); keepalived sets it only when net.ipv6.conf.IF.forwarding is on"
                .into(),
        );
    }
    if let Some(span) = first_script_span(cfg) {
        add(
            "scripts",
            Some(&span),
            "scripts run without a shell unless the command calls one, and a script still \
             running at its timeout is killed with its whole process group; the notify scripts \
             of one instance run one at a time in event order"
                .into(),
        );
    }
    if let Some(span) = first_extension_span(cfg) {
        add(
            "extensions",
            Some(&span),
            "the file uses vrrp_xdp_* keywords: keepalived warns about them and skips them, so \
             on a node still running keepalived with this file they have no effect"
                .into(),
        );
    }
    if let Some(p) = path
        && p != Path::new(PACKAGE_CONFIG)
        && !cfg.instances.is_empty()
    {
        add(
            "config-path",
            None,
            format!(
                "the Debian package's unit reads {PACKAGE_CONFIG}, not {}: copy the file there \
                 or point the unit at it with a drop-in (systemctl edit vrrp-agent)",
                p.display()
            ),
        );
    }
    out
}

/// Where the first script or notify command is written, if any.
fn first_script_span(cfg: &Config) -> Option<Span> {
    let notify = |n: &super::Notify| {
        [
            &n.master,
            &n.backup,
            &n.fault,
            &n.stop,
            &n.any,
            &n.master_rx_lower_pri,
            &n.split_brain,
            &n.fence,
        ]
        .into_iter()
        .flatten()
        .map(|c| c.span.clone())
        .next()
    };
    cfg.scripts
        .iter()
        .map(|s| s.span.clone())
        .chain(cfg.instances.iter().filter_map(|i| notify(&i.notify)))
        .chain(cfg.sync_groups.iter().filter_map(|g| notify(&g.notify)))
        .min_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)))
}

/// Where the first vrrp_xdp_* keyword that has a location is written, if any: the instance
/// extensions (the global_defs ones and vrrp_xdp_check carry no location: the instance that
/// comes first stands in for them).
fn first_extension_span(cfg: &Config) -> Option<Span> {
    let global = &cfg.global;
    let global_used = global.xdp.metrics.is_some()
        || global.xdp.control_socket.is_some()
        || global.xdp.mode != XdpMode::Auto
        || global.notify_json.is_some()
        || global.xdp.checksum_auto
        || cfg.instances.iter().any(|i| i.checksum_auto)
        || !cfg.checks.is_empty();
    let mut spans: Vec<Span> = Vec::new();
    for i in &cfg.instances {
        spans.extend(i.heartbeats.iter().map(|h| h.span.clone()));
        spans.extend(
            [&i.notify.split_brain, &i.notify.fence]
                .into_iter()
                .flatten()
                .map(|c| c.span.clone()),
        );
    }
    if global_used && let Some(i) = cfg.instances.first() {
        spans.push(i.span.clone());
    }
    spans
        .into_iter()
        .min_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_str;

    const BASE: &str = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  \
                        priority 100\n  virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n";

    fn topics(text: &str, path: Option<&str>, run: RunChoices) -> Vec<&'static str> {
        let loaded = parse_str(text, "k.conf").expect("valid");
        differences(&loaded.config, path.map(Path::new), run)
            .into_iter()
            .map(|d| d.topic)
            .collect()
    }

    #[test]
    fn a_plain_instance_gets_the_general_differences() {
        assert_eq!(
            topics(BASE, Some(PACKAGE_CONFIG), RunChoices::default()),
            [
                "xdp-arp",
                "xdp-firewall",
                "stop",
                "guardian",
                "scheduling",
                "dump"
            ]
        );
    }

    #[test]
    fn no_instance_no_differences() {
        assert!(
            topics(
                "global_defs {\n router_id a\n}\n",
                None,
                RunChoices::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn xdp_off_in_the_file_or_on_the_command_line_drops_the_xdp_points() {
        let off = format!("global_defs {{\n vrrp_xdp_mode off\n}}\n{BASE}");
        let t = topics(&off, Some(PACKAGE_CONFIG), RunChoices::default());
        assert!(
            !t.contains(&"xdp-arp") && !t.contains(&"xdp-firewall"),
            "{t:?}"
        );
        // ... but the file uses an extension keepalived would skip.
        assert!(t.contains(&"extensions"), "{t:?}");
        let no_xdp = RunChoices {
            no_xdp: true,
            ..Default::default()
        };
        assert!(!topics(BASE, None, no_xdp).contains(&"xdp-arp"));
        let forced = RunChoices {
            xdp_forced: true,
            ..Default::default()
        };
        assert!(topics(&off, None, forced).contains(&"xdp-arp"));
    }

    #[test]
    fn rt_priority_in_the_file_or_the_command_line_is_keepalived_s_behaviour() {
        let rt = format!("global_defs {{\n vrrp_rt_priority 20\n}}\n{BASE}");
        assert!(!topics(&rt, None, RunChoices::default()).contains(&"scheduling"));
        let cli = RunChoices {
            rt_priority: Some(0),
            ..Default::default()
        };
        assert!(!topics(BASE, None, cli).contains(&"scheduling"));
    }

    #[test]
    fn no_guardian_drops_the_guardian_point() {
        let run = RunChoices {
            no_guardian: true,
            ..Default::default()
        };
        assert!(!topics(BASE, None, run).contains(&"guardian"));
    }

    #[test]
    fn per_instance_points_name_the_instance_and_its_place() {
        let text = "vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  \
                    priority 100\n  use_vmac\n  no_accept\n  virtual_ipaddress {\n    \
                    192.0.2.10\n  }\n}\n";
        let loaded = parse_str(text, "k.conf").expect("valid");
        let d = differences(&loaded.config, None, RunChoices::default());
        let vmac = d.iter().find(|d| d.topic == "use-vmac").expect("use-vmac");
        assert!(
            vmac.text.contains("VI_1") && vmac.text.contains("vrrp.51"),
            "{vmac}"
        );
        assert_eq!(
            vmac.to_string().split(':').take(2).collect::<Vec<_>>(),
            ["k.conf", "1"]
        );
        assert!(d.iter().any(|d| d.topic == "no-accept"), "{d:?}");
    }

    #[test]
    fn scripts_point_at_the_first_command() {
        let text = format!(
            "vrrp_script chk {{\n  script \"/bin/true\"\n}}\n{}",
            BASE.replace("priority 100", "priority 100\n  notify /bin/true")
        );
        let loaded = parse_str(&text, "k.conf").expect("valid");
        let d = differences(&loaded.config, None, RunChoices::default());
        let s = d.iter().find(|d| d.topic == "scripts").expect("scripts");
        assert_eq!(s.span.as_ref().map(|s| s.line), Some(1), "{s}");
        assert!(!topics(BASE, None, RunChoices::default()).contains(&"scripts"));
    }

    #[test]
    fn a_file_elsewhere_gets_the_package_path_point() {
        let t = topics(
            BASE,
            Some("/etc/keepalived/keepalived.conf"),
            RunChoices::default(),
        );
        assert!(t.contains(&"config-path"), "{t:?}");
        assert!(!topics(BASE, None, RunChoices::default()).contains(&"config-path"));
    }

    #[test]
    fn ipv6_instances_get_the_na_router_point_and_checksum_auto_is_an_extension() {
        assert!(!topics(BASE, None, RunChoices::default()).contains(&"na-router"));
        let v6 = BASE.replace("192.0.2.10/24", "fe80::10/64");
        assert!(topics(&v6, None, RunChoices::default()).contains(&"na-router"));
        assert!(!topics(BASE, None, RunChoices::default()).contains(&"extensions"));
        let auto = BASE.replace("priority 100", "priority 100\n  vrrp_xdp_checksum_auto");
        assert!(topics(&auto, None, RunChoices::default()).contains(&"extensions"));
    }

    #[test]
    fn heartbeat_is_an_extension_at_its_keyword() {
        let text = BASE.replace(
            "priority 100",
            "priority 100\n  vrrp_xdp_heartbeat {\n    interface eth1\n    unicast_peer {\n      \
             198.51.100.2\n    }\n  }",
        );
        let loaded = parse_str(&text, "k.conf").expect("valid");
        let d = differences(&loaded.config, None, RunChoices::default());
        let e = d
            .iter()
            .find(|d| d.topic == "extensions")
            .expect("extensions");
        assert_eq!(e.span.as_ref().map(|s| s.line), Some(5), "{e}");
    }
}
