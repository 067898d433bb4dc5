//! Where the limits' counters live (`core::limits` decides what is counted): in this process
//! by default, or in Redis (`--state redis://HOST:PORT`) so that every gateway replica and proxy
//! given the same store shares one budget per agent. A decision the store cannot make is a
//! refusal (`limits-unavailable`), unless the call's tier is one the operator chose to let
//! through (`--limits-fail-open TIER`); either way it is said on stderr once per outage.

mod redis_store;

use crate::core::limits::{Admission, Check, Counters, Limits, Refusal, Subject};
use crate::core::tier::Tier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a decision may wait for the shared store before it is refused.
pub const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// A place held in the limits' budgets while a call is out: dropping it frees the call's
/// concurrent places.
pub type Permit = Box<dyn Send + Sync>;

pub struct Limiter {
    limits: Limits,
    store: Store,
    /// Tiers whose calls pass when the store cannot be asked.
    fail_open: Vec<Tier>,
}

/// Where the counters are: made once per process and kept across reloads, so a reload does not
/// give every agent a fresh budget (a counter is named by its limit, so an unchanged limit keeps
/// counting and a changed one starts afresh).
#[derive(Clone)]
pub struct Store {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    kind: Kind,
    /// The store answered last time (said on stderr once per change).
    up: AtomicBool,
    /// Told whether the store answered, at every decision that asked it (the metrics).
    observer: Mutex<Option<Box<Observer>>>,
}

enum Kind {
    Memory(Arc<Mutex<Counters>>),
    Redis(redis_store::RedisStore),
}

/// Hears whether the store answered.
pub type Observer = dyn Fn(bool) + Send + Sync;

/// Why the shared store cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl crate::core::code::Coded for StoreError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::Usage
    }
}

impl Store {
    /// Counters in this process.
    pub fn memory() -> Store {
        Store::of(Kind::Memory(Arc::default()))
    }

    /// Counters in the Redis at `url` (`redis://` or `rediss://`, no password in it: the
    /// password comes from `password`; `roots`: the CA certificates a `rediss://` server's is
    /// checked against instead of the platform's). Nothing is sent before the first decision.
    pub fn redis(
        url: &str,
        password: Option<&str>,
        roots: Option<Vec<u8>>,
    ) -> Result<Store, StoreError> {
        let store = redis_store::RedisStore::open(url, (password, roots), STORE_TIMEOUT)?;
        Ok(Store::of(Kind::Redis(store)))
    }

    fn of(kind: Kind) -> Store {
        Store {
            inner: Arc::new(StoreInner {
                kind,
                up: AtomicBool::new(true),
                observer: Mutex::new(None),
            }),
        }
    }

    /// Where the counters are, for people.
    pub fn name(&self) -> String {
        match &self.inner.kind {
            Kind::Memory(_) => "this process".into(),
            Kind::Redis(store) => store.name(),
        }
    }

    /// Asks the store once (at start): `Err` says why it cannot be used now.
    pub async fn probe(&self) -> Result<(), StoreError> {
        match &self.inner.kind {
            Kind::Memory(_) => Ok(()),
            Kind::Redis(store) => store.ping().await,
        }
    }

    /// Tells `observer` whether the store answered, at every decision that asked it.
    pub fn observe(&self, observer: Box<Observer>) {
        *self
            .inner
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    async fn admit(&self, checks: Vec<Check>) -> Result<Decided, String> {
        match &self.inner.kind {
            Kind::Memory(counters) => Ok(memory_admit(counters, checks)),
            Kind::Redis(store) => store.admit(checks).await,
        }
    }

    /// Says on stderr when the store stops or starts answering, once per change; `open` is
    /// what passes meanwhile.
    fn heard(&self, answered: bool, open: &[Tier]) {
        if let Some(observer) = &*self
            .inner
            .observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
        {
            observer(answered);
        }
        if self.inner.up.swap(answered, Ordering::SeqCst) == answered {
            return;
        }
        let name = self.name();
        let fields = [("store", name.as_str())];
        if answered {
            crate::edge::log::info("limits", "the limits' store answers again", &fields);
            return;
        }
        let passing = if open.is_empty() {
            "every call under a limit is refused".to_string()
        } else {
            let tiers: Vec<&str> = open.iter().map(|t| t.as_str()).collect();
            format!(
                "calls under a limit are refused, except of {}",
                tiers.join(", ")
            )
        };
        let text = format!("the limits' store does not answer: {passing} until it does");
        crate::edge::log::warn("limits", &text, &fields);
    }
}

impl Limiter {
    /// `limits` counted in `store`; calls of the `fail_open` tiers pass when it cannot be asked.
    pub fn new(limits: Limits, store: Store, fail_open: Vec<Tier>) -> Limiter {
        Limiter {
            limits,
            store,
            fail_open,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Admits `call` (counting it in every budget it falls under, and holding its places until
    /// the permit is dropped), or says why not.
    pub async fn admit(&self, call: &Subject<'_>) -> Result<Option<Permit>, Refusal> {
        let checks = self.limits.checks(call);
        if checks.is_empty() {
            return Ok(None);
        }
        let decided = self.store.admit(checks).await;
        self.store.heard(decided.is_ok(), &self.fail_open);
        match decided {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(denied)) => Err(self.refusal(denied)),
            Err(_) if call.tier.is_some_and(|t| self.fail_open.contains(&t)) => Ok(None),
            Err(why) => Err(Refusal {
                code: "limits-unavailable",
                message: format!(
                    "limits-unavailable: the limits cannot be checked: {}: {why} (calls under a limit are refused until it answers)",
                    self.store.name()
                ),
                retry_us: Some(1_000_000),
            }),
        }
    }

    fn refusal(&self, denied: Denied) -> Refusal {
        let limit = match &denied.check {
            Some(check) => self.limits.describe(check),
            None => "a limit".into(),
        };
        Refusal {
            code: "rate-limited",
            message: format!("rate-limited: {limit} is spent"),
            retry_us: denied.retry_us,
        }
    }
}

/// What a store says: admitted (with its permit, if it holds places), or the budget that has
/// no room and when it may.
type Decided = Result<Option<Permit>, Denied>;

pub(crate) struct Denied {
    check: Option<Check>,
    retry_us: Option<u64>,
}

impl Denied {
    /// The store's word on `checks`: which of them has no room.
    fn of(checks: Vec<Check>, index: usize, retry_us: Option<u64>) -> Denied {
        Denied {
            check: checks.into_iter().nth(index),
            retry_us,
        }
    }
}

/// Whether any of `checks` holds a place while the call is out.
fn holds_places(checks: &[Check]) -> bool {
    checks
        .iter()
        .any(|c| matches!(c.budget, crate::core::limits::Budget::Concurrent(_)))
}

fn memory_admit(counters: &Arc<Mutex<Counters>>, checks: Vec<Check>) -> Decided {
    let mut guard = counters.lock().unwrap_or_else(|p| p.into_inner());
    match guard.admit(&checks, crate::edge::clock::micros()) {
        Admission::Admitted if holds_places(&checks) => {
            let permit = MemoryPermit {
                counters: Arc::clone(counters),
                checks,
            };
            Ok(Some(Box::new(permit)))
        }
        Admission::Admitted => Ok(None),
        Admission::Denied { check, retry_us } => Err(Denied::of(checks, check, retry_us)),
    }
}

struct MemoryPermit {
    counters: Arc<Mutex<Counters>>,
    checks: Vec<Check>,
}

impl Drop for MemoryPermit {
    fn drop(&mut self) {
        let mut guard = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        guard.release(&self.checks);
    }
}
