//! Scripts as bytes: the output templates the wallet pays to and spends from, their
//! recognisers, and minimal pushes for building scriptSigs.
//!
//! There is no interpreter here. Lotus consensus enforces minimal pushes (`fRequireMinimal` is
//! always on in lotusd's `EvalScript`), so every push this module writes is the minimal one.

use std::fmt;

use secp256k1::PublicKey;

use crate::hash::hash160;

/// The opcodes this crate names. Values are Bitcoin's; `OP_SCRIPTTYPE` is Lotus's reuse of 0x62.
pub mod opcodes {
    pub const OP_0: u8 = 0x00;
    pub const OP_PUSHDATA1: u8 = 0x4c;
    pub const OP_PUSHDATA2: u8 = 0x4d;
    pub const OP_PUSHDATA4: u8 = 0x4e;
    pub const OP_1NEGATE: u8 = 0x4f;
    pub const OP_RESERVED: u8 = 0x50;
    pub const OP_1: u8 = 0x51;
    pub const OP_16: u8 = 0x60;
    /// Lotus: first byte of a "script type" output (Taproot is script type OP_1).
    pub const OP_SCRIPTTYPE: u8 = 0x62;
    pub const OP_RETURN: u8 = 0x6a;
    pub const OP_DUP: u8 = 0x76;
    pub const OP_EQUAL: u8 = 0x87;
    pub const OP_EQUALVERIFY: u8 = 0x88;
    pub const OP_HASH160: u8 = 0xa9;
    pub const OP_CODESEPARATOR: u8 = 0xab;
    pub const OP_CHECKSIG: u8 = 0xac;
}

use opcodes::*;

/// Size of a Taproot scriptPubKey without state: `62 51 21 <33>`.
pub const TAPROOT_SIZE_WITHOUT_STATE: usize = 3 + 33;
/// Size of a Taproot scriptPubKey with state: `62 51 21 <33> 20 <32>`.
pub const TAPROOT_SIZE_WITH_STATE: usize = TAPROOT_SIZE_WITHOUT_STATE + 1 + 32;

/// A script as raw bytes. Any byte string is a `Script`; well-formedness is only checked when
/// a caller asks (`instructions`, recognisers).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Script(Vec<u8>);

/// The parts of a Lotus Taproot output. The commitment is returned as bytes because lotusd
/// recognises the template without checking that it is a curve point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TaprootOutput {
    pub commitment: [u8; 33],
    pub state: Option<[u8; 32]>,
}

impl TaprootOutput {
    /// The commitment as a point, if it is one.
    pub fn commitment_key(&self) -> Result<PublicKey, secp256k1::Error> {
        PublicKey::from_slice(&self.commitment)
    }
}

/// One decoded script element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction<'a> {
    /// A data push with the opcode that encoded it (0x00..=0x4e).
    Push { opcode: u8, data: &'a [u8] },
    /// Any other opcode.
    Op(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("push at byte {at} runs past the end of the script")]
    TruncatedPush { at: usize },
}

impl Script {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG`.
    pub fn p2pkh(pubkey_hash: &[u8; 20]) -> Self {
        let mut s = Vec::with_capacity(25);
        s.extend_from_slice(&[OP_DUP, OP_HASH160, 20]);
        s.extend_from_slice(pubkey_hash);
        s.extend_from_slice(&[OP_EQUALVERIFY, OP_CHECKSIG]);
        Self(s)
    }

    /// P2PKH of the key's 33-byte compressed encoding (what the wallet always uses).
    pub fn p2pkh_for_key(pubkey: &PublicKey) -> Self {
        Self::p2pkh(&hash160(&pubkey.serialize()))
    }

    /// `OP_HASH160 <20> OP_EQUAL`.
    pub fn p2sh(script_hash: &[u8; 20]) -> Self {
        let mut s = Vec::with_capacity(23);
        s.extend_from_slice(&[OP_HASH160, 20]);
        s.extend_from_slice(script_hash);
        s.push(OP_EQUAL);
        Self(s)
    }

    /// Lotus Taproot output `OP_SCRIPTTYPE OP_1 <33-byte commitment> [<32-byte state>]`.
    /// `commitment` is the already-tweaked key C.
    pub fn taproot_key_path(commitment: &PublicKey, state: Option<&[u8; 32]>) -> Self {
        let mut s = Vec::with_capacity(TAPROOT_SIZE_WITH_STATE);
        s.extend_from_slice(&[OP_SCRIPTTYPE, OP_1, 33]);
        s.extend_from_slice(&commitment.serialize());
        if let Some(state) = state {
            s.push(32);
            s.extend_from_slice(state);
        }
        Self(s)
    }

    /// The key hash of a P2PKH script (lotusd `MatchPayToPubkeyHash`).
    pub fn as_p2pkh(&self) -> Option<[u8; 20]> {
        match self.0.as_slice() {
            [OP_DUP, OP_HASH160, 20, hash @ .., OP_EQUALVERIFY, OP_CHECKSIG]
                if hash.len() == 20 =>
            {
                hash.try_into().ok()
            }
            _ => None,
        }
    }

    /// The script hash of a P2SH script (lotusd `IsPayToScriptHash`).
    pub fn as_p2sh(&self) -> Option<[u8; 20]> {
        match self.0.as_slice() {
            [OP_HASH160, 20, hash @ .., OP_EQUAL] if hash.len() == 20 => hash.try_into().ok(),
            _ => None,
        }
    }

    /// Commitment and optional state of a Taproot output (lotusd `IsPayToTaproot`).
    pub fn as_taproot(&self) -> Option<TaprootOutput> {
        let s = self.0.as_slice();
        if s.len() < TAPROOT_SIZE_WITHOUT_STATE
            || s[0] != OP_SCRIPTTYPE
            || s[1] != OP_1
            || s[2] != 33
        {
            return None;
        }
        let commitment: [u8; 33] = s[3..TAPROOT_SIZE_WITHOUT_STATE].try_into().ok()?;
        let state = match s.len() {
            TAPROOT_SIZE_WITHOUT_STATE => None,
            TAPROOT_SIZE_WITH_STATE if s[TAPROOT_SIZE_WITHOUT_STATE] == 32 => {
                Some(s[TAPROOT_SIZE_WITHOUT_STATE + 1..].try_into().ok()?)
            }
            _ => return None,
        };
        Some(TaprootOutput { commitment, state })
    }

    /// The P2PK key bytes (33 or 65) if this is `<key> OP_CHECKSIG` with a key-sized push
    /// whose first byte matches its length (lotusd `MatchPayToPubkey` + `CPubKey::ValidSize`).
    pub fn as_p2pk(&self) -> Option<&[u8]> {
        let s = self.0.as_slice();
        let (&last, body) = s.split_last()?;
        let (&len, key) = body.split_first()?;
        if last != OP_CHECKSIG || key.len() != usize::from(len) {
            return None;
        }
        (pubkey_len_from_header(*key.first()?) == Some(key.len())).then_some(key)
    }

    /// Appends a minimal push of `data` (the encoding lotusd's `CheckMinimalPush` demands).
    pub fn push_slice(mut self, data: &[u8]) -> Self {
        write_push(&mut self.0, data);
        self
    }

    /// Appends one opcode byte.
    pub fn push_opcode(mut self, opcode: u8) -> Self {
        self.0.push(opcode);
        self
    }

    /// The elements of the script, stopping after the first malformed push.
    pub fn instructions(&self) -> Instructions<'_> {
        Instructions {
            script: &self.0,
            pos: 0,
            done: false,
        }
    }

    /// The data of a push-only script as the stack it leaves, requiring minimal pushes (as
    /// lotusd does for every scriptSig). `None` if any element is not a minimal push.
    pub fn push_only_stack(&self) -> Option<Vec<Vec<u8>>> {
        let mut stack = Vec::new();
        for ins in self.instructions() {
            match ins.ok()? {
                Instruction::Push { opcode, data } => {
                    if !is_minimal_push(opcode, data) {
                        return None;
                    }
                    stack.push(data.to_vec());
                }
                Instruction::Op(OP_1NEGATE) => stack.push(vec![0x81]),
                Instruction::Op(op @ OP_1..=OP_16) => stack.push(vec![op - OP_1 + 1]),
                Instruction::Op(_) => return None,
            }
        }
        Some(stack)
    }
}

impl fmt::Debug for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Script(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl From<Vec<u8>> for Script {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Script {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Serialized length of a public key given its first byte (lotusd `CPubKey::GetLen`).
pub(crate) fn pubkey_len_from_header(header: u8) -> Option<usize> {
    match header {
        2 | 3 => Some(33),
        4 | 6 | 7 => Some(65),
        _ => None,
    }
}

/// lotusd `CheckMinimalPush`.
pub fn is_minimal_push(opcode: u8, data: &[u8]) -> bool {
    match data.len() {
        0 => opcode == OP_0,
        1 if (1..=16).contains(&data[0]) || data[0] == 0x81 => false,
        n if n <= 75 => usize::from(opcode) == n,
        n if n <= 0xff => opcode == OP_PUSHDATA1,
        n if n <= 0xffff => opcode == OP_PUSHDATA2,
        _ => true,
    }
}

/// Writes the minimal push of `data` into `out`.
pub(crate) fn write_push(out: &mut Vec<u8>, data: &[u8]) {
    match data {
        [] => out.push(OP_0),
        [n @ 1..=16] => out.push(OP_1 + n - 1),
        [0x81] => out.push(OP_1NEGATE),
        _ => {
            let len = data.len();
            if len <= 75 {
                out.push(len as u8);
            } else if let Ok(l) = u8::try_from(len) {
                out.extend_from_slice(&[OP_PUSHDATA1, l]);
            } else if let Ok(l) = u16::try_from(len) {
                out.push(OP_PUSHDATA2);
                out.extend_from_slice(&l.to_le_bytes());
            } else {
                // Scripts are bounded far below 4 GiB by the transaction size limit; saturating
                // keeps this total instead of panicking on an absurd caller.
                let l = u32::try_from(len).unwrap_or(u32::MAX);
                out.push(OP_PUSHDATA4);
                out.extend_from_slice(&l.to_le_bytes());
            }
            out.extend_from_slice(data);
        }
    }
}

/// One step of lotusd `GetScriptOp` at `pc`. On a truncated push returns `Err(pc')` where `pc'`
/// is where lotusd's iterator is left (past the opcode and any length bytes it could read):
/// the legacy sighash serializer depends on that exact position.
pub(crate) fn read_op(script: &[u8], pc: usize) -> Result<(Instruction<'_>, usize), usize> {
    let Some(&opcode) = script.get(pc) else {
        return Err(pc);
    };
    let mut pos = pc + 1;
    if opcode > OP_PUSHDATA4 {
        return Ok((Instruction::Op(opcode), pos));
    }
    let len_bytes = match opcode {
        OP_PUSHDATA1 => 1,
        OP_PUSHDATA2 => 2,
        OP_PUSHDATA4 => 4,
        _ => 0,
    };
    let size = if len_bytes == 0 {
        usize::from(opcode)
    } else {
        let Some(raw) = script.get(pos..pos + len_bytes) else {
            return Err(pos);
        };
        pos += len_bytes;
        let mut le = [0u8; 4];
        le[..len_bytes].copy_from_slice(raw);
        // A u32 always fits usize on the 32/64-bit targets this crate builds for.
        usize::try_from(u32::from_le_bytes(le)).unwrap_or(usize::MAX)
    };
    match script.get(pos..).filter(|rest| rest.len() >= size) {
        Some(rest) => Ok((
            Instruction::Push {
                opcode,
                data: &rest[..size],
            },
            pos + size,
        )),
        None => Err(pos),
    }
}

/// Iterator over a script's elements; yields one `Err` on a malformed push and then stops.
pub struct Instructions<'a> {
    script: &'a [u8],
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Instructions<'a> {
    type Item = Result<Instruction<'a>, ScriptError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.script.len() {
            return None;
        }
        match read_op(self.script, self.pos) {
            Ok((ins, next)) => {
                self.pos = next;
                Some(Ok(ins))
            }
            Err(_) => {
                self.done = true;
                Some(Err(ScriptError::TruncatedPush { at: self.pos }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hex33: &str) -> PublicKey {
        PublicKey::from_slice(&hex::decode(hex33).unwrap()).unwrap()
    }

    const G: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn p2pkh_template_and_recogniser() {
        let h = [0x76; 20];
        let s = Script::p2pkh(&h);
        assert_eq!(s.len(), 25);
        assert_eq!(s.as_p2pkh(), Some(h));
        assert_eq!(s.as_p2sh(), None);
        assert_eq!(s.as_taproot(), None);
        let mut bad = s.clone().into_bytes();
        bad[24] = OP_EQUAL;
        assert_eq!(Script::from(bad).as_p2pkh(), None);
    }

    #[test]
    fn p2sh_recogniser() {
        let s = Script::p2sh(&[7; 20]);
        assert_eq!(
            hex::encode(s.as_bytes()),
            format!("a914{}87", "07".repeat(20))
        );
        assert_eq!(s.as_p2sh(), Some([7; 20]));
        assert_eq!(s.as_p2pkh(), None);
    }

    #[test]
    fn taproot_template_with_and_without_state() {
        let c = key(G);
        let s = Script::taproot_key_path(&c, None);
        assert_eq!(hex::encode(s.as_bytes()), format!("625121{G}"));
        let t = s.as_taproot().unwrap();
        assert_eq!(t.commitment, c.serialize());
        assert_eq!(t.state, None);
        assert_eq!(t.commitment_key().unwrap(), c);

        let state = [0xab; 32];
        let s = Script::taproot_key_path(&c, Some(&state));
        assert_eq!(s.len(), TAPROOT_SIZE_WITH_STATE);
        assert_eq!(s.as_taproot().unwrap().state, Some(state));

        // Wrong state push length, trailing byte, wrong script type: not Taproot.
        let mut b = s.clone().into_bytes();
        b[36] = 31;
        assert_eq!(Script::from(b).as_taproot(), None);
        let mut b = Script::taproot_key_path(&c, None).into_bytes();
        b.push(0);
        assert_eq!(Script::from(b).as_taproot(), None);
        let mut b = Script::taproot_key_path(&c, None).into_bytes();
        b[1] = 0x52;
        assert_eq!(Script::from(b).as_taproot(), None);
    }

    #[test]
    fn taproot_recogniser_does_not_require_a_point() {
        let mut b = vec![OP_SCRIPTTYPE, OP_1, 33, 2];
        b.extend_from_slice(&[0; 32]);
        let t = Script::from(b).as_taproot().unwrap();
        assert!(t.commitment_key().is_err());
    }

    #[test]
    fn minimal_pushes() {
        let s = |d: &[u8]| hex::encode(Script::new().push_slice(d).as_bytes());
        assert_eq!(s(&[]), "00");
        assert_eq!(s(&[5]), "55");
        assert_eq!(s(&[0x81]), "4f");
        assert_eq!(s(&[0]), "0100");
        assert_eq!(s(&[17]), "0111");
        assert_eq!(s(&[1; 75])[..2], *"4b");
        assert_eq!(s(&[1; 76])[..4], *"4c4c");
        assert_eq!(s(&[1; 256])[..6], *"4d0001");
        assert_eq!(s(&[1; 65536])[..10], *"4e00000100");
        for len in [0usize, 1, 2, 75, 76, 255, 256, 65535, 65536] {
            let data = vec![0x42; len];
            let script = Script::new().push_slice(&data);
            let ins: Vec<_> = script.instructions().collect();
            assert_eq!(ins.len(), 1);
            match ins[0].unwrap() {
                Instruction::Push { opcode, data: d } => {
                    assert!(is_minimal_push(opcode, d));
                    assert_eq!(d, &data[..]);
                }
                Instruction::Op(_) => panic!("expected a push"),
            }
        }
    }

    #[test]
    fn push_only_stack_requires_minimal_pushes() {
        let s = Script::new().push_slice(&[9; 65]).push_slice(&[2; 33]);
        assert_eq!(s.push_only_stack().unwrap(), vec![vec![9; 65], vec![2; 33]]);
        assert_eq!(
            Script::from(vec![0x51, 0x4f]).push_only_stack().unwrap(),
            vec![vec![1], vec![0x81]]
        );
        // Non-minimal: PUSHDATA1 for 3 bytes, direct push of 0x05.
        assert_eq!(Script::from(vec![0x4c, 3, 1, 2, 3]).push_only_stack(), None);
        assert_eq!(Script::from(vec![0x01, 0x05]).push_only_stack(), None);
        // Not push-only.
        assert_eq!(Script::from(vec![OP_DUP]).push_only_stack(), None);
        // Truncated.
        assert_eq!(Script::from(vec![0x05, 1]).push_only_stack(), None);
    }

    #[test]
    fn truncated_pushes_stop_where_lotusd_stops() {
        assert_eq!(read_op(&[0x05, 1, 2], 0), Err(1));
        assert_eq!(read_op(&[OP_PUSHDATA1], 0), Err(1));
        assert_eq!(read_op(&[OP_PUSHDATA1, 4, 1], 0), Err(2));
        assert_eq!(read_op(&[OP_PUSHDATA2, 4], 0), Err(1));
        assert_eq!(read_op(&[OP_PUSHDATA2, 4, 0, 1], 0), Err(3));
        assert_eq!(read_op(&[OP_PUSHDATA4, 0xff, 0xff, 0xff, 0xff], 0), Err(5));
        let script = Script::from(vec![OP_DUP, 0x05, 1]);
        let ins: Vec<_> = script.instructions().collect();
        assert_eq!(
            ins,
            vec![
                Ok(Instruction::Op(OP_DUP)),
                Err(ScriptError::TruncatedPush { at: 1 })
            ]
        );
    }

    #[test]
    fn p2pk_recogniser() {
        let mut b = vec![33];
        b.extend_from_slice(&key(G).serialize());
        b.push(OP_CHECKSIG);
        assert_eq!(Script::from(b.clone()).as_p2pk().map(<[u8]>::len), Some(33));
        b[1] = 4; // header says 65 bytes, push has 33
        assert_eq!(Script::from(b).as_p2pk(), None);
    }
}
