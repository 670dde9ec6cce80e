//! The session core's link to the chain: hand over a signed transaction (never blocking), and
//! hear which transactions are seen. [`ChainTask`] is the real one: an async task over
//! `chain::multi::Chains` (lotusd RPC, the devnet, later Chronik) that broadcasts to every
//! backend, polls, announces "seen" once the backends' quorum reports it, and re-broadcasts
//! what is not (after a failed broadcast or a reorg). `InProcessChain` verifies signatures in
//! memory for the deterministic tests that run on tokio's paused clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lotus::tx::{Transaction, TxOut};
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the node refused the transaction: {0}")]
    Refused(String),
    #[error("the chain backend is unreachable: {0}")]
    Unreachable(String),
}

/// What this member's chain backends say about a proposal's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputsCheck {
    /// Every input is an unspent output of the group holding the amount claimed.
    Verified,
    /// Why the proposal cannot be approved, in words for people.
    Refused(String),
    /// No backend answered; approving waits until one does.
    Unreachable(String),
}

pub trait ChainLink: Send + Sync + 'static {
    /// Hands `tx` over for broadcasting; returns at once.
    fn submit(&self, tx: &Transaction) -> Result<(), LinkError>;
    /// Watches a signed transaction this member has not broadcast (yet): a backup coordinator
    /// must hear that it was seen to cancel its own slot.
    fn watch(&self, _tx: &Transaction) -> Result<(), LinkError> {
        Ok(())
    }
    /// Checks that `inputs` are unspent outputs holding the amounts a proposal claims, on this
    /// member's own chain backends; `None` when there is no chain to ask (offline review).
    fn check_inputs(
        &self,
        _inputs: Vec<(lotus::tx::OutPoint, TxOut)>,
    ) -> Option<tokio::sync::oneshot::Receiver<InputsCheck>> {
        None
    }
    /// Transaction ids as they are seen (mempool or block), for failover cancellation.
    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]>;
}

/// A shared in-memory chain: knows the outputs it funded, verifies every signature.
#[derive(Clone)]
pub struct InProcessChain {
    inner: Arc<Mutex<ChainState>>,
    seen: broadcast::Sender<[u8; 32]>,
}

#[derive(Default)]
struct ChainState {
    /// txid → outputs that transaction spends (registered by whoever funds the test).
    spends: BTreeMap<[u8; 32], Vec<TxOut>>,
    confirmed: BTreeMap<[u8; 32], Transaction>,
}

impl Default for InProcessChain {
    fn default() -> Self {
        Self::new()
    }
}

impl InProcessChain {
    pub fn new() -> Self {
        Self {
            inner: Arc::default(),
            seen: broadcast::channel(1024).0,
        }
    }

    /// Tells the chain which outputs a (future) transaction spends, so it can verify it.
    pub fn expect_spend(&self, txid: [u8; 32], spent_outputs: Vec<TxOut>) {
        self.inner
            .lock()
            .expect("chain lock")
            .spends
            .insert(txid, spent_outputs);
    }

    pub fn confirmed(&self, txid: &[u8; 32]) -> Option<Transaction> {
        self.inner
            .lock()
            .expect("chain lock")
            .confirmed
            .get(txid)
            .cloned()
    }
}

impl ChainLink for InProcessChain {
    fn submit(&self, tx: &Transaction) -> Result<(), LinkError> {
        let txid = tx.txid().0;
        let mut state = self.inner.lock().expect("chain lock");
        let spent = state
            .spends
            .get(&txid)
            .cloned()
            .ok_or_else(|| LinkError::Refused("spends unknown outputs".into()))?;
        lotus::spend::verify_transaction(tx, &spent)
            .map_err(|e| LinkError::Refused(e.to_string()))?;
        if state.confirmed.insert(txid, tx.clone()).is_none() {
            let _ = self.seen.send(txid);
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        self.seen.subscribe()
    }
}
