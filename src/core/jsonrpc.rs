//! JSON-RPC 2.0 message shapes: classifying what a server sends and encoding what we send.
//!
//! Pure functions over `serde_json::Value`. Framing (newline-delimited lines, size caps) lives in
//! the transport; this module only decides what a parsed line *is*.

use crate::core::json::{JsonError, parse_strict};
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

/// A JSON-RPC request id as MCP allows it: a string or an integer.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Id {
    Number(i64),
    String(String),
}

impl Id {
    /// A request id as JSON-RPC allows it (string or integer); `None` for anything else.
    pub fn from_value(value: &Value) -> Option<Id> {
        match value {
            Value::String(s) => Some(Id::String(s.clone())),
            Value::Number(n) => n.as_i64().map(Id::Number),
            _ => None,
        }
    }

    pub fn to_value(&self) -> Value {
        match self {
            Id::Number(n) => Value::from(*n),
            Id::String(s) => Value::String(s.clone()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Number(n) => write!(f, "{n}"),
            Id::String(s) => write!(f, "{s:?}"),
        }
    }
}

/// The `error` member of a response.
#[derive(Clone, Debug, PartialEq)]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl fmt::Display for RpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error {}: {}", self.code, self.message)
    }
}

pub const METHOD_NOT_FOUND: i64 = -32601;
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;

/// One message received from the peer; a response's result is an `R` (built, or its text).
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming<R = Value> {
    /// A response to one of our requests.
    Response {
        id: Id,
        outcome: Result<R, RpcError>,
    },
    /// An error response without an id (`id: null` or absent). Some servers answer notifications
    /// this way; it cannot be matched to a request.
    UnmatchedError(RpcError),
    /// A request the peer expects us to answer.
    Request {
        id: Id,
        method: String,
        params: Option<Value>,
    },
    /// A notification; no answer expected.
    Notification {
        method: String,
        params: Option<Value>,
    },
}

/// A response's `result` as the text it arrived in: the message was checked strictly as it was
/// read, and the result is built only by whoever needs it (a listing of many thousand items is
/// read one item at a time, never as one tree).
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    message: Vec<u8>,
    result: Range<usize>,
}

impl Payload {
    /// The result's JSON text.
    pub fn text(&self) -> &[u8] {
        &self.message[self.result.clone()]
    }

    /// The result, built strictly.
    pub fn parse(&self) -> Result<Value, JsonError> {
        parse_strict(self.text())
    }
}

/// Classifies one message given as its text, already checked by
/// [`crate::core::json::check_strict`]; a response's result stays text (see [`Payload`]). Every
/// other member is built and classified exactly as [`classify`] does.
pub fn classify_text(message: Vec<u8>) -> Result<Incoming<Payload>, ShapeError> {
    let (envelope, result) = {
        match message.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{') => {}
            Some(b'[') => return Err(shape("JSON-RPC batches are not allowed in MCP")),
            _ => return Err(shape("expected a JSON object")),
        }
        let members: BTreeMap<String, &RawValue> =
            serde_json::from_slice(&message).map_err(|e| shape(e.to_string()))?;
        let mut envelope = Map::new();
        let mut result = None;
        for (name, raw) in members {
            let text = raw.get().as_bytes();
            if name == "result" {
                // Where the result's text is in the message (both are the same allocation).
                let start = text.as_ptr() as usize - message.as_ptr() as usize;
                result = Some(start..start + text.len());
                envelope.insert(name, Value::Null);
            } else {
                let value = parse_strict(text).map_err(|e| shape(e.message().to_owned()))?;
                envelope.insert(name, value);
            }
        }
        (envelope, result)
    };
    Ok(match classify(Value::Object(envelope))? {
        Incoming::Response { id, outcome } => Incoming::Response {
            id,
            outcome: match (outcome, result) {
                (Ok(_), Some(result)) => Ok(Payload { message, result }),
                (Ok(_), None) => {
                    return Err(shape("neither a request, a notification nor a response"));
                }
                (Err(e), _) => Err(e),
            },
        },
        Incoming::UnmatchedError(e) => Incoming::UnmatchedError(e),
        Incoming::Request { id, method, params } => Incoming::Request { id, method, params },
        Incoming::Notification { method, params } => Incoming::Notification { method, params },
    })
}

/// Why a parsed JSON value is not a JSON-RPC 2.0 message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a JSON-RPC 2.0 message: {0}")]
pub struct ShapeError(pub String);

fn shape(msg: impl Into<String>) -> ShapeError {
    ShapeError(msg.into())
}

/// Classifies one parsed message.
pub fn classify(value: Value) -> Result<Incoming, ShapeError> {
    let mut obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(shape("JSON-RPC batches are not allowed in MCP")),
        _ => return Err(shape("expected a JSON object")),
    };
    match obj.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(other) => return Err(shape(format!("\"jsonrpc\" is {other}, expected \"2.0\""))),
        None => return Err(shape("missing \"jsonrpc\": \"2.0\"")),
    }
    if let Some(method) = obj.remove("method") {
        let Value::String(method) = method else {
            return Err(shape("\"method\" is not a string"));
        };
        let params = obj.remove("params");
        if let Some(p) = &params
            && !p.is_object()
            && !p.is_array()
        {
            return Err(shape(format!("\"params\" of {method} is not an object")));
        }
        return match obj.get("id") {
            None => Ok(Incoming::Notification { method, params }),
            Some(raw) => {
                let id = Id::from_value(raw)
                    .ok_or_else(|| shape(format!("request {method} has an invalid id {raw}")))?;
                Ok(Incoming::Request { id, method, params })
            }
        };
    }
    let result = obj.remove("result");
    let error = obj.remove("error");
    let outcome = match (result, error) {
        (Some(_), Some(_)) => return Err(shape("response has both \"result\" and \"error\"")),
        (None, None) => return Err(shape("neither a request, a notification nor a response")),
        (Some(result), None) => Ok(result),
        (None, Some(error)) => Err(parse_error(error)?),
    };
    match obj.get("id") {
        None | Some(Value::Null) => match outcome {
            Err(e) => Ok(Incoming::UnmatchedError(e)),
            Ok(_) => Err(shape("a result response has no id")),
        },
        Some(raw) => {
            let id = Id::from_value(raw)
                .ok_or_else(|| shape(format!("response has an invalid id {raw}")))?;
            Ok(Incoming::Response { id, outcome })
        }
    }
}

fn parse_error(error: Value) -> Result<RpcError, ShapeError> {
    let Value::Object(mut e) = error else {
        return Err(shape("\"error\" is not an object"));
    };
    let code = e
        .get("code")
        .and_then(Value::as_i64)
        .ok_or_else(|| shape("error has no integer \"code\""))?;
    let message = match e.remove("message") {
        Some(Value::String(m)) => m,
        _ => return Err(shape("error has no string \"message\"")),
    };
    Ok(RpcError {
        code,
        message,
        data: e.remove("data"),
    })
}

/// Encodes a request as one line (compact JSON never contains a raw newline).
pub fn encode_request(id: &Id, method: &str, params: Option<Value>) -> Vec<u8> {
    let mut msg = Map::new();
    msg.insert("jsonrpc".into(), json!("2.0"));
    msg.insert("id".into(), id.to_value());
    msg.insert("method".into(), json!(method));
    if let Some(p) = params {
        msg.insert("params".into(), p);
    }
    line(Value::Object(msg))
}

pub fn encode_notification(method: &str, params: Option<Value>) -> Vec<u8> {
    let mut msg = Map::new();
    msg.insert("jsonrpc".into(), json!("2.0"));
    msg.insert("method".into(), json!(method));
    if let Some(p) = params {
        msg.insert("params".into(), p);
    }
    line(Value::Object(msg))
}

pub fn encode_response(id: &Id, outcome: Result<Value, RpcError>) -> Vec<u8> {
    let msg = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id.to_value(), "result": result}),
        Err(e) => {
            let mut err = json!({"code": e.code, "message": e.message});
            if let Some(data) = e.data {
                err["data"] = data;
            }
            json!({"jsonrpc": "2.0", "id": id.to_value(), "error": err})
        }
    };
    line(msg)
}

fn line(value: Value) -> Vec<u8> {
    let mut bytes = value.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What [`classify_text`] makes of a message, with its result built, is what [`classify`]
    /// makes of the parsed message: the lazy path decides nothing differently.
    #[test]
    fn classifying_text_agrees_with_classifying_the_value() {
        let messages = [
            r#"{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"a"}],"nextCursor":"c"}}"#,
            r#" {"result":[1, 2 ],"id":"x","jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":null}"#,
            r#"{"jsonrpc":"2.0","result":{}}"#,
            r#"{"jsonrpc":"2.0","id":3,"result":{},"error":{"code":1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","id":4,"error":{"code":-32601,"message":"m","data":[1]}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-1,"message":"m"}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}"#,
            r#"{"jsonrpc":"2.0","id":7,"method":"ping","params":{}}"#,
            r#"{"jsonrpc":"1.0","id":7,"result":{}}"#,
            r#"{"id":7,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":[],"result":{}}"#,
            r#"{"jsonrpc":"2.0","method":3}"#,
            r#"{"jsonrpc":"2.0","id":1}"#,
            r#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#,
            r#""text""#,
        ];
        for text in messages {
            let by_value = classify(parse_strict(text.as_bytes()).unwrap());
            let by_text = classify_text(text.as_bytes().to_vec()).map(|incoming| match incoming {
                Incoming::Response { id, outcome } => Incoming::Response {
                    id,
                    outcome: outcome.map(|p| p.parse().unwrap()),
                },
                Incoming::UnmatchedError(e) => Incoming::UnmatchedError(e),
                Incoming::Request { id, method, params } => {
                    Incoming::Request { id, method, params }
                }
                Incoming::Notification { method, params } => {
                    Incoming::Notification { method, params }
                }
            });
            assert_eq!(by_text, by_value, "{text}");
        }
        let Ok(Incoming::Response {
            outcome: Ok(payload),
            ..
        }) = classify_text(messages[1].as_bytes().to_vec())
        else {
            panic!("a response");
        };
        assert_eq!(payload.text(), b"[1, 2 ]");
    }

    #[test]
    fn classifies_each_kind() {
        let r = classify(json!({"jsonrpc":"2.0","id":3,"result":{"x":1}})).unwrap();
        assert_eq!(
            r,
            Incoming::Response {
                id: Id::Number(3),
                outcome: Ok(json!({"x":1}))
            }
        );
        let e =
            classify(json!({"jsonrpc":"2.0","id":"a","error":{"code":-1,"message":"m"}})).unwrap();
        assert!(matches!(
            e,
            Incoming::Response {
                id: Id::String(_),
                outcome: Err(RpcError { code: -1, .. })
            }
        ));
        let n = classify(json!({"jsonrpc":"2.0","method":"notifications/x"})).unwrap();
        assert!(matches!(n, Incoming::Notification { .. }));
        let q = classify(json!({"jsonrpc":"2.0","id":7,"method":"ping"})).unwrap();
        assert!(matches!(
            q,
            Incoming::Request {
                id: Id::Number(7),
                ..
            }
        ));
        let u = classify(json!({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"m"}}))
            .unwrap();
        assert!(matches!(u, Incoming::UnmatchedError(_)));
    }

    #[test]
    fn rejects_malformed_messages() {
        for bad in [
            json!([{"jsonrpc":"2.0","id":1,"result":{}}]),
            json!({"id":1,"result":{}}),
            json!({"jsonrpc":"1.0","id":1,"result":{}}),
            json!({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}),
            json!({"jsonrpc":"2.0","id":1}),
            json!({"jsonrpc":"2.0","id":1.5,"result":{}}),
            json!({"jsonrpc":"2.0","id":null,"result":{}}),
            json!({"jsonrpc":"2.0","id":1,"error":{"message":"no code"}}),
            json!({"jsonrpc":"2.0","method":5}),
            json!({"jsonrpc":"2.0","method":"x","params":"str"}),
            json!("text"),
        ] {
            assert!(classify(bad.clone()).is_err(), "accepted {bad}");
        }
    }

    #[test]
    fn encodes_single_lines() {
        let bytes = encode_request(&Id::Number(1), "tools/list", Some(json!({"cursor":"a\nb"})));
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        assert!(bytes.ends_with(b"\n"));
        let back: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back["params"]["cursor"], "a\nb");
    }
}
