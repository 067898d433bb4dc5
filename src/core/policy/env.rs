//! The CEL environment policies run in: the standard library, with `matches` compiling each
//! pattern once instead of at every call (the cel crate's own `matches` compiles its regex on
//! every evaluation: for a rule over 10,000 tools, 10,000 compilations of one pattern).

use cel::common::types::{CelBool, CelString};
use cel::{Env, ExecutionError};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, LazyLock};

/// Compiled patterns kept per thread; past this many distinct patterns (a pattern taken from
/// the data rather than the rule) the cache starts over, so it cannot grow without bound.
const MAX_PATTERNS: usize = 256;

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // Both forms, with the ids and messages of the cel crate's own.
    let global = cel::add_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>,
        id = "matches");
    let member =
        cel::add_member_overload!(env, fn matches: (CelString, CelString) -> Result<CelBool>);
    // Registering two fixed overloads on a fresh standard environment cannot collide; if a cel
    // upgrade made it, every rule calling matches() would fail (an error, so fail-closed).
    debug_assert!(global.is_ok() && member.is_ok());
    Arc::new(env)
});

/// The environment every policy program runs in.
pub fn env() -> Arc<Env> {
    Arc::clone(&ENV)
}

thread_local! {
    // Shared, not cloned: a cloned Regex starts a new matching cache of its own each time.
    static PATTERNS: RefCell<HashMap<String, Result<Rc<regex::Regex>, String>>> =
        RefCell::new(HashMap::new());
}

fn matches(this: &CelString<'_>, re: &CelString<'_>) -> Result<CelBool, ExecutionError> {
    let pattern = re.inner();
    let compiled = PATTERNS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache.get(pattern) {
            return found.clone();
        }
        if cache.len() >= MAX_PATTERNS {
            cache.clear();
        }
        let compiled = regex::Regex::new(pattern)
            .map(Rc::new)
            .map_err(|e| e.to_string());
        cache.insert(pattern.to_string(), compiled.clone());
        compiled
    });
    match compiled {
        Ok(regex) => Ok(CelBool::from(regex.is_match(this.inner()))),
        Err(err) => Err(ExecutionError::FunctionError {
            function: "matches".to_string(),
            message: format!("'{pattern}' not a valid regex:\n{err}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(expr: &str) -> Result<cel::Value, ExecutionError> {
        let program = cel::Program::compile(expr).expect("compiles");
        program.execute(&cel::Context::with_env(env()))
    }

    #[test]
    fn matches_in_both_forms_and_refuses_a_broken_pattern() {
        assert_eq!(run("'abc'.matches('^a.c$')"), Ok(cel::Value::Bool(true)));
        assert_eq!(run("matches('abc', 'x')"), Ok(cel::Value::Bool(false)));
        // The cached pattern answers the same the second time.
        assert_eq!(run("'abc'.matches('^a.c$')"), Ok(cel::Value::Bool(true)));
        let broken = run("'abc'.matches('(a')");
        assert!(
            matches!(&broken, Err(ExecutionError::FunctionError { function, .. }) if function == "matches"),
            "{broken:?}"
        );
        assert!(
            run("'abc'.matches('(a')").is_err(),
            "a cached error stays an error"
        );
    }

    #[test]
    fn the_cache_stays_bounded() {
        for i in 0..(MAX_PATTERNS * 2) {
            assert_eq!(
                run(&format!("'x{i}'.matches('^x{i}$')")),
                Ok(cel::Value::Bool(true))
            );
        }
        PATTERNS.with(|cache| assert!(cache.borrow().len() <= MAX_PATTERNS));
    }
}
