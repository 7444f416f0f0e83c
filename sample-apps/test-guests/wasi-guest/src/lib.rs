//! Test guest: uses WASI directly, as components built from other
//! languages do, and reports what the sandbox let it do. It writes a file in
//! its scratch directory, and tries to leave it: `..`, absolute paths, and
//! a symbolic link planted by the test.

domicile_sdk::generate!("wasi-service", "../wasi-wit", generate_all);

use wasi::filesystem::types::{Descriptor, DescriptorFlags, OpenFlags, PathFlags};

struct WasiGuest;

fn open(dir: &Descriptor, path: &str, create: bool) -> Result<Descriptor, String> {
    let open_flags = if create { OpenFlags::CREATE | OpenFlags::TRUNCATE } else { OpenFlags::empty() };
    let flags = if create { DescriptorFlags::READ | DescriptorFlags::WRITE } else { DescriptorFlags::READ };
    dir.open_at(PathFlags::SYMLINK_FOLLOW, path, open_flags, flags).map_err(|e| format!("{e:?}"))
}

/// Reading a file outside the scratch directory must fail; report how.
fn escape(dir: &Descriptor, path: &str) -> serde_json::Value {
    match open(dir, path, false).and_then(|f| f.read(64, 0).map_err(|e| format!("{e:?}"))) {
        Ok((bytes, _)) => serde_json::json!({ "escaped": String::from_utf8_lossy(&bytes) }),
        Err(e) => serde_json::json!({ "refused": e }),
    }
}

impl Guest for WasiGuest {
    fn run(_input: String) -> Result<String, String> {
        wasi::cli::stdout::get_stdout()
            .blocking_write_and_flush(b"hello from stdout\n")
            .map_err(|e| format!("{e:?}"))?;
        wasi::cli::stderr::get_stderr()
            .blocking_write_and_flush(b"hello from stderr\n")
            .map_err(|e| format!("{e:?}"))?;
        let env = wasi::cli::environment::get_environment();
        let args = wasi::cli::environment::get_arguments();
        let now = wasi::clocks::wall_clock::now();
        let random = wasi::random::random::get_random_bytes(16);
        let dirs = wasi::filesystem::preopens::get_directories();
        let mut report = serde_json::json!({
            "env": env.len(),
            "args": args.len(),
            "wall_clock_s": now.seconds,
            "random_bytes": random.len(),
            "preopens": dirs.iter().map(|(_, name)| name.clone()).collect::<Vec<_>>(),
        });
        if let Some((scratch, _)) = dirs.first() {
            let file = open(scratch, "note.txt", true)?;
            file.write(b"written in the sandbox", 0).map_err(|e| format!("{e:?}"))?;
            let (back, _) = file.read(64, 0).map_err(|e| format!("{e:?}"))?;
            report["read_back"] = String::from_utf8_lossy(&back).into();
            report["dotdot"] = escape(scratch, "../../../trust.json");
            report["absolute"] = escape(scratch, "/etc/hostname");
            report["symlink"] = escape(scratch, "outside/hostname");
        }
        Ok(report.to_string())
    }
}

export!(WasiGuest);
