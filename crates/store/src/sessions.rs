//! One row per proposal: the proposal envelope (exact bytes), the user's approval (by review
//! digest), the signed transaction, the outcome. What a restarted node restores comes from
//! here and from the nonce registry.

use protocol::envelope::Envelope;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};

use crate::column::{fixed, fixed_opt, ms, u64_col, u64_opt};
use crate::event::AbortCause;
use crate::nonce_registry;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval {
    /// The review digest the user approved.
    pub digest: [u8; 32],
    pub at_ms: u64,
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum SessionOutcome {
    Confirmed {
        #[serde(with = "crate::column::hex_bytes")]
        txid: [u8; 32],
    },
    Rejected {
        member: u16,
        reason: String,
    },
    Aborted {
        cause: AbortCause,
    },
}

impl SessionOutcome {
    fn label(&self) -> &'static str {
        match self {
            SessionOutcome::Confirmed { .. } => "confirmed",
            SessionOutcome::Rejected { .. } => "rejected",
            SessionOutcome::Aborted { .. } => "aborted",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub session_id: [u8; 32],
    pub group_id: [u8; 32],
    pub proposer: u16,
    pub proposed_by_me: bool,
    /// SHA256 of `proposal_envelope` (its id in the message log).
    pub proposal_hash: [u8; 32],
    pub proposal_envelope: Vec<u8>,
    pub created_ms: u64,
    pub approval: Option<Approval>,
    pub signed_tx: Option<Vec<u8>>,
    pub signed_ms: Option<u64>,
    pub outcome: Option<SessionOutcome>,
    pub closed_ms: Option<u64>,
}

/// What `protocol::node::Node::restore_session` needs for one session after a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestorableSession {
    pub session_id: [u8; 32],
    pub group_id: [u8; 32],
    pub proposal_envelope: Vec<u8>,
    /// Resume at the attempt after this one (see `Store::last_active_attempt`).
    pub last_active_attempt: Option<u32>,
    pub approval: Option<Approval>,
    /// Whether an attempt reached signing (our partials left) before the restart.
    pub signed_before: bool,
    pub signed_tx: Option<Vec<u8>>,
}

/// Opens the session row from the proposal envelope the node accepted. Idempotent for the
/// same envelope; a different one for the same session id is refused (the node accepts one
/// proposal per session id, so this is a bug or a tampered database, never a choice).
pub(crate) fn open_accepted(
    conn: &Connection,
    envelope: &Envelope,
    bytes: &[u8],
    hash: &[u8; 32],
    outgoing: bool,
    now_ms: u64,
) -> Result<(), Error> {
    let h = &envelope.header;
    conn.prepare_cached(
        "INSERT INTO sessions (session_id, group_id, proposer, proposed_by_me, proposal_hash,
                               proposal_envelope, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (session_id) DO NOTHING",
    )?
    .execute(params![
        h.session_id,
        h.group_id.0,
        h.sender,
        outgoing,
        hash,
        bytes,
        ms(now_ms)
    ])?;
    let record = require(conn, &h.session_id)?;
    if record.proposal_hash != *hash {
        return Err(Error::ProposalConflict(h.session_id));
    }
    Ok(())
}

/// The review digest of the session's stored proposal (its envelope binds it; the node checked
/// the binding against the proposal itself when it accepted it).
pub(crate) fn proposal_digest(record: &SessionRecord) -> Result<[u8; 32], Error> {
    Ok(
        Envelope::decode(&record.proposal_envelope, record.proposal_envelope.len())
            .map_err(Error::Envelope)?
            .header
            .proposal,
    )
}

fn require(conn: &Connection, session_id: &[u8; 32]) -> Result<SessionRecord, Error> {
    get(conn, session_id)?.ok_or(Error::UnknownSession(*session_id))
}

/// The user approved this exact review digest. Idempotent for the same digest.
pub(crate) fn approve(
    conn: &Connection,
    session_id: &[u8; 32],
    digest: &[u8; 32],
    now_ms: u64,
) -> Result<bool, Error> {
    let record = require(conn, session_id)?;
    if proposal_digest(&record)? != *digest {
        return Err(Error::ApprovalMismatch(*session_id));
    }
    match record.approval {
        Some(a) if a.digest == *digest => Ok(false),
        Some(_) => Err(Error::ApprovalConflict(*session_id)),
        None => {
            conn.prepare_cached(
                "UPDATE sessions SET approved_digest = ?2, approved_ms = ?3 WHERE session_id = ?1",
            )?
            .execute(params![session_id, digest, ms(now_ms)])?;
            Ok(true)
        }
    }
}

/// The finished transaction. Idempotent for the same bytes.
pub(crate) fn set_signed(
    conn: &Connection,
    session_id: &[u8; 32],
    tx: &[u8],
    now_ms: u64,
) -> Result<(), Error> {
    let record = require(conn, session_id)?;
    match record.signed_tx {
        Some(existing) if existing == tx => Ok(()),
        Some(_) => Err(Error::SignedTxConflict(*session_id)),
        None => {
            conn.prepare_cached(
                "UPDATE sessions SET signed_tx = ?2, signed_ms = ?3 WHERE session_id = ?1",
            )?
            .execute(params![session_id, tx, ms(now_ms)])?;
            Ok(())
        }
    }
}

/// Records how the session ended; the first outcome stays (a session closes once). Returns
/// whether this call recorded it.
pub(crate) fn close(
    conn: &Connection,
    session_id: &[u8; 32],
    outcome: &SessionOutcome,
    now_ms: u64,
) -> Result<bool, Error> {
    let detail = serde_json::to_string(outcome)?;
    let changed = conn
        .prepare_cached(
            "UPDATE sessions SET outcome = ?2, outcome_detail = ?3, closed_ms = ?4
             WHERE session_id = ?1 AND outcome IS NULL",
        )?
        .execute(params![session_id, outcome.label(), detail, ms(now_ms)])?;
    Ok(changed == 1)
}

/// Marks the session's outcome as counted in reputation; false if it already was.
pub(crate) fn claim_reputation(conn: &Connection, session_id: &[u8; 32]) -> Result<bool, Error> {
    let changed = conn
        .prepare_cached(
            "UPDATE sessions SET reputation_counted = 1
             WHERE session_id = ?1 AND reputation_counted = 0",
        )?
        .execute(params![session_id])?;
    Ok(changed == 1)
}

const COLUMNS: &str = "session_id, group_id, proposer, proposed_by_me, proposal_hash,
    proposal_envelope, created_ms, approved_digest, approved_ms, signed_tx, signed_ms,
    outcome_detail, closed_ms";

fn read(row: &Row<'_>) -> rusqlite::Result<(SessionRecord, Option<String>)> {
    let approval = match (fixed_opt::<32>(row, 7)?, u64_opt(row, 8)?) {
        (Some(digest), Some(at_ms)) => Some(Approval { digest, at_ms }),
        _ => None,
    };
    Ok((
        SessionRecord {
            session_id: fixed(row, 0)?,
            group_id: fixed(row, 1)?,
            proposer: row.get(2)?,
            proposed_by_me: row.get(3)?,
            proposal_hash: fixed(row, 4)?,
            proposal_envelope: row.get(5)?,
            created_ms: u64_col(row, 6)?,
            approval,
            signed_tx: row.get(9)?,
            signed_ms: u64_opt(row, 10)?,
            outcome: None,
            closed_ms: u64_opt(row, 12)?,
        },
        row.get(11)?,
    ))
}

fn finish((mut record, detail): (SessionRecord, Option<String>)) -> Result<SessionRecord, Error> {
    if let Some(detail) = detail {
        record.outcome = Some(
            serde_json::from_str(&detail).map_err(|e| Error::CorruptRow {
                table: "sessions",
                key: hex::encode(record.session_id),
                detail: format!("outcome: {e}"),
            })?,
        );
    }
    Ok(record)
}

pub(crate) fn get(
    conn: &Connection,
    session_id: &[u8; 32],
) -> Result<Option<SessionRecord>, Error> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE session_id = ?1"
    ))?
    .query_row(params![session_id], read)
    .optional()?
    .map(finish)
    .transpose()
}

/// All sessions, newest first; optionally only one group's.
pub(crate) fn list(
    conn: &Connection,
    group_id: Option<&[u8; 32]>,
) -> Result<Vec<SessionRecord>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM sessions WHERE ?1 IS NULL OR group_id = ?1
         ORDER BY created_ms DESC, session_id"
    ))?;
    let rows = stmt.query_map(params![group_id], read)?;
    rows.map(|r| finish(r?)).collect()
}

/// Sessions a restarted node resumes: not closed, and not signed-without-a-stored-transaction
/// (the same rule as the simulator's restart).
pub(crate) fn to_restore(conn: &Connection) -> Result<Vec<RestorableSession>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.session_id, s.group_id, s.proposal_envelope, s.approved_digest, s.approved_ms,
                s.signed_tx,
                EXISTS (SELECT 1 FROM attempts a WHERE a.session_id = s.session_id
                                                   AND a.signing_ms IS NOT NULL)
         FROM sessions s
         WHERE s.outcome IS NULL
           AND NOT (s.signed_tx IS NULL AND EXISTS (
                   SELECT 1 FROM attempts a WHERE a.session_id = s.session_id
                                              AND a.state = 'signed'))
         ORDER BY s.created_ms, s.session_id",
    )?;
    let rows = stmt.query_map([], |r| {
        let approval = match (fixed_opt::<32>(r, 3)?, u64_opt(r, 4)?) {
            (Some(digest), Some(at_ms)) => Some(Approval { digest, at_ms }),
            _ => None,
        };
        Ok(RestorableSession {
            session_id: fixed(r, 0)?,
            group_id: fixed(r, 1)?,
            proposal_envelope: r.get(2)?,
            last_active_attempt: None,
            approval,
            signed_before: r.get(6)?,
            signed_tx: r.get(5)?,
        })
    })?;
    let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    for session in &mut out {
        session.last_active_attempt =
            nonce_registry::last_active_attempt(conn, &session.session_id)?;
    }
    Ok(out)
}
