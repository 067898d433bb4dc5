//! The gateway's Prometheus metrics (OpenMetrics text at `/metrics`): sessions, decisions by
//! server, method, decision and reason, refusals at the HTTP side, request latency. Every
//! label value comes from a bounded set (the lockfile's server names, the protocol's methods,
//! the stable reason codes), never from what an agent or a server sends.

use crate::core::audit::Decision;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type Labels<const N: usize> = [(&'static str, String); N];

pub struct Metrics {
    registry: Registry,
    sessions: Gauge,
    shared: Gauge,
    opened: Family<Labels<1>, Counter>,
    decisions: Family<Labels<4>, Counter>,
    refusals: Family<Labels<1>, Counter>,
    requests: Family<Labels<2>, Histogram>,
    reloads: Family<Labels<1>, Counter>,
    limits_store_up: Gauge,
    limits_store_failures: Counter,
    published_stale: Family<Labels<1>, Gauge>,
    published_failures: Family<Labels<1>, Counter>,
}

/// Methods named by their own label; anything else is `other`.
const METHODS: [&str; 18] = [
    "initialize",
    "server/discover",
    "ping",
    "tools/list",
    "tools/call",
    "prompts/list",
    "prompts/get",
    "resources/list",
    "resources/read",
    "resources/templates/list",
    "resources/subscribe",
    "resources/unsubscribe",
    "completion/complete",
    "logging/setLevel",
    "notifications/cancelled",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
    "notifications/resources/list_changed",
];

/// A method as a label value.
pub fn method_label(method: &str) -> String {
    if METHODS.contains(&method) {
        method.to_string()
    } else {
        "other".to_string()
    }
}

/// A refusal's reason code as a label value: the first word of the reason when it is a code
/// (`not-locked`, `revoked`, `policy ...`), for decisions that refuse; nothing otherwise.
fn reason_label(decision: Decision, reason: Option<&str>) -> String {
    if !matches!(
        decision,
        Decision::Deny | Decision::Withhold | Decision::Rewrite
    ) {
        return String::new();
    }
    let word = reason
        .and_then(|r| r.split([' ', ':']).next())
        .unwrap_or_default();
    let code = (1..=32).contains(&word.len())
        && word.starts_with(|c: char| c.is_ascii_lowercase())
        && word.chars().all(|c| c.is_ascii_lowercase() || c == '-');
    if code {
        word.to_string()
    } else {
        "other".to_string()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("mcplock_gateway");
        let sessions = Gauge::default();
        registry.register("sessions", "Host sessions open", sessions.clone());
        let shared = Gauge::default();
        registry.register(
            "shared_servers",
            "Shared servers (--share) running, each serving every session of its server",
            shared.clone(),
        );
        let opened = Family::<Labels<1>, Counter>::default();
        registry.register(
            "sessions_opened",
            "Host sessions opened, by server",
            opened.clone(),
        );
        let decisions = Family::<Labels<4>, Counter>::default();
        registry.register(
            "decisions",
            "Decisions the sessions took (forward, deny, withhold, rewrite, note), by server, method and reason code",
            decisions.clone(),
        );
        let refusals = Family::<Labels<1>, Counter>::default();
        registry.register(
            "refusals",
            "HTTP requests refused before any session decided (no-token, not-granted, origin, ...), by reason",
            refusals.clone(),
        );
        let requests = Family::<Labels<2>, Histogram>::new_with_constructor(
            request_buckets as fn() -> Histogram,
        );
        registry.register(
            "request_duration_seconds",
            "Time from a host request's arrival to its answer (the server's time and the gateway's), by server and method",
            requests.clone(),
        );
        let reloads = Family::<Labels<1>, Counter>::default();
        registry.register("reloads", "Reloads (SIGHUP), by result", reloads.clone());
        let limits_store_up = Gauge::default();
        limits_store_up.set(1);
        registry.register(
            "limits_store_up",
            "Whether the limits' store (--state) answered the last decision that asked it (1) or not (0)",
            limits_store_up.clone(),
        );
        let limits_store_failures = Counter::default();
        registry.register(
            "limits_store_failures",
            "Decisions the limits' store could not make (refused, or let through for a --limits-fail-open tier)",
            limits_store_failures.clone(),
        );
        let published_stale = Family::<Labels<1>, Gauge>::default();
        registry.register(
            "published_stale",
            "Whether the last fetch of a published lockfile or revocation list failed or did not verify (1): the last one verified stays in force",
            published_stale.clone(),
        );
        let published_failures = Family::<Labels<1>, Counter>::default();
        registry.register(
            "published_failures",
            "Fetches of a published lockfile or revocation list that failed or did not verify, by source",
            published_failures.clone(),
        );
        Metrics {
            registry,
            sessions,
            shared,
            opened,
            decisions,
            refusals,
            requests,
            reloads,
            limits_store_up,
            limits_store_failures,
            published_stale,
            published_failures,
        }
    }

    pub fn session_opened(&self, server: &str) {
        self.sessions.inc();
        self.opened
            .get_or_create(&[("server", server.to_string())])
            .inc();
    }

    pub fn session_closed(&self) {
        self.sessions.dec();
    }

    /// A shared server started (`true`) or stopped.
    pub fn shared_server(&self, running: bool) {
        if running {
            self.shared.inc();
        } else {
            self.shared.dec();
        }
    }

    pub fn decided(&self, server: &str, method: &str, decision: Decision, reason: Option<&str>) {
        let labels = [
            ("server", server.to_string()),
            ("method", method_label(method)),
            ("decision", decision.as_str().to_string()),
            ("reason", reason_label(decision, reason)),
        ];
        self.decisions.get_or_create(&labels).inc();
    }

    pub fn refused(&self, reason: &str) {
        self.refusals
            .get_or_create(&[("reason", reason.to_string())])
            .inc();
    }

    pub fn answered(&self, server: &str, method: &str, seconds: f64) {
        let labels = [
            ("server", server.to_string()),
            ("method", method_label(method)),
        ];
        self.requests.get_or_create(&labels).observe(seconds);
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads
            .get_or_create(&[("result", result.to_string())])
            .inc();
    }

    /// The limits' store answered a decision (`true`) or could not.
    pub fn limits_store(&self, answered: bool) {
        self.limits_store_up.set(i64::from(answered));
        if !answered {
            self.limits_store_failures.inc();
        }
    }

    /// A poll of a published source (`lockfile` or `revocations`) left its mirror what is
    /// published (`true`) or not.
    pub fn published(&self, source: &str, fresh: bool) {
        let labels = [("source", source.to_string())];
        self.published_stale
            .get_or_create(&labels)
            .set(i64::from(!fresh));
        if !fresh {
            self.published_failures.get_or_create(&labels).inc();
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }
}

/// 0.5 ms to about 16 s, doubling.
fn request_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_bounded_sets_whatever_a_peer_sends() {
        let m = Metrics::new();
        m.decided(
            "files",
            "tools/call",
            Decision::Deny,
            Some("policy no-etc: m"),
        );
        m.decided(
            "files",
            "vendor/\"evil\"\n",
            Decision::Deny,
            Some("Not A Code"),
        );
        m.decided(
            "files",
            "tools/call",
            Decision::Forward,
            Some("the server answered with an error"),
        );
        m.refused("no-token");
        m.session_opened("files");
        m.answered("files", "tools/call", 0.002);
        let text = m.render();
        assert!(text.contains(r#"mcplock_gateway_decisions_total{server="files",method="tools/call",decision="deny",reason="policy"} 1"#), "{text}");
        assert!(
            text.contains(r#"method="other",decision="deny",reason="other"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"method="tools/call",decision="forward",reason=""} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"mcplock_gateway_refusals_total{reason="no-token"} 1"#),
            "{text}"
        );
        assert!(text.contains("mcplock_gateway_sessions 1"), "{text}");
        assert!(text.contains("mcplock_gateway_request_duration_seconds_count{server=\"files\",method=\"tools/call\"} 1"), "{text}");
        assert!(!text.contains("evil"), "{text}");
    }
}
