//! End-to-end over WebDriver with a populated profile: a funded two-member group on a local
//! devnet. The person backs the group up, pays from it (preview, then propose), creates a
//! group, checks and changes the settings, looks at the network, and exports the audit log.
//! With `LOTUS_COSIGNER_SCREENSHOTS=DIR` it saves a 1280×800 screenshot of every screen there
//! (how docs/screenshots/ is made).
#![cfg(target_os = "linux")]

mod common;

use common::*;
use engine::EngineConfig;
use fantoccini::{Client, Locator};

async fn nav(client: &Client, section: &str) {
    click(client, &format!("[data-testid=nav-{section}]")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_funded_group_is_backed_up_and_pays_and_every_screen_opens() {
    let funded = FundedProfile::new("screens").await;
    let (profile, group, me) = (&funded.profile, &funded.group, &funded.me);
    let backups = profile.dir.path().join("backups");
    std::fs::create_dir_all(&backups).unwrap();
    let mut env = profile.app_env();
    env.push((EngineConfig::BACKUP_DIR_ENV, backups.display().to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver = WebDriver::start(&env, &profile.dir.path().join("webdriver.log"));
    let client = driver.open_app().await;

    text_of(&client, "[data-testid=public-key]").await;
    // Every IPC answer and change event from here on is kept (ui/src/lib/api.ts), to look for
    // secrets in them at the end.
    client
        .execute("window.__lotusIpcLog = []; return null;", vec![])
        .await
        .unwrap();
    shoot(&client, "01-identity").await;

    // The group: balance from the devnet, then its backup file.
    nav(&client, "groups").await;
    wait_for_text(&client, "[data-testid=groups]", "40.000000 XPI").await;
    shoot(&client, "02-groups").await;
    click(&client, "[data-testid=group-row] button").await;
    wait_for_text(&client, "[data-testid=group-balance]", "40.000000 XPI").await;
    text_of(&client, "[data-testid=group-backup-missing]").await;
    click(&client, "[data-testid=save-group-backup]").await;
    wait_for_text(&client, "[data-testid=group-backup-saved]", "Backup saved").await;
    let path = text_of(&client, "[data-testid=group-backup-path]").await;
    let file = path.trim_start_matches("Saved to ").trim();
    let text = std::fs::read_to_string(file).unwrap();
    assert!(text.contains(&group.invite()), "{text}");
    assert!(file.starts_with(&backups.display().to_string()), "{file}");
    shoot(&client, "03-group").await;
    // Pictures for the QR scan below: the invite's QR as the window draws it, and the
    // balance (no QR in it).
    let invite_qr = profile.dir.path().join("invite-qr.png");
    picture_of(&client, ".invite-qr [data-testid=qr-code]", &invite_qr).await;
    let no_qr = profile.dir.path().join("balance.png");
    picture_of(&client, "[data-testid=group-balance]", &no_qr).await;
    let (invite_qr, no_qr) = (invite_qr.display().to_string(), no_qr.display().to_string());

    // A payment: the preview shows exactly what co-signers review, then it is proposed.
    click(&client, "[data-testid=new-payment]").await;
    let shop = shop_address();
    fill_payment(&client, &shop).await;
    let preview = wait_for_text(&client, "[data-testid=payment-preview]", "12.500000 XPI").await;
    assert!(preview.contains(&shop), "{preview}");
    assert!(preview.contains("change, back to this group"), "{preview}");
    shoot(&client, "04-new-payment").await;
    click(&client, "[data-testid=propose-payment]").await;
    let review = wait_for_text(&client, "[data-testid=session]", "12.500000 XPI").await;
    assert!(review.contains(&shop), "{review}");
    text_of(&client, "[data-testid=approve]").await;
    shoot(&client, "05-session-review").await;
    click(&client, "[data-testid=save-session-file]").await;
    let saved = text_of(&client, "[data-testid=session-file-saved]").await;
    let file = std::fs::read_to_string(saved.trim_start_matches("Saved to ").trim()).unwrap();
    assert!(file.contains("lotus-cosigner-session/1"), "{file}");

    nav(&client, "inbox").await;
    text_of(&client, "[data-testid=inbox]").await;
    shoot(&client, "06-inbox").await;

    // Importing a session file from the Inbox: junk is refused with a reason; the file just
    // saved opens its session's review.
    let junk = profile.dir.path().join("not-a-session.json");
    std::fs::write(&junk, "{\"hello\": 1}").unwrap();
    let picker = client
        .find(Locator::Css("[data-testid=import-session-file]"))
        .await
        .unwrap();
    picker.send_keys(&junk.display().to_string()).await.unwrap();
    wait_for_text(
        &client,
        "[data-testid=import-problem]",
        "Not a session file",
    )
    .await;
    let picker = client
        .find(Locator::Css("[data-testid=import-session-file]"))
        .await
        .unwrap();
    picker
        .send_keys(saved.trim_start_matches("Saved to ").trim())
        .await
        .unwrap();
    wait_for_text(&client, "[data-testid=session]", "12.500000 XPI").await;
    nav(&client, "inbox").await;

    // Settings: the devnet backend answers its test; a bad fee is refused, a good one saved.
    nav(&client, "settings").await;
    click(&client, "[data-testid=chain-backend] button").await;
    wait_for_text(&client, "[data-testid=chain-backend-ok]", "height").await;
    let fee = client
        .find(Locator::Css("[data-testid=fee-rate-setting]"))
        .await
        .unwrap();
    fee.clear().await.unwrap();
    fee.send_keys("1").await.unwrap();
    click(&client, "[data-testid=save-settings]").await;
    wait_for_text(&client, "[data-testid=settings-problem]", "relay floor").await;
    fee.clear().await.unwrap();
    fee.send_keys("2000").await.unwrap();
    click(&client, "[data-testid=save-settings]").await;
    text_of(&client, "[data-testid=settings-saved]").await;
    let settings = std::fs::read_to_string(profile.data_dir().join("settings.json")).unwrap();
    assert!(settings.contains("\"fee_rate_per_kb\": 2000"), "{settings}");
    shoot(&client, "07-settings").await;

    // The network: the app is on the peer-to-peer network and lists its counters.
    nav(&client, "network").await;
    wait_for_text(&client, "[data-testid=members-reachable]", "of 1").await;
    text_of(&client, "[data-testid=security-counters]").await;
    shoot(&client, "08-network").await;

    nav(&client, "co-signers").await;
    text_of(&client, "[data-testid=cosigners]").await;
    shoot(&client, "09-cosigners").await;

    // The audit log verifies and exports.
    nav(&client, "audit").await;
    wait_for_text(&client, "[data-testid=audit-status]", "Verified").await;
    click(&client, "[data-testid=export-audit]").await;
    let exported = text_of(&client, "[data-testid=audit-exported]").await;
    let log = std::fs::read_to_string(exported.trim_start_matches("Saved to ").trim()).unwrap();
    assert!(log.contains("proposal_created"), "{log}");
    shoot(&client, "10-audit").await;

    // "Scan a QR picture…" on the join form: a picture without a QR is refused with a reason;
    // the invite's QR reads back as the invite.
    nav(&client, "groups").await;
    type_into(&client, "[data-testid=scan-invite]", &no_qr).await;
    wait_for_text(
        &client,
        "[data-testid=scan-invite-problem]",
        "No QR code was found",
    )
    .await;
    // A_small_file_declaring_a_huge_picture_is_refused_before_decoding: 60000 × 60000 pixels
    // would decode to 14 GB.
    let huge = profile.dir.path().join("huge.png");
    std::fs::write(&huge, png_declaring(60_000, 60_000)).unwrap();
    type_into(
        &client,
        "[data-testid=scan-invite]",
        &huge.display().to_string(),
    )
    .await;
    wait_for_text(
        &client,
        "[data-testid=scan-invite-problem]",
        "declares 60000 × 60000 pixels",
    )
    .await;
    type_into(&client, "[data-testid=scan-invite]", &invite_qr).await;
    wait_for_value(&client, "[data-testid=invite-input]", &group.invite()).await;

    // A second group, created in the window from pasted keys.
    click(&client, "[data-testid=create-group]").await;
    type_into(&client, "[data-testid=group-name-input]", "Savings").await;
    let third = lotus::PrivateKey::from_bytes(&[0x53; 32]).unwrap();
    type_into(
        &client,
        "[data-testid=group-members-input]",
        &hex(&third.public_key().serialize()),
    )
    .await;
    shoot(&client, "11-create-group").await;
    click(&client, "[data-testid=create-group-submit]").await;
    wait_for_text(&client, "[data-testid=group-name]", "Savings").await;
    wait_for_text(&client, "[data-testid=group-member]", "you").await;

    // The one deliberate display of a secret: the recovery phrase in the backup dialog.
    nav(&client, "identity").await;
    click(&client, "[data-testid=backup-now]").await;
    click(&client, "[data-testid=reveal-phrase]").await;
    text_of(&client, "[data-testid=recovery-phrase]").await;
    shoot(&client, "12-backup-phrase").await;
    let words = texts_of(&client, "[data-testid=phrase-word]").await;
    assert_eq!(words.len(), 24);

    // No IPC answer but that display carries the key, in hex or as its phrase.
    assert_no_secret_in_ipc(
        &client,
        &[
            "list_groups",
            "get_group",
            "save_group_backup",
            "preview_payment",
            "propose_payment",
            "get_session",
            "settings_view",
            "save_settings",
            "test_chain_backend",
            "network_view",
            "audit",
            "audit_entries",
            "export_audit_log",
            "create_group",
            "reveal_recovery_phrase",
            "save_session_file",
            "import_session_file",
        ],
        me,
        &words,
    )
    .await;

    client.close().await.unwrap();
}

/// A co-signer's proposal above the confirmation limit: a desktop notification (a real
/// notification service, dunst) tells the person, clicking it opens the review, and Approve
/// takes only the code the proposer's app shows.
#[tokio::test(flavor = "multi_thread")]
async fn a_co_signers_proposal_is_notified_and_approved_only_with_the_proposers_code() {
    let funded = FundedProfile::new("notify").await;
    let profile = &funded.profile;
    let path = profile.data_dir().join("settings.json");
    let mut settings = engine::settings::Settings::load_or_init(&path).unwrap();
    settings.confirm_above_sats = Some(5_000_000);
    settings.save(&path).unwrap();
    let daemon = NotificationDaemon::start(profile.dir.path());
    let panel = TrayHost::start();

    // Member 2 proposes 7.25 XPI from its own app; the file reaches member 1 by hand.
    let co_signer = funded.co_signer();
    let form: engine::payment_form::PaymentForm = serde_json::from_value(serde_json::json!({
        "group": funded.group.id().to_string(),
        "recipients": [{ "address": shop_address(), "amount": "7.25" }],
        "fee_rate_per_kb": null,
        "expires_minutes": null,
        "allow_unconfirmed": true,
    }))
    .unwrap();
    let proposal = co_signer.propose_payment(&form).await.unwrap();
    let theirs = co_signer.session(&proposal.session_id).await.unwrap();
    let code = theirs
        .confirmation_code
        .clone()
        .expect("the proposer's app shows the code");
    let file = co_signer
        .save_session_file(&proposal.session_id)
        .unwrap()
        .path;

    let env = profile.app_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let driver = WebDriver::start(&env, &profile.dir.path().join("webdriver.log"));
    let client = driver.open_app().await;
    text_of(&client, "[data-testid=public-key]").await;
    nav(&client, "inbox").await;
    type_into(&client, "[data-testid=import-session-file]", &file).await;
    wait_for_text(&client, "[data-testid=session]", "7.250000 XPI").await;
    // The panel counts it beside the tray icon.
    let app = children_of(driver.pid())[0];
    let tray = panel.wait_for_item_of(app);
    tray.wait_for_label("1");

    let printed = daemon.wait_for("A payment of 7.250000 XPI waits for your review");
    assert!(
        printed.contains("Proposed by member 2 of \u{201c}Shop till\u{201d}."),
        "{printed}"
    );
    // Away from the session, the click on the notification brings it back.
    nav(&client, "settings").await;
    text_of(&client, "[data-testid=settings]").await;
    daemon.click_top();
    wait_for_text(&client, "[data-testid=session]", "7.250000 XPI").await;

    // Above the limit: Approve waits for 12 digits, and refuses a wrong code.
    text_of(&client, "[data-testid=confirmation-needed]").await;
    let approve = client
        .find(Locator::Css("[data-testid=approve]"))
        .await
        .unwrap();
    assert_eq!(
        approve.attr("disabled").await.unwrap().as_deref(),
        Some("true")
    );
    let wrong: String = code
        .chars()
        .filter(char::is_ascii_digit)
        .map(|d| if d == '9' { '0' } else { '9' })
        .collect();
    type_into(&client, "[data-testid=confirmation-input]", &wrong).await;
    click(&client, "[data-testid=approve]").await;
    wait_for_text(
        &client,
        "[data-testid=error-card]",
        "That is not this payment's confirmation code",
    )
    .await;
    let input = client
        .find(Locator::Css("[data-testid=confirmation-input]"))
        .await
        .unwrap();
    input.clear().await.unwrap();
    type_into(&client, "[data-testid=confirmation-input]", &code).await;
    click(&client, "[data-testid=approve]").await;
    wait_for_text(&client, "[data-testid=session]", "You approved this review").await;
    tray.wait_for_label("");

    client.close().await.unwrap();
}

/// A PNG file that is only its header: it declares `width` × `height` pixels, 8-bit RGBA.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
    png.extend(width.to_be_bytes());
    png.extend(height.to_be_bytes());
    png.extend([8, 6, 0, 0, 0]);
    png.extend([0; 4]); // CRC: nothing gets far enough to check it
    png
}
