//! lotusd's `ParseScript` text notation (src/core_read.cpp), used by sighash_lotus.json for the
//! spent outputs: decimal numbers are pushed as script numbers, `0x..` is raw bytes inserted
//! as-is, `'..'` is a data push, and opcode names are accepted with or without `OP_`.

/// Opcode names and values (Bitcoin ABC's table; 0x62 is Lotus's OP_SCRIPTTYPE).
const OPCODES: &[(&str, u8)] = &[
    ("PUSHDATA1", 0x4c),
    ("PUSHDATA2", 0x4d),
    ("PUSHDATA4", 0x4e),
    ("1NEGATE", 0x4f),
    ("RESERVED", 0x50),
    ("NOP", 0x61),
    ("SCRIPTTYPE", 0x62),
    ("IF", 0x63),
    ("NOTIF", 0x64),
    ("VERIF", 0x65),
    ("VERNOTIF", 0x66),
    ("ELSE", 0x67),
    ("ENDIF", 0x68),
    ("VERIFY", 0x69),
    ("RETURN", 0x6a),
    ("TOALTSTACK", 0x6b),
    ("FROMALTSTACK", 0x6c),
    ("2DROP", 0x6d),
    ("2DUP", 0x6e),
    ("3DUP", 0x6f),
    ("2OVER", 0x70),
    ("2ROT", 0x71),
    ("2SWAP", 0x72),
    ("IFDUP", 0x73),
    ("DEPTH", 0x74),
    ("DROP", 0x75),
    ("DUP", 0x76),
    ("NIP", 0x77),
    ("OVER", 0x78),
    ("PICK", 0x79),
    ("ROLL", 0x7a),
    ("ROT", 0x7b),
    ("SWAP", 0x7c),
    ("TUCK", 0x7d),
    ("CAT", 0x7e),
    ("SPLIT", 0x7f),
    ("NUM2BIN", 0x80),
    ("BIN2NUM", 0x81),
    ("SIZE", 0x82),
    ("INVERT", 0x83),
    ("AND", 0x84),
    ("OR", 0x85),
    ("XOR", 0x86),
    ("EQUAL", 0x87),
    ("EQUALVERIFY", 0x88),
    ("RESERVED1", 0x89),
    ("RESERVED2", 0x8a),
    ("1ADD", 0x8b),
    ("1SUB", 0x8c),
    ("2MUL", 0x8d),
    ("2DIV", 0x8e),
    ("NEGATE", 0x8f),
    ("ABS", 0x90),
    ("NOT", 0x91),
    ("0NOTEQUAL", 0x92),
    ("ADD", 0x93),
    ("SUB", 0x94),
    ("MUL", 0x95),
    ("DIV", 0x96),
    ("MOD", 0x97),
    ("LSHIFT", 0x98),
    ("RSHIFT", 0x99),
    ("BOOLAND", 0x9a),
    ("BOOLOR", 0x9b),
    ("NUMEQUAL", 0x9c),
    ("NUMEQUALVERIFY", 0x9d),
    ("NUMNOTEQUAL", 0x9e),
    ("LESSTHAN", 0x9f),
    ("GREATERTHAN", 0xa0),
    ("LESSTHANOREQUAL", 0xa1),
    ("GREATERTHANOREQUAL", 0xa2),
    ("MIN", 0xa3),
    ("MAX", 0xa4),
    ("WITHIN", 0xa5),
    ("RIPEMD160", 0xa6),
    ("SHA1", 0xa7),
    ("SHA256", 0xa8),
    ("HASH160", 0xa9),
    ("HASH256", 0xaa),
    ("CODESEPARATOR", 0xab),
    ("CHECKSIG", 0xac),
    ("CHECKSIGVERIFY", 0xad),
    ("CHECKMULTISIG", 0xae),
    ("CHECKMULTISIGVERIFY", 0xaf),
    ("NOP1", 0xb0),
    ("CHECKLOCKTIMEVERIFY", 0xb1),
    ("NOP2", 0xb1),
    ("CHECKSEQUENCEVERIFY", 0xb2),
    ("NOP3", 0xb2),
    ("NOP4", 0xb3),
    ("NOP5", 0xb4),
    ("NOP6", 0xb5),
    ("NOP7", 0xb6),
    ("NOP8", 0xb7),
    ("NOP9", 0xb8),
    ("NOP10", 0xb9),
    ("CHECKDATASIG", 0xba),
    ("CHECKDATASIGVERIFY", 0xbb),
    ("REVERSEBYTES", 0xbc),
];

fn opcode(word: &str) -> Option<u8> {
    let name = word.strip_prefix("OP_").unwrap_or(word);
    match name {
        "0" | "FALSE" => return Some(0x00),
        "TRUE" => return Some(0x51),
        _ => {}
    }
    if let Some(n) = name.parse::<u8>().ok().filter(|n| (1..=16).contains(n)) {
        if word.starts_with("OP_") {
            return Some(0x50 + n);
        }
    }
    OPCODES.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

/// `CScriptNum::serialize`: minimal little-endian sign-magnitude.
fn script_num(n: i64) -> Vec<u8> {
    if n == 0 {
        return Vec::new();
    }
    let negative = n < 0;
    let mut abs = n.unsigned_abs();
    let mut out = Vec::new();
    while abs > 0 {
        out.push((abs & 0xff) as u8);
        abs >>= 8;
    }
    // A top byte with the sign bit set needs an extra byte to carry the sign.
    if out.last().is_some_and(|b| b & 0x80 != 0) {
        out.push(if negative { 0x80 } else { 0 });
    } else if negative {
        if let Some(last) = out.last_mut() {
            *last |= 0x80;
        }
    }
    out
}

/// `CScript << std::vector<uint8_t>`: length-based push opcode, no OP_N shortcut.
fn push_vector(out: &mut Vec<u8>, data: &[u8]) {
    let len = data.len();
    if len < 0x4c {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x4c, len as u8]);
    } else if len <= 0xffff {
        out.push(0x4d);
        out.extend_from_slice(&(len as u16).to_le_bytes());
    } else {
        out.push(0x4e);
        out.extend_from_slice(&(len as u32).to_le_bytes());
    }
    out.extend_from_slice(data);
}

/// Parses lotusd script notation into bytes.
pub fn parse_script(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for word in text.split([' ', '\t', '\n']).filter(|w| !w.is_empty()) {
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if digits(word) || word.strip_prefix('-').is_some_and(digits) {
            let n: i64 = word
                .parse()
                .map_err(|e| format!("number {word:?} in script: {e}"))?;
            // `CScript::push_int64`.
            match n {
                0 => out.push(0x00),
                -1 => out.push(0x4f),
                1..=16 => out.push(0x50 + n as u8),
                _ => push_vector(&mut out, &script_num(n)),
            }
        } else if let Some(raw) = word.strip_prefix("0x").filter(|h| !h.is_empty()) {
            out.extend(hex::decode(raw).map_err(|e| format!("raw bytes {word:?}: {e}"))?);
        } else if word.len() >= 2 && word.starts_with('\'') && word.ends_with('\'') {
            push_vector(&mut out, &word.as_bytes()[1..word.len() - 1]);
        } else if let Some(op) = opcode(word) {
            out.push(op);
        } else {
            return Err(format!("script parse error at {word:?}"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notation_examples() {
        assert_eq!(parse_script("3").unwrap(), vec![0x53]);
        assert_eq!(
            hex::encode(
                parse_script("OP_DUP OP_HASH160 0x14 0x2222222222222222222222222222222222222222 OP_EQUALVERIFY OP_CHECKSIG")
                    .unwrap()
            ),
            "76a914222222222222222222222222222222222222222288ac"
        );
        assert_eq!(
            parse_script("0 -1 17 -17 128 'ab' DUP").unwrap(),
            vec![0x00, 0x4f, 0x01, 0x11, 0x01, 0x91, 0x02, 0x80, 0x00, 0x02, b'a', b'b', 0x76]
        );
        assert!(parse_script("OP_BOGUS").is_err());
        assert!(parse_script("0xzz").is_err());
    }
}
