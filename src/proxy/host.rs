//! What the host sends: requests judged (method allow-list, the lock, the call rules) before
//! they may reach the server, notifications allow-listed, answers to the server's requests
//! mapped back.

use super::UNAVAILABLE;
use super::{End, Expect, Flow, Next, Proxy, Record, bad_line_answer, error_line, line, list_kind};
use crate::core::audit::Decision;
use crate::core::canonical::Digest;
use crate::core::enforce::verdict::{self, Refusal, Verdict};
use crate::core::enforce::{self, DENIED};
use crate::core::inspect;
use crate::core::jsonrpc::Id;
use crate::core::methods::{self, From, Shape};
use crate::core::policy::CallVerdict;
use crate::core::relay::Origin;
use crate::transport::channel::{ConnError, Message};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// JSON-RPC "method not found".
const METHOD_NOT_FOUND: i64 = -32601;

/// Where the call rules stand on one host request.
enum Rules {
    None,
    Judged(super::Judged),
    Judging(super::Judgement),
}

impl<A: std::io::Write> Proxy<'_, A> {
    pub(super) fn on_host(
        &mut self,
        from_host: Result<Message, ConnError>,
        bad_line: &[u8],
    ) -> Flow {
        // A revocation takes effect from the next message on.
        self.poll_revocations()?;
        let message = match from_host {
            Ok(m) => m,
            Err(ConnError::Closed | ConnError::Truncated) => return Ok(Next::End(End::HostClosed)),
            Err(e) => {
                // One bad line from the host: dropped and answered, never the session's end.
                self.log(Record::note("(host line)", e.to_string()));
                self.to_host(bad_line_answer(&e, bad_line))?;
                return Ok(Next::Go);
            }
        };
        let request_digest = self.audit_on().then(|| Digest::of_bytes(&message.raw));
        let Value::Object(obj) = message.value else {
            self.log(Record::note("(host line)", "not a JSON-RPC object"));
            self.to_host(error_line(
                &Value::Null,
                -32600,
                "mcplock dropped this message: not a JSON-RPC object".into(),
                None,
            ))?;
            return Ok(Next::Go);
        };
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        match (method, obj.get("id").cloned()) {
            (Some(method), Some(id)) => {
                self.host_request(obj, method, id, &message.raw, request_digest)
            }
            (Some(method), None) => self.host_notification(obj, method, request_digest),
            (None, Some(_)) => self.host_answer(obj),
            (None, None) => {
                self.log(Record::note(
                    "(host line)",
                    "neither a request nor an answer",
                ));
                self.to_host(error_line(
                    &Value::Null,
                    -32600,
                    "mcplock dropped this message: neither a request nor an answer".into(),
                    None,
                ))?;
                Ok(Next::Go)
            }
        }
    }

    /// Looks at the revocation list; what changed is told to the host as `list_changed`.
    fn poll_revocations(&mut self) -> Result<(), super::Stalled> {
        let options = self.options;
        let Some(poll) = &options.revocations else {
            return Ok(());
        };
        let revoked = match poll() {
            super::Poll::Unchanged => return Ok(()),
            super::Poll::Changed(list) => {
                enforce::Revoked::of(&list, &self.options.server_name, self.locked)
            }
            super::Poll::Kept { list, why } => {
                self.warn(&why);
                self.log(Record::note("(revocation)", why));
                enforce::Revoked::of(&list, &self.options.server_name, self.locked)
            }
            super::Poll::Unreadable(why) => {
                self.warn(&format!(
                    "the revocation list cannot be trusted ({why}); every call is denied until it can"
                ));
                enforce::Revoked {
                    server: Some(format!("the revocation list cannot be trusted: {why}")),
                    ..Default::default()
                }
            }
        };
        let mut records = Vec::new();
        for (kind, items) in &revoked.items {
            for (key, why) in items {
                if self.session.revoked(*kind, key).is_none() {
                    records.push(
                        Record::note(
                            "(revocation)",
                            format!("revocation took effect: {} {key:?}: {why}", kind.noun()),
                        )
                        .item(Some(key.clone()))
                        .digests((self.locked.digest(*kind, key), None)),
                    );
                }
            }
        }
        if let Some(why) = &revoked.server {
            records.push(Record::note(
                "(revocation)",
                format!("revocation took effect: the whole server: {why}"),
            ));
        }
        for record in records {
            self.log(record);
        }
        let mut told = BTreeSet::new();
        for kind in self.session.set_revoked(revoked) {
            let notification = kind.list_changed_notification();
            // Only a host that listed this kind has something to list again.
            if self.locked.covers(kind)
                && self.session.has_listed(kind)
                && told.insert(notification)
            {
                self.to_host(line(&json!({"jsonrpc": "2.0", "method": notification})))?;
            }
        }
        Ok(())
    }

    /// Denies the host's request `id` and audits why.
    fn deny(&mut self, id: &Value, record: Record, message: String, data: Value) -> Flow {
        self.log(record);
        self.to_host(error_line(id, DENIED, message, Some(data)))?;
        Ok(Next::Go)
    }

    fn host_request(
        &mut self,
        obj: Map<String, Value>,
        method: String,
        id_value: Value,
        raw: &[u8],
        request_digest: Option<Digest>,
    ) -> Flow {
        let Some(id) = Id::from_value(&id_value) else {
            self.to_host(error_line(&id_value, -32600, "invalid id".into(), None))?;
            return Ok(Next::Go);
        };
        let params = obj.get("params");
        if let Some(Value::Object(meta)) = params.and_then(|p| p.get("_meta")) {
            let mut meta = meta.clone();
            meta.remove("progressToken");
            self.host_meta = Some(Value::Object(meta));
        }
        self.judge(obj, method, (id, id_value), raw, request_digest)
    }

    /// A request judged: the one verdict of `core::enforce::verdict::request` carried out, then
    /// the call rules' (which come later, off the loop), then forwarded.
    fn judge(
        &mut self,
        obj: Map<String, Value>,
        method: String,
        (id, id_value): (Id, Value),
        raw: &[u8],
        request_digest: Option<Digest>,
    ) -> Flow {
        let params = obj.get("params");
        let known_method =
            methods::is_known(self.speaking(params), From::Host, Shape::Request, &method)
                || self.options.allow_methods.contains(&method);
        let parks =
            |kind| self.relisting.contains_key(&kind) && self.parked.len() < super::MAX_PARKED;
        let request = verdict::Request {
            method: &method,
            params,
            known_method,
            blocked: self.blocked.as_deref(),
            parks: &parks,
        };
        match verdict::request(&request, self.locked, &self.session, self.options.on_drift) {
            Verdict::Forward => {}
            Verdict::Note(reason) => self.let_through(&method, params, &reason, request_digest),
            Verdict::Park(kind) => {
                let message = Message {
                    raw: raw.to_vec(),
                    value: Value::Object(obj),
                };
                self.parked
                    .push((kind.list_changed_notification(), message));
                return Ok(Next::Go);
            }
            Verdict::Deny(refusal) => {
                return self.refuse(refusal, &method, params, &id_value, request_digest);
            }
        }
        let judged = match self.call_rules(&method, params, raw) {
            Rules::None => None,
            Rules::Judged(judged) => Some(judged),
            Rules::Judging(mut judgement) => {
                // A judgement that needs nothing to wait for (limits counted in memory, no
                // rules) is ready at once: taken now, without a trip through another task.
                let mut now = std::task::Context::from_waker(std::task::Waker::noop());
                match judgement.as_mut().poll(&mut now) {
                    std::task::Poll::Ready(judged) => Some(judged),
                    std::task::Poll::Pending => {
                        let message = Message {
                            raw: raw.to_vec(),
                            value: Value::Object(obj),
                        };
                        return self.judge_later(message, judgement, &id_value);
                    }
                }
            }
        };
        let mut permit = None;
        if let Some(judged) = judged {
            if self.denied_by_rules(judged.verdict, &method, params, &id_value, request_digest)? {
                return Ok(Next::Go);
            }
            permit = judged.permit;
        }
        self.forward(obj, &method, (id, id_value), request_digest, permit)
    }

    /// Answers a refused request, and audits why.
    fn refuse(
        &mut self,
        refusal: Refusal,
        method: &str,
        params: Option<&Value>,
        id_value: &Value,
        request_digest: Option<Digest>,
    ) -> Flow {
        match refusal {
            Refusal::Blocked(why) => {
                let record = Record::new(method, Decision::Deny)
                    .reason(format!("blocked: {why}"))
                    .exchanged((request_digest, None));
                let message = format!("mcplock denied {method}: the session is blocked: {why}");
                self.deny(id_value, record, message, json!({"reason": "server-drift"}))
            }
            Refusal::UnknownMethod => {
                let record = Record::new(method, Decision::Deny)
                    .reason("unknown-method")
                    .exchanged((request_digest, None));
                self.log(record);
                let message = format!(
                    "mcplock does not forward {}: not a method of the protocol this session speaks (an extension may be let through with --allow-method)",
                    crate::core::text::escape(method)
                );
                let data = json!({"reason": "unknown-method"});
                self.to_host(error_line(id_value, METHOD_NOT_FOUND, message, Some(data)))?;
                Ok(Next::Go)
            }
            Refusal::Lock(reason) => {
                let item = named_item(params);
                let message = format!(
                    "mcplock denied {method}{}: {}",
                    item.as_deref()
                        .map(|i| format!(" of {i:?}"))
                        .unwrap_or_default(),
                    reason.describe()
                );
                self.warn(&format!("{message}{}", self.review_hint(&reason)));
                let record = Record::new(method, Decision::Deny)
                    .item(item)
                    .reason(reason.code())
                    .exchanged((request_digest, None))
                    .payload(self.call_payload(params, None));
                self.deny(id_value, record, message, json!({"reason": reason.code()}))
            }
        }
    }

    /// A call the lock refuses for drift, let through under `--on-drift warn`: audited as a note.
    fn let_through(
        &mut self,
        method: &str,
        params: Option<&Value>,
        reason: &enforce::Reason,
        request_digest: Option<Digest>,
    ) {
        let record = Record::note(
            method,
            format!("{} (--on-drift warn: let through)", reason.code()),
        )
        .item(named_item(params))
        .exchanged((request_digest, None))
        .payload(self.call_payload(params, None));
        self.log(record);
    }

    /// Sends a judged request on to the server under an id of the proxy's own.
    fn forward(
        &mut self,
        mut obj: Map<String, Value>,
        method: &str,
        (id, id_value): (Id, Value),
        request_digest: Option<Digest>,
        permit: Option<super::Permit>,
    ) -> Flow {
        let sent = match self.relay.send(Origin::Host, id, method) {
            Ok(sent) => sent,
            Err(full) => {
                self.answer_host(&id_value, UNAVAILABLE, full.to_string(), None)?;
                return Ok(Next::Go);
            }
        };
        if let Some(permit) = permit {
            self.permits.insert(sent.clone(), permit);
        }
        self.expect_answer(&sent, method, obj.get("params"), request_digest);
        self.relay.take_progress(&sent, obj.get_mut("params"));
        obj.insert("id".into(), sent.to_value());
        self.to_server(line(&Value::Object(obj)))?;
        Ok(Next::Go)
    }

    /// Where the call rules stand on a host request: they do not apply; they judged it (the
    /// call is being read again with its verdict); or they start judging it now.
    fn call_rules(&mut self, method: &str, params: Option<&Value>, raw: &[u8]) -> Rules {
        let Some(judge) = &self.options.call_policy else {
            return Rules::None;
        };
        let Some(Ok((_, tool))) = (method == "tools/call")
            .then(|| enforce::called_item(method, params))
            .flatten()
        else {
            return Rules::None;
        };
        if let Some((_, judged)) = self.verdict.take_if(|(bytes, _)| bytes.as_slice() == raw) {
            return Rules::Judged(judged);
        }
        let empty = json!({});
        let arguments = params.and_then(|p| p.get("arguments")).unwrap_or(&empty);
        Rules::Judging(judge(&tool, arguments))
    }

    /// Lets a call wait for its judgment without holding up the session: the verdict comes
    /// back with the call on `judged`, and the call is read again then.
    fn judge_later(
        &mut self,
        message: Message,
        judgement: super::Judgement,
        id_value: &Value,
    ) -> Flow {
        if self.judging >= super::MAX_JUDGING {
            let why = "too many calls are waiting for the call rules; try again".to_string();
            self.answer_host(id_value, UNAVAILABLE, why, None)?;
            return Ok(Next::Go);
        }
        self.judging += 1;
        let judged = self.judged.clone();
        tokio::spawn(async move {
            let verdict = judgement.await;
            let _ = judged.send((message, verdict));
        });
        Ok(Next::Go)
    }

    /// The call rules' verdict on a `tools/call` the lock allows. `true` when they denied it.
    fn denied_by_rules(
        &mut self,
        verdict: CallVerdict,
        method: &str,
        params: Option<&Value>,
        id_value: &Value,
        request_digest: Option<Digest>,
    ) -> Result<bool, super::Stalled> {
        let Some(Ok((_, tool))) = enforce::called_item(method, params) else {
            return Ok(false);
        };
        match verdict {
            CallVerdict::Allow => Ok(false),
            CallVerdict::Warn(rules) => {
                for (rule, message) in rules {
                    let record = Record::note(method, format!("policy {rule} (warn): {message}"))
                        .item(Some(tool.clone()))
                        .exchanged((request_digest, None));
                    self.log(record);
                }
                Ok(false)
            }
            CallVerdict::Limited(refusal) => {
                let retry = refusal.retry_us.map(|us| us.div_ceil(1_000));
                let record = Record::new(method, Decision::Deny)
                    .item(Some(tool.clone()))
                    .reason(refusal.message.clone())
                    .exchanged((request_digest, None))
                    .payload(self.call_payload(params, None));
                let when = retry.map_or(String::new(), |ms| {
                    format!("; retry in {:.1} s", ms as f64 / 1_000.0)
                });
                let text = format!(
                    "mcplock denied tools/call of {tool:?}: {}{when}",
                    refusal.message
                );
                let mut data = json!({"reason": refusal.code});
                if let Some(ms) = retry {
                    data["retryAfterMs"] = json!(ms);
                }
                self.deny(id_value, record, text, data)?;
                Ok(true)
            }
            CallVerdict::Deny(rule, message) => {
                let record = Record::new(method, Decision::Deny)
                    .item(Some(tool.clone()))
                    .reason(format!("policy {rule}: {message}"))
                    .exchanged((request_digest, None))
                    .payload(self.call_payload(params, None));
                let text =
                    format!("mcplock denied tools/call of {tool:?}: policy rule {rule}: {message}");
                self.deny(
                    id_value,
                    record,
                    text,
                    json!({"reason": "policy", "rule": rule}),
                )?;
                Ok(true)
            }
        }
    }

    /// Remembers what the answer to a forwarded request must be checked for.
    fn expect_answer(
        &mut self,
        sent: &Id,
        method: &str,
        params: Option<&Value>,
        request_digest: Option<Digest>,
    ) {
        let expect = if let Some(kind) = list_kind(method) {
            let first_page = params.and_then(|p| p.get("cursor")).is_none();
            Expect::List { kind, first_page }
        } else if method == "initialize" || method == "server/discover" {
            Expect::Hello
        } else if let Some(Ok((kind, item))) = (self.audit_on() || inspect::is_inspected(method))
            .then(|| enforce::called_item(method, params))
            .flatten()
        {
            Expect::Call {
                method: method.to_string(),
                locked: self.locked.digest(kind, &item),
                item,
                request: request_digest,
                params: self.payloads().then(|| params.cloned()).flatten(),
            }
        } else {
            return;
        };
        self.expect.insert(sent.clone(), expect);
    }

    fn host_notification(
        &mut self,
        mut obj: Map<String, Value>,
        method: String,
        request_digest: Option<Digest>,
    ) -> Flow {
        if self.drops_notification(From::Host, &method, obj.get("params"), request_digest) {
            return Ok(Next::Go);
        }
        let params = obj.get_mut("params").and_then(Value::as_object_mut);
        match self
            .relay
            .translate_notification(Origin::Host, &method, params)
        {
            Err(dropped) => {
                self.log(Record::note(&method, format!("dropped: {dropped}")));
                return Ok(Next::Go);
            }
            Ok(Some((sent, waiting))) => {
                self.permits.remove(&sent);
                let item = match self.expect.remove(&sent) {
                    Some(Expect::Call { item, .. }) => Some(item),
                    _ => None,
                };
                let record = Record::new(&method, Decision::Forward)
                    .item(item)
                    .reason(format!("the host cancelled its {}", waiting.method))
                    .exchanged((request_digest, None));
                self.log(record);
            }
            Ok(None) => {}
        }
        self.to_server(line(&Value::Object(obj)))?;
        Ok(Next::Go)
    }

    /// The host's answer to a request the server sent.
    fn host_answer(&mut self, mut obj: Map<String, Value>) -> Flow {
        let Some(waiting) = obj
            .get("id")
            .and_then(Id::from_value)
            .and_then(|id| self.relay.answer(&id))
        else {
            self.log(Record::note(
                "(host answer)",
                "an answer to no waiting request",
            ));
            return Ok(Next::Go);
        };
        obj.insert("id".into(), waiting.original.to_value());
        self.to_server(line(&Value::Object(obj)))?;
        Ok(Next::Go)
    }
}

/// The item a request names in its `name` or `uri`, for the audit log and the refusal.
fn named_item(params: Option<&Value>) -> Option<String> {
    params
        .and_then(|p| p.get("name").or_else(|| p.get("uri")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}
