//! Who may call the gateway, and what each may use: the agents file.
//!
//! Each agent has the SHA-256 digests of its bearer tokens (never a token) and its grants: a
//! server (`NAME`: everything that server offers) or one tool of it (`NAME/TOOL`). An agent
//! with no grant may use nothing. The file is JSON, read strictly:
//!
//! ```json
//! {"version": 1, "agents": {"ci-bot": {"tokens": ["sha256:…"], "grants": ["files/read"]}}}
//! ```

use crate::core::canonical::Digest;
use crate::core::enforce::Scope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use subtle::ConstantTimeEq;

/// The only version this reader knows.
pub const VERSION: u32 = 1;
/// Most agents a file may hold, and most tokens and grants per agent.
pub const MAX_AGENTS: usize = 10_000;
pub const MAX_TOKENS: usize = 64;
pub const MAX_GRANTS: usize = 4_096;
/// What a token starts with, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "mcpl_";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agents {
    pub version: u32,
    pub agents: BTreeMap<String, Agent>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// `sha256:HEX` of each token.
    pub tokens: Vec<String>,
    /// `SERVER` or `SERVER/TOOL`, sorted, without duplicates.
    pub grants: Vec<String>,
    /// OAuth clients or subjects (`client_id`, else `sub`, of a valid access token from the
    /// gateway's issuer) that are this agent, sorted, without duplicates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<String>,
}

/// What an agent may use of one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// Nothing: the server is not granted.
    None,
    /// Everything the lock lets through.
    All,
    /// Only these tools (and nothing else of the server: prompts and resources are granted by
    /// granting the whole server).
    Tools(Vec<String>),
}

impl Grant {
    /// What of the server a session under this grant may use (a tool grant gives those tools
    /// and nothing else of it); `None` when nothing.
    pub fn scope(&self) -> Option<Scope> {
        match self {
            Grant::None => None,
            Grant::All => Some(Scope::All),
            Grant::Tools(tools) => Some(Scope::Tools(tools.iter().cloned().collect())),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgentsError {
    #[error("not an agents file: {0}")]
    Malformed(String),
    #[error("agents file version {0} is not one this mcplock reads (it reads {VERSION})")]
    Version(u32),
    #[error("{0}")]
    Invalid(String),
}

impl crate::core::code::Coded for AgentsError {
    fn code(&self) -> crate::core::code::Code {
        crate::core::code::Code::Usage
    }
}

/// The stored form of a token.
pub fn token_digest(token: &str) -> String {
    Digest::of_bytes(token.as_bytes()).to_string()
}

/// An agent's name or a grant's parts: what a URL path, a log line and a policy may hold.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
}

/// A grant as written: `SERVER` or `SERVER/TOOL`.
pub fn parse_grant(grant: &str) -> Result<(&str, Option<&str>), AgentsError> {
    let (server, tool) = match grant.split_once('/') {
        Some((server, tool)) => (server, Some(tool)),
        None => (grant, None),
    };
    let tool_ok = tool.is_none_or(|t| !t.is_empty() && t.len() <= 256 && !t.contains('/'));
    if !valid_name(server) || !tool_ok {
        return Err(AgentsError::Invalid(format!(
            "grant {grant:?}: expected SERVER or SERVER/TOOL (a server name of letters, digits, '-', '_' and '.')"
        )));
    }
    Ok((server, tool))
}

impl Agents {
    pub fn new() -> Agents {
        Agents {
            version: VERSION,
            agents: BTreeMap::new(),
        }
    }

    /// Reads an agents file strictly: its version, names, digests and grants checked, bounded.
    pub fn parse(bytes: &[u8]) -> Result<Agents, AgentsError> {
        let value = crate::core::json::parse_strict(bytes)
            .map_err(|e| AgentsError::Malformed(e.to_string()))?;
        let agents: Agents =
            serde_json::from_value(value).map_err(|e| AgentsError::Malformed(e.to_string()))?;
        if agents.version != VERSION {
            return Err(AgentsError::Version(agents.version));
        }
        agents.check()?;
        Ok(agents)
    }

    fn check(&self) -> Result<(), AgentsError> {
        if self.agents.len() > MAX_AGENTS {
            return Err(AgentsError::Invalid(format!(
                "more than {MAX_AGENTS} agents"
            )));
        }
        for (name, agent) in &self.agents {
            if !valid_name(name) {
                return Err(AgentsError::Invalid(format!(
                    "agent name {name:?}: use letters, digits, '-', '_' and '.'"
                )));
            }
            if agent.tokens.len() > MAX_TOKENS || agent.grants.len() > MAX_GRANTS {
                return Err(AgentsError::Invalid(format!(
                    "agent {name:?}: more than {MAX_TOKENS} tokens or {MAX_GRANTS} grants"
                )));
            }
            for token in &agent.tokens {
                if Digest::parse(token).is_none() {
                    return Err(AgentsError::Invalid(format!(
                        "agent {name:?}: {token:?} is not a sha256:HEX token digest (a token itself must never be stored)"
                    )));
                }
            }
            for grant in &agent.grants {
                parse_grant(grant)?;
            }
            if agent.subjects.len() > MAX_TOKENS
                || agent.subjects.iter().any(|s| s.is_empty() || s.len() > 256)
            {
                return Err(AgentsError::Invalid(format!(
                    "agent {name:?}: at most {MAX_TOKENS} subjects, each 1 to 256 bytes"
                )));
            }
        }
        let mut seen = std::collections::BTreeMap::new();
        for (name, agent) in &self.agents {
            for subject in &agent.subjects {
                if let Some(other) = seen.insert(subject.as_str(), name.as_str()) {
                    return Err(AgentsError::Invalid(format!(
                        "subject {subject:?} is given to two agents ({other:?} and {name:?}): a token would be both"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The agent an OAuth client or subject is.
    pub fn by_subject(&self, subject: &str) -> Option<&str> {
        (self.agents.iter())
            .find(|(_, agent)| agent.subjects.iter().any(|s| s == subject))
            .map(|(name, _)| name.as_str())
    }

    /// Makes an OAuth client or subject `agent` (created if missing), with `grants` added.
    pub fn add_subject(
        &mut self,
        agent: &str,
        subject: &str,
        grants: &[String],
    ) -> Result<(), AgentsError> {
        let entry = self.granted(agent, grants)?;
        entry.subjects.push(subject.to_string());
        entry.subjects.sort();
        entry.subjects.dedup();
        self.check()
    }

    /// The agent a bearer token belongs to. Every stored digest is compared, in constant time
    /// each, so the answer's timing does not say which agent came close.
    pub fn authenticate(&self, token: &str) -> Option<&str> {
        let presented = token_digest(token);
        let mut found = None;
        for (name, agent) in &self.agents {
            for stored in &agent.tokens {
                if bool::from(stored.as_bytes().ct_eq(presented.as_bytes())) {
                    found = Some(name.as_str());
                }
            }
        }
        found
    }

    /// What `agent` may use of `server`.
    pub fn grant(&self, agent: &str, server: &str) -> Grant {
        let Some(agent) = self.agents.get(agent) else {
            return Grant::None;
        };
        let mut tools = Vec::new();
        for grant in &agent.grants {
            match parse_grant(grant) {
                Ok((s, None)) if s == server => return Grant::All,
                Ok((s, Some(tool))) if s == server => tools.push(tool.to_string()),
                _ => {}
            }
        }
        if tools.is_empty() {
            Grant::None
        } else {
            Grant::Tools(tools)
        }
    }

    /// Adds `digest` as a token of `agent` (created when new) and the grants given; grants
    /// stay sorted and unique.
    pub fn add_token(
        &mut self,
        agent: &str,
        digest: String,
        grants: &[String],
    ) -> Result<(), AgentsError> {
        self.granted(agent, grants)?.tokens.push(digest);
        self.check()
    }

    /// `agent`'s entry (created when new) with `grants` added, sorted and unique; the name and
    /// the grants checked first.
    fn granted(&mut self, agent: &str, grants: &[String]) -> Result<&mut Agent, AgentsError> {
        if !valid_name(agent) {
            return Err(AgentsError::Invalid(format!(
                "agent name {agent:?}: use letters, digits, '-', '_' and '.' (at most 128)"
            )));
        }
        for grant in grants {
            parse_grant(grant)?;
        }
        let entry = self.agents.entry(agent.to_string()).or_default();
        entry.grants.extend(grants.iter().cloned());
        entry.grants.sort();
        entry.grants.dedup();
        Ok(entry)
    }

    /// The file's bytes: pretty JSON, keys sorted (same agents, same bytes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(self).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(agent: &str, token: &str, grants: &[&str]) -> Agents {
        let mut agents = Agents::new();
        let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        agents
            .add_token(agent, token_digest(token), &grants)
            .unwrap();
        agents
    }

    #[test]
    fn a_token_finds_its_agent_and_nothing_else_does() {
        let agents = with("ci", "mcpl_secret", &["files"]);
        assert_eq!(agents.authenticate("mcpl_secret"), Some("ci"));
        assert_eq!(agents.authenticate("mcpl_secreT"), None);
        assert_eq!(agents.authenticate(""), None);
        // Only the digest is stored.
        let text = String::from_utf8(agents.to_bytes()).unwrap();
        assert!(!text.contains("mcpl_secret"), "{text}");
    }

    #[test]
    fn grants_give_a_whole_server_some_tools_or_nothing() {
        let agents = with("ci", "t", &["files/read", "files/list", "notes"]);
        assert_eq!(agents.grant("ci", "notes"), Grant::All);
        assert_eq!(
            agents.grant("ci", "files"),
            Grant::Tools(vec!["list".into(), "read".into()])
        );
        assert_eq!(agents.grant("ci", "other"), Grant::None);
        assert_eq!(agents.grant("nobody", "notes"), Grant::None);
        let none = with("idle", "u", &[]);
        assert_eq!(none.grant("idle", "notes"), Grant::None);
    }

    #[test]
    fn the_file_reads_back_as_written_and_refuses_what_it_cannot_hold() {
        let agents = with("ci", "t", &["files/read"]);
        assert_eq!(Agents::parse(&agents.to_bytes()).unwrap(), agents);
        let bad = [
            r#"{"version": 2, "agents": {}}"#,
            r#"{"version": 1, "agents": {"a": {"tokens": ["mcpl_plain"], "grants": []}}}"#,
            r#"{"version": 1, "agents": {"a b": {"tokens": [], "grants": []}}}"#,
            r#"{"version": 1, "agents": {"a": {"tokens": [], "grants": ["x/"]}}}"#,
            r#"{"version": 1, "agents": {"a": {"tokens": [], "grants": []}}, "extra": 1}"#,
            r#"{"version": 1, "agents": {"a": {"tokens": [], "grants": []}, "a": {"tokens": [], "grants": []}}}"#,
        ];
        for text in bad {
            assert!(Agents::parse(text.as_bytes()).is_err(), "{text}");
        }
        assert!(Agents::new().add_token("../x", "d".into(), &[]).is_err());
    }

    #[test]
    fn an_oauth_client_is_one_agent_and_the_file_keeps_no_token_for_it() {
        let mut agents = Agents::new();
        agents
            .add_subject("ci-bot", "ci", &["files".into()])
            .unwrap();
        assert_eq!(agents.by_subject("ci"), Some("ci-bot"));
        assert_eq!(agents.by_subject("someone"), None);
        assert!(agents.agents["ci-bot"].tokens.is_empty());
        let twice = agents.add_subject("other", "ci", &[]).unwrap_err();
        assert!(twice.to_string().contains("two agents"), "{twice}");
        // Read back as written; a file without subjects reads as before.
        let mut agents = Agents::new();
        agents.add_subject("ci-bot", "ci", &[]).unwrap();
        assert_eq!(Agents::parse(&agents.to_bytes()).unwrap(), agents);
        let old = br#"{"version": 1, "agents": {"a": {"tokens": [], "grants": []}}}"#;
        assert!(Agents::parse(old).unwrap().agents["a"].subjects.is_empty());
    }
}
