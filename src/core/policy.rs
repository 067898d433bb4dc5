//! Policies: CEL rules over what servers offer, evaluated fail-closed.
//!
//! A policy file (YAML) has a `name` and `rules`; each rule has an `id`, a CEL `expr`, a
//! `message`, a `severity` (`error` or `warn`) and, optionally, what it is evaluated `on`:
//! `server` (once per server, the default), `tool`, `prompt`, `resourceTemplate` or
//! `resource` (once per item). Everything that is not a clean `true` fails: an expression that
//! does not compile, reads a missing field, errors, or returns a non-boolean. `warn` only
//! softens a rule that evaluated cleanly to `false`. docs/policy.md describes the input model.

use crate::core::confusable;
use crate::core::definition::Definition;
use crate::core::findings;
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::revocation::Revocations;
use crate::core::snapshot::ItemKind;
use cel::common::value::Val;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use view::{Field, View};

mod env;
mod view;

/// Largest policy file accepted.
pub const MAX_POLICY_BYTES: usize = 1 << 20;
/// Largest expression accepted (a CEL rule is a line or two; megabytes are an attack).
pub const MAX_EXPR_BYTES: usize = 16 * 1024;
/// Deepest bracket nesting accepted in an expression (the parser recurses on nesting).
pub const MAX_NESTING: usize = 32;
/// Most operators, selections, indexes and `in`s in one expression (each can deepen the tree).
pub const MAX_OPERATORS: usize = 256;
/// Deepest compiled expression tree accepted; with [`MAX_OPERATORS`] and [`MAX_NESTING`] it
/// bounds the recursion of evaluation, which runs on a thread sized for it
/// ([`EVAL_STACK_BYTES`]).
pub const MAX_AST_DEPTH: usize = MAX_OPERATORS + MAX_NESTING + 8;
/// Stack of the threads that compile and evaluate policies: ample for [`MAX_AST_DEPTH`] (a
/// debug build needs well under 50 KiB a level).
pub const EVAL_STACK_BYTES: usize = 64 << 20;
/// Most rules in one evaluation.
pub const MAX_RULES: usize = 1_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RuleSeverity {
    Warn,
    Error,
}

impl RuleSeverity {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleSeverity::Warn => "warn",
            RuleSeverity::Error => "error",
        }
    }
}

/// What a rule is evaluated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Server,
    Item(ItemKind),
    /// Every `tools/call` the proxy relays: `mcp.tool` (the locked definition), `mcp.server`,
    /// and `mcp.call.arguments`. Not evaluated by `policy check` (there is no call to judge).
    Call,
}

impl Target {
    pub fn as_str(self) -> &'static str {
        match self {
            Target::Server => "server",
            Target::Item(ItemKind::Tool) => "tool",
            Target::Item(ItemKind::Prompt) => "prompt",
            Target::Item(ItemKind::ResourceTemplate) => "resourceTemplate",
            Target::Item(ItemKind::Resource) => "resource",
            Target::Call => "call",
        }
    }

    fn parse(s: &str) -> Option<Target> {
        Some(match s {
            "server" => Target::Server,
            "tool" => Target::Item(ItemKind::Tool),
            "prompt" => Target::Item(ItemKind::Prompt),
            "resourceTemplate" => Target::Item(ItemKind::ResourceTemplate),
            "resource" => Target::Item(ItemKind::Resource),
            "call" => Target::Call,
            _ => return None,
        })
    }
}

/// One rule, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub expr: String,
    pub message: String,
    pub severity: RuleSeverity,
    pub target: Target,
    /// Where the rule starts in its file (1-based), for messages.
    pub line: usize,
    /// Which policy it came from.
    pub policy: String,
}

/// A parsed policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub name: String,
    pub rules: Vec<Rule>,
    /// The trust tiers this policy assigns.
    pub tiers: Tiers,
    /// Its rate limits and quotas on tool calls (`core::limits`).
    pub limits: Vec<crate::core::limits::Limit>,
}

pub use crate::core::tier::Tier;

/// Tier assignments: per server, and per tool (`server/tool`), which overrides its server's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tiers {
    pub servers: std::collections::BTreeMap<String, Tier>,
    pub tools: std::collections::BTreeMap<String, Tier>,
}

impl Tiers {
    /// The tier of a tool: its own, else its server's.
    pub fn of_tool(&self, server: &str, tool: &str) -> Option<Tier> {
        self.tools
            .get(&format!("{server}/{tool}"))
            .or_else(|| self.servers.get(server))
            .copied()
    }

    /// Adds another policy's assignments; the same server or tool given two tiers is an error.
    pub fn merge(&mut self, other: &Tiers) -> Result<(), String> {
        for (mine, theirs, what) in [
            (&mut self.servers, &other.servers, "server"),
            (&mut self.tools, &other.tools, "tool"),
        ] {
            for (key, tier) in theirs {
                match mine.insert(key.clone(), *tier) {
                    Some(before) if before != *tier => {
                        return Err(format!(
                            "{what} {key:?} is given two tiers: {} and {}",
                            before.as_str(),
                            tier.as_str()
                        ));
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Why a policy is broken (exit 2).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{origin}: {message}")]
pub struct PolicyError {
    /// `file:line` (or the preset name).
    pub origin: String,
    pub message: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WirePolicy {
    name: String,
    /// `rules: null` would read as no rules (a policy that passes everything): required.
    rules: Option<Vec<WireRule>>,
    #[serde(default)]
    tiers: Option<WireTiers>,
    #[serde(default)]
    limits: Option<Vec<WireLimit>>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLimit {
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    server: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    tier: Option<String>,
    #[serde(default)]
    calls: Option<u64>,
    #[serde(default)]
    per: Option<String>,
    #[serde(default)]
    concurrent: Option<u64>,
    #[serde(default)]
    daily: Option<u64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireTiers {
    #[serde(default)]
    servers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    tools: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WireRule {
    id: marked_yaml::Spanned<String>,
    expr: String,
    message: String,
    severity: String,
    #[serde(default)]
    on: Option<String>,
}

fn line_of<T>(s: &marked_yaml::Spanned<T>) -> usize {
    s.span().start().map_or(0, |m| m.line())
}

/// The line (1-based) where a second YAML document begins, if any. Document markers (`---`,
/// `...`) stand at column 0 followed by a blank or the end of the line, also inside what looks
/// like a block scalar (the marker ends it), so a line scan finds every one. A `---` before any
/// content only opens the first document.
fn second_document(text: &str) -> Option<usize> {
    let marker = |line: &str, m: &str| {
        line.strip_prefix(m)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t', '\r']))
    };
    let mut content = false;
    for (i, line) in text.lines().enumerate() {
        if marker(line, "---") {
            if content {
                return Some(i + 1);
            }
            content = true;
        } else if marker(line, "...") {
            // What follows an end marker is another document, unless nothing does.
            let rest = text.lines().skip(i + 1);
            if let Some(j) = rest
                .enumerate()
                .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(|(j, _)| j)
            {
                return Some(i + 2 + j);
            }
            return None;
        } else if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            content = true;
        }
    }
    None
}

/// A policy error at `line` of `origin` (0: the file as a whole).
fn error_at(origin: &str, line: usize, message: String) -> PolicyError {
    PolicyError {
        origin: if line > 0 {
            format!("{origin}:{line}")
        } else {
            origin.to_string()
        },
        message,
    }
}

/// Parses a policy strictly: unknown keys, unknown severities or targets, empty fields,
/// duplicate ids, oversized or too deeply nested expressions are errors naming the line.
pub fn parse_policy(origin: &str, text: &str) -> Result<Policy, PolicyError> {
    let fail = |line: usize, message: String| error_at(origin, line, message);
    if text.len() > MAX_POLICY_BYTES {
        return Err(fail(0, format!("larger than {MAX_POLICY_BYTES} bytes")));
    }
    if let Some(line) = second_document(text) {
        return Err(fail(
            line,
            "a second YAML document starts here; a policy file holds one document (every rule in one `rules` list)".into(),
        ));
    }
    let options = marked_yaml::LoaderOptions::default().error_on_duplicate_keys(true);
    let wire: WirePolicy = marked_yaml::from_yaml_with_options(0, text, options)
        .map_err(|e| fail(0, e.to_string()))?;
    if wire.name.trim().is_empty() {
        return Err(fail(0, "the policy needs a non-empty `name`".into()));
    }
    let limits = (wire.limits.unwrap_or_default().into_iter().enumerate())
        .map(|(i, w)| parse_limit(origin, &wire.name, i, w))
        .collect::<Result<Vec<_>, _>>()?;
    if limits.len() > crate::core::limits::MAX_LIMITS {
        let most = crate::core::limits::MAX_LIMITS;
        return Err(fail(0, format!("more than {most} limits")));
    }
    let wire_rules = wire.rules.unwrap_or_default();
    if wire_rules.is_empty() && limits.is_empty() {
        return Err(fail(
            0,
            "the policy has no rules and no limits (`rules` is empty or null); a policy that checks nothing would pass everything".into(),
        ));
    }
    if wire_rules.len() > MAX_RULES {
        return Err(fail(0, format!("more than {MAX_RULES} rules")));
    }
    let mut rules: Vec<Rule> = Vec::new();
    for w in wire_rules {
        let rule = parse_rule(origin, &wire.name, w, &rules)?;
        rules.push(rule);
    }
    let tiers = match wire.tiers {
        Some(wire_tiers) => parse_tiers(origin, &wire_tiers)?,
        None => Tiers::default(),
    };
    Ok(Policy {
        name: wire.name,
        rules,
        tiers,
        limits,
    })
}

/// One entry of the `limits:` section: who and what it limits (`*` or absent: any), and at
/// least one budget.
fn parse_limit(
    origin: &str,
    policy: &str,
    index: usize,
    w: WireLimit,
) -> Result<crate::core::limits::Limit, PolicyError> {
    use crate::core::limits::{Limit, MAX_CALLS, MAX_DAILY, Rate, parse_per};
    let at = format!("limits[{index}]");
    let fail = |message: String| error_at(origin, 0, format!("{at}: {message}"));
    let name = |field: &str, value: Option<String>, ok: &dyn Fn(&str) -> bool| match value
        .filter(|v| v != "*")
    {
        None => Ok(None),
        Some(v) if ok(&v) => Ok(Some(v)),
        Some(v) => Err(fail(format!(
            "{field} {v:?} is not a name (letters, digits, '-', '_', '.') or \"*\""
        ))),
    };
    let agent = name("agent", w.agent, &crate::core::agents::valid_name)?;
    let server = name("server", w.server, &crate::core::agents::valid_name)?;
    let tool = name("tool", w.tool, &|t| t.len() <= 256 && !t.trim().is_empty())?;
    let tier = match w.tier.filter(|t| t != "*") {
        None => None,
        Some(t) => Some(Tier::parse(&t).ok_or_else(|| {
            fail(format!(
                "tier {t:?} is not one of {}",
                Tier::ALL.map(Tier::as_str).join(", ")
            ))
        })?),
    };
    let calls = match (w.calls, w.per) {
        (None, None) => None,
        (Some(n), Some(per)) if (1..=MAX_CALLS).contains(&n) => Some(Rate {
            calls: n,
            per_us: parse_per(&per).map_err(fail)?,
        }),
        (Some(n), Some(_)) => return Err(fail(format!("calls: {n}: must be 1 to {MAX_CALLS}"))),
        (Some(_), None) => {
            return Err(fail(
                "`calls` needs `per` (the window: 30s, 1m, 1h, 1d)".into(),
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "`per` needs `calls` (how many calls per window)".into(),
            ));
        }
    };
    let bounded = |field: &str, v: Option<u64>, most: u64| match v {
        Some(n) if !(1..=most).contains(&n) => {
            Err(fail(format!("{field}: {n}: must be 1 to {most}")))
        }
        v => Ok(v),
    };
    let concurrent = bounded("concurrent", w.concurrent, MAX_CALLS)?;
    let daily = bounded("daily", w.daily, MAX_DAILY)?;
    if calls.is_none() && concurrent.is_none() && daily.is_none() {
        return Err(fail(
            "no budget: give `calls` with `per`, `concurrent` or `daily`".into(),
        ));
    }
    Ok(Limit {
        agent,
        server,
        tool,
        tier,
        calls,
        concurrent,
        daily,
        origin: format!("{policy} {at}"),
    })
}

/// One rule of the policy `policy`, checked against the ones before it (`earlier`).
fn parse_rule(
    origin: &str,
    policy: &str,
    w: WireRule,
    earlier: &[Rule],
) -> Result<Rule, PolicyError> {
    let line = line_of(&w.id);
    let fail = |message: String| error_at(origin, line, message);
    let id = w.id.as_str().to_string();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(fail(format!(
            "rule id {id:?} must be non-empty letters, digits, '-', '_' or '.'"
        )));
    }
    if let Some(first) = earlier.iter().find(|r| r.id == id) {
        return Err(fail(format!(
            "duplicate rule id {id:?} (first at line {})",
            first.line
        )));
    }
    let severity = match w.severity.as_str() {
        "error" => RuleSeverity::Error,
        "warn" => RuleSeverity::Warn,
        other => {
            return Err(fail(format!(
                "rule {id}: unknown severity {other:?}; use error or warn"
            )));
        }
    };
    let target = match w.on.as_deref() {
        None => Target::Server,
        Some(t) => Target::parse(t).ok_or_else(|| {
            fail(format!("rule {id}: unknown `on: {t}`; use server, tool, prompt, resourceTemplate or resource"))
        })?,
    };
    if w.message.trim().is_empty() {
        return Err(fail(format!("rule {id}: `message` is empty")));
    }
    check_expression(&w.expr).map_err(|m| fail(format!("rule {id}: {m}")))?;
    Ok(Rule {
        id,
        expr: w.expr,
        message: w.message,
        severity,
        target,
        line,
        policy: policy.to_string(),
    })
}

/// The policy's `tiers:` section: a tier per server and per SERVER/TOOL.
fn parse_tiers(origin: &str, wire: &WireTiers) -> Result<Tiers, PolicyError> {
    let tier = |key: &str, value: &str| {
        Tier::parse(value).ok_or_else(|| {
            error_at(
                origin,
                0,
                format!(
                    "tiers: {key:?} has tier {value:?}; the tiers are {}",
                    Tier::ALL.map(Tier::as_str).join(", ")
                ),
            )
        })
    };
    let mut tiers = Tiers::default();
    for (server, value) in &wire.servers {
        tiers.servers.insert(server.clone(), tier(server, value)?);
    }
    for (tool, value) in &wire.tools {
        if !tool.contains('/') {
            return Err(error_at(
                origin,
                0,
                format!("tiers.tools: {tool:?} must be SERVER/TOOL"),
            ));
        }
        tiers.tools.insert(tool.clone(), tier(tool, value)?);
    }
    Ok(tiers)
}

/// Static limits checked before the CEL parser sees the text.
fn check_expression(expr: &str) -> Result<(), String> {
    if expr.trim().is_empty() {
        return Err("`expr` is empty".into());
    }
    if expr.len() > MAX_EXPR_BYTES {
        return Err(format!(
            "the expression is {} bytes; the limit is {MAX_EXPR_BYTES}",
            expr.len()
        ));
    }
    let code = outside_strings(expr);
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for c in code.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!(
            "brackets nest {deepest} deep; the limit is {MAX_NESTING}"
        ));
    }
    // Long chains (`1*1*1...`, `x[0][0]...`, `a.f().f()...`) make a deep expression tree even
    // without brackets, and compiling, evaluating and freeing one recurses: bound every
    // operator, selection, index and `in` outside string literals.
    let operators = operator_count(&code);
    if operators > MAX_OPERATORS {
        return Err(format!(
            "{operators} operators, selections or indexes; the limit is {MAX_OPERATORS}"
        ));
    }
    Ok(())
}

/// `expr` with the contents of its string literals left out (the quotes stay), so what is
/// counted is code.
fn outside_strings(expr: &str) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in expr.chars() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                    out.push(c);
                }
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// Operator characters, `.` selections, `[` indexes and `in` keywords in `code` (string
/// literals already left out).
fn operator_count(code: &str) -> usize {
    let mut count = 0;
    let mut word = String::new();
    for c in code.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word == "in" {
            count += 1;
        }
        word.clear();
        if "+-*/%<>=!&|?.[".contains(c) {
            count += 1;
        }
    }
    count
}

/// Depth of a compiled expression tree, found without recursion (the tree may be deep).
fn ast_depth(root: &cel::IdedExpr) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(root, 1usize)];
    while let Some((node, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        stack.extend(children(node).into_iter().map(|c| (c, depth + 1)));
    }
    deepest
}

/// The direct subexpressions of a CEL expression.
fn children(node: &cel::IdedExpr) -> Vec<&cel::IdedExpr> {
    use cel::common::ast::{EntryExpr, Expr};
    let mut out = Vec::new();
    match &node.expr {
        Expr::Call(call) => {
            out.extend(call.target.as_deref());
            out.extend(call.args.iter());
        }
        Expr::Comprehension(c) => out.extend([
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]),
        Expr::List(list) => out.extend(list.elements.iter()),
        Expr::Map(map) => {
            for entry in &map.entries {
                if let EntryExpr::MapEntry(e) = &entry.expr {
                    out.extend([&e.key, &e.value]);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => out.push(&f.value),
                    EntryExpr::MapEntry(e) => out.extend([&e.key, &e.value]),
                }
            }
        }
        Expr::Select(select) => out.push(&select.operand),
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => {}
    }
    out
}

/// A compiled rule.
pub struct CompiledRule {
    pub rule: Rule,
    program: cel::Program,
}

/// Compiles every rule; a rule that does not compile makes the policy broken.
pub fn compile(rules: Vec<Rule>) -> Result<Vec<CompiledRule>, PolicyError> {
    rules
        .into_iter()
        .map(|rule| {
            let origin = format!("{} (rule {}, line {})", rule.policy, rule.id, rule.line);
            match cel::Program::compile(&rule.expr) {
                Ok(program) if ast_depth(program.expression()) > MAX_AST_DEPTH => {
                    Err(PolicyError {
                        origin,
                        message: format!(
                            "the expression nests more than {MAX_AST_DEPTH} levels deep"
                        ),
                    })
                }
                Ok(program) => match view::check(program.expression()) {
                    Ok(()) => Ok(CompiledRule { rule, program }),
                    Err(message) => Err(PolicyError { origin, message }),
                },
                Err(e) => Err(PolicyError {
                    origin,
                    message: format!("the expression does not compile: {e}"),
                }),
            }
        })
        .collect()
}

/// What a rule concluded about one server or item.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Pass,
    /// Evaluated cleanly to `false`.
    Fail,
    /// Did not evaluate to a boolean: always a failure, whatever the severity.
    Error(String),
}

/// One evaluation subject (a server, or an item of a server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubjectRef {
    pub server: String,
    /// `None` for the server itself.
    pub item: Option<String>,
}

/// The results of one rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleResult {
    pub rule: Rule,
    /// Subjects that failed or errored (passes are only counted).
    pub failures: Vec<(SubjectRef, Outcome)>,
    pub evaluated: usize,
}

impl RuleResult {
    pub fn errored(&self) -> bool {
        self.failures
            .iter()
            .any(|(_, o)| matches!(o, Outcome::Error(_)))
    }

    /// Whether this rule fails the check: any error, or a clean `false` of an `error` rule.
    pub fn fails_check(&self) -> bool {
        self.errored() || (self.rule.severity == RuleSeverity::Error && !self.failures.is_empty())
    }
}

/// The input model: every server as `mcp.server`, each item as `mcp.tool`, `mcp.prompt`,
/// `mcp.resourceTemplate` or `mcp.resource` (agentgateway's `mcp.tool.name` style). It borrows
/// the items' definitions from the lockfile and adds only what mcplock derives (findings,
/// effective annotations, tier, revocation, approval); CEL reads it through views that convert a
/// field only when a rule reads it (`policy::view`).
pub struct Input<'a> {
    servers: Vec<ServerInput<'a>>,
}

struct ServerInput<'a> {
    name: String,
    /// `mcp.server` without its item lists.
    fields: Map<String, Value>,
    items: Vec<ItemInput<'a>>,
    /// Each tool's position in `items`, for judging calls.
    tools: HashMap<&'a str, usize>,
}

struct ItemInput<'a> {
    kind: ItemKind,
    key: &'a str,
    /// What mcplock adds to the definition; read before it (the effective `annotations`).
    derived: Map<String, Value>,
    /// The definition as locked: parsed only while a rule judges the item (issue 33: the input
    /// never holds every definition as a tree).
    held: &'a Definition,
}

impl<'a> Input<'a> {
    pub fn new(lockfile: &'a Lockfile) -> Input<'a> {
        Input::with_revocations(lockfile, &Revocations::default())
    }

    /// The input model with `revoked` set on each server and item a revocation list revokes.
    pub fn with_revocations(lockfile: &'a Lockfile, revocations: &Revocations) -> Input<'a> {
        Input::with(lockfile, revocations, &Tiers::default())
    }

    /// The input model with `revoked` set by `revocations` and `tier` by `tiers` (a string, or
    /// null for what no policy assigns a tier).
    pub fn with(lockfile: &'a Lockfile, revocations: &Revocations, tiers: &Tiers) -> Input<'a> {
        let confusables = &confusable::confusables(lockfile);
        let mut revoked_servers = std::collections::BTreeSet::new();
        let mut revoked_items = std::collections::BTreeSet::new();
        for (server, item, _) in revocations.applying_to(lockfile) {
            match item {
                None => {
                    revoked_servers.insert(server);
                }
                Some((kind, key)) => {
                    revoked_items.insert((server, kind, key));
                }
            }
        }
        let servers = lockfile
            .servers
            .iter()
            .map(|(name, server)| {
                let listed: Vec<(ItemKind, &String, &Definition)> = ItemKind::ALL
                    .into_iter()
                    .flat_map(|kind| {
                        server
                            .items(kind)
                            .into_iter()
                            .flatten()
                            .map(move |(key, def)| (kind, key, def))
                    })
                    .collect();
                // What mcplock derives (findings, look-alikes, annotations) for each item, on
                // all cores: the bulk of building the input for a large server.
                let items = crate::core::parallel::map(&listed, |&(kind, key, held)| {
                    let def = held.to_map();
                    let mut derived = derived_fields(kind, name, key, &def, confusables);
                    let tier = match kind {
                        ItemKind::Tool => tiers.of_tool(name, key),
                        _ => tiers.servers.get(name.as_str()).copied(),
                    };
                    derived.insert("tier".into(), json!(tier.map(Tier::as_str)));
                    if kind == ItemKind::Tool {
                        // The digest is computed only for a tool that has approvals to hold
                        // it against.
                        let candidates = lockfile
                            .approvals
                            .iter()
                            .any(|a| a.server == *name && a.tool == *key);
                        let approved = candidates && {
                            let digest = held.digest();
                            lockfile
                                .approvals
                                .iter()
                                .any(|a| a.covers(name, key, digest))
                        };
                        derived.insert("approved".into(), json!(approved));
                    }
                    // An item of a revoked server is revoked too.
                    let revoked = revoked_servers.contains(name)
                        || revoked_items.contains(&(name.clone(), kind, key.clone()));
                    derived.insert("revoked".into(), json!(revoked));
                    ItemInput {
                        kind,
                        key: key.as_str(),
                        derived,
                        held,
                    }
                });
                let mut fields = server_fields(name, server, lockfile.registry.get(name));
                fields.insert("revoked".into(), json!(revoked_servers.contains(name)));
                fields.insert(
                    "tier".into(),
                    json!(tiers.servers.get(name.as_str()).map(|t| t.as_str())),
                );
                let tools = items
                    .iter()
                    .enumerate()
                    .filter(|(_, i)| i.kind == ItemKind::Tool)
                    .map(|(n, i)| (i.key, n))
                    .collect();
                ServerInput {
                    name: name.clone(),
                    fields,
                    items,
                    tools,
                }
            })
            .collect();
        Input { servers }
    }
}

impl<'a> ItemInput<'a> {
    /// The item as rules see it; `definition` is its definition, parsed by the caller.
    fn view<'v>(&'v self, definition: &'v Map<String, Value>) -> View<'v> {
        View::new(vec![&self.derived, definition], Vec::new())
    }
}

impl<'a> ServerInput<'a> {
    /// `mcp.server`; `lists` are the item views of its `tools`, `prompts`, ... (for server
    /// rules; item rules see the server without them).
    fn view<'v>(&'v self, lists: &'v [Vec<View<'v>>; 4]) -> View<'v> {
        let named = ItemKind::ALL
            .into_iter()
            .zip(lists.iter())
            .map(|(kind, views)| (kind.field(), Field::Views(views.as_slice())))
            .collect();
        View::new(vec![&self.fields], named)
    }

    /// The item lists' views; `parsed` holds each item's definition, in `items` order.
    fn item_views<'v>(&'v self, parsed: &'v [Map<String, Value>]) -> [Vec<View<'v>>; 4] {
        ItemKind::ALL.map(|kind| {
            self.items
                .iter()
                .zip(parsed)
                .filter(|(i, _)| i.kind == kind)
                .map(|(i, definition)| i.view(definition))
                .collect()
        })
    }
}

fn item_field(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::Tool => "tool",
        ItemKind::Prompt => "prompt",
        ItemKind::ResourceTemplate => "resourceTemplate",
        ItemKind::Resource => "resource",
    }
}

fn text_findings(texts: &[Option<&str>]) -> Value {
    let mut all: Vec<&str> = texts
        .iter()
        .flatten()
        .flat_map(|t| findings::findings(t))
        .collect();
    all.sort_unstable();
    all.dedup();
    json!(all)
}

/// What mcplock adds to an item's definition in the input model.
fn derived_fields(
    kind: ItemKind,
    server: &str,
    key: &str,
    def: &Map<String, Value>,
    confusables: &std::collections::BTreeMap<confusable::Item, Vec<String>>,
) -> Map<String, Value> {
    let mut item = Map::new();
    item.insert("server".into(), json!(server));
    if confusable::KINDS.contains(&kind) {
        let others = confusables
            .get(&(server.to_string(), kind, key.to_string()))
            .cloned()
            .unwrap_or_default();
        item.insert("confusableWith".into(), json!(others));
    }
    item.insert(
        "findings".into(),
        text_findings(&[
            def.get("description").and_then(Value::as_str),
            def.get("title").and_then(Value::as_str),
        ]),
    );
    if kind == ItemKind::Tool {
        let served = def
            .get("annotations")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut effective = served.clone();
        for (hint, default) in [
            ("readOnlyHint", false),
            ("destructiveHint", true),
            ("idempotentHint", false),
            ("openWorldHint", true),
        ] {
            if !effective.get(hint).is_some_and(Value::is_boolean) {
                effective.insert(hint.into(), json!(default));
            }
        }
        item.insert("annotations".into(), Value::Object(effective));
        item.insert("servedAnnotations".into(), Value::Object(served));
    }
    item
}

/// `mcp.server`'s own fields (its item lists are views over the items).
fn server_fields(
    name: &str,
    s: &ServerLock,
    registry: Option<&crate::core::registry::Record>,
) -> Map<String, Value> {
    let Value::Object(fields) = json!({
        "name": name,
        "serverInfo": s.server_info,
        "protocolVersion": s.protocol_version,
        "capabilities": s.capabilities,
        "clientCapabilities": s.client_capabilities,
        "instructions": s.instructions,
        "instructionsFindings": text_findings(&[s.instructions.as_deref()]),
        "launch": s.launch.to_json(),
        "artifact": s.artifact.as_ref().map(crate::core::artifact::Artifact::to_json),
        "authorization": s.authorization.as_ref().map(crate::core::authz::AuthSurface::to_json),
        "resourcesLocked": s.resources.is_some(),
        "registry": registry.map(crate::core::registry::Record::to_json),
    }) else {
        return Map::new();
    };
    fields
}

/// Evaluates every rule on every subject it targets. `keep_going` is polled between subjects:
/// when it says stop (the caller's deadline passed), evaluation ends early.
pub fn evaluate(
    rules: &[CompiledRule],
    input: &Input,
    keep_going: &(dyn Fn() -> bool + Sync),
) -> Option<Vec<RuleResult>> {
    let root = cel::Context::with_env(env::env());
    let mut results: Vec<RuleResult> = rules
        .iter()
        .map(|compiled| RuleResult {
            rule: compiled.rule.clone(),
            failures: Vec::new(),
            evaluated: 0,
        })
        .collect();
    for server in &input.servers {
        judge_server_rules(rules, server, &root, keep_going, &mut results)?;
        for kind in ItemKind::ALL {
            judge_item_rules(rules, server, kind, keep_going, &mut results)?;
        }
    }
    Some(results)
}

fn record(result: &mut RuleResult, server: &str, item: Option<&str>, outcome: Outcome) {
    result.evaluated += 1;
    if outcome != Outcome::Pass {
        result.failures.push((
            SubjectRef {
                server: server.to_string(),
                item: item.map(str::to_owned),
            },
            outcome,
        ));
    }
}

/// Whether a server rule may read the server's item lists. Judged on the expression's text, so
/// it errs only one way: a rule that names none of them (nor indexes) is judged without them,
/// and one that reaches them otherwise meets no such field, an error, and fails closed.
fn reads_lists(expr: &str) -> bool {
    ["tools", "prompts", "resource", "["]
        .iter()
        .any(|word| expr.contains(word))
}

/// The server rules on `server`. Its item lists are built (every definition parsed) only when
/// some server rule may read them.
fn judge_server_rules(
    rules: &[CompiledRule],
    server: &ServerInput,
    root: &cel::Context,
    keep_going: &(dyn Fn() -> bool + Sync),
    results: &mut [RuleResult],
) -> Option<()> {
    let judged: Vec<usize> = (0..rules.len())
        .filter(|&i| rules[i].rule.target == Target::Server)
        .collect();
    if judged.is_empty() {
        return Some(());
    }
    let parsed: Vec<Map<String, Value>> =
        if judged.iter().any(|&i| reads_lists(&rules[i].rule.expr)) {
            crate::core::parallel::map(&server.items, |item| item.held.to_map())
        } else {
            Vec::new()
        };
    let lists = server.item_views(&parsed);
    let full = if parsed.is_empty() && !server.items.is_empty() {
        View::new(vec![&server.fields], Vec::new())
    } else {
        server.view(&lists)
    };
    for i in judged {
        if !keep_going() {
            return None;
        }
        let outcome = judge(root, &rules[i], mcp(&[("server", &full as &dyn Val)]));
        record(&mut results[i], &server.name, None, outcome);
    }
    Some(())
}

/// The item rules of `kind` on `server`'s items, on every core: each item's definition is
/// parsed once, judged by every such rule, and dropped.
fn judge_item_rules(
    rules: &[CompiledRule],
    server: &ServerInput,
    kind: ItemKind,
    keep_going: &(dyn Fn() -> bool + Sync),
    results: &mut [RuleResult],
) -> Option<()> {
    let judged: Vec<usize> = (0..rules.len())
        .filter(|&i| rules[i].rule.target == Target::Item(kind))
        .collect();
    if judged.is_empty() {
        return Some(());
    }
    let light = View::new(vec![&server.fields], Vec::new());
    let subjects: Vec<&ItemInput> = server.items.iter().filter(|i| i.kind == kind).collect();
    let outcomes = crate::core::parallel::map(&subjects, |item| {
        // Each thread binds its own variables.
        let root = cel::Context::with_env(env::env());
        let definition = item.held.to_map();
        let view = item.view(&definition);
        let mut out = Vec::with_capacity(judged.len());
        for &i in &judged {
            if !keep_going() {
                return None;
            }
            let subject = mcp(&[("server", &light as &dyn Val), (item_field(kind), &view)]);
            out.push(judge(&root, &rules[i], subject));
        }
        Some(out)
    });
    for (item, outcome) in subjects.iter().zip(outcomes) {
        for (&i, outcome) in judged.iter().zip(outcome?) {
            record(&mut results[i], &server.name, Some(item.key), outcome);
        }
    }
    Some(())
}

/// Runs one rule with `mcp` bound to `subject`.
fn judge(root: &cel::Context, compiled: &CompiledRule, subject: View) -> Outcome {
    let mut scope = root.new_inner_scope();
    scope.add_variable_as_val("mcp", Box::new(subject));
    outcome_of(compiled.program.execute(&scope))
}

fn outcome_of(result: Result<cel::Value, cel::ExecutionError>) -> Outcome {
    match result {
        Ok(cel::Value::Bool(true)) => Outcome::Pass,
        Ok(cel::Value::Bool(false)) => Outcome::Fail,
        Ok(other) => Outcome::Error(format!("returned {}, not a boolean", type_name(&other))),
        Err(e) => Outcome::Error(e.to_string()),
    }
}

/// What the call rules concluded about one call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallVerdict {
    Allow,
    /// Allowed; `warn` rules that failed, as (rule id, message).
    Warn(Vec<(String, String)>),
    /// Denied by the first `error` rule that failed or any rule that did not evaluate to a
    /// boolean (fail-closed): (rule id, message).
    Deny(String, String),
    /// Allowed by the rules, refused by the limits (`core::limits`).
    Limited(crate::core::limits::Refusal),
}

/// One call to judge.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    pub server: &'a str,
    pub tool: &'a str,
    pub arguments: &'a Value,
    /// The agent calling (a gateway's session), or none (a proxy's host): `mcp.agent.name`.
    pub agent: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A call of `tool` on `server` with `arguments`, by no named agent.
    pub fn new(server: &'a str, tool: &'a str, arguments: &'a Value) -> Call<'a> {
        Call {
            server,
            tool,
            arguments,
            agent: None,
        }
    }
}

/// Evaluates the `on: call` rules for `call`. A tool the input does not hold is denied (there
/// is nothing to judge it by); so is a rule that does not finish before `keep_going` says stop.
pub fn evaluate_call(
    rules: &[CompiledRule],
    input: &Input,
    call: Call,
    keep_going: &dyn Fn() -> bool,
) -> CallVerdict {
    let Call {
        server,
        tool,
        arguments,
        agent,
    } = call;
    let Some(entry) = input.servers.iter().find(|s| s.name == server) else {
        return CallVerdict::Deny(
            "(input)".into(),
            format!("server {server:?} is not in the lockfile"),
        );
    };
    let Some(item) = entry.tools.get(tool).and_then(|&n| entry.items.get(n)) else {
        return CallVerdict::Deny(
            "(input)".into(),
            format!("tool {tool:?} is not in the lockfile"),
        );
    };
    let light = View::new(vec![&entry.fields], Vec::new());
    let definition = item.held.to_map();
    let tool_view = item.view(&definition);
    let call = json!({"arguments": arguments, "tool": tool});
    let Value::Object(call) = &call else {
        return CallVerdict::Deny("(input)".into(), "the call is not an object".into());
    };
    let call_view = View::new(vec![call], Vec::new());
    let agent = json!({"name": agent});
    let Value::Object(agent) = &agent else {
        return CallVerdict::Deny("(input)".into(), "the agent is not an object".into());
    };
    let agent_view = View::new(vec![agent], Vec::new());
    let root = cel::Context::with_env(env::env());
    let mut warnings = Vec::new();
    for compiled in rules.iter().filter(|r| r.rule.target == Target::Call) {
        if !keep_going() {
            return CallVerdict::Deny(
                compiled.rule.id.clone(),
                "the call rules did not finish in time".into(),
            );
        }
        let mut scope = root.new_inner_scope();
        let value = mcp(&[
            ("server", &light as &dyn Val),
            ("tool", &tool_view),
            ("call", &call_view),
            ("agent", &agent_view),
        ]);
        scope.add_variable_as_val("mcp", Box::new(value));
        match compiled.program.execute(&scope) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) if compiled.rule.severity == RuleSeverity::Warn => {
                warnings.push((compiled.rule.id.clone(), compiled.rule.message.clone()));
            }
            Ok(cel::Value::Bool(false)) => {
                return CallVerdict::Deny(compiled.rule.id.clone(), compiled.rule.message.clone());
            }
            Ok(other) => {
                return CallVerdict::Deny(
                    compiled.rule.id.clone(),
                    format!("the rule returned {}, not a boolean", type_name(&other)),
                );
            }
            Err(e) => {
                return CallVerdict::Deny(
                    compiled.rule.id.clone(),
                    format!("the rule failed: {e}"),
                );
            }
        }
    }
    if warnings.is_empty() {
        CallVerdict::Allow
    } else {
        CallVerdict::Warn(warnings)
    }
}

/// The variable `mcp` of one evaluation: its fields are the views given.
fn mcp<'v>(fields: &[(&'v str, &'v (dyn Val + 'v))]) -> View<'v> {
    View::new(
        Vec::new(),
        fields
            .iter()
            .map(|(name, view)| (*name, Field::Val(*view)))
            .collect(),
    )
}

fn type_name(v: &cel::Value) -> &'static str {
    match v {
        cel::Value::List(_) => "a list",
        cel::Value::Map(_) => "a map",
        cel::Value::Int(_) | cel::Value::UInt(_) => "an int",
        cel::Value::Float(_) => "a double",
        cel::Value::String(_) => "a string",
        cel::Value::Bytes(_) => "bytes",
        cel::Value::Null => "null",
        _ => "a non-boolean value",
    }
}

/// The embedded presets: (name, what it is for, YAML).
pub const PRESETS: [(&str, &str, &str); 3] = [
    (
        "baseline",
        "rules every server should pass: described tools, MCP-conformant names, no poisoning findings, bounded instructions",
        include_str!("presets/baseline.yaml"),
    ),
    (
        "strict",
        "baseline, plus: destructive tools must say so explicitly, no file:// or http:// resource templates, short instructions",
        include_str!("presets/strict.yaml"),
    ),
    (
        "tiers",
        "the minimum controls of each trust tier (tiers assigned in your policy's tiers: section): every tool tiered, tiers 0-1 read-only, tier 2 declares destructiveness, tier 3 and 4 calls denied",
        include_str!("presets/tiers.yaml"),
    ),
];

pub fn preset(name: &str) -> Option<Result<Policy, PolicyError>> {
    PRESETS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(n, _, text)| parse_policy(&format!("preset {n}"), text))
}

impl crate::core::code::Coded for PolicyError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::PolicyInvalid
    }
}

#[cfg(test)]
mod tests;
