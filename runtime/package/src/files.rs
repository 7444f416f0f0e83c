//! Reading a file a person named on a command line (or a catalogue's
//! folder names): only a regular file, checked without ever blocking on
//! anything else. A FIFO, a device or a socket given in place of a file
//! would hang the command, or, through a server's control socket, one of
//! the server's threads, for good.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

/// Opens `path` for reading if it is a regular file: opened without
/// blocking (`O_NONBLOCK`: a FIFO with no writer does not wait), then
/// checked on the open file itself (`fstat`), so nothing can be swapped in
/// between the check and the read.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        options.custom_flags(O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it is {}, not a regular file", describe(kind))))
}

/// Reads at most `max` bytes of a regular file (see [`open_regular`]); a
/// longer file is an error, not a truncated read.
pub fn read_regular(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("it is larger than {max} bytes")));
    }
    Ok(bytes)
}

fn describe(kind: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a named pipe (FIFO)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "something else"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_or_a_directory_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        // Nobody writes to it: a blocking open would never return.
        let refused = read_regular(&fifo, 10).unwrap_err().to_string();
        assert!(refused.contains("named pipe"), "{refused}");
        assert!(read_regular(dir.path(), 10).unwrap_err().to_string().contains("a directory"));
        assert!(read_regular(Path::new("/dev/zero"), 10).unwrap_err().to_string().contains("a device"));
        let file = dir.path().join("file");
        std::fs::write(&file, b"0123456789").unwrap();
        assert_eq!(read_regular(&file, 10).unwrap(), b"0123456789");
        assert!(read_regular(&file, 9).unwrap_err().to_string().contains("larger than 9"));
    }
}
