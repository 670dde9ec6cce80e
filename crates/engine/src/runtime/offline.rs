//! The runtime's links when this process has no network and no chain (a one-shot command such
//! as `session propose`): what it would send stays in the store, and the co-signers pull it
//! when a node of this profile is online (Protocol v2's pull of missing messages).

use lotus::secp256k1::PublicKey;
use lotus::tx::Transaction;
use tokio::sync::broadcast;

use super::chain::{ChainLink, LinkError};
use super::transport::Transport;

#[derive(Clone, Copy, Debug, Default)]
pub struct Offline;

impl Transport for Offline {
    fn send(&self, _to: &[PublicKey], _bytes: &[u8]) {}
}

impl ChainLink for Offline {
    fn submit(&self, _tx: &Transaction) -> Result<(), LinkError> {
        Err(LinkError::Unreachable(
            "this command runs without a chain backend; the node broadcasts".into(),
        ))
    }

    fn subscribe(&self) -> broadcast::Receiver<[u8; 32]> {
        broadcast::channel(1).1
    }
}
