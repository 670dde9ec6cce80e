//! The chain as the runtime sees it: broadcast a finished transaction, hear about ones seen.
//! Chronik and lotusd RPC backends implement this later; `InProcessChain` is the local devnet
//! stand-in for tests and the demo (it checks every transaction like a node would).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use lotus::tx::{Transaction, TxOut};
use tokio::sync::broadcast;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("the node refused the transaction: {0}")]
    Refused(String),
    #[error("the chain backend is unreachable: {0}")]
    Unreachable(String),
}

pub trait ChainBackend: Send + Sync + 'static {
    fn broadcast(&self, tx: &Transaction) -> Result<(), ChainError>;
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

impl ChainBackend for InProcessChain {
    fn broadcast(&self, tx: &Transaction) -> Result<(), ChainError> {
        let txid = tx.txid().0;
        let mut state = self.inner.lock().expect("chain lock");
        let spent = state
            .spends
            .get(&txid)
            .cloned()
            .ok_or_else(|| ChainError::Refused("spends unknown outputs".into()))?;
        lotus::spend::verify_transaction(tx, &spent)
            .map_err(|e| ChainError::Refused(e.to_string()))?;
        if state.confirmed.insert(txid, tx.clone()).is_none() {
            let _ = self.seen.send(txid);
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        self.seen.subscribe()
    }
}
