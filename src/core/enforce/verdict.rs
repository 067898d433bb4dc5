//! What the session does with what differs from the lock, decided once and purely: from the
//! mode the proxy runs in (`--on-drift`, `--on-response-finding`) and what the check of a
//! message found, the verdict the proxy carries out. Every combination is a unit test here; the
//! proxy branches on these verdicts, never on the modes.

use super::{Locked, OnDrift, Reason, Session, called_item, check_call};
use crate::core::audit::Decision;
use crate::core::inspect::OnResponse;
use crate::core::snapshot::ItemKind;
use serde_json::Value;

/// What is known of one host request when it is decided.
pub struct Request<'a> {
    pub method: &'a str,
    pub params: Option<&'a Value>,
    /// The protocol the session speaks has this method (or `--allow-method` lets it through).
    pub known_method: bool,
    /// Why the session is blocked for good, if it is.
    pub blocked: Option<&'a str>,
    /// Whether a call of this kind waits now: the kind is being re-listed and there is room.
    pub parks: &'a dyn Fn(ItemKind) -> bool,
}

/// The verdict on one host request, before the call rules (which judge later, off the loop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Forward,
    /// Forwarded, audited as a note: the lock refuses it for this drift (shadow mode).
    Note(Reason),
    /// Waits for the re-listing of its kind, then is decided again.
    Park(ItemKind),
    Deny(Refusal),
}

/// Why a host request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The session is blocked (its server drifted where nothing can be withheld).
    Blocked(String),
    /// Not a method of the protocol the session speaks.
    UnknownMethod,
    /// The lock refuses it.
    Lock(Reason),
}

/// The one verdict on a host request: a blocked session refuses everything; then the method
/// must be the protocol's; a call of a kind being re-listed waits; then the lock decides, and
/// in shadow mode drift of an item the host was shown (or that the lock holds) passes as a note.
pub fn request(
    req: &Request<'_>,
    locked: &Locked<'_>,
    session: &Session,
    on_drift: OnDrift,
) -> Verdict {
    if let Some(why) = req.blocked {
        return Verdict::Deny(Refusal::Blocked(why.to_string()));
    }
    if !req.known_method {
        return Verdict::Deny(Refusal::UnknownMethod);
    }
    let called = called_item(req.method, req.params).and_then(Result::ok);
    if let Some((kind, _)) = &called
        && (req.parks)(*kind)
    {
        return Verdict::Park(*kind);
    }
    let Err(reason) = check_call(req.method, req.params, locked, session) else {
        return Verdict::Forward;
    };
    let shown = called.is_some_and(|(kind, key)| session.is_listed(kind, &key));
    match refused_call(on_drift, &reason, shown) {
        RefusedCall::LetThrough => Verdict::Note(reason),
        RefusedCall::Deny => Verdict::Deny(Refusal::Lock(reason)),
    }
}

/// How an item that differs from the lock is recorded in the audit log.
pub fn drift_decision(on_drift: OnDrift) -> Decision {
    match on_drift {
        OnDrift::Withhold => Decision::Withhold,
        OnDrift::Block => Decision::Deny,
        OnDrift::Warn => Decision::Note,
    }
}

/// What becomes of a list page once checked against the lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListVerdict {
    /// The page as checked: what differs from the lock withheld.
    Checked,
    /// The page as the server served it, what differs admitted to this session (shadow mode).
    AsServed,
    /// No page: the listing is refused, and nothing of its kind may be called until the host
    /// lists again.
    Refused,
}

/// Whether a page must be kept as served before it is checked (its verdict may be
/// [`ListVerdict::AsServed`] whatever the check finds).
pub fn keeps_served_pages(on_drift: OnDrift) -> bool {
    list_verdict(on_drift, 0) == ListVerdict::AsServed
}

/// The verdict on a list page in which `withheld` items differ from the lock.
pub fn list_verdict(on_drift: OnDrift, withheld: usize) -> ListVerdict {
    match on_drift {
        OnDrift::Warn => ListVerdict::AsServed,
        OnDrift::Block if withheld > 0 => ListVerdict::Refused,
        OnDrift::Withhold | OnDrift::Block => ListVerdict::Checked,
    }
}

/// What becomes of the server's self-description (`initialize`, `server/discover`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelloVerdict {
    /// As the lock has it: forwarded.
    Forward,
    /// It differs, and is let through with a note (shadow mode).
    ForwardNoted,
    /// It differs: the session is blocked for good.
    Block,
}

pub fn hello_verdict(on_drift: OnDrift, differs: bool) -> HelloVerdict {
    match (differs, on_drift) {
        (false, _) => HelloVerdict::Forward,
        (true, OnDrift::Warn) => HelloVerdict::ForwardNoted,
        (true, OnDrift::Withhold | OnDrift::Block) => HelloVerdict::Block,
    }
}

/// What becomes of a call the lock refuses for `reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedCall {
    Deny,
    /// Let through with a note (shadow mode): drift of an item, never a call to something
    /// the host was not shown and the lock does not hold.
    LetThrough,
}

/// `shown`: the item was listed to the host in this session.
pub fn refused_call(on_drift: OnDrift, reason: &Reason, shown: bool) -> RefusedCall {
    let shadow = on_drift == OnDrift::Warn
        && reason.is_drift()
        && (shown || !matches!(reason, Reason::NotLocked));
    if shadow {
        RefusedCall::LetThrough
    } else {
        RefusedCall::Deny
    }
}

/// What becomes of a result in which the inspection found something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseVerdict {
    /// Forwarded as served, each finding audited.
    Forward,
    /// Forwarded with each finding redacted.
    Redact,
    /// Not forwarded: the host's request is answered with an error.
    Refuse,
}

/// The verdict on a result with findings, and how each finding is audited.
pub fn response_verdict(on_response: OnResponse) -> (ResponseVerdict, Decision) {
    match on_response {
        OnResponse::Warn => (ResponseVerdict::Forward, Decision::Note),
        OnResponse::Redact => (ResponseVerdict::Redact, Decision::Rewrite),
        OnResponse::Block => (ResponseVerdict::Refuse, Decision::Deny),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODES: [OnDrift; 3] = [OnDrift::Withhold, OnDrift::Block, OnDrift::Warn];

    #[test]
    fn a_list_page_is_checked_refused_or_served_by_mode() {
        for mode in MODES {
            for withheld in [0, 1, 7] {
                let expected = match (mode, withheld) {
                    (OnDrift::Warn, _) => ListVerdict::AsServed,
                    (OnDrift::Block, n) if n > 0 => ListVerdict::Refused,
                    _ => ListVerdict::Checked,
                };
                assert_eq!(
                    list_verdict(mode, withheld),
                    expected,
                    "{mode:?} {withheld}"
                );
            }
        }
        assert_eq!(drift_decision(OnDrift::Withhold), Decision::Withhold);
        assert_eq!(drift_decision(OnDrift::Block), Decision::Deny);
        assert_eq!(drift_decision(OnDrift::Warn), Decision::Note);
    }

    #[test]
    fn a_drifted_self_description_blocks_except_in_shadow_mode() {
        for mode in MODES {
            assert_eq!(hello_verdict(mode, false), HelloVerdict::Forward);
        }
        assert_eq!(hello_verdict(OnDrift::Withhold, true), HelloVerdict::Block);
        assert_eq!(hello_verdict(OnDrift::Block, true), HelloVerdict::Block);
        assert_eq!(
            hello_verdict(OnDrift::Warn, true),
            HelloVerdict::ForwardNoted
        );
    }

    /// Shadow mode lets drift through, never what the host was not shown and the lock does not
    /// hold, and never a refusal that is not drift.
    #[test]
    fn shadow_mode_lets_drift_through_and_nothing_else() {
        let drifted = Reason::Drifted {
            locked: crate::core::canonical::Digest::of_bytes(b"locked"),
            served: crate::core::canonical::Digest::of_bytes(b"served"),
        };
        for mode in [OnDrift::Withhold, OnDrift::Block] {
            for shown in [false, true] {
                assert_eq!(refused_call(mode, &drifted, shown), RefusedCall::Deny);
                assert_eq!(
                    refused_call(mode, &Reason::NotLocked, shown),
                    RefusedCall::Deny
                );
            }
        }
        assert_eq!(
            refused_call(OnDrift::Warn, &drifted, false),
            RefusedCall::LetThrough
        );
        assert_eq!(
            refused_call(OnDrift::Warn, &Reason::NotLocked, true),
            RefusedCall::LetThrough
        );
        assert_eq!(
            refused_call(OnDrift::Warn, &Reason::NotLocked, false),
            RefusedCall::Deny,
            "a call to an item never shown and not locked stays denied"
        );
        assert_eq!(
            refused_call(OnDrift::Warn, &Reason::NotListed, true),
            RefusedCall::Deny,
            "not drift: denied in every mode"
        );
    }

    #[test]
    fn a_result_with_findings_is_forwarded_redacted_or_refused_by_mode() {
        assert_eq!(
            response_verdict(OnResponse::Warn),
            (ResponseVerdict::Forward, Decision::Note)
        );
        assert_eq!(
            response_verdict(OnResponse::Redact),
            (ResponseVerdict::Redact, Decision::Rewrite)
        );
        assert_eq!(
            response_verdict(OnResponse::Block),
            (ResponseVerdict::Refuse, Decision::Deny)
        );
    }
}
