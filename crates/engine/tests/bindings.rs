//! The UI's TypeScript types (ui/src/bindings) are generated from the Rust types with ts-rs.
//! This test regenerates them into a temporary folder and fails if the committed files differ.
//! To refresh them: `UPDATE_BINDINGS=1 cargo test -p engine --test bindings`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn committed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings")
}

fn read_all(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return files;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ts") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(name, fs::read_to_string(&path).unwrap());
        }
    }
    files
}

#[test]
fn committed_typescript_bindings_are_up_to_date() {
    let tmp = tempfile::tempdir().unwrap();
    engine::bindings::export(tmp.path()).expect("export bindings");
    let fresh = read_all(tmp.path());
    assert!(fresh.contains_key("IdentityView.ts"), "{:?}", fresh.keys());

    let target = committed_dir();
    if std::env::var_os("UPDATE_BINDINGS").is_some() {
        fs::create_dir_all(&target).unwrap();
        for stale in read_all(&target).keys() {
            fs::remove_file(target.join(stale)).unwrap();
        }
        for (name, text) in &fresh {
            fs::write(target.join(name), text).unwrap();
        }
        return;
    }
    let committed = read_all(&target);
    assert!(
        committed == fresh,
        "ui/src/bindings is stale (files differ from what the Rust types generate).\n\
         Regenerate with: UPDATE_BINDINGS=1 cargo test -p engine --test bindings\n\
         committed: {:?}\ngenerated: {:?}",
        committed.keys(),
        fresh.keys()
    );
}
