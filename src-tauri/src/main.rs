//! Lotus Cosigner desktop shell. Commands are one-line calls into `engine::Engine`; this crate
//! holds no logic of its own.

#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

use engine::group_wallet::{GroupView, HistoryEntryView};
use engine::recovery::{BackupAnswer, RecoveryPhraseView};
use engine::{
    AuditView, ChainStatusView, Change, Engine, EngineConfig, ErrorView, IdentityView,
    ReputationView, SessionView,
};
use tauri::ipc::Channel;
use tauri::State;

/// The signer identity (public data only). `async`: runs off the main thread, because a retry
/// after a failed start talks to the keychain.
#[tauri::command(async)]
fn get_identity(engine: State<'_, Engine>) -> Result<IdentityView, ErrorView> {
    engine.identity()
}

/// The one deliberate display of a secret: the recovery phrase, for the person to write down.
#[tauri::command(async)]
fn reveal_recovery_phrase(engine: State<'_, Engine>) -> Result<RecoveryPhraseView, ErrorView> {
    engine.recovery_phrase()
}

#[tauri::command]
async fn confirm_backup(
    engine: State<'_, Engine>,
    answers: Vec<BackupAnswer>,
) -> Result<IdentityView, ErrorView> {
    engine.confirm_backup(&answers).await
}

#[tauri::command]
async fn restore_key(engine: State<'_, Engine>, phrase: String) -> Result<IdentityView, ErrorView> {
    let phrase = zeroize::Zeroizing::new(phrase);
    engine.restore_key(&phrase).await
}

#[tauri::command(async)]
fn list_groups(engine: State<'_, Engine>) -> Result<Vec<GroupView>, ErrorView> {
    engine.groups()
}

#[tauri::command(async)]
fn get_group(engine: State<'_, Engine>, id: String) -> Result<GroupView, ErrorView> {
    engine.group(&id)
}

#[tauri::command(async)]
fn group_history(
    engine: State<'_, Engine>,
    id: String,
) -> Result<Vec<HistoryEntryView>, ErrorView> {
    engine.history(&id)
}

#[tauri::command]
async fn refresh_group(engine: State<'_, Engine>, id: String) -> Result<GroupView, ErrorView> {
    engine.refresh_group(&id).await
}

/// Joins a group from the invite text the person pasted.
#[tauri::command]
async fn accept_invite(engine: State<'_, Engine>, invite: String) -> Result<GroupView, ErrorView> {
    engine.accept_invite(&invite).await
}

#[tauri::command]
async fn list_sessions(engine: State<'_, Engine>) -> Result<Vec<SessionView>, ErrorView> {
    engine.sessions().await
}

#[tauri::command]
async fn get_session(engine: State<'_, Engine>, id: String) -> Result<SessionView, ErrorView> {
    engine.session(&id).await
}

/// Approves exactly the review the person saw: `digest` comes from the session view shown.
#[tauri::command]
async fn approve_session(
    engine: State<'_, Engine>,
    id: String,
    digest: String,
) -> Result<SessionView, ErrorView> {
    engine.approve(&id, &digest).await
}

#[tauri::command]
async fn reject_session(
    engine: State<'_, Engine>,
    id: String,
    reason: String,
) -> Result<SessionView, ErrorView> {
    engine.reject(&id, &reason).await
}

#[tauri::command]
async fn chain_status(engine: State<'_, Engine>) -> Result<ChainStatusView, ErrorView> {
    engine.chain_status().await
}

/// Checks the audit log now.
#[tauri::command]
async fn audit(engine: State<'_, Engine>) -> Result<AuditView, ErrorView> {
    engine.audit().await
}

#[tauri::command]
async fn reputation(engine: State<'_, Engine>) -> Result<Vec<ReputationView>, ErrorView> {
    engine.reputation().await
}

/// Streams "X changed" notices to the window until it goes away; the window then fetches the
/// fresh view (a notice carries no state, so a slow window loses nothing).
#[tauri::command]
fn watch_changes(engine: State<'_, Engine>, on_change: Channel<Change>) {
    let mut changes = engine.changes();
    tauri::async_runtime::spawn(async move {
        while let Some(change) = changes.next().await {
            if on_change.send(change).is_err() {
                return; // the window closed or reloaded
            }
        }
    });
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,engine=info,lotus_cosigner_app=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    tauri::Builder::default()
        .manage(Engine::start(EngineConfig::desktop()))
        .invoke_handler(tauri::generate_handler![
            get_identity,
            reveal_recovery_phrase,
            confirm_backup,
            restore_key,
            list_groups,
            get_group,
            group_history,
            refresh_group,
            accept_invite,
            list_sessions,
            get_session,
            approve_session,
            reject_session,
            chain_status,
            audit,
            reputation,
            watch_changes
        ])
        .run(tauri::generate_context!())
        .expect("Lotus Cosigner failed to start its window");
}
