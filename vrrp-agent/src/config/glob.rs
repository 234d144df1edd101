//! A small glob(3) for `include`: `*`, `?`, `[...]` per path component and `{a,b}` brace
//! alternatives (keepalived passes GLOB_BRACE). Like glob(3) without GLOB_PERIOD, wildcards do
//! not match a leading `.`; results are sorted per pattern, as glob(3) sorts them.

use std::path::PathBuf;

/// Brace alternatives deeper than this are not expanded (keeps hostile input cheap).
const MAX_EXPANSIONS: usize = 256;

pub(crate) fn glob(pattern: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pat in expand_braces(pattern) {
        let mut found = glob_one(&pat);
        found.sort();
        for f in found {
            if !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out
}

fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn glob_one(pattern: &str) -> Vec<PathBuf> {
    let absolute = pattern.starts_with('/');
    let mut current: Vec<PathBuf> = vec![if absolute {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        for base in &current {
            if has_magic(comp) {
                let dir = if base.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    base.clone()
                };
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let name = entry.file_name();
                    let Some(name) = name.to_str() else { continue };
                    if name.starts_with('.') && !comp.starts_with('.') {
                        continue;
                    }
                    let chars: Vec<char> = name.chars().collect();
                    let pat: Vec<char> = comp.chars().collect();
                    if matches(&pat, &chars) {
                        next.push(base.join(name));
                    }
                }
            } else {
                next.push(base.join(comp));
            }
        }
        current = next;
    }
    current
        .into_iter()
        .filter(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_ok())
        .collect()
}

/// fnmatch() for one component.
fn matches(pat: &[char], name: &[char]) -> bool {
    // Iterative matcher with single-star backtracking: linear-ish, no recursion.
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some('?') => {
                p += 1;
                n += 1;
                continue;
            }
            Some('[') => {
                if let Some((ok, len)) =
                    class(pat.get(p..).unwrap_or_default(), name.get(n).copied())
                {
                    if ok {
                        p += len;
                        n += 1;
                        continue;
                    }
                } else if name.get(n) == Some(&'[') {
                    p += 1;
                    n += 1;
                    continue;
                }
            }
            Some(&c) if Some(&c) == name.get(n) => {
                p += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    pat.get(p..).unwrap_or_default().iter().all(|&c| c == '*')
}

/// A `[...]` class at the start of `pat`: (does `c` match, length of the class), or None if
/// the class is not closed (then `[` is literal).
fn class(pat: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(pat.get(i), Some('!' | '^'));
    if negate {
        i += 1;
    }
    let mut ok = false;
    let mut first = true;
    loop {
        let &lo = pat.get(i)?;
        if lo == ']' && !first {
            break;
        }
        first = false;
        if pat.get(i + 1) == Some(&'-') && pat.get(i + 2).is_some_and(|&h| h != ']') {
            let &hi = pat.get(i + 2)?;
            if c.is_some_and(|c| lo <= c && c <= hi) {
                ok = true;
            }
            i += 3;
        } else {
            if c == Some(lo) {
                ok = true;
            }
            i += 1;
        }
    }
    Some((ok != negate && c.is_some(), i + 1))
}

/// GLOB_BRACE: `a{b,c}d` → `abd`, `acd`, recursively, bounded.
fn expand_braces(pattern: &str) -> Vec<String> {
    let mut done = Vec::new();
    let mut todo = vec![pattern.to_string()];
    while let Some(p) = todo.pop() {
        if done.len() + todo.len() >= MAX_EXPANSIONS {
            done.push(p);
            continue;
        }
        match first_brace(&p) {
            None => done.push(p),
            Some((open, close, commas)) => {
                let (pre, post) = (&p[..open], &p[close + 1..]);
                let mut start = open + 1;
                let mut alts = Vec::new();
                for comma in commas.iter().copied().chain(std::iter::once(close)) {
                    alts.push(format!("{pre}{}{post}", &p[start..comma]));
                    start = comma + 1;
                }
                // Keep left-to-right order when popping.
                todo.extend(alts.into_iter().rev());
            }
        }
    }
    done
}

/// The first `{...}` with at least one top-level comma: byte offsets of `{`, `}` and commas.
fn first_brace(p: &str) -> Option<(usize, usize, Vec<usize>)> {
    let bytes = p.as_bytes();
    let mut search = 0;
    while let Some(rel) = p.get(search..)?.find('{') {
        let open = search + rel;
        let mut depth = 0usize;
        let mut commas = Vec::new();
        for (i, &b) in bytes.iter().enumerate().skip(open) {
            match b {
                b'{' => depth += 1,
                b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        if !commas.is_empty() {
                            return Some((open, i, commas));
                        }
                        break;
                    }
                }
                b',' if depth == 1 => commas.push(i),
                _ => {}
            }
        }
        search = open + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        matches(
            &p.chars().collect::<Vec<_>>(),
            &n.chars().collect::<Vec<_>>(),
        )
    }

    #[test]
    fn fnmatch_basics() {
        assert!(m("*.conf", "a.conf"));
        assert!(!m("*.conf", "a.conf.bak"));
        assert!(m("a?c", "abc"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[!a-c]x", "bx"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
    }

    #[test]
    fn braces() {
        assert_eq!(expand_braces("a{b,c}d"), vec!["abd", "acd"]);
        assert_eq!(expand_braces("x{1,2}{a,b}").len(), 4);
        assert_eq!(expand_braces("no{brace}"), vec!["no{brace}"]);
    }
}
