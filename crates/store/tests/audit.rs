//! The audit chain: every single-byte change to any stored column of any row, a deleted row,
//! swapped or reordered rows, a dropped tail, an edited head, altered evidence or a rewritten
//! history under a signed head — `verify` fails and names the FIRST bad entry. Tampering goes
//! through a second SQLite connection with the append-only triggers dropped, as someone with
//! the file could.

mod common;

use common::*;
use protocol::election::{Election, ElectionMethod};
use protocol::envelope::MessageKind;
use protocol::evidence::{Blame, Evidence, Offence};
use protocol::session::{Event, Outcome, Phase};
use rusqlite::types::Value;
use rusqlite::{params, Connection};
use store::{AuditEvent, BreakKind, ChainBreak, Error, KeyAction, Store};

const COLUMNS: [&str; 9] = [
    "seq",
    "time_ms",
    "kind",
    "session_id",
    "group_id",
    "signer",
    "body",
    "prev_hash",
    "hash",
];

/// A store whose audit chain holds a realistic mix of entries (with and without session,
/// group and signer columns, one blame with stored evidence).
fn populated() -> Fixture {
    let mut f = Fixture::new();
    let k = keys(3);
    let g = group(&k);
    let s = session(7);
    let st = &mut f.store;
    st.append(
        &AuditEvent::Key {
            action: KeyAction::Created,
            public_key: k[0].public_key().serialize(),
        },
        1_000,
    )
    .unwrap();
    propose(st, &k, &g, s, 1, 0, 1_100);
    st.append(
        &AuditEvent::ProposalReceived {
            session_id: s,
            group_id: g.id().0,
            proposer: 1,
            proposer_key: k[1].public_key().serialize(),
            txid: [0x7A; 32],
            digest: [0xD7; 32],
            sent_sat: 1_000_000,
            fee_sat: 500,
        },
        1_101,
    )
    .unwrap();
    st.record_approval(s, digest(s), 1_200).unwrap();
    st.record_event(&g, s, &Event::AttemptStarted { attempt: 0 }, 1_201)
        .unwrap();
    st.record_event(
        &g,
        s,
        &Event::TimedOut {
            attempt: 0,
            phase: Phase::Nonces,
            waiting_for: vec![2],
        },
        1_300,
    )
    .unwrap();
    let a = envelope(&k, &g, MessageKind::Nonces, s, 1, 2, 1_400);
    let b = envelope(&k, &g, MessageKind::Nonces, s, 1, 2, 1_401);
    st.record_event(
        &g,
        s,
        &Event::Blamed {
            blame: Blame {
                offence: Offence::Equivocation,
                culprit: 2,
                session_id: s,
                attempt: 1,
            },
            evidence: Evidence {
                offence: Offence::Equivocation,
                proposal: Vec::new(),
                envelopes: vec![a, b],
            },
        },
        1_402,
    )
    .unwrap();
    st.record_event(
        &g,
        s,
        &Event::Elected {
            attempt: 2,
            election: Election {
                method: ElectionMethod::Salted,
                priority: vec![1, 0, 2],
                proof: [0xE1; 32],
            },
        },
        1_500,
    )
    .unwrap();
    st.blacklist(&k[2].public_key().serialize(), "equivocated", 1_600)
        .unwrap();
    st.record_event(
        &g,
        s,
        &Event::Closed {
            outcome: Outcome::Confirmed { txid: [0x7A; 32] },
        },
        1_700,
    )
    .unwrap();
    assert_eq!(st.verify_audit().unwrap().entries, 9);
    f
}

fn attacker(f: &Fixture) -> Connection {
    let raw = f.raw();
    raw.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
        .unwrap();
    raw
}

fn row_count(raw: &Connection) -> i64 {
    raw.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .unwrap()
}

fn value(raw: &Connection, seq: i64, column: &str) -> Value {
    raw.query_row(
        &format!("SELECT {column} FROM audit WHERE seq = ?1"),
        [seq],
        |r| r.get(0),
    )
    .unwrap()
}

/// Every single-byte flip (XOR 0xFF) of a value, as the value SQLite would store.
fn flips(original: &Value) -> Vec<Value> {
    match original {
        Value::Integer(v) => (0..8)
            .map(|i| {
                let mut b = v.to_be_bytes();
                b[i] ^= 0xFF;
                Value::Integer(i64::from_be_bytes(b))
            })
            .collect(),
        Value::Text(t) => (0..t.len())
            .map(|i| {
                let mut b = t.as_bytes().to_vec();
                b[i] ^= 0xFF;
                Value::Blob(b) // written back as TEXT with CAST, bytes as they are
            })
            .collect(),
        Value::Blob(b) => (0..b.len())
            .map(|i| {
                let mut b = b.clone();
                b[i] ^= 0xFF;
                Value::Blob(b)
            })
            .collect(),
        Value::Null => vec![Value::Blob(vec![0; 32])],
        Value::Real(_) => unreachable!("no REAL columns"),
    }
}

fn set(
    raw: &Connection,
    seq: i64,
    column: &str,
    value: &Value,
    text: bool,
) -> rusqlite::Result<usize> {
    let sql = if text {
        format!("UPDATE audit SET {column} = CAST(?1 AS TEXT) WHERE seq = ?2")
    } else {
        format!("UPDATE audit SET {column} = ?1 WHERE seq = ?2")
    };
    raw.execute(&sql, params![value, seq])
}

fn expect_break(store: &Store) -> ChainBreak {
    match store.verify_audit() {
        Err(Error::AuditBroken(b)) => b,
        other => panic!("expected a broken chain, got {other:?}"),
    }
}

#[test]
fn every_single_byte_change_of_every_column_is_detected_at_its_entry() {
    let f = populated();
    let raw = attacker(&f);
    let rows = row_count(&raw);
    let (mut detected, mut refused) = (0, 0);
    for seq in 1..=rows {
        for column in COLUMNS {
            let original = value(&raw, seq, column);
            let text = matches!(original, Value::Text(_));
            let mut variants = flips(&original);
            // Also: the column removed (NULL) where allowed, and one byte shorter/longer.
            let bytes = match &original {
                Value::Text(t) => Some(t.as_bytes().to_vec()),
                Value::Blob(b) => Some(b.clone()),
                _ => None,
            };
            if let Some(bytes) = bytes {
                variants.push(Value::Blob(bytes[..bytes.len() - 1].to_vec()));
                let mut longer = bytes.clone();
                longer.push(b'0');
                variants.push(Value::Blob(longer));
                if matches!(column, "session_id" | "group_id" | "signer") {
                    variants.push(Value::Null);
                }
            }
            for variant in variants {
                // `seq` may move the row; undo by its new seq.
                let moved = match (&variant, column) {
                    (Value::Integer(v), "seq") => *v,
                    _ => seq,
                };
                if set(&raw, seq, column, &variant, text).is_err() {
                    refused += 1; // a CHECK or PRIMARY KEY constraint refused the edit
                    continue;
                }
                let b = expect_break(&f.store);
                assert_eq!(
                    b.seq, seq as u64,
                    "entry {seq} column {column} = {variant:?}: reported {b}"
                );
                if column == "seq" {
                    assert!(matches!(b.problem, BreakKind::Missing { .. }), "{b}");
                }
                detected += 1;
                set(&raw, moved, column, &original, text).unwrap();
            }
        }
    }
    f.store.verify_audit().unwrap();
    assert!(detected > 2_000, "detected {detected}, refused {refused}");
    eprintln!("single-byte tampering: {detected} detected, {refused} refused by constraints");
}

#[test]
fn a_deleted_row_is_detected_at_its_position() {
    let f = populated();
    let raw = attacker(&f);
    let rows = row_count(&raw);
    for seq in 1..=rows {
        let saved: Vec<Value> = COLUMNS.iter().map(|c| value(&raw, seq, c)).collect();
        raw.execute("DELETE FROM audit WHERE seq = ?1", [seq])
            .unwrap();
        let b = expect_break(&f.store);
        assert_eq!(b.seq, seq as u64, "deleted {seq}: {b}");
        if seq == rows {
            assert!(matches!(b.problem, BreakKind::Truncated { .. }), "{b}");
        } else {
            assert_eq!(
                b.problem,
                BreakKind::Missing {
                    next_present: seq as u64 + 1
                }
            );
        }
        raw.execute(
            "INSERT INTO audit VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            rusqlite::params_from_iter(saved.iter()),
        )
        .unwrap();
    }
    f.store.verify_audit().unwrap();
}

#[test]
fn dropping_the_tail_with_its_head_is_detected() {
    let mut f = populated();
    f.store.anchor_audit(&keys(1)[0], 1_800).unwrap();
    let raw = attacker(&f);
    // Remove the last two entries: the recorded head still names entry 9.
    raw.execute("DELETE FROM audit WHERE seq >= 8", []).unwrap();
    let b = expect_break(&f.store);
    assert_eq!(
        b,
        ChainBreak {
            seq: 8,
            problem: BreakKind::Truncated {
                last: 7,
                head_seq: 9
            }
        }
    );
    // Rewriting the head as well leaves a consistent chain; the signed head still has 9.
    raw.execute_batch(
        "UPDATE audit_head SET seq = 7, hash = (SELECT hash FROM audit WHERE seq = 7);",
    )
    .unwrap();
    assert_eq!(
        expect_break(&f.store),
        ChainBreak {
            seq: 8,
            problem: BreakKind::Truncated {
                last: 7,
                head_seq: 9
            }
        }
    );
}

#[test]
fn swapped_rows_are_detected_at_the_first_of_them() {
    let f = populated();
    let raw = attacker(&f);
    let rows = row_count(&raw);
    let content = &COLUMNS[1..];
    for i in 1..=rows {
        for j in i + 1..=rows {
            let a: Vec<Value> = content.iter().map(|c| value(&raw, i, c)).collect();
            let b: Vec<Value> = content.iter().map(|c| value(&raw, j, c)).collect();
            let write = |seq: i64, values: &[Value]| {
                for (column, v) in content.iter().zip(values) {
                    raw.execute(
                        &format!("UPDATE audit SET {column} = ?1 WHERE seq = ?2"),
                        params![v, seq],
                    )
                    .unwrap();
                }
            };
            write(i, &b);
            write(j, &a);
            let found = expect_break(&f.store);
            assert_eq!(found.seq, i as u64, "swap {i}<->{j}: {found}");
            assert!(
                matches!(found.problem, BreakKind::Reordered { .. }),
                "swap {i}<->{j}: {found}"
            );
            write(i, &a);
            write(j, &b);
        }
    }
    f.store.verify_audit().unwrap();
}

#[test]
fn reordered_rows_are_detected() {
    let f = populated();
    let raw = attacker(&f);
    // Move entry 3 to the position of entry 6 and back (renumbering seq only).
    raw.execute_batch(
        "UPDATE audit SET seq = 1000 WHERE seq = 3;
         UPDATE audit SET seq = 3 WHERE seq = 6;
         UPDATE audit SET seq = 6 WHERE seq = 1000;",
    )
    .unwrap();
    let b = expect_break(&f.store);
    assert_eq!(b.seq, 3);
    assert_eq!(b.problem, BreakKind::Reordered { follows: 5 });
    // Appending entries physically out of order (rowid order) changes nothing: verify walks
    // by seq, so only the numbering matters.
    raw.execute_batch(
        "UPDATE audit SET seq = 1000 WHERE seq = 3;
         UPDATE audit SET seq = 3 WHERE seq = 6;
         UPDATE audit SET seq = 6 WHERE seq = 1000;",
    )
    .unwrap();
    f.store.verify_audit().unwrap();
}

#[test]
fn an_edited_head_is_detected() {
    let f = populated();
    let raw = attacker(&f);
    raw.execute("UPDATE audit_head SET seq = 8", []).unwrap();
    assert_eq!(
        expect_break(&f.store),
        ChainBreak {
            seq: 9,
            problem: BreakKind::BeyondHead { head_seq: 8 }
        }
    );
    raw.execute("UPDATE audit_head SET seq = 9, hash = zeroblob(32)", [])
        .unwrap();
    assert_eq!(
        expect_break(&f.store),
        ChainBreak {
            seq: 9,
            problem: BreakKind::HeadMismatch
        }
    );
    raw.execute("DELETE FROM audit_head", []).unwrap();
    assert_eq!(expect_break(&f.store).problem, BreakKind::HeadMissing);
}

#[test]
fn altered_evidence_is_detected_at_its_blame_entry() {
    let f = populated();
    let raw = attacker(&f);
    let blamed: i64 = raw
        .query_row("SELECT seq FROM audit WHERE kind = 'blamed'", [], |r| {
            r.get(0)
        })
        .unwrap();
    let bytes: Vec<u8> = raw
        .query_row("SELECT bytes FROM evidence", [], |r| r.get(0))
        .unwrap();
    let mut changed = bytes.clone();
    changed[10] ^= 1;
    raw.execute("UPDATE evidence SET bytes = ?1", [&changed])
        .unwrap();
    let b = expect_break(&f.store);
    assert_eq!(b.seq, blamed as u64);
    assert!(matches!(b.problem, BreakKind::EvidenceMismatch { .. }));
    raw.execute("DELETE FROM evidence", []).unwrap();
    let b = expect_break(&f.store);
    assert_eq!(b.seq, blamed as u64);
    assert!(matches!(b.problem, BreakKind::EvidenceMissing { .. }));
}

#[test]
fn the_append_only_triggers_refuse_edits_through_sql() {
    let f = populated();
    let raw = f.raw();
    let update = raw.execute("UPDATE audit SET time_ms = 0 WHERE seq = 1", []);
    assert!(update.unwrap_err().to_string().contains("append-only"));
    let delete = raw.execute("DELETE FROM audit WHERE seq = 1", []);
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    f.store.verify_audit().unwrap();
}

#[test]
fn a_signed_head_catches_a_consistently_rewritten_history() {
    let k = keys(3);
    let mut f = populated();
    let anchor = f.store.anchor_audit(&k[0], 2_000).unwrap().expect("anchor");
    assert_eq!(anchor.seq, 9);
    let summary = f.store.verify_audit_signed_by(&k[0].public_key()).unwrap();
    assert_eq!(summary.anchors, 1);
    // Another key's anchor is refused when the member key is expected.
    assert_eq!(
        match f.store.verify_audit_signed_by(&k[1].public_key()) {
            Err(Error::AuditBroken(b)) => b.problem,
            other => panic!("{other:?}"),
        },
        BreakKind::AnchorKey
    );

    // Build an alternative history that is internally consistent (a different amount in
    // entry 2) in a scratch store, and copy it over the real one, head included.
    let mut forged = Fixture::new();
    let g = group(&k);
    let s = session(7);
    let honest: Vec<_> = f.store.audit_entries(0, 100).unwrap();
    propose(&mut forged.store, &k, &g, s, 1, 0, 1_100);
    for entry in &honest {
        let mut event = entry.event.clone();
        if let AuditEvent::ProposalReceived { sent_sat, .. } = &mut event {
            *sent_sat = 9_999_999;
        }
        forged.store.append(&event, entry.time_ms).unwrap();
    }
    let raw = attacker(&f);
    raw.execute_batch(&format!(
        "ATTACH DATABASE '{}' AS forged;
         DELETE FROM audit;
         INSERT INTO audit SELECT * FROM forged.audit;
         DELETE FROM audit_head;
         INSERT INTO audit_head SELECT * FROM forged.audit_head;
         DETACH DATABASE forged;",
        forged.path().display()
    ))
    .unwrap();
    // The hash chain alone is consistent again …
    let b = expect_break(&f.store);
    // … but the signed head no longer matches entry 9.
    assert_eq!(
        b,
        ChainBreak {
            seq: 9,
            problem: BreakKind::AnchorMismatch
        }
    );
    // A forged signature is caught too.
    raw.execute(
        "UPDATE audit_anchors SET hash = (SELECT hash FROM audit WHERE seq = 9)",
        [],
    )
    .unwrap();
    assert_eq!(expect_break(&f.store).problem, BreakKind::AnchorSignature);
}

#[test]
fn export_is_json_lines_that_reverify_outside_the_database() {
    let f = populated();
    let mut out = Vec::new();
    assert_eq!(f.store.export_audit_jsonl(&mut out).unwrap(), 9);
    let text = String::from_utf8(out.clone()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 9);
    for (i, line) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], i as u64 + 1);
        assert_eq!(v["hash"].as_str().unwrap().len(), 64);
        assert_eq!(v["event"]["kind"], v["kind"]);
    }
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["event"]["action"], "created");
    assert_eq!(first["session_id"], serde_json::Value::Null);
    assert_eq!(store::verify_jsonl(&mut out.as_slice()).unwrap(), 9);
    // A one-character edit anywhere in an exported line breaks it at that line.
    let amount = text.replace("\"sent_sat\":1000000", "\"sent_sat\":1000001");
    assert_ne!(amount, text);
    match store::verify_jsonl(&mut amount.as_bytes()) {
        Err(Error::AuditBroken(b)) => {
            assert_eq!(b.seq, 2);
            assert_eq!(b.problem, BreakKind::HashMismatch);
        }
        other => panic!("{other:?}"),
    }
    let dropped: String = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 4)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    match store::verify_jsonl(&mut dropped.as_bytes()) {
        Err(Error::AuditBroken(b)) => assert_eq!(b.seq, 5),
        other => panic!("{other:?}"),
    }
}

#[test]
fn entries_read_back_typed_with_their_columns() {
    let f = populated();
    let entries = f.store.audit_entries(0, 100).unwrap();
    assert_eq!(entries.len(), 9);
    let k = keys(3);
    let g = group(&k);
    assert!(entries[0].session_id.is_none() && entries[0].group_id.is_none());
    assert_eq!(entries[0].signer, Some(k[0].public_key().serialize()));
    for e in entries[1..7].iter().chain(&entries[8..]) {
        assert_eq!(e.session_id, Some(session(7)), "{:?}", e.event);
        assert_eq!(e.group_id, Some(g.id().0), "{:?}", e.event);
    }
    let blamed = entries
        .iter()
        .find(|e| matches!(e.event, AuditEvent::Blamed { .. }))
        .unwrap();
    assert_eq!(blamed.signer, Some(k[2].public_key().serialize()));
    let AuditEvent::Blamed { evidence_id, .. } = blamed.event else {
        unreachable!()
    };
    let evidence = f.store.evidence(&evidence_id).unwrap().expect("stored");
    assert_eq!(evidence.decode().unwrap().envelopes.len(), 2);
    assert_eq!(
        f.store
            .evidence_against(&k[2].public_key().serialize())
            .unwrap()
            .len(),
        1
    );
    assert_eq!(f.store.session_audit(&session(7)).unwrap().len(), 7);
    for pair in entries.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
}

mod property {
    use super::*;
    use proptest::prelude::*;

    fn event() -> impl Strategy<Value = AuditEvent> {
        let id = any::<[u8; 32]>();
        let key = any::<[u8; 32]>().prop_map(|b| {
            let mut k = [2u8; 33];
            k[1..].copy_from_slice(&b);
            k
        });
        prop_oneof![
            (id, any::<u32>()).prop_map(|(session_id, attempt)| AuditEvent::AttemptStarted {
                session_id,
                attempt
            }),
            (id, id).prop_map(|(session_id, digest)| AuditEvent::Approved { session_id, digest }),
            (id, any::<u16>(), key.clone(), ".{0,40}").prop_map(
                |(session_id, member, signer, reason)| AuditEvent::Rejected {
                    session_id,
                    member,
                    signer,
                    reason
                }
            ),
            (key.clone(), "\\PC{0,30}")
                .prop_map(|(signer, reason)| AuditEvent::Blacklisted { signer, reason }),
            key.prop_map(|public_key| AuditEvent::Key {
                action: KeyAction::BackupConfirmed,
                public_key
            }),
            (id, id).prop_map(|(session_id, txid)| AuditEvent::Broadcast { session_id, txid }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 48,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn appends_verify_and_any_byte_change_is_caught(
            events in proptest::collection::vec((event(), 0u64..1u64 << 50), 1..10),
            row_pick in any::<prop::sample::Index>(),
            column_pick in any::<prop::sample::Index>(),
            byte_pick in any::<prop::sample::Index>(),
        ) {
            let mut f = Fixture::new();
            for (event, time) in &events {
                f.store.append(event, *time).unwrap();
            }
            let summary = f.store.verify_audit().unwrap();
            prop_assert_eq!(summary.entries, events.len() as u64);
            let mut out = Vec::new();
            f.store.export_audit_jsonl(&mut out).unwrap();
            prop_assert_eq!(store::verify_jsonl(&mut out.as_slice()).unwrap(), events.len() as u64);

            let raw = attacker(&f);
            let seq = row_pick.index(events.len()) as i64 + 1;
            let column = COLUMNS[column_pick.index(COLUMNS.len())];
            let original = value(&raw, seq, column);
            let variants = flips(&original);
            let variant = &variants[byte_pick.index(variants.len())];
            let text = matches!(original, Value::Text(_));
            if set(&raw, seq, column, variant, text).is_ok() {
                let b = expect_break(&f.store);
                prop_assert_eq!(b.seq, seq as u64, "{} {:?}", column, b);
            }
        }
    }
}

/// Defect 10: a co-signer that rewrote its log signs a different hash for a position it
/// already showed us; the report names it.
#[test]
fn a_peer_whose_log_was_rewritten_is_named() {
    use protocol::audit_head::SignedHead;
    let mut f = Fixture::new();
    let peer = lotus::PrivateKey::from_bytes(&[0x33; 32]).unwrap();
    let signer = peer.public_key().serialize();
    let first = SignedHead::sign(10, [1; 32], &peer);
    assert!(!f.store.record_peer_head(&signer, &first, 1_000).unwrap());
    assert!(
        !f.store.record_peer_head(&signer, &first, 1_001).unwrap(),
        "idempotent"
    );
    let later = SignedHead::sign(12, [2; 32], &peer);
    assert!(!f.store.record_peer_head(&signer, &later, 2_000).unwrap());
    let rewritten = SignedHead::sign(10, [9; 32], &peer);
    assert!(f
        .store
        .record_peer_head(&signer, &rewritten, 3_000)
        .unwrap());
    let summary = f.store.verify_audit().unwrap();
    assert_eq!(summary.peers.len(), 1);
    assert_eq!(summary.peers[0].latest_seq, 12);
    assert_eq!(summary.peers[0].rewritten_at, vec![10]);
}
