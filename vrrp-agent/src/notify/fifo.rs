//! Notify FIFOs, opened as keepalived's `fifo_open` (keepalived/core/notify.c): `mkfifo` 0644
//! if missing, then `O_RDWR | O_NONBLOCK | O_NOFOLLOW`, refusing anything that is not a FIFO
//! we own. Holding the read side ourselves means a missing reader never blocks nor fails a
//! write (no EPIPE/ENXIO); a full pipe gives EAGAIN and the line waits here.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::stat::Mode;
use tokio::sync::mpsc;

use super::SeqEvent;

/// Lines kept in memory while the pipe is full; beyond this the oldest are dropped (the JSON
/// stream's `seq` shows the gap).
const MAX_PENDING: usize = 4096;
const RETRY: Duration = Duration::from_millis(100);

pub(super) fn open(path: &Path) -> io::Result<File> {
    match nix::unistd::mkfifo(path, Mode::from_bits_truncate(0o644)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)?;
    let m = f.metadata()?;
    if !m.file_type().is_fifo() || m.uid() != nix::unistd::geteuid().as_raw() {
        return Err(io::Error::other("not a fifo we own - not using"));
    }
    Ok(f)
}

pub(super) struct Sink {
    path: PathBuf,
    file: File,
    json: bool,
    pending: VecDeque<Vec<u8>>,
    /// Bytes of the front line already written (lines longer than PIPE_BUF may be split).
    offset: usize,
}

impl Sink {
    pub(super) fn new(path: PathBuf, file: File, json: bool) -> Self {
        Self {
            path,
            file,
            json,
            pending: VecDeque::new(),
            offset: 0,
        }
    }

    fn push(&mut self, ev: &SeqEvent) {
        let line = if self.json {
            ev.json_line()
        } else {
            ev.keepalived_line()
        };
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            self.offset = 0;
            tracing::warn!(
                "notify fifo {}: full, dropping the oldest line",
                self.path.display()
            );
        }
        self.pending.push_back(line.into_bytes());
    }

    /// Write what the pipe takes now; never blocks.
    fn flush(&mut self) {
        while let Some(line) = self.pending.front() {
            match self.file.write(&line[self.offset..]) {
                Ok(n) => {
                    self.offset += n;
                    if self.offset >= line.len() {
                        self.pending.pop_front();
                        self.offset = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // keepalived logs and drops the line.
                    tracing::info!("notify fifo {} write error: {e}", self.path.display());
                    self.pending.pop_front();
                    self.offset = 0;
                }
            }
        }
    }
}

pub(super) async fn writer(mut sinks: Vec<Sink>, mut rx: mpsc::UnboundedReceiver<SeqEvent>) {
    loop {
        let waiting = sinks.iter().any(|s| !s.pending.is_empty());
        let ev = if waiting {
            tokio::select! {
                ev = rx.recv() => ev,
                () = tokio::time::sleep(RETRY) => {
                    sinks.iter_mut().for_each(Sink::flush);
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        match ev {
            Some(ev) => {
                for s in &mut sinks {
                    s.push(&ev);
                    s.flush();
                }
            }
            None => {
                // Shutting down: a last try, without waiting for a reader.
                sinks.iter_mut().for_each(Sink::flush);
                return;
            }
        }
    }
}
