//! Opening the database file: created private (0600), identified before anything is written
//! (a file that is not ours is an error, never replaced or migrated over), checked with
//! `PRAGMA quick_check`, then WAL + `synchronous=FULL` and the schema migrations, one
//! transaction each.
//!
//! Identity: `PRAGMA application_id` is [`APPLICATION_ID`] and `PRAGMA user_version` is the
//! schema version (the LDK Node habit). Both live in the database header and change in the same
//! transaction as the migration that sets them, so a crash mid-migration leaves the previous
//! version intact.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use crate::Error;

/// "LCOS" — Lotus Cosigner store.
pub const APPLICATION_ID: i32 = 0x4C43_4F53;

/// How long a writer waits for another connection's lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT_MS: u32 = 5_000;

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// One schema step. `MIGRATIONS[i]` moves the schema from version `i` to `i + 1`.
pub(crate) struct Migration {
    pub sql: &'static str,
}

pub(crate) const MIGRATIONS: &[Migration] = &[
    Migration {
        sql: include_str!("schema/v1.sql"),
    },
    // Protocol v2: sessions of protocol v1 are closed (they can't continue).
    Migration {
        sql: include_str!("schema/v2.sql"),
    },
    // One database per profile: signer record, groups, acceptances, coins.
    Migration {
        sql: include_str!("schema/v3.sql"),
    },
    // Group backups saved (the descriptor as a file).
    Migration {
        sql: include_str!("schema/v4.sql"),
    },
];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens (creating if absent) and migrates the store at `path`.
pub(crate) fn open(path: &Path) -> Result<Connection, Error> {
    open_with(path, MIGRATIONS)
}

pub(crate) fn open_with(path: &Path, migrations: &[Migration]) -> Result<Connection, Error> {
    let created = create_private(path)?;
    if !created {
        check_header(path)?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    // Another instance may be mid-write: wait for its lock rather than fail.
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS as u64))
        .map_err(|e| classify(path, e))?;
    // Everything up to `configure` only reads: a file that is not ours stays byte-identical.
    identify(&conn, path)?;
    quick_check(&conn, path)?;
    let version = user_version(&conn).map_err(|e| classify(path, e))?;
    let known = migrations.len() as i64;
    if version > known {
        return Err(Error::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            known,
        });
    }
    configure(&conn, path)?;
    migrate(&conn, migrations, version)?;
    Ok(conn)
}

/// Creates the file with mode 0600 if it does not exist. Returns whether it was created.
fn create_private(path: &Path) -> Result<bool, Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(Error::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// An existing non-empty file must start with the SQLite magic. Checked by hand, so SQLite
/// never gets to treat random bytes as a database it may write to.
fn check_header(path: &Path) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len == 0 {
        // Created by us and never initialised (a crash right after creation).
        return Ok(());
    }
    let mut magic = [0u8; 16];
    if len < 100 || file.read_exact(&mut magic).is_err() || &magic != SQLITE_MAGIC {
        return Err(Error::NotADatabase {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Ours, or an SQLite file nobody has written a schema into (our own crash before the first
/// migration committed). Anything else belongs to someone else.
fn identify(conn: &Connection, path: &Path) -> Result<(), Error> {
    let application_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| classify(path, e))?;
    if application_id == APPLICATION_ID {
        return Ok(());
    }
    let mut tables = Vec::new();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .map_err(|e| classify(path, e))?;
    let names = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| classify(path, e))?;
    for name in names {
        tables.push(name.map_err(|e| classify(path, e))?);
    }
    let version = user_version(conn).map_err(|e| classify(path, e))?;
    if application_id == 0 && tables.is_empty() && version == 0 {
        return Ok(());
    }
    Err(Error::ForeignDatabase {
        path: path.to_owned(),
        application_id,
        tables,
    })
}

fn quick_check(conn: &Connection, path: &Path) -> Result<(), Error> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .map_err(|e| classify(path, e))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .map_err(|e| classify(path, e))?;
    let mut problems = Vec::new();
    for row in rows {
        let row = row.map_err(|e| classify(path, e))?;
        if row != "ok" {
            problems.push(row);
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        problems.truncate(3);
        Err(Error::Corrupt {
            path: path.to_owned(),
            detail: problems.join("; "),
        })
    }
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

fn configure(conn: &Connection, path: &Path) -> Result<(), Error> {
    let sqlite = |e| classify(path, e);
    // WAL is a property of the file; the rest are per connection.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sqlite)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::JournalMode {
            path: path.to_owned(),
            mode,
        });
    }
    // FULL: a commit is on disk when COMMIT returns. NORMAL could lose the last commits on
    // power loss, and a lost used-nonce row is a leaked key.
    conn.execute_batch(
        "PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA trusted_schema = OFF;",
    )
    .map_err(sqlite)?;
    // Plain fsync does not flush the drive cache on macOS.
    #[cfg(target_os = "macos")]
    conn.execute_batch("PRAGMA fullfsync = ON; PRAGMA checkpoint_fullfsync = ON;")
        .map_err(sqlite)?;
    Ok(())
}

/// Applies `migrations[from..]`, each in its own `BEGIN IMMEDIATE` transaction together with
/// the version (and, at the first, the application id) it produces.
fn migrate(conn: &Connection, migrations: &[Migration], from: i64) -> Result<(), Error> {
    for (index, migration) in migrations.iter().enumerate().skip(from as usize) {
        let version = index as i64 + 1;
        let step = || -> rusqlite::Result<()> {
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            tx.execute_batch(migration.sql)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()
        };
        step().map_err(|source| Error::Migration { version, source })?;
    }
    Ok(())
}

/// SQLite's own verdicts about the file become the typed open errors.
fn classify(path: &Path, error: rusqlite::Error) -> Error {
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => Error::NotADatabase {
            path: path.to_owned(),
        },
        Some(ErrorCode::DatabaseCorrupt) => Error::Corrupt {
            path: path.to_owned(),
            detail: error.to_string(),
        },
        _ => Error::Sqlite(error),
    }
}

/// The current `user_version`.
pub(crate) fn schema_version(conn: &Connection) -> rusqlite::Result<i64> {
    user_version(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_durable() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join("store.sqlite")).unwrap();
        let pragma = |name: &str| -> String {
            conn.query_row(&format!("PRAGMA {name}"), [], |r| {
                r.get::<_, rusqlite::types::Value>(0)
            })
            .map(|v| match v {
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            })
            .unwrap()
        };
        assert_eq!(pragma("journal_mode"), "wal");
        assert_eq!(pragma("synchronous"), "2", "FULL");
        assert_eq!(pragma("foreign_keys"), "1");
        assert_eq!(pragma("busy_timeout"), BUSY_TIMEOUT_MS.to_string());
        assert_eq!(pragma("application_id"), APPLICATION_ID.to_string());
        assert_eq!(pragma("user_version"), SCHEMA_VERSION.to_string());
    }

    #[test]
    fn a_failing_migration_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let good = [Migration {
            sql: "CREATE TABLE one (x INTEGER) STRICT;",
        }];
        drop(open_with(&path, &good).unwrap());
        let bad = [
            Migration {
                sql: "CREATE TABLE one (x INTEGER) STRICT;",
            },
            Migration {
                sql: "CREATE TABLE two (x INTEGER) STRICT; INSERT INTO nowhere VALUES (1);",
            },
        ];
        match open_with(&path, &bad) {
            Err(Error::Migration { version: 2, .. }) => {}
            other => panic!("expected a failed migration to 2, got {other:?}"),
        }
        let conn = open_with(&path, &good).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), 1);
        let two: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'two'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(two, 0, "the failed migration's table was rolled back");
    }

    #[test]
    fn migrations_apply_in_order_from_any_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let first = [Migration {
            sql: "CREATE TABLE one (x INTEGER) STRICT;",
        }];
        drop(open_with(&path, &first).unwrap());
        let both = [
            Migration {
                sql: "CREATE TABLE one (x INTEGER) STRICT;",
            },
            Migration {
                sql: "ALTER TABLE one ADD COLUMN y INTEGER;",
            },
        ];
        let conn = open_with(&path, &both).unwrap();
        assert_eq!(schema_version(&conn).unwrap(), 2);
        conn.execute("INSERT INTO one (x, y) VALUES (1, 2)", [])
            .unwrap();
    }
}
