//! Which of the engine's routes the dashboard may reach through `/api`, and how.
//!
//! An explicit table, not a catch-all: the dashboard gets exactly the engine's documented
//! people-facing routes, and never the agents' ones (`PUT /v1/sensors/update`, backlog,
//! relay registration), which no browser has a reason to call. A test checks the table
//! against the engine's OpenAPI document, so a new engine route is a decision, not an accident.

use axum::http::Method;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Open, like the engine's reads.
    Read,
    /// Changes the house: a live session and its CSRF token.
    Change,
}

/// `(method, engine path pattern)`; `{}` matches one path segment.
pub(crate) const ROUTES: &[(Method, &str, Access)] = &[
    (Method::GET, "/v1/status", Access::Read),
    (Method::GET, "/v1/auth", Access::Read),
    (Method::GET, "/v1/sensors", Access::Read),
    (Method::GET, "/v1/sensors/{}/readings", Access::Read),
    (Method::PUT, "/v1/sensors/{}/settings", Access::Change),
    (Method::GET, "/v1/relays", Access::Read),
    (Method::PUT, "/v1/relays/{}/{}/function", Access::Change),
    (Method::PUT, "/v1/relays/{}/{}/fallback", Access::Change),
    (Method::GET, "/v1/agents", Access::Read),
    (Method::GET, "/v1/agents/{}/settings", Access::Read),
    (Method::PUT, "/v1/agents/{}/settings", Access::Change),
    (Method::GET, "/v1/agents/{}/commands", Access::Read),
    (Method::POST, "/v1/agents/{}/commands", Access::Change),
    (Method::GET, "/v1/control", Access::Read),
    (Method::PUT, "/v1/control/settings", Access::Change),
    (Method::GET, "/v1/control/decisions", Access::Read),
    (Method::GET, "/v1/plugins", Access::Read),
    (Method::GET, "/v1/house", Access::Read),
    (Method::GET, "/v1/schedules", Access::Read),
    (Method::POST, "/v1/schedules", Access::Change),
    (Method::GET, "/v1/schedules/{}", Access::Read),
    (Method::PUT, "/v1/schedules/{}", Access::Change),
    (Method::DELETE, "/v1/schedules/{}", Access::Change),
    (Method::GET, "/v1/schedule/default", Access::Read),
    (Method::PUT, "/v1/schedule/default", Access::Change),
    (Method::GET, "/v1/overrides", Access::Read),
    (Method::POST, "/v1/overrides", Access::Change),
    (Method::DELETE, "/v1/overrides", Access::Change),
    (Method::DELETE, "/v1/overrides/{}", Access::Change),
    (Method::GET, "/v1/schedule/timeline", Access::Read),
    (Method::GET, "/v1/zones", Access::Read),
    (Method::PUT, "/v1/zones/{}", Access::Change),
    (Method::DELETE, "/v1/zones/{}", Access::Change),
    (Method::PUT, "/v1/plants/{}", Access::Change),
    (Method::DELETE, "/v1/plants/{}", Access::Change),
    (Method::GET, "/v1/runs", Access::Read),
    (Method::GET, "/v1/analytics/daily", Access::Read),
    (Method::GET, "/v1/analytics/periods", Access::Read),
];

/// How a request for `path` (without `/api`) would be relayed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(Access),
    /// The path exists with other methods.
    WrongMethod,
    NotFound,
}

pub(crate) fn lookup(method: &Method, path: &str) -> Lookup {
    let mut path_known = false;
    for (m, pattern, access) in ROUTES {
        if matches(pattern, path) {
            if m == method {
                return Lookup::Found(*access);
            }
            path_known = true;
        }
    }
    if path_known { Lookup::WrongMethod } else { Lookup::NotFound }
}

fn matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut s = path.split('/');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            // A wildcard is one real segment: never empty, `.` or `..`, so what is relayed is
            // exactly the route that was checked.
            (Some("{}"), Some(seg)) if !seg.is_empty() && seg != "." && seg != ".." => {}
            (Some(a), Some(b)) if a == b => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_match_segment_by_segment() {
        assert_eq!(lookup(&Method::GET, "/v1/schedules"), Lookup::Found(Access::Read));
        assert_eq!(lookup(&Method::POST, "/v1/schedules"), Lookup::Found(Access::Change));
        assert_eq!(lookup(&Method::PUT, "/v1/schedules/7"), Lookup::Found(Access::Change));
        assert_eq!(lookup(&Method::PATCH, "/v1/schedules/7"), Lookup::WrongMethod);
        assert_eq!(lookup(&Method::GET, "/v1/schedules/7/x"), Lookup::NotFound);
        assert_eq!(lookup(&Method::GET, "/v1/schedules/"), Lookup::NotFound);
        assert_eq!(lookup(&Method::PUT, "/v1/schedules/.."), Lookup::NotFound);
        assert_eq!(lookup(&Method::PUT, "/v1/sensors/update"), Lookup::NotFound);
        assert_eq!(lookup(&Method::POST, "/v1/relays/register"), Lookup::NotFound);
        assert_eq!(
            lookup(&Method::PUT, "/v1/relays/h1/heat/function"),
            Lookup::Found(Access::Change)
        );
    }

    /// Engine routes deliberately not relayed: agents' routes, the event stream (relayed by
    /// `/api/events` instead, one upstream connection for every browser) and the API document.
    const NOT_RELAYED: &[(Method, &str)] = &[
        (Method::PUT, "/v1/sensors/update"),
        (Method::PUT, "/v1/sensors/backlog"),
        (Method::POST, "/v1/relays/register"),
        // What an agent reports back on its settings and commands, with its device key.
        (Method::PUT, "/v1/agents/{}/settings/applied"),
        (Method::PUT, "/v1/agents/{}/commands/{}"),
        (Method::GET, "/v1/events"),
    ];

    /// Every operation in the engine's committed OpenAPI document is either relayed (reads as
    /// reads, everything else as a change) or deliberately not: a new engine route fails here
    /// until someone decides.
    #[test]
    fn the_table_covers_the_engine_api() -> anyhow::Result<()> {
        let doc: serde_json::Value =
            serde_json::from_str(include_str!("../../openapi/engine.json"))?;
        let paths = doc["paths"].as_object().ok_or_else(|| anyhow::anyhow!("no paths"))?;
        let mut seen = 0;
        for (path, ops) in paths {
            let pattern = path
                .split('/')
                .map(|s| if s.starts_with('{') { "{}" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            for method in ops.as_object().into_iter().flat_map(|o| o.keys()) {
                let Ok(m) = method.to_uppercase().parse::<Method>() else { continue };
                seen += 1;
                let relayed = ROUTES.iter().find(|(rm, p, _)| *rm == m && *p == pattern);
                let skipped = NOT_RELAYED.iter().any(|(rm, p)| *rm == m && *p == pattern);
                match relayed {
                    Some((_, _, access)) => {
                        assert!(!skipped, "{m} {path} is both relayed and not");
                        let want = if m == Method::GET { Access::Read } else { Access::Change };
                        assert_eq!(*access, want, "{m} {path}");
                    }
                    None => assert!(skipped, "{m} {path}: not in the web UI's route table"),
                }
            }
        }
        assert_eq!(seen, ROUTES.len() + NOT_RELAYED.len(), "a table row matches no engine route");
        Ok(())
    }
}
