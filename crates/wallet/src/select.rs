//! Coin selection: branch and bound for a changeless match (Bitcoin Core's algorithm, bounded
//! work), else the smallest single coin that covers the payment with change, else the
//! largest coins first.
//!
//! Values inside the search are in milli-satoshis (satoshis × 1000) so that a fee rate per kB
//! times a size in bytes is exact.

use lotus::policy::dust_threshold;
use lotus::script::Script;
use lotus::tx::{OutPoint, TxOut};

use crate::size::{compact_size_len, input_size, output_size, transaction_size};

/// How a coin is spent, which fixes its signed input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpendKind {
    P2pkh,
    TaprootKeyPath,
}

impl SpendKind {
    /// The kind that spends `script`, if the group wallet can spend it at all.
    pub fn of(script: &Script) -> Option<Self> {
        if script.as_p2pkh().is_some() {
            Some(Self::P2pkh)
        } else if script.as_taproot().is_some() {
            Some(Self::TaprootKeyPath)
        } else {
            None
        }
    }
}

/// A spendable output of the group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coin {
    pub outpoint: OutPoint,
    pub output: TxOut,
    pub kind: SpendKind,
    pub confirmed: bool,
}

/// What the selection settled on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub coins: Vec<Coin>,
    /// The change value, if a change output is worth having (never dust).
    pub change: Option<i64>,
    pub fee: i64,
    /// The signed transaction's size in bytes.
    pub size: usize,
}

/// The fee for `size` bytes at `fee_rate_per_kb`, rounded up: never below the node's floor.
pub fn fee_for(size: usize, fee_rate_per_kb: i64) -> i64 {
    (size as i64 * fee_rate_per_kb + 999) / 1000
}

/// Settles fee and change for spending exactly `coins` to `outputs`; `None` if they do not
/// cover the outputs and the fee.
pub fn settle(
    coins: &[Coin],
    outputs: &[TxOut],
    change_script: &Script,
    fee_rate_per_kb: i64,
) -> Option<Selection> {
    let kinds: Vec<SpendKind> = coins.iter().map(|c| c.kind).collect();
    // Sums in i128: hundreds of coins near the largest amount would overflow i64.
    let value_in: i128 = coins.iter().map(|c| i128::from(c.output.value)).sum();
    let value_out: i128 = outputs.iter().map(|o| i128::from(o.value)).sum();
    let size_without = transaction_size(&kinds, outputs);
    let fee_without = fee_for(size_without, fee_rate_per_kb);
    if value_in < value_out + i128::from(fee_without) {
        return None;
    }
    let mut with_change = outputs.to_vec();
    with_change.push(TxOut::new(0, change_script.clone()));
    let size_with = transaction_size(&kinds, &with_change);
    let fee_with = fee_for(size_with, fee_rate_per_kb);
    let change = i64::try_from(value_in - value_out - i128::from(fee_with))
        .ok()
        .filter(|c| *c <= lotus::policy::MAX_AMOUNT)?;
    let value_in = i64::try_from(value_in).ok()?;
    let value_out = i64::try_from(value_out).ok()?;
    let change_output = TxOut::new(change, change_script.clone());
    Some(
        if change > 0
            && change >= dust_threshold(&change_output, lotus::policy::DEFAULT_RELAY_FEE_PER_KB)
        {
            Selection {
                coins: coins.to_vec(),
                change: Some(change),
                fee: fee_with,
                size: size_with,
            }
        } else {
            Selection {
                coins: coins.to_vec(),
                change: None,
                fee: value_in - value_out,
                size: size_without,
            }
        },
    )
}

/// The most branches branch and bound explores before giving up (Core uses 100,000).
const BNB_MAX_TRIES: usize = 100_000;

/// Picks coins paying `outputs` plus fee at `fee_rate_per_kb`, change to `change_script`.
/// `None`: the coins do not cover it.
pub fn select(
    coins: &[Coin],
    outputs: &[TxOut],
    change_script: &Script,
    fee_rate_per_kb: i64,
) -> Option<Selection> {
    if let Some(exact) = branch_and_bound(coins, outputs, change_script, fee_rate_per_kb) {
        return Some(exact);
    }
    // The smallest single coin that pays with a change output.
    let mut by_value: Vec<&Coin> = coins.iter().collect();
    by_value.sort_by_key(|c| (c.output.value, c.outpoint));
    for coin in &by_value {
        if let Some(s) = settle(
            std::slice::from_ref(*coin),
            outputs,
            change_script,
            fee_rate_per_kb,
        ) {
            if s.change.is_some() {
                return Some(s);
            }
        }
    }
    // Largest first until it pays. The running sum decides when a full settle is worth
    // trying, so many small coins cost linear time, not quadratic.
    let value_out: i128 = outputs.iter().map(|o| i128::from(o.value)).sum();
    let without_inputs = transaction_size(&[], outputs) - compact_size_len(0);
    let mut chosen: Vec<Coin> = Vec::new();
    let mut running_in: i128 = 0;
    let mut input_bytes = 0usize;
    for coin in by_value.iter().rev() {
        chosen.push((*coin).clone());
        running_in += i128::from(coin.output.value);
        input_bytes += input_size(coin.kind);
        let size = without_inputs + compact_size_len(chosen.len()) + input_bytes;
        let floor = value_out + i128::from(fee_for(size, fee_rate_per_kb));
        if running_in < floor {
            continue;
        }
        if let Some(s) = settle(&chosen, outputs, change_script, fee_rate_per_kb) {
            return Some(s);
        }
    }
    None
}

fn branch_and_bound(
    coins: &[Coin],
    outputs: &[TxOut],
    change_script: &Script,
    fee_rate_per_kb: i64,
) -> Option<Selection> {
    let rate = i128::from(fee_rate_per_kb);
    let value_out: i64 = outputs.iter().map(|o| o.value).sum();
    let target = i128::from(value_out) * 1000 + transaction_size(&[], outputs) as i128 * rate;
    let change_output = TxOut::new(0, change_script.clone());
    let change_kind = SpendKind::of(change_script).unwrap_or(SpendKind::P2pkh);
    let cost_of_change = (output_size(&change_output) + input_size(change_kind)) as i128 * rate;
    let mut pool: Vec<(i128, &Coin)> = coins
        .iter()
        .map(|c| {
            (
                i128::from(c.output.value) * 1000 - input_size(c.kind) as i128 * rate,
                c,
            )
        })
        .filter(|(effective, _)| *effective > 0)
        .collect();
    pool.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.outpoint.cmp(&b.1.outpoint)));
    pool.truncate(BNB_MAX_COINS);
    let remaining: i128 = pool.iter().map(|(e, _)| e).sum();
    if remaining < target {
        return None;
    }
    let values: Vec<i128> = pool.iter().map(|(e, _)| *e).collect();
    let mut search = Search {
        values: &values,
        target,
        window: cost_of_change,
        chosen: Vec::new(),
        best: None,
        tries: 0,
    };
    search.explore(0, 0, remaining);
    let (_, picked) = search.best?;
    let chosen: Vec<Coin> = picked.iter().map(|&i| pool[i].1.clone()).collect();
    settle(&chosen, outputs, change_script, fee_rate_per_kb)
}

/// The most coins branch and bound considers (the largest ones); deeper searches would not
/// finish within [`BNB_MAX_TRIES`] anyway.
const BNB_MAX_COINS: usize = 1_000;

/// Depth-first over include/exclude, largest coins first, keeping the least excess within
/// `[target, target + window]`.
struct Search<'a> {
    values: &'a [i128],
    target: i128,
    window: i128,
    chosen: Vec<usize>,
    best: Option<(i128, Vec<usize>)>,
    tries: usize,
}

impl Search<'_> {
    fn explore(&mut self, index: usize, current: i128, remaining: i128) {
        if self.tries >= BNB_MAX_TRIES || current > self.target + self.window {
            return;
        }
        self.tries += 1;
        if current >= self.target {
            let excess = current - self.target;
            if self.best.as_ref().is_none_or(|(b, _)| excess < *b) {
                self.best = Some((excess, self.chosen.clone()));
            }
            return;
        }
        if index == self.values.len() || current + remaining < self.target {
            return;
        }
        let value = self.values[index];
        self.chosen.push(index);
        self.explore(index + 1, current + value, remaining - value);
        self.chosen.pop();
        self.explore(index + 1, current, remaining - value);
    }
}
