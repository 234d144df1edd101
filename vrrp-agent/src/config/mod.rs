//! keepalived.conf reader: the VRRP half of keepalived's configuration language, read the way
//! keepalived 2.2.x reads it (lib/parser.c, keepalived/vrrp/vrrp_parser.c,
//! keepalived/core/global_parser.c), into a validated, typed [`Config`].
//!
//! Pipeline: `lexer` (files, `include`, `$NAME` definitions, comments, quotes, braces) →
//! `tree` (statements and `{ }` blocks) → `parse` (keywords into typed values, keepalived's
//! defaults, then cross-checks). Broken syntax and invalid values are errors (the agent refuses
//! to start); unknown or unsupported keywords are warnings that carry their location.
//!
//! vrrp-agent's own keywords (keepalived would warn about them and skip them): in `global_defs`,
//! `vrrp_xdp_metrics`, `vrrp_xdp_control_socket`, `vrrp_xdp_mode`, `vrrp_xdp_notify_json`, `vrrp_xdp_checksum_auto` (also per instance); at
//! the root, `vrrp_xdp_check NAME { tcp IP:PORT | http_get { url .. status .. body .. host .. }
//! interval .. timeout .. rise .. fall .. weight N [reverse] init_fail }`, a built-in check that
//! `track_script` names like a `vrrp_script` (syntax and defaults: `parse::check::xdp_check`); in
//! `vrrp_instance`, `vrrp_xdp_v2_interop`, `vrrp_xdp_notify_split_brain`, `vrrp_xdp_fence` and `vrrp_xdp_heartbeat {
//! interface IF  unicast_src_ip A  unicast_peer { A ... } }`, a redundant heartbeat path
//! ([`Heartbeat`], `parse::instance::heartbeat`).

mod checks;
pub mod differences;
mod glob;
mod host;
mod lexer;
mod parse;
mod specs;
mod tree;
mod types;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use checks::{BuiltinCheck, BuiltinKind, HttpCheck, UrlError};
pub use host::check_interfaces;
pub use specs::{NotifySpec, TrackSpec, TrackedInstance};
pub use types::*;

/// Where something was written: file, 1-based line and 1-based column (in characters).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: Arc<str>,
    pub line: u32,
    pub col: u32,
}

impl Span {
    pub fn new(file: &str, line: u32, col: u32) -> Self {
        Self {
            file: Arc::from(file),
            line,
            col,
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0 is "the file as a whole" (its permissions, say): no fake `:0:0`.
        if self.line == 0 {
            return write!(f, "{}", self.file);
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A warning about the configuration: the agent starts, but the user should look.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{span}: {message}")]
pub struct Diagnostic {
    pub span: Span,
    pub message: String,
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Broken syntax or an invalid value, at its location; `warnings` are those met before it
    /// (an error must not hide them: a typo'd keyword warned earlier is often the cause).
    #[error("{span}: {message}")]
    Invalid {
        span: Span,
        message: String,
        warnings: Vec<Diagnostic>,
    },
    /// The top-level file could not be read.
    #[error("{}: cannot read configuration: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfigError {
    pub(crate) fn at(span: &Span, message: impl Into<String>) -> Self {
        Self::Invalid {
            span: span.clone(),
            message: message.into(),
            warnings: Vec::new(),
        }
    }

    /// The warnings gathered before the error, in file order.
    pub fn warnings(&self) -> &[Diagnostic] {
        match self {
            Self::Invalid { warnings, .. } => warnings,
            Self::Io { .. } => &[],
        }
    }

    /// The location of the error, when it has one inside a file.
    pub fn span(&self) -> Option<&Span> {
        match self {
            Self::Invalid { span, .. } => Some(span),
            Self::Io { .. } => None,
        }
    }
}

/// A parsed and validated configuration plus the warnings met on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// The config id set with `-i/--config-id` ([`set_config_id`]).
static CONFIG_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the config id that `@ID` / `@^ID` lines are matched against (keepalived's `-i`), for
/// every later [`load`] and [`parse_str`] of this process (reloads too). Only the first call
/// counts.
pub fn set_config_id(id: &str) {
    let _ = CONFIG_ID.set(id.to_string());
}

/// The config id: the one set with [`set_config_id`], else the host name up to its first dot,
/// as keepalived defaults it (main.c); None when neither is known.
pub fn config_id() -> Option<String> {
    if let Some(id) = CONFIG_ID.get() {
        return Some(id.clone());
    }
    // uname()'s nodename, which keepalived reads, is this file of the UTS namespace.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let short = host.trim().split('.').next().unwrap_or_default();
    (!short.is_empty()).then(|| short.to_string())
}

/// Read `path` (and what it includes) as keepalived does; the warnings include the security
/// findings about the files read and the commands configured (`crate::security`). `@ID` lines
/// are matched against [`config_id`].
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_as(path, config_id().as_deref())
}

/// [`load`] with the given config id (None: every `@ID` line is dropped, every `@^ID` kept).
pub fn load_as(path: &Path, config_id: Option<&str>) -> Result<Loaded, ConfigError> {
    let text = read_bounded(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    // keepalived chdir()s into the directory of each file it opens (lib/parser.c
    // open_conf_file), so relative includes resolve against the including file's directory.
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path.display().to_string();
    let mut loaded = run(&text, &name, Some(&dir), config_id)?;
    // Read from disk, so the files and the commands are real: judge who may change them.
    if let Some(w) = crate::security::check_config_file(path) {
        loaded.warnings.insert(
            0,
            Diagnostic {
                span: Span::new(&name, 0, 0),
                message: w,
            },
        );
    }
    loaded
        .warnings
        .extend(crate::security::audit(&loaded.config, &name));
    Ok(loaded)
}

/// The largest configuration file (each include too) read: far above any real
/// keepalived.conf (a few kB per instance, 255 instances per VRID space), far below what would
/// hurt the host (`-f /dev/zero`, a log given by mistake).
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Reads a whole configuration file, refusing one larger than [`MAX_FILE_BYTES`] (an error
/// of kind `FileTooLarge` saying so). Reads at most one byte past the limit, whatever the
/// file is (a device, a FIFO, a file still growing).
pub(crate) fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {} MiB", MAX_FILE_BYTES >> 20),
        ));
    }
    Ok(buf)
}

/// Parse configuration text; `name` is used in locations, and relative `include`s resolve
/// against the current directory.
pub fn parse_str(text: &str, name: &str) -> Result<Loaded, ConfigError> {
    run(text, name, Some(Path::new("")), config_id().as_deref())
}

/// [`parse_str`] with the given config id.
pub fn parse_str_as(
    text: &str,
    name: &str,
    config_id: Option<&str>,
) -> Result<Loaded, ConfigError> {
    run(text, name, Some(Path::new("")), config_id)
}

/// Parse configuration text without touching the file system: an `include` is an error.
/// For text from an untrusted source (the fuzzer), where an include of `/proc/kcore` or a
/// glob over `/` would read what it likes.
pub fn parse_str_sandboxed(text: &str, name: &str) -> Result<Loaded, ConfigError> {
    run(text, name, None, None)
}

/// Every keyword the parser has an entry for, as (block, keyword): the block is written as in
/// a file (`global_defs`, `vrrp_instance`, ..., `top level`).
pub fn known_keywords() -> Vec<(&'static str, &'static str)> {
    parse::known_keywords().collect()
}

fn run(
    text: &str,
    name: &str,
    dir: Option<&Path>,
    config_id: Option<&str>,
) -> Result<Loaded, ConfigError> {
    let mut warnings = Vec::new();
    let result = lexer::lex(text, name, dir, config_id, &mut warnings)
        .and_then(|lines| tree::build(lines, name))
        .and_then(|stmts| parse::parse(&stmts, &mut warnings));
    match result {
        Ok(config) => Ok(Loaded { config, warnings }),
        Err(ConfigError::Invalid {
            span,
            message,
            warnings: mut inner,
        }) => {
            warnings.append(&mut inner);
            Err(ConfigError::Invalid {
                span,
                message,
                warnings,
            })
        }
        Err(e) => Err(e),
    }
}
