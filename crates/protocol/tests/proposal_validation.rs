//! Proposals: a valid Taproot and a valid P2PKH proposal review as expected; every validation
//! rule is exercised by a proposal that breaks exactly that rule; the encoding round-trips and
//! never panics on damaged or arbitrary bytes; and a proposal signed by a real MuSig2 group
//! finalizes into a transaction lotusd's rules accept.

use lotus::address::{Network, XAddress};
use lotus::hash::{sha256, tagged_hash};
use lotus::schnorr::{self, Signature};
use lotus::script::Script;
use lotus::sighash::SigHashType;
use lotus::spend;
use lotus::tx::{OutPoint, Transaction, TxId, TxIn, TxOut};
use lotus::PrivateKey;
use musig::{AggregatedNonce, SecretNonce, Session};
use proptest::prelude::*;
use protocol::group::{GroupDescriptor, GroupId, OutputType};
use protocol::messages::MAX_INPUTS;
use protocol::proposal::*;
use protocol::wire::DecodeError;

const NOW: u64 = 1_767_000_000_000;
const HOUR: u64 = 3_600_000;
const XPI: i64 = SATS_PER_XPI;
const MAX_LEN: usize = 64 * 1024;

fn member_keys(n: usize) -> Vec<PrivateKey> {
    (0..n)
        .map(|i| PrivateKey::from_bytes(&sha256(&[b'm', i as u8])).expect("hash is a key"))
        .collect()
}

fn group(output: OutputType, n: usize) -> (GroupDescriptor, Vec<PrivateKey>) {
    let keys = member_keys(n);
    let mut g = GroupDescriptor::new(
        "treasury",
        Network::Mainnet,
        keys.iter().map(|k| k.public_key()).collect(),
    )
    .expect("valid group");
    g.output = output;
    (g, keys)
}

fn recipient() -> Script {
    Script::p2pkh(&[0x11; 20])
}

fn outpoint(i: usize) -> OutPoint {
    OutPoint::new(TxId(sha256(&[b'c', i as u8])), i as u32)
}

/// Two inputs (3 + 2 XPI) from the group; 4 XPI out, change back, 1000 sat fee.
fn unsigned(g: &GroupDescriptor) -> UnsignedProposal {
    let group_script = g.script_pubkey().expect("group script");
    let inputs = [3 * XPI, 2 * XPI];
    UnsignedProposal {
        group_id: g.id(),
        session_id: SessionId([7; 32]),
        proposer: 0,
        tx: Transaction {
            version: 2,
            inputs: (0..inputs.len())
                .map(|i| TxIn {
                    prev_out: outpoint(i),
                    script_sig: Script::new(),
                    sequence: TxIn::SEQUENCE_FINAL,
                })
                .collect(),
            outputs: vec![
                TxOut::new(4 * XPI, recipient()),
                TxOut::new(XPI - 1_000, group_script.clone()),
            ],
            lock_time: 0,
        },
        spent_outputs: inputs
            .iter()
            .map(|&v| TxOut::new(v, group_script.clone()))
            .collect(),
        hash_type: required_hash_type(g.output),
        created_ms: NOW,
        expires_ms: NOW + HOUR,
        sequence: 7,
        evidence: vec![],
        pools: vec![],
    }
}

fn sign(p: UnsignedProposal, keys: &[PrivateKey]) -> Proposal {
    let proposer = usize::from(p.proposer).min(keys.len() - 1);
    Proposal::sign(p, &keys[proposer]).expect("encodable")
}

/// Validates `p` (signed by its proposer) in the default Taproot group.
fn validate_with(edit: impl FnOnce(&mut UnsignedProposal)) -> Result<Review, ProposalError> {
    let (g, keys) = group(OutputType::Taproot, 2);
    let mut p = unsigned(&g);
    edit(&mut p);
    sign(p, &keys).validate(&g, NOW)
}

fn rejects(edit: impl FnOnce(&mut UnsignedProposal)) -> ProposalError {
    validate_with(edit).expect_err("the proposal breaks a rule")
}

// ---------------------------------------------------------------------------------------------
// Valid proposals and their review

#[test]
fn valid_taproot_proposal_reviews_outputs_fee_and_change() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let proposal = sign(unsigned(&g), &keys);
    let review = proposal.validate(&g, NOW).expect("valid");

    assert_eq!(review.group_id, g.id());
    assert_eq!(review.session_id, SessionId([7; 32]));
    assert_eq!(review.proposer, 0);
    assert_eq!(review.sequence, 7);
    assert_eq!(review.inputs_total_sat, 5 * XPI);
    assert_eq!(review.outputs_total_sat, 5 * XPI - 1_000);
    assert_eq!(review.sent_sat, 4 * XPI);
    assert_eq!(review.change_sat, XPI - 1_000);
    assert_eq!(review.fee_sat, 1_000);
    assert_eq!(review.txid, proposal.tx.txid());
    assert_eq!(review.created_ms, NOW);
    assert_eq!(review.expires_ms, NOW + HOUR);
    assert_eq!(review.warnings, vec![]);

    // 2 signed Taproot inputs of 107 bytes, a P2PKH and a Taproot output.
    let size = 4 + 1 + 2 * 107 + 1 + (8 + 1 + 25) + (8 + 1 + 36) + 4;
    assert_eq!(review.signed_size_bytes, size);
    assert_eq!(
        review.fee_rate_sat_per_kb,
        1_000 * 1_000 / u64::try_from(size).unwrap()
    );
    assert_eq!(review.fee_share_basis_points, Some(2)); // 1000 / 4e6 = 0.025%

    let [to, change] = <[ReviewOutput; 2]>::try_from(review.outputs.clone()).unwrap();
    assert_eq!(to.kind, OutputKind::P2pkh);
    assert_eq!(
        to.address,
        Some(XAddress::for_script(&recipient(), Network::Mainnet).encode())
    );
    assert!(!to.is_change);
    assert_eq!(change.kind, OutputKind::Taproot { state: None });
    assert_eq!(change.address, Some(g.address().unwrap()));
    assert!(change.is_change);

    assert_eq!(
        review.digest,
        tagged_hash("LotusCosigner/review", &[proposal.signing_bytes()])
    );
    assert_eq!(review.digest, proposal.review_digest());
}

#[test]
fn valid_p2pkh_proposal_recognises_its_change() {
    let (g, keys) = group(OutputType::P2pkh, 3);
    let mut p = unsigned(&g);
    p.proposer = 2;
    let review = sign(p, &keys).validate(&g, NOW).expect("valid");
    assert_eq!(review.proposer, 2);
    let change = &review.outputs[1];
    assert_eq!(change.kind, OutputKind::P2pkh);
    assert!(change.is_change);
    assert_eq!(change.address, Some(g.address().unwrap()));
    // P2PKH inputs carry signature and key: 141 bytes each.
    assert_eq!(
        review.signed_size_bytes,
        4 + 1 + 2 * 141 + 1 + (8 + 1 + 25) + (8 + 1 + 25) + 4
    );
}

#[test]
fn the_review_digest_changes_with_every_signed_field() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let base = sign(unsigned(&g), &keys).review_digest();
    let edits: [fn(&mut UnsignedProposal); 6] = [
        |p| p.expires_ms += 1,
        |p| p.sequence += 1,
        |p| p.session_id.0[0] ^= 1,
        |p| p.tx.outputs[0].value -= 1,
        |p| p.spent_outputs[0].value += 1,
        |p| p.evidence.push(vec![1, 2, 3]),
    ];
    for edit in edits {
        let mut p = unsigned(&g);
        edit(&mut p);
        assert_ne!(sign(p, &keys).review_digest(), base);
    }
}

#[test]
fn session_id_displays_as_hex() {
    let mut id = [0u8; 32];
    id[0] = 0xab;
    id[31] = 0x01;
    let s = SessionId(id).to_string();
    assert_eq!(s.len(), 64);
    assert!(s.starts_with("ab00") && s.ends_with("01"));
}

// ---------------------------------------------------------------------------------------------
// One test per rule: each proposal breaks exactly the rule named

#[test]
fn wrong_group() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let mut p = unsigned(&g);
    p.group_id = GroupId([9; 32]);
    assert_eq!(
        sign(p, &keys).validate(&g, NOW).unwrap_err(),
        ProposalError::WrongGroup {
            expected: g.id(),
            got: GroupId([9; 32])
        }
    );
}

#[test]
fn proposer_not_a_member() {
    assert_eq!(
        rejects(|p| p.proposer = 2),
        ProposalError::UnknownProposer {
            index: 2,
            members: 2
        }
    );
}

#[test]
fn bad_signature() {
    let (g, keys) = group(OutputType::Taproot, 2);
    // Signed by member 1 but claims member 0.
    let p = Proposal::sign(unsigned(&g), &keys[1]).unwrap();
    assert_eq!(p.verify_signature(&g), Err(ProposalError::BadSignature));
    assert_eq!(p.validate(&g, NOW), Err(ProposalError::BadSignature));
}

#[test]
fn hash_type_must_match_the_output_type() {
    assert_eq!(
        rejects(|p| p.hash_type = SigHashType::ALL_FORKID),
        ProposalError::WrongHashType {
            expected: 0x61,
            got: 0x41
        }
    );
    let (g, keys) = group(OutputType::P2pkh, 2);
    let mut p = unsigned(&g);
    p.hash_type = SigHashType::ALL_LOTUS;
    assert_eq!(
        sign(p, &keys).validate(&g, NOW).unwrap_err(),
        ProposalError::WrongHashType {
            expected: 0x41,
            got: 0x61
        }
    );
}

#[test]
fn created_at_most_a_minute_in_the_future() {
    validate_with(|p| p.created_ms = NOW + MAX_CLOCK_AHEAD_MS).expect("exactly 60 s is fine");
    assert_eq!(
        rejects(|p| p.created_ms = NOW + MAX_CLOCK_AHEAD_MS + 1),
        ProposalError::CreatedInFuture {
            ahead_ms: 60_001,
            max_ms: 60_000
        }
    );
}

#[test]
fn expired() {
    assert_eq!(
        rejects(|p| {
            p.created_ms = NOW - HOUR;
            p.expires_ms = NOW;
        }),
        ProposalError::Expired {
            expires_ms: NOW,
            now_ms: NOW
        }
    );
    validate_with(|p| p.expires_ms = NOW + 1).expect("one ms left");
}

#[test]
fn expires_before_created() {
    assert_eq!(
        rejects(|p| p.expires_ms = p.created_ms),
        ProposalError::ExpiresBeforeCreated {
            created_ms: NOW,
            expires_ms: NOW
        }
    );
}

#[test]
fn lifetime_within_the_groups_ttl() {
    let ttl = group(OutputType::Taproot, 2).0.timeouts.max_proposal_ttl_ms;
    validate_with(|p| p.expires_ms = NOW + ttl).expect("exactly the ttl is fine");
    assert_eq!(
        rejects(|p| p.expires_ms = NOW + ttl + 1),
        ProposalError::LifetimeTooLong {
            lifetime_ms: ttl + 1,
            max_ms: ttl
        }
    );
}

#[test]
fn transaction_version_must_be_standard() {
    validate_with(|p| p.tx.version = 1).expect("version 1 is standard");
    for version in [0, 3, -1] {
        assert_eq!(
            rejects(|p| p.tx.version = version),
            ProposalError::NonStandardVersion { version }
        );
    }
}

#[test]
fn no_inputs() {
    assert_eq!(
        rejects(|p| {
            p.tx.inputs.clear();
            p.spent_outputs.clear();
        }),
        ProposalError::NoInputs
    );
}

#[test]
fn no_outputs() {
    assert_eq!(rejects(|p| p.tx.outputs.clear()), ProposalError::NoOutputs);
}

#[test]
fn too_many_inputs_for_one_session() {
    // The wire caps spent outputs at MAX_INPUTS too, so the extra input has none.
    let err = rejects(|p| {
        let spent = p.spent_outputs[0].clone();
        p.tx.inputs = (0..=MAX_INPUTS)
            .map(|i| TxIn {
                prev_out: outpoint(i),
                script_sig: Script::new(),
                sequence: TxIn::SEQUENCE_FINAL,
            })
            .collect();
        p.spent_outputs = vec![spent; MAX_INPUTS];
    });
    assert_eq!(
        err,
        ProposalError::TooManyInputs {
            count: MAX_INPUTS + 1,
            max: MAX_INPUTS
        }
    );
}

#[test]
fn inputs_must_be_unsigned() {
    assert_eq!(
        rejects(|p| p.tx.inputs[1].script_sig = Script::from(vec![0x51])),
        ProposalError::ScriptSigNotEmpty { input: 1 }
    );
}

#[test]
fn duplicate_inputs() {
    assert_eq!(
        rejects(|p| p.tx.inputs[1].prev_out = p.tx.inputs[0].prev_out),
        ProposalError::DuplicateInput {
            first: 0,
            second: 1,
            outpoint: outpoint(0)
        }
    );
}

#[test]
fn one_spent_output_per_input() {
    assert_eq!(
        rejects(|p| {
            p.spent_outputs.pop();
        }),
        ProposalError::SpentOutputCount {
            inputs: 2,
            spent_outputs: 1
        }
    );
}

#[test]
fn every_input_spends_the_group_address() {
    assert_eq!(
        rejects(|p| p.spent_outputs[1].script_pubkey = recipient()),
        ProposalError::ForeignInput { input: 1 }
    );
    // A Taproot output with the group's commitment but a state is not the group's address.
    let (g, _) = group(OutputType::Taproot, 2);
    let commitment = g
        .script_pubkey()
        .unwrap()
        .as_taproot()
        .unwrap()
        .commitment_key()
        .unwrap();
    assert_eq!(
        rejects(|p| p.spent_outputs[0].script_pubkey =
            Script::taproot_key_path(&commitment, Some(&[1; 32]))),
        ProposalError::ForeignInput { input: 0 }
    );
}

#[test]
fn amounts_must_be_positive() {
    assert_eq!(
        rejects(|p| p.spent_outputs[1].value = 0),
        ProposalError::NonPositiveAmount {
            at: AmountAt::Input(1),
            value: 0
        }
    );
    assert_eq!(
        rejects(|p| p.tx.outputs[0].value = 0),
        ProposalError::NonPositiveAmount {
            at: AmountAt::Output(0),
            value: 0
        }
    );
    assert_eq!(
        rejects(|p| p.tx.outputs[1].value = -1),
        ProposalError::NonPositiveAmount {
            at: AmountAt::Output(1),
            value: -1
        }
    );
}

#[test]
fn amounts_and_totals_at_most_max_money() {
    assert_eq!(
        rejects(|p| p.spent_outputs[0].value = MAX_MONEY + 1),
        ProposalError::AmountTooLarge {
            at: AmountAt::Input(0),
            value: MAX_MONEY + 1
        }
    );
    assert_eq!(
        rejects(|p| p.tx.outputs[0].value = i64::MAX),
        ProposalError::AmountTooLarge {
            at: AmountAt::Output(0),
            value: i64::MAX
        }
    );
    // Each value is in range; the sum is not (and must not overflow on the way).
    assert_eq!(
        rejects(|p| {
            p.spent_outputs[0].value = MAX_MONEY;
            p.spent_outputs[1].value = MAX_MONEY;
        }),
        ProposalError::AmountTooLarge {
            at: AmountAt::InputsTotal,
            value: 2 * MAX_MONEY
        }
    );
    assert_eq!(
        rejects(|p| {
            p.spent_outputs[0].value = MAX_MONEY - 2 * XPI;
            p.tx.outputs[0].value = MAX_MONEY;
        }),
        ProposalError::AmountTooLarge {
            at: AmountAt::OutputsTotal,
            value: MAX_MONEY + XPI - 1_000
        }
    );
}

#[test]
fn outputs_cannot_exceed_inputs() {
    assert_eq!(
        rejects(|p| p.tx.outputs[1].value = XPI + 1),
        ProposalError::OutputsExceedInputs {
            inputs_sat: 5 * XPI,
            outputs_sat: 5 * XPI + 1
        }
    );
}

#[test]
fn fee_above_the_hard_ceiling() {
    // 50 XPI in: a 5 XPI fee (exactly 10%) is allowed, one sat more is not.
    let with_fee = |fee: i64| {
        move |p: &mut UnsignedProposal| {
            p.spent_outputs[0].value = 30 * XPI;
            p.spent_outputs[1].value = 20 * XPI;
            p.tx.outputs[1].value = 50 * XPI - 4 * XPI - fee;
        }
    };
    validate_with(with_fee(5 * XPI)).expect("10% is at the ceiling");
    assert_eq!(
        rejects(with_fee(5 * XPI + 1)),
        ProposalError::FeeTooHigh {
            fee_sat: 5 * XPI + 1,
            inputs_sat: 50 * XPI
        }
    );
    // Below 1 XPI the share does not matter: 0.9 XPI of 5 XPI (18%) is only a warning.
    let review = validate_with(|p| p.tx.outputs[1].value = XPI / 10).expect("under the floor");
    assert_eq!(review.fee_sat, 9 * XPI / 10);
    assert!(review
        .warnings
        .iter()
        .any(|w| matches!(w, ReviewWarning::HighFeeShare { .. })));
}

#[test]
fn non_standard_outputs() {
    let cases = [
        (vec![0x51], NonStandardReason::UnknownScript),
        (
            [vec![0x62, 0x51, 33], vec![0x05; 33]].concat(),
            NonStandardReason::InvalidTaprootCommitment,
        ),
        (vec![0x6a, 0x76], NonStandardReason::DataNotPushOnly),
        (
            [vec![0x6a, 0x4c, 221], vec![0; 221]].concat(),
            NonStandardReason::DataTooLong { len: 224, max: 223 },
        ),
    ];
    for (script, reason) in cases {
        assert_eq!(
            rejects(|p| p.tx.outputs[0].script_pubkey = Script::from(script)),
            ProposalError::NonStandardOutput { output: 0, reason }
        );
    }
}

#[test]
fn standard_outputs_of_every_kind() {
    let key = member_keys(5).pop().unwrap().public_key();
    let data = [vec![0x6a, 0x4c, 220], vec![0xab; 220]].concat();
    let review = validate_with(|p| {
        p.tx.outputs = vec![
            TxOut::new(XPI, Script::p2sh(&[3; 20])),
            TxOut::new(XPI, Script::taproot_key_path(&key, None)),
            TxOut::new(XPI, Script::taproot_key_path(&key, Some(&[4; 32]))),
            TxOut::new(0, Script::from(data.clone())),
            TxOut::new(2 * XPI - 1_000, recipient()),
        ];
    })
    .expect("all standard");
    let kinds: Vec<_> = review.outputs.iter().map(|o| o.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            OutputKind::P2sh,
            OutputKind::Taproot { state: None },
            OutputKind::Taproot {
                state: Some([4; 32])
            },
            OutputKind::Data {
                payload: data[1..].to_vec()
            },
            OutputKind::P2pkh,
        ]
    );
    assert_eq!(review.outputs[3].address, None);
    assert_eq!(review.outputs[1].address, review.outputs[2].address);
    assert!(review.outputs.iter().all(|o| !o.is_change));
    assert_eq!(review.fee_share_basis_points, Some(2)); // 1000 sat of 5 XPI
}

#[test]
fn at_most_three_data_outputs() {
    let data = TxOut::new(0, Script::from(vec![0x6a, 0x01, 0x01]));
    validate_with(|p| p.tx.outputs.extend(vec![data.clone(); 3])).expect("three are fine");
    assert_eq!(
        rejects(|p| p.tx.outputs.extend(vec![data.clone(); 4])),
        ProposalError::TooManyDataOutputs { count: 4, max: 3 }
    );
}

#[test]
fn dust_outputs() {
    assert_eq!(dust_threshold(&TxOut::new(0, recipient())), 546);
    assert_eq!(dust_threshold(&TxOut::new(0, Script::p2sh(&[0; 20]))), 540);
    let (g, _) = group(OutputType::Taproot, 2);
    assert_eq!(
        dust_threshold(&TxOut::new(0, g.script_pubkey().unwrap())),
        579
    );
    assert_eq!(dust_threshold(&TxOut::new(0, Script::from(vec![0x6a]))), 0);

    validate_with(|p| {
        p.tx.outputs[0].value = 546;
        p.tx.outputs[1].value += 4 * XPI - 546;
    })
    .expect("exactly the threshold is not dust");
    assert_eq!(
        rejects(|p| {
            p.tx.outputs[0].value = 545;
            p.tx.outputs[1].value += 4 * XPI - 545;
        }),
        ProposalError::DustOutput {
            output: 0,
            amount_sat: 545,
            threshold_sat: 546
        }
    );
}

#[test]
fn signed_size_above_the_standard_limit() {
    // Unsigned, the transaction fits the wire's limit; with its scriptSigs it would not.
    let err = rejects(|p| {
        let out = TxOut::new(600, recipient());
        while estimated_signed_size(&p.tx, OutputType::Taproot) <= MAX_STANDARD_TX_SIZE {
            p.tx.outputs.push(out.clone());
        }
        let spent: i64 = p.tx.outputs.iter().map(|o| o.value).sum();
        p.spent_outputs[0].value = spent - 2 * XPI + 100_000;
    });
    let ProposalError::TooLarge { size, max } = err else {
        panic!("expected TooLarge, got {err:?}");
    };
    assert_eq!(max, MAX_STANDARD_TX_SIZE);
    assert!(size > MAX_STANDARD_TX_SIZE && size <= MAX_STANDARD_TX_SIZE + 34);
}

#[test]
fn warnings() {
    let review = validate_with(|p| p.tx.outputs[1].value += 1_000).expect("zero fee is valid");
    assert_eq!(
        review.warnings,
        vec![ReviewWarning::BelowMinRelayFee {
            sat_per_kb: 0,
            minimum_sat_per_kb: 1_000
        }]
    );

    let review = validate_with(|p| p.tx.outputs[1].value -= 10_000).expect("11000 sat fee");
    assert!(matches!(
        review.warnings.as_slice(),
        [ReviewWarning::HighFeeRate {
            threshold_sat_per_kb: 10_000,
            ..
        }]
    ));

    // 0.501 XPI fee on a 4 XPI payment: 12.52% of the amount sent.
    let review = validate_with(|p| p.tx.outputs[1].value -= XPI / 2).expect("valid");
    assert!(review.warnings.contains(&ReviewWarning::HighFeeShare {
        basis_points: 1_252,
        threshold_basis_points: 500
    }));

    let review = validate_with(|p| {
        p.tx.outputs[1].value -= 1_000;
        p.tx.outputs
            .push(TxOut::new(1_000, Script::from(vec![0x6a, 0x01, 0x02])));
    })
    .expect("burning is allowed");
    assert_eq!(
        review.warnings,
        vec![ReviewWarning::BurnsCoins {
            output: 2,
            amount_sat: 1_000
        }]
    );

    let review = validate_with(|p| {
        p.tx.lock_time = 900_000;
        p.tx.inputs[0].sequence = 0xffff_fffe;
    })
    .expect("time locks are allowed");
    assert_eq!(
        review.warnings,
        vec![ReviewWarning::TimeLocked { lock_time: 900_000 }]
    );
    // With every sequence final the locktime does not bind.
    let review = validate_with(|p| p.tx.lock_time = 900_000).unwrap();
    assert_eq!(review.warnings, vec![]);

    // Nothing leaves the group: no share to compute.
    let review = validate_with(|p| {
        let change = p.tx.outputs[1].script_pubkey.clone();
        p.tx.outputs[0].script_pubkey = change;
    })
    .unwrap();
    assert_eq!(review.sent_sat, 0);
    assert_eq!(review.fee_share_basis_points, None);
}

// ---------------------------------------------------------------------------------------------
// Encoding

#[test]
fn encoding_roundtrips_over_the_exact_bytes() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let mut p = unsigned(&g);
    p.evidence = vec![vec![1; 10], vec![]];
    let proposal = sign(p, &keys);
    let bytes = proposal.encode();
    let decoded = Proposal::decode(&bytes, MAX_LEN).expect("decodes");
    assert_eq!(decoded, proposal);
    assert_eq!(decoded.signing_bytes(), &bytes[..bytes.len() - 64]);
    assert_eq!(decoded.signature(), proposal.signature());
    assert_eq!(decoded.unsigned(), proposal.unsigned());
    decoded.validate(&g, NOW).expect("still valid");
}

#[test]
fn truncation_trailing_bytes_and_size_limit() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let bytes = sign(unsigned(&g), &keys).encode();
    for cut in 0..bytes.len() {
        assert!(
            Proposal::decode(&bytes[..cut], MAX_LEN).is_err(),
            "cut {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Proposal::decode(&long, MAX_LEN),
        Err(DecodeError::TrailingBytes(1))
    );
    assert_eq!(
        Proposal::decode(&bytes, bytes.len() - 1),
        Err(DecodeError::TooLong {
            field: "proposal",
            len: bytes.len(),
            max: bytes.len() - 1
        })
    );
}

#[test]
fn no_single_bit_flip_yields_a_valid_proposal() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let bytes = sign(unsigned(&g), &keys).encode();
    for bit in 0..bytes.len() * 8 {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Ok(p) = Proposal::decode(&flipped, MAX_LEN) {
            assert!(p.validate(&g, NOW).is_err(), "bit {bit}");
        }
    }
}

#[test]
fn sign_refuses_what_the_wire_cannot_carry() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let mut p = unsigned(&g);
    p.evidence = vec![vec![]; MAX_EVIDENCE_RECORDS + 1];
    assert!(matches!(
        Proposal::sign(p, &keys[0]),
        Err(ProposalError::Decode(DecodeError::TooLong { .. }))
    ));
    let mut p = unsigned(&g);
    p.evidence = vec![vec![0; MAX_EVIDENCE_RECORD_BYTES + 1]];
    assert!(Proposal::sign(p, &keys[0]).is_err());
    let mut p = unsigned(&g);
    p.evidence = vec![vec![0; MAX_EVIDENCE_RECORD_BYTES]; MAX_EVIDENCE_RECORDS];
    let big = Proposal::sign(p, &keys[0]).expect("at the limits");
    let bytes = big.encode();
    assert_eq!(Proposal::decode(&bytes, bytes.len()).unwrap(), big);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Proposal::decode(&bytes, MAX_LEN);
    }

    #[test]
    fn decoding_damaged_proposals_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (g, keys) = group(OutputType::Taproot, 2);
        let mut bytes = sign(unsigned(&g), &keys).encode();
        for (at, byte) in edits {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let cut = cut.index(bytes.len() + 1);
        if let Ok(p) = Proposal::decode(&bytes[..cut], MAX_LEN) {
            // Canonical: what decodes re-encodes to exactly the received signing bytes.
            let resigned = Proposal::sign(p.unsigned().clone(), &keys[0]).expect("encodable");
            prop_assert_eq!(resigned.signing_bytes(), p.signing_bytes());
            let _ = p.validate(&g, NOW);
            let _ = p.sighashes(&g);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Signing with the group's keys and finalizing

/// Every member signs every input's sighash with MuSig2; returns one signature per input.
fn musig_sign(g: &GroupDescriptor, keys: &[PrivateKey], sighashes: &[[u8; 32]]) -> Vec<Signature> {
    let context = g.key_agg().expect("key aggregation");
    sighashes
        .iter()
        .map(|message| {
            let (secrets, publics): (Vec<SecretNonce>, Vec<_>) = keys
                .iter()
                .map(|k| {
                    SecretNonce::generate(k, context.aggregated_key(), Some(message))
                        .expect("nonce")
                })
                .unzip();
            let aggregated = AggregatedNonce::sum(&publics).expect("nonce sum");
            let session = Session::new(&context, g.output.spend_path(), &aggregated, message)
                .expect("session");
            let partials: Vec<_> = keys
                .iter()
                .zip(secrets)
                .map(|(k, nonce)| {
                    let index = context.index_of(&k.public_key()).expect("member");
                    session.sign(index, k, nonce).expect("partial")
                })
                .collect();
            let signature = session.aggregate(&partials).expect("aggregate");
            assert!(session.verify_final(&signature));
            signature
        })
        .collect()
}

#[test]
fn musig_signed_proposals_finalize_into_transactions_lotusd_accepts() {
    for output in [OutputType::Taproot, OutputType::P2pkh] {
        let (g, keys) = group(output, 3);
        let proposal = sign(unsigned(&g), &keys);
        let review = proposal.validate(&g, NOW).expect("valid");
        let sighashes = proposal.sighashes(&g).expect("sighashes");
        assert_eq!(sighashes.len(), 2);
        assert_ne!(sighashes[0], sighashes[1]);

        let signatures = musig_sign(&g, &keys, &sighashes);
        let tx = proposal.finalize(&g, &signatures).expect("finalizes");
        spend::verify_transaction(&tx, &proposal.spent_outputs).expect("lotusd rules");
        assert_eq!(tx.txid(), review.txid, "{output:?}: signing keeps the txid");
        assert_eq!(
            tx.encode().len(),
            review.signed_size_bytes,
            "{output:?}: exact size"
        );

        let swapped = [signatures[1], signatures[0]];
        assert!(matches!(
            proposal.finalize(&g, &swapped),
            Err(ProposalError::FinalTransaction(e)) if e.index == 0
        ));
        assert_eq!(
            proposal.finalize(&g, &signatures[..1]),
            Err(ProposalError::SignatureCount {
                expected: 2,
                got: 1
            })
        );
    }
}

#[test]
fn a_single_key_signature_does_not_finalize() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let proposal = sign(unsigned(&g), &keys);
    let sighashes = proposal.sighashes(&g).unwrap();
    let alone: Vec<_> = sighashes
        .iter()
        .map(|m| schnorr::sign(&keys[0], m))
        .collect();
    assert!(matches!(
        proposal.finalize(&g, &alone),
        Err(ProposalError::FinalTransaction(_))
    ));
}

#[test]
fn sighashes_refuse_what_they_cannot_compute() {
    let (g, keys) = group(OutputType::Taproot, 2);
    let mut p = unsigned(&g);
    p.spent_outputs.pop();
    assert_eq!(
        sign(p, &keys).sighashes(&g),
        Err(ProposalError::SpentOutputCount {
            inputs: 2,
            spent_outputs: 1
        })
    );
    let mut p = unsigned(&g);
    p.hash_type = SigHashType::ALL_FORKID;
    assert!(matches!(
        sign(p, &keys).sighashes(&g),
        Err(ProposalError::WrongHashType { .. })
    ));
}
