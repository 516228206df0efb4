//! The house as configured, live: its zones and plants and each zone's control settings,
//! owned here and shared like the schedule (`store::Schedules`): the database is the truth,
//! [`Zones`] holds the copy the loop and the API read, and every change is written to the
//! database first, then published.
//!
//! An installation from before zones opens as one zone ([`DEFAULT_ZONE`]) holding every
//! sensor, served by one plant whose relays are the function groups `function:heat` and
//! `function:cool`: exactly the outputs today's engine commands.

use std::collections::HashSet;
use std::sync::Arc;

use hearth_common::sse::EventBus;
use hearth_proto::events::Topic;
use hearth_proto::relays::RelayFunction;
use tokio::sync::{Mutex, watch};

use super::check::{Problem, ProblemCode};
use super::{House, PlantConfig, PlantId, RelayId, ZoneConfig, ZoneId, ZoneOutputs, check_house};
use crate::control::{self, SensorSnapshot, Settings};
use crate::store::Store;
use crate::store::zones::{DeleteZone, StoredZone, ZoneContents};

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
        plants: PlantConfig::alone(
            PlantId::from(DEFAULT_PLANT),
            "Heating and cooling".to_owned(),
            (Some(RelayId::group(RelayFunction::Heat)), Some(RelayId::group(RelayFunction::Cool))),
            settings,
            zone,
        )
        .into_iter()
        .collect(),
    }
}

/// Why a change of the house was refused.
#[derive(Debug)]
pub(crate) enum ZoneError {
    /// No such zone or plant (the text names it).
    NotFound(String),
    /// The default zone cannot be deleted: the single-zone routes mean it.
    DefaultZone,
    /// The zone still holds rules or overrides and no zone to move them to was named.
    NotEmpty(ZoneContents),
    /// The resulting house cannot work: every problem, named.
    Problems(Vec<Problem>),
    /// The request contradicts itself (the text says how).
    Invalid(String),
    Storage(sqlx::Error),
}

impl std::fmt::Display for ZoneError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotFound(what) | Self::Invalid(what) => f.write_str(what),
            Self::DefaultZone => {
                write!(f, "zone \"{DEFAULT_ZONE}\" is the default zone and cannot be deleted")
            }
            Self::NotEmpty(held) => write!(
                f,
                "the zone still has {} rules and {} overrides: name a zone to move them to \
                 (move_to)",
                held.rules, held.overrides
            ),
            Self::Problems(problems) => {
                let all: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
                f.write_str(&all.join("; "))
            }
            Self::Storage(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ZoneError {}

impl From<sqlx::Error> for ZoneError {
    fn from(e: sqlx::Error) -> Self {
        Self::Storage(e)
    }
}

/// The house as `check_house` must see it: the default zone holds every sensor no other zone
/// names, so naming none is how it is meant (it is checked with its sensors resolved only at
/// decision time, as sensors come and go).
fn checkable(house: &House) -> House {
    let mut house = house.clone();
    for z in house.zones.iter_mut().filter(|z| z.id.is_default() && z.sensors.is_empty()) {
        z.sensors.push("(every sensor no other zone names)".to_owned());
    }
    house
}

fn check(house: &House) -> Result<(), ZoneError> {
    check_house(&checkable(house)).map_err(ZoneError::Problems)
}

/// The configured house, shared.
#[derive(Debug)]
pub(crate) struct Zones {
    store: Store,
    events: EventBus,
    current: watch::Sender<Arc<House>>,
    /// One change at a time: each is checked against the house the previous one left.
    writing: Mutex<()>,
}

impl Zones {
    /// Read the house from the database. When it cannot be read (a start on a damaged card),
    /// the default zone stands in, in mode off (see [`load_settings`]), until [`Self::reload`]
    /// succeeds.
    pub(crate) async fn load(store: Store, events: EventBus) -> anyhow::Result<Self> {
        let house = match read_house(&store).await {
            Ok(house) => house,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the zones and plants; the default \
                    zone stands in until the database answers");
                default_house(&load_settings(&store, &ZoneId::default_zone()).await?)
            }
        };
        let (current, _) = watch::channel(Arc::new(house));
        Ok(Self { store, events, current, writing: Mutex::new(()) })
    }

    /// The house as stored: the default zone names only the sensors assigned to it explicitly.
    pub(crate) fn stored(&self) -> Arc<House> {
        self.current.borrow().clone()
    }

    /// Changes of the house, as new copies.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<House>> {
        self.current.subscribe()
    }

    /// The house to decide with: the default zone also holds every known sensor no other zone
    /// names.
    pub(crate) fn house(&self, sensors: &[SensorSnapshot]) -> House {
        let mut house = (*self.stored()).clone();
        // Sets, not scans per sensor: this runs on every pass of the loop, and with a thousand
        // sensors the scans were the engine's hottest code (`cargo xtask bench ingest`).
        let named: HashSet<String> = house
            .zones
            .iter()
            .filter(|z| !z.id.is_default())
            .flat_map(|z| z.sensors.iter().map(|s| s.to_ascii_lowercase()))
            .collect();
        if let Some(zone) = house.zones.iter_mut().find(|z| z.id.is_default()) {
            let mut listed: HashSet<String> =
                zone.sensors.iter().map(|s| s.to_ascii_lowercase()).collect();
            for s in sensors {
                let id = s.id.to_ascii_lowercase();
                if !named.contains(&id) && listed.insert(id) {
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

    fn publish(&self, house: House, topic: Topic) {
        self.current.send_replace(Arc::new(house));
        self.events.changed(topic);
    }

    /// Store a zone's new (checked) settings, then publish the house; false for a zone that
    /// does not exist. For the default zone the default plant's protection times follow the
    /// settings' (as before zones), in the same transaction.
    pub(crate) async fn set_settings(
        &self,
        zone: &ZoneId,
        settings: Settings,
    ) -> Result<bool, sqlx::Error> {
        let _w = self.writing.lock().await;
        let mut house = (*self.stored()).clone();
        let Some(z) = house.zones.iter_mut().find(|z| &z.id == zone) else { return Ok(false) };
        z.settings = settings.clone();
        let mut plant = None;
        if zone.is_default()
            && let Some(p) = house.plants.iter_mut().find(|p| p.id.0 == DEFAULT_PLANT)
        {
            p.min_on_s = settings.min_on_s;
            p.min_off_s = settings.min_off_s;
            p.changeover_s = settings.changeover_s;
            plant = Some(p.clone());
        }
        self.store.save_zone_settings(zone, &settings, plant.as_ref()).await?;
        self.publish(house, Topic::Settings);
        Ok(true)
    }

    /// Create or replace a zone (its settings are kept; a new zone gets the default zone's
    /// settings and default target, no rules, and is served by the default zone's plants
    /// unless it has relays of its own). Nothing is written when the resulting house has a
    /// problem. True when created.
    pub(crate) async fn put_zone(
        &self,
        id: ZoneId,
        name: String,
        sensors: Vec<String>,
        outputs: ZoneOutputs,
    ) -> Result<bool, ZoneError> {
        let _w = self.writing.lock().await;
        let mut house = (*self.stored()).clone();
        let position = house.zones.iter().position(|z| z.id == id);
        let zone = match position {
            Some(i) => &mut house.zones[i],
            None => {
                let settings = house
                    .zone(&ZoneId::default_zone())
                    .map(|z| z.settings.clone())
                    .unwrap_or_default();
                house.zones.push(ZoneConfig {
                    id: id.clone(),
                    name: String::new(),
                    sensors: Vec::new(),
                    settings,
                    outputs: ZoneOutputs::default(),
                });
                let last = house.zones.len() - 1;
                &mut house.zones[last]
            }
        };
        zone.name = name;
        zone.sensors = sensors;
        zone.outputs = outputs;
        let zone = zone.clone();
        // A new zone is part of the house: unless it has equipment of its own or a plant
        // names it already, the plants serving the default zone serve it too (its valves keep
        // it apart), so that it can be created at all (a zone nothing serves is a problem,
        // and a plant cannot name a zone before it exists).
        let mut joined = Vec::new();
        let own = zone.outputs.heat_relay.is_some() || zone.outputs.cool_relay.is_some();
        if position.is_none() && !own && !house.plants.iter().any(|p| p.zones.contains(&id)) {
            for p in house.plants.iter_mut().filter(|p| p.zones.iter().any(ZoneId::is_default)) {
                p.zones.push(id.clone());
                joined.push(p.clone());
            }
        }
        check(&house)?;
        let stored = StoredZone {
            id: zone.id.clone(),
            name: zone.name.clone(),
            sensors: zone.sensors.clone(),
            outputs: zone.outputs.clone(),
        };
        let at = i64::try_from(position.unwrap_or(house.zones.len() - 1)).unwrap_or(i64::MAX);
        if position.is_some() {
            self.store.save_zone(&stored, at, &joined, None).await?;
        } else {
            let target = self.store.zone_default_target(&ZoneId::default_zone()).await?;
            self.store.save_zone(&stored, at, &joined, Some((&zone.settings, &target))).await?;
        }
        self.publish(house, Topic::Zones);
        Ok(position.is_none())
    }

    /// Delete a zone; the plants that served it no longer do. Its rules and overrides move to
    /// `move_to` in the same transaction; without one a zone holding any is refused
    /// ([`ZoneError::NotEmpty`]). A zone that still has valves is refused, with or without
    /// `move_to` ([`ProblemCode::ZoneHasValves`]). Nothing is written when the rest of the house
    /// has a problem (a plant that served only it, or bypasses through it).
    pub(crate) async fn delete_zone(
        &self,
        id: &ZoneId,
        move_to: Option<&ZoneId>,
    ) -> Result<(), ZoneError> {
        let _w = self.writing.lock().await;
        let mut house = (*self.stored()).clone();
        if id.is_default() {
            return Err(ZoneError::DefaultZone);
        }
        let Some(zone) = house.zone(id) else {
            return Err(ZoneError::NotFound(format!("zone {:?} does not exist", id.0)));
        };
        // Its valves would be left in no zone, never opened again (`move_to` moves rules and
        // overrides only): someone must say where they go first.
        let mut problems = Vec::new();
        if !zone.outputs.valves.is_empty() {
            let valves: Vec<String> = zone.outputs.valves.iter().map(ToString::to_string).collect();
            problems.push(Problem {
                code: ProblemCode::ZoneHasValves,
                message: format!(
                    "zone {} still has valves {}: move them to another zone or unassign them \
                     first: deleting a zone never moves its valves",
                    zone.name,
                    valves.join(", ")
                ),
            });
        }
        if let Some(to) = move_to {
            if to == id {
                return Err(ZoneError::Invalid(format!(
                    "move_to must name another zone than the one deleted, got {:?}",
                    to.0
                )));
            }
            if house.zone(to).is_none() {
                return Err(ZoneError::NotFound(format!("zone {:?} does not exist", to.0)));
            }
        }
        house.zones.retain(|z| &z.id != id);
        // The plants stop serving it (else it could never go: a zone must be served while it
        // exists); a plant left serving nothing, or bypassing through it, is a problem.
        let mut left = Vec::new();
        for p in house.plants.iter_mut().filter(|p| p.zones.contains(id)) {
            p.zones.retain(|z| z != id);
            left.push(p.clone());
        }
        // Every problem at once, as for any change of the house.
        if let Err(ZoneError::Problems(more)) = check(&house) {
            problems.extend(more);
        }
        if !problems.is_empty() {
            return Err(ZoneError::Problems(problems));
        }
        match self.store.delete_zone(id, move_to, &left).await {
            Ok(_) => {}
            Err(DeleteZone::NotEmpty(held)) => return Err(ZoneError::NotEmpty(held)),
            Err(DeleteZone::Storage(e)) => return Err(e.into()),
        }
        self.publish(house, Topic::Zones);
        Ok(())
    }

    /// Create or replace a plant. Nothing is written when the resulting house has a problem.
    /// True when created.
    pub(crate) async fn put_plant(&self, plant: PlantConfig) -> Result<bool, ZoneError> {
        let _w = self.writing.lock().await;
        let mut house = (*self.stored()).clone();
        let created = match house.plants.iter_mut().find(|p| p.id == plant.id) {
            Some(p) => {
                *p = plant.clone();
                false
            }
            None => {
                // In id order, as they are read back.
                let at = house.plants.partition_point(|p| p.id < plant.id);
                house.plants.insert(at, plant.clone());
                true
            }
        };
        check(&house)?;
        self.store.save_plant(&plant).await?;
        self.publish(house, Topic::Zones);
        Ok(created)
    }

    /// Delete a plant. Nothing is written when the rest of the house has a problem (a zone it
    /// served alone would be left unserved).
    pub(crate) async fn delete_plant(&self, id: &PlantId) -> Result<(), ZoneError> {
        let _w = self.writing.lock().await;
        let mut house = (*self.stored()).clone();
        if !house.plants.iter().any(|p| &p.id == id) {
            return Err(ZoneError::NotFound(format!("plant {:?} does not exist", id.0)));
        }
        house.plants.retain(|p| &p.id != id);
        check(&house)?;
        self.store.delete_plant(id).await?;
        self.publish(house, Topic::Zones);
        Ok(())
    }

    /// Read the house again (the database came back after a storage fault).
    pub(crate) async fn reload(&self) {
        let _w = self.writing.lock().await;
        match read_house(&self.store).await {
            Ok(house) => {
                if *self.stored() != house {
                    tracing::info!(
                        "zones, plants and control settings read again from the database"
                    );
                    self.publish(house, Topic::Zones);
                    self.events.changed(Topic::Settings);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the zones and plants again"),
        }
    }
}

/// The house as stored, each zone with its settings ([`load_settings`]). The default zone is
/// always there: when its row does not read (reported), it stands in as at the upgrade.
async fn read_house(store: &Store) -> anyhow::Result<House> {
    let stored = store.stored_house().await?;
    let mut zones = Vec::with_capacity(stored.zones.len() + 1);
    for z in stored.zones {
        let settings = load_settings(store, &z.id).await?;
        zones.push(ZoneConfig {
            id: z.id,
            name: z.name,
            sensors: z.sensors,
            settings,
            outputs: z.outputs,
        });
    }
    if !zones.iter().any(|z| z.id.is_default()) {
        let settings = load_settings(store, &ZoneId::default_zone()).await?;
        zones.insert(0, default_house(&settings).zones.remove(0));
    }
    Ok(House { zones, plants: stored.plants })
}

/// A zone's stored settings. Settings that no longer pass the checks (a removed algorithm) give way
/// to the defaults rather than stopping the engine. Settings that cannot be read at all (the
/// database does not open, or they are stored in a format this engine does not read) give
/// mode off: the frost floor, the max ceiling and the sensor-loss duty still act, but nothing
/// heats or cools to a target nobody chose; saving settings (`PUT /v1/control/settings`)
/// replaces unreadable ones.
pub(crate) async fn load_settings(store: &Store, zone: &ZoneId) -> anyhow::Result<Settings> {
    let settings = match store.zone_settings(zone).await {
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
    use crate::zones::PlantKind;

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
        assert_eq!(load_settings(&store, &ZoneId::default_zone()).await?, chosen);
        // As a newer engine would have stored them.
        sqlx::query("UPDATE settings SET value = json_set(value, '$.v', 2) WHERE key = 'control'")
            .execute(&store.test_sqlite_pool()?)
            .await?;
        assert_eq!(load_settings(&store, &ZoneId::default_zone()).await?.mode, Mode::Off);
        Ok(())
    }

    fn zone(
        id: &str,
        sensors: &[&str],
        valves: &[&str],
    ) -> (ZoneId, String, Vec<String>, ZoneOutputs) {
        (
            ZoneId::from(id),
            id.to_uppercase(),
            sensors.iter().map(|s| (*s).to_owned()).collect(),
            ZoneOutputs {
                valves: valves.iter().map(|v| RelayId::from(*v)).collect(),
                ..ZoneOutputs::default()
            },
        )
    }

    async fn put(
        zones: &Zones,
        z: (ZoneId, String, Vec<String>, ZoneOutputs),
    ) -> Result<bool, ZoneError> {
        zones.put_zone(z.0, z.1, z.2, z.3).await
    }

    fn boiler(serving: &[&str]) -> PlantConfig {
        PlantConfig {
            id: PlantId::from("boiler"),
            name: "Boiler".to_owned(),
            kind: PlantKind::Heat,
            heat_relay: Some(RelayId::from("r/boiler")),
            cool_relay: None,
            min_on_s: 180,
            min_off_s: 300,
            changeover_s: 600,
            max_run_s: None,
            zones: serving.iter().map(|z| ZoneId::from(*z)).collect(),
            valve_delay_s: 60,
            overrun_s: 120,
            min_calling_zones: 1,
            bypass_zone: None,
        }
    }

    /// The migration opens every database as the default zone and plant; zones and plants
    /// written are read back whole by a fresh load; a change whose house has a problem writes
    /// nothing; a zone holding rules is deleted only with somewhere to move them.
    #[tokio::test]
    async fn the_house_is_stored_checked_and_read_back() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await?;
        let zones = Zones::load(store.clone(), EventBus::new(16)).await?;
        let settings = load_settings(&store, &ZoneId::default_zone()).await?;
        assert_eq!(*zones.stored(), default_house(&settings));

        assert!(put(&zones, zone("bedroom", &["28-b1"], &["r/v2"])).await?);
        assert!(put(&zones, zone("living", &["28-a1"], &["r/v1"])).await?);
        assert!(!put(&zones, zone("living", &["28-a1", "28-a2"], &["r/v1"])).await?);
        let default_plant = zones.stored().plants.iter().find(|p| p.id.0 == DEFAULT_PLANT).cloned();
        let served: Vec<String> =
            default_plant.iter().flat_map(|p| p.zones.iter().map(|z| z.0.clone())).collect();
        assert_eq!(served, ["house", "bedroom", "living"], "new zones join the house's plants");
        assert!(zones.put_plant(boiler(&["bedroom", "living"])).await?);
        let fresh = Zones::load(store.clone(), EventBus::new(16)).await?;
        assert_eq!(fresh.stored(), zones.stored());
        let ids: Vec<String> = fresh.stored().zones.iter().map(|z| z.id.0.clone()).collect();
        assert_eq!(ids, ["house", "bedroom", "living"]);
        assert_eq!(fresh.settings(&ZoneId::from("bedroom")), Some(settings.clone()));

        // Each bad change is refused with its problem, and nothing is stored.
        let before = zones.stored();
        let bad = [
            put(&zones, zone("bath", &["28-c1"], &["r/v1"])).await,
            put(&zones, zone("bath", &[], &["r/v3"])).await,
            zones.put_plant(PlantConfig { zones: vec![], ..boiler(&[]) }).await.map(|_| true),
        ];
        for (result, code) in bad.into_iter().zip([
            ProblemCode::ValveInTwoZones,
            ProblemCode::ZoneWithoutSensors,
            ProblemCode::PlantServesNoZone,
        ]) {
            match result {
                Err(ZoneError::Problems(p)) => assert!(p.iter().any(|p| p.code == code), "{p:?}"),
                other => panic!("{code:?}: {other:?}"),
            }
        }
        assert_eq!(zones.stored(), before);
        assert_eq!(Zones::load(store.clone(), EventBus::new(16)).await?.stored(), before);

        // A zone a plant serves alone cannot go; the default zone never.
        let stove = PlantConfig {
            id: PlantId::from("stove"),
            heat_relay: Some(RelayId::from("r/stove")),
            ..boiler(&["living"])
        };
        zones.put_plant(stove).await?;
        // Nor one that still has valves: they would be left in no zone (every problem at once).
        match zones.delete_zone(&ZoneId::from("living"), None).await {
            Err(ZoneError::Problems(p)) => {
                let codes: Vec<ProblemCode> = p.iter().map(|p| p.code).collect();
                assert_eq!(codes, [ProblemCode::ZoneHasValves, ProblemCode::PlantServesNoZone]);
            }
            other => panic!("{other:?}"),
        }
        zones.delete_plant(&PlantId::from("stove")).await?;
        // Unassigned: the boiler serves the bedroom alone first (a valveless zone heated by
        // the boiler and cooled by the default plant would get both at once).
        assert!(!zones.put_plant(boiler(&["bedroom"])).await?);
        assert!(!put(&zones, zone("living", &["28-a1", "28-a2"], &[])).await?);
        assert!(matches!(
            zones.delete_zone(&ZoneId::default_zone(), None).await,
            Err(ZoneError::DefaultZone)
        ));
        sqlx::query("INSERT INTO rules (body, created, zone_id) VALUES ('{}', 0, 'living')")
            .execute(&store.test_sqlite_pool()?)
            .await?;
        match zones.delete_zone(&ZoneId::from("living"), None).await {
            Err(ZoneError::NotEmpty(held)) => assert_eq!((held.rules, held.overrides), (1, 0)),
            other => panic!("{other:?}"),
        }
        match zones.delete_zone(&ZoneId::from("living"), Some(&ZoneId::from("attic"))).await {
            Err(ZoneError::NotFound(what)) => assert_eq!(what, r#"zone "attic" does not exist"#),
            other => panic!("{other:?}"),
        }
        zones.delete_zone(&ZoneId::from("living"), Some(&ZoneId::from("bedroom"))).await?;
        let moved = store.zone_contents(&ZoneId::from("bedroom"), 0).await?;
        assert_eq!((moved.rules, moved.overrides), (1, 0));
        let fresh = Zones::load(store.clone(), EventBus::new(16)).await?;
        assert_eq!(fresh.stored(), zones.stored());
        assert!(fresh.stored().zone(&ZoneId::from("living")).is_none());
        assert!(fresh.stored().plants.iter().all(|p| !p.zones.contains(&ZoneId::from("living"))));

        // The default plant's times follow the default zone's settings, stored together.
        let quick = Settings { min_on_s: 60, ..settings };
        zones.set_settings(&ZoneId::default_zone(), quick).await?;
        let fresh = Zones::load(store.clone(), EventBus::new(16)).await?;
        let plant = fresh.stored().plants.iter().find(|p| p.id.0 == DEFAULT_PLANT).cloned();
        assert_eq!(plant.map(|p| p.min_on_s), Some(60));
        match zones.delete_plant(&PlantId::from(DEFAULT_PLANT)).await {
            Err(ZoneError::Problems(p)) => {
                assert!(p.iter().any(|p| p.code == ProblemCode::ZoneUnserved), "{p:?}");
            }
            other => panic!("{other:?}"),
        }
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
