//! A block's statements cut into keyword items: the keyword table decides where a keyword's
//! words end, and unknown, ignored and unsupported keywords are warned about here.

use super::*;
use crate::config::lexer::Tok;
use crate::config::tree::{Block, Stmt};
use crate::config::{ConfigError, Diagnostic, Span};

/// One keyword with its words (and block) after [`split`].
pub(super) struct Item<'a> {
    pub(super) kw: &'a Tok,
    pub(super) args: &'a [Tok],
    pub(super) block: Option<&'a Block>,
}

impl Item<'_> {
    pub(super) fn name(&self) -> &str {
        &self.kw.text
    }
    pub(super) fn arg(&self, n: usize) -> Res<&Tok> {
        self.args.get(n).ok_or_else(|| {
            ConfigError::at(&self.kw.span, format!("'{}' needs a value", self.kw.text))
        })
    }
    pub(super) fn opt(&self, n: usize) -> Option<&Tok> {
        self.args.get(n)
    }
}

pub(super) struct Ctx<'w> {
    pub(super) warnings: &'w mut Vec<Diagnostic>,
    /// Keywords without VRRP behaviour met so far, for one warning per file
    /// ([`Ctx::warn_grouped`]).
    pub(super) grouped: Vec<(Span, String)>,
}

impl<'w> Ctx<'w> {
    pub(super) fn new(warnings: &'w mut Vec<Diagnostic>) -> Self {
        Self {
            warnings,
            grouped: Vec::new(),
        }
    }

    /// One warning per file listing the keywords without VRRP behaviour (mail, SNMP, DBus,
    /// process tuning, LVS settings), at the first of them.
    pub(super) fn warn_grouped(&mut self) {
        let mut files: Vec<(Span, Vec<String>)> = Vec::new();
        for (span, name) in std::mem::take(&mut self.grouped) {
            let entry = format!("{name} (line {})", span.line);
            match files.iter_mut().find(|(s, _)| s.file == span.file) {
                Some((_, names)) => names.push(entry),
                None => files.push((span, vec![entry])),
            }
        }
        for (span, names) in files {
            self.warn(
                &span,
                format!(
                    "no effect in vrrp-agent (mail, SNMP, DBus, process tuning or LVS \
                     settings, not VRRP behaviour) - ignored: {}",
                    names.join(", ")
                ),
            );
        }
    }

    pub(super) fn warn(&mut self, span: &Span, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            span: span.clone(),
            message: message.into(),
        });
    }

    /// Cut a statement into keyword items. keepalived hands a handler the whole line and the
    /// handler reads the words it wants, silently dropping the rest; so `state BACKUP
    /// interface eth0` is only `state BACKUP` to keepalived. We read each keyword instead
    /// (what the author meant), and warn where keepalived would read the line differently.
    pub(super) fn split<'a>(&mut self, kind: Kind, stmt: &'a Stmt) -> Vec<Item<'a>> {
        let words = stmt.words.as_slice();
        let is_kw = |t: &Tok| !t.quoted && !matches!(classify(kind, &t.text), Class::Unknown);
        let mut items = Vec::new();
        let mut i = 0;
        let mut warned = false;
        while let Some(kw) = words.get(i) {
            let (min, max) = match classify(kind, &kw.text) {
                Class::Known { min, max, .. } => (min, max),
                // keepalived reports the keyword and ignores the whole line.
                Class::Unknown => (words.len(), MANY),
                _ => (0, MANY),
            };
            let mut j = (i + 1).saturating_add(min).min(words.len());
            while j < words.len() && j - (i + 1) < max && !words.get(j).is_some_and(is_kw) {
                j += 1;
            }
            items.push(Item {
                kw,
                args: words.get(i + 1..j).unwrap_or_default(),
                block: None,
            });
            let Some(next) = words.get(j) else { break };
            if is_kw(next) {
                if !warned {
                    self.warn(
                        &next.span,
                        format!(
                            "'{}' on the same line as '{}': keepalived reads only the first \
                             keyword of a line and ignores the rest; vrrp-agent reads both",
                            next.text, kw.text
                        ),
                    );
                    warned = true;
                }
                i = j;
            } else {
                self.warn(
                    &next.span,
                    format!(
                        "extra parameter '{}' after '{}' ignored",
                        next.text, kw.text
                    ),
                );
                break;
            }
        }
        if let Some(last) = items.last_mut() {
            last.block = stmt.block.as_ref();
        }
        items
    }

    /// Items of a keyword block, with unknown, ignored and foreign keywords dealt with and
    /// block presence checked. Returns only the known ones.
    pub(super) fn items<'a>(&mut self, kind: Kind, stmts: &'a [Stmt]) -> Res<Vec<Item<'a>>> {
        let mut out = Vec::new();
        for stmt in stmts {
            for item in self.split(kind, stmt) {
                match classify(kind, item.name()) {
                    Class::Known { block, .. } => {
                        match (block, item.block) {
                            (Blk::Yes, None) => {
                                return Err(ConfigError::at(
                                    &item.kw.span,
                                    format!("'{}' needs a '{{ }}' block", item.name()),
                                ));
                            }
                            (Blk::No, Some(b)) => {
                                return Err(ConfigError::at(
                                    &b.open,
                                    format!("unexpected '{{' after '{}'", item.name()),
                                ));
                            }
                            _ => {}
                        }
                        match entry(kind, item.name()).map(|e| e.note) {
                            Some(Note::Partial(what)) => self.warn(
                                &item.kw.span,
                                format!(
                                    "'{}' is only partly supported by vrrp-agent: {what}",
                                    item.name()
                                ),
                            ),
                            Some(Note::NoEffect(why)) => self.warn(
                                &item.kw.span,
                                format!(
                                    "'{}' has no effect in vrrp-agent ({why}) - checked, then \
                                     ignored",
                                    item.name()
                                ),
                            ),
                            _ => {}
                        }
                        out.push(item);
                    }
                    Class::Ignored => self
                        .grouped
                        .push((item.kw.span.clone(), item.kw.text.clone())),
                    Class::Unsupported(why) => self.warn(
                        &item.kw.span,
                        format!(
                            "'{}' is not supported by vrrp-agent ({why}) - ignored",
                            item.name()
                        ),
                    ),
                    Class::Foreign(msg) => {
                        self.warn(&item.kw.span, format!("'{}' {msg}", item.name()))
                    }
                    Class::Unknown => {
                        let hint = suggest(kind, item.name())
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default();
                        self.warn(
                            &item.kw.span,
                            format!("unknown keyword '{}' - ignored{hint}", item.name()),
                        )
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Items statement by statement, so that warnings come out in file order.
pub(super) struct ItemIter<'a> {
    pub(super) kind: Kind,
    pub(super) stmts: &'a [Stmt],
    pub(super) pos: usize,
    pub(super) buf: std::collections::VecDeque<Item<'a>>,
}

impl<'a> ItemIter<'a> {
    pub(super) fn new(kind: Kind, stmts: &'a [Stmt]) -> Self {
        Self {
            kind,
            stmts,
            pos: 0,
            buf: std::collections::VecDeque::new(),
        }
    }

    pub(super) fn next(&mut self, ctx: &mut Ctx<'_>) -> Res<Option<Item<'a>>> {
        loop {
            if let Some(item) = self.buf.pop_front() {
                return Ok(Some(item));
            }
            let Some(stmt) = self.stmts.get(self.pos) else {
                return Ok(None);
            };
            self.pos += 1;
            self.buf = ctx.items(self.kind, std::slice::from_ref(stmt))?.into();
        }
    }
}

/// "did you mean" for an unknown keyword: the nearest keyword of this block, else of any
/// block (then saying which), when it is close enough to be a typo.
pub(super) fn suggest(kind: Kind, name: &str) -> Option<String> {
    let limit = (name.chars().count() / 4).clamp(1, 3);
    let best = |k: Kind| {
        k.table()
            .iter()
            .map(|e| (strsim::damerau_levenshtein(name, e.name), e.name))
            .filter(|(d, _)| *d <= limit)
            .min()
    };
    if let Some((_, near)) = best(kind) {
        return Some(format!("did you mean '{near}'?"));
    }
    let (_, near, other) = Kind::ALL
        .into_iter()
        .filter(|k| *k != kind)
        .filter_map(|k| best(k).map(|(d, n)| (d, n, k)))
        .min_by_key(|(d, _, _)| *d)?;
    Some(format!(
        "did you mean '{near}'? It belongs in {}, not in {}",
        other.name(),
        kind.name()
    ))
}
