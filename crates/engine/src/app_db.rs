//! LEGACY: the app database of profiles made before the one-database layout. It recorded the
//! schema version and which signer key a profile belongs to; [`crate::profile::Profile`] now
//! imports it once and renames it. Kept to read old profiles. The original description:
//!
//! The app's SQLite file. For now it records the schema version and which signer key this
//! profile belongs to, so a key that disappears from the keychain (or is swapped) is noticed
//! instead of silently replaced.
//!
//! Opened in WAL mode with `synchronous=FULL` (later tables hold the used-nonce registry, where
//! a lost commit is unacceptable) and created with mode 0600.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use secp256k1::PublicKey;

/// The schema this build reads and writes. Each entry of [`MIGRATIONS`] moves one version up.
pub const SCHEMA_VERSION: i64 = 1;

const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    // 0 -> 1
    "CREATE TABLE app_meta (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         schema_version INTEGER NOT NULL,
         created_at INTEGER NOT NULL
     ) STRICT;
     CREATE TABLE signer_key (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         public_key BLOB NOT NULL CHECK (length(public_key) = 33),
         created_at INTEGER NOT NULL,
         backup_confirmed_at INTEGER
     ) STRICT;",
];

#[derive(Debug, thiserror::Error)]
pub enum AppDbError {
    #[error("cannot open the database {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "database {path} has schema version {found}; this build understands up to {SCHEMA_VERSION}"
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error("database {path} holds an invalid signer public key")]
    BadPublicKey { path: PathBuf },
}

/// What the profile remembers about its signer key (never the secret itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerRecord {
    pub public_key: PublicKey,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; `None` until the person confirms a backup.
    pub backup_confirmed_at: Option<i64>,
}

pub struct AppDb {
    conn: Connection,
    path: PathBuf,
}

impl AppDb {
    /// Opens (creating if needed) and migrates the database. `now` is unix seconds.
    pub fn open(path: &Path, now: i64) -> Result<Self, AppDbError> {
        create_private_file(path).map_err(|source| AppDbError::Open {
            path: path.to_owned(),
            source,
        })?;
        let conn = Connection::open(path).map_err(|source| AppDbError::Sqlite {
            path: path.to_owned(),
            source,
        })?;
        let mut db = Self {
            conn,
            path: path.to_owned(),
        };
        db.configure()?;
        db.migrate(now)?;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64, AppDbError> {
        self.conn
            .query_row(
                "SELECT schema_version FROM app_meta WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.sqlite(e))
    }

    pub fn journal_mode(&self) -> Result<String, AppDbError> {
        self.conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(|e| self.sqlite(e))
    }

    pub fn signer(&self) -> Result<Option<SignerRecord>, AppDbError> {
        let row = self
            .conn
            .query_row(
                "SELECT public_key, created_at, backup_confirmed_at FROM signer_key WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<i64>>(2)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.sqlite(e))?;
        row.map(|(key, created_at, backup_confirmed_at)| {
            let public_key = PublicKey::from_slice(&key).map_err(|_| AppDbError::BadPublicKey {
                path: self.path.clone(),
            })?;
            Ok(SignerRecord {
                public_key,
                created_at,
                backup_confirmed_at,
            })
        })
        .transpose()
    }

    /// Records the profile's signer key. Refuses to overwrite a different one (the CHECK on
    /// `id = 1` plus a plain INSERT make a second key a constraint error).
    pub fn record_signer(&self, public_key: &PublicKey, created_at: i64) -> Result<(), AppDbError> {
        self.conn
            .execute(
                "INSERT INTO signer_key (id, public_key, created_at) VALUES (1, ?1, ?2)",
                params![public_key.serialize().as_slice(), created_at],
            )
            .map(drop)
            .map_err(|e| self.sqlite(e))
    }

    /// Runs `f` inside `BEGIN IMMEDIATE … COMMIT` (rolled back if `f` fails). The write lock
    /// is held across processes, so two app instances starting at once cannot both decide they
    /// are the first run.
    pub fn exclusive<T, E: From<AppDbError>>(
        &self,
        f: impl FnOnce(&Self) -> Result<T, E>,
    ) -> Result<T, E> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.sqlite(e))?;
        match f(self) {
            Ok(value) => {
                self.conn
                    .execute_batch("COMMIT")
                    .map_err(|e| self.sqlite(e))?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
                    tracing::error!(%rollback, "rollback failed");
                }
                Err(error)
            }
        }
    }

    fn configure(&self) -> Result<(), AppDbError> {
        let mode: String = self
            .conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| self.sqlite(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %self.path.display(), mode, "SQLite refused WAL mode");
        }
        self.conn
            .execute_batch(
                "PRAGMA synchronous = FULL;
                 PRAGMA foreign_keys = ON;
                 PRAGMA busy_timeout = 5000;",
            )
            .map_err(|e| self.sqlite(e))?;
        // Plain fsync does not flush the drive cache on macOS.
        #[cfg(target_os = "macos")]
        self.conn
            .execute_batch("PRAGMA fullfsync = ON; PRAGMA checkpoint_fullfsync = ON;")
            .map_err(|e| self.sqlite(e))?;
        Ok(())
    }

    fn migrate(&mut self, now: i64) -> Result<(), AppDbError> {
        let path = self.path.clone();
        let sqlite = |source| AppDbError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sqlite)?;
        let has_meta: bool = tx
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'app_meta')",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite)?;
        let found: i64 = if has_meta {
            tx.query_row(
                "SELECT schema_version FROM app_meta WHERE id = 1",
                [],
                |r| r.get(0),
            )
            .map_err(sqlite)?
        } else {
            0
        };
        if found > SCHEMA_VERSION {
            return Err(AppDbError::TooNew { path, found });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql).map_err(sqlite)?;
            tracing::info!(to = version + 1, "migrated app database");
        }
        if found == 0 {
            tx.execute(
                "INSERT INTO app_meta (id, schema_version, created_at) VALUES (1, ?1, ?2)",
                params![SCHEMA_VERSION, now],
            )
            .map_err(sqlite)?;
        } else if found < SCHEMA_VERSION {
            tx.execute(
                "UPDATE app_meta SET schema_version = ?1 WHERE id = 1",
                params![SCHEMA_VERSION],
            )
            .map_err(sqlite)?;
        }
        tx.commit().map_err(sqlite)
    }

    fn sqlite(&self, source: rusqlite::Error) -> AppDbError {
        AppDbError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// Creates the file with mode 0600 before SQLite sees it (SQLite gives its -wal and -shm files
/// the same mode), and tightens an existing file that is readable by others.
#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "database was readable by others; setting 0600");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> PublicKey {
        lotus::PrivateKey::from_bytes(&[byte; 32])
            .unwrap()
            .public_key()
    }

    #[test]
    fn fresh_database_is_private_wal_and_at_the_current_schema() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        let db = AppDb::open(&path, 1_700_000_000).unwrap();
        assert_eq!(db.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(db.journal_mode().unwrap(), "wal");
        assert_eq!(db.signer().unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn signer_record_survives_reopen_and_cannot_be_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        AppDb::open(&path, 10)
            .unwrap()
            .record_signer(&key(1), 20)
            .unwrap();
        let db = AppDb::open(&path, 30).unwrap();
        assert_eq!(
            db.signer().unwrap(),
            Some(SignerRecord {
                public_key: key(1),
                created_at: 20,
                backup_confirmed_at: None
            })
        );
        assert!(db.record_signer(&key(2), 40).is_err());
        assert_eq!(db.signer().unwrap().unwrap().public_key, key(1));
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("db.sqlite3");
        drop(AppDb::open(&path, 10).unwrap());
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE app_meta SET schema_version = 99", [])
            .unwrap();
        assert!(matches!(
            AppDb::open(&path, 10),
            Err(AppDbError::TooNew { found: 99, .. })
        ));
    }
}
