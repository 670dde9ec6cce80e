//! Spending the two output types the wallet holds: building their scriptSigs and checking a
//! signed input the way lotusd does.
//!
//! - P2PKH: scriptSig `<sig64 || hashtype> <pubkey>`. FORKID (0x4x) signs the BIP143 digest
//!   with the spent amount; LOTUS (0x6x) signs the SIGHASH_LOTUS digest with execution data
//!   (spend type 2, no code separator, executed script hash = SHA256d(scriptPubKey)).
//! - Taproot key path: scriptSig `<sig64 || hashtype>`, hash type LOTUS only, spend type 0,
//!   verified against the commitment C in the scriptPubKey.
//!
//! This is not a script interpreter: any other output type, ECDSA signatures and Taproot
//! script-path spends are reported as unsupported rather than judged.

use secp256k1::PublicKey;

use crate::hash::hash160;
use crate::schnorr::{self, Signature};
use crate::script::Script;
use crate::sighash::{Algorithm, ExecutionData, SigHashType, SighashCache, SighashError};
use crate::tx::{Transaction, TxOut};

/// Why an input does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Sighash(#[from] SighashError),
    #[error("scriptSig is not a sequence of minimal pushes")]
    ScriptSigNotPushOnly,
    #[error("scriptSig leaves {got} stack items, expected {expected}")]
    StackSize { expected: usize, got: usize },
    #[error(
        "signature is {0} bytes; only a 64-byte Schnorr signature plus hash type is supported"
    )]
    SignatureEncoding(usize),
    #[error("hash type {0:#04x} is undefined")]
    UndefinedHashType(u8),
    #[error("hash type {0:#04x} uses neither FORKID nor LOTUS")]
    MustUseForkId(u8),
    #[error("Taproot key-path signatures must use SIGHASH_LOTUS (hash type {0:#04x})")]
    TaprootRequiresLotus(u8),
    #[error("public key is neither a 33-byte compressed nor a 65-byte uncompressed point")]
    PubKeyEncoding,
    #[error("public key does not hash to the P2PKH key hash")]
    PubKeyHashMismatch,
    #[error("Taproot commitment is not a valid point")]
    InvalidCommitment,
    #[error("Taproot script-path spends are not supported")]
    TaprootScriptPath,
    #[error("spent output is neither P2PKH nor Taproot")]
    UnsupportedScript,
    #[error("signature does not verify")]
    BadSignature,
}

/// A failing input of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("input {index}: {error}")]
pub struct TxVerifyError {
    pub index: usize,
    pub error: InputError,
}

/// `<sig64 || hashtype> <compressed pubkey>`.
pub fn p2pkh_script_sig(
    signature: &Signature,
    hash_type: SigHashType,
    pubkey: &PublicKey,
) -> Script {
    Script::new()
        .push_slice(&signature_with_hash_type(signature, hash_type))
        .push_slice(&pubkey.serialize())
}

/// `<sig64 || hashtype>`.
pub fn taproot_key_path_script_sig(signature: &Signature, hash_type: SigHashType) -> Script {
    Script::new().push_slice(&signature_with_hash_type(signature, hash_type))
}

fn signature_with_hash_type(signature: &Signature, hash_type: SigHashType) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(&signature.to_bytes());
    out[64] = hash_type.byte();
    out
}

/// Verifies input `input_index` of `tx`; `spent_outputs[i]` is the output input `i` spends
/// (all of them are needed: SIGHASH_LOTUS commits to every one).
pub fn verify_input(
    tx: &Transaction,
    input_index: usize,
    spent_outputs: &[TxOut],
) -> Result<(), InputError> {
    let cache = SighashCache::with_spent_outputs(tx, spent_outputs)?;
    verify_input_cached(&cache, input_index)
}

/// Verifies every input, sharing one [`SighashCache`]; reports the first failure.
pub fn verify_transaction(tx: &Transaction, spent_outputs: &[TxOut]) -> Result<(), TxVerifyError> {
    let cache = SighashCache::with_spent_outputs(tx, spent_outputs).map_err(|e| TxVerifyError {
        index: 0,
        error: e.into(),
    })?;
    (0..tx.inputs.len()).try_for_each(|index| {
        verify_input_cached(&cache, index).map_err(|error| TxVerifyError { index, error })
    })
}

/// [`verify_input`] with a cache built by [`SighashCache::with_spent_outputs`].
pub fn verify_input_cached(cache: &SighashCache<'_>, input_index: usize) -> Result<(), InputError> {
    let tx = cache.transaction();
    let spent_outputs = cache
        .spent_outputs()
        .ok_or(InputError::Sighash(SighashError::SpentOutputsMissing))?;
    let (input, spent) = tx
        .inputs
        .get(input_index)
        .zip(spent_outputs.get(input_index))
        .ok_or(SighashError::InputIndexOutOfRange {
            index: input_index,
            inputs: tx.inputs.len(),
        })?;
    // lotusd requires push-only scriptSigs with minimal pushes for every input.
    let stack = input
        .script_sig
        .push_only_stack()
        .ok_or(InputError::ScriptSigNotPushOnly)?;
    let script_pubkey = &spent.script_pubkey;

    if let Some(key_hash) = script_pubkey.as_p2pkh() {
        let [sig, pubkey] = two_items(stack)?;
        let (signature, hash_type) = split_signature(&sig)?;
        let pubkey = parse_pubkey(&pubkey)?;
        if hash160(&pubkey.1) != key_hash {
            return Err(InputError::PubKeyHashMismatch);
        }
        let digest = match hash_type.algorithm() {
            Algorithm::ForkId => {
                cache.bip143(input_index, script_pubkey, spent.value, hash_type)?
            }
            Algorithm::Lotus => {
                let exec = ExecutionData::for_script(script_pubkey);
                cache.lotus(input_index, hash_type, Some(&exec))?
            }
            Algorithm::Legacy | Algorithm::Reserved => {
                return Err(InputError::MustUseForkId(hash_type.byte()))
            }
        };
        return check(&signature, &digest, &pubkey.0);
    }

    if let Some(taproot) = script_pubkey.as_taproot() {
        let sig = match <[Vec<u8>; 1]>::try_from(stack) {
            Ok([sig]) => sig,
            Err(stack) if stack.len() >= 2 => return Err(InputError::TaprootScriptPath),
            Err(stack) => {
                return Err(InputError::StackSize {
                    expected: 1,
                    got: stack.len(),
                })
            }
        };
        let (signature, hash_type) = split_signature(&sig)?;
        if hash_type.algorithm() != Algorithm::Lotus {
            return Err(InputError::TaprootRequiresLotus(hash_type.byte()));
        }
        let commitment = taproot
            .commitment_key()
            .map_err(|_| InputError::InvalidCommitment)?;
        let digest = cache.lotus(input_index, hash_type, None)?;
        return check(&signature, &digest, &commitment);
    }

    Err(InputError::UnsupportedScript)
}

fn two_items(stack: Vec<Vec<u8>>) -> Result<[Vec<u8>; 2], InputError> {
    <[Vec<u8>; 2]>::try_from(stack).map_err(|stack| InputError::StackSize {
        expected: 2,
        got: stack.len(),
    })
}

/// 64-byte Schnorr signature + one hash-type byte, with lotusd's hash-type encoding rules
/// (defined base type, unused bits clear, not the reserved algorithm).
fn split_signature(sig: &[u8]) -> Result<(Signature, SigHashType), InputError> {
    let (sig64, hash_type) = match sig {
        [body @ .., ht] if body.len() == 64 => (body, SigHashType::from_byte(*ht)),
        _ => return Err(InputError::SignatureEncoding(sig.len())),
    };
    if !hash_type.is_defined() {
        return Err(InputError::UndefinedHashType(hash_type.byte()));
    }
    let mut bytes = [0u8; 64];
    bytes.copy_from_slice(sig64);
    Ok((Signature::from_bytes(bytes), hash_type))
}

/// lotusd STRICTENC: 33-byte 02/03 or 65-byte 04 (hybrid 06/07 rejected). Returns the point and
/// the bytes as pushed (P2PKH hashes those, not a re-encoding).
fn parse_pubkey(bytes: &[u8]) -> Result<(PublicKey, Vec<u8>), InputError> {
    let well_formed = matches!(
        (bytes.len(), bytes.first()),
        (33, Some(2 | 3)) | (65, Some(4))
    );
    if !well_formed {
        return Err(InputError::PubKeyEncoding);
    }
    let key = PublicKey::from_slice(bytes).map_err(|_| InputError::PubKeyEncoding)?;
    Ok((key, bytes.to_vec()))
}

fn check(signature: &Signature, digest: &[u8; 32], key: &PublicKey) -> Result<(), InputError> {
    if schnorr::verify(signature, digest, key) {
        Ok(())
    } else {
        Err(InputError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::PrivateKey;
    use crate::tx::{OutPoint, TxId, TxIn};

    fn key(byte: u8) -> PrivateKey {
        PrivateKey::from_slice(&[byte; 32]).unwrap()
    }

    /// A 2-input transaction spending a P2PKH and a Taproot output, both signed by the test.
    fn signed_pair(p2pkh_type: SigHashType) -> (Transaction, Vec<TxOut>) {
        let k1 = key(1);
        let k2 = key(2);
        let spent = vec![
            TxOut::new(5_000, Script::p2pkh_for_key(&k1.public_key())),
            TxOut::new(7_000, Script::taproot_key_path(&k2.public_key(), None)),
        ];
        let input = |vout| TxIn {
            prev_out: OutPoint::new(TxId([9; 32]), vout),
            script_sig: Script::new(),
            sequence: TxIn::SEQUENCE_FINAL,
        };
        let mut tx = Transaction {
            version: 2,
            inputs: vec![input(0), input(1)],
            outputs: vec![TxOut::new(11_000, Script::p2pkh(&[3; 20]))],
            lock_time: 0,
        };
        let (d0, d1) = {
            let cache = SighashCache::with_spent_outputs(&tx, &spent).unwrap();
            let d0 = match p2pkh_type.algorithm() {
                Algorithm::Lotus => {
                    let exec = ExecutionData::for_script(&spent[0].script_pubkey);
                    cache.lotus(0, p2pkh_type, Some(&exec)).unwrap()
                }
                _ => cache
                    .bip143(0, &spent[0].script_pubkey, spent[0].value, p2pkh_type)
                    .unwrap(),
            };
            (d0, cache.lotus(1, SigHashType::ALL_LOTUS, None).unwrap())
        };
        tx.inputs[0].script_sig =
            p2pkh_script_sig(&schnorr::sign(&k1, &d0), p2pkh_type, &k1.public_key());
        tx.inputs[1].script_sig =
            taproot_key_path_script_sig(&schnorr::sign(&k2, &d1), SigHashType::ALL_LOTUS);
        (tx, spent)
    }

    #[test]
    fn signed_inputs_verify_and_scriptsigs_do_not_change_the_txid() {
        for t in [0x41, 0xc3, 0x61, 0xe2] {
            let (tx, spent) = signed_pair(SigHashType::from_u32(t));
            assert_eq!(verify_transaction(&tx, &spent), Ok(()), "hash type {t:#x}");
            let mut unsigned = tx.clone();
            unsigned
                .inputs
                .iter_mut()
                .for_each(|i| i.script_sig = Script::new());
            assert_eq!(unsigned.txid(), tx.txid());
        }
    }

    #[test]
    fn wrong_amount_or_key_fails() {
        let (tx, mut spent) = signed_pair(SigHashType::ALL_FORKID);
        spent[0].value += 1;
        assert_eq!(verify_input(&tx, 0, &spent), Err(InputError::BadSignature));
        // The Taproot input commits to every spent amount too.
        assert_eq!(verify_input(&tx, 1, &spent), Err(InputError::BadSignature));
        let (tx, mut spent) = signed_pair(SigHashType::ALL_FORKID);
        spent[1].script_pubkey = Script::taproot_key_path(&key(3).public_key(), None);
        assert_eq!(verify_input(&tx, 1, &spent), Err(InputError::BadSignature));
    }

    #[test]
    fn encoding_errors() {
        let (tx, spent) = signed_pair(SigHashType::ALL_FORKID);
        let with_sig = |input: usize, script: Script| {
            let mut t = tx.clone();
            t.inputs[input].script_sig = script;
            verify_input(&t, input, &spent)
        };
        let stack = tx.inputs[0].script_sig.push_only_stack().unwrap();
        let (sig, pk) = (stack[0].clone(), stack[1].clone());
        let mut retyped = sig.clone();
        retyped[64] = 0x01;
        assert_eq!(
            with_sig(0, Script::new().push_slice(&retyped).push_slice(&pk)),
            Err(InputError::MustUseForkId(0x01))
        );
        retyped[64] = 0x45;
        assert_eq!(
            with_sig(0, Script::new().push_slice(&retyped).push_slice(&pk)),
            Err(InputError::UndefinedHashType(0x45))
        );
        assert_eq!(
            with_sig(0, Script::new().push_slice(&sig[..64]).push_slice(&pk)),
            Err(InputError::SignatureEncoding(64))
        );
        assert_eq!(
            with_sig(0, Script::new().push_slice(&sig)),
            Err(InputError::StackSize {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(
            with_sig(
                0,
                Script::new()
                    .push_slice(&sig)
                    .push_slice(&key(5).public_key().serialize())
            ),
            Err(InputError::PubKeyHashMismatch)
        );
        let mut hybrid = key(1).public_key().serialize_uncompressed();
        hybrid[0] = 6;
        assert_eq!(
            with_sig(0, Script::new().push_slice(&sig).push_slice(&hybrid)),
            Err(InputError::PubKeyEncoding)
        );
        assert_eq!(
            with_sig(0, Script::from(vec![0x76])),
            Err(InputError::ScriptSigNotPushOnly)
        );
        // Taproot: FORKID refused, two items is the (unsupported) script path.
        let tsig = tx.inputs[1].script_sig.push_only_stack().unwrap().remove(0);
        let mut forkid = tsig.clone();
        forkid[64] = 0x41;
        assert_eq!(
            with_sig(1, Script::new().push_slice(&forkid)),
            Err(InputError::TaprootRequiresLotus(0x41))
        );
        assert_eq!(
            with_sig(1, Script::new().push_slice(&tsig).push_slice(&[1])),
            Err(InputError::TaprootScriptPath)
        );
        assert_eq!(
            verify_input(&tx, 2, &spent),
            Err(InputError::Sighash(SighashError::InputIndexOutOfRange {
                index: 2,
                inputs: 2
            }))
        );
        assert_eq!(
            verify_input(&tx, 0, &spent[..1]),
            Err(InputError::Sighash(
                SighashError::SpentOutputsCountMismatch {
                    expected: 2,
                    got: 1
                }
            ))
        );
        let mut other = spent.clone();
        other[0].script_pubkey = Script::p2sh(&[0; 20]);
        assert_eq!(
            verify_input(&tx, 0, &other),
            Err(InputError::UnsupportedScript)
        );
    }
}
