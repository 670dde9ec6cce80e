//! `lotus-cosigner demo` end to end: the scripted demo a newcomer (and the app's "Try a demo
//! group") runs — a devnet and three co-signer processes, a coordinator that fails and a backup
//! that broadcasts, a co-signer blamed for an invalid partial signature.

const BIN: &str = env!("CARGO_BIN_EXE_lotus-cosigner");

#[test]
fn the_demo_shows_a_failover_and_a_blame_and_cleans_up() {
    let scratch = tempfile::tempdir().unwrap();
    let keep = scratch.path().join("kept");
    let output = std::process::Command::new(BIN)
        .args(["--json", "demo", "--dir"])
        .arg(&keep)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let failover = &report["failover"];
    assert_eq!(
        failover["coordinators"][0], 1,
        "alice coordinates: {report}"
    );
    assert_eq!(failover["failed_coordinator"], 1, "{report}");
    assert_eq!(
        failover["broadcast_by"], 2,
        "bob, the first backup: {report}"
    );
    assert_eq!(failover["txid"].as_str().unwrap().len(), 64);
    assert_eq!(report["blame"]["blamed_member"], 3, "carol: {report}");
    assert!(
        report["blame"]["reason"]
            .as_str()
            .unwrap()
            .contains("partial signature"),
        "{report}"
    );
    // The blame record in Alice's profile, as the app's evidence viewer shows it: verified
    // again from its signed messages alone, and listed in the audit log.
    let open = |name: &str| {
        std::sync::Arc::new(
            engine::custody::Custody::open_file(
                &keep.join(name).join("key.enc"),
                "demo only - throwaway keys",
            )
            .unwrap(),
        )
    };
    let carol = hex::encode(open("carol").public_key().serialize());
    let alice = engine::Engine::start(engine::EngineConfig {
        data_dir: Some(keep.join("alice")),
        key: Some(open("alice")),
        ..engine::EngineConfig::default()
    });
    let evidence = alice.evidence_against(&carol).unwrap();
    assert!(!evidence.is_empty(), "no evidence against carol");
    let record = &evidence[0];
    assert_eq!(record.offence, "invalid partial signature", "{record:?}");
    assert_eq!(record.verification_error, None, "{record:?}");
    assert_eq!(record.culprit, 3);
    assert_eq!(
        record.messages.len(),
        4,
        "proposal round: 3 nonces + carol's partials"
    );
    assert!(
        record
            .messages
            .iter()
            .any(|m| m.sender == 3 && m.kind == "partials"),
        "{record:?}"
    );
    let entries = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(alice.audit_entries(1000))
        .unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e.kind == "blamed" && e.signer.as_deref() == Some(carol.as_str())),
        "{entries:?}"
    );
    drop(alice);

    // Every demo process stopped: the kept folders hold no running node's socket.
    for name in ["alice", "bob", "carol"] {
        let socket = keep.join(name).join("node.sock");
        assert!(
            std::os::unix::net::UnixStream::connect(&socket).is_err(),
            "{name}'s demo node still runs"
        );
    }
}
