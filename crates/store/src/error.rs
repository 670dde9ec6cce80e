//! One error type for the store. Each variant says what the caller can do about it: the open
//! errors name the file and leave it untouched, the nonce errors abort the session, the
//! transition errors are engine bugs caught before a message leaves.

use std::path::PathBuf;

use crate::audit::ChainBreak;
use crate::nonce_registry::{AttemptState, NonceSlot};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not an SQLite file at all (random bytes, truncated, encrypted). Never replaced.
    #[error("{} is not a Lotus Cosigner database (not an SQLite file); it was left untouched", path.display())]
    NotADatabase { path: PathBuf },
    /// An SQLite file of another application. Never migrated over.
    #[error(
        "{} is an SQLite database of another application (application_id {application_id:#010x}, tables: {}); it was left untouched",
        path.display(), tables.join(", ")
    )]
    ForeignDatabase {
        path: PathBuf,
        application_id: i32,
        tables: Vec<String>,
    },
    /// Ours (or an SQLite file) but damaged: `PRAGMA quick_check` or SQLite itself says so.
    #[error("{} is damaged ({detail}); it was left untouched — restore it from a backup", path.display())]
    Corrupt { path: PathBuf, detail: String },
    #[error("{} has schema version {found}; this build understands up to {known} — use a newer Lotus Cosigner", path.display())]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    /// The file system refused WAL mode (e.g. a network share without shared memory).
    #[error("{} cannot use WAL journaling (SQLite stayed in {mode}); put the profile on a local disk", path.display())]
    JournalMode { path: PathBuf, mode: String },
    #[error("migration to schema version {version} failed (nothing was changed): {source}")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),

    /// CRITICAL: this public nonce was already recorded as released. The session must abort.
    #[error(
        "nonce reuse: public nonce {} was already released for session {} attempt {} input {}",
        hex::encode(nonce_hash), hex::encode(first.session_id), first.attempt, first.input
    )]
    NonceReuse {
        nonce_hash: [u8; 32],
        first: NonceSlot,
        second: NonceSlot,
    },
    /// A second, different nonce for one (session, attempt, input): the engine lost track.
    #[error(
        "session {} attempt {} input {} already released a different nonce",
        hex::encode(slot.session_id), slot.attempt, slot.input
    )]
    NonceSlotTaken {
        slot: NonceSlot,
        existing_hash: [u8; 32],
    },
    #[error(
        "attempt {attempt} of session {}: cannot go from {} to {to}",
        hex::encode(session_id), from.map_or("nothing", AttemptState::as_str)
    )]
    InvalidTransition {
        session_id: [u8; 32],
        attempt: u32,
        from: Option<AttemptState>,
        to: AttemptState,
    },
    /// Attempts only move forward; a new one at or below the latest is a resumed old attempt.
    #[error(
        "session {}: attempt {attempt} is not above the latest attempt {latest}",
        hex::encode(session_id)
    )]
    StaleAttempt {
        session_id: [u8; 32],
        attempt: u32,
        latest: u32,
    },

    #[error("a stored message does not decode as an envelope: {0}")]
    Envelope(protocol::wire::DecodeError),
    #[error("stored evidence does not decode: {0}")]
    Evidence(protocol::wire::DecodeError),
    #[error(
        "the envelope is for session {} but was filed under session {}",
        hex::encode(header),
        hex::encode(filed)
    )]
    MessageSessionMismatch { filed: [u8; 32], header: [u8; 32] },
    #[error("unknown session {}", hex::encode(.0))]
    UnknownSession([u8; 32]),
    #[error("session {} was already approved for a different review digest", hex::encode(.0))]
    ApprovalConflict([u8; 32]),
    #[error("session {} already holds a different signed transaction", hex::encode(.0))]
    SignedTxConflict([u8; 32]),
    /// Signing is refused until the user's approval is durable.
    #[error("session {} has no recorded approval: refusing to sign", hex::encode(.0))]
    NotApproved([u8; 32]),
    #[error(
        "session {}: the approved digest is not the digest of the proposal held for it: \
         refusing to sign",
        hex::encode(.0)
    )]
    ApprovalMismatch([u8; 32]),
    #[error("session {} has ended (rejected or closed): refusing to sign", hex::encode(.0))]
    SessionEnded([u8; 32]),
    #[error("session {} already holds a different accepted proposal", hex::encode(.0))]
    ProposalConflict([u8; 32]),
    #[error("session {}: only a proposal envelope can open a session", hex::encode(.0))]
    NotAProposal([u8; 32]),
    #[error("member {0} is not in the group")]
    UnknownMember(u16),

    #[error("audit chain broken: {0}")]
    AuditBroken(ChainBreak),
    #[error("stored row is unreadable ({table} {key}): {detail}")]
    CorruptRow {
        table: &'static str,
        key: String,
        detail: String,
    },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("export: {0}")]
    Export(std::io::Error),
}

impl Error {
    /// Whether the engine must abort the session for good (DESIGN §4).
    pub fn is_nonce_conflict(&self) -> bool {
        matches!(
            self,
            Error::NonceReuse { .. } | Error::NonceSlotTaken { .. }
        )
    }
}
