//! `domicile`: a home for your personal data, where signed apps come to
//! the data instead of the data going to them.
//!
//! This binary wires the crates together: it parses the command line,
//! opens the home, and calls the store, the package verifier and the app
//! runtime. Errors end as one line on stderr and a non-zero exit status.

#[macro_use]
mod io;
mod answer;
mod cli;
mod control;
mod develop;
mod dispatch;
mod hints;
mod home;
mod progress;
mod terminal;
mod verbs;

use std::process::ExitCode;

use clap::Parser;

/// See Cargo.toml: an import spends a quarter of its time in glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Everything this process creates (a home, a resident's database, an
/// export) is its user's alone, whatever umask it was started with.
#[allow(unsafe_code)]
fn keep_new_files_private() {
    // SAFETY: umask only sets the process's file-creation mask; it is called
    // first thing in `main`, before any thread has started.
    unsafe { libc::umask(0o077) };
}

fn main() -> ExitCode {
    keep_new_files_private();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("DOMICILE_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("domicile: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch::execute(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line: the error and its causes, joined.
            eprintln!("domicile: {}", hints::render(&e));
            ExitCode::FAILURE
        }
    }
}
