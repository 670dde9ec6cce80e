//! The app's data folder: settings file and the profile's one SQLite database, private to the
//! user.

use std::fs;
use std::path::{Path, PathBuf};

/// Name of the folder under the platform data dir (`~/.local/share` on Linux,
/// `~/Library/Application Support` on macOS, `%APPDATA%` on Windows).
pub const APP_FOLDER: &str = "lotus-cosigner";

/// The profile's database inside the data folder.
pub const DATABASE_FILE: &str = "lotus-cosigner.sqlite3";

/// What profiles made before the one-database layout hold (imported once, then renamed with
/// [`MIGRATED_SUFFIX`]): the app database (signer record, seconds), the session store, and
/// one file per group and per acceptance.
pub mod legacy {
    pub const APP_DATABASE: &str = "cosigner.sqlite3";
    pub const SESSION_STORE: &str = "sessions.sqlite3";
    pub const GROUPS_FOLDER: &str = "groups";
    pub const MIGRATED_SUFFIX: &str = ".migrated";
}

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("this system reports no per-user data folder; set LOTUS_COSIGNER_DATA_DIR")]
    NoPlatformDir,
    #[error("cannot create the data folder {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Uses `explicit` if given, else the platform data folder; creates it (mode 0700 on Unix)
    /// if it does not exist yet.
    pub fn open(explicit: Option<PathBuf>) -> Result<Self, DataDirError> {
        let root = match explicit {
            Some(path) => path,
            None => dirs::data_dir()
                .ok_or(DataDirError::NoPlatformDir)?
                .join(APP_FOLDER),
        };
        create_private_dir(&root).map_err(|source| DataDirError::Create {
            path: root.clone(),
            source,
        })?;
        Ok(Self { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn settings_file(&self) -> PathBuf {
        self.root.join("settings.json")
    }

    /// The profile's one database: signer record, groups, coins, sessions, audit.
    pub fn database_file(&self) -> PathBuf {
        self.root.join(DATABASE_FILE)
    }
}

#[cfg(unix)]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

#[cfg(not(unix))]
fn create_private_dir(path: &Path) -> std::io::Result<()> {
    fs::create_dir_all(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(Some(tmp.path().join("a/b"))).unwrap();
        assert!(dir.path().is_dir());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        // Opening again is fine.
        DataDir::open(Some(dir.path().to_owned())).unwrap();
    }

    #[test]
    fn one_session_core_per_profile_and_the_lock_goes_with_its_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = DataDir::open(Some(tmp.path().to_owned())).unwrap();
        let held = dir.lock_engine().unwrap();
        let busy = dir.lock_engine().unwrap_err();
        assert!(matches!(busy, LockError::Busy(_)), "{busy}");
        assert!(busy.to_string().contains("already open"), "{busy}");
        drop(held);
        dir.lock_engine()
            .expect("free again once the holder is gone");
    }
}

/// Held while a session core runs on this profile (the app, or a node): two cores on one
/// database would each think they are the only signer. Released when dropped (or when the
/// process dies: it is an OS file lock, never a stale file).
#[derive(Debug)]
pub struct ProfileLock {
    _file: std::fs::File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("this profile ({0}) is already open in another Lotus Cosigner (the app or a node)")]
    Busy(PathBuf),
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl DataDir {
    pub const LOCK_FILE: &'static str = "engine.lock";

    pub const OPENING_LOCK_FILE: &'static str = "opening.lock";

    /// Takes the profile's engine lock, or says who has it.
    pub fn lock_engine(&self) -> Result<ProfileLock, LockError> {
        let (file, path) = self.lock_file(Self::LOCK_FILE)?;
        match file.try_lock() {
            Ok(()) => Ok(ProfileLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(LockError::Busy(self.path().to_owned())),
            Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io { path, source }),
        }
    }

    /// Waits for, then holds, the lock under which a profile is opened: two programs starting
    /// at once on an old layout must not both import it (the second would see half a move).
    pub fn lock_opening(&self) -> Result<ProfileLock, LockError> {
        let (file, path) = self.lock_file(Self::OPENING_LOCK_FILE)?;
        file.lock()
            .map_err(|source| LockError::Io { path, source })?;
        Ok(ProfileLock { _file: file })
    }

    fn lock_file(&self, name: &str) -> Result<(std::fs::File, PathBuf), LockError> {
        let path = self.path().join(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Io {
                path: path.clone(),
                source,
            })?;
        Ok((file, path))
    }
}
