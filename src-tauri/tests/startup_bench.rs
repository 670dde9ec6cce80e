//! Not a test: the app's start and memory, measured (run by `./scripts/bench-app`). Prints
//! cold start to an interactive window (a fresh app process each time, until the identity is
//! on screen), idle RSS with one funded group, and RSS while a session is open, for the app
//! process and with its WebKit helper processes.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::*;

/// Resident memory of a process in KiB (VmRSS), 0 once it is gone.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

/// The app process started by the driver, and every process below it.
fn app_processes(driver_pid: u32) -> (u32, Vec<u32>) {
    let app = descendants(driver_pid)
        .into_iter()
        .find(|pid| {
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|exe| exe.ends_with("lotus-cosigner-app"))
                .unwrap_or(false)
        })
        .expect("the app process");
    let helpers = descendants(app);
    (app, helpers)
}

fn descendants(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for child in children(parent) {
            found.push(child);
            frontier.push(child);
        }
    }
    found
}

fn children(parent: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a benchmark: run it with ./scripts/bench-app"]
async fn app_start_and_memory() {
    let funded = FundedProfile::new("bench").await;
    let env = funded.profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let log = funded.profile.dir.path().join("webdriver.log");
    const RUNS: usize = 5;

    let mut starts = Vec::new();
    for _ in 0..RUNS {
        let driver = WebDriver::start(&env, &log);
        let began = Instant::now();
        let client = driver.open_app().await;
        text_of(&client, "[data-testid=public-key]").await;
        starts.push(began.elapsed().as_secs_f64() * 1000.0);
        client.close().await.unwrap();
        drop(driver);
        wait_until_profile_is_free(&funded.profile.data_dir()).await;
    }

    let driver = WebDriver::start(&env, &log);
    let client = driver.open_app().await;
    click(&client, "[data-testid=nav-groups]").await;
    wait_for_text(&client, "[data-testid=groups]", "40.000000 XPI").await;
    // Idle: the window and engine settled with one group shown.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (app, helpers) = app_processes(driver.pid());
    let idle_app = rss_kib(app);
    let idle_all = idle_app + helpers.iter().map(|p| rss_kib(*p)).sum::<u64>();

    // During a session: a proposal under review, the engine holding its state.
    click(&client, "[data-testid=group-row] button").await;
    click(&client, "[data-testid=new-payment]").await;
    let shop = shop_address();
    fill_payment(&client, &shop).await;
    click(&client, "[data-testid=propose-payment]").await;
    text_of(&client, "[data-testid=approve]").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (app, helpers) = app_processes(driver.pid());
    let session_app = rss_kib(app);
    let session_all = session_app + helpers.iter().map(|p| rss_kib(*p)).sum::<u64>();
    client.close().await.unwrap();

    // The binary measured: this build's (debug or release, as the harness), or an installed one.
    let binary = app_binary();
    let build = match std::env::var_os("LOTUS_COSIGNER_APP_BINARY") {
        Some(_) => "installed",
        None if cfg!(debug_assertions) => "debug build",
        None => "release build",
    };
    println!("app start and memory ({build}: {binary}; {RUNS} starts, Xvfb, 2 cores)");
    println!(
        "  cold start to interactive window: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        median(starts.clone()),
        starts.iter().cloned().fold(f64::INFINITY, f64::min),
        starts.iter().cloned().fold(0.0, f64::max)
    );
    println!(
        "  idle RSS, one group: app {} KiB; with {} WebKit helpers {} KiB",
        idle_app,
        helpers.len(),
        idle_all
    );
    println!("  RSS during a session: app {session_app} KiB; with helpers {session_all} KiB");
}
