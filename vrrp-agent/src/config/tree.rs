//! Token lines to statements with `{ }` blocks. A statement is the words of one line up to a
//! brace; `{` opens a block for the statement on its line, or for the previous statement when
//! it stands first on a line (keepalived accepts the brace on the next line: process_stream()
//! `need_bob`); words after a brace start a new statement, as read_line() keeps them as the
//! next line.

use super::lexer::{Line, Tok, TokKind};
use super::{ConfigError, Span};

/// Deeper nesting is refused (keepalived's grammar needs three levels).
const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug)]
pub(crate) struct Stmt {
    pub words: Vec<Tok>,
    pub block: Option<Block>,
}

#[derive(Clone, Debug)]
pub(crate) struct Block {
    pub open: Span,
    pub stmts: Vec<Stmt>,
}

struct Frame {
    open: Option<Span>,
    stmts: Vec<Stmt>,
    /// The last statement may still take words (same line) or a block.
    last_open_line: bool,
}

pub(crate) fn build(lines: Vec<Line>, _name: &str) -> Result<Vec<Stmt>, ConfigError> {
    let mut stack = vec![Frame {
        open: None,
        stmts: Vec::new(),
        last_open_line: false,
    }];
    for line in lines {
        if let Some(top) = stack.last_mut() {
            top.last_open_line = false;
        }
        for tok in line {
            match tok.kind {
                TokKind::Word => {
                    let Some(top) = stack.last_mut() else { break };
                    match top.stmts.last_mut() {
                        Some(last) if top.last_open_line && last.block.is_none() => {
                            last.words.push(tok)
                        }
                        _ => {
                            top.stmts.push(Stmt {
                                words: vec![tok],
                                block: None,
                            });
                            top.last_open_line = true;
                        }
                    }
                }
                TokKind::Open => {
                    let attachable = stack
                        .last()
                        .and_then(|t| t.stmts.last())
                        .is_some_and(|s| s.block.is_none());
                    if !attachable {
                        return Err(ConfigError::at(&tok.span, "unexpected '{'"));
                    }
                    if stack.len() > MAX_DEPTH {
                        return Err(ConfigError::at(&tok.span, "blocks nested too deeply"));
                    }
                    stack.push(Frame {
                        open: Some(tok.span),
                        stmts: Vec::new(),
                        last_open_line: false,
                    });
                }
                TokKind::Close => {
                    if stack.len() < 2 {
                        return Err(ConfigError::at(&tok.span, "unexpected '}'"));
                    }
                    let Some(done) = stack.pop() else { break };
                    let Some(top) = stack.last_mut() else { break };
                    if let (Some(owner), Some(open)) = (top.stmts.last_mut(), done.open) {
                        owner.block = Some(Block {
                            open,
                            stmts: done.stmts,
                        });
                    }
                    top.last_open_line = false;
                }
            }
        }
    }
    if stack.len() > 1 {
        let open = stack.last().and_then(|f| f.open.clone());
        if let Some(open) = open {
            return Err(ConfigError::at(&open, "'{' is never closed"));
        }
    }
    Ok(stack.pop().map(|f| f.stmts).unwrap_or_default())
}
