//! What the server sends: answers checked against the lock before the host sees them (list
//! pages item by item, the self-description, results inspected), requests and notifications
//! allow-listed, `list_changed` turned into the proxy's own re-listing first.

use super::{
    Expect, Flow, MAX_RELIST_PAGES, Next, Proxy, Record, Relisting, UNAVAILABLE, error_line, line,
};
use crate::core::audit::Decision;
use crate::core::canonical::Digest;
use crate::core::enforce::verdict::{self, HelloVerdict, ListVerdict, ResponseVerdict};
use crate::core::enforce::{self, DENIED, Session};
use crate::core::inspect;
use crate::core::jsonrpc::Id;
use crate::core::methods::{self, From, Shape};
use crate::core::relay::{Origin, Waiting};
use crate::core::snapshot::ItemKind;
use crate::transport::channel::{ConnError, Message};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// A call's answer after its checks.
enum Checked {
    /// On to the host, with its result (none for an error answer).
    Pass(Option<Value>),
    /// Answered here instead (blocked).
    Answered,
}

impl<A: std::io::Write> Proxy<'_, A> {
    pub(super) fn on_server(&mut self, from_server: Result<Message, ConnError>) -> Flow {
        let message = match from_server {
            Ok(m) => m,
            Err(gone @ (ConnError::Closed | ConnError::Truncated | ConnError::Transport(_))) => {
                // The server exited, or its HTTP endpoint became unusable.
                let why = match gone {
                    ConnError::Transport(reason) => reason,
                    _ => "the server closed its output".to_string(),
                };
                return self.server_gone(why);
            }
            Err(e) => return self.bad_server_line(&e),
        };
        let response_digest = self.audit_on().then(|| Digest::of_bytes(&message.raw));
        let Value::Object(obj) = message.value else {
            self.log(Record::note("(server line)", "not a JSON-RPC object"));
            return Ok(Next::Go);
        };
        let method = obj.get("method").and_then(Value::as_str).map(str::to_owned);
        match (method, obj.get("id").cloned()) {
            (None, Some(_)) => self.server_answer(obj, response_digest),
            (Some(method), Some(id)) => self.server_request(obj, method, id),
            (Some(method), None) => self.server_notification(obj, method, response_digest),
            (None, None) => {
                self.log(Record::note(
                    "(server line)",
                    "neither a request nor an answer",
                ));
                Ok(Next::Go)
            }
        }
    }

    /// A line from the server that could not be read: if one host request is waiting, that line
    /// was its answer, so it is answered with the error.
    fn bad_server_line(&mut self, e: &ConnError) -> Flow {
        self.log(Record::note("(server line)", e.to_string()));
        let sole = self.relay.sole(Origin::Host);
        if let Some(waiting) = sole.and_then(|sent| {
            self.expect.remove(&sent);
            self.permits.remove(&sent);
            self.relay.answer(&sent)
        }) {
            let message = format!("mcplock dropped the server's answer: {e}");
            self.answer_host(&waiting.original.to_value(), UNAVAILABLE, message, None)?;
        }
        Ok(Next::Go)
    }

    fn server_answer(
        &mut self,
        mut obj: Map<String, Value>,
        response_digest: Option<Digest>,
    ) -> Flow {
        let Some(sent) = obj.get("id").and_then(Id::from_value) else {
            return Ok(Next::Go);
        };
        let Some(waiting) = self.relay.answer(&sent) else {
            self.log(Record::note(
                "(server answer)",
                "an answer to no waiting request",
            ));
            return Ok(Next::Go);
        };
        let expect = self.expect.remove(&sent);
        self.permits.remove(&sent);
        if obj.contains_key("result") && obj.contains_key("error") {
            return self.refuse_ambiguous(&waiting, response_digest);
        }
        obj.insert("id".into(), waiting.original.to_value());
        if let Some(Expect::Relist {
            kind,
            scratch,
            pages,
        }) = expect
        {
            return self.relist_page(kind, scratch, pages, obj.remove("result"), response_digest);
        }
        let result = obj.remove("result");
        let result = match (expect, result) {
            (Some(Expect::List { kind, first_page }), Some(Value::Object(result))) => {
                match self.list_answer(kind, first_page, result, &waiting, response_digest)? {
                    Some(result) => Some(result),
                    None => return Ok(Next::Go),
                }
            }
            (Some(Expect::Hello), Some(Value::Object(result))) => {
                match self.hello_answer(result, &waiting)? {
                    Some(result) => Some(result),
                    None => return Ok(Next::Go),
                }
            }
            (Some(call @ Expect::Call { .. }), result) => {
                match self.call_answer(call, result, &obj, &waiting, response_digest)? {
                    Checked::Pass(result) => result,
                    Checked::Answered => return Ok(Next::Go),
                }
            }
            (_, result) => result,
        };
        if let Some(result) = result {
            obj.insert("result".into(), result);
        }
        if waiting.origin == Origin::Host {
            if let Some(error) = obj.get_mut("error") {
                let inspection = inspect::inspect_error(error);
                if self.screen(&waiting.method, None, inspection, error) {
                    let message = format!(
                        "mcplock blocked the error the server answered {} with",
                        waiting.method
                    );
                    self.answer_blocked(&waiting, message)?;
                    return Ok(Next::Go);
                }
            }
            self.to_host(line(&Value::Object(obj)))?;
        }
        Ok(Next::Go)
    }

    /// An answer with both `result` and `error`: JSON-RPC allows exactly one, and which one a
    /// host would read is not ours to guess. Refused, and audited.
    fn refuse_ambiguous(&mut self, waiting: &Waiting, response_digest: Option<Digest>) -> Flow {
        self.log(
            Record::new(&waiting.method, Decision::Deny)
                .reason("an answer with both result and error")
                .exchanged((None, response_digest)),
        );
        if waiting.origin == Origin::Host {
            let message = format!(
                "mcplock refused the server's answer to {}: it carries both a result and an error",
                waiting.method
            );
            let data = json!({"reason": "malformed-answer"});
            self.answer_host(&waiting.original.to_value(), DENIED, message, Some(data))?;
        }
        Ok(Next::Go)
    }

    /// A page of a host's listing: checked item by item. `None` when the answer was replaced
    /// by an error (`--on-drift block`).
    fn list_answer(
        &mut self,
        kind: ItemKind,
        first_page: bool,
        result: Map<String, Value>,
        waiting: &Waiting,
        response_digest: Option<Digest>,
    ) -> Result<Option<Value>, super::Stalled> {
        // The host's own listing decides for the calls waiting on a re-listing of this kind
        // (which may never come back).
        self.release(kind.list_changed_notification());
        let served = verdict::keeps_served_pages(self.options.on_drift).then(|| result.clone());
        let checked =
            enforce::check_list_page(kind, result, first_page, self.locked, &mut self.session);
        self.log_withheld(kind, &checked.withheld, response_digest);
        match (
            verdict::list_verdict(self.options.on_drift, checked.withheld.len()),
            served,
        ) {
            (ListVerdict::Refused, _) => {
                self.session.forget(kind);
                let keys: Vec<&str> = checked.withheld.iter().map(|w| w.key.as_str()).collect();
                let message = format!(
                    "mcplock blocked {}: {} item(s) differ from the lock (--on-drift block): {}",
                    kind.list_method(),
                    keys.len(),
                    keys.iter()
                        .take(5)
                        .map(|k| format!("{k:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                let data =
                    json!({"reason": "drift", "items": keys.iter().take(100).collect::<Vec<_>>()});
                if waiting.origin == Origin::Host {
                    self.answer_host(&waiting.original.to_value(), DENIED, message, Some(data))?;
                }
                Ok(None)
            }
            (ListVerdict::AsServed, Some(served)) => {
                self.session.admit_drifted(kind, &checked.withheld);
                let served = enforce::shadow_page(kind, served, &checked.withheld);
                Ok(Some(Value::Object(served)))
            }
            (ListVerdict::Checked | ListVerdict::AsServed, _) => {
                Ok(Some(Value::Object(checked.forward)))
            }
        }
    }

    /// The server's self-description: held to the lock. Drift blocks the session for good
    /// (every later request is denied with the reason), except under `--on-drift warn`.
    fn hello_answer(
        &mut self,
        result: Map<String, Value>,
        waiting: &Waiting,
    ) -> Result<Option<Value>, super::Stalled> {
        let locked_modern =
            crate::mcp::ProtocolVersion::parse(&self.locked.server.protocol_version)
                .is_some_and(crate::mcp::ProtocolVersion::is_modern);
        let same_generation = (waiting.method == "server/discover") == locked_modern;
        let drift = enforce::check_hello(&result, same_generation, self.locked);
        if waiting.method == "initialize"
            && let Some(version) = result.get("protocolVersion").and_then(Value::as_str)
        {
            self.negotiated = Some(version.to_string());
        }
        self.host_logging = result
            .get("capabilities")
            .and_then(|c| c.get("logging"))
            .is_some_and(Value::is_object);
        let fields: Vec<&str> = drift.iter().map(|d| d.field).collect();
        match verdict::hello_verdict(self.options.on_drift, !drift.is_empty()) {
            HelloVerdict::Forward => return Ok(Some(Value::Object(result))),
            HelloVerdict::ForwardNoted => {
                let why = format!(
                    "server drift: {} (--on-drift warn: let through)",
                    fields.join(", ")
                );
                self.log(Record::note(&waiting.method, why));
                return Ok(Some(Value::Object(result)));
            }
            HelloVerdict::Block => {}
        }
        let why = format!("the server's {} differ from the lock", fields.join(", "));
        self.log(
            Record::new(&waiting.method, Decision::Deny)
                .reason(format!("server drift: {}", fields.join(", "))),
        );
        self.warn(&format!(
            "the session is blocked: {why}; see what changed with `mcplock diff`, then re-lock and re-sign"
        ));
        self.blocked = Some(why.clone());
        if waiting.origin == Origin::Host {
            let message = format!("mcplock blocked the session: {why}");
            let data = json!({"reason": "server-drift", "fields": fields});
            self.answer_host(&waiting.original.to_value(), DENIED, message, Some(data))?;
        }
        Ok(None)
    }

    /// A call's answer: audited, and its result inspected before the model reads it. `None`
    /// when it was answered here instead (blocked) or passes as it is (an error answer).
    fn call_answer(
        &mut self,
        call: Expect,
        result: Option<Value>,
        obj: &Map<String, Value>,
        waiting: &Waiting,
        response_digest: Option<Digest>,
    ) -> Result<Checked, super::Stalled> {
        let Expect::Call {
            method,
            item,
            locked,
            request,
            params,
        } = call
        else {
            return Ok(Checked::Pass(result));
        };
        let outcome = result
            .is_none()
            .then(|| "the server answered with an error".to_string());
        let answer = self
            .payloads()
            .then(|| result.clone().or_else(|| obj.get("error").cloned()))
            .flatten();
        let record = Record::new(&method, Decision::Forward)
            .item(Some(item.clone()))
            .digests((locked, None))
            .exchanged((request, response_digest))
            .payload(self.call_payload(params.as_ref(), answer));
        let record = match outcome {
            Some(outcome) => record.reason(outcome),
            None => record,
        };
        self.log(record);
        let Some(mut result) = result else {
            // An error answer: screened and sent where every answer is.
            return Ok(Checked::Pass(None));
        };
        let locked = self.locked;
        let check = |structured: &Value| locked.check_output(&item, structured);
        let output_check: Option<&inspect::OutputCheck> =
            (method == "tools/call" && locked.has_output_schema(&item)).then_some(&check);
        let inspection = inspect::inspect(&method, &result, output_check);
        if !self.screen(&method, Some(&item), inspection, &mut result) {
            return Ok(Checked::Pass(Some(result)));
        }
        if waiting.origin == Origin::Host {
            let message = format!(
                "mcplock blocked the result of {method} of {item:?}: it holds findings (--on-response-finding block)"
            );
            self.answer_blocked(waiting, message)?;
        }
        Ok(Checked::Answered)
    }

    /// Records what `inspection` found in `value` (what the server sent for `method`) and
    /// applies `--on-response-finding`: `warn` leaves it, `redact` rewrites it. `true` when it
    /// must not pass at all (`block`, and something was found).
    fn screen(
        &mut self,
        method: &str,
        item: Option<&str>,
        inspection: inspect::Inspection,
        value: &mut Value,
    ) -> bool {
        if inspection.is_clean() {
            return false;
        }
        let (verdict, decision) = verdict::response_verdict(self.options.on_response);
        let item = item.map(str::to_owned);
        for f in &inspection.findings {
            let why = format!(
                "response-finding {} at {}{} [{}..{}]",
                f.code,
                f.pointer,
                if f.in_key { " (key)" } else { "" },
                f.span.0,
                f.span.1
            );
            self.log(Record::new(method, decision).item(item.clone()).reason(why));
        }
        if inspection.more > 0 {
            let why = format!("response-finding: {} more not listed", inspection.more);
            self.log(Record::new(method, decision).item(item.clone()).reason(why));
        }
        self.last_codes = inspection.codes().iter().map(|c| c.to_string()).collect();
        match verdict {
            ResponseVerdict::Forward => false,
            ResponseVerdict::Redact => {
                inspect::redact(value, &inspection);
                false
            }
            ResponseVerdict::Refuse => true,
        }
    }

    /// Answers the host's waiting request with the refusal of what came back for it.
    fn answer_blocked(&mut self, waiting: &Waiting, message: String) -> Result<(), super::Stalled> {
        let codes = std::mem::take(&mut self.last_codes);
        let message = format!("{message}: {}", codes.join(", "));
        let data = json!({"reason": "response-finding", "codes": codes});
        self.answer_host(&waiting.original.to_value(), DENIED, message, Some(data))
    }

    /// A request from the server: `ping` is answered here; a request of the protocol goes to
    /// the host only with `--allow-server-requests`; anything else is refused.
    fn server_request(
        &mut self,
        mut obj: Map<String, Value>,
        method: String,
        id_value: Value,
    ) -> Flow {
        let known = methods::is_known(self.speaking(None), From::Server, Shape::Request, &method);
        if known && method == "ping" {
            self.to_server(line(
                &json!({"jsonrpc": "2.0", "id": id_value, "result": {}}),
            ))?;
            return Ok(Next::Go);
        }
        if known
            && self.options.allow_server_requests
            && let Some(params) = obj.get_mut("params")
        {
            let inspection = inspect::inspect_params(params);
            if self.screen(&method, None, inspection, params) {
                let codes = std::mem::take(&mut self.last_codes);
                let message = format!(
                    "mcplock does not forward {method} to the host: it holds {} (--on-response-finding block)",
                    codes.join(", ")
                );
                self.to_server(error_line(&id_value, DENIED, message, None))?;
                return Ok(Next::Go);
            }
        }
        let forward = known
            && self.options.allow_server_requests
            && obj
                .get("id")
                .and_then(Id::from_value)
                .and_then(|id| self.relay.send(Origin::Server, id, &method).ok())
                .map(|sent| {
                    self.relay.take_progress(&sent, obj.get_mut("params"));
                    obj.insert("id".into(), sent.to_value())
                })
                .is_some();
        if forward {
            self.to_host(line(&Value::Object(obj)))?;
            return Ok(Next::Go);
        }
        let (why, message) = if known {
            (
                "server requests are not forwarded",
                format!("mcplock does not forward {method} to the host (--allow-server-requests)"),
            )
        } else {
            (
                "unknown-method",
                format!(
                    "mcplock does not forward {}: not a request of the protocol this session speaks",
                    crate::core::text::escape(&method)
                ),
            )
        };
        self.log(Record::new(&method, Decision::Deny).reason(why));
        self.to_server(error_line(&id_value, -32601, message, None))?;
        Ok(Next::Go)
    }

    fn server_notification(
        &mut self,
        mut obj: Map<String, Value>,
        method: String,
        response_digest: Option<Digest>,
    ) -> Flow {
        if self.drops_notification(From::Server, &method, None, response_digest) {
            return Ok(Next::Go);
        }
        let params = obj.get_mut("params").and_then(Value::as_object_mut);
        match self
            .relay
            .translate_notification(Origin::Server, &method, params)
        {
            Err(dropped) => {
                self.log(Record::note(&method, format!("dropped: {dropped}")));
                return Ok(Next::Go);
            }
            Ok(Some((_, waiting))) => {
                let record = Record::new(&method, Decision::Forward)
                    .reason(format!("the server cancelled its {}", waiting.method))
                    .exchanged((response_digest, None));
                self.log(record);
            }
            Ok(None) => {}
        }
        let kinds: Vec<ItemKind> = ItemKind::ALL
            .into_iter()
            .filter(|k| k.list_changed_notification() == method)
            .collect();
        if !kinds.is_empty() && self.list_changed(&method, &obj, kinds)? {
            return Ok(Next::Go);
        }
        // What a notification carries reaches the model too (log data, progress messages).
        if let Some(params) = obj.get_mut("params") {
            let inspection = inspect::inspect_params(params);
            if self.screen(&method, None, inspection, params) {
                self.last_codes.clear();
                return Ok(Next::Go);
            }
        }
        self.to_host(line(&Value::Object(obj)))?;
        Ok(Next::Go)
    }

    /// What was listed may have changed: nothing of these kinds may be called until the proxy
    /// has re-listed and re-checked them; the host hears of the change only then. Re-listings
    /// are coalesced: one out per kind at most, and any number of announcements while it is
    /// out make exactly one more after it (its answer may predate them). `true` when the
    /// notification is held back.
    fn list_changed(
        &mut self,
        method: &str,
        obj: &Map<String, Value>,
        kinds: Vec<ItemKind>,
    ) -> Result<bool, super::Stalled> {
        let mut started = 0;
        let mut pending = false;
        for kind in kinds {
            let listed = self.session.listed(kind);
            self.session.forget(kind);
            if !self.locked.covers(kind) {
                continue;
            }
            if let Some(relisting) = self.relisting.get_mut(&kind) {
                relisting.shown.extend(listed);
                relisting.again = true;
                pending = true;
                continue;
            }
            match self.ask_page(kind, None)? {
                Some(sent) => {
                    let scratch = Session::default();
                    self.expect.insert(sent, Expect::Relist { kind, scratch, pages: 1 });
                    self.relisting.insert(kind, Relisting { shown: listed, again: false });
                    started += 1;
                }
                None => self.log(Record::note(method, "too many requests waiting to re-list; nothing of this kind may be called until the host lists again")),
            }
        }
        if started > 0 {
            self.log(Record::note(
                method,
                format!("re-listing {started} kind(s) before the host hears of the change"),
            ));
            let entry = self
                .held
                .entry(method.to_string())
                .or_insert_with(|| (obj.clone(), 0));
            entry.1 += started;
        } else if pending {
            self.log(Record::note(
                method,
                "a re-listing is already out: one more follows it",
            ));
        }
        Ok(started > 0 || pending)
    }

    /// Audits each item a page held back.
    fn log_withheld(
        &mut self,
        kind: ItemKind,
        withheld: &[enforce::Withheld],
        response_digest: Option<Digest>,
    ) {
        let decision = self.drift_decision();
        self.tell_withheld(kind, withheld);
        for w in withheld {
            let record = Record::new(kind.list_method(), decision)
                .item(Some(w.key.clone()))
                .reason(w.reason.code())
                .digests(w.digests())
                .exchanged((None, response_digest));
            self.log(record);
        }
    }

    /// One page of the proxy's own re-listing.
    fn relist_page(
        &mut self,
        kind: ItemKind,
        mut scratch: Session,
        pages: usize,
        result: Option<Value>,
        response_digest: Option<Digest>,
    ) -> Flow {
        let Some(Value::Object(result)) = result else {
            self.log(Record::note(
                kind.list_method(),
                "the server did not answer the proxy's re-listing",
            ));
            return self.relist_done(kind, Session::default());
        };
        let checked = enforce::check_list_page(kind, result, pages == 1, self.locked, &mut scratch);
        self.log_withheld(kind, &checked.withheld, response_digest);
        match verdict::list_verdict(self.options.on_drift, checked.withheld.len()) {
            ListVerdict::AsServed => scratch.admit_drifted(kind, &checked.withheld),
            // Nothing of this kind may be called until the host lists again.
            ListVerdict::Refused => return self.relist_done(kind, Session::default()),
            ListVerdict::Checked => {}
        }
        let Some(cursor) = checked.forward.get("nextCursor").filter(|c| !c.is_null()) else {
            return self.relist_done(kind, scratch);
        };
        if pages >= MAX_RELIST_PAGES {
            let why = format!("re-listing stopped after {MAX_RELIST_PAGES} pages");
            self.log(Record::note(kind.list_method(), why));
            return self.relist_done(kind, Session::default());
        }
        match self.ask_page(kind, Some(cursor))? {
            Some(next) => {
                let pages = pages + 1;
                self.expect.insert(
                    next,
                    Expect::Relist {
                        kind,
                        scratch,
                        pages,
                    },
                );
                Ok(Next::Go)
            }
            None => self.relist_done(kind, Session::default()),
        }
    }

    /// A re-listing of `kind` is complete with what `scratch` found matching. If announcements
    /// came meanwhile, one more starts; otherwise the host may call again what it had been
    /// shown and what still matches, and hears of the change.
    fn relist_done(&mut self, kind: ItemKind, scratch: Session) -> Flow {
        let Some(mut relisting) = self.relisting.remove(&kind) else {
            return Ok(Next::Go);
        };
        if relisting.again {
            relisting.again = false;
            relisting.shown.extend(self.session.listed(kind));
            if let Some(sent) = self.ask_page(kind, None)? {
                let scratch = Session::default();
                self.expect.insert(
                    sent,
                    Expect::Relist {
                        kind,
                        scratch,
                        pages: 1,
                    },
                );
                self.relisting.insert(kind, relisting);
                return Ok(Next::Go);
            }
            self.log(Record::note(kind.list_method(), "too many requests waiting to re-list; nothing of this kind may be called until the host lists again"));
            self.session.forget(kind);
        } else {
            let shown: BTreeSet<String> = relisting
                .shown
                .union(&self.session.listed(kind))
                .cloned()
                .collect();
            self.session.restrict(kind, &shown, &scratch);
        }
        let notification = kind.list_changed_notification();
        let done = self
            .held
            .get_mut(notification)
            .is_some_and(|(_, remaining)| {
                *remaining = remaining.saturating_sub(1);
                *remaining == 0
            });
        if done && let Some((held, _)) = self.held.remove(notification) {
            self.to_host(line(&Value::Object(held)))?;
            self.release(notification);
        }
        Ok(Next::Go)
    }
}
