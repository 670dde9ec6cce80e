//! The tray icon and the window's life: closing the window hides it while the engine keeps
//! answering co-signers; Quit (in the tray menu) is the explicit way out. The tray and the
//! window title show how many payments wait for the person.

use std::sync::atomic::{AtomicBool, Ordering};

use engine::Engine;
use tauri::menu::{MenuBuilder, MenuItemBuilder};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager};

const TRAY: &str = "main";
const WINDOW: &str = "main";

/// Set once the tray icon exists: without one, a hidden window could not be brought back from
/// the desktop, so closing the window quits instead.
static IN_TRAY: AtomicBool = AtomicBool::new(false);

/// The window title (and tray tooltip) for `waiting` payments to review.
pub fn title(waiting: usize) -> String {
    match waiting {
        0 => "Lotus Cosigner".to_owned(),
        1 => "Lotus Cosigner: 1 payment waiting for you".to_owned(),
        n => format!("Lotus Cosigner: {n} payments waiting for you"),
    }
}

/// Puts the icon in the tray (where the desktop has one; nothing breaks where it has none,
/// and starting the app again brings the window back).
pub fn install(app: &AppHandle) -> tauri::Result<()> {
    let show = MenuItemBuilder::with_id("show", "Show Lotus Cosigner").build(app)?;
    let quit = MenuItemBuilder::with_id("quit", "Quit Lotus Cosigner").build(app)?;
    let menu = MenuBuilder::new(app).items(&[&show, &quit]).build()?;
    let mut tray = TrayIconBuilder::with_id(TRAY)
        .menu(&menu)
        .tooltip(title(0))
        .on_menu_event(|app, event| match event.id().as_ref() {
            "show" => show_window(app),
            "quit" => {
                tracing::info!("quit from the tray");
                app.exit(0);
            }
            _ => {}
        });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    IN_TRAY.store(true, Ordering::Release);
    Ok(())
}

/// Brings the window back (from the tray, or from a second start of the app).
pub fn show_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window(WINDOW) {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// Closing the main window hides it when there is a tray icon to bring it back: sessions keep
/// being answered in the background.
pub fn hide_on_close(window: &tauri::Window, event: &tauri::WindowEvent) {
    if let tauri::WindowEvent::CloseRequested { api, .. } = event {
        if window.label() == WINDOW && IN_TRAY.load(Ordering::Acquire) {
            api.prevent_close();
            let _ = window.hide();
            tracing::info!("window closed: still running in the tray (Quit there to stop)");
        }
    }
}

/// Keeps the count of payments waiting for the person on the tray and in the window title.
pub fn follow_waiting(app: AppHandle) {
    tauri::async_runtime::spawn(async move {
        let engine = app.state::<Engine>();
        let mut changes = engine.changes();
        loop {
            let waiting = engine.waiting_for_me().await.unwrap_or(0);
            let text = title(waiting);
            if let Some(tray) = app.tray_by_id(TRAY) {
                let _ = tray.set_tooltip(Some(&text));
                // Shown beside the icon on Linux desktops (app indicators have no tooltip).
                let _ = tray.set_title((waiting > 0).then(|| waiting.to_string()));
            }
            if let Some(window) = app.get_webview_window(WINDOW) {
                let _ = window.set_title(&text);
            }
            if changes.next().await.is_none() {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::title;

    #[test]
    fn the_title_counts_what_waits_for_the_person() {
        assert_eq!(title(0), "Lotus Cosigner");
        assert_eq!(title(1), "Lotus Cosigner: 1 payment waiting for you");
        assert_eq!(title(3), "Lotus Cosigner: 3 payments waiting for you");
    }
}
