//! The used-nonce registry (analysis §4.1, DESIGN §4): a row per released public nonce,
//! committed before the nonce leaves the process, and the state of each attempt this node took
//! part in. A public nonce seen twice anywhere — same session or another — is
//! [`Error::NonceReuse`]; the engine then aborts the session for good.
//!
//! Attempt states move forward only:
//!
//! ```text
//! (none) ──release──▶ released ──signing──▶ signing ──close(signed)──▶ signed
//!                        │                     │
//!                        └──close(signed)──────┴──close(aborted)─────▶ aborted
//! (none) ──close(aborted)──▶ aborted      (an attempt that failed before any nonce left)
//! ```
//!
//! `released → signed` is legal: a member can finish with everyone's signatures (a `Completed`
//! message) in an attempt where its own round 2 never ran. Nothing leaves `signed`/`aborted`.

use rusqlite::{params, Connection, OptionalExtension};

use crate::column::{fixed, ms, u64_opt};
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttemptState {
    /// At least one public nonce of this attempt was released.
    Released,
    /// Partial signatures may leave (the secret nonces are being consumed).
    Signing,
    /// The attempt ended with the final signatures.
    Signed,
    /// The attempt ended without them (timeout, blame, rejection, a restart, …).
    Aborted,
}

impl AttemptState {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Released => "released",
            AttemptState::Signing => "signing",
            AttemptState::Signed => "signed",
            AttemptState::Aborted => "aborted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            AttemptState::Released,
            AttemptState::Signing,
            AttemptState::Signed,
            AttemptState::Aborted,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_closed(self) -> bool {
        matches!(self, AttemptState::Signed | AttemptState::Aborted)
    }
}

impl std::fmt::Display for AttemptState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a public nonce was released.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NonceSlot {
    pub session_id: [u8; 32],
    pub attempt: u32,
    pub input: u16,
}

/// One attempt as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    pub session_id: [u8; 32],
    pub attempt: u32,
    pub state: AttemptState,
    pub opened_ms: u64,
    pub signing_ms: Option<u64>,
    pub closed_ms: Option<u64>,
    /// Hashes of the public nonces released in it, by input.
    pub nonce_hashes: Vec<[u8; 32]>,
}

pub(crate) fn state(
    conn: &Connection,
    session_id: &[u8; 32],
    attempt: u32,
) -> Result<Option<AttemptState>, Error> {
    let text: Option<String> = conn
        .prepare_cached("SELECT state FROM attempts WHERE session_id = ?1 AND attempt = ?2")?
        .query_row(params![session_id, attempt], |r| r.get(0))
        .optional()?;
    text.map(|t| {
        AttemptState::parse(&t).ok_or_else(|| Error::CorruptRow {
            table: "attempts",
            key: format!("{}/{attempt}", hex::encode(session_id)),
            detail: format!("unknown state {t:?}"),
        })
    })
    .transpose()
}

/// Records a released public nonce. Must commit before the nonce leaves the process.
pub(crate) fn release(
    conn: &Connection,
    slot: NonceSlot,
    nonce_hash: &[u8; 32],
    now_ms: u64,
) -> Result<(), Error> {
    if let Some(first) = slot_of(conn, nonce_hash)? {
        return Err(Error::NonceReuse {
            nonce_hash: *nonce_hash,
            first,
            second: slot,
        });
    }
    let existing: Option<crate::column::Fixed<32>> = conn
        .prepare_cached(
            "SELECT nonce_hash FROM nonces WHERE session_id = ?1 AND attempt = ?2 AND input = ?3",
        )?
        .query_row(params![slot.session_id, slot.attempt, slot.input], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(existing) = existing {
        return Err(Error::NonceSlotTaken {
            slot,
            existing_hash: existing.0,
        });
    }
    match state(conn, &slot.session_id, slot.attempt)? {
        None => {
            if let Some(latest) = latest_attempt(conn, &slot.session_id)? {
                if slot.attempt <= latest {
                    return Err(Error::StaleAttempt {
                        session_id: slot.session_id,
                        attempt: slot.attempt,
                        latest,
                    });
                }
            }
            conn.prepare_cached(
                "INSERT INTO attempts (session_id, attempt, state, opened_ms)
                 VALUES (?1, ?2, 'released', ?3)",
            )?
            .execute(params![slot.session_id, slot.attempt, ms(now_ms)])?;
        }
        Some(AttemptState::Released) => {}
        Some(from) => {
            return Err(Error::InvalidTransition {
                session_id: slot.session_id,
                attempt: slot.attempt,
                from: Some(from),
                to: AttemptState::Released,
            })
        }
    }
    let inserted = conn
        .prepare_cached(
            "INSERT INTO nonces (nonce_hash, session_id, attempt, input, released_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            nonce_hash,
            slot.session_id,
            slot.attempt,
            slot.input,
            ms(now_ms)
        ]);
    match inserted {
        Ok(_) => Ok(()),
        // The checks above make this unreachable; the constraint is the last line of defence.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Err(Error::NonceReuse {
                nonce_hash: *nonce_hash,
                first: slot_of(conn, nonce_hash)?.unwrap_or(slot),
                second: slot,
            })
        }
        Err(e) => Err(e.into()),
    }
}

fn slot_of(conn: &Connection, nonce_hash: &[u8; 32]) -> Result<Option<NonceSlot>, Error> {
    Ok(conn
        .prepare_cached("SELECT session_id, attempt, input FROM nonces WHERE nonce_hash = ?1")?
        .query_row(params![nonce_hash], |r| {
            Ok(NonceSlot {
                session_id: fixed(r, 0)?,
                attempt: r.get(1)?,
                input: r.get(2)?,
            })
        })
        .optional()?)
}

fn latest_attempt(conn: &Connection, session_id: &[u8; 32]) -> Result<Option<u32>, Error> {
    Ok(conn
        .prepare_cached("SELECT max(attempt) FROM attempts WHERE session_id = ?1")?
        .query_row(params![session_id], |r| r.get(0))?)
}

/// released → signing: partial signatures may now leave. Must commit before they do.
pub(crate) fn mark_signing(
    conn: &Connection,
    session_id: &[u8; 32],
    attempt: u32,
    now_ms: u64,
) -> Result<(), Error> {
    match state(conn, session_id, attempt)? {
        Some(AttemptState::Released) => {
            conn.prepare_cached(
                "UPDATE attempts SET state = 'signing', signing_ms = ?3
                 WHERE session_id = ?1 AND attempt = ?2",
            )?
            .execute(params![session_id, attempt, ms(now_ms)])?;
            Ok(())
        }
        from => Err(Error::InvalidTransition {
            session_id: *session_id,
            attempt,
            from,
            to: AttemptState::Signing,
        }),
    }
}

/// Ends an attempt, signed or aborted.
pub(crate) fn close(
    conn: &Connection,
    session_id: &[u8; 32],
    attempt: u32,
    signed: bool,
    now_ms: u64,
) -> Result<(), Error> {
    let to = if signed {
        AttemptState::Signed
    } else {
        AttemptState::Aborted
    };
    match state(conn, session_id, attempt)? {
        Some(AttemptState::Released | AttemptState::Signing) => {
            conn.prepare_cached(
                "UPDATE attempts SET state = ?3, closed_ms = ?4
                 WHERE session_id = ?1 AND attempt = ?2",
            )?
            .execute(params![session_id, attempt, to.as_str(), ms(now_ms)])?;
            Ok(())
        }
        None if !signed => {
            conn.prepare_cached(
                "INSERT INTO attempts (session_id, attempt, state, opened_ms, closed_ms)
                 VALUES (?1, ?2, 'aborted', ?3, ?3)",
            )?
            .execute(params![session_id, attempt, ms(now_ms)])?;
            Ok(())
        }
        from => Err(Error::InvalidTransition {
            session_id: *session_id,
            attempt,
            from,
            to,
        }),
    }
}

/// Every attempt still released or signing: after a restart their secret nonces are gone, so
/// they are aborted (and the engine announces it). Returns what was aborted.
pub(crate) fn abort_unfinished(
    conn: &Connection,
    now_ms: u64,
) -> Result<Vec<(AttemptRef, AttemptState)>, Error> {
    let mut found = Vec::new();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT session_id, attempt, state FROM attempts
             WHERE state IN ('released', 'signing') ORDER BY session_id, attempt",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                fixed::<32>(r, 0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        for row in rows {
            let (session_id, attempt, state) = row?;
            let state = AttemptState::parse(&state).unwrap_or(AttemptState::Released);
            found.push((
                AttemptRef {
                    session_id,
                    attempt,
                },
                state,
            ));
        }
    }
    conn.prepare_cached(
        "UPDATE attempts SET state = 'aborted', closed_ms = ?1
         WHERE state IN ('released', 'signing')",
    )?
    .execute(params![ms(now_ms)])?;
    Ok(found)
}

/// A (session, attempt) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttemptRef {
    pub session_id: [u8; 32],
    pub attempt: u32,
}

/// The highest attempt this node took part in: released a nonce in, or sent any message in.
/// A restarted node resumes above it (a new message in it would contradict an old one).
/// Attempt rows count too: one closed before any nonce left (its first nonce conflicted) has
/// no nonce row, and resuming inside it would be refused as stale.
pub(crate) fn last_active_attempt(
    conn: &Connection,
    session_id: &[u8; 32],
) -> Result<Option<u32>, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT max(a) FROM (
                 SELECT max(attempt) AS a FROM nonces WHERE session_id = ?1
                 UNION ALL
                 SELECT max(attempt) AS a FROM attempts WHERE session_id = ?1
                 UNION ALL
                 SELECT max(attempt) AS a FROM messages
                 WHERE session_id = ?1 AND direction = 'out'
             )",
        )?
        .query_row(params![session_id], |r| r.get(0))?)
}

pub(crate) fn attempts(
    conn: &Connection,
    session_id: &[u8; 32],
) -> Result<Vec<AttemptRecord>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, state, opened_ms, signing_ms, closed_ms FROM attempts
         WHERE session_id = ?1 ORDER BY attempt",
    )?;
    let rows = stmt.query_map(params![session_id], |r| {
        Ok((
            r.get::<_, u32>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            u64_opt(r, 3)?,
            u64_opt(r, 4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (attempt, state, opened_ms, signing_ms, closed_ms) = row?;
        let state = AttemptState::parse(&state).ok_or_else(|| Error::CorruptRow {
            table: "attempts",
            key: format!("{}/{attempt}", hex::encode(session_id)),
            detail: format!("unknown state {state:?}"),
        })?;
        out.push(AttemptRecord {
            session_id: *session_id,
            attempt,
            state,
            opened_ms: crate::column::ms_back(opened_ms),
            signing_ms,
            closed_ms,
            nonce_hashes: Vec::new(),
        });
    }
    let mut stmt = conn.prepare_cached(
        "SELECT attempt, nonce_hash FROM nonces WHERE session_id = ?1 ORDER BY attempt, input",
    )?;
    let rows = stmt.query_map(params![session_id], |r| {
        Ok((r.get::<_, u32>(0)?, fixed::<32>(r, 1)?))
    })?;
    for row in rows {
        let (attempt, hash) = row?;
        if let Some(record) = out.iter_mut().find(|a| a.attempt == attempt) {
            record.nonce_hashes.push(hash);
        }
    }
    Ok(out)
}

/// Whether this public nonce was ever released.
pub(crate) fn is_used(conn: &Connection, nonce_hash: &[u8; 32]) -> Result<bool, Error> {
    Ok(slot_of(conn, nonce_hash)?.is_some())
}
