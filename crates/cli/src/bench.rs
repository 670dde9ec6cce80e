//! `lotus-cosigner bench`: our Lotus crypto against libsecp256k1's BIP340/BIP327 in the same
//! process, interleaved, reporting medians and `ratio <name> n=<n> lotus/baseline=<x.xx>`.

use std::time::{Duration, Instant};

use musig::SpendPath;

use crate::workload::{Bip327Flow, LotusFlow, SingleSig, STEPS};

/// Median time per call of `f`, from `rounds` batches each sized to take about `batch`.
fn median_per_call(mut f: impl FnMut(), rounds: usize, batch: Duration) -> Duration {
    // Calibrate: how many calls fill one batch.
    let start = Instant::now();
    f();
    let one = start.elapsed().max(Duration::from_nanos(50));
    let calls = (batch.as_nanos() / one.as_nanos()).clamp(1, 1_000_000) as u32;
    let mut samples: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..calls {
                f();
            }
            start.elapsed() / calls
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

pub struct Options {
    pub sizes: Vec<usize>,
    pub rounds: usize,
    pub batch: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sizes: vec![3, 10, 100],
            rounds: 15,
            batch: Duration::from_millis(20),
        }
    }
}

pub struct Ratio {
    pub name: String,
    pub n: usize,
    pub lotus: Duration,
    pub baseline: Duration,
}

impl Ratio {
    pub fn value(&self) -> f64 {
        self.lotus.as_secs_f64() / self.baseline.as_secs_f64()
    }
}

fn micros(d: Duration) -> String {
    format!("{:.1}µs", d.as_secs_f64() * 1e6)
}

/// Runs every case, printing as it goes; returns the ratios.
pub fn run(options: &Options, out: &mut impl std::io::Write) -> std::io::Result<Vec<Ratio>> {
    let mut ratios = Vec::new();
    let single = SingleSig::new();
    writeln!(
        out,
        "Lotus Schnorr vs libsecp256k1 BIP340 (medians per call)"
    )?;
    for (name, lotus, baseline) in [
        (
            "schnorr_sign",
            &SingleSig::lotus_sign as &dyn Fn(&SingleSig),
            &SingleSig::bip340_sign as &dyn Fn(&SingleSig),
        ),
        (
            "schnorr_verify",
            &SingleSig::lotus_verify,
            &SingleSig::bip340_verify,
        ),
    ] {
        let l = median_per_call(|| lotus(&single), options.rounds, options.batch);
        let b = median_per_call(|| baseline(&single), options.rounds, options.batch);
        writeln!(
            out,
            "  {name:<16} lotus {:>10}  bip340 {:>10}",
            micros(l),
            micros(b)
        )?;
        ratios.push(Ratio {
            name: name.to_string(),
            n: 1,
            lotus: l,
            baseline: b,
        });
    }

    for (label, path) in [
        ("musig2_session", SpendPath::Plain),
        ("musig2_taproot_session", SpendPath::TaprootKeyPath),
    ] {
        for &n in &options.sizes {
            writeln!(
                out,
                "{label} n={n}: one signer's crypto, Lotus MuSig2 vs libsecp256k1 BIP327"
            )?;
            let lotus = LotusFlow::new(n, path);
            let baseline = Bip327Flow::new(n);
            let (mut lotus_total, mut baseline_total) = (Duration::ZERO, Duration::ZERO);
            for (step, step_name) in STEPS.iter().enumerate() {
                let l = median_per_call(|| lotus.run_step(step), options.rounds, options.batch);
                let b = median_per_call(|| baseline.run_step(step), options.rounds, options.batch);
                writeln!(
                    out,
                    "  {step_name:<32} lotus {:>10}  bip327 {:>10}  {:.2}",
                    micros(l),
                    micros(b),
                    l.as_secs_f64() / b.as_secs_f64()
                )?;
                lotus_total += l;
                baseline_total += b;
            }
            writeln!(
                out,
                "  {:<32} lotus {:>10}  bip327 {:>10}",
                "total",
                micros(lotus_total),
                micros(baseline_total)
            )?;
            ratios.push(Ratio {
                name: label.to_string(),
                n,
                lotus: lotus_total,
                baseline: baseline_total,
            });
        }
    }
    writeln!(out)?;
    for ratio in &ratios {
        writeln!(
            out,
            "ratio {} n={} lotus/baseline={:.2}",
            ratio.name,
            ratio.n,
            ratio.value()
        )?;
    }
    Ok(ratios)
}
