//! Lines to tokens, as keepalived's lib/parser.c read_line()/alloc_strvec_r() do:
//! `#` and `!` start a comment anywhere outside quotes (decomment()), `"..."` is one word
//! without its quotes, `{` and `}` are words of their own even when glued to text, `include`
//! splices files in at line level, `$NAME=value` defines and `$NAME`/`${NAME}` substitutes,
//! `${_PWD}`, `${_INSTANCE}`, `${_RANDOM [MIN [MAX]]}` and `${_ENV NAME}` are predefined, a
//! substitution is scanned again (recursive), and `@ID` lines are kept only for a matching
//! config id (`@^ID` reverses the test). A definition whose value ends in `\` goes on over
//! the next lines and is used as lines of its own (`$NAME` alone on a line); `${_HASH}` and
//! `${_BANG}` are `#` and `!`; `~SEQ(..)`, `~SEQx(..)` and `~LST(..)` at the start of a line
//! repeat the rest of it (their parameters are not substituted, unlike keepalived's).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::glob;
use super::{ConfigError, Diagnostic, Span};

/// Includes deeper than this are taken for a loop.
const MAX_INCLUDE_DEPTH: usize = 16;
/// Substitutions on one line beyond this are taken for definitions expanding without end.
const MAX_SUBSTITUTIONS: usize = 1000;
/// Lines made by `~SEQ` / `~LST` beyond this are refused (keepalived's manual shows 65024).
const MAX_EXPANDED_LINES: usize = 1 << 18;
/// A line longer than this after substitution is refused (keepalived truncates at MAXBUF,
/// 1024 bytes; we allow far more, but not without bound).
const MAX_LINE_CHARS: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    Word,
    Open,
    Close,
}

#[derive(Clone, Debug)]
pub(crate) struct Tok {
    pub kind: TokKind,
    pub text: String,
    pub quoted: bool,
    pub span: Span,
}

/// One logical line of tokens (never empty).
pub(crate) type Line = Vec<Tok>;

struct Lexer<'w> {
    /// False for text that must not reach the file system (see `config::parse_str_sandboxed`).
    follow_includes: bool,
    defs: HashMap<String, String>,
    out: Vec<Line>,
    warnings: &'w mut Vec<Diagnostic>,
    /// keepalived's `-i` config id: `@ID` lines are kept when it is ID, `@^ID` lines when not.
    config_id: Option<&'w str>,
    /// Multi-line definitions (`$NAME=first \` and lines up to one not ending in '\').
    multi: HashMap<String, Vec<String>>,
    /// The multi-line definition whose lines are being read.
    continuing: Option<String>,
    /// Lines made by `~SEQ` / `~LST` so far.
    expanded: usize,
}

pub(crate) fn lex(
    text: &str,
    name: &str,
    dir: Option<&Path>,
    config_id: Option<&str>,
    warnings: &mut Vec<Diagnostic>,
) -> Result<Vec<Line>, ConfigError> {
    let mut lx = Lexer {
        follow_includes: dir.is_some(),
        defs: HashMap::new(),
        out: Vec::new(),
        warnings,
        config_id,
        multi: HashMap::new(),
        continuing: None,
        expanded: 0,
    };
    lx.file(text, Arc::from(name), dir.unwrap_or(Path::new("")), 0)?;
    Ok(lx.out)
}

/// A character with the column it came from (substituted text keeps the `$`'s column).
type Chars = Vec<(char, u32)>;

impl Lexer<'_> {
    fn warn(&mut self, span: &Span, message: impl Into<String>) {
        self.warnings.push(Diagnostic {
            span: span.clone(),
            message: message.into(),
        });
    }

    fn file(
        &mut self,
        text: &str,
        name: Arc<str>,
        dir: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        // A byte-order mark (editors on Windows write one) is not part of the first keyword.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (idx, raw) in text.lines().enumerate() {
            let line_no = u32::try_from(idx + 1).unwrap_or(u32::MAX);
            let span_at = |col: u32| Span {
                file: name.clone(),
                line: line_no,
                col,
            };
            let chars: Chars = raw.chars().zip(1u32..).collect();
            let mut chars = decomment(&chars, &span_at)?;
            if let Some(def) = self.continuing.take() {
                // A line of a multi-line definition: it goes on while lines end in '\'.
                let text: String = chars.iter().map(|c| c.0).collect();
                let (text, more) = match text.strip_suffix('\\') {
                    Some(t) => (t.trim_end().to_string(), true),
                    None => (text, false),
                };
                if !text.is_empty() {
                    self.multi.entry(def.clone()).or_default().push(text);
                }
                if more {
                    self.continuing = Some(def);
                }
                continue;
            }
            if chars.is_empty() {
                continue;
            }
            if chars.first().map(|c| c.0) == Some('@') {
                // read_line(): `@ID rest` is kept when the config id is ID, `@^ID rest` when it
                // is not (with no config id, every `@ID` line is dropped); a line with nothing
                // after the id is dropped.
                let rev = chars.get(1).map(|c| c.0) == Some('^');
                let ofs = if rev { 2 } else { 1 };
                let Some(ws) = chars.iter().position(|c| c.0 == ' ' || c.0 == '\t') else {
                    continue;
                };
                let id: String = chars
                    .get(ofs..ws)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.0)
                    .collect();
                if (self.config_id == Some(id.as_str())) == rev {
                    continue;
                }
                chars = trim_start(chars.get(ws..).unwrap_or_default());
            }
            self.line(chars, &span_at, dir, depth, 0)?;
        }
        Ok(())
    }

    /// One line after comments and `@ID`: a definition, a multi-line definition's use, or
    /// (after substitution) an include or a line of tokens. `nest` counts multi-line
    /// definitions expanding inside each other.
    fn line(
        &mut self,
        mut chars: Chars,
        span_at: &dyn Fn(u32) -> Span,
        dir: &Path,
        depth: usize,
        nest: usize,
    ) -> Result<(), ConfigError> {
        if let Some((name, value)) = definition(&chars) {
            // check_definition(): a value ending in '\' goes on on the next lines, and is
            // then used as lines of its own (`$NAME` alone on a line).
            self.defs.remove(&name);
            self.multi.remove(&name);
            match value.strip_suffix('\\') {
                Some(first) => {
                    let first = first.trim_end();
                    self.multi.insert(
                        name.clone(),
                        (!first.is_empty())
                            .then(|| first.to_string())
                            .into_iter()
                            .collect(),
                    );
                    self.continuing = Some(name);
                }
                None => {
                    self.defs.insert(name, value);
                }
            }
            return Ok(());
        }
        if let Some(c) = chars.first()
            && c.0 == '~'
        {
            let span = span_at(c.1);
            let text: String = chars.iter().map(|c| c.0).collect();
            if let Some((vars, rows, rest)) =
                sequence(&text).map_err(|m| ConfigError::at(&span, m))?
            {
                if nest >= MAX_INCLUDE_DEPTH {
                    return Err(ConfigError::at(
                        &span,
                        format!("~SEQ/~LST nested deeper than {MAX_INCLUDE_DEPTH}"),
                    ));
                }
                // The rest of the line, at the column it starts.
                let skip = text[..text.len() - rest.len()].chars().count();
                let rest: Chars = chars.get(skip..).unwrap_or_default().to_vec();
                for row in rows {
                    self.expanded += 1;
                    if self.expanded > MAX_EXPANDED_LINES {
                        return Err(ConfigError::at(
                            &span,
                            format!("~SEQ/~LST expand to more than {MAX_EXPANDED_LINES} lines"),
                        ));
                    }
                    for (v, value) in vars.iter().zip(row) {
                        self.defs.insert(v.clone(), value);
                    }
                    self.line(rest.clone(), span_at, dir, depth, nest + 1)?;
                }
                return Ok(());
            }
        }
        let text: String = chars.iter().map(|c| c.0).collect();
        let whole = text
            .strip_prefix("${")
            .and_then(|t| t.strip_suffix('}'))
            .or_else(|| text.strip_prefix('$'));
        if let Some(lines) = whole.and_then(|n| self.multi.get(n)).cloned() {
            let span = span_at(chars.first().map_or(1, |c| c.1));
            if nest >= MAX_INCLUDE_DEPTH {
                return Err(ConfigError::at(
                    &span,
                    format!(
                        "{text}: multi-line definitions nested deeper than {MAX_INCLUDE_DEPTH} (a loop?)"
                    ),
                ));
            }
            let col = span.col;
            for l in lines {
                let chars: Chars = l.chars().map(|c| (c, col)).collect();
                self.line(chars, span_at, dir, depth, nest + 1)?;
            }
            return Ok(());
        }
        if chars.iter().any(|c| c.0 == '$') {
            let span = span_at(chars.first().map_or(1, |c| c.1));
            chars = self.substitute(&chars, dir, &span)?;
            chars = decomment(&chars, span_at)?;
            if chars.is_empty() {
                return Ok(());
            }
        }
        if let Some(rest) = include_arg(&chars) {
            let span = span_at(chars.first().map_or(1, |c| c.1));
            let pattern: String = rest.iter().map(|c| c.0).collect();
            let pattern = pattern.trim().trim_matches('"').to_string();
            let strict = chars.get(7).is_some_and(|c| !c.0.is_whitespace());
            return self.include(&pattern, strict, &span, dir, depth);
        }
        let toks = tokenize(&chars, span_at)?;
        if !toks.is_empty() {
            self.out.push(toks);
        }
        Ok(())
    }

    /// `include`: plain include only logs problems in keepalived (include_check off by
    /// default), so they are warnings here; `includer`/`includem`/`includew`/`includeb`/
    /// `includea` ask for the checks, so they are errors.
    fn include(
        &mut self,
        pattern: &str,
        strict: bool,
        span: &Span,
        dir: &Path,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth >= MAX_INCLUDE_DEPTH {
            return Err(ConfigError::at(
                span,
                format!("include nested deeper than {MAX_INCLUDE_DEPTH} files (a loop?)"),
            ));
        }
        if pattern.is_empty() {
            return Err(ConfigError::at(span, "include without a file name"));
        }
        if !self.follow_includes {
            return Err(ConfigError::at(
                span,
                format!("include {pattern}: includes are not read here"),
            ));
        }
        let full = if Path::new(pattern).is_absolute() {
            PathBuf::from(pattern)
        } else {
            dir.join(pattern)
        };
        let matches = glob::glob(&full.to_string_lossy());
        if matches.is_empty() {
            let msg = format!("include {pattern}: no file matches");
            if strict {
                return Err(ConfigError::at(span, msg));
            }
            self.warn(span, msg);
            return Ok(());
        }
        for path in matches {
            if let Some(why) = unusable(&path) {
                let msg = format!("include {}: {why} - skipping", path.display());
                if strict {
                    return Err(ConfigError::at(span, msg));
                }
                self.warn(span, msg);
                continue;
            }
            if let Some(w) = crate::security::check_config_file(&path) {
                self.warn(span, w);
            }
            let bytes = match super::read_bounded(&path) {
                Ok(b) => b,
                // A truncated include would be a different configuration: never skipped.
                Err(e) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                    return Err(ConfigError::at(
                        span,
                        format!("include {}: {e}", path.display()),
                    ));
                }
                Err(e) => {
                    let msg = format!("include {}: {e}", path.display());
                    if strict {
                        return Err(ConfigError::at(span, msg));
                    }
                    self.warn(span, msg);
                    continue;
                }
            };
            let text = String::from_utf8_lossy(&bytes);
            let sub_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
            let name: Arc<str> = Arc::from(path.display().to_string().as_str());
            self.file(&text, name, &sub_dir, depth + 1)?;
        }
        Ok(())
    }

    /// keepalived's replace_param(): `$NAME` and `${NAME}` for defined names, and the
    /// predefined `${_PWD}` (the directory of the file being read: keepalived chdir()s into
    /// it), `${_INSTANCE}` (the config id), `${_RANDOM [MIN [MAX]]}` (0..=32767 by default),
    /// `${_ENV NAME}`, `${_HASH}` and `${_BANG}`; anything else is left as written. The replacement is scanned again,
    /// so a definition may use others (recursive substitution, as keepalived does).
    fn substitute(
        &mut self,
        chars: &[(char, u32)],
        dir: &Path,
        span: &Span,
    ) -> Result<Chars, ConfigError> {
        let mut cur: Chars = chars.to_vec();
        let mut i = 0;
        let mut count = 0usize;
        while let Some(&(c, col)) = cur.get(i) {
            if c == '$'
                && let Some((len, value)) =
                    self.lookup(cur.get(i + 1..).unwrap_or_default(), dir, span)
            {
                count += 1;
                if count > MAX_SUBSTITUTIONS {
                    return Err(ConfigError::at(
                        span,
                        format!(
                            "more than {MAX_SUBSTITUTIONS} substitutions on one line: \
                             definitions that expand into each other without end?"
                        ),
                    ));
                }
                let value: Chars = value.chars().map(|v| (v, col)).collect();
                cur.splice(i..(i + 1 + len).min(cur.len()), value);
                if cur.len() > MAX_LINE_CHARS {
                    return Err(ConfigError::at(
                        span,
                        format!("line longer than {MAX_LINE_CHARS} characters after substitution"),
                    ));
                }
                continue;
            }
            i += 1;
        }
        Ok(cur)
    }

    /// find_definition() on the text after a `$`: how many characters the reference takes
    /// and its value, or None when it names no definition.
    fn lookup(&mut self, rest: &[(char, u32)], dir: &Path, span: &Span) -> Option<(usize, String)> {
        let braced = rest.first().map(|c| c.0) == Some('{');
        let start = usize::from(braced);
        let first = rest.get(start)?.0;
        if !(first.is_ascii_alphabetic() || first == '_') {
            return None;
        }
        let mut end = start;
        while rest
            .get(end)
            .is_some_and(|c| c.0.is_ascii_alphanumeric() || c.0 == '_')
        {
            end += 1;
        }
        let name: String = rest.get(start..end)?.iter().map(|c| c.0).collect();
        let mut params: Vec<String> = Vec::new();
        let len = if braced {
            // `${NAME}` or `${NAME P1 P2}`: parameters are words of letters, digits and '_',
            // with no blank before the closing brace.
            let mut p = end;
            while rest.get(p).is_some_and(|c| {
                c.0 == ' ' || c.0 == '\t' || c.0.is_ascii_alphanumeric() || c.0 == '_'
            }) {
                p += 1;
            }
            if rest.get(p).map(|c| c.0) != Some('}')
                || (p > end && rest.get(p - 1).is_some_and(|c| c.0 == ' ' || c.0 == '\t'))
            {
                return None;
            }
            let text: String = rest.get(end..p)?.iter().map(|c| c.0).collect();
            params = text.split_whitespace().map(str::to_string).collect();
            p + 1
        } else {
            end
        };
        let value = match name.as_str() {
            "_PWD" if params.is_empty() => {
                let d = std::env::current_dir()
                    .map(|c| c.join(dir))
                    .unwrap_or_default();
                d.display().to_string().trim_end_matches('/').to_string()
            }
            "_INSTANCE" if params.is_empty() => self.config_id.unwrap_or_default().to_string(),
            "_RANDOM" if params.len() <= 2 => {
                let num = |i: usize, d: u64| -> Option<u64> {
                    params.get(i).map_or(Some(d), |p| p.parse().ok())
                };
                let (min, mut max) = (num(0, 0)?, num(1, 32767)?);
                if min > max {
                    self.warn(
                        span,
                        format!("${{_RANDOM}}: min {min} exceeds max {max}, using {min}"),
                    );
                    max = min;
                }
                let r = {
                    use std::hash::{BuildHasher, Hasher};
                    std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish()
                };
                (min + r % (max - min).saturating_add(1)).to_string()
            }
            "_ENV" if params.len() == 1 => std::env::var(params.first()?).unwrap_or_default(),
            // Comment characters that survive inside quotes (a line is decommented again
            // after substitution, as keepalived does).
            "_HASH" if params.is_empty() => "#".to_string(),
            "_BANG" if params.is_empty() => "!".to_string(),
            _ if params.is_empty() => self.defs.get(&name)?.clone(),
            _ => return None,
        };
        Some((len, value))
    }
}

/// Why keepalived's check_glob_file() would skip this file.
fn unusable(path: &Path) -> Option<&'static str> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(_) => Some("cannot be read"),
        Ok(m) if !m.is_file() => Some("not a regular file"),
        Ok(m) if m.permissions().mode() & 0o111 != 0 => Some("is executable"),
        Ok(_) => None,
    }
}

fn trim_start(chars: &[(char, u32)]) -> Chars {
    let skip = chars
        .iter()
        .take_while(|c| c.0 == ' ' || c.0 == '\t')
        .count();
    chars.get(skip..).unwrap_or_default().to_vec()
}

/// decomment(): drop leading/trailing blanks and everything from an unquoted `#` or `!`;
/// `\#` and `\!` outside quotes stand for the character itself.
fn decomment(chars: &[(char, u32)], span_at: &dyn Fn(u32) -> Span) -> Result<Chars, ConfigError> {
    let mut out = Vec::with_capacity(chars.len());
    let mut quote: Option<u32> = None;
    let mut i = 0;
    while let Some(&(c, col)) = chars.get(i) {
        match c {
            '"' => {
                quote = if quote.is_some() { None } else { Some(col) };
                out.push((c, col));
            }
            '\\' if quote.is_none() && matches!(chars.get(i + 1).map(|c| c.0), Some('#' | '!')) => {
                if let Some(&next) = chars.get(i + 1) {
                    out.push(next);
                }
                i += 1;
            }
            '#' | '!' if quote.is_none() => break,
            _ => out.push((c, col)),
        }
        i += 1;
    }
    if let Some(col) = quote {
        return Err(ConfigError::at(&span_at(col), "unmatched quote"));
    }
    let mut out = trim_start(&out);
    while out.last().is_some_and(|c| c.0.is_whitespace()) {
        out.pop();
    }
    Ok(out)
}

/// check_definition(): `$NAME=value` (NAME starts with a letter or `_`).
fn definition(chars: &[(char, u32)]) -> Option<(String, String)> {
    let text: String = chars.iter().map(|c| c.0).collect();
    let rest = text.strip_prefix('$')?;
    let first = rest.chars().next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let name_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    let (name, after) = rest.split_at(name_len);
    let value = after.trim_start_matches([' ', '\t']).strip_prefix('=')?;
    Some((
        name.to_string(),
        value.trim_start_matches([' ', '\t']).to_string(),
    ))
}

/// is_include(): `include` or `include[rmwba]` followed by blanks; returns the argument.
fn include_arg(chars: &[(char, u32)]) -> Option<&[(char, u32)]> {
    let word: String = chars.iter().take(8).map(|c| c.0).collect();
    let rest = if word.len() > 7 && word.starts_with("include") {
        let c7 = word.chars().nth(7)?;
        if c7 == ' ' || c7 == '\t' {
            chars.get(8..)?
        } else if "rmwba".contains(c7) && chars.get(8).is_some_and(|c| c.0 == ' ' || c.0 == '\t') {
            chars.get(9..)?
        } else {
            return None;
        }
    } else {
        return None;
    };
    Some(rest)
}

/// alloc_strvec_r() with read_line()'s brace splitting: words split at blanks, a `"` starts a
/// quoted word (no escapes) and ends an unquoted one, braces outside quotes are words alone.
fn tokenize(chars: &[(char, u32)], span_at: &dyn Fn(u32) -> Span) -> Result<Line, ConfigError> {
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&(c, col)) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let span = span_at(col);
        match c {
            '{' | '}' => {
                toks.push(Tok {
                    kind: if c == '{' {
                        TokKind::Open
                    } else {
                        TokKind::Close
                    },
                    text: c.to_string(),
                    quoted: false,
                    span,
                });
                i += 1;
            }
            '"' => {
                let start = i + 1;
                let mut end = start;
                while chars.get(end).is_some_and(|c| c.0 != '"') {
                    end += 1;
                }
                if end >= chars.len() {
                    return Err(ConfigError::at(&span, "unmatched quote"));
                }
                let text = chars
                    .get(start..end)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.0)
                    .collect();
                toks.push(Tok {
                    kind: TokKind::Word,
                    text,
                    quoted: true,
                    span,
                });
                i = end + 1;
            }
            _ => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| !c.0.is_whitespace() && !matches!(c.0, '"' | '{' | '}'))
                {
                    i += 1;
                }
                let text = chars
                    .get(start..i)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| c.0)
                    .collect();
                toks.push(Tok {
                    kind: TokKind::Word,
                    text,
                    quoted: false,
                    span,
                });
            }
        }
    }
    Ok(toks)
}

/// strtol(.., 0): decimal, `0x` hexadecimal or leading-`0` octal, with a sign.
fn c_long(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// Variables, their rows of values and the rest of the line.
type Sequence<'a> = (Vec<String>, Vec<Vec<String>>, &'a str);

/// add_seq() / add_lst(): `~SEQ(VAR, [START,] [STEP,] END)`, `~SEQx(...)` (values in hex),
/// `~LST(VAR, V1, V2, ...)` or `~LST({A, B}, {A1, B1}, {A2, B2}, ...)` at the start of `text`.
/// Ok(None) when the line starts with none of them.
fn sequence(text: &str) -> Result<Option<Sequence<'_>>, String> {
    let (kind, after) = if let Some(r) = text.strip_prefix("~SEQx(") {
        ("x", r)
    } else if let Some(r) = text.strip_prefix("~SEQ(") {
        ("s", r)
    } else if let Some(r) = text.strip_prefix("~LST(") {
        ("l", r)
    } else {
        return Ok(None);
    };
    let bad = || format!("invalid {} specification", &text[..4]);
    // The specification ends at the first ')' outside braces.
    let mut depth = 0i32;
    let close = after
        .char_indices()
        .find(|&(_, c)| {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ')' if depth == 0 => return true,
                _ => {}
            }
            false
        })
        .map(|(i, _)| i)
        .ok_or_else(|| format!("{} missing terminating ')'", &text[..4]))?;
    let spec = &after[..close];
    let rest = after[close + 1..].trim_start();
    // Items split at top-level commas; `{a, b}` is one item.
    let mut items: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut depth = 0;
    for c in spec.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    items.push(cur.trim().to_string());
    let group = |s: &str| -> Vec<String> {
        let inner = s
            .strip_prefix('{')
            .and_then(|s| s.strip_suffix('}'))
            .unwrap_or(s);
        inner.split(',').map(|v| v.trim().to_string()).collect()
    };
    let vars = group(items.first().ok_or_else(bad)?);
    let valid = |v: &String| {
        v.chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    if vars.is_empty() || !vars.iter().all(valid) {
        return Err(bad());
    }
    let values = &items[1..];
    let rows = if kind == "l" {
        if values.is_empty() {
            return Err(bad());
        }
        let rows: Vec<Vec<String>> = values.iter().map(|v| group(v)).collect();
        if rows.iter().any(|r| r.len() != vars.len()) {
            return Err(format!(
                "~LST: every value needs {} part(s), one per variable",
                vars.len()
            ));
        }
        rows
    } else {
        if vars.len() != 1 {
            return Err(bad());
        }
        let n: Vec<i64> = values
            .iter()
            .map(|v| c_long(v))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let (start, step, end) = match n.as_slice() {
            [end] => (
                if *end < 0 { -1 } else { 1 },
                if *end < 1 { -1 } else { 1 },
                *end,
            ),
            [start, end] => (*start, if start <= end { 1 } else { -1 }, *end),
            [start, step, end] => (*start, *step, *end),
            _ => return Err(bad()),
        };
        if step == 0 || (start < end && step < 0) || (start > end && step > 0) {
            return Err(format!("invalid ~SEQ values ({start}, {step}, {end})"));
        }
        if kind == "x" && (start < 0 || end < 0) {
            return Err("~SEQx is only valid for positive numbers".to_string());
        }
        let mut rows = Vec::new();
        let mut v = start;
        while (step > 0 && v <= end) || (step < 0 && v >= end) {
            rows.push(vec![if kind == "x" {
                format!("{v:x}")
            } else {
                v.to_string()
            }]);
            if rows.len() > MAX_EXPANDED_LINES {
                return Err(format!("~SEQ makes more than {MAX_EXPANDED_LINES} lines"));
            }
            v = match v.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        rows
    };
    Ok(Some((vars, rows, rest)))
}
