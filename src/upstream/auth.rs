//! Bearer tokens (Docker Hub's flow, used by most registries).
//!
//! Owns: parsing `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, fetching a token
//! from the realm (anonymously, or with Basic credentials for an account's token), and
//! caching tokens per scope until they expire. Also reads the message out of a registry's
//! error JSON.
//! Must not touch: anything but the token endpoint; a credential never goes into a message.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::credentials::Credential;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

impl Challenge {
    /// Parse a Bearer challenge; None for other schemes or one without a realm.
    pub fn parse(header: &str) -> Option<Challenge> {
        let (scheme, rest) = header.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(rest);
        Some(Challenge {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `a="x,y",b=z` → {a: "x,y", b: "z"}; commas inside quotes belong to the value.
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return out;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect();
        }
        out.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

pub struct Token {
    value: String,
    expires: Instant,
}

/// Fetch a token for `scope` (the challenge's own scope wins when it names one), as
/// `credential`'s user when there is one, else anonymously.
pub async fn fetch_token(
    http: &reqwest::Client,
    challenge: &Challenge,
    scope: &str,
    credential: Option<&Credential>,
) -> Result<Token, String> {
    let scope = challenge.scope.as_deref().unwrap_or(scope);
    let mut query = vec![("scope", scope)];
    if let Some(service) = &challenge.service {
        query.push(("service", service));
    }
    let mut req = http.get(&challenge.realm).query(&query);
    if let Some(c) = credential {
        req = req.header(reqwest::header::AUTHORIZATION, c.basic());
    }
    let resp = req
        .send()
        .await
        .map_err(|e| format!("token endpoint {}: {e}", challenge.realm))?;
    let status = resp.status();
    let body = resp
        .bytes()
        .await
        .map_err(|e| format!("token endpoint: {e}"))?;
    match (status.as_u16(), credential) {
        (_, _) if status.is_success() => {}
        (401 | 403, Some(c)) => {
            return Err(format!(
                "token endpoint {} refused the credentials from {} ({status})",
                challenge.realm, c.source
            ));
        }
        _ => {
            return Err(format!(
                "token endpoint {} answered {status}",
                challenge.realm
            ));
        }
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|e| format!("token endpoint {} sent no token: {e}", challenge.realm))?;
    let value = parsed
        .token
        .or(parsed.access_token)
        .ok_or_else(|| format!("token endpoint {} sent no token", challenge.realm))?;
    // Tokens without expires_in last 60 s per the token spec; renew a little early.
    let lifetime = parsed.expires_in.unwrap_or(60).max(10);
    Ok(Token {
        value,
        expires: Instant::now() + Duration::from_secs(lifetime - 5),
    })
}

#[derive(Default)]
pub struct TokenCache {
    tokens: Mutex<HashMap<String, Token>>,
}

impl TokenCache {
    pub fn get(&self, scope: &str) -> Option<String> {
        let tokens = self.tokens.lock().expect("token cache lock");
        let token = tokens.get(scope)?;
        (token.expires > Instant::now()).then(|| token.value.clone())
    }

    pub fn put(&self, scope: &str, token: Token) {
        let mut tokens = self.tokens.lock().expect("token cache lock");
        tokens.retain(|_, t| t.expires > Instant::now());
        tokens.insert(scope.to_string(), token);
    }
}

/// The first message of a registry error body `{"errors":[{"code","message"}]}`.
pub fn error_message(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Body {
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
    }
    let first = serde_json::from_str::<Body>(body)
        .ok()?
        .errors
        .into_iter()
        .next()?;
    match (first.code, first.message) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_hub_challenges() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull,push""#;
        let c = Challenge::parse(h).unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:library/ubuntu:pull,push")
        );
    }

    #[test]
    fn rejects_basic_and_realmless_challenges() {
        assert_eq!(Challenge::parse(r#"Basic realm="x""#), None);
        assert_eq!(Challenge::parse(r#"Bearer service="x""#), None);
        assert_eq!(Challenge::parse(""), None);
    }

    #[test]
    fn unquoted_values_and_spacing() {
        let c = Challenge::parse("bearer realm=http://h/t , service=s").unwrap();
        assert_eq!(c.realm, "http://h/t");
        assert_eq!(c.service.as_deref(), Some("s"));
    }

    #[test]
    fn expired_tokens_are_not_used() {
        let cache = TokenCache::default();
        let expired = Token {
            value: "a".into(),
            expires: Instant::now() - Duration::from_secs(1),
        };
        cache.put("s", expired);
        assert_eq!(cache.get("s"), None);
        let fresh = Token {
            value: "b".into(),
            expires: Instant::now() + Duration::from_secs(60),
        };
        cache.put("s", fresh);
        assert_eq!(cache.get("s").as_deref(), Some("b"));
    }

    #[test]
    fn error_messages_come_from_the_spec_json() {
        let body = r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":null}]}"#;
        assert_eq!(
            error_message(body).as_deref(),
            Some("MANIFEST_UNKNOWN: manifest unknown")
        );
        assert_eq!(error_message("oops"), None);
    }
}
