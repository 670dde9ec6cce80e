//! The session runtime on the libp2p network: envelopes go out through [`net::Network`]; what
//! arrives is handed to the core with a verdict channel, and the core's verdict goes back to
//! the network (gossip validation, the delivering peer's budget).

use lotus::secp256k1::PublicKey;
use protocol::node::Peer;
use tokio::sync::{mpsc, oneshot};

use super::transport::{Delivery, Transport, INBOX_CAPACITY};

pub struct NetTransport(pub net::Network);

impl Transport for NetTransport {
    fn send(&self, to: &[PublicKey], bytes: &[u8]) {
        self.0.send(to, bytes);
    }
}

/// The protocol's connection id for a libp2p peer (its budgets are kept per id).
pub fn peer_of(peer: &net::PeerIdType) -> Peer {
    let hash = lotus::hash::sha256(&peer.to_bytes());
    Peer(u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")))
}

/// Feeds the network's deliveries to the core's inbox, and the core's verdicts back.
pub fn inbox_from(mut inbound: mpsc::Receiver<net::Inbound>) -> mpsc::Receiver<Delivery> {
    let (deliver, inbox) = mpsc::channel(INBOX_CAPACITY);
    tokio::spawn(async move {
        while let Some(message) = inbound.recv().await {
            let (verdict, answer) = oneshot::channel();
            let delivery = Delivery {
                from: peer_of(&message.peer),
                bytes: message.bytes,
                verdict: Some(verdict),
            };
            if deliver.try_send(delivery).is_err() {
                let _ = message.verdict.send(net::Verdict::Ignore);
                continue;
            }
            let reply = message.verdict;
            tokio::spawn(async move {
                let verdict = match answer.await {
                    Ok(Ok(())) => net::Verdict::Accept,
                    Ok(Err(rejection)) if rejection.is_invalid() => net::Verdict::Reject,
                    _ => net::Verdict::Ignore,
                };
                let _ = reply.send(verdict);
            });
        }
    });
    inbox
}
