//! The devnet: a local Lotus test chain for the demo and the tests — not a node. It keeps its
//! chain in SQLite, mines on a timer and on request, validates every transaction with
//! `crates/lotus` and lotusd's relay policy, funds addresses like a regtest node, reorgs on
//! request, and serves lotusd's JSON-RPC ([`server`]).

pub mod chronik;
pub mod server;
pub mod state;

use std::path::{Path, PathBuf};

use lotus::script::Script;
use lotus::tx::{Transaction, TxId, TxOut};
use rusqlite::{params, Connection};

pub use state::{Block, ChainState, Located, Reject, UnspentCoin};

#[derive(Debug, thiserror::Error)]
pub enum DevnetError {
    #[error("devnet database {path}: {source}")]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("devnet database {path} holds a broken {what}: {detail}")]
    Corrupt {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    prev BLOB NOT NULL,
    time INTEGER NOT NULL,
    funding INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS block_txs (
    height INTEGER NOT NULL,
    position INTEGER NOT NULL,
    raw BLOB NOT NULL,
    PRIMARY KEY (height, position)
);
CREATE TABLE IF NOT EXISTS mempool (
    position INTEGER PRIMARY KEY,
    raw BLOB NOT NULL
);
";

/// The chain plus its SQLite file; every change is written before the call returns.
pub struct Devnet {
    chain: ChainState,
    db: Connection,
    path: PathBuf,
}

impl Devnet {
    /// Opens `path`, or creates it with a genesis block paying `funding`.
    pub fn open(path: &Path, funding: Vec<TxOut>, now: u64) -> Result<Self, DevnetError> {
        let db_error = |source| DevnetError::Database {
            path: path.to_owned(),
            source,
        };
        let db = Connection::open(path).map_err(db_error)?;
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(db_error)?;
        db.execute_batch(SCHEMA).map_err(db_error)?;
        let blocks = load_blocks(&db, path)?;
        let devnet = if blocks.is_empty() {
            let mut devnet = Self {
                chain: ChainState::genesis(now, funding),
                db,
                path: path.to_owned(),
            };
            devnet.persist(0, now)?;
            devnet
        } else {
            let mempool = load_mempool(&db, path)?;
            let mut devnet = Self {
                chain: ChainState::replay(blocks, mempool, now),
                db,
                path: path.to_owned(),
            };
            if !funding.is_empty() {
                let height = devnet.chain.fund(funding, now);
                devnet.persist(height, now)?;
            }
            devnet
        };
        Ok(devnet)
    }

    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    pub fn accept(
        &mut self,
        tx: Transaction,
        now: u64,
    ) -> Result<Result<TxId, Reject>, DevnetError> {
        let result = self.chain.accept(tx, now);
        if result.is_ok() {
            let above_tip = self.chain.height() + 1;
            self.persist(above_tip, now)?;
        }
        Ok(result)
    }

    /// Mines `count` blocks paying `script` (the first takes the mempool); their hashes.
    pub fn mine(
        &mut self,
        count: u32,
        script: &Script,
        now: u64,
    ) -> Result<Vec<String>, DevnetError> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let first = self.chain.mine(count, script, now);
        self.persist(first, now)?;
        Ok(self.hashes_from(first))
    }

    pub fn fund(&mut self, outputs: Vec<TxOut>, now: u64) -> Result<String, DevnetError> {
        let height = self.chain.fund(outputs, now);
        self.persist(height, now)?;
        Ok(self.chain.tip().hash_hex())
    }

    /// See [`ChainState::reorg`]; returns the transactions that left the chain for good.
    pub fn reorg(
        &mut self,
        depth: u32,
        keep_transactions: bool,
        script: &Script,
        now: u64,
    ) -> Result<Vec<TxId>, DevnetError> {
        let fork = self.chain.height().saturating_sub(depth);
        let dropped = self.chain.reorg(depth, keep_transactions, script, now);
        self.persist(fork + 1, now)?;
        Ok(dropped)
    }

    /// lotusd's `invalidateblock`: the block and its descendants leave the chain, their
    /// transactions go back to the mempool.
    pub fn invalidate(&mut self, hash: &[u8; 32], now: u64) -> Result<bool, DevnetError> {
        let Some(height) = self.chain.block_by_hash(hash).map(|b| b.height) else {
            return Ok(false);
        };
        if height == 0 {
            return Ok(false);
        }
        self.chain.invalidate_from(height, now);
        self.persist(height, now)?;
        Ok(true)
    }

    fn hashes_from(&self, height: u32) -> Vec<String> {
        self.chain.blocks()[height as usize..]
            .iter()
            .map(Block::hash_hex)
            .collect()
    }

    fn db_error(&self, source: rusqlite::Error) -> DevnetError {
        DevnetError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// Writes the chain from `height` up and the whole mempool in ONE transaction. If that
    /// fails, the chain in memory is reloaded from the file, so the two never disagree (a
    /// later save from a higher height would otherwise leave a hole).
    fn persist(&mut self, height: u32, now: u64) -> Result<(), DevnetError> {
        let written = write_from(&mut self.db, &self.chain, height);
        if let Err(source) = written {
            let blocks = load_blocks(&self.db, &self.path)?;
            let mempool = load_mempool(&self.db, &self.path)?;
            self.chain = ChainState::replay(blocks, mempool, now);
            return Err(self.db_error(source));
        }
        Ok(())
    }
}

fn write_from(db: &mut Connection, chain: &ChainState, height: u32) -> rusqlite::Result<()> {
    let tx = db.transaction()?;
    tx.execute("DELETE FROM blocks WHERE height >= ?1", [height])?;
    tx.execute("DELETE FROM block_txs WHERE height >= ?1", [height])?;
    for block in &chain.blocks()[(height as usize).min(chain.blocks().len())..] {
        tx.execute(
            "INSERT INTO blocks (height, hash, prev, time, funding) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                block.height,
                &block.hash[..],
                &block.prev[..],
                block.time as i64,
                block.funding
            ],
        )?;
        for (position, t) in block.txs.iter().enumerate() {
            tx.execute(
                "INSERT INTO block_txs (height, position, raw) VALUES (?1, ?2, ?3)",
                params![block.height, position as i64, t.encode()],
            )?;
        }
    }
    tx.execute("DELETE FROM mempool", [])?;
    for (position, t) in chain.mempool().enumerate() {
        tx.execute(
            "INSERT INTO mempool (position, raw) VALUES (?1, ?2)",
            params![position as i64, t.encode()],
        )?;
    }
    tx.commit()
}

fn load_blocks(db: &Connection, path: &Path) -> Result<Vec<Block>, DevnetError> {
    let db_error = |source| DevnetError::Database {
        path: path.to_owned(),
        source,
    };
    let corrupt = |what, detail: String| DevnetError::Corrupt {
        path: path.to_owned(),
        what,
        detail,
    };
    let mut statement = db
        .prepare("SELECT height, hash, prev, time, funding FROM blocks ORDER BY height")
        .map_err(db_error)?;
    let rows = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, Vec<u8>>(1)?,
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })
        .map_err(db_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(db_error)?;
    let mut txs_of = db
        .prepare("SELECT raw FROM block_txs WHERE height = ?1 ORDER BY position")
        .map_err(db_error)?;
    let mut blocks = Vec::with_capacity(rows.len());
    for (expected, (height, hash, prev, time, funding)) in rows.into_iter().enumerate() {
        if height as usize != expected {
            return Err(corrupt("chain", format!("block {expected} is missing")));
        }
        let txs = txs_of
            .query_map([height], |r| r.get::<_, Vec<u8>>(0))
            .map_err(db_error)?
            .map(|raw| {
                let raw = raw.map_err(db_error)?;
                Transaction::decode(&raw).map_err(|e| corrupt("block transaction", e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let hash: [u8; 32] = hash
            .try_into()
            .map_err(|_| corrupt("block hash", format!("height {height}")))?;
        let prev: [u8; 32] = prev
            .try_into()
            .map_err(|_| corrupt("block hash", format!("height {height}")))?;
        blocks.push(Block {
            height,
            hash,
            prev,
            time: time as u64,
            funding,
            txs,
        });
    }
    Ok(blocks)
}

fn load_mempool(db: &Connection, path: &Path) -> Result<Vec<Transaction>, DevnetError> {
    let db_error = |source| DevnetError::Database {
        path: path.to_owned(),
        source,
    };
    let raws: Vec<Vec<u8>> = db
        .prepare("SELECT raw FROM mempool ORDER BY position")
        .map_err(db_error)?
        .query_map([], |r| r.get(0))
        .map_err(db_error)?
        .collect::<Result<_, _>>()
        .map_err(db_error)?;
    raws.iter()
        .map(|raw| {
            Transaction::decode(raw).map_err(|e| DevnetError::Corrupt {
                path: path.to_owned(),
                what: "mempool transaction",
                detail: e.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_save_leaves_memory_and_file_agreeing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devnet.sqlite3");
        let burn = Script::new().push_opcode(lotus::script::opcodes::OP_RETURN);
        let mut devnet = Devnet::open(&path, vec![], 1_000).unwrap();
        devnet.mine(1, &burn, 1_001).unwrap();
        // The file refuses writes (a full disk, a lock): the mined blocks must not stay.
        devnet.db.execute_batch("PRAGMA query_only = 1").unwrap();
        assert!(devnet.mine(2, &burn, 1_002).is_err());
        assert_eq!(
            devnet.chain().height(),
            1,
            "memory was reloaded from the file"
        );
        devnet.db.execute_batch("PRAGMA query_only = 0").unwrap();
        devnet.mine(1, &burn, 1_003).unwrap();
        drop(devnet);
        let reopened = Devnet::open(&path, vec![], 1_004).expect("no hole in the stored chain");
        assert_eq!(reopened.chain().height(), 2);
    }
}
