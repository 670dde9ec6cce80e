//! Opening: creation, migration from empty, reopening, and files that are not ours (random
//! bytes, another application's SQLite database, a damaged store, a newer schema) — each a
//! clear typed error, with the file left byte-for-byte untouched.

mod common;

use std::path::Path;

use common::*;
use protocol::envelope::MessageKind;
use store::{Error, Store};

fn snapshot(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

fn sidecars_absent(path: &Path) -> bool {
    let wal = path.with_extension("sqlite-wal");
    let shm = path.with_extension("sqlite-shm");
    !wal.exists() && !shm.exists()
}

#[test]
fn migrates_from_empty_to_the_current_schema() {
    let f = Fixture::new();
    assert_eq!(f.store.schema_version().unwrap(), store::db::SCHEMA_VERSION);
    let raw = f.raw();
    let app_id: i32 = raw
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .unwrap();
    assert_eq!(app_id, store::db::APPLICATION_ID);
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    for table in [
        "attempts",
        "nonces",
        "messages",
        "sessions",
        "audit",
        "audit_head",
        "audit_anchors",
        "evidence",
        "signers",
        "signer_timeouts",
        "signer_responses",
        "signer_latency",
        "blacklist",
        "anomalies",
        "peers",
        "peer_addresses",
    ] {
        let n: i64 = raw
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    assert!(f.store.verify_audit().unwrap().entries == 0);
}

#[cfg(unix)]
#[test]
fn the_file_and_its_wal_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut f = Fixture::new();
    let k = keys(2);
    let g = group(&k);
    propose(&mut f.store, &k, &g, session(1), 0, 0, 1_000);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&f.path()), 0o600);
    let wal = f.path().with_extension("sqlite-wal");
    assert!(wal.exists(), "WAL mode writes a -wal file");
    assert_eq!(mode(&wal), 0o600);
}

#[test]
fn reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cosigner.sqlite");
    let k = keys(3);
    let g = group(&k);
    {
        let mut store = Store::open(&path).unwrap();
        propose(&mut store, &k, &g, session(1), 1, 0, 1_000);
        store.apply(&nonce(session(1), 0, 0, 0xA1), 1_001).unwrap();
        store
            .append(
                &store::AuditEvent::Key {
                    action: store::KeyAction::Created,
                    public_key: k[0].public_key().serialize(),
                },
                1_002,
            )
            .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), store::db::SCHEMA_VERSION);
    assert!(store.session(&session(1)).unwrap().is_some());
    assert!(store.nonce_used(&[0xA1; 32]).unwrap());
    assert_eq!(store.verify_audit().unwrap().entries, 1);
    // The registry survived: the same nonce is still refused.
    let again = store.apply(&nonce(session(2), 0, 0, 0xA1), 2_000);
    assert!(matches!(again, Err(Error::NonceReuse { .. })), "{again:?}");
    assert_eq!(
        store
            .attempt_messages(&session(1), 0, MessageKind::Proposal)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn an_empty_file_is_initialised() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cosigner.sqlite");
    std::fs::write(&path, b"").unwrap();
    let store = Store::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), store::db::SCHEMA_VERSION);
}

#[test]
fn random_bytes_are_not_a_database_and_stay_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (i, len) in [1usize, 50, 99, 100, 4096, 65_536].into_iter().enumerate() {
        let path = dir.path().join(format!("random-{i}.sqlite"));
        // Deterministic "random" bytes (xorshift).
        let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ len as u64;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::write(&path, &bytes).unwrap();
        match Store::open(&path) {
            Err(Error::NotADatabase { path: p }) => assert_eq!(p, path),
            other => panic!("{len} random bytes: expected NotADatabase, got {other:?}"),
        }
        assert_eq!(snapshot(&path), bytes, "{len} bytes left untouched");
        assert!(sidecars_absent(&path));
    }
}

#[test]
fn text_that_starts_like_sqlite_but_is_not_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sqlite");
    let mut bytes = b"SQLite format 3\0".to_vec();
    bytes.extend(std::iter::repeat_n(0xEE, 4080));
    std::fs::write(&path, &bytes).unwrap();
    let result = Store::open(&path);
    assert!(
        matches!(
            result,
            Err(Error::NotADatabase { .. } | Error::Corrupt { .. })
        ),
        "{result:?}"
    );
    assert_eq!(snapshot(&path), bytes);
}

fn foreign_database(path: &Path, application_id: i32) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA application_id = {application_id};
         CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO notes (body) VALUES ('shopping list');"
    ))
    .unwrap();
}

#[test]
fn another_applications_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for application_id in [0, 0x0F05_5112] {
        let path = dir.path().join(format!("notes-{application_id}.db"));
        foreign_database(&path, application_id);
        let before = snapshot(&path);
        match Store::open(&path) {
            Err(Error::ForeignDatabase {
                application_id: found,
                tables,
                ..
            }) => {
                assert_eq!(found, application_id);
                assert_eq!(tables, vec!["notes".to_string()]);
            }
            other => panic!("expected ForeignDatabase, got {other:?}"),
        }
        assert_eq!(snapshot(&path), before, "foreign file left untouched");
        assert!(sidecars_absent(&path), "no WAL was created next to it");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete", "its journal mode was not changed");
    }
}

#[test]
fn an_empty_sqlite_file_of_another_application_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("PRAGMA application_id = 1234; PRAGMA user_version = 3;")
        .unwrap();
    drop(conn);
    let before = snapshot(&path);
    assert!(matches!(
        Store::open(&path),
        Err(Error::ForeignDatabase {
            application_id: 1234,
            ..
        })
    ));
    assert_eq!(snapshot(&path), before);
}

#[test]
fn a_damaged_store_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cosigner.sqlite");
    let k = keys(2);
    let g = group(&k);
    {
        let mut store = Store::open(&path).unwrap();
        for i in 0..40u8 {
            propose(&mut store, &k, &g, session(i), 1, 0, 1_000 + i as u64);
        }
    }
    // Fold the WAL into the main file and leave rollback mode, so the file alone is the store.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA journal_mode = DELETE;")
            .unwrap();
    }
    let good = snapshot(&path);
    let page = 4096;
    assert!(good.len() > 4 * page);
    // Smash the b-tree page headers of every page after the first.
    let mut bad = good.clone();
    for start in (page..bad.len()).step_by(page) {
        bad[start..start + 12].fill(0xFF);
    }
    std::fs::write(&path, &bad).unwrap();
    let result = Store::open(&path);
    assert!(
        matches!(
            result,
            Err(Error::Corrupt { .. } | Error::NotADatabase { .. })
        ),
        "{result:?}"
    );
    assert_eq!(snapshot(&path), bad, "damaged file left as it was");
}

#[test]
fn a_newer_schema_is_refused_and_untouched() {
    let f = Fixture::new();
    f.raw().execute_batch("PRAGMA user_version = 99;").unwrap();
    let path = f.path();
    drop(f.store);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = snapshot(&path);
    match Store::open(&path) {
        Err(Error::SchemaTooNew { found, known, .. }) => {
            assert_eq!(found, 99);
            assert_eq!(known, store::db::SCHEMA_VERSION);
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    assert_eq!(snapshot(&path), before);
}

#[test]
fn open_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    foreign_database(&path, 7);
    let message = Store::open(&path).unwrap_err().to_string();
    assert!(message.contains("another application"), "{message}");
    assert!(message.contains("notes"), "{message}");
    assert!(message.contains("left untouched"), "{message}");
}
