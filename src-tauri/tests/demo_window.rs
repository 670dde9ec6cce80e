//! The demo a newcomer runs, over WebDriver in the real app window started with `--demo` (what
//! "Try a demo group" opens): the person approves a payment, watches the silent coordinator's
//! backup broadcast it, approves a second one, sees the cheating co-signer blamed and the
//! evidence verified, checks the audit log; no IPC answer carries the demo key; closing the
//! app stops the demo's co-signers and removes its folder.
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use fantoccini::{Client, Locator};

/// The demo starts processes and waits for block and broadcast slots: more than a screen.
const DEMO_PATIENCE: Duration = Duration::from_secs(240);

/// Each test runs a demo (a devnet, two co-signers, a second window): one at a time on two
/// cores. Side by side, WebKit once reported the walk's page crashed.
static ONE_DEMO_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Waits until the guide's step `index` is in `state`; its text.
async fn wait_for_step(client: &Client, index: usize, state: &str) -> String {
    let deadline = Instant::now() + DEMO_PATIENCE;
    loop {
        let steps = client
            .find_all(Locator::Css("[data-testid=demo-step]"))
            .await
            .unwrap();
        if let Some(step) = steps.get(index) {
            let now = step.attr("data-state").await.unwrap().unwrap_or_default();
            let text = step.text().await.unwrap_or_default();
            if now == state {
                return text;
            }
            if let Ok(failure) = client
                .find(Locator::Css("[data-testid=demo-failure]"))
                .await
            {
                panic!(
                    "the demo failed at step {index}: {}",
                    failure.text().await.unwrap()
                );
            }
            if Instant::now() > deadline {
                let guide = text_of(client, "[data-testid=demo-guide]").await;
                let screen = client
                    .find(Locator::Css("main"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap_or_default();
                panic!("step {index} never became {state}; it is {now}: {text}\n{guide}\n{screen}");
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Opens the payment the guide asks about and approves exactly what the review shows.
async fn review_and_approve(client: &Client, amount: &str) {
    click(client, "[data-testid=demo-open-session]").await;
    let review = wait_for_text(client, "[data-testid=session]", amount).await;
    assert!(review.contains("change, back to this group"), "{review}");
    click(client, "[data-testid=approve]").await;
    // The approval took: the person's row in the timeline says so (an error card otherwise).
    let deadline = Instant::now() + PATIENCE;
    loop {
        let rows = texts_of(client, "[data-testid=session-member]").await;
        if rows
            .iter()
            .any(|r| r.contains("(you)") && r.contains("approved"))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the approval did not take: {}",
            text_of(client, "[data-testid=session]").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_walks_through_a_failover_and_a_blame_and_leaves_nothing_behind() {
    let _turn = ONE_DEMO_AT_A_TIME.lock().await;
    // Its own profile environment, which the demo must not even open.
    let profile = Profile::new("demo");
    let env = profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver_log = profile.dir.path().join("webdriver.log");
    let driver = WebDriver::start(&env, &driver_log);
    let client = driver.open_app_with(&["--demo"]).await;

    text_of(&client, "[data-testid=demo-guide]").await;
    client
        .execute("window.__lotusIpcLog = []; return null;", vec![])
        .await
        .unwrap();
    let data_dir = client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css("[data-testid=data-dir]"))
        .await
        .unwrap()
        .attr("title")
        .await
        .unwrap()
        .unwrap_or_default();
    let demo_root = Path::new(data_dir.trim()).parent().unwrap().to_owned();
    assert!(
        demo_root
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("lotus-cosigner-demo"),
        "{data_dir}"
    );
    wait_for_text(&client, "[data-testid=key-store]", "encrypted key file").await;
    assert!(
        !profile.data_dir().exists(),
        "the demo opened the person's profile"
    );

    // Session 1: the person approves; Alice (the coordinator) stays silent, Bob broadcasts.
    wait_for_step(&client, 2, "your_turn").await;
    shoot(&client, "13-demo-guide").await;
    review_and_approve(&client, "1.000000 XPI").await;
    let failover = wait_for_step(&client, 3, "done").await;
    assert!(
        failover.contains("Alice (#1) did not broadcast in its slot, Bob (#2) did"),
        "{failover}"
    );
    assert!(failover.contains("Confirmed as"), "{failover}");

    // Session 2: Bob sends an invalid partial signature and is blamed, with evidence.
    wait_for_step(&client, 4, "your_turn").await;
    review_and_approve(&client, "2.000000 XPI").await;
    let blame = wait_for_step(&client, 5, "done").await;
    assert!(blame.contains("partial signature"), "{blame}");
    text_of(&client, "[data-testid=demo-finished]").await;
    shoot(&client, "14-demo-blame").await;
    wait_for_text(&client, "[data-testid=abort-reason]", "partial signature").await;

    click(&client, "[data-testid=nav-co-signers]").await;
    click(&client, "[data-testid=show-evidence]").await;
    text_of(&client, "[data-testid=evidence-verified]").await;
    shoot(&client, "15-demo-evidence").await;
    click(&client, "dialog button.close").await;
    // Each co-signer's record: timeouts by phase and the response-time chart of the rounds.
    let chart = text_of(&client, "[data-testid=response-chart]").await;
    assert!(chart.contains("median"), "{chart}");
    client
        .execute(
            "document.querySelector('[data-testid=cosigner-detail]').scrollIntoView(); return null;",
            vec![],
        )
        .await
        .unwrap();
    shoot(&client, "16-demo-cosigners").await;
    click(&client, "[data-testid=nav-audit]").await;
    wait_for_text(&client, "[data-testid=audit-status]", "Verified").await;

    // The demo key, through its one deliberate display, is in no other IPC answer.
    click(&client, "[data-testid=nav-identity]").await;
    let public_key = text_of(&client, "[data-testid=public-key]").await;
    click(&client, "[data-testid=backup-now]").await;
    click(&client, "[data-testid=reveal-phrase]").await;
    text_of(&client, "[data-testid=recovery-phrase]").await;
    let words = texts_of(&client, "[data-testid=phrase-word]").await;
    let phrase = words.join(" ");
    let key = engine::recovery::RecoveryPhrase::parse(&phrase)
        .unwrap()
        .key()
        .unwrap();
    assert_eq!(
        hex(&key.public_key().serialize()),
        public_key.split_whitespace().collect::<String>(),
        "the phrase is the demo key's"
    );
    assert_no_secret_in_ipc(
        &client,
        &["demo_guide", "get_session", "approve_session", "change"],
        &key,
        &words,
    )
    .await;

    // Ending the app ends the demo: co-signers and devnet stopped, folder removed. (A
    // WebDriver "close window" kills the app outright, so the test asks as a desktop session
    // does at logout: SIGTERM, which the demo window handles like its window closing.)
    assert!(!processes_with_argument(&demo_root.to_string_lossy()).is_empty());
    let apps = children_of(driver.pid());
    assert_eq!(apps.len(), 1, "one app window: {apps:?}");
    // SAFETY: kill(2) on the app process WebKitWebDriver started for this test.
    unsafe {
        libc::kill(apps[0] as libc::pid_t, libc::SIGTERM);
    }
    wait_until_demo_is_gone(&demo_root, &driver_log).await;
}

/// The demo's folder removed and none of its processes left, within a minute.
async fn wait_until_demo_is_gone(demo_root: &Path, driver_log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while demo_root.exists() || !processes_with_argument(&demo_root.to_string_lossy()).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the demo left {} or its processes {:?} behind; the app said:\n{}",
            demo_root.display(),
            processes_with_argument(&demo_root.to_string_lossy()),
            std::fs::read_to_string(driver_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The demo folder of the demo process `pid` (it writes its pid into its folder).
fn demo_folder_of(pid: u32) -> Option<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("lotus-cosigner-demo")
        })
        .map(|e| e.path())
        .find(|p| {
            std::fs::read_to_string(p.join("owner.pid")).is_ok_and(|o| o.trim() == pid.to_string())
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_person_opens_the_demo_in_one_click_from_their_own_window() {
    let _turn = ONE_DEMO_AT_A_TIME.lock().await;
    let profile = Profile::new("demo-offer");
    let env = profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver_log = profile.dir.path().join("webdriver.log");
    let driver = WebDriver::start(&env, &driver_log);
    let client = driver.open_app().await;

    // The first screen a new person sees offers the demo.
    text_of(&client, "[data-testid=public-key]").await;
    click(&client, "[data-testid=start-demo]").await;
    client
        .wait()
        .at_most(DEMO_PATIENCE)
        .for_element(Locator::Css("[data-testid=demo-started]"))
        .await
        .expect("the demo window opened");
    shoot(&client, "00-first-run").await;

    // Another process of the app, with a folder of its own; the person's profile has no group.
    let app = children_of(driver.pid())[0];
    let demo = children_of(app)
        .into_iter()
        .find(|pid| cmdline_of(*pid).contains("--demo"))
        .expect("a demo process started by the app");
    let demo_root = demo_folder_of(demo).expect("the demo's folder");
    assert!(demo_root.join("you").exists(), "{}", demo_root.display());

    // A_second_demo_is_refused_while_one_runs: however often the window asks (a compromised
    // page could loop), one demo at a time.
    let again = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__.invoke('start_demo').then(
               () => done('started'), (e) => done(e.title));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(again, "A demo is already open");
    assert_eq!(
        children_of(app)
            .into_iter()
            .filter(|pid| cmdline_of(*pid).contains("--demo"))
            .count(),
        1,
        "one demo process"
    );
    click(&client, "[data-testid=nav-groups]").await;
    text_of(&client, "[data-testid=try-demo]").await;

    // SAFETY: kill(2) on the demo process the app under test started.
    unsafe {
        libc::kill(demo as libc::pid_t, libc::SIGTERM);
    }
    wait_until_demo_is_gone(&demo_root, &driver_log).await;
}
