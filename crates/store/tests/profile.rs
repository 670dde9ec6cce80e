//! The profile tables (schema v3): the signer record, groups, and coins as backends report
//! them — including backends that repeat an outpoint or correct a value.

use store::{Store, Unspent};

fn unspent(tag: u8, value: i64, height: Option<u32>) -> Unspent {
    Unspent {
        txid: [tag; 32],
        vout: 0,
        value,
        height,
    }
}

#[test]
fn coins_follow_the_backend_including_repeats_and_corrections() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("p.sqlite3")).unwrap();
    let group = [7u8; 32];
    store
        .save_group(&group, "g", b"descriptor", &[], 1)
        .unwrap();
    let script = [0x51u8];

    let c = store
        .apply_unspent(&group, &script, &[unspent(1, 5, None)], "a", 10)
        .unwrap();
    assert_eq!((c.received, c.spent, c.confirmed), (1, 0, 0));
    // The same outpoint twice, with a corrected value: no error, the last word wins.
    let c = store
        .apply_unspent(
            &group,
            &script,
            &[unspent(1, 7, Some(3)), unspent(1, 7, Some(3))],
            "b",
            20,
        )
        .unwrap();
    assert_eq!((c.received, c.confirmed), (0, 1));
    let coins = store.coins(&group, false).unwrap();
    assert_eq!(coins.len(), 1);
    assert_eq!(
        (coins[0].value, coins[0].height, coins[0].backend.as_str()),
        (7, Some(3), "b")
    );
    // Gone from the backend's set: spent, but kept for the history.
    let c = store.apply_unspent(&group, &script, &[], "b", 30).unwrap();
    assert_eq!(c.spent, 1);
    assert!(store.coins(&group, false).unwrap().is_empty());
    assert_eq!(
        store.coins(&group, true).unwrap()[0].spent_seen_ms,
        Some(30)
    );
    // A reorg can bring it back.
    store
        .apply_unspent(&group, &script, &[unspent(1, 7, None)], "b", 40)
        .unwrap();
    assert_eq!(store.coins(&group, false).unwrap()[0].spent_seen_ms, None);
}

#[test]
fn the_profile_belongs_to_one_key_and_groups_are_kept_as_first_saved() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path().join("p.sqlite3")).unwrap();
    let row = |key: u8| store::SignerRow {
        public_key: [key; 33],
        created_ms: 5,
        backup_confirmed_ms: None,
    };
    store.exclusive(|b| b.record_signer(&row(2))).unwrap();
    assert!(
        store.exclusive(|b| b.record_signer(&row(3))).is_err(),
        "a second key is refused"
    );
    assert_eq!(store.signer().unwrap(), Some(row(2)));
    assert!(store.confirm_backup(9).unwrap());
    assert_eq!(
        store.signer().unwrap().unwrap().backup_confirmed_ms,
        Some(9)
    );

    assert!(store
        .save_group(&[1; 32], "first", b"d1", &[([4; 33], b"a".to_vec())], 1)
        .unwrap());
    assert!(!store
        .save_group(&[1; 32], "renamed", b"d2", &[([5; 33], b"b".to_vec())], 2)
        .unwrap());
    let groups = store.groups().unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0].name.as_str(), groups[0].descriptor.as_slice()),
        ("first", &b"d1"[..])
    );
    assert_eq!(groups[0].acceptances, vec![b"a".to_vec(), b"b".to_vec()]);
}
