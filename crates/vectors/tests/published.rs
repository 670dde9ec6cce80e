//! Every published vector file passes in full: no failures, and every case counted.

use std::path::PathBuf;

use vectors::check_file;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/lotus")
}

/// Runs one file and asserts that all `expected_cases` passed.
fn assert_all_pass(file: &str, expected_cases: usize) {
    let (_, report) =
        check_file(&vectors_dir().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    for failure in &report.failures {
        eprintln!("{file}: {failure}");
    }
    assert_eq!(report.failed(), 0, "{file}: {} failures", report.failed());
    assert_eq!(report.passed, expected_cases, "{file}: pass count");
}

#[test]
fn merkle_txid_json() {
    assert_all_pass("merkle_txid.json", 38);
}

#[test]
fn xaddress_json() {
    assert_all_pass("xaddress.json", 85);
}

#[test]
fn sighash_lotus_json() {
    assert_all_pass("sighash_lotus.json", 28);
}

#[test]
fn sighash_json() {
    assert_all_pass("sighash.json", 1000);
}

#[test]
fn regtest_lotusd_json() {
    assert_all_pass("regtest_lotusd.json", 22);
}

#[test]
fn schnorr_json() {
    assert_all_pass("schnorr.json", 37);
}

/// 10 cases, 48 negative partial signatures, 10 negative final signatures.
#[test]
fn musig2_lotus_json() {
    assert_all_pass("musig2_lotus.json", 10 + 48 + 10);
}

/// 7 cases, 53 negative partials, 7 negative finals, 2 lotusd AddScalar vectors.
#[test]
fn taproot_musig2_lotus_json() {
    assert_all_pass("taproot_musig2_lotus.json", 7 + 53 + 7 + 2);
}
