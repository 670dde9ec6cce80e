//! The demo window's life: prepared before the window opens, directed on a thread of its own,
//! ended (co-signers stopped, folder removed) when the window closes; and how the person's own
//! window opens it: another process of this program, so nothing of their profile is shared.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;

use cli::app_demo::{AppDemo, DemoGuide};
use cli::demo_kit::Launcher;
use engine::{Engine, EngineConfig, ErrorKind, ErrorView};
use tauri::Manager;

/// What a demo process prints once its window is up: the window that asked may stop waiting.
pub const READY: &str = "demo-ready";

/// Starts the demo's devnet and co-signers (this program in its headless mode) and makes the
/// engine configuration of the person's demo profile.
pub fn prepare() -> anyhow::Result<(AppDemo, EngineConfig)> {
    let demo = AppDemo::prepare(Launcher::this_program(&[super::HEADLESS])?)?;
    let config = demo.engine_config()?;
    Ok((demo, config))
}

/// The thread walking the person through the demo; it keeps the demo until [`end`].
pub struct Director(Mutex<Option<JoinHandle<()>>>);

pub fn direct(demo: AppDemo, app: tauri::AppHandle) -> Director {
    let guide = demo.guide();
    let thread = std::thread::spawn(move || {
        let mut demo = demo;
        demo.run(&app.state::<Engine>());
        // The co-signers and the devnet stay up, for the person to look around, until the
        // window closes.
        while !guide.is_stopped() {
            std::thread::park();
        }
    });
    println!("{READY}");
    Director(Mutex::new(Some(thread)))
}

/// A demo window asked to end by a signal (the session logging out, a test driver closing it)
/// exits like a closed window, so the demo still cleans up.
pub fn exit_on_terminate(app: tauri::AppHandle) {
    tauri::async_runtime::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            return;
        };
        terminate.recv().await;
        tracing::info!("asked to stop: ending the demo");
        app.exit(0);
    });
}

/// Stops the demo's waits and waits for its thread, which drops the demo: co-signers and
/// devnet stopped, temporary folder removed.
pub fn end(guide: &DemoGuide, director: &Director) {
    tracing::info!("the demo window closed: stopping the demo's co-signers");
    guide.stop();
    if let Some(thread) = director.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
        thread.thread().unpark();
        let _ = thread.join();
    }
}

/// Set while a demo this window started is starting or running: one demo at a time, however
/// often `start_demo` is called (each demo is a devnet and two co-signer processes).
static DEMO_RUNNING: AtomicBool = AtomicBool::new(false);

/// Opens the demo window: this program with `--demo`. Returns once it is up, or with the reason
/// it gave for not starting. Refused while this window's previous demo still runs.
pub fn start() -> Result<(), ErrorView> {
    if DEMO_RUNNING
        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Err(ErrorView {
            kind: ErrorKind::Internal,
            title: "A demo is already open".into(),
            message: "the demo window this app opened is still running".into(),
            action: "Switch to the demo window, or close it to start a new demo.".into(),
        });
    }
    let started = start_child();
    if started.is_err() {
        DEMO_RUNNING.store(false, Ordering::Release);
    }
    started
}

fn start_child() -> Result<(), ErrorView> {
    let failed = |message: String| ErrorView {
        kind: ErrorKind::Internal,
        title: "The demo could not start".into(),
        message,
        action: "Try again; if it fails again, start the app from a terminal to see its log."
            .into(),
    };
    let program = std::env::current_exe().map_err(|e| failed(e.to_string()))?;
    let log = std::env::temp_dir().join("lotus-cosigner-demo.log");
    let log_file = std::fs::File::create(&log)
        .map_err(|e| failed(format!("cannot write {}: {e}", log.display())))?;
    let mut child = Command::new(program)
        .arg(super::DEMO)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| failed(e.to_string()))?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    for line in lines.by_ref() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                // Not left running beside the guard's next demo.
                let _ = child.kill();
                let _ = child.wait();
                return Err(failed(e.to_string()));
            }
        };
        if line == READY {
            // The demo lives on by itself; reap it when it ends so it leaves no zombie.
            std::thread::spawn(move || {
                for _ in lines {}
                let _ = child.wait();
                DEMO_RUNNING.store(false, Ordering::Release);
            });
            return Ok(());
        }
    }
    let _ = child.wait();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    let reason = said
        .lines()
        .rev()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("it stopped before its window opened")
        .trim_start_matches("error:")
        .trim()
        .to_owned();
    Err(failed(reason))
}
