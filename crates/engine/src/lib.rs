//! Lotus Cosigner's runtime: the one API that the desktop shell and the CLI call.
//!
//! [`Engine`] owns key custody and the app's data folder: at start it checks that the OS
//! keychain really keeps secrets, then loads the signer key from it (creating it on the very
//! first run) and answers with public data only. [`runtime`] drives signing sessions. Nothing
//! here ever hands a secret to a caller.

pub mod app_db;
pub mod custody;
pub mod data_dir;
pub mod group_wallet;
pub mod identity;
pub mod key_file;
pub mod key_store;
pub mod profile;
pub mod proposals;
pub mod runtime;
pub mod session_files;
pub mod settings;
pub mod upgrades;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use ts_rs::TS;

pub use identity::IdentityView;
pub use key_store::{KeyStore, KeychainConfig};
pub use settings::Network;

use data_dir::{DataDir, DataDirError};
use identity::{IdentityError, Origin};
use key_store::KeyStoreError;
use settings::{Settings, SettingsError};

/// Where the engine keeps things. [`EngineConfig::from_env`] is what the app uses; tests point
/// it at their own keychain service and a temporary folder.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// `None`: the platform data folder (see [`data_dir::APP_FOLDER`]).
    pub data_dir: Option<PathBuf>,
    pub keychain: KeychainConfig,
}

impl EngineConfig {
    pub const DATA_DIR_ENV: &'static str = "LOTUS_COSIGNER_DATA_DIR";
    pub const KEYCHAIN_SERVICE_ENV: &'static str = "LOTUS_COSIGNER_KEYCHAIN_SERVICE";
    pub const KEYCHAIN_USER_ENV: &'static str = "LOTUS_COSIGNER_KEYCHAIN_USER";

    /// Defaults, overridden by `LOTUS_COSIGNER_DATA_DIR`, `LOTUS_COSIGNER_KEYCHAIN_SERVICE`
    /// and `LOTUS_COSIGNER_KEYCHAIN_USER` when they are set and not empty.
    pub fn from_env() -> Self {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let text = |name| var(name).map(|v| v.to_string_lossy().into_owned());
        let mut keychain = KeychainConfig::default();
        if let Some(service) = text(Self::KEYCHAIN_SERVICE_ENV) {
            keychain.service = service;
        }
        if let Some(user) = text(Self::KEYCHAIN_USER_ENV) {
            keychain.user = user;
        }
        Self {
            data_dir: var(Self::DATA_DIR_ENV).map(PathBuf::from),
            keychain,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Profile(#[from] profile::ProfileError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl From<KeyStoreError> for EngineError {
    fn from(e: KeyStoreError) -> Self {
        Self::Identity(IdentityError::KeyStore(e))
    }
}

/// The kinds of failure the UI tells apart (it picks wording and icons by them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    KeychainUnavailable,
    KeychainLocked,
    KeyMissing,
    KeyMismatch,
    DataFolder,
}

/// An error as the UI shows it: what happened and what to do next. Never a stack trace,
/// never secret material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, TS)]
pub struct ErrorView {
    pub kind: ErrorKind,
    pub title: String,
    /// What happened, in one or two sentences (includes the system's own message).
    pub message: String,
    /// What the person can do about it.
    pub action: String,
}

impl EngineError {
    pub fn view(&self) -> ErrorView {
        let (kind, title, action) = match self {
            Self::DataDir(_) | Self::Settings(_) | Self::Profile(_) => (
                ErrorKind::DataFolder,
                "The app's data folder cannot be used",
                "Check that the folder exists, is yours and is writable; a broken settings.json can \
                 be fixed or deleted (it only holds preferences)."
                    .to_owned(),
            ),
            Self::Identity(IdentityError::KeyStore(e)) => {
                let (kind, title) = match e {
                    KeyStoreError::Locked { .. } => {
                        (ErrorKind::KeychainLocked, "Your keychain is locked")
                    }
                    _ => (
                        ErrorKind::KeychainUnavailable,
                        "The OS keychain is not available",
                    ),
                };
                (kind, title, e.action())
            }
            Self::Identity(IdentityError::Database(_)) => (
                ErrorKind::DataFolder,
                "The app's database cannot be used",
                "Check that the data folder is writable and not used by another program.".to_owned(),
            ),
            Self::Identity(IdentityError::Random(_)) => (
                ErrorKind::KeychainUnavailable,
                "No secure randomness to create a key",
                "The operating system's random number generator failed; restart the computer and try again.".to_owned(),
            ),
            Self::Identity(IdentityError::KeyMissing { .. }) => (
                ErrorKind::KeyMissing,
                "Your signing key is missing from the keychain",
                "Restore the key from your backup. The app will not create a new key over it, \
                 because funds may be locked to the missing one."
                    .to_owned(),
            ),
            Self::Identity(IdentityError::KeyMismatch { .. }) => (
                ErrorKind::KeyMismatch,
                "The keychain holds a different key",
                "This data folder belongs to another key. Point the app at that key's keychain \
                 entry, or at a different data folder."
                    .to_owned(),
            ),
        };
        ErrorView {
            kind,
            title: title.to_owned(),
            message: self.to_string(),
            action,
        }
    }
}

/// The running engine. Startup failures are kept, not fatal: the UI shows them and can ask
/// again once the person fixed the cause (e.g. started the keyring).
pub struct Engine {
    config: EngineConfig,
    identity: Mutex<Option<IdentityView>>,
}

impl Engine {
    /// Opens the data folder, self-tests the keychain and loads (or on the first run creates)
    /// the signer key. Failures are logged loudly and answered by [`Engine::identity`].
    pub fn start(config: EngineConfig) -> Self {
        let engine = Self {
            config,
            identity: Mutex::new(None),
        };
        // The error is logged inside and served to the UI on request.
        let _ = engine.identity();
        engine
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The public identity, opening (again) if the last attempt failed.
    pub fn identity(&self) -> Result<IdentityView, ErrorView> {
        let mut cached = self.identity.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(view) = cached.as_ref() {
            return Ok(view.clone());
        }
        match open(&self.config) {
            Ok(view) => {
                *cached = Some(view.clone());
                Ok(view)
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot load the signer identity");
                Err(e.view())
            }
        }
    }
}

fn open(config: &EngineConfig) -> Result<IdentityView, EngineError> {
    let dir = DataDir::open(config.data_dir.clone())?;
    let settings = Settings::load_or_init(&dir.settings_file())?;
    let mut profile = profile::Profile::open(Some(dir.path().to_owned()))?;
    let keys = KeyStore::new(config.keychain.clone());
    keys.self_test()?;
    let (record, origin) = identity::load_or_create(&keys, profile.store_mut(), unix_now_ms())?;
    let view = identity::view(&record, settings.network, dir.path());
    let how = match origin {
        Origin::Created => "created a new signer key",
        Origin::Loaded => "loaded the signer key",
        Origin::Adopted => "adopted the signer key found in the keychain",
    };
    tracing::info!(
        public_key = %view.public_key_hex,
        service = %config.keychain.service,
        data_dir = %view.data_dir,
        "{how}"
    );
    Ok(view)
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The types the UI receives, for generating its TypeScript bindings.
pub mod bindings {
    use std::path::Path;

    use ts_rs::{Config, ExportError, TS};

    /// Writes `<Type>.ts` for every type the UI receives into `dir`.
    pub fn export(dir: &Path) -> Result<(), ExportError> {
        let cfg = Config::new().with_out_dir(dir);
        super::IdentityView::export_all(&cfg)?;
        super::ErrorView::export_all(&cfg)?;
        super::group_wallet::GroupView::export_all(&cfg)?;
        super::group_wallet::HistoryEntryView::export_all(&cfg)?;
        super::group_wallet::PaymentPreviewView::export_all(&cfg)?;
        super::proposals::ProposalView::export_all(&cfg)?;
        super::session_files::ImportedView::export_all(&cfg)?;
        Ok(())
    }
}
