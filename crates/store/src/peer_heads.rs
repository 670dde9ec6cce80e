//! Co-signers' signed audit heads (carried in their round-1 messages). A member keeps every
//! head it was shown; two different hashes for one sequence number prove that member's log
//! was rewritten after it signed the first one.

use protocol::audit_head::SignedHead;
use rusqlite::{params, Connection};

use crate::column::ms;
use crate::event::SignerKey;
use crate::Error;

/// What one co-signer's heads say about its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHeads {
    pub signer: SignerKey,
    pub heads: u64,
    pub latest_seq: u64,
    /// Sequence numbers for which it signed two different hashes.
    pub rewritten_at: Vec<u64>,
}

/// Keeps a head (idempotent). Returns whether it conflicts with one already held.
pub(crate) fn record(
    conn: &Connection,
    signer: &SignerKey,
    head: &SignedHead,
    now_ms: u64,
) -> Result<bool, Error> {
    conn.prepare_cached(
        "INSERT INTO peer_audit_heads (signer, seq, hash, signature, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )?
    .execute(params![
        signer,
        ms(head.seq),
        head.hash,
        head.signature,
        ms(now_ms)
    ])?;
    let hashes: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM peer_audit_heads WHERE signer = ?1 AND seq = ?2")?
        .query_row(params![signer, ms(head.seq)], |r| r.get(0))?;
    Ok(hashes > 1)
}

pub(crate) fn report(conn: &Connection) -> Result<Vec<PeerHeads>, Error> {
    let mut stmt = conn.prepare(
        "SELECT signer, COUNT(*), MAX(seq) FROM peer_audit_heads GROUP BY signer ORDER BY signer",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let signer: SignerKey = crate::column::fixed(row, 0)?;
        let heads: i64 = row.get(1)?;
        let latest: i64 = row.get(2)?;
        let mut conflicts = conn.prepare_cached(
            "SELECT seq FROM peer_audit_heads WHERE signer = ?1
             GROUP BY seq HAVING COUNT(*) > 1 ORDER BY seq",
        )?;
        let rewritten_at = conflicts
            .query_map(params![signer], |r| r.get::<_, i64>(0))?
            .map(|seq| seq.map(|s| s as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(PeerHeads {
            signer,
            heads: heads as u64,
            latest_seq: latest as u64,
            rewritten_at,
        });
    }
    Ok(out)
}
