//! Desktop notifications: what `engine::notices` says the sessions deserve, shown through the
//! desktop's notification service (org.freedesktop.Notifications on Linux). Clicking one
//! brings the window to the front at its session. Off when the Settings say so.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use engine::notices::{Notice, Notices};
use engine::Engine;
use tauri::{AppHandle, Manager};

/// How often the sessions are looked at without a change (for "about to expire").
const TICK: Duration = Duration::from_secs(15);
/// How long a shown notification's click is waited for.
#[cfg(all(unix, not(target_os = "macos")))]
const CLICK_WAIT: Duration = Duration::from_secs(30 * 60);

/// A session a clicked notification asked to open, given to the window once.
#[derive(Clone, Default)]
pub struct OpenSession(Arc<Mutex<Option<String>>>);

impl OpenSession {
    #[cfg_attr(not(all(unix, not(target_os = "macos"))), allow(dead_code))]
    fn put(&self, id: String) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(id);
    }

    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// Watches the sessions for as long as the app runs and notifies what deserves it.
pub fn follow(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        let engine = app.state::<Engine>();
        let mut changes = engine.changes();
        let mut notices = Notices::new();
        let mut unavailable_said = false;
        loop {
            // Learned even while notifications are off, so turning them on tells no old news.
            if let Ok(sessions) = engine.sessions().await {
                let told = notices.update(&sessions, now_ms());
                let enabled = engine.settings_view().is_ok_and(|s| s.notifications);
                for notice in told.into_iter().filter(|_| enabled) {
                    if let Err(e) = show(&app, notice).await {
                        if !unavailable_said {
                            tracing::warn!("desktop notifications are unavailable: {e}");
                            unavailable_said = true;
                        }
                    }
                }
            }
            tokio::select! {
                change = changes.next() => if change.is_none() { return },
                () = tokio::time::sleep(TICK) => {}
            }
        }
    });
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(all(unix, not(target_os = "macos")))]
async fn show(app: &AppHandle, notice: Notice) -> Result<(), notify_rust::error::Error> {
    use notify_rust::{Notification, NotificationResponse};
    let handle = Notification::new()
        .appname("Lotus Cosigner")
        // The icon the .deb installs (named after the binary, as its desktop entry says).
        .icon("lotus-cosigner-app")
        .summary(&notice.title)
        .body(&plain_body(&notice.body))
        // "default" is the click on the notification itself.
        .action("default", "Open")
        .show_async()
        .await?;
    tracing::info!(session = ?notice.session_id, event = ?notice.event, "notified");
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let mut clicked = false;
        // Some desktops keep notifications without ever closing them: the wait (and its D-Bus
        // connection) ends after a while anyway; the session stays in the Inbox.
        let _ = tokio::time::timeout(
            CLICK_WAIT,
            handle.wait_for_action_async(|response| {
                clicked = match response {
                    NotificationResponse::Default => true,
                    NotificationResponse::Action(action) => action == "default",
                    _ => false,
                };
            }),
        )
        .await;
        if clicked {
            open_session(&app, notice.session_id);
        }
    });
    Ok(())
}

/// Elsewhere the notification is shown; a click brings the app forward (the platform's own
/// behaviour) but cannot name the session.
#[cfg(not(all(unix, not(target_os = "macos"))))]
async fn show(_app: &AppHandle, notice: Notice) -> Result<(), notify_rust::error::Error> {
    notify_rust::Notification::new()
        .appname("Lotus Cosigner")
        .summary(&notice.title)
        .body(&notice.body)
        .show()
        .map(|_| ())
}

#[cfg(all(unix, not(target_os = "macos")))]
fn open_session(app: &AppHandle, id: Option<String>) {
    tracing::info!(session = ?id, "notification clicked: opening the window there");
    if let Some(id) = id {
        app.state::<OpenSession>().put(id);
    }
    crate::tray::show_window(app);
}

/// The longest notification body: the rest is in the app.
#[cfg(all(unix, not(target_os = "macos")))]
const BODY_CHARS: usize = 240;

/// A notification body as plain text. The desktop may read bodies as markup (the
/// specification's "body-markup"), and parts of them come from co-signers (group names, the
/// reason a member gives): escaped, they cannot add links or images; shortened, they cannot
/// fill the screen.
#[cfg(all(unix, not(target_os = "macos")))]
fn plain_body(text: &str) -> String {
    let mut body = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == BODY_CHARS {
            body.push('…');
            break;
        }
        match c {
            '&' => body.push_str("&amp;"),
            '<' => body.push_str("&lt;"),
            '>' => body.push_str("&gt;"),
            c if c.is_control() || is_invisible_or_reordering(c) => body.push(' '),
            c => body.push(c),
        }
    }
    body
}

/// Line and paragraph separators, bidirectional overrides and zero-width characters: a name
/// holding them could start a new line or reorder what the person reads.
#[cfg(all(unix, not(target_os = "macos")))]
fn is_invisible_or_reordering(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::*;

    #[test]
    fn text_from_co_signers_cannot_add_markup_or_fill_the_screen() {
        assert_eq!(
            plain_body("Member 2 of <a href=\"https://evil\">Till</a> & co\nproposes"),
            "Member 2 of &lt;a href=\"https://evil\"&gt;Till&lt;/a&gt; &amp; co proposes"
        );
        assert_eq!(
            plain_body("Till\u{2028}\u{2028}pays \u{202E}IPX 1\u{200B}"),
            "Till  pays  IPX 1 "
        );
        let long = plain_body(&"x".repeat(10_000));
        assert_eq!(long.chars().count(), BODY_CHARS + 1);
        assert!(long.ends_with('…'));
    }
}
