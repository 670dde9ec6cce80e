//! The devnet's Chronik endpoints (under [`PREFIX`]), from the same schema as the client:
//! `/blockchain-info`, `/block/{height|hash}`, `/tx/{txid}`, `/script/{type}/{payload}/utxos`,
//! `/script/{type}/{payload}/history`, `/broadcast-tx`, `/validate-utxos`, and the `/ws`
//! notification socket. Like a real indexer they need no login.
//!
//! Notifications are computed by comparing the chain before and after each change
//! ([`Snapshot`]), so every way the chain moves (RPC, timer, Chronik broadcast) is announced.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONNECTION, CONTENT_TYPE, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use lotus::script::Script;
use lotus::tx::{OutPoint, Transaction, TxId};
use prost::Message as _;
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;

use super::state::{is_coinbase, ChainState};
use super::{Devnet, Located};
use crate::chronik::proto::{self, subscribe_msg::MsgType};
use crate::chronik::script_type;

/// Where the devnet serves Chronik: `chronik+http://127.0.0.1:PORT/chronik`.
pub const PREFIX: &str = "/chronik";
/// The largest request body (a broadcast of a standard transaction, or many outpoints).
const MAX_REQUEST_BYTES: usize = 1 << 20;
/// History pages hold at most this many transactions (Chronik's own limit is 200).
const MAX_PAGE_SIZE: u32 = 200;
const DEFAULT_PAGE_SIZE: u32 = 25;
/// WebSockets served at once.
const MAX_SOCKETS: usize = 64;
/// The largest WebSocket message taken (a subscription is a few dozen bytes).
const MAX_WS_MESSAGE_BYTES: usize = 16 << 10;
/// Scripts one WebSocket may watch.
const MAX_SUBSCRIPTIONS: usize = 1000;

/// A change, and the scripts it concerns (`None`: every subscriber).
#[derive(Clone, Debug)]
pub struct News {
    msg: MsgType,
    scripts: Option<Vec<Script>>,
}

/// What the chain looked like before a change.
pub struct Snapshot {
    blocks: Vec<[u8; 32]>,
    mempool: HashSet<TxId>,
}

impl Snapshot {
    pub fn of(chain: &ChainState) -> Self {
        Self {
            blocks: chain.blocks().iter().map(|b| b.hash).collect(),
            mempool: chain.mempool().map(Transaction::txid).collect(),
        }
    }

    /// What changed since the snapshot, in the order Chronik announces it.
    pub fn news(&self, chain: &ChainState) -> Vec<News> {
        let mut news = Vec::new();
        let now: HashSet<[u8; 32]> = chain.blocks().iter().map(|b| b.hash).collect();
        let before: HashSet<[u8; 32]> = self.blocks.iter().copied().collect();
        for hash in self.blocks.iter().rev().filter(|h| !now.contains(*h)) {
            news.push(News {
                msg: MsgType::BlockDisconnected(proto::MsgBlockDisconnected {
                    block_hash: hash.to_vec(),
                }),
                scripts: None,
            });
        }
        for tx in chain.mempool() {
            let txid = tx.txid();
            if !self.mempool.contains(&txid) {
                news.push(News {
                    msg: MsgType::AddedToMempool(proto::MsgAddedToMempool {
                        txid: txid.0.to_vec(),
                    }),
                    scripts: Some(touched(chain, tx)),
                });
            }
        }
        for block in chain.blocks().iter().filter(|b| !before.contains(&b.hash)) {
            news.push(News {
                msg: MsgType::BlockConnected(proto::MsgBlockConnected {
                    block_hash: block.hash.to_vec(),
                }),
                scripts: None,
            });
            for tx in &block.txs {
                news.push(News {
                    msg: MsgType::Confirmed(proto::MsgConfirmed {
                        txid: tx.txid().0.to_vec(),
                    }),
                    scripts: Some(touched(chain, tx)),
                });
            }
        }
        news
    }
}

/// The scripts a transaction pays and spends from.
fn touched(chain: &ChainState, tx: &Transaction) -> Vec<Script> {
    let mut scripts: Vec<Script> = tx.outputs.iter().map(|o| o.script_pubkey.clone()).collect();
    if !is_coinbase(tx) {
        scripts.extend(
            tx.inputs
                .iter()
                .filter_map(|i| spent_output(chain, &i.prev_out)),
        );
    }
    scripts
}

fn spent_output(chain: &ChainState, outpoint: &OutPoint) -> Option<Script> {
    spent_output_value(chain, outpoint).map(|o| o.script_pubkey)
}

fn spent_output_value(chain: &ChainState, outpoint: &OutPoint) -> Option<lotus::tx::TxOut> {
    let tx = match chain.locate(&outpoint.txid)? {
        Located::Mempool(tx) | Located::Block(tx, _) | Located::Stale(tx, _) => tx,
    };
    tx.outputs.get(outpoint.vout as usize).cloned()
}

fn protobuf(status: StatusCode, message: impl prost::Message) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message.encode_to_vec())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        "application/x-protobuf".parse().expect("static header"),
    );
    response
}

fn error(status: StatusCode, code: &str, msg: impl Into<String>) -> Response<Full<Bytes>> {
    protobuf(
        status,
        proto::Error {
            error_code: code.to_owned(),
            msg: msg.into(),
            is_user_error: status.is_client_error(),
        },
    )
}

/// The devnet side of one Chronik request; `path` is what follows [`PREFIX`].
pub async fn answer(
    devnet: &std::sync::Mutex<Devnet>,
    news: &broadcast::Sender<News>,
    path: &str,
    request: Request<Incoming>,
    now: u64,
) -> Response<Full<Bytes>> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = request.method().clone();
    if method == Method::GET && parts == ["ws"] {
        if news.receiver_count() >= MAX_SOCKETS {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too-many-sockets",
                "too many WebSockets",
            );
        }
        return upgrade(request, news.subscribe());
    }
    let body = match Limited::new(request.into_body(), MAX_REQUEST_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid-body", e.to_string()),
    };
    let mut devnet = devnet.lock().expect("devnet lock");
    match (method, parts.as_slice()) {
        (Method::GET, ["blockchain-info"]) => {
            let tip = devnet.chain().tip();
            protobuf(
                StatusCode::OK,
                proto::BlockchainInfo {
                    tip_hash: tip.hash.to_vec(),
                    tip_height: tip.height as i32,
                },
            )
        }
        (Method::GET, ["block", which]) => block(devnet.chain(), which),
        (Method::GET, ["blocks", start, end]) => blocks(devnet.chain(), start, end),
        (Method::GET, ["tx", txid]) => match TxId::from_display_hex(txid) {
            Err(_) => error(StatusCode::BAD_REQUEST, "invalid-txid", "not a txid"),
            Ok(txid) => match devnet.chain().locate(&txid) {
                Some(Located::Mempool(tx)) => {
                    protobuf(StatusCode::OK, to_proto_tx(devnet.chain(), tx, None))
                }
                Some(Located::Block(tx, height)) => protobuf(
                    StatusCode::OK,
                    to_proto_tx(devnet.chain(), tx, Some(height)),
                ),
                // A transaction of a disconnected block is not in the index.
                Some(Located::Stale(..)) | None => error(
                    StatusCode::NOT_FOUND,
                    "tx-not-found",
                    format!("Transaction {txid} not found in the index"),
                ),
            },
        },
        (Method::GET, ["script", kind, payload, what]) => {
            let Ok(payload) = hex::decode(payload) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid-payload",
                    "payload is not hex",
                );
            };
            if !script_type::is_known(kind) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid-script-type",
                    format!("unknown script type {kind}"),
                );
            }
            match *what {
                "utxos" => utxos(devnet.chain(), kind, &payload),
                "history" => history(devnet.chain(), kind, &payload, query),
                _ => error(StatusCode::NOT_FOUND, "not-found", "no such endpoint"),
            }
        }
        (Method::POST, ["broadcast-tx"]) => {
            let request = match proto::BroadcastTxRequest::decode(body) {
                Ok(request) => request,
                Err(e) => return error(StatusCode::BAD_REQUEST, "invalid-protobuf", e.to_string()),
            };
            let tx = match Transaction::decode(&request.raw_tx) {
                Ok(tx) => tx,
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid-tx-encoding",
                        e.to_string(),
                    )
                }
            };
            let before = Snapshot::of(devnet.chain());
            match devnet.accept(tx, now) {
                Err(e) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal-error",
                    e.to_string(),
                ),
                Ok(Err(reject)) => {
                    error(StatusCode::BAD_REQUEST, "broadcast-failed", reject.reason)
                }
                Ok(Ok(txid)) => {
                    publish(news, before.news(devnet.chain()));
                    protobuf(
                        StatusCode::OK,
                        proto::BroadcastTxResponse {
                            txid: txid.0.to_vec(),
                        },
                    )
                }
            }
        }
        (Method::POST, ["validate-utxos"]) => {
            let request = match proto::ValidateUtxoRequest::decode(body) {
                Ok(request) => request,
                Err(e) => return error(StatusCode::BAD_REQUEST, "invalid-protobuf", e.to_string()),
            };
            let mut states = Vec::new();
            for outpoint in request.outpoints {
                let Ok(txid) = <[u8; 32]>::try_from(outpoint.txid.as_slice()) else {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid-outpoint",
                        "a txid is not 32 bytes",
                    );
                };
                states.push(utxo_state(
                    devnet.chain(),
                    &OutPoint::new(TxId(txid), outpoint.out_idx),
                ));
            }
            protobuf(
                StatusCode::OK,
                proto::ValidateUtxoResponse {
                    utxo_states: states,
                },
            )
        }
        _ => error(StatusCode::NOT_FOUND, "not-found", "no such endpoint"),
    }
}

/// Sends `news` to the WebSockets (none listening is fine).
pub fn publish(sender: &broadcast::Sender<News>, news: Vec<News>) {
    for item in news {
        let _ = sender.send(item);
    }
}

fn block(chain: &ChainState, which: &str) -> Response<Full<Bytes>> {
    let found = match which.parse::<u32>() {
        Ok(height) if which.len() < 64 => chain.blocks().get(height as usize),
        _ => lotus::tx::from_display_hex(which)
            .ok()
            .and_then(|hash| chain.block_by_hash(&hash)),
    };
    let Some(block) = found else {
        return error(
            StatusCode::NOT_FOUND,
            "block-not-found",
            format!("Block {which} not found"),
        );
    };
    let size: usize = 80
        + block
            .txs
            .iter()
            .map(Transaction::serialized_size)
            .sum::<usize>();
    protobuf(
        StatusCode::OK,
        proto::Block {
            block_info: Some(proto::BlockInfo {
                hash: block.hash.to_vec(),
                prev_hash: block.prev.to_vec(),
                height: block.height as i32,
                timestamp: block.time as i64,
                block_size: size as u64,
                num_txs: block.txs.len() as u64,
                ..Default::default()
            }),
            block_details: Some(proto::BlockDetails {
                median_timestamp: chain.median_time_at(block.height) as i64,
                ..Default::default()
            }),
            raw_header: Vec::new(),
            txs: Vec::new(),
        },
    )
}

/// Headers of the blocks from `start` to `end` (Chronik caps a range at 500).
fn blocks(chain: &ChainState, start: &str, end: &str) -> Response<Full<Bytes>> {
    let (Ok(start), Ok(end)) = (start.parse::<u32>(), end.parse::<u32>()) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-height",
            "heights must be numbers",
        );
    };
    if start > end || end - start >= 500 {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-range",
            "give START <= END, at most 500 blocks",
        );
    }
    let infos = chain
        .blocks()
        .iter()
        .filter(|b| (start..=end).contains(&b.height))
        .map(|b| proto::BlockInfo {
            hash: b.hash.to_vec(),
            prev_hash: b.prev.to_vec(),
            height: b.height as i32,
            timestamp: b.time as i64,
            num_txs: b.txs.len() as u64,
            ..Default::default()
        })
        .collect();
    protobuf(StatusCode::OK, proto::Blocks { blocks: infos })
}

fn to_proto_tx(chain: &ChainState, tx: &Transaction, height: Option<u32>) -> proto::Tx {
    let coinbase = is_coinbase(tx);
    let txid = tx.txid();
    proto::Tx {
        txid: tx.txid().0.to_vec(),
        version: tx.version,
        inputs: tx
            .inputs
            .iter()
            .map(|input| {
                let spent = (!coinbase)
                    .then(|| spent_output_value(chain, &input.prev_out))
                    .flatten();
                proto::TxInput {
                    prev_out: Some(proto::OutPoint {
                        txid: input.prev_out.txid.0.to_vec(),
                        out_idx: input.prev_out.vout,
                    }),
                    input_script: input.script_sig.as_bytes().to_vec(),
                    output_script: spent
                        .as_ref()
                        .map(|o| o.script_pubkey.as_bytes().to_vec())
                        .unwrap_or_default(),
                    value: spent.map_or(0, |o| o.value),
                    sequence_no: input.sequence,
                    ..Default::default()
                }
            })
            .collect(),
        outputs: tx
            .outputs
            .iter()
            .enumerate()
            .map(|(vout, output)| proto::TxOutput {
                value: output.value,
                output_script: output.script_pubkey.as_bytes().to_vec(),
                spent_by: chain.spender(&OutPoint::new(txid, vout as u32)).map(|by| {
                    proto::OutPoint {
                        txid: by.txid.0.to_vec(),
                        out_idx: by.vout,
                    }
                }),
                ..Default::default()
            })
            .collect(),
        lock_time: tx.lock_time,
        block: height.map(|height| {
            let block = &chain.blocks()[height as usize];
            proto::BlockMetadata {
                height: height as i32,
                hash: block.hash.to_vec(),
                timestamp: block.time as i64,
            }
        }),
        size: tx.serialized_size() as u32,
        is_coinbase: coinbase,
        network: proto::Network::Xpi as i32,
        ..Default::default()
    }
}

/// The unspent outputs filed under `kind`/`payload`, confirmed and in the mempool, minus what
/// the mempool spends; grouped by script as Chronik does.
fn utxos(chain: &ChainState, kind: &str, payload: &[u8]) -> Response<Full<Bytes>> {
    let mut groups: Vec<proto::ScriptUtxos> = Vec::new();
    let mut add = |script: &Script, utxo: proto::Utxo| match groups
        .iter_mut()
        .find(|g| g.output_script == script.as_bytes())
    {
        Some(group) => group.utxos.push(utxo),
        None => groups.push(proto::ScriptUtxos {
            output_script: script.as_bytes().to_vec(),
            utxos: vec![utxo],
        }),
    };
    let entry =
        |outpoint: &OutPoint, value: i64, height: Option<u32>, coinbase: bool| proto::Utxo {
            outpoint: Some(proto::OutPoint {
                txid: outpoint.txid.0.to_vec(),
                out_idx: outpoint.vout,
            }),
            block_height: height.map_or(-1, |h| h as i32),
            is_coinbase: coinbase,
            value,
            network: proto::Network::Xpi as i32,
            ..Default::default()
        };
    for (outpoint, coin) in chain.unspent_matching(|s| script_type::matches(kind, payload, s)) {
        add(
            &coin.output.script_pubkey,
            entry(&outpoint, coin.output.value, coin.height, coin.coinbase),
        );
    }
    protobuf(
        StatusCode::OK,
        proto::Utxos {
            script_utxos: groups,
        },
    )
}

fn history(chain: &ChainState, kind: &str, payload: &[u8], query: &str) -> Response<Full<Bytes>> {
    let mut page = 0u32;
    let mut page_size = DEFAULT_PAGE_SIZE;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let parsed = match pair.split_once('=') {
            Some(("page", v)) => v.parse().map(|v| page = v),
            Some(("page_size", v)) => v.parse().map(|v| page_size = v),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid-query",
                    format!("unknown parameter {pair}"),
                )
            }
        };
        if parsed.is_err() {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid-query",
                format!("{pair} is not a number"),
            );
        }
    }
    if page_size == 0 || page_size > MAX_PAGE_SIZE {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid-page-size",
            format!("page_size must be from 1 to {MAX_PAGE_SIZE}"),
        );
    }
    // Newest first: the mempool (latest first), then blocks from the tip down.
    let mut found: Vec<(&Transaction, Option<u32>)> = Vec::new();
    let concerns = |tx: &Transaction| {
        touched(chain, tx)
            .iter()
            .any(|s| script_type::matches(kind, payload, s))
    };
    for tx in chain.mempool().collect::<Vec<_>>().into_iter().rev() {
        if concerns(tx) {
            found.push((tx, None));
        }
    }
    for block in chain.blocks().iter().rev() {
        for tx in block.txs.iter().rev() {
            if concerns(tx) {
                found.push((tx, Some(block.height)));
            }
        }
    }
    let num_pages = found.len().div_ceil(page_size as usize) as u32;
    let txs = found
        .into_iter()
        .skip(page as usize * page_size as usize)
        .take(page_size as usize)
        .map(|(tx, height)| to_proto_tx(chain, tx, height))
        .collect();
    protobuf(StatusCode::OK, proto::TxHistoryPage { txs, num_pages })
}

fn utxo_state(chain: &ChainState, outpoint: &OutPoint) -> proto::UtxoState {
    use proto::UtxoStateVariant as V;
    let (state, height, confirmed) = match chain.locate(&outpoint.txid) {
        None | Some(Located::Stale(..)) => (V::NoSuchTx, -1, false),
        Some(Located::Mempool(tx)) | Some(Located::Block(tx, _))
            if outpoint.vout as usize >= tx.outputs.len() =>
        {
            (V::NoSuchOutput, -1, false)
        }
        Some(located) => {
            let height = match located {
                Located::Block(_, h) => h as i32,
                _ => -1,
            };
            let state = if chain.coin(outpoint, true).is_some() {
                V::Unspent
            } else {
                V::Spent
            };
            (state, height, height >= 0)
        }
    };
    proto::UtxoState {
        height,
        is_confirmed: confirmed,
        state: state as i32,
    }
}

/// Answers the WebSocket handshake and serves the socket in the background.
fn upgrade(request: Request<Incoming>, news: broadcast::Receiver<News>) -> Response<Full<Bytes>> {
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY).cloned() else {
        return error(
            StatusCode::BAD_REQUEST,
            "not-websocket",
            "a WebSocket handshake is expected",
        );
    };
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => {
                let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
                    .max_message_size(Some(MAX_WS_MESSAGE_BYTES))
                    .max_frame_size(Some(MAX_WS_MESSAGE_BYTES));
                let socket = tokio_tungstenite::WebSocketStream::from_raw_socket(
                    TokioIo::new(upgraded),
                    Role::Server,
                    Some(config),
                )
                .await;
                serve_socket(socket, news).await;
            }
            Err(e) => tracing::debug!("devnet chronik: WebSocket upgrade failed: {e}"),
        }
    });
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(UPGRADE, "websocket".parse().expect("static header"));
    headers.insert(CONNECTION, "Upgrade".parse().expect("static header"));
    headers.insert(
        SEC_WEBSOCKET_ACCEPT,
        accept.parse().expect("base64 is a valid header"),
    );
    response
}

async fn serve_socket<S>(
    mut socket: tokio_tungstenite::WebSocketStream<S>,
    mut news: broadcast::Receiver<News>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut subscriptions: HashSet<(String, Vec<u8>)> = HashSet::new();
    let wanted = |subscriptions: &HashSet<(String, Vec<u8>)>, item: &News| match &item.scripts {
        None => !subscriptions.is_empty(),
        Some(scripts) => scripts.iter().any(|s| {
            let (kind, payload) = script_type::of(s);
            subscriptions.contains(&(kind.to_owned(), payload))
        }),
    };
    loop {
        let outgoing = tokio::select! {
            incoming = socket.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) => match proto::Subscription::decode(bytes) {
                    Ok(sub) if !script_type::is_known(&sub.script_type) => Some(MsgType::Error(proto::Error {
                        error_code: "invalid-script-type".into(),
                        msg: format!("unknown script type {}", sub.script_type),
                        is_user_error: true,
                    })),
                    Ok(sub) if sub.is_subscribe && subscriptions.len() >= MAX_SUBSCRIPTIONS => Some(MsgType::Error(proto::Error {
                        error_code: "too-many-subscriptions".into(),
                        msg: format!("at most {MAX_SUBSCRIPTIONS} scripts per socket"),
                        is_user_error: true,
                    })),
                    Ok(sub) => {
                        let key = (sub.script_type, sub.payload);
                        if sub.is_subscribe {
                            subscriptions.insert(key);
                        } else {
                            subscriptions.remove(&key);
                        }
                        None
                    }
                    Err(e) => Some(MsgType::Error(proto::Error {
                        error_code: "invalid-protobuf".into(),
                        msg: e.to_string(),
                        is_user_error: true,
                    })),
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => None,
            },
            item = news.recv() => match item {
                Ok(item) if wanted(&subscriptions, &item) => Some(item.msg),
                Ok(_) => None,
                // Fell behind: say something changed (the client re-asks on any message).
                Err(broadcast::error::RecvError::Lagged(_)) if !subscriptions.is_empty() => {
                    Some(MsgType::BlockConnected(proto::MsgBlockConnected::default()))
                }
                Err(broadcast::error::RecvError::Lagged(_)) => None,
                Err(broadcast::error::RecvError::Closed) => return,
            },
        };
        if let Some(msg) = outgoing {
            let bytes = proto::SubscribeMsg {
                msg_type: Some(msg),
            }
            .encode_to_vec();
            if socket.send(Message::binary(bytes)).await.is_err() {
                return;
            }
        }
    }
}
