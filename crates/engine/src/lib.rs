//! Lotus Cosigner's runtime: the one API that the desktop shell and the CLI call.
//!
//! [`Engine`] owns key custody and the app's data folder: at start it checks that the OS
//! keychain really keeps secrets, then loads the signer key from it (creating it on the very
//! first run) and answers with public data only. [`runtime`] drives signing sessions. Nothing
//! here ever hands a secret to a caller.

pub mod app;
pub mod app_db;
pub mod confirmation;
pub mod control;
pub mod custody;
pub mod data_dir;
pub mod group_backup;
pub mod group_form;
pub mod group_wallet;
pub mod identity;
pub mod key_file;
pub mod key_store;
pub mod notices;
pub mod payment_form;
pub mod policy;
pub mod profile;
pub mod proposals;
pub mod recovery;
pub mod runtime;
pub mod session_files;
pub mod settings;
pub mod upgrades;
pub mod views;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use ts_rs::TS;

pub use app::Engine;
pub use identity::IdentityView;
pub use key_store::{KeyStore, KeychainConfig};
/// What a group invite link starts with (the app's `lotus-cosigner://` URL scheme).
pub use protocol::group::INVITE_PREFIX as INVITE_LINK_PREFIX;
pub use settings::Network;
pub use views::{AuditView, ChainStatusView, Change, ReputationView, SessionView};

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
    /// A signer key opened already (an encrypted key file, for a headless node); `None`: the
    /// keychain's.
    pub key: Option<std::sync::Arc<custody::Custody>>,
    /// Join the peer-to-peer network with these settings; `None`: offline.
    pub network: Option<net::NetConfig>,
    /// Chain backends replacing the settings' for this run (`--chain`).
    pub chain: Vec<String>,
    /// Where group backup files are saved; `None`: the documents folder (or home).
    pub backup_dir: Option<PathBuf>,
    /// Test-only misbehaviour (cross-process tests); never set by the app.
    pub test_fault: Option<runtime::faults::TestFault>,
}

impl EngineConfig {
    pub const DATA_DIR_ENV: &'static str = "LOTUS_COSIGNER_DATA_DIR";
    pub const KEYCHAIN_SERVICE_ENV: &'static str = "LOTUS_COSIGNER_KEYCHAIN_SERVICE";
    pub const KEYCHAIN_USER_ENV: &'static str = "LOTUS_COSIGNER_KEYCHAIN_USER";
    pub const BACKUP_DIR_ENV: &'static str = "LOTUS_COSIGNER_BACKUP_DIR";

    /// Defaults, overridden by `LOTUS_COSIGNER_DATA_DIR`, `LOTUS_COSIGNER_KEYCHAIN_SERVICE`
    /// and `LOTUS_COSIGNER_KEYCHAIN_USER` when they are set and not empty.
    /// The desktop app's engine: [`Self::from_env`] on the peer-to-peer network, so a
    /// co-signer's laptop answers the signing rounds while the app runs (bootstrap nodes come
    /// from the settings and from the groups).
    pub fn desktop() -> Self {
        Self {
            network: Some(net::NetConfig::default()),
            ..Self::from_env()
        }
    }

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
            backup_dir: var(Self::BACKUP_DIR_ENV).map(PathBuf::from),
            keychain,
            ..Self::default()
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    KeychainUnavailable,
    KeychainLocked,
    KeyMissing,
    KeyMismatch,
    DataFolder,
    /// A key file: missing, wrong passphrase, or no passphrase given.
    KeyFile,
    UnknownGroup,
    UnknownSession,
    /// No chain backend answered, or none is configured.
    ChainUnreachable,
    /// A node refused a transaction (its reason is in the message).
    ChainRefused,
    NotEnoughFunds,
    /// A recipient, an amount or a fee rate that cannot be used.
    InvalidPayment,
    /// The session would be signing across a network upgrade.
    UpgradeWindow,
    /// A proposal's coins are not the group's, or a proposal was refused.
    ProposalRefused,
    InvalidFile,
    /// A settings form with a field that cannot be used.
    InvalidSettings,
    /// A new group's members, name or choices that cannot be used.
    InvalidGroup,
    /// A recovery phrase that cannot be read, or words typed back that do not match.
    RecoveryPhrase,
    /// A restore that would put another key in place of one the profile's groups need.
    RestoreRefused,
    /// The peer-to-peer network could not start or stopped.
    Network,
    /// Something the person cannot fix (a bug, a damaged database): the message says what.
    Internal,
}

/// Errors that can say what happened and what to do about it.
pub trait Explain {
    fn view(&self) -> ErrorView;
}

pub(crate) fn error_view(kind: ErrorKind, title: &str, message: String, action: &str) -> ErrorView {
    ErrorView {
        kind,
        title: title.to_owned(),
        message,
        action: action.to_owned(),
    }
}

impl Explain for KeyStoreError {
    fn view(&self) -> ErrorView {
        let (kind, title) = match self {
            KeyStoreError::Locked { .. } => (ErrorKind::KeychainLocked, "Your keychain is locked"),
            _ => (
                ErrorKind::KeychainUnavailable,
                "The OS keychain is not available",
            ),
        };
        ErrorView {
            kind,
            title: title.to_owned(),
            message: self.to_string(),
            action: self.action(),
        }
    }
}

impl Explain for custody::CustodyError {
    fn view(&self) -> ErrorView {
        use custody::CustodyError as E;
        match self {
            E::Keychain(e) => e.view(),
            E::NoKey => error_view(ErrorKind::KeyMissing, "There is no signer key yet", self.to_string(), "Create one with `lotus-cosigner key create` or by starting the app, or use --key-file."),
            E::KeyFile(_) | E::Passphrase(_) => error_view(ErrorKind::KeyFile, "The key file cannot be opened", self.to_string(), "Check the path and the passphrase (LOTUS_COSIGNER_PASSPHRASE, or standard input)."),
            E::Random(_) => error_view(ErrorKind::Internal, "No secure randomness", self.to_string(), "The operating system's random number generator failed; restart the computer and try again."),
        }
    }
}

impl Explain for recovery::PhraseError {
    fn view(&self) -> ErrorView {
        use recovery::PhraseError as E;
        let (title, action) = match self {
            E::WrongAnswer { .. } | E::TooFewAnswers | E::NoSuchPosition(_) => (
                "Those words do not match your recovery phrase",
                "Check what you wrote down against the phrase, or show the phrase again and \
                 write it down anew.",
            ),
            E::Random(_) => (
                "No secure randomness",
                "The operating system's random number generator failed; restart the computer.",
            ),
            _ => (
                "That recovery phrase cannot be read",
                "Type the 24 words in order, separated by spaces, exactly as written down \
                 (the first four letters of each word are enough).",
            ),
        };
        error_view(ErrorKind::RecoveryPhrase, title, self.to_string(), action)
    }
}

impl Explain for profile::ProfileError {
    fn view(&self) -> ErrorView {
        use profile::ProfileError as E;
        match self {
            E::UnknownGroup(_) | E::AmbiguousGroup(_) => error_view(ErrorKind::UnknownGroup, "No such group", self.to_string(), "List the groups with `lotus-cosigner group list` and give more of the id."),
            E::Legacy { .. } => error_view(ErrorKind::DataFolder, "An older profile could not be imported", self.to_string(), "Nothing was deleted. Check the named file, or point --data-dir at the right profile."),
            _ => error_view(ErrorKind::DataFolder, "The profile cannot be used", self.to_string(), "Check that the data folder is yours, writable, and not used by another program."),
        }
    }
}

impl Explain for payment_form::PaymentFormError {
    fn view(&self) -> ErrorView {
        error_view(
            ErrorKind::InvalidPayment,
            "This payment cannot be made",
            self.to_string(),
            "Correct the field named above.",
        )
    }
}

impl Explain for group_form::GroupFormError {
    fn view(&self) -> ErrorView {
        error_view(
            ErrorKind::InvalidGroup,
            "This group cannot be created",
            self.to_string(),
            "Correct the field named above; every member's key is 66 hex digits starting 02 or 03.",
        )
    }
}

impl Explain for group_wallet::GroupWalletError {
    fn view(&self) -> ErrorView {
        use group_wallet::GroupWalletError as E;
        use wallet::PaymentError as P;
        match self {
            E::Profile(e) => e.view(),
            E::ChainUnreachable(_) | E::NoChain => error_view(ErrorKind::ChainUnreachable, "The chain cannot be reached", self.to_string(), "Check the chain backends (--chain or the settings) and that the node runs; balances shown are the last known."),
            E::Payment(P::Insufficient { .. }) => error_view(ErrorKind::NotEnoughFunds, "Not enough funds", self.to_string(), "Send less, lower the fee rate, or wait for unconfirmed coins (or allow them)."),
            E::Payment(_) | E::Recipient { .. } => error_view(ErrorKind::InvalidPayment, "This payment cannot be made", self.to_string(), "Correct the recipient, amount or fee rate named above."),
            E::Store(_) | E::Group(_) => error_view(ErrorKind::Internal, "The group's data cannot be read", self.to_string(), "The database may be damaged; restore the profile from a backup."),
        }
    }
}

impl Explain for proposals::ProposeError {
    fn view(&self) -> ErrorView {
        use proposals::ProposeError as E;
        match self {
            E::Wallet(e) => e.view(),
            E::Upgrade(_) => error_view(
                ErrorKind::UpgradeWindow,
                "Too close to a network upgrade",
                self.to_string(),
                "Give the proposal a shorter lifetime (--expires), or propose after the upgrade.",
            ),
            E::Offline(runtime::offline::OfflineError::Busy(_)) => error_view(
                ErrorKind::DataFolder,
                "This profile is open in the app or a node",
                self.to_string(),
                "Propose from the app (or stop it first): two session engines must not share one profile.",
            ),
            E::Expiry(_) => error_view(
                ErrorKind::InvalidPayment,
                "That lifetime cannot be used",
                self.to_string(),
                "Give --expires in minutes, from 1 to 10080.",
            ),
            E::UnknownSession(_) | E::NotSigned(_) => error_view(
                ErrorKind::UnknownSession,
                "No such signed session",
                self.to_string(),
                "List the sessions with `lotus-cosigner session list`.",
            ),
            _ => error_view(
                ErrorKind::Internal,
                "The proposal could not be made",
                self.to_string(),
                "Try again; if it persists, the profile's database may be damaged.",
            ),
        }
    }
}

impl Explain for session_files::SessionFileError {
    fn view(&self) -> ErrorView {
        use session_files::SessionFileError as E;
        match self {
            E::NotASessionFile(_) => error_view(ErrorKind::InvalidFile, "Not a session file", self.to_string(), "Use a file written by `lotus-cosigner session export`."),
            E::UnknownGroup(_) => error_view(ErrorKind::UnknownGroup, "Not a member of that group here", self.to_string(), "Accept the group's invite in this profile first (`lotus-cosigner group accept`)."),
            E::UnknownSession(_) => error_view(ErrorKind::UnknownSession, "No such session", self.to_string(), "List the sessions with `lotus-cosigner session list`."),
            E::Offline(runtime::offline::OfflineError::Busy(_)) => error_view(ErrorKind::DataFolder, "This profile is open in the app or a node", self.to_string(), "Import it in the app (or stop it first): two session engines must not share one profile."),
            E::Refused(_) | E::NoReview => error_view(ErrorKind::ProposalRefused, "The proposal in the file was not accepted", self.to_string(), "It may be expired, altered, or not for this group; ask the proposer for a fresh export."),
            _ => error_view(ErrorKind::Internal, "The session file could not be imported", self.to_string(), "Try again; if it persists, the profile's database may be damaged."),
        }
    }
}

impl Explain for runtime::RuntimeError {
    fn view(&self) -> ErrorView {
        use runtime::RuntimeError as E;
        match self {
            E::InputsRefused(_) => error_view(
                ErrorKind::ProposalRefused,
                "This proposal spends coins the group does not have",
                self.to_string(),
                "Reject it and ask the proposer to propose again from the group's current coins.",
            ),
            E::InputsUnchecked(_) => error_view(
                ErrorKind::ChainUnreachable,
                "The proposal's coins could not be checked",
                self.to_string(),
                "Check the chain backends, then approve again.",
            ),
            E::NotInvited(_) => error_view(
                ErrorKind::UnknownGroup,
                "This invite is not for you",
                self.to_string(),
                "Ask for an invite that lists your public key.",
            ),
            E::Node(protocol::node::NodeError::Session(
                protocol::session::SessionError::DigestMismatch,
            )) => error_view(
                ErrorKind::ProposalRefused,
                "The proposal changed since you reviewed it",
                self.to_string(),
                "Open the session again and review what it shows now.",
            ),
            E::Node(protocol::node::NodeError::UnknownSession) => error_view(
                ErrorKind::UnknownSession,
                "No such session",
                self.to_string(),
                "Pick a session from the list.",
            ),
            E::Node(_) => error_view(
                ErrorKind::ProposalRefused,
                "The session refused that",
                self.to_string(),
                "Open the session again; it says what it waits for.",
            ),
            E::Stopped | E::Thread(_) => error_view(
                ErrorKind::Internal,
                "The session engine has stopped",
                self.to_string(),
                "Restart the app; sessions resume from the database.",
            ),
            E::Store(_) | E::Group(_) => error_view(
                ErrorKind::Internal,
                "The session database refused a step",
                self.to_string(),
                "Nothing unsafe was sent. Check the disk and restart the app.",
            ),
        }
    }
}

/// An error as the UI shows it: what happened and what to do next. Never a stack trace,
/// never secret material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize, TS)]
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
            Self::Identity(IdentityError::KeyStore(e)) => return e.view(),
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
            Self::Identity(IdentityError::KeyInGroups { .. }) => (
                ErrorKind::RestoreRefused,
                "This profile already belongs to another key",
                "Nothing was changed. To use the restored key as well, start Lotus Cosigner with \
                 another data folder (LOTUS_COSIGNER_DATA_DIR) and restore it there."
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

pub(crate) fn open_identity(config: &EngineConfig) -> Result<IdentityView, EngineError> {
    let dir = DataDir::open(config.data_dir.clone())?;
    let settings = Settings::load_or_init(&dir.settings_file())?;
    let mut profile = profile::Profile::open(Some(dir.path().to_owned()))?;
    let (record, origin) = match &config.key {
        Some(custody) => identity::adopt(custody.public_key(), profile.store_mut(), unix_now_ms())?,
        None => {
            let keys = KeyStore::new(config.keychain.clone());
            keys.self_test()?;
            identity::load_or_create(&keys, profile.store_mut(), unix_now_ms())?
        }
    };
    let mut view = identity::view(&record, settings.network, dir.path());
    if let Some(custody) = &config.key {
        view.key_store = custody.location().to_owned();
    }
    let how = match origin {
        Origin::Created => "created a new signer key",
        Origin::Loaded => "loaded the signer key",
        Origin::Adopted if config.key.is_some() => "recorded the key file's signer key",
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

pub(crate) fn unix_now_ms() -> u64 {
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
        super::views::SessionView::export_all(&cfg)?;
        super::views::Change::export_all(&cfg)?;
        super::views::ChainStatusView::export_all(&cfg)?;
        super::views::AuditView::export_all(&cfg)?;
        super::views::ReputationView::export_all(&cfg)?;
        super::recovery::RecoveryPhraseView::export_all(&cfg)?;
        super::recovery::BackupAnswer::export_all(&cfg)?;
        super::group_form::CreateGroupRequest::export_all(&cfg)?;
        super::payment_form::PaymentForm::export_all(&cfg)?;
        super::group_backup::SavedFileView::export_all(&cfg)?;
        super::views::NetworkView::export_all(&cfg)?;
        super::views::SettingsView::export_all(&cfg)?;
        super::views::SettingsForm::export_all(&cfg)?;
        super::views::ChainTestView::export_all(&cfg)?;
        super::views::DemoView::export_all(&cfg)?;
        super::app::EvidenceView::export_all(&cfg)?;
        super::app::TransactionView::export_all(&cfg)?;
        super::app::AuditEntryView::export_all(&cfg)?;
        Ok(())
    }
}
