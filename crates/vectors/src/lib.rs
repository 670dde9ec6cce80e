//! Known-answer vector runner.
//!
//! A vector file is recognised by its top-level `file` field (the generated lotus-sdk / lotusd
//! extracts) or, for the two verbatim lotusd arrays, by its file name. Each schema module turns
//! every case into a pass or a failure with a reason; nothing is skipped silently.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod merkle_txid;
mod musig2;
mod regtest;
mod schnorr;
mod script_notation;
mod sighash;
mod sighash_lotus;
mod util;
mod xaddress;

/// The outcome of one file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileReport {
    pub passed: usize,
    /// One line per failing case: `<case id>: <what differed>`.
    pub failures: Vec<String>,
}

impl FileReport {
    pub fn failed(&self) -> usize {
        self.failures.len()
    }
    /// Records one case: `Ok` passes, `Err(reason)` fails with the case id.
    pub fn record(&mut self, case_id: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => self.passed += 1,
            Err(reason) => self.failures.push(format!("{case_id}: {reason}")),
        }
    }
}

/// Errors name the problem; callers print the file path (`path()`) next to them.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not JSON: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("not a recognised vector file (no known `file` field or lotusd file name)")]
    Unrecognised { path: PathBuf },
    #[error("malformed {schema} file: {reason}")]
    Malformed {
        path: PathBuf,
        schema: &'static str,
        reason: String,
    },
}

impl VectorError {
    /// The file or folder the error is about.
    pub fn path(&self) -> &Path {
        match self {
            VectorError::Read { path, .. }
            | VectorError::Json { path, .. }
            | VectorError::Unrecognised { path }
            | VectorError::Malformed { path, .. } => path,
        }
    }
}

/// The schemas this runner knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    Schnorr,
    Musig2,
    TaprootMusig2,
    MerkleTxid,
    XAddress,
    SighashLotus,
    Sighash,
    RegtestLotusd,
}

impl Schema {
    pub fn name(self) -> &'static str {
        match self {
            Schema::Schnorr => "schnorr.json",
            Schema::Musig2 => "musig2_lotus.json",
            Schema::TaprootMusig2 => "taproot_musig2_lotus.json",
            Schema::MerkleTxid => "merkle_txid.json",
            Schema::XAddress => "xaddress.json",
            Schema::SighashLotus => "sighash_lotus.json",
            Schema::Sighash => "sighash.json",
            Schema::RegtestLotusd => "regtest_lotusd.json",
        }
    }

    const ALL: [Schema; 8] = [
        Schema::Schnorr,
        Schema::Musig2,
        Schema::TaprootMusig2,
        Schema::MerkleTxid,
        Schema::XAddress,
        Schema::SighashLotus,
        Schema::Sighash,
        Schema::RegtestLotusd,
    ];

    /// Generated files carry their schema in `file`; the lotusd arrays are known by file name.
    pub fn detect(path: &Path, json: &Value) -> Option<Schema> {
        if let Some(tag) = json.get("file").and_then(Value::as_str) {
            return Schema::ALL.into_iter().find(|s| s.name() == tag);
        }
        if json.is_array() {
            let file_name = path.file_name()?.to_str()?;
            return [Schema::SighashLotus, Schema::Sighash]
                .into_iter()
                .find(|s| s.name() == file_name);
        }
        None
    }
}

/// Checks every case of one file.
pub fn check_file(path: &Path) -> Result<(Schema, FileReport), VectorError> {
    let text = std::fs::read_to_string(path).map_err(|source| VectorError::Read {
        path: path.to_owned(),
        source,
    })?;
    let json: Value = serde_json::from_str(&text).map_err(|source| VectorError::Json {
        path: path.to_owned(),
        source,
    })?;
    let schema = Schema::detect(path, &json).ok_or_else(|| VectorError::Unrecognised {
        path: path.to_owned(),
    })?;
    let malformed = |reason: String| VectorError::Malformed {
        path: path.to_owned(),
        schema: schema.name(),
        reason,
    };
    let report = match schema {
        Schema::Schnorr => schnorr::check(&json),
        Schema::Musig2 => musig2::check(&json, false),
        Schema::TaprootMusig2 => musig2::check(&json, true),
        Schema::MerkleTxid => merkle_txid::check(&json),
        Schema::XAddress => xaddress::check(&json),
        Schema::SighashLotus => sighash_lotus::check(&json),
        Schema::Sighash => sighash::check(&json),
        Schema::RegtestLotusd => regtest::check(&json),
    }
    .map_err(malformed)?;
    Ok((schema, report))
}

/// Expands folders (their `*.json` files, sorted) and keeps files as given.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, VectorError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| VectorError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|ext| ext == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}
