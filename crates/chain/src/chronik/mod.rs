//! A Chronik indexer (the API Lotus wallets use: lotus-sdk pins chronik-client 0.19.0): protobuf
//! over HTTP(S), and a WebSocket that announces changes to subscribed scripts.
//!
//! Written against that version's schema (`proto/chronik.proto`) and tested end to end against
//! the devnet's Chronik endpoints; it has not been run against a live indexer.
//!
//! Chronik has no dry run: [`ChainBackend::test_accept`] answers `Unsupported` and a broadcast
//! reports the indexer's refusal. Notifications only nudge: the caller re-asks on every one, and
//! a reconnect counts as one, so a message lost while disconnected loses nothing.

mod http;
pub mod script_type;

use async_trait::async_trait;
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxOut};
use prost::Message;

pub use http::Endpoint;

use crate::{Acceptance, ChainBackend, ChainError, Tip, TxStatus, Utxo};

/// The generated protobuf types.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/chronik.rs"));
}

/// [`ChainBackend`] over a Chronik indexer at `https://host[/path]` (or `http://`).
#[derive(Clone)]
pub struct ChronikBackend {
    endpoint: Endpoint,
}

/// What a failed request said.
enum Failure {
    Chain(ChainError),
    /// Chronik's own error message, with the HTTP status.
    Refused {
        status: u16,
        error: proto::Error,
    },
}

impl From<ChainError> for Failure {
    fn from(e: ChainError) -> Self {
        Self::Chain(e)
    }
}

impl ChronikBackend {
    /// `url`: `https://host[/path]` or `http://host[:port][/path]`, without a trailing slash.
    pub fn new(url: &str) -> Result<Self, ChainError> {
        Ok(Self {
            endpoint: Endpoint::parse(url)?,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn protocol(&self, detail: impl ToString) -> ChainError {
        self.endpoint.protocol(detail)
    }

    fn failure(&self, what: &str, failure: Failure) -> ChainError {
        match failure {
            Failure::Chain(e) => e,
            Failure::Refused { status, error } => {
                self.protocol(format!("{what}: HTTP {status}: {}", describe(&error)))
            }
        }
    }

    async fn get<M: Message + Default>(&self, path: &str, max_bytes: usize) -> Result<M, Failure> {
        self.decode(
            path,
            self.endpoint.request("GET", path, None, max_bytes).await?,
        )
    }

    async fn post<M: Message + Default>(
        &self,
        path: &str,
        body: impl Message,
        max_bytes: usize,
    ) -> Result<M, Failure> {
        let answer = self
            .endpoint
            .request("POST", path, Some(body.encode_to_vec()), max_bytes)
            .await?;
        self.decode(path, answer)
    }

    fn decode<M: Message + Default>(
        &self,
        path: &str,
        (status, body): (u16, bytes::Bytes),
    ) -> Result<M, Failure> {
        if status != 200 {
            let error = proto::Error::decode(body).map_err(|e| {
                self.protocol(format!(
                    "{path}: HTTP {status} without a Chronik error ({e})"
                ))
            })?;
            return Err(Failure::Refused { status, error });
        }
        M::decode(body)
            .map_err(|e| Failure::Chain(self.protocol(format!("{path}: not protobuf ({e})"))))
    }

    async fn blockchain_info(&self) -> Result<proto::BlockchainInfo, ChainError> {
        self.get("/blockchain-info", limits::SMALL)
            .await
            .map_err(|f| self.failure("blockchain-info", f))
    }

    /// The transaction as the indexer knows it; `None` if it does not.
    async fn transaction(&self, txid: &TxId) -> Result<Option<proto::Tx>, ChainError> {
        match self
            .get::<proto::Tx>(&format!("/tx/{}", txid.to_display_hex()), limits::TX)
            .await
        {
            Ok(tx) => Ok(Some(tx)),
            Err(Failure::Refused { status: 404, .. }) => Ok(None),
            Err(f) => Err(self.failure("tx", f)),
        }
    }

    async fn utxo_states(
        &self,
        outpoints: &[OutPoint],
    ) -> Result<Vec<proto::UtxoState>, ChainError> {
        let request = proto::ValidateUtxoRequest {
            outpoints: outpoints.iter().map(to_proto_outpoint).collect(),
        };
        let answer: proto::ValidateUtxoResponse = self
            .post(
                "/validate-utxos",
                request,
                limits::SMALL + 16 * outpoints.len(),
            )
            .await
            .map_err(|f| self.failure("validate-utxos", f))?;
        if answer.utxo_states.len() != outpoints.len() {
            return Err(self.protocol("validate-utxos answered for a different number of outputs"));
        }
        Ok(answer.utxo_states)
    }
}

/// What one answer may weigh. The protobuf decoder allocates a struct per entry, so these are
/// also what bounds memory when an indexer lies.
mod limits {
    /// blockchain-info, broadcast answers, errors.
    pub const SMALL: usize = 4 << 10;
    /// One transaction with its inputs' spent outputs (a standard one is at most 100 kB).
    pub const TX: usize = 1 << 20;
    pub const UTXOS: usize = 4 << 20;
    /// Coins per script this backend takes (more: use a node).
    pub const MAX_COINS: usize = 20_000;
}

fn to_proto_outpoint(outpoint: &OutPoint) -> proto::OutPoint {
    proto::OutPoint {
        txid: outpoint.txid.0.to_vec(),
        out_idx: outpoint.vout,
    }
}

fn describe(error: &proto::Error) -> String {
    match (error.error_code.is_empty(), error.msg.is_empty()) {
        (false, false) => format!("{} ({})", error.msg, error.error_code),
        (true, false) => error.msg.clone(),
        (false, true) => error.error_code.clone(),
        (true, true) => "an error without a message".to_owned(),
    }
}

fn txid_from(bytes: &[u8]) -> Option<TxId> {
    Some(TxId(bytes.try_into().ok()?))
}

#[async_trait]
impl ChainBackend for ChronikBackend {
    fn label(&self) -> String {
        format!("chronik+{}", self.endpoint.url())
    }

    async fn tip(&self) -> Result<Tip, ChainError> {
        let info = self.blockchain_info().await?;
        let height = u32::try_from(info.tip_height)
            .map_err(|_| self.protocol("blockchain-info: a negative tip height"))?;
        // Median time past: the median of the last 11 block times (headers only, no
        // transactions are downloaded).
        let blocks: proto::Blocks = self
            .get(
                &format!("/blocks/{}/{height}", height.saturating_sub(10)),
                limits::SMALL * 16,
            )
            .await
            .map_err(|f| self.failure("blocks", f))?;
        if blocks.blocks.last().map(|b| &b.hash) != Some(&info.tip_hash) {
            // A block arrived between the two questions: the caller asks again next time.
            return Err(self.protocol("the tip moved while it was being read; ask again"));
        }
        let mut times: Vec<i64> = blocks.blocks.iter().map(|b| b.timestamp).collect();
        times.sort_unstable();
        let median = times[times.len() / 2];
        let hash: [u8; 32] = info
            .tip_hash
            .as_slice()
            .try_into()
            .map_err(|_| self.protocol("blockchain-info: a tip hash that is not 32 bytes"))?;
        Ok(Tip {
            height,
            hash: lotus::tx::display_hex(&hash),
            median_time: u64::try_from(median)
                .map_err(|_| self.protocol("blocks: a negative block time"))?,
        })
    }

    async fn unspent(&self, script: &Script) -> Result<Vec<Utxo>, ChainError> {
        let (kind, payload) = script_type::of(script);
        let utxos: proto::Utxos = self
            .get(
                &format!("/script/{kind}/{}/utxos", hex::encode(payload)),
                limits::UTXOS,
            )
            .await
            .map_err(|f| self.failure("utxos", f))?;
        let mut found = Vec::new();
        // One script type can match several scripts (Taproot with and without state).
        for group in utxos
            .script_utxos
            .into_iter()
            .filter(|g| g.output_script == script.as_bytes())
        {
            if found.len() + group.utxos.len() > limits::MAX_COINS {
                return Err(self.protocol(format!(
                    "utxos: more than {} coins for one script; use a lotusd backend",
                    limits::MAX_COINS
                )));
            }
            for utxo in group.utxos {
                // Token coins (SLP) are not spendable as plain XPI: spending one burns the
                // token, so the wallet never sees them.
                if utxo.slp_token.is_some() || utxo.slp_meta.is_some() {
                    continue;
                }
                let outpoint = utxo
                    .outpoint
                    .as_ref()
                    .and_then(|o| Some(OutPoint::new(txid_from(&o.txid)?, o.out_idx)))
                    .ok_or_else(|| self.protocol("utxos: an output without a valid outpoint"))?;
                if !(0..=lotus::policy::MAX_AMOUNT).contains(&utxo.value) {
                    return Err(self.protocol("utxos: a value outside 0 to 21 billion XPI"));
                }
                found.push(Utxo {
                    outpoint,
                    output: TxOut::new(utxo.value, script.clone()),
                    // Chronik marks mempool outputs with height -1.
                    height: u32::try_from(utxo.block_height).ok(),
                });
            }
        }
        let mut unique = std::collections::HashSet::new();
        found.retain(|u| unique.insert(u.outpoint));
        Ok(found)
    }

    async fn status(&self, tx: &Transaction) -> Result<TxStatus, ChainError> {
        let txid = tx.txid();
        if let Some(known) = self.transaction(&txid).await? {
            if txid_from(&known.txid) != Some(txid) {
                return Err(self.protocol("tx answered another transaction"));
            }
            let Some(block) = known.block else {
                return Ok(TxStatus::Mempool);
            };
            let tip = self.blockchain_info().await?;
            let height = u32::try_from(block.height)
                .map_err(|_| self.protocol("tx: a negative block height"))?;
            let tip_height = u32::try_from(tip.tip_height)
                .map_err(|_| self.protocol("blockchain-info: a negative tip height"))?;
            if height > tip_height {
                return Err(self.protocol("tx: a block above the tip; ask again"));
            }
            return Ok(TxStatus::Confirmed {
                height,
                depth: tip_height - height + 1,
            });
        }
        // Unknown to the indexer: an input spent by ANOTHER transaction makes it conflicted.
        // (It may have arrived since we asked: the spender is checked, not assumed.)
        let inputs: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prev_out).collect();
        let states = self.utxo_states(&inputs).await?;
        let spent = proto::UtxoStateVariant::Spent as i32;
        for (input, state) in inputs.iter().zip(&states) {
            if state.state != spent {
                continue;
            }
            let Some(parent) = self.transaction(&input.txid).await? else {
                continue; // gone meanwhile: ask again next poll
            };
            let spender = parent
                .outputs
                .get(input.vout as usize)
                .and_then(|o| o.spent_by.as_ref())
                .and_then(|o| txid_from(&o.txid));
            match spender {
                Some(by) if by == txid => return Ok(TxStatus::Mempool),
                Some(_) => return Ok(TxStatus::Conflicted),
                None => {} // spent in the mempool, spender not indexed yet: ask again
            }
        }
        Ok(TxStatus::Unknown)
    }

    /// Subscribes to `scripts` over the WebSocket, reconnecting (and nudging once) after every
    /// drop; each message nudges. The task ends when the receiver is dropped.
    fn notifications(&self, scripts: Vec<Script>) -> Option<tokio::sync::mpsc::Receiver<()>> {
        Some(http::subscribe(self.endpoint.clone(), scripts))
    }

    async fn test_accept(&self, _tx: &Transaction) -> Result<Acceptance, ChainError> {
        Ok(Acceptance::Unsupported)
    }

    async fn broadcast(&self, tx: &Transaction) -> Result<TxId, ChainError> {
        let txid = tx.txid();
        let request = proto::BroadcastTxRequest {
            raw_tx: tx.encode(),
            // Let the indexer refuse a transaction that would burn a token by accident.
            skip_slp_check: false,
        };
        match self
            .post::<proto::BroadcastTxResponse>("/broadcast-tx", request, limits::SMALL)
            .await
        {
            Ok(answer) if txid_from(&answer.txid) == Some(txid) => Ok(txid),
            Ok(_) => Err(self.protocol("broadcast-tx answered another txid")),
            Err(Failure::Refused { status, error }) if status < 500 => {
                // Broadcasting what the indexer already has is a success.
                if self.status(tx).await.is_ok_and(TxStatus::is_seen) {
                    return Ok(txid);
                }
                Err(ChainError::Refused {
                    backend: self.label(),
                    reason: describe(&error),
                })
            }
            Err(f) => Err(self.failure("broadcast-tx", f)),
        }
    }
}
