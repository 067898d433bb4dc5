//! `mcplock policy`: CEL rules over a lockfile or a live server, fail-closed and bounded.

use super::exit::{Code, fail, read_input};
use super::files::load_lockfile;
use super::live::scan_server;
use super::render::{md_code, md_text, pretty};
use super::{CliError, ExitKind, Format, Output, PolicyArgs, PolicyCommand, PolicySource};
use crate::core::lockfile::{Lockfile, ServerLock};
use crate::core::policy::Tiers;
use crate::core::policy::{
    self, CompiledRule, Input, Outcome, PRESETS, Policy, RuleResult, RuleSeverity, Target,
};
use crate::core::revocation::Revocations;
use crate::core::text::escape;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(args: PolicyArgs) -> Result<Output, CliError> {
    match args.command {
        PolicyCommand::Presets => Ok(presets()),
        PolicyCommand::Check(source) => check(source, false).await,
        PolicyCommand::Explain(source) => check(source, true).await,
    }
}

fn presets() -> Output {
    let mut out = String::new();
    let mut listed = Vec::new();
    for (name, about, text) in PRESETS {
        let rules = policy::parse_policy(name, text).map_or(0, |p| p.rules.len());
        let _ = writeln!(out, "{name:<10} {rules} rules: {about}");
        listed.push(json!({"name": name, "rules": rules, "about": about}));
    }
    out.push_str("\nUse one with `mcplock policy check --preset NAME`; see its rules with `mcplock policy explain --preset NAME`.\n");
    Output::report(None, out, json!({"presets": listed}))
}

/// Loads every policy named by `--policy` and `--preset`.
fn load_policies(source: &PolicySource) -> Result<Vec<Policy>, CliError> {
    if source.policy.is_empty() && source.preset.is_empty() {
        return Err(fail(
            Code::PolicyInvalid,
            "no policy given: use --policy FILE or --preset NAME (see `mcplock policy presets`)",
        ));
    }
    load_named(&source.policy, &source.preset)
}

/// The tiers every policy assigns, together; one server or tool given two tiers is an error.
pub(super) fn merged_tiers(policies: &[Policy]) -> Result<Tiers, CliError> {
    let mut tiers = Tiers::default();
    for p in policies {
        tiers
            .merge(&p.tiers)
            .map_err(|e| fail(Code::PolicyInvalid, format!("policy {}: {e}", p.name)))?;
    }
    Ok(tiers)
}

/// Loads the policy files and presets named (rule ids unique across them).
pub(super) fn load_named(
    files: &[std::path::PathBuf],
    presets: &[String],
) -> Result<Vec<Policy>, CliError> {
    let mut policies = Vec::new();
    for name in presets {
        let found = policy::preset(name).ok_or_else(|| {
            fail(
                Code::PolicyInvalid,
                format!(
                    "no preset {name:?}; the presets are: {}",
                    PRESETS.map(|(n, _, _)| n).join(", ")
                ),
            )
        })?;
        policies.push(found.map_err(|e| fail(Code::PolicyInvalid, format!("broken preset: {e}")))?);
    }
    for path in files {
        let bytes = read_input(path, policy::MAX_POLICY_BYTES as u64, "policy")?;
        let text = String::from_utf8(bytes).map_err(|_| {
            fail(
                Code::InputUnreadable,
                format!("policy {} is not UTF-8", path.display()),
            )
        })?;
        let parsed = policy::parse_policy(&path.display().to_string(), &text)
            .map_err(|e| fail(Code::PolicyInvalid, format!("broken policy: {e}")))?;
        policies.push(parsed);
    }
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for p in &policies {
        for r in &p.rules {
            if let Some(other) = seen.insert(&r.id, &p.name) {
                return Err(fail(
                    Code::PolicyInvalid,
                    format!(
                        "rule id {:?} is defined by both {other:?} and {:?}; ids must be unique across the policies checked together",
                        r.id, p.name
                    ),
                ));
            }
        }
    }
    Ok(policies)
}

async fn subjects(source: &PolicySource) -> Result<Lockfile, CliError> {
    if source.hosts.host.is_some() {
        if source.server.names_a_server() {
            return Err(fail(
                Code::Usage,
                "--host checks the servers of the hosts' configs: give no server as well",
            ));
        }
        return super::hosts::scanned_hosts(&source.hosts, &source.server).await;
    }
    if !source.server.names_a_server() {
        return load_lockfile(&source.lockfile)?.ok_or_else(|| {
            fail(
                Code::InputMissing,
                format!(
                    "{} does not exist; lock first, give --lockfile, or a server after `--`",
                    source.lockfile.display()
                ),
            )
        });
    }
    // A server that cannot be scanned is an error (exit 3), never an empty pass.
    let scanned = scan_server(&source.server).await?;
    let name = scanned
        .snapshot
        .server_name()
        .unwrap_or("server")
        .to_string();
    let entry = ServerLock::from_snapshot(scanned.snapshot, true)
        .map_err(|e| fail(Code::ServerFailed, e.to_string()))?;
    Ok(Lockfile {
        servers: BTreeMap::from([(name, entry)]),
        approvals: Vec::new(),
        registry: Default::default(),
    })
}

/// Bounds on one policy evaluation: its time, and the memory it may add to the process.
#[derive(Clone, Copy, Debug)]
pub(super) struct EvalLimits {
    pub time: Duration,
    pub memory: u64,
}

impl EvalLimits {
    pub fn new(seconds: f64, memory: usize) -> EvalLimits {
        EvalLimits {
            time: Duration::from_secs_f64(seconds),
            memory: memory as u64,
        }
    }
}

/// Compiles the rules on a thread whose stack is sized for the deepest expression accepted
/// (compiling, and freeing, a deep expression recurses).
pub(super) fn compile_bounded(rules: Vec<policy::Rule>) -> Result<Vec<CompiledRule>, CliError> {
    std::thread::Builder::new()
        .name("policy-compile".into())
        .stack_size(policy::EVAL_STACK_BYTES)
        .spawn(move || policy::compile(rules))
        .map_err(|e| {
            fail(
                Code::Internal,
                format!("cannot start the compiling thread: {e}"),
            )
        })?
        .join()
        .map_err(|_| fail(Code::Internal, "internal error while compiling the policy"))?
        // A rule that does not compile is the policy's fault, not mcplock's.
        .map_err(|e| {
            fail(
                Code::PolicyInvalid,
                format!("{e}; fix the rule, then run again"),
            )
        })
}

/// Evaluates on a worker thread (its stack sized for the deepest expression accepted) under a
/// deadline and a memory budget: a hostile policy or input can neither hang mcplock, nor
/// overflow its stack, nor grow it without bound. A rule that crosses a bound fails the check;
/// the worker is left to end with the process.
fn evaluate_bounded(
    rules: Vec<CompiledRule>,
    lockfile: Arc<Lockfile>,
    limits: EvalLimits,
) -> Result<Vec<RuleResult>, CliError> {
    evaluate_revoked(
        rules,
        lockfile,
        Revocations::default(),
        Tiers::default(),
        limits,
    )
}

/// [`evaluate_bounded`] with what a revocation list revokes marked in the input.
fn evaluate_revoked(
    rules: Vec<CompiledRule>,
    lockfile: Arc<Lockfile>,
    revocations: Revocations,
    tiers: Tiers,
    limits: EvalLimits,
) -> Result<Vec<RuleResult>, CliError> {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    let deadline = start + limits.time;
    let baseline = crate::edge::memory::resident_bytes().unwrap_or(0);
    std::thread::Builder::new()
        .name("policy".into())
        .stack_size(policy::EVAL_STACK_BYTES)
        .spawn(move || {
            let input = Input::with(&lockfile, &revocations, &tiers);
            let results = policy::evaluate(&rules, &input, &|| Instant::now() < deadline);
            let _ = tx.send(results);
        })
        .map_err(|e| {
            fail(
                Code::Internal,
                format!("cannot start the evaluation thread: {e}"),
            )
        })?;
    let timeout = || {
        fail(
            Code::PolicyFailed,
            format!(
                "policy evaluation did not finish within {}s: a rule is too costly for this input (raise --eval-timeout only for a policy you trust)",
                limits.time.as_secs_f64()
            ),
        )
    };
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(Some(results)) => return Ok(results),
            // The worker stopped at the deadline.
            Ok(None) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(timeout());
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let grown = crate::edge::memory::resident_bytes()
            .unwrap_or(0)
            .saturating_sub(baseline);
        if grown > limits.memory {
            return Err(fail(
                Code::PolicyFailed,
                format!(
                    "policy evaluation used more than {} MiB of memory: a rule builds too much for this input (raise --eval-memory only for a policy you trust)",
                    limits.memory >> 20
                ),
            ));
        }
        // Still inside one costly evaluation past the deadline.
        if Instant::now() > deadline + Duration::from_millis(100) {
            return Err(timeout());
        }
    }
}

async fn check(source: PolicySource, explain: bool) -> Result<Output, CliError> {
    let policies = load_policies(&source)?;
    let tiers = merged_tiers(&policies)?;
    let names: Vec<String> = policies.iter().map(|p| p.name.clone()).collect();
    let limits: usize = policies.iter().map(|p| p.limits.len()).sum();
    let rules: Vec<_> = policies.into_iter().flat_map(|p| p.rules).collect();
    let compiled = compile_bounded(rules)?;
    let lockfile = if explain
        && !source.lockfile.exists()
        && !source.server.names_a_server()
        && source.hosts.host.is_none()
    {
        None
    } else {
        Some(subjects(&source).await?)
    };
    let revocations = match &source.revocations {
        Some(path) => {
            let key = source.revocations_key.as_deref();
            super::revocations::load(path, key, key.is_some())?
        }
        None => Revocations::default(),
    };
    let results = match lockfile {
        Some(lockfile) => Some(evaluate_revoked(
            compiled,
            Arc::new(lockfile),
            revocations,
            tiers,
            EvalLimits::new(source.eval_timeout, source.eval_memory),
        )?),
        None => None,
    };
    let failed = results
        .as_ref()
        .is_some_and(|r| r.iter().any(RuleResult::fails_check));
    let code = (failed && !explain).then_some(Code::PolicyFailed);
    let exit = code.map_or(ExitKind::Clean, Code::exit);
    // Results sit in the lockfile when that is what was checked.
    let located_in = (!source.server.names_a_server() && source.hosts.host.is_none())
        .then(|| source.lockfile.clone());
    // explain answers, it does not refuse: no code then.
    Ok(Output::lazy(code, move |format| {
        Ok(match format {
            Format::Json => pretty(&json_report(&names, results.as_deref(), failed)),
            Format::Markdown => markdown(&names, results.as_deref().unwrap_or_default(), failed),
            Format::Sarif => pretty(&sarif_report(
                results.as_deref().unwrap_or_default(),
                located_in.as_deref(),
                exit.code(),
            )),
            // Refused before any output by `check_format` (export only).
            Format::Human | Format::McpLock1 => {
                let mut text = human(&names, results.as_deref(), explain, failed);
                if limits > 0 {
                    text.push_str(&format!(
                        "{limits} limit(s): counted at run time by `mcplock proxy` and `mcplock gateway`, not checked here (docs/policy.md, \"Limits\")\n"
                    ));
                }
                text
            }
        })
    }))
}

/// A policy evaluated for an audit bundle: its JSON result (the `policy check --format json`
/// report) and the human report.
pub(super) struct BundledPolicy {
    pub passed: bool,
    pub rules: usize,
    pub json: String,
    pub human: String,
}

/// Evaluates one policy file's text over a lockfile, named by its member name in the bundle
/// so the result does not depend on where the file was.
pub(super) fn evaluate_bundled(
    member_name: &str,
    text: &str,
    lockfile: Arc<Lockfile>,
    limits: EvalLimits,
) -> Result<BundledPolicy, CliError> {
    let parsed = policy::parse_policy(member_name, text)
        .map_err(|e| fail(Code::PolicyInvalid, format!("broken policy: {e}")))?;
    let names = vec![parsed.name.clone()];
    let compiled = compile_bounded(parsed.rules)?;
    let results = evaluate_bounded(compiled, lockfile, limits)?;
    let failed = results.iter().any(RuleResult::fails_check);
    Ok(BundledPolicy {
        passed: !failed,
        rules: results.len(),
        json: pretty(&json_report(&names, Some(&results), failed)),
        human: human(&names, Some(&results), false, failed),
    })
}

fn outcome_text(o: &Outcome) -> String {
    match o {
        Outcome::Pass => "pass".into(),
        Outcome::Fail => "false".into(),
        Outcome::Error(e) => format!("error: {e}"),
    }
}

fn subject_text(server: &str, item: Option<&str>) -> String {
    match item {
        Some(item) => format!("{}/{}", escape(server), escape(item)),
        None => escape(server),
    }
}

/// The verdict of one rule, as every report names it.
fn status(r: &RuleResult) -> &'static str {
    if r.errored() {
        "error"
    } else if r.failures.is_empty() {
        "pass"
    } else if r.rule.severity == RuleSeverity::Warn {
        "warn"
    } else {
        "fail"
    }
}

/// Markdown for a job summary or a pull-request comment: a table of the rules that did not
/// pass, then up to 20 failing subjects each.
fn markdown(names: &[String], results: &[RuleResult], failed: bool) -> String {
    let mut out = String::from("### mcplock policy check\n\n");
    let quoted: Vec<String> = names.iter().map(|n| md_code(n)).collect();
    let _ = writeln!(out, "Policies: {}\n", quoted.join(", "));
    let not_passed: Vec<&RuleResult> = results.iter().filter(|r| status(r) != "pass").collect();
    let _ = writeln!(
        out,
        "**{}**: {} rule(s), {} did not pass.\n",
        if failed { "Failed" } else { "Passed" },
        results.len(),
        not_passed.len()
    );
    if not_passed.is_empty() {
        return out;
    }
    out.push_str("| verdict | rule | on | message | failing |\n|---|---|---|---|---|\n");
    for r in &not_passed {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} of {} |",
            status(r),
            md_code(&r.rule.id),
            r.rule.target.as_str(),
            md_text(&r.rule.message),
            r.failures.len(),
            r.evaluated
        );
    }
    for r in not_passed {
        let _ = writeln!(
            out,
            "\n<details><summary>{}</summary>\n",
            md_text(&r.rule.id)
        );
        for (subject, outcome) in r.failures.iter().take(20) {
            let _ = writeln!(
                out,
                "- {}: {}",
                md_code(&subject_text(&subject.server, subject.item.as_deref())),
                md_text(&outcome_text(outcome))
            );
        }
        if r.failures.len() > 20 {
            let _ = writeln!(
                out,
                "- ... and {} more (see --format json)",
                r.failures.len() - 20
            );
        }
        out.push_str("\n</details>\n");
    }
    out
}

/// One SARIF rule per policy rule id; a result per failing subject, at its lockfile entry.
/// A rule that could not be evaluated is an error whatever its severity (fail-closed).
fn sarif_report(
    results: &[RuleResult],
    located_in: Option<&std::path::Path>,
    exit_code: u8,
) -> Value {
    use super::sarif::{Finding, Level, Rule, entry_pointer};
    let level_of = |severity: RuleSeverity| match severity {
        RuleSeverity::Error => Level::Error,
        RuleSeverity::Warn => Level::Warning,
    };
    let rules: Vec<Rule> = results
        .iter()
        .map(|r| Rule {
            id: r.rule.id.clone(),
            summary: r.rule.message.clone(),
            help: format!(
                "{} (policy {}, on each {}: {})",
                r.rule.message,
                r.rule.policy,
                r.rule.target.as_str(),
                r.rule.expr
            ),
            level: level_of(r.rule.severity),
        })
        .collect();
    let mut findings = Vec::new();
    for r in results {
        let section = match r.rule.target {
            Target::Item(kind) => Some(kind.field()),
            Target::Server | Target::Call => None,
        };
        for (subject, outcome) in &r.failures {
            let item = section.zip(subject.item.as_deref());
            let logical = match item {
                Some((field, key)) => format!("{}/{field}/{key}", subject.server),
                None => subject.server.clone(),
            };
            let (level, message) = match outcome {
                Outcome::Error(e) => (
                    Level::Error,
                    format!(
                        "{} could not be evaluated on {}: {}",
                        r.rule.id,
                        escape(&logical),
                        escape(e)
                    ),
                ),
                _ => (
                    level_of(r.rule.severity),
                    format!(
                        "{} on {}: {}",
                        r.rule.id,
                        escape(&logical),
                        escape(&r.rule.message)
                    ),
                ),
            };
            let mut properties = serde_json::Map::new();
            properties.insert("policy".into(), json!(r.rule.policy));
            properties.insert("outcome".into(), json!(outcome_text(outcome)));
            findings.push(Finding {
                rule: r.rule.id.clone(),
                level,
                message,
                pointer: entry_pointer(&subject.server, item, ""),
                identity: vec!["policy".into(), r.rule.id.clone(), logical.clone()],
                logical,
                properties,
            });
        }
    }
    super::sarif::log("mcplock/policy/", &rules, &findings, located_in, exit_code)
}

/// One rule's line, and its failing subjects (each with what it fails, up to 20 unless
/// `explain`).
fn rule_lines(out: &mut String, r: &RuleResult, status: &str, explain: bool) {
    // A pass reads as one (a rule's message says what is wrong when it fails); a failure
    // says what is wrong and counts what fails.
    if r.failures.is_empty() && !r.errored() {
        let _ = writeln!(
            out,
            "{status} {} [{}, on {}]: all {} checked pass",
            r.rule.id,
            r.rule.severity.as_str(),
            r.rule.target.as_str(),
            r.evaluated,
        );
    } else {
        let _ = writeln!(
            out,
            "{status} {} [{}, on {}] {} ({} checked, {} failing)",
            r.rule.id,
            r.rule.severity.as_str(),
            r.rule.target.as_str(),
            escape(&r.rule.message),
            r.evaluated,
            r.failures.len()
        );
    }
    if explain {
        let _ = writeln!(out, "      expr: {}", escape(&r.rule.expr));
    }
    for (subject, outcome) in r
        .failures
        .iter()
        .take(if explain { usize::MAX } else { 20 })
    {
        // Each failing subject with what it fails (not a bare `false`).
        let why = match outcome {
            Outcome::Fail => format!("fails: {}", escape(&r.rule.message)),
            other => outcome_text(other),
        };
        let _ = writeln!(
            out,
            "      {}: {why}",
            subject_text(&subject.server, subject.item.as_deref()),
        );
    }
    if !explain && r.failures.len() > 20 {
        let _ = writeln!(
            out,
            "      ... and {} more (see --format json)",
            r.failures.len() - 20
        );
    }
}

fn human(names: &[String], results: Option<&[RuleResult]>, explain: bool, failed: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policies: {}", names.join(", "));
    let Some(results) = results else {
        out.push_str("(no lockfile found: listing rules only)\n");
        return out;
    };
    let mut counts = [0usize; 3];
    for r in results {
        let status = if r.errored() {
            counts[2] += 1;
            "ERROR"
        } else if r.failures.is_empty() {
            counts[0] += 1;
            "pass "
        } else if r.rule.severity == RuleSeverity::Warn {
            counts[1] += 1;
            "warn "
        } else {
            counts[2] += 1;
            "FAIL "
        };
        rule_lines(&mut out, r, status, explain);
    }
    let _ = writeln!(
        out,
        "\n{} rule(s): {} passed, {} warned, {} failed{}",
        results.len(),
        counts[0],
        counts[1],
        counts[2],
        if failed { " (exit 1)" } else { "" }
    );
    out
}

fn json_report(names: &[String], results: Option<&[RuleResult]>, failed: bool) -> Value {
    let rules: Vec<Value> = results
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let failures: Vec<Value> = r
                .failures
                .iter()
                .map(|(s, o)| {
                    json!({
                        "server": s.server,
                        "item": s.item,
                        "outcome": match o { Outcome::Error(_) => "error", _ => "false" },
                        "error": match o { Outcome::Error(e) => Value::from(e.clone()), _ => Value::Null },
                    })
                })
                .collect();
            json!({
                "id": r.rule.id,
                "policy": r.rule.policy,
                "severity": r.rule.severity.as_str(),
                "on": r.rule.target.as_str(),
                "message": r.rule.message,
                "expr": r.rule.expr,
                "passed": r.failures.is_empty(),
                "failsCheck": r.fails_check(),
                "evaluated": r.evaluated,
                "failures": failures,
            })
        })
        .collect();
    json!({
        "mcplockPolicy": 1,
        "policies": names,
        "passed": !failed,
        "rules": rules,
    })
}
