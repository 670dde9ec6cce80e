//! Criterion benches: Lotus Schnorr vs BIP340 and one signer's MuSig2 session steps vs BIP327.
//! `lotus-cosigner bench` prints the same comparisons as ratios.

use cli::workload::{Bip327Flow, LotusFlow, SingleSig, STEPS};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use musig::SpendPath;

fn single_signature(c: &mut Criterion) {
    let single = SingleSig::new();
    let mut group = c.benchmark_group("schnorr");
    group.bench_function("lotus_sign", |b| b.iter(|| single.lotus_sign()));
    group.bench_function("bip340_sign", |b| b.iter(|| single.bip340_sign()));
    group.bench_function("lotus_verify", |b| b.iter(|| single.lotus_verify()));
    group.bench_function("bip340_verify", |b| b.iter(|| single.bip340_verify()));
    group.finish();
}

fn session(c: &mut Criterion) {
    for n in [3usize, 10, 100] {
        let lotus = LotusFlow::new(n, SpendPath::TaprootKeyPath);
        let baseline = Bip327Flow::new(n);
        let mut group = c.benchmark_group(format!("musig2_session_n{n}"));
        group.sample_size(20);
        group.bench_function(BenchmarkId::new("lotus", "all steps"), |b| {
            b.iter(|| (0..STEPS.len()).for_each(|s| lotus.run_step(s)))
        });
        group.bench_function(BenchmarkId::new("bip327", "all steps"), |b| {
            b.iter(|| (0..STEPS.len()).for_each(|s| baseline.run_step(s)))
        });
        group.finish();
    }
}

criterion_group!(benches, single_signature, session);
criterion_main!(benches);
