//! Storage faults with the real binaries: the engine's data dir on a small filesystem the test
//! makes (a size-limited tmpfs, a loop-mounted ext4 image) that fills up, turns read-only
//! through an ext4 error, or is mounted read-only when the engine starts. Throughout, a probe
//! client reports a reading every 100 ms and notes what the engine answered, and the status,
//! the decision and the relays are sampled. What must hold:
//!
//! - every reading the engine answered 201 is in the database afterwards, and the sensor
//!   agent's readings have no hole (what it was refused, it kept queued and replayed);
//! - each recovery writes again the readings acknowledged in the seconds before its fault: a
//!   storage that fails may lose the commits it confirmed last (this test once lost a reading
//!   acknowledged about 100 ms before an ext4 error; `engine/src/store/acked.rs`);
//! - `GET /v1/status` is 503 while the engine cannot store and 200 within seconds after, its
//!   detail then naming the recovery and the fault;
//! - control goes on: the heat stays on (its lease renewed), never through sensor-loss mode,
//!   and the relay agent never refuses a command (its minimum on/off times are real here).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hearth_e2e::{
    Database, FAST_ENGINE, Proc, ds18b20, engine_credential, eventually, free_port,
    in_private_mount_and_netns, relay_config, sh, simulated,
};
use hearth_proto::client::{ClientError, EngineClient, RelayAgentClient};
use hearth_proto::control::{ControlSettings, Mode, ReasonCode};
use hearth_proto::relays::RelayState;
use hearth_proto::schedules::DefaultTarget;
use hearth_proto::sensors::SensorUpdate;

const SENSOR: &str = "e2e-store-sensor";
/// The simulated sensor agent's probe.
const SENSOR_ID: &str = "28-00000000a001";
const RELAY: &str = "e2e-store-relay";
/// The test itself, reporting as an agent, to know exactly what was acknowledged.
const PROBE: &str = "e2e-store-probe";
const PROBE_SENSOR: &str = "28-0000000e2e01";

/// The engine, a simulated relay agent and a simulated sensor agent, with the engine's data
/// dir wherever the test mounted it. The agents are given the engine's address (the faults,
/// not discovery, are under test), which stays the same across engine restarts.
struct House {
    dir: tempfile::TempDir,
    data: PathBuf,
    data_s: String,
    queue: PathBuf,
    url: String,
    admin: String,
    lease_s: &'static str,
    engine: Option<Proc>,
    relay: Proc,
    sensor: Option<Proc>,
    db: Database,
}

impl House {
    /// `mount` mounts the data dir (given its path) before the engine first writes to it.
    async fn start(
        lease_s: &'static str,
        mount: impl FnOnce(&Path, &Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        Self::start_on(lease_s, mount, false).await
    }

    /// [`House::start`], with the engine on a PostgreSQL server of the test's own when
    /// `postgres`.
    async fn start_on(
        lease_s: &'static str,
        mount: impl FnOnce(&Path, &Path) -> anyhow::Result<()>,
        postgres: bool,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("engine");
        std::fs::create_dir_all(&data)?;
        mount(dir.path(), &data)?;
        let data_s = data.to_string_lossy().to_string();
        let url = format!("http://127.0.0.1:{}", free_port()?);
        let sensor_key = engine_credential(&data, &["device-key", "--role", "sensor", SENSOR])?;
        let relay_key = engine_credential(&data, &["device-key", "--role", "relay", RELAY])?;
        let admin = engine_credential(&data, &["admin-token"])?;
        let db = if postgres { Database::postgres()? } else { Database::sqlite(&data) };
        let engine = start_engine(&data_s, &url, lease_s, &db, "engine")?;
        let api = EngineClient::new(&url, Some(admin.clone()));
        eventually("the engine answers", Duration::from_secs(30), || async {
            Ok(api.control().await.ok().map(|_| ()))
        })
        .await?;
        api.set_control(&ControlSettings {
            mode: Mode::Heat,
            params: serde_json::json!({"hysteresis_c": 0.3}),
            min_on_s: 5,
            min_off_s: 5,
            ..ControlSettings::default()
        })
        .await?;
        // Far above the simulated room: heat is wanted for the whole test.
        api.set_default_target(&DefaultTarget { heat_c: 29.0, cool_c: 30.0, sensors: vec![] })
            .await?;

        let world = dir.path().join("world.json").to_string_lossy().to_string();
        let relay_toml = dir.path().join("relay.toml");
        // Real protection times: a command that contradicts them is refused (409) and logged
        // by the agent.
        std::fs::write(&relay_toml, relay_config(5))?;
        let relay_toml = relay_toml.to_string_lossy().to_string();
        let mut args = vec!["--config", &relay_toml, "--listen", "127.0.0.1:0", "--engine", &url];
        args.extend(simulated(RELAY, &relay_key, &world));
        let relay = Proc::start("relay", "hearth-relay-agent", &args)?;
        let queue = dir.path().join("queue");
        let sensor = start_sensor(SENSOR, &sensor_key, &world, "18", &queue, &url)?;
        let house = Self {
            queue,
            engine: Some(engine),
            relay,
            sensor: Some(sensor),
            data,
            data_s,
            url,
            admin,
            lease_s,
            dir,
            db,
        };
        let relay_api = house.relay_api().await?;
        eventually("the heat on at the relay agent", Duration::from_secs(40), || async {
            Ok((relay_api.relay("heat").await?.state == RelayState::On).then_some(()))
        })
        .await?;
        eventually("readings stored", Duration::from_secs(30), || async {
            Ok((house.stored(SENSOR_ID).await?.len() >= 5).then_some(()))
        })
        .await?;
        Ok(house)
    }

    fn start_engine(&mut self, name: &str) -> anyhow::Result<()> {
        self.engine = Some(start_engine(&self.data_s, &self.url, self.lease_s, &self.db, name)?);
        Ok(())
    }

    fn api(&self) -> EngineClient {
        EngineClient::new(&self.url, Some(self.admin.clone()))
    }

    async fn relay_api(&self) -> anyhow::Result<RelayAgentClient> {
        Ok(RelayAgentClient::new(&self.relay.listening_url().await?, None))
    }

    /// Every stored reading of `sensor`, oldest first, read from the database as another
    /// process would.
    async fn stored(&self, sensor: &str) -> anyhow::Result<Vec<(i64, Option<f64>)>> {
        self.db.stored(sensor).await
    }

    /// The readings the sensor agent still holds in its queue.
    fn queued(&self) -> anyhow::Result<usize> {
        let mut n = 0;
        for record in hearth_sensor_agent::queue::peek(&self.queue)? {
            let update: SensorUpdate = serde_json::from_slice(&record)?;
            n += update.sensors.len();
        }
        Ok(n)
    }
}

/// The engine on `url`'s port (no mDNS: the agents are told where it is), fast ticks, short
/// staleness, leases of `lease_s`, storing in `db`.
fn start_engine(
    data: &str,
    url: &str,
    lease_s: &str,
    db: &Database,
    name: &str,
) -> anyhow::Result<Proc> {
    let listen = url.trim_start_matches("http://");
    let mut args = vec!["--data-dir", data, "--listen", listen, "--mdns", "false"];
    args.extend(FAST_ENGINE);
    args.extend(["--lease-s", lease_s]);
    args.extend(db.engine_args());
    Proc::start(name, "hearth-engine", &args)
}

/// A simulated sensor agent reporting every 0.2 s from a room starting at `start_c`.
fn start_sensor(
    host: &str,
    key: &str,
    world: &str,
    start_c: &str,
    queue: &Path,
    url: &str,
) -> anyhow::Result<Proc> {
    let queue = queue.to_string_lossy();
    let mut args = simulated(host, key, world).to_vec();
    args.extend([
        "--sim-start-c",
        start_c,
        "--interval-s",
        "0.2",
        "--queue-dir",
        &queue,
        "--engine",
        url,
    ]);
    Proc::start(host, "hearth-sensor-agent", &args)
}

/// `GET /v1/status`: the HTTP status and the database check's detail.
async fn status(http: &reqwest::Client, url: &str) -> (u16, String) {
    match http.get(format!("{url}/v1/status")).send().await {
        Ok(resp) => {
            let code = resp.status().as_u16();
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            (code, body["checks"][0]["detail"].as_str().unwrap_or_default().to_owned())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Wait for `GET /v1/status` to answer `code`; how long it took, and the detail.
async fn wait_status(url: &str, code: u16, within: Duration) -> anyhow::Result<(Duration, String)> {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let detail = eventually(&format!("status {code}"), within, || async {
        let (got, detail) = status(&http, url).await;
        Ok((got == code).then_some(detail))
    })
    .await?;
    Ok((started.elapsed(), detail))
}

/// What the samplers saw.
#[derive(Debug, Default)]
struct Seen {
    /// `GET /v1/status` codes, with when.
    status: Vec<(Instant, u16)>,
    /// The probe's readings: timestamp (ms) → what the engine answered (0: no answer).
    probe: BTreeMap<i64, u16>,
    /// The heat output's state at the relay agent, with when.
    heat: Vec<(Instant, RelayState)>,
    cool_on: usize,
    /// Decisions that were not about the temperature (sensor loss), as text.
    blind: Vec<String>,
}

/// Sample every 100 ms until `stop`: the status, one probe reading, the relays, the decision.
/// After `stop` the sampler goes on until it has itself seen status 200 (at most 30 s more):
/// the test's own wait for 200 may finish between two samples, and a sampler stopped then
/// would have seen only the 503s before it.
fn sample(
    url: String,
    probe_key: String,
    relay: RelayAgentClient,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Seen> {
    tokio::spawn(async move {
        let http = reqwest::Client::new();
        let probe = EngineClient::new(&url, Some(probe_key));
        let api = EngineClient::new(&url, None);
        let mut seen = Seen::default();
        // The probe is a sensor like any other to the engine: the room's temperature, so
        // that it does not change the decision.
        let value = 18.0;
        let mut stopping: Option<Instant> = None;
        loop {
            let code = status(&http, &url).await.0;
            seen.status.push((Instant::now(), code));
            if stopping.is_none() && stop.load(Ordering::Relaxed) {
                stopping = Some(Instant::now());
            }
            if stopping.is_some_and(|at| code == 200 || at.elapsed() > Duration::from_secs(30)) {
                break;
            }
            let at = hearth_proto::Timestamp::now();
            let update = SensorUpdate {
                host_id: PROBE.into(),
                sensors: [(PROBE_SENSOR.to_owned(), ds18b20(value, at))].into(),
                agent_time: None,
            };
            let code = match probe.sensor_update(&update).await {
                Ok(_) => 201,
                Err(ClientError::Api { status, .. }) => status,
                Err(ClientError::Transport(_)) => 0,
            };
            seen.probe.insert(at.as_millisecond(), code);
            if let Ok(heat) = relay.relay("heat").await {
                seen.heat.push((Instant::now(), heat.state));
            }
            if relay.relay("cool").await.is_ok_and(|c| c.state == RelayState::On) {
                seen.cool_on += 1;
            }
            if let Ok(Some(d)) = api.control().await.map(|c| c.decision)
                && matches!(d.reason_code, ReasonCode::SensorLossDuty | ReasonCode::SensorLossOff)
            {
                seen.blind.push(d.reason);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    })
}

/// Fill the filesystem of `dir` until it is full; the file that did it.
fn fill(dir: &Path) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path)?;
    let chunk = vec![0u8; 1 << 16];
    loop {
        match f.write_all(&chunk) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
            Err(e) => return Err(e.into()),
        }
    }
    // Down to the last block, so that no write of the engine finds room.
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    Ok(path)
}

/// Start the samplers; `finish` stops them and checks what they saw.
struct Watch {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Seen>,
    relay_log_from: usize,
    started: Instant,
}

impl Watch {
    async fn start(house: &House) -> anyhow::Result<Self> {
        let key = engine_credential(&house.data, &["device-key", "--role", "sensor", PROBE])?;
        let probe_key =
            key.parse::<hearth_common::auth::DeviceCredential>()?.agent_credential(PROBE);
        let stop = Arc::new(AtomicBool::new(false));
        let relay = house.relay_api().await?;
        let task = sample(house.url.clone(), probe_key, relay, stop.clone());
        Ok(Self { stop, task, relay_log_from: house.relay.lines().len(), started: Instant::now() })
    }

    /// Stop sampling, wait for the sensor agent to have delivered its queue, and check
    /// everything the module documentation promises. `faults` are the windows (from, to) the
    /// storage was failing: status 503 must be seen in each.
    async fn finish(self, house: &House, faults: &[(Instant, Instant)]) -> anyhow::Result<()> {
        eventually("the sensor agent's queue delivered", Duration::from_secs(90), || async {
            Ok((house.queued()? == 0).then_some(()))
        })
        .await?;
        self.stop.store(true, Ordering::Relaxed);
        let seen = self.task.await?;

        // Every acknowledged probe reading is stored, with its value.
        let stored: BTreeMap<i64, Option<f64>> =
            house.stored(PROBE_SENSOR).await?.into_iter().collect();
        let acked: Vec<i64> =
            seen.probe.iter().filter(|(_, code)| **code == 201).map(|(ts, _)| *ts).collect();
        let lost: Vec<i64> = acked.iter().filter(|ts| !stored.contains_key(ts)).copied().collect();
        let refused = seen.probe.values().filter(|c| **c == 503).count();
        let odd: Vec<_> = seen.probe.iter().filter(|(_, c)| ![201, 503].contains(*c)).collect();
        eprintln!(
            "e2e storage: probe readings {} acknowledged, {refused} refused with 503, {} lost",
            acked.len(),
            lost.len()
        );
        assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
        assert!(odd.is_empty(), "answers other than 201 and 503: {odd:?}");
        assert!(refused > 0, "the fault never showed to the probe");
        let engine_log = house.engine.as_ref().map(Proc::lines).unwrap_or_default();
        let written_again = engine_log
            .iter()
            .filter(|l| l.contains("the readings acknowledged before the fault are written again"))
            .count();
        assert_eq!(written_again, faults.len(), "recoveries that wrote the last readings again");

        // The sensor agent's readings: no hole longer than a few intervals (0.2 s): what the
        // engine refused, the agent kept and replayed.
        let rows = house.stored(SENSOR_ID).await?;
        let holes: Vec<(i64, i64)> =
            rows.windows(2).map(|w| (w[0].0, w[1].0)).filter(|(a, b)| b - a > 1_500).collect();
        assert!(holes.is_empty(), "holes in the sensor agent's readings: {holes:?}");

        // 503 during each fault, and after the last one only 200 once it answered 200 again.
        for (from, to) in faults {
            let during: Vec<u16> =
                seen.status.iter().filter(|(t, _)| t >= from && t < to).map(|(_, c)| *c).collect();
            assert!(!during.is_empty(), "no status sampled during a fault");
            assert!(during.iter().all(|c| *c == 503), "not 503 throughout a fault: {during:?}");
        }
        if let Some((_, last_to)) = faults.last() {
            let after: Vec<u16> =
                seen.status.iter().filter(|(t, _)| t > last_to).map(|(_, c)| *c).collect();
            let first_ok = after.iter().position(|c| *c == 200);
            assert!(first_ok.is_some(), "never 200 after the faults: {after:?}");
            let relapse = first_ok.map_or(0, |i| after[i..].iter().filter(|c| **c != 200).count());
            assert_eq!(relapse, 0, "status left 200 again after recovering: {after:?}");
        }

        // Control went on: the heat never went off, never by sensor loss, nothing refused.
        let off: Vec<_> = seen
            .heat
            .iter()
            .filter(|(_, s)| *s != RelayState::On)
            .map(|(t, _)| t.duration_since(self.started))
            .collect();
        assert!(off.is_empty(), "the heat was off at {off:?} into the faults");
        assert_eq!(seen.cool_on, 0, "cooling ran");
        assert!(seen.blind.is_empty(), "decisions in sensor-loss mode: {:?}", seen.blind);
        let refusals: Vec<String> = house.relay.lines()[self.relay_log_from..]
            .iter()
            .filter(|l| l.contains("refused relay command"))
            .cloned()
            .collect();
        assert!(refusals.is_empty(), "the relay agent refused commands: {refusals:?}");
        let heat = house.relay_api().await?.relay("heat").await?;
        assert_eq!((heat.cycles, &heat.last_fallback), (1, &None), "{heat:?}");
        Ok(())
    }
}

#[test]
fn a_full_disk_for_3_s_and_for_60_s_loses_no_acknowledged_reading() -> anyhow::Result<()> {
    in_private_mount_and_netns(
        "storage::a_full_disk_for_3_s_and_for_60_s_loses_no_acknowledged_reading",
        full_disk,
    )
}

async fn full_disk() -> anyhow::Result<()> {
    // 32 MiB: the database, its WAL, and the engine's 4 MiB reserve fit with room to spare.
    let house = House::start("4", |_, data| {
        sh("mount", &["-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", &data.to_string_lossy()])
            .map(drop)
    })
    .await?;
    let watch = Watch::start(&house).await?;
    let mut faults = Vec::new();
    for hold in [Duration::from_secs(3), Duration::from_secs(60)] {
        // Readings are stored between the faults.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let filled_at = Instant::now();
        let filler = fill(&house.data)?;
        let (to_503, reason) = wait_status(&house.url, 503, hold).await?;
        // From here on the engine said 503: it must go on saying so until space is freed.
        let detected_at = Instant::now();
        eprintln!("e2e storage: disk full; status 503 after {to_503:.1?}: {reason}");
        assert!(reason.contains("full"), "{reason}");
        tokio::time::sleep(hold.saturating_sub(filled_at.elapsed())).await;
        std::fs::remove_file(filler)?;
        let freed_at = Instant::now();
        let (to_200, detail) = wait_status(&house.url, 200, Duration::from_secs(15)).await?;
        eprintln!(
            "e2e storage: full for {:.1?}; status 200 {to_200:.1?} after space was freed: {detail}",
            freed_at.duration_since(filled_at)
        );
        assert!(detail.contains("recovered at") && detail.contains("full"), "{detail}");
        faults.push((detected_at, freed_at));
    }
    watch.finish(&house, &faults).await
}

/// The engine on PostgreSQL, whose server is stopped for 5 s (a fast shutdown: connections
/// cut) and started again: the same promises as for a full disk.
#[test]
fn a_postgresql_server_gone_for_5_s_loses_no_acknowledged_reading() -> anyhow::Result<()> {
    in_private_mount_and_netns(
        "storage::a_postgresql_server_gone_for_5_s_loses_no_acknowledged_reading",
        postgres_gone,
    )
}

async fn postgres_gone() -> anyhow::Result<()> {
    let mut house = House::start_on("4", |_, _| Ok(()), true).await?;
    let watch = Watch::start(&house).await?;
    // Readings are stored before the fault.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let server = house.db.server().ok_or_else(|| anyhow::anyhow!("not on PostgreSQL"))?;
    let stopped_at = Instant::now();
    server.stop()?;
    let (to_503, reason) = wait_status(&house.url, 503, Duration::from_secs(5)).await?;
    let detected_at = Instant::now();
    eprintln!("e2e storage: PostgreSQL stopped; status 503 after {to_503:.1?}: {reason}");
    assert!(reason.contains("PostgreSQL"), "{reason}");
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(stopped_at.elapsed())).await;
    let server = house.db.server().ok_or_else(|| anyhow::anyhow!("not on PostgreSQL"))?;
    server.resume()?;
    let back_at = Instant::now();
    let (to_200, detail) = wait_status(&house.url, 200, Duration::from_secs(15)).await?;
    eprintln!(
        "e2e storage: PostgreSQL gone for {:.1?}; status 200 {to_200:.1?} after it was back: \
         {detail}",
        back_at.duration_since(stopped_at)
    );
    assert!(detail.contains("recovered at"), "{detail}");
    watch.finish(&house, &[(detected_at, back_at)]).await
}

#[test]
fn a_filesystem_turned_read_only_then_repaired_loses_no_acknowledged_reading() -> anyhow::Result<()>
{
    in_private_mount_and_netns(
        "storage::a_filesystem_turned_read_only_then_repaired_loses_no_acknowledged_reading",
        read_only_at_run_time,
    )
}

/// `mount -o loop` of an ext4 image at `data`, as an SD card's root filesystem is mounted
/// (errors=remount-ro).
fn mount_image(image: &Path, data: &Path) -> anyhow::Result<()> {
    let (image, data) = (image.to_string_lossy(), data.to_string_lossy());
    sh("mount", &["-o", "loop,errors=remount-ro", &image, &data]).map(drop)
}

/// The engine's data dir on ext4 hits an error (as an SD card does): the kernel makes the
/// filesystem read-only, and every write of the engine fails from then on (EIO, EROFS). The
/// repair is the one a person makes: once the engine has let go of the files, unmount, fsck,
/// mount again. The engine is not restarted. Readings acknowledged in the seconds before the
/// error survive it only because their commit was synced.
async fn read_only_at_run_time() -> anyhow::Result<()> {
    let image_path = Arc::new(std::sync::Mutex::new(PathBuf::new()));
    let image_slot = image_path.clone();
    let house = House::start("4", move |dir, data| {
        let image = dir.join("card.img");
        std::fs::File::create(&image)?.set_len(64 << 20)?;
        sh("mkfs.ext4", &["-q", "-F", &image.to_string_lossy()])?;
        mount_image(&image, data)?;
        *image_slot.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = image;
        Ok(())
    })
    .await?;
    let image = image_path.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    let watch = Watch::start(&house).await?;
    // Readings acknowledged right before the error, while they are only in the WAL.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let device = sh("findmnt", &["-n", "-o", "SOURCE", &house.data_s])?;
    let name = device.rsplit('/').next().unwrap_or_default().to_owned();
    std::fs::write(format!("/sys/fs/ext4/{name}/trigger_fs_error"), "1")
        .map_err(|e| anyhow::anyhow!("cannot make ext4 on {device} fail (needs root): {e}"))?;
    let (to_503, reason) = wait_status(&house.url, 503, Duration::from_secs(10)).await?;
    let detected_at = Instant::now();
    eprintln!("e2e storage: ext4 error; status 503 after {to_503:.1?}: {reason}");
    // A few leases long: the heat must stay on through it.
    tokio::time::sleep(Duration::from_secs(10)).await;

    // The repair: the engine must have let go of every file for the unmount to work.
    let unmounted = eventually(
        "the engine lets go of the broken filesystem",
        Duration::from_secs(30),
        || async { Ok(sh("umount", &[&house.data_s]).ok()) },
    )
    .await;
    unmounted?;
    // e2fsck exits 1 when it fixed something: expected after an error.
    let fsck = std::process::Command::new("e2fsck").args(["-f", "-y"]).arg(&image).status()?;
    assert!(fsck.code().is_some_and(|c| c <= 1), "e2fsck: {fsck}");
    mount_image(&image, &house.data)?;
    let repaired_at = Instant::now();
    let (to_200, _) = wait_status(&house.url, 200, Duration::from_secs(15)).await?;
    eprintln!("e2e storage: status 200 {to_200:.1?} after the filesystem was mounted again");
    watch.finish(&house, &[(detected_at, repaired_at)]).await
}

#[test]
fn the_engine_starts_on_a_read_only_data_dir() -> anyhow::Result<()> {
    in_private_mount_and_netns(
        "storage::the_engine_starts_on_a_read_only_data_dir",
        read_only_start,
    )
}

/// A card that is read-only when the engine starts (it went read-only, the Pi rebooted).
/// With its database the engine controls as configured; without one, it protects from frost.
/// Either way `GET /v1/status` says 503 and why, readings stay queued at the agent, and when
/// the filesystem takes writes again the engine stores them, without a restart.
async fn read_only_start() -> anyhow::Result<()> {
    let mut house = House::start("8", |_, data| {
        sh("mount", &["-t", "tmpfs", "-o", "size=32m,mode=0700", "tmpfs", &data.to_string_lossy()])
            .map(drop)
    })
    .await?;
    let relay = house.relay_api().await?;
    let stop = |house: &mut House| -> anyhow::Result<()> {
        if let Some(engine) = house.engine.take() {
            let status = engine.terminate()?;
            anyhow::ensure!(status.success(), "engine exit: {status}");
        }
        Ok(())
    };

    // With its database, read-only.
    let before = house.stored(SENSOR_ID).await?.len();
    stop(&mut house)?;
    sh("mount", &["-o", "remount,ro", &house.data_s])?;
    let started = Instant::now();
    house.start_engine("engine-ro")?;
    let (_, reason) = wait_status(&house.url, 503, Duration::from_secs(30)).await?;
    eprintln!("e2e storage: started on a read-only data dir: {reason}");
    assert!(reason.contains("read-only"), "{reason}");
    let api = house.api();
    assert_eq!(api.control().await?.settings.mode, Mode::Heat, "the stored settings apply");
    eventually("the read-only engine commands the heat", Duration::from_secs(30), || async {
        let heat = relay.relay("heat").await?;
        let by_it = heat.last_command.is_some_and(|c| c.s_ago < started.elapsed().as_secs_f64());
        Ok((by_it && heat.state == RelayState::On).then_some(()))
    })
    .await?;
    eventually("readings queued at the agent", Duration::from_secs(30), || async {
        Ok((house.queued()? >= 10).then_some(()))
    })
    .await?;
    sh("mount", &["-o", "remount,rw", &house.data_s])?;
    let (to_200, _) = wait_status(&house.url, 200, Duration::from_secs(15)).await?;
    eprintln!("e2e storage: status 200 {to_200:.1?} after the data dir was made writable");
    eventually("the queue delivered", Duration::from_secs(60), || async {
        Ok((house.queued()? == 0).then_some(()))
    })
    .await?;
    let rows = house.stored(SENSOR_ID).await?;
    assert!(rows.len() > before, "nothing stored after the recovery");
    let holes: Vec<(i64, i64)> =
        rows.windows(2).map(|w| (w[0].0, w[1].0)).filter(|(a, b)| b - a > 1_500).collect();
    assert!(holes.is_empty(), "holes in the readings: {holes:?}");

    // Without a database: only the frost floor. A cold room's sensor (a new agent, 4 °C).
    stop(&mut house)?;
    for file in ["hearth.db", "hearth.db-wal", "hearth.db-shm"] {
        let _ = std::fs::remove_file(house.data.join(file));
    }
    sh("mount", &["-o", "remount,ro", &house.data_s])?;
    let cold_key =
        engine_credential(&house.data, &["device-key", "--role", "sensor", "e2e-store-cold"])?;
    // The old agent stops; its readings are not in the new engine's memory.
    house.sensor = None;
    let world = house.dir.path().join("world.json").to_string_lossy().to_string();
    let cold_queue = house.dir.path().join("queue-cold");
    house.sensor =
        Some(start_sensor("e2e-store-cold", &cold_key, &world, "4", &cold_queue, &house.url)?);
    house.start_engine("engine-nodb")?;
    let (_, reason) = wait_status(&house.url, 503, Duration::from_secs(30)).await?;
    eprintln!("e2e storage: started without a database: {reason}");
    let api = house.api();
    assert_eq!(api.control().await?.settings.mode, Mode::Off, "unknown settings: mode off");
    eventually("the frost floor heats the 4 °C room", Duration::from_secs(60), || async {
        let d = api.control().await?.decision;
        let heat = relay.relay("heat").await?;
        let frost = d.is_some_and(|d| d.heat && d.reason_code == ReasonCode::FrostFloor);
        Ok((frost && heat.state == RelayState::On).then_some(()))
    })
    .await?;
    sh("mount", &["-o", "remount,rw", &house.data_s])?;
    wait_status(&house.url, 200, Duration::from_secs(15)).await?;
    Ok(())
}
