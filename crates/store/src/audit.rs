//! The audit log: an append-only hash chain of [`AuditEvent`]s.
//!
//! Entry `seq` (1, 2, 3, … with no gaps) stores `time_ms, kind, session_id?, group_id?, signer?,
//! body` (the event as JSON), `prev_hash` (the previous entry's hash; 32 zero bytes for entry 1)
//! and `hash = SHA256(prev_hash || canonical(entry))`, where the canonical bytes are a domain
//! tag, seq and time as 8-byte big-endian, then each column length-prefixed (absent columns as a
//! single 0 byte) — every stored byte of the row except `hash` itself. `audit_head` repeats the
//! last (seq, hash) in the same transaction as each append, so dropping entries from the end is
//! detected too. Optionally the head is signed with the member key (`audit_anchors`), which
//! someone who can edit the file but does not hold the key cannot redo after a rewrite.
//!
//! `verify` walks the chain in seq order and reports the FIRST broken entry.

use std::io::Write;

use lotus::hash::sha256;
use lotus::schnorr::{self, Signature};
use lotus::secp256k1::PublicKey;
use lotus::PrivateKey;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

use crate::column::{fixed, ms, ms_back, u64_col};
use crate::event::{AuditEvent, SignerKey};
use crate::evidence;
use crate::Error;

const DOMAIN: &[u8] = b"LotusCosigner/audit/v1";
const GENESIS: [u8; 32] = [0; 32];

/// A verified or freshly written entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub seq: u64,
    pub time_ms: u64,
    pub session_id: Option<[u8; 32]>,
    pub group_id: Option<[u8; 32]>,
    pub signer: Option<SignerKey>,
    pub event: AuditEvent,
    pub prev_hash: [u8; 32],
    pub hash: [u8; 32],
}

/// The chain's last entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditHead {
    pub seq: u64,
    pub hash: [u8; 32],
}

/// A chain head signed with a member key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    pub seq: u64,
    pub hash: [u8; 32],
    pub public_key: SignerKey,
    pub signature: [u8; 64],
    pub signed_ms: u64,
}

/// What a successful `verify` checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSummary {
    pub entries: u64,
    pub head: Option<AuditHead>,
    /// Signed heads checked (signature, key, and that the chain still has that hash there).
    pub anchors: u64,
    /// What the co-signers' signed heads we hold say about their logs.
    pub peers: Vec<crate::peer_heads::PeerHeads>,
}

/// The first broken entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("entry {seq}: {problem}")]
pub struct ChainBreak {
    /// The chain position (seq) of the first bad entry.
    pub seq: u64,
    pub problem: BreakKind,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BreakKind {
    #[error("missing (the next entry present is {next_present})")]
    Missing { next_present: u64 },
    #[error("stored with sequence number {found}")]
    UnexpectedSeq { found: i64 },
    #[error("out of order: it links to entry {follows}, not to the entry before it")]
    Reordered { follows: u64 },
    #[error("its previous-hash does not match the entry before it")]
    PrevMismatch,
    #[error("its content does not match its hash (edited)")]
    HashMismatch,
    #[error("column {column} is unreadable")]
    Unreadable { column: &'static str },
    #[error("missing: the log ended at {last} but its head says {head_seq} (entries removed from the end)")]
    Truncated { last: u64, head_seq: u64 },
    #[error("beyond the recorded head {head_seq} (entries added outside the store)")]
    BeyondHead { head_seq: u64 },
    #[error("the recorded head hash does not match it")]
    HeadMismatch,
    #[error("the log has entries but no recorded head")]
    HeadMissing,
    #[error("its blame evidence {} is missing", hex::encode(evidence_id))]
    EvidenceMissing { evidence_id: [u8; 32] },
    #[error("its blame evidence {} was altered", hex::encode(evidence_id))]
    EvidenceMismatch { evidence_id: [u8; 32] },
    #[error("a signed head names a different hash for it (history rewritten)")]
    AnchorMismatch,
    #[error("the signature on the head signed at it is invalid")]
    AnchorSignature,
    #[error("the head signed at it is signed by another key")]
    AnchorKey,
    #[error(
        "session {} ended (the sessions table says so) but its end is not in the log under a \
         signed head: the log was cut back, or its signed heads were removed",
        hex::encode(.session_id)
    )]
    SessionEndUnsigned { session_id: [u8; 32] },
}

/// A row exactly as stored, whatever was done to it.
struct RawRow {
    seq: i64,
    time: i64,
    kind: Vec<u8>,
    session: Option<Vec<u8>>,
    group: Option<Vec<u8>>,
    signer: Option<Vec<u8>>,
    body: Vec<u8>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

fn put_field(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0),
        Some(bytes) => {
            out.push(1);
            out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            out.extend_from_slice(bytes);
        }
    }
}

impl RawRow {
    fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DOMAIN.len() + 64 + self.body.len() + 140);
        out.extend_from_slice(DOMAIN);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.time.to_be_bytes());
        put_field(&mut out, Some(&self.kind));
        put_field(&mut out, self.session.as_deref());
        put_field(&mut out, self.group.as_deref());
        put_field(&mut out, self.signer.as_deref());
        put_field(&mut out, Some(&self.body));
        out
    }

    fn compute_hash(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(32 + 256);
        bytes.extend_from_slice(&self.prev_hash);
        bytes.extend_from_slice(&self.canonical());
        sha256(&bytes)
    }

    fn read(row: &Row<'_>) -> Result<Self, &'static str> {
        fn integer(row: &Row<'_>, i: usize, name: &'static str) -> Result<i64, &'static str> {
            match row.get_ref(i).map_err(|_| name)? {
                ValueRef::Integer(v) => Ok(v),
                _ => Err(name),
            }
        }
        fn bytes(row: &Row<'_>, i: usize, name: &'static str) -> Result<Vec<u8>, &'static str> {
            match row.get_ref(i).map_err(|_| name)? {
                ValueRef::Text(b) | ValueRef::Blob(b) => Ok(b.to_vec()),
                _ => Err(name),
            }
        }
        fn optional(
            row: &Row<'_>,
            i: usize,
            name: &'static str,
        ) -> Result<Option<Vec<u8>>, &'static str> {
            match row.get_ref(i).map_err(|_| name)? {
                ValueRef::Null => Ok(None),
                ValueRef::Text(b) | ValueRef::Blob(b) => Ok(Some(b.to_vec())),
                _ => Err(name),
            }
        }
        Ok(Self {
            seq: integer(row, 0, "seq")?,
            time: integer(row, 1, "time_ms")?,
            kind: bytes(row, 2, "kind")?,
            session: optional(row, 3, "session_id")?,
            group: optional(row, 4, "group_id")?,
            signer: optional(row, 5, "signer")?,
            body: bytes(row, 6, "body")?,
            prev_hash: bytes(row, 7, "prev_hash")?,
            hash: bytes(row, 8, "hash")?,
        })
    }
}

const ROW_COLUMNS: &str = "seq, time_ms, kind, session_id, group_id, signer, body, prev_hash, hash";

pub(crate) fn head(conn: &Connection) -> Result<Option<AuditHead>, Error> {
    Ok(conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| {
            Ok(AuditHead {
                seq: u64_col(r, 0)?,
                hash: fixed(r, 1)?,
            })
        })
        .optional()?)
}

/// Appends one event. `group_id` fills the group column when the event does not name one
/// (the store passes the session's group).
pub(crate) fn append(
    conn: &Connection,
    event: &AuditEvent,
    group_id: Option<[u8; 32]>,
    now_ms: u64,
) -> Result<AuditEntry, Error> {
    let (seq, prev_hash) = match head(conn)? {
        Some(h) => (h.seq + 1, h.hash),
        None => (1, GENESIS),
    };
    let session_id = event.session_id();
    let group_id = event.group_id().or(group_id);
    let signer = event.signer();
    let body = serde_json::to_string(event)?;
    let raw = RawRow {
        seq: seq as i64,
        time: ms(now_ms),
        kind: event.kind().as_bytes().to_vec(),
        session: session_id.map(|s| s.to_vec()),
        group: group_id.map(|g| g.to_vec()),
        signer: signer.map(|s| s.to_vec()),
        body: body.into_bytes(),
        prev_hash: prev_hash.to_vec(),
        hash: Vec::new(),
    };
    let hash = raw.compute_hash();
    conn.prepare_cached(
        "INSERT INTO audit (seq, time_ms, kind, session_id, group_id, signer, body, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        raw.seq,
        raw.time,
        event.kind(),
        session_id,
        group_id,
        signer,
        std::str::from_utf8(&raw.body).expect("serde_json writes UTF-8"),
        prev_hash,
        hash
    ])?;
    conn.prepare_cached(
        "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    )?
    .execute(params![raw.seq, hash])?;
    Ok(AuditEntry {
        seq,
        time_ms: now_ms,
        session_id,
        group_id,
        signer,
        event: event.clone(),
        prev_hash,
        hash,
    })
}

/// The same message as `protocol::audit_head` (a head signed here verifies there).
fn anchor_message(seq: u64, hash: &[u8; 32]) -> [u8; 32] {
    protocol::audit_head::head_message(seq, hash)
}

/// Signs the current head with the member key. `None` while the log is empty.
pub(crate) fn anchor(
    conn: &Connection,
    key: &PrivateKey,
    now_ms: u64,
) -> Result<Option<AuditAnchor>, Error> {
    let Some(head) = head(conn)? else {
        return Ok(None);
    };
    let signature = schnorr::sign(key, &anchor_message(head.seq, &head.hash)).to_bytes();
    let public_key = key.public_key().serialize();
    conn.prepare_cached(
        "INSERT INTO audit_anchors (seq, hash, public_key, signature, signed_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (seq) DO UPDATE SET hash = excluded.hash, public_key = excluded.public_key,
             signature = excluded.signature, signed_ms = excluded.signed_ms",
    )?
    .execute(params![
        ms(head.seq),
        head.hash,
        public_key,
        signature,
        ms(now_ms)
    ])?;
    Ok(Some(AuditAnchor {
        seq: head.seq,
        hash: head.hash,
        public_key,
        signature,
        signed_ms: now_ms,
    }))
}

fn broken(seq: u64, problem: BreakKind) -> Error {
    Error::AuditBroken(ChainBreak { seq, problem })
}

/// Walks the whole chain; `Err(Error::AuditBroken)` names the first bad entry. With
/// `anchor_key`, every signed head must also be signed by that key.
pub(crate) fn verify(
    conn: &Connection,
    anchor_key: Option<&PublicKey>,
) -> Result<AuditSummary, Error> {
    let mut expected: u64 = 1;
    let mut prev = GENESIS.to_vec();
    {
        let mut stmt = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM audit ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let raw = match RawRow::read(row) {
                Ok(raw) => raw,
                Err(column) => return Err(broken(expected, BreakKind::Unreadable { column })),
            };
            if raw.seq != expected as i64 {
                let problem = if raw.seq > expected as i64 {
                    BreakKind::Missing {
                        next_present: raw.seq as u64,
                    }
                } else {
                    BreakKind::UnexpectedSeq { found: raw.seq }
                };
                return Err(broken(expected, problem));
            }
            if raw.prev_hash != prev {
                let follows: Option<i64> = conn
                    .prepare_cached("SELECT seq FROM audit WHERE hash = ?1 ORDER BY seq LIMIT 1")?
                    .query_row(params![raw.prev_hash], |r| r.get(0))
                    .optional()?;
                let problem = match follows {
                    Some(other) => BreakKind::Reordered {
                        follows: ms_back(other),
                    },
                    None => BreakKind::PrevMismatch,
                };
                return Err(broken(expected, problem));
            }
            if raw.compute_hash().as_slice() != raw.hash.as_slice() {
                return Err(broken(expected, BreakKind::HashMismatch));
            }
            if raw.kind == b"blamed" {
                check_evidence(conn, &raw, expected)?;
            }
            prev = raw.hash;
            expected += 1;
        }
    }
    let last = expected - 1;
    let head = head(conn)?;
    match head {
        None if last == 0 => {}
        None => return Err(broken(last, BreakKind::HeadMissing)),
        Some(h) if h.seq > last => {
            return Err(broken(
                last + 1,
                BreakKind::Truncated {
                    last,
                    head_seq: h.seq,
                },
            ))
        }
        Some(h) if h.seq < last => {
            return Err(broken(h.seq + 1, BreakKind::BeyondHead { head_seq: h.seq }))
        }
        Some(h) if h.hash.as_slice() != prev.as_slice() => {
            return Err(broken(last, BreakKind::HeadMismatch))
        }
        Some(_) => {}
    }
    let anchors = check_anchors(conn, last, anchor_key)?;
    if anchor_key.is_some() {
        check_session_ends(conn, last)?;
    }
    Ok(AuditSummary {
        entries: last,
        head,
        anchors,
        peers: Vec::new(),
    })
}

fn check_evidence(conn: &Connection, raw: &RawRow, seq: u64) -> Result<(), Error> {
    let Ok(AuditEvent::Blamed { evidence_id, .. }) = serde_json::from_slice(&raw.body) else {
        return Err(broken(seq, BreakKind::Unreadable { column: "body" }));
    };
    match evidence::bytes(conn, &evidence_id)? {
        None => Err(broken(seq, BreakKind::EvidenceMissing { evidence_id })),
        Some(bytes) if sha256(&bytes) != evidence_id => {
            Err(broken(seq, BreakKind::EvidenceMismatch { evidence_id }))
        }
        Some(_) => Ok(()),
    }
}

/// With the member key: every session that ended since signed heads became mandatory must
/// have its end (`confirmed` / `session_aborted`) in the log at or below a signed head. The
/// engine signs a head at every session end and at start-up, so cutting the log back and
/// rewriting its head, or deleting the signed heads, shows up here.
fn check_session_ends(conn: &Connection, last: u64) -> Result<(), Error> {
    let since: Option<i64> = conn
        .query_row(
            "SELECT anchors_since_ms FROM audit_policy WHERE id = 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let Some(since) = since else {
        return Ok(());
    };
    let signed_up_to: Option<i64> =
        conn.query_row("SELECT MAX(seq) FROM audit_anchors", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT s.session_id,
                (SELECT MAX(a.seq) FROM audit a
                 WHERE a.session_id = s.session_id AND a.kind IN ('confirmed', 'session_aborted'))
         FROM sessions s
         WHERE s.closed_ms IS NOT NULL AND s.closed_ms >= ?1
           AND (s.outcome_detail IS NULL OR s.outcome_detail NOT LIKE '%\"protocol_upgrade\"%')",
    )?;
    let mut rows = stmt.query(params![since])?;
    while let Some(row) = rows.next()? {
        let session_id: [u8; 32] = fixed(row, 0)?;
        let end: Option<i64> = row.get(1)?;
        let covered = matches!((end, signed_up_to), (Some(e), Some(a)) if e <= a);
        if !covered {
            let seq = end.map_or(last + 1, |e| e as u64);
            return Err(broken(seq, BreakKind::SessionEndUnsigned { session_id }));
        }
    }
    Ok(())
}

fn check_anchors(conn: &Connection, last: u64, key: Option<&PublicKey>) -> Result<u64, Error> {
    let mut stmt =
        conn.prepare("SELECT seq, hash, public_key, signature FROM audit_anchors ORDER BY seq")?;
    let mut rows = stmt.query([])?;
    let mut checked = 0;
    while let Some(row) = rows.next()? {
        let seq = ms_back(row.get(0)?);
        let hash: Vec<u8> = row.get(1)?;
        let public_key: Vec<u8> = row.get(2)?;
        let signature: Vec<u8> = row.get(3)?;
        if seq > last {
            return Err(broken(
                last + 1,
                BreakKind::Truncated {
                    last,
                    head_seq: seq,
                },
            ));
        }
        let stored: Option<Vec<u8>> = conn
            .prepare_cached("SELECT hash FROM audit WHERE seq = ?1")?
            .query_row(params![ms(seq)], |r| r.get(0))
            .optional()?;
        if stored.as_deref() != Some(hash.as_slice()) {
            return Err(broken(seq, BreakKind::AnchorMismatch));
        }
        let (Ok(hash), Ok(signature), Ok(signer)) = (
            <[u8; 32]>::try_from(hash.as_slice()),
            <[u8; 64]>::try_from(signature.as_slice()),
            PublicKey::from_slice(&public_key),
        ) else {
            return Err(broken(seq, BreakKind::AnchorSignature));
        };
        if let Some(expected) = key {
            if *expected != signer {
                return Err(broken(seq, BreakKind::AnchorKey));
            }
        }
        let message = anchor_message(seq, &hash);
        if !schnorr::verify(&Signature::from_bytes(signature), &message, &signer) {
            return Err(broken(seq, BreakKind::AnchorSignature));
        }
        checked += 1;
    }
    Ok(checked)
}

fn read_entry(row: &Row<'_>) -> Result<AuditEntry, Error> {
    let seq = u64_col(row, 0)?;
    let corrupt = |detail: String| Error::CorruptRow {
        table: "audit",
        key: seq.to_string(),
        detail,
    };
    let body = match row.get_ref(6)? {
        ValueRef::Text(b) => b,
        _ => return Err(corrupt("body is not text".into())),
    };
    let event: AuditEvent =
        serde_json::from_slice(body).map_err(|e| corrupt(format!("body: {e}")))?;
    Ok(AuditEntry {
        seq,
        time_ms: u64_col(row, 1)?,
        session_id: crate::column::fixed_opt(row, 3)?,
        group_id: crate::column::fixed_opt(row, 4)?,
        signer: crate::column::fixed_opt(row, 5)?,
        event,
        prev_hash: fixed(row, 7)?,
        hash: fixed(row, 8)?,
    })
}

/// Entries with seq > `after`, at most `limit`, oldest first (not verified: run `verify`).
pub(crate) fn entries(conn: &Connection, after: u64, limit: u32) -> Result<Vec<AuditEntry>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![ms(after), limit])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_entry(row)?);
    }
    Ok(out)
}

/// The entries about one session, oldest first.
/// Whether the session's proposal (created here or received) is in the log already.
pub(crate) fn has_proposal_entry(conn: &Connection, session_id: &[u8; 32]) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM audit WHERE session_id = ?1
             AND kind IN ('proposal_created', 'proposal_received') LIMIT 1",
        )?
        .exists(params![session_id])?)
}

pub(crate) fn of_session(
    conn: &Connection,
    session_id: &[u8; 32],
) -> Result<Vec<AuditEntry>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM audit WHERE session_id = ?1 ORDER BY seq"
    ))?;
    let mut rows = stmt.query(params![session_id])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_entry(row)?);
    }
    Ok(out)
}

#[derive(Serialize, serde::Deserialize)]
struct ExportHead {
    seq: u64,
    time_ms: u64,
    kind: String,
    session_id: Option<String>,
    group_id: Option<String>,
    signer: Option<String>,
    prev_hash: String,
    hash: String,
}

/// Separates the line's fixed fields from the event, which is written last and verbatim (the
/// exact bytes the hash covers). Inside JSON strings a quote is always escaped, so this
/// sequence can only be the key.
const EVENT_KEY: &str = ",\"event\":";

/// One JSON object per line, oldest first: the row's columns (ids and hashes as hex) and, last,
/// `"event"`: the stored JSON body byte for byte, so the chain can be re-checked outside the
/// app (`verify_jsonl`). Exports what is stored, verified or not: run `verify` first. Returns
/// how many entries were written.
pub(crate) fn export_jsonl(conn: &Connection, out: &mut dyn Write) -> Result<u64, Error> {
    let mut stmt = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM audit ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut count = 0;
    while let Some(row) = rows.next()? {
        let raw = RawRow::read(row).map_err(|column| Error::CorruptRow {
            table: "audit",
            key: format!("row {}", count + 1),
            detail: format!("{column} unreadable"),
        })?;
        let corrupt = |detail: String| Error::CorruptRow {
            table: "audit",
            key: raw.seq.to_string(),
            detail,
        };
        let kind = std::str::from_utf8(&raw.kind).map_err(|e| corrupt(format!("kind: {e}")))?;
        let body = std::str::from_utf8(&raw.body).map_err(|e| corrupt(format!("body: {e}")))?;
        if body.contains(['\n', '\r']) || serde_json::from_str::<serde_json::Value>(body).is_err() {
            return Err(corrupt("body is not one line of JSON".into()));
        }
        let head = ExportHead {
            seq: ms_back(raw.seq),
            time_ms: ms_back(raw.time),
            kind: kind.to_string(),
            session_id: raw.session.as_ref().map(hex::encode),
            group_id: raw.group.as_ref().map(hex::encode),
            signer: raw.signer.as_ref().map(hex::encode),
            prev_hash: hex::encode(&raw.prev_hash),
            hash: hex::encode(&raw.hash),
        };
        let mut line = serde_json::to_string(&head)?;
        line.pop();
        line.push_str(EVENT_KEY);
        line.push_str(body);
        line.push_str("}\n");
        out.write_all(line.as_bytes()).map_err(Error::Export)?;
        count += 1;
    }
    out.flush().map_err(Error::Export)?;
    Ok(count)
}

/// Re-checks the chain in an `export_jsonl` file without the database: sequence, links and
/// every hash. Returns the number of entries; the first bad line is an `AuditBroken`.
pub fn verify_jsonl(input: &mut dyn std::io::BufRead) -> Result<u64, Error> {
    let mut expected = 1u64;
    let mut prev = GENESIS.to_vec();
    let mut text = String::new();
    loop {
        text.clear();
        if input.read_line(&mut text).map_err(Error::Export)? == 0 {
            break;
        }
        let unreadable = |column| broken(expected, BreakKind::Unreadable { column });
        let line = text.trim_end_matches(['\n', '\r']);
        let split = line.find(EVENT_KEY).ok_or_else(|| unreadable("event"))?;
        let body = line[split + EVENT_KEY.len()..]
            .strip_suffix('}')
            .ok_or_else(|| unreadable("event"))?;
        let head: ExportHead = serde_json::from_str(&format!("{}}}", &line[..split]))
            .map_err(|_| unreadable("line"))?;
        let decode = |field: &Option<String>, column| {
            field
                .as_ref()
                .map(|h| hex::decode(h).map_err(|_| unreadable(column)))
                .transpose()
        };
        if head.seq != expected {
            return Err(broken(
                expected,
                BreakKind::Missing {
                    next_present: head.seq,
                },
            ));
        }
        let raw = RawRow {
            seq: head.seq as i64,
            time: head.time_ms as i64,
            kind: head.kind.into_bytes(),
            session: decode(&head.session_id, "session_id")?,
            group: decode(&head.group_id, "group_id")?,
            signer: decode(&head.signer, "signer")?,
            body: body.as_bytes().to_vec(),
            prev_hash: hex::decode(&head.prev_hash).map_err(|_| unreadable("prev_hash"))?,
            hash: hex::decode(&head.hash).map_err(|_| unreadable("hash"))?,
        };
        if raw.prev_hash != prev {
            return Err(broken(expected, BreakKind::PrevMismatch));
        }
        if raw.compute_hash().as_slice() != raw.hash.as_slice() {
            return Err(broken(expected, BreakKind::HashMismatch));
        }
        prev = raw.hash;
        expected += 1;
    }
    Ok(expected - 1)
}
