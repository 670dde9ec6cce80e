//! [`Input`]: everything that can happen to a [`Node`], and [`Node::handle`], the one entry
//! point every driver (the engine's session core, the simulator, the crash harness) uses. A
//! driver's whole job is: turn the world into inputs, hand them over with the time, the key and
//! the entropy, and carry out the outputs.

use lotus::tx::{Transaction, TxOut};
use lotus::PrivateKey;

use crate::failover::Millis;
use crate::gate::Rejection;
use crate::group::GroupId;
use crate::node::{Node, NodeError, Output, Peer};
use crate::Entropy;

/// Something that happened, for the node to act on.
#[derive(Debug, Clone)]
pub enum Input<'a> {
    /// Bytes from the network, delivered by transport peer `from`.
    Receive { bytes: &'a [u8], from: Peer },
    /// Time passed: resends, silence records, failover slots, expiry, nonce pools.
    Tick,
    /// Connectivity came back: pull what open sessions missed.
    Reconnected,
    /// Publish fresh nonce pools where they are missing, old or mostly named.
    RefreshPools,
    /// This person proposes a payment from `group`.
    Propose {
        group: GroupId,
        tx: Transaction,
        spent_outputs: Vec<TxOut>,
        expires_ms: Millis,
        /// Blame evidence the proposer attaches (reputation-aware election).
        evidence: Vec<Vec<u8>>,
    },
    /// This person approved exactly the review named by `digest` (already durable).
    Approve { session: [u8; 32], digest: [u8; 32] },
    /// This person rejected the proposal.
    Reject { session: [u8; 32], reason: &'a str },
    /// A chain backend (or a verified receipt) saw the transaction `txid`.
    BroadcastObserved { txid: [u8; 32] },
}

/// What handling an input produced besides its outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    Done,
    /// [`Input::Propose`] made this session.
    Proposed([u8; 32]),
    /// [`Input::Receive`] refused the bytes (counted in the node's rejection statistics).
    Refused(Rejection),
}

/// What a node needs besides the input: the time and the secrets it signs with.
pub struct Context<'a> {
    pub now: Millis,
    pub key: &'a PrivateKey,
    pub entropy: &'a mut dyn Entropy,
}

impl Node {
    /// Handles one input at `ctx.now`, appending what to do to `out`.
    pub fn handle(
        &mut self,
        input: Input<'_>,
        ctx: Context<'_>,
        out: &mut Vec<Output>,
    ) -> Result<Handled, NodeError> {
        let Context { now, key, entropy } = ctx;
        match input {
            Input::Receive { bytes, from } => {
                Ok(match self.receive(bytes, from, now, key, entropy, out) {
                    Ok(()) => Handled::Done,
                    Err(rejection) => Handled::Refused(rejection),
                })
            }
            Input::Tick => {
                self.tick(now, key, entropy, out);
                Ok(Handled::Done)
            }
            Input::Reconnected => {
                self.reconnected(now, key, entropy, out);
                Ok(Handled::Done)
            }
            Input::RefreshPools => {
                self.refresh_pools(now, key, entropy, out);
                Ok(Handled::Done)
            }
            Input::Propose {
                group,
                tx,
                spent_outputs,
                expires_ms,
                evidence,
            } => self
                .propose(
                    &group,
                    tx,
                    spent_outputs,
                    expires_ms,
                    evidence,
                    now,
                    key,
                    entropy,
                    out,
                )
                .map(Handled::Proposed),
            Input::Approve { session, digest } => self
                .approve(&session, &digest, now, key, entropy, out)
                .map(|()| Handled::Done),
            Input::Reject { session, reason } => self
                .reject(&session, reason, now, key, entropy, out)
                .map(|()| Handled::Done),
            Input::BroadcastObserved { txid } => {
                self.broadcast_observed(&txid, now, key, entropy, out);
                Ok(Handled::Done)
            }
        }
    }
}
