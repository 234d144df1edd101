//! `vrrp_track_process`: count processes by name and report quorum
//! (keepalived/core/track_process.c `read_procs`, `check_params`). keepalived listens to the
//! proc connector; we scan /proc at a short interval, which needs no netlink socket.

use std::path::Path;

use crate::config::TrackProcess;

/// One process as read from /proc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcInfo {
    /// `comm` from /proc/PID/stat (at most 15 bytes).
    pub comm: String,
    /// argv from /proc/PID/cmdline.
    pub argv: Vec<String>,
}

/// Whether `p` matches: without parameters keepalived compares `comm` (pgrep without -f);
/// with parameters it compares the full command line, `argv[0]` and then the exact parameters
/// (`PARAM_MATCH_EXACT`, the default once parameters are given).
pub fn matches(t: &TrackProcess, p: &ProcInfo) -> bool {
    if t.params.is_empty() {
        // comm is truncated to TASK_COMM_LEN - 1 bytes; compare what the kernel kept.
        let want = t.process.as_bytes();
        let want = &want[..want.len().min(15)];
        p.comm.as_bytes() == want
    } else {
        p.argv.first().is_some_and(|a| *a == t.process) && p.argv[1..] == t.params[..]
    }
}

/// keepalived: quorum is `quorum <= n <= quorum_max`.
pub fn have_quorum(t: &TrackProcess, n: u32) -> bool {
    n >= t.quorum && n <= t.quorum_max
}

/// Read every live (non-zombie) process. Processes that vanish mid-scan are skipped.
pub fn scan(proc_root: &Path) -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for ent in dir.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read(ent.path().join("stat")) else {
            continue;
        };
        let Some(comm) = parse_stat(&stat) else {
            continue;
        };
        let argv = std::fs::read(ent.path().join("cmdline"))
            .map(|c| {
                c.split(|b| *b == 0)
                    .filter(|a| !a.is_empty())
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default();
        out.push(ProcInfo { comm, argv });
    }
    out
}

/// `comm` from /proc/PID/stat, or `None` for a zombie (as keepalived's read_procs).
fn parse_stat(stat: &[u8]) -> Option<String> {
    let open = stat.iter().position(|b| *b == b'(')?;
    // comm may itself contain ')': the last one closes it.
    let close = stat.iter().rposition(|b| *b == b')')?;
    if close < open {
        return None;
    }
    if stat.get(close + 2) == Some(&b'Z') {
        return None;
    }
    Some(String::from_utf8_lossy(&stat[open + 1..close]).into_owned())
}

/// keepalived's `delay` (fork_delay/terminate_delay): a quorum change is reported only when
/// it persisted for `polls` consecutive scans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Debounce {
    reported: bool,
    polls: u32,
    seen: u32,
}

impl Debounce {
    pub fn new(initial: bool, polls: u32) -> Self {
        Self {
            reported: initial,
            polls,
            seen: 0,
        }
    }

    pub fn reported(&self) -> bool {
        self.reported
    }

    /// Feed one scan; returns the new state when it changes.
    pub fn feed(&mut self, now: bool) -> Option<bool> {
        if now == self.reported {
            self.seen = 0;
            return None;
        }
        self.seen += 1;
        if self.seen > self.polls {
            self.reported = now;
            self.seen = 0;
            Some(now)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Span, Weight};
    use std::time::Duration;

    fn tp(process: &str, params: &[&str]) -> TrackProcess {
        TrackProcess {
            name: "p".into(),
            span: Span::new("t", 1, 1),
            process: process.into(),
            params: params.iter().map(|s| s.to_string()).collect(),
            weight: Weight {
                value: 0,
                reverse: false,
            },
            quorum: 1,
            quorum_max: u32::MAX,
            delay: Duration::ZERO,
        }
    }

    fn pi(comm: &str, argv: &[&str]) -> ProcInfo {
        ProcInfo {
            comm: comm.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn match_by_comm_or_full_command() {
        assert!(matches(&tp("nginx", &[]), &pi("nginx", &["nginx: master"])));
        assert!(!matches(&tp("nginx", &[]), &pi("bash", &["nginx"])));
        assert!(matches(
            &tp("a_very_long_process_name", &[]),
            &pi("a_very_long_pro", &[])
        ));
        let t = tp("/usr/sbin/nginx", &["-g", "daemon off;"]);
        assert!(matches(
            &t,
            &pi("nginx", &["/usr/sbin/nginx", "-g", "daemon off;"])
        ));
        assert!(!matches(&t, &pi("nginx", &["/usr/sbin/nginx", "-g"])));
    }

    #[test]
    fn stat_parsing_skips_zombies() {
        assert_eq!(parse_stat(b"1 (init) S 0"), Some("init".into()));
        assert_eq!(parse_stat(b"7 (a) b) R 1"), Some("a) b".into()));
        assert_eq!(parse_stat(b"9 (dead) Z 1"), None);
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn quorum_and_debounce() {
        let mut t = tp("x", &[]);
        t.quorum = 2;
        t.quorum_max = 3;
        assert!(!have_quorum(&t, 1) && have_quorum(&t, 2) && !have_quorum(&t, 4));
        let mut d = Debounce::new(true, 2);
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(true), None, "flap resets");
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(false), None);
        assert_eq!(d.feed(false), Some(false));
        let mut d = Debounce::new(false, 0);
        assert_eq!(d.feed(true), Some(true));
    }

    #[test]
    fn scan_finds_ourselves() {
        let procs = scan(Path::new("/proc"));
        assert!(!procs.is_empty());
    }
}
