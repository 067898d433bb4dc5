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
    /// `header_names`.
    Http {
        url: String,
        header_names: Vec<String>,
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

    /// True when this is the command `program` with `args`.
    pub fn is_command(&self, program: &str, args: &[String]) -> bool {
        matches!(self, Launch::Stdio { command, args: a, .. } if command == program && a == args)
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
            Launch::Http { url, .. } => crate::core::text::escape(url),
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
            Launch::Http { url, header_names } => json!({"headerNames": header_names, "url": url}),
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
            if !fields(&["headerNames", "url"]) {
                return Err(LaunchError::Shape);
            }
            Ok(Launch::Http {
                url: string("url")?,
                header_names: names("headerNames")?,
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

/// Why a recorded launch cannot be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LaunchError {
    #[error(
        "expected exactly {{\"args\", \"command\", \"envKeys\"}} and an optional \"cwd\" (a command) or {{\"headerNames\", \"url\"}} (a URL)"
    )]
    Shape,
    #[error("{0:?} is missing")]
    Missing(&'static str),
    #[error("{0:?} must be a string")]
    String(&'static str),
    #[error("{0:?} must be an array of strings")]
    Strings(&'static str),
    #[error("{0:?} names {1:?} twice")]
    Duplicate(&'static str, String),
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
}
