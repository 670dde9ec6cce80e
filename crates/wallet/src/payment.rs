//! A payment from the group: recipients and amounts in, an unsigned transaction (with the
//! outputs it spends) out, or an error that says what is wrong and by how much.

use lotus::policy::{
    classify, dust_threshold, DEFAULT_RELAY_FEE_PER_KB, MAX_AMOUNT, MAX_STANDARD_TX_SIZE,
};

/// The highest fee rate accepted: 10 XPI per kB, ten thousand times the relay floor.
pub const MAX_FEE_RATE_PER_KB: i64 = 10_000_000;
use lotus::script::Script;
use lotus::tx::{Transaction, TxIn, TxOut};

use crate::select::{fee_for, select, settle, Coin, Selection};
use crate::size::transaction_size;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amount {
    Sats(i64),
    /// Everything the eligible coins hold, minus the other recipients and the fee.
    Everything,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub script: Script,
    pub amount: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    pub recipients: Vec<Recipient>,
    /// Satoshis per 1000 bytes; at least the relay floor.
    pub fee_rate_per_kb: i64,
    /// The group's own script: change goes back to the group.
    pub change_script: Script,
    /// Spend coins still in the mempool too.
    pub allow_unconfirmed: bool,
}

/// The unsigned payment a proposal carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub tx: Transaction,
    /// `spent_outputs[i]` is what input `i` spends (signatures commit to all of them).
    pub spent_outputs: Vec<TxOut>,
    pub fee: i64,
    /// The index of the change output, if there is one.
    pub change_index: Option<usize>,
    /// The size once signed, in bytes (exact).
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("a payment needs at least one recipient")]
    NoRecipients,
    #[error("recipient {index}: the amount must be more than zero")]
    NotPositive { index: usize },
    #[error("recipient {index}: {amount} satoshis is dust; nodes refuse outputs below {threshold} satoshis")]
    Dust {
        index: usize,
        amount: i64,
        threshold: i64,
    },
    #[error("recipient {index}: the address's script is not one nodes relay")]
    NonStandardScript { index: usize },
    #[error("only one recipient can receive \"everything\"")]
    SeveralEverything,
    #[error("the fee rate {rate} sat/kB is below the relay floor of {floor} sat/kB; nodes would not relay it")]
    FeeRateBelowFloor { rate: i64, floor: i64 },
    #[error("the fee rate {rate} sat/kB is above {max} sat/kB; that is surely a typo (1000 is the usual rate)")]
    FeeRateTooHigh { rate: i64, max: i64 },
    #[error("recipient {index}: {amount} satoshis is more than any payment can carry")]
    AmountTooLarge { index: usize, amount: i64 },
    #[error(
        "not enough funds: the payment needs {needed} satoshis with its fee, the group has {available} \
         spendable{}",
        if *unconfirmed > 0 { format!(" (plus {unconfirmed} unconfirmed, not used)") } else { String::new() }
    )]
    Insufficient {
        needed: i64,
        available: i64,
        unconfirmed: i64,
    },
    #[error("the transaction would be {size} bytes, above the {max}-byte standard limit; send less or consolidate coins first")]
    TooLarge { size: usize, max: usize },
}

pub fn build_payment(request: &PaymentRequest, coins: &[Coin]) -> Result<Payment, PaymentError> {
    check_request(request)?;
    let (eligible, excluded): (Vec<Coin>, Vec<Coin>) = coins
        .iter()
        .filter(|c| (1..=MAX_AMOUNT).contains(&c.output.value))
        .cloned()
        .partition(|c| c.confirmed || request.allow_unconfirmed);
    let available: i64 = saturating_sum(eligible.iter().map(|c| c.output.value));
    let unconfirmed: i64 = saturating_sum(excluded.iter().map(|c| c.output.value));
    let fixed: Vec<TxOut> = request
        .recipients
        .iter()
        .filter_map(|r| match r.amount {
            Amount::Sats(v) => Some(TxOut::new(v, r.script.clone())),
            Amount::Everything => None,
        })
        .collect();
    let everything = request
        .recipients
        .iter()
        .position(|r| r.amount == Amount::Everything);
    let insufficient = |outputs: &[TxOut], coins: &[Coin]| {
        let kinds: Vec<_> = coins.iter().map(|c| c.kind).collect();
        PaymentError::Insufficient {
            needed: saturating_sum(outputs.iter().map(|o| o.value))
                + fee_for(transaction_size(&kinds, outputs), request.fee_rate_per_kb),
            available,
            unconfirmed,
        }
    };

    let (selection, outputs) = match everything {
        None => {
            let selection = select(
                &eligible,
                &fixed,
                &request.change_script,
                request.fee_rate_per_kb,
            )
            .ok_or_else(|| insufficient(&fixed, &eligible))?;
            (selection, in_request_order(request, &fixed, None))
        }
        Some(index) => {
            // Spend every eligible coin; the "everything" recipient takes what is left.
            let script = &request.recipients[index].script;
            let mut outputs = fixed.clone();
            outputs.push(TxOut::new(0, script.clone()));
            let kinds: Vec<_> = eligible.iter().map(|c| c.kind).collect();
            let fee = fee_for(transaction_size(&kinds, &outputs), request.fee_rate_per_kb);
            let rest = available
                .saturating_sub(saturating_sum(fixed.iter().map(|o| o.value)))
                .saturating_sub(fee);
            let last = TxOut::new(rest, script.clone());
            let threshold = dust_threshold(&last, DEFAULT_RELAY_FEE_PER_KB);
            if rest < threshold.max(1) {
                let mut needed = insufficient(&outputs, &eligible);
                if let PaymentError::Insufficient { needed: n, .. } = &mut needed {
                    *n += threshold.max(1);
                }
                return Err(needed);
            }
            if rest > MAX_AMOUNT || available == i64::MAX {
                return Err(PaymentError::AmountTooLarge {
                    index,
                    amount: rest,
                });
            }
            let selection = settle(
                &eligible,
                &[fixed.clone(), vec![last.clone()]].concat(),
                script,
                request.fee_rate_per_kb,
            )
            .ok_or(PaymentError::AmountTooLarge {
                index,
                amount: rest,
            })?;
            (
                Selection {
                    change: None,
                    ..selection
                },
                in_request_order(request, &fixed, Some(last)),
            )
        }
    };
    if selection.size > MAX_STANDARD_TX_SIZE {
        return Err(PaymentError::TooLarge {
            size: selection.size,
            max: MAX_STANDARD_TX_SIZE,
        });
    }
    Ok(assemble(selection, outputs, &request.change_script))
}

fn check_request(request: &PaymentRequest) -> Result<(), PaymentError> {
    if request.recipients.is_empty() {
        return Err(PaymentError::NoRecipients);
    }
    if request.fee_rate_per_kb > MAX_FEE_RATE_PER_KB {
        return Err(PaymentError::FeeRateTooHigh {
            rate: request.fee_rate_per_kb,
            max: MAX_FEE_RATE_PER_KB,
        });
    }
    if request.fee_rate_per_kb < DEFAULT_RELAY_FEE_PER_KB {
        return Err(PaymentError::FeeRateBelowFloor {
            rate: request.fee_rate_per_kb,
            floor: DEFAULT_RELAY_FEE_PER_KB,
        });
    }
    let mut everything = 0;
    for (index, recipient) in request.recipients.iter().enumerate() {
        if classify(&recipient.script).is_none() {
            return Err(PaymentError::NonStandardScript { index });
        }
        match recipient.amount {
            Amount::Everything => everything += 1,
            Amount::Sats(amount) if amount <= 0 => return Err(PaymentError::NotPositive { index }),
            Amount::Sats(amount) if amount > MAX_AMOUNT => {
                return Err(PaymentError::AmountTooLarge { index, amount })
            }
            Amount::Sats(amount) => {
                let threshold = dust_threshold(
                    &TxOut::new(amount, recipient.script.clone()),
                    DEFAULT_RELAY_FEE_PER_KB,
                );
                if amount < threshold {
                    return Err(PaymentError::Dust {
                        index,
                        amount,
                        threshold,
                    });
                }
            }
        }
    }
    if everything > 1 {
        return Err(PaymentError::SeveralEverything);
    }
    Ok(())
}

/// The recipients' outputs in the order they were asked for.
fn in_request_order(
    request: &PaymentRequest,
    fixed: &[TxOut],
    everything: Option<TxOut>,
) -> Vec<TxOut> {
    let mut fixed = fixed.iter();
    request
        .recipients
        .iter()
        .map(|r| match r.amount {
            Amount::Sats(_) => fixed
                .next()
                .expect("one fixed output per fixed recipient")
                .clone(),
            Amount::Everything => everything.clone().expect("the everything output"),
        })
        .collect()
}

fn assemble(selection: Selection, mut outputs: Vec<TxOut>, change_script: &Script) -> Payment {
    let mut coins = selection.coins;
    coins.sort_by_key(|c| c.outpoint);
    let change_index = selection.change.map(|value| {
        outputs.push(TxOut::new(value, change_script.clone()));
        outputs.len() - 1
    });
    Payment {
        tx: Transaction {
            version: 2,
            inputs: coins
                .iter()
                .map(|c| TxIn {
                    prev_out: c.outpoint,
                    script_sig: Script::new(),
                    sequence: TxIn::SEQUENCE_FINAL,
                })
                .collect(),
            outputs,
            lock_time: 0,
        },
        spent_outputs: coins.iter().map(|c| c.output.clone()).collect(),
        fee: selection.fee,
        change_index,
        size: selection.size,
    }
}

fn saturating_sum(values: impl Iterator<Item = i64>) -> i64 {
    values.fold(0i64, |a, b| a.saturating_add(b))
}
