//! One server session shared by several proxy sessions: the gateway's shareable servers.
//!
//! Each sharer (a lease) is a whole proxy session that believes it has the server to itself, so
//! every sharer uses the same ids, the same progress tokens and its own `initialize`. Here the
//! sharers' traffic is told apart and merged into one session:
//!
//! - Requests go on under ids of the share's own ([`Relay`]), their progress tokens too; an
//!   answer or a progress report reaches only the sharer that asked, under its own id or token.
//! - The server is initialized once, with the first sharer's protocol version and no client
//!   capabilities (nothing the server asks a client could be told to belong to one sharer); every
//!   sharer gets that one answer. `notifications/initialized` is sent once.
//! - What the server asks a client is refused (a `ping` answered); what it logs is not relayed
//!   (a log line cannot be told to belong to one sharer); `list_changed` reaches every sharer, a
//!   resource update every sharer subscribed to it.
//! - A sharer that leaves has its requests cancelled on the server, and a resource subscription
//!   only it held ended.

use crate::core::jsonrpc::Id;
use crate::core::relay::{Relay, Waiting};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// A sharer, as the share knows it.
pub type Lease = u64;

/// Who sent a request through the share.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    Lease(Lease),
    /// The server, asking a client.
    Server,
    /// The share itself (its one `initialize`, an unsubscribe for a sharer that left).
    Share,
}

/// A message to pass on.
#[derive(Clone, Debug, PartialEq)]
pub enum Out {
    Server(Value),
    Lease(Lease, Value),
}

/// Most resources subscribed to at once, and most sharers waiting for the one `initialize`.
pub const MAX_SUBSCRIPTIONS: usize = 4_096;
pub const MAX_INIT_WAITING: usize = 1_024;

/// JSON-RPC error codes the share answers with.
const METHOD_NOT_FOUND: i64 = -32601;
const INTERNAL: i64 = -32603;

enum Init {
    /// Not asked yet (or the last attempt failed: the next sharer asks again).
    Not,
    /// Asked under `sent`; these sharers wait for the answer, with their own ids.
    Asked { sent: Id, waiting: Vec<(Lease, Id)> },
    /// The server's answer, given to every sharer.
    Done(Value),
}

pub struct Share {
    relay: Relay<Side>,
    init: Init,
    initialized_sent: bool,
    leases: BTreeSet<Lease>,
    next_lease: Lease,
    next_own: i64,
    subscriptions: BTreeMap<String, BTreeSet<Lease>>,
    /// Who the share says it is in its `initialize`.
    client_info: Value,
}

impl Share {
    /// A share that lets `max_waiting` requests wait at once, introducing itself to the
    /// server as `client_info`.
    pub fn new(max_waiting: usize, client_info: Value) -> Share {
        Share {
            relay: Relay::new(max_waiting),
            init: Init::Not,
            initialized_sent: false,
            leases: BTreeSet::new(),
            next_lease: 1,
            next_own: 1,
            subscriptions: BTreeMap::new(),
            client_info,
        }
    }

    /// A new sharer.
    pub fn attach(&mut self) -> Lease {
        let lease = self.next_lease;
        self.next_lease += 1;
        self.leases.insert(lease);
        lease
    }

    /// No sharer is left.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    pub fn sharers(&self) -> usize {
        self.leases.len()
    }

    /// A sharer left: its requests are cancelled on the server, a subscription only it held
    /// ended, and nothing more reaches it.
    pub fn detach(&mut self, lease: Lease) -> Vec<Out> {
        if !self.leases.remove(&lease) {
            return Vec::new();
        }
        if let Init::Asked { waiting, .. } = &mut self.init {
            waiting.retain(|(l, _)| *l != lease);
        }
        let mut out: Vec<Out> = (self.relay.drain_of(Side::Lease(lease)).into_iter())
            .map(|(sent, _)| {
                Out::Server(
                    json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
                    "params": {"requestId": sent.to_value(), "reason": "the session ended"}}),
                )
            })
            .collect();
        let mut left = Vec::new();
        self.subscriptions.retain(|uri, sharers| {
            if sharers.remove(&lease) && sharers.is_empty() {
                left.push(uri.clone());
            }
            !sharers.is_empty()
        });
        for uri in left {
            let params = json!({"uri": uri});
            out.extend(
                self.own_request("resources/unsubscribe", params)
                    .map(|(_, o)| o),
            );
        }
        out
    }

    /// A message from sharer `lease` for the server.
    pub fn from_lease(&mut self, lease: Lease, message: Value) -> Vec<Out> {
        let Value::Object(message) = message else {
            return Vec::new();
        };
        if !self.leases.contains(&lease) {
            return Vec::new();
        }
        match envelope(&message) {
            (Some(method), Some(id)) => self.request(lease, id, &method, message),
            (Some(method), None) => self.notification(lease, &method, message),
            // An answer: the share never passes on a request of the server's, so it answers
            // nothing.
            _ => Vec::new(),
        }
    }

    fn request(
        &mut self,
        lease: Lease,
        id: Id,
        method: &str,
        message: Map<String, Value>,
    ) -> Vec<Out> {
        match method {
            "initialize" => self.initialize(lease, id, message),
            "resources/subscribe" | "resources/unsubscribe" => {
                self.subscription(lease, id, method, message)
            }
            _ => self.forward(lease, id, method, message),
        }
    }

    fn forward(
        &mut self,
        lease: Lease,
        id: Id,
        method: &str,
        mut message: Map<String, Value>,
    ) -> Vec<Out> {
        match self.relay.send(Side::Lease(lease), id.clone(), method) {
            Ok(sent) => {
                self.relay.take_progress(&sent, message.get_mut("params"));
                message.insert("id".into(), sent.to_value());
                vec![Out::Server(Value::Object(message))]
            }
            Err(refused) => {
                let text = format!("mcplock: the shared server: {refused}");
                vec![Out::Lease(lease, error(&id, INTERNAL, &text))]
            }
        }
    }

    fn initialize(&mut self, lease: Lease, id: Id, message: Map<String, Value>) -> Vec<Out> {
        match &mut self.init {
            Init::Done(result) => vec![Out::Lease(lease, answer(&id, result.clone()))],
            Init::Asked { waiting, .. } if waiting.len() < MAX_INIT_WAITING => {
                waiting.push((lease, id));
                Vec::new()
            }
            Init::Asked { .. } => {
                let text = "mcplock: too many sessions wait for the shared server to start";
                vec![Out::Lease(lease, error(&id, INTERNAL, text))]
            }
            Init::Not => {
                let mut params = match message.get("params") {
                    Some(Value::Object(params)) => params.clone(),
                    _ => Map::new(),
                };
                params.insert("capabilities".into(), json!({}));
                params.insert("clientInfo".into(), self.client_info.clone());
                match self.own_request("initialize", Value::Object(params)) {
                    Some((sent, out)) => {
                        let waiting = vec![(lease, id)];
                        self.init = Init::Asked { sent, waiting };
                        vec![out]
                    }
                    None => {
                        let text = "mcplock: the shared server has too many requests waiting";
                        vec![Out::Lease(lease, error(&id, INTERNAL, text))]
                    }
                }
            }
        }
    }

    fn subscription(
        &mut self,
        lease: Lease,
        id: Id,
        method: &str,
        message: Map<String, Value>,
    ) -> Vec<Out> {
        let uri = message
            .get("params")
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let Some(uri) = uri else {
            // Malformed: the server says so.
            return self.forward(lease, id, method, message);
        };
        if method == "resources/subscribe" {
            if !self.subscriptions.contains_key(&uri)
                && self.subscriptions.len() >= MAX_SUBSCRIPTIONS
            {
                let text = format!(
                    "mcplock: the shared server holds its most subscriptions ({MAX_SUBSCRIPTIONS})"
                );
                return vec![Out::Lease(lease, error(&id, INTERNAL, &text))];
            }
            self.subscriptions.entry(uri).or_default().insert(lease);
            return self.forward(lease, id, method, message);
        }
        let others = self.subscriptions.get_mut(&uri).is_some_and(|sharers| {
            sharers.remove(&lease);
            !sharers.is_empty()
        });
        if others {
            // Another sharer still wants its updates: the server keeps the subscription.
            return vec![Out::Lease(lease, answer(&id, json!({})))];
        }
        self.subscriptions.remove(&uri);
        self.forward(lease, id, method, message)
    }

    fn notification(
        &mut self,
        lease: Lease,
        method: &str,
        mut message: Map<String, Value>,
    ) -> Vec<Out> {
        match method {
            "notifications/initialized" => {
                if self.initialized_sent || !matches!(self.init, Init::Done(_)) {
                    return Vec::new();
                }
                self.initialized_sent = true;
                vec![Out::Server(Value::Object(message))]
            }
            "notifications/cancelled" => {
                let params = message.get_mut("params").and_then(Value::as_object_mut);
                match self
                    .relay
                    .translate_notification(Side::Lease(lease), method, params)
                {
                    Ok(Some(_)) => vec![Out::Server(Value::Object(message))],
                    _ => Vec::new(),
                }
            }
            // Progress on, and roots of, requests the server made of a client: the share
            // passes none on.
            _ => Vec::new(),
        }
    }

    /// A message from the server.
    pub fn from_server(&mut self, message: Value) -> Vec<Out> {
        let Value::Object(mut message) = message else {
            return Vec::new();
        };
        match envelope(&message) {
            (None, Some(sent)) => self.answered(&sent, message),
            (Some(method), Some(id)) => {
                let reply = if method == "ping" {
                    answer(&id, json!({}))
                } else {
                    let text = format!(
                        "a shared server's requests to a client are not relayed (mcplock gateway): {method}"
                    );
                    error(&id, METHOD_NOT_FOUND, &text)
                };
                vec![Out::Server(reply)]
            }
            (Some(method), None) => {
                let params = message.get_mut("params").and_then(Value::as_object_mut);
                self.server_notification(&method, params)
                    .into_iter()
                    .map(|lease| Out::Lease(lease, Value::Object(message.clone())))
                    .collect()
            }
            (None, None) => Vec::new(),
        }
    }

    /// Who a notification from the server reaches (its progress token translated on the way).
    fn server_notification(
        &mut self,
        method: &str,
        params: Option<&mut Map<String, Value>>,
    ) -> Vec<Lease> {
        match method {
            "notifications/tools/list_changed"
            | "notifications/prompts/list_changed"
            | "notifications/resources/list_changed" => self.leases.iter().copied().collect(),
            "notifications/resources/updated" => {
                let uri = params
                    .as_ref()
                    .and_then(|p| p.get("uri"))
                    .and_then(Value::as_str);
                uri.and_then(|uri| self.subscriptions.get(uri))
                    .map(|sharers| sharers.iter().copied().collect())
                    .unwrap_or_default()
            }
            "notifications/progress" => {
                let token = params
                    .as_ref()
                    .and_then(|p| p.get("progressToken"))
                    .and_then(Id::from_value);
                let Some(Side::Lease(lease)) = token.and_then(|t| self.relay.origin_of(&t)) else {
                    return Vec::new();
                };
                match self
                    .relay
                    .translate_notification(Side::Server, method, params)
                {
                    Ok(_) => vec![lease],
                    Err(_) => Vec::new(),
                }
            }
            // Log lines, cancellations of what the server asked (never passed on), anything
            // else: no sharer can be told it is theirs.
            _ => Vec::new(),
        }
    }

    fn answered(&mut self, sent: &Id, mut message: Map<String, Value>) -> Vec<Out> {
        let Some(Waiting {
            origin,
            original,
            method,
            ..
        }) = self.relay.answer(sent)
        else {
            return Vec::new();
        };
        match origin {
            Side::Lease(lease) if self.leases.contains(&lease) => {
                message.insert("id".into(), original.to_value());
                vec![Out::Lease(lease, Value::Object(message))]
            }
            Side::Share if method == "initialize" => self.initialized(sent, message),
            _ => Vec::new(),
        }
    }

    /// The answer to the share's one `initialize`, for every sharer waiting for it: a result
    /// is kept for those to come; an error is theirs, and the next sharer asks again.
    fn initialized(&mut self, sent: &Id, message: Map<String, Value>) -> Vec<Out> {
        let Init::Asked { sent: asked, .. } = &self.init else {
            return Vec::new();
        };
        if asked != sent {
            return Vec::new();
        }
        let Init::Asked { waiting, .. } = std::mem::replace(&mut self.init, Init::Not) else {
            return Vec::new();
        };
        let result = message.get("result").cloned();
        if let Some(result) = &result {
            self.init = Init::Done(result.clone());
        }
        waiting
            .into_iter()
            .map(|(lease, id)| {
                let mut reply = message.clone();
                reply.insert("id".into(), id.to_value());
                if result.is_none() && !reply.contains_key("error") {
                    let text = "mcplock: the shared server did not initialize";
                    return Out::Lease(lease, error(&id, INTERNAL, text));
                }
                Out::Lease(lease, Value::Object(reply))
            })
            .collect()
    }

    /// A request of the share's own, and the id it goes on as; its answer goes nowhere but
    /// [`Share::initialized`]. `None` when too many requests wait.
    fn own_request(&mut self, method: &str, params: Value) -> Option<(Id, Out)> {
        let own = Id::Number(self.next_own);
        self.next_own = self.next_own.wrapping_add(1);
        let sent = self.relay.send(Side::Share, own, method).ok()?;
        let request =
            json!({"jsonrpc": "2.0", "id": sent.to_value(), "method": method, "params": params});
        Some((sent, Out::Server(request)))
    }
}

/// A message's method and id, each if it has one (what tells requests, notifications and
/// answers apart).
fn envelope(message: &Map<String, Value>) -> (Option<String>, Option<Id>) {
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned);
    (method, message.get("id").and_then(Id::from_value))
}

fn answer(id: &Id, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id.to_value(), "result": result})
}

fn error(id: &Id, code: i64, message: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id.to_value(), "error": {"code": code, "message": message}})
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn share() -> Share {
        Share::new(64, json!({"name": "mcplock-gateway", "version": "test"}))
    }

    fn to_server(out: &[Out]) -> Vec<Value> {
        out.iter()
            .filter_map(|o| match o {
                Out::Server(v) => Some(v.clone()),
                Out::Lease(..) => None,
            })
            .collect()
    }

    fn only_server(out: Vec<Out>) -> Value {
        let mut sent = to_server(&out);
        assert_eq!((sent.len(), out.len()), (1, 1), "{out:?}");
        sent.remove(0)
    }

    fn init(share: &mut Share, lease: Lease) -> Vec<Out> {
        let request = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "clientInfo": {"name": "host"},
                "capabilities": {"sampling": {}, "roots": {"listChanged": true}}}});
        share.from_lease(lease, request)
    }

    /// Two sharers initialized through one `initialize`.
    fn started() -> (Share, Lease, Lease) {
        let mut share = share();
        let (a, b) = (share.attach(), share.attach());
        let asked = only_server(init(&mut share, a));
        assert_eq!(asked["params"]["capabilities"], json!({}));
        assert_eq!(asked["params"]["clientInfo"]["name"], "mcplock-gateway");
        assert_eq!(asked["params"]["protocolVersion"], "2025-11-25");
        assert!(
            init(&mut share, b).is_empty(),
            "the second waits for the first answer"
        );
        let result = json!({"protocolVersion": "2025-11-25", "serverInfo": {"name": "s"}});
        let answered =
            share.from_server(json!({"jsonrpc": "2.0", "id": asked["id"], "result": result}));
        assert_eq!(answered.len(), 2);
        for (out, lease) in answered.iter().zip([a, b]) {
            assert_eq!(
                out,
                &Out::Lease(lease, answer(&Id::Number(0), result.clone()))
            );
        }
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        assert_eq!(share.from_lease(a, initialized.clone()).len(), 1);
        assert!(share.from_lease(b, initialized).is_empty(), "sent once");
        (share, a, b)
    }

    #[test]
    fn sharers_using_the_same_ids_and_tokens_each_get_only_their_own_answers_and_progress() {
        let (mut share, a, b) = started();
        let late = share.attach();
        assert!(
            matches!(&init(&mut share, late)[..], [Out::Lease(l, v)] if *l == late && v["result"]["serverInfo"]["name"] == "s")
        );
        let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "t", "_meta": {"progressToken": 1}}});
        let on_a = only_server(share.from_lease(a, call.clone()));
        let on_b = only_server(share.from_lease(b, call));
        assert_ne!(on_a["id"], on_b["id"]);
        assert_ne!(
            on_a["params"]["_meta"]["progressToken"],
            on_b["params"]["_meta"]["progressToken"]
        );
        let progress = json!({"jsonrpc": "2.0", "method": "notifications/progress",
            "params": {"progressToken": on_b["params"]["_meta"]["progressToken"], "progress": 1}});
        match &share.from_server(progress)[..] {
            [Out::Lease(lease, v)] => {
                assert_eq!((*lease, &v["params"]["progressToken"]), (b, &json!(1)));
            }
            other => panic!("{other:?}"),
        }
        let result = json!({"content": [{"type": "text", "text": "for a"}]});
        let answered =
            share.from_server(json!({"jsonrpc": "2.0", "id": on_a["id"], "result": result}));
        assert_eq!(
            answered,
            vec![Out::Lease(a, answer(&Id::Number(1), result.clone()))]
        );
        // Answered once only; an id nobody sent goes nowhere.
        assert!(
            share
                .from_server(json!({"jsonrpc": "2.0", "id": on_a["id"], "result": {}}))
                .is_empty()
        );
        assert!(
            share
                .from_server(json!({"jsonrpc": "2.0", "id": 999, "result": {}}))
                .is_empty()
        );
        // b cancels its own request under the id the server knows; a cannot cancel b's.
        let cancel = json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}});
        assert!(share.from_lease(a, cancel.clone()).is_empty());
        assert_eq!(
            only_server(share.from_lease(b, cancel))["params"]["requestId"],
            on_b["id"]
        );
    }

    #[test]
    fn what_the_server_announces_reaches_those_it_concerns_and_what_it_asks_is_refused() {
        let (mut share, a, b) = started();
        let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
        let told: Vec<Lease> = (share.from_server(changed).iter())
            .filter_map(|o| match o {
                Out::Lease(l, _) => Some(*l),
                Out::Server(_) => None,
            })
            .collect();
        assert_eq!(told, vec![a, b]);
        let log = json!({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}});
        assert!(share.from_server(log).is_empty(), "a log line is nobody's");
        let sampling =
            json!({"jsonrpc": "2.0", "id": 7, "method": "sampling/createMessage", "params": {}});
        let refused = only_server(share.from_server(sampling));
        assert_eq!(
            (refused["id"].clone(), refused["error"]["code"].clone()),
            (json!(7), json!(METHOD_NOT_FOUND))
        );
        let ping =
            only_server(share.from_server(json!({"jsonrpc": "2.0", "id": "p", "method": "ping"})));
        assert_eq!(ping, json!({"jsonrpc": "2.0", "id": "p", "result": {}}));
        // Both subscribe to one resource: updates reach both; a's unsubscribe is answered here
        // while b still wants it; b's goes to the server.
        let sub = json!({"jsonrpc": "2.0", "id": 3, "method": "resources/subscribe", "params": {"uri": "r://1"}});
        let sent_a = only_server(share.from_lease(a, sub.clone()));
        let sent_b = only_server(share.from_lease(b, sub));
        share.from_server(json!({"jsonrpc": "2.0", "id": sent_b["id"], "result": {}}));
        share.from_server(json!({"jsonrpc": "2.0", "id": sent_a["id"], "result": {}}));
        let updated = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "r://1"}});
        assert_eq!(share.from_server(updated.clone()).len(), 2);
        let other = json!({"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": {"uri": "r://2"}});
        assert!(share.from_server(other).is_empty());
        let unsub = json!({"jsonrpc": "2.0", "id": 4, "method": "resources/unsubscribe", "params": {"uri": "r://1"}});
        assert_eq!(
            share.from_lease(a, unsub),
            vec![Out::Lease(a, answer(&Id::Number(4), json!({})))]
        );
        assert_eq!(
            share.from_server(updated.clone()),
            vec![Out::Lease(b, updated.clone())]
        );
        // b leaves with a request waiting: it is cancelled, and its subscription ended.
        let call =
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": "t"}});
        let waiting = only_server(share.from_lease(b, call));
        let left = to_server(&share.detach(b));
        let methods: Vec<&str> = left.iter().filter_map(|m| m["method"].as_str()).collect();
        assert_eq!(
            methods,
            ["notifications/cancelled", "resources/unsubscribe"]
        );
        assert_eq!(left[0]["params"]["requestId"], waiting["id"]);
        assert!(
            share
                .from_server(json!({"jsonrpc": "2.0", "id": waiting["id"], "result": {}}))
                .is_empty()
        );
        assert!(share.from_server(updated).is_empty());
        assert!(
            share
                .from_lease(b, json!({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
                .is_empty()
        );
        assert_eq!(share.sharers(), 1);
        assert!(share.detach(a).is_empty() && share.is_empty());
    }

    #[test]
    fn a_failed_initialize_reaches_every_waiting_sharer_and_the_next_asks_again() {
        let mut share = share();
        let (a, b) = (share.attach(), share.attach());
        let asked = only_server(init(&mut share, a));
        assert!(init(&mut share, b).is_empty());
        let failed = json!({"jsonrpc": "2.0", "id": asked["id"], "error": {"code": -32602, "message": "unsupported"}});
        let told = share.from_server(failed);
        assert_eq!(told.len(), 2);
        assert!(told.iter().all(|o| matches!(o, Out::Lease(_, v) if v["error"]["message"] == "unsupported" && v["id"] == 0)));
        let again = only_server(init(&mut share, b));
        assert_eq!(again["method"], "initialize");
        assert_ne!(again["id"], asked["id"]);
    }

    proptest! {
        /// Whatever ids the sharers use and in whatever order the server answers, each answer
        /// reaches exactly the sharer that asked, under its own id, and none reaches a sharer
        /// that left.
        #[test]
        fn every_answer_reaches_exactly_the_sharer_that_asked(
            steps in prop::collection::vec((0u64..4, 0i64..4, any::<bool>()), 1..80),
            order in any::<u64>(),
        ) {
            let mut share = share();
            let leases: Vec<Lease> = (0..4).map(|_| share.attach()).collect();
            let mut asked = Vec::new();
            let mut left = BTreeSet::new();
            for (who, id, leave) in steps {
                let lease = leases[who as usize];
                if leave && !left.contains(&lease) && left.len() < 3 {
                    share.detach(lease);
                    left.insert(lease);
                    continue;
                }
                let request = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list"});
                for out in share.from_lease(lease, request) {
                    if let Out::Server(sent) = out {
                        asked.push((sent["id"].clone(), lease, id));
                    }
                }
            }
            let n = asked.len().max(1);
            asked.rotate_left((order as usize) % n);
            for (sent, lease, id) in asked {
                let out = share.from_server(json!({"jsonrpc": "2.0", "id": sent, "result": {"tools": []}}));
                if left.contains(&lease) {
                    prop_assert!(out.is_empty());
                } else {
                    prop_assert_eq!(out.len(), 1);
                    let Out::Lease(to, v) = &out[0] else { panic!("{out:?}") };
                    prop_assert_eq!((*to, &v["id"]), (lease, &json!(id)));
                }
            }
        }
    }
}
