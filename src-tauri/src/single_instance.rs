//! One window per profile. A second start of the app on the same data folder (from the
//! launcher, or a `lotus-cosigner://` link the desktop opened) hands its invite link to the
//! running window, which comes to the front, and exits.
//!
//! Per profile rather than per app (what tauri-plugin-single-instance does): the demo window is
//! this same program on a profile of its own, and so are parallel test runs; they must not be
//! folded into the person's window.
//!
//! The meeting point is a Unix socket in the data folder (the folder is the person's own; the
//! socket is made 0600 too). What crosses it is one line: an invite link or nothing. An invite
//! only fills in the join form; joining stays the person's click.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The longest line accepted: an invite is a few hundred bytes.
const MAX_LINE: u64 = 16 * 1024;
/// How long either side waits for the other's line.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
const SOCKET: &str = "app.sock";

/// What became of this start.
pub enum Start {
    /// Another window of this profile runs and took the message: exit.
    Handed,
    /// This is the only one: serve later starts with this listener.
    First(UnixListener),
    /// No meeting point could be made (e.g. a path too long for a socket): run anyway.
    Alone(String),
}

/// Tries to hand `invite` to a running window of the profile in `data_dir`; else listens.
pub fn claim(data_dir: &Path, invite: Option<&str>) -> Start {
    let path = data_dir.join(SOCKET);
    match hand_over(&path, invite) {
        HandOver::Taken => return Start::Handed,
        // Someone listens but did not answer: never take a live window's socket away.
        HandOver::NoAnswer(why) => return Start::Alone(why),
        HandOver::Nobody => {}
    }
    // Nobody listens: a socket file left by a window that crashed, or none at all.
    let _ = std::fs::remove_file(&path);
    match UnixListener::bind(&path) {
        Ok(listener) => {
            restrict(&path);
            Start::First(listener)
        }
        // Two starts at the same moment: the other one won the bind.
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match hand_over(&path, invite) {
            HandOver::Taken => Start::Handed,
            _ => Start::Alone(e.to_string()),
        },
        Err(e) => Start::Alone(format!("{}: {e}", path.display())),
    }
}

enum HandOver {
    Taken,
    /// No socket, or one nobody listens on.
    Nobody,
    NoAnswer(String),
}

fn hand_over(path: &PathBuf, invite: Option<&str>) -> HandOver {
    let mut stream = match UnixStream::connect(path) {
        Ok(stream) => stream,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound
            ) =>
        {
            return HandOver::Nobody
        }
        Err(e) => return HandOver::NoAnswer(format!("{}: {e}", path.display())),
    };
    let _ = stream.set_read_timeout(Some(ANSWER_WITHIN));
    let line = invite.unwrap_or("").replace(['\n', '\r'], "");
    let mut answer = String::new();
    let answered =
        writeln!(stream, "{line}").and_then(|()| BufReader::new(stream).read_line(&mut answer));
    match answered {
        Ok(_) if answer.trim() == "ok" => HandOver::Taken,
        Ok(_) => HandOver::NoAnswer(format!("the running window answered {answer:?}")),
        Err(e) => HandOver::NoAnswer(format!("the running window did not answer: {e}")),
    }
}

fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

/// Answers later starts, each on a thread of its own (one that never writes cannot hold the
/// others up): each one's line goes to `arrived` (`None` for a plain start), then it is told
/// "ok".
pub fn serve(listener: UnixListener, arrived: impl Fn(Option<String>) + Send + Sync + 'static) {
    let arrived = std::sync::Arc::new(arrived);
    std::thread::Builder::new()
        .name("single-instance".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let arrived = arrived.clone();
                let _ = std::thread::Builder::new()
                    .name("later-start".into())
                    .spawn(move || answer(stream, &*arrived));
            }
        })
        .expect("a thread for later starts");
}

fn answer(stream: UnixStream, arrived: &dyn Fn(Option<String>)) {
    let _ = stream.set_read_timeout(Some(ANSWER_WITHIN));
    let mut line = String::new();
    let read = BufReader::new((&stream).take(MAX_LINE)).read_line(&mut line);
    if read.is_err() || !line.ends_with('\n') {
        return; // cut off, silent or too long: not a start of this app
    }
    let line = line.trim();
    arrived((!line.is_empty()).then(|| line.to_owned()));
    let _ = (&stream).write_all(b"ok\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn a_second_start_hands_its_link_to_the_first_and_a_stale_socket_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        // A socket file nobody listens on (a window that crashed) does not stop a start.
        drop(UnixListener::bind(dir.path().join(SOCKET)).unwrap());
        let Start::First(listener) = claim(dir.path(), None) else {
            panic!("the first start must listen");
        };
        let (tx, rx) = mpsc::channel();
        serve(listener, move |line| tx.send(line).unwrap());

        assert!(matches!(
            claim(dir.path(), Some("lotus-cosigner://invite/abc")),
            Start::Handed
        ));
        assert_eq!(
            rx.recv().unwrap().as_deref(),
            Some("lotus-cosigner://invite/abc")
        );
        assert!(matches!(claim(dir.path(), None), Start::Handed));
        assert_eq!(rx.recv().unwrap(), None);

        // A line that never ends is dropped; one that never comes holds nobody up.
        let mut junk = UnixStream::connect(dir.path().join(SOCKET)).unwrap();
        junk.write_all(&vec![b'x'; MAX_LINE as usize + 10]).unwrap();
        drop(junk);
        let _silent = UnixStream::connect(dir.path().join(SOCKET)).unwrap();
        assert!(matches!(claim(dir.path(), Some("second")), Start::Handed));
        assert_eq!(rx.recv().unwrap().as_deref(), Some("second"));
        // Only this user may connect.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(SOCKET))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_window_that_does_not_answer_keeps_its_socket() {
        let dir = tempfile::tempdir().unwrap();
        // Listening, but not answering yet (a window still starting).
        let _busy = UnixListener::bind(dir.path().join(SOCKET)).unwrap();
        assert!(matches!(claim(dir.path(), None), Start::Alone(_)));
        assert!(
            dir.path().join(SOCKET).exists(),
            "its socket was not taken away"
        );
    }
}
