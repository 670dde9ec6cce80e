//! The devnet's chain in memory: blocks, the UTXO set, a mempool, and lotusd's acceptance
//! rules (consensus checks, relay policy, signatures via `crates/lotus`). No I/O: [`super::Devnet`]
//! persists what changes, and time comes in as arguments.

use std::collections::{BTreeMap, HashMap, HashSet};

use lotus::hash::sha256d;
use lotus::merkle::merkle_root;
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};

use lotus::policy::{self, DEFAULT_RELAY_FEE_PER_KB, MAX_AMOUNT};

/// Blocks a coinbase output waits before it can be spent (regtest's COINBASE_MATURITY).
pub const COINBASE_MATURITY: u32 = 100;
/// What a mined block pays its miner besides fees (a fixed test value).
pub const BLOCK_SUBSIDY: i64 = 260 * crate::amount::SATS_PER_XPI;
const LOCKTIME_THRESHOLD: u32 = 500_000_000;

#[derive(Debug, Clone)]
pub struct Block {
    pub height: u32,
    pub hash: [u8; 32],
    pub prev: [u8; 32],
    pub time: u64,
    /// A funding block (`--fund`, the devnet's premine): its coinbase is spendable at once.
    pub funding: bool,
    /// The coinbase first, like a real block.
    pub txs: Vec<Transaction>,
}

impl Block {
    pub fn hash_hex(&self) -> String {
        lotus::tx::display_hex(&self.hash)
    }
}

#[derive(Debug, Clone)]
pub struct Coin {
    pub output: TxOut,
    pub height: u32,
    /// A coinbase output that must mature first.
    pub immature_coinbase: bool,
}

/// An unspent output as an indexer reports it.
#[derive(Debug, Clone)]
pub struct UnspentCoin {
    pub output: TxOut,
    /// `None` while only in the mempool.
    pub height: Option<u32>,
    pub coinbase: bool,
}

/// A refusal in lotusd's words and RPC error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub code: i64,
    pub reason: String,
}

impl Reject {
    fn rejected(reason: impl Into<String>) -> Self {
        Self {
            code: crate::rpc::codes::VERIFY_REJECTED,
            reason: reason.into(),
        }
    }
}

/// Where a transaction is.
#[derive(Debug, Clone)]
pub enum Located<'a> {
    Mempool(&'a Transaction),
    Block(&'a Transaction, u32),
    /// In a block a reorg disconnected, and nowhere since: a transaction index (lotusd
    /// `-txindex`) still finds it, with that block's hash and no confirmations.
    Stale(&'a Transaction, [u8; 32]),
}

struct MempoolEntry {
    tx: Transaction,
    fee: i64,
}

#[derive(Default)]
pub struct ChainState {
    blocks: Vec<Block>,
    utxos: HashMap<OutPoint, Coin>,
    /// txid → (height, position in block): the devnet keeps a full transaction index.
    confirmed: HashMap<TxId, (u32, usize)>,
    /// Transactions of disconnected blocks, with the block they were in (the stale index).
    stale: HashMap<TxId, (Transaction, [u8; 32])>,
    mempool: BTreeMap<u64, MempoolEntry>,
    mempool_ids: HashMap<TxId, u64>,
    mempool_spends: HashMap<OutPoint, TxId>,
    next_seq: u64,
    extranonce: u64,
}

pub fn is_coinbase(tx: &Transaction) -> bool {
    tx.inputs.len() == 1
        && tx.inputs[0].prev_out.vout == u32::MAX
        && tx.inputs[0].prev_out.txid == TxId::default()
}

impl ChainState {
    /// A chain of one genesis block whose coinbase pays `funding` (spendable at once).
    pub fn genesis(time: u64, funding: Vec<TxOut>) -> Self {
        let mut chain = Self::default();
        let coinbase = chain.coinbase(0, funding_or_burn(funding, 0));
        chain.push_block(coinbase, Vec::new(), time, true);
        chain
    }

    /// Rebuilds from stored blocks (trusted: the devnet wrote them) and re-admits the stored
    /// mempool, dropping what no longer fits.
    pub fn replay(blocks: Vec<Block>, mempool: Vec<Transaction>, now: u64) -> Self {
        let mut chain = Self::default();
        for block in blocks {
            chain.connect(block);
        }
        chain.extranonce = chain.blocks.len() as u64;
        for tx in mempool {
            let _ = chain.accept(tx, now);
        }
        chain
    }

    pub fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    pub fn tip(&self) -> &Block {
        self.blocks
            .last()
            .expect("a devnet chain always has its genesis block")
    }

    pub fn height(&self) -> u32 {
        self.tip().height
    }

    /// Median time past of the tip: the median of the last 11 block times.
    pub fn median_time(&self) -> u64 {
        let mut times: Vec<u64> = self.blocks.iter().rev().take(11).map(|b| b.time).collect();
        times.sort_unstable();
        times[times.len() / 2]
    }

    pub fn mempool(&self) -> impl Iterator<Item = &Transaction> {
        self.mempool.values().map(|e| &e.tx)
    }

    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    pub fn block_by_hash(&self, hash: &[u8; 32]) -> Option<&Block> {
        self.blocks.iter().find(|b| &b.hash == hash)
    }

    pub fn locate(&self, txid: &TxId) -> Option<Located<'_>> {
        if let Some(seq) = self.mempool_ids.get(txid) {
            return Some(Located::Mempool(&self.mempool[seq].tx));
        }
        let Some(&(height, position)) = self.confirmed.get(txid) else {
            return self
                .stale
                .get(txid)
                .map(|(tx, block)| Located::Stale(tx, *block));
        };
        Some(Located::Block(
            &self.blocks[height as usize].txs[position],
            height,
        ))
    }

    /// An unspent output; with `include_mempool`, outputs of mempool transactions count and
    /// outputs the mempool spends do not (gettxout's rule). Mempool coins have height `None`.
    pub fn coin(
        &self,
        outpoint: &OutPoint,
        include_mempool: bool,
    ) -> Option<(TxOut, Option<u32>, bool)> {
        if include_mempool {
            if self.mempool_spends.contains_key(outpoint) {
                return None;
            }
            if let Some(seq) = self.mempool_ids.get(&outpoint.txid) {
                let out = self.mempool[seq].tx.outputs.get(outpoint.vout as usize)?;
                if out.script_pubkey.as_bytes().first() == Some(&lotus::script::opcodes::OP_RETURN)
                {
                    return None; // provably unspendable, as in a block
                }
                return Some((out.clone(), None, false));
            }
        }
        self.utxos
            .get(outpoint)
            .map(|c| (c.output.clone(), Some(c.height), c.immature_coinbase))
    }

    /// The confirmed UTXO set's outputs paying `script` (scantxoutset's view).
    pub fn scan(&self, script: &Script) -> Vec<(OutPoint, &Coin)> {
        let mut found: Vec<_> = self
            .utxos
            .iter()
            .filter(|(_, c)| &c.output.script_pubkey == script)
            .map(|(o, c)| (*o, c))
            .collect();
        found.sort_by_key(|(o, c)| (c.height, *o));
        found
    }

    /// The input that spends `outpoint` (its transaction and input index), in the mempool or
    /// in a block: an indexer's `spent_by`. A linear scan: the devnet is small.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<OutPoint> {
        let input_of = |tx: &Transaction| {
            tx.inputs
                .iter()
                .position(|i| &i.prev_out == outpoint)
                .map(|index| OutPoint::new(tx.txid(), index as u32))
        };
        if let Some(seq) = self
            .mempool_spends
            .get(outpoint)
            .and_then(|txid| self.mempool_ids.get(txid))
        {
            return input_of(&self.mempool[seq].tx);
        }
        self.blocks
            .iter()
            .rev()
            .flat_map(|b| b.txs.iter())
            .find_map(input_of)
    }

    /// Median time past of the block at `height` (of the 11 blocks up to it).
    pub fn median_time_at(&self, height: u32) -> u64 {
        let end = (height as usize + 1).min(self.blocks.len());
        let mut times: Vec<u64> = self.blocks[..end]
            .iter()
            .rev()
            .take(11)
            .map(|b| b.time)
            .collect();
        times.sort_unstable();
        times.get(times.len() / 2).copied().unwrap_or(0)
    }

    /// Unspent outputs whose script satisfies `wanted`, confirmed and in the mempool, minus
    /// those the mempool spends (an indexer's view). Sorted by height, mempool last.
    pub fn unspent_matching(
        &self,
        wanted: impl Fn(&Script) -> bool,
    ) -> Vec<(OutPoint, UnspentCoin)> {
        let mut found: Vec<(OutPoint, UnspentCoin)> = self
            .utxos
            .iter()
            .filter(|(o, c)| {
                wanted(&c.output.script_pubkey) && !self.mempool_spends.contains_key(o)
            })
            .map(|(o, c)| {
                let confirmed = &self.blocks[c.height as usize].txs;
                let coinbase = confirmed.first().is_some_and(|cb| cb.txid() == o.txid);
                (
                    *o,
                    UnspentCoin {
                        output: c.output.clone(),
                        height: Some(c.height),
                        coinbase,
                    },
                )
            })
            .collect();
        found.sort_by_key(|(o, c)| (c.height, *o));
        for entry in self.mempool.values() {
            let txid = entry.tx.txid();
            for (vout, output) in entry.tx.outputs.iter().enumerate() {
                let outpoint = OutPoint::new(txid, vout as u32);
                if wanted(&output.script_pubkey) && !self.mempool_spends.contains_key(&outpoint) {
                    found.push((
                        outpoint,
                        UnspentCoin {
                            output: output.clone(),
                            height: None,
                            coinbase: false,
                        },
                    ));
                }
            }
        }
        found
    }

    /// Everything lotusd checks before admitting `tx` to its mempool; `Ok(fee)`.
    pub fn check(&self, tx: &Transaction, now: u64) -> Result<i64, Reject> {
        let txid = tx.txid();
        if self.mempool_ids.contains_key(&txid) {
            return Err(Reject::rejected("txn-already-in-mempool"));
        }
        if self.confirmed.contains_key(&txid) {
            return Err(Reject {
                code: crate::rpc::codes::VERIFY_ALREADY_IN_CHAIN,
                reason: "transaction already in block chain".into(),
            });
        }
        check_context_free(tx)?;
        policy::check_standard(tx).map_err(Reject::rejected)?;
        if !self.is_final(tx, now) {
            return Err(Reject::rejected("non-final"));
        }
        let next_height = self.height() + 1;
        let mut spent = Vec::with_capacity(tx.inputs.len());
        for input in &tx.inputs {
            if let Some(other) = self.mempool_spends.get(&input.prev_out) {
                return Err(Reject::rejected(format!(
                    "txn-mempool-conflict (spent by {other})"
                )));
            }
            let Some((output, height, immature)) = self.coin(&input.prev_out, true) else {
                return Err(Reject {
                    code: crate::rpc::codes::VERIFY_ERROR,
                    reason: "bad-txns-inputs-missingorspent".into(),
                });
            };
            if immature && height.is_some_and(|h| next_height - h < COINBASE_MATURITY) {
                return Err(Reject::rejected("bad-txns-premature-spend-of-coinbase"));
            }
            spent.push(output);
        }
        let value_in: i128 = spent.iter().map(|o| i128::from(o.value)).sum();
        let value_out: i128 = tx.outputs.iter().map(|o| i128::from(o.value)).sum();
        if value_in < value_out {
            return Err(Reject::rejected(format!(
                "bad-txns-in-belowout, value in ({value_in}) < value out ({value_out})"
            )));
        }
        let fee = i64::try_from(value_in - value_out)
            .map_err(|_| Reject::rejected("bad-txns-fee-outofrange"))?;
        let min_fee = policy::fee_for_size(tx.serialized_size(), DEFAULT_RELAY_FEE_PER_KB);
        if fee < min_fee {
            return Err(Reject::rejected(format!(
                "min relay fee not met, {fee} < {min_fee}"
            )));
        }
        lotus::spend::verify_transaction(tx, &spent)
            .map_err(|e| Reject::rejected(format!("mandatory-script-verify-flag-failed ({e})")))?;
        Ok(fee)
    }

    /// Admits `tx` to the mempool.
    pub fn accept(&mut self, tx: Transaction, now: u64) -> Result<TxId, Reject> {
        let fee = self.check(&tx, now)?;
        let txid = tx.txid();
        for input in &tx.inputs {
            self.mempool_spends.insert(input.prev_out, txid);
        }
        self.stale.remove(&txid);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.mempool_ids.insert(txid, seq);
        self.mempool.insert(seq, MempoolEntry { tx, fee });
        Ok(txid)
    }

    /// Mines `count` blocks paying `script`; the first takes the whole mempool. Returns the
    /// height of the first new block.
    pub fn mine(&mut self, count: u32, script: &Script, now: u64) -> u32 {
        let first = self.height() + 1;
        for i in 0..count {
            let entries = if i == 0 {
                self.take_mempool()
            } else {
                Vec::new()
            };
            let fees: i64 = entries.iter().map(|e| e.fee).sum();
            let txs = entries.into_iter().map(|e| e.tx).collect();
            let height = self.height() + 1;
            let coinbase = self.coinbase(
                height,
                vec![TxOut::new(BLOCK_SUBSIDY + fees, script.clone())],
            );
            self.push_block(coinbase, txs, now, false);
        }
        first
    }

    /// Mines one funding block whose coinbase pays `outputs`, spendable at once.
    pub fn fund(&mut self, outputs: Vec<TxOut>, now: u64) -> u32 {
        let height = self.height() + 1;
        let txs = self.take_mempool().into_iter().map(|e| e.tx).collect();
        let coinbase = self.coinbase(height, funding_or_burn(outputs, 0));
        self.push_block(coinbase, txs, now, true);
        height
    }

    /// Disconnects every block above `height` (never the genesis). Returns the disconnected
    /// blocks' non-coinbase transactions and the old mempool, in that order of dependency
    /// (the mempool may spend their outputs); the mempool is left empty for the caller to
    /// refill.
    fn disconnect_above(&mut self, height: u32, now: u64) -> (Vec<Transaction>, Vec<Transaction>) {
        let height = height as usize;
        let mempool: Vec<Transaction> = self.take_mempool().into_iter().map(|e| e.tx).collect();
        if height + 1 >= self.blocks.len() {
            return (Vec::new(), mempool);
        }
        let removed: Vec<Block> = self.blocks.split_off(height + 1);
        let blocks = std::mem::take(&mut self.blocks);
        let extranonce = self.extranonce;
        let mut stale = std::mem::take(&mut self.stale);
        for block in &removed {
            for tx in &block.txs {
                stale.insert(tx.txid(), (tx.clone(), block.hash));
            }
        }
        *self = Self::replay(blocks, Vec::new(), now);
        self.extranonce = extranonce;
        self.stale = stale;
        let returned = removed
            .into_iter()
            .flat_map(|b| b.txs.into_iter().skip(1))
            .collect();
        (returned, mempool)
    }

    /// lotusd's `invalidateblock` on the block at `height`: it and its descendants leave the
    /// chain; their transactions go back to the mempool first, then the old mempool.
    pub fn invalidate_from(&mut self, height: u32, now: u64) {
        let (returned, mempool) = self.disconnect_above(height.saturating_sub(1), now);
        for tx in returned.into_iter().chain(mempool) {
            let _ = self.accept(tx, now);
        }
    }

    /// A reorg of `depth` blocks: they are replaced by `depth + 1` empty blocks paying `script`
    /// (so the new branch is longer). Their transactions return to the mempool if
    /// `keep_transactions`, else they vanish, as when the other branch's miner never saw them.
    pub fn reorg(
        &mut self,
        depth: u32,
        keep_transactions: bool,
        script: &Script,
        now: u64,
    ) -> Vec<TxId> {
        let fork = self.height().saturating_sub(depth);
        let (returned, pending) = self.disconnect_above(fork, now);
        for _ in 0..=depth {
            let height = self.height() + 1;
            let coinbase = self.coinbase(height, vec![TxOut::new(BLOCK_SUBSIDY, script.clone())]);
            self.push_block(coinbase, Vec::new(), now, false);
        }
        let mut dropped = Vec::new();
        for tx in returned {
            let txid = tx.txid();
            if !keep_transactions || self.accept(tx, now).is_err() {
                dropped.push(txid);
            }
        }
        for tx in pending {
            let _ = self.accept(tx, now);
        }
        dropped
    }

    fn take_mempool(&mut self) -> Vec<MempoolEntry> {
        self.mempool_ids.clear();
        self.mempool_spends.clear();
        std::mem::take(&mut self.mempool).into_values().collect()
    }

    fn is_final(&self, tx: &Transaction, _now: u64) -> bool {
        if tx.lock_time == 0 {
            return true;
        }
        let limit = if tx.lock_time < LOCKTIME_THRESHOLD {
            u64::from(self.height() + 1)
        } else {
            self.median_time()
        };
        u64::from(tx.lock_time) < limit
            || tx.inputs.iter().all(|i| i.sequence == TxIn::SEQUENCE_FINAL)
    }

    /// Lotus txids leave out scriptSigs, so a coinbase is made unique the way lotusd's are:
    /// an OP_RETURN output carrying the height (plus an extranonce, for reorged heights).
    fn coinbase(&mut self, height: u32, mut outputs: Vec<TxOut>) -> Transaction {
        self.extranonce += 1;
        let script_sig = Script::new().push_slice(&height.to_le_bytes());
        outputs.push(TxOut::new(
            0,
            Script::new()
                .push_opcode(lotus::script::opcodes::OP_RETURN)
                .push_slice(&height.to_le_bytes())
                .push_slice(&self.extranonce.to_le_bytes()),
        ));
        Transaction {
            version: 1,
            inputs: vec![TxIn {
                prev_out: OutPoint::new(TxId::default(), u32::MAX),
                script_sig,
                sequence: TxIn::SEQUENCE_FINAL,
            }],
            outputs,
            lock_time: 0,
        }
    }

    fn push_block(
        &mut self,
        coinbase: Transaction,
        txs: Vec<Transaction>,
        now: u64,
        funding: bool,
    ) {
        let (height, prev) = match self.blocks.last() {
            Some(tip) => (tip.height + 1, tip.hash),
            None => (0, [0; 32]),
        };
        let time = if self.blocks.is_empty() {
            now
        } else {
            now.max(self.median_time() + 1)
        };
        let mut all = vec![coinbase];
        all.extend(txs);
        let txids: Vec<[u8; 32]> = all.iter().map(|t| t.txid().0).collect();
        let mut header = Vec::with_capacity(80);
        header.extend_from_slice(&prev);
        header.extend_from_slice(&height.to_le_bytes());
        header.extend_from_slice(&time.to_le_bytes());
        header.extend_from_slice(&merkle_root(&txids).root);
        let block = Block {
            height,
            hash: sha256d(&header),
            prev,
            time,
            funding,
            txs: all,
        };
        self.connect(block);
    }

    fn connect(&mut self, block: Block) {
        let height = block.height;
        for (position, tx) in block.txs.iter().enumerate() {
            let txid = tx.txid();
            let coinbase = position == 0;
            if !coinbase {
                for input in &tx.inputs {
                    self.utxos.remove(&input.prev_out);
                }
            }
            for (vout, output) in tx.outputs.iter().enumerate() {
                if output.script_pubkey.as_bytes().first()
                    == Some(&lotus::script::opcodes::OP_RETURN)
                {
                    continue; // provably unspendable
                }
                self.utxos.insert(
                    OutPoint::new(txid, vout as u32),
                    Coin {
                        output: output.clone(),
                        height,
                        immature_coinbase: coinbase && !block.funding,
                    },
                );
            }
            self.confirmed.insert(txid, (height, position));
            self.stale.remove(&txid);
        }
        self.blocks.push(block);
    }
}

/// CheckTransaction: what no block may contain, whatever the policy.
fn check_context_free(tx: &Transaction) -> Result<(), Reject> {
    if tx.inputs.is_empty() {
        return Err(Reject::rejected("bad-txns-vin-empty"));
    }
    if tx.outputs.is_empty() {
        return Err(Reject::rejected("bad-txns-vout-empty"));
    }
    if is_coinbase(tx) {
        return Err(Reject::rejected("coinbase"));
    }
    let mut total: i64 = 0;
    for output in &tx.outputs {
        if output.value < 0 {
            return Err(Reject::rejected("bad-txns-vout-negative"));
        }
        if output.value > MAX_AMOUNT {
            return Err(Reject::rejected("bad-txns-vout-toolarge"));
        }
        total = total.saturating_add(output.value);
        if total > MAX_AMOUNT {
            return Err(Reject::rejected("bad-txns-txouttotal-toolarge"));
        }
    }
    let mut seen = HashSet::new();
    for input in &tx.inputs {
        if input.prev_out.txid == TxId::default() && input.prev_out.vout == u32::MAX {
            return Err(Reject::rejected("bad-txns-prevout-null"));
        }
        if !seen.insert(input.prev_out) {
            return Err(Reject::rejected("bad-txns-inputs-duplicate"));
        }
    }
    Ok(())
}

fn funding_or_burn(outputs: Vec<TxOut>, value: i64) -> Vec<TxOut> {
    if outputs.is_empty() {
        vec![TxOut::new(
            value,
            Script::new().push_opcode(lotus::script::opcodes::OP_RETURN),
        )]
    } else {
        outputs
    }
}
