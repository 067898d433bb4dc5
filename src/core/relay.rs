//! Request ids across the proxy: the host never sees the server's ids and the server never
//! sees the host's. Every request crossing the proxy (and every request of the proxy's own,
//! such as a re-listing) gets a fresh id on the far side; the answer is mapped back, and a
//! `notifications/cancelled` is translated the same way. The table is bounded: past its cap a
//! new request is refused (the caller answers it with an error), never dropped silently.

use crate::core::jsonrpc::Id;
use std::collections::HashMap;

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
pub struct Waiting {
    pub origin: Origin,
    /// The id the sender used.
    pub original: Id,
    pub method: String,
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

/// Requests in flight, both ways.
#[derive(Debug)]
pub struct Relay {
    next: i64,
    cap: usize,
    /// By the id the proxy sent on.
    waiting: HashMap<Id, Waiting>,
    /// By who sent it and their id: to translate a cancellation.
    sent_as: HashMap<(Origin, Id), Id>,
}

impl Relay {
    pub fn new(cap: usize) -> Relay {
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
    pub fn send(&mut self, origin: Origin, id: Id, method: &str) -> Result<Id, Refused> {
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
            },
        );
        Ok(sent)
    }

    /// The answer to a request the proxy sent on as `sent`: who waits for it and under which
    /// id. `None` for an id the proxy never sent (or already answered): such an answer is
    /// dropped, never forwarded.
    pub fn answer(&mut self, sent: &Id) -> Option<Waiting> {
        let waiting = self.waiting.remove(sent)?;
        self.sent_as
            .remove(&(waiting.origin, waiting.original.clone()));
        Some(waiting)
    }

    /// The id to put in a `notifications/cancelled` that `origin` sent about its request
    /// `original`; `None` when no such request is waiting (nothing to cancel on the far side).
    pub fn cancelled(&self, origin: Origin, original: &Id) -> Option<Id> {
        self.sent_as.get(&(origin, original.clone())).cloned()
    }

    /// Every request still waiting, removed: when a side goes away, each gets an error.
    pub fn drain(&mut self) -> Vec<Waiting> {
        self.sent_as.clear();
        let mut all: Vec<(Id, Waiting)> = self.waiting.drain().collect();
        all.sort_by_key(|(id, _)| match id {
            Id::Number(n) => *n,
            Id::String(_) => i64::MAX,
        });
        all.into_iter().map(|(_, w)| w).collect()
    }

    /// The id the proxy sent on for the one request of `origin` still waiting, if exactly one
    /// is: an answer that could not be read must then have been its answer.
    pub fn sole(&self, origin: Origin) -> Option<Id> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

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
        assert_eq!(
            relay.cancelled(Origin::Host, &Id::Number(1)),
            Some(a.clone())
        );
        assert_eq!(
            relay.cancelled(Origin::Server, &Id::Number(1)),
            Some(b.clone())
        );
        let answered = relay.answer(&b).unwrap();
        assert_eq!(
            (answered.origin, answered.original),
            (Origin::Server, Id::Number(1))
        );
        assert_eq!(relay.answer(&b), None, "a second answer is not forwarded");
        assert_eq!(relay.answer(&Id::String("never".into())), None);
        assert_eq!(relay.cancelled(Origin::Server, &Id::Number(1)), None);
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
