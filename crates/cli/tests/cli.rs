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
