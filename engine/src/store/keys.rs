//! Sensor keys: the small integer that stands for a sensor's id in the readings and rollup
//! tables (`sensor_keys`, migration 0017).
//!
//! A key never changes once committed, so this process keeps every key it has seen; a write
//! batch looks the table up only for sensors it has not (the first reading of a sensor since
//! the engine started), and hands out the next keys for sensors the table does not hold yet.
//! Keys handed out in a transaction are remembered only once it committed ([`Keys::learned`]):
//! one rolled back may leave its keys to other sensors. The writer holds the store's write
//! lock, so two batches never hand out the same key (one site's engine writes its tables).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use sqlx::QueryBuilder;

use super::INSERT_CHUNK;
use super::db::{WriteTx, on_conn};

/// See the module documentation.
#[derive(Debug, Default)]
pub(super) struct Keys {
    known: Mutex<HashMap<String, i64>>,
}

/// The keys of a batch's sensors.
#[derive(Debug, Default)]
pub(super) struct Resolved<'a> {
    pub(super) keys: HashMap<&'a str, i64>,
    /// Keys this process did not know before the batch (remembered once it commits).
    new: Vec<(&'a str, i64)>,
}

impl Keys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // The map is only ever extended with committed keys: what it holds stays true.
        self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The keys of `ids` this process knows, and the ids it does not (each once).
    fn in_memory<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> (Resolved<'a>, Vec<&'a str>) {
        let known = self.lock();
        let mut resolved = Resolved::default();
        let mut missing: Vec<&'a str> = Vec::new();
        for id in ids {
            if resolved.keys.contains_key(id) {
                continue;
            }
            match known.get(id) {
                Some(&key) => {
                    resolved.keys.insert(id, key);
                }
                None => missing.push(id),
            }
        }
        (resolved, missing)
    }

    /// The keys of `ids` when this process knows them all (no statement needed), else `None`.
    pub(super) fn known<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> Option<Resolved<'a>> {
        let (resolved, missing) = self.in_memory(ids);
        missing.is_empty().then_some(resolved)
    }

    /// The keys of `ids`, in the caller's transaction: from memory, else from the table, else
    /// new rows of it.
    pub(super) async fn resolve<'a>(
        &self,
        tx: &mut WriteTx,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<Resolved<'a>, sqlx::Error> {
        let (mut resolved, mut missing) = self.in_memory(ids);
        if missing.is_empty() {
            return Ok(resolved);
        }
        missing.sort_unstable();
        missing.dedup();
        for chunk in missing.chunks(INSERT_CHUNK) {
            // The chunk's own strings, found by the table's: a scan of the chunk per row
            // would be a million comparisons for the first batch of a thousand sensors.
            let asked: HashSet<&'a str> = chunk.iter().copied().collect();
            let rows: Vec<(String, i64)> = on_conn!(tx.conn()?, |c| {
                let mut q = QueryBuilder::new(
                    "SELECT sensor_id, key FROM sensor_keys WHERE sensor_id IN (",
                );
                let mut list = q.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as().persistent(false).fetch_all(c).await
            })?;
            for (id, key) in rows {
                if let Some(&id) = asked.get(id.as_str()) {
                    resolved.keys.insert(id, key);
                    resolved.new.push((id, key));
                }
            }
        }
        let absent: Vec<&'a str> =
            missing.into_iter().filter(|id| !resolved.keys.contains_key(id)).collect();
        if absent.is_empty() {
            return Ok(resolved);
        }
        let max: Option<i64> =
            on_conn!(tx.conn()?, |c| sqlx::query_scalar("SELECT MAX(key) FROM sensor_keys")
                .fetch_one(c)
                .await)?;
        let first = max.unwrap_or(0) + 1;
        let rows: Vec<(&'a str, i64)> =
            absent.iter().enumerate().map(|(i, id)| (*id, first + i as i64)).collect();
        for chunk in rows.chunks(INSERT_CHUNK) {
            on_conn!(tx.conn()?, |c| {
                let mut q = QueryBuilder::new("INSERT INTO sensor_keys (key, sensor_id) ");
                q.push_values(chunk, |mut b, (id, key)| {
                    b.push_bind(*key).push_bind(*id);
                });
                q.build().persistent(false).execute(c).await.map(|r| r.rows_affected())
            })?;
        }
        for (id, key) in rows {
            resolved.keys.insert(id, key);
            resolved.new.push((id, key));
        }
        Ok(resolved)
    }

    /// A write failed: read the keys from the table again (the database may not be the one
    /// they were read from: a restored file).
    pub(super) fn forget(&self) {
        self.lock().clear();
    }

    /// The transaction of `resolved` committed: its new keys exist.
    pub(super) fn learned(&self, resolved: &Resolved<'_>) {
        if resolved.new.is_empty() {
            return;
        }
        let mut known = self.lock();
        for (id, key) in &resolved.new {
            known.insert((*id).to_owned(), *key);
        }
    }
}
