//! Lotus Cosigner desktop shell. Commands are one-line calls into `engine::Engine`; this crate
//! holds no logic of its own.

#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

use engine::app::{AuditEntryView, EvidenceView, TransactionView};
use engine::group_backup::SavedFileView;
use engine::group_form::CreateGroupRequest;
use engine::group_wallet::{GroupView, HistoryEntryView, PaymentPreviewView};
use engine::payment_form::PaymentForm;
use engine::proposals::ProposalView;
use engine::recovery::{BackupAnswer, RecoveryPhraseView};
use engine::views::{ChainTestView, DemoView, NetworkView, SettingsForm, SettingsView};
use engine::{
    AuditView, ChainStatusView, Change, Engine, EngineConfig, ErrorView, IdentityView,
    ReputationView, SessionView,
};
use std::process::ExitCode;

use tauri::ipc::Channel;
use tauri::State;

mod demo_window;
mod notifications;
#[cfg(unix)]
mod single_instance;
mod tray;

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
async fn create_group(
    engine: State<'_, Engine>,
    form: CreateGroupRequest,
) -> Result<GroupView, ErrorView> {
    engine.create_group_from(&form).await
}

/// Saves the group's backup file (no secret) in the documents folder.
#[tauri::command(async)]
fn save_group_backup(engine: State<'_, Engine>, id: String) -> Result<SavedFileView, ErrorView> {
    engine.save_group_backup(&id)
}

#[tauri::command(async)]
fn preview_payment(
    engine: State<'_, Engine>,
    form: PaymentForm,
) -> Result<PaymentPreviewView, ErrorView> {
    engine.preview_payment(&form)
}

#[tauri::command]
async fn propose_payment(
    engine: State<'_, Engine>,
    form: PaymentForm,
) -> Result<ProposalView, ErrorView> {
    engine.propose_payment(&form).await
}

#[tauri::command]
async fn network_view(engine: State<'_, Engine>) -> Result<NetworkView, ErrorView> {
    engine.network_view().await
}

#[tauri::command(async)]
fn settings_view(engine: State<'_, Engine>) -> Result<SettingsView, ErrorView> {
    engine.settings_view()
}

/// Saves the settings and starts the engine again with them.
#[tauri::command(async)]
fn save_settings(engine: State<'_, Engine>, form: SettingsForm) -> Result<SettingsView, ErrorView> {
    engine.save_settings(&form)
}

#[tauri::command]
async fn test_chain_backend(
    engine: State<'_, Engine>,
    spec: String,
) -> Result<ChainTestView, ErrorView> {
    engine.test_chain_backend(&spec).await
}

/// The audit log's newest entries, for the Audit screen's list and filters.
#[tauri::command]
async fn audit_entries(engine: State<'_, Engine>) -> Result<Vec<AuditEntryView>, ErrorView> {
    engine.audit_entries(5_000).await
}

/// The blame records against a signer, each verified again now.
#[tauri::command(async)]
fn evidence_against(
    engine: State<'_, Engine>,
    signer: String,
) -> Result<Vec<EvidenceView>, ErrorView> {
    engine.evidence_against(&signer)
}

/// Saves one blame record's exact bytes for a third party to verify.
#[tauri::command(async)]
fn save_evidence(
    engine: State<'_, Engine>,
    signer: String,
    id: String,
) -> Result<SavedFileView, ErrorView> {
    engine.save_evidence(&signer, &id)
}

/// Saves the session (signed proposal, signed transaction once there is one) as a file.
#[tauri::command(async)]
fn save_session_file(engine: State<'_, Engine>, id: String) -> Result<SavedFileView, ErrorView> {
    engine.save_session_file(&id)
}

/// Takes a session file the person picked: its proposal is validated as if it had arrived
/// from a co-signer, then shown for review.
#[tauri::command]
async fn import_session_file(
    engine: State<'_, Engine>,
    text: String,
) -> Result<SessionView, ErrorView> {
    engine.import_session_file(&text).await
}

/// A signed session's transaction as this member's chain backends see it.
#[tauri::command]
async fn transaction_status(
    engine: State<'_, Engine>,
    id: String,
) -> Result<TransactionView, ErrorView> {
    engine.transaction_status(&id).await
}

/// Proposes spending a coin of a signed transaction nobody has seen, which cancels it.
#[tauri::command]
async fn cancel_unseen(engine: State<'_, Engine>, id: String) -> Result<ProposalView, ErrorView> {
    engine.cancel_unseen(&id).await
}

/// Saves the audit log (JSON Lines) in the documents folder.
#[tauri::command]
async fn export_audit_log(engine: State<'_, Engine>) -> Result<SavedFileView, ErrorView> {
    engine.save_audit_export().await
}

#[tauri::command]
async fn list_sessions(engine: State<'_, Engine>) -> Result<Vec<SessionView>, ErrorView> {
    engine.sessions().await
}

#[tauri::command]
async fn get_session(engine: State<'_, Engine>, id: String) -> Result<SessionView, ErrorView> {
    engine.session(&id).await
}

/// Approves exactly the review the person saw: `digest` comes from the session view shown;
/// `code` is the proposer's confirmation code, for a payment above the limit.
#[tauri::command]
async fn approve_session(
    engine: State<'_, Engine>,
    id: String,
    digest: String,
    code: Option<String>,
) -> Result<SessionView, ErrorView> {
    engine.approve(&id, &digest, code.as_deref()).await
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

/// A `lotus-cosigner://invite/…` link the app was opened with (the desktop entry passes it),
/// or that a later start handed over, given to the window once: it opens the join form filled
/// in, and the person decides.
#[derive(Clone, Default)]
struct LaunchInvite(std::sync::Arc<std::sync::Mutex<Option<String>>>);

impl LaunchInvite {
    fn put(&self, invite: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(invite);
    }
}

#[tauri::command]
fn take_launch_invite(launch: State<'_, LaunchInvite>) -> Option<String> {
    launch.0.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The session a clicked desktop notification asked to open, given to the window once.
#[tauri::command]
fn take_open_session(open: State<'_, notifications::OpenSession>) -> Option<String> {
    open.take()
}

/// The demo's guide, in a demo window only (started with `--demo`).
struct Demo(Option<cli::app_demo::DemoGuide>);

#[tauri::command]
fn demo_guide(demo: State<'_, Demo>) -> Option<DemoView> {
    demo.0.as_ref().map(|guide| guide.view())
}

/// Opens the demo in a window of its own (another process of this program): the person's
/// profile stays untouched. Answers once the demo is ready, or why it could not start.
#[tauri::command(async)]
fn start_demo() -> Result<(), ErrorView> {
    demo_window::start()
}

/// The command-line argument that runs this program as the `lotus-cosigner` command line
/// (the demo's headless co-signers).
const HEADLESS: &str = "--headless";
/// The argument that opens the demo window.
const DEMO: &str = "--demo";

/// Hands this start (and its invite link) to a window already open on the same profile, or
/// becomes the one later starts are handed to.
#[cfg(unix)]
fn first_start(config: &EngineConfig, invite: Option<&str>) -> single_instance::Start {
    match engine::data_dir::DataDir::open(config.data_dir.clone()) {
        Ok(dir) => single_instance::claim(dir.path(), invite),
        // The engine reports this in the window; the app still opens to say so.
        Err(e) => single_instance::Start::Alone(e.to_string()),
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args_os();
    if std::env::args_os().nth(1).is_some_and(|a| a == HEADLESS) {
        let _program = args.next();
        let _headless = args.next();
        return cli::entry::main_with(std::iter::once("lotus-cosigner".into()).chain(args));
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,engine=info,lotus_cosigner_app=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let demo = if std::env::args().any(|a| a == DEMO) {
        match demo_window::prepare() {
            Ok(demo) => Some(demo),
            Err(e) => {
                eprintln!("error: the demo could not start: {e:#}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let config = match &demo {
        Some((_, config)) => config.clone(),
        None => EngineConfig::desktop(),
    };
    let invite = std::env::args()
        .skip(1)
        .find(|arg| arg.starts_with(engine::INVITE_LINK_PREFIX));
    let guide = demo.as_ref().map(|(d, _)| d.guide());
    let is_demo = demo.is_some();
    let launch = LaunchInvite::default();
    if let Some(invite) = invite.clone() {
        launch.put(invite);
    }
    // Later starts are answered from now on, even before the window exists: a link they
    // bring waits in `launch`, and the window comes to the front once there is one.
    let app_handle: std::sync::Arc<std::sync::OnceLock<tauri::AppHandle>> = Default::default();
    #[cfg(unix)]
    if !is_demo {
        // (a demo's profile is its own, made fresh for this window)
        match first_start(&config, invite.as_deref()) {
            single_instance::Start::Handed => {
                println!("Lotus Cosigner is already open on this profile: its window was brought to the front.");
                return ExitCode::SUCCESS;
            }
            single_instance::Start::Alone(why) => {
                tracing::warn!("no single-instance check: {why}");
            }
            single_instance::Start::First(listener) => {
                let (launch, app_handle) = (launch.clone(), app_handle.clone());
                single_instance::serve(listener, move |invite| {
                    if let Some(invite) =
                        invite.filter(|i| i.starts_with(engine::INVITE_LINK_PREFIX))
                    {
                        launch.put(invite);
                    }
                    if let Some(app) = app_handle.get() {
                        tray::show_window(app);
                    }
                });
            }
        }
    }
    let app = tauri::Builder::default()
        .on_window_event(move |window, event| {
            if !is_demo {
                tray::hide_on_close(window, event);
            }
        })
        .manage(launch)
        .manage(notifications::OpenSession::default())
        .manage(Engine::start(config))
        .manage(Demo(guide.clone()))
        .invoke_handler(tauri::generate_handler![
            get_identity,
            take_launch_invite,
            take_open_session,
            reveal_recovery_phrase,
            confirm_backup,
            restore_key,
            list_groups,
            get_group,
            group_history,
            refresh_group,
            accept_invite,
            create_group,
            save_group_backup,
            preview_payment,
            propose_payment,
            network_view,
            settings_view,
            save_settings,
            test_chain_backend,
            export_audit_log,
            save_session_file,
            import_session_file,
            transaction_status,
            cancel_unseen,
            audit_entries,
            evidence_against,
            save_evidence,
            list_sessions,
            get_session,
            approve_session,
            reject_session,
            chain_status,
            audit,
            reputation,
            watch_changes,
            demo_guide,
            start_demo
        ])
        .build(tauri::generate_context!())
        .expect("Lotus Cosigner failed to start its window");
    let _ = app_handle.set(app.handle().clone());
    if !is_demo {
        if let Err(e) = tray::install(app.handle()) {
            tracing::warn!("no tray icon, so closing the window quits: {e}");
        }
        tray::follow_waiting(app.handle().clone());
    }
    notifications::follow(app.handle().clone());
    let director = demo.map(|(demo, _)| demo_window::direct(demo, app.handle().clone()));
    if director.is_some() {
        demo_window::exit_on_terminate(app.handle().clone());
    }
    app.run(move |_, event| {
        if let tauri::RunEvent::Exit = event {
            if let (Some(guide), Some(director)) = (&guide, &director) {
                demo_window::end(guide, director);
            }
        }
    });
    ExitCode::SUCCESS
}
