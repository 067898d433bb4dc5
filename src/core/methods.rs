//! The methods the proxy knows, per protocol version and per direction: deny by default is
//! an allow-list. A method that is not listed here for the version the session speaks is
//! answered by the proxy (a request) or dropped (a notification), and never reaches the other
//! side; `--allow-method` names an extension to let through.
//!
//! The lists are read off the specification's schema (`ClientRequest`, `ClientNotification`,
//! `ServerRequest`, `ServerNotification` of each revision). Names are compared exactly: no
//! case folding, no trimming, no normalisation of slashes.

/// The first revision with `elicitation/create`.
const ELICITATION: &str = "2025-06-18";
/// The revision with tasks (experimental; an extension from 2026-07-28 on).
const TASKS: &str = "2025-11-25";
/// The first stateless revision: no handshake, no `ping`, no server requests.
const MODERN: &str = "2026-07-28";

/// Who sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum From {
    Host,
    Server,
}

/// Whether a message is a request (it has an id) or a notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Request,
    Notification,
}

/// The protocol a session speaks, as far as the proxy knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speaking<'v> {
    /// Nothing negotiated yet: a method known to any revision is accepted (and checked).
    Unknown,
    /// One revision (`YYYY-MM-DD`).
    Version(&'v str),
}

const HOST_REQUESTS_LEGACY: &[&str] = &[
    "initialize",
    "ping",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "tools/call",
    "tools/list",
];
const HOST_REQUESTS_MODERN: &[&str] = &[
    "server/discover",
    "completion/complete",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "subscriptions/listen",
    "tools/call",
    "tools/list",
];
const TASK_REQUESTS: &[&str] = &["tasks/get", "tasks/result", "tasks/list", "tasks/cancel"];
const HOST_NOTIFICATIONS_LEGACY: &[&str] = &[
    "notifications/cancelled",
    "notifications/progress",
    "notifications/initialized",
    "notifications/roots/list_changed",
];
const HOST_NOTIFICATIONS_MODERN: &[&str] = &["notifications/cancelled"];
const TASK_NOTIFICATIONS: &[&str] = &["notifications/tasks/status"];
const SERVER_REQUESTS_LEGACY: &[&str] = &["ping", "sampling/createMessage", "roots/list"];
const SERVER_NOTIFICATIONS_LEGACY: &[&str] = &[
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/resources/updated",
    "notifications/resources/list_changed",
    "notifications/tools/list_changed",
    "notifications/prompts/list_changed",
];
/// What a 2026-07-28 server may notify besides the legacy list.
const SUBSCRIPTION_ACKNOWLEDGED: &str = "notifications/subscriptions/acknowledged";

/// Whether `method`, sent by `from` as a `shape`, belongs to the protocol `speaking`.
pub fn is_known(speaking: Speaking<'_>, from: From, shape: Shape, method: &str) -> bool {
    match speaking {
        Speaking::Unknown => [MODERN, TASKS]
            .iter()
            .any(|v| known_in(v, from, shape, method)),
        Speaking::Version(version) => known_in(version, from, shape, method),
    }
}

fn known_in(version: &str, from: From, shape: Shape, method: &str) -> bool {
    let has = |list: &[&str]| list.contains(&method);
    let modern = version >= MODERN;
    let tasks = version == TASKS;
    match (from, shape) {
        (From::Host, Shape::Request) if modern => has(HOST_REQUESTS_MODERN),
        (From::Host, Shape::Request) => has(HOST_REQUESTS_LEGACY) || (tasks && has(TASK_REQUESTS)),
        (From::Host, Shape::Notification) if modern => has(HOST_NOTIFICATIONS_MODERN),
        (From::Host, Shape::Notification) => {
            has(HOST_NOTIFICATIONS_LEGACY) || (tasks && has(TASK_NOTIFICATIONS))
        }
        // A stateless server sends no requests (they became `input_required` results).
        (From::Server, Shape::Request) if modern => false,
        (From::Server, Shape::Request) => {
            has(SERVER_REQUESTS_LEGACY)
                || (version >= ELICITATION && method == "elicitation/create")
                || (tasks && has(TASK_REQUESTS))
        }
        (From::Server, Shape::Notification) if modern => {
            has(SERVER_NOTIFICATIONS_LEGACY) || method == SUBSCRIPTION_ACKNOWLEDGED
        }
        (From::Server, Shape::Notification) => {
            has(SERVER_NOTIFICATIONS_LEGACY)
                || (tasks
                    && (has(TASK_NOTIFICATIONS) || method == "notifications/elicitation/complete"))
        }
    }
}

/// Whether `method` is a request method of any revision, from either side: one that arrives
/// without an id is not a notification the receiver may act on, and is dropped.
pub fn is_request_method(method: &str) -> bool {
    [
        HOST_REQUESTS_LEGACY,
        HOST_REQUESTS_MODERN,
        TASK_REQUESTS,
        SERVER_REQUESTS_LEGACY,
        &["elicitation/create"],
    ]
    .iter()
    .any(|list| list.contains(&method))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_26_near_miss_method_names_are_unknown() {
        for method in [
            "Tools/call",
            "tools/call ",
            "tools/call\u{0}",
            "tools//call",
            "tools/execute",
            " tools/call",
            "tools/Call",
            "TOOLS/CALL",
            "tools/call/",
        ] {
            for speaking in [
                Speaking::Unknown,
                Speaking::Version("2025-06-18"),
                Speaking::Version("2026-07-28"),
            ] {
                assert!(
                    !is_known(speaking, From::Host, Shape::Request, method),
                    "{method:?} {speaking:?}"
                );
            }
        }
    }

    #[test]
    fn issue_26_each_revision_has_its_own_methods() {
        let host = |v, m| is_known(Speaking::Version(v), From::Host, Shape::Request, m);
        assert!(host("2025-06-18", "initialize"));
        assert!(host("2025-06-18", "resources/subscribe"));
        assert!(!host("2025-06-18", "server/discover"));
        assert!(!host("2025-06-18", "tasks/get"));
        assert!(host("2025-11-25", "tasks/get"));
        assert!(host("2026-07-28", "server/discover"));
        assert!(host("2026-07-28", "subscriptions/listen"));
        assert!(!host("2026-07-28", "initialize"));
        assert!(!host("2026-07-28", "ping"));
        assert!(!host("2026-07-28", "resources/subscribe"));
        let server = |v, m| is_known(Speaking::Version(v), From::Server, Shape::Request, m);
        assert!(server("2025-06-18", "elicitation/create"));
        assert!(!server("2025-03-26", "elicitation/create"));
        assert!(!server("2026-07-28", "sampling/createMessage"));
        // Before a version is negotiated, what any revision knows.
        let unknown = |m| is_known(Speaking::Unknown, From::Host, Shape::Request, m);
        assert!(unknown("initialize") && unknown("server/discover") && unknown("tasks/list"));
    }

    #[test]
    fn issue_26_request_methods_sent_as_notifications_are_not_notifications() {
        for method in ["tools/call", "prompts/get", "resources/read"] {
            assert!(is_request_method(method));
            assert!(!is_known(
                Speaking::Unknown,
                From::Host,
                Shape::Notification,
                method
            ));
        }
        assert!(is_known(
            Speaking::Version("2025-06-18"),
            From::Host,
            Shape::Notification,
            "notifications/initialized"
        ));
        assert!(!is_known(
            Speaking::Version("2026-07-28"),
            From::Host,
            Shape::Notification,
            "notifications/initialized"
        ));
        assert!(!is_known(
            Speaking::Version("2025-06-18"),
            From::Server,
            Shape::Notification,
            "notifications/whatever"
        ));
    }
}
