//! Blame evidence, stored as the exact bytes of `protocol::evidence::Evidence::encode()` under
//! their SHA256 (the id audit entries refer to). Anyone holding the group descriptor re-verifies
//! it with `Evidence::verify`; the reputation-aware election attaches it to proposals.

use lotus::hash::sha256;
use protocol::evidence::{Blame, Evidence};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::column::{fixed, ms, u64_col};
use crate::event::{OffenceKind, SignerKey};
use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvidence {
    /// SHA256 of `bytes`.
    pub id: [u8; 32],
    pub session_id: [u8; 32],
    pub attempt: u32,
    pub offence: OffenceKind,
    pub culprit: u16,
    pub signer: SignerKey,
    pub bytes: Vec<u8>,
    pub recorded_ms: u64,
}

impl StoredEvidence {
    pub fn decode(&self) -> Result<Evidence, Error> {
        Evidence::decode(&self.bytes).map_err(Error::Evidence)
    }
}

fn parse_offence(text: &str) -> Option<OffenceKind> {
    [
        OffenceKind::InvalidPartial,
        OffenceKind::Equivocation,
        OffenceKind::MalformedContribution,
        OffenceKind::WrongElectionProof,
    ]
    .into_iter()
    .find(|o| o.as_str() == text)
}

/// Stores verified evidence (idempotent); returns its id.
pub(crate) fn put(
    conn: &Connection,
    evidence: &Evidence,
    blame: &Blame,
    signer: &SignerKey,
    now_ms: u64,
) -> Result<[u8; 32], Error> {
    let bytes = evidence.encode();
    let id = sha256(&bytes);
    conn.prepare_cached(
        "INSERT INTO evidence (id, session_id, attempt, offence, culprit, signer, bytes,
                               recorded_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![
        id,
        blame.session_id,
        blame.attempt,
        OffenceKind::from(blame.offence).as_str(),
        blame.culprit,
        signer,
        bytes,
        ms(now_ms)
    ])?;
    Ok(id)
}

const COLUMNS: &str = "id, session_id, attempt, offence, culprit, signer, bytes, recorded_ms";

fn read(row: &Row<'_>) -> rusqlite::Result<StoredEvidence> {
    let offence: String = row.get(3)?;
    let offence = parse_offence(&offence).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            3,
            rusqlite::types::Type::Text,
            format!("unknown offence {offence:?}").into(),
        )
    })?;
    Ok(StoredEvidence {
        id: fixed(row, 0)?,
        session_id: fixed(row, 1)?,
        attempt: row.get(2)?,
        offence,
        culprit: row.get(4)?,
        signer: fixed(row, 5)?,
        bytes: row.get(6)?,
        recorded_ms: u64_col(row, 7)?,
    })
}

pub(crate) fn get(conn: &Connection, id: &[u8; 32]) -> Result<Option<StoredEvidence>, Error> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM evidence WHERE id = ?1"))?
        .query_row(params![id], read)
        .optional()?)
}

/// Everything recorded against a signer key, oldest first.
pub(crate) fn against(conn: &Connection, signer: &SignerKey) -> Result<Vec<StoredEvidence>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM evidence WHERE signer = ?1 ORDER BY recorded_ms, id"
    ))?;
    let rows = stmt.query_map(params![signer], read)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The stored bytes under `id`, if any (for the audit check: they must hash to `id`).
pub(crate) fn bytes(conn: &Connection, id: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    Ok(conn
        .prepare_cached("SELECT bytes FROM evidence WHERE id = ?1")?
        .query_row(params![id], |r| r.get(0))
        .optional()?)
}
