//! A home is its owner's alone: its folders 0700 and its files 0600, so
//! that another user of the same machine reads neither the accounts'
//! password hashes nor a resident's database.
//!
//! The `domicile` binary sets its umask to 077, so that what it creates is
//! private whatever the umask it was started with; a home made before
//! that (or copied with looser modes) is tightened when it is opened.
//! The home's own folder is made 0700 last: while it is, the home is
//! private, and a later open looks no further (one `stat`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// The bits nobody but the owner may have.
const OTHERS: u32 = 0o077;

/// Makes the folder of a new home, its owner's alone; an existing one is
/// left to [`tighten`].
pub(crate) fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Takes every permission of the group and of others off the home at
/// `dir` and all it holds (symbolic links are not followed); returns how
/// many entries had some.
pub(crate) fn tighten(dir: &Path) -> std::io::Result<usize> {
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & OTHERS == 0 {
        return Ok(0);
    }
    let mut loosened = 0;
    tighten_below(dir, &mut loosened)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o7700))?;
    Ok(loosened + 1)
}

fn tighten_below(dir: &Path, loosened: &mut usize) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.file_type().is_symlink() {
            continue;
        }
        if meta.is_dir() {
            tighten_below(&entry.path(), loosened)?;
        }
        let mode = meta.permissions().mode();
        if mode & OTHERS != 0 {
            std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode & !OTHERS & 0o7777))?;
            *loosened += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_loose_home_is_tightened_once_and_links_are_left_alone() {
        let outside = tempfile::tempdir().unwrap();
        let target = outside.path().join("not-ours");
        std::fs::write(&target, b"x").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644)).unwrap();
        let home = tempfile::tempdir().unwrap();
        let dir = home.path();
        std::fs::create_dir_all(dir.join("spaces/me")).unwrap();
        std::fs::write(dir.join("accounts.json"), b"{}").unwrap();
        std::fs::write(dir.join("spaces/me/db"), b"").unwrap();
        std::os::unix::fs::symlink(&target, dir.join("link")).unwrap();
        for path in [dir.to_path_buf(), dir.join("spaces"), dir.join("spaces/me")] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        for path in [dir.join("accounts.json"), dir.join("spaces/me/db")] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        assert_eq!(tighten(dir).unwrap(), 5, "the home, two folders and two files");
        assert_eq!(mode(dir), 0o700);
        assert_eq!(mode(&dir.join("spaces/me")), 0o700);
        assert_eq!(mode(&dir.join("accounts.json")), 0o600);
        assert_eq!(mode(&dir.join("spaces/me/db")), 0o600);
        assert_eq!(mode(&target), 0o644, "a link's target outside the home is not changed");
        assert_eq!(tighten(dir).unwrap(), 0, "said once: a private home is left as it is");
    }
}
