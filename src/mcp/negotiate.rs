//! Agreeing on a protocol version with the server.
//!
//! Legacy servers (2025-11-25 and earlier) need the `initialize` handshake; modern ones
//! (2026-07-28) are stateless and take version and capabilities in every request's `_meta`.
//! With `--protocol auto` we follow the spec's stdio rule: probe with `server/discover`; a
//! `DiscoverResult` or a recognized modern error means a modern server, anything else (another
//! error, or silence) means a legacy one, and we fall back to `initialize`.

use crate::core::jsonrpc::UNSUPPORTED_PROTOCOL_VERSION;
use crate::core::snapshot::Era;
use crate::mcp::error::ScanError;
use crate::mcp::version::{ProtocolChoice, ProtocolVersion};
use crate::transport::{Connection, RequestError};
use serde_json::{Map, Value, json};
use std::time::Duration;

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

/// What the server told us about itself.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    pub era: Era,
    pub version: ProtocolVersion,
    pub server_info: Option<Value>,
    pub capabilities: Map<String, Value>,
    pub instructions: Option<String>,
    /// For a legacy server reached under `auto`: why the probe said "legacy".
    pub fallback_reason: Option<String>,
    client_capabilities: Map<String, Value>,
}

impl Session {
    /// Request params for this session: modern requests carry `_meta`, legacy ones do not.
    pub fn params(&self, mut params: Map<String, Value>) -> Option<Value> {
        if self.era == Era::Modern {
            params.insert(
                "_meta".into(),
                modern_meta(self.version, &self.client_capabilities),
            );
        }
        (!params.is_empty()).then_some(Value::Object(params))
    }
}

pub fn client_info() -> Value {
    json!({"name": "mcplock", "version": env!("CARGO_PKG_VERSION")})
}

fn modern_meta(version: ProtocolVersion, caps: &Map<String, Value>) -> Value {
    json!({
        META_PROTOCOL_VERSION: version.as_str(),
        META_CLIENT_CAPABILITIES: caps,
        META_CLIENT_INFO: client_info(),
    })
}

/// Runs the handshake (legacy) or discovery (modern) that `choice` calls for. `probe_timeout`
/// bounds how long `auto` waits for the `server/discover` probe alone.
pub async fn negotiate(
    conn: &Connection,
    choice: ProtocolChoice,
    client_capabilities: &Map<String, Value>,
    timeout: Duration,
    probe_timeout: Duration,
) -> Result<Session, ScanError> {
    let caps = client_capabilities;
    match choice {
        ProtocolChoice::Exactly(v) if v.is_modern() => {
            match discover(conn, v, caps, timeout).await {
                Ok(session) => Ok(session),
                Err(Probe::Fatal(e)) => Err(e),
                Err(Probe::Legacy(reason)) => Err(ScanError::VersionRefused {
                    wanted: v.as_str(),
                    detail: reason,
                }),
            }
        }
        ProtocolChoice::Exactly(v) => initialize(conn, v, true, caps, timeout).await,
        // The lock says which era the server speaks. A legacy one gets no probe: it is
        // offered the recorded version and may answer another (drift for the diff to grade).
        // For a modern one discovery is the first request anyway; should it no longer answer,
        // the handshake fallback of `auto` applies.
        ProtocolChoice::Recorded(v) if v.is_modern() => {
            auto(conn, caps, timeout, probe_timeout).await
        }
        ProtocolChoice::Recorded(v) => initialize(conn, v, false, caps, timeout).await,
        ProtocolChoice::Auto => auto(conn, caps, timeout, probe_timeout).await,
    }
}

async fn legacy(
    conn: &Connection,
    offer: ProtocolVersion,
    caps: &Map<String, Value>,
    timeout: Duration,
    reason: String,
) -> Result<Session, ScanError> {
    let mut session = initialize(conn, offer, false, caps, timeout).await?;
    session.fallback_reason = Some(reason);
    Ok(session)
}

/// The spec's stdio rule: probe with `server/discover`, fall back to `initialize`. A legacy
/// server may ignore the unknown method, so the probe alone waits at most `probe_timeout`;
/// after that `initialize` is sent as well, the probe is still awaited, and the first answer
/// that decides wins. A modern server that is merely slow to start (npx fetching a package)
/// answers the probe first, since servers read their input in order, so it is never taken for
/// a legacy one.
async fn auto(
    conn: &Connection,
    caps: &Map<String, Value>,
    timeout: Duration,
    probe_timeout: Duration,
) -> Result<Session, ScanError> {
    let offer = ProtocolVersion::LATEST_LEGACY;
    let probe = discover(conn, ProtocolVersion::LATEST_MODERN, caps, timeout);
    tokio::pin!(probe);
    let early = match tokio::time::timeout(probe_timeout, &mut probe).await {
        Ok(decided) => decided,
        Err(_) => {
            let handshake = initialize(conn, offer, false, caps, timeout);
            tokio::pin!(handshake);
            tokio::select! {
                biased;
                decided = &mut probe => match decided {
                    Err(Probe::Legacy(reason)) => {
                        let mut session = handshake.await?;
                        session.fallback_reason = Some(reason);
                        return Ok(session);
                    }
                    other => other,
                },
                session = &mut handshake => {
                    let mut session = session?;
                    session.fallback_reason = Some(format!(
                        "server/discover got no answer within {}s (--probe-timeout), initialize did",
                        probe_timeout.as_secs_f64()
                    ));
                    return Ok(session);
                }
            }
        }
    };
    match early {
        Ok(session) => Ok(session),
        Err(Probe::Fatal(e)) => Err(e),
        Err(Probe::Legacy(reason)) => legacy(conn, offer, caps, timeout, reason).await,
    }
}

enum Probe {
    /// Not a modern server; the reason, for the report.
    Legacy(String),
    Fatal(ScanError),
}

async fn discover(
    conn: &Connection,
    version: ProtocolVersion,
    caps: &Map<String, Value>,
    timeout: Duration,
) -> Result<Session, Probe> {
    let params = json!({"_meta": modern_meta(version, caps)});
    let result = match conn.request("server/discover", Some(params), timeout).await {
        Ok(result) => result,
        Err(RequestError::Rpc { error, .. }) if error.code == UNSUPPORTED_PROTOCOL_VERSION => {
            let supported = error
                .data
                .as_ref()
                .and_then(|d| d.get("supported"))
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                .unwrap_or_default();
            let legacy_ok = supported
                .iter()
                .filter_map(|s| ProtocolVersion::parse(s))
                .any(|v| !v.is_modern());
            return if legacy_ok {
                Err(Probe::Legacy(format!(
                    "server/discover refused {version}; the server supports {}",
                    supported.join(", ")
                )))
            } else {
                Err(Probe::Fatal(ScanError::NoCommonVersion {
                    offered: ProtocolVersion::list(),
                    server: supported.join(", "),
                }))
            };
        }
        Err(RequestError::Rpc { error, .. }) => {
            return Err(Probe::Legacy(format!("server/discover answered {error}")));
        }
        Err(RequestError::Timeout { after, .. }) => {
            return Err(Probe::Legacy(format!(
                "server/discover got no answer within {}s",
                after.as_secs_f64()
            )));
        }
        Err(e @ RequestError::Conn { .. }) => return Err(Probe::Fatal(e.into())),
    };
    parse_discover(result, version, caps).map_err(Probe::Fatal)
}

fn malformed(method: &str, detail: impl Into<String>) -> ScanError {
    ScanError::Malformed {
        method: method.into(),
        detail: detail.into(),
    }
}

fn parse_discover(
    result: Value,
    version: ProtocolVersion,
    caps: &Map<String, Value>,
) -> Result<Session, ScanError> {
    const M: &str = "server/discover";
    let Value::Object(mut result) = result else {
        return Err(malformed(M, "the result is not an object"));
    };
    check_result_type(M, &result)?;
    let supported: Vec<String> = match result.remove("supportedVersions") {
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(malformed(M, format!("supportedVersions holds {other}"))),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed(M, "no \"supportedVersions\" array")),
    };
    if !supported.iter().any(|s| s == version.as_str()) {
        return Err(ScanError::NoCommonVersion {
            offered: version.as_str().into(),
            server: supported.join(", "),
        });
    }
    let capabilities = take_capabilities(M, &mut result)?;
    let instructions = take_instructions(M, &mut result)?;
    let server_info = match result
        .get_mut("_meta")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove(META_SERVER_INFO))
    {
        None | Some(Value::Null) => None,
        Some(info) => Some(check_server_info(M, info)?),
    };
    Ok(Session {
        era: Era::Modern,
        version,
        server_info,
        capabilities,
        instructions,
        fallback_reason: None,
        client_capabilities: caps.clone(),
    })
}

async fn initialize(
    conn: &Connection,
    offer: ProtocolVersion,
    exact: bool,
    caps: &Map<String, Value>,
    timeout: Duration,
) -> Result<Session, ScanError> {
    const M: &str = "initialize";
    let params = json!({
        "protocolVersion": offer.as_str(),
        "capabilities": caps,
        "clientInfo": client_info(),
    });
    let result = conn.request(M, Some(params), timeout).await?;
    let Value::Object(mut result) = result else {
        return Err(malformed(M, "the result is not an object"));
    };
    let answered = match result.remove("protocolVersion") {
        Some(Value::String(s)) => s,
        _ => return Err(malformed(M, "no string \"protocolVersion\"")),
    };
    let version = match ProtocolVersion::parse(&answered) {
        Some(v) if !v.is_modern() => v,
        _ => {
            return Err(ScanError::NoCommonVersion {
                offered: offer.as_str().into(),
                server: answered,
            });
        }
    };
    if exact && version != offer {
        return Err(ScanError::VersionRefused {
            wanted: offer.as_str(),
            detail: format!("the server answered initialize with {version}"),
        });
    }
    let capabilities = take_capabilities(M, &mut result)?;
    let instructions = take_instructions(M, &mut result)?;
    let server_info = match result.remove("serverInfo") {
        Some(info) => check_server_info(M, info)?,
        None => return Err(malformed(M, "no \"serverInfo\"")),
    };
    conn.notify("notifications/initialized", None)
        .await
        .map_err(|error| RequestError::Conn {
            method: "notifications/initialized".into(),
            error,
        })?;
    Ok(Session {
        era: Era::Legacy,
        version,
        server_info: Some(server_info),
        capabilities,
        instructions,
        fallback_reason: None,
        client_capabilities: caps.clone(),
    })
}

/// A 2026-07-28 result must be `complete`; anything else needs a multi-round trip we do not do.
pub fn check_result_type(method: &str, result: &Map<String, Value>) -> Result<(), ScanError> {
    match result.get("resultType") {
        None => Ok(()),
        Some(Value::String(t)) if t == "complete" => Ok(()),
        Some(other) => Err(ScanError::InputRequired {
            method: method.into(),
            result_type: other.to_string(),
        }),
    }
}

fn take_capabilities(
    method: &str,
    result: &mut Map<String, Value>,
) -> Result<Map<String, Value>, ScanError> {
    match result.remove("capabilities") {
        Some(Value::Object(c)) => Ok(c),
        _ => Err(malformed(method, "no \"capabilities\" object")),
    }
}

fn take_instructions(
    method: &str,
    result: &mut Map<String, Value>,
) -> Result<Option<String>, ScanError> {
    match result.remove("instructions") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(malformed(
            method,
            format!("\"instructions\" is {other}, not a string"),
        )),
    }
}

fn check_server_info(method: &str, info: Value) -> Result<Value, ScanError> {
    let ok = info.get("name").is_some_and(Value::is_string)
        && info.get("version").is_some_and(Value::is_string);
    if ok {
        Ok(info)
    } else {
        Err(malformed(
            method,
            "serverInfo needs string \"name\" and \"version\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discover_result_needs_our_version() {
        let caps = Map::new();
        let v = ProtocolVersion::V2026_07_28;
        let ok = parse_discover(
            json!({"supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},
                   "instructions":"hi","resultType":"complete","ttlMs":5,
                   "_meta":{META_SERVER_INFO:{"name":"s","version":"1"}}}),
            v,
            &caps,
        )
        .unwrap();
        assert_eq!(ok.era, Era::Modern);
        assert_eq!(ok.server_info, Some(json!({"name":"s","version":"1"})));
        assert_eq!(ok.instructions.as_deref(), Some("hi"));
        let err = parse_discover(
            json!({"supportedVersions":["2027-01-01"],"capabilities":{}}),
            v,
            &caps,
        )
        .unwrap_err();
        assert!(matches!(err, ScanError::NoCommonVersion { .. }));
        let err =
            parse_discover(json!({"supportedVersions":["2026-07-28"]}), v, &caps).unwrap_err();
        assert!(err.to_string().contains("capabilities"), "{err}");
        let err = parse_discover(
            json!({"supportedVersions":["2026-07-28"],"capabilities":{},"resultType":"input_required"}),
            v,
            &caps,
        )
        .unwrap_err();
        assert!(matches!(err, ScanError::InputRequired { .. }));
    }

    #[test]
    fn modern_params_carry_meta() {
        let mut caps = Map::new();
        caps.insert("roots".into(), json!({}));
        let session = Session {
            era: Era::Modern,
            version: ProtocolVersion::V2026_07_28,
            server_info: None,
            capabilities: Map::new(),
            instructions: None,
            fallback_reason: None,
            client_capabilities: caps,
        };
        let p = session.params(Map::new()).unwrap();
        assert_eq!(p["_meta"][META_PROTOCOL_VERSION], "2026-07-28");
        assert_eq!(p["_meta"][META_CLIENT_CAPABILITIES], json!({"roots":{}}));
        let legacy = Session {
            era: Era::Legacy,
            ..session
        };
        assert_eq!(legacy.params(Map::new()), None);
    }
}
