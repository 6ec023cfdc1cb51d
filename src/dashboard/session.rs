//! Dashboard sessions: who signed in with the admin token, for how long, with which CSRF
//! token, and what to tell them next (a notice after an action); and the throttle that slows
//! down repeated failed sign-ins from one address.
//!
//! A session is a random id in a cookie (`HttpOnly`, `SameSite=Strict`, `Secure` when the
//! server says the page came over TLS, `Max-Age` the session's lifetime); the server keeps
//! the id, its expiry and its CSRF token in memory, so a restart signs everyone out.
//! Must not touch: HTTP routing, the store.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, header};

use crate::secret;

pub const COOKIE: &str = "stablebuild_session";
/// How long a session lasts after sign-in.
pub const LIFETIME: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; signing in beyond it ends the oldest.
const MAX_SESSIONS: usize = 1000;

struct Session {
    csrf: String,
    expires: Instant,
    notice: Option<String>,
}

#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; its id (for the cookie).
    pub fn create(&self) -> std::io::Result<String> {
        let (id, csrf) = (secret::random_token()?, secret::random_token()?);
        let mut map = self.map.lock().expect("sessions");
        let now = Instant::now();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let session = Session {
            csrf,
            expires: now + LIFETIME,
            notice: None,
        };
        map.insert(id.clone(), session);
        Ok(id)
    }

    /// The CSRF token of the live session `id`; None when there is no such session (or it
    /// expired, and is forgotten now).
    pub fn csrf(&self, id: &str) -> Option<String> {
        let mut map = self.map.lock().expect("sessions");
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.csrf.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Does `id` name a live session whose CSRF token is `csrf`?
    pub fn check(&self, id: &str, csrf: &str) -> bool {
        self.csrf(id).is_some_and(|want| secret::same(&want, csrf))
    }

    pub fn end(&self, id: &str) {
        self.map.lock().expect("sessions").remove(id);
    }

    /// Tell the session's next page `text`.
    pub fn notify(&self, id: &str, text: String) {
        if let Some(s) = self.map.lock().expect("sessions").get_mut(id) {
            s.notice = Some(text);
        }
    }

    pub fn take_notice(&self, id: &str) -> Option<String> {
        let mut map = self.map.lock().expect("sessions");
        map.get_mut(id).and_then(|s| s.notice.take())
    }
}

/// The session id a request's cookies carry.
pub fn from_cookies(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// `Set-Cookie` for session `id` (an empty id with no lifetime ends it).
pub fn cookie(id: &str, lifetime: Duration, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let value = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        lifetime.as_secs()
    );
    HeaderValue::from_str(&value).expect("cookie values are ASCII")
}

/// Failed sign-ins per client address, forgotten after `FORGET`.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

const FORGET: Duration = Duration::from_secs(15 * 60);
const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(8);

impl Throttle {
    /// How long an attempt from `ip` waits before it is looked at: 250 ms after one recent
    /// failure, doubling with each more, at most 8 s.
    pub fn delay(&self, ip: IpAddr) -> Duration {
        let mut map = self.failures.lock().expect("throttle");
        let n = match map.get(&ip) {
            Some((_, last)) if last.elapsed() > FORGET => {
                map.remove(&ip);
                0
            }
            Some((n, _)) => *n,
            None => 0,
        };
        match n {
            0 => Duration::ZERO,
            n => FIRST_DELAY
                .saturating_mul(1 << (n - 1).min(5))
                .min(MAX_DELAY),
        }
    }

    pub fn failed(&self, ip: IpAddr) {
        let mut map = self.failures.lock().expect("throttle");
        let entry = map.entry(ip).or_insert((0, Instant::now()));
        *entry = (entry.0.saturating_add(1), Instant::now());
    }

    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().expect("throttle").remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_has_a_csrf_token_until_it_ends() {
        let sessions = Sessions::default();
        let id = sessions.create().unwrap();
        let csrf = sessions.csrf(&id).unwrap();
        assert!(sessions.check(&id, &csrf));
        assert!(!sessions.check(&id, "0000"));
        assert!(!sessions.check("other", &csrf));
        sessions.notify(&id, "evicted".into());
        assert_eq!(sessions.take_notice(&id).as_deref(), Some("evicted"));
        assert_eq!(sessions.take_notice(&id), None);
        sessions.end(&id);
        assert!(!sessions.check(&id, &csrf));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; stablebuild_session=abc; b=2"),
        );
        assert_eq!(from_cookies(&h).as_deref(), Some("abc"));
        assert_eq!(from_cookies(&HeaderMap::new()), None);
        let c = cookie("abc", LIFETIME, true);
        let c = c.to_str().unwrap();
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Max-Age=28800"] {
            assert!(c.contains(part), "{c}");
        }
        assert!(
            !cookie("abc", LIFETIME, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn failures_slow_down_later_attempts() {
        let t = Throttle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(t.delay(ip), Duration::ZERO);
        t.failed(ip);
        assert_eq!(t.delay(ip), Duration::from_millis(250));
        t.failed(ip);
        assert_eq!(t.delay(ip), Duration::from_millis(500));
        for _ in 0..10 {
            t.failed(ip);
        }
        assert_eq!(t.delay(ip), MAX_DELAY);
        t.succeeded(ip);
        assert_eq!(t.delay(ip), Duration::ZERO);
    }
}
