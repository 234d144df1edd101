//! `vrrp_script`, `track_file` and `vrrp_track_process`.

use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::config::lexer::Tok;
use crate::config::tree::Stmt;
use crate::config::types::*;

/// `vrrp_script` keywords.
pub(super) const SCRIPT_KEYWORDS: &[Kw] = &[
    args("script", 1, 1),
    args("interval", 1, 1),
    args("timeout", 1, 1),
    args("rise", 1, 1),
    args("fall", 1, 1),
    args("weight", 1, 2),
    args("user", 1, 2),
    args("init_fail", 0, 0),
];

/// `track_file` keywords.
pub(super) const TRACK_FILE_KEYWORDS: &[Kw] = &[
    args("file", 1, 1),
    args("weight", 1, 2),
    args("init_file", 0, 2),
];

/// `vrrp_track_process` keywords.
pub(super) const TRACK_PROCESS_KEYWORDS: &[Kw] = &[
    args("process", 1, MANY),
    args("weight", 1, 2),
    args("quorum", 1, 1),
    args("quorum_max", 1, 1),
    args("delay", 1, 1),
    args("param_match", 0, 1).no_effect("processes are matched on the exact command"),
    args("full_command", 0, 0).no_effect("processes are matched on the exact command"),
    unsupported("terminate_delay", NOT_YET),
    unsupported("fork_delay", NOT_YET),
];

pub(super) fn script(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<VrrpScript> {
    let mut command_: Option<Command> = None;
    let mut s = VrrpScript {
        name: name.text.clone(),
        span: name.span.clone(),
        command: Command {
            argv: Vec::new(),
            user: None,
            span: name.span.clone(),
        },
        interval: Duration::from_secs(1),
        timeout: Duration::ZERO,
        weight: Weight {
            value: 0,
            reverse: false,
        },
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    let mut user = None;
    let mut it = ItemIter::new(Kind::Script, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "script" => command_ = Some(command(&item)?),
            "interval" | "timeout" => {
                let t = item.arg(0)?;
                let mut v = uint(t, 0, u64::from(u32::MAX), item.name())?;
                if v == 0 {
                    // "vrrp script interval must be greater than 0, setting to 1".
                    ctx.warn(
                        &t.span,
                        format!("{} must be greater than 0 - using 1", item.name()),
                    );
                    v = 1;
                }
                let d = Duration::from_secs(v);
                if item.name() == "interval" {
                    s.interval = d;
                } else {
                    s.timeout = d;
                }
            }
            "weight" => s.weight = weight(ctx, item.args, Limit::Script, item.kw)?,
            "rise" => {
                s.rise = u32::try_from(uint(item.arg(0)?, 1, i32::MAX as u64, "rise")?).unwrap_or(1)
            }
            "fall" => {
                s.fall = u32::try_from(uint(item.arg(0)?, 1, i32::MAX as u64, "fall")?).unwrap_or(1)
            }
            "user" => {
                user = Some(ScriptUser {
                    user: item.arg(0)?.text.clone(),
                    group: item.opt(1).map(|t| t.text.clone()),
                })
            }
            "init_fail" => s.init_fail = true,
            _ => {}
        }
    }
    let Some(mut cmd) = command_ else {
        // keepalived: "No script set for vrrp_script %s - removing"; a track_script naming it
        // would then fail, so refuse here where the cause is.
        return err(name, format!("vrrp_script '{}' has no 'script'", name.text));
    };
    cmd.user = user;
    s.command = cmd;
    Ok(s)
}

pub(super) fn track_file(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<TrackFile> {
    let mut path = None;
    let mut w = Weight {
        value: 1,
        reverse: false,
    };
    let mut init_file = None;
    let mut it = ItemIter::new(Kind::TrackFile, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "file" => path = Some(PathBuf::from(&item.arg(0)?.text)),
            "weight" => w = weight(ctx, item.args, Limit::Plain254, item.kw)?,
            "init_file" => {
                let mut f = InitFile {
                    value: 0,
                    overwrite: false,
                };
                for t in item.args {
                    if t.text == "overwrite" {
                        f.overwrite = true;
                    } else {
                        f.value = int(
                            t,
                            i64::from(i32::MIN),
                            i64::from(i32::MAX),
                            "init_file value",
                        )?;
                    }
                }
                init_file = Some(f);
            }
            _ => {}
        }
    }
    let Some(path) = path else {
        return err(name, format!("track_file '{}' has no 'file'", name.text));
    };
    Ok(TrackFile {
        name: name.text.clone(),
        span: name.span.clone(),
        path,
        weight: w,
        init_file,
    })
}

pub(super) fn track_process(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<TrackProcess> {
    let mut t = TrackProcess {
        name: name.text.clone(),
        span: name.span.clone(),
        process: String::new(),
        params: Vec::new(),
        weight: Weight {
            value: 0,
            reverse: false,
        },
        quorum: 1,
        quorum_max: u32::MAX,
        delay: Duration::ZERO,
    };
    let mut it = ItemIter::new(Kind::TrackProcess, stmts);
    while let Some(item) = it.next(ctx)? {
        match item.name() {
            "process" => {
                t.process = item.arg(0)?.text.clone();
                t.params = item.args.iter().skip(1).map(|a| a.text.clone()).collect();
            }
            "weight" => t.weight = weight(ctx, item.args, Limit::Plain254, item.kw)?,
            "quorum" => {
                t.quorum = u32::try_from(uint(item.arg(0)?, 1, 65535, "quorum")?).unwrap_or(1)
            }
            "quorum_max" => {
                t.quorum_max =
                    u32::try_from(uint(item.arg(0)?, 1, u64::from(u32::MAX), "quorum_max")?)
                        .unwrap_or(u32::MAX)
            }
            "delay" => t.delay = Duration::from_micros(micros(item.arg(0)?, "delay")?),
            _ => {}
        }
    }
    if t.process.is_empty() {
        return err(
            name,
            format!("vrrp_track_process '{}' has no 'process'", name.text),
        );
    }
    if t.quorum > t.quorum_max {
        return err(name, "quorum is greater than quorum_max");
    }
    Ok(t)
}
