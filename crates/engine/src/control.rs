//! The control API of a running node: a Unix socket in the data folder (mode 0600, so only its
//! owner can use it) that the `lotus-cosigner` commands talk to while the node holds the
//! profile. One JSON request per connection, one JSON answer: `{"ok": …}` or `{"error": …}`
//! with the engine's [`ErrorView`]. Requests are bounded and parsed strictly.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::proposals::ProposeRequest;
use crate::{error_view, Engine, ErrorKind, ErrorView};

/// The largest request a node reads.
pub const MAX_REQUEST: usize = 64 * 1024;
/// The socket's name in the data folder.
pub const SOCKET: &str = "node.sock";

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ControlRequest {
    Status,
    Identity,
    /// A group built by the caller (as its invite): saved and accepted by this node.
    GroupCreate {
        invite: String,
    },
    GroupAccept {
        invite: String,
    },
    GroupList,
    GroupShow {
        group: String,
    },
    GroupBalance {
        group: String,
    },
    GroupHistory {
        group: String,
    },
    SessionPropose {
        group: String,
        /// `XADDR:SATS` (or `XADDR:all`).
        pay: Vec<String>,
        /// `TXID:VOUT:SATS`.
        #[serde(default)]
        inputs: Vec<String>,
        #[serde(default)]
        fee_rate: Option<i64>,
        expires_minutes: u64,
        #[serde(default)]
        allow_unconfirmed: bool,
    },
    SessionList,
    SessionShow {
        session: String,
    },
    SessionApprove {
        session: String,
        digest: String,
        /// The proposer's confirmation code, for a payment above the profile's limit.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    SessionReject {
        session: String,
        #[serde(default)]
        reason: String,
    },
    Peers,
    AuditVerify,
    AuditExport,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ControlError {
    #[error("the request is {0} bytes, above the {MAX_REQUEST}-byte limit")]
    TooLarge(usize),
    #[error("the request is not valid: {0}")]
    Invalid(String),
}

/// Strict, bounded parse of one request (what the fuzzer feeds).
pub fn decode_request(bytes: &[u8]) -> Result<ControlRequest, ControlError> {
    if bytes.len() > MAX_REQUEST {
        return Err(ControlError::TooLarge(bytes.len()));
    }
    serde_json::from_slice(bytes).map_err(|e| ControlError::Invalid(e.to_string()))
}

/// The fuzz target's body: a request that parses serializes to one that parses the same.
pub fn fuzz_decode(data: &[u8]) {
    if let Ok(request) = decode_request(data) {
        let bytes = serde_json::to_vec(&request).expect("requests serialize");
        assert_eq!(decode_request(&bytes), Ok(request));
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlAnswer {
    Ok(serde_json::Value),
    Error(ErrorView),
}

fn to_value<T: Serialize>(value: Result<T, ErrorView>) -> ControlAnswer {
    match value.and_then(|v| {
        serde_json::to_value(v).map_err(|e| {
            error_view(
                ErrorKind::Internal,
                "The answer cannot be written",
                e.to_string(),
                "Report this.",
            )
        })
    }) {
        Ok(value) => ControlAnswer::Ok(value),
        Err(e) => ControlAnswer::Error(e),
    }
}

fn invalid_request(detail: String) -> ErrorView {
    error_view(
        ErrorKind::InvalidPayment,
        "The request cannot be used",
        detail,
        "Check the command's arguments (see --help).",
    )
}

/// Carries out one request on the engine.
pub async fn answer(engine: &Engine, request: ControlRequest) -> ControlAnswer {
    use ControlRequest as R;
    match request {
        R::Status => to_value(status(engine).await),
        R::Identity => to_value(engine.identity()),
        R::GroupCreate { invite } => match protocol::group::GroupDescriptor::from_invite(&invite) {
            Ok(group) => to_value(engine.create_group(group).await),
            Err(e) => ControlAnswer::Error(invalid_request(e.to_string())),
        },
        R::GroupAccept { invite } => to_value(engine.accept_invite(&invite).await),
        R::GroupList => to_value(engine.groups()),
        R::GroupShow { group } => to_value(engine.group(&group)),
        // The same answer as without a node: the balance alone.
        R::GroupBalance { group } => {
            to_value(engine.refresh_group(&group).await.map(|g| g.balance))
        }
        R::GroupHistory { group } => {
            let refreshed = engine.refresh_group(&group).await;
            if let Err(e) = refreshed {
                if e.kind != ErrorKind::ChainUnreachable {
                    return ControlAnswer::Error(e);
                }
            }
            to_value(engine.history(&group))
        }
        R::SessionPropose {
            group,
            pay,
            inputs,
            fee_rate,
            expires_minutes,
            allow_unconfirmed,
        } => {
            let request = (|| {
                Ok::<_, String>(ProposeRequest {
                    group,
                    pay: pay
                        .iter()
                        .map(|p| crate::proposals::parse_pay(p))
                        .collect::<Result<_, _>>()?,
                    inputs: inputs
                        .iter()
                        .map(|i| crate::proposals::parse_input(i))
                        .collect::<Result<_, _>>()?,
                    fee_rate_per_kb: match fee_rate {
                        Some(rate) => rate,
                        None => engine.fee_rate_per_kb().map_err(|e| e.message)?,
                    },
                    expires_minutes,
                    allow_unconfirmed,
                })
            })();
            match request {
                Ok(request) => to_value(engine.propose(request).await),
                Err(e) => ControlAnswer::Error(invalid_request(e)),
            }
        }
        R::SessionList => to_value(engine.sessions().await),
        R::SessionShow { session } => to_value(engine.session(&session).await),
        R::SessionApprove {
            session,
            digest,
            code,
        } => to_value(engine.approve(&session, &digest, code.as_deref()).await),
        R::SessionReject { session, reason } => to_value(engine.reject(&session, &reason).await),
        R::Peers => to_value(engine.peers().await),
        R::AuditVerify => to_value(engine.audit().await),
        R::AuditExport => to_value(engine.audit_export().await),
    }
}

/// What `status` answers: who this node is and how its network is doing.
#[derive(Debug, Serialize)]
pub struct NodeStatus {
    pub public_key: String,
    pub peer_id: Option<String>,
    pub listening: Vec<String>,
    pub network: Option<net::NetStatus>,
}

async fn status(engine: &Engine) -> Result<NodeStatus, ErrorView> {
    Ok(NodeStatus {
        public_key: engine.identity()?.public_key_hex,
        peer_id: engine.peer_id()?,
        listening: engine.listening().await?,
        network: engine.net_status().await?,
    })
}

/// Serves the control socket until the task is dropped. An old socket file left by a node that
/// died is replaced; the socket is created with mode 0600.
pub fn serve(engine: Arc<Engine>, path: &Path) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        // A socket left by a node that died (the profile lock says none runs now).
        Ok(meta) if meta.file_type().is_socket() => std::fs::remove_file(path)?,
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} exists and is not a socket: remove it if it is yours",
                path.display()
            )))
        }
        Err(_) => {}
    }
    // Created under a private umask (mode 0600 from the start: no moment exists where
    // others could connect, and no chmod that could follow a swapped path).
    let listener = {
        let old = unsafe { libc::umask(0o177) };
        let bound = UnixListener::bind(path);
        unsafe { libc::umask(old) };
        bound?
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    Ok(tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, say: back off instead of spinning.
                    tracing::warn!("control socket: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().acquire_owned().await else {
                break;
            };
            let engine = engine.clone();
            tokio::spawn(async move {
                let served =
                    tokio::time::timeout(REQUEST_TIMEOUT, serve_one(&engine, stream)).await;
                if let Ok(Err(e)) = served {
                    tracing::debug!("control connection: {e}");
                }
                drop(slot);
            });
        }
    }))
}

/// Control connections served at once; more wait.
const MAX_CONNECTIONS: usize = 16;
/// A request must arrive and be answered within this (approvals wait on the chain check).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

async fn serve_one(engine: &Engine, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        BufReader::new(read)
            .take(MAX_REQUEST as u64 + 1)
            .read_until(b'\n', &mut line),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no request within 10 s"))??;
    if line.trim_ascii().is_empty() {
        // A caller checking that the node is there.
        return Ok(());
    }
    let answer = match decode_request(line.trim_ascii()) {
        Ok(request) => answer(engine, request).await,
        Err(e) => ControlAnswer::Error(invalid_request(e.to_string())),
    };
    let mut bytes = serde_json::to_vec(&answer).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no node is running on this profile ({0})")]
    NoNode(String),
    #[error("the node's answer cannot be read: {0}")]
    Answer(String),
}

/// Asks the node serving `path`.
pub async fn call(path: &Path, request: &ControlRequest) -> Result<ControlAnswer, CallError> {
    let mut stream = UnixStream::connect(path)
        .await
        .map_err(|e| CallError::NoNode(e.to_string()))?;
    let mut bytes = serde_json::to_vec(request).map_err(|e| CallError::Answer(e.to_string()))?;
    bytes.push(b'\n');
    stream
        .write_all(&bytes)
        .await
        .map_err(|e| CallError::NoNode(e.to_string()))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| CallError::Answer(e.to_string()))?;
    serde_json::from_slice(&answer).map_err(|e| CallError::Answer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_strictly() {
        let request = ControlRequest::SessionApprove {
            session: "ab".into(),
            digest: "cd".into(),
            code: None,
        };
        let bytes = serde_json::to_vec(&request).unwrap();
        assert_eq!(decode_request(&bytes).unwrap(), request);
        assert!(decode_request(br#"{"command":"session-approve","session":"ab"}"#).is_err());
        assert!(decode_request(br#"{"command":"group-show","group":"a","extra":1}"#).is_err());
        assert!(decode_request(br#"{"command":"format-disk"}"#).is_err());
        assert_eq!(
            decode_request(&vec![b' '; MAX_REQUEST + 1]),
            Err(ControlError::TooLarge(MAX_REQUEST + 1))
        );
    }
}
