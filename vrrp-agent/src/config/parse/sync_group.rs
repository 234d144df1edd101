//! `vrrp_sync_group`.

use std::collections::HashSet;

use super::*;
use crate::config::lexer::Tok;
use crate::config::tree::Stmt;
use crate::config::types::*;

/// `vrrp_sync_group` keywords.
pub(super) const KEYWORDS: &[Kw] = &[
    block("group"),
    args("notify_master", 1, 3),
    args("notify_backup", 1, 3),
    args("notify_fault", 1, 3),
    args("notify_stop", 1, 3),
    args("notify", 1, 3),
    ignored("smtp_alert"),
    unsupported("notify_priority_changes", NOT_YET),
    unsupported("track_interface", NOT_YET),
    unsupported("track_script", NOT_YET),
    unsupported("track_file", NOT_YET),
    unsupported("track_process", NOT_YET),
    unsupported("track_bfd", "BFD is not part of vrrp-agent"),
    unsupported("global_tracking", NOT_YET),
    unsupported("sync_group_tracking_weight", NOT_YET),
];

pub(super) fn sync_group(ctx: &mut Ctx<'_>, name: &Tok, stmts: &[Stmt]) -> Res<SyncGroup> {
    let mut g = SyncGroup {
        name: name.text.clone(),
        span: name.span.clone(),
        instances: Vec::new(),
        notify: Notify::default(),
    };
    let mut seen = HashSet::new();
    let mut it = ItemIter::new(Kind::SyncGroup, stmts);
    while let Some(item) = it.next(ctx)? {
        if notify_item(ctx, &mut g.notify, &item)? {
            continue;
        }
        if item.name() == "group" {
            for w in value_words(item.block)? {
                if !seen.insert(w.text.clone()) {
                    return err(w, format!("'{}' is listed twice in the group", w.text));
                }
                g.instances.push((w.text.clone(), w.span.clone()));
            }
        }
    }
    Ok(g)
}
