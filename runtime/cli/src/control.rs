//! The CLI beside a running server. `domicile serve` has the home to
//! itself (the store is locked by one process), so a `domicile` command on
//! the same home reaches the server instead, over a Unix socket in the
//! home (`HOME/run/control.sock`, in a directory only the home's owner can
//! enter), and the server executes the very same command code for it:
//! same output, streamed as it is printed, same errors, same exit status.
//!
//! This module is the transport only: it carries a command as JSON and
//! hands it to the [`Runner`] the server was started with
//! (`crate::dispatch::control_runner`), which reads and runs it.
//!
//! Who may connect: the socket's peer must be the user the server runs as
//! (or root), checked with `SO_PEERCRED` on every connection: that user
//! owns the home's files and could open them anyway, so the socket gives
//! nothing more than the files do. Paths on the command line are made
//! absolute by the client; the server reads and writes them itself, as the
//! same user on the same machine.
//!
//! The protocol, one connection per command: frames of a tag byte, a
//! big-endian u32 length and that many bytes. The client sends `R` (the
//! command, JSON) then its stdin as `I` frames and `E` at its end; the
//! server sends `O` (stdout) and `W` (stderr) as the command prints, and
//! `X` (JSON: the error line, or none) last. A long command's progress
//! comes as `P` frames (the line to draw on the client's terminal, empty to
//! clear it), only when the client said its stderr is a terminal.

use std::future::Future;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};
use domicile_home::{Home, HomeError};
use domicile_store::StoreError;
use serde::{Deserialize, Serialize};

use crate::io::Remote;

const SOCKET_DIR: &str = "run";
const SOCKET: &str = "control.sock";
/// A larger frame is refused: nothing legitimate sends one.
const MAX_FRAME: usize = 16 << 20;

const REQUEST: u8 = b'R';
const STDIN: u8 = b'I';
const STDIN_END: u8 = b'E';
const STDOUT: u8 = b'O';
const STDERR: u8 = b'W';
const PROGRESS: u8 = b'P';
const EXIT: u8 = b'X';

#[derive(Serialize, Deserialize)]
struct Request {
    resident: Option<String>,
    json: bool,
    stdin_is_terminal: bool,
    /// The client draws progress lines (`P` frames) on its terminal.
    stderr_is_terminal: bool,
    /// The command, as the client's `domicile` wrote it.
    command: serde_json::Value,
}

/// A command the server received, for its [`Runner`].
pub struct Received {
    pub resident: Option<String>,
    pub json: bool,
    /// As the client's `domicile` wrote it: read it, and refuse it if it
    /// is not of this version's commands.
    pub command: serde_json::Value,
    /// The server is a node of a cluster.
    pub clustered: bool,
}

/// Runs a received command on the home; its error is the command's.
pub type Runner =
    Arc<dyn for<'a> Fn(&'a Home, Received) -> Pin<Box<dyn Future<Output = Result<()>> + 'a>> + Send + Sync>;

#[derive(Serialize, Deserialize)]
struct Exit {
    /// The error line `domicile` prints, when the command failed.
    error: Option<String>,
}

fn socket_path(home: &Path) -> PathBuf {
    home.join(SOCKET_DIR).join(SOCKET)
}

fn write_frame(out: &mut impl Write, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(payload.len()).map_err(|_| std::io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(tag);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    out.write_all(&frame)
}

/// The next frame; `None` when the peer closed the connection.
fn read_frame(input: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match input.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!("a frame of {len} bytes is more than the {MAX_FRAME} allowed")));
    }
    let mut payload = vec![0; len];
    input.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// Whether opening the home failed because another process holds it.
pub fn held_by_a_server(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| matches!(cause.downcast_ref::<HomeError>(), Some(HomeError::Store(StoreError::InUse(_)))))
}

// ---- the client ------------------------------------------------------------

/// Runs `command` in the server that holds the home in `dir`, printing
/// what it prints; fails as the command failed. Paths in it must be
/// absolute: the server is elsewhere.
pub fn forward(dir: &Path, resident: Option<&str>, json: bool, command: &impl Serialize) -> Result<()> {
    let path = socket_path(dir);
    let stream = UnixStream::connect(&path).map_err(|e| {
        anyhow!(
            "the home {} is in use by another domicile process, and no server answers on {} ({e}): another command is still running on it; try again when it has finished",
            dir.display(),
            path.display()
        )
    })?;
    let request = Request {
        resident: resident.map(str::to_owned),
        json,
        stdin_is_terminal: std::io::IsTerminal::is_terminal(&std::io::stdin()),
        stderr_is_terminal: !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        command: serde_json::to_value(command)?,
    };
    let mut writer = stream.try_clone()?;
    write_frame(&mut writer, REQUEST, &serde_json::to_vec(&request)?)?;
    // Stdin goes to the server as it comes; the thread ends with the
    // process if the command never reads it.
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0; 64 * 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if write_frame(&mut writer, STDIN, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
        let _ = write_frame(&mut writer, STDIN_END, &[]);
    });
    let mut reader = BufReader::new(stream);
    // The progress line the server sends, drawn until other output comes.
    let mut progress: Option<indicatif::ProgressBar> = None;
    loop {
        let Some((tag, payload)) = read_frame(&mut reader)? else {
            bail!("the server closed the connection before the command finished (was it stopped?)");
        };
        if tag == PROGRESS && !payload.is_empty() {
            let line = progress.get_or_insert_with(crate::progress::Line::own);
            line.set_message(crate::terminal::safe(&String::from_utf8_lossy(&payload)).into_owned());
            line.tick();
            continue;
        }
        if let Some(line) = progress.take() {
            line.finish_and_clear();
        }
        match tag {
            PROGRESS => {}
            STDOUT => {
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&payload).and_then(|()| out.flush());
            }
            STDERR => {
                let _ = std::io::stderr().lock().write_all(&payload);
            }
            EXIT => {
                let exit: Exit = serde_json::from_slice(&payload).context("the server's answer is not readable")?;
                return match exit.error {
                    None => Ok(()),
                    Some(line) => Err(anyhow!(line)),
                };
            }
            other => bail!("the server sent an unknown frame `{}`", other as char),
        }
    }
}

// ---- the server ------------------------------------------------------------

/// The control socket of a running server; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The uid of the peer of a Unix socket.
#[allow(unsafe_code)]
fn peer_uid(stream: &UnixStream) -> std::io::Result<u32> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred { pid: 0, uid: 0, gid: 0 };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given,
    // and the descriptor is open for the call's duration.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(cred.uid)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Listens on the home's control socket and has `run` run each command it
/// receives on `home`, on its own thread, with the async parts on
/// `runtime`; `clustered` tells it the server is a node of a cluster.
pub fn listen(home: Arc<Home>, runtime: tokio::runtime::Handle, clustered: bool, run: Runner) -> Result<ControlSocket> {
    let dir = home.dir().join(SOCKET_DIR);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
    let path = socket_path(home.dir());
    // A socket left by a server that died: the store's lock, held by this
    // process, says no other server is alive.
    let _ = std::fs::remove_file(&path);
    let listener = UnixListener::bind(&path).with_context(|| format!("cannot listen on {}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("cannot restrict {} to its owner", path.display()))?;
    // This process's user: the owner of the socket it just made.
    let owner = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?,
    );
    std::thread::Builder::new().name("control socket".into()).spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            match peer_uid(&stream) {
                Ok(uid) if uid == owner || uid == 0 => {}
                _ => {
                    tracing::warn!("a connection to the control socket from another user was refused");
                    continue;
                }
            }
            let (home, runtime, run) = (home.clone(), runtime.clone(), run.clone());
            let spawned = std::thread::Builder::new()
                .name("control command".into())
                .spawn(move || serve_connection(stream, &home, &runtime, clustered, &run));
            if spawned.is_err() {
                tracing::error!("cannot start a thread for a command from the control socket");
            }
        }
    })?;
    Ok(ControlSocket { path })
}

/// Stdin frames from the client, as a reader.
struct RemoteStdin {
    chunks: mpsc::Receiver<Vec<u8>>,
    current: std::io::Cursor<Vec<u8>>,
}

impl Read for RemoteStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.current.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.chunks.recv() {
                Ok(chunk) => self.current = std::io::Cursor::new(chunk),
                // The client's stdin ended (or the client left).
                Err(_) => return Ok(0),
            }
        }
    }
}

fn serve_connection(stream: UnixStream, home: &Home, runtime: &tokio::runtime::Handle, clustered: bool, run: &Runner) {
    let Ok(mut reader) = stream.try_clone() else { return };
    let writer = Arc::new(Mutex::new(stream));
    let send = {
        let writer = writer.clone();
        move |tag: u8, payload: &[u8]| {
            let mut stream = writer.lock().unwrap_or_else(|p| p.into_inner());
            // A client that left stops reading; the command still finishes.
            let _ = write_frame(&mut *stream, tag, payload);
        }
    };
    let request = match read_frame(&mut reader) {
        Ok(Some((REQUEST, payload))) => serde_json::from_slice::<Request>(&payload),
        _ => return,
    };
    let request = match request {
        Ok(request) => request,
        Err(e) => {
            let error = format!(
                "the command could not be read ({e}); are the client and the server the same version of domicile?"
            );
            send(EXIT, &serde_json::to_vec(&Exit { error: Some(error) }).unwrap_or_default());
            return;
        }
    };
    let (chunks_tx, chunks) = mpsc::channel();
    std::thread::spawn(move || {
        while let Ok(Some((tag, payload))) = read_frame(&mut reader) {
            if tag != STDIN || chunks_tx.send(payload).is_err() {
                break;
            }
        }
    });
    let stdout = send.clone();
    let stderr = send.clone();
    let progress = send.clone();
    let remote = Arc::new(Remote {
        stdout: Box::new(move |bytes| stdout(STDOUT, bytes)),
        stderr: Box::new(move |bytes| stderr(STDERR, bytes)),
        progress: Box::new(move |bytes| progress(PROGRESS, bytes)),
        stdin: Mutex::new(Box::new(BufReader::new(RemoteStdin { chunks, current: Default::default() }))),
        stdin_is_terminal: request.stdin_is_terminal,
        stderr_is_terminal: request.stderr_is_terminal,
    });
    tracing::info!("running a command from the control socket");
    let Request { resident, json, command, .. } = request;
    let received = Received { resident, json, command, clustered };
    let outcome = runtime.block_on(crate::io::for_remote(remote, run(home, received)));
    let error = outcome.err().map(|e| crate::hints::render(&e));
    send(EXIT, &serde_json::to_vec(&Exit { error }).unwrap_or_default());
}
