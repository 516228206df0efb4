//! The house as configured, live: its zones and plants and each zone's control settings,
//! owned here and shared like the schedule (`store::Schedules`): the database is the truth,
//! [`Zones`] holds the copy the loop and the API read, and every change is written to the
//! database first, then published.
//!
//! An installation from before zones opens as one zone ([`DEFAULT_ZONE`]) holding every
//! sensor, served by one plant whose relays are the function groups `function:heat` and
//! `function:cool`: exactly the outputs today's engine commands.

use std::sync::Arc;

use hearth_common::sse::EventBus;
use hearth_proto::events::Topic;
use hearth_proto::relays::RelayFunction;
use tokio::sync::watch;

use super::{House, PlantConfig, PlantId, PlantKind, RelayId, ZoneConfig, ZoneId, ZoneOutputs};
use crate::control::{self, SensorSnapshot, Settings};
use crate::store::Store;

/// The zone every installation has: the one an installation from before zones opens as, and
/// the one the single-zone routes (no `zone` given) mean.
pub(crate) const DEFAULT_ZONE: &str = "house";

/// The plant an installation from before zones opens with.
pub(crate) const DEFAULT_PLANT: &str = "house";

impl ZoneId {
    pub(crate) fn default_zone() -> Self {
        Self::from(DEFAULT_ZONE)
    }

    pub(crate) fn is_default(&self) -> bool {
        self.0 == DEFAULT_ZONE
    }
}

impl RelayId {
    const GROUP: &'static str = "function:";

    /// Every registered output of `function` that no zone or other plant names: how the
    /// engine picked its outputs before zones, kept for the default plant.
    pub(crate) fn group(function: RelayFunction) -> Self {
        Self(format!("{}{}", Self::GROUP, group_name(function)))
    }

    /// The function a group id stands for; None for one output (`host/output`).
    pub(crate) fn as_group(&self) -> Option<RelayFunction> {
        let name = self.0.strip_prefix(Self::GROUP)?;
        FUNCTIONS.into_iter().find(|f| group_name(*f) == name)
    }

    /// The id of one registered output.
    pub(crate) fn output(host_id: &str, output_id: &str) -> Self {
        Self(format!("{host_id}/{output_id}"))
    }
}

const FUNCTIONS: [RelayFunction; 5] = [
    RelayFunction::Heat,
    RelayFunction::Cool,
    RelayFunction::Fan,
    RelayFunction::Aux,
    RelayFunction::Valve,
];

/// A function as its group id names it (its wire name).
fn group_name(function: RelayFunction) -> &'static str {
    match function {
        RelayFunction::Heat => "heat",
        RelayFunction::Cool => "cool",
        RelayFunction::Fan => "fan",
        RelayFunction::Aux => "aux",
        RelayFunction::Valve => "valve",
    }
}

/// The house an installation from before zones opens as: one zone with every sensor and the
/// stored settings, one plant on the heat and cool function groups protected by the
/// settings' times (as the settings protected the equipment before zones).
pub(crate) fn default_house(settings: &Settings) -> House {
    let zone = ZoneId::default_zone();
    House {
        zones: vec![ZoneConfig {
            id: zone.clone(),
            name: "House".to_owned(),
            sensors: Vec::new(),
            settings: settings.clone(),
            outputs: ZoneOutputs::default(),
        }],
        plants: vec![PlantConfig {
            id: PlantId::from(DEFAULT_PLANT),
            name: "Heating and cooling".to_owned(),
            kind: PlantKind::HeatCool,
            heat_relay: Some(RelayId::group(RelayFunction::Heat)),
            cool_relay: Some(RelayId::group(RelayFunction::Cool)),
            min_on_s: settings.min_on_s,
            min_off_s: settings.min_off_s,
            changeover_s: settings.changeover_s,
            max_run_s: None,
            zones: vec![zone],
            valve_delay_s: 0,
            overrun_s: 0,
            min_calling_zones: 1,
            bypass_zone: None,
        }],
    }
}

/// The configured house, shared.
#[derive(Debug)]
pub(crate) struct Zones {
    store: Store,
    events: EventBus,
    current: watch::Sender<Arc<House>>,
}

impl Zones {
    /// Read the house from the database. When it cannot be read (a start on a damaged card),
    /// the default zone stands in, in mode off (see [`load_settings`]), until [`Self::reload`]
    /// succeeds.
    pub(crate) async fn load(store: Store, events: EventBus) -> anyhow::Result<Self> {
        let settings = load_settings(&store).await?;
        let (current, _) = watch::channel(Arc::new(default_house(&settings)));
        Ok(Self { store, events, current })
    }

    /// The house as stored: the default zone names only the sensors assigned to it explicitly.
    pub(crate) fn stored(&self) -> Arc<House> {
        self.current.borrow().clone()
    }

    /// Put a house in force as it is, unchecked and unstored (tests of the loop).
    #[cfg(test)]
    pub(crate) fn replace(&self, house: House) {
        self.current.send_replace(Arc::new(house));
    }

    /// Changes of the house, as new copies.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<House>> {
        self.current.subscribe()
    }

    /// The house to decide with: the default zone also holds every known sensor no other zone
    /// names.
    pub(crate) fn house(&self, sensors: &[SensorSnapshot]) -> House {
        let mut house = (*self.stored()).clone();
        let named: Vec<String> = house
            .zones
            .iter()
            .filter(|z| !z.id.is_default())
            .flat_map(|z| z.sensors.iter().map(|s| s.to_ascii_lowercase()))
            .collect();
        if let Some(zone) = house.zones.iter_mut().find(|z| z.id.is_default()) {
            for s in sensors {
                let id = s.id.to_ascii_lowercase();
                if !named.contains(&id) && !zone.sensors.iter().any(|z| z.eq_ignore_ascii_case(&id))
                {
                    zone.sensors.push(s.id.clone());
                }
            }
        }
        house
    }

    /// A zone's control settings; None for a zone that does not exist.
    pub(crate) fn settings(&self, zone: &ZoneId) -> Option<Settings> {
        self.stored().zone(zone).map(|z| z.settings.clone())
    }

    /// The default zone's control settings: what the single-zone routes show and set.
    pub(crate) fn default_settings(&self) -> Settings {
        self.settings(&ZoneId::default_zone()).unwrap_or_default()
    }

    /// Store a zone's new (checked) settings, then publish the house. For the default zone the
    /// default plant's protection times follow the settings' (as before zones).
    pub(crate) async fn set_settings(
        &self,
        zone: &ZoneId,
        settings: Settings,
    ) -> Result<bool, sqlx::Error> {
        let mut house = (*self.stored()).clone();
        let Some(z) = house.zones.iter_mut().find(|z| &z.id == zone) else { return Ok(false) };
        if zone.is_default() {
            self.store.save_settings(&settings).await?;
            if let Some(p) = house.plants.iter_mut().find(|p| p.id.0 == DEFAULT_PLANT) {
                p.min_on_s = settings.min_on_s;
                p.min_off_s = settings.min_off_s;
                p.changeover_s = settings.changeover_s;
            }
        }
        z.settings = settings;
        self.current.send_replace(Arc::new(house));
        self.events.changed(Topic::Settings);
        Ok(true)
    }

    /// Read the house again (the database came back after a storage fault).
    pub(crate) async fn reload(&self) {
        match load_settings(&self.store).await {
            Ok(settings) => {
                if self.default_settings() != settings {
                    tracing::info!("control settings read again from the database");
                    self.current.send_replace(Arc::new(default_house(&settings)));
                    self.events.changed(Topic::Settings);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the control settings again"),
        }
    }
}

/// The stored settings. Settings that no longer pass the checks (a removed algorithm) give way
/// to the defaults rather than stopping the engine. Settings that cannot be read at all (the
/// database does not open, or they are stored in a format this engine does not read) give
/// mode off: the frost floor, the max ceiling and the sensor-loss duty still act, but nothing
/// heats or cools to a target nobody chose; saving settings (`PUT /v1/control/settings`)
/// replaces unreadable ones.
pub(crate) async fn load_settings(store: &Store) -> anyhow::Result<Settings> {
    let settings = match store.load_settings().await {
        Ok(Some(stored)) => control::check_settings(stored).map_err(|e| {
            tracing::warn!(error = %e, "stored control settings are not valid; using the defaults");
        }),
        Ok(None) => Err(()),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the control settings; mode off (frost \
                floor and max ceiling only) until they can be read or are saved again");
            return control::check_settings(Settings {
                mode: hearth_proto::control::Mode::Off,
                ..Settings::default()
            })
            .map_err(|e| anyhow::anyhow!("default control settings: {e}"));
        }
    };
    match settings {
        Ok(s) => Ok(s),
        // Checking the defaults fills in the default algorithm's parameters.
        Err(()) => control::check_settings(Settings::default())
            .map_err(|e| anyhow::anyhow!("default control settings: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::control::Mode;

    use super::*;

    /// Stored settings this engine cannot read leave the house in mode off (frost floor, max
    /// ceiling, sensor-loss duty), never the default settings nobody chose.
    #[tokio::test]
    async fn unreadable_settings_are_mode_off_not_the_defaults() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await?;
        let chosen = control::check_settings(Settings { mode: Mode::Auto, ..Settings::default() })
            .map_err(|e| anyhow::anyhow!(e))?;
        store.save_settings(&chosen).await?;
        assert_eq!(load_settings(&store).await?, chosen);
        // As a newer engine would have stored them.
        sqlx::query("UPDATE settings SET value = json_set(value, '$.v', 2) WHERE key = 'control'")
            .execute(&store.test_pool())
            .await?;
        assert_eq!(load_settings(&store).await?.mode, Mode::Off);
        Ok(())
    }

    #[test]
    fn function_groups_round_trip() {
        for f in [RelayFunction::Heat, RelayFunction::Cool, RelayFunction::Valve] {
            assert_eq!(RelayId::group(f).as_group(), Some(f));
        }
        assert_eq!(RelayId::output("demo-relay", "heat").as_group(), None);
        assert_eq!(RelayId::from("function:heater").as_group(), None);
    }
}
