//! Effective priority from tracked objects, sans-IO: keepalived's rules, evaluated from the
//! current state of every object instead of keepalived's running `total_priority` deltas.
//!
//! keepalived keeps `vrrp->total_priority` and adds/subtracts on each change
//! (keepalived/vrrp/vrrp_track.c `process_script_update_priority`,
//! `process_update_track_process_status`, keepalived/core/keepalived_netlink.c
//! `process_if_status_change`, keepalived/trackers/track_file.c
//! `process_update_vrrp_track_file_status`). Those deltas always sum to the per-object value
//! computed by [`contribution`] (the `initialise_*_tracking_priorities` functions compute the
//! same value at start), so recomputing from states gives the same priority without drift.

use serde::Serialize;

use crate::proto::Priority;

/// What kind of object an [`Entry`] tracks. Built-in checks count as scripts: an instance
/// references them from `track_script`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ObjKind {
    Script,
    Interface,
    File,
    Process,
}

impl ObjKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Script => "script",
            Self::Interface => "interface",
            Self::File => "file",
            Self::Process => "process",
        }
    }
}

/// The current state of a tracked object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjState {
    /// No result yet: a script (or built-in check) that has not finished its first run
    /// (keepalived's `SCRIPT_INIT_STATE_INIT`).
    Unknown,
    Up,
    Down,
    /// A tracked file's integer (a missing or empty file reads as 0, as keepalived's
    /// `process_track_file`).
    Value(i64),
}

/// One tracked object as an instance references it, with the weight that applies (the
/// reference's `weight` if given, else the object's own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: ObjKind,
    pub name: String,
    pub weight: i32,
    pub reverse: bool,
}

/// The tracking verdict for one instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tracked {
    /// Effective priority: base + weights, clamped to 1..=254; the owner's 255 never changes.
    pub priority: Priority,
    /// Some object tracked with weight 0 (or a file/weighted file at -254) is failed.
    pub fault: bool,
    /// Human-readable causes: every object that changes the priority or faults the instance.
    pub reasons: Vec<String>,
}

/// What one entry does to the instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contribution {
    /// Adds this much to the total (may be 0 or negative).
    Add(i64),
    /// Puts the instance in FAULT.
    Fault,
    /// A weight-0 script has not reported yet: keepalived keeps the instance in INIT
    /// (`num_script_init`) until it does.
    Pending,
}

/// The value one object adds, or whether it faults the instance.
pub fn contribution(e: &Entry, state: ObjState) -> Contribution {
    let w = i64::from(e.weight);
    // keepalived: `top->weight_multiplier = reverse ? -1 : 1`.
    let m: i64 = if e.reverse { -1 } else { 1 };
    match (e.kind, state) {
        (ObjKind::File, s) => {
            let v = match s {
                ObjState::Value(v) => v,
                ObjState::Up => 1,
                ObjState::Down | ObjState::Unknown => 0,
            };
            if w == 0 {
                // track_file.c update_track_file_status: "If the tracking weight is 0, a
                // non-zero value means failure, a 0 status means success" (inverted by reverse).
                if (v != 0) != e.reverse {
                    Contribution::Fault
                } else {
                    Contribution::Add(0)
                }
            } else {
                // value × weight × multiplier, clamped to -254..=253; -254 is FAULT
                // (process_update_vrrp_track_file_status).
                let status = v.saturating_mul(w).saturating_mul(m).clamp(-254, 253);
                if status == -254 {
                    Contribution::Fault
                } else {
                    Contribution::Add(status)
                }
            }
        }
        (_, ObjState::Unknown) => {
            if w == 0 {
                Contribution::Pending
            } else {
                // A script in INIT state has not adjusted total_priority yet.
                Contribution::Add(0)
            }
        }
        (_, s) => {
            let up = match s {
                ObjState::Up => true,
                ObjState::Value(v) => v != 0,
                ObjState::Down | ObjState::Unknown => false,
            };
            if w == 0 {
                // `script_ok != (multiplier == 1)` → down_instance(): a failed object faults
                // the instance, or a succeeding one with `reverse`.
                if up == e.reverse {
                    Contribution::Fault
                } else {
                    Contribution::Add(0)
                }
            } else if up {
                // initialise_track_script_state / initialise_interface_tracking_priorities:
                // a positive weight adds while up, a negative one subtracts while down.
                Contribution::Add(if w > 0 { w * m } else { 0 })
            } else {
                Contribution::Add(if w < 0 { w * m } else { 0 })
            }
        }
    }
}

/// keepalived's `vrrp_set_effective_priority`: the owner (255) is never changed, otherwise
/// the total is clamped to 1..=254.
pub fn effective_priority(base: Priority, total: i64) -> Priority {
    if base == Priority::OWNER {
        return base;
    }
    // The clamp bounds the value to 1..=254, so the conversion cannot fail.
    Priority(u8::try_from(total.clamp(1, 254)).unwrap_or(254))
}

/// The tracked objects of one instance and its configured (base) priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PriorityCalc {
    base: Priority,
    entries: Vec<Entry>,
}

impl PriorityCalc {
    pub fn new(base: Priority) -> Self {
        Self {
            base,
            entries: Vec::new(),
        }
    }

    pub fn with(mut self, entry: Entry) -> Self {
        self.entries.push(entry);
        self
    }

    pub fn push(&mut self, entry: Entry) {
        self.entries.push(entry);
    }

    pub fn base(&self) -> Priority {
        self.base
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Evaluate with the current state of each entry. `None` while a weight-0 script has not
    /// reported (the instance should stay in INIT, as keepalived's `num_script_init`).
    pub fn compute(&self, mut state: impl FnMut(&Entry) -> ObjState) -> Option<Tracked> {
        let states: Vec<ObjState> = self.entries.iter().map(&mut state).collect();
        self.compute_states(&states)
    }

    /// As [`compute`](Self::compute), with `states[i]` the state of `entries()[i]` (missing
    /// states count as [`ObjState::Unknown`]).
    pub fn compute_states(&self, states: &[ObjState]) -> Option<Tracked> {
        let mut total = i64::from(self.base.get());
        let mut fault = false;
        let mut pending = false;
        let mut reasons = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let s = states.get(i).copied().unwrap_or(ObjState::Unknown);
            match contribution(e, s) {
                Contribution::Add(0) => {}
                Contribution::Add(n) => {
                    total += n;
                    reasons.push(format!(
                        "{} {} {}: {n:+}",
                        e.kind.as_str(),
                        e.name,
                        describe(s)
                    ));
                }
                Contribution::Fault => {
                    fault = true;
                    reasons.push(format!(
                        "{} {} {}: fault",
                        e.kind.as_str(),
                        e.name,
                        describe(s)
                    ));
                }
                Contribution::Pending => pending = true,
            }
        }
        if pending {
            return None;
        }
        Some(Tracked {
            priority: effective_priority(self.base, total),
            fault,
            reasons,
        })
    }
}

fn describe(s: ObjState) -> String {
    match s {
        ObjState::Unknown => "unknown".into(),
        ObjState::Up => "up".into(),
        ObjState::Down => "down".into(),
        ObjState::Value(v) => format!("value {v}"),
    }
}

/// keepalived's rise/fall counter for scripts (keepalived/vrrp/vrrp_scheduler.c
/// `vrrp_script_child_thread`, `vrrp_init_script`). `result` runs 0..=rise+fall-1; the object
/// is up while `result >= rise`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hysteresis {
    rise: u32,
    fall: u32,
    result: u32,
    /// No run finished yet (`SCRIPT_INIT_STATE_INIT`): the first result decides at once.
    init: bool,
}

impl Hysteresis {
    /// `init_fail` starts the object failed (result 0, needs `rise` successes); otherwise it
    /// starts unknown with "one success is enough" (result = rise - 1).
    pub fn new(rise: u32, fall: u32, init_fail: bool) -> Self {
        let rise = rise.max(1);
        let fall = fall.max(1);
        Self {
            rise,
            fall,
            result: if init_fail { 0 } else { rise - 1 },
            init: !init_fail,
        }
    }

    pub fn state(&self) -> ObjState {
        if self.init {
            ObjState::Unknown
        } else if self.result >= self.rise {
            ObjState::Up
        } else {
            ObjState::Down
        }
    }

    /// Record one run; returns the new up/down state when it changes (including the first
    /// result after start).
    pub fn record(&mut self, success: bool) -> Option<bool> {
        let was_init = self.init;
        self.init = false;
        let max = self.rise + self.fall - 1;
        if success {
            if self.result < self.rise - 1 {
                self.result += 1;
                None
            } else if self.result != max {
                let changed = self.result < self.rise;
                self.result = max;
                changed.then_some(true)
            } else {
                None
            }
        } else if self.result > self.rise {
            self.result -= 1;
            None
        } else {
            let changed = self.result == self.rise || was_init;
            self.result = 0;
            changed.then_some(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(kind: ObjKind, weight: i32, reverse: bool) -> Entry {
        Entry {
            kind,
            name: "x".into(),
            weight,
            reverse,
        }
    }

    fn prio(base: u8, entry: Entry, s: ObjState) -> Option<Tracked> {
        PriorityCalc::new(Priority(base)).with(entry).compute(|_| s)
    }

    fn p(base: u8, entry: Entry, s: ObjState) -> (u8, bool) {
        let t = prio(base, entry, s).expect("not pending");
        (t.priority.get(), t.fault)
    }

    #[test]
    fn positive_weight_adds_while_up() {
        for kind in [ObjKind::Script, ObjKind::Interface, ObjKind::Process] {
            assert_eq!(p(100, e(kind, 10, false), ObjState::Up), (110, false));
            assert_eq!(p(100, e(kind, 10, false), ObjState::Down), (100, false));
        }
    }

    #[test]
    fn negative_weight_subtracts_while_down() {
        for kind in [ObjKind::Script, ObjKind::Interface, ObjKind::Process] {
            assert_eq!(p(100, e(kind, -20, false), ObjState::Up), (100, false));
            assert_eq!(p(100, e(kind, -20, false), ObjState::Down), (80, false));
        }
    }

    #[test]
    fn reverse_inverts_the_direction() {
        // weight 10 reverse: up subtracts 10, down is neutral.
        assert_eq!(
            p(100, e(ObjKind::Script, 10, true), ObjState::Up),
            (90, false)
        );
        assert_eq!(
            p(100, e(ObjKind::Script, 10, true), ObjState::Down),
            (100, false)
        );
        // weight -10 reverse: down adds 10.
        assert_eq!(
            p(100, e(ObjKind::Script, -10, true), ObjState::Down),
            (110, false)
        );
        assert_eq!(
            p(100, e(ObjKind::Script, -10, true), ObjState::Up),
            (100, false)
        );
    }

    #[test]
    fn weight_zero_faults_on_failure() {
        for kind in [ObjKind::Script, ObjKind::Interface, ObjKind::Process] {
            assert_eq!(p(100, e(kind, 0, false), ObjState::Down), (100, true));
            assert_eq!(p(100, e(kind, 0, false), ObjState::Up), (100, false));
            // reverse: success is the failure.
            assert_eq!(p(100, e(kind, 0, true), ObjState::Up), (100, true));
            assert_eq!(p(100, e(kind, 0, true), ObjState::Down), (100, false));
        }
    }

    #[test]
    fn unknown_script_is_pending_only_with_weight_zero() {
        assert_eq!(
            prio(100, e(ObjKind::Script, 0, false), ObjState::Unknown),
            None
        );
        assert_eq!(
            p(100, e(ObjKind::Script, -30, false), ObjState::Unknown),
            (100, false)
        );
        assert_eq!(
            p(100, e(ObjKind::Script, 30, false), ObjState::Unknown),
            (100, false)
        );
    }

    #[test]
    fn clamp_to_1_254_and_owner_fixed() {
        assert_eq!(
            p(250, e(ObjKind::Script, 10, false), ObjState::Up),
            (254, false)
        );
        assert_eq!(
            p(10, e(ObjKind::Script, -50, false), ObjState::Down),
            (1, false)
        );
        // The owner keeps 255 whatever the weights, but a weight-0 failure still faults it.
        assert_eq!(
            p(255, e(ObjKind::Script, -50, false), ObjState::Down),
            (255, false)
        );
        assert_eq!(
            p(255, e(ObjKind::Interface, 0, false), ObjState::Down),
            (255, true)
        );
        // 254 + weights clamps at 254, never becomes an owner.
        assert_eq!(
            p(254, e(ObjKind::Script, 253, false), ObjState::Up),
            (254, false)
        );
    }

    #[test]
    fn file_value_times_weight() {
        let f = |w, r, v| p(100, e(ObjKind::File, w, r), ObjState::Value(v));
        assert_eq!(f(1, false, 0), (100, false));
        assert_eq!(f(1, false, 20), (120, false));
        assert_eq!(f(2, false, -10), (80, false));
        assert_eq!(f(-5, false, 3), (85, false));
        assert_eq!(f(2, true, 10), (80, false), "reverse negates");
        // Clamped to -254..=253 per file; -254 (or below) is FAULT and adds nothing.
        assert_eq!(f(1, false, 1000), (254, false));
        assert_eq!(f(1, false, -253), (1, false));
        assert_eq!(f(1, false, -254), (100, true));
        assert_eq!(f(10, false, -100), (100, true));
        assert_eq!(f(1, false, i64::MIN), (100, true), "no overflow");
    }

    #[test]
    fn file_weight_zero_nonzero_is_fault() {
        let f = |r, v| p(100, e(ObjKind::File, 0, r), ObjState::Value(v));
        assert_eq!(f(false, 0), (100, false));
        assert_eq!(f(false, 7), (100, true));
        assert_eq!(f(true, 0), (100, true));
        assert_eq!(f(true, 7), (100, false));
    }

    #[test]
    fn several_objects_sum_then_clamp_with_reasons() {
        let c = PriorityCalc::new(Priority(100))
            .with(Entry {
                kind: ObjKind::Script,
                name: "chk".into(),
                weight: -30,
                reverse: false,
            })
            .with(Entry {
                kind: ObjKind::Interface,
                name: "eth1".into(),
                weight: 5,
                reverse: false,
            })
            .with(Entry {
                kind: ObjKind::File,
                name: "f".into(),
                weight: 1,
                reverse: false,
            });
        let t = c
            .compute(|e| match e.kind {
                ObjKind::Script => ObjState::Down,
                ObjKind::Interface => ObjState::Up,
                _ => ObjState::Value(-3),
            })
            .unwrap();
        assert_eq!(t.priority, Priority(72));
        assert!(!t.fault);
        assert_eq!(
            t.reasons,
            [
                "script chk down: -30",
                "interface eth1 up: +5",
                "file f value -3: -3"
            ]
        );
        // No entries: the base priority.
        let t = PriorityCalc::new(Priority(50))
            .compute(|_| ObjState::Down)
            .unwrap();
        assert_eq!(
            (t.priority, t.fault, t.reasons.len()),
            (Priority(50), false, 0)
        );
    }

    #[test]
    fn hysteresis_first_result_decides() {
        let mut h = Hysteresis::new(3, 2, false);
        assert_eq!(h.state(), ObjState::Unknown);
        assert_eq!(h.record(true), Some(true), "one success is enough at start");
        let mut h = Hysteresis::new(3, 2, false);
        assert_eq!(
            h.record(false),
            Some(false),
            "first failure goes down at once"
        );
        assert_eq!(h.state(), ObjState::Down);
    }

    #[test]
    fn hysteresis_rise_and_fall() {
        let mut h = Hysteresis::new(2, 3, false);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.state(), ObjState::Up);
        assert_eq!(h.record(false), Some(false), "third failure");
        assert_eq!(h.record(true), None);
        assert_eq!(h.state(), ObjState::Down);
        assert_eq!(h.record(true), Some(true), "second success");
        // A success while up resets the fall count.
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some(false));
    }

    #[test]
    fn hysteresis_init_fail() {
        let mut h = Hysteresis::new(2, 1, true);
        assert_eq!(h.state(), ObjState::Down);
        assert_eq!(h.record(false), None, "already down");
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), Some(false), "fall 1");
    }

    #[test]
    fn hysteresis_zero_rise_fall_are_one() {
        let mut h = Hysteresis::new(0, 0, true);
        assert_eq!(h.record(true), Some(true));
        assert_eq!(h.record(false), Some(false));
    }
}
