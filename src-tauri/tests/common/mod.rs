//! Helpers for the WebDriver tests of the real app window (see identity_window.rs).
#![allow(dead_code)]

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use engine::{EngineConfig, KeyStore, KeychainConfig};
use fantoccini::{Client, ClientBuilder, Locator};

mod tray_host;
#[allow(unused_imports)] // Not every test binary has a tray.
pub use tray_host::TrayHost;

pub const APP: &str = env!("CARGO_BIN_EXE_lotus-cosigner-app");

/// The app binary under test: this build's, or an installed one (`scripts/check-deb` points
/// `LOTUS_COSIGNER_APP_BINARY` at /usr/bin/lotus-cosigner-app).
pub fn app_binary() -> String {
    std::env::var("LOTUS_COSIGNER_APP_BINARY").unwrap_or_else(|_| APP.to_owned())
}
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A WebKitWebDriver process, stopped with SIGTERM on drop: SIGKILL would orphan the app it
/// started, which then holds the test's output pipe open.
pub struct WebDriver {
    child: Child,
    url: String,
}

impl WebDriver {
    pub fn start(env: &[(&str, &str)], log: &Path) -> Self {
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

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens a session: WebKitWebDriver launches the app and attaches to its webview.
    pub async fn open_app(&self) -> Client {
        self.open_app_with(&[]).await
    }

    /// Opens a session with the app started with these arguments (an invite link, say).
    pub async fn open_app_with(&self, args: &[&str]) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "webkitgtk:browserOptions".to_owned(),
            serde_json::json!({ "binary": app_binary(), "args": args }),
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
        // The app windows this driver launched: WebKitWebDriver leaves them running when it
        // stops (they would hold their profiles, and memory, until the machine is idle).
        let apps = children_of(self.child.id());
        // SAFETY: kill(2) on the pid of a child we own and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        for pid in apps {
            stop_process(pid);
        }
    }
}

/// The processes whose parent is `parent` (from /proc).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces, so split after ')'.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    let after = stat.rsplit_once(')')?.1;
                    after.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

/// A process's command line as one string (arguments joined by NUL); empty once it is gone.
pub fn cmdline_of(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .unwrap_or_default()
}

/// Every process whose command line contains `needle`.
pub fn processes_with_argument(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| cmdline_of(*pid).contains(needle))
        .collect()
}

/// Reads the window's IPC log (`window.__lotusIpcLog`, started by the test) and checks that
/// every `expected` command was answered and that no answer or event but the recovery
/// phrase's one deliberate display holds the secret key (hex) or its recovery phrase.
pub async fn assert_no_secret_in_ipc(
    client: &Client,
    expected: &[&str],
    key: &lotus::PrivateKey,
    phrase_words: &[String],
) {
    let log = client
        .execute("return window.__lotusIpcLog;", vec![])
        .await
        .unwrap();
    let log = log.as_array().expect("the IPC log");
    let commands: std::collections::BTreeSet<&str> =
        log.iter().filter_map(|e| e[0].as_str()).collect();
    for command in expected {
        assert!(
            commands.contains(command),
            "{command} not seen: {commands:?}"
        );
    }
    let secret_hex = hex(&key.to_bytes()[..]);
    let phrase = phrase_words.join(" ");
    let phrase_start = phrase_words[..6].join(" ");
    let mut scanned = 0;
    for entry in log {
        let (command, answer) = (entry[0].as_str().unwrap(), entry[1].as_str().unwrap());
        if command == "reveal_recovery_phrase" {
            continue;
        }
        scanned += answer.len();
        assert!(
            !answer.to_lowercase().contains(&secret_hex),
            "{command} answered the secret key"
        );
        // The words in any spacing or punctuation.
        let flat: String = answer
            .chars()
            .map(|c| if c.is_ascii_alphabetic() { c } else { ' ' })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            !flat.contains(&phrase) && !flat.contains(&phrase_start),
            "{command} answered the recovery phrase"
        );
    }
    eprintln!(
        "IPC secret scan: {} answers from {} commands, {scanned} bytes, no secret",
        log.len(),
        commands.len()
    );
}

/// SIGTERM, then wait until the process is gone (SIGKILL if it lingers).
pub fn stop_process(pid: u32) {
    // SAFETY: kill(2) with a pid read from /proc a moment ago; at worst it is already gone.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            // SAFETY: as above.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A keychain service name and data folder of this test's own, removed afterwards.
pub struct Profile {
    pub dir: tempfile::TempDir,
    pub keychain: KeychainConfig,
}

impl Profile {
    pub fn new(name: &str) -> Self {
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

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn app_env(&self) -> Vec<(&'static str, String)> {
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

pub fn require_environment() {
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

pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub async fn text_of(client: &Client, css: &str) -> String {
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
pub async fn wait_for_text(client: &Client, css: &str, needle: &str) -> String {
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

/// Saves what the window shows of the element `css` as a PNG at `path` (scrolled into view,
/// cut out of a screenshot of the window; WebKitWebDriver's own element screenshots come out
/// black under Xvfb).
pub async fn picture_of(client: &Client, css: &str, path: &Path) {
    let element = serde_json::to_value(client.find(Locator::Css(css)).await.unwrap()).unwrap();
    // Scrolled, then two frames later (painted) measured and shot.
    client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             arguments[0].scrollIntoView({block: 'center'}); \
             requestAnimationFrame(() => requestAnimationFrame(() => done(null)));",
            vec![element.clone()],
        )
        .await
        .unwrap();
    let rect = client
        .execute(
            "const r = arguments[0].getBoundingClientRect(); \
             return [r.left, r.top, r.width, r.height].map(Math.round);",
            vec![element],
        )
        .await
        .unwrap();
    let [x, y, width, height]: [u32; 4] = serde_json::from_value(rect).unwrap();
    let shot = client.screenshot().await.unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(shot))
        .read_info()
        .unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.color_type.samples();
    assert_eq!(frame.bit_depth, png::BitDepth::Eight);
    let row = frame.line_size;
    let mut cut = Vec::new();
    for line in y..(y + height).min(frame.height) {
        let start = line as usize * row + x as usize * channels;
        let end = start + (width.min(frame.width - x) as usize) * channels;
        cut.extend_from_slice(&pixels[start..end]);
    }
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut encoder = png::Encoder::new(
        file,
        width.min(frame.width - x),
        (y + height).min(frame.height) - y,
    );
    encoder.set_color(frame.color_type);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&cut).unwrap();
    writer.finish().unwrap();
}

/// Waits until the form field `css` holds `expected`.
pub async fn wait_for_value(client: &Client, css: &str, expected: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let value = match client.find(Locator::Css(css)).await {
            Ok(field) => field.prop("value").await.ok().flatten(),
            Err(_) => None,
        };
        if value.as_deref() == Some(expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{css} holds {value:?}, not {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn click(client: &Client, css: &str) {
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

pub async fn type_into(client: &Client, css: &str, text: &str) {
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

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until no app holds the profile (its engine lock is free): a closed window's process
/// may take a moment to exit after its WebDriver session ends.
pub async fn wait_until_profile_is_free(data_dir: &Path) {
    let dir = engine::data_dir::DataDir::open(Some(data_dir.to_owned())).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while dir.lock_engine().is_err() {
        assert!(
            Instant::now() < deadline,
            "the app never let go of {}",
            data_dir.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A profile whose key (in its own keychain entry) is member 1 of "Shop till", a two-member
/// group both members accepted, funded with 40 XPI on a local devnet the settings name.
pub struct FundedProfile {
    pub profile: Profile,
    pub group: protocol::group::GroupDescriptor,
    pub me: lotus::PrivateKey,
    /// Member 2's key (its app is [`FundedProfile::co_signer`]).
    pub other: lotus::PrivateKey,
    pub devnet: chain::devnet::server::RunningDevnet,
}

impl FundedProfile {
    pub async fn new(name: &str) -> Self {
        use protocol::group::{Acceptance, GroupDescriptor};
        let profile = Profile::new(name);
        let me = lotus::PrivateKey::from_bytes(&[0x51; 32]).unwrap();
        let other = lotus::PrivateKey::from_bytes(&[0x52; 32]).unwrap();
        KeyStore::new(profile.keychain.clone()).store(&me).unwrap();
        let mut group = GroupDescriptor::new(
            "Shop till",
            lotus::address::Network::Regtest,
            vec![me.public_key(), other.public_key()],
        )
        .unwrap();
        group.election = protocol::election::ElectionMethod::ALL[4];
        let devnet = chain::devnet::server::start(chain::devnet::server::DevnetConfig {
            data_dir: profile.dir.path().join("devnet"),
            listen: "127.0.0.1:0".parse().unwrap(),
            block_interval: None,
            fund: vec![(group.script_pubkey().unwrap(), 40_000_000)],
            limits: Default::default(),
        })
        .await
        .unwrap();
        let mut saved = engine::profile::Profile::open(Some(profile.data_dir())).unwrap();
        let acceptances = [
            Acceptance::sign(&group, &me).unwrap(),
            Acceptance::sign(&group, &other).unwrap(),
        ];
        saved.save_group(&group, &acceptances).unwrap();
        let path = saved.data_dir().settings_file();
        let mut settings = engine::settings::Settings::load_or_init(&path).unwrap();
        settings.network = engine::Network::Regtest;
        settings.chain = vec![devnet.chronik_spec()];
        settings.save(&path).unwrap();
        Self {
            profile,
            group,
            me,
            other,
            devnet,
        }
    }

    /// Member 2's app, headless, on its own data folder and key file beside the profile.
    pub fn co_signer(&self) -> engine::Engine {
        let dir = self.profile.dir.path().join("member-2");
        let mut saved = engine::profile::Profile::open(Some(dir.join("data"))).unwrap();
        saved.save_group(&self.group, &[]).unwrap();
        drop(saved);
        let key_file = dir.join("key");
        let passphrase = "a long enough passphrase";
        engine::key_file::write(&key_file, &self.other, passphrase, Default::default()).unwrap();
        engine::Engine::start(EngineConfig {
            data_dir: Some(dir.join("data")),
            key: Some(std::sync::Arc::new(
                engine::custody::Custody::open_file(&key_file, passphrase).unwrap(),
            )),
            chain: vec![self.devnet.chronik_spec()],
            backup_dir: Some(dir.clone()),
            ..EngineConfig::default()
        })
    }
}

/// A real notification service (dunst) on the test's D-Bus session, keeping every
/// notification on screen until it is acted on, and printing each to a file. Stopped on drop.
pub struct NotificationDaemon {
    child: Child,
    printed: PathBuf,
}

impl NotificationDaemon {
    pub fn start(dir: &Path) -> Self {
        require_environment();
        let config = dir.join("dunstrc");
        std::fs::write(
            &config,
            "[global]\n    follow = none\n[urgency_low]\n    timeout = 0\n\
             [urgency_normal]\n    timeout = 0\n[urgency_critical]\n    timeout = 0\n",
        )
        .unwrap();
        let printed = dir.join("notifications.txt");
        let child = Command::new("dunst")
            .arg("-config")
            .arg(&config)
            .arg("-print")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&printed).unwrap())
            .stderr(std::fs::File::create(dir.join("dunst.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start dunst ({e}); install it (./scripts/test does)")
            });
        let mut daemon = Self { child, printed };
        daemon.wait_until(
            || dunstctl(&["is-paused"]).is_some(),
            "dunst to answer on D-Bus",
        );
        // dunstctl would also answer for another notification service already on this bus.
        assert!(
            daemon.child.try_wait().unwrap().is_none(),
            "dunst exited: is another notification service running on this D-Bus session?"
        );
        daemon
    }

    /// What dunst printed of the notifications it received.
    pub fn printed(&self) -> String {
        std::fs::read_to_string(&self.printed).unwrap_or_default()
    }

    /// Waits until a notification whose printout contains `needle` was received.
    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_until(|| self.printed().contains(needle), needle);
        self.printed()
    }

    /// Clicks the notification on top (dunst's default action).
    pub fn click_top(&self) {
        dunstctl(&["action", "0"]).expect("dunstctl action");
    }

    fn wait_until(&self, done: impl Fn() -> bool, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(
                Instant::now() < deadline,
                "waited too long for {what}; dunst printed: {}",
                self.printed()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NotificationDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dunstctl(args: &[&str]) -> Option<String> {
    let out = Command::new("dunstctl").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The texts of every element matching `css`, in document order.
pub async fn texts_of(client: &Client, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    for element in client.find_all(Locator::Css(css)).await.unwrap() {
        texts.push(element.text().await.unwrap());
    }
    texts
}

/// The regtest address payments in the window tests go to (a shop's P2PKH).
pub fn shop_address() -> String {
    lotus::address::XAddress::for_script(
        &lotus::script::Script::p2pkh(&[0x5a; 20]),
        lotus::address::Network::Regtest,
    )
    .encode()
}

/// On the New payment screen: pays 12.5 XPI to `to` and asks for the preview.
pub async fn fill_payment(client: &Client, to: &str) {
    type_into(client, "[data-testid=recipient-address]", to).await;
    type_into(client, "[data-testid=recipient-amount]", "12.5").await;
    click(client, "[data-testid=preview-payment]").await;
}

/// With `LOTUS_COSIGNER_SCREENSHOTS=DIR`, saves the window as DIR/NAME.png (how
/// docs/screenshots/ is made); otherwise nothing.
pub async fn shoot(client: &Client, name: &str) {
    let Some(dir) = std::env::var_os("LOTUS_COSIGNER_SCREENSHOTS") else {
        return;
    };
    // Let fonts and the last reload settle before the picture (screenshots only, not asserts).
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let png = client.screenshot().await.expect("screenshot");
    let path = PathBuf::from(dir).join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
}

/// An X display of a test's own (Xvfb) with a window manager (openbox), for what needs one:
/// a close request goes through the window manager. Stopped on drop.
pub struct Desktop {
    display: String,
    x: Child,
    wm: Child,
}

impl Desktop {
    pub fn start(dir: &Path) -> Self {
        use std::io::{BufRead, BufReader};
        use std::os::fd::FromRawFd;
        use std::os::unix::process::CommandExt;
        require_environment();
        // Xvfb picks a free display and writes its number once it accepts clients
        // (-displayfd) to the write end of this pipe. Both ends are close-on-exec, so
        // processes other tests start meanwhile do not hold it open; only Xvfb gets it.
        let mut fds = [0; 2];
        // SAFETY: pipe2(2) fills two new descriptors, each owned once below.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) },
            0,
            "pipe2(2)"
        );
        let log = |name: &str| std::fs::File::create(dir.join(name)).unwrap();
        let write_end = fds[1];
        let mut command = Command::new("Xvfb");
        command
            .args(["-displayfd", &write_end.to_string()])
            .args(["-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(log("xvfb.log"));
        // SAFETY: between fork and exec only fcntl(2), which is async-signal-safe: the write
        // end stays open across exec in Xvfb alone.
        unsafe {
            command.pre_exec(move || {
                if libc::fcntl(write_end, libc::F_SETFD, 0) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        let x = command
            .spawn()
            .expect("Xvfb (./scripts/test installs xvfb)");
        // SAFETY: each descriptor from pipe(2) above, owned by exactly one File.
        let (reader, writer) = unsafe {
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        };
        drop(writer);
        let mut number = String::new();
        BufReader::new(reader).read_line(&mut number).unwrap();
        let display = format!(":{}", number.trim());
        assert!(display.len() > 1, "Xvfb did not start: see xvfb.log");
        let wm = Command::new("openbox")
            .arg("--sm-disable")
            .env("DISPLAY", &display)
            .stdout(Stdio::null())
            .stderr(log("openbox.log"))
            .spawn()
            .expect("openbox (./scripts/test installs it)");
        let desktop = Self { display, x, wm };
        desktop.wait_until(
            || desktop.wmctrl(&["-m"]).is_some(),
            "openbox to manage the display",
        );
        desktop
    }

    pub fn display(&self) -> &str {
        &self.display
    }

    /// The window id of the (first) window process `pid` shows.
    pub fn wait_for_window_of(&self, pid: u32) -> String {
        self.wait_until(|| self.window_of(pid).is_some(), "the app's window");
        self.window_of(pid).unwrap()
    }

    pub fn wait_until_no_window_of(&self, pid: u32) {
        self.wait_until(|| self.window_of(pid).is_none(), "the app's window to go");
    }

    /// Asks the window manager to close `window`, as its close button does.
    pub fn close(&self, window: &str) {
        self.wmctrl(&["-i", "-c", window]).expect("wmctrl -c");
    }

    /// `wmctrl -lp`: one line per managed window, "id desktop pid host title".
    fn window_of(&self, pid: u32) -> Option<String> {
        let list = self.wmctrl(&["-l", "-p"])?;
        list.lines().find_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (fields.get(2) == Some(&pid.to_string().as_str())).then(|| fields[0].to_owned())
        })
    }

    fn wmctrl(&self, args: &[&str]) -> Option<String> {
        let out = Command::new("wmctrl")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn wait_until(&self, done: impl Fn() -> bool, what: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !done() {
            assert!(Instant::now() < deadline, "waited too long for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        let _ = self.wm.kill();
        let _ = self.wm.wait();
        let _ = self.x.kill();
        let _ = self.x.wait();
    }
}
