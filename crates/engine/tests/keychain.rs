//! Key custody against the real OS keychain (Secret Service on Linux), never a mock.
//!
//! Needs a D-Bus session bus with an unlocked Secret Service: `./scripts/test` provides one
//! (dbus-run-session + gnome-keyring-daemon --unlock with a throwaway keyring). Run outside it,
//! these tests fail with a hint rather than pass without testing anything.

use engine::identity::{self, IdentityError, Origin};
use engine::key_store::{KeyStore, KeyStoreError, KeychainConfig};
use engine::{Engine, EngineConfig, ErrorKind, Network};

/// A keychain service name of this test's own; the entry is deleted when the guard drops.
struct TestEntry(KeyStore);

impl TestEntry {
    fn new(name: &str) -> Self {
        require_secret_service();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(KeyStore::new(KeychainConfig {
            service: format!("lotus-cosigner-test-{name}-{}-{nanos}", std::process::id()),
            user: KeychainConfig::DEFAULT_USER.to_owned(),
        }))
    }
}

impl Drop for TestEntry {
    fn drop(&mut self) {
        let _ = self.0.delete();
    }
}

fn require_secret_service() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        panic!(
            "no D-Bus session bus: these tests need a real, unlocked Secret Service. \
             Run them through ./scripts/test (dbus-run-session + gnome-keyring-daemon --unlock)."
        );
    }
}

#[test]
fn self_test_passes_on_the_real_keychain_and_leaves_nothing_behind() {
    let entry = TestEntry::new("selftest");
    entry.0.self_test().expect("keychain self-test");
    // The probe entry is gone, and the signer entry was never touched.
    assert!(entry.0.stored_public_key().unwrap().is_none());
}

#[test]
fn first_run_creates_later_runs_load_and_a_lost_key_is_not_replaced() {
    let entry = TestEntry::new("lifecycle");
    let store = &entry.0;
    let tmp = tempfile::tempdir().unwrap();
    let db_path = tmp.path().join("profile.sqlite3");

    let mut db = store::Store::open(&db_path).unwrap();
    let (created, origin) = identity::load_or_create(store, &mut db, 100_000).unwrap();
    assert_eq!(origin, Origin::Created);
    assert_eq!(created.created_ms, 100_000);
    let in_keychain = store
        .stored_public_key()
        .unwrap()
        .expect("key stored in the keychain");
    assert_eq!(in_keychain.serialize(), created.public_key);
    drop(db);

    // Later run (new process = new connection, new Entry handles): same key, same record.
    let mut db = store::Store::open(&db_path).unwrap();
    let (loaded, origin) = identity::load_or_create(store, &mut db, 200_000).unwrap();
    assert_eq!(origin, Origin::Loaded);
    assert_eq!(loaded, created);

    // A fresh data folder adopts the keychain's key instead of making another one.
    let mut other_db = store::Store::open(tmp.path().join("other.sqlite3")).unwrap();
    let (adopted, origin) = identity::load_or_create(store, &mut other_db, 300_000).unwrap();
    assert_eq!(origin, Origin::Adopted);
    assert_eq!(adopted.public_key, created.public_key);

    // The key vanishes from the keychain: a loud error, and still no new key.
    store.delete().unwrap();
    let err = identity::load_or_create(store, &mut db, 400_000).unwrap_err();
    assert!(matches!(err, IdentityError::KeyMissing { .. }), "{err}");
    assert!(store.stored_public_key().unwrap().is_none());
}

#[test]
fn a_different_key_in_the_keychain_is_refused() {
    let first = TestEntry::new("mismatch-a");
    let second = TestEntry::new("mismatch-b");
    let tmp = tempfile::tempdir().unwrap();
    let mut db = store::Store::open(tmp.path().join("db.sqlite3")).unwrap();
    identity::load_or_create(&first.0, &mut db, 1).unwrap();
    // The same profile pointed at another keychain entry that holds another key.
    let other = tempfile::tempdir().unwrap();
    let mut other_db = store::Store::open(other.path().join("db.sqlite3")).unwrap();
    identity::load_or_create(&second.0, &mut other_db, 1).unwrap();
    let err = identity::load_or_create(&second.0, &mut db, 2).unwrap_err();
    assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
}

#[test]
fn engine_serves_the_identity_with_addresses_and_no_secret() {
    let entry = TestEntry::new("engine");
    let tmp = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        data_dir: Some(tmp.path().join("data")),
        keychain: entry.0.config().clone(),
        ..EngineConfig::default()
    };
    // A known key in the keychain: the engine adopts it, and its secret must not reach the UI.
    let key = lotus::PrivateKey::from_bytes(&[0x42; 32]).unwrap();
    entry.0.store(&key).unwrap();
    let view = Engine::start(config.clone()).identity().expect("identity");
    assert_eq!(
        view.public_key_hex,
        hex::encode(key.public_key().serialize())
    );
    assert_eq!(view.network, Network::Mainnet);
    assert!(view.p2pkh_address.starts_with("lotus_"), "{view:?}");
    assert!(view.taproot_address.starts_with("lotus_"), "{view:?}");
    assert_ne!(view.p2pkh_address, view.taproot_address);
    assert!(view.key_store.starts_with("OS keychain"));
    assert_eq!(view.backup_confirmed_at_ms, None);
    assert!(tmp.path().join("data/settings.json").is_file());
    assert!(tmp.path().join("data/lotus-cosigner.sqlite3").is_file());

    // What goes to the UI holds nothing but public data.
    let json = serde_json::to_string(&view).unwrap();
    assert!(!json.contains(&hex::encode(*key.to_bytes())));

    // A second start (the app restarted) shows the same identity.
    assert_eq!(Engine::start(config).identity().unwrap(), view);
}

#[cfg(target_os = "linux")]
#[test]
fn an_unreachable_keychain_is_a_clear_error_not_a_memory_fallback() {
    require_secret_service();
    // A child process with no session bus at all: the keychain cannot be reached.
    if std::env::var_os("KEYCHAIN_TEST_CHILD").is_some() {
        let tmp = tempfile::tempdir().unwrap();
        let engine = Engine::start(EngineConfig {
            data_dir: Some(tmp.path().to_owned()),
            keychain: KeychainConfig {
                service: "lotus-cosigner-test-unreachable".to_owned(),
                user: "signer-key".to_owned(),
            },
            ..EngineConfig::default()
        });
        let err = engine.identity().unwrap_err();
        assert_eq!(err.kind, ErrorKind::KeychainUnavailable, "{err:?}");
        assert!(err.action.contains("try again"), "{err:?}");
        return;
    }
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "an_unreachable_keychain_is_a_clear_error_not_a_memory_fallback",
            "--nocapture",
        ])
        .env("KEYCHAIN_TEST_CHILD", "1")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("DISPLAY")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn keystore_error_actions_say_what_to_do() {
    let err = KeyStoreError::NoSecretService {
        detail: "x".to_owned(),
    };
    assert!(err.action().contains("gnome-keyring"));
}

#[test]
fn a_profile_of_the_old_layout_still_starts_with_its_key() {
    let entry = TestEntry::new("legacy-profile");
    // The fixture's profile belongs to this key (see tests/fixtures/make_legacy_profile.rs.txt).
    let key = lotus::PrivateKey::from_bytes(&[1; 32]).unwrap();
    entry.0.store(&key).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/legacy-profile"))
        .arg(&data)
        .status()
        .unwrap();
    assert!(status.success());
    let view = Engine::start(EngineConfig {
        data_dir: Some(data.clone()),
        keychain: entry.0.config().clone(),
        ..EngineConfig::default()
    })
    .identity()
    .expect("an old profile starts");
    assert_eq!(
        view.public_key_hex,
        hex::encode(key.public_key().serialize())
    );
    assert!(view.created_at_ms > 1_700_000_000_000 && view.created_at_ms.is_multiple_of(1000));
    assert!(data.join("lotus-cosigner.sqlite3").is_file());
    assert!(data.join("cosigner.sqlite3.migrated").is_file());
    assert!(data.join("groups.migrated").is_dir());
}

/// The app's engine end to end: a group funded on the devnet shows its balance from the chain
/// task's news, a payment is proposed through the engine's own session core, the session view
/// says whom it waits for, a stale digest is refused with an explanation, and the chain status
/// names the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_runs_groups_sessions_and_the_chain_for_the_app() {
    use engine::proposals::ProposeRequest;
    use protocol::group::GroupDescriptor;

    let entry = TestEntry::new("facade");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let me = lotus::PrivateKey::from_bytes(&[0x51; 32]).unwrap();
    let other = lotus::PrivateKey::from_bytes(&[0x52; 32]).unwrap();
    entry.0.store(&me).unwrap();
    let group = GroupDescriptor::new(
        "till",
        lotus::address::Network::Regtest,
        vec![me.public_key(), other.public_key()],
    )
    .unwrap();
    let devnet = chain::devnet::server::start(chain::devnet::server::DevnetConfig {
        data_dir: tmp.path().join("devnet"),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_interval: None,
        fund: vec![(group.script_pubkey().unwrap(), 40_000_000)],
        limits: Default::default(),
    })
    .await
    .unwrap();
    {
        let mut profile = engine::profile::Profile::open(Some(data.clone())).unwrap();
        profile.save_group(&group, &[]).unwrap();
        let path = profile.data_dir().settings_file();
        let mut settings = engine::settings::Settings::load_or_init(&path).unwrap();
        settings.chain = vec![devnet.chronik_spec()];
        settings.save(&path).unwrap();
    }

    let engine = Engine::start(EngineConfig {
        data_dir: Some(data),
        keychain: entry.0.config().clone(),
        ..EngineConfig::default()
    });
    let mut changes = engine.changes();
    let id = group.id().to_string();
    let funded = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let view = engine.group(&id).unwrap();
            if view.balance.confirmed_sats == 40_000_000 {
                return view;
            }
            // Any notice means "look again".
            changes.next().await.expect("the engine is running");
        }
    })
    .await
    .expect("the chain task stores the group's coins");
    assert_eq!(funded.members.iter().filter(|m| m.is_me).count(), 1);
    assert_eq!(engine.groups().unwrap(), vec![funded]);

    // A second group joins by invite while the engine runs: saved, accepted, watched.
    let third = lotus::PrivateKey::from_bytes(&[0x53; 32]).unwrap();
    let club = GroupDescriptor::new(
        "club",
        lotus::address::Network::Regtest,
        vec![third.public_key(), me.public_key()],
    )
    .unwrap();
    let joined = engine.accept_invite(&club.invite()).await.unwrap();
    assert_eq!(joined.name, "club");
    assert_eq!(joined.accepted, 1);
    assert!(joined.members[1].is_me && joined.members[1].accepted);
    assert_eq!(engine.groups().unwrap().len(), 2);
    let not_ours = GroupDescriptor::new(
        "elsewhere",
        lotus::address::Network::Regtest,
        vec![third.public_key(), other.public_key()],
    )
    .unwrap();
    let refused = engine.accept_invite(&not_ours.invite()).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::UnknownGroup, "{refused:?}");
    let garbage = engine.accept_invite("hello").await.unwrap_err();
    assert_eq!(garbage.kind, ErrorKind::InvalidFile, "{garbage:?}");

    let status = engine.chain_status().await.unwrap();
    assert_eq!(status.backends.len(), 1);
    assert_eq!(status.backends[0].height, Some(0));
    assert!(status.backends[0].label.starts_with("chronik+http://"));

    let shop = lotus::address::XAddress::for_script(
        &lotus::script::Script::p2pkh(&[0x5a; 20]),
        lotus::address::Network::Regtest,
    )
    .encode();
    let proposal = engine
        .propose(ProposeRequest {
            group: id[..10].to_owned(),
            pay: vec![(shop.clone(), wallet::Amount::Sats(10_000_000))],
            inputs: vec![],
            fee_rate_per_kb: 1_000,
            expires_minutes: 60,
            allow_unconfirmed: false,
        })
        .await
        .unwrap();
    let session = engine.session(&proposal.session_id).await.unwrap();
    assert_eq!(session.review_digest, proposal.review_digest);
    assert_eq!(session.group_name, "till");
    assert_eq!(session.proposer, 1);
    assert!(session
        .outputs
        .iter()
        .any(|o| o.address.as_deref() == Some(shop.as_str()) && o.amount_sats == 10_000_000));
    assert_eq!(session.outcome, None);
    // The proposer's own screen shows the code to read out; nobody asks it for one.
    assert!(session.confirmation_code.is_some() && !session.needs_confirmation_code);
    let waiting: Vec<_> = session
        .members
        .iter()
        .filter(|m| !m.waiting_for.is_empty())
        .map(|m| m.number)
        .collect();
    // The proposer reviews and approves like everyone else.
    assert_eq!(waiting, [1, 2], "{session:?}");
    assert_eq!(session.members[0].waiting_for, ["approval"]);
    assert_eq!(
        engine.sessions().await.unwrap(),
        vec![session.clone()],
        "the list shows the same view"
    );

    // Approving something else than what was reviewed is refused, with what to do.
    let wrong = engine
        .approve(&proposal.session_id, &"00".repeat(32), None)
        .await
        .unwrap_err();
    assert_eq!(wrong.kind, ErrorKind::ProposalRefused, "{wrong:?}");
    let approved = engine
        .approve(&proposal.session_id, &session.review_digest, None)
        .await
        .unwrap();
    assert!(approved.approved_by_me && approved.members[0].approved);
    assert!(approved.members[0].waiting_for.is_empty(), "{approved:?}");
    assert_eq!(approved.members[1].waiting_for, ["commitment", "approval"]);
    let unknown = engine.session(&"ab".repeat(32)).await.unwrap_err();
    assert_eq!(unknown.kind, ErrorKind::UnknownSession);
    // A second engine on the same profile (another window) may show the identity, but not
    // run a second session core on the same database.
    let second = Engine::start(EngineConfig {
        data_dir: engine.config().data_dir.clone(),
        keychain: entry.0.config().clone(),
        ..EngineConfig::default()
    });
    assert!(second.identity().is_ok());
    let busy = second.groups().unwrap_err();
    assert_eq!(busy.kind, ErrorKind::DataFolder, "{busy:?}");
    assert!(busy.message.contains("already open"), "{busy:?}");
    // The audit log holds the proposal and the approval, intact; the co-signers have records.
    let audit = engine.audit().await.unwrap();
    assert!(audit.intact && audit.entries >= 2, "{audit:?}");
    assert!(audit.problem.is_none());
    let reputation = engine.reputation().await.unwrap();
    assert!(reputation
        .iter()
        .all(|r| r.blame_count == 0 && r.blacklisted.is_none()));
    // Nothing secret reaches the UI.
    let json = serde_json::to_string(&session).unwrap();
    assert!(!json.contains(&hex::encode(*me.to_bytes())));
}

/// A broken chain backend in the settings is an explanation in the window, asked from inside
/// an async command, never a panic (the engine's runtime must not be dropped there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_chain_setting_is_an_error_view_not_a_panic() {
    let entry = TestEntry::new("badchain");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    {
        let profile = engine::profile::Profile::open(Some(data.clone())).unwrap();
        let path = profile.data_dir().settings_file();
        let mut settings = engine::settings::Settings::load_or_init(&path).unwrap();
        settings.chain = vec!["ftp://nowhere".into()];
        settings.save(&path).unwrap();
    }
    let engine = Engine::start(EngineConfig {
        data_dir: Some(data),
        keychain: entry.0.config().clone(),
        ..EngineConfig::default()
    });
    assert!(engine.identity().is_ok());
    for _ in 0..2 {
        let err = engine.groups().unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChainUnreachable, "{err:?}");
        assert!(err.action.contains("settings.json"), "{err:?}");
        let err = engine.sessions().await.unwrap_err();
        assert_eq!(err.kind, ErrorKind::ChainUnreachable, "{err:?}");
    }
}

/// The recovery phrase of the app's key, read back as the person wrote it down.
fn written_down(engine: &Engine) -> String {
    engine.recovery_phrase().expect("phrase").words.join(" ")
}

fn engine_at(entry: &TestEntry, data: &std::path::Path) -> Engine {
    Engine::start(EngineConfig {
        data_dir: Some(data.to_owned()),
        keychain: entry.0.config().clone(),
        ..EngineConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_counts_only_once_the_right_words_are_typed_back() {
    use engine::recovery::BackupAnswer;
    let entry = TestEntry::new("backup");
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine_at(&entry, tmp.path());
    assert_eq!(engine.identity().unwrap().backup_confirmed_at_ms, None);
    let shown = engine.recovery_phrase().unwrap();
    assert_eq!(shown.words.len(), 24);
    assert_eq!(shown.check_positions.len(), 3);
    // The phrase is the key: it decodes to the identity's public key.
    let key = engine::recovery::RecoveryPhrase::parse(&shown.words.join(" "))
        .unwrap()
        .key()
        .unwrap();
    assert_eq!(
        hex::encode(key.public_key().serialize()),
        engine.identity().unwrap().public_key_hex
    );
    let answers = |wrong: bool| -> Vec<BackupAnswer> {
        shown
            .check_positions
            .iter()
            .map(|&p| BackupAnswer {
                position: p,
                word: if wrong && p == shown.check_positions[0] {
                    let right = &shown.words[p as usize - 1];
                    ["abandon", "zoo"]
                        .into_iter()
                        .find(|w| w != right)
                        .unwrap()
                        .to_owned()
                } else {
                    shown.words[p as usize - 1].clone()
                },
            })
            .collect()
    };
    let refused = engine.confirm_backup(&answers(true)).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::RecoveryPhrase, "{refused:?}");
    assert!(
        !refused
            .message
            .contains(&shown.words[shown.check_positions[0] as usize - 1]),
        "the error names what was typed, not the right word: {refused:?}"
    );
    assert_eq!(engine.identity().unwrap().backup_confirmed_at_ms, None);
    let confirmed = engine.confirm_backup(&answers(false)).await.unwrap();
    assert!(confirmed.backup_confirmed_at_ms.is_some());
    // Kept across restarts, and in the audit log.
    drop(engine);
    let again = engine_at(&entry, tmp.path());
    assert_eq!(
        again.identity().unwrap().backup_confirmed_at_ms,
        confirmed.backup_confirmed_at_ms
    );
    let log = again.audit_export().await.unwrap();
    assert!(log.contains("backup_confirmed"), "{log}");
}

/// The laptop's keychain lost the key: the profile refuses to start with a new one, and the
/// recovery phrase brings back the very key its groups need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_keychain_entry_is_restored_from_the_phrase_with_the_groups_intact() {
    use protocol::group::GroupDescriptor;
    let entry = TestEntry::new("restore-lost");
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine_at(&entry, tmp.path());
    let before = engine.identity().unwrap();
    let phrase = written_down(&engine);
    let other = lotus::PrivateKey::from_bytes(&[0x52; 32]).unwrap();
    let me = lotus::secp256k1::PublicKey::from_slice(&hex::decode(&before.public_key_hex).unwrap())
        .unwrap();
    let group = GroupDescriptor::new(
        "till",
        lotus::address::Network::Regtest,
        vec![me, other.public_key()],
    )
    .unwrap();
    engine.accept_invite(&group.invite()).await.unwrap();
    drop(engine);

    entry.0.delete().unwrap();
    let broken = engine_at(&entry, tmp.path());
    assert_eq!(broken.identity().unwrap_err().kind, ErrorKind::KeyMissing);
    let restored = broken.restore_key(&phrase).await.unwrap();
    assert_eq!(restored.public_key_hex, before.public_key_hex);
    assert!(restored.backup_confirmed_at_ms.is_some());
    assert_eq!(
        broken.groups().unwrap().len(),
        1,
        "the group is still there"
    );
    assert!(broken.audit_export().await.unwrap().contains("imported"));
}

/// A new laptop: the app made a fresh key on first start; restoring the phrase of the old key
/// puts it in place (the profile is in no group yet).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_profile_takes_the_restored_key_in_place_of_its_fresh_one() {
    let old = TestEntry::new("restore-old");
    let new = TestEntry::new("restore-new");
    let tmp = tempfile::tempdir().unwrap();
    let old_engine = engine_at(&old, &tmp.path().join("old"));
    let old_key = old_engine.identity().unwrap().public_key_hex;
    let phrase = written_down(&old_engine);
    drop(old_engine);

    let laptop = engine_at(&new, &tmp.path().join("new"));
    let fresh = laptop.identity().unwrap().public_key_hex;
    assert_ne!(fresh, old_key);
    let restored = laptop.restore_key(&phrase).await.unwrap();
    assert_eq!(restored.public_key_hex, old_key);
    assert_eq!(
        new.0
            .stored_public_key()
            .unwrap()
            .map(|k| hex::encode(k.serialize())),
        Some(old_key.clone())
    );
    // It runs with the restored key, and keeps it across a restart.
    assert_eq!(laptop.groups().unwrap().len(), 0);
    drop(laptop);
    assert_eq!(
        engine_at(&new, &tmp.path().join("new"))
            .identity()
            .unwrap()
            .public_key_hex,
        old_key
    );
}

/// Restoring another key into a profile whose groups belong to its key is refused, and
/// nothing changes: neither the keychain nor the profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_a_key_that_is_in_groups_is_refused_and_changes_nothing() {
    use protocol::group::GroupDescriptor;
    let entry = TestEntry::new("restore-refused");
    let tmp = tempfile::tempdir().unwrap();
    let engine = engine_at(&entry, tmp.path());
    let mine = engine.identity().unwrap();
    let me = lotus::secp256k1::PublicKey::from_slice(&hex::decode(&mine.public_key_hex).unwrap())
        .unwrap();
    let other = lotus::PrivateKey::from_bytes(&[0x52; 32]).unwrap();
    let group = GroupDescriptor::new(
        "till",
        lotus::address::Network::Regtest,
        vec![me, other.public_key()],
    )
    .unwrap();
    engine.accept_invite(&group.invite()).await.unwrap();

    let stranger = lotus::PrivateKey::from_bytes(&[0x61; 32]).unwrap();
    let phrase = engine::recovery::RecoveryPhrase::of(&stranger)
        .words()
        .join(" ");
    let refused = engine.restore_key(&phrase).await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::RestoreRefused, "{refused:?}");
    assert_eq!(
        entry
            .0
            .stored_public_key()
            .unwrap()
            .map(|k| hex::encode(k.serialize())),
        Some(mine.public_key_hex.clone())
    );
    // Still running, as before.
    assert_eq!(engine.identity().unwrap(), mine);
    assert_eq!(engine.groups().unwrap().len(), 1);

    // A mistyped phrase says which word.
    let mut words: Vec<String> = written_down(&engine)
        .split(' ')
        .map(str::to_owned)
        .collect();
    words[6] = "lotusx".into();
    let typo = engine.restore_key(&words.join(" ")).await.unwrap_err();
    assert_eq!(typo.kind, ErrorKind::RecoveryPhrase);
    assert!(typo.message.contains("word 7"), "{typo:?}");
}

/// The app's forms end to end through the engine: create a group from pasted keys, save its
/// backup file, preview a payment and propose exactly that, export the audit log, and change
/// the settings (checked whole; the engine starts again with them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_forms_create_back_up_preview_propose_and_configure() {
    use engine::group_form::CreateGroupRequest;
    use engine::payment_form::{PaymentForm, RecipientForm};
    use engine::views::SettingsForm;

    let entry = TestEntry::new("forms");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let backups = tmp.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let config = EngineConfig {
        data_dir: Some(data.clone()),
        keychain: entry.0.config().clone(),
        backup_dir: Some(backups.clone()),
        ..EngineConfig::default()
    };
    let engine = Engine::start(config);
    let me = engine.identity().unwrap().public_key_hex;
    let other = lotus::PrivateKey::from_bytes(&[0x52; 32]).unwrap();
    let form = |members: Vec<String>| CreateGroupRequest {
        name: "shop".into(),
        members,
        output: "taproot".into(),
        election: "salted".into(),
        network: Some("regtest".into()),
        round_timeout_s: None,
        broadcast_slot_s: None,
        peers: vec![],
    };
    let bad = engine
        .create_group_from(&form(vec![me.clone(), "02zz".into()]))
        .await
        .unwrap_err();
    assert_eq!(bad.kind, ErrorKind::InvalidGroup, "{bad:?}");
    assert!(bad.message.contains("member 2"), "{bad:?}");
    let group = engine
        .create_group_from(&form(vec![
            me.clone(),
            hex::encode(other.public_key().serialize()),
        ]))
        .await
        .unwrap();
    assert_eq!(group.accepted, 1);
    assert_eq!(group.backup_saved_at_ms, None);

    // The backup file: saved, recorded, and it rebuilds the same group.
    let saved = engine.save_group_backup(&group.id).unwrap();
    assert!(saved.path.starts_with(&backups.display().to_string()));
    let text = std::fs::read_to_string(&saved.path).unwrap();
    assert!(text.contains(&group.fingerprint));
    assert_eq!(
        engine.group(&group.id).unwrap().backup_saved_at_ms,
        Some(saved.saved_at_ms)
    );
    assert_eq!(
        engine.accept_invite(&text).await.unwrap().id,
        group.id,
        "pasting the backup file joins the same group"
    );

    // Fund the group on a devnet named in the settings, saved through the form.
    let descriptor = protocol::group::GroupDescriptor::from_invite(&group.invite).unwrap();
    let devnet = chain::devnet::server::start(chain::devnet::server::DevnetConfig {
        data_dir: tmp.path().join("devnet"),
        listen: "127.0.0.1:0".parse().unwrap(),
        block_interval: None,
        fund: vec![(descriptor.script_pubkey().unwrap(), 40_000_000)],
        limits: Default::default(),
    })
    .await
    .unwrap();
    let settings = |chain: Vec<String>, fee: i64| SettingsForm {
        chain,
        seen_quorum: 1,
        fee_rate_per_kb: fee,
        bootstrap: vec![],
        confirm_above_xpi: String::new(),
        notifications: false,
    };
    let refused = engine
        .save_settings(&settings(vec!["ftp://nowhere".into()], 2_000))
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidSettings, "{refused:?}");
    assert!(
        engine.settings_view().unwrap().chain.is_empty(),
        "nothing changed"
    );
    let tested = engine
        .test_chain_backend(&devnet.chronik_spec())
        .await
        .unwrap();
    assert_eq!(tested.backend.height, Some(0), "{tested:?}");
    let view = engine
        .save_settings(&settings(vec![devnet.chronik_spec()], 2_000))
        .unwrap();
    assert_eq!(view.fee_rate_per_kb, 2_000);
    assert_eq!(view.chain, vec![devnet.chronik_spec()]);
    assert!(!view.notifications, "notifications turned off are kept off");
    let funded = engine.refresh_group(&group.id).await.unwrap();
    assert_eq!(funded.balance.confirmed_sats, 40_000_000);

    let shop = lotus::address::XAddress::for_script(
        &lotus::script::Script::p2pkh(&[0x5a; 20]),
        lotus::address::Network::Regtest,
    )
    .encode();
    let payment = PaymentForm {
        group: group.id.clone(),
        recipients: vec![RecipientForm {
            address: shop.clone(),
            amount: "12.5".into(),
        }],
        fee_rate_per_kb: None,
        expires_minutes: Some(60),
        allow_unconfirmed: false,
    };
    let preview = engine.preview_payment(&payment).unwrap();
    assert_eq!(preview.fee_rate_per_kb, 2_000, "the settings' fee rate");
    assert!(preview
        .outputs
        .iter()
        .any(|o| o.address == shop && o.amount_sats == 12_500_000 && !o.is_change));
    assert!(preview.outputs.iter().any(|o| o.is_change));
    let proposal = engine.propose_payment(&payment).await.unwrap();
    assert_eq!(
        proposal.payment, preview,
        "co-signers review exactly the preview"
    );
    // Saving settings restarts the engine; the open session is restored, and its proposal is
    // in the audit log once, not once per start.
    engine
        .save_settings(&settings(vec![devnet.chronik_spec()], 2_000))
        .unwrap();
    engine.session(&proposal.session_id).await.unwrap();
    let created = engine
        .audit_entries(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.kind == "proposal_created" && e.session_id.as_deref() == Some(&proposal.session_id)
        })
        .count();
    assert_eq!(created, 1, "the proposal is audited once across a restart");

    let mut too_much = payment.clone();
    too_much.recipients[0].amount = "41".into();
    assert_eq!(
        engine.preview_payment(&too_much).unwrap_err().kind,
        ErrorKind::NotEnoughFunds
    );

    let log = engine.save_audit_export().await.unwrap();
    let lines = std::fs::read_to_string(&log.path).unwrap();
    assert!(lines.lines().count() >= 2, "{lines}");
    assert!(lines.contains("proposal_created"), "{lines}");

    // Offline engine: the Network screen says so rather than failing.
    let network = engine.network_view().await.unwrap();
    assert!(network.status.is_none());
    assert!(network.peers.is_empty());
}

/// A crash in a restore after the keychain took the new key but before the profile recorded
/// it: the next start finds the keychain and the profile disagreeing, refuses to run on either,
/// and restoring the same phrase again mends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_cut_between_the_keychain_and_the_profile_is_mended_by_restoring_again() {
    let entry = TestEntry::new("restore-crash");
    let tmp = tempfile::tempdir().unwrap();
    let first = engine_at(&entry, tmp.path()).identity().unwrap();
    // The crash state: the keychain already holds the restored key, the profile the old one.
    let restored = lotus::PrivateKey::from_bytes(&[0x71; 32]).unwrap();
    entry.0.store(&restored).unwrap();
    let broken = engine_at(&entry, tmp.path());
    assert_eq!(broken.identity().unwrap_err().kind, ErrorKind::KeyMismatch);
    let phrase = engine::recovery::RecoveryPhrase::of(&restored)
        .words()
        .join(" ");
    let mended = broken.restore_key(&phrase).await.unwrap();
    assert_eq!(
        mended.public_key_hex,
        hex::encode(restored.public_key().serialize())
    );
    assert_ne!(mended.public_key_hex, first.public_key_hex);
    assert!(mended.backup_confirmed_at_ms.is_some());
}
