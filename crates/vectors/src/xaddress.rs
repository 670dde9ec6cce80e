//! xaddress.json: lotusd `XAddress::Decode` results (including which checksum matched), the
//! decoded fields, re-encoding, and `XAddress::Parse` on each network.

use lotus::address::{
    AddressType, ChecksumKind, Network, XAddress, XAddressContent, XAddressError,
};
use lotus::script::Script;
use serde_json::Value;

use crate::util::{bool_field, case_id, cases, expect_eq, str_field, u64_field};
use crate::FileReport;

pub fn check(json: &Value) -> Result<FileReport, String> {
    let mut report = FileReport::default();
    for (index, case) in cases(json)?.iter().enumerate() {
        report.record(&case_id(case, index, &["address"]), check_case(case));
    }
    Ok(report)
}

/// lotusd's `DecodeError` name for a decode failure.
fn decode_result_name(e: &XAddressError) -> &'static str {
    match e {
        XAddressError::NoNetworkPosition => "NO_NETWORK_POSITION",
        XAddressError::Base58DecodeFailed => "BASE58_DECODE_FAILED",
        XAddressError::UndersizedPayload => "UNDERSIZED_PAYLOAD",
        XAddressError::IntegrityCheckFailed => "INTEGRITY_CHECK_FAILED",
        // XAddressContent::decode returns only the four above.
        _ => "NOT_A_DECODE_ERROR",
    }
}

/// The vector file's classification of a payload.
fn payload_kind(kind: AddressType, payload: &[u8]) -> &'static str {
    match kind {
        AddressType::ScriptPubKey => {
            let script = Script::from(payload.to_vec());
            if script.as_p2pkh().is_some() {
                "p2pkh"
            } else if script.as_p2sh().is_some() {
                "p2sh"
            } else {
                "other"
            }
        }
        AddressType::Taproot if payload.len() == 33 => "taproot_commitment",
        AddressType::Taproot => "invalid_length",
        AddressType::Unknown(_) => "unknown",
    }
}

fn check_case(case: &Value) -> Result<(), String> {
    let address = str_field(case, "address")?;
    let valid = bool_field(case, "valid")?;
    let want_result = str_field(case, "decode_result")?;

    let (content, checksum) = match XAddressContent::decode(address) {
        Err(e) => {
            expect_eq("decode_result", decode_result_name(&e), want_result)?;
            return expect_eq("valid", false, valid);
        }
        Ok(decoded) => decoded,
    };
    expect_eq("decode_result", "DECODE_OK", want_result)?;
    expect_eq("valid", true, valid)?;

    expect_eq("token", content.token.as_str(), str_field(case, "token")?)?;
    let network_char = str_field(case, "network_char")?;
    expect_eq(
        "network_char",
        content.network_char.to_string().as_str(),
        network_char,
    )?;
    match Network::from_char(content.network_char) {
        Some(network) => expect_eq("network", network.name(), str_field(case, "network")?)?,
        // lotusd decodes any network character; the file's label for one that names no
        // network is not specified, but it must not name one.
        None => {
            let label = case.get("network").and_then(serde_json::Value::as_str);
            if let Some(name) = label.filter(|l| l.parse::<Network>().is_ok()) {
                return Err(format!(
                    "network: character {:?} names no network, file says {name}",
                    content.network_char
                ));
            }
        }
    }
    expect_eq(
        "type",
        u64::from(content.kind.to_byte()),
        u64_field(case, "type")?,
    )?;
    expect_eq(
        "payload",
        hex::encode(&content.payload).as_str(),
        str_field(case, "payload")?,
    )?;
    expect_eq(
        "payload_kind",
        payload_kind(content.kind, &content.payload),
        str_field(case, "payload_kind")?,
    )?;
    let checksum_name = match checksum {
        ChecksumKind::Current => "current",
        ChecksumKind::Legacy => "legacy",
    };
    expect_eq("checksum", checksum_name, str_field(case, "checksum")?)?;
    expect_eq(
        "reencoded",
        content.encode().as_str(),
        str_field(case, "reencoded")?,
    )?;

    for network in Network::ALL {
        let name = format!("parse_ok_{}", network.name());
        let ok = XAddress::parse(address, network).is_ok();
        expect_eq(&name, ok, bool_field(case, &name)?)?;
    }
    Ok(())
}
