//! Request ids across the proxy: the host never sees the server's ids and the server never
//! sees the host's. Every request crossing the proxy (and every request of the proxy's own,
//! such as a re-listing) gets a fresh id on the far side; the answer is mapped back, and a
//! `notifications/cancelled` is translated the same way. Progress tokens too: a request's
//! `_meta.progressToken` goes on as the proxy's id for that request, and a progress
//! notification is mapped back only while its request is waiting. The table is bounded: past
//! its cap a new request is refused (the caller answers it with an error), never dropped
//! silently; a cancelled request leaves it at once.

use crate::core::jsonrpc::Id;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Debug;
use std::hash::Hash;

/// Who sent a request through the proxy (and so receives its answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The agent host, asking the server.
    Host,
    /// The server, asking the host (sampling, elicitation, roots).
    Server,
    /// The proxy itself, asking the server (re-listing after `list_changed`).
    Proxy,
}

/// A request waiting for its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting<O = Origin> {
    pub origin: O,
    /// The id the sender used.
    pub original: Id,
    pub method: String,
    /// The progress token the sender put in the request, when it asked for progress.
    pub progress: Option<Value>,
}

/// Why a request cannot be relayed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refused {
    /// The table is full: too many requests are waiting.
    #[error("{0} requests are already waiting for an answer; this one is refused")]
    Full(usize),
    /// The sender reused an id that still waits for its answer.
    #[error("a request with this id is still waiting for its answer; this one is refused")]
    DuplicateId,
}

/// Why a notification is not forwarded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Dropped {
    #[error("a cancellation of no request still waiting")]
    Cancel,
    #[error("a progress report for no request still waiting with that progress token")]
    Progress,
}

/// Requests in flight, both ways (or, for a shared server, from each of its sharers: the
/// origin type is whatever tells senders apart).
#[derive(Debug)]
pub struct Relay<O = Origin> {
    next: i64,
    cap: usize,
    /// By the id the proxy sent on.
    waiting: HashMap<Id, Waiting<O>>,
    /// By who sent it and their id: to translate a cancellation.
    sent_as: HashMap<(O, Id), Id>,
}

impl<O: Copy + Eq + Hash + Debug> Relay<O> {
    pub fn new(cap: usize) -> Relay<O> {
        Relay {
            next: 1,
            cap,
            waiting: HashMap::new(),
            sent_as: HashMap::new(),
        }
    }

    /// Registers a request from `origin` with its own `id`; returns the id to send it on with.
    /// A sender reusing an id still waiting is refused the same way (the answer could not be
    /// told apart).
    pub fn send(&mut self, origin: O, id: Id, method: &str) -> Result<Id, Refused> {
        if self.sent_as.contains_key(&(origin, id.clone())) {
            return Err(Refused::DuplicateId);
        }
        if self.waiting.len() >= self.cap {
            return Err(Refused::Full(self.waiting.len()));
        }
        // Ids the proxy sends are its own numbers: they never collide, whatever the peers use.
        let sent = Id::Number(self.next);
        self.next = self.next.wrapping_add(1).max(1);
        self.sent_as.insert((origin, id.clone()), sent.clone());
        self.waiting.insert(
            sent.clone(),
            Waiting {
                origin,
                original: id,
                method: method.to_string(),
                progress: None,
            },
        );
        Ok(sent)
    }

    /// The answer to a request the proxy sent on as `sent`: who waits for it and under which
    /// id. `None` for an id the proxy never sent (or already answered): such an answer is
    /// dropped, never forwarded.
    pub fn answer(&mut self, sent: &Id) -> Option<Waiting<O>> {
        let waiting = self.waiting.remove(sent)?;
        self.sent_as
            .remove(&(waiting.origin, waiting.original.clone()));
        Some(waiting)
    }

    /// The sender of `original` gave up on it: the entry leaves the table (a late answer is then
    /// dropped as an answer to nothing) and the id to cancel on the far side is returned.
    pub fn cancel(&mut self, origin: O, original: &Id) -> Option<(Id, Waiting<O>)> {
        let sent = self.sent_as.remove(&(origin, original.clone()))?;
        let waiting = self.waiting.remove(&sent)?;
        Some((sent, waiting))
    }

    /// Rewrites the progress token of a request sent on as `sent` (from `params._meta`) to the
    /// proxy's own token, `sent` itself, and keeps the sender's token for the way back. Tokens
    /// that are neither a string nor a number are left alone: the far side refuses them.
    pub fn take_progress(&mut self, sent: &Id, params: Option<&mut Value>) {
        let Some(meta) = params
            .and_then(|p| p.get_mut("_meta"))
            .and_then(Value::as_object_mut)
        else {
            return;
        };
        let Some(token) = meta
            .get("progressToken")
            .filter(|t| Id::from_value(t).is_some())
        else {
            return;
        };
        if let Some(waiting) = self.waiting.get_mut(sent) {
            waiting.progress = Some(token.clone());
            meta.insert("progressToken".into(), sent.to_value());
        }
    }

    /// Translates a notification `from` one side for the other: a cancellation of the sender's
    /// own request gets the id the far side knows (and the request leaves the table); a
    /// progress report gets the token the receiver gave. `None` when it concerns no request of
    /// the receiver still waiting: it is dropped, never forwarded as it was.
    pub fn translate_notification(
        &mut self,
        from: O,
        method: &str,
        params: Option<&mut Map<String, Value>>,
    ) -> Result<Option<(Id, Waiting<O>)>, Dropped> {
        match method {
            "notifications/cancelled" => {
                let params = params.ok_or(Dropped::Cancel)?;
                let original = params
                    .get("requestId")
                    .and_then(Id::from_value)
                    .ok_or(Dropped::Cancel)?;
                let (on, waiting) = self.cancel(from, &original).ok_or(Dropped::Cancel)?;
                params.insert("requestId".into(), on.to_value());
                Ok(Some((on, waiting)))
            }
            "notifications/progress" => {
                let params = params.ok_or(Dropped::Progress)?;
                let sent = params
                    .get("progressToken")
                    .and_then(Id::from_value)
                    .ok_or(Dropped::Progress)?;
                // The receiver asked through the proxy: its request is of the other origin.
                let token = self
                    .waiting
                    .get(&sent)
                    .filter(|w| w.origin != from)
                    .and_then(|w| w.progress.clone())
                    .ok_or(Dropped::Progress)?;
                params.insert("progressToken".into(), token);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Every request still waiting, removed: when a side goes away, each gets an error.
    pub fn drain(&mut self) -> Vec<Waiting<O>> {
        self.sent_as.clear();
        let mut all: Vec<(Id, Waiting<O>)> = self.waiting.drain().collect();
        all.sort_by_key(|(id, _)| sent_order(id));
        all.into_iter().map(|(_, w)| w).collect()
    }

    /// Every request of `origin` still waiting, removed, each with the id it was sent on (so
    /// the far side can be told it is cancelled), in the order they were sent.
    pub fn drain_of(&mut self, origin: O) -> Vec<(Id, Waiting<O>)> {
        let sent: Vec<Id> = (self.waiting.iter())
            .filter(|(_, w)| w.origin == origin)
            .map(|(id, _)| id.clone())
            .collect();
        let mut out: Vec<(Id, Waiting<O>)> = (sent.into_iter())
            .filter_map(|id| Some((id.clone(), self.waiting.remove(&id)?)))
            .collect();
        for (_, w) in &out {
            self.sent_as.remove(&(w.origin, w.original.clone()));
        }
        out.sort_by_key(|(id, _)| sent_order(id));
        out
    }

    /// Who sent the request that went on as `sent`, while it waits.
    pub fn origin_of(&self, sent: &Id) -> Option<O> {
        self.waiting.get(sent).map(|w| w.origin)
    }

    /// The id the proxy sent on for the one request of `origin` still waiting, if exactly one
    /// is: an answer that could not be read must then have been its answer.
    pub fn sole(&self, origin: O) -> Option<Id> {
        let mut of_origin = self.waiting.iter().filter(|(_, w)| w.origin == origin);
        let (sent, _) = of_origin.next()?;
        of_origin.next().is_none().then(|| sent.clone())
    }

    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }
}

/// The order ids were sent in: the proxy's own ids are increasing numbers.
fn sent_order(id: &Id) -> i64 {
    match id {
        Id::Number(n) => *n,
        Id::String(_) => i64::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn ids_are_translated_both_ways_and_never_collide() {
        let mut relay = Relay::new(16);
        // Host and server both use id 1; the proxy's own re-listing too.
        let a = relay
            .send(Origin::Host, Id::Number(1), "tools/call")
            .unwrap();
        let b = relay
            .send(Origin::Server, Id::Number(1), "roots/list")
            .unwrap();
        let c = relay
            .send(Origin::Proxy, Id::Number(1), "tools/list")
            .unwrap();
        assert!(a != b && b != c && a != c);
        let answered = relay.answer(&b).unwrap();
        assert_eq!(
            (answered.origin, answered.original),
            (Origin::Server, Id::Number(1))
        );
        assert_eq!(relay.answer(&b), None, "a second answer is not forwarded");
        assert_eq!(relay.answer(&Id::String("never".into())), None);
        // Reusing an id that is still waiting is refused; once answered it may be reused.
        assert_eq!(
            relay.send(Origin::Host, Id::Number(1), "x"),
            Err(Refused::DuplicateId)
        );
        relay.answer(&a).unwrap();
        assert!(relay.send(Origin::Host, Id::Number(1), "x").is_ok());
        assert_eq!(relay.sole(Origin::Proxy), Some(c.clone()));
        assert_eq!(relay.sole(Origin::Server), None);
        let drained = relay.drain();
        assert_eq!(drained.len(), 2);
        assert!(relay.is_empty());
    }

    fn params(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_cancellation_reaches_the_far_side_under_its_id_and_frees_the_entry() {
        let mut relay = Relay::new(16);
        let on = relay
            .send(Origin::Host, Id::String("h".into()), "tools/call")
            .unwrap();
        let mut cancel = params(json!({"requestId": "h", "reason": "user"}));
        let (sent, waiting) = relay
            .translate_notification(Origin::Host, "notifications/cancelled", Some(&mut cancel))
            .unwrap()
            .unwrap();
        assert_eq!((sent, waiting.method.as_str()), (on.clone(), "tools/call"));
        assert_eq!(cancel["requestId"], on.to_value());
        assert_eq!(cancel["reason"], "user");
        assert!(relay.is_empty(), "a cancelled request leaves the table");
        assert_eq!(relay.answer(&on), None, "a late answer goes nowhere");
        // Cancelling it again, or another side's request, or with no id: dropped.
        let mut again = params(json!({"requestId": "h"}));
        assert_eq!(
            relay.translate_notification(Origin::Host, "notifications/cancelled", Some(&mut again)),
            Err(Dropped::Cancel)
        );
        relay
            .send(Origin::Server, Id::Number(5), "sampling/createMessage")
            .unwrap();
        let mut not_its_own = params(json!({"requestId": 5}));
        assert_eq!(
            relay.translate_notification(
                Origin::Host,
                "notifications/cancelled",
                Some(&mut not_its_own)
            ),
            Err(Dropped::Cancel)
        );
        assert_eq!(
            relay.translate_notification(Origin::Host, "notifications/cancelled", None),
            Err(Dropped::Cancel)
        );
        assert_eq!(relay.len(), 1);
    }

    #[test]
    fn progress_tokens_are_the_proxys_on_the_far_side_and_mapped_back_while_waiting() {
        let mut relay = Relay::new(16);
        let on = relay
            .send(Origin::Host, Id::Number(1), "tools/call")
            .unwrap();
        let mut request =
            json!({"name": "t", "_meta": {"progressToken": "host-token", "other": 1}});
        relay.take_progress(&on, Some(&mut request));
        assert_eq!(request["_meta"]["progressToken"], on.to_value());
        assert_eq!(request["_meta"]["other"], 1);
        let mut report = params(json!({"progressToken": on.to_value(), "progress": 1}));
        assert_eq!(
            relay.translate_notification(
                Origin::Server,
                "notifications/progress",
                Some(&mut report)
            ),
            Ok(None)
        );
        assert_eq!(report["progressToken"], "host-token");
        // The host cannot report progress on its own request; a token nobody gave is dropped.
        let mut own = params(json!({"progressToken": on.to_value(), "progress": 1}));
        assert_eq!(
            relay.translate_notification(Origin::Host, "notifications/progress", Some(&mut own)),
            Err(Dropped::Progress)
        );
        let mut invented = params(json!({"progressToken": "host-token", "progress": 1}));
        assert_eq!(
            relay.translate_notification(
                Origin::Server,
                "notifications/progress",
                Some(&mut invented)
            ),
            Err(Dropped::Progress)
        );
        // A request that asked for no progress gets none; after the answer, none either.
        let quiet = relay
            .send(Origin::Host, Id::Number(2), "tools/call")
            .unwrap();
        let mut report = params(json!({"progressToken": quiet.to_value(), "progress": 1}));
        assert!(
            relay
                .translate_notification(Origin::Server, "notifications/progress", Some(&mut report))
                .is_err()
        );
        relay.answer(&on).unwrap();
        let mut late = params(json!({"progressToken": on.to_value(), "progress": 2}));
        assert!(
            relay
                .translate_notification(Origin::Server, "notifications/progress", Some(&mut late))
                .is_err()
        );
        // Other notifications pass untouched.
        let mut log = params(json!({"level": "info"}));
        assert_eq!(
            relay.translate_notification(Origin::Server, "notifications/message", Some(&mut log)),
            Ok(None)
        );
    }

    #[test]
    fn the_table_is_bounded() {
        let mut relay = Relay::new(3);
        for i in 0..3 {
            relay.send(Origin::Host, Id::Number(i), "m").unwrap();
        }
        assert_eq!(
            relay.send(Origin::Host, Id::Number(9), "m"),
            Err(Refused::Full(3))
        );
        assert_eq!(relay.len(), 3);
    }

    proptest! {
        #[test]
        fn every_answer_reaches_exactly_its_sender(
            requests in prop::collection::vec((0u8..3, any::<i64>(), any::<bool>()), 1..64)
        ) {
            let mut relay = Relay::new(1_000);
            let mut sent = Vec::new();
            for (origin, id, string) in requests {
                let origin = [Origin::Host, Origin::Server, Origin::Proxy][origin as usize];
                let id = if string { Id::String(id.to_string()) } else { Id::Number(id) };
                if let Ok(on) = relay.send(origin, id.clone(), "m") {
                    sent.push((on, origin, id));
                }
            }
            // Proxy ids are unique.
            let mut ids: Vec<String> = sent.iter().map(|(on, _, _)| on.to_string()).collect();
            ids.sort();
            ids.dedup();
            prop_assert_eq!(ids.len(), sent.len());
            for (on, origin, id) in sent.iter().rev() {
                let w = relay.answer(on).unwrap();
                prop_assert_eq!((w.origin, &w.original), (*origin, id));
            }
            prop_assert!(relay.is_empty());
        }
    }
}
