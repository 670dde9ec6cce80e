//! The devnet: a local Lotus test chain for the demo and the tests — not a node. It keeps its
//! chain in SQLite, mines on a timer and on request, validates every transaction with
//! `crates/lotus` and lotusd's relay policy, funds addresses like a regtest node, reorgs on
//! request, and serves lotusd's JSON-RPC ([`server`]).

pub mod server;
pub mod state;

use std::path::{Path, PathBuf};

use lotus::script::Script;
use lotus::tx::{Transaction, TxId, TxOut};
use rusqlite::{params, Connection};

pub use state::{Block, ChainState, Located, Reject};

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
        let mut devnet = if blocks.is_empty() {
            let mut devnet = Self {
                chain: ChainState::genesis(now, funding),
                db,
                path: path.to_owned(),
            };
            devnet.save_from(0)?;
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
                devnet.save_from(height)?;
            }
            devnet
        };
        devnet.save_mempool()?;
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
            self.save_mempool()?;
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
        self.save_from(first)?;
        self.save_mempool()?;
        Ok(self.hashes_from(first))
    }

    pub fn fund(&mut self, outputs: Vec<TxOut>, now: u64) -> Result<String, DevnetError> {
        let height = self.chain.fund(outputs, now);
        self.save_from(height)?;
        self.save_mempool()?;
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
        self.save_from(fork + 1)?;
        self.save_mempool()?;
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
        let returned = self.chain.disconnect_above(height - 1, now);
        for tx in returned {
            let _ = self.chain.accept(tx, now);
        }
        self.save_from(height)?;
        self.save_mempool()?;
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

    /// Rewrites the stored chain from `height` up in one transaction.
    fn save_from(&mut self, height: u32) -> Result<(), DevnetError> {
        let tx = self.db.transaction().map_err(|e| DevnetError::Database {
            path: self.path.clone(),
            source: e,
        })?;
        let result = (|| {
            tx.execute("DELETE FROM blocks WHERE height >= ?1", [height])?;
            tx.execute("DELETE FROM block_txs WHERE height >= ?1", [height])?;
            for block in &self.chain.blocks()[(height as usize).min(self.chain.blocks().len())..] {
                tx.execute(
                    "INSERT INTO blocks (height, hash, prev, time, funding) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![block.height, &block.hash[..], &block.prev[..], block.time as i64, block.funding],
                )?;
                for (position, t) in block.txs.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO block_txs (height, position, raw) VALUES (?1, ?2, ?3)",
                        params![block.height, position as i64, t.encode()],
                    )?;
                }
            }
            tx.commit()
        })();
        result.map_err(|e| self.db_error(e))
    }

    fn save_mempool(&mut self) -> Result<(), DevnetError> {
        let tx = self.db.transaction().map_err(|e| DevnetError::Database {
            path: self.path.clone(),
            source: e,
        })?;
        let result = (|| {
            tx.execute("DELETE FROM mempool", [])?;
            for (position, t) in self.chain.mempool().enumerate() {
                tx.execute(
                    "INSERT INTO mempool (position, raw) VALUES (?1, ?2)",
                    params![position as i64, t.encode()],
                )?;
            }
            tx.commit()
        })();
        result.map_err(|e| self.db_error(e))
    }
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
