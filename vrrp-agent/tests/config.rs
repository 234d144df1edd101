//! keepalived.conf reader: the seed configurations, every keyword, broken files with their
//! exact error location, warnings, include, and a never-panics property.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use vrrp_agent::config::{
    self, BuiltinCheck, BuiltinKind, ConfigError, HttpCheck, InitialState, Loaded, XdpMode,
};
use vrrp_agent::proto::{Auth, Centisecs, Family, Priority, Version};

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/config")
        .join(rel)
}

/// The parser's view only: the security findings about the scripts these files name depend
/// on the host (tests/security.rs tests them).
fn load(rel: &str) -> Loaded {
    let path = data(rel);
    match config::load(&path) {
        Ok(mut l) => {
            l.warnings
                .retain(|w| !w.message.starts_with(vrrp_agent::security::PREFIX));
            l
        }
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
    assert!(v4.unicast_peers[0].ttl_given);
    assert_eq!(v4.unicast_ttl, Some(64));
    assert!(
        v4.check_unicast_src,
        "min_ttl turns it on, as in keepalived"
    );
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

    // While reading: the keywords without effect, each at its place, the LVS block; then the
    // one list of mail keywords; then nopreempt with state MASTER (keepalived clears it while
    // completing the instance).
    let w = warnings(&l);
    let expect = [
        "full.conf:20:5: 'vrrp_skip_check_adv_addr' has no effect in vrrp-agent",
        "full.conf:77:5: 'no_accept' is only partly supported by vrrp-agent",
        "full.conf:78:5: 'dont_track_primary' has no effect in vrrp-agent",
        "full.conf:96:5: 'debug' is not supported by vrrp-agent",
        "full.conf:118:1: 'virtual_server' not handled by vrrp-agent: keepalived's LVS part",
        "full.conf:4:5: no effect in vrrp-agent (mail, SNMP, DBus, process tuning or LVS \
         settings, not VRRP behaviour) - ignored: notification_email (line 4), \
         notification_email_from (line 7), smtp_server (line 8), smtp_connect_timeout (line 9), \
         smtp_alert (line 95)",
        "full.conf:58:5: nopreempt does not work with initial state MASTER",
    ];
    assert_eq!(w.len(), expect.len(), "{w:?}");
    for (w, e) in w.iter().zip(expect) {
        assert!(w.contains(e), "{w:?} should contain {e:?}");
    }
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

#[test]
fn sandboxed_parse_refuses_includes_and_reads_the_rest_alike() {
    // Plain `include` only warns about a missing file; here any include is an error, so that
    // untrusted text (the fuzzer's) reads no file at all.
    let e = config::parse_str_sandboxed("include /etc/*\n", "s.conf").unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.conf:1:1: include /etc/*: includes are not read here"
    );
    let text = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n priority 100\n \
                virtual_ipaddress {\n 192.0.2.3/24\n }\n}\n";
    let sandboxed = config::parse_str_sandboxed(text, "s.conf").unwrap();
    let plain = config::parse_str(text, "s.conf").unwrap();
    assert_eq!(
        format!("{:?}", sandboxed.config),
        format!("{:?}", plain.config)
    );
    assert_eq!(sandboxed.warnings, plain.warnings);
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

#[test]
fn builtin_checks_notify_fifo_and_track_script_resolution() {
    let l = load("checks.conf");
    let c = &l.config;
    assert_eq!(
        c.global.notify_fifo.as_deref(),
        Some(Path::new("/run/keepalived/notify.fifo"))
    );
    assert_eq!(
        c.global.notify_json.as_deref(),
        Some(Path::new("/run/vrrp-xdp/events.json"))
    );
    assert_eq!(c.checks.len(), 3);

    let web = &c.checks[0];
    let mut want = HttpCheck::from_url("http://192.0.2.10:8080/health").unwrap();
    want.expect_status = 204;
    want.expect_body = Some("ok".into());
    want.host = "www.example.com".into();
    assert_eq!(web.name, "chk_web");
    assert_eq!(web.kind, BuiltinKind::Http(want));
    assert_eq!(
        (web.interval, web.timeout),
        (Duration::from_secs(2), Duration::from_millis(1500))
    );
    assert_eq!((web.rise, web.fall, web.init_fail), (2, 3, true));
    assert_eq!((web.weight.value, web.weight.reverse), (-20, true));

    // One line: the keywords are all read (with keepalived's one-keyword-per-line warning).
    let db = &c.checks[1];
    let mut want = BuiltinCheck::new(
        "chk_db",
        BuiltinKind::Tcp {
            addr: "192.0.2.20:5432".parse().unwrap(),
        },
    );
    want.fall = 3;
    assert_eq!(db, &want);

    // Defaults: BuiltinCheck::new's (vrrp_script's), and the URL's port, path and Host.
    let v6 = &c.checks[2];
    let want = BuiltinCheck::new(
        "chk_v6",
        BuiltinKind::Http(HttpCheck::from_url("http://[2001:db8::20]").unwrap()),
    );
    assert_eq!(v6, &want);
    let BuiltinKind::Http(h) = &v6.kind else {
        unreachable!()
    };
    assert_eq!(
        (h.addr, h.path.as_str(), h.expect_status),
        ("[2001:db8::20]:80".parse().unwrap(), "/", 200)
    );
    assert_eq!(h.expect_body, None);

    let i = &c.instances[0];
    let names: Vec<_> = i.track_scripts.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chk_web", "chk_db", "chk_sh"]);
    assert_eq!(i.track_scripts[1].weight.map(|w| w.value), Some(5));
    assert_eq!(c.scripts.len(), 1);

    let w = warnings(&l);
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].ends_with(
            "checks.conf:6:5: 'vrrp_notify_fifo_script' is not supported by vrrp-agent (the \
             FIFO is written, but no script is started to read it) - ignored"
        ),
        "{w:?}"
    );
    assert!(
        w[1].ends_with("checks.conf:25:46: 'interval' on the same line as 'tcp': keepalived reads only the first keyword of a line and ignores the rest; vrrp-agent reads both"),
        "{w:?}"
    );
}

#[test]
fn check_defined_after_the_instance_is_found() {
    let l = one(&format!(
        "{HEAD} virtual_ipaddress {{ 192.0.2.1 }}\n track_script {{\n late\n }}\n}}\nvrrp_xdp_check late {{\n tcp 127.0.0.1:80\n}}\n"
    ));
    assert_eq!(l.config.instances[0].track_scripts[0].name, "late");
    assert_eq!(l.config.checks[0].name, "late");
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
}

#[test]
fn https_check_parses_like_ssl_get() {
    let l = one(
        "vrrp_xdp_check tls {\n http_get {\n url https://192.0.2.10:8443/health\n status 204\n \
         body ok\n host www.example.com\n }\n timeout 2\n}\n\
         vrrp_xdp_check tls443 {\n http_get {\n url HTTPS://[2001:db8::20]/\n }\n}\n",
    );
    let mut want = HttpCheck::from_url("https://192.0.2.10:8443/health").unwrap();
    assert!(want.tls);
    want.expect_status = 204;
    want.expect_body = Some("ok".into());
    want.host = "www.example.com".into();
    assert_eq!(l.config.checks[0].kind, BuiltinKind::Http(want));
    let BuiltinKind::Http(h) = &l.config.checks[1].kind else {
        unreachable!()
    };
    assert!(h.tls);
    assert_eq!(h.addr, "[2001:db8::20]:443".parse().unwrap());
    assert_eq!(h.host, "[2001:db8::20]");
}

#[test]
fn check_errors_carry_their_location() {
    let e = config::parse_str(
        "vrrp_xdp_check c {\n  http_get {\n    url   https://www.example.com/\n  }\n}\n",
        "h.conf",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.conf:3:11: url 'https://www.example.com/': the URL host must be an IP address \
         (names are not resolved): 'www.example.com'"
    );
    let e = config::parse_str(
        "vrrp_xdp_check c {\n  http_get {\n    url ftp://127.0.0.1/\n  }\n}\n",
        "h.conf",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "h.conf:3:9: url 'ftp://127.0.0.1/': only http:// and https:// URLs are supported"
    );
    let e = config::parse_str(
        "vrrp_xdp_check c { tcp 127.0.0.1:80 weight 300 }\n",
        "w.conf",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "w.conf:1:44: weight '300' is invalid: must be between -253 and 253"
    );
    let e = config::parse_str(
        "vrrp_xdp_check c { tcp 127.0.0.1:80 }\nvrrp_xdp_check c { tcp 127.0.0.1:81 }\n",
        "d.conf",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "d.conf:2:16: vrrp_xdp_check 'c' is already defined"
    );
    let e = config::parse_str(
        "vrrp_xdp_check c {\n  tcp 127.0.0.1:80\n  http_get {\n    url http://127.0.0.1/\n    frob 1\n  }\n}\n",
        "u.conf",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("u.conf:3:3: vrrp_xdp_check 'c' already has 'tcp'"),
        "{e}"
    );
}

#[test]
fn notify_fifo_keywords() {
    // keepalived's spelling and the VRRP-only one; the VRRP one wins when both differ.
    let l = one("global_defs {\n notify_fifo /tmp/a.fifo\n}\n");
    assert_eq!(
        l.config.global.notify_fifo.as_deref(),
        Some(Path::new("/tmp/a.fifo"))
    );
    assert!(l.warnings.is_empty());
    let l = one("global_defs {\n vrrp_notify_fifo /tmp/v.fifo\n notify_fifo /tmp/a.fifo\n}\n");
    assert_eq!(
        l.config.global.notify_fifo.as_deref(),
        Some(Path::new("/tmp/v.fifo"))
    );
    assert_eq!(
        warnings(&l),
        [
            "x.conf:3:14: both notify_fifo and vrrp_notify_fifo are set: vrrp-agent writes VRRP events only to the vrrp_notify_fifo (/tmp/v.fifo), not to /tmp/a.fifo"
        ]
    );
    // keepalived ≥ 2.2.5 takes an owner for the FIFO: accepted, warned, not applied.
    let l = one(
        "global_defs {\n notify_fifo /tmp/a.fifo keepalived_script\n notify_fifo_script /bin/reader\n}\n",
    );
    assert_eq!(
        l.config.global.notify_fifo.as_deref(),
        Some(Path::new("/tmp/a.fifo"))
    );
    assert_eq!(
        warnings(&l),
        [
            "x.conf:2:26: 'notify_fifo' owner and group are not supported by vrrp-agent - ignored (the FIFO is created with mode 0644)",
            "x.conf:3:2: 'notify_fifo_script' is not supported by vrrp-agent (the FIFO is \
             written, but no script is started to read it) - ignored",
        ]
    );
    let l = one("global_defs {\n router_id r\n}\n");
    assert_eq!(l.config.global.notify_fifo, None);
    assert_eq!(l.config.global.notify_json, None);
}

/// The health-tracking lab configurations (testdata/lab/tracking/) are valid and warning-free
/// once the lab test fills in their placeholders.
#[test]
fn lab_tracking_configs_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/lab/tracking");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_none_or(|x| x != "conf") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("@ROUTER@", "lb02")
            .replace("@STATE@", "MASTER")
            .replace("@PRIO@", "100")
            .replace("@DIR@", "/tmp/vx-lab")
            .replace("@TRACK@", "track_interface {\n        trk0\n    }");
        let shown = path.display().to_string();
        let l = config::parse_str(&text, &shown).unwrap_or_else(|e| panic!("{e}"));
        assert!(l.warnings.is_empty(), "{shown}: {:?}", warnings(&l));
        // One instance each, but the sync group's two.
        let want = if shown.ends_with("sync.conf") { 2 } else { 1 };
        assert_eq!(l.config.instances.len(), want, "{shown}");
        n += 1;
    }
    assert!(n >= 6, "{n} configurations in {}", dir.display());
    let l = config::parse_str(
        &std::fs::read_to_string(dir.join("builtin.conf"))
            .unwrap()
            .replace("@ROUTER@", "r")
            .replace("@STATE@", "MASTER")
            .replace("@PRIO@", "100"),
        "builtin.conf",
    )
    .unwrap();
    let c = &l.config.checks[0];
    assert_eq!((c.name.as_str(), c.weight.value), ("chk_web", -20));
    assert_eq!(
        c.kind,
        BuiltinKind::Http(HttpCheck::from_url("http://127.0.0.1:8080/").unwrap())
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
        Just("include"), Just("vrrp_sync_group"), Just("vrrp_xdp_check"), Just("tcp"),
        Just("127.0.0.1:80"), Just("http_get"), Just("url"), Just("http://127.0.0.1/"), Just("group"), Just("authentication"),
        Just("auth_type"), Just("PASS"), Just("auth_pass"), Just("state"), Just("MASTER"),
        Just("version"), Just("3"), Just("unicast_peer"), Just("@^x"), Just("global_defs"),
    ], 0..80)) {
        let _ = config::parse_str(&words.join(" "), "soup.conf");
    }
}

#[test]
fn realtime_keywords_are_read_and_checked() {
    let inst = "vrrp_instance V { interface eth0\n virtual_router_id 1\n priority 100\n virtual_ipaddress { 192.0.2.3 } }\n";
    let l = config::parse_str(
        &format!("global_defs {{\n vrrp_rt_priority 20\n vrrp_rlimit_rttime 10000\n}}\n{inst}"),
        "r.conf",
    )
    .unwrap();
    assert_eq!(l.config.global.rt_priority, Some(20));
    assert_eq!(l.config.global.rlimit_rttime_us, Some(10_000));
    assert!(warnings(&l).is_empty(), "{:?}", warnings(&l));
    // keepalived's older spelling; 0 (ours) keeps SCHED_OTHER.
    let l = config::parse_str(
        &format!("global_defs {{\n vrrp_rt_priority 0\n vrrp_rlimit_rtime 5\n}}\n{inst}"),
        "r.conf",
    )
    .unwrap();
    assert_eq!(l.config.global.rt_priority, Some(0));
    assert_eq!(l.config.global.rlimit_rttime_us, Some(5));
    let l = config::parse_str(inst, "r.conf").unwrap();
    assert_eq!(l.config.global.rt_priority, None);
    let e = config::parse_str(
        &format!("global_defs {{\n vrrp_rt_priority 100\n}}\n{inst}"),
        "r.conf",
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("r.conf:2:19:"), "{e}");
}

#[test]
fn heartbeat_paths_parse() {
    let text = "vrrp_instance VI_1 {
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 192.0.2.3/24 }
    vrrp_xdp_heartbeat {
        interface hb0
        unicast_src_ip 198.51.100.1
        unicast_peer {
            198.51.100.2
            198.51.100.3
        }
    }
    vrrp_xdp_heartbeat {
        interface hb1
        unicast_peer {
            198.51.100.6
        }
    }
}
";
    let l = config::parse_str(text, "hb.conf").unwrap();
    assert_eq!(warnings(&l), Vec::<String>::new());
    let i = &l.config.instances[0];
    assert_eq!(i.heartbeats.len(), 2);
    let h = &i.heartbeats[0];
    assert_eq!(h.interface, "hb0");
    assert_eq!(h.interface_span.to_string(), "hb.conf:6:19");
    assert_eq!(h.src, Some(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1))));
    let peers: Vec<IpAddr> = h.peers.iter().map(|(a, _)| *a).collect();
    assert_eq!(
        peers,
        [
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 3))
        ]
    );
    assert_eq!(h.span.to_string(), "hb.conf:5:5");
    let h = &i.heartbeats[1];
    assert_eq!((h.interface.as_str(), h.src), ("hb1", None));
    // Without the block: no heartbeat paths, as before.
    let l = one(&format!("{HEAD} virtual_ipaddress {{ 192.0.2.3 }}\n}}\n"));
    assert!(l.config.instances[0].heartbeats.is_empty());
    // IPv6 instance, IPv6 path.
    let l = one(&format!(
        "{HEAD} virtual_ipaddress {{ 2001:db8::3 }}\n vrrp_xdp_heartbeat {{\n  interface hb0\n  unicast_peer {{\n   2001:db8:1::2\n  }}\n }}\n}}\n"
    ));
    assert_eq!(l.config.instances[0].family, Family::V6);
    assert_eq!(l.config.instances[0].heartbeats[0].peers.len(), 1);
}

/// Unicast across routers: `unicast_ttl`, the peers' `min_ttl`/`max_ttl` (which turn on the
/// instance's source check, as keepalived's `alloc_vrrp_unicast_peer` does) and per-instance
/// `check_unicast_src`.
#[test]
fn unicast_ttl_and_peer_limits_parse() {
    let l = one(&format!(
        "{HEAD} virtual_ipaddress {{ 192.0.2.3 }}\n unicast_ttl 32\n unicast_peer {{\n  \
         198.51.100.3 min_ttl 250\n  198.51.100.4\n  198.51.100.5 max_ttl 200\n }}\n}}\n"
    ));
    assert_eq!(warnings(&l), Vec::<String>::new());
    let i = &l.config.instances[0];
    assert_eq!(i.unicast_ttl, Some(32));
    assert!(i.check_unicast_src);
    let p: Vec<(u8, u8, bool)> = i
        .unicast_peers
        .iter()
        .map(|p| (p.min_ttl, p.max_ttl, p.ttl_given))
        .collect();
    assert_eq!(p, [(250, 255, true), (0, 255, false), (0, 200, true)]);
    // Without TTL options the source check is off unless asked for.
    let plain = "virtual_ipaddress { 192.0.2.3 }\n unicast_peer {\n  198.51.100.3\n }\n";
    let l = one(&format!("{HEAD} {plain}}}\n"));
    let i = &l.config.instances[0];
    assert!(!i.check_unicast_src && i.unicast_ttl.is_none());
    let l = one(&format!("{HEAD} {plain} check_unicast_src\n}}\n"));
    assert_eq!(warnings(&l), Vec::<String>::new());
    assert!(l.config.instances[0].check_unicast_src);
    // keepalived: "Cannot use unicast_ttl without unicast peers - resetting".
    let l = one(&format!(
        "{HEAD} virtual_ipaddress {{ 192.0.2.3 }}\n unicast_ttl 64\n}}\n"
    ));
    assert_eq!(l.config.instances[0].unicast_ttl, None);
    let w = warnings(&l);
    assert!(
        w.len() == 1 && w[0].starts_with("x.conf:5:14: ") && w[0].contains("no effect"),
        "{w:?}"
    );
    for (bad, msg) in [
        ("unicast_ttl 256", "x.conf:5:14:"),
        ("unicast_ttl", "x.conf:5:2:"),
    ] {
        let e = config::parse_str(
            &format!("{HEAD} virtual_ipaddress {{ 192.0.2.3 }}\n {bad}\n}}\n"),
            "x.conf",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with(msg), "{bad}: {e}");
    }
}

#[test]
fn heartbeat_errors_carry_their_location() {
    let inst = |hb: &str| {
        format!(
            "vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n virtual_ipaddress {{ 192.0.2.3/24 }}\n{hb}}}\n"
        )
    };
    let cases: &[(&str, &str)] = &[
        (
            " vrrp_xdp_heartbeat {\n  unicast_peer {\n   198.51.100.2\n  }\n }\n",
            "e.conf:5:2: vrrp_xdp_heartbeat has no 'interface'",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n }\n",
            "e.conf:5:2: vrrp_xdp_heartbeat has no unicast_peer",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   198.51.100.x\n  }\n }\n",
            "e.conf:8:4: unicast_peer '198.51.100.x' is not an IP address",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   198.51.100.2 min_ttl 1\n  }\n }\n",
            "e.conf:8:17: unexpected 'min_ttl': a vrrp_xdp_heartbeat peer is one address",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   198.51.100.2\n   198.51.100.2\n  }\n }\n",
            "e.conf:9:4: unicast_peer 198.51.100.2 is listed twice",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   198.51.100.2\n  }\n  unicast_src_ip 198.51.100.2\n }\n",
            "e.conf:8:4: unicast_peer 198.51.100.2 is our own unicast_src_ip",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   2001:db8::2\n  }\n }\n",
            "e.conf:8:4: vrrp_xdp_heartbeat unicast_peer must be IPv4 like the instance",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_src_ip 2001:db8::1\n  unicast_peer {\n   198.51.100.2\n  }\n }\n",
            "e.conf:5:2: vrrp_xdp_heartbeat unicast_src_ip must be IPv4 like the instance",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface eth0\n  unicast_peer {\n   198.51.100.2\n  }\n }\n",
            "e.conf:6:13: vrrp_xdp_heartbeat interface eth0 is the instance's own interface: a heartbeat path needs a second one",
        ),
        (
            " vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   198.51.100.2\n  }\n }\n vrrp_xdp_heartbeat {\n  interface hb0\n  unicast_peer {\n   198.51.100.3\n  }\n }\n",
            "e.conf:11:2: a vrrp_xdp_heartbeat on hb0 is already defined at e.conf:5:2: list every peer of that interface in one block",
        ),
        (
            " vrrp_xdp_heartbeat\n",
            "e.conf:5:2: 'vrrp_xdp_heartbeat' needs a '{ }' block",
        ),
    ];
    for (hb, want) in cases {
        let text = inst(hb);
        match config::parse_str(&text, "e.conf") {
            Ok(_) => panic!("should fail: {text}"),
            Err(e) => assert_eq!(e.to_string(), *want, "{text}"),
        }
    }
    // Another instance's interface cannot be a heartbeat path.
    let text = format!(
        "{}vrrp_instance VI_2 {{\n interface eth1\n virtual_router_id 52\n virtual_ipaddress {{ 192.0.2.4/24 }}\n}}\n",
        inst(
            " vrrp_xdp_heartbeat {\n  interface eth1\n  unicast_peer {\n   198.51.100.2\n  }\n }\n"
        )
    );
    let e = config::parse_str(&text, "e.conf").unwrap_err();
    assert_eq!(
        e.to_string(),
        "e.conf:6:13: vrrp_xdp_heartbeat interface eth1 is the interface of vrrp_instance 'VI_2': a heartbeat path needs an interface no instance runs on"
    );
    // Unknown keywords inside the block warn, as everywhere.
    let l = one(&inst(
        " vrrp_xdp_heartbeat {\n  interface hb0\n  frob 1\n  unicast_peer {\n   198.51.100.2\n  }\n }\n",
    ));
    assert_eq!(
        warnings(&l),
        ["x.conf:7:3: unknown keyword 'frob' - ignored"]
    );
}

/// issue 16, defect 7: `-f /dev/zero` (or a huge file, or an include of one) was read without
/// bound. Now the file is refused past 16 MiB, naming it.
#[test]
fn an_oversized_file_or_include_is_refused_by_name() {
    let d = std::env::temp_dir().join(format!("vrrp-config-big-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // Sparse: 17 MiB of zeros on no disk space.
    let big = d.join("big.conf");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(17 << 20)
        .unwrap();
    let e = config::load(&big).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}: cannot read configuration: larger than 16 MiB",
            big.display()
        )
    );
    let top = d.join("top.conf");
    std::fs::write(&top, format!("include {}\n", big.display())).unwrap();
    let e = config::load(&top).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "{}:1:1: include {}: larger than 16 MiB",
            top.display(),
            big.display()
        )
    );
    let _ = std::fs::remove_dir_all(&d);
    if std::path::Path::new("/dev/zero").exists() {
        let e = config::load(std::path::Path::new("/dev/zero"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "/dev/zero: cannot read configuration: larger than 16 MiB"
        );
    }
}

/// issue 14 item 5: a typo is warned with the nearest keyword, and the error it causes later
/// (no VIPs in a VRRPv3 instance) keeps that warning.
#[test]
fn an_error_keeps_the_warnings_before_it_and_typos_get_a_suggestion() {
    let text = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 3\n \
                virtual_ipadress {\n  192.0.2.1/24\n }\n}\n";
    let e = config::parse_str(text, "x.conf").unwrap_err();
    assert!(matches!(e, ConfigError::Invalid { .. }), "{e}");
    let w: Vec<String> = e.warnings().iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        [
            "x.conf:5:2: unknown keyword 'virtual_ipadress' - ignored (did you mean 'virtual_ipaddress'?)"
        ]
    );
    assert!(e.to_string().contains("has no virtual_ipaddress"), "{e}");

    // A keyword of another block: the hint says where it belongs.
    let l = one(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n vrrp_garp_master_dely 5\n \
         virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n",
    );
    assert_eq!(
        warnings(&l),
        [
            "x.conf:4:2: unknown keyword 'vrrp_garp_master_dely' - ignored (did you mean \
          'vrrp_garp_master_delay'? It belongs in global_defs, not in vrrp_instance)"
        ]
    );
    // Nothing near: no hint.
    let l = one("global_defs {\n frobnicate_everything\n}\n");
    assert_eq!(
        warnings(&l),
        ["x.conf:2:2: unknown keyword 'frobnicate_everything' - ignored"]
    );
}

/// issue 14 items 1 and 5: mail/SNMP keywords in one warning per file; a leading BOM is
/// not part of the first keyword.
#[test]
fn grouped_keywords_and_a_byte_order_mark() {
    let l = one(
        "\u{feff}global_defs {\n notification_email {\n  a@example.com\n }\n smtp_server 192.0.2.9\n \
         enable_snmp_vrrp\n router_id r1\n}\n",
    );
    assert_eq!(l.config.global.router_id.as_deref(), Some("r1"));
    assert_eq!(
        warnings(&l),
        [
            "x.conf:2:2: no effect in vrrp-agent (mail, SNMP, DBus, process tuning or LVS settings, \
          not VRRP behaviour) - ignored: notification_email (line 2), smtp_server (line 5), \
          enable_snmp_vrrp (line 6)"
        ]
    );
}

/// keepalived's tarball (../shared/keepalived-2.4.3.tar.gz next to the checkout, or
/// $KEEPALIVED_TARBALL): None, loudly, when it is absent (a failure under CI=true).
fn keepalived_tarball() -> Option<PathBuf> {
    let path = std::env::var_os("KEEPALIVED_TARBALL").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/keepalived-2.4.3.tar.gz"),
        PathBuf::from,
    );
    if path.is_file() {
        return Some(path);
    }
    let msg = format!(
        "{} not found (set KEEPALIVED_TARBALL): keepalived's sample configs not checked",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}

/// issue 14 item 6: every sample of keepalived 2.4.3's doc/samples with a vrrp_instance
/// loads (what `--check` does) with no error, except the one using IPsec AH, which is refused
/// on purpose. The samples are read from keepalived's tarball (GPL, not copied here).
#[test]
fn keepalived_2_4_3_samples_pass_check() {
    let Some(tarball) = keepalived_tarball() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("vx-cfg-samples-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(&dir)
        .arg("keepalived-2.4.3/doc/samples")
        .status()
        .expect("run tar");
    assert!(st.success(), "tar -xzf {} failed", tarball.display());
    let samples = dir.join("keepalived-2.4.3/doc/samples");
    let mut checked = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&samples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            // The systemd drop-in only mentions vrrp_instance in a comment.
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("keepalived.conf")
                && std::fs::read_to_string(p)
                    .unwrap()
                    .contains("vrrp_instance")
        })
        .collect();
    names.sort();
    for p in &names {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        // The conditional sample is written for `-i high` or `-i low`.
        let ids: &[&str] = if name.ends_with("conditional_conf") {
            &["high", "low"]
        } else {
            &["sample-host"]
        };
        for id in ids {
            let r = config::load_as(p, Some(id));
            match (name.as_str(), r) {
                ("keepalived.conf.SSL_GET", Err(e)) => {
                    assert!(
                        e.to_string().contains("auth_type AH is not supported"),
                        "{e}"
                    )
                }
                (_, Ok(l)) => assert!(!l.config.instances.is_empty(), "{name}: no instance"),
                (_, Err(e)) => panic!("{name} (-i {id}): {e}"),
            }
            checked.push(name.clone());
        }
    }
    assert!(checked.len() >= 12, "only {checked:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `@ID` lines are kept for a matching config id, `@^ID` lines for any other (keepalived's
/// read_line()); with no config id every `@ID` line goes.
#[test]
fn conditional_lines_follow_the_config_id() {
    let text = "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n@a priority 10\n\
                @^a priority 20\n @b\tpriority 30\n virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n";
    let prio = |id: Option<&str>| {
        config::parse_str_as(text, "x.conf", id)
            .unwrap()
            .config
            .instances[0]
            .priority
    };
    assert_eq!(prio(Some("a")), Priority(10));
    assert_eq!(prio(Some("b")), Priority(30));
    assert_eq!(prio(Some("c")), Priority(20));
    assert_eq!(prio(None), Priority(20));
}

/// `vrrp-agent --check` on `text` (written to a file of its own): exit success and stderr.
fn check_cli(tag: &str, text: &str) -> (bool, String) {
    let dir = std::env::temp_dir().join(format!("vx-cfg-check-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keepalived.conf");
    std::fs::write(&file, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vrrp-agent"))
        .arg("--check")
        .arg("-f")
        .arg(&file)
        .env("NO_COLOR", "1")
        .output()
        .expect("run vrrp-agent --check");
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// issue 14 item 4: a file with only LVS blocks is not "OK": nothing for vrrp-agent to do.
#[test]
fn check_refuses_a_file_with_only_lvs_blocks() {
    let (ok, err) = check_cli(
        "lvs",
        "virtual_server 192.0.2.1 80 {\n real_server 192.0.2.2 80 {\n }\n}\n",
    );
    assert!(!ok, "{err}");
    assert!(err.contains("nothing for vrrp-agent to do"), "{err}");
}

/// issue 14 item 5 through the binary: the typo's warning comes out before the error.
#[test]
fn check_prints_the_warnings_before_the_error() {
    let (ok, err) = check_cli(
        "typo",
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 3\n \
         virtual_ipadress {\n  192.0.2.1/24\n }\n}\n",
    );
    assert!(!ok, "{err}");
    let warn = err
        .find("unknown keyword 'virtual_ipadress'")
        .unwrap_or_else(|| panic!("{err}"));
    let error = err
        .find("has no virtual_ipaddress")
        .unwrap_or_else(|| panic!("{err}"));
    assert!(warn < error, "{err}");
}

/// keepalived warns and runs a VRRPv2 instance without VIPs; vrrp-agent's router refuses
/// one (no advert without an address), so the configuration says so instead of passing.
#[test]
fn a_v2_instance_without_vips_is_refused_with_the_reason() {
    let e = config::parse_str(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 2\n}\n",
        "x.conf",
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "x.conf:1:15: vrrp_instance 'V' has no virtual_ipaddress: vrrp-agent needs at least \
         one (keepalived runs a VRRPv2 instance without, advertising no address)"
    );
}

/// issue 14 item 4: interfaces that are missing or loopback are warned at their place.
#[test]
fn check_interfaces_warns_about_missing_and_loopback_ones() {
    let sys = std::env::temp_dir().join(format!("vx-cfg-sysnet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&sys);
    for (name, ty) in [("eth0", "1"), ("lo", "772")] {
        std::fs::create_dir_all(sys.join(name)).unwrap();
        std::fs::write(sys.join(name).join("type"), format!("{ty}\n")).unwrap();
    }
    let l = one(
        "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n track_interface {\n  eth9\n }\n \
         virtual_ipaddress {\n  192.0.2.1/24\n }\n}\nvrrp_instance B {\n interface lo\n \
         virtual_router_id 2\n virtual_ipaddress {\n  192.0.2.2/24\n }\n}\n",
    );
    let w: Vec<String> = config::check_interfaces(&l.config, &sys)
        .iter()
        .map(|d| d.to_string())
        .collect();
    let _ = std::fs::remove_dir_all(&sys);
    assert_eq!(
        w,
        [
            "x.conf:5:3: interface eth9 for track_interface of vrrp_instance A doesn't exist on this host",
            "x.conf:12:12: interface lo for vrrp_instance B is a loopback interface: VRRP cannot run on it",
        ]
    );
}

/// keepalived's predefined definitions and recursive substitution (lib/parser.c).
#[test]
fn predefined_definitions_and_recursive_substitution() {
    let text = "$VIP=${BASE}.1/24\n$BASE=192.0.2\n$PRIO=${_RANDOM 10 10}\n\
                vrrp_instance ${_INSTANCE} {\n interface eth0\n virtual_router_id 1\n priority $PRIO\n \
                notify \"${_PWD}/n.sh ${_ENV VX_CFG_TEST_UNSET_VAR}\"\n virtual_ipaddress {\n  $VIP\n }\n}\n";
    let l = config::parse_str_as(text, "x.conf", Some("lb1")).unwrap();
    let i = &l.config.instances[0];
    assert_eq!(i.name, "lb1");
    assert_eq!(i.priority, Priority(10));
    assert_eq!(i.vips[0].addr, "192.0.2.1".parse::<IpAddr>().unwrap());
    let cwd = std::env::current_dir().unwrap();
    let argv = &i.notify.any.as_ref().unwrap().argv;
    assert_eq!(argv, &[format!("{}/n.sh", cwd.display())]);

    // A definition that expands into itself is refused, not looped on.
    // ${_HASH} / ${_BANG}: comment characters, kept inside quotes.
    let l = one(
        "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n \
         notify \"/bin/echo ${_HASH}1 ${_BANG}\" ${_HASH} a comment\n \
         virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n",
    );
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    let argv = &l.config.instances[0].notify.any.as_ref().unwrap().argv;
    assert_eq!(argv, &["/bin/echo", "#1", "!"]);

    let e = config::parse_str("$A=x$A\nglobal_defs {\n router_id $A\n}\n", "x.conf").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("x.conf:3:2: more than 1000 substitutions"),
        "{e}"
    );
}

/// Multi-line definitions (keepalived's `$NAME=... \` continued while lines end in `\`), used
/// as lines of their own, with substitution inside.
#[test]
fn multi_line_definitions_expand_into_lines() {
    let text = "$COMMON=interface eth0 \\\n  advert_int 2 \\\n  priority $P\n$P=150\n\
                vrrp_instance A {\n $COMMON\n virtual_router_id 1\n virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n\
                vrrp_instance B {\n ${COMMON}\n virtual_router_id 2\n virtual_ipaddress {\n  192.0.2.2/24\n }\n}\n";
    let l = one(text);
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    for i in &l.config.instances {
        assert_eq!(i.interface, "eth0");
        assert_eq!(i.priority, Priority(150));
        assert_eq!(i.advert_int, Centisecs::from_secs(2));
    }
    let e = config::parse_str("$L=$L \\\n x\n$L\n", "x.conf").unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
}

/// `~SEQ`, `~SEQx` and `~LST` repeat the rest of the line (keepalived.conf(5) examples).
#[test]
fn seq_and_lst_repeat_the_rest_of_the_line() {
    let text = "$VI=vrrp_instance V${ID} { \\\n interface eth0 \\\n virtual_router_id ${ID} \\\n \
                virtual_ipaddress { \\\n  192.0.2.${ID}/24 \\\n } \\\n}\n\
                ~SEQ(ID, 1, 2, 5) $VI\n\
                vrrp_instance W {\n interface eth1\n virtual_router_id 9\n virtual_ipaddress {\n  \
                ~LST({A, B}, {10,1},{20,4}) 198.51.100.${A}${B}/24\n }\n \
                virtual_ipaddress_excluded {\n  \
                ~SEQx(X, 0x90, 0x10, 0xa0) ~LST(Y, 1, 2) 2001:db8::${X}:${Y}\n }\n}\n";
    let l = one(text);
    let c = &l.config;
    let names: Vec<_> = c.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["V1", "V3", "V5", "W"]);
    assert_eq!(c.instances[1].vrid.get(), 3);
    let w = &c.instances[3];
    let v4: Vec<String> = w.vips.iter().map(|v| v.addr.to_string()).collect();
    assert_eq!(v4, ["198.51.100.101", "198.51.100.204"]);
    let v6: Vec<String> = w.excluded_vips.iter().map(|v| v.addr.to_string()).collect();
    assert_eq!(
        v6,
        [
            "2001:db8::90:1",
            "2001:db8::90:2",
            "2001:db8::a0:1",
            "2001:db8::a0:2"
        ]
    );
    let e = config::parse_str("~SEQ(I, 5, 1, 1) x\n", "x.conf").unwrap_err();
    assert!(
        e.to_string().starts_with("x.conf:1:1: invalid ~SEQ values"),
        "{e}"
    );
}

#[test]
fn v2_interop_is_for_a_v3_ipv4_instance_with_whole_seconds() {
    // RFC 9568 §8.4: the keyword that lets a v3 node replace a v2 keepalived one by one.
    let inst = |version: &str, advert: &str| {
        format!(
            "vrrp_instance VI_1 {{\n    interface eth0\n    virtual_router_id 51\n    \
             version {version}\n    advert_int {advert}\n    vrrp_xdp_v2_interop\n    \
             virtual_ipaddress {{\n        192.0.2.100/24\n    }}\n}}\n"
        )
    };
    let l = config::parse_str(&inst("3", "1"), "t.conf").unwrap();
    assert!(l.config.instances[0].v2_interop);
    for (version, advert) in [("2", "1"), ("3", "0.5")] {
        let e = config::parse_str(&inst(version, advert), "t.conf").unwrap_err();
        let span = e.span().expect("a location");
        assert_eq!((span.line, span.col), (6, 5), "{e}");
        assert!(e.to_string().contains("vrrp_xdp_v2_interop"), "{e}");
    }
}

/// issue 18 item 1: `vrrp_xdp_checksum_auto` in global_defs is the default of each instance,
/// which may override it; off unless written, and no warning either way.
#[test]
fn checksum_auto_from_global_defs_and_per_instance() {
    let inst = |name: &str, vrid: u8, extra: &str| {
        format!(
            "vrrp_instance {name} {{\n interface eth0\n virtual_router_id {vrid}\n version 3\n{extra} virtual_ipaddress {{ 192.0.2.{vrid} }}\n}}\n"
        )
    };
    let l = one(&inst("A", 1, ""));
    assert!(!l.config.instances[0].checksum_auto);
    assert!(!l.config.global.xdp.checksum_auto);
    let text = format!(
        "global_defs {{\n vrrp_xdp_checksum_auto\n}}\n{}{}{}",
        inst("A", 1, ""),
        inst("B", 2, " vrrp_xdp_checksum_auto false\n"),
        inst("C", 3, " vrrp_xdp_checksum_auto on\n v3_checksum_as_v2\n"),
    );
    let l = one(&text);
    assert!(l.config.global.xdp.checksum_auto);
    let got: Vec<(bool, bool)> = l
        .config
        .instances
        .iter()
        .map(|i| (i.checksum_auto, i.v3_checksum_as_v2))
        .collect();
    assert_eq!(got, [(true, false), (false, false), (true, true)]);
    assert!(l.warnings.is_empty(), "{:?}", warnings(&l));
    let Err(e) = config::parse_str(&inst("A", 1, " vrrp_xdp_checksum_auto maybe\n"), "x.conf")
    else {
        panic!("a bad value is refused");
    };
    assert!(e.to_string().contains("x.conf:5:25"), "{e}");
}

/// RFC 9568 §5.2.9 / erratum 8300: keepalived 2.4.3 refuses a multicast IPv6 instance whose
/// first VIP is not link-local in strict mode and only logs otherwise; so do we, and strict
/// mode makes the router drop such adverts.
#[test]
fn erratum_8300_first_ipv6_vip_link_local() {
    let inst = |strict: &str, vips: &str| {
        format!(
            "vrrp_instance A {{\n interface eth0\n virtual_router_id 1\n{strict} virtual_ipaddress {{\n{vips} }}\n}}\n"
        )
    };
    let l = one(&inst("", "  2001:db8::1/64\n  fe80::1/64\n"));
    assert_eq!(
        warnings(&l),
        [
            "x.conf:5:3: the first IPv6 virtual address should be link-local (RFC 9568 \
          §5.2.9): strict RFC 9568 routers discard adverts that list another first \
          (erratum 8300)"
        ]
    );
    assert!(!l.config.instances[0].strict);
    let l = one(&inst(" strict_mode\n", "  fe80::1/64\n  2001:db8::1/64\n"));
    assert!(
        !warnings(&l).iter().any(|w| w.contains("link-local")),
        "{:?}",
        warnings(&l)
    );
    assert!(l.config.instances[0].strict);
    let Err(e) = config::parse_str(&inst(" strict_mode\n", "  2001:db8::1/64\n"), "x.conf") else {
        panic!("strict mode refuses it");
    };
    assert!(
        e.to_string()
            .starts_with("x.conf:6:3: the first IPv6 virtual address must be link-local"),
        "{e}"
    );
}
