//! The SIGUSR1 data dump (keepalived writes /tmp/keepalived.data; we write JSON).

use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Snapshot, render_json};

pub const DEFAULT_DUMP_PATH: &str = "/tmp/vrrp-agent.data.json";

/// Distinguishes temporary files of concurrent dumps within one process.
static DUMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes the snapshot as pretty JSON to `path` atomically: readers see the old file or the
/// new one, never a partial write.
///
/// The temporary file is created next to `path` with `O_EXCL` and mode 0600 and renamed over
/// it: in a world-writable directory such as /tmp a planted symlink is neither followed nor
/// written through (rename replaces the link itself).
pub fn write_dump(path: &Path, snap: &Snapshot) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "dump path has no file name"))?;
    let seq = DUMP_SEQ.fetch_add(1, Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.{seq}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);

    let open = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
    };
    let mut file = match open() {
        Ok(f) => f,
        // Left by a crashed process that had our pid: ours to replace.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp)?;
            open()?
        }
        Err(e) => return Err(e),
    };
    let res = (|| {
        let mut json = render_json(snap);
        json.push('\n');
        file.write_all(json.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}
