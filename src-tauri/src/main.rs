//! Lotus Cosigner desktop shell. Commands are one-line calls into `engine`; this crate holds
//! no logic of its own.

#![cfg_attr(
    all(not(debug_assertions), target_os = "windows"),
    windows_subsystem = "windows"
)]

use engine::{Engine, EngineConfig, ErrorView, IdentityView};
use tauri::State;

/// The signer identity (public data only). `async`: runs off the main thread, because a retry
/// after a failed start talks to the keychain.
#[tauri::command(async)]
fn get_identity(engine: State<'_, Engine>) -> Result<IdentityView, ErrorView> {
    engine.identity()
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
        .manage(Engine::start(EngineConfig::from_env()))
        .invoke_handler(tauri::generate_handler![get_identity])
        .run(tauri::generate_context!())
        .expect("Lotus Cosigner failed to start its window");
}
