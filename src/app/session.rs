//! Console sessions and logins in progress. A session is a random 256-bit id in the
//! `maestro_session` cookie; the server keeps only its SHA-256 with the actor, so the store of
//! sessions holds nothing a cookie could be rebuilt from. Sessions end on logout, after
//! [`IDLE`] without a request, or [`MAX_AGE`] after login; a restart ends them all.
//!
//! A login in progress keeps its `state`, `nonce` and PKCE verifier for [`LOGIN_TTL`], keyed
//! by `state`, which the browser also holds in a short-lived cookie: a callback is accepted
//! once, only from the browser that started the login.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use parking_lot::Mutex;
use sha2::{Digest as _, Sha256};

use crate::domain::actor::Actor;

/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// A session ends this long after login, whatever happens.
pub const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// A login must come back from the issuer within this.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);
/// Most sessions and logins in progress kept (the oldest go first).
const MAX_ENTRIES: usize = 100_000;

struct Session {
    actor: Actor,
    created: Instant,
    seen: Instant,
}

/// A login in progress.
#[derive(Debug, Clone)]
pub struct Login {
    /// The `state` parameter (also in the browser's login cookie).
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Where to go after login (a console path).
    pub next: String,
    started: Instant,
}

impl Login {
    /// The PKCE S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        b64(&Sha256::digest(self.verifier.as_bytes()))
    }
}

/// Sessions and logins in progress.
#[derive(Default)]
pub struct Sessions {
    live: Mutex<HashMap<[u8; 32], Session>>,
    logins: Mutex<HashMap<String, Login>>,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random() -> String {
    b64(&rand::random::<[u8; 32]>())
}

fn key(cookie: &str) -> [u8; 32] {
    Sha256::digest(cookie.as_bytes()).into()
}

impl Sessions {
    /// Starts a session for `actor`; returns the cookie value.
    pub fn create(&self, actor: Actor) -> String {
        let cookie = random();
        let now = Instant::now();
        let mut live = self.live.lock();
        if live.len() >= MAX_ENTRIES {
            live.retain(|_, s| s.seen.elapsed() < IDLE && s.created.elapsed() < MAX_AGE);
            if live.len() >= MAX_ENTRIES
                && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.seen).map(|(k, _)| *k)
            {
                live.remove(&oldest);
            }
        }
        live.insert(
            key(&cookie),
            Session {
                actor,
                created: now,
                seen: now,
            },
        );
        cookie
    }

    /// The actor of a live session.
    pub fn get(&self, cookie: &str) -> Option<Actor> {
        let k = key(cookie);
        let mut live = self.live.lock();
        let s = live.get_mut(&k)?;
        if s.seen.elapsed() >= IDLE || s.created.elapsed() >= MAX_AGE {
            live.remove(&k);
            return None;
        }
        s.seen = Instant::now();
        Some(s.actor.clone())
    }

    /// Ends a session.
    pub fn remove(&self, cookie: &str) {
        self.live.lock().remove(&key(cookie));
    }

    /// How many sessions are live.
    pub fn len(&self) -> usize {
        self.live.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a login that returns to `next`.
    pub fn begin_login(&self, next: &str) -> Login {
        let login = Login {
            state: random(),
            nonce: random(),
            verifier: random(),
            next: next.to_owned(),
            started: Instant::now(),
        };
        let mut logins = self.logins.lock();
        logins.retain(|_, l| l.started.elapsed() < LOGIN_TTL);
        if logins.len() >= MAX_ENTRIES
            && let Some(oldest) = logins
                .iter()
                .min_by_key(|(_, l)| l.started)
                .map(|(k, _)| k.clone())
        {
            logins.remove(&oldest);
        }
        logins.insert(login.state.clone(), login.clone());
        login
    }

    /// Ends the login of `state`, if it is in progress and not expired (once only).
    pub fn finish_login(&self, state: &str) -> Option<Login> {
        let login = self.logins.lock().remove(state)?;
        (login.started.elapsed() < LOGIN_TTL).then_some(login)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::actor::Role;

    fn actor() -> Actor {
        Actor {
            subject: "oidc:alice".into(),
            tenant: None,
            roles: vec![Role::Viewer],
        }
    }

    #[test]
    fn sessions_are_found_by_cookie_and_end_on_logout() {
        let s = Sessions::default();
        let cookie = s.create(actor());
        assert_eq!(cookie.len(), 43);
        assert_eq!(s.get(&cookie).unwrap().subject, "oidc:alice");
        assert!(s.get("forged").is_none());
        s.remove(&cookie);
        assert!(s.get(&cookie).is_none());
        assert!(s.is_empty());
    }

    #[test]
    fn logins_finish_once_with_a_matching_pkce_challenge() {
        let s = Sessions::default();
        let login = s.begin_login("/executions");
        // RFC 7636 S256: BASE64URL(SHA256(verifier)).
        assert_eq!(
            login.challenge(),
            b64(&Sha256::digest(login.verifier.as_bytes()))
        );
        assert_ne!(login.state, login.nonce);
        assert!(s.finish_login("other").is_none());
        assert_eq!(s.finish_login(&login.state).unwrap().next, "/executions");
        assert!(
            s.finish_login(&login.state).is_none(),
            "a state is used once"
        );
    }
}
