//! Store throughput with fsync on (WAL, `synchronous=FULL`), on the target directory's disk:
//! audit appends and used-nonce registry inserts, one transaction per event as the engine does
//! it, against a batched baseline (many events per transaction) in the same process. After the
//! criterion groups, a direct measurement prints events/s for both and their ratio.
//!
//! `cargo bench -p store --bench throughput`

use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use protocol::session::Durable;
use store::{AuditEvent, Store};

const BATCH: u64 = 256;

fn temp_store() -> (tempfile::TempDir, Store) {
    // The target directory is on the project's disk (not a tmpfs), so fsync costs what it
    // costs on this machine.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let store = Store::open(dir.path().join("bench.sqlite")).expect("open");
    (dir, store)
}

fn event(n: u64) -> AuditEvent {
    let mut session_id = [0u8; 32];
    session_id[..8].copy_from_slice(&n.to_be_bytes());
    AuditEvent::RoundCompleted {
        session_id,
        attempt: (n % 8) as u32,
        phase: store::RoundPhase::Nonces,
    }
}

fn nonce(n: u64) -> Durable {
    let mut session_id = [0u8; 32];
    session_id[..8].copy_from_slice(&n.to_be_bytes());
    let mut nonce_hash = [0xA5u8; 32];
    nonce_hash[..8].copy_from_slice(&n.to_be_bytes());
    Durable::NonceReleased {
        session_id,
        attempt: 0,
        input: 0,
        nonce_hash,
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("store");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));

    group.throughput(Throughput::Elements(1));
    let (_d1, mut audit) = temp_store();
    let mut n = 0u64;
    group.bench_function("audit_append/one_tx_per_event", |b| {
        b.iter(|| {
            n += 1;
            audit.append(&event(n), n).unwrap()
        })
    });
    let (_d2, mut registry) = temp_store();
    let mut m = 0u64;
    group.bench_function("nonce_insert/one_tx_per_event", |b| {
        b.iter(|| {
            m += 1;
            registry.apply(&nonce(m), m).unwrap()
        })
    });

    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("audit_append/batched_256_per_tx", |b| {
        b.iter_batched(
            || {
                n += BATCH;
                n
            },
            |base| {
                audit
                    .batch(|t| {
                        for i in 0..BATCH {
                            t.append(&event(base + i), base)?;
                        }
                        Ok(())
                    })
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.bench_function("nonce_insert/batched_256_per_tx", |b| {
        b.iter_batched(
            || {
                m += BATCH;
                m
            },
            |base| {
                registry
                    .batch(|t| {
                        for i in 0..BATCH {
                            t.apply(&nonce(base + i), base)?;
                        }
                        Ok(())
                    })
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// Events per second: `single` events one transaction each, then `batches` of `BATCH` events.
fn measure(
    single: u64,
    batches: u64,
    mut one: impl FnMut(&mut Store, u64),
    mut many: impl FnMut(&mut Store, u64),
) -> (f64, f64) {
    let (_dir, mut store) = temp_store();
    // Warm up the file (page allocation, WAL creation).
    for i in 0..20 {
        one(&mut store, 10_000_000 + i);
    }
    let start = Instant::now();
    for i in 0..single {
        one(&mut store, i);
    }
    let per_event = single as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    for b in 0..batches {
        many(&mut store, 1_000_000 + b * BATCH);
    }
    let batched = (batches * BATCH) as f64 / start.elapsed().as_secs_f64();
    (per_event, batched)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Interleaved rounds (single, batched, single, batched, …) so disk contention from other
/// processes hits both alike; medians of the rounds are reported.
fn ratio_report(quick: bool) {
    let (single, batches, rounds) = if quick { (20, 2, 1) } else { (1_000, 20, 5) };
    let mut audit = (Vec::new(), Vec::new());
    let mut nonces = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (one, many) = measure(
            single,
            batches,
            |s, n| {
                s.append(&event(n), n).unwrap();
            },
            |s, base| {
                s.batch(|t| {
                    for i in 0..BATCH {
                        t.append(&event(base + i), base)?;
                    }
                    Ok(())
                })
                .unwrap()
            },
        );
        audit.0.push(one);
        audit.1.push(many);
        let (one, many) = measure(
            single,
            batches,
            |s, n| s.apply(&nonce(n), n).unwrap(),
            |s, base| {
                s.batch(|t| {
                    for i in 0..BATCH {
                        t.apply(&nonce(base + i), base)?;
                    }
                    Ok(())
                })
                .unwrap()
            },
        );
        nonces.0.push(one);
        nonces.1.push(many);
    }
    println!(
        "\nstore throughput, fsync on (WAL, synchronous=FULL); medians of {rounds} rounds of \
         {single} single + {batches}x{BATCH} batched events:"
    );
    for (name, (one, many)) in [("audit appends", audit), ("nonce-registry inserts", nonces)] {
        let (lo, hi) = one
            .iter()
            .fold((f64::MAX, 0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let (one, many) = (median(one), median(many));
        println!(
            "  {name:<24} {one:>8.0} events/s one tx per event (range {lo:.0}..{hi:.0}) | \
             {many:>8.0} events/s batched ({BATCH}/tx) | batched/single = {:.0}x",
            many / one
        );
    }
}

criterion_group!(benches, throughput);

fn main() {
    // `cargo test --benches` runs this without `--bench`: criterion then runs each benchmark
    // once as a test; keep the report quick too.
    let quick = !std::env::args().any(|a| a == "--bench");
    benches();
    ratio_report(quick);
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}
