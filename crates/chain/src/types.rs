//! What every backend answers, and how it fails.

use async_trait::async_trait;
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxOut};

/// The best block as a backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tip {
    pub height: u32,
    /// Block hash in display (reversed) hex, as nodes print it.
    pub hash: String,
    /// Median time past of the tip, in Unix seconds: what locktime and upgrades are judged by.
    pub median_time: u64,
}

/// An unspent output paying a watched script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utxo {
    pub outpoint: OutPoint,
    pub output: TxOut,
    /// The block that holds it; `None` while it is only in the mempool.
    pub height: Option<u32>,
}

/// Where a transaction stands on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    /// Neither in the mempool nor in a block, and its inputs are still unspent.
    Unknown,
    Mempool,
    /// In the block at `height`; `depth` 1 means it is in the tip.
    Confirmed {
        height: u32,
        depth: u32,
    },
    /// One of its inputs was spent by another transaction: it can never confirm.
    Conflicted,
}

impl TxStatus {
    /// Whether the backend has seen it at all (mempool or block): what cancels failover slots.
    pub fn is_seen(self) -> bool {
        matches!(self, Self::Mempool | Self::Confirmed { .. })
    }
}

/// A dry run's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Acceptance {
    Accepted,
    /// The node's own reason, e.g. `dust` or `txn-mempool-conflict`.
    Refused(String),
    /// The backend has no dry run (old nodes); broadcast will tell.
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("{backend} cannot be reached: {detail}")]
    Unreachable { backend: String, detail: String },
    #[error("{backend} refused the login (check the user, password or cookie file)")]
    Unauthorized { backend: String },
    #[error("{backend} refused the transaction: {reason}")]
    Refused { backend: String, reason: String },
    #[error("{backend} answered something unexpected: {detail}")]
    Protocol { backend: String, detail: String },
}

impl ChainError {
    /// The node's refusal reason, if this is a refusal.
    pub fn refusal(&self) -> Option<&str> {
        match self {
            Self::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// A source of chain data and a way onto the chain. Every call is a fresh question: callers
/// re-ask after a missed notification instead of trusting one, so nothing is lost.
#[async_trait]
pub trait ChainBackend: Send + Sync {
    /// Who this is, for "which backend said what" (never includes a password).
    fn label(&self) -> String;
    async fn tip(&self) -> Result<Tip, ChainError>;
    /// Unspent outputs paying `script`, confirmed and in the mempool, minus those the mempool
    /// already spends.
    async fn unspent(&self, script: &Script) -> Result<Vec<Utxo>, ChainError>;
    /// The whole transaction is passed so that a backend without a transaction index can still
    /// tell "conflicted" (an input spent elsewhere) from "unknown".
    async fn status(&self, tx: &Transaction) -> Result<TxStatus, ChainError>;
    async fn test_accept(&self, tx: &Transaction) -> Result<Acceptance, ChainError>;
    /// Dry-runs first where the backend can, then broadcasts. Broadcasting a transaction the
    /// backend already has is a success (re-broadcast is idempotent).
    async fn broadcast(&self, tx: &Transaction) -> Result<TxId, ChainError>;
    /// A channel that receives `()` whenever something about `scripts` may have changed (and
    /// once per (re)connection), if the backend can push news; `None` if it can only be asked.
    /// A nudge carries no data: the caller re-asks, so a lost one only delays news.
    fn notifications(&self, _scripts: Vec<Script>) -> Option<tokio::sync::mpsc::Receiver<()>> {
        None
    }
}
