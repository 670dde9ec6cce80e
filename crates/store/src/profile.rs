//! The profile's own tables (schema v3): its signer key record, its groups with members'
//! acceptances, and the coins of every group as the chain backends report them.

use rusqlite::{params, Connection, OptionalExtension};

use crate::Error;

/// Which key this profile belongs to (public data only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerRow {
    pub public_key: [u8; 33],
    pub created_ms: u64,
    pub backup_confirmed_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub group_id: [u8; 32],
    pub name: String,
    /// The canonical descriptor encoding (the engine decodes and validates it).
    pub descriptor: Vec<u8>,
    pub added_ms: u64,
    /// Encoded signed acceptances, by member key order of insertion.
    pub acceptances: Vec<Vec<u8>>,
}

/// An output paying a group, as a backend reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinRow {
    pub txid: [u8; 32],
    pub vout: u32,
    pub value: i64,
    pub script: Vec<u8>,
    /// `None` while only in a mempool.
    pub height: Option<u32>,
    pub first_seen_ms: u64,
    pub spent_seen_ms: Option<u64>,
    pub backend: String,
}

/// One output a backend reports unspent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unspent {
    pub txid: [u8; 32],
    pub vout: u32,
    pub value: i64,
    /// `None` while only in a mempool.
    pub height: Option<u32>,
}

/// What [`apply_unspent`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoinChanges {
    pub received: usize,
    pub spent: usize,
    pub confirmed: usize,
}

impl CoinChanges {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

pub(crate) fn signer(conn: &Connection) -> Result<Option<SignerRow>, Error> {
    conn.query_row(
        "SELECT public_key, created_ms, backup_confirmed_ms FROM profile_signer WHERE id = 1",
        [],
        |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Option<i64>>(2)?,
            ))
        },
    )
    .optional()?
    .map(|(key, created, backup)| {
        Ok(SignerRow {
            public_key: key
                .try_into()
                .map_err(|_| Error::Sqlite(rusqlite::Error::InvalidQuery))?,
            created_ms: created as u64,
            backup_confirmed_ms: backup.map(|b| b as u64),
        })
    })
    .transpose()
}

/// Records the profile's key; a second, different key is refused by the `id = 1` constraint.
pub(crate) fn record_signer(conn: &Connection, row: &SignerRow) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO profile_signer (id, public_key, created_ms, backup_confirmed_ms) VALUES (1, ?1, ?2, ?3)",
        params![
            &row.public_key[..],
            row.created_ms as i64,
            row.backup_confirmed_ms.map(|b| b as i64)
        ],
    )?;
    Ok(())
}

pub(crate) fn replace_signer(conn: &Connection, row: &SignerRow) -> Result<(), Error> {
    conn.execute(
        "UPDATE profile_signer SET public_key = ?1, created_ms = ?2, backup_confirmed_ms = ?3 WHERE id = 1",
        params![
            &row.public_key[..],
            row.created_ms as i64,
            row.backup_confirmed_ms.map(|b| b as i64)
        ],
    )?;
    Ok(())
}

pub(crate) fn record_group_backup(
    conn: &Connection,
    group_id: &[u8; 32],
    now_ms: u64,
) -> Result<(), Error> {
    conn.execute(
        "INSERT INTO group_backups (group_id, saved_ms) VALUES (?1, ?2)
         ON CONFLICT (group_id) DO UPDATE SET saved_ms = excluded.saved_ms",
        params![&group_id[..], now_ms as i64],
    )?;
    Ok(())
}

pub(crate) fn group_backup(conn: &Connection, group_id: &[u8; 32]) -> Result<Option<u64>, Error> {
    Ok(conn
        .query_row(
            "SELECT saved_ms FROM group_backups WHERE group_id = ?1",
            [&group_id[..]],
            |row| row.get::<_, i64>(0),
        )
        .optional()?
        .map(|ms| ms.max(0) as u64))
}

pub(crate) fn confirm_backup(conn: &Connection, now_ms: u64) -> Result<bool, Error> {
    Ok(conn.execute(
        "UPDATE profile_signer SET backup_confirmed_ms = ?1 WHERE id = 1",
        [now_ms as i64],
    )? == 1)
}

/// Saves a group (kept as first saved: a descriptor's id is its hash) and any acceptances.
pub(crate) fn save_group(
    conn: &Connection,
    group_id: &[u8; 32],
    name: &str,
    descriptor: &[u8],
    acceptances: &[([u8; 33], Vec<u8>)],
    now_ms: u64,
) -> Result<bool, Error> {
    let added = conn.execute(
        "INSERT OR IGNORE INTO groups (group_id, name, descriptor, added_ms) VALUES (?1, ?2, ?3, ?4)",
        params![&group_id[..], name, descriptor, now_ms as i64],
    )? == 1;
    for (member, acceptance) in acceptances {
        conn.execute(
            "INSERT OR IGNORE INTO group_acceptances (group_id, member, acceptance, received_ms)
             VALUES (?1, ?2, ?3, ?4)",
            params![&group_id[..], &member[..], acceptance, now_ms as i64],
        )?;
    }
    Ok(added)
}

pub(crate) fn groups(conn: &Connection) -> Result<Vec<GroupRow>, Error> {
    let mut statement = conn.prepare(
        "SELECT group_id, name, descriptor, added_ms FROM groups ORDER BY added_ms, group_id",
    )?;
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut acceptances = conn.prepare(
        "SELECT acceptance FROM group_acceptances WHERE group_id = ?1 ORDER BY received_ms, member",
    )?;
    rows.into_iter()
        .map(|(id, name, descriptor, added)| {
            let accepted = acceptances
                .query_map([&id], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(GroupRow {
                group_id: id
                    .try_into()
                    .map_err(|_| Error::Sqlite(rusqlite::Error::InvalidQuery))?,
                name,
                descriptor,
                added_ms: added as u64,
                acceptances: accepted,
            })
        })
        .collect()
}

/// Makes `unspent` (what `backend` reports now for the group's script) the group's unspent set:
/// new coins are added, coins no longer reported are marked spent (kept for the history), and
/// heights are updated (a reorg can also move a coin back to the mempool).
pub(crate) fn apply_unspent(
    conn: &Connection,
    group_id: &[u8; 32],
    script: &[u8],
    unspent: &[Unspent],
    backend: &str,
    now_ms: u64,
) -> Result<CoinChanges, Error> {
    let mut changes = CoinChanges::default();
    // One entry per outpoint (a backend may repeat one); the last report wins.
    let mut latest: Vec<Unspent> = Vec::with_capacity(unspent.len());
    for u in unspent {
        match latest
            .iter_mut()
            .find(|l| l.txid == u.txid && l.vout == u.vout)
        {
            Some(l) => *l = *u,
            None => latest.push(*u),
        }
    }
    let unspent = &latest[..];
    let known: Vec<([u8; 32], u32, Option<u32>, bool)> = conn
        .prepare(
            "SELECT txid, vout, height, spent_seen_ms IS NOT NULL FROM group_coins
             WHERE group_id = ?1 AND script = ?2",
        )?
        .query_map(params![&group_id[..], script], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, Option<u32>>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })?
        .filter_map(|row| {
            row.map(|(txid, vout, height, spent)| {
                txid.try_into().ok().map(|t| (t, vout, height, spent))
            })
            .transpose()
        })
        .collect::<Result<_, _>>()?;
    for Unspent {
        txid,
        vout,
        value,
        height,
    } in unspent
    {
        match known.iter().find(|(t, v, _, _)| t == txid && v == vout) {
            None => {
                conn.execute(
                    "INSERT INTO group_coins (group_id, txid, vout, value, script, height, first_seen_ms, backend)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![&group_id[..], &txid[..], vout, value, script, height, now_ms as i64, backend],
                )?;
                changes.received += 1;
            }
            Some((_, _, old_height, spent)) => {
                if old_height.is_none() && height.is_some() {
                    changes.confirmed += 1;
                }
                // The value is the backend's latest word too: a coin once reported wrong is
                // corrected, not kept (signing with a wrong amount is refused by every node).
                conn.execute(
                    "UPDATE group_coins SET height = ?1, spent_seen_ms = NULL, backend = ?2, value = ?3
                     WHERE group_id = ?4 AND txid = ?5 AND vout = ?6
                       AND (height IS NOT ?1 OR spent_seen_ms IS NOT NULL OR value != ?3)",
                    params![height, backend, value, &group_id[..], &txid[..], vout],
                )?;
                let _ = spent;
            }
        }
    }
    for (txid, vout, _, spent) in &known {
        if !spent && !unspent.iter().any(|u| &u.txid == txid && u.vout == *vout) {
            conn.execute(
                "UPDATE group_coins SET spent_seen_ms = ?1, backend = ?2
                 WHERE group_id = ?3 AND txid = ?4 AND vout = ?5",
                params![now_ms as i64, backend, &group_id[..], &txid[..], vout],
            )?;
            changes.spent += 1;
        }
    }
    Ok(changes)
}

pub(crate) fn coins(
    conn: &Connection,
    group_id: &[u8; 32],
    include_spent: bool,
) -> Result<Vec<CoinRow>, Error> {
    let sql = if include_spent {
        "SELECT txid, vout, value, script, height, first_seen_ms, spent_seen_ms, backend FROM group_coins
         WHERE group_id = ?1 ORDER BY first_seen_ms, txid, vout"
    } else {
        "SELECT txid, vout, value, script, height, first_seen_ms, spent_seen_ms, backend FROM group_coins
         WHERE group_id = ?1 AND spent_seen_ms IS NULL ORDER BY first_seen_ms, txid, vout"
    };
    conn.prepare(sql)?
        .query_map([&group_id[..]], |r| {
            Ok((
                r.get::<_, Vec<u8>>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Option<u32>>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, String>(7)?,
            ))
        })?
        .map(|row| {
            let (txid, vout, value, script, height, first, spent, backend) = row?;
            Ok(CoinRow {
                txid: txid
                    .try_into()
                    .map_err(|_| Error::Sqlite(rusqlite::Error::InvalidQuery))?,
                vout,
                value,
                script,
                height,
                first_seen_ms: first as u64,
                spent_seen_ms: spent.map(|s| s as u64),
                backend,
            })
        })
        .collect()
}
