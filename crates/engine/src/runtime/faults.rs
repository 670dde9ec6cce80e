//! Test-only misbehaviour of a whole node, for cross-process tests that need a real process to
//! fail in one particular way (`lotus-cosigner node --test-fault NAME`). The app never sets
//! one; a node that runs with one says so loudly in its log.

use std::sync::Arc;

use lotus::secp256k1::PublicKey;
use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;
use protocol::envelope::Envelope;
use tokio::sync::broadcast;

use super::chain::{ChainLink, InputsCheck, LinkError};
use super::transport::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestFault {
    /// Never broadcasts a signed transaction (a coordinator that dies after the partial
    /// signatures): only backups can finish the session.
    SilentCoordinator,
    /// Sends every envelope followed by a burst of forged copies: broken signatures, and
    /// copies claiming to come from the other members (impersonation).
    Flood,
}

/// Forged copies a flooding node sends after each real envelope.
const FLOOD_COPIES: usize = 64;

impl std::str::FromStr for TestFault {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "silent-coordinator" => Ok(Self::SilentCoordinator),
            "flood" => Ok(Self::Flood),
            other => Err(format!(
                "unknown test fault '{other}' (silent-coordinator, flood)"
            )),
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

/// The transport of a flooding test node ([`TestFault::Flood`]).
pub struct ByzantineTransport {
    pub inner: Arc<dyn Transport>,
    pub key: PrivateKey,
    pub fault: TestFault,
}

impl ByzantineTransport {
    fn flood(&self, to: &[PublicKey], bytes: &[u8]) {
        let Ok(envelope) = Envelope::decode(bytes, 1 << 20) else {
            return;
        };
        for copy in 0..FLOOD_COPIES {
            let mut forged = envelope.clone();
            forged.header.timestamp_ms = forged.header.timestamp_ms.wrapping_add(copy as u64 + 1);
            // Every other copy claims another member as its sender.
            if copy % 2 == 1 {
                forged.header.sender = forged.header.sender.wrapping_add(1);
            }
            let mut bytes = forged.encode();
            let last = bytes.len() - 1;
            bytes[last] ^= 0x55;
            self.inner.send(to, &bytes);
        }
    }
}

impl Transport for ByzantineTransport {
    fn send(&self, to: &[PublicKey], bytes: &[u8]) {
        match self.fault {
            TestFault::Flood => {
                self.inner.send(to, bytes);
                self.flood(to, bytes);
            }
            TestFault::SilentCoordinator => self.inner.send(to, bytes),
        }
    }
}
