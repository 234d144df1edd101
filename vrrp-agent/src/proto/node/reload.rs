//! The reload plan (local policy): what happens to each instance when the configuration is
//! re-read, computed from the old and the new specs alone.
//!
//! - **Keep**: what the router, its VIPs, destinations, heartbeat paths and socket depend on
//!   is unchanged: state, timers and VIPs stay (other settings, e.g. GARP repeats, follow).
//! - **Update** in place: same VRID, version, family, interface and VIPs: the router takes the
//!   new configuration (`Input::Config`) and keeps its state.
//! - **Restart**: anything else: the old router stops (priority 0 if MASTER, VIPs removed) and
//!   a new one starts.
//! - **Add** / **Remove**.

use serde::Serialize;

use super::InstanceSpec;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Change {
    Keep,
    Update,
    Restart,
    Add,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ReloadPlan {
    /// Every instance of the new configuration, in its order.
    pub instances: Vec<(String, Change)>,
    /// Instances of the old configuration that are gone.
    pub removed: Vec<String>,
}

fn same_identity(a: &InstanceSpec, b: &InstanceSpec) -> bool {
    a.ifindex == b.ifindex
        && a.vr.vrid == b.vr.vrid
        && a.vr.family == b.vr.family
        && a.vr.version == b.vr.version
}

fn same_core(a: &InstanceSpec, b: &InstanceSpec) -> bool {
    a.vr == b.vr
        && a.vips == b.vips
        && a.destinations == b.destinations
        && a.heartbeats == b.heartbeats
        && a.form == b.form
        && a.form_auto == b.form_auto
        && a.src == b.src
}

pub fn plan<'a>(
    old: impl IntoIterator<Item = &'a InstanceSpec> + Clone,
    new: &[InstanceSpec],
) -> ReloadPlan {
    let mut p = ReloadPlan::default();
    for n in new {
        let change = match old.clone().into_iter().find(|o| o.name == n.name) {
            None => Change::Add,
            Some(o) if same_core(o, n) => Change::Keep,
            Some(o)
                if same_identity(o, n)
                    && o.vips
                        .iter()
                        .map(|v| &v.spec)
                        .eq(n.vips.iter().map(|v| &v.spec)) =>
            {
                Change::Update
            }
            Some(_) => Change::Restart,
        };
        p.instances.push((n.name.clone(), change));
    }
    for o in old {
        if !new.iter().any(|n| n.name == o.name) {
            p.removed.push(o.name.clone());
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::super::tests::spec;
    use super::*;
    use crate::proto::{Centisecs, Priority, Vrid};

    #[test]
    fn each_kind_of_change() {
        let a = spec("VI_1", 51, "192.0.2.3");
        let b = spec("VI_2", 52, "192.0.2.4");
        let c = spec("VI_3", 53, "192.0.2.5");
        let mut a_prio = a.clone();
        a_prio.vr.priority = Priority(120);
        a_prio.garp_repeat = 9;
        let mut b_vrid = b.clone();
        b_vrid.vr.vrid = Vrid::new(60).unwrap();
        let p = plan(
            [&a, &b, &c],
            &[a_prio, b_vrid, spec("VI_4", 54, "192.0.2.6")],
        );
        assert_eq!(
            p.instances,
            vec![
                ("VI_1".into(), Change::Update),
                ("VI_2".into(), Change::Restart),
                ("VI_4".into(), Change::Add)
            ]
        );
        assert_eq!(p.removed, vec!["VI_3".to_string()]);
    }

    #[test]
    fn only_soft_settings_changed_keeps_the_instance() {
        let a = spec("VI_1", 51, "192.0.2.3");
        let mut soft = a.clone();
        soft.garp_repeat = 1;
        assert_eq!(
            plan([&a], &[soft]).instances,
            vec![("VI_1".into(), Change::Keep)]
        );
        let mut int = a.clone();
        int.vr.interval = Centisecs(200);
        assert_eq!(
            plan([&a], &[int]).instances,
            vec![("VI_1".into(), Change::Update)]
        );
        let mut vip = a.clone();
        vip.vips[0].spec.prefix_len = 32;
        assert_eq!(
            plan([&a], &[vip]).instances,
            vec![("VI_1".into(), Change::Restart)]
        );
    }
}
