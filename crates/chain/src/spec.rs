//! `--chain SPEC`: which backend, where, and how to log in.
//!
//! - `rpc://[USER:PASS@]HOST:PORT[?cookie=PATH]` — lotusd or the devnet over JSON-RPC.
//! - `chronik+https://HOST[/PATH]` (or `chronik+http://`) — a Chronik indexer.

use std::fmt;
use std::path::PathBuf;

#[derive(Clone, PartialEq, Eq)]
pub enum ChainSpec {
    Rpc {
        host: String,
        port: u16,
        auth: RpcAuth,
    },
    Chronik {
        /// `https://host/path` without a trailing slash.
        url: String,
    },
}

#[derive(Clone, PartialEq, Eq)]
pub enum RpcAuth {
    None,
    Password {
        user: String,
        password: String,
    },
    /// lotusd's `.cookie` file, read at every connection (the node rewrites it on restart).
    Cookie(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error(
        "'{0}' is not a chain backend: use rpc://[USER:PASS@]HOST:PORT[?cookie=PATH] for lotusd \
         or the devnet, or chronik+https://HOST[/PATH] for Chronik"
    )]
    UnknownScheme(String),
    #[error("'{spec}': {problem}")]
    Invalid { spec: String, problem: String },
}

impl ChainSpec {
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let invalid = |problem: &str| SpecError::Invalid {
            spec: redact(spec),
            problem: problem.to_owned(),
        };
        if let Some(rest) = spec.strip_prefix("rpc://") {
            // The login comes first and may hold any character ('?' included): split it off
            // at the last '@' before looking for options.
            let (userinfo, after_login) = match rest.rfind('@') {
                Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
                None => (None, rest),
            };
            let (hostport, query) = match after_login.split_once('?') {
                Some((h, q)) => (h, Some(q)),
                None => (after_login, None),
            };
            let hostport = hostport.trim_end_matches('/');
            let (host, port) = hostport.rsplit_once(':').ok_or_else(|| {
                invalid("the port is missing (lotusd's mainnet RPC port is 10604)")
            })?;
            if host.is_empty() {
                return Err(invalid("the host is missing"));
            }
            let port: u16 = port
                .parse()
                .map_err(|_| invalid("the port is not a number from 1 to 65535"))?;
            let mut auth = match userinfo {
                Some(u) => {
                    let (user, password) = u
                        .split_once(':')
                        .ok_or_else(|| invalid("write the login as USER:PASS@"))?;
                    RpcAuth::Password {
                        user: user.to_owned(),
                        password: password.to_owned(),
                    }
                }
                None => RpcAuth::None,
            };
            if let Some(query) = query {
                for pair in query.split('&') {
                    match pair.split_once('=') {
                        Some(("cookie", path)) if !path.is_empty() => {
                            if userinfo.is_some() {
                                return Err(invalid(
                                    "give either USER:PASS@ or ?cookie=, not both",
                                ));
                            }
                            auth = RpcAuth::Cookie(PathBuf::from(path));
                        }
                        _ => {
                            return Err(invalid(&format!(
                                "unknown option '{pair}'; only cookie=PATH is known"
                            )))
                        }
                    }
                }
            }
            Ok(Self::Rpc {
                host: host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port,
                auth,
            })
        } else if let Some(rest) = spec
            .strip_prefix("chronik+https://")
            .map(|r| ("https", r))
            .or_else(|| spec.strip_prefix("chronik+http://").map(|r| ("http", r)))
        {
            let (scheme, rest) = rest;
            let rest = rest.trim_end_matches('/');
            if rest.is_empty() || rest.starts_with('/') {
                return Err(invalid("the host is missing"));
            }
            Ok(Self::Chronik {
                url: format!("{scheme}://{rest}"),
            })
        } else {
            Err(SpecError::UnknownScheme(redact(spec)))
        }
    }
}

/// The spec with any password replaced, for logs and error messages.
fn redact(spec: &str) -> String {
    match (spec.find("://"), spec.rfind('@')) {
        (Some(start), Some(at)) if at > start => {
            let userinfo = &spec[start + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &spec[..start + 3], user, &spec[at..])
        }
        _ => spec.to_owned(),
    }
}

impl fmt::Display for ChainSpec {
    /// Never prints a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Rpc { host, port, auth } => {
                let host = if host.contains(':') {
                    format!("[{host}]")
                } else {
                    host.clone()
                };
                match auth {
                    RpcAuth::None => write!(f, "rpc://{host}:{port}"),
                    RpcAuth::Password { user, .. } => write!(f, "rpc://{user}:***@{host}:{port}"),
                    RpcAuth::Cookie(path) => {
                        write!(f, "rpc://{host}:{port}?cookie={}", path.display())
                    }
                }
            }
            Self::Chronik { url } => write!(f, "chronik+{url}"),
        }
    }
}

impl fmt::Debug for ChainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form_and_never_prints_a_password() {
        let spec = ChainSpec::parse("rpc://alice:s3cret@127.0.0.1:10604").unwrap();
        assert_eq!(spec.to_string(), "rpc://alice:***@127.0.0.1:10604");
        assert!(!format!("{spec:?}").contains("s3cret"));
        let spec =
            ChainSpec::parse("rpc://node.local:10604?cookie=/var/lib/lotus/.cookie").unwrap();
        assert_eq!(
            spec,
            ChainSpec::Rpc {
                host: "node.local".into(),
                port: 10604,
                auth: RpcAuth::Cookie("/var/lib/lotus/.cookie".into())
            }
        );
        assert_eq!(
            ChainSpec::parse("chronik+https://chronik.lotusia.org/xpi/").unwrap(),
            ChainSpec::Chronik {
                url: "https://chronik.lotusia.org/xpi".into()
            }
        );
        for bad in [
            "http://x:1",
            "rpc://x",
            "rpc://x:99999",
            "rpc://:1",
            "rpc://a@x:1",
            "chronik+https://",
            "rpc://x:1?foo=1",
        ] {
            assert!(ChainSpec::parse(bad).is_err(), "{bad}");
        }
        let err = ChainSpec::parse("rpc://a:hunter2@x")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
    }
}
