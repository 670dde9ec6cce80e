//! Small JSON accessors shared by the schema modules. Every accessor names the field it wanted,
//! so a malformed case reports something a person can act on.

use serde_json::Value;

pub fn cases(json: &Value) -> Result<&Vec<Value>, String> {
    json.get("cases")
        .and_then(Value::as_array)
        .ok_or_else(|| "missing `cases` array".to_string())
}

/// The rows of a verbatim lotusd array file (an array of arrays), with their indices.
pub fn array_rows(json: &Value) -> Result<Vec<(usize, &Vec<Value>)>, String> {
    let rows = json
        .as_array()
        .ok_or_else(|| "top level is not an array".to_string())?;
    rows.iter()
        .enumerate()
        .map(|(index, row)| {
            row.as_array()
                .map(|r| (index, r))
                .ok_or_else(|| format!("row {index} is not an array"))
        })
        .collect()
}

pub fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, String> {
    v.get(name).ok_or_else(|| format!("missing field `{name}`"))
}

pub fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    field(v, name)?
        .as_str()
        .ok_or_else(|| format!("field `{name}` is not a string"))
}

pub fn bool_field(v: &Value, name: &str) -> Result<bool, String> {
    field(v, name)?
        .as_bool()
        .ok_or_else(|| format!("field `{name}` is not a boolean"))
}

pub fn u64_field(v: &Value, name: &str) -> Result<u64, String> {
    field(v, name)?
        .as_u64()
        .ok_or_else(|| format!("field `{name}` is not an unsigned integer"))
}

pub fn i64_field(v: &Value, name: &str) -> Result<i64, String> {
    field(v, name)?
        .as_i64()
        .ok_or_else(|| format!("field `{name}` is not an integer"))
}

pub fn hex_field(v: &Value, name: &str) -> Result<Vec<u8>, String> {
    let s = str_field(v, name)?;
    hex::decode(s).map_err(|e| format!("field `{name}` is not hex: {e}"))
}

pub fn hex_array<const N: usize>(v: &Value, name: &str) -> Result<[u8; N], String> {
    let bytes = hex_field(v, name)?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("field `{name}` has {} bytes, expected {N}", b.len()))
}

/// A case id from the first of the given fields that is a string, for failure lines.
pub fn case_id(v: &Value, index: usize, fields: &[&str]) -> String {
    fields
        .iter()
        .find_map(|f| v.get(*f).and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| format!("case #{index}"))
}

/// Compares a computed value with the expected one, naming the field on mismatch.
pub fn expect_eq<T: PartialEq + std::fmt::Debug>(
    what: &str,
    got: T,
    want: T,
) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, expected {want:?}"))
    }
}

pub fn expect_hex(what: &str, got: &[u8], want_hex: &str) -> Result<(), String> {
    let got = hex::encode(got);
    if got == want_hex {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, expected {want_hex}"))
    }
}
