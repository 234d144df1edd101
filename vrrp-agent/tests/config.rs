//! keepalived.conf reader: the seed configurations, every keyword, broken files with their
//! exact error location, warnings, include, and a never-panics property.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use vrrp_agent::config::{self, ConfigError, InitialState, Loaded, XdpMode};
use vrrp_agent::proto::{Auth, Centisecs, Family, Priority, Version};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/config")
        .join(rel)
}

fn load(rel: &str) -> Loaded {
    let path = data(rel);
    match config::load(&path) {
        Ok(l) => l,
        Err(e) => panic!("{} should load: {e}", path.display()),
    }
}

fn pass(p: &[u8]) -> Auth {
    let mut a = [0u8; 8];
    a[..p.len()].copy_from_slice(p);
    Auth::Pass(a)
}

fn warnings(l: &Loaded) -> Vec<String> {
    l.warnings.iter().map(|w| w.to_string()).collect()
}

#[test]
fn seed_single_instance_lb01() {
    let l = load("seed-lb01.conf");
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("lb01"));
    assert_eq!(c.instances.len(), 1);
    let i = &c.instances[0];
    assert_eq!(i.name, "VI_1");
    assert_eq!(i.state, InitialState::Backup);
    assert_eq!(i.interface, "eth0");
    assert_eq!(i.vrid.get(), 51);
    assert_eq!(i.priority, Priority(50));
    assert_eq!(i.advert_int, Centisecs(100));
    assert_eq!(i.version, Version::V2);
    assert_eq!(i.family, Family::V4);
    assert_eq!(i.auth, pass(b"1111"));
    assert!(i.preempt);
    assert!(i.accept, "keepalived's default outside strict mode");
    assert_eq!(i.vips.len(), 1);
    let v = &i.vips[0];
    assert_eq!(v.addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)));
    assert_eq!(v.prefix_len, 24);
    assert_eq!(v.dev.as_deref(), Some("eth0"));
    assert_eq!(v.label.as_deref(), Some("eth0:3"));
    assert_eq!((v.span.line, v.span.col), (10, 25));
    assert_eq!((i.span.line, i.span.col), (3, 15));
    assert!(i.defaulted.version && !i.defaulted.priority && !i.defaulted.advert_int);
    // `auth_type PASS  auth_pass 1111` on one line: keepalived would drop auth_pass.
    let w = warnings(&l);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].ends_with("seed-lb01.conf:9:38: 'auth_pass' on the same line as 'auth_type': keepalived reads only the first keyword of a line and ignores the rest; vrrp-agent reads both"), "{w:?}");
}

#[test]
fn seed_single_instance_lb02() {
    let l = load("seed-lb02.conf");
    let i = &l.config.instances[0];
    assert_eq!(l.config.global.router_id.as_deref(), Some("lb02"));
    assert_eq!(i.state, InitialState::Master);
    assert_eq!(i.priority, Priority(100));
    assert_eq!(i.vrid.get(), 51);
    assert_eq!(i.auth, pass(b"1111"));
}

#[test]
fn seed_dual_master() {
    for (file, router, s1, p1, s2, p2) in [
        (
            "seed-dual-lb01.conf",
            "lb01",
            InitialState::Backup,
            50,
            InitialState::Master,
            150,
        ),
        (
            "seed-dual-lb02.conf",
            "lb02",
            InitialState::Master,
            100,
            InitialState::Backup,
            50,
        ),
    ] {
        let l = load(file);
        let c = &l.config;
        assert_eq!(c.global.router_id.as_deref(), Some(router));
        assert_eq!(c.instances.len(), 2, "{file}");
        let (a, b) = (&c.instances[0], &c.instances[1]);
        assert_eq!(
            (a.name.as_str(), a.state, a.priority),
            ("VI_1", s1, Priority(p1))
        );
        assert_eq!(
            (b.name.as_str(), b.state, b.priority),
            ("VI_2", s2, Priority(p2))
        );
        assert_eq!((a.vrid.get(), b.vrid.get()), (51, 52));
        assert_eq!(
            (a.interface.as_str(), b.interface.as_str()),
            ("eth0", "eth0")
        );
        assert_eq!(a.advert_int, Centisecs(100));
        assert_eq!(a.auth, pass(b"1111"));
        assert_eq!(b.auth, pass(b"1111"));
        assert_eq!(a.vips[0].addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)));
        assert_eq!(b.vips[0].addr, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 4)));
        assert_eq!(b.vips[0].label.as_deref(), Some("eth0:4"));
        // One warning per line holding several keywords: the two `state ...` lines and
        // the two authentication lines.
        assert_eq!(l.warnings.len(), 4, "{:?}", warnings(&l));
        assert_eq!((l.warnings[0].span.line, l.warnings[0].span.col), (3, 35));
    }
}

#[test]
fn seed_track_script_with_glued_brace_and_comments() {
    let l = load("seed-track-lb01.conf");
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("lb01"));
    let s = &c.scripts[0];
    assert_eq!(s.name, "chk_nginx_proxy");
    assert_eq!(s.command.argv, ["/server/scripts/chk_nginx_proxy.sh"]);
    assert_eq!(s.interval, Duration::from_secs(2));
    assert_eq!(s.weight.value, 2);
    assert!(!s.weight.reverse);
    assert_eq!((s.rise, s.fall), (1, 1));
    let i = &c.instances[0];
    assert_eq!(i.state, InitialState::Backup);
    assert_eq!(i.interface, "eth0");
    assert_eq!(i.vrid.get(), 51);
    assert_eq!(i.priority, Priority(50));
    assert_eq!(i.track_scripts.len(), 1);
    assert_eq!(i.track_scripts[0].name, "chk_nginx_proxy");
    assert_eq!(i.track_scripts[0].weight, None);
}

#[test]
fn every_keyword() {
    let l = load("full.conf");
    let c = &l.config;
    let g = &c.global;
    assert_eq!(g.router_id.as_deref(), Some("full"));
    assert_eq!(g.vrrp_version, Version::V3);
    assert_eq!(g.garp.master_delay, Duration::from_secs(2));
    assert_eq!(g.garp.master_repeat, 3);
    assert_eq!(g.garp.master_refresh, Duration::from_secs(60));
    assert_eq!(g.garp.master_refresh_repeat, 2);
    assert_eq!(g.garp_interval, Duration::from_millis(1));
    assert_eq!(g.gna_interval, Duration::from_millis(2));
    assert!(g.skip_check_adv_addr && g.enable_script_security && !g.strict);
    assert_eq!(
        g.script_user.as_ref().map(|u| u.user.as_str()),
        Some("nobody")
    );
    assert_eq!(g.xdp.metrics, Some("127.0.0.1:9650".parse().unwrap()));
    assert_eq!(g.xdp.mode, XdpMode::Generic);

    let s = &c.scripts[0];
    assert_eq!(
        s.command.argv,
        ["/usr/bin/curl", "-sf", "http://127.0.0.1/health check"]
    );
    assert_eq!(
        (s.interval, s.timeout),
        (Duration::from_secs(3), Duration::from_secs(2))
    );
    assert_eq!((s.weight.value, s.weight.reverse), (-20, true));
    assert_eq!((s.rise, s.fall, s.init_fail), (2, 3, true));
    assert_eq!(
        s.command.user.as_ref().unwrap().group.as_deref(),
        Some("www-data")
    );

    let f = &c.track_files[0];
    assert_eq!(f.path, Path::new("/run/maint"));
    assert_eq!(f.weight.value, -10);
    assert_eq!(f.init_file.map(|i| (i.value, i.overwrite)), Some((0, true)));
    let p = &c.track_processes[0];
    assert_eq!((p.process.as_str(), p.weight.value), ("/usr/sbin/nginx", 5));
    assert_eq!(p.delay, Duration::from_millis(500));

    let v4 = &c.instances[0];
    assert_eq!(v4.interface, "eth1", "$IF substituted");
    assert_eq!(v4.version, Version::V3, "global vrrp_version");
    assert_eq!(v4.advert_int, Centisecs(50));
    assert_eq!(v4.state, InitialState::Master);
    assert_eq!(v4.priority, Priority(200));
    assert!(!v4.preempt || v4.state == InitialState::Master);
    assert_eq!(v4.vips.len(), 2);
    assert_eq!(v4.vips[0].broadcast, Some(Ipv4Addr::new(198, 51, 100, 255)));
    assert_eq!(
        v4.vips[0].dev.as_deref(),
        Some("eth1"),
        "${{IF}} substituted"
    );
    assert_eq!(v4.vips[0].scope, Some(0));
    assert_eq!(v4.vips[1].prefix_len, 32);
    assert_eq!(
        v4.excluded_vips[0].addr,
        "2001:db8::10".parse::<IpAddr>().unwrap()
    );
    assert_eq!(v4.unicast_src, Some("198.51.100.2".parse().unwrap()));
    assert_eq!(v4.unicast_peers[0].min_ttl, 250);
    assert_eq!(v4.garp.master_delay, Duration::from_secs(1));
    assert_eq!(v4.garp.master_repeat, 2);
    assert_eq!(v4.garp.master_refresh, Duration::from_secs(30));
    assert_eq!(v4.garp.master_refresh_repeat, 4);
    let vmac = v4.vmac.as_ref().unwrap();
    assert_eq!(
        (vmac.name.as_deref(), vmac.xmit_base),
        (Some("vrrp.10"), true)
    );
    assert!(!v4.accept && v4.dont_track_primary && v4.v3_checksum_as_v2);
    assert_eq!(v4.track_interfaces.len(), 2);
    assert_eq!(v4.track_interfaces[0].weight.map(|w| w.value), Some(-30));
    assert_eq!(v4.track_scripts[0].weight.map(|w| w.value), Some(10));
    assert_eq!(v4.track_files[0].name, "maint");
    assert_eq!(v4.track_processes[0].weight.map(|w| w.reverse), Some(false));
    let m = v4.notify.master.as_ref().unwrap();
    assert_eq!(m.argv, ["/etc/keepalived/notify.sh", "master"]);
    assert_eq!(m.user.as_ref().unwrap().user, "root");
    assert_eq!(
        v4.notify.backup.as_ref().unwrap().argv,
        ["/etc/keepalived/backup.sh"]
    );
    assert!(v4.notify.any.is_some());

    let v6 = &c.instances[1];
    assert_eq!((v6.family, v6.version), (Family::V6, Version::V3));
    assert!(v6.native_ipv6);
    assert!(v6.vips[1].no_track);
    assert!(v6.defaulted.priority && v6.defaulted.state && v6.defaulted.advert_int);
    assert_eq!(
        (v6.priority, v6.state),
        (Priority(100), InitialState::Backup)
    );

    let sg = &c.sync_groups[0];
    assert_eq!(
        sg.instances
            .iter()
            .map(|i| i.0.as_str())
            .collect::<Vec<_>>(),
        ["V4", "V6"]
    );
    assert!(sg.notify.fault.is_some());

    // The LVS block (while reading), then nopreempt with state MASTER (keepalived clears
    // it while completing the instance).
    let w = warnings(&l);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[1].contains("full.conf:58:5: nopreempt does not work with initial state MASTER"),
        "{w:?}"
    );
    assert!(
        w[0].ends_with(
            "full.conf:117:1: 'virtual_server' not handled by vrrp-agent: keepalived's LVS part"
        ),
        "{w:?}"
    );
}

/// Each file in bad/ starts with `# expect: LINE:COL: message` ({file} = its own path).
#[test]
fn broken_configs_fail_at_the_right_place() {
    let dir = data("bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let shown = path.display().to_string();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{shown}: no expectation line"))
            .replace("{file}", &shown);
        match config::load(&path) {
            Ok(l) => panic!("{shown} should fail; warnings: {:?}", warnings(&l)),
            Err(e @ ConfigError::Invalid { .. }) => {
                assert_eq!(e.to_string(), format!("{shown}:{expect}"))
            }
            Err(e) => panic!("{shown}: unexpected {e}"),
        }
    }
}

#[test]
fn unknown_keyword_warns_and_skips_its_block() {
    let text = "vrrp_instance VI_1 {\n    interface eth0\n    frobnicate 1 {\n        priority 7\n        nested { x }\n    }\n    virtual_router_id 9\n    virtual_ipaddress { 192.0.2.9 }\n}\nbogus_root\n";
    let l = config::parse_str(text, "t.conf").unwrap();
    let w = warnings(&l);
    assert_eq!(
        w,
        [
            "t.conf:3:5: unknown keyword 'frobnicate' - ignored",
            "t.conf:10:1: unknown keyword 'bogus_root' - ignored",
        ]
    );
    let i = &l.config.instances[0];
    assert_eq!(
        i.priority,
        Priority(100),
        "the skipped block's priority is not read"
    );
    assert_eq!(i.vrid.get(), 9);
}

#[test]
fn include_glob_relative_to_including_file() {
    let l = load("include/main.conf");
    let c = &l.config;
    assert_eq!(c.global.router_id.as_deref(), Some("inc"));
    let names: Vec<_> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        ["VI_1", "VI_2"],
        "sorted glob order, .bak not matched"
    );
    let span = &c.instances[1].span;
    assert!(span.file.ends_with("conf.d/20-vi2.conf"), "{span}");
    assert_eq!((span.line, span.col), (1, 15));
    let w = warnings(&l);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].ends_with("main.conf:5:1: include missing-*.conf: no file matches"),
        "{w:?}"
    );
}

#[test]
fn strict_include_of_a_missing_file_is_an_error() {
    let e = config::parse_str("includer /nonexistent/x.conf\n", "s.conf").unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.conf:1:1: include /nonexistent/x.conf: no file matches"
    );
}

fn one(text: &str) -> Loaded {
    match config::parse_str(text, "x.conf") {
        Ok(l) => l,
        Err(e) => panic!("should parse: {e}"),
    }
}

const HEAD: &str = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n";

#[test]
fn advert_int_rounding_mirrors_keepalived() {
    // v2: whole seconds, rounded with a warning.
    let l = one(&format!(
        "{HEAD} advert_int 1.5\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].advert_int, Centisecs(200));
    assert_eq!(
        warnings(&l),
        ["x.conf:4:13: VRRPv2 advert_int must be whole seconds - rounded to 2, as keepalived does"]
    );
    let l = one(&format!(
        "{HEAD} advert_int 0.2\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(
        l.config.instances[0].advert_int,
        Centisecs(100),
        "never rounded to 0"
    );
    // v3: centiseconds; 0.01 is one.
    let l = one(&format!(
        "{HEAD} version 3\n advert_int 0.01\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].advert_int, Centisecs(1));
    assert!(l.warnings.is_empty());
    let l = one(&format!(
        "{HEAD} version 3\n advert_int 0.015\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].advert_int, Centisecs(2));
    assert_eq!(l.warnings.len(), 1);
    let l = one(&format!(
        "{HEAD} version 3\n advert_int 60\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].advert_int, Centisecs::V3_MAX);
}

#[test]
fn keepalived_defaults_and_completion() {
    // No priority + MASTER → 255 (vrrp_complete_instance); version 2 default.
    let l = one(&format!(
        "{HEAD} state MASTER\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    let i = &l.config.instances[0];
    assert_eq!((i.priority, i.version), (Priority::OWNER, Version::V2));
    assert!(i.defaulted.priority);
    // Priority 255 without state → MASTER.
    let l = one(&format!(
        "{HEAD} priority 255\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].state, InitialState::Master);
    // IPv6 VIPs → version 3 even with global vrrp_version 2.
    let l = one(&format!(
        "{HEAD} virtual_ipaddress {{ fe80::1/64\n 2001:db8::1/64 }}\n}}\n"
    ));
    let i = &l.config.instances[0];
    assert_eq!((i.family, i.version), (Family::V6, Version::V3));
    // Long password: truncated to 8 with a warning; v3 + auth: dropped with a warning.
    let l = one(&format!(
        "{HEAD} authentication {{\n auth_type PASS\n auth_pass 0123456789\n }}\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].auth, pass(b"01234567"));
    assert_eq!(
        warnings(&l),
        ["x.conf:6:12: auth_pass is longer than 8 characters - truncated, as keepalived does"]
    );
    let l = one(&format!(
        "{HEAD} version 3\n authentication {{\n auth_type PASS\n auth_pass x\n }}\n virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].auth, Auth::None);
    // Strict mode: no accept for a backup.
    let l = one(&format!(
        "global_defs {{ vrrp_strict }}\n{HEAD} virtual_ipaddress {{ 192.0.2.1 }}\n}}\n"
    ));
    assert!(!l.config.instances[0].accept && l.config.instances[0].strict);
}

#[test]
fn lexer_corners() {
    // `!` comments, quoted words with braces, `{` on the next line, definitions.
    let text = "! comment\n$PRIO=42\nvrrp_script s {\n script \"/bin/echo '}{'\" ! trailing\n}\nvrrp_instance A\n{\n interface eth0 # c\n virtual_router_id 1\n priority $PRIO\n virtual_ipaddress {\n 192.0.2.1\n }\n track_script {\n s weight -254\n }\n}\n";
    let l = one(text);
    assert_eq!(l.config.scripts[0].command.argv, ["/bin/echo", "}{"]);
    let i = &l.config.instances[0];
    assert_eq!(i.priority, Priority(42));
    assert_eq!(
        i.track_scripts[0].weight.map(|w| w.value),
        Some(-253),
        "±254 clamped as keepalived"
    );
    assert_eq!(l.warnings.len(), 1);
}

#[test]
fn foreign_blocks_warn_once() {
    let text = "static_ipaddress {\n 192.0.2.50/24 dev eth0\n}\nvirtual_server_group G {\n 192.0.2.1 80\n}\n";
    let l = one(text);
    assert_eq!(
        warnings(&l),
        [
            "x.conf:1:1: 'static_ipaddress' not handled by vrrp-agent: keepalived's static addresses, routes and rules",
            "x.conf:4:1: 'virtual_server_group' not handled by vrrp-agent: keepalived's LVS part",
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC*") {
        let _ = config::parse_str(&s, "fuzz.conf");
    }

    #[test]
    fn parse_never_panics_on_arbitrary_lines(s in "([ -~\t]{0,40}\n){0,30}") {
        let _ = config::parse_str(&s, "fuzz.conf");
    }
}

proptest! {
    // Fewer cases: generating these vectors is slow in debug builds, parsing is not.
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_keyword_soup(words in proptest::collection::vec(prop_oneof![
        Just("vrrp_instance"), Just("VI"), Just("{"), Just("}"), Just("\n"), Just("interface"),
        Just("eth0"), Just("virtual_router_id"), Just("1"), Just("300"), Just("priority"),
        Just("advert_int"), Just("0.01"), Just("virtual_ipaddress"), Just("192.0.2.1/24"),
        Just("fe80::1"), Just("brd"), Just("+"), Just("track_script"), Just("weight"),
        Just("vrrp_script"), Just("script"), Just("\""), Just("#"), Just("$X=1"), Just("$X"),
        Just("include"), Just("vrrp_sync_group"), Just("group"), Just("authentication"),
        Just("auth_type"), Just("PASS"), Just("auth_pass"), Just("state"), Just("MASTER"),
        Just("version"), Just("3"), Just("unicast_peer"), Just("@^x"), Just("global_defs"),
    ], 0..80)) {
        let _ = config::parse_str(&words.join(" "), "soup.conf");
    }
}
