//! Unit tests for the state machine, with a fake clock (one base Instant plus Durations).

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const VIP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
const C: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3));

/// The fake clock's one real reading; everything else is this plus a Duration.
#[expect(clippy::disallowed_methods, reason = "the base of the fake clock")]
fn base() -> Instant {
    Instant::now()
}

fn vrid() -> Vrid {
    Vrid::new(51).unwrap_or_else(|| unreachable!())
}

fn cfg(version: Version, prio: u8, primary: IpAddr) -> VrConfig {
    let mut c = VrConfig::keepalived_defaults(vrid(), Family::V4, primary, vec![VIP]);
    c.version = version;
    c.priority = Priority(prio);
    c.initial = InitialState::for_priority(c.priority);
    c.garp_master_delay = Duration::ZERO;
    c
}

fn v3(prio: u8, primary: IpAddr) -> VrConfig {
    cfg(Version::V3, prio, primary)
}

fn advert_from(c: &VrConfig, prio: u8) -> Advert {
    Advert {
        version: c.version,
        vrid: c.vrid,
        priority: Priority(prio),
        interval: c.interval,
        addresses: c.addresses.clone(),
        auth: c.auth,
    }
}

fn adv(prio: u8) -> Advert {
    advert_from(&v3(prio, B), prio)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// One router and a fake clock.
struct One {
    t0: Instant,
    vr: VirtualRouter,
}

impl One {
    fn new(c: VrConfig) -> Self {
        let t0 = base();
        let vr = VirtualRouter::new(c, t0).unwrap_or_else(|e| panic!("config: {e}"));
        Self { t0, vr }
    }
    fn started(c: VrConfig) -> Self {
        let mut o = Self::new(c);
        o.at(Duration::ZERO, Input::Startup);
        o
    }
    fn at(&mut self, t: Duration, input: Input) -> Vec<Output> {
        self.vr.handle(self.t0 + t, input);
        std::iter::from_fn(|| self.vr.poll_output()).collect()
    }
    fn rx(&mut self, t: Duration, src: IpAddr, a: Advert) -> Vec<Output> {
        self.rx_ttl(t, src, a, None)
    }
    /// `ttl`: as `Input::Advert` (Some: sent to our unicast address).
    fn rx_ttl(&mut self, t: Duration, src: IpAddr, a: Advert, ttl: Option<u8>) -> Vec<Output> {
        self.at(
            t,
            Input::Advert {
                src,
                advert: a,
                ttl,
            },
        )
    }
    fn next(&self) -> Option<Duration> {
        self.vr.poll_timeout().map(|d| d - self.t0)
    }
}

fn become_master(from: State, reason: Reason, prio: u8) -> Vec<Output> {
    vec![
        Output::Transition {
            from,
            to: State::Master,
            reason,
        },
        Output::SetXdpOwnership(true),
        Output::SendAdvert {
            priority: Priority(prio),
        },
        Output::InstallVips,
        Output::Announce {
            kind: AnnounceKind::BecomeMaster,
        },
    ]
}

// ---- timer arithmetic ----

#[test]
fn rfc9568_skew_example() {
    // (256 - 100) * 100 / 256 = 60.9375 cs; master down = 300 + 60.9375 cs.
    let p = Priority(100);
    assert_eq!(skew_time(Version::V3, p, Centisecs(100)), us(609_375));
    assert_eq!(
        master_down_interval(Version::V3, p, Centisecs(100), 3),
        us(3_609_375)
    );
}

#[test]
fn rfc3768_skew_example() {
    // (256 - 50) / 256 s = 0.8046875 s, exactly.
    let p = Priority(50);
    assert_eq!(
        skew_time(Version::V2, p, Centisecs(100)),
        Duration::from_nanos(804_687_500)
    );
    assert_eq!(
        master_down_interval(Version::V2, p, Centisecs(100), 3),
        Duration::from_nanos(3_804_687_500)
    );
    // v2 skew ignores the interval (RFC 3768 §6.1).
    assert_eq!(
        skew_time(Version::V2, p, Centisecs(300)),
        Duration::from_nanos(804_687_500)
    );
}

#[test]
fn skew_extremes() {
    assert_eq!(
        skew_time(Version::V3, Priority(255), Centisecs(100)),
        us(3_906) + Duration::from_nanos(250)
    );
    assert_eq!(
        skew_time(Version::V3, Priority(1), Centisecs(4095)),
        Duration::from_nanos(255 * 4095 * 10_000_000 / 256)
    );
}

// ---- startup ----

#[test]
fn owner_starts_master() {
    let mut o = One::new(v3(255, A));
    let out = o.at(Duration::ZERO, Input::Startup);
    assert_eq!(out, become_master(State::Initialize, Reason::Owner, 255));
    assert_eq!(o.next(), Some(ms(1000)));
    assert_eq!(o.at(ms(999), Input::Timeout), vec![]);
    assert_eq!(
        o.at(ms(1000), Input::Timeout),
        vec![Output::SendAdvert {
            priority: Priority(255)
        }]
    );
    assert_eq!(o.next(), Some(ms(2000)));
    assert_eq!(o.vr.master().map(|m| m.addr), Some(A));
}

#[test]
fn owner_with_state_backup_waits() {
    let mut c = v3(255, A);
    c.initial = InitialState::Backup;
    let o = One::started(c);
    assert_eq!(o.vr.state(), State::Backup);
    assert_eq!(
        o.next(),
        Some(ms(3000) + us(3_906) + Duration::from_nanos(250))
    );
}

#[test]
fn backup_times_out_to_master() {
    let mut o = One::new(v3(100, A));
    let out = o.at(Duration::ZERO, Input::Startup);
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Initialize,
            to: State::Backup,
            reason: Reason::Startup
        }]
    );
    assert_eq!(o.next(), Some(us(3_609_375)));
    // A spurious early timeout does nothing.
    assert_eq!(o.at(ms(3000), Input::Timeout), vec![]);
    let out = o.at(us(3_609_375), Input::Timeout);
    assert_eq!(
        out,
        become_master(
            State::Backup,
            Reason::MasterDown {
                after: us(3_609_375)
            },
            100
        )
    );
    assert_eq!(o.vr.counters().became_master, 1);
}

#[test]
fn non_owner_state_master_takes_over_after_one_interval() {
    // keepalived vrrp_init_state: master_adver_int + SKEW_MIN.
    let mut c = v3(100, A);
    c.initial = InitialState::Master;
    c.preempt = false; // normalized back to true, as keepalived does
    let mut o = One::started(c);
    assert!(o.vr.config().preempt);
    assert_eq!(o.vr.state(), State::Backup);
    let wait = ms(1000) + us(3_906) + Duration::from_nanos(250);
    assert_eq!(o.next(), Some(wait));
    let out = o.at(wait, Input::Timeout);
    assert_eq!(
        out,
        become_master(State::Backup, Reason::InitialMaster { after: wait }, 100)
    );
}

#[test]
fn non_owner_state_master_defers_to_higher() {
    let mut c = v3(100, A);
    c.initial = InitialState::Master;
    let mut o = One::started(c);
    o.rx(ms(500), B, adv(150));
    assert_eq!(
        o.next(),
        Some(ms(500) + master_down_interval(Version::V3, Priority(100), Centisecs(100), 3))
    );
    assert_eq!(
        o.vr.master().map(|m| (m.addr, m.priority)),
        Some((B, Priority(150)))
    );
}

#[test]
fn startup_with_link_down_is_fault() {
    let mut o = One::new(v3(255, A));
    assert_eq!(o.at(Duration::ZERO, Input::Link { up: false }), vec![]);
    let out = o.at(Duration::ZERO, Input::Startup);
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Initialize,
            to: State::Fault,
            reason: Reason::LinkDown
        }]
    );
    assert_eq!(o.next(), None);
    // The owner recovers straight to Master.
    let out = o.at(ms(10), Input::Link { up: true });
    assert_eq!(out, become_master(State::Fault, Reason::LinkUp, 255));
}

// ---- Backup ----

#[test]
fn backup_resets_on_higher_or_equal() {
    let mut o = One::started(v3(100, A));
    for (i, p) in [(1u64, 200u8), (2, 100), (3, 150)] {
        let t = ms(i * 1000);
        // Our own priority is decided by the address tie-break: said once (item 53).
        let said = if p == 100 {
            vec![Output::Warning {
                src: B,
                warning: RxWarning::EqualPriority,
            }]
        } else {
            vec![]
        };
        assert_eq!(o.rx(t, B, adv(p)), said);
        assert_eq!(o.next(), Some(t + us(3_609_375)));
    }
    assert_eq!(o.vr.counters().adverts_rx, 3);
    assert_eq!(o.vr.state(), State::Backup);
}

#[test]
fn backup_priority_zero_fast_takeover() {
    let mut o = One::started(v3(100, A));
    o.rx(ms(1000), B, adv(200));
    o.rx(ms(1500), B, adv(0));
    assert_eq!(o.next(), Some(ms(1500) + us(609_375)));
    let out = o.at(ms(1500) + us(609_375), Input::Timeout);
    assert_eq!(
        out,
        become_master(State::Backup, Reason::PriorityZeroReceived { src: B }, 100)
    );
    assert_eq!(o.vr.counters().priority_zero_rx, 1);
}

#[test]
fn backup_discards_lower_and_preempts() {
    let mut o = One::started(v3(100, A));
    let first = us(3_609_375);
    assert_eq!(o.rx(ms(1000), B, adv(50)), vec![]);
    assert_eq!(
        o.next(),
        Some(first),
        "lower priority must not reset the timer"
    );
    o.rx(ms(2000), B, adv(50));
    o.rx(ms(3000), B, adv(50));
    assert_eq!(o.vr.counters().discarded_lower_priority, 3);
    let out = o.at(first, Input::Timeout);
    assert_eq!(
        out,
        become_master(
            State::Backup,
            Reason::Preempt {
                src: B,
                priority: Priority(50)
            },
            100
        )
    );
}

#[test]
fn a_third_hosts_lower_adverts_do_not_displace_the_master() {
    // We (A, 50) follow B (100). C sends priority 1 adverts (a stray router, a flood): they
    // are discarded and B stays our master, so B's adverts (and their kernel timestamps)
    // keep the timer reset and we never take over while B talks.
    let mut o = One::started(v3(50, A));
    o.rx(ms(100), B, advert_from(&v3(100, B), 100));
    for i in 0..50u64 {
        o.rx(ms(110 + i * 20), C, advert_from(&v3(1, C), 1));
        if i % 5 == 0 {
            o.rx(ms(110 + i * 20), B, advert_from(&v3(100, B), 100));
        }
    }
    assert_eq!(o.vr.master().map(|m| m.addr), Some(B));
    assert_eq!(o.vr.counters().discarded_lower_priority, 50);
    // B's replayed timestamp (absorbed in XDP) still resets the timer although C was heard
    // last.
    let t = ms(1200);
    o.at(
        t,
        Input::AdvertSeenAt {
            src: B,
            at: o.t0 + t,
        },
    );
    assert_eq!(o.vr.counters().seen_unmatched, 0);
    assert_eq!(o.vr.counters().adverts_seen, 1);
    assert_eq!(o.next(), Some(t + o.vr.master_down_interval()));
    assert_eq!(o.vr.state(), State::Backup);
    // When B goes silent we take over, as a master down (not a preemption of C).
    let t2 = o.next().unwrap_or_default();
    let out = o.at(t2, Input::Timeout);
    assert!(
        matches!(
            out.first(),
            Some(Output::Transition {
                reason: Reason::MasterDown { .. },
                ..
            })
        ),
        "{out:?}"
    );
}

#[test]
fn nopreempt_accepts_lower() {
    let mut c = v3(100, A);
    c.preempt = false;
    let mut o = One::started(c);
    for i in 1..10u64 {
        o.rx(ms(i * 1000), B, adv(50));
        assert_eq!(o.at(ms(i * 1000 + 999), Input::Timeout), vec![]);
    }
    assert_eq!(o.vr.state(), State::Backup);
}

#[test]
fn preempt_delay_keepalived_semantics() {
    let mut c = v3(100, A);
    c.preempt_delay = ms(5000);
    let mut o = One::started(c);
    // Lower priority adverts are accepted while now < preempt_time = first one + 5 s.
    for i in 1..=5u64 {
        o.rx(ms(i * 1000), B, adv(50));
    }
    assert_eq!(o.next(), Some(ms(5000) + us(3_609_375)));
    assert_eq!(o.vr.counters().discarded_lower_priority, 0);
    // From 6 s on they are discarded.
    o.rx(ms(6000), B, adv(50));
    o.rx(ms(7000), B, adv(50));
    assert_eq!(o.vr.counters().discarded_lower_priority, 2);
    assert_eq!(o.next(), Some(ms(5000) + us(3_609_375)));
    let out = o.at(ms(5000) + us(3_609_375), Input::Timeout);
    assert!(matches!(
        out.first(),
        Some(Output::Transition {
            reason: Reason::Preempt { .. },
            ..
        })
    ));
}

#[test]
fn preempt_delay_cleared_by_higher_advert() {
    let mut c = v3(100, A);
    c.preempt_delay = ms(2000);
    let mut o = One::started(c);
    o.rx(ms(1000), B, adv(50)); // arms preempt_time = 3 s
    o.rx(ms(1500), B, adv(200)); // clears it
    o.rx(ms(3500), B, adv(50)); // arms again: 5.5 s
    o.rx(ms(4000), B, adv(50));
    assert_eq!(o.vr.counters().discarded_lower_priority, 0);
    assert_eq!(o.next(), Some(ms(4000) + us(3_609_375)));
}

#[test]
fn v3_learns_master_interval() {
    let mut o = One::started(v3(100, A));
    let mut a = adv(200);
    a.interval = Centisecs(200);
    let out = o.rx(ms(1000), B, a.clone());
    assert_eq!(
        out,
        vec![Output::Warning {
            src: B,
            warning: RxWarning::IntervalMismatch {
                ours: Centisecs(100),
                theirs: Centisecs(200)
            }
        }]
    );
    assert_eq!(o.vr.master_adver_int(), Centisecs(200));
    // 3 * 200 cs + (156 * 200 / 256) cs = 6 s + 1.21875 s
    assert_eq!(o.next(), Some(ms(1000) + ms(6000) + us(1_218_750)));
    // The same advert again is not warned about twice.
    assert_eq!(o.rx(ms(2000), B, a), vec![]);
    assert_eq!(o.vr.counters().interval_mismatch, 2);
    // Becoming master restores our own interval.
    o.at(ms(2000) + ms(6000) + us(1_218_750), Input::Timeout);
    assert_eq!(o.vr.state(), State::Master);
    assert_eq!(o.vr.master_adver_int(), Centisecs(100));
}

#[test]
fn v2_ignores_interval_learning_and_drops_mismatch() {
    let mut o = One::started(cfg(Version::V2, 100, A));
    let mut a = advert_from(&cfg(Version::V2, 200, B), 200);
    a.interval = Centisecs(300);
    let out = o.rx(ms(1000), B, a);
    assert_eq!(
        out,
        vec![Output::Dropped {
            src: B,
            reason: DropReason::IntervalMismatch {
                ours: Centisecs(100),
                theirs: Centisecs(300)
            }
        }]
    );
    assert_eq!(o.vr.counters().dropped_interval, 1);
    assert_eq!(o.vr.state(), State::Backup);
    // v2 master down uses (256 - 100)/256 s.
    assert_eq!(o.next(), Some(ms(3000) + us(609_375)));
}

#[test]
fn v2_auth() {
    let mut c = cfg(Version::V2, 100, A);
    c.auth = Auth::Pass(*b"secret\0\0");
    let mut o = One::started(c.clone());
    let mut a = advert_from(&c, 200);
    a.auth = Auth::Pass(*b"wrong\0\0\0");
    let out = o.rx(ms(100), B, a.clone());
    assert_eq!(
        out,
        vec![Output::Dropped {
            src: B,
            reason: DropReason::AuthMismatch
        }]
    );
    a.auth = Auth::None;
    assert_eq!(o.rx(ms(200), B, a.clone()).len(), 1);
    a.auth = c.auth;
    assert_eq!(o.rx(ms(300), B, a), vec![]);
    assert_eq!(o.vr.counters().dropped_auth, 2);
    assert_eq!(o.vr.counters().adverts_rx, 1);
}

#[test]
fn v3_auth_is_forced_none() {
    let mut c = v3(100, A);
    c.auth = Auth::Pass(*b"secret\0\0");
    let o = One::new(c);
    assert_eq!(o.vr.config().auth, Auth::None);
}

#[test]
fn receive_checks_drop_without_state_change() {
    let mut c = v3(100, A);
    c.unicast_peers = vec![B];
    c.check_unicast_src = true;
    let mut o = One::started(c);
    let before = o.next();
    let mut wrong_vrid = adv(200);
    wrong_vrid.vrid = Vrid::new(52).unwrap_or_else(|| unreachable!());
    let mut wrong_version = adv(200);
    wrong_version.version = Version::V2;
    let v6: IpAddr = IpAddr::V6(Ipv6Addr::LOCALHOST);
    let cases = [
        (
            B,
            wrong_vrid,
            DropReason::VridMismatch {
                got: Vrid::new(52).unwrap_or_else(|| unreachable!()),
            },
        ),
        (
            B,
            wrong_version,
            DropReason::VersionMismatch { got: Version::V2 },
        ),
        (v6, adv(200), DropReason::FamilyMismatch),
        (A, adv(200), DropReason::OwnAddress),
        (C, adv(200), DropReason::UnknownUnicastSource),
    ];
    for (i, (src, a, reason)) in cases.into_iter().enumerate() {
        let out = o.rx(ms(100 * (i as u64 + 1)), src, a);
        assert_eq!(out, vec![Output::Dropped { src, reason }]);
        assert_eq!(o.vr.state(), State::Backup);
        assert_eq!(o.next(), before);
    }
    let c = o.vr.counters();
    assert_eq!(
        (
            c.dropped_vrid,
            c.dropped_version,
            c.dropped_family,
            c.dropped_own_address,
            c.dropped_unknown_unicast_src,
            c.adverts_rx
        ),
        (1, 1, 1, 1, 1, 0)
    );
    // A configured peer passes.
    assert_eq!(o.rx(ms(900), B, adv(200)), vec![]);
}

/// keepalived skips the TTL 255 check for a unicast instance (`vrrp_check_packet`: "but not
/// if unicast"), holding each peer to its `min_ttl`/`max_ttl` instead (`check_ttl_hl`).
#[test]
fn unicast_adverts_are_held_to_their_peers_ttl_range_not_255() {
    let mut c = v3(100, A);
    c.unicast_peers = vec![B, C];
    c.peer_ttl = vec![(C, TtlRange { min: 255, max: 255 })];
    let mut o = One::started(c);
    // B has no limits: a routed hop away (TTL 64) is fine.
    assert_eq!(o.rx_ttl(ms(100), B, adv(200), Some(64)), vec![]);
    assert_eq!(o.vr.master().map(|m| m.addr), Some(B));
    // C must be on the link.
    assert_eq!(
        o.rx_ttl(ms(200), C, adv(250), Some(254)),
        vec![Output::Dropped {
            src: C,
            reason: DropReason::BadTtl {
                ttl: 254,
                min: 255,
                max: 255
            }
        }]
    );
    assert_eq!(o.vr.counters().dropped_ttl, 1);
    assert_eq!(o.vr.master().map(|m| m.addr), Some(B));
    assert_eq!(o.rx_ttl(ms(300), C, adv(250), Some(255)), vec![]);
    assert_eq!(o.vr.master().map(|m| m.addr), Some(C));
    // A multicast instance holds unicast adverts to 255 (RFC 9568 §7.1).
    let mut o = One::started(v3(100, A));
    assert_eq!(
        o.rx_ttl(ms(100), B, adv(200), Some(64)),
        vec![Output::Dropped {
            src: B,
            reason: DropReason::BadTtl {
                ttl: 64,
                min: 255,
                max: 255
            }
        }]
    );
    assert_eq!(o.rx_ttl(ms(200), B, adv(200), Some(255)), vec![]);
}

#[test]
fn unicast_src_unchecked_by_default() {
    let mut c = v3(100, A);
    c.unicast_peers = vec![B];
    let mut o = One::started(c);
    assert_eq!(o.rx(ms(100), C, adv(200)), vec![]);
    assert_eq!(o.vr.master().map(|m| m.addr), Some(C));
}

#[test]
fn address_list_mismatch_is_logged_and_processed() {
    let mut o = One::started(v3(100, A));
    let mut a = adv(200);
    a.addresses = vec![IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99))];
    let out = o.rx(ms(1000), B, a);
    assert_eq!(
        out,
        vec![Output::Warning {
            src: B,
            warning: RxWarning::AddressListMismatch
        }]
    );
    assert_eq!(o.next(), Some(ms(1000) + us(3_609_375)));
    assert_eq!(o.vr.counters().address_list_mismatch, 1);
}

/// RFC 9568 erratum 8298 / item 53: an owner that hears another owner says so.
#[test]
fn an_owner_hearing_another_owner_warns() {
    let mut o = One::started(v3(255, A));
    assert_eq!(o.vr.state(), State::Master);
    let out = o.rx(ms(100), C, advert_from(&v3(255, C), 255));
    assert!(
        out.contains(&Output::Warning {
            src: C,
            warning: RxWarning::AnotherOwner
        }),
        "{out:?}"
    );
    assert_eq!(o.vr.counters().another_owner, 1);
}

#[test]
fn owner_ignore_adverts() {
    let mut c = v3(255, A);
    c.owner_ignore_adverts = true;
    let mut o = One::started(c);
    let out = o.rx(ms(100), B, adv(0));
    assert_eq!(
        out,
        vec![Output::Dropped {
            src: B,
            reason: DropReason::OwnerIgnoresAdverts
        }]
    );
}

#[test]
fn adverts_ignored_in_fault() {
    let mut o = One::started(v3(100, A));
    o.at(ms(10), Input::Fault(true));
    assert_eq!(o.vr.state(), State::Fault);
    assert_eq!(o.rx(ms(20), B, adv(0)), vec![]);
    assert_eq!(o.vr.counters().ignored_not_running, 1);
    assert_eq!(o.next(), None);
}

// ---- Master ----

fn master(prio: u8) -> One {
    let mut o = One::started(v3(prio, B));
    let t = o.next().unwrap_or_default();
    o.at(t, Input::Timeout);
    assert_eq!(o.vr.state(), State::Master);
    o
}

#[test]
fn master_priority_zero_readvertises() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default() - ms(400);
    let out = o.rx(t, A, advert_from(&v3(0, A), 0));
    assert_eq!(
        out,
        vec![Output::SendAdvert {
            priority: Priority(100)
        }]
    );
    assert_eq!(o.next(), Some(t + ms(1000)));
}

#[test]
fn master_yields_to_higher() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    let mut a = advert_from(&v3(200, C), 200);
    a.interval = Centisecs(50);
    let out = o.rx(t, C, a);
    assert_eq!(
        out,
        vec![
            Output::Warning {
                src: C,
                warning: RxWarning::IntervalMismatch {
                    ours: Centisecs(100),
                    theirs: Centisecs(50)
                }
            },
            Output::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::HigherPriority {
                    src: C,
                    priority: Priority(200)
                }
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    // Master_Down_Interval from the new master's 50 cs: 150 + 156*50/256 cs.
    assert_eq!(
        o.next(),
        Some(t + ms(1500) + us(304_687) + Duration::from_nanos(500))
    );
    assert_eq!(o.vr.counters().released_master, 1);
}

#[test]
fn master_equal_priority_tie_break() {
    // We are B (.2). C (.3) wins the tie; A (.1) loses it.
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    let out = o.rx(t, A, advert_from(&v3(100, A), 100));
    assert_eq!(
        out,
        vec![
            Output::Warning {
                src: A,
                warning: RxWarning::EqualPriority
            },
            Output::SendAdvert {
                priority: Priority(100)
            },
            Output::Announce {
                kind: AnnounceKind::LowerPriority
            },
            Output::MasterRxLowerPriority {
                src: A,
                priority: Priority(100)
            },
        ]
    );
    assert_eq!(o.vr.state(), State::Master);
    let out = o.rx(t, C, advert_from(&v3(100, C), 100));
    assert!(matches!(
        out.get(1),
        Some(Output::Transition {
            to: State::Backup,
            reason: Reason::HigherPriority { src: C, .. },
            ..
        })
    ));
}

#[test]
fn ipv6_tie_break_is_unsigned_128_bit() {
    let lo: IpAddr = "fe80::1"
        .parse()
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let hi: IpAddr = "fe80::8000:0:0:1"
        .parse()
        .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    assert_eq!(addr_cmp(hi, lo), Some(Ordering::Greater));
    assert_eq!(addr_cmp(A, lo), None);
    let big = IpAddr::V4(Ipv4Addr::new(200, 0, 0, 1));
    assert_eq!(addr_cmp(big, A), Some(Ordering::Greater));
}

/// issue 18 item 42: each losing advert fired a whole gratuitous ARP burst, unbounded. One
/// burst per second at most now; the re-advert itself still answers every one.
#[test]
fn lower_priority_announce_bursts_are_rate_limited() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    let mut bursts = 0;
    let mut adverts = 0;
    for k in 0..20 {
        for out in o.rx(t + ms(50 * k), A, advert_from(&v3(50, A), 50)) {
            match out {
                Output::Announce {
                    kind: AnnounceKind::LowerPriority,
                } => bursts += 1,
                Output::SendAdvert { .. } => adverts += 1,
                _ => {}
            }
        }
    }
    // 20 losing adverts over 950 ms: one burst, every re-advert.
    assert_eq!((bursts, adverts), (1, 20));
    let out = o.rx(t + ms(1000), A, advert_from(&v3(50, A), 50));
    assert!(out.contains(&Output::Announce {
        kind: AnnounceKind::LowerPriority
    }));
}

#[test]
fn master_lower_priority_quiet_options() {
    let mut c = v3(100, B);
    c.lower_prio_no_advert = true;
    c.garp_lower_prio = false;
    let mut o = One::started(c);
    let t = o.next().unwrap_or_default();
    o.at(t, Input::Timeout);
    let out = o.rx(t + ms(10), A, advert_from(&v3(50, A), 50));
    assert_eq!(
        out,
        vec![Output::MasterRxLowerPriority {
            src: A,
            priority: Priority(50)
        }]
    );
}

#[test]
fn higher_prio_send_advert_option() {
    let mut c = v3(100, B);
    c.higher_prio_send_advert = true;
    let mut o = One::started(c);
    let t = o.next().unwrap_or_default();
    o.at(t, Input::Timeout);
    let out = o.rx(t + ms(10), C, advert_from(&v3(150, C), 150));
    assert_eq!(
        out.first(),
        Some(&Output::SendAdvert {
            priority: Priority(100)
        })
    );
    assert_eq!(o.vr.state(), State::Backup);
}

#[test]
fn shutdown_master_sends_priority_zero() {
    let mut o = master(100);
    let out = o.at(ms(5000), Input::Shutdown);
    assert_eq!(
        out,
        vec![
            Output::Transition {
                from: State::Master,
                to: State::Stopped,
                reason: Reason::Shutdown
            },
            Output::SendAdvert {
                priority: Priority(0)
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    assert_eq!(o.next(), None);
    assert_eq!(o.vr.counters().priority_zero_tx, 1);
    // Restartable.
    o.at(ms(6000), Input::Startup);
    assert_eq!(o.vr.state(), State::Backup);
}

#[test]
fn resign_holds_vips_until_the_new_master_is_heard() {
    // B (100) is master; a handover keeps the VIPs until A's first advert, then yields.
    let mut o = master(100);
    let t = ms(5000);
    let out = o.at(t, Input::Resign { exit: false });
    assert_eq!(
        out,
        vec![Output::SendAdvert {
            priority: Priority(0)
        }]
    );
    assert_eq!(o.vr.state(), State::Master);
    assert!(o.vr.status(o.t0 + t).resigning);
    // No adverts while resigning: the next deadline is the master-down interval.
    assert_eq!(o.next(), Some(t + o.vr.master_down_interval()));
    // The new master (A, priority 50) took over after its skew time.
    let out = o.rx(t + ms(800), A, advert_from(&v3(50, A), 50));
    assert_eq!(
        out,
        vec![
            Output::Transition {
                from: State::Master,
                to: State::Backup,
                reason: Reason::HandedOver { to: A }
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    // Yielded: A's lower priority adverts are accepted (no preemption back).
    let t2 = t + ms(1800);
    o.rx(t2, A, advert_from(&v3(50, A), 50));
    assert_eq!(o.next(), Some(t2 + o.vr.master_down_interval()));
    assert_eq!(o.vr.counters().discarded_lower_priority, 0);
    assert!(o.vr.status(o.t0 + t2).yielded);
    // A third sender's lower-priority adverts (a flood) are not accepted: only A's are.
    o.rx(t2 + ms(10), C, advert_from(&v3(1, C), 1));
    assert_eq!(o.next(), Some(t2 + o.vr.master_down_interval()));
    assert_eq!(o.vr.counters().discarded_lower_priority, 1);
    // When A goes silent we take over by the usual rules, and preempt again afterwards.
    let t3 = o.next().unwrap_or_default();
    o.at(t3, Input::Timeout);
    assert_eq!(o.vr.state(), State::Master);
    assert!(!o.vr.status(o.t0 + t3).yielded);
}

#[test]
fn resign_without_a_taker_resumes() {
    let mut o = master(100);
    let t = ms(5000);
    o.at(t, Input::Resign { exit: false });
    let t2 = o.next().unwrap_or_default();
    let out = o.at(t2, Input::Timeout);
    assert_eq!(
        out,
        vec![
            Output::ResignTimedOut { resumed: true },
            Output::SendAdvert {
                priority: Priority(100)
            },
        ]
    );
    assert_eq!(o.vr.state(), State::Master);
    assert_eq!(o.next(), Some(t2 + ms(1000)));
}

#[test]
fn resign_to_exit_stops_when_the_new_master_is_heard() {
    let mut o = master(100);
    let t = ms(5000);
    o.at(t, Input::Resign { exit: true });
    // Priority 0 from someone else does not count as a new master.
    assert_eq!(o.rx(t + ms(1), C, advert_from(&v3(0, C), 0)), vec![]);
    let out = o.rx(t + ms(800), A, advert_from(&v3(50, A), 50));
    assert_eq!(
        out,
        vec![
            Output::Transition {
                from: State::Master,
                to: State::Stopped,
                reason: Reason::Shutdown
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    assert_eq!(o.next(), None);
}

#[test]
fn resign_to_exit_without_a_taker_releases() {
    let mut o = master(100);
    o.at(ms(5000), Input::Resign { exit: true });
    let t2 = o.next().unwrap_or_default();
    let out = o.at(t2, Input::Timeout);
    assert_eq!(out[0], Output::ResignTimedOut { resumed: false });
    assert!(out.contains(&Output::RemoveVips));
    assert_eq!(o.vr.state(), State::Stopped);
    // A backup asked to exit stops at once; a backup asked to hand over does nothing.
    let mut b = One::started(v3(100, A));
    assert_eq!(b.at(ms(10), Input::Resign { exit: false }), vec![]);
    b.at(ms(20), Input::Resign { exit: true });
    assert_eq!(b.vr.state(), State::Stopped);
}

#[test]
fn resigning_master_that_faults_releases() {
    let mut o = master(100);
    o.at(ms(5000), Input::Resign { exit: false });
    let out = o.at(ms(5001), Input::Link { up: false });
    assert!(out.contains(&Output::RemoveVips));
    assert_eq!(o.vr.state(), State::Fault);
    assert!(!o.vr.status(o.t0 + ms(5001)).resigning);
}

#[test]
fn shutdown_backup_just_stops() {
    let mut o = One::started(v3(100, A));
    let out = o.at(ms(10), Input::Shutdown);
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Backup,
            to: State::Stopped,
            reason: Reason::Shutdown
        }]
    );
    assert_eq!(o.at(ms(20), Input::Shutdown), vec![]);
}

#[test]
fn link_down_in_master_releases() {
    let mut o = master(100);
    let out = o.at(ms(5000), Input::Link { up: false });
    assert_eq!(
        out,
        vec![
            Output::Transition {
                from: State::Master,
                to: State::Fault,
                reason: Reason::LinkDown
            },
            Output::SendAdvert {
                priority: Priority(0)
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    // Track failure on top: still Fault; link back with track still failed: still Fault.
    assert_eq!(o.at(ms(5100), Input::Fault(true)), vec![]);
    assert_eq!(o.at(ms(5200), Input::Link { up: true }), vec![]);
    let out = o.at(ms(5300), Input::Fault(false));
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Fault,
            to: State::Backup,
            reason: Reason::TrackRecovered
        }]
    );
    assert_eq!(o.next(), Some(ms(5300) + us(3_609_375)));
}

// ---- priority ----

#[test]
fn priority_change_shifts_backup_timer() {
    let mut o = One::started(v3(100, A));
    o.rx(ms(1000), B, adv(150));
    let out = o.at(ms(1500), Input::Priority(Priority(200)));
    assert_eq!(
        out,
        vec![Output::PriorityChanged {
            from: Priority(100),
            to: Priority(200)
        }]
    );
    // skew shrinks from 60.9375 cs to 21.875 cs.
    assert_eq!(o.next(), Some(ms(1000) + ms(3000) + us(218_750)));
    // Now higher than the master: its next advert is discarded → preempt.
    o.rx(ms(2000), B, adv(150));
    assert_eq!(o.vr.counters().discarded_lower_priority, 1);
}

#[test]
fn priority_is_clamped_and_owner_fixed() {
    let mut o = One::started(v3(100, A));
    o.at(ms(1), Input::Priority(Priority(0)));
    assert_eq!(o.vr.effective_priority(), Priority(1));
    o.at(ms(2), Input::Priority(Priority(255)));
    assert_eq!(o.vr.effective_priority(), Priority(254));
    let mut owner = One::started(v3(255, A));
    assert_eq!(owner.at(ms(1), Input::Priority(Priority(10))), vec![]);
    assert_eq!(owner.vr.effective_priority(), Priority(255));
}

#[test]
fn master_advertises_new_priority() {
    let mut o = master(100);
    o.at(ms(5000), Input::Priority(Priority(80)));
    let t = o.next().unwrap_or_default();
    assert_eq!(
        o.at(t, Input::Timeout),
        vec![Output::SendAdvert {
            priority: Priority(80)
        }]
    );
    assert_eq!(o.vr.state(), State::Master);
}

// ---- data-plane timestamps ----

#[test]
fn advert_seen_at_rearms_from_timestamp() {
    let mut o = One::started(v3(100, A));
    o.rx(ms(1000), B, adv(200));
    let out = o.at(
        ms(4000),
        Input::AdvertSeenAt {
            src: B,
            at: o.t0 + ms(3000),
        },
    );
    assert_eq!(out, vec![]);
    assert_eq!(o.next(), Some(ms(3000) + us(3_609_375)));
    // An older timestamp never moves the deadline back.
    o.at(
        ms(4100),
        Input::AdvertSeenAt {
            src: B,
            at: o.t0 + ms(2000),
        },
    );
    assert_eq!(o.next(), Some(ms(3000) + us(3_609_375)));
    // Unknown source: counted, ignored.
    o.at(
        ms(4200),
        Input::AdvertSeenAt {
            src: C,
            at: o.t0 + ms(4200),
        },
    );
    assert_eq!(o.vr.counters().seen_unmatched, 1);
    assert_eq!(o.vr.counters().adverts_seen, 2);
    assert_eq!(o.vr.counters().adverts_rx, 1);
}

#[test]
fn advert_seen_at_does_not_rescue_a_lower_master() {
    let mut o = One::started(v3(100, A));
    o.rx(ms(1000), B, adv(50));
    o.at(
        ms(3000),
        Input::AdvertSeenAt {
            src: B,
            at: o.t0 + ms(3000),
        },
    );
    assert_eq!(o.next(), Some(us(3_609_375)));
}

#[test]
fn advert_seen_at_in_master_replays_lower() {
    let mut o = master(100);
    o.rx(ms(4000), A, advert_from(&v3(50, A), 50));
    let out = o.at(
        ms(4500),
        Input::AdvertSeenAt {
            src: A,
            at: o.t0 + ms(4400),
        },
    );
    assert_eq!(
        out.first(),
        Some(&Output::SendAdvert {
            priority: Priority(100)
        })
    );
}

#[test]
fn zero_interval_is_not_learnt() {
    let mut o = One::started(v3(100, A));
    let mut a = adv(200);
    a.interval = Centisecs(0);
    o.rx(ms(1000), B, a);
    assert_eq!(o.vr.master_adver_int(), Centisecs(100));
    assert_eq!(o.next(), Some(ms(1000) + us(3_609_375)));
}

// ---- announcements ----

#[test]
fn garp_delay_and_refresh() {
    let mut c = v3(255, A);
    c.garp_master_delay = ms(5000);
    c.garp_master_refresh = Some(ms(60_000));
    let mut o = One::new(c);
    let mut announces = Vec::new();
    for out in o.at(Duration::ZERO, Input::Startup) {
        if let Output::Announce { kind } = out {
            announces.push((Duration::ZERO, kind));
        }
    }
    let mut t = Duration::ZERO;
    while t < ms(130_000) {
        t = o.next().unwrap_or(ms(130_000));
        for out in o.at(t, Input::Timeout) {
            if let Output::Announce { kind } = out {
                announces.push((t, kind));
            }
        }
    }
    assert_eq!(
        announces,
        vec![
            (Duration::ZERO, AnnounceKind::BecomeMaster),
            (ms(5000), AnnounceKind::Delayed),
            (ms(65_000), AnnounceKind::Refresh),
            (ms(125_000), AnnounceKind::Refresh),
        ]
    );
}

// ---- configuration ----

#[test]
fn validate_rejects() {
    let good = v3(100, A);
    type Mutation = Box<dyn Fn(&mut VrConfig)>;
    let cases: Vec<(Mutation, ConfigError)> = vec![
        (
            Box::new(|c| c.priority = Priority(0)),
            ConfigError::PriorityZero,
        ),
        (
            Box::new(|c| c.interval = Centisecs(0)),
            ConfigError::IntervalZero,
        ),
        (
            Box::new(|c| c.interval = Centisecs(4096)),
            ConfigError::IntervalTooLarge(Centisecs(4096)),
        ),
        (
            Box::new(|c| {
                c.version = Version::V2;
                c.interval = Centisecs(150);
            }),
            ConfigError::V2Interval(Centisecs(150)),
        ),
        (Box::new(|c| c.addresses.clear()), ConfigError::NoAddresses),
        (
            Box::new(|c| c.addresses.push(IpAddr::V6(Ipv6Addr::LOCALHOST))),
            ConfigError::AddressFamily(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ),
        (
            Box::new(|c| c.down_timer_adverts = 0),
            ConfigError::DownTimerAdverts(0),
        ),
    ];
    for (mutate, err) in cases {
        let mut c = good.clone();
        mutate(&mut c);
        assert_eq!(VirtualRouter::new(c, base()).err(), Some(err));
    }
    let mut c = good;
    c.version = Version::V2;
    c.family = Family::V6;
    c.addresses = vec![IpAddr::V6(Ipv6Addr::LOCALHOST)];
    c.primary = IpAddr::V6(Ipv6Addr::LOCALHOST);
    assert_eq!(c.validate(), Err(ConfigError::V2Ipv6));
}

#[test]
fn reconfigure() {
    let mut o = master(100);
    let mut c = o.vr.config().clone();
    c.vrid = Vrid::new(9).unwrap_or_else(|| unreachable!());
    assert_eq!(
        o.at(ms(5000), Input::Config(c)),
        vec![Output::ConfigRejected {
            error: ConfigError::IdentityChanged
        }]
    );
    let mut c = o.vr.config().clone();
    c.priority = Priority(0);
    assert_eq!(
        o.at(ms(5000), Input::Config(c)),
        vec![Output::ConfigRejected {
            error: ConfigError::PriorityZero
        }]
    );
    // Tracking offset is kept across a base priority change.
    o.at(ms(5000), Input::Priority(Priority(90)));
    let mut c = o.vr.config().clone();
    c.priority = Priority(150);
    c.addresses.push(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 101)));
    let out = o.at(ms(5100), Input::Config(c));
    assert_eq!(
        out,
        vec![
            Output::PriorityChanged {
                from: Priority(90),
                to: Priority(140)
            },
            Output::RemoveVips,
            Output::InstallVips,
            Output::Announce {
                kind: AnnounceKind::BecomeMaster
            },
        ]
    );
    assert_eq!(o.vr.state(), State::Master);
}

#[test]
fn status_snapshot_serializes() {
    let mut o = master(100);
    o.rx(ms(4000), A, advert_from(&v3(50, A), 50));
    let s = o.vr.status(o.t0 + ms(5000));
    assert_eq!(s.state, State::Master);
    assert!(s.last_transition.is_some());
    let j = serde_json::to_string(&s).unwrap_or_default();
    assert!(j.contains("\"Master\""), "{j}");
    assert!(o.vr.accepts_vip_traffic());
}

// ---- two routers on a simulated wire ----

struct Node {
    vr: VirtualRouter,
    alive: bool,
    vips: bool,
    log: Vec<(Duration, Output)>,
}

/// Routers on one zero-latency segment: each SendAdvert is delivered at once to every other
/// live router, built from the sender's configuration.
struct Wire {
    t0: Instant,
    now: Duration,
    nodes: Vec<Node>,
    connected: bool,
}

impl Wire {
    fn new(cfgs: Vec<VrConfig>) -> Self {
        let t0 = base();
        let nodes = cfgs
            .into_iter()
            .map(|c| Node {
                vr: VirtualRouter::new(c, t0).unwrap_or_else(|e| panic!("{e}")),
                alive: false,
                vips: false,
                log: Vec::new(),
            })
            .collect();
        Self {
            t0,
            now: Duration::ZERO,
            nodes,
            connected: true,
        }
    }

    fn input(&mut self, i: usize, input: Input) {
        let mut queue = VecDeque::from([(i, input)]);
        while let Some((n, input)) = queue.pop_front() {
            if !self.nodes[n].alive {
                continue;
            }
            let now = self.t0 + self.now;
            self.nodes[n].vr.handle(now, input);
            while let Some(out) = self.nodes[n].vr.poll_output() {
                match &out {
                    Output::InstallVips => {
                        assert!(!self.nodes[n].vips, "double install");
                        self.nodes[n].vips = true;
                    }
                    Output::RemoveVips => self.nodes[n].vips = false,
                    Output::SendAdvert { priority } => {
                        let c = self.nodes[n].vr.config();
                        let advert = advert_from(c, priority.get());
                        let src = c.primary;
                        for j in 0..self.nodes.len() {
                            if j != n && self.connected {
                                queue.push_back((
                                    j,
                                    Input::Advert {
                                        ttl: None,
                                        src,
                                        advert: advert.clone(),
                                    },
                                ));
                            }
                        }
                    }
                    _ => {}
                }
                self.nodes[n].log.push((self.now, out));
            }
        }
    }

    fn start(&mut self, i: usize) {
        self.nodes[i].alive = true;
        self.input(i, Input::Startup);
    }

    /// The node crashes: no more adverts, no shutdown.
    fn kill(&mut self, i: usize) {
        self.nodes[i].alive = false;
        self.nodes[i].vips = false;
        let c = self.nodes[i].vr.config().clone();
        self.nodes[i].vr =
            VirtualRouter::new(c, self.t0 + self.now).unwrap_or_else(|e| panic!("{e}"));
    }

    fn run_until(&mut self, t: Duration) {
        loop {
            let next = self
                .nodes
                .iter()
                .enumerate()
                .filter(|(_, n)| n.alive)
                .filter_map(|(i, n)| n.vr.poll_timeout().map(|d| (d, i)))
                .filter(|(d, _)| *d <= self.t0 + t)
                .min();
            let Some((d, i)) = next else { break };
            self.now = self.now.max(d - self.t0);
            self.input(i, Input::Timeout);
        }
        self.now = t;
    }

    fn states(&self) -> Vec<State> {
        self.nodes.iter().map(|n| n.vr.state()).collect()
    }

    fn check_vips(&self) {
        for n in &self.nodes {
            assert_eq!(n.vips, n.vr.state() == State::Master);
        }
    }

    /// When node `i` last became master, and why.
    fn last_master(&self, i: usize) -> Option<(Duration, Reason)> {
        self.nodes[i].log.iter().rev().find_map(|(t, o)| match o {
            Output::Transition {
                to: State::Master,
                reason,
                ..
            } => Some((*t, reason.clone())),
            _ => None,
        })
    }
}

fn pair(a: VrConfig, b: VrConfig) -> Wire {
    let mut w = Wire::new(vec![a, b]);
    w.start(0);
    w.start(1);
    w
}

#[test]
fn wire_election_and_failover_on_silence() {
    let mut w = pair(v3(200, A), v3(100, B));
    w.run_until(ms(10_000));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    w.check_vips();
    // A got master after its own master-down interval: 3 s + 56/256 s.
    assert_eq!(w.last_master(0).map(|m| m.0), Some(ms(3000) + us(218_750)));
    w.kill(0);
    let killed = w.now;
    w.run_until(ms(20_000));
    assert_eq!(w.states()[1], State::Master);
    let (t, reason) = w.last_master(1).unwrap_or_else(|| panic!("no takeover"));
    assert!(matches!(reason, Reason::MasterDown { .. }));
    // The last advert from A was at most one interval before the kill.
    assert!(
        t - killed <= us(3_609_375) && t - killed > ms(2_600),
        "{:?}",
        t - killed
    );
    w.check_vips();
}

#[test]
fn wire_priority_zero_fast_takeover() {
    let mut w = pair(v3(200, A), v3(100, B));
    w.run_until(ms(10_000));
    w.input(0, Input::Shutdown);
    let t0 = w.now;
    w.run_until(ms(20_000));
    assert_eq!(w.states(), vec![State::Stopped, State::Master]);
    assert_eq!(
        w.last_master(1),
        Some((t0 + us(609_375), Reason::PriorityZeroReceived { src: A }))
    );
}

#[test]
fn wire_preempt_back() {
    let mut w = pair(v3(200, A), v3(100, B));
    w.run_until(ms(10_000));
    w.kill(0);
    w.run_until(ms(20_000));
    assert_eq!(w.states()[1], State::Master);
    w.start(0);
    let back = w.now;
    w.run_until(ms(30_000));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    w.check_vips();
    let (t, reason) = w.last_master(0).unwrap_or_else(|| panic!("no preempt"));
    assert_eq!(
        reason,
        Reason::Preempt {
            src: B,
            priority: Priority(100)
        }
    );
    assert_eq!(t, back + ms(3000) + us(218_750));
    // B yielded on A's first advert.
    assert!(w.nodes[1].log.iter().any(|(tt, o)| *tt == t
        && matches!(
            o,
            Output::Transition {
                to: State::Backup,
                reason: Reason::HigherPriority { src: A, .. },
                ..
            }
        )));
}

#[test]
fn wire_nopreempt() {
    let mut a = v3(200, A);
    a.preempt = false;
    let mut w = pair(a, v3(100, B));
    w.run_until(ms(10_000));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    w.kill(0);
    w.run_until(ms(20_000));
    w.start(0);
    w.run_until(ms(60_000));
    assert_eq!(w.states(), vec![State::Backup, State::Master]);
    w.check_vips();
}

#[test]
fn wire_preempt_delay() {
    let mut a = v3(200, A);
    a.preempt_delay = ms(10_000);
    let mut w = pair(a, v3(100, B));
    w.run_until(ms(10_000));
    w.kill(0);
    w.run_until(ms(20_000));
    w.start(0);
    let back = w.now;
    w.run_until(ms(60_000));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    let (t, _) = w.last_master(0).unwrap_or_else(|| panic!("no preempt"));
    // The first of B's adverts (within one interval) arms the delay; after it, the next advert is
    // discarded and A's master-down timer (armed by the last accepted one) runs out.
    let waited = t - back;
    assert!(waited > ms(10_000) + ms(3000), "{waited:?}");
    assert!(
        waited <= ms(10_000) + ms(1000) + ms(1000) + us(3_218_750),
        "{waited:?}"
    );
}

#[test]
fn wire_equal_priority_tie_break() {
    // A backup accepts an equal priority master, so a tie only shows after a partition.
    let mut w = Wire::new(vec![v3(100, A), v3(100, B)]);
    w.connected = false;
    w.start(0);
    w.start(1);
    w.run_until(ms(5_000));
    assert_eq!(w.states(), vec![State::Master, State::Master]);
    w.connected = true;
    w.run_until(ms(10_000));
    // B, the higher address, stays master.
    assert_eq!(w.states(), vec![State::Backup, State::Master]);
    w.check_vips();
    assert!(w.nodes[0].log.iter().any(|(_, o)| matches!(
        o,
        Output::Transition {
            reason: Reason::HigherPriority {
                src: B,
                priority: Priority(100)
            },
            ..
        }
    )));
}

#[test]
fn wire_v2_failover() {
    let mut w = pair(cfg(Version::V2, 150, A), cfg(Version::V2, 50, B));
    w.run_until(ms(10_000));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    w.input(0, Input::Shutdown);
    let t0 = w.now;
    w.run_until(ms(20_000));
    assert_eq!(
        w.last_master(1).map(|m| m.0),
        Some(t0 + Duration::from_nanos(804_687_500))
    );
}

#[test]
fn wire_tracking_handover_via_backup_preemption() {
    let mut w = pair(v3(150, A), v3(100, B));
    w.run_until(ms(10_000));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    // A's track script drops it below B: A keeps being master until B preempts it.
    w.input(0, Input::Priority(Priority(50)));
    assert_eq!(w.states(), vec![State::Master, State::Backup]);
    w.run_until(ms(20_000));
    assert_eq!(w.states(), vec![State::Backup, State::Master]);
    w.check_vips();
    assert!(matches!(
        w.last_master(1),
        Some((_, Reason::Preempt { src: A, .. }))
    ));
}

// ---- properties ----

#[derive(Clone, Debug)]
enum Step {
    Wait(u16),
    Startup,
    Shutdown,
    Advert(u8, u8, bool),
    Link(bool),
    Fault(bool),
    Prio(u8),
    Seen(u8, u16),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u16..5000).prop_map(Step::Wait),
        1 => Just(Step::Startup),
        1 => Just(Step::Shutdown),
        4 => (0u8..4, any::<u8>(), any::<bool>()).prop_map(|(s, p, i)| Step::Advert(s, p, i)),
        1 => any::<bool>().prop_map(Step::Link),
        1 => any::<bool>().prop_map(Step::Fault),
        1 => any::<u8>().prop_map(Step::Prio),
        2 => (0u8..4, 0u16..5000).prop_map(|(s, back)| Step::Seen(s, back)),
    ]
}

proptest! {
    #[test]
    fn never_panics_and_vips_follow_master(
        prio in 1u8..=255,
        version in prop_oneof![Just(Version::V2), Just(Version::V3)],
        preempt in any::<bool>(),
        delay in 0u64..3000,
        initial_master in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..120),
    ) {
        let srcs = [A, B, C, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 200))];
        let mut c = cfg(version, prio, B);
        c.preempt = preempt;
        c.preempt_delay = ms(delay);
        c.initial = if initial_master { InitialState::Master } else { InitialState::Backup };
        c.garp_master_delay = ms(700);
        c.garp_master_refresh = Some(ms(1300));
        let t0 = base();
        let mut vr = VirtualRouter::new(c.clone(), t0).unwrap_or_else(|e| panic!("{e}"));
        let mut now = Duration::ZERO;
        let mut vips = false;
        for s in steps {
            let (input, is_timeout) = match s {
                Step::Wait(d) => {
                    now += ms(u64::from(d));
                    (Input::Timeout, true)
                }
                Step::Startup => (Input::Startup, false),
                Step::Shutdown => (Input::Shutdown, false),
                Step::Advert(i, p, interval_off) => {
                    let mut a = advert_from(&c, p);
                    if interval_off {
                        a.interval = Centisecs(200);
                    }
                    (Input::Advert {
                        src: srcs[usize::from(i)],
                        advert: a,
                        ttl: None,
                    }, false)
                }
                Step::Link(up) => (Input::Link { up }, false),
                Step::Fault(f) => (Input::Fault(f), false),
                Step::Prio(p) => (Input::Priority(Priority(p)), false),
                Step::Seen(i, back) => (
                    Input::AdvertSeenAt {
                        src: srcs[usize::from(i)],
                        at: t0 + now.saturating_sub(ms(u64::from(back))),
                    },
                    false,
                ),
            };
            let state_before = vr.state();
            vr.handle(t0 + now, input);
            let mut dropped = false;
            let mut changed = false;
            while let Some(o) = vr.poll_output() {
                match o {
                    Output::InstallVips => {
                        prop_assert!(!vips, "InstallVips twice");
                        vips = true;
                    }
                    Output::RemoveVips => {
                        prop_assert!(vips, "RemoveVips without InstallVips");
                        vips = false;
                    }
                    Output::Dropped { .. } => dropped = true,
                    Output::Transition { .. } => changed = true,
                    _ => {}
                }
            }
            prop_assert_eq!(vips, vr.state() == State::Master);
            if dropped {
                prop_assert!(!changed && vr.state() == state_before);
            }
            if is_timeout {
                // Every due deadline has been served.
                prop_assert!(vr.poll_timeout().is_none_or(|d| d > t0 + now));
            }
            if vr.state() == State::Master {
                prop_assert!(vr.poll_timeout().is_some());
            }
        }
    }
}

// ---- sync groups (keepalived vrrp_sync.c) ----

fn grp() -> String {
    "G".to_string()
}

fn sync_reason(member: &str, event: SyncEvent) -> Reason {
    Reason::SyncGroup {
        group: grp(),
        member: member.to_string(),
        event,
    }
}

fn joined(c: VrConfig, peers: &[&str]) -> One {
    let mut o = One::new(c);
    let peers = peers.iter().map(|p| p.to_string()).collect();
    assert_eq!(
        o.at(
            Duration::ZERO,
            Input::SyncJoin {
                group: grp(),
                peers
            }
        ),
        vec![]
    );
    o.at(Duration::ZERO, Input::Startup);
    o
}

fn sync_master(member: &str) -> Input {
    Input::SyncMaster {
        group: grp(),
        member: member.to_string(),
    }
}

fn sync_backup(member: &str) -> Input {
    Input::SyncBackup {
        group: grp(),
        member: member.to_string(),
    }
}

fn sync_fault(member: &str, fault: bool) -> Input {
    Input::SyncFault {
        group: grp(),
        member: member.to_string(),
        fault,
    }
}

fn want_master(member: &str, want: bool) -> Input {
    Input::SyncWantMaster {
        group: grp(),
        member: member.to_string(),
        want,
    }
}

#[test]
fn sync_master_makes_backup_master_at_once() {
    let mut o = joined(v3(100, A), &["VI_2"]);
    let out = o.at(ms(500), sync_master("VI_2"));
    assert_eq!(
        out,
        become_master(State::Backup, sync_reason("VI_2", SyncEvent::Master), 100)
    );
    assert_eq!(o.next(), Some(ms(1500)));
    // Already MASTER: nothing (vrrp_sync_master skips MASTER members).
    assert_eq!(o.at(ms(600), sync_master("VI_2")), vec![]);
}

#[test]
fn sync_master_ignored_in_fault_with_own_cause() {
    let mut o = joined(v3(100, A), &["VI_2"]);
    o.at(ms(10), Input::Link { up: false });
    assert_eq!(o.at(ms(20), sync_master("VI_2")), vec![]);
    assert_eq!(o.vr.state(), State::Fault);
}

#[test]
fn sync_backup_leaves_master_without_priority_zero() {
    let mut o = joined(v3(100, A), &["VI_2"]);
    o.at(ms(10), sync_master("VI_2"));
    let out = o.at(ms(2000), sync_backup("VI_2"));
    // vrrp_state_leave_master(isync, false) with wantstate BACKUP: no priority 0 advert.
    assert_eq!(
        out,
        vec![
            Output::Transition {
                from: State::Master,
                to: State::Backup,
                reason: sync_reason("VI_2", SyncEvent::Backup),
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    // The Master_Down_Timer is re-armed from now.
    assert_eq!(o.next(), Some(ms(2000) + o.vr.master_down_interval()));
    // In Backup it changes nothing.
    assert_eq!(o.at(ms(2100), sync_backup("VI_2")), vec![]);
}

#[test]
fn sync_fault_enters_and_leaves_fault() {
    let mut o = joined(v3(100, A), &["VI_2"]);
    o.at(ms(10), sync_master("VI_2"));
    let out = o.at(ms(100), sync_fault("VI_2", true));
    assert_eq!(
        out,
        vec![
            Output::Transition {
                from: State::Master,
                to: State::Fault,
                reason: sync_reason("VI_2", SyncEvent::Fault),
            },
            // vrrp_sync_fault → vrrp_state_leave_master with wantstate FAULT: priority 0.
            Output::SendAdvert {
                priority: Priority::RELEASE,
            },
            Output::RemoveVips,
            Output::SetXdpOwnership(false),
        ]
    );
    assert_eq!(o.vr.sync_faults().collect::<Vec<_>>(), vec!["VI_2"]);
    assert!(!o.vr.sync_status().fault, "a sync fault is not our own");
    // Repeated: nothing.
    assert_eq!(o.at(ms(150), sync_fault("VI_2", true)), vec![]);
    let out = o.at(ms(200), sync_fault("VI_2", false));
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Fault,
            to: State::Backup,
            reason: sync_reason("VI_2", SyncEvent::Recovered),
        }]
    );
    assert_eq!(o.next(), Some(ms(200) + o.vr.master_down_interval()));
}

#[test]
fn sync_fault_recovery_needs_every_cause_cleared() {
    let mut o = joined(v3(100, A), &["VI_2", "VI_3"]);
    o.at(ms(10), sync_fault("VI_2", true));
    o.at(ms(20), Input::Link { up: false });
    o.at(ms(30), sync_fault("VI_3", true));
    o.at(ms(40), Input::Fault(true));
    assert!(o.vr.sync_status().fault);
    assert_eq!(o.at(ms(50), sync_fault("VI_2", false)), vec![]);
    assert_eq!(o.at(ms(60), Input::Link { up: true }), vec![]);
    assert_eq!(o.at(ms(70), Input::Fault(false)), vec![]);
    assert_eq!(o.vr.state(), State::Fault);
    let out = o.at(ms(80), sync_fault("VI_3", false));
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Fault,
            to: State::Backup,
            reason: sync_reason("VI_3", SyncEvent::Recovered),
        }]
    );
}

#[test]
fn sync_fault_before_startup_starts_in_fault() {
    let mut o = One::new(v3(100, A));
    o.at(
        Duration::ZERO,
        Input::SyncJoin {
            group: grp(),
            peers: vec!["VI_2".into()],
        },
    );
    o.at(Duration::ZERO, sync_fault("VI_2", true));
    let out = o.at(ms(1), Input::Startup);
    assert_eq!(
        out,
        vec![Output::Transition {
            from: State::Initialize,
            to: State::Fault,
            reason: sync_reason("VI_2", SyncEvent::Fault),
        }]
    );
    // Leaving the group clears the member's fault.
    let out = o.at(
        ms(2),
        Input::SyncJoin {
            group: grp(),
            peers: vec![],
        },
    );
    assert_eq!(o.vr.state(), State::Backup, "{out:?}");
}

#[test]
fn sync_master_from_fault_left_by_that_member() {
    // vrrp_sync_master moves a FAULT member too (vrrp_state_goto_master), whichever of
    // SyncFault(false) and SyncMaster arrives first.
    let mut o = joined(v3(100, A), &["VI_2"]);
    o.at(ms(10), sync_fault("VI_2", true));
    let out = o.at(ms(20), sync_master("VI_2"));
    assert_eq!(
        out,
        become_master(State::Fault, sync_reason("VI_2", SyncEvent::Master), 100)
    );
    assert_eq!(o.at(ms(30), sync_fault("VI_2", false)), vec![]);
}

#[test]
fn can_goto_master_holds_until_peers_want_master() {
    // keepalived vrrp_sync_can_goto_master: "Only sync to master if everyone wants to".
    let mut o = joined(v3(100, A), &["VI_2"]);
    let down = o.vr.master_down_interval();
    assert_eq!(o.next(), Some(down));
    assert_eq!(o.at(down, Input::Timeout), vec![]);
    assert_eq!(o.vr.state(), State::Backup);
    assert!(o.vr.sync_status().wants_master);
    assert_eq!(o.vr.counters().sync_held, 1);
    assert_eq!(o.next(), Some(down * 2));
    // An accepted advert: no longer wants MASTER (vrrp_state_backup sets wantstate BACKUP).
    o.rx(down + ms(100), B, adv(200));
    assert!(!o.vr.sync_status().wants_master);
    // Now the peer wants MASTER too: the next expiry goes.
    o.at(down + ms(200), want_master("VI_2", true));
    let t = o.next().unwrap_or_else(|| unreachable!());
    let out = o.at(t, Input::Timeout);
    assert!(matches!(
        out.first(),
        Some(Output::Transition {
            to: State::Master,
            reason: Reason::MasterDown { .. },
            ..
        })
    ));
    assert!(!o.vr.sync_status().wants_master);
}

#[test]
fn owner_in_sync_group_waits_for_the_group() {
    // vrrp_init_state takes the group's state: an owner with peers not wanting MASTER starts
    // BACKUP with the one-interval wait.
    let mut o = joined(v3(255, A), &["VI_2"]);
    assert_eq!(o.vr.state(), State::Backup);
    o.at(ms(1), want_master("VI_2", true));
    let t = o.next().unwrap_or_else(|| unreachable!());
    let out = o.at(t, Input::Timeout);
    assert!(matches!(
        out.first(),
        Some(Output::Transition {
            to: State::Master,
            ..
        })
    ));
}

/// Two routers in one sync group driven as the daemon does (see `proto::sync`).
struct Group {
    t0: Instant,
    groups: crate::proto::sync::SyncGroups,
    vrs: Vec<(String, VirtualRouter)>,
    /// Every transition, as (member, from, to, reason).
    log: Vec<(String, State, State, Reason)>,
}

impl Group {
    fn new(cfgs: Vec<(&str, VrConfig)>) -> Self {
        let t0 = base();
        let names: Vec<String> = cfgs.iter().map(|(n, _)| n.to_string()).collect();
        let groups = crate::proto::sync::SyncGroups::new([("G", names)]);
        let vrs = cfgs
            .into_iter()
            .map(|(n, c)| {
                let vr = VirtualRouter::new(c, t0).unwrap_or_else(|e| panic!("{e}"));
                (n.to_string(), vr)
            })
            .collect();
        let mut g = Self {
            t0,
            groups,
            vrs,
            log: Vec::new(),
        };
        for i in 0..g.vrs.len() {
            let name = g.vrs[i].0.clone();
            if let Some(join) = g.groups.join(&name) {
                g.feed(Duration::ZERO, &name, join);
            }
        }
        for i in 0..g.vrs.len() {
            let name = g.vrs[i].0.clone();
            g.feed(Duration::ZERO, &name, Input::Startup);
        }
        g
    }

    fn vr(&mut self, name: &str) -> &mut VirtualRouter {
        self.vrs
            .iter_mut()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
            .unwrap_or_else(|| unreachable!())
    }

    fn state(&mut self, name: &str) -> State {
        self.vr(name).state()
    }

    /// The daemon's loop: feed, propagate transitions and status changes until quiet.
    fn feed(&mut self, t: Duration, member: &str, input: Input) {
        let now = self.t0 + t;
        let mut queue = VecDeque::from([(member.to_string(), input)]);
        let mut steps = 0;
        while let Some((m, input)) = queue.pop_front() {
            steps += 1;
            assert!(steps < 100, "sync inputs do not converge");
            let groups = self.groups.clone();
            let vr = self.vr(&m);
            let before = vr.sync_status();
            vr.handle(now, input);
            let outs: Vec<Output> = std::iter::from_fn(|| vr.poll_output()).collect();
            let after = vr.sync_status();
            for o in &outs {
                if let Output::Transition { from, to, reason } = o {
                    self.log.push((m.clone(), *from, *to, reason.clone()));
                }
                queue.extend(groups.on_output(&m, o));
            }
            queue.extend(groups.on_status(&m, before, after));
        }
    }

    /// Fires every timer due up to `t`.
    fn until(&mut self, t: Duration) {
        let end = self.t0 + t;
        loop {
            let next = self
                .vrs
                .iter()
                .filter_map(|(n, v)| v.poll_timeout().map(|d| (d, n.clone())))
                .min();
            match next {
                Some((d, n)) if d <= end => self.feed(d - self.t0, &n, Input::Timeout),
                _ => break,
            }
        }
    }
}

fn sync_pair() -> Group {
    let mut c2 = v3(100, A);
    c2.vrid = Vrid::new(52).unwrap_or_else(|| unreachable!());
    Group::new(vec![("VI_1", v3(100, A)), ("VI_2", c2)])
}

#[test]
fn group_fault_and_recovery_move_both() {
    let mut g = sync_pair();
    // Both hear no master: the first expiry is held, the second goes and pulls the first.
    g.until(ms(10_000));
    assert_eq!(g.state("VI_1"), State::Master);
    assert_eq!(g.state("VI_2"), State::Master);
    g.log.clear();
    g.feed(ms(10_000), "VI_2", Input::Link { up: false });
    assert_eq!(g.state("VI_1"), State::Fault);
    assert_eq!(g.state("VI_2"), State::Fault);
    assert_eq!(
        g.log,
        vec![
            ("VI_2".into(), State::Master, State::Fault, Reason::LinkDown),
            (
                "VI_1".into(),
                State::Master,
                State::Fault,
                sync_reason("VI_2", SyncEvent::Fault)
            ),
        ]
    );
    // VI_1's own tracking fails, then VI_2's link returns: both stay FAULT (num_member_fault).
    g.feed(ms(11_000), "VI_1", Input::Fault(true));
    g.feed(ms(12_000), "VI_2", Input::Link { up: true });
    assert_eq!(g.state("VI_1"), State::Fault);
    assert_eq!(g.state("VI_2"), State::Fault);
    g.log.clear();
    g.feed(ms(13_000), "VI_1", Input::Fault(false));
    assert_eq!(g.state("VI_1"), State::Backup);
    assert_eq!(g.state("VI_2"), State::Backup);
    assert_eq!(
        g.log,
        vec![
            (
                "VI_1".into(),
                State::Fault,
                State::Backup,
                Reason::TrackRecovered
            ),
            (
                "VI_2".into(),
                State::Fault,
                State::Backup,
                sync_reason("VI_1", SyncEvent::Recovered)
            ),
        ]
    );
}

#[test]
fn group_follows_a_member_to_master_and_back() {
    let mut g = sync_pair();
    // A higher priority master for both VRIDs.
    let peer = |g: &mut Group, t: Duration| {
        for (n, vrid) in [("VI_1", 51), ("VI_2", 52)] {
            let mut a = adv(200);
            a.vrid = Vrid::new(vrid).unwrap_or_else(|| unreachable!());
            g.feed(
                t,
                n,
                Input::Advert {
                    src: B,
                    advert: a,
                    ttl: None,
                },
            );
        }
    };
    peer(&mut g, ms(1000));
    g.until(ms(2000));
    assert_eq!(g.state("VI_1"), State::Backup);
    // VI_1 stops hearing the master, VI_2 still hears it: VI_1 is held in Backup.
    let mut a = adv(200);
    a.vrid = Vrid::new(52).unwrap_or_else(|| unreachable!());
    for s in 2..12 {
        g.feed(
            ms(s * 1000),
            "VI_2",
            Input::Advert {
                ttl: None,
                src: B,
                advert: a.clone(),
            },
        );
        g.until(ms(s * 1000 + 999));
    }
    assert_eq!(g.state("VI_1"), State::Backup);
    assert_eq!(g.state("VI_2"), State::Backup);
    assert!(g.vr("VI_1").sync_status().wants_master);
    // Now VI_2 loses it too: VI_2 goes MASTER (VI_1 wants it) and VI_1 follows.
    g.log.clear();
    g.until(ms(20_000));
    assert_eq!(g.state("VI_1"), State::Master);
    assert_eq!(g.state("VI_2"), State::Master);
    assert_eq!(g.log.len(), 2, "{:?}", g.log);
    assert_eq!(g.log[0].0, "VI_2");
    assert!(matches!(g.log[0].3, Reason::MasterDown { .. }));
    assert_eq!(g.log[1].0, "VI_1");
    assert_eq!(g.log[1].3, sync_reason("VI_2", SyncEvent::Master));
    // The higher priority master returns on VI_1 only: VI_1 goes BACKUP, VI_2 follows.
    g.log.clear();
    g.feed(
        ms(20_500),
        "VI_1",
        Input::Advert {
            ttl: None,
            src: B,
            advert: adv(200),
        },
    );
    assert_eq!(g.state("VI_1"), State::Backup);
    assert_eq!(g.state("VI_2"), State::Backup);
    assert_eq!(g.log.len(), 2, "{:?}", g.log);
    assert!(matches!(g.log[0].3, Reason::HigherPriority { .. }));
    assert_eq!(
        g.log[1],
        (
            "VI_2".into(),
            State::Master,
            State::Backup,
            sync_reason("VI_1", SyncEvent::Backup)
        )
    );
}

#[test]
fn group_preempt_pulls_the_other_member() {
    // Both members preempt a lower priority master; the second expiry takes the group.
    let mut g = sync_pair();
    for (n, vrid) in [("VI_1", 51), ("VI_2", 52)] {
        let mut a = adv(50);
        a.vrid = Vrid::new(vrid).unwrap_or_else(|| unreachable!());
        g.feed(
            ms(100),
            n,
            Input::Advert {
                src: B,
                advert: a,
                ttl: None,
            },
        );
    }
    g.until(ms(10_000));
    assert_eq!(g.state("VI_1"), State::Master);
    assert_eq!(g.state("VI_2"), State::Master);
    let masters: Vec<_> = g.log.iter().filter(|l| l.2 == State::Master).collect();
    assert_eq!(masters.len(), 2);
    assert!(matches!(masters[0].3, Reason::Preempt { .. }));
    assert!(matches!(masters[1].3, Reason::SyncGroup { .. }));
}

// ---- heartbeat paths (vrrp_xdp_heartbeat) ----

/// Our and the peer's addresses on the heartbeat link (198.51.100.0/24, LAB.md's second LAN).
const HB_US: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
const HB_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2));

impl One {
    fn hb(&mut self, t: Duration, a: Advert) -> Vec<Output> {
        self.at(
            t,
            Input::HeartbeatAdvert {
                src: HB_PEER,
                local: HB_US,
                advert: a,
            },
        )
    }
}

#[test]
fn heartbeat_keeps_a_backup_while_the_primary_path_is_silent() {
    let mdi = us(3_609_375);
    let mut o = One::started(v3(100, A));
    o.rx(ms(1000), B, adv(200));
    assert_eq!(o.next(), Some(ms(1000) + mdi));
    // The primary path falls silent; the heartbeat path goes on, one advert a second.
    for s in 2..=20u64 {
        assert_eq!(o.hb(ms(s * 1000), adv(200)), vec![]);
        assert_eq!(o.next(), Some(ms(s * 1000) + mdi));
        assert_eq!(o.at(ms(s * 1000 + 999), Input::Timeout), vec![]);
    }
    assert_eq!(o.vr.state(), State::Backup);
    // Liveness only: the master is still the one the primary path told us of.
    assert_eq!(
        o.vr.master().map(|m| (m.addr, m.priority)),
        Some((B, Priority(200)))
    );
    let c = o.vr.counters();
    assert_eq!(
        (c.heartbeat_rx, c.heartbeat_restarts, c.adverts_rx),
        (19, 19, 1)
    );
    // Every path silent: master down one interval after the last heartbeat advert.
    let out = o.at(ms(20_000) + mdi, Input::Timeout);
    assert_eq!(
        out,
        become_master(State::Backup, Reason::MasterDown { after: mdi }, 100)
    );
}

#[test]
fn heartbeat_alone_keeps_a_backup_that_never_heard_the_primary_path() {
    let mut o = One::started(v3(100, A));
    for s in 1..=10u64 {
        o.hb(ms(s * 1000), adv(100));
        o.at(ms(s * 1000 + 999), Input::Timeout);
    }
    assert_eq!(o.vr.state(), State::Backup);
    assert_eq!(o.vr.master(), None, "a heartbeat never names the master");
}

#[test]
fn heartbeat_with_a_priority_we_would_preempt_restarts_nothing() {
    let mdi = us(3_609_375);
    let mut o = One::started(v3(100, A));
    o.hb(ms(1000), adv(50));
    o.hb(ms(2000), adv(50));
    assert_eq!(o.next(), Some(mdi), "the startup timer runs on");
    assert_eq!(o.vr.counters().heartbeat_lower_priority, 2);
    let out = o.at(mdi, Input::Timeout);
    assert_eq!(
        out[0],
        become_master(State::Backup, Reason::MasterDown { after: mdi }, 100)[0]
    );
    // Without preemption a lower priority keeps us Backup, as on the primary path.
    let mut c = v3(100, A);
    c.preempt = false;
    let mut o = One::started(c);
    o.hb(ms(1000), adv(50));
    assert_eq!(o.next(), Some(ms(1000) + mdi));
}

#[test]
fn heartbeat_priority_zero_sets_skew_time() {
    let mut o = One::started(v3(100, A));
    o.rx(ms(1000), B, adv(200));
    o.hb(ms(1500), adv(0));
    assert_eq!(o.next(), Some(ms(1500) + us(609_375)));
    let out = o.at(ms(1500) + us(609_375), Input::Timeout);
    assert_eq!(
        out,
        become_master(
            State::Backup,
            Reason::PriorityZeroReceived { src: HB_PEER },
            100
        )
    );
    assert_eq!(o.vr.counters().heartbeat_priority_zero_rx, 1);
}

#[test]
fn heartbeat_uses_the_adverts_longer_interval_without_learning_it() {
    let mut o = One::started(v3(100, A));
    let mut a = adv(200);
    a.interval = Centisecs(300);
    o.hb(ms(1000), a);
    let long = master_down_interval(Version::V3, Priority(100), Centisecs(300), 3);
    assert_eq!(o.next(), Some(ms(1000) + long));
    assert_eq!(o.vr.master_adver_int(), Centisecs(100));
}

#[test]
fn heartbeat_never_shortens_a_later_primary_restart() {
    let mut o = One::started(v3(100, A));
    let mut a = adv(200);
    a.interval = Centisecs(300);
    // Learned on the primary path: a long Master_Down_Interval.
    o.rx(ms(1000), B, a);
    let long = master_down_interval(Version::V3, Priority(100), Centisecs(300), 3);
    assert_eq!(o.next(), Some(ms(1000) + long));
    // A heartbeat advert with a short interval at about the same time.
    let mut short = adv(200);
    short.interval = Centisecs(10);
    o.hb(ms(1001), short);
    assert_eq!(o.next(), Some(ms(1001) + long), "not earlier");
}

#[test]
fn heartbeat_adverts_pass_the_receive_checks() {
    let mut o = One::started(cfg(Version::V2, 100, A));
    o.rx(ms(100), B, advert_from(&cfg(Version::V2, 200, B), 200));
    let before = o.next();
    // Wrong VRID, wrong version, our own heartbeat address: dropped, nothing restarted.
    let mut wrong_vrid = advert_from(&cfg(Version::V2, 200, B), 200);
    wrong_vrid.vrid = Vrid::new(52).unwrap_or_else(|| unreachable!());
    let out = o.hb(ms(200), wrong_vrid);
    assert!(matches!(out[..], [Output::Dropped { .. }]), "{out:?}");
    let out = o.hb(ms(300), adv(200));
    assert!(matches!(out[..], [Output::Dropped { .. }]), "{out:?}");
    let out = o.at(
        ms(400),
        Input::HeartbeatAdvert {
            src: HB_US,
            local: HB_US,
            advert: advert_from(&cfg(Version::V2, 200, B), 200),
        },
    );
    assert_eq!(
        out,
        vec![Output::Dropped {
            src: HB_US,
            reason: DropReason::OwnAddress
        }]
    );
    assert_eq!(o.next(), before);
    assert_eq!(o.vr.counters().heartbeat_rx, 0);
}

#[test]
fn heartbeat_is_ignored_in_fault() {
    let mut o = One::started(v3(100, A));
    o.at(ms(10), Input::Link { up: false });
    assert_eq!(o.hb(ms(20), adv(200)), vec![]);
    assert_eq!(o.vr.state(), State::Fault);
    assert_eq!(o.vr.counters().ignored_not_running, 1);
}

#[test]
fn a_master_hearing_another_master_only_on_the_heartbeat_stays_and_reports_it() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    // One advert: an ordinary takeover looks like this until the primary path settles it.
    assert_eq!(o.hb(t, adv(200)), vec![]);
    // The second: a second master.
    let out = o.hb(t + ms(1000), adv(200));
    assert_eq!(
        out,
        vec![Output::HeartbeatMaster {
            src: HB_PEER,
            priority: Priority(200),
            better: true
        }]
    );
    assert_eq!(o.vr.state(), State::Master, "liveness only: no yielding");
    // Every further advert keeps the episode alive; lower priority is reported too.
    let out = o.hb(t + ms(2000), adv(50));
    assert_eq!(
        out,
        vec![Output::HeartbeatMaster {
            src: HB_PEER,
            priority: Priority(50),
            better: false
        }]
    );
    // Equal priority: the heartbeat addresses decide (198.51.100.2 > 198.51.100.1).
    let out = o.hb(t + ms(3000), adv(100));
    assert!(matches!(
        out[..],
        [Output::HeartbeatMaster { better: true, .. }]
    ));
    let out = o.at(
        t + ms(4000),
        Input::HeartbeatAdvert {
            src: HB_US,
            local: HB_PEER,
            advert: adv(100),
        },
    );
    assert!(matches!(
        out[..],
        [Output::HeartbeatMaster { better: false, .. }]
    ));
    assert_eq!(o.vr.counters().heartbeat_conflicts, 4);
}

#[test]
fn heartbeat_conflict_needs_adverts_within_a_master_down_interval() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    assert_eq!(o.hb(t, adv(200)), vec![]);
    // Long apart: two separate takeovers, not one persisting second master.
    assert_eq!(o.hb(t + ms(10_000), adv(200)), vec![]);
    // Priority 0: the other master left.
    assert_eq!(o.hb(t + ms(10_500), adv(0)), vec![]);
    assert_eq!(o.hb(t + ms(11_000), adv(200)), vec![]);
    assert_eq!(o.vr.counters().heartbeat_conflicts, 0);
}

#[test]
fn a_master_yields_on_the_primary_path_only() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    o.hb(t, adv(200));
    assert_eq!(o.vr.state(), State::Master);
    o.rx(t + ms(1), C, advert_from(&v3(200, C), 200));
    assert_eq!(o.vr.state(), State::Backup);
    // The conflict ended with the Master episode; as Backup the heartbeat restarts the timer.
    o.hb(t + ms(500), adv(200));
    assert_eq!(o.vr.counters().heartbeat_conflicts, 0);
    assert_eq!(o.vr.counters().heartbeat_restarts, 1);
}

#[test]
fn a_resigning_master_waits_for_the_new_master_on_the_primary_path() {
    let mut o = master(100);
    let t = o.next().unwrap_or_default();
    o.at(t, Input::Resign { exit: false });
    o.hb(t + ms(100), adv(200));
    o.hb(t + ms(200), adv(200));
    assert_eq!(
        o.vr.state(),
        State::Master,
        "a heartbeat advert hands nothing over"
    );
    assert_eq!(o.vr.counters().heartbeat_conflicts, 0);
    o.rx(t + ms(300), C, advert_from(&v3(200, C), 200));
    assert_eq!(o.vr.state(), State::Backup);
}

// ---- RFC 9568 §8.4: VRRPv2 interoperation (checklist item 58) ----

fn interop(prio: u8, primary: IpAddr) -> VrConfig {
    let mut c = v3(prio, primary);
    c.v2_interop = true;
    c
}

fn v2_adv(prio: u8) -> Advert {
    advert_from(&cfg(Version::V2, prio, B), prio)
}

#[test]
fn rfc9568_8_4_interop_backup_follows_a_v2_only_master_and_times_out_on_its_rate() {
    // A v2 keepalived master, this node upgraded to v3: no dual master while the v2 one lives.
    let mut plain = One::started(v3(50, A));
    let out = plain.rx(ms(500), B, v2_adv(100));
    assert!(
        out.iter().any(|o| matches!(
            o,
            Output::Dropped {
                reason: DropReason::VersionMismatch { .. },
                ..
            }
        )),
        "plain v3 drops v2: {out:?}"
    );
    let mut o = One::started(interop(50, A));
    for k in 0..5u64 {
        let out = o.rx(ms(500 + 1000 * k), B, v2_adv(100));
        assert!(
            !out.iter().any(|x| matches!(x, Output::Dropped { .. })),
            "{out:?}"
        );
        assert_eq!(o.vr.state(), State::Backup);
    }
    // Master_Down_Interval on the v2 master's rate: 3 x 1 s + skew (256-50)/256 s.
    let down = ms(4500) + us(3_804_688);
    assert_eq!(o.next().map(|d| d.as_millis()), Some(down.as_millis()));
    o.at(down - ms(10), Input::Timeout);
    assert_eq!(o.vr.state(), State::Backup);
    o.at(down, Input::Timeout);
    assert_eq!(o.vr.state(), State::Master);
}

#[test]
fn rfc9568_8_4_v2_from_a_router_that_also_sends_v3_is_ignored() {
    let mut o = One::started(interop(50, A));
    o.rx(ms(500), B, adv(100));
    // Its v2 copy says priority 100 too, but even a different one must not count.
    let out = o.rx(ms(501), B, v2_adv(200));
    assert!(
        out.contains(&Output::Dropped {
            src: B,
            reason: DropReason::V2FromV3Sender,
        }),
        "{out:?}"
    );
    assert_eq!(o.vr.counters().dropped_v2_from_v3, 1);
    // A v2-only router beside it is still heard.
    let out = o.rx(ms(502), C, v2_adv(10));
    assert!(
        !out.iter().any(|x| matches!(x, Output::Dropped { .. })),
        "{out:?}"
    );
}

#[test]
fn rfc9568_8_4_interop_needs_v3_ipv4_and_whole_seconds() {
    let mut c = interop(50, A);
    assert_eq!(c.validate(), Ok(()));
    c.interval = Centisecs(50);
    assert_eq!(c.validate(), Err(ConfigError::V2Interop));
    let mut c = cfg(Version::V2, 50, A);
    c.v2_interop = true;
    assert_eq!(c.validate(), Err(ConfigError::V2Interop));
}

/// RFC 9568 erratum 8300 (§7.1): an IPv6 advert whose first address is not link-local is
/// invalid. With `first_address_link_local` (vrrp_strict) it is discarded, counted, and the
/// backup times out as if nothing was heard; without it (keepalived's default, which sends
/// such lists) it is processed, counted and warned about.
#[test]
fn erratum_8300_first_ipv6_address_not_link_local() {
    let ll: IpAddr = "fe80::51".parse().unwrap_or(VIP);
    let global: IpAddr = "2001:db8::51".parse().unwrap_or(VIP);
    let (a6, b6): (IpAddr, IpAddr) = (
        "fe80::1".parse().unwrap_or(VIP),
        "fe80::2".parse().unwrap_or(VIP),
    );
    let v6 = |strict: bool| {
        let mut c = v3(100, a6);
        c.family = Family::V6;
        c.addresses = vec![ll, global];
        c.first_address_link_local = strict;
        c
    };
    let bad = |c: &VrConfig| {
        let mut a = advert_from(c, 200);
        a.addresses = vec![global, ll];
        a
    };
    // Strict: dropped with its reason, the master-down timer from startup runs out.
    let c = v6(true);
    let mut o = One::started(c.clone());
    let down = o.next();
    let out = o.rx(ms(1000), b6, bad(&c));
    assert_eq!(
        out,
        vec![Output::Dropped {
            src: b6,
            reason: DropReason::FirstAddressNotLinkLocal
        }]
    );
    assert_eq!(o.next(), down, "the master-down timer was not restarted");
    assert_eq!(o.vr.counters().dropped_first_not_link_local, 1);
    assert_eq!(o.vr.master(), None);
    // A link-local first address passes.
    let mut good = bad(&c);
    good.addresses = vec![ll, global];
    assert_eq!(o.rx(ms(1100), b6, good), vec![]);
    assert_eq!(o.vr.master().map(|m| m.addr), Some(b6));
    // Not strict: processed (keepalived peers send such lists), counted and warned about.
    let c = v6(false);
    let mut o = One::started(c.clone());
    let out = o.rx(ms(1000), b6, bad(&c));
    assert!(
        out.contains(&Output::Warning {
            src: b6,
            warning: RxWarning::FirstAddressNotLinkLocal
        }),
        "{out:?}"
    );
    assert_eq!(o.vr.counters().first_not_link_local, 1);
    assert_eq!(o.vr.master().map(|m| m.addr), Some(b6));
    // IPv4 adverts have no such rule.
    let mut o = One::started(v3(100, A));
    assert_eq!(o.rx(ms(1000), B, adv(200)), vec![]);
    assert_eq!(o.vr.counters().first_not_link_local, 0);
}
