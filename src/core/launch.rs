//! How a server is reached, as recorded in snapshots and lockfiles: a command run over stdio, or
//! a URL spoken to over HTTP. Never a secret: the names of the env vars a command needs and of
//! the headers a URL needs, never their values.

use serde_json::{Map, Value, json};

/// How a server is reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Launch {
    /// A process started with `command` and `args` in the directory `cwd` (the caller's own
    /// when `None`), given the env vars named `env_keys`.
    Stdio {
        command: String,
        args: Vec<String>,
        env_keys: Vec<String>,
        cwd: Option<String>,
    },
    /// A remote server at `url` (Streamable HTTP, or legacy HTTP+SSE), sent the headers named
    /// `header_names`, reached under the credential `context` (a label such as `admin`, never a
    /// credential: a server may offer each credential another surface).
    Http {
        url: String,
        header_names: Vec<String>,
        context: Option<String>,
    },
}

impl Launch {
    /// A stdio launch without extra env vars.
    pub fn command(command: &str, args: &[String]) -> Launch {
        Launch::Stdio {
            command: command.to_string(),
            args: args.to_vec(),
            env_keys: Vec::new(),
            cwd: None,
        }
    }

    pub fn is_http(&self) -> bool {
        matches!(self, Launch::Http { .. })
    }

    /// True when the launch needs lockfile version 3 (a URL, or a working directory).
    pub fn needs_version_3(&self) -> bool {
        matches!(
            self,
            Launch::Http { .. } | Launch::Stdio { cwd: Some(_), .. }
        )
    }

    /// The credential context a remote server was reached under, if one was named.
    pub fn context(&self) -> Option<&str> {
        match self {
            Launch::Http { context, .. } => context.as_deref(),
            Launch::Stdio { .. } => None,
        }
    }

    /// The same launch under no named context (what two contexts of one server share).
    pub fn without_context(&self) -> Launch {
        match self {
            Launch::Http {
                url, header_names, ..
            } => Launch::Http {
                url: url.clone(),
                header_names: header_names.clone(),
                context: None,
            },
            stdio => stdio.clone(),
        }
    }

    /// The names of the env vars a command was given (none for a URL).
    pub fn env_keys(&self) -> &[String] {
        match self {
            Launch::Stdio { env_keys, .. } => env_keys,
            Launch::Http { .. } => &[],
        }
    }

    /// The names of the headers a URL was given (none for a command).
    pub fn header_names(&self) -> &[String] {
        match self {
            Launch::Http { header_names, .. } => header_names,
            Launch::Stdio { .. } => &[],
        }
    }

    /// True when this (recorded) launch is the command `program` with `args` as a host passed
    /// them: each recorded value as it is, or with its environment placeholders filled from
    /// `lookup` ([`matches_template`]).
    pub fn is_command(
        &self,
        program: &str,
        args: &[String],
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> bool {
        matches!(self, Launch::Stdio { command, args: a, .. }
            if a.len() == args.len()
                && matches_template(command, program, lookup)
                && a.iter().zip(args).all(|(t, g)| matches_template(t, g, lookup)))
    }

    /// The working directory a command was locked with.
    pub fn cwd(&self) -> Option<&str> {
        match self {
            Launch::Stdio { cwd, .. } => cwd.as_deref(),
            Launch::Http { .. } => None,
        }
    }

    /// One line for people: the argv (each argument escaped), or the URL.
    pub fn describe(&self) -> String {
        match self {
            Launch::Stdio { command, args, .. } => std::iter::once(command)
                .chain(args)
                .map(|a| crate::core::text::escape(a))
                .collect::<Vec<_>>()
                .join(" "),
            Launch::Http { url, .. } => crate::core::text::escape(&redact_url(url)),
        }
    }

    /// [`Launch::describe`], followed by the env or header names when there are any: two
    /// launches that differ only there still read differently.
    pub fn describe_with_names(&self) -> String {
        let (what, names) = match self {
            Launch::Stdio { env_keys, .. } => ("env", env_keys),
            Launch::Http { header_names, .. } => ("headers", header_names),
        };
        let mut out = self.describe();
        if !names.is_empty() {
            out = format!("{out} ({what}: {})", names.join(", "));
        }
        if let Some(cwd) = self.cwd() {
            out = format!("{out} (in {})", crate::core::text::escape(cwd));
        }
        if let Some(context) = self.context() {
            out = format!("{out} (context: {})", crate::core::text::escape(context));
        }
        out
    }

    /// The recorded form (lockfile `launch`, snapshot `launch`, policy input).
    pub fn to_json(&self) -> Value {
        match self {
            Launch::Stdio {
                command,
                args,
                env_keys,
                cwd,
            } => {
                let mut launch = json!({"args": args, "command": command, "envKeys": env_keys});
                if let Some(cwd) = cwd {
                    launch["cwd"] = json!(cwd);
                }
                launch
            }
            Launch::Http {
                url,
                header_names,
                context,
            } => {
                let mut launch = json!({"headerNames": header_names, "url": url});
                if let Some(context) = context {
                    launch["context"] = json!(context);
                }
                launch
            }
        }
    }

    /// Reads the recorded form: exactly the fields of one of the two shapes.
    pub fn from_json(launch: &Map<String, Value>) -> Result<Launch, LaunchError> {
        let strings = |key: &'static str| -> Result<Vec<String>, LaunchError> {
            match launch.get(key) {
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or(LaunchError::Strings(key))
                    })
                    .collect(),
                Some(_) => Err(LaunchError::Strings(key)),
                None => Err(LaunchError::Missing(key)),
            }
        };
        // Names (`envKeys`, `headerNames`) are a set: one written twice is not a form mcplock
        // writes, and two readers could disagree on it.
        let names = |key: &'static str| -> Result<Vec<String>, LaunchError> {
            let list = strings(key)?;
            let mut seen = std::collections::BTreeSet::new();
            match list.iter().find(|n| !seen.insert(n.as_str())) {
                Some(twice) => Err(LaunchError::Duplicate(key, twice.clone())),
                None => Ok(list),
            }
        };
        let string = |key: &'static str| -> Result<String, LaunchError> {
            match launch.get(key) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(_) => Err(LaunchError::String(key)),
                None => Err(LaunchError::Missing(key)),
            }
        };
        let fields = |expected: &[&str]| {
            launch.len() == expected.len() && expected.iter().all(|k| launch.contains_key(*k))
        };
        if launch.contains_key("url") {
            let context = if launch.contains_key("context") {
                let context = string("context")?;
                if !valid_context(&context) {
                    return Err(LaunchError::Context(context));
                }
                Some(context)
            } else {
                None
            };
            let expected: &[&str] = if context.is_some() {
                &["context", "headerNames", "url"]
            } else {
                &["headerNames", "url"]
            };
            if !fields(expected) {
                return Err(LaunchError::Shape);
            }
            Ok(Launch::Http {
                url: string("url")?,
                header_names: names("headerNames")?,
                context,
            })
        } else {
            let cwd = if launch.contains_key("cwd") {
                Some(string("cwd")?)
            } else {
                None
            };
            let expected: &[&str] = if cwd.is_some() {
                &["args", "command", "cwd", "envKeys"]
            } else {
                &["args", "command", "envKeys"]
            };
            if !fields(expected) {
                return Err(LaunchError::Shape);
            }
            Ok(Launch::Stdio {
                command: string("command")?,
                args: strings("args")?,
                env_keys: names("envKeys")?,
                cwd,
            })
        }
    }
}

/// One piece of a value as a host config writes it: text, or a `${...}` placeholder the host
/// fills in before it starts the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// `${VAR}`, `${env:VAR}` or `${VAR:-default}`: an environment variable. `written` is the
    /// placeholder as written, braces included.
    Env {
        written: &'a str,
        var: &'a str,
        default: Option<&'a str>,
    },
    /// `${workspaceFolder}`.
    WorkspaceFolder,
    /// `${userHome}`.
    UserHome,
    /// VS Code's `${input:ID}`: asked of the user when the host starts the server.
    Input {
        written: &'a str,
    },
}

/// Splits a config value into text and placeholders; an unclosed `${` or a placeholder of no
/// known form is an error (the reason names the placeholder, never a value).
pub fn pieces(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "an unclosed ${ in a value".to_string())?;
        let name = &after[..end];
        let written = &rest[start..start + 2 + end + 1];
        out.push(match name {
            "workspaceFolder" => Piece::WorkspaceFolder,
            "userHome" => Piece::UserHome,
            _ if name.starts_with("input:") => Piece::Input { written },
            _ => {
                let (var, default) = match name.split_once(":-") {
                    Some((var, default)) => (var, Some(default)),
                    None => (name, None),
                };
                let var = var.strip_prefix("env:").unwrap_or(var);
                if var.is_empty() || !var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!(
                        "it uses ${{{name}}}, a placeholder mcplock does not know"
                    ));
                }
                Piece::Env {
                    written,
                    var,
                    default,
                }
            }
        });
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    Ok(out)
}

/// A recorded value with each environment placeholder replaced by the variable it names (its
/// default when the variable is not set); `None` when one is not set and has no default, or
/// the value holds a placeholder that is not an environment variable.
pub fn expand_env(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::new();
    for piece in pieces(template).ok()? {
        match piece {
            Piece::Text(text) => out.push_str(text),
            Piece::Env { var, default, .. } => match (lookup(var), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return None,
            },
            Piece::WorkspaceFolder | Piece::UserHome | Piece::Input { .. } => return None,
        }
    }
    Some(out)
}

/// True when `given` (a value as the host passed it) is the recorded `template`: the same
/// text (the host did not expand it), or the template with each environment placeholder
/// replaced by the value of the variable it names in `lookup`. A placeholder is so pinned to
/// "whatever that variable holds", never to a value the lock would have to record.
pub fn matches_template(
    template: &str,
    given: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> bool {
    template == given
        || (template.contains("${")
            && expand_env(template, lookup).is_some_and(|value| value == given))
}

/// The names of query parameters that carry credentials (matched case-insensitively, anywhere
/// in the name: `api_key`, `access_token`, `X-Amz-Signature`, `code`).
/// Words that make a query parameter a credential (`api_key`, `accessToken`, `X-Amz-Signature`,
/// `code`), compared with the parameter's words, so `zipcode`, `monkey`, `author` or `design`
/// are not taken for one.
const CREDENTIAL_WORDS: [&str; 16] = [
    "key",
    "apikey",
    "token",
    "secret",
    "password",
    "passwd",
    "pass",
    "pwd",
    "auth",
    "authorization",
    "sig",
    "signature",
    "code",
    "credential",
    "credentials",
    "jwt",
];

/// Endings that make one word a credential (`accesstoken`, `clientsecret`, `dbpassword`).
const CREDENTIAL_ENDINGS: [&str; 4] = ["token", "secret", "password", "apikey"];

/// The parts of a URL as written: (before the user info, user info, the rest up to the query,
/// the query, the fragment with its `#`).
fn url_parts(url: &str) -> (&str, Option<&str>, &str, Option<&str>, &str) {
    let (head, fragment) = match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    };
    let (head, query) = match head.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (head, None),
    };
    let authority_start = head.find("://").map_or(0, |i| i + 3);
    let authority_end = head[authority_start..]
        .find('/')
        .map_or(head.len(), |i| authority_start + i);
    match head[authority_start..authority_end].rfind('@') {
        Some(at) => {
            let at = authority_start + at;
            (
                &head[..authority_start],
                Some(&head[authority_start..at]),
                &head[at + 1..],
                query,
                fragment,
            )
        }
        None => (
            &head[..authority_start],
            None,
            &head[authority_start..],
            query,
            fragment,
        ),
    }
}

fn is_credential_param(name: &str) -> bool {
    words(name).iter().any(|word| {
        CREDENTIAL_WORDS.contains(&word.as_str())
            || CREDENTIAL_ENDINGS.iter().any(|e| word.ends_with(e))
    })
}

/// A parameter name's words, lowercase: split at anything not alphanumeric and where a
/// lowercase letter or digit is followed by an uppercase one (`apiKey`, `X-Amz-Signature`).
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            previous_lower = false;
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            continue;
        }
        if c.is_uppercase() && previous_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        previous_lower = c.is_lowercase() || c.is_numeric();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

/// What a URL carries that is a credential: user info (`user:password@`), or a query
/// parameter named like one. `None` for a URL that carries none.
pub fn url_credential(url: &str) -> Option<String> {
    let (_, userinfo, _, query, _) = url_parts(url);
    if userinfo.is_some() {
        return Some("credentials in its user info (user:password@)".into());
    }
    query?
        .split('&')
        .map(|pair| pair.split_once('=').map_or(pair, |(name, _)| name))
        .find(|name| is_credential_param(name))
        .map(|name| format!("a credential in its query parameter {name:?}"))
}

/// A value that is one placeholder (a name, not a secret) is shown; anything else is `***`.
fn mask(value: &str) -> &str {
    let whole_placeholder = value.starts_with("${")
        && value.ends_with('}')
        && value.matches("${").count() == 1
        && value.find('}') == Some(value.len() - 1);
    if whole_placeholder || value.is_empty() {
        value
    } else {
        "***"
    }
}

/// A URL fit to print: the password of its user info (or a user name alone) and the values of
/// its credential-named query parameters become `***`; placeholders stay as written.
pub fn redact_url(url: &str) -> String {
    let (scheme, userinfo, rest, query, fragment) = url_parts(url);
    let mut out = scheme.to_string();
    if let Some(userinfo) = userinfo {
        match userinfo.split_once(':') {
            Some((user, password)) => {
                out.push_str(user);
                out.push(':');
                out.push_str(mask(password));
            }
            None => out.push_str(mask(userinfo)),
        }
        out.push('@');
    }
    out.push_str(rest);
    if let Some(query) = query {
        out.push('?');
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) if is_credential_param(name) => {
                    format!("{name}={}", mask(value))
                }
                _ => pair.to_string(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out.push_str(fragment);
    out
}

/// Every URL in a text (`scheme://` up to a space or a quote) passed through [`redact_url`].
pub fn redact_urls_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.find("://") {
        let start = rest[..found]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '-' || c == '.'))
            .map_or(0, |i| i + 1);
        let end = rest[found..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '`' | '<' | '>'))
            .map_or(rest.len(), |i| found + i);
        out.push_str(&rest[..start]);
        out.push_str(&redact_url(&rest[start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Why a recorded launch cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaunchError {
    #[error(
        "expected exactly {{\"args\", \"command\", \"envKeys\"}} and an optional \"cwd\" (a command) or {{\"headerNames\", \"url\"}} and an optional \"context\" (a URL)"
    )]
    Shape,
    #[error("context {0:?} is not a context name (1 to 64 letters, digits, '-', '_' or '.')")]
    Context(String),
    #[error("{0:?} is missing")]
    Missing(&'static str),
    #[error("{0:?} must be a string")]
    String(&'static str),
    #[error("{0:?} must be an array of strings")]
    Strings(&'static str),
    #[error("{0:?} names {1:?} twice")]
    Duplicate(&'static str, String),
}

/// Whether `name` may name a credential context: 1 to 64 ASCII letters, digits, `-`, `_` or
/// `.` (a label, short enough that a token is not mistaken for one).
pub fn valid_context(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl crate::core::code::Coded for LaunchError {
    fn code(&self) -> crate::core::code::Code {
        // A recorded launch is part of the lockfile.
        crate::core::code::Code::LockfileInvalid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_shapes_read_back_what_they_write_and_nothing_else() {
        for launch in [
            Launch::Stdio {
                command: "npx".into(),
                args: vec!["-y".into(), "pkg".into()],
                env_keys: vec!["TOKEN".into()],
                cwd: None,
            },
            Launch::Stdio {
                command: "node".into(),
                args: vec!["server.js".into()],
                env_keys: vec![],
                cwd: Some("/srv/app".into()),
            },
            Launch::Http {
                url: "https://mcp.example.com/mcp".into(),
                header_names: vec!["Authorization".into()],
                context: None,
            },
            Launch::Http {
                url: "https://mcp.example.com/mcp".into(),
                header_names: vec![],
                context: Some("admin".into()),
            },
        ] {
            let json = launch.to_json();
            assert_eq!(Launch::from_json(json.as_object().unwrap()), Ok(launch));
        }
        let read = |v: Value| Launch::from_json(v.as_object().unwrap());
        assert_eq!(
            read(json!({"url": "https://x", "headerNames": [], "command": "sh"})),
            Err(LaunchError::Shape)
        );
        assert_eq!(read(json!({"url": "https://x"})), Err(LaunchError::Shape));
        assert_eq!(
            read(json!({"url": 1, "headerNames": []})),
            Err(LaunchError::String("url"))
        );
        assert_eq!(
            read(json!({"command": "sh", "args": [1], "envKeys": []})),
            Err(LaunchError::Strings("args"))
        );
    }

    #[test]
    fn issue_26_a_name_recorded_twice_or_an_unknown_field_is_refused() {
        let read = |v: Value| Launch::from_json(v.as_object().unwrap());
        assert_eq!(
            read(json!({"command": "sh", "args": [], "envKeys": ["A", "A"]})),
            Err(LaunchError::Duplicate("envKeys", "A".into()))
        );
        assert_eq!(
            read(json!({"url": "https://x", "headerNames": ["a", "a"]})),
            Err(LaunchError::Duplicate("headerNames", "a".into()))
        );
        assert_eq!(
            read(json!({"command": "sh", "args": [], "envKeys": [], "env": {"A": "1"}})),
            Err(LaunchError::Shape)
        );
    }

    #[test]
    fn issue_26_placeholders_urls_and_what_is_shown_of_them() {
        assert_eq!(
            pieces("a${env:X}b${Y:-d}${workspaceFolder}${input:k}").unwrap(),
            vec![
                Piece::Text("a"),
                Piece::Env {
                    written: "${env:X}",
                    var: "X",
                    default: None
                },
                Piece::Text("b"),
                Piece::Env {
                    written: "${Y:-d}",
                    var: "Y",
                    default: Some("d")
                },
                Piece::WorkspaceFolder,
                Piece::Input {
                    written: "${input:k}"
                },
            ]
        );
        assert!(pieces("${nope!}").is_err() && pieces("${open").is_err());
        let env = |k: &str| (k == "X").then(|| "v".to_string());
        assert!(matches_template("--k=${env:X}", "--k=v", &env));
        assert!(matches_template("--k=${env:X}", "--k=${env:X}", &|_| None));
        assert!(matches_template("${Y:-d}", "d", &env));
        assert!(!matches_template("--k=${env:X}", "--k=w", &env));
        assert!(!matches_template("--k=${env:Z}", "--k=", &env));
        assert!(!matches_template("--k=v", "--k=${env:X}", &env));

        assert_eq!(url_credential("https://x.example/mcp?page=2"), None);
        assert!(url_credential("https://u@x.example/").is_some());
        for name in [
            "key",
            "apiKey",
            "ACCESS_TOKEN",
            "client_secret",
            "Password",
            "auth",
            "X-Amz-Signature",
            "code",
            "accesstoken",
            "api-key",
            "sig",
            "db_pass",
        ] {
            let url = format!("https://x.example/mcp?{name}=v");
            assert!(
                url_credential(&url).is_some_and(|w| w.contains(name)),
                "{name}"
            );
        }
        // No false alarm on words that only contain a credential word.
        for name in [
            "zipcode",
            "monkey",
            "author",
            "design",
            "keyboard",
            "passage",
            "tokens_left",
            "page",
            "q",
        ] {
            let url = format!("https://x.example/mcp?{name}=v");
            assert_eq!(url_credential(&url), None, "{name}");
        }
        assert_eq!(
            redact_url("https://me:pw@x.example:8443/a?key=abc&page=2&token=${env:T}#frag"),
            "https://me:***@x.example:8443/a?key=***&page=2&token=${env:T}#frag"
        );
        assert_eq!(
            redact_url("https://ghp_abc@x.example/"),
            "https://***@x.example/"
        );
        assert_eq!(redact_url("https://x.example/mcp"), "https://x.example/mcp");
        assert_eq!(
            redact_urls_in("-    \"url\": \"https://u:pw@h/m?sig=1\",\n+ see http://h/?code=9 now"),
            "-    \"url\": \"https://u:***@h/m?sig=***\",\n+ see http://h/?code=*** now"
        );
        let http = Launch::Http {
            url: "https://u:pw@h/m".into(),
            header_names: vec![],
            context: None,
        };
        assert_eq!(http.describe(), "https://u:***@h/m");
    }
}
