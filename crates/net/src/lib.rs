//! Lotus Cosigner's peer-to-peer network. Co-signers find each other through signed presence
//! records (DHT, bootstrap and relay nodes, and members they already reach), prove which signer
//! a network peer speaks for with a hello, and carry the session layer's signed envelopes two
//! ways: direct request-response with an acknowledgement, and gossip on the group's topic (so a
//! member can relay for two that cannot reach each other). The session layer judges every
//! message; its verdict drives gossip validation and the sending peer's budget.

pub mod behaviour;
pub mod directory;
pub mod identity;
pub mod policy;
mod service;
pub mod wire;

use std::path::PathBuf;

pub use libp2p::{Multiaddr, PeerId};
use lotus::secp256k1::PublicKey;
use protocol::group::GroupDescriptor;
use tokio::sync::{mpsc, oneshot};

pub use libp2p::PeerId as PeerIdType;
pub use policy::{IpLimits, PeerBudgetConfig};
pub use service::{spawn, PROLOGUE};

#[derive(Debug, Clone)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    /// Trusted bootstrap (and relay) nodes, dialled on start and kept.
    pub bootstrap: Vec<Multiaddr>,
    /// Serve the DHT and relay for others (a headless, reachable node).
    pub relay_server: bool,
    /// Ask the router for a port mapping.
    pub upnp: bool,
    /// Where members' last known addresses are kept between runs (re-dialled on start).
    pub anchors_file: Option<PathBuf>,
    pub max_connections: u32,
    pub ip_limits: IpLimits,
    pub budgets: PeerBudgetConfig,
    /// How long an idle connection stays open: above the longest round.
    pub idle_timeout: std::time::Duration,
}

impl Default for NetConfig {
    fn default() -> Self {
        Self {
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".parse().expect("valid"),
                "/ip4/0.0.0.0/udp/0/quic-v1".parse().expect("valid"),
            ],
            bootstrap: Vec::new(),
            relay_server: false,
            upnp: true,
            anchors_file: None,
            max_connections: 500,
            ip_limits: IpLimits::default(),
            budgets: PeerBudgetConfig::default(),
            idle_timeout: std::time::Duration::from_secs(3 * 3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("cannot build the network stack: {0}")]
    Build(String),
    #[error("cannot listen on {address}: {reason}")]
    Listen { address: Multiaddr, reason: String },
    #[error("the network task has stopped")]
    Stopped,
}

/// The session layer's judgement of a delivered message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid and new.
    Accept,
    /// Invalid in itself (bad signature, malformed, not a member): whoever relayed it is charged.
    Reject,
    /// Not useful (duplicate, late, unknown session) but not misbehaviour.
    Ignore,
}

/// A message for the session layer, from the authenticated network peer that delivered it.
#[derive(Debug)]
pub struct Inbound {
    pub peer: PeerId,
    pub bytes: Vec<u8>,
    /// Send the verdict here (dropping it counts as Ignore).
    pub verdict: oneshot::Sender<Verdict>,
}

/// Things the engine acts on.
#[derive(Debug, Clone)]
pub enum NetEvent {
    /// A co-signer became reachable (it proved its key): pull what sessions missed.
    MemberReachable(PublicKey),
    /// A member's signed acceptance of a group arrived (verify it against the group).
    Acceptance { bytes: Vec<u8> },
}

/// A peer as `lotus-cosigner peers` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PeerInfo {
    pub peer_id: String,
    /// The signer key (hex) this peer proved, if it did.
    pub signer: Option<String>,
    pub member: bool,
    pub address: String,
    /// direct, relayed or hole-punched
    pub path: &'static str,
}

/// Why text is not a peer's address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAddressError {
    #[error("'{0}' is not a multiaddr (e.g. /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo…)")]
    NotAMultiaddr(String),
    #[error("'{0}' must end in /p2p/<peer id> (the node's `peer-id` line)")]
    NoPeerId(String),
}

/// A peer's address as people write it: a multiaddr ending in `/p2p/<peer id>` (a node's
/// `listening` and `peer-id` lines joined). Bootstrap nodes, from the command line or the
/// settings, and the nodes a group names are all given this way.
pub fn peer_address(text: &str) -> Result<Multiaddr, PeerAddressError> {
    let address: Multiaddr = text
        .parse()
        .map_err(|_| PeerAddressError::NotAMultiaddr(text.to_owned()))?;
    match address.iter().last() {
        Some(libp2p::multiaddr::Protocol::P2p(_)) => Ok(address),
        _ => Err(PeerAddressError::NoPeerId(text.to_owned())),
    }
}

/// Health and security counters, for `peers`, the Network screen and monitoring.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct NetStatus {
    pub peer_id: String,
    pub listening: Vec<String>,
    pub connected_peers: usize,
    pub members_reachable: usize,
    pub members_known: usize,
    pub nat: String,
    /// Messages refused, by reason.
    pub rejected: std::collections::BTreeMap<String, u64>,
    /// Messages the session layer set aside without blame (repeats, stale, over a budget).
    pub ignored: u64,
    pub rate_limited: u64,
    pub connections_refused: u64,
    pub banned_peers: u64,
    /// Possible eclipse or isolation, in words.
    pub warnings: Vec<String>,
}

pub(crate) enum Command {
    SetGroups(Vec<GroupDescriptor>),
    Send { to: Vec<PublicKey>, bytes: Vec<u8> },
    SendAcceptance { to: Vec<PublicKey>, bytes: Vec<u8> },
    Listening(oneshot::Sender<Vec<Multiaddr>>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Status(oneshot::Sender<NetStatus>),
    Dial(Multiaddr),
}

/// The handle to the network task: cheap to clone. Sends never block: a full command queue
/// drops (the session layer resends and pulls).
#[derive(Clone)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl Network {
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The groups whose members this node looks for and whose topics it joins.
    pub fn set_groups(&self, groups: Vec<GroupDescriptor>) {
        let _ = self.commands.try_send(Command::SetGroups(groups));
    }

    /// Delivers a signed envelope to these signers (best effort).
    pub fn send(&self, to: &[PublicKey], bytes: &[u8]) {
        if self
            .commands
            .try_send(Command::Send {
                to: to.to_vec(),
                bytes: bytes.to_vec(),
            })
            .is_err()
        {
            tracing::debug!("network queue full: an envelope was dropped (it will be resent)");
        }
    }

    /// Delivers a signed group acceptance to these signers.
    pub fn send_acceptance(&self, to: &[PublicKey], bytes: Vec<u8>) {
        let _ = self.commands.try_send(Command::SendAcceptance {
            to: to.to_vec(),
            bytes,
        });
    }

    pub fn dial(&self, address: Multiaddr) {
        let _ = self.commands.try_send(Command::Dial(address));
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| NetError::Stopped)?;
        answer.await.map_err(|_| NetError::Stopped)
    }

    /// The addresses this node listens on, once every listener has started.
    pub async fn listening(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::Listening).await
    }

    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetError> {
        self.ask(Command::Peers).await
    }

    pub async fn status(&self) -> Result<NetStatus, NetError> {
        self.ask(Command::Status).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_address_needs_a_multiaddr_and_a_peer_id() {
        let id = "12D3KooWHJkLhGrmaat5XNArhQP4ZhGVxL5ZGoPHipQsrHHuQnZW";
        let good = format!("/ip4/192.0.2.7/tcp/4001/p2p/{id}");
        assert_eq!(peer_address(&good).unwrap().to_string(), good);
        assert_eq!(
            peer_address("/ip4/192.0.2.7/tcp/4001"),
            Err(PeerAddressError::NoPeerId("/ip4/192.0.2.7/tcp/4001".into()))
        );
        assert_eq!(
            peer_address("192.0.2.7:4001"),
            Err(PeerAddressError::NotAMultiaddr("192.0.2.7:4001".into()))
        );
    }
}
