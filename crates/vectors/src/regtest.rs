//! regtest_lotusd.json: complete signed transactions judged by a real lotusd. A case passes when
//! our txid equals the node's and our verdict agrees with it: accepted ⇔ every input verifies.

use lotus::script::Script;
use lotus::sighash::SighashCache;
use lotus::spend::verify_input_cached;
use lotus::tx::{Transaction, TxOut};
use serde_json::Value;

use crate::util::{bool_field, case_id, cases, expect_eq, field, hex_field, i64_field, str_field};
use crate::FileReport;

pub fn check(json: &Value) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    for (index, case) in cases(json)?.iter().enumerate() {
        report.record(&case_id(case, index, &["name", "id"]), check_case(case));
    }
    Ok(report)
}

fn check_case(case: &Value) -> Result<(), String> {
    let raw = hex_field(case, "raw_tx")?;
    let tx = Transaction::decode(&raw).map_err(|e| format!("raw_tx does not decode: {e}"))?;
    expect_eq(
        "txid",
        tx.txid().to_display_hex().as_str(),
        str_field(case, "txid")?,
    )?;

    let spent_outputs = field(case, "spent_outputs")?
        .as_array()
        .ok_or("spent_outputs is not an array")?
        .iter()
        .map(|o| {
            let script = hex::decode(str_field(o, "script")?)
                .map_err(|e| format!("spent output script: {e}"))?;
            Ok(TxOut::new(i64_field(o, "value")?, Script::from(script)))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let cache = SighashCache::with_spent_outputs(&tx, &spent_outputs)
        .map_err(|e| format!("spent outputs: {e}"))?;
    let failures: Vec<String> = (0..tx.inputs.len())
        .filter_map(|i| {
            verify_input_cached(&cache, i)
                .err()
                .map(|e| format!("input {i}: {e}"))
        })
        .collect();

    let accepted = bool_field(case, "node_accepted")?;
    match (accepted, failures.is_empty()) {
        (true, true) | (false, false) => Ok(()),
        (true, false) => Err(format!("node accepted, we reject: {}", failures.join("; "))),
        (false, true) => Err("node refused, but every input verifies here".into()),
    }
}
