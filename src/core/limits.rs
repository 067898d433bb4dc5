//! Rate limits and quotas on tool calls: a policy's `limits:` section, which limits a call
//! counts against, and the arithmetic of each budget. Where the counters live (this process:
//! [`Counters`]; several replicas: a shared store at the edge) is not decided here; every store
//! follows the same rules:
//!
//! - `calls: N, per: D`: GCRA (the generic cell rate algorithm, a token bucket kept as one
//!   timestamp): N calls at once, then one each D/N (rounded up to the microsecond, so never
//!   faster than N per D).
//! - `concurrent: N`: at most N calls out at once (a call holds its place until answered).
//! - `daily: N`: at most N calls per UTC day.
//!
//! Every budget is kept per agent: one agent never spends another's. Every limit that matches a
//! call applies, except that a limit naming the agent replaces one for `*` with the same
//! server, tool and tier (the `*` one is the default for agents not named). A call is admitted
//! only when all its budgets have room, and then it is counted in all of them.

use crate::core::tier::Tier;
use std::collections::HashMap;

/// Most limits in all the policies given.
pub const MAX_LIMITS: usize = 1_024;
/// Largest `calls` and `concurrent`, and largest `daily`.
pub const MAX_CALLS: u64 = 1_000_000;
pub const MAX_DAILY: u64 = 1_000_000_000;
/// Longest `per`: a week.
pub const MAX_PER_US: u64 = 7 * DAY_US;
const DAY_US: u64 = 86_400_000_000;

/// One limit, as a policy gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    /// `None`: `*` (any).
    pub agent: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub tier: Option<Tier>,
    pub calls: Option<Rate>,
    pub concurrent: Option<u64>,
    pub daily: Option<u64>,
    /// Where it was written (`POLICY limits[I]`), for messages.
    pub origin: String,
}

/// N calls per window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub calls: u64,
    pub per_us: u64,
}

impl Rate {
    /// The time one call takes from the bucket, rounded up.
    pub fn interval_us(self) -> u64 {
        self.per_us.div_ceil(self.calls.max(1))
    }

    /// The most the bucket holds: N intervals.
    pub fn burst_us(self) -> u64 {
        self.interval_us().saturating_mul(self.calls)
    }
}

/// The call a limit is asked about.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// `None`: the proxy's host (no agent).
    pub agent: Option<&'a str>,
    pub server: &'a str,
    pub tool: &'a str,
    pub tier: Option<Tier>,
}

/// What a store counts: one budget of one limit for one agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Which counter: the limit's identity, the budget's kind and the agent.
    pub key: String,
    pub budget: Budget,
    /// Which limit it is (an index into [`Limits::all`]), to name it when it refuses.
    pub limit: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Calls(Rate),
    Concurrent(u64),
    Daily(u64),
}

impl Budget {
    pub fn kind(self) -> &'static str {
        match self {
            Budget::Calls(_) => "calls",
            Budget::Concurrent(_) => "concurrent",
            Budget::Daily(_) => "daily",
        }
    }
}

/// What a store said about a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The budget of `checks[check]` has no room; it will in `retry_us` (none: when a call
    /// under way is answered).
    Denied {
        check: usize,
        retry_us: Option<u64>,
    },
}

/// A call the limits refuse: why (its stable code), in words, and when to try again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// `rate-limited`: a budget is spent; `limits-unavailable`: the store that keeps the
    /// counters could not be asked (fail-closed).
    pub code: &'static str,
    pub message: String,
    /// When a retry may pass, if that can be known (µs).
    pub retry_us: Option<u64>,
}

/// Every limit of the policies given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    all: Vec<Limit>,
}

impl Limits {
    pub fn new(all: Vec<Limit>) -> Limits {
        Limits { all }
    }

    pub fn all(&self) -> &[Limit] {
        &self.all
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    /// The budgets `call` counts against (none: it is not limited).
    pub fn checks(&self, call: &Subject) -> Vec<Check> {
        let matching: Vec<usize> = (0..self.all.len())
            .filter(|&i| self.all[i].matches(call))
            .collect();
        let replaced = |i: usize| {
            let limit = &self.all[i];
            limit.agent.is_none()
                && matching.iter().any(|&j| {
                    let other = &self.all[j];
                    other.agent.is_some() && other.same_selector(limit)
                })
        };
        let agent = call.agent.unwrap_or("-");
        let mut out = Vec::new();
        for i in matching.iter().copied().filter(|&i| !replaced(i)) {
            let limit = &self.all[i];
            let budgets = [
                limit.calls.map(Budget::Calls),
                limit.concurrent.map(Budget::Concurrent),
                limit.daily.map(Budget::Daily),
            ];
            for budget in budgets.into_iter().flatten() {
                let key = format!("{}:{}:{agent}", limit.identity(), budget.kind());
                out.push(Check {
                    key,
                    budget,
                    limit: i,
                });
            }
        }
        out
    }

    /// How a refusal names the limit of `check`.
    pub fn describe(&self, check: &Check) -> String {
        let Some(limit) = self.all.get(check.limit) else {
            return "a limit".into();
        };
        let what = match check.budget {
            Budget::Calls(rate) => format!("{} calls per {}", rate.calls, duration(rate.per_us)),
            Budget::Concurrent(n) => format!("{n} concurrent calls"),
            Budget::Daily(n) => format!("{n} calls per day (UTC)"),
        };
        format!("{what} for {} ({})", limit.selector(), limit.origin)
    }
}

impl Limit {
    fn matches(&self, call: &Subject) -> bool {
        let field = |mine: &Option<String>, theirs: Option<&str>| {
            mine.as_deref().is_none_or(|m| Some(m) == theirs)
        };
        field(&self.agent, call.agent)
            && field(&self.server, Some(call.server))
            && field(&self.tool, Some(call.tool))
            && self.tier.is_none_or(|t| Some(t) == call.tier)
    }

    fn same_selector(&self, other: &Limit) -> bool {
        (&self.server, &self.tool, self.tier) == (&other.server, &other.tool, other.tier)
    }

    /// Who and what it limits, for people.
    pub fn selector(&self) -> String {
        let any = |v: &Option<String>, what: &str| match v {
            Some(v) => format!("{what} {v}"),
            None => format!("any {what}"),
        };
        let mut out = format!(
            "{}, {}, {}",
            match &self.agent {
                Some(a) => format!("agent {a}"),
                None => "each agent".into(),
            },
            any(&self.server, "server"),
            any(&self.tool, "tool"),
        );
        if let Some(tier) = self.tier {
            out.push_str(&format!(", {}", tier.as_str()));
        }
        out
    }

    /// What identifies its counters: its selector and budgets, so every replica given the same
    /// policy counts in the same place and a changed limit starts afresh.
    pub fn identity(&self) -> String {
        let text = format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}|{:?}|{:?}",
            self.agent,
            self.server,
            self.tool,
            self.tier.map(Tier::as_str),
            self.calls.map(|r| (r.calls, r.per_us)),
            self.concurrent,
            self.daily
        );
        let digest = crate::core::canonical::Digest::of_bytes(text.as_bytes()).to_string();
        let hex = digest.trim_start_matches("sha256:");
        hex.chars().take(16).collect()
    }
}

/// A window as written back: `90s`, `1m`, `1h`, `1d`.
fn duration(us: u64) -> String {
    let s = us / 1_000_000;
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if s >= n && s.is_multiple_of(n) {
            return format!("{}{unit}", s / n);
        }
    }
    if us.is_multiple_of(1_000_000) {
        format!("{s}s")
    } else {
        format!("{}ms", us / 1_000)
    }
}

/// `per` as written: a whole number and a unit, `s`, `m`, `h` or `d` (`30s`, `1m`).
pub fn parse_per(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (n, unit) = text.split_at(split);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`per: {text}`: expected a whole number and s, m, h or d (30s, 1m, 1h, 1d)"
            ));
        }
    };
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`per: {text}`: expected a whole number before the unit"))?;
    let us = n.saturating_mul(seconds).saturating_mul(1_000_000);
    if n == 0 || us > MAX_PER_US {
        return Err(format!("`per: {text}`: must be at least 1s and at most 7d"));
    }
    Ok(us)
}

/// GCRA: the bucket's next theoretical arrival time after admitting a call at `now`, or how
/// long until it would be admitted.
pub fn gcra(tat: u64, now: u64, rate: Rate) -> Result<u64, u64> {
    let next = tat.max(now).saturating_add(rate.interval_us());
    let ahead = next - now;
    let burst = rate.burst_us();
    if ahead <= burst {
        Ok(next)
    } else {
        Err(ahead - burst)
    }
}

/// The UTC day of a time, and when the next one starts.
fn day(now: u64) -> (u64, u64) {
    let day = now / DAY_US;
    (day, (day + 1) * DAY_US - now)
}

/// The counters of one process (the default store): all budgets, in memory, bounded by
/// forgetting what no longer limits anything (a full bucket, a past day, no call out).
#[derive(Debug, Default)]
pub struct Counters {
    tat: HashMap<String, u64>,
    out: HashMap<String, u64>,
    daily: HashMap<String, (u64, u64)>,
    /// Entries after the last sweep: the next one runs when they have doubled.
    swept_at: usize,
}

impl Counters {
    /// Admits a call at `now` (µs) when every check has room, and counts it in all of them;
    /// otherwise counts nothing and names the first check without room.
    pub fn admit(&mut self, checks: &[Check], now: u64) -> Admission {
        self.sweep_if_grown(now);
        let mut next_tat = Vec::new();
        for (i, check) in checks.iter().enumerate() {
            let denied = |retry_us| Admission::Denied { check: i, retry_us };
            match check.budget {
                Budget::Calls(rate) => {
                    let tat = self.tat.get(&check.key).copied().unwrap_or(0);
                    match gcra(tat, now, rate) {
                        Ok(next) => next_tat.push((i, next)),
                        Err(wait) => return denied(Some(wait)),
                    }
                }
                Budget::Concurrent(max) => {
                    if self.out.get(&check.key).copied().unwrap_or(0) >= max {
                        return denied(None);
                    }
                }
                Budget::Daily(max) => {
                    let (today, left) = day(now);
                    let used = match self.daily.get(&check.key) {
                        Some(&(d, n)) if d == today => n,
                        _ => 0,
                    };
                    if used >= max {
                        return denied(Some(left));
                    }
                }
            }
        }
        for (i, next) in next_tat {
            self.tat.insert(checks[i].key.clone(), next);
        }
        for check in checks {
            match check.budget {
                Budget::Calls(_) => {}
                Budget::Concurrent(_) => *self.out.entry(check.key.clone()).or_default() += 1,
                Budget::Daily(_) => {
                    let (today, _) = day(now);
                    let entry = self.daily.entry(check.key.clone()).or_insert((today, 0));
                    if entry.0 != today {
                        *entry = (today, 0);
                    }
                    entry.1 += 1;
                }
            }
        }
        Admission::Admitted
    }

    /// A call admitted under `checks` was answered (or given up): its places are freed.
    pub fn release(&mut self, checks: &[Check]) {
        for check in checks
            .iter()
            .filter(|c| matches!(c.budget, Budget::Concurrent(_)))
        {
            if let Some(n) = self.out.get_mut(&check.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.out.remove(&check.key);
                }
            }
        }
    }

    /// Counters held.
    pub fn len(&self) -> usize {
        self.tat.len() + self.out.len() + self.daily.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sweep_if_grown(&mut self, now: u64) {
        if self.len() < self.swept_at.max(1_024) * 2 {
            return;
        }
        self.tat.retain(|_, tat| *tat > now);
        let (today, _) = day(now);
        self.daily.retain(|_, (d, _)| *d == today);
        self.swept_at = self.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limit(agent: Option<&str>, tool: Option<&str>) -> Limit {
        Limit {
            agent: agent.map(str::to_owned),
            server: None,
            tool: tool.map(str::to_owned),
            tier: None,
            calls: None,
            concurrent: None,
            daily: None,
            origin: "test limits[0]".into(),
        }
    }

    fn per_minute(n: u64) -> Option<Rate> {
        Some(Rate {
            calls: n,
            per_us: 60_000_000,
        })
    }

    fn subject<'a>(agent: &'a str, tool: &'a str) -> Subject<'a> {
        Subject {
            agent: Some(agent),
            server: "files",
            tool,
            tier: None,
        }
    }

    #[test]
    fn a_limit_naming_the_agent_replaces_the_default_and_other_selectors_all_apply() {
        let limits = Limits::new(vec![
            Limit {
                calls: per_minute(60),
                ..limit(None, None)
            },
            Limit {
                calls: per_minute(1000),
                ..limit(Some("ci"), None)
            },
            Limit {
                calls: per_minute(5),
                ..limit(None, Some("delete"))
            },
        ]);
        let of = |agent, tool| -> Vec<usize> {
            limits
                .checks(&subject(agent, tool))
                .iter()
                .map(|c| c.limit)
                .collect()
        };
        assert_eq!(of("intern", "read"), [0]);
        assert_eq!(of("ci", "read"), [1]);
        assert_eq!(of("ci", "delete"), [1, 2]);
        assert_eq!(of("intern", "delete"), [0, 2]);
        // The proxy's host has no agent: only `*` limits reach it.
        let host = Subject {
            agent: None,
            server: "files",
            tool: "read",
            tier: None,
        };
        assert_eq!(limits.checks(&host).len(), 1);
        // Budgets are per agent.
        let a = limits.checks(&subject("a", "read"));
        let b = limits.checks(&subject("b", "read"));
        assert_ne!(a[0].key, b[0].key);
        assert!(
            limits
                .describe(&a[0])
                .starts_with("60 calls per 1m for each agent, any server, any tool")
        );
    }

    #[test]
    fn a_tier_limit_reaches_only_the_calls_of_that_tier() {
        let limits = Limits::new(vec![Limit {
            tier: Some(Tier::ApprovalRequired),
            concurrent: Some(1),
            ..limit(None, None)
        }]);
        let call = |tier| Subject {
            tier,
            ..subject("a", "wipe")
        };
        assert_eq!(limits.checks(&call(Some(Tier::ApprovalRequired))).len(), 1);
        assert!(limits.checks(&call(Some(Tier::InternalRead))).is_empty());
        assert!(limits.checks(&call(None)).is_empty());
    }

    #[test]
    fn n_calls_pass_at_once_then_one_per_interval_and_a_denial_says_when() {
        let rate = Rate {
            calls: 3,
            per_us: 60_000_000,
        };
        let checks = [Check {
            key: "k".into(),
            budget: Budget::Calls(rate),
            limit: 0,
        }];
        let mut c = Counters::default();
        for _ in 0..3 {
            assert_eq!(c.admit(&checks, 1_000), Admission::Admitted);
        }
        assert_eq!(
            c.admit(&checks, 1_000),
            Admission::Denied {
                check: 0,
                retry_us: Some(20_000_000)
            }
        );
        assert_eq!(
            c.admit(&checks, 20_000_000),
            Admission::Denied {
                check: 0,
                retry_us: Some(1_000)
            }
        );
        assert_eq!(c.admit(&checks, 20_001_000), Admission::Admitted);
    }

    #[test]
    fn a_call_is_counted_in_every_budget_or_in_none() {
        let limits = [
            Check {
                key: "calls".into(),
                budget: Budget::Calls(Rate {
                    calls: 10,
                    per_us: 1_000_000,
                }),
                limit: 0,
            },
            Check {
                key: "out".into(),
                budget: Budget::Concurrent(2),
                limit: 0,
            },
            Check {
                key: "day".into(),
                budget: Budget::Daily(3),
                limit: 0,
            },
        ];
        let mut c = Counters::default();
        assert_eq!(c.admit(&limits, 0), Admission::Admitted);
        assert_eq!(c.admit(&limits, 0), Admission::Admitted);
        // Two out: the third waits for one to be answered, and nothing else is spent.
        assert_eq!(
            c.admit(&limits, 0),
            Admission::Denied {
                check: 1,
                retry_us: None
            }
        );
        c.release(&limits);
        assert_eq!(c.admit(&limits, 0), Admission::Admitted);
        c.release(&limits);
        // Three today: the fourth waits for tomorrow (UTC).
        assert_eq!(
            c.admit(&limits, 5),
            Admission::Denied {
                check: 2,
                retry_us: Some(DAY_US - 5)
            }
        );
        assert_eq!(c.admit(&limits, DAY_US), Admission::Admitted);
    }

    #[test]
    fn per_is_a_whole_number_and_a_unit() {
        assert_eq!(parse_per("1m"), Ok(60_000_000));
        assert_eq!(parse_per("30s"), Ok(30_000_000));
        assert_eq!(parse_per("2h"), Ok(7_200_000_000));
        assert_eq!(parse_per("1d"), Ok(DAY_US));
        for bad in ["", "m", "1", "1.5m", "-1m", "0s", "8d", "1 m", "1M"] {
            assert!(parse_per(bad).is_err(), "{bad}");
        }
        assert_eq!(duration(60_000_000), "1m");
        assert_eq!(duration(90_000_000), "90s");
    }

    /// The reference: a token bucket kept as credit in microseconds, refilled with time.
    struct Bucket {
        credit: u64,
        at: u64,
    }

    impl Bucket {
        fn take(&mut self, now: u64, rate: Rate) -> bool {
            let now = now.max(self.at);
            self.credit = (self.credit + (now - self.at)).min(rate.burst_us());
            self.at = now;
            if self.credit >= rate.interval_us() {
                self.credit -= rate.interval_us();
                true
            } else {
                false
            }
        }
    }

    proptest! {
        /// GCRA admits exactly what a token bucket of N calls refilled at N per window admits,
        /// whatever the times of the calls.
        #[test]
        fn the_limiter_admits_what_a_token_bucket_admits(
            calls in 1u64..20,
            per_s in 1u64..120,
            gaps in prop::collection::vec(0u64..5_000_000, 1..200),
        ) {
            let rate = Rate { calls, per_us: per_s * 1_000_000 };
            let checks = [Check { key: "k".into(), budget: Budget::Calls(rate), limit: 0 }];
            let mut counters = Counters::default();
            let start = 1_700_000_000_000_000u64;
            let mut model = Bucket { credit: rate.burst_us(), at: start };
            let mut now = start;
            let mut admitted_in_window = std::collections::VecDeque::new();
            for gap in gaps {
                now += gap;
                let ours = counters.admit(&checks, now) == Admission::Admitted;
                prop_assert_eq!(ours, model.take(now, rate), "at {}", now - start);
                if ours {
                    admitted_in_window.push_back(now);
                }
                // Never more than N + (window / interval) in any window: at most 2N.
                while admitted_in_window.front().is_some_and(|&t| t + rate.per_us <= now) {
                    admitted_in_window.pop_front();
                }
                prop_assert!(admitted_in_window.len() as u64 <= 2 * calls);
            }
        }
    }
}
