//! Profiles made before the one-database layout open and migrate. The fixture in
//! tests/fixtures/legacy-profile was written by the code of that time (the generator is kept
//! beside it as make_legacy_profile.rs.txt): cosigner.sqlite3 with the signer record (seconds),
//! sessions.sqlite3 at schema v2, and groups/*.group + *.accept-* files.

use std::path::{Path, PathBuf};

use engine::data_dir::{legacy, DATABASE_FILE};
use engine::profile::{Imported, Profile, ProfileError};
use lotus::PrivateKey;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-profile")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn legacy_profile() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("profile");
    copy_dir(&fixture(), &dir);
    (tmp, dir)
}

fn member(i: u8) -> [u8; 33] {
    PrivateKey::from_bytes(&[i; 32])
        .unwrap()
        .public_key()
        .serialize()
}

#[test]
fn an_old_profile_is_imported_once_and_its_files_are_kept() {
    let (_tmp, dir) = legacy_profile();
    let (profile, imported) = Profile::open_reporting(Some(dir.clone())).unwrap();
    assert_eq!(
        imported,
        Imported {
            session_store: true,
            signer: true,
            groups: 2,
            acceptances: 2
        }
    );
    assert_eq!(
        profile.store().schema_version().unwrap(),
        store::db::SCHEMA_VERSION
    );
    let signer = profile
        .store()
        .signer()
        .unwrap()
        .expect("the signer record moved");
    assert_eq!(signer.public_key, member(1));
    assert!(
        signer.created_ms.is_multiple_of(1000),
        "seconds became milliseconds"
    );
    assert!(
        signer.created_ms > 1_700_000_000_000,
        "{}",
        signer.created_ms
    );

    let groups = profile.groups().unwrap();
    let names: Vec<&str> = groups.iter().map(|(g, _)| g.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.contains(&"vault") && names.contains(&"pair"),
        "{names:?}"
    );
    let (vault, accepted) = profile.group("77a1ca05").unwrap();
    assert_eq!(vault.name, "vault");
    assert_eq!(accepted.len(), 2);
    assert!(accepted.iter().all(|a| a.verify(&vault).is_ok()));
    profile.store().verify_audit().unwrap();
    drop(profile);

    // The old files are kept under new names; the one database replaced them.
    assert!(dir.join(DATABASE_FILE).is_file());
    assert!(!dir.join(legacy::SESSION_STORE).exists());
    assert!(dir
        .join(format!(
            "{}{}",
            legacy::APP_DATABASE,
            legacy::MIGRATED_SUFFIX
        ))
        .is_file());
    assert!(dir
        .join(format!(
            "{}{}",
            legacy::GROUPS_FOLDER,
            legacy::MIGRATED_SUFFIX
        ))
        .is_dir());
    assert!(!dir.join(legacy::GROUPS_FOLDER).exists());

    // A second open imports nothing and sees the same profile.
    let (profile, imported) = Profile::open_reporting(Some(dir)).unwrap();
    assert_eq!(imported, Imported::default());
    assert_eq!(profile.groups().unwrap().len(), 2);
}

#[test]
fn an_import_interrupted_after_the_store_moved_finishes_on_the_next_open() {
    let (_tmp, dir) = legacy_profile();
    // A crash right after the session store was renamed: the rest is still old files.
    std::fs::rename(dir.join(legacy::SESSION_STORE), dir.join(DATABASE_FILE)).unwrap();
    let (profile, imported) = Profile::open_reporting(Some(dir.clone())).unwrap();
    assert_eq!(
        imported,
        Imported {
            session_store: false,
            signer: true,
            groups: 2,
            acceptances: 2
        }
    );
    assert_eq!(profile.groups().unwrap().len(), 2);
}

#[test]
fn an_old_app_database_naming_another_key_is_refused_and_left_in_place() {
    let (_tmp, dir) = legacy_profile();
    // The profile database already belongs to another key (e.g. two profiles were mixed up).
    {
        let mut store = store::Store::open(dir.join(DATABASE_FILE)).unwrap();
        store
            .exclusive(|b| {
                b.record_signer(&store::SignerRow {
                    public_key: member(9),
                    created_ms: 1,
                    backup_confirmed_ms: None,
                })
            })
            .unwrap();
    }
    let err = Profile::open(Some(dir.clone())).err().expect("refused");
    assert!(matches!(err, ProfileError::Legacy { .. }), "{err}");
    assert!(err.to_string().contains("different signer key"), "{err}");
    assert!(
        dir.join(legacy::APP_DATABASE).is_file(),
        "left untouched for a person to sort out"
    );
}
