//! What the control algorithms learned by watching the house (`control::Watched`: the coast
//! after each switch of the heat, and the room's rise and fall in each cycle), kept across
//! restarts in the `settings` row `learned`, so a restarted engine decides with it at once
//! instead of relearning for days. The heating rate needs no row of its own: it is learned from
//! the stored runs.
//!
//! It is a cache of observations, not anyone's choice: a stored model this engine cannot read
//! (another format version, a value out of bounds) is logged and ignored, and learned again.

use hearth_proto::Timestamp;

use super::{Store, format};
use crate::control::{CoastWatch, Watched};

/// The `settings` row that holds it.
const KEY: &str = "learned";
/// The stored form's version (`format::encode`). A change of `Watched` is a new version; an
/// older row is then ignored and learned again (no migration: nothing is lost but a few days of
/// watching). Version 2 added the rise and fall in a cycle.
const LEARNED_V: u64 = 2;

impl Store {
    /// Store what the coast watch learned (replacing what was stored).
    pub(crate) async fn save_learned(&self, watched: &Watched) -> Result<(), sqlx::Error> {
        let value =
            format::encode(LEARNED_V, watched).map_err(|e| sqlx::Error::Encode(e.into()))?;
        self.put_setting(KEY, &value).await
    }

    /// The coast watch as stored, checked against `now` (`CoastWatch::restore`); a fresh one
    /// when nothing was stored or what was stored is not to be trusted.
    pub(crate) async fn load_learned(&self, now: Timestamp) -> Result<CoastWatch, sqlx::Error> {
        let Some(value) = self.setting(KEY).await? else { return Ok(CoastWatch::default()) };
        let restored = format::decode::<Watched>(LEARNED_V, &value)
            .and_then(|w| CoastWatch::restore(&w, now).ok_or_else(|| "out of bounds".to_owned()));
        Ok(restored.unwrap_or_else(|why| {
            tracing::warn!(%why, "the stored learned model is ignored; it is learned again");
            CoastWatch::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::control::{Mode, ReasonCode};

    use super::*;
    use crate::control::tests::{NOW, at, segment};
    use crate::control::{Equipment, Inputs, Learned, Running, SensorSnapshot, Settings, decide};
    use crate::store::db::Backend;
    use crate::store::testing::new_database;

    /// Four heating cycles watched, minute by minute: the room coasts 0.4 °C on after each
    /// switch-off and falls 0.1 °C more after each switch-on. Ends at NOW.
    fn watched() -> CoastWatch {
        let mut w = CoastWatch::default();
        let on = [20.1, 20.05, 20.0, 20.1, 20.3, 20.5];
        let off = [20.6, 20.8, 21.0, 20.9, 20.8, 20.5, 20.3];
        let mut t = NOW - jiff::SignedDuration::from_mins(4 * 13);
        for _ in 0..4 {
            for (heat, temps) in [(true, &on[..]), (false, &off[..])] {
                for v in temps {
                    w.observe(t, heat, Some(*v));
                    t += jiff::SignedDuration::from_mins(1);
                }
            }
        }
        w
    }

    /// The heat, on for an hour, at 20.78 °C under a 20.5 °C setpoint, with what was learned.
    fn decision(watch: &CoastWatch) -> (bool, ReasonCode) {
        let learned = Learned { heat_coast: watch.coast(NOW), ..Learned::default() };
        let settings = Settings {
            mode: Mode::Heat,
            algorithm: "anticipate".to_owned(),
            ..Settings::default()
        };
        let sensors = [SensorSnapshot {
            id: "28-1".to_owned(),
            name: Some("living room".to_owned()),
            value: Some(20.78),
            at: Some(NOW),
            value_since: None,
            weight: 1.0,
            offset_c: 0.0,
        }];
        let since = Some(at(-3600));
        let d = decide(&Inputs {
            now: NOW,
            settings: &settings,
            segments: &[segment(at(-3600), at(24 * 3600), 20.5, 25.0)],
            sensors: &sensors,
            stale_after: jiff::SignedDuration::from_secs(120),
            equipment: Equipment {
                heat: Running { on: true, since, ran_until: None },
                cool: Running::OFF_UNKNOWN,
            },
            learned: &learned,
            runs: &[],
        });
        (d.heat, d.reason_code)
    }

    /// What the engine watched before it stopped is what it decides with after a restart (a
    /// new store on the same database); a stored model it cannot trust is not used.
    async fn a_restarted_engine_decides_with_what_it_learned(
        backend: Backend,
    ) -> anyhow::Result<()> {
        let (url, _kept) = new_database(backend)?;
        let before = watched();
        // Learned: the heat stops early for the coast; knowing nothing it would run on.
        assert_eq!(decision(&before), (false, ReasonCode::HeatCoast));
        assert_eq!(decision(&CoastWatch::default()), (true, ReasonCode::HeatInBand));
        {
            let store = Store::open(&url).await?;
            assert!(store.load_learned(NOW).await?.coast(NOW).is_none(), "nothing stored yet");
            store.save_learned(&before.watched()).await?;
        }
        let store = Store::open(&url).await?;
        let after = store.load_learned(NOW).await?;
        assert_eq!(after.coast(NOW), before.coast(NOW));
        assert_eq!(decision(&after), (false, ReasonCode::HeatCoast));
        // Nonsense (an older format, a coast out of bounds, not JSON) is ignored, not trusted.
        let good = format::encode(LEARNED_V, &before.watched())?;
        let older = good.replacen(&format!("\"v\":{LEARNED_V}"), "\"v\":1", 1);
        // What was learned, but one peak 40 °C past its switch-off.
        let mut beyond: serde_json::Value = serde_json::from_str(&good)?;
        beyond["ups"][0]["past_c"] = 40.0.into();
        let beyond = beyond.to_string();
        for stored in [older, beyond, "{".to_owned()] {
            store.put_setting(KEY, &stored).await?;
            let ignored = Store::open(&url).await?.load_learned(NOW).await?;
            assert_eq!(ignored.coast(NOW), None, "{stored} was trusted");
            assert_eq!(decision(&ignored), (true, ReasonCode::HeatInBand));
        }
        Ok(())
    }

    #[tokio::test]
    async fn a_restarted_engine_decides_with_what_it_learned_sqlite() -> anyhow::Result<()> {
        a_restarted_engine_decides_with_what_it_learned(Backend::Sqlite).await
    }

    #[tokio::test]
    async fn a_restarted_engine_decides_with_what_it_learned_postgres() -> anyhow::Result<()> {
        a_restarted_engine_decides_with_what_it_learned(Backend::Postgres).await
    }
}
