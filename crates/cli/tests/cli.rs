//! The `lotus-cosigner` binary as a user runs it.

use std::path::PathBuf;
use std::process::Command;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_lotus-cosigner"))
}

fn published_vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/lotus")
}

fn run(cmd: &mut Command) -> (bool, String) {
    let output = cmd.output().expect("run lotus-cosigner");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn vectors_command_passes_every_published_file() {
    let (ok, out) = run(binary().arg("vectors").arg(published_vectors()));
    assert!(ok, "vectors failed:\n{out}");
    let file_lines: Vec<&str> = out.lines().filter(|l| l.contains(".json: ")).collect();
    assert_eq!(file_lines.len(), 8, "one line per file:\n{out}");
    for line in &file_lines {
        assert!(line.ends_with(", 0 failed"), "{line}");
    }
    let total = out.lines().last().expect("a total line");
    assert!(
        total.starts_with("total: ") && total.contains(" 0 failed in 8 files"),
        "{total}"
    );
}

#[test]
fn vectors_command_fails_on_a_wrong_answer_and_an_unknown_file() {
    let dir = std::env::temp_dir().join(format!("lotus-cosigner-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Flip the expected validity of the first Schnorr case: that case must fail.
    let text = std::fs::read_to_string(published_vectors().join("schnorr.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let valid = json["cases"][0]["valid"].as_bool().unwrap();
    json["cases"][0]["valid"] = serde_json::Value::Bool(!valid);
    let tampered = dir.join("tampered.json");
    std::fs::write(&tampered, serde_json::to_string(&json).unwrap()).unwrap();
    let (ok, out) = run(binary().arg("vectors").arg(&tampered));
    assert!(!ok, "a wrong answer must fail:\n{out}");
    assert!(out.contains("tampered.json: 36 passed, 1 failed"), "{out}");

    let unknown = dir.join("unknown.json");
    std::fs::write(&unknown, r#"{"file": "nothing-we-know.json", "cases": []}"#).unwrap();
    let (ok, out) = run(binary().arg("vectors").arg(&unknown));
    assert!(!ok, "an unrecognised file must fail:\n{out}");
    assert!(out.contains("not a recognised vector file"), "{out}");

    let (ok, out) = run(binary().arg("vectors").arg(dir.join("missing.json")));
    assert!(!ok);
    assert!(out.contains("cannot read"), "{out}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bench_prints_every_ratio_line() {
    // One tiny round: this checks the report's shape, not speed (benchmarks measure speed).
    let (ok, out) = run(binary().args(["bench", "--sizes", "3,10", "--rounds", "1"]));
    assert!(ok, "{out}");
    for name in ["schnorr_sign n=1", "schnorr_verify n=1"] {
        assert!(
            out.contains(&format!("ratio {name} lotus/baseline=")),
            "{name}:\n{out}"
        );
    }
    for session in ["musig2_session", "musig2_taproot_session"] {
        for n in [3, 10] {
            let prefix = format!("ratio {session} n={n} lotus/baseline=");
            let line = out
                .lines()
                .find(|l| l.starts_with(&prefix))
                .unwrap_or_else(|| panic!("{prefix}:\n{out}"));
            let value: f64 = line[prefix.len()..].parse().expect("a ratio number");
            assert!(value > 0.0);
        }
    }
}

/// A profile in a temp folder, with keys in encrypted files (no keychain needed).
fn profile_cmd(dir: &std::path::Path) -> Command {
    let mut cmd = binary();
    cmd.arg("--data-dir")
        .arg(dir)
        .env("LOTUS_COSIGNER_PASSPHRASE", "correct horse battery staple");
    cmd
}

#[test]
fn keys_groups_and_invites_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut members = Vec::new();
    for i in 0..3 {
        let file = dir.path().join(format!("k{i}.key"));
        let (ok, out) = run(profile_cmd(dir.path())
            .args(["key", "create", "--file"])
            .arg(&file));
        assert!(ok && out.contains("taproot      lotus_"), "{out}");
        let (ok, public) = run(profile_cmd(dir.path())
            .args(["key", "export", "--file"])
            .arg(&file));
        assert!(ok);
        members.push(public.trim().to_string());
    }
    // The same file again is refused (never overwritten).
    let (ok, out) = run(profile_cmd(dir.path())
        .args(["key", "create", "--file"])
        .arg(dir.path().join("k0.key")));
    assert!(!ok && out.contains("refusing to overwrite"), "{out}");

    let mut create = profile_cmd(dir.path());
    create.args(["group", "create", "--name", "Family vault"]);
    for m in &members {
        create.args(["--member", m]);
    }
    let (ok, out) = run(&mut create);
    assert!(ok, "{out}");
    let invite = out
        .lines()
        .find_map(|l| l.strip_prefix("invite       "))
        .expect("invite line")
        .to_string();
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("id           "))
        .unwrap()
        .to_string();

    let (ok, out) = run(profile_cmd(dir.path())
        .args(["group", "accept", &invite, "--key-file"])
        .arg(dir.path().join("k1.key")));
    assert!(ok && out.contains("accepted as member #2"), "{out}");
    let (ok, out) = run(profile_cmd(dir.path()).args(["group", "show-invite", &id[..10]]));
    assert!(
        ok && out.contains("3 (1 accepted)") && out.contains(&invite),
        "{out}"
    );

    // A key that is not a member cannot accept; a damaged invite is a clear error.
    let outsider = dir.path().join("outsider.key");
    assert!(
        run(profile_cmd(dir.path())
            .args(["key", "create", "--file"])
            .arg(&outsider))
        .0
    );
    let (ok, out) = run(profile_cmd(dir.path())
        .args(["group", "accept", &invite, "--key-file"])
        .arg(&outsider));
    assert!(!ok && out.contains("not a member"), "{out}");
    let (ok, out) =
        run(profile_cmd(dir.path()).args(["group", "accept", "lotus-cosigner://invite/zzz0OIl"]));
    assert!(!ok && out.contains("invite is damaged"), "{out}");
}

#[test]
fn audit_verify_names_the_first_tampered_entry_and_export_writes_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store =
            store::Store::open(dir.path().join(engine::data_dir::DATABASE_FILE)).unwrap();
        for i in 0..5u8 {
            store
                .append(
                    &store::AuditEvent::Approved {
                        session_id: [i; 32],
                        digest: [i; 32],
                    },
                    1_000 + i as u64,
                )
                .unwrap();
        }
    }
    let (ok, out) = run(profile_cmd(dir.path()).args(["audit", "verify"]));
    assert!(ok && out.contains("verified: 5 entries"), "{out}");
    let export = dir.path().join("audit.jsonl");
    let (ok, _) = run(profile_cmd(dir.path())
        .args(["audit", "export", "--out"])
        .arg(&export));
    assert!(ok);
    let lines = std::fs::read_to_string(&export).unwrap();
    assert_eq!(lines.lines().count(), 5);
    assert!(lines
        .lines()
        .all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()));

    // Tamper with entry 3's body behind the store's back (dropping the append-only trigger,
    // as someone with the file could).
    let db = rusqlite::Connection::open(dir.path().join(engine::data_dir::DATABASE_FILE)).unwrap();
    db.execute_batch(
        "DROP TRIGGER audit_no_update; UPDATE audit SET time_ms = time_ms + 1 WHERE seq = 3;",
    )
    .unwrap();
    drop(db);
    let (ok, out) = run(profile_cmd(dir.path()).args(["audit", "verify"]));
    assert!(!ok, "{out}");
    assert!(
        out.contains("BROKEN") && out.contains('3'),
        "the first bad entry is named: {out}"
    );
}
