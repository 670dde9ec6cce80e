//! What the cross-process tests share: the binary, the key files' passphrase, one command with
//! `--json`, and waiting for processes that work in parallel.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_lotus-cosigner");
pub const PASSPHRASE: &str = "correct horse battery staple";

/// Runs `lotus-cosigner --data-dir DIR --json ARGS…`; its JSON answer, or what it said.
pub fn cli(dir: &Path, args: &[&str]) -> Result<Value, String> {
    let output = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir)
        .arg("--json")
        .args(args)
        .env("LOTUS_COSIGNER_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "{args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_str(&stdout).map_err(|e| format!("{args:?}: not JSON ({e}): {stdout}"))
}

/// Retries `f` until it answers `Some`, for at most `limit` (the processes work in parallel;
/// this polls their answers, it does not order anything by sleeping).
pub fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = f() {
            return value;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
