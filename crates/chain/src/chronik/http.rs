//! Chronik's transport: one HTTP/1.1 request per connection (plain or TLS with the webpki
//! roots), and the notification WebSocket with its reconnect loop.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use lotus::script::Script;
use prost::Message as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

use super::proto;
use crate::ChainError;

const TIMEOUT: Duration = Duration::from_secs(30);
/// The largest notification accepted (Chronik's are a few dozen bytes).
const MAX_WS_MESSAGE_BYTES: usize = 64 << 10;
/// How long a dropped notification socket waits before reconnecting (doubling up to the max).
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Where an indexer is: `http(s)://host[:port][/path]`.
#[derive(Clone, Debug)]
pub struct Endpoint {
    tls: bool,
    host: String,
    port: u16,
    /// `""` or `/path`, without a trailing slash.
    base: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, ChainError> {
        // The URL itself stays out of the error: it may hold a password.
        let bad = |detail: &str| ChainError::Protocol {
            backend: "chronik".to_owned(),
            detail: detail.to_owned(),
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(bad("the URL must start with https:// or http://"));
        };
        // A login or query in the URL would end up in labels and logs: refuse it.
        if rest.contains(['@', '?', '#']) {
            return Err(bad(
                "the URL may not hold a login, query or fragment (https://HOST[:PORT][/PATH])",
            ));
        }
        let (authority, base) = match rest.find('/') {
            Some(slash) => (&rest[..slash], rest[slash..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                match port.parse::<u16>() {
                    Ok(port) => (host, port),
                    Err(_) => return Err(bad("the port is not a number from 0 to 65535")),
                }
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("the host is missing"));
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port,
            base: base.to_owned(),
        })
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let default_port = if self.tls { 443 } else { 80 };
        if self.port == default_port {
            format!("{scheme}://{host}{}", self.base)
        } else {
            format!("{scheme}://{host}:{}{}", self.port, self.base)
        }
    }

    fn label(&self) -> String {
        format!("chronik+{}", self.url())
    }

    pub(super) fn protocol(&self, detail: impl ToString) -> ChainError {
        ChainError::Protocol {
            backend: self.label(),
            detail: detail.to_string(),
        }
    }

    fn unreachable(&self, detail: impl ToString) -> ChainError {
        ChainError::Unreachable {
            backend: self.label(),
            detail: detail.to_string(),
        }
    }

    async fn connect(&self) -> Result<Box<dyn Io>, ChainError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| self.unreachable(e))?;
        if !self.tls {
            return Ok(Box::new(tcp));
        }
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|e| self.unreachable(format!("not a TLS server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(|e| self.unreachable(format!("TLS: {e}")))?;
        Ok(Box::new(tls))
    }

    /// One request; answers the HTTP status and body (Chronik errors come with non-200). A
    /// body over `max_bytes` is an error, so a hostile indexer cannot make us allocate much.
    pub(super) async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<(u16, Bytes), ChainError> {
        tokio::time::timeout(TIMEOUT, self.request_inner(method, path, body, max_bytes))
            .await
            .map_err(|_| self.unreachable(format!("no answer to {path} within {TIMEOUT:?}")))?
    }

    async fn request_inner(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        max_bytes: usize,
    ) -> Result<(u16, Bytes), ChainError> {
        let io = self.connect().await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| self.unreachable(e))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(HOST, &self.host)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| self.protocol(e))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(e))?;
        let status = response.status().as_u16();
        let bytes = Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok((status, bytes))
    }

    fn websocket_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}:{}{}/ws", self.host, self.port, self.base)
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// See [`super::ChronikBackend::subscribe`].
pub(super) fn subscribe(
    endpoint: Endpoint,
    scripts: Vec<Script>,
) -> tokio::sync::mpsc::Receiver<()> {
    let (nudge, receiver) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut wait = RECONNECT_FIRST;
        loop {
            match listen(&endpoint, &scripts, &nudge).await {
                // The receiver is gone: nobody listens any more.
                Ok(()) => return,
                Err(e) => tracing::debug!(backend = %endpoint.label(), "notifications: {e}"),
            }
            if nudge.is_closed() {
                return;
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RECONNECT_MAX);
        }
    });
    receiver
}

/// One connection's life: subscribe, nudge once (whatever happened while disconnected), then
/// nudge on every message. `Ok` when the receiver is dropped, `Err` when the socket fails.
async fn listen(
    endpoint: &Endpoint,
    scripts: &[Script],
    nudge: &tokio::sync::mpsc::Sender<()>,
) -> Result<(), ChainError> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_WS_MESSAGE_BYTES))
        .max_frame_size(Some(MAX_WS_MESSAGE_BYTES));
    let handshake = async {
        let io = endpoint.connect().await?;
        tokio_tungstenite::client_async_with_config(endpoint.websocket_url(), io, Some(config))
            .await
            .map_err(|e| endpoint.unreachable(format!("WebSocket: {e}")))
    };
    // A tarpit never finishes the handshake; nobody listening any more ends it too.
    let (mut socket, _) = tokio::select! {
        _ = nudge.closed() => return Ok(()),
        done = tokio::time::timeout(TIMEOUT, handshake) => done
            .map_err(|_| endpoint.unreachable("the WebSocket handshake timed out"))??,
    };
    for script in scripts {
        let (kind, payload) = super::script_type::of(script);
        let subscription = proto::Subscription {
            script_type: kind.to_owned(),
            payload,
            is_subscribe: true,
        };
        socket
            .send(Message::binary(subscription.encode_to_vec()))
            .await
            .map_err(|e| endpoint.unreachable(format!("WebSocket: {e}")))?;
    }
    // `try_send`: a nudge already waiting says the same thing.
    let send = |nudge: &tokio::sync::mpsc::Sender<()>| {
        !matches!(
            nudge.try_send(()),
            Err(tokio::sync::mpsc::error::TrySendError::Closed(()))
        )
    };
    if !send(nudge) {
        return Ok(());
    }
    loop {
        tokio::select! {
            _ = nudge.closed() => return Ok(()),
            message = socket.next() => match message {
                None => return Err(endpoint.unreachable("the WebSocket closed")),
                Some(Err(e)) => return Err(endpoint.unreachable(format!("WebSocket: {e}"))),
                Some(Ok(Message::Binary(bytes))) => {
                    if let Ok(proto::SubscribeMsg { msg_type: Some(proto::subscribe_msg::MsgType::Error(error)) }) =
                        proto::SubscribeMsg::decode(bytes)
                    {
                        return Err(endpoint.protocol(format!("subscription refused: {}", super::describe(&error))));
                    }
                    if !send(nudge) {
                        return Ok(());
                    }
                }
                Some(Ok(_)) => {} // pings are answered by tungstenite; text is not Chronik's
            },
        }
    }
}
