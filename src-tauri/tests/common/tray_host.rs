//! A tray host of the test's own: what a desktop panel does with app indicators, on the test's
//! D-Bus session. It owns `org.kde.StatusNotifierWatcher`, so the app's tray icon (libayatana-
//! appindicator, through Tauri's tray) registers with it; the test then reads the icon's label
//! and clicks its menu items over com.canonical.dbusmenu, as a person does on the panel.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use zbus::message::Header;

use super::PATIENCE;

const WATCHER: &str = "org.kde.StatusNotifierWatcher";
const ITEM: &str = "org.kde.StatusNotifierItem";
const MENU: &str = "com.canonical.dbusmenu";

/// Registered items: (sender's unique bus name, object path).
type Items = Arc<Mutex<Vec<(String, String)>>>;

struct Watcher {
    items: Items,
}

#[zbus::interface(name = "org.kde.StatusNotifierWatcher")]
impl Watcher {
    fn register_status_notifier_item(&self, service: &str, #[zbus(header)] header: Header<'_>) {
        let sender = header.sender().map(|s| s.to_string()).unwrap_or_default();
        // Ayatana names its object path; other implementations name a bus name.
        let (bus, path) = if service.starts_with('/') {
            (sender, service.to_owned())
        } else {
            (service.to_owned(), "/StatusNotifierItem".to_owned())
        };
        self.items.lock().unwrap().push((bus, path));
    }

    fn register_status_notifier_host(&self, _service: &str) {}

    #[zbus(property)]
    fn registered_status_notifier_items(&self) -> Vec<String> {
        let items = self.items.lock().unwrap();
        items
            .iter()
            .map(|(bus, path)| format!("{bus}{path}"))
            .collect()
    }

    #[zbus(property)]
    fn is_status_notifier_host_registered(&self) -> bool {
        true
    }

    #[zbus(property)]
    fn protocol_version(&self) -> i32 {
        0
    }
}

/// Serves the watcher until dropped. Its own runtime, so sync and async tests alike can use it.
pub struct TrayHost {
    items: Items,
    _connection: zbus::Connection,
    runtime: Option<tokio::runtime::Runtime>,
}

/// One app's icon on the panel.
pub struct TrayItem {
    bus: String,
    path: String,
}

impl TrayHost {
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let items = Items::default();
        let watcher = Watcher {
            items: items.clone(),
        };
        let serve = zbus::connection::Builder::session()
            .name(WATCHER)
            .serve_at("/StatusNotifierWatcher", watcher)
            .build();
        // On a thread of its own: an async test's runtime may not block on another.
        let connection = std::thread::scope(|s| s.spawn(|| runtime.block_on(serve)).join())
            .unwrap()
            .unwrap_or_else(|e| panic!("cannot own {WATCHER} on the test's session bus: {e}"));
        TrayHost {
            items,
            _connection: connection,
            runtime: Some(runtime),
        }
    }

    /// The icon process `pid` registered (apps of other tests may register too).
    pub fn wait_for_item_of(&self, pid: u32) -> TrayItem {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let items = self.items.lock().unwrap().clone();
            for (bus, path) in items {
                if process_of(&bus) == Some(pid) {
                    return TrayItem { bus, path };
                }
            }
            assert!(
                Instant::now() < deadline,
                "process {pid} put no icon in the tray"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TrayHost {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl TrayItem {
    /// Waits until the label beside the icon reads `expected`.
    pub fn wait_for_label(&self, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let label = self.label();
            if label == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the tray label stayed {label:?}, not {expected:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text shown beside the icon (the count of payments waiting), "" for none.
    pub fn label(&self) -> String {
        let reply = busctl(&["get-property", &self.bus, &self.path, ITEM, "XAyatanaLabel"]);
        reply["data"].as_str().unwrap_or_default().to_owned()
    }

    /// The menu's item labels, in order.
    pub fn menu_labels(&self) -> Vec<String> {
        self.menu_items().into_iter().map(|(_, l)| l).collect()
    }

    /// Clicks the menu item labelled `label`, as a person does on the panel.
    pub fn click(&self, label: &str) {
        let menu = self.menu_path();
        let items = self.menu_items();
        let id = items
            .iter()
            .find(|(_, l)| l == label)
            .map(|(id, _)| id.to_string())
            .unwrap_or_else(|| panic!("no {label:?} in the tray menu {items:?}"));
        busctl(&[
            "call", &self.bus, &menu, MENU, "Event", "isvu", &id, "clicked", "i", "0", "0",
        ]);
    }

    fn menu_path(&self) -> String {
        let reply = busctl(&["get-property", &self.bus, &self.path, ITEM, "Menu"]);
        reply["data"].as_str().unwrap_or_default().to_owned()
    }

    /// (id, label) of the top-level menu items (GTK mnemonics' underscores removed).
    fn menu_items(&self) -> Vec<(i64, String)> {
        let menu = self.menu_path();
        let reply = busctl(&[
            "call",
            &self.bus,
            &menu,
            MENU,
            "GetLayout",
            "iias",
            "0",
            "1",
            "1",
            "label",
        ]);
        // u(ia{sv}av): the revision, then the root: id, properties, children (variants).
        let children = reply["data"][1][2].as_array().cloned().unwrap_or_default();
        children
            .iter()
            .filter_map(|child| {
                let item = &child["data"];
                let id = item[0].as_i64()?;
                let label = item[1]["label"]["data"].as_str()?.replace('_', "");
                Some((id, label))
            })
            .collect()
    }
}

/// The process id behind a unique bus name.
fn process_of(bus: &str) -> Option<u32> {
    let output = Command::new("busctl")
        .args(["--user", "--json=short", "call", "org.freedesktop.DBus"])
        .args(["/org/freedesktop/DBus", "org.freedesktop.DBus"])
        .args(["GetConnectionUnixProcessID", "s", bus])
        .output()
        .ok()?;
    let reply: Value = serde_json::from_slice(&output.stdout).ok()?;
    reply["data"][0].as_u64().map(|pid| pid as u32)
}

/// One busctl request on the test's session bus; its JSON answer.
fn busctl(args: &[&str]) -> Value {
    let output = Command::new("busctl")
        .args(["--user", "--json=short"])
        .args(args)
        .output()
        .expect("busctl (Debian package systemd)");
    assert!(
        output.status.success(),
        "busctl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    if output.stdout.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "busctl {args:?} answered {}: {e}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}
