//! Properties of coin selection and change over random wallets: never spends more than it has
//! or coins it may not use, pays every recipient exactly, the fee is at least the node's floor
//! for the exact signed size and never wastes more than a change output would have cost, no
//! change is dust, and "not enough funds" is only said when it is true.

use lotus::policy::{check_standard, dust_threshold, fee_for_size, DEFAULT_RELAY_FEE_PER_KB};
use lotus::script::Script;
use lotus::tx::{OutPoint, TxId, TxOut};
use proptest::prelude::*;
use wallet::select::{fee_for, settle};
use wallet::size::output_size;
use wallet::{build_payment, Amount, Coin, PaymentError, PaymentRequest, Recipient, SpendKind};

fn p2pkh(seed: u8) -> Script {
    Script::p2pkh(&[seed; 20])
}

fn taproot(seed: u8) -> Script {
    let key = lotus::key::PrivateKey::from_bytes(&[seed.max(1); 32]).unwrap();
    Script::taproot_key_path(&key.public_key(), None)
}

fn group_script(taproot_group: bool) -> Script {
    if taproot_group {
        taproot(200)
    } else {
        p2pkh(200)
    }
}

prop_compose! {
    fn coins(taproot_group: bool)(values in prop::collection::vec((546i64..5_000_000_000, any::<bool>()), 0..25)) -> Vec<Coin> {
        values.into_iter().enumerate().map(|(i, (value, confirmed))| {
            let script = group_script(taproot_group);
            Coin {
                outpoint: OutPoint::new(TxId([i as u8 + 1; 32]), i as u32),
                kind: SpendKind::of(&script).unwrap(),
                output: TxOut::new(value, script),
                confirmed,
            }
        }).collect()
    }
}

prop_compose! {
    fn recipients()(amounts in prop::collection::vec((546i64..2_000_000_000, 0u8..3), 1..4)) -> Vec<Recipient> {
        amounts.into_iter().enumerate().map(|(i, (amount, kind))| Recipient {
            script: match kind { 0 => p2pkh(i as u8 + 1), 1 => taproot(i as u8 + 1), _ => Script::p2sh(&[i as u8; 20]) },
            amount: Amount::Sats(amount),
        }).collect()
    }
}

/// The transaction with placeholder signatures of the exact signed shape.
fn signed_shape(payment: &wallet::Payment) -> lotus::tx::Transaction {
    let mut tx = payment.tx.clone();
    for (input, spent) in tx.inputs.iter_mut().zip(&payment.spent_outputs) {
        input.script_sig = match SpendKind::of(&spent.script_pubkey).unwrap() {
            SpendKind::P2pkh => Script::new().push_slice(&[7; 65]).push_slice(&[2; 33]),
            SpendKind::TaprootKeyPath => Script::new().push_slice(&[7; 65]),
        };
    }
    tx
}

fn check_payment(
    request: &PaymentRequest,
    coins: &[Coin],
    payment: &wallet::Payment,
) -> Result<(), TestCaseError> {
    let rate = request.fee_rate_per_kb;
    // Only coins it may use, each once.
    let mut seen = std::collections::HashSet::new();
    for (input, spent) in payment.tx.inputs.iter().zip(&payment.spent_outputs) {
        let coin = coins
            .iter()
            .find(|c| c.outpoint == input.prev_out)
            .expect("an input is one of the coins");
        prop_assert!(
            coin.confirmed || request.allow_unconfirmed,
            "unconfirmed coin used"
        );
        prop_assert_eq!(&coin.output, spent);
        prop_assert!(seen.insert(input.prev_out), "coin spent twice");
    }
    // Value is conserved: in = out + fee.
    let value_in: i64 = payment.spent_outputs.iter().map(|o| o.value).sum();
    let value_out: i64 = payment.tx.outputs.iter().map(|o| o.value).sum();
    prop_assert_eq!(value_in, value_out + payment.fee);
    prop_assert!(value_in <= coins.iter().map(|c| c.output.value).sum::<i64>());
    // The size is exact, the fee covers the node's floor and the asked rate.
    let shaped = signed_shape(payment);
    prop_assert_eq!(shaped.serialized_size(), payment.size);
    prop_assert!(payment.fee >= fee_for(payment.size, rate));
    prop_assert!(payment.fee >= fee_for_size(payment.size, DEFAULT_RELAY_FEE_PER_KB));
    // No more waste than a change output would have cost.
    let change_out = TxOut::new(0, request.change_script.clone());
    let waste_bound = dust_threshold(&change_out, DEFAULT_RELAY_FEE_PER_KB)
        + fee_for(output_size(&change_out), rate)
        + 1;
    prop_assert!(
        payment.fee - fee_for(payment.size, rate) <= waste_bound,
        "fee {} for {} bytes",
        payment.fee,
        payment.size
    );
    // Recipients exactly as asked, in order; change back to the group and never dust.
    for (recipient, output) in request.recipients.iter().zip(&payment.tx.outputs) {
        prop_assert_eq!(&recipient.script, &output.script_pubkey);
        if let Amount::Sats(v) = recipient.amount {
            prop_assert_eq!(v, output.value);
        }
    }
    match payment.change_index {
        Some(i) => {
            prop_assert_eq!(i, request.recipients.len());
            let change = &payment.tx.outputs[i];
            prop_assert_eq!(&change.script_pubkey, &request.change_script);
            prop_assert!(
                change.value >= dust_threshold(change, DEFAULT_RELAY_FEE_PER_KB),
                "dust change {}",
                change.value
            );
        }
        None => prop_assert_eq!(payment.tx.outputs.len(), request.recipients.len()),
    }
    prop_assert_eq!(check_standard(&shaped), Ok(()));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn selection_never_overspends_pays_exactly_and_leaves_no_dust(
        taproot_group in any::<bool>(),
        coins in any::<bool>().prop_flat_map(coins),
        recipients in recipients(),
        rate in 1_000i64..50_000,
        allow_unconfirmed in any::<bool>(),
    ) {
        let request = PaymentRequest { recipients, fee_rate_per_kb: rate, change_script: group_script(taproot_group), allow_unconfirmed };
        match build_payment(&request, &coins) {
            Ok(payment) => check_payment(&request, &coins, &payment)?,
            Err(PaymentError::Insufficient { available, .. }) => {
                // True only if even every usable coin cannot pay.
                let usable: Vec<Coin> = coins.iter().filter(|c| c.confirmed || allow_unconfirmed).cloned().collect();
                prop_assert_eq!(available, usable.iter().map(|c| c.output.value).sum::<i64>());
                let outputs: Vec<TxOut> = request.recipients.iter().map(|r| match r.amount { Amount::Sats(v) => TxOut::new(v, r.script.clone()), Amount::Everything => unreachable!() }).collect();
                prop_assert!(settle(&usable, &outputs, &request.change_script, rate).is_none(), "said insufficient but all coins pay");
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }

    #[test]
    fn sending_everything_empties_the_usable_coins(
        coins in coins(false),
        rate in 1_000i64..20_000,
        first in 546i64..1_000_000,
    ) {
        let request = PaymentRequest {
            recipients: vec![
                Recipient { script: p2pkh(1), amount: Amount::Sats(first) },
                Recipient { script: p2pkh(2), amount: Amount::Everything },
            ],
            fee_rate_per_kb: rate,
            change_script: group_script(false),
            allow_unconfirmed: true,
        };
        match build_payment(&request, &coins) {
            Ok(payment) => {
                check_payment(&request, &coins, &payment)?;
                prop_assert_eq!(payment.tx.inputs.len(), coins.len());
                prop_assert_eq!(payment.change_index, None);
                prop_assert_eq!(payment.fee, fee_for(payment.size, rate), "everything pays exactly the fee");
            }
            Err(PaymentError::Insufficient { .. }) => {
                // True only if what would be left for "everything" is dust or less.
                let total: i64 = coins.iter().map(|c| c.output.value).sum();
                let kinds: Vec<_> = coins.iter().map(|c| c.kind).collect();
                let outputs = [TxOut::new(first, p2pkh(1)), TxOut::new(0, p2pkh(2))];
                let fee = fee_for(wallet::size::transaction_size(&kinds, &outputs), rate);
                prop_assert!(total - first - fee < 546, "total {total} leaves {} after the fee", total - first - fee);
            }
            Err(other) => prop_assert!(false, "unexpected error {other}"),
        }
    }
}

proptest! {
    /// Change right around the dust line: below it the change goes to the fee, never into a
    /// dust output.
    #[test]
    fn change_near_the_dust_line_is_never_dust(amount in 546i64..10_000_000, rate in 1_000i64..5_000, delta in 0i64..2_000) {
        // One P2PKH input, recipient + change: 10 + 141 + 2 × 34 = 219 bytes.
        let value = amount + fee_for(219, rate) + delta;
        let coins = [Coin { outpoint: OutPoint::new(TxId([1; 32]), 0), output: TxOut::new(value, p2pkh(200)), kind: SpendKind::P2pkh, confirmed: true }];
        let request = PaymentRequest {
            recipients: vec![Recipient { script: p2pkh(1), amount: Amount::Sats(amount) }],
            fee_rate_per_kb: rate,
            change_script: p2pkh(200),
            allow_unconfirmed: false,
        };
        let payment = build_payment(&request, &coins).unwrap();
        check_payment(&request, &coins, &payment)?;
        prop_assert_eq!(payment.change_index.is_some(), delta >= 546);
    }
}

#[test]
fn bad_requests_say_what_is_wrong() {
    let coin = Coin {
        outpoint: OutPoint::new(TxId([1; 32]), 0),
        output: TxOut::new(10_000_000, p2pkh(200)),
        kind: SpendKind::P2pkh,
        confirmed: false,
    };
    let request = |recipients, rate, allow_unconfirmed| PaymentRequest {
        recipients,
        fee_rate_per_kb: rate,
        change_script: p2pkh(200),
        allow_unconfirmed,
    };
    let pay = |amount| {
        vec![Recipient {
            script: p2pkh(1),
            amount,
        }]
    };
    assert_eq!(
        build_payment(&request(vec![], 1000, true), std::slice::from_ref(&coin)),
        Err(PaymentError::NoRecipients)
    );
    assert_eq!(
        build_payment(
            &request(pay(Amount::Sats(0)), 1000, true),
            std::slice::from_ref(&coin)
        ),
        Err(PaymentError::NotPositive { index: 0 })
    );
    assert_eq!(
        build_payment(
            &request(pay(Amount::Sats(545)), 1000, true),
            std::slice::from_ref(&coin)
        ),
        Err(PaymentError::Dust {
            index: 0,
            amount: 545,
            threshold: 546
        })
    );
    assert!(matches!(
        build_payment(
            &request(pay(Amount::Sats(5_000)), 999, true),
            std::slice::from_ref(&coin)
        ),
        Err(PaymentError::FeeRateBelowFloor { .. })
    ));
    let unconfirmed_only = build_payment(
        &request(pay(Amount::Sats(5_000)), 1000, false),
        std::slice::from_ref(&coin),
    )
    .unwrap_err();
    assert_eq!(
        unconfirmed_only,
        PaymentError::Insufficient {
            needed: 5_000 + fee_for(10 + 34, 1000),
            available: 0,
            unconfirmed: 10_000_000
        }
    );
    assert!(
        unconfirmed_only
            .to_string()
            .contains("plus 10000000 unconfirmed"),
        "{unconfirmed_only}"
    );
    let nonstandard = vec![Recipient {
        script: Script::from_bytes(vec![0x51]),
        amount: Amount::Sats(5_000),
    }];
    assert_eq!(
        build_payment(
            &request(nonstandard, 1000, true),
            std::slice::from_ref(&coin)
        ),
        Err(PaymentError::NonStandardScript { index: 0 })
    );
}

#[test]
fn branch_and_bound_finds_the_changeless_match_a_single_big_coin_would_miss() {
    let coin = |i: u8, value| Coin {
        outpoint: OutPoint::new(TxId([i; 32]), 0),
        output: TxOut::new(value, p2pkh(200)),
        kind: SpendKind::P2pkh,
        confirmed: true,
    };
    // Two P2PKH inputs (141 bytes each) + one P2PKH output (34) + 10 = 326 bytes: 326 sats.
    let coins = [coin(1, 600_000), coin(2, 400_326), coin(3, 50_000_000)];
    let request = PaymentRequest {
        recipients: vec![Recipient {
            script: p2pkh(1),
            amount: Amount::Sats(1_000_000),
        }],
        fee_rate_per_kb: 1_000,
        change_script: p2pkh(200),
        allow_unconfirmed: false,
    };
    let payment = build_payment(&request, &coins).unwrap();
    assert_eq!(payment.change_index, None);
    assert_eq!((payment.size, payment.fee), (326, 326));
    assert_eq!(payment.tx.inputs.len(), 2);
}

/// Absurd but possible inputs (a typo, a lying chain backend) are errors, never a panic or an
/// overflow.
#[test]
fn absurd_inputs_are_errors_not_panics() {
    let coin = |i: u32, value| Coin {
        outpoint: OutPoint::new(TxId([9; 32]), i),
        output: TxOut::new(value, p2pkh(200)),
        kind: SpendKind::P2pkh,
        confirmed: true,
    };
    let request = |amount, rate| PaymentRequest {
        recipients: vec![Recipient {
            script: p2pkh(1),
            amount,
        }],
        fee_rate_per_kb: rate,
        change_script: p2pkh(200),
        allow_unconfirmed: false,
    };
    let some = [coin(0, 10_000_000)];
    assert!(matches!(
        build_payment(&request(Amount::Sats(5_000), i64::MAX / 10), &some),
        Err(PaymentError::FeeRateTooHigh { .. })
    ));
    assert!(matches!(
        build_payment(&request(Amount::Sats(i64::MAX), 1_000), &some),
        Err(PaymentError::AmountTooLarge { .. })
    ));
    // 500 coins at the largest amount (their sum overflows i64), and coins that cannot exist.
    let mut huge: Vec<Coin> = (0..500)
        .map(|i| coin(i, lotus::policy::MAX_AMOUNT))
        .collect();
    huge.push(coin(900, -5));
    huge.push(coin(901, i64::MAX));
    let paid = build_payment(&request(Amount::Sats(1_000_000), 1_000), &huge).unwrap();
    assert_eq!(paid.tx.inputs.len(), 1);
    assert!(matches!(
        build_payment(&request(Amount::Everything, 1_000), &huge),
        Ok(_) | Err(PaymentError::TooLarge { .. }) | Err(PaymentError::AmountTooLarge { .. })
    ));
    // 100,000 one-satoshi coins: a clear "not enough", in linear time.
    let dust: Vec<Coin> = (0..100_000).map(|i| coin(i, 1)).collect();
    assert!(matches!(
        build_payment(&request(Amount::Sats(1_000_000), 1_000), &dust),
        Err(PaymentError::Insufficient { .. })
    ));
}
