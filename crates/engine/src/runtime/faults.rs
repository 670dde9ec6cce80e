//! Test-only misbehaviour of a whole node, for cross-process tests that need a real process to
//! fail in one particular way (`lotus-cosigner node --test-fault NAME`). The app never sets
//! one; a node that runs with one says so loudly in its log.

use std::sync::Arc;

use lotus::tx::{Transaction, TxOut};
use tokio::sync::broadcast;

use super::chain::{ChainLink, InputsCheck, LinkError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFault {
    /// Never broadcasts a signed transaction (a coordinator that dies after the partial
    /// signatures): only backups can finish the session.
    SilentCoordinator,
}

impl std::str::FromStr for TestFault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "silent-coordinator" => Ok(Self::SilentCoordinator),
            other => Err(format!("unknown test fault '{other}' (silent-coordinator)")),
        }
    }
}

/// The chain link of a [`TestFault::SilentCoordinator`]: watches, never submits.
pub struct SilentChain(pub Arc<dyn ChainLink>);

impl ChainLink for SilentChain {
    fn submit(&self, tx: &Transaction) -> Result<(), LinkError> {
        tracing::warn!("test fault: not broadcasting a signed transaction");
        self.0.watch(tx)
    }

    fn watch(&self, tx: &Transaction) -> Result<(), LinkError> {
        self.0.watch(tx)
    }

    fn check_inputs(
        &self,
        inputs: Vec<(lotus::tx::OutPoint, TxOut)>,
    ) -> Option<tokio::sync::oneshot::Receiver<InputsCheck>> {
        self.0.check_inputs(inputs)
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        self.0.subscribe()
    }
}
