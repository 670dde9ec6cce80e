//! Every signed envelope this node sent or received, as the exact bytes, so blame evidence and
//! the audit can be rebuilt and re-verified from the store alone. Idempotent on the envelope
//! hash (SHA256 of the bytes, the protocol's `Envelope::id`).

use lotus::hash::sha256;
use protocol::envelope::{Envelope, MessageKind};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::column::{fixed, ms, u64_col};
use crate::Error;

/// Bound for decoding stored envelopes (the protocol's largest message, a proposal, is far
/// below it).
pub const MAX_STORED_ENVELOPE: usize = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Incoming,
    Outgoing,
}

impl Direction {
    /// From the protocol's `outgoing` flag.
    pub fn of(outgoing: bool) -> Self {
        if outgoing {
            Direction::Outgoing
        } else {
            Direction::Incoming
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Direction::Incoming => "in",
            Direction::Outgoing => "out",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// SHA256 of `bytes`.
    pub hash: [u8; 32],
    pub session_id: [u8; 32],
    pub group_id: [u8; 32],
    pub attempt: u32,
    pub sender: u16,
    pub kind: MessageKind,
    pub direction: Direction,
    /// The sender's header timestamp.
    pub sent_ms: u64,
    /// When this node stored it.
    pub received_ms: u64,
    pub bytes: Vec<u8>,
}

impl StoredMessage {
    /// Decodes the envelope (signature not checked: do that against the group).
    pub fn envelope(&self) -> Result<Envelope, Error> {
        Envelope::decode(&self.bytes, MAX_STORED_ENVELOPE).map_err(Error::Envelope)
    }
}

/// What storing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    pub hash: [u8; 32],
    /// False if these exact bytes were already stored.
    pub new: bool,
}

/// Stores an envelope filed under `session_id` (which must be the header's). A proposal also
/// opens the session row.
pub(crate) fn store(
    conn: &Connection,
    session_id: &[u8; 32],
    bytes: &[u8],
    direction: Direction,
    now_ms: u64,
) -> Result<(Stored, Envelope), Error> {
    let envelope = Envelope::decode(bytes, MAX_STORED_ENVELOPE).map_err(Error::Envelope)?;
    let header = &envelope.header;
    if header.session_id != *session_id {
        return Err(Error::MessageSessionMismatch {
            filed: *session_id,
            header: header.session_id,
        });
    }
    let hash = sha256(bytes);
    let inserted = conn
        .prepare_cached(
            "INSERT INTO messages (hash, session_id, group_id, attempt, sender, kind, direction,
                                   sent_ms, received_ms, bytes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (hash) DO NOTHING",
        )?
        .execute(params![
            hash,
            session_id,
            header.group_id.0,
            header.attempt,
            header.sender,
            header.kind.code(),
            direction.as_str(),
            ms(header.timestamp_ms),
            ms(now_ms),
            bytes
        ])?;
    Ok((
        Stored {
            hash,
            new: inserted == 1,
        },
        envelope,
    ))
}

const COLUMNS: &str = "hash, session_id, group_id, attempt, sender, kind, direction, sent_ms,
                       received_ms, bytes";

fn read(row: &Row<'_>) -> rusqlite::Result<StoredMessage> {
    let code: u8 = row.get(5)?;
    let kind = MessageKind::from_code(code).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            5,
            rusqlite::types::Type::Integer,
            format!("unknown message kind {code}").into(),
        )
    })?;
    let direction = match row.get_ref(6)?.as_str()? {
        "in" => Direction::Incoming,
        _ => Direction::Outgoing,
    };
    Ok(StoredMessage {
        hash: fixed(row, 0)?,
        session_id: fixed(row, 1)?,
        group_id: fixed(row, 2)?,
        attempt: row.get(3)?,
        sender: row.get(4)?,
        kind,
        direction,
        sent_ms: u64_col(row, 7)?,
        received_ms: u64_col(row, 8)?,
        bytes: row.get(9)?,
    })
}

fn collect(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredMessage>, Error> {
    let rows = stmt.query_map(params, read)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn by_hash(conn: &Connection, hash: &[u8; 32]) -> Result<Option<StoredMessage>, Error> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM messages WHERE hash = ?1"))?
        .query_row(params![hash], read)
        .optional()?)
}

/// The messages of one kind in one attempt, in member order (several from one sender — an
/// equivocation — in arrival order): what evidence is rebuilt from, e.g. all `Nonces`.
pub(crate) fn of_attempt(
    conn: &Connection,
    session_id: &[u8; 32],
    attempt: u32,
    kind: MessageKind,
) -> Result<Vec<StoredMessage>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE session_id = ?1 AND attempt = ?2 AND kind = ?3
         ORDER BY sender, id"
    ))?;
    collect(&mut stmt, params![session_id, attempt, kind.code()])
}

/// Everything stored for a session, in arrival order.
pub(crate) fn of_session(
    conn: &Connection,
    session_id: &[u8; 32],
) -> Result<Vec<StoredMessage>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM messages WHERE session_id = ?1 ORDER BY id"
    ))?;
    collect(&mut stmt, params![session_id])
}

/// For each sender, the arrival time of its first message of `kind` in the attempt, and
/// whether it was this node's own.
pub(crate) fn first_arrivals(
    conn: &Connection,
    session_id: &[u8; 32],
    attempt: u32,
    kind: MessageKind,
) -> Result<Vec<(u16, u64, Direction)>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT sender, min(received_ms), max(direction = 'out') FROM messages
         WHERE session_id = ?1 AND attempt = ?2 AND kind = ?3
         GROUP BY sender ORDER BY sender",
    )?;
    let rows = stmt.query_map(params![session_id, attempt, kind.code()], |r| {
        let outgoing: bool = r.get(2)?;
        Ok((
            r.get::<_, u16>(0)?,
            u64_col(r, 1)?,
            if outgoing {
                Direction::Outgoing
            } else {
                Direction::Incoming
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub(crate) fn count(conn: &Connection) -> Result<u64, Error> {
    Ok(conn.query_row("SELECT count(*) FROM messages", [], |r| u64_col(r, 0))?)
}

/// See `Store::prune_messages`.
pub(crate) fn prune(conn: &Connection, before_ms: u64) -> Result<usize, Error> {
    Ok(conn
        .prepare_cached(
            "DELETE FROM messages WHERE received_ms < ?1 AND session_id IN (
                 SELECT m.session_id FROM messages m
                 LEFT JOIN sessions s ON s.session_id = m.session_id
                 WHERE s.session_id IS NULL OR (s.closed_ms IS NOT NULL AND s.closed_ms < ?1)
             )",
        )?
        .execute(params![ms(before_ms)])?)
}
