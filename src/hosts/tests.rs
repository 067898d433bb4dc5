//! Every host's format, from fixture texts written here (not copied from anywhere).

use super::*;
use std::collections::HashMap;

fn servers(host: Host, text: &str) -> Vec<Declared> {
    formats::parse(host, Scope::User, text).unwrap()
}

fn stdio(command: &str, args: &[&str], env: &[(&str, &str)]) -> Spec {
    Spec::Stdio {
        command: command.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        cwd: None,
    }
}

fn http(url: &str, headers: &[(&str, &str)]) -> Spec {
    Spec::Http {
        url: url.into(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        bearer_env: None,
    }
}

#[test]
fn the_mcp_servers_shape_of_claude_desktop_cursor_windsurf_and_gemini() {
    let text = r#"{
      "globalShortcut": "Ctrl+Space",
      "mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@scope/files", "/tmp"], "env": {"TOKEN": "s3cret"}},
        "remote": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${API_TOKEN}"}},
        "off": {"command": "x", "disabled": true}
      }
    }"#;
    for host in [
        Host::ClaudeDesktop,
        Host::Cursor,
        Host::Gemini,
        Host::ClaudeCode,
    ] {
        let found = servers(host, text);
        assert_eq!(found.len(), 3, "{host:?}");
        let by_key = |k: &str| found.iter().find(|d| d.key == k).unwrap();
        assert_eq!(
            by_key("files").spec,
            Ok(stdio(
                "npx",
                &["-y", "@scope/files", "/tmp"],
                &[("TOKEN", "s3cret")]
            ))
        );
        assert_eq!(
            by_key("remote").spec,
            Ok(http(
                "https://mcp.example.com/mcp",
                &[("Authorization", "Bearer ${API_TOKEN}")]
            ))
        );
        assert!(by_key("off").disabled && !by_key("files").disabled);
    }
    // Windsurf names the URL serverUrl; Gemini's httpUrl is its Streamable HTTP endpoint.
    let windsurf = servers(
        Host::Windsurf,
        r#"{"mcpServers": {"r": {"serverUrl": "https://w.example/mcp"}}}"#,
    );
    assert_eq!(windsurf[0].spec, Ok(http("https://w.example/mcp", &[])));
    let gemini = servers(
        Host::Gemini,
        r#"{"mcpServers": {"r": {"httpUrl": "https://g.example/mcp", "trust": false}}}"#,
    );
    assert_eq!(gemini[0].spec, Ok(http("https://g.example/mcp", &[])));
}

#[test]
fn claude_code_reads_user_and_per_project_entries() {
    let text = r#"{"mcpServers": {"u": {"type": "stdio", "command": "u-server"}},
      "projects": {"/home/me/app": {"allowedTools": [], "mcpServers": {"p": {"type": "http", "url": "http://127.0.0.1:9000/mcp"}}}}}"#;
    let found = servers(Host::ClaudeCode, text);
    assert_eq!(found.len(), 2);
    assert_eq!((found[0].key.as_str(), found[0].scope), ("u", Scope::User));
    assert_eq!(
        (
            found[1].key.as_str(),
            found[1].scope,
            found[1].project.as_deref()
        ),
        ("p", Scope::Local, Some("/home/me/app"))
    );
}

#[test]
fn vscode_reads_jsonc_servers_and_settings() {
    let text = r#"{
      // Inputs are asked for when a server starts.
      "inputs": [{"type": "promptString", "id": "key", "password": true}],
      "servers": {
        "gh": {"type": "http", "url": "https://api.example.com/mcp", "headers": {"X-Key": "${input:key}"},},
        "local": {"type": "stdio", "command": "node", "args": ["${workspaceFolder}/server.js"]},
      },
    }"#;
    let found = servers(Host::VsCode, text);
    assert_eq!(found.len(), 2);
    let settings = servers(
        Host::VsCode,
        r#"{"editor.tabSize": 2, "mcp": {"servers": {"s": {"command": "s"}}}}"#,
    );
    assert_eq!(settings[0].spec, Ok(stdio("s", &[], &[])));
}

#[test]
fn codex_reads_toml_tables() {
    let text = r#"
model = "o4"
[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]
env = { "DOCS_TOKEN" = "abc" }

[mcp_servers.remote]
url = "https://r.example/mcp"
bearer_token_env_var = "R_TOKEN"
http_headers = { "X-Team" = "core" }
env_http_headers = { "X-Key" = "R_KEY" }

[mcp_servers.off]
command = "off"
enabled = false
"#;
    let found = servers(Host::Codex, text);
    assert_eq!(found.len(), 3);
    assert_eq!(
        found[0].spec,
        Ok(stdio("npx", &["-y", "docs-mcp"], &[("DOCS_TOKEN", "abc")]))
    );
    assert_eq!(
        found[1].spec,
        Ok(Spec::Http {
            url: "https://r.example/mcp".into(),
            headers: vec![
                ("X-Team".into(), "core".into()),
                ("X-Key".into(), "${R_KEY}".into())
            ],
            bearer_env: Some("R_TOKEN".into()),
        })
    );
    assert!(found[2].disabled);
}

#[test]
fn continue_reads_yaml_lists() {
    let text = "name: my-config\nversion: 0.0.1\nmcpServers:\n  - name: sqlite\n    command: uvx\n    args:\n      - mcp-server-sqlite\n      - --db-path\n      - /tmp/x.db\n  - name: remote\n    type: streamable-http\n    url: https://c.example/mcp\n  - command: nameless\n";
    let found = servers(Host::Continue, text);
    assert_eq!(found.len(), 3);
    assert_eq!(
        found[0].spec,
        Ok(stdio(
            "uvx",
            &["mcp-server-sqlite", "--db-path", "/tmp/x.db"],
            &[]
        ))
    );
    assert_eq!(found[1].spec, Ok(http("https://c.example/mcp", &[])));
    assert!(found[2].spec.as_ref().is_err_and(|e| e.contains("no name")));
}

#[test]
fn broken_files_and_entries_say_what_is_wrong() {
    assert!(formats::parse(Host::Cursor, Scope::User, "{ not json").is_err());
    assert!(formats::parse(Host::Codex, Scope::User, "[mcp_servers").is_err());
    assert!(formats::parse(Host::Cursor, Scope::User, r#"{"mcpServers": []}"#).is_err());
    let found = servers(
        Host::Cursor,
        r#"{"mcpServers": {"a": {}, "b": {"command": 1}, "c": {"command": "x", "url": "https://x"}, "d": {"command": "x", "cwd": 7}, "e": {"command": "x", "env": {"N": 1}}}}"#,
    );
    let reasons: Vec<String> = found.iter().map(|f| f.spec.clone().unwrap_err()).collect();
    assert!(reasons[0].contains("neither a command nor a URL"));
    assert!(reasons[1].contains("command is not a string"));
    assert!(reasons[2].contains("both"));
    assert!(reasons[3].contains("cwd is not a string"));
    assert!(reasons[4].contains("env.N is not a string"));
}

#[test]
fn placeholders_expand_from_the_environment_or_make_the_entry_unusable() {
    let env: HashMap<&str, &str> = HashMap::from([("API_TOKEN", "t0k3n"), ("PORT", "9000")]);
    let lookup = |k: &str| env.get(k).map(|v| v.to_string());
    let (ws, home) = (Path::new("/work/app"), Path::new("/home/me"));
    let spec = Spec::Stdio {
        command: "${userHome}/bin/server".into(),
        args: vec![
            "${workspaceFolder}/data".into(),
            "--port=${env:PORT}".into(),
            "${MISSING:-fallback}".into(),
        ],
        env: vec![("TOKEN".into(), "${API_TOKEN}".into())],
        cwd: Some("sub/${env:PORT}".into()),
    };
    match resolve(&spec, &lookup, ws, home).unwrap() {
        Endpoint::Stdio(cmd) => {
            assert_eq!(cmd.program, "/home/me/bin/server");
            assert_eq!(cmd.args, ["/work/app/data", "--port=9000", "fallback"]);
            assert_eq!(cmd.env, [("TOKEN".to_string(), "t0k3n".to_string())]);
            assert_eq!(cmd.cwd.as_deref(), Some(Path::new("/work/app/sub/9000")));
        }
        other => panic!("{other:?}"),
    }
    let ask = http("https://x.example/mcp", &[("X-Key", "${input:key}")]);
    assert!(
        resolve(&ask, &lookup, ws, home)
            .unwrap_err()
            .contains("asks the user")
    );
    let unset = http("https://x.example/mcp", &[("X-Key", "${NOPE}")]);
    assert!(
        resolve(&unset, &lookup, ws, home)
            .unwrap_err()
            .contains("${NOPE}, which is not set")
    );
    let insecure = http("http://x.example/mcp", &[]);
    assert!(
        resolve(&insecure, &lookup, ws, home)
            .unwrap_err()
            .contains("loopback")
    );
    // Debug output never shows values.
    let shown = format!(
        "{:?}",
        http("https://x", &[("Authorization", "Bearer s3cret")])
    );
    assert!(
        shown.contains("Authorization") && !shown.contains("s3cret"),
        "{shown}"
    );
}

#[test]
fn every_host_documents_where_its_configs_live() {
    let (home, project) = (Path::new("/home/me"), Path::new("/work/app"));
    for host in Host::ALL {
        let files = host.locations(home, project);
        assert!(!files.is_empty(), "{host:?}");
        assert_eq!(Host::parse(host.id()), Some(host));
        assert!(
            files
                .iter()
                .all(|f| f.path.starts_with(home) || f.path.starts_with(project))
        );
    }
    let cursor = Host::Cursor.locations(home, project);
    assert_eq!(cursor[1].path, Path::new("/work/app/.cursor/mcp.json"));
    assert_eq!(cursor[1].scope, Scope::Project);
}

fn settings() -> rewrite::ProxySettings {
    rewrite::ProxySettings {
        mcplock: "/usr/local/bin/mcplock".into(),
        trust: vec!["--key".into(), "/etc/mcp/team.pub".into()],
        lockfile: "/etc/mcp/mcp-lock.json".into(),
        options: Vec::new(),
        audit_dir: None,
    }
}

#[test]
fn wrapping_changes_only_the_entries_and_unwrapping_restores_every_byte() {
    let original = r#"{
  // Team servers. Keep this comment.
  "inputs": [{"type": "promptString", "id": "key", "password": true}],
  "servers": {
    "files": {"type": "stdio", "command": "npx", "args": ["-y", "files-mcp"], "env": {"TOKEN": "s3cret"}, "dev": {"watch": "src"}},
    "remote": {
      "type": "http",
      "url": "https://mcp.example.com/mcp",
      "headers": {"Authorization": "Bearer ${input:key}"}
    },
    "later": {"type": "stdio", "command": "off", "cwd": "/srv"},
  },
  "other": [1, 2, 3],
}
"#;
    let wrapped = rewrite::wrap_json(Host::VsCode, original, &settings()).unwrap();
    rewrite::reads_the_same(Host::VsCode, Scope::User, original, &wrapped.text).unwrap();
    assert!(wrapped.text.contains("// Team servers. Keep this comment."));
    assert!(wrapped.text.contains(r#""other": [1, 2, 3],"#));
    assert_eq!(wrapped.originals.len(), 3);
    assert!(wrapped.skipped.is_empty(), "{:?}", wrapped.skipped);
    let parsed = formats::parse(Host::VsCode, Scope::Project, &wrapped.text).unwrap();
    // The working directory stays on the entry: the host starts the proxy there, and the
    // proxy runs the server where it was locked.
    let later = parsed.iter().find(|d| d.key == "later").unwrap();
    assert!(
        matches!(&later.spec, Ok(Spec::Stdio { cwd: Some(c), .. }) if c == "/srv"),
        "{later:?}"
    );
    let files = parsed.iter().find(|d| d.key == "files").unwrap();
    assert_eq!(
        files.spec,
        Ok(stdio(
            "/usr/local/bin/mcplock",
            &[
                "proxy",
                "--key",
                "/etc/mcp/team.pub",
                "--lockfile",
                "/etc/mcp/mcp-lock.json",
                "--name=files",
                "--",
                "npx",
                "-y",
                "files-mcp"
            ],
            &[("TOKEN", "s3cret")]
        ))
    );
    // A remote entry becomes a command; its header value moves to env, never onto argv.
    let remote = parsed.iter().find(|d| d.key == "remote").unwrap();
    let Ok(Spec::Stdio { args, env, .. }) = &remote.spec else {
        panic!("{remote:?}")
    };
    assert!(
        args.ends_with(&[
            "--url".into(),
            "https://mcp.example.com/mcp".into(),
            "--header".into(),
            "Authorization: ${MCPLOCK_HEADER_0}".into()
        ]),
        "{args:?}"
    );
    assert_eq!(
        env,
        &[(
            "MCPLOCK_HEADER_0".to_string(),
            "Bearer ${input:key}".to_string()
        )]
    );
    assert!(!args.iter().any(|a| a.contains("input:key")));
    // Unknown fields stay.
    assert!(wrapped.text.contains(r#""watch": "src""#));

    // Wrapping twice changes nothing; unwrapping gives the original back, byte for byte.
    let again = rewrite::wrap_json(Host::VsCode, &wrapped.text, &settings()).unwrap();
    assert_eq!(again.text, wrapped.text);
    assert!(again.originals.is_empty());
    let rewrite::Restored {
        text: restored,
        count: n,
        ..
    } = rewrite::unwrap_json(Host::VsCode, &wrapped.text, &wrapped.originals).unwrap();
    assert_eq!((restored.as_str(), n), (original, 3));
    // An entry wrapped by someone else, with no original kept, is named, not guessed.
    let e = rewrite::unwrap_json(Host::VsCode, &wrapped.text, &Default::default()).unwrap_err();
    assert!(e.0.contains("servers.files"), "{e}");
}

#[test]
fn claude_code_entries_of_every_project_are_wrapped_in_place() {
    let original = "{\"numStartups\": 7, \"mcpServers\": {\"u\": {\"command\": \"u\"}}, \"projects\": {\"/w/app\": {\"history\": [], \"mcpServers\": {\"p\": {\"command\": \"p\", \"args\": [\"x\"]}}}}}";
    let wrapped = rewrite::wrap_json(Host::ClaudeCode, original, &settings()).unwrap();
    rewrite::reads_the_same(Host::ClaudeCode, Scope::User, original, &wrapped.text).unwrap();
    assert_eq!(wrapped.originals.len(), 2);
    assert!(wrapped.originals.contains_key(&vec![
        "projects".to_string(),
        "/w/app".into(),
        "mcpServers".into(),
        "p".into()
    ]));
    let rewrite::Restored {
        text: restored,
        count: _,
        ..
    } = rewrite::unwrap_json(Host::ClaudeCode, &wrapped.text, &wrapped.originals).unwrap();
    assert_eq!(restored, original);
}

#[test]
fn codex_tables_are_wrapped_and_restored_byte_for_byte() {
    let original = r#"# Codex settings
model = "o4"

[mcp_servers.docs]
command = "npx"
args = ["-y", "docs-mcp"]   # pinned below
env = { "DOCS_TOKEN" = "abc" }

# The remote one.
[mcp_servers.remote]
url = "https://r.example/mcp"
bearer_token_env_var = "R_TOKEN"
http_headers = { "X-Team" = "core" }

[mcp_servers.remote.env]
EXTRA = "1"

[profiles.fast]
model = "o4-mini"
"#;
    let wrapped = rewrite::wrap_toml(original, &settings()).unwrap();
    rewrite::reads_the_same(Host::Codex, Scope::User, original, &wrapped.text).unwrap();
    assert_eq!(wrapped.originals.len(), 2, "{:?}", wrapped.skipped);
    assert!(
        wrapped
            .text
            .starts_with("# Codex settings\nmodel = \"o4\"\n\n")
    );
    assert!(
        wrapped
            .text
            .contains("# The remote one.\n[mcp_servers.remote]")
    );
    assert!(
        wrapped
            .text
            .ends_with("[profiles.fast]\nmodel = \"o4-mini\"\n")
    );
    let parsed = formats::parse(Host::Codex, Scope::User, &wrapped.text).unwrap();
    let remote = parsed.iter().find(|d| d.key == "remote").unwrap();
    let Ok(Spec::Stdio {
        command, args, env, ..
    }) = &remote.spec
    else {
        panic!("{remote:?}")
    };
    assert_eq!(command, "/usr/local/bin/mcplock");
    assert!(
        args.ends_with(&[
            "--url".into(),
            "https://r.example/mcp".into(),
            "--header".into(),
            "X-Team: ${MCPLOCK_HEADER_0}".into(),
            "--bearer-env".into(),
            "R_TOKEN".into()
        ]),
        "{args:?}"
    );
    assert!(env.contains(&("MCPLOCK_HEADER_0".to_string(), "core".to_string())));
    assert!(env.contains(&("EXTRA".to_string(), "1".to_string())));
    let again = rewrite::wrap_toml(&wrapped.text, &settings()).unwrap();
    assert_eq!(again.text, wrapped.text);
    let rewrite::Restored {
        text: restored,
        count: n,
        ..
    } = rewrite::unwrap_toml(&wrapped.text, &wrapped.originals).unwrap();
    assert_eq!((restored.as_str(), n), (original, 2));
}

#[test]
fn continue_items_are_wrapped_and_restored_byte_for_byte() {
    let original = "name: mine\nversion: 0.0.1\nmcpServers:\n  - name: sqlite\n    command: uvx\n    args:\n      - mcp-server-sqlite\n      - --db-path\n      - /tmp/x.db\n\n  # remote below\n  - name: remote\n    type: streamable-http\n    url: https://c.example/mcp\n  - name: off\n    command: off\n    disabled: true\nmodels: []\n";
    let wrapped = rewrite::wrap_yaml(original, &settings()).unwrap();
    rewrite::reads_the_same(Host::Continue, Scope::User, original, &wrapped.text).unwrap();
    assert_eq!(wrapped.originals.len(), 2, "{:?}", wrapped.skipped);
    assert!(
        wrapped.text.contains("  # remote below\n")
            && wrapped.text.ends_with("    disabled: true\nmodels: []\n")
    );
    let parsed = formats::parse(Host::Continue, Scope::User, &wrapped.text).unwrap();
    let sqlite = parsed.iter().find(|d| d.key == "sqlite").unwrap();
    assert_eq!(
        sqlite.spec,
        Ok(stdio(
            "/usr/local/bin/mcplock",
            &[
                "proxy",
                "--key",
                "/etc/mcp/team.pub",
                "--lockfile",
                "/etc/mcp/mcp-lock.json",
                "--name=sqlite",
                "--",
                "uvx",
                "mcp-server-sqlite",
                "--db-path",
                "/tmp/x.db"
            ],
            &[]
        ))
    );
    let again = rewrite::wrap_yaml(&wrapped.text, &settings()).unwrap();
    assert_eq!(again.text, wrapped.text);
    let rewrite::Restored {
        text: restored,
        count: n,
        ..
    } = rewrite::unwrap_yaml(&wrapped.text, &wrapped.originals).unwrap();
    assert_eq!((restored.as_str(), n), (original, 2));
}

const TOKEN: &str = "t0k3n-behind-a-placeholder";

fn token_env(k: &str) -> Option<String> {
    (k == "API_TOKEN").then(|| TOKEN.to_string())
}

#[test]
fn issue_26_a_placeholder_in_args_is_locked_as_written() {
    let (ws, home) = (Path::new("/work/app"), Path::new("/home/me"));
    let spec = Spec::Stdio {
        command: "${userHome}/bin/server".into(),
        args: vec![
            "${workspaceFolder}/data".into(),
            "--token=${env:API_TOKEN}".into(),
            "${API_TOKEN}".into(),
            "${MISSING:-fallback}".into(),
        ],
        env: vec![("TOKEN".into(), "${API_TOKEN}".into())],
        cwd: None,
    };
    // Recorded: the paths expanded, every environment placeholder as written.
    let recorded = recorded_launch(&spec, &token_env, ws, home).unwrap();
    assert_eq!(
        recorded.to_json(),
        serde_json::json!({
            "command": "/home/me/bin/server",
            "args": ["/work/app/data", "--token=${env:API_TOKEN}", "${API_TOKEN}", "${MISSING:-fallback}"],
            "envKeys": ["TOKEN"],
        })
    );
    // The same record whatever the environment holds: deterministic, and free of the value.
    assert_eq!(
        recorded_launch(&spec, &|_| None, ws, home),
        Ok(recorded.clone())
    );
    assert!(!recorded.to_json().to_string().contains(TOKEN));
    assert!(!recorded.describe_with_names().contains(TOKEN));
    // Started with the values.
    let Endpoint::Stdio(cmd) = resolve(&spec, &token_env, ws, home).unwrap() else {
        panic!("a command");
    };
    assert_eq!(cmd.args[1], format!("--token={TOKEN}"));
    // The argv the host passes, placeholders expanded, is the recorded launch as long as
    // each value is what the variable it names holds here; passed unexpanded, it is too.
    assert!(recorded.is_command(&cmd.program, &cmd.args, &token_env));
    let unexpanded: Vec<String> = match &recorded {
        crate::core::launch::Launch::Stdio { args, .. } => args.clone(),
        _ => unreachable!(),
    };
    assert!(recorded.is_command(&cmd.program, &unexpanded, &|_| None));
    let other_value = |k: &str| (k == "API_TOKEN").then(|| "another".to_string());
    assert!(!recorded.is_command(&cmd.program, &cmd.args, &other_value));
    assert!(!recorded.is_command(&cmd.program, &cmd.args, &|_| None));
    let mut injected = cmd.args.clone();
    injected[1] = "--token=--evil".into();
    assert!(!recorded.is_command(&cmd.program, &injected, &token_env));
    // VS Code's prompts are recorded as written too.
    let ask = stdio("srv", &["--key", "${input:key}"], &[]);
    assert_eq!(
        recorded_launch(&ask, &token_env, ws, home)
            .unwrap()
            .to_json()["args"],
        serde_json::json!(["--key", "${input:key}"])
    );
}

#[test]
fn issue_26_a_url_with_credentials_is_refused_without_showing_them() {
    let (ws, home) = (Path::new("/work/app"), Path::new("/home/me"));
    let url_env = |k: &str| match k {
        "API_TOKEN" => Some(TOKEN.to_string()),
        "SECRET_URL" => Some(format!("https://me:{TOKEN}@x.example/mcp")),
        "REGION" => Some("eu".to_string()),
        _ => None,
    };
    for (url, shown) in [
        (
            "https://me:hunter22-pass@x.example/mcp".to_string(),
            "https://me:***@x.example/mcp",
        ),
        (
            "https://x.example/mcp?page=2&API_KEY=${env:API_TOKEN}".to_string(),
            "?page=2&API_KEY=${env:API_TOKEN}",
        ),
        (
            format!("https://x.example/mcp?access_token={TOKEN}"),
            "access_token=***",
        ),
        ("${env:SECRET_URL}".to_string(), "${env:SECRET_URL}"),
    ] {
        for why in [
            resolve(&http(&url, &[]), &url_env, ws, home).unwrap_err(),
            match recorded_launch(&http(&url, &[]), &url_env, ws, home) {
                // A URL that is one placeholder is only known to carry credentials expanded.
                Ok(launch) if url.starts_with("${") => launch.describe(),
                other => other.unwrap_err(),
            },
        ] {
            assert!(why.contains(shown), "{why}");
            assert!(
                !why.contains(TOKEN) && !why.contains("hunter22"),
                "a secret is shown: {why}"
            );
        }
        let why = resolve(&http(&url, &[]), &url_env, ws, home).unwrap_err();
        assert!(why.contains("as a header from the environment"), "{why}");
    }
    // Other placeholders in a URL are recorded as written and reached expanded.
    let spec = http(
        "https://${env:REGION}.x.example/mcp",
        &[("X-Key", "${API_TOKEN}")],
    );
    let recorded = recorded_launch(&spec, &url_env, ws, home).unwrap();
    assert_eq!(
        recorded.to_json(),
        serde_json::json!({"url": "https://${env:REGION}.x.example/mcp", "headerNames": ["x-key"]})
    );
    let Endpoint::Http(endpoint) = resolve(&spec, &url_env, ws, home).unwrap() else {
        panic!("a URL");
    };
    assert_eq!(endpoint.url.as_str(), "https://eu.x.example/mcp");
}

#[test]
fn issue_26_wrap_keeps_placeholders_and_leaves_a_url_with_credentials_alone() {
    let text = "{\n  \"servers\": {\n    \"local\": {\"command\": \"srv\", \"args\": [\"--token\", \"${env:API_TOKEN}\"]},\n    \"remote\": {\"type\": \"http\", \"url\": \"https://x.example/mcp?key=${env:API_TOKEN}\"}\n  }\n}\n";
    let wrapped = rewrite::wrap_json(Host::VsCode, text, &settings()).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&wrapped.text).unwrap();
    let args = doc["servers"]["local"]["args"].as_array().unwrap();
    assert_eq!(
        args[args.len() - 3..],
        [
            serde_json::json!("srv"),
            serde_json::json!("--token"),
            serde_json::json!("${env:API_TOKEN}")
        ]
    );
    // The remote one is not put on the proxy's command line: left as it is, with the fix.
    assert_eq!(
        doc["servers"]["remote"]["url"],
        "https://x.example/mcp?key=${env:API_TOKEN}"
    );
    let (name, why) = &wrapped.skipped[0];
    assert_eq!(name, "remote");
    assert!(
        why.contains("query parameter \"key\"") && why.contains("as a header from the environment"),
        "{why}"
    );
}

#[test]
fn issue_26_a_wrapped_entry_is_read_as_the_server_behind_the_proxy() {
    let text = "{\"mcpServers\": {\"local\": {\"command\": \"srv\", \"args\": [\"--token\", \"${API_TOKEN}\"], \"env\": {\"A\": \"1\"}}, \"remote\": {\"url\": \"https://x.example/mcp\", \"headers\": {\"X-Key\": \"${API_TOKEN}\"}}}}";
    let before = formats::parse(Host::Cursor, Scope::User, text).unwrap();
    let wrapped = rewrite::wrap_json(Host::Cursor, text, &settings()).unwrap();
    let after = formats::parse(Host::Cursor, Scope::User, &wrapped.text).unwrap();
    assert_eq!(before.len(), after.len());
    for (b, a) in before.into_iter().zip(after) {
        assert_ne!(a.spec, b.spec, "wrapped as written");
        assert_eq!(a.spec.map(formats::behind_proxy), b.spec, "{}", b.key);
    }
    // Anything else is left as it is.
    let plain = stdio("mcplock-fixture", &["proxy"], &[]);
    assert_eq!(formats::behind_proxy(plain.clone()), plain);
}

/// Issue 27: "already wrapped" is what the entry runs (mcplock given `proxy`), not a name that
/// starts like it.
#[test]
fn issue_27_only_mcplock_proxy_counts_as_the_proxy() {
    use formats::runs_the_proxy;
    assert!(runs_the_proxy("/usr/local/bin/mcplock", Some("proxy")));
    assert!(runs_the_proxy("mcplock", Some("proxy")));
    assert!(!runs_the_proxy("mcplock-helper", Some("proxy")));
    assert!(!runs_the_proxy("/opt/mcplockd", Some("proxy")));
    assert!(!runs_the_proxy("mcplock", Some("scan")));
    assert!(!runs_the_proxy("mcplock", None));
}

/// Issue 27: a JSON config with a key given twice (hosts differ on which copy they read) is
/// refused, not wrapped in the copy the host may not run.
#[test]
fn issue_27_a_config_with_a_duplicate_key_is_refused() {
    for text in [
        "{\"mcpServers\": {\"a\": {\"command\": \"x\"}, \"a\": {\"command\": \"y\"}}}",
        "{\"mcpServers\": {}, \"mcpServers\": {\"a\": {\"command\": \"y\"}}}",
        "{\"mcpServers\": {\"a\": {\"command\": \"x\", \"args\": [], \"args\": [\"-e\"]}}}",
    ] {
        let e = formats::parse(Host::ClaudeDesktop, Scope::User, text).unwrap_err();
        assert!(e.0.contains("given twice"), "{text}: {e}");
    }
    formats::parse(
        Host::ClaudeDesktop,
        Scope::User,
        "{\"mcpServers\": {\"a\": {\"command\": \"x\"}, \"b\": {\"command\": \"x\"}}}",
    )
    .unwrap();
}

/// Issue 27: TOML (Codex) and YAML (Continue) with a key or a server given twice are refused
/// by the reader and by wrap, as the hosts' own parsers refuse them: never rewritten in a copy
/// the host may not run.
#[test]
fn issue_27_toml_and_yaml_with_a_duplicate_key_or_server_are_refused() {
    for text in [
        "[mcp_servers.a]\ncommand = \"x\"\n\n[mcp_servers.a]\ncommand = \"y\"\n",
        "[mcp_servers.a]\ncommand = \"x\"\ncommand = \"y\"\n",
        "[mcp_servers.a]\ncommand = \"x\"\n[mcp_servers.a.env]\nK = \"1\"\nK = \"2\"\n",
    ] {
        let e = formats::parse(Host::Codex, Scope::User, text).unwrap_err();
        assert!(e.0.contains("duplicate"), "{text}: {e}");
        let e = rewrite::wrap_toml(text, &settings()).unwrap_err();
        assert!(e.0.contains("duplicate"), "{text}: {e}");
    }
    for (text, why) in [
        (
            "mcpServers:\n  - name: a\n    command: x\n    command: y\n",
            "uplicate",
        ),
        (
            "mcpServers:\n  - name: a\n    command: x\nmcpServers:\n  - name: b\n    command: y\n",
            "uplicate",
        ),
        (
            "mcpServers:\n  - name: a\n    command: x\n  - name: a\n    command: y\n",
            "named \"a\"",
        ),
    ] {
        let e = formats::parse(Host::Continue, Scope::User, text).unwrap_err();
        assert!(e.0.contains(why), "{text}: {e}");
        let e = rewrite::wrap_yaml(text, &settings()).unwrap_err();
        assert!(e.0.contains(why), "{text}: {e}");
    }
}

fn pins(entries: &[(&str, Option<&str>, &[&str])]) -> pin::Pins {
    entries
        .iter()
        .map(|(k, p, a)| {
            (
                (k.to_string(), p.map(str::to_string)),
                a.iter().map(|s| s.to_string()).collect(),
            )
        })
        .collect()
}

/// Issue 27: pinning rewrites only the args of the entries named (a wrapped one after its
/// `--`), keeps everything else byte for byte, and reads back as those servers with the pinned
/// arguments, every other server unchanged.
#[test]
fn issue_27_pinning_rewrites_only_the_named_entries_args() {
    let original = r#"{
  // pinned by hand already
  "mcpServers": {
    "a": {"command": "npx", "args": ["-y", "@x/a"], "env": {"T": "secret-value"}},
    "b": {
      "command": "npx",
      "args": [
        "-y",
        "@x/b"
      ]
    },
    "c": {"command": "uvx", "args": ["c-server"]}
  }
}
"#;
    let wrapped = rewrite::wrap_json(Host::Cursor, original, &settings()).unwrap();
    let p = pins(&[
        ("a", None, &["-y", "@x/a@1.2.3"]),
        ("b", None, &["-y", "@x/b@2.0.0"]),
    ]);
    for text in [original, wrapped.text.as_str()] {
        let pinned = pin::pin_json(Host::Cursor, text, &p).unwrap();
        assert_eq!(pinned.pinned, ["a", "b"]);
        rewrite::reads_as(Host::Cursor, Scope::User, text, &pinned.text, &p).unwrap();
        let e = rewrite::reads_the_same(Host::Cursor, Scope::User, text, &pinned.text);
        assert!(e.unwrap_err().contains("\"a\""));
        let servers = formats::parse(Host::Cursor, Scope::User, &pinned.text).unwrap();
        let args = |key: &str| match servers
            .iter()
            .find(|d| d.key == key)
            .map(|d| formats::behind_proxy(d.spec.clone().unwrap()))
        {
            Some(Spec::Stdio { args, .. }) => args,
            other => panic!("{other:?}"),
        };
        assert_eq!(args("a"), ["-y", "@x/a@1.2.3"]);
        assert_eq!(args("b"), ["-y", "@x/b@2.0.0"]);
        assert_eq!(args("c"), ["c-server"]);
    }
    let pinned = pin::pin_json(Host::Cursor, original, &p).unwrap();
    assert_eq!(
        pinned.text,
        original
            .replace(r#"["-y", "@x/a"]"#, r#"["-y", "@x/a@1.2.3"]"#)
            .replace("\"@x/b\"\n", "\"@x/b@2.0.0\"\n"),
        "only the args change, each in its own layout"
    );
}

/// Issue 27: Codex's TOML and Continue's YAML are pinned too, wrapped or not.
#[test]
fn issue_27_pinning_codex_and_continue_entries() {
    let toml = "# mine\n[mcp_servers.a]\ncommand = \"npx\"\nargs = [\"-y\", \"@x/a\"] # floating\n\n[mcp_servers.b]\ncommand = \"uvx\"\nargs = [\"b\"]\n";
    let p = pins(&[("a", None, &["-y", "@x/a@1.2.3"])]);
    let wrapped = rewrite::wrap_toml(toml, &settings()).unwrap();
    for text in [toml, wrapped.text.as_str()] {
        let pinned = pin::pin_toml(text, &p).unwrap();
        assert_eq!(pinned.pinned, ["a"]);
        rewrite::reads_as(Host::Codex, Scope::User, text, &pinned.text, &p).unwrap();
        assert!(pinned.text.starts_with("# mine\n"), "{}", pinned.text);
    }
    let yaml = "name: cfg\nmcpServers:\n  - name: a\n    command: npx\n    args: [\"-y\", \"@x/a\"]\n  - name: b\n    command: uvx\n    args: [b]\n";
    let wrapped = rewrite::wrap_yaml(yaml, &settings()).unwrap();
    for text in [yaml, wrapped.text.as_str()] {
        let pinned = pin::pin_yaml(text, &p).unwrap();
        assert_eq!(pinned.pinned, ["a"]);
        rewrite::reads_as(Host::Continue, Scope::User, text, &pinned.text, &p).unwrap();
        let b = &text[text.rfind("  - name: ").unwrap()..];
        assert!(
            pinned.text.ends_with(b),
            "b is left as it was: {}",
            pinned.text
        );
    }
    // An entry with no args list is left, with the reason.
    let pinned = pin::pin_toml("[mcp_servers.a]\ncommand = \"x\"\n", &p).unwrap();
    assert_eq!(pinned.skipped[0].1, "it has no args list to pin");
}

/// Issue 27: the original text wrap recorded for a wrapped entry is pinned with it, so unwrap
/// puts back the pinned launch, not the floating one.
#[test]
fn issue_27_a_wrapped_entrys_recorded_original_is_pinned_with_it() {
    let pinned = vec!["-y".to_string(), "@x/a@1.2.3".to_string()];
    let json = "{\"command\": \"npx\",\n  \"args\": [\"-y\", \"@x/a\"]}";
    assert_eq!(
        pin::pin_original(Host::ClaudeDesktop, json, "a", &pinned).unwrap(),
        json.replace("\"@x/a\"]", "\"@x/a@1.2.3\"]")
    );
    let toml = "[mcp_servers.a]\ncommand = \"npx\"\nargs = [\"-y\", \"@x/a\"]\n";
    assert!(
        pin::pin_original(Host::Codex, toml, "a", &pinned)
            .unwrap()
            .contains("\"@x/a@1.2.3\"")
    );
    let yaml = "  - name: a\n    command: npx\n    args: [\"-y\", \"@x/a\"]\n";
    assert!(
        pin::pin_original(Host::Continue, yaml, "a", &pinned)
            .unwrap()
            .contains("\"@x/a@1.2.3\"")
    );
    assert_eq!(
        pin::pin_original(Host::Cursor, "not json", "a", &pinned),
        None
    );
}

/// Issue 27: a Codex or Continue layout the host reads but mcplock cannot rewrite as one range
/// is named with the reason (never "0 wrapped" in silence, never an invalid file); the layouts
/// that tripped the line-based reader (a header inside a multi-line string, a quoted name with
/// `]`) are wrapped and restored byte for byte.
#[test]
fn issue_27_every_codex_and_continue_layout_is_wrapped_or_named_with_the_reason() {
    let wrapped_and_back = [
        "[mcp_servers.a]\ncommand = \"npx\"\ndescription = \"\"\"\n[mcp_servers.evil]\ncommand = \"sh\"\n\"\"\"\n",
        "[mcp_servers.\"we]i.rd\"]\ncommand = \"npx\"\nargs = [\"x\"]\n",
        "[mcp_servers.a.env]\nK = \"v\"\n[mcp_servers.a]\ncommand = \"npx\"\n",
    ];
    for text in wrapped_and_back {
        let wrapped = rewrite::wrap_toml(text, &settings()).unwrap();
        assert_eq!(wrapped.originals.len(), 1, "{text}: {:?}", wrapped.skipped);
        rewrite::reads_the_same(Host::Codex, Scope::User, text, &wrapped.text).unwrap();
        let back = rewrite::unwrap_toml(&wrapped.text, &wrapped.originals).unwrap();
        assert_eq!(back.text, text);
    }
    for (text, why) in [
        ("[mcp_servers]\na = { command = \"x\" }\n", "inline table"),
        ("mcp_servers.a.command = \"x\"\n", "dotted keys"),
        (
            "[mcp_servers.a]\ncommand = \"x\"\n[mcp_servers.b]\ncommand = \"y\"\n[mcp_servers.a.env]\nK = \"v\"\n",
            "not together",
        ),
    ] {
        let wrapped = rewrite::wrap_toml(text, &settings()).unwrap();
        assert!(
            wrapped
                .skipped
                .iter()
                .any(|(k, w)| k == "a" && w.contains(why)),
            "{text}: {:?}",
            wrapped.skipped
        );
        rewrite::reads_the_same(Host::Codex, Scope::User, text, &wrapped.text).unwrap();
    }
    for text in [
        "mcpServers: [{name: a, command: x}]\n",
        "\"mcpServers\":\n  - name: a\n    command: x\n",
    ] {
        let wrapped = rewrite::wrap_yaml(text, &settings()).unwrap();
        assert!(
            wrapped
                .skipped
                .iter()
                .any(|(k, w)| k == "a" && w.contains("block list")),
            "{text}: {:?}",
            wrapped.skipped
        );
    }
}
