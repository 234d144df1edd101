//! What `--check` looks at on this host beyond the file, as `keepalived -t` does: the
//! interfaces named (keepalived: "WARNING - interface %s for vrrp_instance %s doesn't exist").
//! Scripts and users are judged by `crate::security::audit`, which [`super::load`] runs.

use std::path::Path;

use super::{Config, Diagnostic, Span};

/// Warnings about interfaces of `cfg` that do not exist on this host (looked up under
/// `sys_class_net`, normally `/sys/class/net`) or are loopback.
pub fn check_interfaces(cfg: &Config, sys_class_net: &Path) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut check = |name: &str, span: &Span, what: String| {
        let dir = sys_class_net.join(name);
        let message = if !dir.exists() {
            format!("interface {name} for {what} doesn't exist on this host")
        } else if std::fs::read_to_string(dir.join("type")).is_ok_and(|t| t.trim() == "772") {
            // ARPHRD_LOOPBACK: keepalived "cannot use a loopback interface for vrrp".
            format!("interface {name} for {what} is a loopback interface: VRRP cannot run on it")
        } else {
            return;
        };
        out.push(Diagnostic {
            span: span.clone(),
            message,
        });
    };
    for inst in &cfg.instances {
        check(
            &inst.interface,
            &inst.interface_span,
            format!("vrrp_instance {}", inst.name),
        );
        for t in &inst.track_interfaces {
            check(
                &t.name,
                &t.span,
                format!("track_interface of vrrp_instance {}", inst.name),
            );
        }
        for h in &inst.heartbeats {
            check(
                &h.interface,
                &h.interface_span,
                format!("vrrp_xdp_heartbeat of vrrp_instance {}", inst.name),
            );
        }
    }
    out
}
