//! The policy input as CEL sees it, without converting it on every evaluation.
//!
//! The cel crate converts a variable bound by value (`cel::Value`) into its own values in full
//! each time a program runs: for a tool, its whole definition and server, for every rule and
//! every tool. Here the variable `mcp` and the objects under it (`mcp.server`, `mcp.tool`, ...)
//! are views over the locked JSON: a field becomes a CEL value only when a rule reads it, and a
//! value read below them (a schema, a list of findings) is built as the crate's own types, with
//! strings borrowed, so everything CEL compares, iterates or calls functions on is its own
//! built-in value with the built-in semantics.
//!
//! The views themselves (`mcp`, `mcp.server`, `mcp.tool`, `mcp.call`, ...) are not the crate's
//! own maps, and the crate compares two values by asking the left one: a view on the right of
//! `==` would compare unequal to a map with the same entries. So a rule may read a view's fields
//! (`.f`, `[k]`, `has()`), its size, whether it has a key (`k in v`) and iterate its keys, and
//! nothing else: [`check`] refuses, when the policy is loaded, a rule that compares, returns or
//! passes a view as a value.

use cel::ExecutionError;
use cel::common::traits::{Container, Indexer, Iterable, Iterator as CelIterator, Sizer};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, MAP_TYPE, Type,
};
use cel::common::value::{CowVal, Val};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

static VIEW_TYPE: Type = MAP_TYPE;

/// A JSON value as CEL's own value, strings borrowed: integers become `int` (so `x > 5` works
/// as written), other numbers `double`, objects `map(string, dyn)`.
pub fn builtin<'a>(value: &'a Value) -> Box<dyn Val + 'a> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Box::new(CelInt::from(i)),
            None => Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN))),
        },
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => {
            Box::new(CelList::from(items.iter().map(builtin).collect::<Vec<_>>()))
        }
        Value::Object(map) => Box::new(CelMap::from(
            map.iter()
                .map(|(k, v)| (CelMapKey::from(k.as_str()), builtin(v)))
                .collect::<HashMap<_, _>>(),
        )),
    }
}

/// What a field of a view is.
#[derive(Clone, Debug)]
pub enum Field<'a> {
    /// A JSON value, converted when read.
    Json(&'a Value),
    /// A value that is itself a view (or any CEL value built for this evaluation).
    Val(&'a (dyn Val + 'a)),
    /// Views read as a list of the crate's own maps (a server's tools, for server rules): each
    /// converted in full when the list is read.
    Views(&'a [View<'a>]),
}

/// A map whose fields are looked up in `layers` (the first that has the name wins), then in
/// `named`; nothing is converted until a field is read.
#[derive(Debug, Default)]
pub struct View<'a> {
    layers: Vec<&'a Map<String, Value>>,
    named: Vec<(&'a str, Field<'a>)>,
    keys: OnceLock<Vec<CelString<'a>>>,
}

impl Clone for View<'_> {
    fn clone(&self) -> Self {
        View {
            layers: self.layers.clone(),
            named: self.named.clone(),
            keys: OnceLock::new(),
        }
    }
}

impl<'a> View<'a> {
    pub fn new(layers: Vec<&'a Map<String, Value>>, named: Vec<(&'a str, Field<'a>)>) -> View<'a> {
        View {
            layers,
            named,
            keys: OnceLock::new(),
        }
    }

    fn field(&self, name: &str) -> Option<Field<'a>> {
        self.layers
            .iter()
            .find_map(|layer| layer.get(name))
            .map(Field::Json)
            .or_else(|| {
                self.named
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, f)| f.clone())
            })
    }

    fn read(field: Field<'a>) -> CowVal<'a, 'a> {
        match field {
            Field::Json(value) => CowVal::Owned(builtin(value)),
            Field::Val(value) => CowVal::Borrowed(value),
            Field::Views(views) => CowVal::owned(CelList::from(
                views
                    .iter()
                    .map(|v| Box::new(v.materialize()) as Box<dyn Val + 'a>)
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// The field names, in lookup order, each once.
    fn keys(&self) -> &[CelString<'a>] {
        self.keys.get_or_init(|| {
            let mut seen = std::collections::HashSet::new();
            self.layers
                .iter()
                .flat_map(|layer| layer.keys().map(String::as_str))
                .chain(self.named.iter().map(|(n, _)| *n))
                .filter(|k| seen.insert(*k))
                .map(CelString::from)
                .collect()
        })
    }

    /// The view as a built-in map (for `==`).
    fn materialize(&self) -> CelMap<'a> {
        CelMap::from(
            self.keys()
                .iter()
                .filter_map(|k| {
                    let value = self.field(k.inner())?;
                    Some((
                        CelMapKey::from(k.inner().to_string()),
                        View::read(value).into_owned(),
                    ))
                })
                .collect::<HashMap<_, _>>(),
        )
    }
}

impl<'a> Val for View<'a> {
    fn get_type(&self) -> &Type {
        &VIEW_TYPE
    }

    fn cel_type() -> &'static Type
    where
        Self: Sized,
    {
        &VIEW_TYPE
    }

    fn as_indexer<'b, 'v>(&'b self) -> Option<&'b (dyn Indexer + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_iterable<'b, 'v>(&'b self) -> Option<&'b (dyn Iterable + 'v)>
    where
        Self: 'v,
    {
        Some(self)
    }

    fn as_sizer(&self) -> Option<&dyn Sizer> {
        Some(self)
    }

    fn as_container(&self) -> Option<&dyn Container> {
        Some(self)
    }

    fn equals(&self, other: &dyn Val) -> bool {
        self.materialize().equals(other)
    }

    fn clone_as_boxed<'v>(&self) -> Box<dyn Val + 'v>
    where
        Self: 'v,
    {
        Box::new(self.clone())
    }
}

impl<'a> Indexer for View<'a> {
    fn get<'b, 'v>(&'b self, index: &dyn Val) -> Result<CowVal<'b, 'v>, ExecutionError>
    where
        Self: 'v,
    {
        let Some(name) = index.downcast_ref::<CelString>() else {
            return Err(ExecutionError::UnexpectedType {
                got: index.get_type().name().to_owned(),
                want: "string".to_owned(),
            });
        };
        match self.field(name.inner()) {
            Some(field) => Ok(View::read(field)),
            None => Err(ExecutionError::no_such_key(name.inner())),
        }
    }

    fn steal<'v>(self: Box<Self>, index: &dyn Val) -> Result<Box<dyn Val + 'v>, ExecutionError>
    where
        Self: 'v,
    {
        self.get(index).map(CowVal::into_owned)
    }
}

impl Iterable for View<'_> {
    fn iter<'b, 'v>(&'b self) -> Box<dyn CelIterator<'b, 'v> + 'b>
    where
        Self: 'v,
    {
        Box::new(Keys(self.keys().iter()))
    }
}

struct Keys<'b, 'a>(std::slice::Iter<'b, CelString<'a>>);

impl<'b, 'a: 'v, 'v> CelIterator<'b, 'v> for Keys<'b, 'a> {
    fn next(&mut self) -> Option<&'b (dyn Val + 'v)> {
        self.0.next().map(|k| k as &(dyn Val + 'v))
    }
}

impl Sizer for View<'_> {
    fn size(&self) -> CelInt {
        CelInt::from(self.keys().len() as i64)
    }
}

impl Container for View<'_> {
    fn contains(&self, value: &dyn Val) -> Result<bool, ExecutionError> {
        Ok(value
            .downcast_ref::<CelString>()
            .is_some_and(|name| self.field(name.inner()).is_some()))
    }
}

/// Refuses a rule that uses a view other than by reading it (see the module's text): returns
/// what is wrong.
pub fn check(root: &cel::IdedExpr) -> Result<(), String> {
    use cel::common::ast::Expr;
    use cel::common::ast::operators::{IN, INDEX, OPT_INDEX};
    // (node, whether its parent only reads it)
    let mut stack = vec![(root, false)];
    while let Some((node, reads)) = stack.pop() {
        if is_view(node) && !reads {
            return Err(format!(
                "{} is compared, returned or passed as a whole; read its fields instead (e.g. mcp.tool.name), or size() or has() them",
                describe(node)
            ));
        }
        match &node.expr {
            Expr::Select(select) => stack.push((&select.operand, true)),
            Expr::Call(call) => {
                stack.extend(
                    call.target
                        .as_deref()
                        .map(|t| (t, call.func_name == "size")),
                );
                for (i, arg) in call.args.iter().enumerate() {
                    let reads = match call.func_name.as_str() {
                        f if f == INDEX || f == OPT_INDEX => i == 0,
                        f if f == IN => i == 1,
                        "size" => true,
                        _ => false,
                    };
                    stack.push((arg, reads));
                }
            }
            Expr::Comprehension(c) => {
                stack.push((&c.iter_range, true));
                for part in [&c.accu_init, &c.loop_cond, &c.loop_step, &c.result] {
                    stack.push((part, false));
                }
            }
            // Anything else only holds its parts as values.
            _ => stack.extend(super::children(node).into_iter().map(|c| (c, false))),
        }
    }
    Ok(())
}

/// `mcp`, or one field of it (`mcp.server`, `mcp.tool`, `mcp['tool']`, ...): the views.
fn is_view(node: &cel::IdedExpr) -> bool {
    use cel::common::ast::Expr;
    let is_mcp = |n: &cel::IdedExpr| matches!(&n.expr, Expr::Ident(name) if name == "mcp");
    match &node.expr {
        Expr::Ident(name) => name == "mcp",
        Expr::Select(select) => !select.test && is_mcp(&select.operand),
        Expr::Call(call) => {
            let index = call.func_name == cel::common::ast::operators::INDEX
                || call.func_name == cel::common::ast::operators::OPT_INDEX;
            index && call.args.first().is_some_and(is_mcp)
        }
        _ => false,
    }
}

fn describe(node: &cel::IdedExpr) -> String {
    use cel::common::ast::Expr;
    match &node.expr {
        Expr::Select(select) => format!("mcp.{}", select.field),
        Expr::Call(_) => "mcp[...]".to_string(),
        _ => "mcp".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The old way, as the oracle: the whole value converted to `cel::Value` and bound by value.
    fn to_cel(value: &Value) -> cel::Value {
        match value {
            Value::Null => cel::Value::Null,
            Value::Bool(b) => cel::Value::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => cel::Value::Int(i),
                None => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => cel::Value::String(std::sync::Arc::new(s.clone())),
            Value::Array(a) => {
                cel::Value::List(std::sync::Arc::new(a.iter().map(to_cel).collect()))
            }
            Value::Object(o) => cel::Value::from(
                o.iter()
                    .map(|(k, v)| (k.clone(), to_cel(v)))
                    .collect::<HashMap<String, cel::Value>>(),
            ),
        }
    }

    /// Rules that only read the views, over fields that may or may not be there.
    const READING: [&str; 16] = [
        "has(mcp.tool.a)",
        "has(mcp.tool.a) && mcp.tool.a == 1",
        "size(mcp.tool) > 1",
        "'a' in mcp.tool",
        "mcp.tool.all(k, k.size() < 2)",
        "mcp.tool.exists(k, k == 'b')",
        "mcp.tool.a == mcp.tool.b",
        "mcp.tool.a == {'x': 1}",
        "{'x': 1} == mcp.tool.a",
        "[mcp.tool.a] == [mcp.tool.b]",
        "mcp.tool.a.size() == 2",
        "mcp.tool.a > 0",
        "mcp.tool.a.exists(x, x == null)",
        "mcp['tool']['a'] == mcp.tool.a",
        "mcp.tool.exists_one(k, k == 'a')",
        "mcp.server.name == 'files' && mcp.tool.c in [1, 'a', null]",
    ];

    fn outcome(result: Result<cel::Value, ExecutionError>) -> Result<cel::Value, ()> {
        result.map_err(|_| ())
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..3).prop_map(|i| json!(i)),
            Just(json!(0.5)),
            prop_oneof![Just("a"), Just("b"), Just("")].prop_map(|s| json!(s)),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![Just("a"), Just("b"), Just("c"), Just("x")]
                        .prop_map(str::to_string),
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn object() -> impl Strategy<Value = Map<String, Value>> {
        proptest::collection::btree_map(
            prop_oneof![Just("a"), Just("b"), Just("c"), Just("x")].prop_map(str::to_string),
            json_value(),
            0..4,
        )
        .prop_map(|m| m.into_iter().collect())
    }

    proptest! {
        /// For every rule that only reads the views, the views give what converting the whole
        /// input gave: the same value, or an error both ways.
        #[test]
        fn views_answer_as_the_whole_value_did(tool in object(), derived in object()) {
            let env = super::super::env::env();
            let server: Map<String, Value> =
                serde_json::from_value(json!({"name": "files"})).unwrap_or_default();
            // What mcplock derives is read before the definition, as a map merge would.
            let mut merged = tool.clone();
            merged.extend(derived.clone());
            let whole = to_cel(&json!({"server": server, "tool": merged}));
            for rule in READING {
                let program = cel::Program::compile(rule).unwrap();
                prop_assert!(check(program.expression()).is_ok(), "{rule} reads only");
                let root = cel::Context::with_env(env.clone());
                let mut eager = root.new_inner_scope();
                eager.add_variable_from_value("mcp", whole.clone());
                let expected = outcome(program.execute(&eager));

                let server_view = View::new(vec![&server], Vec::new());
                let tool_view = View::new(vec![&derived, &tool], Vec::new());
                let mcp = View::new(
                    Vec::new(),
                    vec![("server", Field::Val(&server_view)), ("tool", Field::Val(&tool_view))],
                );
                let mut lazy = root.new_inner_scope();
                lazy.add_variable_as_val("mcp", Box::new(mcp));
                prop_assert_eq!(outcome(program.execute(&lazy)), expected, "{}", rule);
            }
        }
    }

    #[test]
    fn a_rule_that_uses_a_view_as_a_value_is_refused() {
        for rule in [
            "mcp.tool == {}",
            "{} == mcp.tool",
            "mcp.server != {'name': 'x'}",
            "[mcp.tool].size() == 1",
            "mcp",
            "mcp['tool'] in [{}]",
            "string(mcp.tool) == ''",
            "[1].exists(x, mcp.call == x)",
        ] {
            let program = cel::Program::compile(rule).unwrap();
            assert!(check(program.expression()).is_err(), "{rule} was accepted");
        }
        for rule in READING {
            let program = cel::Program::compile(rule).unwrap();
            assert!(check(program.expression()).is_ok(), "{rule} was refused");
        }
    }

    #[test]
    fn a_server_rule_reads_the_tools_as_maps() {
        let env = super::super::env::env();
        let server: Map<String, Value> =
            serde_json::from_value(json!({"name": "files"})).unwrap_or_default();
        let tool: Map<String, Value> =
            serde_json::from_value(json!({"name": "read_file"})).unwrap_or_default();
        let tools = [View::new(vec![&tool], Vec::new())];
        let server_view = View::new(vec![&server], vec![("tools", Field::Views(&tools))]);
        let root = cel::Context::with_env(env);
        for (rule, expected) in [
            ("mcp.server.tools.size() == 1", true),
            ("mcp.server.tools[0] == {'name': 'read_file'}", true),
            ("{'name': 'read_file'} in mcp.server.tools", true),
            ("mcp.server.tools.exists(t, t.name == 'write_file')", false),
        ] {
            let mcp = View::new(Vec::new(), vec![("server", Field::Val(&server_view))]);
            let mut scope = root.new_inner_scope();
            scope.add_variable_as_val("mcp", Box::new(mcp));
            let program = cel::Program::compile(rule).unwrap();
            assert_eq!(
                program.execute(&scope),
                Ok(cel::Value::Bool(expected)),
                "{rule}"
            );
        }
    }
}
