//! A remote server's authorization surface, as the MCP authorization spec has a client meet it:
//! the Protected Resource Metadata (RFC 9728) names the resource and its authorization servers,
//! each server's metadata (RFC 8414 / OpenID discovery) names its issuer. What a lock records of
//! it, where the documents are looked for, and the rules every URL met on the way must follow.

use serde_json::{Map, Value, json};
use std::net::IpAddr;
use url::Url;

/// What a remote server's OAuth protection was when it was locked (or is now).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthSurface {
    /// The protected resource's identifier (its `resource`), the audience tokens are bound to.
    pub resource: String,
    /// Its `authorization_servers`, sorted.
    pub authorization_servers: Vec<String>,
    /// The `issuer` of the authorization server tokens were asked from.
    pub issuer: String,
    /// The resource's `scopes_supported`, sorted (empty when it names none).
    pub scopes_supported: Vec<String>,
}

impl AuthSurface {
    pub fn to_json(&self) -> Value {
        json!({
            "authorizationServers": self.authorization_servers,
            "issuer": self.issuer,
            "resource": self.resource,
            "scopesSupported": self.scopes_supported,
        })
    }

    /// Reads the form [`AuthSurface::to_json`] writes, strictly: every field, nothing else,
    /// the lists sorted without repeats.
    pub fn from_json(value: &Value) -> Result<AuthSurface, String> {
        let object = value.as_object().ok_or("expected an object")?;
        const KEYS: [&str; 4] = [
            "authorizationServers",
            "issuer",
            "resource",
            "scopesSupported",
        ];
        if let Some(key) = object.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!("unknown field {key:?}"));
        }
        let text = |key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("{key}: expected a non-empty string"))
        };
        let list = |key: &str| -> Result<Vec<String>, String> {
            let items = object
                .get(key)
                .and_then(Value::as_array)
                .ok_or_else(|| format!("{key}: expected an array of strings"))?;
            let items: Vec<String> = items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{key}: expected an array of strings"))?;
            if items.windows(2).any(|w| w[0] >= w[1]) {
                return Err(format!("{key}: not sorted, or a value is listed twice"));
            }
            Ok(items)
        };
        let surface = AuthSurface {
            resource: text("resource")?,
            authorization_servers: list("authorizationServers")?,
            issuer: text("issuer")?,
            scopes_supported: list("scopesSupported")?,
        };
        if surface.authorization_servers.is_empty() {
            return Err("authorizationServers: names no authorization server".into());
        }
        Ok(surface)
    }

    /// How `self` (locked) and `live` differ, a line each, for a refusal; empty when equal.
    pub fn differences(&self, live: &AuthSurface) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |name: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{name}: locked {a}, now {b}"));
            }
        };
        field("issuer", self.issuer.clone(), live.issuer.clone());
        field(
            "authorization servers",
            self.authorization_servers.join(" "),
            live.authorization_servers.join(" "),
        );
        field("resource", self.resource.clone(), live.resource.clone());
        field(
            "scopes supported",
            self.scopes_supported.join(" "),
            live.scopes_supported.join(" "),
        );
        out
    }
}

/// What a Protected Resource Metadata document says, as far as a client uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceMetadata {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    pub scopes_supported: Vec<String>,
}

/// Reads a Protected Resource Metadata document (RFC 9728 §2) for `server`: its `resource`
/// must be the server's own URL (§3.3: else it describes another resource, and is refused),
/// and it must name at least one authorization server.
pub fn resource_metadata(document: &Value, server: &Url) -> Result<ResourceMetadata, String> {
    let object = document.as_object().ok_or("it is not a JSON object")?;
    let resource = object
        .get("resource")
        .and_then(Value::as_str)
        .ok_or("it has no \"resource\"")?;
    if !same_resource(resource, server) {
        return Err(format!(
            "it describes the resource {resource:?}, not {server} (RFC 9728 §3.3: refused)"
        ));
    }
    let authorization_servers = strings(object, "authorization_servers")?;
    if authorization_servers.is_empty() {
        return Err("it names no authorization server".into());
    }
    Ok(ResourceMetadata {
        resource: resource.to_string(),
        authorization_servers,
        scopes_supported: strings(object, "scopes_supported")?,
    })
}

/// What an authorization server's metadata says, as far as a client uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    pub authorization_endpoint: Option<String>,
    pub code_challenge_methods: Vec<String>,
    /// RFC 9207: the server names itself (`iss`) in every authorization response.
    pub iss_in_response: bool,
}

/// Reads an authorization server's metadata fetched for `issuer`: its `issuer` must be exactly
/// the one it was looked up for (RFC 8414 §3.3; else a mix-up: refused).
pub fn server_metadata(document: &Value, issuer: &str) -> Result<ServerMetadata, String> {
    let object = document.as_object().ok_or("it is not a JSON object")?;
    let said = object
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or("it has no \"issuer\"")?;
    if said != issuer {
        return Err(format!(
            "it names the issuer {said:?}, not {issuer:?} (RFC 8414 §3.3: refused)"
        ));
    }
    let endpoint = |key: &str| object.get(key).and_then(Value::as_str).map(str::to_owned);
    Ok(ServerMetadata {
        issuer: said.to_string(),
        token_endpoint: endpoint("token_endpoint").ok_or("it has no \"token_endpoint\"")?,
        authorization_endpoint: endpoint("authorization_endpoint"),
        code_challenge_methods: strings(object, "code_challenge_methods_supported")?,
        iss_in_response: object
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// An optional array of strings, in its order, each once.
fn strings(object: &Map<String, Value>, key: &str) -> Result<Vec<String>, String> {
    let Some(value) = object.get(key) else {
        return Ok(Vec::new());
    };
    let items: Vec<String> = value
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .ok_or_else(|| format!("its {key:?} is not an array of strings"))?;
    let mut out: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Ok(out)
}

/// Sorted, each once: how a surface keeps a list.
pub fn sorted(items: &[String]) -> Vec<String> {
    let mut out = items.to_vec();
    out.sort();
    out.dedup();
    out
}

/// Whether `resource` names `server`: the same URL, ignoring a fragment, the case of scheme and
/// host, and a default port (the `url` crate normalizes those); a trailing slash is significant.
pub fn same_resource(resource: &str, server: &Url) -> bool {
    let Ok(mut resource) = Url::parse(resource) else {
        return false;
    };
    let mut server = server.clone();
    resource.set_fragment(None);
    server.set_fragment(None);
    resource == server
}

/// Where a server's Protected Resource Metadata is looked for when its 401 names none (RFC 9728
/// §3.1): the well-known path inserted before the server's path, then at the root.
pub fn resource_metadata_urls(server: &Url) -> Vec<Url> {
    well_known(server, &["oauth-protected-resource"], false)
}

/// Where an authorization server's metadata is looked for (the MCP spec's order): RFC 8414 with
/// the path inserted, OpenID discovery with the path inserted, then appended.
pub fn server_metadata_urls(issuer: &Url) -> Vec<Url> {
    well_known(
        issuer,
        &["oauth-authorization-server", "openid-configuration"],
        true,
    )
}

fn well_known(base: &Url, names: &[&str], oidc_appended: bool) -> Vec<Url> {
    let path = base.path().trim_end_matches('/');
    let mut out = Vec::new();
    let mut push = |path: String| {
        let mut url = base.clone();
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        if !out.contains(&url) {
            out.push(url);
        }
    };
    for name in names {
        push(format!("/.well-known/{name}{path}"));
    }
    if oidc_appended && !path.is_empty() {
        push(format!("{path}/.well-known/openid-configuration"));
    }
    if !oidc_appended {
        push(format!("/.well-known/{}", names[0]));
    }
    out
}

/// The `resource_metadata` URL a `WWW-Authenticate: Bearer ...` challenge names, if any.
pub fn challenged_metadata(www_authenticate: &str) -> Option<String> {
    challenge_param(www_authenticate, "resource_metadata")
}

/// The scopes a challenge asks for (`scope="a b"`), if it names any.
pub fn challenged_scopes(www_authenticate: &str) -> Vec<String> {
    challenge_param(www_authenticate, "scope")
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// One auth-param of a challenge (RFC 9110 §11.2: `name=token` or `name="quoted"`).
fn challenge_param(challenge: &str, name: &str) -> Option<String> {
    let mut rest = challenge;
    while let Some(at) = rest.to_ascii_lowercase().find(&format!("{name}=")) {
        let before = rest[..at].chars().last();
        let value = &rest[at + name.len() + 1..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            rest = value;
            continue;
        }
        return Some(match value.strip_prefix('"') {
            Some(quoted) => {
                let mut out = String::new();
                let mut chars = quoted.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => out.extend(chars.next()),
                        c => out.push(c),
                    }
                }
                out
            }
            None => value
                .split(|c: char| c == ',' || c.is_whitespace())
                .next()
                .unwrap_or_default()
                .to_string(),
        });
    }
    None
}

/// The kinds of address a URL met during discovery may resolve to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// This machine (127/8, ::1).
    Loopback,
    /// A private network (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7).
    Private,
    /// Never: link-local (169.254/16, where clouds serve their metadata; fe80::/10),
    /// unspecified, multicast, broadcast, documentation.
    Forbidden,
    Public,
}

/// The kind of `ip` (an IPv4-mapped IPv6 address is judged as the IPv4 address it carries).
pub fn reach(ip: IpAddr) -> Reach {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Reach::Loopback
            } else if v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
            {
                Reach::Forbidden
            } else if v4.is_private() || (a == 100 && (64..128).contains(&b)) {
                Reach::Private
            } else {
                Reach::Public
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Reach::Loopback
            } else if v6.is_unspecified() || v6.is_multicast() || (first & 0xffc0) == 0xfe80 {
                Reach::Forbidden
            } else if (first & 0xfe00) == 0xfc00 {
                Reach::Private
            } else {
                Reach::Public
            }
        }
    }
}

/// Whether discovery may reach an address of kind `target` for a server whose own address is
/// of kind `server`: a public address always; this machine or a private network only when the
/// server itself is there (a server on the Internet cannot steer mcplock to a service on this
/// machine or its network); the forbidden kinds never.
pub fn may_reach(target: Reach, server: Reach) -> bool {
    match target {
        Reach::Public => true,
        Reach::Loopback => server == Reach::Loopback,
        Reach::Private => matches!(server, Reach::Private | Reach::Loopback),
        Reach::Forbidden => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_the_specs_order() {
        let server = Url::parse("https://api.example.com/v1/mcp").unwrap();
        let urls: Vec<String> = resource_metadata_urls(&server)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            [
                "https://api.example.com/.well-known/oauth-protected-resource/v1/mcp",
                "https://api.example.com/.well-known/oauth-protected-resource"
            ]
        );
        let issuer = Url::parse("https://auth.example.com/tenant1").unwrap();
        let urls: Vec<String> = server_metadata_urls(&issuer)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            urls,
            [
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration"
            ]
        );
        let root = Url::parse("https://auth.example.com").unwrap();
        assert_eq!(server_metadata_urls(&root).len(), 2);
    }

    #[test]
    fn a_challenge_names_its_metadata_and_scopes() {
        let c = r#"Bearer error="invalid_token", resource_metadata="http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp", scope="mcp admin""#;
        assert_eq!(
            challenged_metadata(c).as_deref(),
            Some("http://127.0.0.1:9/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(challenged_scopes(c), ["mcp", "admin"]);
        assert_eq!(challenged_metadata("Bearer realm=x"), None);
        assert_eq!(
            challenged_metadata("Bearer xresource_metadata=\"a\", resource_metadata=b").as_deref(),
            Some("b")
        );
    }

    #[test]
    fn metadata_for_another_resource_or_issuer_is_refused() {
        let server = Url::parse("http://127.0.0.1:8000/mcp").unwrap();
        let good = json!({"resource": "http://127.0.0.1:8000/mcp", "authorization_servers": ["http://127.0.0.1:9000"], "scopes_supported": ["mcp", "admin", "mcp"]});
        let read = resource_metadata(&good, &server).unwrap();
        assert_eq!(read.scopes_supported, ["mcp", "admin"]);
        let other =
            json!({"resource": "http://127.0.0.1:8000/other", "authorization_servers": ["x"]});
        assert!(
            resource_metadata(&other, &server)
                .unwrap_err()
                .contains("not")
        );
        let none = json!({"resource": "http://127.0.0.1:8000/mcp", "authorization_servers": []});
        assert!(resource_metadata(&none, &server).is_err());
        let meta = json!({"issuer": "http://127.0.0.1:9000", "token_endpoint": "http://127.0.0.1:9000/token"});
        assert!(server_metadata(&meta, "http://127.0.0.1:9000").is_ok());
        assert!(
            server_metadata(&meta, "http://127.0.0.1:9001")
                .unwrap_err()
                .contains("refused")
        );
    }

    #[test]
    fn addresses_are_judged_by_kind_and_mapped_ones_as_what_they_carry() {
        let r = |s: &str| reach(s.parse().unwrap());
        assert_eq!(r("127.0.0.1"), Reach::Loopback);
        assert_eq!(r("::1"), Reach::Loopback);
        assert_eq!(r("10.1.2.3"), Reach::Private);
        assert_eq!(r("172.20.0.1"), Reach::Private);
        assert_eq!(r("192.168.1.1"), Reach::Private);
        assert_eq!(r("100.100.0.1"), Reach::Private);
        assert_eq!(r("fd00::1"), Reach::Private);
        assert_eq!(r("169.254.169.254"), Reach::Forbidden);
        assert_eq!(r("::ffff:169.254.169.254"), Reach::Forbidden);
        assert_eq!(r("::ffff:127.0.0.1"), Reach::Loopback);
        assert_eq!(r("fe80::1"), Reach::Forbidden);
        assert_eq!(r("0.0.0.0"), Reach::Forbidden);
        assert_eq!(r("93.184.216.34"), Reach::Public);
        assert!(may_reach(Reach::Loopback, Reach::Loopback));
        assert!(!may_reach(Reach::Loopback, Reach::Public));
        assert!(!may_reach(Reach::Private, Reach::Public));
        assert!(!may_reach(Reach::Forbidden, Reach::Loopback));
    }

    #[test]
    fn a_surface_reads_back_what_it_writes_and_nothing_unsorted() {
        let s = AuthSurface {
            resource: "https://a/mcp".into(),
            authorization_servers: vec!["https://as".into()],
            issuer: "https://as".into(),
            scopes_supported: vec!["a".into(), "b".into()],
        };
        assert_eq!(AuthSurface::from_json(&s.to_json()).unwrap(), s);
        let mut bad = s.to_json();
        bad["scopesSupported"] = json!(["b", "a"]);
        assert!(AuthSurface::from_json(&bad).is_err());
        bad["scopesSupported"] = json!([]);
        bad["extra"] = json!(1);
        assert!(AuthSurface::from_json(&bad).is_err());
        let mut other = s.clone();
        other.issuer = "https://evil".into();
        assert_eq!(s.differences(&other).len(), 1);
    }
}
