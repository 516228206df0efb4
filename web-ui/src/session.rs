//! Logins: an opaque session id in an HttpOnly, SameSite=Strict cookie; the admin credential
//! it stands for stays in this process and never reaches the browser's scripts.
//!
//! A session ends after `idle` without use or `max` after it began, whichever comes first; an
//! ended session is as good as none (401). Each session has its own CSRF token, which the
//! dashboard reads from `GET /api/session` (same-origin only: no CORS headers are ever sent)
//! and echoes in `X-Hearth-CSRF` on every change. Time is tokio's clock, so tests can run it in
//! virtual time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hearth_common::auth::{ct_eq, hex};
use tokio::time::Instant;

/// The cookie's name.
pub(crate) const COOKIE: &str = "hearth_session";
/// The header that carries the session's CSRF token on every change.
pub(crate) const CSRF_HEADER: &str = "x-hearth-csrf";
/// Most live sessions; the least recently used goes first beyond it, so a flood of logins
/// cannot grow memory without bound.
const MAX_SESSIONS: usize = 256;

/// What a session grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// The engine credential (`admin.<token>`) the session acts with.
    pub(crate) credential: String,
    /// The session's CSRF token.
    pub(crate) csrf: String,
    /// How long until the session ends if unused from now on.
    pub(crate) remaining: Duration,
}

#[derive(Debug)]
struct Session {
    credential: String,
    csrf: String,
    created: Instant,
    last_used: Instant,
}

/// The live sessions.
#[derive(Debug)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
    idle: Duration,
    max: Duration,
}

impl Sessions {
    pub(crate) fn new(idle: Duration, max: Duration) -> Self {
        Self { map: Mutex::new(HashMap::new()), idle, max }
    }

    /// The longest a session can live (the cookie's Max-Age).
    pub(crate) fn max(&self) -> Duration {
        self.max
    }

    /// Start a session acting with `credential`: its id (for the cookie) and grant.
    pub(crate) fn create(&self, credential: String) -> anyhow::Result<(String, Grant)> {
        let id = random_token()?;
        let csrf = random_token()?;
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, s| self.alive(s, now).is_some());
        while map.len() >= MAX_SESSIONS {
            let oldest = map.iter().min_by_key(|(_, s)| s.last_used).map(|(k, _)| k.clone());
            match oldest {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        let session = Session { credential, csrf, created: now, last_used: now };
        let grant = self.grant(&session, now);
        map.insert(id.clone(), session);
        Ok((id, grant))
    }

    /// The session `id`, if it is alive; using it counts as activity.
    pub(crate) fn touch(&self, id: &str) -> Option<Grant> {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let alive = map.get(id).and_then(|s| self.alive(s, now));
        if alive.is_none() {
            map.remove(id);
            return None;
        }
        let session = map.get_mut(id)?;
        session.last_used = now;
        Some(self.grant(session, now))
    }

    /// How many sessions are alive now.
    pub(crate) fn live(&self) -> usize {
        let now = Instant::now();
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.values().filter(|s| self.alive(s, now).is_some()).count()
    }

    /// End the session `id` (logout).
    pub(crate) fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }

    /// Time left, or None when the session has ended.
    fn alive(&self, s: &Session, now: Instant) -> Option<Duration> {
        let idle_left = self.idle.checked_sub(now.duration_since(s.last_used))?;
        let max_left = self.max.checked_sub(now.duration_since(s.created))?;
        let left = idle_left.min(max_left);
        (!left.is_zero()).then_some(left)
    }

    fn grant(&self, s: &Session, now: Instant) -> Grant {
        Grant {
            credential: s.credential.clone(),
            csrf: s.csrf.clone(),
            remaining: self.alive(s, now).unwrap_or_default(),
        }
    }
}

impl Grant {
    /// Does `presented` (the `X-Hearth-CSRF` header) match this session's token?
    pub(crate) fn csrf_matches(&self, presented: &str) -> bool {
        ct_eq(presented.as_bytes(), self.csrf.as_bytes())
    }
}

/// 256 random bits as hex.
fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(hex(&bytes))
}

/// The session id in a `Cookie` header, if any.
pub(crate) fn from_cookie_header(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"'))
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> Sessions {
        Sessions::new(Duration::from_secs(60), Duration::from_secs(300))
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_after_idle_time_and_use_extends_it() -> anyhow::Result<()> {
        let s = sessions();
        let (id, grant) = s.create("admin.x".into())?;
        assert_eq!(grant.remaining, Duration::from_secs(60));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(s.touch(&id).is_some(), "used within the idle time");
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(s.touch(&id).is_some(), "the use above restarted the idle time");
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(s.touch(&id).is_none(), "61 s idle");
        assert!(s.touch(&id).is_none(), "and it stays ended");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_ends_at_its_maximum_age_however_busy() -> anyhow::Result<()> {
        let s = sessions();
        let (id, _) = s.create("admin.x".into())?;
        for _ in 0..9 {
            tokio::time::advance(Duration::from_secs(30)).await;
            assert!(s.touch(&id).is_some());
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(s.touch(&id).is_none(), "300 s after login");
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn logout_ends_it_and_csrf_tokens_differ_per_session() -> anyhow::Result<()> {
        let s = sessions();
        let (a, ga) = s.create("admin.x".into())?;
        let (b, gb) = s.create("admin.x".into())?;
        assert_ne!(a, b);
        assert_ne!(ga.csrf, gb.csrf);
        assert!(ga.csrf_matches(&ga.csrf) && !ga.csrf_matches(&gb.csrf) && !ga.csrf_matches(""));
        s.remove(&a);
        assert!(s.touch(&a).is_none());
        assert!(s.touch(&b).is_some());
        Ok(())
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_are_bounded() -> anyhow::Result<()> {
        let s = sessions();
        let (first, _) = s.create("admin.x".into())?;
        for _ in 0..MAX_SESSIONS {
            tokio::time::advance(Duration::from_millis(1)).await;
            s.create("admin.x".into())?;
        }
        assert!(s.touch(&first).is_none(), "the least recently used went first");
        Ok(())
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        assert_eq!(from_cookie_header("a=1; hearth_session=abc; b=2"), Some("abc"));
        assert_eq!(from_cookie_header("hearth_session="), None);
        assert_eq!(from_cookie_header("xhearth_session=abc"), None);
    }
}
