//! An exhaustive model check (stateright, breadth-first over every interleaving) of the
//! approval / attempt / nonce / signing lifecycle of one session under the protocol-v2 rules
//! (DESIGN §3, §4).
//!
//! **Modelled.** Three members; 0 and 1 honest, 2 Byzantine and the proposer. Each honest
//! member has a durable store (accepted proposal, the user's approval, the used-nonce
//! registry, per-attempt rows released → signing → closed, the signed transaction, blame
//! records) and an in-memory session (current attempt, round-1 stage, filed nonce and partial
//! messages, proposals shown to the user). Honest messages are never lost for good: every one
//! can be delivered at any time, repeatedly, in any order (resends and pulls), or never.
//! Faults: up to two crashes of honest members (memory lost, restart from the store), one
//! failed commit of nonce rows, one RNG repeat of an earlier nonce. The Byzantine member can
//! sign two proposals for the one session id, two nonces per attempt, partials that do or do
//! not verify and that cite any existing nonce messages, one abort notice, or nothing. A user
//! may approve any proposal their member was shown — including the proposer's second, refused
//! one — so the store's guard, not the user, is what property 1 rests on.
//!
//! **Abstracted away.** Cryptography (a nonce is a small number, a signature is a
//! `valid` bit, signatures on envelopes are unforgeable by construction), time and timeouts
//! (attempts stay open across absences; the only ways out are abort notices, evidence and
//! failed commits), elections and failover, rejection by a user, group membership, expiry,
//! round 0 commitments, multiple inputs (one nonce per attempt), the audit log, and the
//! Byzantine member's `Completed` messages (forged ones fail verification; genuine ones only
//! help liveness). A crash and its restart are one step: a member that is down is
//! indistinguishable from one that is up and idle.
//!
//! **Reductions** (each leaves the checked properties' verdicts unchanged; the reasons are at
//! the code): round 1 happens in the step that enters an attempt, as `begin_attempt` does; the
//! user's approval is given in the signing step, the only one that reads it; honest messages
//! of attempts every member is past for good are forgotten; evidence against the Byzantine
//! member is not stored; and states equal up to renaming the honest members, the proposals or
//! the Byzantine nonces are explored once (`symmetry`).
//!
//! Modules: [`state`] (what a state is), [`store`] (the durable guards), [`node`] (an honest
//! member's rules), [`actions`] (every step, honest and Byzantine), [`properties`] (what is
//! checked), [`model`] (bounds, mutations, the `stateright::Model`), [`symmetry`] (states
//! explored once per renaming).

pub mod actions;
pub mod model;
pub mod node;
pub mod properties;
pub mod state;
pub mod store;
pub mod symmetry;

pub use model::{Checks, Config, LifecycleModel, Mutation};
