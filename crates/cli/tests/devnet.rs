//! `lotus-cosigner devnet` as its own process: it prints where it serves, funds at start, keeps
//! its chain across restarts, and stops cleanly on SIGTERM and on the `stop` RPC.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use chain::rpc::{RpcBackend, RpcClient};
use chain::{ChainBackend, ChainSpec};
use lotus::address::{Network, XAddress};
use lotus::key::PrivateKey;
use lotus::script::Script;
use serde_json::json;

struct Devnet {
    child: Child,
    rpc_line: String,
    chronik: String,
    backend: RpcBackend,
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Devnet {
    let mut child = Command::new(env!("CARGO_BIN_EXE_lotus-cosigner"))
        .arg("--data-dir")
        .arg(dir)
        .args(["devnet", "--rpc", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the devnet");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let rpc_line = lines.next().expect("a first line").unwrap();
    let _cookie = lines.next().unwrap().unwrap();
    let chain_line = lines.next().unwrap().unwrap();
    let spec = chain_line.strip_prefix("chain ").expect("chain SPEC");
    let chronik_line = lines.next().unwrap().unwrap();
    let chronik = chronik_line
        .strip_prefix("chronik ")
        .expect("chronik SPEC")
        .to_owned();
    let backend = RpcBackend::new(RpcClient::from_spec(&ChainSpec::parse(spec).unwrap()).unwrap());
    Devnet {
        child,
        rpc_line,
        chronik,
        backend,
    }
}

/// A failing test must not leave the devnet running (it would hold the test's output open).
impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(mut devnet: Devnet) {
    unsafe { libc::kill(devnet.child.id() as i32, libc::SIGTERM) };
    let status = devnet.child.wait().unwrap();
    assert!(
        status.success(),
        "devnet exits cleanly on SIGTERM: {status}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devnet_process_serves_funds_persists_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let key = PrivateKey::from_bytes(&[9; 32]).unwrap();
    let script = Script::p2pkh_for_key(&key.public_key());
    let address = XAddress::for_script(&script, Network::Regtest).encode();
    let fund = format!("{address}:123456789");

    let devnet = start(dir.path(), &["--fund", &fund]);
    assert!(
        devnet.rpc_line.starts_with("rpc http://127.0.0.1:"),
        "{}",
        devnet.rpc_line
    );
    let coins = devnet.backend.unspent(&script).await.unwrap();
    assert_eq!(
        coins.iter().map(|c| c.output.value).collect::<Vec<_>>(),
        [123_456_789]
    );
    devnet
        .backend
        .client()
        .call("generatetoaddress", json!([2, address]))
        .await
        .unwrap()
        .unwrap();
    let tip = devnet.backend.tip().await.unwrap();
    terminate(devnet);

    // The chain is where it was; a second --fund adds a funding block.
    let mut devnet = start(dir.path(), &["--fund", &fund]);
    let after = devnet.backend.tip().await.unwrap();
    assert_eq!(after.height, tip.height + 1);
    assert_eq!(
        devnet
            .backend
            .unspent(&script)
            .await
            .unwrap()
            .iter()
            .filter(|c| c.output.value == 123_456_789)
            .count(),
        2
    );
    devnet
        .backend
        .client()
        .call("stop", json!([]))
        .await
        .unwrap()
        .unwrap();
    assert!(devnet.child.wait().unwrap().success());
}

#[test]
fn devnet_refuses_a_bad_fund_argument_with_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_lotus-cosigner"))
        .args(["devnet", "--fund", "notanaddress:5"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not a Lotus address"), "{stderr}");
}

fn cli(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lotus-cosigner"))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (
        output.status.success(),
        text + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn group_balance_and_history_come_from_the_chain_backend() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let profile = profile.to_str().unwrap();
    let members: Vec<String> = (1..=2u8)
        .map(|i| {
            hex::encode(
                PrivateKey::from_bytes(&[i; 32])
                    .unwrap()
                    .public_key()
                    .serialize(),
            )
        })
        .collect();
    let (ok, out) = cli(&[
        "--data-dir",
        profile,
        "--json",
        "group",
        "create",
        "--name",
        "till",
        "--member",
        &members[0],
        "--member",
        &members[1],
        "--network",
        "regtest",
    ]);
    assert!(ok, "{out}");
    let group: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, address) = (
        group["id"].as_str().unwrap(),
        group["address"].as_str().unwrap(),
    );
    assert_eq!(group["balance"]["coins"], 0);

    let devnet = start(
        &dir.path().join("devnet"),
        &[
            "--fund",
            &format!("{address}:5000000"),
            "--fund",
            &format!("{address}:7000000"),
        ],
    );
    let spec = devnet.rpc_line.replace("rpc http://", "");
    let spec = format!(
        "rpc://{spec}?cookie={}",
        dir.path().join("devnet/.cookie").display()
    );
    let (ok, out) = cli(&[
        "--data-dir",
        profile,
        "--chain",
        &spec,
        "--json",
        "group",
        "balance",
        &id[..12],
    ]);
    assert!(ok, "{out}");
    let balance: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(balance["confirmed_sats"], 12_000_000);
    assert_eq!(balance["unconfirmed_sats"], 0);
    assert_eq!(balance["coins"], 2);
    // The same balance from the devnet's Chronik endpoints (the group's Taproot script is
    // looked up as p2tr-commitment).
    let (ok, out) = cli(&[
        "--data-dir",
        profile,
        "--chain",
        &devnet.chronik,
        "--json",
        "group",
        "balance",
        id,
    ]);
    assert!(ok, "{out}");
    let by_chronik: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(by_chronik, balance);

    let (ok, out) = cli(&[
        "--data-dir",
        profile,
        "--chain",
        &spec,
        "--json",
        "group",
        "history",
        id,
    ]);
    assert!(ok, "{out}");
    let history: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(history.len(), 2);
    assert!(history
        .iter()
        .all(|h| h["kind"] == "received" && h["height"] == 0));

    // Without a backend: the last known balance, and a note saying so.
    drop(devnet);
    let (ok, out) = cli(&["--data-dir", profile, "group", "balance", id]);
    assert!(ok, "{out}");
    assert!(
        out.contains("12.000000 XPI confirmed") && out.contains("last known"),
        "{out}"
    );
    // A backend that is down is an error that names it, not a zero balance.
    let (ok, out) = cli(&[
        "--data-dir",
        profile,
        "--chain",
        &spec,
        "group",
        "balance",
        id,
    ]);
    assert!(!ok && out.contains("cannot be reached"), "{out}");
}

fn cli_env(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_lotus-cosigner"))
        .args(args)
        .env("LOTUS_COSIGNER_PASSPHRASE", "correct horse battery staple")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (
        output.status.success(),
        text + &String::from_utf8_lossy(&output.stderr),
    )
}

#[test]
fn a_payment_is_proposed_from_the_groups_coins_or_from_coins_named_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    let profile = profile.to_str().unwrap();
    let key_file = dir.path().join("me.key");
    let key_file = key_file.to_str().unwrap();
    let (ok, out) = cli_env(&[
        "--data-dir",
        profile,
        "--json",
        "key",
        "create",
        "--file",
        key_file,
    ]);
    assert!(ok, "{out}");
    let me: serde_json::Value = serde_json::from_str(&out).unwrap();
    let other = hex::encode(
        PrivateKey::from_bytes(&[7; 32])
            .unwrap()
            .public_key()
            .serialize(),
    );
    let (ok, out) = cli_env(&[
        "--data-dir",
        profile,
        "--json",
        "group",
        "create",
        "--name",
        "ops",
        "--member",
        me["public_key"].as_str().unwrap(),
        "--member",
        &other,
        "--network",
        "regtest",
    ]);
    assert!(ok, "{out}");
    let group: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, address) = (
        group["id"].as_str().unwrap(),
        group["address"].as_str().unwrap(),
    );
    let devnet = start(
        &dir.path().join("devnet"),
        &["--fund", &format!("{address}:9000000")],
    );
    let spec = format!(
        "rpc://{}?cookie={}",
        devnet.rpc_line.replace("rpc http://", ""),
        dir.path().join("devnet/.cookie").display()
    );
    let shop = XAddress::for_script(&Script::p2pkh(&[0x33; 20]), Network::Regtest).encode();

    let (ok, out) = cli_env(&[
        "--data-dir",
        profile,
        "--chain",
        &spec,
        "--json",
        "session",
        "propose",
        "--group",
        id,
        "--pay",
        &format!("{shop}:3000000"),
        "--key-file",
        key_file,
    ]);
    assert!(ok, "{out}");
    let proposal: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(proposal["session_id"].as_str().unwrap().len(), 64);
    assert_eq!(proposal["review_digest"].as_str().unwrap().len(), 64);
    let outputs = proposal["payment"]["outputs"].as_array().unwrap();
    assert_eq!(outputs[0]["address"], shop.as_str());
    assert_eq!(outputs[0]["amount_sats"], 3_000_000);
    assert_eq!(outputs[1]["is_change"], true);
    let fee = proposal["payment"]["fee_sats"].as_i64().unwrap();
    assert_eq!(
        outputs[1]["amount_sats"].as_i64().unwrap(),
        9_000_000 - 3_000_000 - fee
    );

    // Coins named by hand need no chain backend.
    let txid = proposal["payment"]["inputs"][0]["outpoint"]
        .as_str()
        .unwrap()
        .to_owned();
    let (ok, out) = cli_env(&[
        "--data-dir",
        profile,
        "--json",
        "session",
        "propose",
        "--group",
        id,
        "--pay",
        &format!("{shop}:all"),
        "--input",
        &format!("{txid}:9000000"),
        "--key-file",
        key_file,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = cli_env(&["--data-dir", profile, "--json", "session", "list"]);
    assert!(ok, "{out}");
    let sessions: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions
        .iter()
        .all(|s| s["proposed_by_me"] == true && s["group_id"] == id));

    // Bad input gets a clear error.
    let mainnet = XAddress::for_script(&Script::p2pkh(&[0x33; 20]), Network::Mainnet).encode();
    let (ok, out) = cli_env(&[
        "--data-dir",
        profile,
        "--chain",
        &spec,
        "session",
        "propose",
        "--group",
        id,
        "--pay",
        &format!("{mainnet}:3000000"),
        "--key-file",
        key_file,
    ]);
    assert!(!ok && out.contains("is not a regtest address"), "{out}");
    let (ok, out) = cli_env(&[
        "--data-dir",
        profile,
        "--chain",
        &spec,
        "session",
        "propose",
        "--group",
        id,
        "--pay",
        &format!("{shop}:900000000"),
        "--key-file",
        key_file,
    ]);
    assert!(!ok && out.contains("not enough funds"), "{out}");
}

/// Offline use: a proposal exported on one machine is imported on a co-signer's, validated in
/// full, and shows the same review (same digest).
#[test]
fn a_session_file_carries_a_proposal_to_a_co_signer() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let (alice, bob) = (path("alice"), path("bob"));
    let (alice_key, bob_key) = (path("alice.key"), path("bob.key"));
    let mut keys = Vec::new();
    for (profile, key) in [(&alice, &alice_key), (&bob, &bob_key)] {
        let (ok, out) = cli_env(&[
            "--data-dir",
            profile,
            "--json",
            "key",
            "create",
            "--file",
            key,
        ]);
        assert!(ok, "{out}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        keys.push(v["public_key"].as_str().unwrap().to_owned());
    }
    let (ok, out) = cli_env(&[
        "--data-dir",
        &alice,
        "--json",
        "group",
        "create",
        "--name",
        "pair",
        "--member",
        &keys[0],
        "--member",
        &keys[1],
        "--network",
        "regtest",
    ]);
    assert!(ok, "{out}");
    let group: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = group["id"].as_str().unwrap();
    let shop = XAddress::for_script(&Script::p2pkh(&[0x44; 20]), Network::Regtest).encode();
    let coin = format!("{}:0:5000000", "ab".repeat(32));
    let (ok, out) = cli_env(&[
        "--data-dir",
        &alice,
        "--json",
        "session",
        "propose",
        "--group",
        id,
        "--pay",
        &format!("{shop}:2000000"),
        "--input",
        &coin,
        "--key-file",
        &alice_key,
    ]);
    assert!(ok, "{out}");
    let proposal: serde_json::Value = serde_json::from_str(&out).unwrap();
    let session = proposal["session_id"].as_str().unwrap();
    let file = path("session.json");
    let (ok, out) = cli_env(&[
        "--data-dir",
        &alice,
        "session",
        "export",
        session,
        "--out",
        &file,
    ]);
    assert!(ok, "{out}");

    // Bob without the group: a clear error. After accepting the invite: the same review.
    let (ok, out) = cli_env(&[
        "--data-dir",
        &bob,
        "session",
        "import",
        &file,
        "--key-file",
        &bob_key,
    ]);
    assert!(!ok && out.contains("accept its invite first"), "{out}");
    let (ok, out) = cli_env(&[
        "--data-dir",
        &bob,
        "group",
        "accept",
        group["invite"].as_str().unwrap(),
        "--key-file",
        &bob_key,
    ]);
    assert!(ok, "{out}");
    let (ok, out) = cli_env(&[
        "--data-dir",
        &bob,
        "--json",
        "session",
        "import",
        &file,
        "--key-file",
        &bob_key,
    ]);
    assert!(ok, "{out}");
    let imported: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(imported["review"]["session_id"], session);
    assert_eq!(
        imported["review"]["review_digest"],
        proposal["review_digest"]
    );
    assert_eq!(imported["review"]["outputs"][0]["address"], shop.as_str());
    let (ok, out) = cli_env(&["--data-dir", &bob, "--json", "session", "list"]);
    assert!(ok && out.contains(session), "{out}");
    // Nothing signed yet: nothing to broadcast. A file that is not a session file: said so.
    let (ok, out) = cli_env(&[
        "--data-dir",
        &bob,
        "session",
        "import",
        &file,
        "--broadcast",
        "--key-file",
        &bob_key,
    ]);
    assert!(!ok, "{out}");
    std::fs::write(path("junk.json"), "{\"hello\": 1}").unwrap();
    let (ok, out) = cli_env(&[
        "--data-dir",
        &bob,
        "session",
        "import",
        &path("junk.json"),
        "--key-file",
        &bob_key,
    ]);
    assert!(
        !ok && out.contains("not a Lotus Cosigner session file"),
        "{out}"
    );
}

/// Errors say what happened and what to do; with --json they are one object scripts can read.
#[test]
fn errors_explain_themselves_for_people_and_for_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_lotus-cosigner"))
        .args([
            "--data-dir",
            profile,
            "--json",
            "group",
            "balance",
            "abcdef",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["error"]["kind"], "unknown_group");
    assert!(answer["error"]["action"]
        .as_str()
        .unwrap()
        .contains("group list"));
    let (ok, out) = cli(&[
        "--data-dir",
        profile,
        "session",
        "import",
        "/nonexistent/file.json",
    ]);
    assert!(
        !ok && out.contains("cannot read /nonexistent/file.json") && out.contains("what to do"),
        "{out}"
    );
}
