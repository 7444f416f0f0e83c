//! Where a command's output goes and its input comes from: this process's
//! stdout, stderr and stdin, or, for a command a running server executes
//! for a `domicile` beside it (see the control module), that client's,
//! through the control socket. Commands print with [`outln!`], [`out!`]
//! and [`errln!`] and read with [`stdin_lines`], so the same code prints
//! the same output in both cases.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// Sends bytes of output to the client.
pub type Sink = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The client a command runs for, when it runs inside a server.
pub struct Remote {
    pub(crate) stdout: Sink,
    pub(crate) stderr: Sink,
    /// The line of a long command's progress, which the client draws on its
    /// terminal (an empty one clears it); only when `stderr_is_terminal`.
    pub(crate) progress: Sink,
    pub(crate) stdin: Mutex<Box<dyn BufRead + Send>>,
    pub(crate) stdin_is_terminal: bool,
    pub(crate) stderr_is_terminal: bool,
}

tokio::task_local! {
    static REMOTE: Arc<Remote>;
}

/// Runs `command` with its input and output those of `remote`.
pub async fn for_remote<F: std::future::Future>(remote: Arc<Remote>, command: F) -> F::Output {
    REMOTE.scope(remote, command).await
}

fn remote() -> Option<Arc<Remote>> {
    REMOTE.try_with(Arc::clone).ok()
}

pub fn stdout(args: std::fmt::Arguments<'_>) {
    match remote() {
        Some(r) => (r.stdout)(args.to_string().as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            // A closed stdout (`domicile ... | head`) is not an error of the command.
            let _ = out.write_fmt(args).and_then(|()| out.flush());
        }
    }
}

pub fn stderr(args: std::fmt::Arguments<'_>) {
    match remote() {
        Some(r) => (r.stderr)(args.to_string().as_bytes()),
        None => {
            let _ = std::io::stderr().lock().write_fmt(args);
        }
    }
}

/// Where a long command shows its progress, when someone watches it on a
/// terminal: this process's stderr, or the terminal of the client a server
/// runs the command for.
pub enum ProgressTarget {
    Own,
    Client(Arc<Remote>),
}

pub fn progress_target() -> Option<ProgressTarget> {
    match remote() {
        Some(r) => r.stderr_is_terminal.then_some(ProgressTarget::Client(r)),
        None => std::io::stderr().is_terminal().then_some(ProgressTarget::Own),
    }
}

pub fn stdin_is_terminal() -> bool {
    match remote() {
        Some(r) => r.stdin_is_terminal,
        None => std::io::stdin().is_terminal(),
    }
}

/// The next line of stdin without its line ending; `None` at the end.
pub fn stdin_line() -> std::io::Result<Option<String>> {
    let mut line = String::new();
    let read = match remote() {
        Some(r) => r.stdin.lock().unwrap_or_else(|p| p.into_inner()).read_line(&mut line)?,
        None => std::io::stdin().lock().read_line(&mut line)?,
    };
    if read == 0 {
        return Ok(None);
    }
    let trimmed = line.trim_end_matches(['\r', '\n']).len();
    line.truncate(trimmed);
    Ok(Some(line))
}

/// Every line of stdin, as they come.
pub fn stdin_lines() -> impl Iterator<Item = std::io::Result<String>> {
    std::iter::from_fn(|| stdin_line().transpose())
}

/// `println!`, to the command's stdout.
#[macro_export]
macro_rules! outln {
    () => { $crate::io::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!`, to the command's stdout.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::io::stdout(format_args!($($arg)*)) };
}

/// `eprintln!`, to the command's stderr.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => { $crate::io::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

/// The bytes of a file a command was given to read: a regular file only,
/// checked without blocking (a FIFO given in its place would hang the
/// command, or a server thread through the control socket).
pub fn read_given(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    domicile_package::files::read_regular(path, u64::MAX).with_context(|| format!("cannot read {}", path.display()))
}

/// The same, opened for a reader that streams it.
pub fn open_given(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use anyhow::Context;
    domicile_package::files::open_regular(path).with_context(|| format!("cannot read {}", path.display()))
}
