//! The proxy's audit log: one JSON line per decision, each carrying the hash of the line
//! before it, so that an edited, reordered or removed line breaks the chain where it happened.
//!
//! Every line is the RFC 8785 canonical form of its object (so a reader recomputes the same
//! bytes); its hash is `sha256:` + hex(sha256(line bytes)); the first line's `prev` is
//! [`GENESIS`]. Values of arguments and results are written only when the log was asked for
//! them (format 2, `payload`); otherwise only their digests are.
//!
//! A chain cannot show on its own that lines were cut off its end. A log written with a key
//! carries signed checkpoints (format 3): one when a session opens and one when it closes, each
//! signing the chain's head and line count, so a log that does not end with a signed close was
//! cut short (or its writer was killed) — [`Verified::unclosed`].

use crate::core::canonical::{Digest, to_canonical};
use crate::core::json::parse_strict;
use serde_json::{Map, Value, json};

/// The `prev` of the first line.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
/// Format version of a line without payloads.
pub const AUDIT_FORMAT: u64 = 1;
/// Format version of a line of a log that records payloads: one more field, `payload`.
pub const AUDIT_FORMAT_PAYLOADS: u64 = 2;
/// Largest payload (canonical bytes of its request and response values) written in a line;
/// past it, the line says the payload was omitted and how large it was. Keeps every line well
/// under [`MAX_LINE_BYTES`].
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Format version of a signed checkpoint line.
pub const AUDIT_FORMAT_CHECKPOINT: u64 = 3;
/// Format version of a gateway's line: format 1 and two more fields, `agent` and `session`.
pub const AUDIT_FORMAT_AGENT: u64 = 4;
/// Format version of a gateway's line with its payload: format 2 and `agent` and `session`.
pub const AUDIT_FORMAT_AGENT_PAYLOADS: u64 = 5;
/// Longest line a reader accepts.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// What the proxy decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Forward,
    Withhold,
    Deny,
    Rewrite,
    /// Something the proxy noticed and recorded without deciding (a dropped line, a drift).
    Note,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Forward => "forward",
            Decision::Withhold => "withhold",
            Decision::Deny => "deny",
            Decision::Rewrite => "rewrite",
            Decision::Note => "note",
        }
    }

    fn parse(s: &str) -> Option<Decision> {
        [
            Decision::Forward,
            Decision::Withhold,
            Decision::Deny,
            Decision::Rewrite,
            Decision::Note,
        ]
        .into_iter()
        .find(|d| d.as_str() == s)
    }
}

/// One decision, before it is chained.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// RFC 3339, UTC (read from the clock by the caller: this module has none).
    pub time: String,
    pub server: String,
    pub method: String,
    pub item: Option<String>,
    pub locked: Option<Digest>,
    pub served: Option<Digest>,
    pub decision: Decision,
    pub reason: Option<String>,
    /// Digests of the request and response as they crossed the proxy.
    pub request: Option<Digest>,
    pub response: Option<Digest>,
    /// The values that crossed (the request's `params`, the answer's `result` or `error`), for
    /// a log that records payloads.
    pub payload: Option<Payload>,
    /// The agent and the session the decision was made for (a gateway's line).
    pub who: Option<Who>,
}

/// Who a gateway decided for: the agent (as named in its agents file) and the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Who {
    pub agent: String,
    pub session: String,
}

/// What a call carried, as written in a log that records payloads.
#[derive(Clone, Debug, PartialEq)]
pub struct Payload {
    pub request: Option<Value>,
    pub response: Option<Value>,
}

impl Payload {
    /// The `payload` field: the values, or a note that they were too large to write.
    fn to_value(&self) -> Value {
        let object = json!({
            "request": self.request.clone().unwrap_or(Value::Null),
            "response": self.response.clone().unwrap_or(Value::Null),
        });
        let size = to_canonical(&object).len();
        if size > MAX_PAYLOAD_BYTES {
            json!({"omitted": format!("{size} bytes, over the {MAX_PAYLOAD_BYTES}-byte cap")})
        } else {
            object
        }
    }
}

/// The chain so far: the hash the next line must carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    prev: String,
    /// Lines are written in format 2, with their payloads.
    payloads: bool,
    /// Lines in the log so far.
    lines: u64,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            prev: GENESIS.to_string(),
            payloads: false,
            lines: 0,
        }
    }
}

/// Where a checkpoint stands in a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    Open,
    Close,
}

impl Mark {
    pub fn as_str(self) -> &'static str {
        match self {
            Mark::Open => "open",
            Mark::Close => "close",
        }
    }
}

/// A checkpoint line as read back: what its signature covers, for the reader to check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// 1-based.
    pub line: usize,
    pub mark: Mark,
    /// `sha256:` of the signer's public key (as in a signature envelope).
    pub key_id: String,
    /// The bytes the signature covers (DSSE PAE of the line without its signature).
    pub signed: Vec<u8>,
    pub signature: [u8; 64],
}

impl Chain {
    /// A chain that continues `log`, as [`verify`] read it.
    pub fn after(log: &Verified) -> Chain {
        Chain {
            prev: log.head.clone(),
            payloads: false,
            lines: log.lines as u64,
        }
    }

    /// A signed checkpoint line (format 3) marking `mark` of a session of `server`: the head
    /// and line count so far, signed by `sign` (the key whose id is `key_id`).
    pub fn checkpoint(
        &mut self,
        mark: Mark,
        time: &str,
        server: &str,
        key_id: &Digest,
        sign: impl FnOnce(&[u8]) -> [u8; 64],
    ) -> Vec<u8> {
        use base64::Engine as _;
        let mut object = json!({
            "checkpoint": mark.as_str(),
            "keyId": key_id.to_string(),
            "lines": self.lines,
            "mcplockAudit": AUDIT_FORMAT_CHECKPOINT,
            "prev": self.prev,
            "server": server,
            "time": time,
        });
        let signed =
            crate::core::signature::Signed::AuditCheckpoint.signed_bytes(&to_canonical(&object));
        object["signature"] =
            json!(base64::engine::general_purpose::STANDARD.encode(sign(&signed)));
        let mut line = to_canonical(&object);
        self.prev = Digest::of_bytes(&line).to_string();
        self.lines += 1;
        line.push(b'\n');
        line
    }

    /// Lines from now on record the payloads of calls (format 2). A log may mix formats: each
    /// line says its own.
    pub fn with_payloads(self) -> Chain {
        Chain {
            payloads: true,
            ..self
        }
    }

    pub fn records_payloads(&self) -> bool {
        self.payloads
    }

    /// The line to append for `entry` (canonical JSON and a newline); advances the chain.
    pub fn append(&mut self, entry: &Entry) -> Vec<u8> {
        let digest = |d: &Option<Digest>| d.map_or(Value::Null, |d| json!(d.to_string()));
        let text = |t: &Option<String>| t.as_ref().map_or(Value::Null, |t| json!(t));
        let mut object = json!({
            "decision": entry.decision.as_str(),
            "item": text(&entry.item),
            "locked": digest(&entry.locked),
            "mcplockAudit": AUDIT_FORMAT,
            "method": entry.method,
            "prev": self.prev,
            "reason": text(&entry.reason),
            "request": digest(&entry.request),
            "response": digest(&entry.response),
            "served": digest(&entry.served),
            "server": entry.server,
            "time": entry.time,
        });
        if self.payloads {
            object["mcplockAudit"] = json!(AUDIT_FORMAT_PAYLOADS);
            object["payload"] = entry
                .payload
                .as_ref()
                .map_or(Value::Null, Payload::to_value);
        }
        if let Some(who) = &entry.who {
            object["mcplockAudit"] = json!(if self.payloads {
                AUDIT_FORMAT_AGENT_PAYLOADS
            } else {
                AUDIT_FORMAT_AGENT
            });
            object["agent"] = json!(who.agent);
            object["session"] = json!(who.session);
        }
        let mut line = to_canonical(&object);
        self.prev = Digest::of_bytes(&line).to_string();
        self.lines += 1;
        line.push(b'\n');
        line
    }

    /// The hash of the last line appended (or [`GENESIS`]).
    pub fn head(&self) -> &str {
        &self.prev
    }
}

/// Where and why a log does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct AuditError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

/// What a verified log holds.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// Decision lines.
    pub entries: usize,
    /// Every line, checkpoints included.
    pub lines: usize,
    /// The signed checkpoints, in order (their signatures are for the reader to check).
    pub checkpoints: Vec<Checkpoint>,
    /// The hash of the last line: compare it with a copy kept elsewhere to detect a log cut
    /// short at the end (a chain cannot show that on its own).
    pub head: String,
    pub denied: usize,
    pub withheld: usize,
    /// Lines in format 2 (with a `payload` field).
    pub payloads: usize,
}

const FIELDS: [&str; 12] = [
    "decision",
    "item",
    "locked",
    "mcplockAudit",
    "method",
    "prev",
    "reason",
    "request",
    "response",
    "served",
    "server",
    "time",
];

/// Checks a whole log: every line canonical, of a known shape and version, and chained to the
/// one before; names the first line that breaks.
pub fn verify(log: &[u8]) -> Result<Verified, AuditError> {
    let mut chain = Chain::default();
    let mut verified = Verified {
        head: GENESIS.to_string(),
        ..Verified::default()
    };
    if log.is_empty() {
        return Ok(verified);
    }
    let Some(body) = log.strip_suffix(b"\n") else {
        return Err(AuditError {
            line: log.split(|b| *b == b'\n').count(),
            message: "the last line has no newline: the log was cut off mid-write".into(),
        });
    };
    for (index, raw) in body.split(|b| *b == b'\n').enumerate() {
        let line = index + 1;
        let fail = |message: String| AuditError { line, message };
        if raw.len() > MAX_LINE_BYTES {
            return Err(fail(format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let value = parse_strict(raw).map_err(|e| fail(e.to_string()))?;
        if to_canonical(&value) != raw {
            return Err(fail(
                "not in canonical form (the line was rewritten after it was logged)".into(),
            ));
        }
        let object: &Map<String, Value> = value
            .as_object()
            .ok_or_else(|| fail("not a JSON object".into()))?;
        let (payloads, who) = match object.get("mcplockAudit").and_then(Value::as_u64) {
            Some(AUDIT_FORMAT) => (false, false),
            Some(AUDIT_FORMAT_PAYLOADS) => (true, false),
            Some(AUDIT_FORMAT_AGENT) => (false, true),
            Some(AUDIT_FORMAT_AGENT_PAYLOADS) => (true, true),
            Some(AUDIT_FORMAT_CHECKPOINT) => {
                let checkpoint = read_checkpoint(object, line, index).map_err(fail)?;
                chain_link(object, &chain).map_err(fail)?;
                chain.prev = Digest::of_bytes(raw).to_string();
                verified.checkpoints.push(checkpoint);
                verified.lines += 1;
                continue;
            }
            _ => {
                return Err(fail(format!(
                    "audit format {} is not one this mcplock reads ({AUDIT_FORMAT} to {AUDIT_FORMAT_AGENT_PAYLOADS})",
                    object.get("mcplockAudit").unwrap_or(&Value::Null)
                )));
            }
        };
        let expected = FIELDS.len() + usize::from(payloads) + 2 * usize::from(who);
        let named = |f: &str| object.get(f).is_some_and(Value::is_string);
        if object.len() != expected
            || FIELDS.iter().any(|f| !object.contains_key(*f))
            || (payloads && !object.contains_key("payload"))
            || (who && !(named("agent") && named("session")))
        {
            return Err(fail(format!(
                "expected exactly the fields {}{}{}",
                FIELDS.join(", "),
                if payloads { ", payload" } else { "" },
                if who {
                    ", agent, session (strings)"
                } else {
                    ""
                }
            )));
        }
        if payloads {
            verified.payloads += 1;
        }
        let decision = object["decision"]
            .as_str()
            .and_then(Decision::parse)
            .ok_or_else(|| fail(format!("unknown decision {}", object["decision"])))?;
        chain_link(object, &chain).map_err(fail)?;
        chain.prev = Digest::of_bytes(raw).to_string();
        verified.entries += 1;
        verified.lines += 1;
        match decision {
            Decision::Deny => verified.denied += 1,
            Decision::Withhold => verified.withheld += 1,
            _ => {}
        }
    }
    verified.head = chain.prev;
    Ok(verified)
}

/// The line's `prev` must be the hash of the line before.
fn chain_link(object: &Map<String, Value>, chain: &Chain) -> Result<(), String> {
    let prev = object["prev"].as_str().unwrap_or_default();
    if prev != chain.head() {
        return Err(format!(
            "\"prev\" is {prev}, but the line before hashes to {}: a line was changed, removed or inserted here",
            chain.head()
        ));
    }
    Ok(())
}

const CHECKPOINT_FIELDS: [&str; 8] = [
    "checkpoint",
    "keyId",
    "lines",
    "mcplockAudit",
    "prev",
    "server",
    "signature",
    "time",
];

/// A checkpoint line (`index` lines before it): its shape, and what its signature covers.
fn read_checkpoint(
    object: &Map<String, Value>,
    line: usize,
    index: usize,
) -> Result<Checkpoint, String> {
    use base64::Engine as _;
    if object.len() != CHECKPOINT_FIELDS.len()
        || CHECKPOINT_FIELDS.iter().any(|f| !object.contains_key(*f))
    {
        return Err(format!(
            "a checkpoint has exactly the fields {}",
            CHECKPOINT_FIELDS.join(", ")
        ));
    }
    let mark = match object["checkpoint"].as_str() {
        Some("open") => Mark::Open,
        Some("close") => Mark::Close,
        _ => return Err(format!("unknown checkpoint {}", object["checkpoint"])),
    };
    if object["lines"].as_u64() != Some(index as u64) {
        return Err(format!(
            "the checkpoint counts {} lines before it, but {index} came: lines were removed or added",
            object["lines"]
        ));
    }
    let signature = object["signature"]
        .as_str()
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
        .ok_or_else(|| "the checkpoint's signature is not 64 bytes of base64".to_string())?;
    let mut unsigned = object.clone();
    unsigned.remove("signature");
    let signed = crate::core::signature::Signed::AuditCheckpoint
        .signed_bytes(&to_canonical(&Value::Object(unsigned)));
    Ok(Checkpoint {
        line,
        mark,
        key_id: object["keyId"].as_str().unwrap_or_default().to_string(),
        signed,
        signature,
    })
}

impl Verified {
    /// Where a session has no signed close: each `open` checkpoint not followed by a `close`
    /// before the next `open` or the end of the log (the line of that `open`). A session still
    /// being written is one of them until it closes.
    pub fn unclosed(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut open: Option<usize> = None;
        for checkpoint in &self.checkpoints {
            match checkpoint.mark {
                Mark::Open => {
                    out.extend(open.replace(checkpoint.line));
                }
                Mark::Close => open = None,
            }
        }
        out.extend(open);
        // Lines after the last close that no open announced: written without a key, or a
        // close cut away with what followed it.
        if let Some(last) = self.checkpoints.last()
            && last.mark == Mark::Close
            && last.line < self.lines
        {
            out.push(last.line + 1);
        }
        out
    }
}

impl crate::core::code::Coded for AuditError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::AuditLogBroken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize, decision: Decision) -> Entry {
        Entry {
            time: format!("2026-11-30T10:00:{:02}Z", i % 60),
            server: "files".into(),
            method: "tools/call".into(),
            item: Some(format!("tool_{i}")),
            locked: Some(Digest::of_bytes(b"locked")),
            served: None,
            decision,
            reason: (decision == Decision::Deny).then(|| "not-listed".to_string()),
            request: Some(Digest::of_bytes(format!("request {i}").as_bytes())),
            response: None,
            payload: Some(Payload {
                request: Some(json!({"name": format!("tool_{i}"), "arguments": {"path": "/tmp"}})),
                response: None,
            }),
            who: None,
        }
    }

    fn log(n: usize) -> (Vec<u8>, String) {
        let mut chain = Chain::default();
        let mut out = Vec::new();
        for i in 0..n {
            let decision = if i % 3 == 0 {
                Decision::Deny
            } else {
                Decision::Forward
            };
            out.extend(chain.append(&entry(i, decision)));
        }
        (out, chain.head().to_string())
    }

    #[test]
    fn a_written_log_verifies_and_reports_its_head() {
        let (bytes, head) = log(7);
        let verified = verify(&bytes).unwrap();
        assert_eq!(verified.entries, 7);
        assert_eq!(verified.denied, 3);
        assert_eq!(verified.head, head);
        assert_eq!(verify(b"").unwrap().entries, 0);
        // Appending after a restart continues the chain.
        let mut chain = Chain::after(&verified);
        let mut more = bytes.clone();
        more.extend(chain.append(&entry(7, Decision::Withhold)));
        assert_eq!(verify(&more).unwrap().entries, 8);
    }

    #[test]
    fn a_gateway_line_names_its_agent_and_session_and_holds_them_to_the_chain() {
        let (plain, _) = log(1);
        let mut chain = Chain::after(&verify(&plain).unwrap());
        let who = Some(Who {
            agent: "ci-bot".into(),
            session: "0f3a".into(),
        });
        let mut gateway = plain.clone();
        gateway.extend(chain.append(&Entry {
            who: who.clone(),
            ..entry(1, Decision::Deny)
        }));
        let mut chain = chain.with_payloads();
        gateway.extend(chain.append(&Entry {
            who,
            ..entry(2, Decision::Forward)
        }));
        let verified = verify(&gateway).unwrap();
        assert_eq!((verified.entries, verified.payloads), (3, 1));
        let text = String::from_utf8(gateway.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[1].contains(r#""agent":"ci-bot""#) && lines[1].contains(r#""mcplockAudit":4"#)
        );
        assert!(
            lines[2].contains(r#""mcplockAudit":5"#) && lines[2].contains(r#""session":"0f3a""#)
        );
        // The agent cannot be dropped or renamed without breaking the line (here, its shape).
        for (from, to) in [
            (r#""agent":"ci-bot","#, ""),
            (r#""mcplockAudit":4"#, r#""mcplockAudit":1"#),
        ] {
            let forged = text.replacen(from, to, 1);
            let error = verify(forged.as_bytes()).unwrap_err();
            assert_eq!(error.line, 2, "{from}");
            assert!(
                error.message.contains("expected exactly the fields"),
                "{error}"
            );
        }
        let renamed = text.replacen("ci-bot", "ci-bou", 1);
        assert_eq!(verify(renamed.as_bytes()).unwrap_err().line, 3);
    }

    #[test]
    fn payloads_are_written_only_when_asked_for_and_capped() {
        let (without, _) = log(2);
        assert!(!String::from_utf8(without.clone()).unwrap().contains("/tmp"));
        let mut chain = Chain::after(&verify(&without).unwrap()).with_payloads();
        let mut mixed = without.clone();
        mixed.extend(chain.append(&entry(2, Decision::Forward)));
        let mut huge = entry(3, Decision::Forward);
        huge.payload = Some(Payload {
            request: None,
            response: Some(json!({"text": "x".repeat(MAX_PAYLOAD_BYTES)})),
        });
        let huge_line = chain.append(&huge);
        assert!(huge_line.len() < 2048, "an oversize payload is omitted");
        mixed.extend(&huge_line);
        let text = String::from_utf8(mixed.clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[1]["mcplockAudit"], 1);
        assert_eq!(lines[2]["mcplockAudit"], 2);
        assert_eq!(lines[2]["payload"]["request"]["arguments"]["path"], "/tmp");
        assert!(
            lines[3]["payload"]["omitted"]
                .as_str()
                .unwrap()
                .contains("cap")
        );
        let verified = verify(&mixed).unwrap();
        assert_eq!((verified.entries, verified.payloads), (4, 2));
        // A format-2 line without its payload field, or a format-1 line with one, is refused.
        let fields_error = |text: String| verify(text.as_bytes()).unwrap_err().message;
        let renamed = text.replacen("\"payload\":", "\"payloaz\":", 1);
        assert!(fields_error(renamed).contains("fields"));
        let claimed = text.replacen("\"mcplockAudit\":2", "\"mcplockAudit\":1", 1);
        assert!(fields_error(claimed).contains("fields"));
    }

    #[test]
    fn every_kind_of_tampering_names_its_line() {
        let (bytes, _) = log(5);
        let lines: Vec<&[u8]> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let join = |ls: &[&[u8]]| {
            let mut out = Vec::new();
            for l in ls {
                out.extend_from_slice(l);
                out.push(b'\n');
            }
            out
        };
        // Removed, reordered, duplicated.
        let removed = join(&[lines[0], lines[1], lines[3], lines[4]]);
        assert_eq!(verify(&removed).unwrap_err().line, 3);
        let swapped = join(&[lines[0], lines[2], lines[1], lines[3], lines[4]]);
        assert_eq!(verify(&swapped).unwrap_err().line, 2);
        // A value edited (then the line re-canonicalized, or not).
        let text = String::from_utf8(bytes.clone()).unwrap();
        let edited = text.replacen("\"deny\"", "\"forward\"", 1);
        assert_eq!(verify(edited.as_bytes()).unwrap_err().line, 2);
        let spaced = text.replacen("{\"decision\"", "{ \"decision\"", 1);
        assert!(
            verify(spaced.as_bytes())
                .unwrap_err()
                .message
                .contains("canonical")
        );
        // Cut mid-line; an unknown field; not JSON.
        assert!(
            verify(&bytes[..bytes.len() - 5])
                .unwrap_err()
                .message
                .contains("cut off")
        );
        let extra = text.replacen(
            "\"decision\":\"deny\"",
            "\"decision\":\"deny\",\"extra\":1",
            1,
        );
        assert!(verify(extra.as_bytes()).is_err());
        assert_eq!(verify(b"not json\n").unwrap_err().line, 1);
    }

    fn sealed_session(chain: &mut Chain, key: &ed25519_dalek::SigningKey, n: usize) -> Vec<u8> {
        use ed25519_dalek::Signer;
        let key_id = Digest::of_bytes(key.verifying_key().as_bytes());
        let sign = |b: &[u8]| key.sign(b).to_bytes();
        let mut out = chain.checkpoint(Mark::Open, "t", "files", &key_id, sign);
        for i in 0..n {
            out.extend(chain.append(&entry(i, Decision::Forward)));
        }
        out.extend(chain.checkpoint(Mark::Close, "t", "files", &key_id, sign));
        out
    }

    #[test]
    fn issue_26_a_log_cut_short_does_not_end_with_its_signed_close() {
        use ed25519_dalek::Verifier;
        let key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
        let mut chain = Chain::default();
        let mut log = sealed_session(&mut chain, &key, 3);
        log.extend(sealed_session(&mut chain, &key, 2));
        let verified = verify(&log).unwrap();
        assert_eq!((verified.entries, verified.lines), (5, 9));
        assert_eq!(verified.checkpoints.len(), 4);
        assert!(verified.unclosed().is_empty());
        for c in &verified.checkpoints {
            let signature = ed25519_dalek::Signature::from_bytes(&c.signature);
            assert!(key.verifying_key().verify(&c.signed, &signature).is_ok());
        }
        // Cut anywhere inside the second session: it has no close any more. (Cut exactly at
        // the first close, whole sessions gone, the log still ends sealed: only a head kept
        // elsewhere tells that; docs/audit-log.md says so.)
        let ends: Vec<usize> = log
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i + 1)
            .collect();
        for &end in &ends[5..ends.len() - 1] {
            let cut = verify(&log[..end]).unwrap();
            assert!(!cut.unclosed().is_empty(), "cut at byte {end}");
        }
        // A checkpoint edited (its count, its mark) breaks its signature or the chain.
        let text = String::from_utf8(log.clone()).unwrap();
        let forged = text.replacen("\"checkpoint\":\"open\"", "\"checkpoint\":\"close\"", 1);
        let forged = verify(forged.as_bytes());
        assert!(
            forged.is_err()
                || forged.unwrap().checkpoints.iter().any(|c| {
                    let signature = ed25519_dalek::Signature::from_bytes(&c.signature);
                    key.verifying_key().verify(&c.signed, &signature).is_err()
                })
        );
    }
}
