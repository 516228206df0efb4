//! What the engine holds in memory so that control never depends on the database answering:
//! the newest reading of every sensor (stored or not: during a storage fault ingest refuses to
//! acknowledge readings, but they are still the freshest truth about the house), the relay
//! outputs as their agents last reported them, and the last rows read from the database.
//!
//! [`super::Store::sensors`] and [`super::Store::relays`] serve the database's rows with these
//! laid over them (the newer of the two wins, row by row), and the last rows read when the
//! database does not answer. So the control loop sees one consistent, monotonic view through a
//! fault: never a fresh reading on one pass and a stale one on the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use hearth_proto::relays::OutputStatus;

use super::{NewReport, Registration, RelayEpoch, RelayRow, SensorRow};

/// The newest reading of one sensor, with the description it came with.
#[derive(Debug, Clone)]
struct HeldReading {
    host_id: String,
    kind: String,
    alias: Option<String>,
    extra: Option<String>,
    ts: i64,
    value: Option<f64>,
    /// Since when the held value has been the same (as `value_since` in the database).
    since: i64,
}

#[derive(Debug, Default)]
struct State {
    readings: HashMap<String, HeldReading>,
    /// By (host, output): registrations and command answers, as rows.
    relays: BTreeMap<(String, String), RelayRow>,
    /// By relay agent: how many of its registrations were stored since the engine started
    /// (see [`RelayEpoch`]).
    registrations: HashMap<String, u64>,
    sensors_read: Option<Vec<SensorRow>>,
    relays_read: Option<Vec<RelayRow>>,
}

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Held {
    state: Mutex<State>,
}

impl Held {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing in here can be left half-updated by a panic that matters more than control
        // going on: keep using the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hold a report's readings (before it is stored, or when it cannot be). A reading replaces
    /// the held one when it is at least as new, as in the database, by the time it competes to
    /// be its sensor's latest at (`latest_at`: never after its receipt, so a reading stamped
    /// ahead must not stay "latest" past the moment it claims); one that may never be the latest
    /// (misdated) is not held.
    pub(super) fn readings(&self, report: &NewReport) {
        let mut state = self.lock();
        for r in &report.readings {
            let Some(ts) = r.latest_at else { continue };
            match state.readings.get_mut(&r.sensor_id) {
                // In place: a sensor reports the same description every time, and `clone_from`
                // reuses the strings already held (this runs for every reading ingested).
                Some(held) if ts >= held.ts => {
                    if held.value != r.value {
                        held.since = ts;
                    }
                    held.host_id.clone_from(&report.host_id);
                    held.kind.clone_from(&r.kind);
                    held.alias.clone_from(&r.alias);
                    held.extra.clone_from(&r.extra);
                    held.ts = ts;
                    held.value = r.value;
                }
                Some(_) => {}
                None => {
                    let held = HeldReading {
                        host_id: report.host_id.clone(),
                        kind: r.kind.clone(),
                        alias: r.alias.clone(),
                        extra: r.extra.clone(),
                        ts,
                        value: r.value,
                        since: ts,
                    };
                    state.readings.insert(r.sensor_id.clone(), held);
                }
            }
        }
    }

    /// Whether the database's sensors and relays were read at least once.
    pub(super) fn has_read(&self) -> bool {
        let state = self.lock();
        state.sensors_read.is_some() && state.relays_read.is_some()
    }

    /// The sensors: the database's rows (`read`; the last ones read when it was not read or
    /// failed) with the held readings laid over them. Fails only when nothing at all is known.
    pub(super) fn sensors(
        &self,
        read: Option<Result<Vec<SensorRow>, sqlx::Error>>,
    ) -> Result<Vec<SensorRow>, sqlx::Error> {
        let mut state = self.lock();
        let holds_any = !state.readings.is_empty();
        let mut rows = last_read(&mut state.sensors_read, read, holds_any)?;
        let mut seen = std::collections::HashSet::new();
        for row in &mut rows {
            seen.insert(row.id.clone());
            if let Some(h) = state.readings.get(&row.id)
                && row.last_ts.is_none_or(|ts| h.ts >= ts)
            {
                row.host_id.clone_from(&h.host_id);
                row.kind.clone_from(&h.kind);
                row.alias.clone_from(&h.alias);
                row.extra.clone_from(&h.extra);
                if row.last_value != h.value || row.value_since.is_none() {
                    row.value_since = Some(h.since);
                }
                row.last_ts = Some(h.ts);
                row.last_value = h.value;
            }
        }
        for (id, h) in &state.readings {
            if !seen.contains(id) {
                rows.push(SensorRow {
                    id: id.clone(),
                    host_id: h.host_id.clone(),
                    kind: h.kind.clone(),
                    alias: h.alias.clone(),
                    extra: h.extra.clone(),
                    last_ts: Some(h.ts),
                    last_value: h.value,
                    value_since: Some(h.since),
                    name: None,
                    // The database's defaults for a new sensor.
                    weight: 1.0,
                    offset_c: 0.0,
                });
            }
        }
        rows.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(rows)
    }

    /// The epoch of relay agent `host_id` now: taken before a call to it is sent.
    pub(super) fn relay_epoch(&self, host_id: &str) -> RelayEpoch {
        RelayEpoch(self.lock().registrations.get(host_id).copied().unwrap_or(0))
    }

    /// A relay agent registered: its outputs replace what was held for it, and it enters a new
    /// epoch (answers to calls sent before are not recorded).
    pub(super) fn registration(&self, reg: &Registration<'_>) {
        let Registration { host_id, url, backend, outputs, now, key_role, .. } = *reg;
        let mut state = self.lock();
        *state.registrations.entry(host_id.to_owned()).or_default() += 1;
        let known = |state: &State, output: &str| -> Option<RelayRow> {
            let key = (host_id.to_owned(), output.to_owned());
            state.relays.get(&key).cloned().or_else(|| {
                state.relays_read.as_ref().and_then(|rows| {
                    rows.iter().find(|r| r.host_id == host_id && r.output_id == output).cloned()
                })
            })
        };
        let rows: Vec<RelayRow> = outputs
            .iter()
            .map(|o| {
                let before = known(&state, &o.id);
                RelayRow {
                    host_id: host_id.to_owned(),
                    output_id: o.id.clone(),
                    name: o.name.clone(),
                    url: Some(url.to_owned()),
                    function: before.as_ref().and_then(|r| r.function),
                    function_hint: o.function_hint,
                    state: o.state,
                    updated: now,
                    status: Some(o.clone()),
                    command_error: before.as_ref().and_then(|r| r.command_error.clone()),
                    backend: backend.map(str::to_owned),
                    // Registration says nothing of whether the engine reaches the agent.
                    unreachable_since: before.and_then(|r| r.unreachable_since),
                    key_role: Some(key_role),
                }
            })
            .collect();
        state.relays.retain(|(host, _), _| host != host_id);
        for row in rows {
            state.relays.insert((row.host_id.clone(), row.output_id.clone()), row);
        }
    }

    /// What an agent answered about one output (a command's answer, or a read) to a call sent
    /// in epoch `sent`. False, and nothing changed, when the agent registered since.
    pub(super) fn relay_status(
        &self,
        host_id: &str,
        status: &OutputStatus,
        command_done: bool,
        now: i64,
        sent: RelayEpoch,
    ) -> bool {
        self.update_relay(host_id, &status.id, sent, |row| {
            row.state = status.state;
            row.updated = now;
            row.status = Some(status.clone());
            if command_done {
                row.command_error = None;
            }
        })
    }

    /// An agent refused a command on one output, sent in epoch `sent`. False, and nothing
    /// changed, when the agent registered since.
    pub(super) fn relay_refusal(
        &self,
        host_id: &str,
        output_id: &str,
        error: &str,
        sent: RelayEpoch,
    ) -> bool {
        self.update_relay(host_id, output_id, sent, |row| {
            row.command_error = Some(error.to_owned());
        })
    }

    /// Apply an answer to a call sent in epoch `sent`, unless the agent registered since (then
    /// false). Checked and applied under one lock, so no registration slips in between.
    fn update_relay(
        &self,
        host_id: &str,
        output_id: &str,
        sent: RelayEpoch,
        change: impl FnOnce(&mut RelayRow),
    ) -> bool {
        let mut state = self.lock();
        if state.registrations.get(host_id).copied().unwrap_or(0) != sent.0 {
            return false;
        }
        let key = (host_id.to_owned(), output_id.to_owned());
        let base = state.relays.get(&key).cloned().or_else(|| {
            state.relays_read.as_ref().and_then(|rows| {
                rows.iter().find(|r| r.host_id == host_id && r.output_id == output_id).cloned()
            })
        });
        // An output nobody registered is not invented here; the database decides about it.
        if let Some(mut row) = base {
            change(&mut row);
            state.relays.insert(key, row);
        }
        true
    }

    /// How the engine's last call to a relay agent went: every held output of the agent is
    /// reachable or not from then on (as `agents.unreachable_since` in the database).
    pub(super) fn relay_contact(&self, host_id: &str, contact: super::Contact<'_>, now: i64) {
        let mut state = self.lock();
        for row in state.relays.values_mut().filter(|r| r.host_id == host_id) {
            row.unreachable_since = match contact {
                super::Contact::NoAnswer(_) => Some(row.unreachable_since.unwrap_or(now)),
                super::Contact::Answered | super::Contact::Failed(_) => None,
            };
        }
    }

    /// An output's engine-side function was assigned (and stored).
    pub(super) fn relay_function(
        &self,
        host_id: &str,
        output_id: &str,
        function: Option<hearth_proto::relays::RelayFunction>,
    ) {
        let mut state = self.lock();
        if let Some(row) = state.relays.get_mut(&(host_id.to_owned(), output_id.to_owned())) {
            row.function = function;
        }
    }

    /// The relay outputs: the database's rows (`read`; the last ones read when it was not read
    /// or failed) with the held reports laid over them. Fails only when nothing at all is
    /// known.
    pub(super) fn relays(
        &self,
        read: Option<Result<Vec<RelayRow>, sqlx::Error>>,
    ) -> Result<Vec<RelayRow>, sqlx::Error> {
        let mut state = self.lock();
        let holds_any = !state.relays.is_empty();
        let mut rows = last_read(&mut state.relays_read, read, holds_any)?;
        for row in &mut rows {
            let key = (row.host_id.clone(), row.output_id.clone());
            if let Some(held) = state.relays.get(&key)
                && held.updated >= row.updated
            {
                // The function is assigned by people through the database; the rest is what
                // the agent said last.
                let function = row.function;
                let url = held.url.clone().or(row.url.take());
                *row = RelayRow { function, url, ..held.clone() };
            }
        }
        for (key, held) in &state.relays {
            if !rows.iter().any(|r| r.host_id == key.0 && r.output_id == key.1) {
                rows.push(held.clone());
            }
        }
        rows.sort_by(|a, b| (&a.host_id, &a.output_id).cmp(&(&b.host_id, &b.output_id)));
        Ok(rows)
    }
}

/// The database's rows to lay held state over: `read` when it worked (and remembered in
/// `last`), else the last rows read; with none ever read, nothing when something is held (it
/// is laid over an empty list) and the error when nothing at all is known.
fn last_read<T: Clone>(
    last: &mut Option<Vec<T>>,
    read: Option<Result<Vec<T>, sqlx::Error>>,
    holds_any: bool,
) -> Result<Vec<T>, sqlx::Error> {
    match read {
        Some(Ok(rows)) => {
            *last = Some(rows.clone());
            Ok(rows)
        }
        None => Ok(last.clone().unwrap_or_default()),
        Some(Err(e)) => match last {
            Some(rows) => Ok(rows.clone()),
            None if holds_any => Ok(Vec::new()),
            None => Err(e),
        },
    }
}
