//! The read API (`GET /v1/readings` on the status listener): the agent's last screened
//! readings, for a relay agent of the site whose fallback program keeps a frost setpoint from
//! one of this agent's sensors while the engine is lost.
//!
//! It answers only a request with `Authorization: Bearer <read token>`, the token derived from
//! this agent's own device key (`DeviceCredential::read_token`): the agent checks it alone, the
//! engine (which can derive every key) hands it to the relay agent, and it grants reading and
//! nothing else. A missing or wrong token is 401, compared in constant time and logged without
//! the token. Times are relative (`read_s_ago`, by the monotonic clock): a Pi's wall clock may
//! be wrong, and the reader judges freshness by its own clock.
//!
//! The answer is [`SharedReadings`], serialised by serde (the relay agent deserialises the same
//! type); the routing and the HTTP framing are `status.rs`'s.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hearth_common::auth::DeviceCredential;
use hearth_probes::RawReading;
use hearth_proto::fallback::{SharedReading, SharedReadings};
use hearth_proto::{ErrorBody, ErrorCode};

use crate::status::Board;

/// A sensor's last value, or why it has none.
type Value = Result<f64, String>;
/// When the last read finished, and each sensor's value in it.
type LastRead = Option<(Instant, Vec<(String, Value)>)>;

/// The last read, shared between the report loop and the read API. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shelf {
    /// The agent's own key, which the read token is derived from; None: every request is
    /// refused (a board made without one, in tests).
    key: Option<Arc<DeviceCredential>>,
    last: Arc<Mutex<LastRead>>,
}

impl Shelf {
    /// Keep the readings of a read that just finished.
    pub(crate) fn read_done(&self, readings: &[RawReading]) {
        let values = readings
            .iter()
            .map(|r| (r.id.clone(), r.value.clone().map_err(|e| e.to_string())))
            .collect();
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), values));
    }

    fn readings(&self, host_id: &str) -> SharedReadings {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let readings = last
            .iter()
            .flat_map(|(at, values)| {
                let ago = at.elapsed().as_secs_f64();
                values.iter().map(move |(id, value)| SharedReading {
                    id: id.clone(),
                    value: value.as_ref().ok().copied(),
                    error: value.as_ref().err().cloned(),
                    read_s_ago: ago,
                })
            })
            .collect();
        SharedReadings { host_id: host_id.to_owned(), readings }
    }

    fn authorised(&self, head: &[u8]) -> Result<(), &'static str> {
        let Some(header) = header(head, "authorization") else { return Err("no credential") };
        let token = header
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or("not a bearer credential")?;
        match &self.key {
            Some(key) if key.verify_read_token(token) => Ok(()),
            _ => Err("wrong read token"),
        }
    }
}

impl Board {
    /// Let the read API answer readers holding this agent's read token.
    pub(crate) fn sharing_with(mut self, key: DeviceCredential) -> Self {
        self.share.key = Some(Arc::new(key));
        self
    }
}

/// The value of header `name` (lower case) in a request head, if present.
fn header(head: &[u8], name: &str) -> Option<String> {
    let head = String::from_utf8_lossy(head);
    head.split("\r\n").skip(1).find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The status code, reason phrase and JSON body of `GET /v1/readings` for request `head`.
pub(crate) fn answer(head: &[u8], host_id: &str, shelf: &Shelf) -> (u16, &'static str, String) {
    if let Err(why) = shelf.authorised(head) {
        // Never the token itself: a wrong one may be a right one for another agent.
        tracing::warn!(reason = why, "read API: request refused");
        let body = ErrorBody::new(
            ErrorCode::Unauthorized,
            "GET /v1/readings needs `Authorization: Bearer <read token>`, the token the engine \
             derives for this sensor agent",
        );
        return (401, "Unauthorized", json(&body));
    }
    (200, "OK", json(&shelf.readings(host_id)))
}

fn json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_common::auth::SiteSecret;
    use hearth_probes::ReadError;
    use hearth_proto::agents::KeyRole;

    fn key(host: &str) -> anyhow::Result<DeviceCredential> {
        Ok(SiteSecret::from_hex(&"11".repeat(32))?.device_key(host, KeyRole::Sensor))
    }

    /// The key of host `hall` and its board, sharing with that key's read token.
    fn hall() -> anyhow::Result<(DeviceCredential, Board)> {
        let key = key("hall")?;
        Ok((key.clone(), Board::new("hall", "w1").sharing_with(key)))
    }

    fn get(board: &Board, authorization: Option<&str>) -> String {
        let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let head = format!("GET /v1/readings HTTP/1.1\r\nHost: x\r\n{auth}\r\n");
        crate::status::respond(head.as_bytes(), board)
    }

    fn split(answer: &str) -> (&str, serde_json::Value) {
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        (head, serde_json::from_str(body).unwrap_or_default())
    }

    #[test]
    fn answers_the_last_screened_readings_to_the_read_token() -> anyhow::Result<()> {
        let (key, board) = hall()?;
        let bearer = format!("Bearer {}", key.read_token());
        // Before the first read: no readings, not an error.
        let answer = get(&board, Some(&bearer));
        let (head, json) = split(&answer);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert_eq!(json, serde_json::json!({"host_id": "hall", "readings": []}));

        let reading = |id: &str, value| RawReading { id: id.into(), kind: "DS18B20".into(), value };
        board.read_done(
            hearth_proto::Timestamp::now(),
            &[reading("28-1", Ok(6.5)), reading("28-2", Err(ReadError::PowerOnValue))],
        );
        let answer = get(&board, Some(&bearer));
        let (head, json) = split(&answer);
        assert!(head.contains("Content-Type: application/json\r\n"), "{head}");
        let shared: SharedReadings = serde_json::from_value(json)?;
        assert_eq!(shared.host_id, "hall");
        assert_eq!(shared.readings.len(), 2);
        assert_eq!((shared.readings[0].id.as_str(), shared.readings[0].value), ("28-1", Some(6.5)));
        assert_eq!(shared.readings[0].error, None);
        assert!((0.0..5.0).contains(&shared.readings[0].read_s_ago));
        assert_eq!(shared.readings[1].value, None);
        assert_eq!(shared.readings[1].error, Some(ReadError::PowerOnValue.to_string()));
        // The scheme is case-insensitive, as HTTP says.
        assert!(get(&board, Some(&format!("bearer {}", key.read_token()))).contains(" 200 OK"));
        Ok(())
    }

    #[test]
    fn refuses_without_the_read_token() -> anyhow::Result<()> {
        let (key, board) = hall()?;
        let other = self::key("attic")?;
        for auth in [
            None,
            Some(String::new()),
            Some(format!("Basic {}", key.read_token())),
            Some(format!("Bearer {}", other.read_token())),
            // The agent's other credentials grant nothing here.
            Some(format!("Bearer {}", key.agent_token())),
            Some(format!("Bearer {}", key.agent_credential("hall"))),
            Some(format!("Bearer {}", key.engine_credential())),
            Some(format!("Bearer {}x", key.read_token())),
        ] {
            let answer = get(&board, auth.as_deref());
            let (head, json) = split(&answer);
            assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{auth:?}: {head}");
            assert!(head.contains("WWW-Authenticate: Bearer\r\n"), "{head}");
            assert_eq!(json["status"], "error");
            assert_eq!(json["code"], "unauthorized");
            assert!(!answer.contains(&key.read_token()), "{answer}");
        }
        // A board without a key refuses everyone.
        let keyless = Board::new("hall", "w1");
        assert!(get(&keyless, Some(&format!("Bearer {}", key.read_token()))).contains(" 401 "));
        Ok(())
    }

    #[test]
    fn other_paths_and_methods_are_refused() -> anyhow::Result<()> {
        let (key, board) = hall()?;
        let auth = format!("Authorization: Bearer {}\r\n", key.read_token());
        let ask =
            |line: &str| crate::status::respond(format!("{line}\r\n{auth}\r\n").as_bytes(), &board);
        assert!(ask("GET /v1/readings/x HTTP/1.1").starts_with("HTTP/1.1 404 "));
        assert!(ask("GET /v1/reading HTTP/1.1").starts_with("HTTP/1.1 404 "));
        let post = ask("POST /v1/readings HTTP/1.1");
        assert!(post.starts_with("HTTP/1.1 405 ") && post.contains("Allow: GET\r\n"), "{post}");
        assert!(ask("GET /v1/readings?x=1 HTTP/1.1").starts_with("HTTP/1.1 200 "));
        Ok(())
    }
}
