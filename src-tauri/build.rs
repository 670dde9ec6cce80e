//! Builds the web UI (ui/dist) when it is missing or older than its sources, then runs
//! tauri-build with an app ACL manifest: without one, app commands registered through
//! `invoke_handler` would bypass the capability check entirely.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// Every app command. Each gets an `allow-<command>` permission; capabilities/main.json grants
/// them to the main window.
const COMMANDS: &[&str] = &[
    "get_identity",
    "take_launch_invite",
    "take_open_session",
    "reveal_recovery_phrase",
    "confirm_backup",
    "restore_key",
    "list_groups",
    "get_group",
    "group_history",
    "refresh_group",
    "accept_invite",
    "create_group",
    "save_group_backup",
    "preview_payment",
    "propose_payment",
    "network_view",
    "settings_view",
    "save_settings",
    "test_chain_backend",
    "export_audit_log",
    "save_session_file",
    "import_session_file",
    "transaction_status",
    "cancel_unseen",
    "audit_entries",
    "evidence_against",
    "save_evidence",
    "list_sessions",
    "get_session",
    "approve_session",
    "reject_session",
    "chain_status",
    "audit",
    "reputation",
    "watch_changes",
    "demo_guide",
    "start_demo",
];

fn main() {
    build_ui();
    tauri_build::try_build(
        tauri_build::Attributes::new()
            .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS)),
    )
    .expect("tauri-build failed");
}

fn build_ui() {
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui");
    let inputs: Vec<PathBuf> = [
        "src",
        "index.html",
        "package.json",
        "package-lock.json",
        "vite.config.ts",
        "svelte.config.js",
        "tsconfig.json",
    ]
    .iter()
    .map(|p| ui.join(p))
    .collect();
    let output = ui.join("dist/index.html");
    for input in &inputs {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    println!("cargo:rerun-if-changed={}", output.display());

    let built = modified(&output);
    let newest_input = inputs.iter().filter_map(|p| newest(p)).max();
    if built.is_some() && built >= newest_input {
        return;
    }
    if !ui.join("node_modules").is_dir() {
        panic!(
            "ui/node_modules is missing, so the web UI cannot be built.\n\
             Run `npm ci --prefix ui` once (./scripts/app and .ci/run do this), then build again."
        );
    }
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .args(["run", "build"])
        .current_dir(&ui)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run `{npm} run build` in ui/ (is Node.js installed?): {e}")
        });
    assert!(status.success(), "`npm run build` in ui/ failed ({status})");
}

fn modified(path: &Path) -> Option<SystemTime> {
    path.metadata().and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of any file below a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    if path.is_dir() {
        std::fs::read_dir(path)
            .ok()?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| newest(&entry.path()))
            .max()
    } else {
        modified(path)
    }
}
