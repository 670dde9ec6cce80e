//! What the checker explores: the honest members' durable stores and in-memory sessions, the
//! honest messages that exist, and the fault budgets spent so far.
//!
//! Everything is small and `Copy` where it can be, because every reachable state is hashed and
//! stored; the real types (envelopes, secret nonces, SQLite rows) are replaced by the few bits
//! the lifecycle rules look at.

/// Members 0 and 1 are honest; member 2 is Byzantine and also the proposer.
pub const MEMBERS: usize = 3;
pub const HONEST: [Member; 2] = [0, 1];
pub const BYZANTINE: Member = 2;

/// Room for attempt numbers: the model's `MAX_ATTEMPTS` plus the extra attempts the liveness
/// check may grant (see `properties`).
pub const ATTEMPT_SLOTS: usize = 6;

pub type Member = u8;
pub type Attempt = u8;

/// A public nonce, named by a small number. Honest members draw theirs from an RNG the model
/// does not trust (it may repeat an earlier draw, as after a VM snapshot restore); the
/// Byzantine member has two per attempt (`0` and `1`) so it can show different ones to
/// different members.
pub type NonceId = u8;

/// The two proposals the Byzantine proposer can sign for the one session id. A proposal stands
/// for its review digest: every round message binds one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proposal {
    P1,
    P2,
}

impl Proposal {
    pub const ALL: [Proposal; 2] = [Proposal::P1, Proposal::P2];

    pub fn bit(self) -> u8 {
        match self {
            Proposal::P1 => 1,
            Proposal::P2 => 2,
        }
    }
}

/// A signed message. Honest ones are kept in `World::sent` forever: a member resends what it
/// sent and anyone can pull a session's logged messages, so any of them may arrive at any time,
/// again and again, in any order (or never).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Msg {
    /// Only the Byzantine proposer sends these (injected straight to one member).
    Proposal { digest: Proposal },
    /// Round 1.
    Nonce {
        sender: Member,
        attempt: Attempt,
        digest: Proposal,
        id: NonceId,
    },
    /// Round 2: commits to the proposal digest and to the nonce message of every member it
    /// used (`view[m]` names member m's nonce). `valid` is whether the partial signature
    /// verifies against exactly those nonces; honest partials always do.
    Partial {
        sender: Member,
        attempt: Attempt,
        digest: Proposal,
        view: [NonceId; MEMBERS],
        valid: bool,
    },
    /// "I abandoned this attempt" (restart, failed persist, evidence).
    Abort { sender: Member, attempt: Attempt },
    /// The final signatures for the proposal: whoever holds them can finish.
    Completed { sender: Member, digest: Proposal },
}

impl Msg {
    pub fn sender(&self) -> Member {
        match *self {
            Msg::Proposal { .. } => BYZANTINE,
            Msg::Nonce { sender, .. }
            | Msg::Partial { sender, .. }
            | Msg::Abort { sender, .. }
            | Msg::Completed { sender, .. } => sender,
        }
    }
}

/// A set of messages, kept as a sorted vector: it stays small, and states are cloned and
/// hashed all the time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sent(Vec<Msg>);

impl Sent {
    pub fn insert(&mut self, msg: Msg) {
        if let Err(at) = self.0.binary_search(&msg) {
            self.0.insert(at, msg);
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Msg> {
        self.0.iter()
    }

    pub fn retain(&mut self, keep: impl FnMut(&Msg) -> bool) {
        self.0.retain(keep);
    }
}

impl<'a> IntoIterator for &'a Sent {
    type Item = &'a Msg;
    type IntoIter = std::slice::Iter<'a, Msg>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl FromIterator<Msg> for Sent {
    fn from_iter<I: IntoIterator<Item = Msg>>(msgs: I) -> Self {
        let mut msgs: Vec<Msg> = msgs.into_iter().collect();
        msgs.sort_unstable();
        msgs.dedup();
        Sent(msgs)
    }
}

/// An attempt's row in the used-nonce registry; it only moves forward.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Row {
    #[default]
    Unused,
    Released,
    Signing,
    Closed,
}

/// What survives a crash (the SQLite store of one honest member).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Store {
    /// The first proposal this member accepted for the session; never replaced.
    pub accepted: Option<Proposal>,
    /// The digest the user approved; first approval wins.
    pub approval: Option<Proposal>,
    /// Used-nonce registry: every nonce id ever committed (bit per id).
    pub used_ids: u16,
    /// Per attempt: released → signing → closed.
    pub attempts: [Row; ATTEMPT_SLOTS],
    /// The finished transaction is stored.
    pub signed: bool,
    /// The session ended without a signature (attempts exhausted).
    pub closed: bool,
    /// Members this member recorded verified evidence against (bit per member).
    pub blamed: u8,
}

/// Where this member is in round 1 of its current attempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Round1 {
    /// No nonce drawn yet in this attempt.
    #[default]
    Pending,
    /// Mutation `NoncesSentBeforeCommit` only: the nonce left, its row is not committed yet.
    Unsaved(NonceId),
    /// Row committed and nonce sent; the secret nonce is held in memory.
    Released(NonceId),
    /// The partial signature left; the secret nonce was consumed.
    Signed,
}

/// What a crash loses: the running session of one honest member.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Memory {
    pub attempt: Attempt,
    pub round1: Round1,
    /// The nonce message filed for each member in this attempt.
    pub nonces: [Option<NonceId>; MEMBERS],
    /// Members whose partial is filed (bit per member); a filed partial's view equals `nonces`.
    pub partials: u8,
    /// Proposals the user can see and approve (bit per proposal).
    pub seen: u8,
}

/// Bookkeeping the real system does not have, kept only to state property 2.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ghost {
    /// Nonce ids that left this member (bit per id).
    pub released: u16,
    /// Some nonce id left this member twice (in two nonce messages).
    pub double_release: bool,
    /// A partial left for a digest other than the stored approval's (or with none stored).
    pub unapproved_partial: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub store: Store,
    pub mem: Memory,
    pub ghost: Ghost,
}

impl Node {
    /// A session exists (a proposal was accepted) and has not ended.
    pub fn running(&self) -> bool {
        self.store.accepted.is_some() && !self.store.signed && !self.store.closed
    }
}

/// Faults used so far (each has a budget in `Config`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Faults {
    pub crashes: u8,
    pub persist_failures: u8,
    pub rng_repeats: u8,
    pub byzantine_aborts: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct World {
    /// Indexed by member (0 and 1).
    pub nodes: [Node; 2],
    /// Every honest message sent, plus the Byzantine abort notice once an honest member
    /// received (and logged) it — less those no honest member can ever consider again (see
    /// `World::forget_stale`), which only differ in history.
    pub sent: Sent,
    pub faults: Faults,
}

impl World {
    pub fn node(&self, m: Member) -> &Node {
        &self.nodes[m as usize]
    }

    /// Drops round messages of attempts every honest member is past for good. A member only
    /// goes back to an earlier attempt by a restart, and then no further back than its store's
    /// fresh attempt; `considers` drops anything older.
    pub fn forget_stale(&mut self, restarts_left: bool) {
        let floor = self
            .nodes
            .iter()
            .map(|node| {
                if node.store.accepted.is_none() {
                    0
                } else if !node.running() {
                    Attempt::MAX
                } else if restarts_left {
                    node.mem.attempt.min(node.store.fresh_attempt())
                } else {
                    node.mem.attempt
                }
            })
            .min()
            .expect("two honest members");
        self.sent.retain(|msg| match *msg {
            Msg::Nonce { attempt, .. }
            | Msg::Partial { attempt, .. }
            | Msg::Abort { attempt, .. } => attempt >= floor,
            Msg::Proposal { .. } | Msg::Completed { .. } => true,
        });
    }

    /// Ids of member `m`'s nonce messages for (attempt, digest) that exist (anyone may cite one).
    pub fn nonce_ids(&self, m: Member, attempt: Attempt, digest: Proposal) -> Vec<NonceId> {
        self.sent
            .iter()
            .filter_map(|msg| match *msg {
                Msg::Nonce {
                    sender,
                    attempt: a,
                    digest: d,
                    id,
                } if sender == m && a == attempt && d == digest => Some(id),
                _ => None,
            })
            .collect()
    }
}
