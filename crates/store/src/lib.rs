//! Lotus Cosigner's durable state: one SQLite file per profile (WAL, `synchronous=FULL`,
//! created 0600), synchronous and single-writer.
//!
//! - [`nonce_registry`]: the used-nonce registry and attempt states (DESIGN §4, analysis §4.1);
//! - [`messages`]: every signed envelope sent or received, exact bytes;
//! - [`sessions`]: proposals, approvals, signed transactions, outcomes; what to restore;
//! - [`audit`]: the append-only hash chain of [`AuditEvent`]s, `verify`, JSON Lines export;
//! - [`evidence`]: blame evidence bytes referenced from the audit;
//! - [`reputation`]: per signer key statistics, the §8.1 score, blacklist, §8.3 anomalies;
//! - [`peers`]: known peers and anchors;
//! - [`db`]: opening, identification, migrations.
//!
//! [`Store`] is the facade the engine uses. Every write is one `BEGIN IMMEDIATE` transaction,
//! committed (fsynced) when the call returns. [`Store::batch`] groups several writes into one.
//!
//! ## How the engine drives it
//!
//! - `Action::Persist(d)` → [`Store::apply`]`(&d, now)`, and only once it returned `Ok` the
//!   actions after it (sends) run. [`Error::is_nonce_conflict`] → `Node::nonce_conflict`.
//! - `Action::Event(e)` → [`Store::record_event`]`(group, session, &e, now)`: audit entry,
//!   evidence, reputation, the session's outcome.
//! - The user approves → [`Store::record_approval`] first, then `Node::approve` (the store
//!   refuses `AttemptSigning` for a session without a recorded approval).
//! - `Action::Broadcast`, key operations → [`Store::append`] with [`AuditEvent::Broadcast`],
//!   [`AuditEvent::Key`].
//! - At start → [`Store::abort_unfinished_attempts`] (announce each), then
//!   [`Store::sessions_to_restore`] into `Node::restore_session`.

pub mod audit;
mod column;
pub mod db;
mod error;
pub mod event;
pub mod evidence;
pub mod messages;
pub mod nonce_registry;
pub mod peer_heads;
pub mod peers;
pub mod profile;
pub mod reputation;
pub mod sessions;

use std::io::Write;
use std::path::{Path, PathBuf};

use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use protocol::envelope::MessageKind;
use protocol::failover::FailoverEvent;
use protocol::group::GroupDescriptor;
use protocol::session::{AbortReason, Durable, Event, Outcome};
use rusqlite::{Connection, TransactionBehavior};

pub use audit::{
    verify_jsonl, AuditAnchor, AuditEntry, AuditHead, AuditSummary, BreakKind, ChainBreak,
};
pub use error::Error;
pub use event::{
    AbortCause, AuditEvent, FailoverStep, KeyAction, OffenceKind, RoundPhase, SignerKey,
};
pub use evidence::StoredEvidence;
pub use messages::{Direction, StoredMessage};
pub use nonce_registry::{AttemptRecord, AttemptRef, AttemptState, NonceSlot};
pub use peers::{Peer, PeerAddress};
pub use profile::{CoinChanges, CoinRow, GroupRow, SignerRow, Unspent};
pub use reputation::{Anomaly, AnomalyRules, BlacklistEntry, ResponseStats, Score, SignerStats};
pub use sessions::{Approval, RestorableSession, SessionOutcome, SessionRecord};

use event::member_key;
use reputation::{Fault, TimeoutPhase};

/// An attempt found unfinished at start and aborted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbandonedAttempt {
    pub session_id: [u8; 32],
    pub attempt: u32,
    /// What it was when the process stopped.
    pub state: AttemptState,
}

/// A change in a signer's anomalies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnomalyEvent {
    Raised { signer: SignerKey, anomaly: Anomaly },
    Cleared { signer: SignerKey, rule: String },
}

/// The store. Not `Sync`: one writer (the engine wraps it in a mutex or a dedicated thread).
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// Writes inside one transaction (see [`Store::batch`]). Every method is also on [`Store`] as
/// its own transaction.
pub struct Batch<'a> {
    conn: &'a Connection,
}

impl Store {
    /// Opens the store at `path`, creating it (mode 0600) if absent. A file that is not a Lotus
    /// Cosigner store, is damaged, or has a newer schema is an error and is left untouched.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let conn = db::open(path)?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Folds the write-ahead log into the database file (before the file is moved or copied).
    pub fn checkpoint(&self) -> Result<(), Error> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    pub fn schema_version(&self) -> Result<i64, Error> {
        Ok(db::schema_version(&self.conn)?)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: all of it commits (one fsync), or none of
    /// it does if `f` fails.
    pub fn batch<T>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&mut Batch { conn: &tx })?;
        tx.commit()?;
        Ok(value)
    }

    /// [`Store::batch`] for callers with their own error type (e.g. one that also covers the
    /// keychain, when deciding what the first run is).
    pub fn exclusive<T, E: From<Error>>(
        &mut self,
        f: impl FnOnce(&mut Batch<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::from)?;
        let value = f(&mut Batch { conn: &tx })?;
        tx.commit().map_err(Error::from)?;
        Ok(value)
    }

    // ----- writes, one transaction each --------------------------------------------------

    /// Makes one `Durable` record durable. Returns only once it is committed; the engine sends
    /// the messages that follow a `Persist` after this returns, and not at all if it fails
    /// (a nonce conflict — [`Error::is_nonce_conflict`] — aborts the session for good).
    pub fn apply(&mut self, durable: &Durable, now_ms: u64) -> Result<(), Error> {
        self.batch(|b| b.apply(durable, now_ms))
    }

    /// Audits a protocol event of `session_id` and updates what follows from it (evidence,
    /// reputation, the session's outcome). Returns the audit entry, if the event is audited.
    pub fn record_event(
        &mut self,
        group: &GroupDescriptor,
        session_id: [u8; 32],
        event: &Event,
        now_ms: u64,
    ) -> Result<Option<AuditEntry>, Error> {
        self.batch(|b| b.record_event(group, session_id, event, now_ms))
    }

    /// The user approved this review digest. Must be durable before the protocol is told
    /// (signing is refused for a session without a recorded approval).
    pub fn record_approval(
        &mut self,
        session_id: [u8; 32],
        digest: [u8; 32],
        now_ms: u64,
    ) -> Result<(), Error> {
        self.batch(|b| b.record_approval(session_id, digest, now_ms))
    }

    /// Appends an event to the audit chain (key events, broadcasts, …).
    pub fn append(&mut self, event: &AuditEvent, now_ms: u64) -> Result<AuditEntry, Error> {
        self.batch(|b| b.append(event, now_ms))
    }

    /// At start: aborts every attempt that released a nonce and did not finish (its secret
    /// nonces died with the process) and audits each. The engine announces them to the group.
    pub fn abort_unfinished_attempts(
        &mut self,
        now_ms: u64,
    ) -> Result<Vec<AbandonedAttempt>, Error> {
        self.batch(|b| b.abort_unfinished_attempts(now_ms))
    }

    /// Signs the audit chain's head with the member key.
    pub fn anchor_audit(
        &mut self,
        key: &PrivateKey,
        now_ms: u64,
    ) -> Result<Option<AuditAnchor>, Error> {
        self.batch(|b| audit::anchor(b.conn, key, now_ms))
    }

    /// Blacklists a signer key (audited). False if it already was.
    pub fn blacklist(
        &mut self,
        signer: &SignerKey,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, Error> {
        self.batch(|b| b.blacklist(signer, reason, now_ms))
    }

    pub fn unblacklist(&mut self, signer: &SignerKey, now_ms: u64) -> Result<bool, Error> {
        self.batch(|b| b.unblacklist(signer, now_ms))
    }

    /// Evaluates the §8.3 rules for every known signer; audits and returns the anomalies that
    /// appeared or cleared since the last evaluation.
    pub fn detect_anomalies(
        &mut self,
        rules: &AnomalyRules,
        now_ms: u64,
    ) -> Result<Vec<AnomalyEvent>, Error> {
        self.batch(|b| b.detect_anomalies(rules, now_ms))
    }

    /// A verified message from this signer arrived.
    pub fn signer_seen(&mut self, signer: &SignerKey, now_ms: u64) -> Result<(), Error> {
        self.batch(|b| reputation::seen(b.conn, signer, now_ms))
    }

    pub fn peer_seen(
        &mut self,
        peer_id: &str,
        signer: Option<&SignerKey>,
        addresses: &[String],
        now_ms: u64,
    ) -> Result<(), Error> {
        self.batch(|b| peers::seen(b.conn, peer_id, signer, addresses, now_ms))
    }

    pub fn set_anchor(&mut self, peer_id: &str, anchor: bool) -> Result<bool, Error> {
        self.batch(|b| peers::set_anchor(b.conn, peer_id, anchor))
    }

    pub fn forget_peer(&mut self, peer_id: &str) -> Result<bool, Error> {
        self.batch(|b| peers::forget(b.conn, peer_id))
    }

    /// Storage bound (analysis §6.4, §7.2): deletes stored messages received before
    /// `before_ms` that belong to sessions closed before it, or to no stored proposal. The
    /// used-nonce registry, attempts, sessions, evidence and audit are never pruned. Returns
    /// the number of messages deleted.
    pub fn prune_messages(&mut self, before_ms: u64) -> Result<usize, Error> {
        self.batch(|b| messages::prune(b.conn, before_ms))
    }

    pub fn prune_peer_addresses(&mut self, before_ms: u64) -> Result<usize, Error> {
        self.batch(|b| peers::prune_addresses(b.conn, before_ms))
    }

    // ----- reads -------------------------------------------------------------------------

    /// The highest attempt this node released a nonce in or sent any message in; a restarted
    /// node resumes the session at the next one.
    pub fn last_active_attempt(&self, session_id: &[u8; 32]) -> Result<Option<u32>, Error> {
        nonce_registry::last_active_attempt(&self.conn, session_id)
    }

    pub fn attempt_state(
        &self,
        session_id: &[u8; 32],
        attempt: u32,
    ) -> Result<Option<AttemptState>, Error> {
        nonce_registry::state(&self.conn, session_id, attempt)
    }

    pub fn attempts(&self, session_id: &[u8; 32]) -> Result<Vec<AttemptRecord>, Error> {
        nonce_registry::attempts(&self.conn, session_id)
    }

    /// Whether this public nonce hash was ever released.
    pub fn nonce_used(&self, nonce_hash: &[u8; 32]) -> Result<bool, Error> {
        nonce_registry::is_used(&self.conn, nonce_hash)
    }

    pub fn session(&self, session_id: &[u8; 32]) -> Result<Option<SessionRecord>, Error> {
        sessions::get(&self.conn, session_id)
    }

    /// All sessions (or one group's), newest first.
    pub fn sessions(&self, group_id: Option<&[u8; 32]>) -> Result<Vec<SessionRecord>, Error> {
        sessions::list(&self.conn, group_id)
    }

    /// What a restarted node hands to `protocol::node::Node::restore_session`.
    pub fn sessions_to_restore(&self) -> Result<Vec<RestorableSession>, Error> {
        sessions::to_restore(&self.conn)
    }

    pub fn message(&self, hash: &[u8; 32]) -> Result<Option<StoredMessage>, Error> {
        messages::by_hash(&self.conn, hash)
    }

    /// One kind of message in one attempt, in member order (e.g. every `Nonces`).
    pub fn attempt_messages(
        &self,
        session_id: &[u8; 32],
        attempt: u32,
        kind: MessageKind,
    ) -> Result<Vec<StoredMessage>, Error> {
        messages::of_attempt(&self.conn, session_id, attempt, kind)
    }

    /// Every message of a session, in arrival order.
    pub fn session_messages(&self, session_id: &[u8; 32]) -> Result<Vec<StoredMessage>, Error> {
        messages::of_session(&self.conn, session_id)
    }

    pub fn message_count(&self) -> Result<u64, Error> {
        messages::count(&self.conn)
    }

    pub fn evidence(&self, id: &[u8; 32]) -> Result<Option<StoredEvidence>, Error> {
        evidence::get(&self.conn, id)
    }

    /// All evidence against a signer key (for the reputation-aware election).
    pub fn evidence_against(&self, signer: &SignerKey) -> Result<Vec<StoredEvidence>, Error> {
        evidence::against(&self.conn, signer)
    }

    /// Walks the audit chain; `Err(Error::AuditBroken(break))` names the first bad entry.
    pub fn verify_audit(&self) -> Result<AuditSummary, Error> {
        let mut summary = audit::verify(&self.conn, None)?;
        summary.peers = peer_heads::report(&self.conn)?;
        Ok(summary)
    }

    /// Keeps a co-signer's signed audit head; true if it contradicts one already held (that
    /// member's log was rewritten).
    pub fn record_peer_head(
        &mut self,
        signer: &SignerKey,
        head: &protocol::audit_head::SignedHead,
        now_ms: u64,
    ) -> Result<bool, Error> {
        self.batch(|b| peer_heads::record(b.conn, signer, head, now_ms))
    }

    /// What the co-signers' heads we hold say about their logs.
    pub fn peer_heads(&self) -> Result<Vec<peer_heads::PeerHeads>, Error> {
        peer_heads::report(&self.conn)
    }

    /// As [`Store::verify_audit`], and every signed head must be signed by `key`.
    pub fn verify_audit_signed_by(&self, key: &PublicKey) -> Result<AuditSummary, Error> {
        let mut summary = audit::verify(&self.conn, Some(key))?;
        summary.peers = peer_heads::report(&self.conn)?;
        Ok(summary)
    }

    /// Writes the audit log as JSON Lines (see [`audit`]); returns the number of entries.
    pub fn export_audit_jsonl(&self, out: &mut dyn Write) -> Result<u64, Error> {
        audit::export_jsonl(&self.conn, out)
    }

    pub fn audit_head(&self) -> Result<Option<AuditHead>, Error> {
        audit::head(&self.conn)
    }

    /// Entries after `after_seq`, at most `limit`, oldest first (not verified).
    pub fn audit_entries(&self, after_seq: u64, limit: u32) -> Result<Vec<AuditEntry>, Error> {
        audit::entries(&self.conn, after_seq, limit)
    }

    pub fn session_audit(&self, session_id: &[u8; 32]) -> Result<Vec<AuditEntry>, Error> {
        audit::of_session(&self.conn, session_id)
    }

    pub fn signer_stats(&self, signer: &SignerKey) -> Result<Option<SignerStats>, Error> {
        reputation::stats(&self.conn, signer)
    }

    pub fn all_signer_stats(&self) -> Result<Vec<SignerStats>, Error> {
        reputation::all(&self.conn)
    }

    pub fn blacklisted(&self, signer: &SignerKey) -> Result<Option<BlacklistEntry>, Error> {
        reputation::blacklisted(&self.conn, signer)
    }

    pub fn blacklist_entries(&self) -> Result<Vec<BlacklistEntry>, Error> {
        reputation::blacklist(&self.conn)
    }

    pub fn peer(&self, peer_id: &str) -> Result<Option<Peer>, Error> {
        peers::get(&self.conn, peer_id)
    }

    pub fn peers(&self) -> Result<Vec<Peer>, Error> {
        peers::list(&self.conn)
    }

    pub fn anchor_peers(&self) -> Result<Vec<Peer>, Error> {
        peers::anchors(&self.conn)
    }

    // ----- the profile: signer record, groups, coins ----------------------------------

    pub fn signer(&self) -> Result<Option<SignerRow>, Error> {
        profile::signer(&self.conn)
    }

    pub fn confirm_backup(&mut self, now_ms: u64) -> Result<bool, Error> {
        profile::confirm_backup(&self.conn, now_ms)
    }

    /// Records that the group's backup file was saved now.
    pub fn record_group_backup(&mut self, group_id: &[u8; 32], now_ms: u64) -> Result<(), Error> {
        profile::record_group_backup(&self.conn, group_id, now_ms)
    }

    /// When the group's backup file was last saved, if ever.
    pub fn group_backup(&self, group_id: &[u8; 32]) -> Result<Option<u64>, Error> {
        profile::group_backup(&self.conn, group_id)
    }

    /// Saves a group and acceptances (`(member key, encoded acceptance)`); `true` if the group
    /// is new. Both are kept as first saved.
    pub fn save_group(
        &mut self,
        group_id: &[u8; 32],
        name: &str,
        descriptor: &[u8],
        acceptances: &[([u8; 33], Vec<u8>)],
        now_ms: u64,
    ) -> Result<bool, Error> {
        self.batch(|b| profile::save_group(b.conn, group_id, name, descriptor, acceptances, now_ms))
    }

    pub fn groups(&self) -> Result<Vec<GroupRow>, Error> {
        profile::groups(&self.conn)
    }

    /// See [`profile::apply_unspent`].
    pub fn apply_unspent(
        &mut self,
        group_id: &[u8; 32],
        script: &[u8],
        unspent: &[profile::Unspent],
        backend: &str,
        now_ms: u64,
    ) -> Result<CoinChanges, Error> {
        self.batch(|b| profile::apply_unspent(b.conn, group_id, script, unspent, backend, now_ms))
    }

    pub fn coins(&self, group_id: &[u8; 32], include_spent: bool) -> Result<Vec<CoinRow>, Error> {
        profile::coins(&self.conn, group_id, include_spent)
    }

    pub fn peers_of_signer(&self, signer: &SignerKey) -> Result<Vec<Peer>, Error> {
        peers::of_signer(&self.conn, signer)
    }
}

impl Batch<'_> {
    /// The profile's signer record, read inside this transaction.
    pub fn signer(&self) -> Result<Option<SignerRow>, Error> {
        profile::signer(self.conn)
    }

    /// Records the profile's key; a different key already recorded is a constraint error.
    pub fn record_signer(&mut self, row: &SignerRow) -> Result<(), Error> {
        profile::record_signer(self.conn, row)
    }

    /// Puts another key in place of the recorded one (a restore). The caller checks that the
    /// profile is in no group: its groups and their coins belong to the old key.
    pub fn replace_signer(&mut self, row: &SignerRow) -> Result<(), Error> {
        profile::replace_signer(self.conn, row)
    }

    pub fn confirm_backup(&mut self, now_ms: u64) -> Result<bool, Error> {
        profile::confirm_backup(self.conn, now_ms)
    }

    /// How many groups the profile holds, read inside this transaction.
    pub fn group_count(&self) -> Result<usize, Error> {
        Ok(profile::groups(self.conn)?.len())
    }

    /// See [`Store::apply`].
    pub fn apply(&mut self, durable: &Durable, now_ms: u64) -> Result<(), Error> {
        let conn = self.conn;
        match durable {
            Durable::NonceReleased {
                session_id,
                attempt,
                input,
                nonce_hash,
            } => nonce_registry::release(
                conn,
                NonceSlot {
                    session_id: *session_id,
                    attempt: *attempt,
                    input: *input,
                },
                nonce_hash,
                now_ms,
            ),
            Durable::SessionAccepted {
                session_id,
                envelope,
                outgoing,
            } => {
                let direction = Direction::of(*outgoing);
                let (stored, decoded) =
                    messages::store(conn, session_id, envelope, direction, now_ms)?;
                if decoded.header.kind != MessageKind::Proposal {
                    return Err(Error::NotAProposal(*session_id));
                }
                sessions::open_accepted(conn, &decoded, envelope, &stored.hash, *outgoing, now_ms)
            }
            Durable::AttemptSigning {
                session_id,
                attempt,
                digest,
            } => {
                // The invariant of DESIGN §3: a partial signature leaves only for a proposal
                // whose review digest equals a digest this user approved, and that is the
                // proposal this store holds for the session.
                let session =
                    sessions::get(conn, session_id)?.ok_or(Error::UnknownSession(*session_id))?;
                if session.outcome.is_some() {
                    return Err(Error::SessionEnded(*session_id));
                }
                match session.approval {
                    None => return Err(Error::NotApproved(*session_id)),
                    Some(a) if a.digest != *digest => {
                        return Err(Error::ApprovalMismatch(*session_id))
                    }
                    Some(_) => {}
                }
                if sessions::proposal_digest(&session)? != *digest {
                    return Err(Error::ApprovalMismatch(*session_id));
                }
                nonce_registry::mark_signing(conn, session_id, *attempt, now_ms)
            }
            Durable::AttemptClosed {
                session_id,
                attempt,
                signed,
            } => nonce_registry::close(conn, session_id, *attempt, *signed, now_ms),
            Durable::Message {
                session_id,
                bytes,
                outgoing,
            } => {
                let direction = Direction::of(*outgoing);
                // A logged message never opens a session: only an accepted proposal does.
                messages::store(conn, session_id, bytes, direction, now_ms)?;
                Ok(())
            }
            Durable::Signed { session_id, tx } => {
                sessions::set_signed(conn, session_id, tx, now_ms)
            }
            Durable::Rejected {
                session_id,
                member,
                reason,
            } => {
                let outcome = SessionOutcome::Rejected {
                    member: *member,
                    reason: reason.clone(),
                };
                sessions::close(conn, session_id, &outcome, now_ms)?;
                Ok(())
            }
        }
    }

    /// See [`Store::record_event`].
    pub fn record_event(
        &mut self,
        group: &GroupDescriptor,
        session_id: [u8; 32],
        event: &Event,
        now_ms: u64,
    ) -> Result<Option<AuditEntry>, Error> {
        let conn = self.conn;
        let session = sessions::get(conn, &session_id)?;
        let proposed_by_me = session.as_ref().is_some_and(|s| s.proposed_by_me);
        let mut audited = AuditEvent::from_protocol(group, session_id, event, proposed_by_me)?;
        // A session rebuilt after a restart presents its review again: audited once.
        if matches!(event, Event::ReviewReady { .. })
            && audit::has_proposal_entry(conn, &session_id)?
        {
            audited = None;
        }
        match event {
            Event::ReviewReady { review } if !proposed_by_me => {
                let seen_at = session.as_ref().map_or(now_ms, |s| s.created_ms);
                reputation::seen(conn, &member_key(group, review.proposer)?, seen_at)?;
            }
            Event::RoundCompleted { attempt, phase } => {
                self.count_round(group, &session_id, *attempt, (*phase).into())?;
            }
            Event::Blamed { blame, evidence } => {
                let signer = member_key(group, blame.culprit)?;
                evidence::put(conn, evidence, blame, &signer, now_ms)?;
                reputation::record_blame(conn, &signer)?;
                reputation::add_fault(conn, &session_id, &signer, Fault::Blame)?;
            }
            Event::TimedOut {
                phase, waiting_for, ..
            } => {
                for &member in waiting_for {
                    let signer = member_key(group, member)?;
                    reputation::record_timeout(conn, &signer, RoundPhase::from(*phase).into())?;
                    reputation::add_fault(conn, &session_id, &signer, Fault::Timeout)?;
                }
            }
            Event::Failover(FailoverEvent::CoordinatorFailed { member, .. }) => {
                let signer = member_key(group, *member)?;
                reputation::record_timeout(conn, &signer, TimeoutPhase::Broadcast)?;
                reputation::add_fault(conn, &session_id, &signer, Fault::Broadcast)?;
            }
            Event::Signed { .. } if session.is_some() => self.count_success(group, &session_id)?,
            Event::Closed { outcome } => {
                let recorded = match outcome {
                    Outcome::Confirmed { txid } => SessionOutcome::Confirmed { txid: *txid },
                    Outcome::Aborted(AbortReason::RejectedBy { member, reason }) => {
                        SessionOutcome::Rejected {
                            member: *member,
                            reason: reason.clone(),
                        }
                    }
                    Outcome::Aborted(reason) => SessionOutcome::Aborted {
                        cause: reason.into(),
                    },
                };
                if session.is_some() {
                    sessions::close(conn, &session_id, &recorded, now_ms)?;
                    self.count_outcome(group, &session_id, outcome)?;
                }
            }
            _ => {}
        }
        audited
            .map(|e| audit::append(conn, &e, Some(group.id().0), now_ms))
            .transpose()
    }

    /// Response times of a completed round, from the stored arrival times: each co-signer's
    /// first message of the round, measured from the round's first message (ours included).
    fn count_round(
        &mut self,
        group: &GroupDescriptor,
        session_id: &[u8; 32],
        attempt: u32,
        phase: RoundPhase,
    ) -> Result<(), Error> {
        let conn = self.conn;
        if !reputation::claim_round(conn, session_id, attempt, phase)? {
            return Ok(());
        }
        let arrivals = messages::first_arrivals(conn, session_id, attempt, phase.message_kind())?;
        let Some(start) = arrivals.iter().map(|a| a.1).min() else {
            return Ok(());
        };
        let incoming: Vec<(SignerKey, u64)> = arrivals
            .iter()
            .filter(|a| a.2 == Direction::Incoming)
            .filter_map(|&(sender, at, _)| member_key(group, sender).ok().map(|k| (k, at)))
            .collect();
        let contested = incoming.len() >= 2;
        let latest = incoming.iter().map(|a| a.1).max();
        let single_last = incoming.iter().filter(|a| Some(a.1) == latest).count() == 1;
        for (signer, at) in &incoming {
            let last = contested && single_last && Some(*at) == latest;
            reputation::record_response(conn, signer, phase, at - start, contested, last)?;
            reputation::seen(conn, signer, *at)?;
        }
        Ok(())
    }

    /// A signed session counts for every member, once.
    fn count_success(
        &mut self,
        group: &GroupDescriptor,
        session_id: &[u8; 32],
    ) -> Result<(), Error> {
        if sessions::claim_reputation(self.conn, session_id)? {
            for key in &group.members {
                reputation::record_session(self.conn, &key.serialize(), true)?;
            }
        }
        Ok(())
    }

    /// A failed session counts against the members the protocol holds responsible.
    fn count_outcome(
        &mut self,
        group: &GroupDescriptor,
        session_id: &[u8; 32],
        outcome: &Outcome,
    ) -> Result<(), Error> {
        let conn = self.conn;
        let mut responsible = Vec::new();
        match outcome {
            Outcome::Confirmed { .. } => return self.count_success(group, session_id),
            Outcome::Aborted(reason) => match reason {
                AbortReason::InvalidPartial { member }
                | AbortReason::Equivocation { member }
                | AbortReason::MalformedContribution { member } => {
                    responsible.push(member_key(group, *member)?);
                    responsible.extend(reputation::faulty(conn, session_id)?);
                }
                AbortReason::ConflictingProposals { proposer: member }
                | AbortReason::TooManyRestarts { member } => {
                    responsible.push(member_key(group, *member)?);
                }
                AbortReason::AttemptsExhausted | AbortReason::Expired => {
                    responsible.extend(reputation::faulty(conn, session_id)?);
                }
                AbortReason::RejectedBy { .. }
                | AbortReason::NonceRegistryConflict
                | AbortReason::Restart { .. }
                | AbortReason::DegenerateNonces
                | AbortReason::PoolUnusable
                | AbortReason::Evicted => {}
            },
        }
        responsible.sort_unstable();
        responsible.dedup();
        if !responsible.is_empty() && sessions::claim_reputation(conn, session_id)? {
            for signer in &responsible {
                reputation::record_session(conn, signer, false)?;
            }
        }
        Ok(())
    }

    /// See [`Store::record_approval`].
    pub fn record_approval(
        &mut self,
        session_id: [u8; 32],
        digest: [u8; 32],
        now_ms: u64,
    ) -> Result<(), Error> {
        if sessions::approve(self.conn, &session_id, &digest, now_ms)? {
            self.append(&AuditEvent::Approved { session_id, digest }, now_ms)?;
        }
        Ok(())
    }

    /// See [`Store::append`]. The group column is the event's group or its session's.
    pub fn append(&mut self, event: &AuditEvent, now_ms: u64) -> Result<AuditEntry, Error> {
        let group = match (event.group_id(), event.session_id()) {
            (Some(g), _) => Some(g),
            (None, Some(s)) => sessions::get(self.conn, &s)?.map(|r| r.group_id),
            (None, None) => None,
        };
        audit::append(self.conn, event, group, now_ms)
    }

    /// See [`Store::abort_unfinished_attempts`].
    pub fn abort_unfinished_attempts(
        &mut self,
        now_ms: u64,
    ) -> Result<Vec<AbandonedAttempt>, Error> {
        let mut out = Vec::new();
        for (at, state) in nonce_registry::abort_unfinished(self.conn, now_ms)? {
            self.append(
                &AuditEvent::AttemptAbandonedAtStart {
                    session_id: at.session_id,
                    attempt: at.attempt,
                    state: state.into(),
                },
                now_ms,
            )?;
            out.push(AbandonedAttempt {
                session_id: at.session_id,
                attempt: at.attempt,
                state,
            });
        }
        Ok(out)
    }

    pub fn blacklist(
        &mut self,
        signer: &SignerKey,
        reason: &str,
        now_ms: u64,
    ) -> Result<bool, Error> {
        let added = reputation::blacklist_add(self.conn, signer, reason, now_ms)?;
        if added {
            self.append(
                &AuditEvent::Blacklisted {
                    signer: *signer,
                    reason: reason.to_string(),
                },
                now_ms,
            )?;
        }
        Ok(added)
    }

    pub fn unblacklist(&mut self, signer: &SignerKey, now_ms: u64) -> Result<bool, Error> {
        let removed = reputation::blacklist_remove(self.conn, signer)?;
        if removed {
            self.append(&AuditEvent::Unblacklisted { signer: *signer }, now_ms)?;
        }
        Ok(removed)
    }

    pub fn detect_anomalies(
        &mut self,
        rules: &AnomalyRules,
        now_ms: u64,
    ) -> Result<Vec<AnomalyEvent>, Error> {
        let mut out = Vec::new();
        for stats in reputation::all(self.conn)? {
            let signer = stats.signer;
            let current = reputation::evaluate(&stats, rules);
            let raised = reputation::raised(self.conn, &signer)?;
            for anomaly in &current {
                if !raised.iter().any(|r| r == anomaly.rule()) {
                    reputation::raise(self.conn, &signer, anomaly.rule(), now_ms)?;
                    self.append(
                        &AuditEvent::AnomalyRaised {
                            signer,
                            anomaly: anomaly.clone(),
                        },
                        now_ms,
                    )?;
                    out.push(AnomalyEvent::Raised {
                        signer,
                        anomaly: anomaly.clone(),
                    });
                }
            }
            for rule in raised {
                if !current.iter().any(|a| a.rule() == rule) {
                    reputation::clear(self.conn, &signer, &rule)?;
                    self.append(
                        &AuditEvent::AnomalyCleared {
                            signer,
                            rule: rule.clone(),
                        },
                        now_ms,
                    )?;
                    out.push(AnomalyEvent::Cleared { signer, rule });
                }
            }
        }
        Ok(out)
    }

    /// See [`Store::last_active_attempt`] (reads inside the transaction).
    pub fn last_active_attempt(&self, session_id: &[u8; 32]) -> Result<Option<u32>, Error> {
        nonce_registry::last_active_attempt(self.conn, session_id)
    }
}
