//! Known peers (libp2p peer ids) with their addresses, the signer key they proved (if any),
//! when they were last seen, and an anchor flag: anchors are the peers a restarted node dials
//! first, so an attacker who floods the address book cannot eclipse it (analysis §3.3).

use rusqlite::{params, Connection};

use crate::column::{fixed_opt, ms, u64_col};
use crate::event::SignerKey;
use crate::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    pub address: String,
    pub last_seen_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub peer_id: String,
    /// The member key this peer proved it speaks for (a signed binding), if any.
    pub signer: Option<SignerKey>,
    pub anchor: bool,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
    /// Most recently seen first.
    pub addresses: Vec<PeerAddress>,
}

/// Records that a peer was seen at `addresses`. A known signer binding is kept unless a new
/// one is given.
pub(crate) fn seen(
    conn: &Connection,
    peer_id: &str,
    signer: Option<&SignerKey>,
    addresses: &[String],
    now_ms: u64,
) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT INTO peers (peer_id, signer, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)
         ON CONFLICT (peer_id) DO UPDATE SET
             signer = coalesce(excluded.signer, signer),
             last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
    )?
    .execute(params![peer_id, signer, ms(now_ms)])?;
    for address in addresses {
        conn.prepare_cached(
            "INSERT INTO peer_addresses (peer_id, address, last_seen_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (peer_id, address) DO UPDATE SET
                 last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
        )?
        .execute(params![peer_id, address, ms(now_ms)])?;
    }
    Ok(())
}

pub(crate) fn set_anchor(conn: &Connection, peer_id: &str, anchor: bool) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("UPDATE peers SET anchor = ?2 WHERE peer_id = ?1")?
        .execute(params![peer_id, anchor])?
        == 1)
}

pub(crate) fn forget(conn: &Connection, peer_id: &str) -> Result<bool, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM peers WHERE peer_id = ?1")?
        .execute(params![peer_id])?
        == 1)
}

/// Drops addresses not seen since `before_ms` (peers themselves are kept).
pub(crate) fn prune_addresses(conn: &Connection, before_ms: u64) -> Result<usize, Error> {
    Ok(conn
        .prepare_cached("DELETE FROM peer_addresses WHERE last_seen_ms < ?1")?
        .execute(params![ms(before_ms)])?)
}

fn addresses(conn: &Connection, peer_id: &str) -> Result<Vec<PeerAddress>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT address, last_seen_ms FROM peer_addresses WHERE peer_id = ?1
         ORDER BY last_seen_ms DESC, address",
    )?;
    let rows = stmt.query_map(params![peer_id], |r| {
        Ok(PeerAddress {
            address: r.get(0)?,
            last_seen_ms: u64_col(r, 1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

fn read(
    conn: &Connection,
    sql: &str,
    param: Option<&dyn rusqlite::ToSql>,
) -> Result<Vec<Peer>, Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let map = |r: &rusqlite::Row<'_>| {
        Ok(Peer {
            peer_id: r.get(0)?,
            signer: fixed_opt(r, 1)?,
            anchor: r.get(2)?,
            first_seen_ms: u64_col(r, 3)?,
            last_seen_ms: u64_col(r, 4)?,
            addresses: Vec::new(),
        })
    };
    let mut peers = match param {
        Some(p) => stmt
            .query_map([p], map)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
        None => stmt
            .query_map([], map)?
            .collect::<rusqlite::Result<Vec<_>>>()?,
    };
    for peer in &mut peers {
        peer.addresses = addresses(conn, &peer.peer_id)?;
    }
    Ok(peers)
}

const COLUMNS: &str = "peer_id, signer, anchor, first_seen_ms, last_seen_ms";

pub(crate) fn get(conn: &Connection, peer_id: &str) -> Result<Option<Peer>, Error> {
    Ok(read(
        conn,
        &format!("SELECT {COLUMNS} FROM peers WHERE peer_id = ?1"),
        Some(&peer_id),
    )?
    .pop())
}

/// All peers, most recently seen first.
pub(crate) fn list(conn: &Connection) -> Result<Vec<Peer>, Error> {
    read(
        conn,
        &format!("SELECT {COLUMNS} FROM peers ORDER BY last_seen_ms DESC, peer_id"),
        None,
    )
}

pub(crate) fn anchors(conn: &Connection) -> Result<Vec<Peer>, Error> {
    read(
        conn,
        &format!(
            "SELECT {COLUMNS} FROM peers WHERE anchor = 1 ORDER BY last_seen_ms DESC, peer_id"
        ),
        None,
    )
}

/// Peers bound to a signer key.
pub(crate) fn of_signer(conn: &Connection, signer: &SignerKey) -> Result<Vec<Peer>, Error> {
    read(
        conn,
        &format!("SELECT {COLUMNS} FROM peers WHERE signer = ?1 ORDER BY last_seen_ms DESC"),
        Some(signer),
    )
}
