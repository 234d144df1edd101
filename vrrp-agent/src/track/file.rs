//! `track_file`: an integer read from a file (keepalived/trackers/track_file.c
//! `process_track_file`). Re-read by polling: cheap, and it also catches files replaced by
//! rename or written without close, which inotify on the file itself would miss.

use std::io::Read;
use std::path::Path;

use crate::config::InitFile;

/// What one read of the file gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileRead {
    Value(i64),
    /// Not a number keepalived accepts: keep the previous value ("Invalid number ... ignoring").
    Invalid,
}

/// Read the file like keepalived: a missing, unreadable or empty file is 0; otherwise
/// `strtol(buf, NULL, 0)` of the first 127 bytes, accepted in `INT32_MIN..=INT32_MAX + 1`.
pub fn read_value(path: &Path) -> FileRead {
    let mut buf = [0u8; 127];
    let n = match std::fs::File::open(path).and_then(|mut f| f.read(&mut buf)) {
        Ok(n) => n,
        Err(_) => return FileRead::Value(0),
    };
    parse_value(&buf[..n])
}

/// Parse file contents (see [`read_value`]).
pub fn parse_value(bytes: &[u8]) -> FileRead {
    match strtol(bytes) {
        Some(v) if (i64::from(i32::MIN)..=i64::from(i32::MAX) + 1).contains(&v) => {
            FileRead::Value(v)
        }
        _ => FileRead::Invalid,
    }
}

/// C `strtol(s, NULL, 0)`: leading whitespace, a sign, `0x` hex / leading-`0` octal /
/// decimal, stopping at the first non-digit; no digits gives 0. `None` on overflow (ERANGE).
fn strtol(s: &[u8]) -> Option<i64> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let radix = if s.get(i) == Some(&b'0')
        && matches!(s.get(i + 1), Some(b'x' | b'X'))
        && s.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
    {
        i += 2;
        16
    } else if s.get(i) == Some(&b'0') {
        8
    } else {
        10
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).and_then(|c| char::from(*c).to_digit(radix)) {
        v = v.checked_mul(i64::from(radix))?;
        v = if neg {
            v.checked_sub(i64::from(d))?
        } else {
            v.checked_add(i64::from(d))?
        };
        i += 1;
    }
    Some(v)
}

/// `init_file [VALUE] [overwrite]`: create the file with VALUE if it does not exist (or
/// always, with `overwrite`), as keepalived does when it loads the configuration.
pub fn apply_init(path: &Path, init: InitFile) -> std::io::Result<()> {
    if init.overwrite || !path.exists() {
        std::fs::write(path, format!("{}\n", init.value))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_like_c() {
        let v = |s: &str| parse_value(s.as_bytes());
        assert_eq!(v("42\n"), FileRead::Value(42));
        assert_eq!(v("  -7 trailing"), FileRead::Value(-7));
        assert_eq!(v("+3"), FileRead::Value(3));
        assert_eq!(v("0x1f"), FileRead::Value(31));
        assert_eq!(v("010"), FileRead::Value(8));
        assert_eq!(v("0x"), FileRead::Value(0));
        assert_eq!(v("abc"), FileRead::Value(0));
        assert_eq!(v(""), FileRead::Value(0));
        assert_eq!(v("2147483648"), FileRead::Value(2_147_483_648));
        assert_eq!(v("2147483649"), FileRead::Invalid);
        assert_eq!(v("-2147483649"), FileRead::Invalid);
        assert_eq!(v("99999999999999999999999"), FileRead::Invalid);
    }

    #[test]
    fn missing_file_is_zero() {
        assert_eq!(
            read_value(Path::new("/nonexistent/vrrp-xdp/track")),
            FileRead::Value(0)
        );
    }
}
