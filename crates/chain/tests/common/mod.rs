//! Shared by the chain tests: a P2PKH wallet that signs like lotusd expects, and devnets
//! served on loopback.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use chain::devnet::server::{self, DevnetConfig, RunningDevnet};
use chain::rpc::{RpcBackend, RpcClient};
use chain::ChainSpec;
use lotus::address::{Network, XAddress};
use lotus::key::PrivateKey;
use lotus::schnorr;
use lotus::script::Script;
use lotus::sighash::{SigHashType, SighashCache, SighashFlags};
use lotus::spend::p2pkh_script_sig;
use lotus::tx::{OutPoint, Transaction, TxIn, TxOut};
use serde_json::json;

pub const XPI: i64 = 1_000_000;

pub struct Wallet {
    key: PrivateKey,
}

impl Wallet {
    pub fn new(seed: u8) -> Self {
        Self {
            key: PrivateKey::from_bytes(&[seed; 32]).unwrap(),
        }
    }
    pub fn script(&self) -> Script {
        Script::p2pkh_for_key(&self.key.public_key())
    }
    pub fn address(&self) -> String {
        XAddress::for_script(&self.script(), Network::Regtest).encode()
    }
    /// Signs every input of `tx` (all spending our P2PKH outputs `spent`) with ALL|FORKID.
    pub fn sign(&self, mut tx: Transaction, spent: &[TxOut]) -> Transaction {
        let signatures: Vec<_> = (0..tx.inputs.len())
            .map(|i| {
                let cache = SighashCache::with_spent_outputs(&tx, spent).unwrap();
                let digest = cache
                    .signature_hash(
                        i,
                        &self.script(),
                        spent[i].value,
                        SigHashType::ALL_FORKID,
                        None,
                        SighashFlags::CONSENSUS,
                    )
                    .unwrap();
                schnorr::sign(&self.key, &digest)
            })
            .collect();
        for (input, signature) in tx.inputs.iter_mut().zip(&signatures) {
            input.script_sig =
                p2pkh_script_sig(signature, SigHashType::ALL_FORKID, &self.key.public_key());
        }
        tx
    }

    /// Spends `coins` (all ours) to `outputs`, signed with ALL|FORKID.
    pub fn spend(
        &self,
        coins: &[(OutPoint, i64)],
        outputs: Vec<TxOut>,
        lock_time: u32,
        sequence: u32,
    ) -> Transaction {
        let mut tx = Transaction {
            version: 2,
            inputs: coins
                .iter()
                .map(|(o, _)| TxIn {
                    prev_out: *o,
                    script_sig: Script::new(),
                    sequence,
                })
                .collect(),
            outputs,
            lock_time,
        };
        let spent: Vec<TxOut> = coins
            .iter()
            .map(|(_, v)| TxOut::new(*v, self.script()))
            .collect();
        let signatures: Vec<_> = (0..tx.inputs.len())
            .map(|i| {
                let cache = SighashCache::with_spent_outputs(&tx, &spent).unwrap();
                let digest = cache
                    .signature_hash(
                        i,
                        &self.script(),
                        spent[i].value,
                        SigHashType::ALL_FORKID,
                        None,
                        SighashFlags::CONSENSUS,
                    )
                    .unwrap();
                schnorr::sign(&self.key, &digest)
            })
            .collect();
        for (input, signature) in tx.inputs.iter_mut().zip(&signatures) {
            input.script_sig =
                p2pkh_script_sig(signature, SigHashType::ALL_FORKID, &self.key.public_key());
        }
        tx
    }
}

pub async fn start(dir: &Path, fund: Vec<(Script, i64)>) -> (RunningDevnet, RpcBackend) {
    serve(dir, "127.0.0.1:0".parse().unwrap(), fund).await
}

/// A devnet on `listen` (port 0: any) over the chain in `dir`, funding `fund` at start, and
/// the lotusd backend that reaches it.
async fn serve(
    dir: &Path,
    listen: SocketAddr,
    fund: Vec<(Script, i64)>,
) -> (RunningDevnet, RpcBackend) {
    let devnet = server::start(DevnetConfig {
        data_dir: dir.to_owned(),
        listen,
        block_interval: None,
        fund,
        limits: Default::default(),
    })
    .await
    .unwrap();
    let spec = ChainSpec::parse(&devnet.chain_spec()).unwrap();
    let backend = RpcBackend::new(RpcClient::from_spec(&spec).unwrap());
    (devnet, backend)
}

pub async fn mine(backend: &RpcBackend, count: u32, to: &str) {
    backend
        .client()
        .call("generatetoaddress", json!([count, to]))
        .await
        .unwrap()
        .unwrap();
}

/// A devnet on `listen` (port 0: any) over the chain in `dir`.
pub async fn start_on(dir: &Path, listen: SocketAddr) -> (RunningDevnet, RpcBackend) {
    serve(dir, listen, vec![]).await
}

/// Two devnet folders holding the same genesis block (so they agree until told otherwise).
pub fn twin_chains(a: &Path, b: &Path, funding: Vec<(Script, i64)>) {
    for dir in [a, b] {
        std::fs::create_dir_all(dir).unwrap();
        let outputs = funding
            .iter()
            .map(|(s, v)| TxOut::new(*v, s.clone()))
            .collect();
        chain::devnet::Devnet::open(&dir.join(server::DATABASE_FILE), outputs, 1_780_000_000)
            .unwrap();
    }
}
