//! End-to-end: the real app binary in a real WebKitGTK window, driven over WebDriver.
//!
//! WebKitWebDriver (package webkit2gtk-driver) launches the app itself when it is given the
//! app as the browser binary and `TAURI_WEBVIEW_AUTOMATION=true`; no tauri-driver needed.
//! Needs an X display and an unlocked Secret Service: `./scripts/test` provides both
//! (xvfb-run inside dbus-run-session with gnome-keyring). Outside it these tests fail with a
//! hint rather than pass without testing anything. Linux only: WebKitGTK is the only webview
//! with a WebDriver server here (macOS has none; Windows would need msedgedriver).
#![cfg(target_os = "linux")]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine::{Engine, EngineConfig, KeyStore, KeychainConfig};
use fantoccini::{Client, ClientBuilder, Locator};

const APP: &str = env!("CARGO_BIN_EXE_lotus-cosigner-app");
const PATIENCE: Duration = Duration::from_secs(60);

/// A WebKitWebDriver process, stopped with SIGTERM on drop: SIGKILL would orphan the app it
/// started, which then holds the test's output pipe open.
struct WebDriver {
    child: Child,
    url: String,
}

impl WebDriver {
    fn start(env: &[(&str, &str)], log: &Path) -> Self {
        require_environment();
        let port = free_port();
        let log = std::fs::File::create(log).unwrap();
        let mut command = Command::new("WebKitWebDriver");
        command
            .arg(format!("--port={port}"))
            .arg("--host=127.0.0.1")
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .env("NO_AT_BRIDGE", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("cannot start WebKitWebDriver ({e}); install webkit2gtk-driver (./scripts/test does)")
        });
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "WebKitWebDriver did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    /// Opens a session: WebKitWebDriver launches the app and attaches to its webview.
    async fn open_app(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "webkitgtk:browserOptions".to_owned(),
            serde_json::json!({ "binary": APP, "args": [] }),
        );
        ClientBuilder::native()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("WebDriver session with the app window")
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

/// A keychain service name and data folder of this test's own, removed afterwards.
struct Profile {
    dir: tempfile::TempDir,
    keychain: KeychainConfig,
}

impl Profile {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self {
            dir: tempfile::tempdir().unwrap(),
            keychain: KeychainConfig {
                service: format!("lotus-cosigner-e2e-{name}-{}-{nanos}", std::process::id()),
                user: KeychainConfig::DEFAULT_USER.to_owned(),
            },
        }
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn app_env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                EngineConfig::DATA_DIR_ENV,
                self.data_dir().display().to_string(),
            ),
            (
                EngineConfig::KEYCHAIN_SERVICE_ENV,
                self.keychain.service.clone(),
            ),
        ]
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = KeyStore::new(self.keychain.clone()).delete();
    }
}

fn require_environment() {
    let hint = "run the tests through ./scripts/test, which provides Xvfb, a D-Bus session and \
                an unlocked gnome-keyring";
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "no X display (DISPLAY is unset): {hint}"
    );
    assert!(
        std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some(),
        "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset): {hint}"
    );
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
        .text()
        .await
        .unwrap()
}

/// Polls until the element's text contains `needle` (the UI updates asynchronously).
async fn wait_for_text(client: &Client, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = text_of(client, css).await;
        if text.contains(needle) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{css} never showed {needle:?}; last text: {text:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

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
        .find(Locator::Css("[data-testid=taproot-qr] path"))
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

async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

async fn type_into(client: &Client, css: &str, text: &str) {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} did not appear: {e}"))
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("cannot type into {css}: {e}"));
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
    let mut words = Vec::new();
    for word in client
        .find_all(Locator::Css("[data-testid=phrase-word]"))
        .await
        .unwrap()
    {
        words.push(word.text().await.unwrap());
    }
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
