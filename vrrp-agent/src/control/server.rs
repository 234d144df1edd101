//! The control socket: a line protocol over a unix stream socket, one JSON response per
//! request line.
//!
//! Requests: `status` (the [`Snapshot`] as JSON), `reload`, `handover [INSTANCE]`, `ping`.
//! Everything but `status` answers a [`ControlReply`]: `{"ok":true,"message":...}` or
//! `{"ok":false,"error":...}`. Empty lines are ignored, so `socat` sessions are forgiving.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;

use super::{ControlError, Snapshot};

/// Where the daemon listens unless told otherwise.
pub const DEFAULT_SOCKET_PATH: &str = "/run/vrrp-agent.sock";

/// A request line longer than this is an error and ends the connection (no resync).
const MAX_REQUEST_LINE: usize = 4096;
/// The client accepts responses up to this size (a snapshot of many instances is large).
const MAX_RESPONSE: usize = 64 << 20;
/// An idle connection is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the daemon may take to carry out a reload or handover.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// The client waits a little longer than the server so the server's timeout reply arrives.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(70);
/// Further connections are refused (closed at once) while this many are open.
const MAX_CONNECTIONS: usize = 32;

/// The daemon's answer to a command: a message on success, the error text on failure.
pub type CommandReply = Result<String, String>;

/// A request the daemon must carry out; it answers through `reply`.
#[derive(Debug)]
pub enum ControlCommand {
    /// Re-read the configuration (as SIGHUP does).
    Reload {
        reply: oneshot::Sender<CommandReply>,
    },
    /// Planned graceful handover: give up mastership (all instances, or the one named).
    Handover {
        instance: Option<String>,
        reply: oneshot::Sender<CommandReply>,
    },
}

/// The response to every request except `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControlReply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ControlReply {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: Some(message.into()),
            error: None,
        }
    }

    pub fn err(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: None,
            error: Some(error.into()),
        }
    }

    fn to_line(&self) -> String {
        // Two plain fields: serialization cannot fail; keep a fallback rather than a panic.
        serde_json::to_string(self)
            .unwrap_or_else(|_| r#"{"ok":false,"error":"internal error"}"#.to_owned())
    }
}

/// A bound control socket. Dropping it (or the future of [`ControlServer::run`]) removes the
/// socket file, unless another process has replaced it since.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    guard: SocketFileGuard,
}

impl ControlServer {
    /// Binds `path` with mode 0600. A stale socket (nobody listening) is replaced; a live one
    /// is an error, as is any other kind of file.
    pub async fn bind(path: &Path) -> Result<Self, ControlError> {
        check_existing(path).await?;
        let listener = bind_private(path)?;
        let md = std::fs::symlink_metadata(path).map_err(|source| ControlError::Io {
            what: "stat",
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            listener,
            guard: SocketFileGuard {
                path: path.to_owned(),
                dev: md.dev(),
                ino: md.ino(),
            },
        })
    }

    pub fn path(&self) -> &Path {
        &self.guard.path
    }

    /// Serves until the snapshot sender is dropped (the daemon is going away). Open
    /// connections are aborted when this returns or its future is dropped.
    pub async fn run(
        self,
        rx: watch::Receiver<Snapshot>,
        cmds: mpsc::Sender<ControlCommand>,
    ) -> Result<(), ControlError> {
        let Self { listener, guard } = self;
        let _guard = guard;
        let mut conns = JoinSet::new();
        let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut closed = rx.clone();
        loop {
            tokio::select! {
                res = listener.accept() => match res {
                    Ok((stream, _)) => match Arc::clone(&limit).try_acquire_owned() {
                        Ok(permit) => {
                            let (rx, cmds) = (rx.clone(), cmds.clone());
                            conns.spawn(async move {
                                let _permit = permit;
                                handle_conn(stream, rx, cmds).await;
                            });
                        }
                        Err(_) => tracing::warn!("control socket: too many connections, refusing one"),
                    },
                    Err(e) => {
                        // EMFILE and the like: back off instead of spinning.
                        tracing::warn!("control socket: accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                res = closed.changed() => if res.is_err() {
                    return Ok(());
                },
            }
        }
    }
}

/// Binds `path` and serves it: [`ControlServer::bind`] then [`ControlServer::run`].
pub async fn serve_control(
    path: &Path,
    rx: watch::Receiver<Snapshot>,
    cmds: mpsc::Sender<ControlCommand>,
) -> Result<(), ControlError> {
    ControlServer::bind(path).await?.run(rx, cmds).await
}

/// Removes the socket file on drop, but only if it is still the one we bound.
#[derive(Debug)]
struct SocketFileGuard {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFileGuard {
    fn drop(&mut self) {
        if let Ok(md) = std::fs::symlink_metadata(&self.path)
            && md.dev() == self.dev
            && md.ino() == self.ino
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

async fn check_existing(path: &Path) -> Result<(), ControlError> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            match timeout(Duration::from_secs(1), UnixStream::connect(path)).await {
                // A busy listener is still alive.
                Ok(Ok(_)) | Err(_) => Err(ControlError::AlreadyRunning(path.to_owned())),
                // Refused (or gone meanwhile): stale, bind_private's rename replaces it.
                Ok(Err(_)) => Ok(()),
            }
        }
        Ok(_) => Err(ControlError::NotASocket(path.to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ControlError::Io {
            what: "stat",
            path: path.to_owned(),
            source,
        }),
    }
}

/// Binds inside a fresh 0700 directory next to `path`, sets 0600, then renames into place:
/// the socket is never reachable with looser permissions (no process-wide umask games), and
/// the rename atomically replaces a stale socket.
fn bind_private(path: &Path) -> Result<UnixListener, ControlError> {
    let io_err = |what, path: &Path| {
        let path = path.to_owned();
        move |source| ControlError::Io { what, path, source }
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = parent.join(format!(".vrrp-agent-{}.tmp", std::process::id()));
    // Left over from a crash of a process with our pid: ours to remove.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(io_err("create directory", &dir))?;
    let tmp = dir.join("s");
    let res = (|| {
        let listener = UnixListener::bind(&tmp).map_err(io_err("bind", &tmp))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod", &tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err("rename socket to", path))?;
        Ok(listener)
    })();
    let _ = std::fs::remove_dir_all(&dir);
    res
}

enum Line {
    Complete,
    Eof,
    TooLong,
}

/// Reads one line (without the bound's worth of memory for an endless line). A last line
/// without a newline counts as complete.
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    buf.clear();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = (&mut *r).take(limit).read_until(b'\n', buf).await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        return Ok(Line::Complete);
    }
    if buf.len() > max {
        return Ok(Line::TooLong);
    }
    Ok(Line::Complete)
}

async fn handle_conn(
    stream: UnixStream,
    rx: watch::Receiver<Snapshot>,
    cmds: mpsc::Sender<ControlCommand>,
) {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut buf = Vec::new();
    loop {
        let (response, last) = match timeout(
            IDLE_TIMEOUT,
            read_line_bounded(&mut rd, &mut buf, MAX_REQUEST_LINE),
        )
        .await
        {
            Err(_) | Ok(Err(_)) | Ok(Ok(Line::Eof)) => return,
            Ok(Ok(Line::TooLong)) => (
                ControlReply::err(format!("request longer than {MAX_REQUEST_LINE} bytes"))
                    .to_line(),
                true,
            ),
            Ok(Ok(Line::Complete)) => match std::str::from_utf8(&buf) {
                Ok(line) if line.trim().is_empty() => continue,
                Ok(line) => (handle_request(line.trim(), &rx, &cmds).await, false),
                Err(_) => (ControlReply::err("request is not UTF-8").to_line(), false),
            },
        };
        let mut response = response.into_bytes();
        response.push(b'\n');
        match timeout(WRITE_TIMEOUT, wr.write_all(&response)).await {
            Ok(Ok(())) if !last => {}
            Ok(Ok(())) => break,
            _ => return,
        }
    }
    // Closing with unread input resets the connection, and the client could lose the error
    // just sent: half-close, then discard a bounded amount of what is still coming.
    let _ = wr.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match timeout(Duration::from_secs(1), rd.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => break,
        }
    }
}

async fn handle_request(
    line: &str,
    rx: &watch::Receiver<Snapshot>,
    cmds: &mpsc::Sender<ControlCommand>,
) -> String {
    let mut words = line.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let args: Vec<&str> = words.collect();
    match (verb, args.as_slice()) {
        ("status", []) => {
            // Serialize under the borrow (no clone); the guard is released before any await.
            let json = serde_json::to_string(&*rx.borrow());
            json.unwrap_or_else(|e| ControlReply::err(format!("serializing status: {e}")).to_line())
        }
        ("ping", []) => ControlReply::ok("pong").to_line(),
        ("reload", []) => command(cmds, |reply| ControlCommand::Reload { reply }).await,
        ("handover", [] | [_]) => {
            let instance = args.first().map(|s| (*s).to_owned());
            command(cmds, |reply| ControlCommand::Handover { instance, reply }).await
        }
        ("status" | "ping" | "reload" | "handover", _) => {
            ControlReply::err(format!("too many arguments to {verb}")).to_line()
        }
        _ => {
            let shown: String = verb.chars().take(64).collect();
            ControlReply::err(format!(
                "unknown request {shown:?}; expected status, reload, handover [INSTANCE] or ping"
            ))
            .to_line()
        }
    }
}

async fn command(
    cmds: &mpsc::Sender<ControlCommand>,
    make: impl FnOnce(oneshot::Sender<CommandReply>) -> ControlCommand,
) -> String {
    let (tx, reply) = oneshot::channel();
    let reply = match timeout(COMMAND_TIMEOUT, cmds.send(make(tx))).await {
        Err(_) => ControlReply::err("the daemon is busy; try again"),
        Ok(Err(_)) => ControlReply::err("the daemon is not accepting commands"),
        Ok(Ok(())) => match timeout(COMMAND_TIMEOUT, reply).await {
            Err(_) => ControlReply::err("timed out waiting for the daemon"),
            Ok(Err(_)) => ControlReply::err("the daemon dropped the request"),
            Ok(Ok(Ok(message))) => ControlReply::ok(message),
            Ok(Ok(Err(error))) => ControlReply::err(error),
        },
    };
    reply.to_line()
}

/// Sends one request line and returns the agent's one-line response (without the newline).
pub async fn client_request(path: &Path, request: &str) -> Result<String, ControlError> {
    if request.contains(['\n', '\r']) {
        return Err(ControlError::Protocol(
            "a request is a single line".to_owned(),
        ));
    }
    let exchange = async {
        let mut stream = UnixStream::connect(path)
            .await
            .map_err(|source| ControlError::Io {
                what: "connect to",
                path: path.to_owned(),
                source,
            })?;
        let io_err = |source| ControlError::Io {
            what: "talk to",
            path: path.to_owned(),
            source,
        };
        stream
            .write_all(format!("{request}\n").as_bytes())
            .await
            .map_err(io_err)?;
        let mut rd = BufReader::new(stream);
        let mut buf = Vec::new();
        match read_line_bounded(&mut rd, &mut buf, MAX_RESPONSE)
            .await
            .map_err(io_err)?
        {
            Line::Complete => String::from_utf8(buf)
                .map_err(|_| ControlError::Protocol("response is not UTF-8".to_owned())),
            Line::Eof => Err(ControlError::Protocol(
                "the agent closed the connection without answering".to_owned(),
            )),
            Line::TooLong => Err(ControlError::Protocol(format!(
                "response longer than {MAX_RESPONSE} bytes"
            ))),
        }
    };
    timeout(CLIENT_TIMEOUT, exchange)
        .await
        .map_err(|_| ControlError::Timeout("control request"))?
}

/// Interprets a [`ControlReply`] line: the message on success, [`ControlError::Remote`] on
/// failure.
pub fn parse_reply(response: &str) -> Result<String, ControlError> {
    let reply: ControlReply = serde_json::from_str(response)?;
    if reply.ok {
        Ok(reply.message.unwrap_or_default())
    } else {
        Err(ControlError::Remote(
            reply
                .error
                .unwrap_or_else(|| "unspecified error".to_owned()),
        ))
    }
}

/// `status` over the socket, parsed.
pub async fn request_status(path: &Path) -> Result<Snapshot, ControlError> {
    let response = client_request(path, "status").await?;
    let value: serde_json::Value = serde_json::from_str(&response)?;
    // Snapshot fields all default, so an error reply would otherwise parse as an empty one.
    if value.get("ok").and_then(serde_json::Value::as_bool) == Some(false) {
        let error = value.get("error").and_then(serde_json::Value::as_str);
        return Err(ControlError::Remote(
            error.unwrap_or("unspecified error").to_owned(),
        ));
    }
    Ok(serde_json::from_value(value)?)
}
