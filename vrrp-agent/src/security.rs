//! Script and configuration-file security, as keepalived 2.4 (lib/notify.c
//! `check_script_secure`, `check_security`, `get_default_script_user`, keepalived/vrrp/vrrp.c
//! `check_vrrp_script_security`).
//!
//! Why: the agent runs as root and runs the configured commands. A command whose file, or any
//! directory on its path, someone else can write is a way to run anything as root. keepalived's
//! answer, which we follow so that a keepalived.conf behaves the same here:
//!
//! - Who runs it: the script's own `user USER [GROUP]`, else `global_defs { script_user USER
//!   [GROUP] }`, else user `keepalived_script` if it exists, else ourselves (root). With
//!   `enable_script_security` and none of the first three, the script is refused.
//! - What must hold: the command is found (a bare name by a `PATH` search, which earns a
//!   warning), resolves, and is executable by that user. When it runs as root (uid or gid 0, or
//!   a set-uid/gid-root file), every component of the path as written and of the resolved path
//!   is root-owned, and neither a file nor a non-sticky directory is writable by a non-root
//!   group or by others. Failing that: with `enable_script_security` the script is refused,
//!   without it a warning, and the summary "SECURITY VIOLATION" line.
//! - A refused `vrrp_script` is dropped from the instances that track it (their priority no
//!   longer depends on it), a refused notify script is not run: keepalived's behaviour.
//!
//! One deliberate difference: keepalived 2.4.3 lstat()s each prefix of the path as written and
//! refuses a symbolic link in the middle ("Wrong file type"), which refuses `/bin/sh` on a
//! merged-/usr system (`/bin -> usr/bin`) while keepalived 2.2.7 (Debian 12) accepts it. We
//! accept a root-owned symbolic link as a middle component: who may replace it is decided by its
//! parent directory, which is checked, and where it points is checked by the walk of the
//! resolved path.
//!
//! The rules are pure functions over file metadata ([`judge_chain`], [`is_executable`],
//! [`config_file_concern`]); [`vet`] gathers the metadata and applies them.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::User;

use crate::config::{Command, Config, Diagnostic, GlobalDefs, ScriptUser, Span};
use crate::track::exec::{self, Ids};

/// The start of every warning of this module (so that it can be told from the parser's).
pub const PREFIX: &str = "security: ";

/// keepalived's default script user (lib/notify.c `get_default_script_user`).
pub const DEFAULT_SCRIPT_USER: &str = "keepalived_script";

/// The `PATH` searched for a bare command name when the agent has none (glibc's `_CS_PATH`
/// plus the sbin directories, as systemd gives services).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const S_ISUID: u32 = 0o4000;
const S_ISGID: u32 = 0o2000;
const S_ISVTX: u32 = 0o1000;
const S_IXUSR: u32 = 0o100;
const S_IWGRP: u32 = 0o020;
const S_IXGRP: u32 = 0o010;
const S_IWOTH: u32 = 0o002;
const S_IXOTH: u32 = 0o001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    Other,
}

/// What the rules look at of one file (lstat: a symbolic link is itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    /// Permission bits including set-uid/set-gid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    pub fn from_metadata(m: &std::fs::Metadata) -> Self {
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_file() {
            FileKind::File
        } else if ft.is_symlink() {
            FileKind::Symlink
        } else {
            FileKind::Other
        };
        Self {
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        }
    }
}

/// The verdict of [`judge_chain`] on one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainVerdict {
    Secure,
    /// A middle component that is no directory, or a last one that is no file (keepalived
    /// refuses these even without `enable_script_security`).
    WrongType(PathBuf),
    /// This component is not root-owned, or writable by a non-root group or by others.
    Unsafe(PathBuf),
}

/// keepalived's `check_security` on the components of a path, `/` first, the file last.
pub fn judge_chain(chain: &[(PathBuf, Meta)]) -> ChainVerdict {
    let last = chain.len().saturating_sub(1);
    for (i, (path, m)) in chain.iter().enumerate() {
        let wrong_type = if i < last {
            // See the module comment: a root-owned link in the middle is judged by its parent
            // (already walked) and by the walk of the resolved path.
            !(m.kind == FileKind::Dir || (m.kind == FileKind::Symlink && m.uid == 0))
        } else {
            !matches!(m.kind, FileKind::File | FileKind::Symlink)
        };
        if wrong_type {
            return ChainVerdict::WrongType(path.clone());
        }
        let checked_for_writers =
            (m.kind == FileKind::Dir && m.mode & S_ISVTX == 0) || m.kind == FileKind::File;
        let writable_by_others = (m.gid != 0 && m.mode & S_IWGRP != 0) || m.mode & S_IWOTH != 0;
        if m.uid != 0 || (checked_for_writers && writable_by_others) {
            return ChainVerdict::Unsafe(path.clone());
        }
    }
    ChainVerdict::Secure
}

/// keepalived's `is_executable`: may `uid:gid` execute this file (root: any x bit)?
pub fn is_executable(m: &Meta, uid: u32, gid: u32) -> bool {
    (uid == 0 && m.mode & (S_IXUSR | S_IXGRP | S_IXOTH) != 0)
        || (uid == m.uid && m.mode & S_IXUSR != 0)
        || (uid != m.uid
            && ((gid == m.gid && m.mode & S_IXGRP != 0) || (gid != m.gid && m.mode & S_IXOTH != 0)))
}

/// Does running this file as `uid:gid` run it as root (keepalived's `need_script_protection`)?
pub fn runs_as_root(file: &Meta, uid: u32, gid: u32) -> bool {
    uid == 0
        || gid == 0
        || (file.uid == 0 && file.mode & S_IXUSR != 0 && file.mode & S_ISUID != 0)
        || (file.gid == 0 && file.mode & S_IXGRP != 0 && file.mode & S_ISGID != 0)
}

/// Why a configuration file is a risk, if it is: someone other than root and us may change
/// what the agent does as root. `our_uid` is the agent's effective uid.
pub fn config_file_concern(m: &Meta, our_uid: u32) -> Option<String> {
    if m.uid != 0 && m.uid != our_uid {
        return Some(format!(
            "owned by uid {} (neither root nor the agent's uid {our_uid})",
            m.uid
        ));
    }
    if m.mode & S_IWOTH != 0 {
        return Some(format!("world-writable (mode {:04o})", m.mode));
    }
    if m.gid != 0 && m.mode & S_IWGRP != 0 {
        return Some(format!(
            "writable by group gid {} (mode {:04o})",
            m.gid, m.mode
        ));
    }
    None
}

/// The warning for a configuration file at `path`, or None if it is fine (or unreadable: the
/// read reports that).
pub fn check_config_file(path: &Path) -> Option<String> {
    let m = std::fs::metadata(path).ok()?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    config_file_concern(&Meta::from_metadata(&m), euid).map(|why| {
        format!(
            "{PREFIX}configuration file {} is {why}: whoever can write it can run commands as the agent",
            path.display()
        )
    })
}

/// Each prefix of `path` (`/`, `/a`, `/a/b`, ...) with its lstat metadata.
pub fn lstat_chain(path: &Path) -> std::io::Result<Vec<(PathBuf, Meta)>> {
    let mut out = Vec::new();
    let mut cur = PathBuf::new();
    for c in path.components() {
        cur.push(c);
        let m = std::fs::symlink_metadata(&cur)?;
        out.push((cur.clone(), Meta::from_metadata(&m)));
    }
    Ok(out)
}

/// How scripts are run: from `global_defs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScriptPolicy {
    pub enable_script_security: bool,
    pub script_user: Option<ScriptUser>,
}

impl ScriptPolicy {
    pub fn from_global(g: &GlobalDefs) -> Self {
        Self {
            enable_script_security: g.enable_script_security,
            script_user: g.script_user.clone(),
        }
    }
}

/// A command that may run: its argv (a bare name replaced by what the `PATH` search found),
/// who runs it (None: the agent itself), and what was found on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vetted {
    pub argv: Vec<String>,
    pub ids: Option<Ids>,
    /// Runs as root from a path someone else can write (allowed: no `enable_script_security`).
    pub insecure: bool,
    /// Warnings, keepalived's wording.
    pub notes: Vec<String>,
    /// A file-open test (`</path`) run through `/bin/sh -c` (keepalived's `SC_SYSTEM`): not a
    /// script file, so not one the "scripts are being executed" summary counts.
    pub via_shell: bool,
}

/// The shell keepalived's `system()` runs.
pub const SHELL: &str = "/bin/sh";

/// keepalived's test for a redirect-only command (`check_script_secure`): argv\[0\] is `<`,
/// then optional blanks, then `/` (`"</run/nginx.pid"` passes while the file opens).
pub fn is_redirect_test(argv0: &str) -> bool {
    argv0
        .strip_prefix('<')
        .is_some_and(|rest| rest.trim_start_matches([' ', '\t']).starts_with('/'))
}

/// keepalived's `cmd_str_r`: the command line `system()` is given. A leading redirect is kept
/// as written; every other word is single-quoted (`'` as `'\''`), so nothing in it is expanded.
pub fn shell_command_line(argv: &[String]) -> String {
    argv.iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 && (a.starts_with('<') || a.starts_with('>')) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The C library's text for an I/O error, as keepalived logs it (no "(os error N)").
fn strerror(e: &std::io::Error) -> String {
    e.raw_os_error().map_or_else(
        || e.to_string(),
        |n| nix::errno::Errno::from_raw(n).desc().to_string(),
    )
}

fn our_ids() -> Ids {
    // SAFETY: geteuid/getegid have no preconditions.
    unsafe {
        Ids {
            uid: libc::geteuid(),
            gid: libc::getegid(),
        }
    }
}

/// Who runs `cmd` (keepalived's `notify_script_init` and `get_default_script_user`). `what` is
/// the kind of script for messages ("vrrp_script", "notify_master", ...).
fn script_ids(policy: &ScriptPolicy, cmd: &Command, what: &str) -> Result<Ids, String> {
    let argv0 = cmd.argv.first().map_or("", String::as_str);
    if let Some(u) = &cmd.user {
        return exec::resolve_user(u)
            .map_err(|e| format!("Invalid user/group for {what} script {argv0} - ignoring ({e})"));
    }
    if let Some(u) = &policy.script_user {
        return exec::resolve_user(u).map_err(|e| {
            format!("Failed to set default user for {what} script {argv0} - ignoring ({e})")
        });
    }
    match User::from_name(DEFAULT_SCRIPT_USER) {
        Ok(Some(u)) => Ok(Ids {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        Ok(None) | Err(_) if policy.enable_script_security => Err(format!(
            "Unable to set default user {DEFAULT_SCRIPT_USER} for script {argv0} - ignoring \
             (set script_user, or create user {DEFAULT_SCRIPT_USER})"
        )),
        Ok(None) | Err(_) => Ok(our_ids()),
    }
}

/// keepalived's `find_path`: the first `PATH` entry holding a regular file `name` that
/// `ids` may execute.
fn path_search(name: &str, ids: Ids) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from(DEFAULT_PATH));
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|d| {
            if d.is_empty() {
                // An empty entry is the current directory (execvp's rule).
                PathBuf::from(".")
            } else {
                PathBuf::from(std::ffi::OsStr::from_bytes(d))
            }
        })
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| {
                let m = Meta::from_metadata(&m);
                m.kind == FileKind::File && is_executable(&m, ids.uid, ids.gid)
            })
        })
}

/// Decide whether `cmd` may run and as whom (keepalived's `check_script_secure`). `Err` is the
/// reason it is refused, in keepalived's words.
pub fn vet(policy: &ScriptPolicy, cmd: &Command, what: &str) -> Result<Vetted, String> {
    let ids = script_ids(policy, cmd, what)?;
    let mut argv = cmd.argv.clone();
    let Some(first) = argv.first().cloned() else {
        return Err(format!("{what}: empty command"));
    };
    if is_redirect_test(&first) {
        // keepalived returns SC_SYSTEM before any file check: a track script runs it through
        // system(); a notify script is dropped (check_notify_script_secure wants
        // SC_EXECUTABLE), silently there, with a word here.
        if what != "vrrp_script" {
            return Err(format!(
                "{what} '{}' is a file-open test, which keepalived runs only as a vrrp_script",
                cmd.argv.join(" ")
            ));
        }
        let ours = our_ids();
        return Ok(Vetted {
            argv: vec![
                SHELL.to_string(),
                "-c".to_string(),
                shell_command_line(&argv),
            ],
            ids: (ids != ours).then_some(ids),
            insecure: false,
            notes: Vec::new(),
            via_shell: true,
        });
    }
    let mut notes = Vec::new();
    if !first.contains('/') {
        match path_search(&first, ids) {
            Some(p) => {
                let found = p.display().to_string();
                notes.push(format!(
                    "WARNING - script `{first}` resolved by path search to `{found}`. Please specify full path."
                ));
                argv[0] = found;
            }
            None => return Err(format!("Cannot find script {first} in path - disabling")),
        }
    }
    let written = PathBuf::from(&argv[0]);
    let real = std::fs::canonicalize(&written)
        .map_err(|e| format!("Script {first} cannot be accessed - {}", strerror(&e)))?;
    let file = std::fs::metadata(&real)
        .map(|m| Meta::from_metadata(&m))
        .map_err(|_| format!("Unable to access script `{first}` - disabling"))?;
    if !is_executable(&file, ids.uid, ids.gid) {
        return Err(format!(
            "WARNING - script '{first}' is not executable for uid:gid {}:{} - disabling.",
            ids.uid, ids.gid
        ));
    }
    let mut insecure = false;
    if runs_as_root(&file, ids.uid, ids.gid) {
        let mut paths = vec![written.clone()];
        if real != written {
            paths.push(real);
        }
        for p in paths {
            let chain = lstat_chain(&p).map_err(|_| {
                format!("check_script_secure could not find script '{first}' - disabling")
            })?;
            match judge_chain(&chain) {
                ChainVerdict::Secure => {}
                ChainVerdict::WrongType(at) => {
                    return Err(format!(
                        "Wrong file type found in script path '{first}' ({}).",
                        at.display()
                    ));
                }
                ChainVerdict::Unsafe(at) if policy.enable_script_security => {
                    return Err(format!(
                        "Unsafe permissions found for script '{first}' - disabling ({} can be written by non-root).",
                        at.display()
                    ));
                }
                ChainVerdict::Unsafe(at) => {
                    insecure = true;
                    notes.push(format!(
                        "Unsafe permissions found for script '{first}' ({} can be written by non-root).",
                        at.display()
                    ));
                    break;
                }
            }
        }
    }
    let ours = our_ids();
    Ok(Vetted {
        argv,
        ids: (ids != ours).then_some(ids),
        insecure,
        notes,
        via_shell: false,
    })
}

/// Every command of a configuration with what it is ("vrrp_script chk", "notify_master of
/// VI_1", ...), in file order: what [`audit`] vets.
pub fn commands(cfg: &Config) -> Vec<(String, &'static str, &Command)> {
    fn notify<'c>(
        out: &mut Vec<(String, &'static str, &'c Command)>,
        owner: &str,
        n: &'c crate::config::Notify,
    ) {
        let slots: [(&'static str, &Option<Command>); 8] = [
            ("notify_master", &n.master),
            ("notify_backup", &n.backup),
            ("notify_fault", &n.fault),
            ("notify_stop", &n.stop),
            ("notify", &n.any),
            ("notify_master_rx_lower_pri", &n.master_rx_lower_pri),
            ("vrrp_xdp_notify_split_brain", &n.split_brain),
            ("vrrp_xdp_fence", &n.fence),
        ];
        for (what, c) in slots {
            if let Some(c) = c {
                out.push((format!("{what} of {owner}"), what, c));
            }
        }
    }
    let mut out = Vec::new();
    for s in &cfg.scripts {
        out.push((format!("vrrp_script {}", s.name), "vrrp_script", &s.command));
    }
    for i in &cfg.instances {
        notify(&mut out, &format!("vrrp_instance {}", i.name), &i.notify);
    }
    for g in &cfg.sync_groups {
        notify(&mut out, &format!("vrrp_sync_group {}", g.name), &g.notify);
    }
    out
}

/// The security warnings of a configuration, for the start, a reload and `--check`: each
/// refused or insecure script at its location, then keepalived's summary line.
/// `file` names the top-level configuration (for the summary's location).
pub fn audit(cfg: &Config, file: &str) -> Vec<Diagnostic> {
    let policy = ScriptPolicy::from_global(&cfg.global);
    let mut out = Vec::new();
    let (mut any, mut any_insecure) = (false, false);
    for (label, what, cmd) in commands(cfg) {
        match vet(&policy, cmd, what) {
            Ok(v) => {
                any |= !v.via_shell;
                any_insecure |= v.insecure;
                for n in v.notes {
                    out.push(Diagnostic {
                        span: cmd.span.clone(),
                        message: format!("{PREFIX}{label}: {n}"),
                    });
                }
            }
            Err(why) => {
                any_insecure |= why.starts_with("Unsafe permissions");
                let message = if what == "vrrp_script" {
                    format!(
                        "{PREFIX}{label}: {why}; the track script is disabled (instances \
                         tracking it ignore it)"
                    )
                } else {
                    format!("{PREFIX}{label}: {why}; it will not be run")
                };
                out.push(Diagnostic {
                    span: cmd.span.clone(),
                    message,
                });
            }
        }
    }
    if !policy.enable_script_security && any {
        out.push(Diagnostic {
            span: Span::new(file, 0, 0),
            message: format!(
                "{PREFIX}SECURITY VIOLATION - scripts are being executed but script_security not enabled.{}",
                if any_insecure {
                    " There are insecure scripts."
                } else {
                    ""
                }
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: FileKind, mode: u32, uid: u32, gid: u32) -> Meta {
        Meta {
            kind,
            mode,
            uid,
            gid,
        }
    }

    fn chain(items: &[(&str, Meta)]) -> Vec<(PathBuf, Meta)> {
        items.iter().map(|(p, m)| (PathBuf::from(p), *m)).collect()
    }

    const ROOT_DIR: Meta = Meta {
        kind: FileKind::Dir,
        mode: 0o755,
        uid: 0,
        gid: 0,
    };

    #[test]
    fn a_root_owned_path_is_secure() {
        let c = chain(&[
            ("/", ROOT_DIR),
            ("/etc", ROOT_DIR),
            ("/etc/keepalived", ROOT_DIR),
            ("/etc/keepalived/chk.sh", m(FileKind::File, 0o755, 0, 0)),
        ]);
        assert_eq!(judge_chain(&c), ChainVerdict::Secure);
    }

    #[test]
    fn a_world_writable_directory_is_unsafe_unless_sticky() {
        let mut c = chain(&[
            ("/", ROOT_DIR),
            ("/tmp", m(FileKind::Dir, 0o1777, 0, 0)),
            ("/tmp/s", m(FileKind::Dir, 0o777, 0, 0)),
            ("/tmp/s/chk.sh", m(FileKind::File, 0o755, 0, 0)),
        ]);
        assert_eq!(judge_chain(&c), ChainVerdict::Unsafe("/tmp/s".into()));
        // The sticky bit keeps others from replacing what they do not own (as /tmp).
        c[2].1.mode = 0o1777;
        assert_eq!(judge_chain(&c), ChainVerdict::Secure);
    }

    #[test]
    fn group_write_counts_only_for_a_non_root_group() {
        let c = |gid| {
            chain(&[
                ("/", ROOT_DIR),
                ("/opt", m(FileKind::Dir, 0o775, 0, gid)),
                ("/opt/chk", m(FileKind::File, 0o755, 0, 0)),
            ])
        };
        assert_eq!(judge_chain(&c(0)), ChainVerdict::Secure);
        assert_eq!(judge_chain(&c(100)), ChainVerdict::Unsafe("/opt".into()));
    }

    #[test]
    fn a_file_writable_by_others_or_owned_by_a_user_is_unsafe() {
        let c = |f: Meta| chain(&[("/", ROOT_DIR), ("/chk", f)]);
        assert_eq!(
            judge_chain(&c(m(FileKind::File, 0o757, 0, 0))),
            ChainVerdict::Unsafe("/chk".into())
        );
        assert_eq!(
            judge_chain(&c(m(FileKind::File, 0o775, 0, 50))),
            ChainVerdict::Unsafe("/chk".into())
        );
        assert_eq!(
            judge_chain(&c(m(FileKind::File, 0o755, 1000, 0))),
            ChainVerdict::Unsafe("/chk".into())
        );
        // A directory owned by a user is unsafe whatever its mode (they may chmod it).
        let d = chain(&[
            ("/", ROOT_DIR),
            ("/home", m(FileKind::Dir, 0o755, 1000, 1000)),
            ("/home/chk", m(FileKind::File, 0o755, 0, 0)),
        ]);
        assert_eq!(judge_chain(&d), ChainVerdict::Unsafe("/home".into()));
    }

    #[test]
    fn wrong_types_are_refused_and_a_root_link_in_the_middle_is_not() {
        let dev = chain(&[
            ("/", ROOT_DIR),
            ("/dev", ROOT_DIR),
            ("/dev/null", m(FileKind::Other, 0o666, 0, 0)),
        ]);
        assert_eq!(
            judge_chain(&dev),
            ChainVerdict::WrongType("/dev/null".into())
        );
        let file_mid = chain(&[
            ("/", ROOT_DIR),
            ("/f", m(FileKind::File, 0o755, 0, 0)),
            ("/f/x", m(FileKind::File, 0o755, 0, 0)),
        ]);
        assert_eq!(judge_chain(&file_mid), ChainVerdict::WrongType("/f".into()));
        // Merged /usr: /bin -> usr/bin, root's.
        let bin = chain(&[
            ("/", ROOT_DIR),
            ("/bin", m(FileKind::Symlink, 0o777, 0, 0)),
            ("/bin/sh", m(FileKind::Symlink, 0o777, 0, 0)),
        ]);
        assert_eq!(judge_chain(&bin), ChainVerdict::Secure);
        let user_link = chain(&[
            ("/", ROOT_DIR),
            ("/bin", m(FileKind::Symlink, 0o777, 1000, 0)),
            ("/bin/sh", m(FileKind::File, 0o755, 0, 0)),
        ]);
        assert_eq!(
            judge_chain(&user_link),
            ChainVerdict::WrongType("/bin".into())
        );
    }

    #[test]
    fn executable_and_root_rules_are_keepalived_s() {
        let f = m(FileKind::File, 0o750, 0, 50);
        assert!(is_executable(&f, 0, 0));
        assert!(is_executable(&f, 7, 50), "group x");
        assert!(!is_executable(&f, 7, 8), "no other x");
        let own = m(FileKind::File, 0o070, 7, 7);
        assert!(
            !is_executable(&own, 7, 7),
            "owner without u+x, as keepalived"
        );
        assert!(runs_as_root(&f, 0, 50));
        assert!(runs_as_root(&f, 7, 0));
        assert!(!runs_as_root(&f, 7, 50));
        assert!(
            runs_as_root(&m(FileKind::File, 0o4755, 0, 50), 7, 50),
            "set-uid root"
        );
        assert!(
            runs_as_root(&m(FileKind::File, 0o2755, 50, 0), 7, 50),
            "set-gid root"
        );
    }

    #[test]
    fn config_file_concerns() {
        assert_eq!(
            config_file_concern(&m(FileKind::File, 0o644, 0, 0), 0),
            None
        );
        assert_eq!(
            config_file_concern(&m(FileKind::File, 0o664, 0, 0), 0),
            None
        );
        assert_eq!(
            config_file_concern(&m(FileKind::File, 0o644, 7, 7), 7),
            None
        );
        assert!(
            config_file_concern(&m(FileKind::File, 0o644, 1000, 0), 0)
                .is_some_and(|w| w.contains("uid 1000"))
        );
        assert!(
            config_file_concern(&m(FileKind::File, 0o666, 0, 0), 0)
                .is_some_and(|w| w.contains("world-writable (mode 0666)"))
        );
        assert!(
            config_file_concern(&m(FileKind::File, 0o664, 0, 100), 0)
                .is_some_and(|w| w.contains("gid 100"))
        );
    }

    fn cmd(argv: &[&str]) -> Command {
        Command {
            argv: argv.iter().map(|a| a.to_string()).collect(),
            user: None,
            span: Span::new("t.conf", 1, 1),
        }
    }

    #[test]
    fn a_redirect_only_test_is_keepalived_s() {
        assert!(is_redirect_test("</run/nginx.pid"));
        assert!(is_redirect_test("< \t/run/nginx.pid"));
        assert!(!is_redirect_test("<"), "a lone '<' is a command name");
        assert!(!is_redirect_test("<run/x"), "relative: not the test");
        assert!(!is_redirect_test("/bin/true"));
        assert_eq!(
            shell_command_line(&["</a b".into(), "it's".into(), "$HOME".into()]),
            "</a b 'it'\\''s' '$HOME'"
        );
    }

    #[test]
    fn a_file_open_test_runs_through_the_shell_as_a_track_script_only() {
        let policy = ScriptPolicy::default();
        let v = vet(&policy, &cmd(&["</etc/hostname"]), "vrrp_script").expect("track script");
        assert_eq!(v.argv, ["/bin/sh", "-c", "</etc/hostname"]);
        assert!(v.via_shell && !v.insecure && v.notes.is_empty());
        let why = vet(&policy, &cmd(&["</etc/hostname"]), "notify_master").unwrap_err();
        assert!(why.contains("file-open test"), "{why}");
    }

    #[test]
    fn a_file_open_test_passes_while_the_file_opens() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = std::env::temp_dir().join(format!("vx-redirect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("nginx.pid");
        let test = format!("<{}", file.display());
        let policy = ScriptPolicy::default();
        let run = |argv: &[String]| {
            rt.block_on(exec::run(
                argv,
                &[],
                None,
                std::time::Duration::from_secs(5),
            ))
            .outcome
        };
        let v = vet(&policy, &cmd(&[&test]), "vrrp_script").expect("vetted");
        assert!(!run(&v.argv).success(), "no file: the test fails");
        std::fs::write(&file, "1\n").expect("write");
        assert!(run(&v.argv).success(), "the file opens: the test passes");
        std::fs::remove_dir_all(&dir).ok();
    }
}
