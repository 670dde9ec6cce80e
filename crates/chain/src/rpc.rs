//! A wallet-less lotusd over JSON-RPC: the methods a co-signer needs and nothing that needs the
//! node's wallet. Every call is one HTTP/1.1 request on a fresh connection (a wallet asks
//! rarely; no pool to go stale when the node restarts), with a timeout.
//!
//! Without `-txindex` lotusd cannot find a confirmed transaction whose outputs are all spent;
//! [`RpcBackend::status`] then falls back to the transaction's own outputs and inputs.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId, TxOut};
use serde_json::{json, Value};

use crate::amount::from_xpi_json;
use crate::spec::{ChainSpec, RpcAuth};
use crate::{Acceptance, ChainBackend, ChainError, Tip, TxStatus, Utxo};

/// The largest answer read (a `getrawmempool` of a busy node is a few MB).
const MAX_RESPONSE_BYTES: usize = 64 << 20;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// lotusd's RPC error codes that the wallet tells apart (src/rpc/protocol.h).
pub mod codes {
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const VERIFY_ERROR: i64 = -25;
    pub const VERIFY_REJECTED: i64 = -26;
    pub const VERIFY_ALREADY_IN_CHAIN: i64 = -27;
    pub const INVALID_ADDRESS_OR_KEY: i64 = -5;
}

/// An error object from the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpcFault {
    pub code: i64,
    pub message: String,
}

#[derive(Debug)]
enum CallError {
    Transport(ChainError),
    Fault(RpcFault),
}

impl From<ChainError> for CallError {
    fn from(e: ChainError) -> Self {
        Self::Transport(e)
    }
}

/// A JSON-RPC connection description.
#[derive(Clone)]
pub struct RpcClient {
    host: String,
    port: u16,
    auth: RpcAuth,
    label: String,
    timeout: Duration,
}

impl RpcClient {
    /// `None` if `spec` is not an RPC spec.
    pub fn from_spec(spec: &ChainSpec) -> Option<Self> {
        match spec {
            ChainSpec::Rpc { host, port, auth } => Some(Self {
                host: host.clone(),
                port: *port,
                auth: auth.clone(),
                label: spec.to_string(),
                timeout: DEFAULT_TIMEOUT,
            }),
            ChainSpec::Chronik { .. } => None,
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    fn unreachable(&self, detail: impl ToString) -> ChainError {
        ChainError::Unreachable {
            backend: self.label.clone(),
            detail: detail.to_string(),
        }
    }

    fn protocol(&self, detail: impl ToString) -> ChainError {
        ChainError::Protocol {
            backend: self.label.clone(),
            detail: detail.to_string(),
        }
    }

    fn authorization(&self) -> Result<Option<String>, ChainError> {
        let login = match &self.auth {
            RpcAuth::None => return Ok(None),
            RpcAuth::Password { user, password } => format!("{user}:{password}"),
            RpcAuth::Cookie(path) => std::fs::read_to_string(path)
                .map_err(|e| {
                    self.unreachable(format!(
                        "cannot read the cookie file {}: {e}",
                        path.display()
                    ))
                })?
                .trim()
                .to_owned(),
        };
        Ok(Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(login)
        )))
    }

    /// Calls `method`; a node error comes back as `Ok(Err(fault))`.
    pub async fn call(
        &self,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, RpcFault>, ChainError> {
        match tokio::time::timeout(self.timeout, self.call_inner(method, params)).await {
            Err(_) => {
                Err(self.unreachable(format!("no answer to {method} within {:?}", self.timeout)))
            }
            Ok(Err(CallError::Transport(e))) => Err(e),
            Ok(Err(CallError::Fault(f))) => Ok(Err(f)),
            Ok(Ok(v)) => Ok(Ok(v)),
        }
    }

    /// Calls `method` and treats a node error as a protocol error.
    async fn call_ok(&self, method: &str, params: Value) -> Result<Value, ChainError> {
        self.call(method, params)
            .await?
            .map_err(|f| self.protocol(format!("{method}: {} (code {})", f.message, f.code)))
    }

    async fn call_inner(&self, method: &str, params: Value) -> Result<Value, CallError> {
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unreachable(e))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let body =
            json!({"jsonrpc": "1.0", "id": "lotus-cosigner", "method": method, "params": params});
        let mut request = Request::post("/")
            .header(HOST, format!("{}:{}", self.host, self.port))
            .header(CONTENT_TYPE, "application/json");
        if let Some(auth) = self.authorization()? {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| self.protocol(e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(ChainError::Unauthorized {
                backend: self.label.clone(),
            }
            .into());
        }
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        let answer: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.protocol(format!("HTTP {status}, not JSON-RPC ({e})")))?;
        match answer.get("error") {
            Some(error) if !error.is_null() => Err(CallError::Fault(RpcFault {
                code: error.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("(no message)")
                    .to_owned(),
            })),
            _ => Ok(answer.get("result").cloned().unwrap_or(Value::Null)),
        }
    }
}

/// [`ChainBackend`] over a lotusd (or devnet) JSON-RPC endpoint.
#[derive(Clone)]
pub struct RpcBackend {
    client: RpcClient,
}

impl RpcBackend {
    pub fn new(client: RpcClient) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &RpcClient {
        &self.client
    }

    fn protocol(&self, detail: impl ToString) -> ChainError {
        self.client.protocol(detail)
    }

    async fn mempool_txids(&self) -> Result<Vec<TxId>, ChainError> {
        let ids = self.client.call_ok("getrawmempool", json!([])).await?;
        ids.as_array()
            .ok_or_else(|| self.protocol("getrawmempool: not a list"))?
            .iter()
            .map(|id| {
                id.as_str()
                    .and_then(|s| TxId::from_display_hex(s).ok())
                    .ok_or_else(|| self.protocol("getrawmempool: not a txid"))
            })
            .collect()
    }

    /// Where `tx` is, if the node knows it: by its id, or, without a transaction index, by an
    /// unspent output of its own.
    async fn presence(&self, tx: &Transaction, tip: &Tip) -> Result<Option<TxStatus>, ChainError> {
        let confirmed = |depth: u32| -> Result<TxStatus, ChainError> {
            if depth > tip.height + 1 {
                return Err(self.protocol(format!(
                    "claims {depth} confirmations with the tip at height {}",
                    tip.height
                )));
            }
            Ok(TxStatus::Confirmed {
                height: tip.height + 1 - depth,
                depth,
            })
        };
        let txid = tx.txid();
        if let Some((_, confirmations)) = self.raw_transaction(&txid).await? {
            return match confirmations {
                None => Ok(Some(TxStatus::Mempool)),
                Some(depth) => confirmed(depth).map(Some),
            };
        }
        for vout in 0..tx.outputs.len() as u32 {
            if let Some(confirmations) = self.tx_out(&OutPoint::new(txid, vout)).await? {
                return if confirmations == 0 {
                    Ok(Some(TxStatus::Mempool))
                } else {
                    confirmed(confirmations).map(Some)
                };
            }
        }
        Ok(None)
    }

    async fn raw_transaction(
        &self,
        txid: &TxId,
    ) -> Result<Option<(Transaction, Option<u32>)>, ChainError> {
        let answer = self
            .client
            .call("getrawtransaction", json!([txid.to_display_hex(), true]))
            .await?;
        let value = match answer {
            Ok(v) => v,
            Err(f) if f.code == codes::INVALID_ADDRESS_OR_KEY => return Ok(None),
            Err(f) => return Err(self.protocol(format!("getrawtransaction: {}", f.message))),
        };
        let hex = value
            .get("hex")
            .and_then(Value::as_str)
            .ok_or_else(|| self.protocol("getrawtransaction: no hex"))?;
        let tx =
            decode_tx_hex(hex).map_err(|e| self.protocol(format!("getrawtransaction: {e}")))?;
        if tx.txid() != *txid {
            return Err(self.protocol("getrawtransaction answered another transaction"));
        }
        let confirmations = value
            .get("confirmations")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        // A transaction index keeps transactions of blocks a reorg disconnected: they come
        // with their old block hash and no confirmations, and are in no mempool. That is not
        // "seen"; the caller falls back to the outputs and inputs.
        if value.get("blockhash").is_some() && confirmations == 0 {
            return Ok(None);
        }
        Ok(Some((
            tx,
            (confirmations > 0).then_some(u32::try_from(confirmations).unwrap_or(u32::MAX)),
        )))
    }

    /// `gettxout`: the unspent output at `outpoint` (mempool included) and its confirmations.
    async fn tx_out(&self, outpoint: &OutPoint) -> Result<Option<u32>, ChainError> {
        let value = self
            .client
            .call_ok(
                "gettxout",
                json!([outpoint.txid.to_display_hex(), outpoint.vout, true]),
            )
            .await?;
        if value.is_null() {
            return Ok(None);
        }
        Ok(Some(
            value
                .get("confirmations")
                .and_then(Value::as_u64)
                .map_or(0, |c| u32::try_from(c).unwrap_or(u32::MAX)),
        ))
    }
}

pub fn decode_tx_hex(hex_str: &str) -> Result<Transaction, String> {
    let bytes = hex::decode(hex_str).map_err(|e| format!("not hex: {e}"))?;
    Transaction::decode(&bytes).map_err(|e| e.to_string())
}

#[async_trait]
impl ChainBackend for RpcBackend {
    fn label(&self) -> String {
        self.client.label.clone()
    }

    async fn tip(&self) -> Result<Tip, ChainError> {
        let info = self.client.call_ok("getblockchaininfo", json!([])).await?;
        let height = info
            .get("blocks")
            .and_then(Value::as_u64)
            .and_then(|h| u32::try_from(h).ok());
        let hash = info.get("bestblockhash").and_then(Value::as_str);
        let median_time = info.get("mediantime").and_then(Value::as_u64);
        match (height, hash, median_time) {
            (Some(height), Some(hash), Some(median_time)) => Ok(Tip {
                height,
                hash: hash.to_owned(),
                median_time,
            }),
            _ => Err(self.protocol("getblockchaininfo lacks blocks, bestblockhash or mediantime")),
        }
    }

    async fn unspent(&self, script: &Script) -> Result<Vec<Utxo>, ChainError> {
        let descriptor = format!("raw({})", hex::encode(script.as_bytes()));
        let scan = self
            .client
            .call_ok("scantxoutset", json!(["start", [descriptor]]))
            .await?;
        let mut utxos = Vec::new();
        for u in scan
            .get("unspents")
            .and_then(Value::as_array)
            .ok_or_else(|| self.protocol("scantxoutset: no unspents"))?
        {
            let txid = u
                .get("txid")
                .and_then(Value::as_str)
                .and_then(|s| TxId::from_display_hex(s).ok());
            let vout = u
                .get("vout")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok());
            let value = u.get("amount").and_then(from_xpi_json);
            let height = u
                .get("height")
                .and_then(Value::as_u64)
                .and_then(|h| u32::try_from(h).ok());
            let (Some(txid), Some(vout), Some(value)) = (txid, vout, value) else {
                return Err(self.protocol("scantxoutset: an unspent lacks txid, vout or amount"));
            };
            utxos.push(Utxo {
                outpoint: OutPoint::new(txid, vout),
                output: TxOut::new(value, script.clone()),
                height,
            });
        }
        // scantxoutset sees the UTXO set only: add the mempool's outputs to the script and
        // drop whatever the mempool already spends.
        let mut spent = std::collections::HashSet::new();
        for txid in self.mempool_txids().await? {
            let Some((tx, _)) = self.raw_transaction(&txid).await? else {
                continue; // left the mempool meanwhile
            };
            spent.extend(tx.inputs.iter().map(|i| i.prev_out));
            for (vout, output) in tx.outputs.iter().enumerate() {
                if &output.script_pubkey == script {
                    utxos.push(Utxo {
                        outpoint: OutPoint::new(txid, vout as u32),
                        output: output.clone(),
                        height: None,
                    });
                }
            }
        }
        // One entry per outpoint, whatever the node repeated (e.g. a block arriving between
        // the scan and the mempool listing).
        let mut unique = std::collections::HashSet::new();
        utxos.retain(|u| !spent.contains(&u.outpoint) && unique.insert(u.outpoint));
        Ok(utxos)
    }

    async fn status(&self, tx: &Transaction) -> Result<TxStatus, ChainError> {
        let tip = self.tip().await?;
        if let Some(found) = self.presence(tx, &tip).await? {
            return Ok(found);
        }
        for input in &tx.inputs {
            if self.tx_out(&input.prev_out).await?.is_none() {
                // Spent, but maybe by this very transaction, arrived since it was looked for
                // (a broadcast racing this poll): a conflict only if it is still not there.
                return Ok(self
                    .presence(tx, &tip)
                    .await?
                    .unwrap_or(TxStatus::Conflicted));
            }
        }
        Ok(TxStatus::Unknown)
    }

    async fn test_accept(&self, tx: &Transaction) -> Result<Acceptance, ChainError> {
        let answer = self
            .client
            .call("testmempoolaccept", json!([[hex::encode(tx.encode())]]))
            .await?;
        let value = match answer {
            Ok(v) => v,
            Err(f) if f.code == codes::METHOD_NOT_FOUND => return Ok(Acceptance::Unsupported),
            Err(f) => return Ok(Acceptance::Refused(f.message)),
        };
        let first = value
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| self.protocol("testmempoolaccept: empty answer"))?;
        if first.get("allowed").and_then(Value::as_bool) == Some(true) {
            return Ok(Acceptance::Accepted);
        }
        let reason = first
            .get("reject-reason")
            .and_then(Value::as_str)
            .unwrap_or("refused without a reason")
            .to_owned();
        Ok(Acceptance::Refused(reason))
    }

    async fn broadcast(&self, tx: &Transaction) -> Result<TxId, ChainError> {
        let txid = tx.txid();
        let refused = |reason: String| ChainError::Refused {
            backend: self.client.label.clone(),
            reason,
        };
        match self.test_accept(tx).await? {
            Acceptance::Refused(reason) if is_already_known(&reason) => return Ok(txid),
            Acceptance::Refused(reason) => return Err(refused(reason)),
            Acceptance::Accepted | Acceptance::Unsupported => {}
        }
        match self
            .client
            .call("sendrawtransaction", json!([hex::encode(tx.encode())]))
            .await?
        {
            Ok(_) => Ok(txid),
            Err(f) if f.code == codes::VERIFY_ALREADY_IN_CHAIN || is_already_known(&f.message) => {
                Ok(txid)
            }
            Err(f) => Err(refused(f.message)),
        }
    }
}

fn is_already_known(reason: &str) -> bool {
    reason.contains("txn-already-in-mempool")
        || reason.contains("txn-already-known")
        || reason.contains("already in block chain")
}
