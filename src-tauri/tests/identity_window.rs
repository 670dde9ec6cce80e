//! End-to-end: the real app binary in a real WebKitGTK window, driven over WebDriver.
//!
//! WebKitWebDriver (package webkit2gtk-driver) launches the app itself when it is given the
//! app as the browser binary and `TAURI_WEBVIEW_AUTOMATION=true`; no tauri-driver needed.
//! Needs an X display and an unlocked Secret Service: `./scripts/test` provides both
//! (xvfb-run inside dbus-run-session with gnome-keyring). Outside it these tests fail with a
//! hint rather than pass without testing anything. Linux only: WebKitGTK is the only webview
//! with a WebDriver server here (macOS has none; Windows would need msedgedriver).
#![cfg(target_os = "linux")]

mod common;

use common::*;
use engine::{Engine, EngineConfig, KeyStore};
use fantoccini::Locator;

#[tokio::test(flavor = "multi_thread")]
async fn identity_screen_shows_the_key_held_in_the_keychain() {
    let profile = Profile::new("identity");
    let env = profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver = WebDriver::start(&env, &profile.dir.path().join("webdriver.log"));
    let client = driver.open_app().await;

    let shown_key: String = text_of(&client, "[data-testid=public-key]")
        .await
        .split_whitespace()
        .collect();

    // The key in the keychain, read the way the app reads it (same service, same user).
    let stored = KeyStore::new(profile.keychain.clone())
        .stored_public_key()
        .expect("keychain readable")
        .expect("the app stored a key on its first run");
    assert_eq!(shown_key, hex(&stored.serialize()));

    // Addresses are the engine's, for this key.
    let view = Engine::start(EngineConfig {
        data_dir: Some(profile.data_dir()),
        keychain: profile.keychain.clone(),
        ..EngineConfig::default()
    })
    .identity()
    .expect("identity");
    assert_eq!(view.public_key_hex, shown_key);
    assert_eq!(
        text_of(&client, "[data-testid=taproot-address]").await,
        view.taproot_address
    );
    assert_eq!(
        text_of(&client, "[data-testid=p2pkh-address]").await,
        view.p2pkh_address
    );
    let qr_path = client
        .find(Locator::Css("[data-testid=qr-code] path"))
        .await
        .expect("QR code")
        .attr("d")
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(qr_path.len() > 100, "QR path looks empty: {qr_path:?}");
    assert!(text_of(&client, "[data-testid=backup-status]")
        .await
        .contains("Not backed up"));

    client
        .find(Locator::Css("[data-testid=copy-public-key]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_text(&client, "[data-testid=copy-public-key]", "Copied").await;

    // The capability grants the window exactly the app's commands: a core plugin command is
    // refused by the ACL, while the app's own command answers.
    let answer = |command: &str| {
        format!(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke({command:?}).then(
               () => done('allowed'), (e) => done('denied: ' + String(e)));"
        )
    };
    let core = client
        .execute_async(&answer("plugin:app|version"), vec![])
        .await
        .unwrap();
    let core = core.as_str().unwrap_or_default();
    assert!(
        core.starts_with("denied") && core.contains("not allowed"),
        "{core}"
    );
    let own = client
        .execute_async(&answer("get_identity"), vec![])
        .await
        .unwrap();
    assert_eq!(own.as_str(), Some("allowed"));
    // The engine's other commands answer too (an empty profile: no groups, no sessions).
    let listed = |command: &str| {
        format!(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke({command:?}).then(
               (v) => done(JSON.stringify(v)), (e) => done('failed: ' + JSON.stringify(e)));"
        )
    };
    for command in ["list_groups", "list_sessions"] {
        let answer = client
            .execute_async(&listed(command), vec![])
            .await
            .unwrap();
        assert_eq!(answer.as_str(), Some("[]"), "{command}");
    }

    // Every screen the sidebar offers opens and shows the engine's answer for an empty profile.
    for (nav, screen, shown) in [
        ("groups", "groups", "You are not in a group yet"),
        ("inbox", "inbox", "Nothing needs your review"),
        ("audit", "audit-status", "Verified"),
        ("co-signers", "cosigners", "No co-signer has a record yet"),
    ] {
        client
            .find(Locator::Css(&format!("[data-testid=nav-{nav}]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for_text(&client, &format!("[data-testid={screen}]"), shown).await;
    }

    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_keychain_shows_what_to_do() {
    let profile = Profile::new("nokeychain");
    let mut env = profile.app_env();
    // A session bus address that leads nowhere: the app cannot reach any Secret Service.
    env.push((
        "DBUS_SESSION_BUS_ADDRESS",
        "unix:path=/nonexistent/bus".to_owned(),
    ));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver = WebDriver::start(&env, &profile.dir.path().join("webdriver.log"));
    let client = driver.open_app().await;

    let card = text_of(&client, "[data-testid=error-card]").await;
    assert!(card.contains("The OS keychain is not available"), "{card}");
    assert!(card.contains("Try again"), "{card}");
    let kind = client
        .find(Locator::Css("[data-testid=error-card]"))
        .await
        .unwrap()
        .attr("data-kind")
        .await
        .unwrap();
    assert_eq!(kind.as_deref(), Some("keychain_unavailable"));
    // Nothing was stored anywhere for this profile.
    assert!(KeyStore::new(profile.keychain.clone())
        .stored_public_key()
        .unwrap()
        .is_none());

    client.close().await.unwrap();
}

/// The person backs up the key (reads the 24 words, types three back); later the keychain
/// loses the key, the app says so, and restoring the written-down phrase brings back the same
/// key: same public key on screen and in the keychain.
#[tokio::test(flavor = "multi_thread")]
async fn backup_then_restore_from_the_recovery_phrase_gives_the_same_key() {
    let profile = Profile::new("backup");
    let env = profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let log = profile.dir.path().join("webdriver.log");
    let driver = WebDriver::start(&env, &log);
    let client = driver.open_app().await;
    let key: String = text_of(&client, "[data-testid=public-key]")
        .await
        .split_whitespace()
        .collect();

    click(&client, "[data-testid=backup-now]").await;
    click(&client, "[data-testid=reveal-phrase]").await;
    text_of(&client, "[data-testid=recovery-phrase]").await;
    let words = texts_of(&client, "[data-testid=phrase-word]").await;
    assert_eq!(words.len(), 24, "{words:?}");
    click(&client, "[data-testid=phrase-written]").await;
    let checks = client
        .find_all(Locator::Css("[data-testid=check-word]"))
        .await
        .unwrap();
    assert_eq!(checks.len(), 3);
    // First a wrong word: refused, and the backup is not recorded.
    let first: usize = checks[0]
        .attr("data-position")
        .await
        .unwrap()
        .unwrap()
        .parse()
        .unwrap();
    let wrong = ["abandon", "zoo"]
        .into_iter()
        .find(|w| *w != words[first - 1])
        .unwrap();
    checks[0].send_keys(wrong).await.unwrap();
    click(&client, "[data-testid=confirm-backup]").await;
    wait_for_text(&client, "[data-testid=backup-problem]", "do not match").await;
    checks[0].clear().await.unwrap();
    for check in &checks {
        let position: usize = check
            .attr("data-position")
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        // Four letters are enough, as the dialog says.
        let word = &words[position - 1];
        check.send_keys(&word[..word.len().min(4)]).await.unwrap();
    }
    // Enter submits the focused form.
    checks[2].send_keys("\u{E007}").await.unwrap();
    wait_for_text(&client, "[data-testid=backup-confirmed]", "confirmed on").await;
    client.close().await.unwrap();
    drop(driver);
    wait_until_profile_is_free(&profile.data_dir()).await;

    // The keychain loses the key; the profile refuses to make a new one.
    KeyStore::new(profile.keychain.clone()).delete().unwrap();
    let driver = WebDriver::start(&env, &log);
    let client = driver.open_app().await;
    let card = text_of(&client, "[data-testid=error-card]").await;
    assert!(card.contains("missing from the keychain"), "{card}");
    click(&client, "[data-testid=restore-key]").await;
    type_into(&client, "[data-testid=restore-phrase]", &words.join(" ")).await;
    click(&client, "[data-testid=restore-submit]").await;
    let shown: String = text_of(&client, "[data-testid=public-key]")
        .await
        .split_whitespace()
        .collect();
    assert_eq!(shown, key);
    let stored = KeyStore::new(profile.keychain.clone())
        .stored_public_key()
        .unwrap()
        .expect("the restore stored the key");
    assert_eq!(hex(&stored.serialize()), key);
    wait_for_text(&client, "[data-testid=backup-confirmed]", "confirmed on").await;
    client.close().await.unwrap();
}

/// Opened from a `lotus-cosigner://invite/…` link (the desktop entry passes it), the app shows
/// the join form filled in; joining is still the person's click.
#[tokio::test(flavor = "multi_thread")]
async fn an_invite_link_opens_the_join_form_filled_in_even_while_the_app_runs() {
    let profile = Profile::new("deeplink");
    let me = lotus::PrivateKey::from_bytes(&[0x61; 32]).unwrap();
    let other = lotus::PrivateKey::from_bytes(&[0x62; 32]).unwrap();
    KeyStore::new(profile.keychain.clone()).store(&me).unwrap();
    let group = protocol::group::GroupDescriptor::new(
        "Linked",
        lotus::address::Network::Mainnet,
        vec![other.public_key(), me.public_key()],
    )
    .unwrap();
    let invite = group.invite();
    assert!(invite.starts_with(engine::INVITE_LINK_PREFIX));
    let env = profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver = WebDriver::start(&env, &profile.dir.path().join("webdriver.log"));
    let client = driver.open_app_with(&[&invite]).await;

    text_of(&client, "[data-testid=invite-from-link]").await;
    let field = client
        .find(Locator::Css("[data-testid=invite-input]"))
        .await
        .unwrap();
    assert_eq!(
        field.prop("value").await.unwrap().as_deref(),
        Some(invite.as_str())
    );
    click(&client, "[data-testid=join-group]").await;
    wait_for_text(&client, "[data-testid=group-name]", "Linked").await;

    // A link opened while the app runs: the second start hands it to this window (one window
    // per profile) and exits; the window shows the join form with the new invite.
    let second = protocol::group::GroupDescriptor::new(
        "Second",
        lotus::address::Network::Mainnet,
        vec![me.public_key(), other.public_key()],
    )
    .unwrap()
    .invite();
    let started = std::process::Command::new(app_binary())
        .arg(&second)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&started.stdout);
    assert!(
        started.status.success() && said.contains("already open"),
        "{:?} {said} {}",
        started.status,
        String::from_utf8_lossy(&started.stderr)
    );
    text_of(&client, "[data-testid=invite-from-link]").await;
    wait_for_value(&client, "[data-testid=invite-input]", &second).await;
    client.close().await.unwrap();
}

/// On a desktop with a window manager (openbox, on an X display of this test's own) and a panel
/// (the test's own tray host on its D-Bus session): closing the window hides it and the app
/// keeps running in the tray; starting the app again, or "Show" in the tray menu, brings it
/// back; "Quit" in the tray menu ends the app.
#[test]
fn closing_the_window_keeps_the_app_in_the_tray_until_quit_there() {
    let profile = Profile::new("tray");
    let me = lotus::PrivateKey::from_bytes(&[0x63; 32]).unwrap();
    KeyStore::new(profile.keychain.clone()).store(&me).unwrap();
    let desktop = Desktop::start(profile.dir.path());
    let panel = TrayHost::start();
    let env = profile.app_env();
    let log = profile.dir.path().join("app.log");
    let mut app = std::process::Command::new(app_binary())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DISPLAY", desktop.display())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let app_log = || std::fs::read_to_string(&log).unwrap_or_default();
    let window = desktop.wait_for_window_of(app.id());
    let tray = panel.wait_for_item_of(app.id());
    assert_eq!(
        tray.menu_labels(),
        ["Show Lotus Cosigner", "Quit Lotus Cosigner"]
    );
    assert_eq!(tray.label(), "", "nothing waits for this person");

    desktop.close(&window);
    desktop.wait_until_no_window_of(app.id());
    assert!(
        app.try_wait().unwrap().is_none(),
        "closing the window ended the app; log: {}",
        app_log()
    );

    let again = std::process::Command::new(app_binary())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("DISPLAY", desktop.display())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already open"),
        "{again:?}"
    );
    let window = desktop.wait_for_window_of(app.id());

    desktop.close(&window);
    desktop.wait_until_no_window_of(app.id());
    tray.click("Show Lotus Cosigner");
    desktop.wait_for_window_of(app.id());

    tray.click("Quit Lotus Cosigner");
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = app.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            stop_process(app.id());
            panic!("Quit in the tray did not end the app; log: {}", app_log());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}; log: {}", app_log());
    assert!(app_log().contains("quit from the tray"), "{}", app_log());
}
