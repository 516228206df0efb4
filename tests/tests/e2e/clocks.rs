//! Sensor agents with wrong clocks (libfaketime on the real binary): two hours behind, five
//! minutes ahead, an hour ahead, and an hour ahead then corrected during an engine outage. The
//! engine is killed while they report and comes back on the same data dir: every reading they
//! queued is stored, none where it does not belong, and no sensor's latest reading is ever
//! after now or stale.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hearth_e2e::{FAST_ENGINE, House, Proc, eventually, faketime, free_port, in_private_netns};
use hearth_harness::SENSOR_AGENT;
use hearth_proto::Timestamp;
use hearth_proto::agents::AgentInfo;
use hearth_proto::client::EngineClient;
use hearth_proto::control::Exclusion;

use super::{heat_to, queued};

/// One agent: its host, sensor, clock (libfaketime syntax) and queue.
struct Agent {
    host: &'static str,
    sensor: &'static str,
    clock: PathBuf,
    queue: PathBuf,
    proc: Option<Proc>,
}

const AGENTS: [(&str, &str, &str); 4] = [
    ("e2e-behind-2h", "28-0000000c0001", "-2h"),
    ("e2e-ahead-5m", "28-0000000c0002", "+5m"),
    ("e2e-ahead-1h", "28-0000000c0003", "+1h"),
    // An hour ahead until NTP steps it right, during the outage.
    ("e2e-stepped", "28-0000000c0004", "+1h"),
];

impl Agent {
    fn start(&mut self, house: &House, engine: &str) -> anyhow::Result<()> {
        let dir = house.dir.path();
        let key = house.key(SENSOR_AGENT, self.host)?;
        let config = dir.join(format!("{}.toml", self.host));
        std::fs::write(&config, format!("[[sensors]]\nid = \"{}\"\n", self.sensor))?;
        let config = config.to_string_lossy().into_owned();
        let queue = self.queue.to_string_lossy().into_owned();
        let world = dir.join(format!("{}-world.json", self.host)).to_string_lossy().into_owned();
        let args = [
            "--engine",
            engine,
            "--host-id",
            self.host,
            "--device-key",
            &key,
            "--config",
            &config,
            "--hardware",
            "simulated",
            "--sim-world",
            &world,
            "--sim-time-scale",
            "60",
            "--interval-s",
            "0.3",
            "--queue-dir",
            &queue,
            // Small batches: the replay spans seconds, watched reading by reading.
            "--queue-replay-batch",
            "3",
        ];
        self.proc = Some(Proc::start_with_env(
            self.host,
            "hearth-sensor-agent",
            &args,
            &faketime(&self.clock)?,
        )?);
        Ok(())
    }
}

#[test]
fn agents_with_wrong_clocks_lose_nothing_and_freeze_nothing() -> anyhow::Result<()> {
    in_private_netns("clocks::agents_with_wrong_clocks_lose_nothing_and_freeze_nothing", clocks)
}

/// Every stored reading of `sensor`: ms → value.
async fn stored(
    pool: &sqlx::SqlitePool,
    sensor: &str,
) -> anyhow::Result<BTreeMap<i64, Option<f64>>> {
    let rows: Vec<(i64, Option<f64>)> =
        sqlx::query_as("SELECT ts, value FROM readings WHERE sensor_id = ?")
            .bind(sensor)
            .fetch_all(pool)
            .await?;
    Ok(rows.into_iter().collect())
}

/// Every sensor's latest is fresh and not after now; each one the decision sees counts or is
/// left out for a reason other than its age.
async fn nothing_frozen(api: &EngineClient) -> anyhow::Result<()> {
    let sensors = api.sensors().await?;
    for (_, sensor, _) in AGENTS {
        let s = sensors.iter().find(|s| s.id == sensor);
        let at = s.and_then(|s| s.latest.as_ref()).map(|r| r.at);
        let now = Timestamp::now();
        let at = at.ok_or_else(|| anyhow::anyhow!("{sensor} has no latest reading"))?;
        anyhow::ensure!(at <= now, "{sensor}'s latest reading is at {at}, after now ({now})");
        let age = now.duration_since(at);
        anyhow::ensure!(age.as_secs() < 5, "{sensor}'s latest reading is {age:#} old: frozen");
    }
    if let Some(d) = api.control().await?.decision {
        for input in d.sensors.iter().filter(|i| AGENTS.iter().any(|a| a.1 == i.id)) {
            let aged = matches!(input.excluded, Some(Exclusion::Stale | Exclusion::NoReading));
            anyhow::ensure!(!aged, "the decision sees {} as {:?}", input.id, input.detail);
        }
    }
    Ok(())
}

async fn clocks() -> anyhow::Result<()> {
    let house = House::new()?;
    let (dir, data, data_s) = (&house.dir, &house.data, house.data_s());
    let admin = house.admin()?;
    // A fixed port, so the agents (given the URL) find the restarted engine.
    let listen = format!("127.0.0.1:{}", free_port()?);
    let url = format!("http://{listen}");
    let mut engine_args = vec!["--data-dir", &data_s, "--listen", &listen, "--mdns", "false"];
    engine_args.extend(FAST_ENGINE);
    let engine = Proc::start("engine", "hearth-engine", &engine_args)?;
    engine.listening_url().await?;
    let api = EngineClient::new(&url, Some(admin));
    heat_to(&api, 20.0).await?;

    let mut agents: Vec<Agent> = AGENTS
        .iter()
        .map(|&(host, sensor, clock)| {
            let path = dir.path().join(format!("{host}.faketime"));
            std::fs::write(&path, clock)?;
            Ok(Agent {
                host,
                sensor,
                clock: path,
                queue: dir.path().join(format!("{host}-queue")),
                proc: None,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for agent in &mut agents {
        agent.start(&house, &url)?;
    }
    let wait = Duration::from_secs(60);
    // Live readings from every clock are the sensors' fresh latest.
    eventually("every agent's live readings fresh", wait, || async {
        Ok(nothing_frozen(&api).await.ok())
    })
    .await?;

    // The engine dies; the agents queue what they read, stamped by their clocks.
    engine.kill()?;
    eventually("every agent queuing", wait, || async {
        let counts: Vec<usize> = agents
            .iter()
            .map(|a| queued(&a.queue).map(|q| q.len()))
            .collect::<anyhow::Result<_>>()?;
        Ok(counts.iter().all(|n| *n >= 10).then_some(()))
    })
    .await?;
    // NTP corrects one agent's clock during the outage.
    let stepped = &agents[3];
    std::fs::write(&stepped.clock, "+0")?;
    eventually("the corrected agent queuing by its right clock", wait, || async {
        let now = Timestamp::now().as_millisecond();
        let right = queued(&stepped.queue)?.keys().filter(|ts| (*ts - now).abs() < 30_000).count();
        Ok((right >= 5).then_some(()))
    })
    .await?;
    let missed: Vec<BTreeMap<i64, Option<f64>>> =
        agents.iter().map(|a| queued(&a.queue)).collect::<anyhow::Result<_>>()?;

    // Back on the same data dir: the backlogs replay while live readings go on.
    let engine = Proc::start("engine2", "hearth-engine", &engine_args)?;
    engine.listening_url().await?;
    let db = data.join("hearth.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await?;
    // While they replay, no sensor's latest is ever after now (a replayed reading from a clock
    // ahead held it there, frozen, while newer live readings arrived).
    let future = std::cell::RefCell::new(Vec::new());
    eventually("every queued reading stored", Duration::from_secs(120), || async {
        let mut all = true;
        for (agent, missed) in agents.iter().zip(&missed) {
            let stored = stored(&pool, agent.sensor).await?;
            all &= stored.len() >= missed.len() && queued(&agent.queue)?.is_empty();
        }
        let sensors = api.sensors().await?;
        // After the answer: every reading in it was received before now.
        let now = Timestamp::now();
        for s in sensors {
            if let Some(latest) = s.latest.filter(|l| l.at > now)
                && future.borrow().len() < 5
            {
                future.borrow_mut().push(format!("{} at {} (now {now})", s.id, latest.at));
            }
        }
        Ok(all.then_some(()))
    })
    .await?;
    assert!(future.borrow().is_empty(), "latest readings after now: {:?}", future.borrow());
    eventually("every sensor's latest fresh, none stale in the decision", wait, || async {
        Ok(nothing_frozen(&api).await.ok())
    })
    .await?;

    let infos = api.agents().await?;
    let info = |host: &str| -> anyhow::Result<AgentInfo> {
        infos
            .iter()
            .find(|a| a.host_id == host)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no agent {host}"))
    };
    for (agent, missed) in agents.iter().zip(&missed) {
        let stored = stored(&pool, agent.sensor).await?;
        let a = info(agent.host)?;
        // The offset the engine applied to the backlog (steady since the restart).
        let offset = a.clock_offset_s.map_or(0, |s| (s * 1000.0).round() as i64);
        let (skewed, misdated) = if agent.host == "e2e-stepped" {
            // Right now: stored as stamped; the readings of its hour ahead are misdated.
            let now = Timestamp::now().as_millisecond();
            (false, missed.keys().filter(|ts| **ts > now + 30_000).count() as u64)
        } else {
            (true, 0)
        };
        assert_eq!((a.clock_skewed, a.misdated_readings >= misdated), (skewed, true), "{a:?}");
        for (ts, value) in missed {
            let at = if skewed { ts - offset } else { *ts };
            assert_eq!(
                stored.get(&at),
                Some(value),
                "{}: the reading stamped {ts} ({value:?}) is not stored at {at} (offset {offset} ms)",
                agent.host
            );
        }
        if agent.host == "e2e-stepped" {
            assert!(misdated >= 10, "the stepped agent queued {misdated} readings while ahead");
        }
        let log = agent.proc.as_ref().map(Proc::lines).unwrap_or_default();
        let dropped: Vec<&String> =
            log.iter().filter(|l| l.contains("dropping") || l.contains("dropped")).collect();
        assert!(dropped.is_empty(), "{}: {dropped:?}", agent.host);
        eprintln!(
            "e2e: {} (clock {}): {} queued readings stored, offset applied {offset} ms, \
             {} misdated",
            agent.host,
            std::fs::read_to_string(&agent.clock)?,
            missed.len(),
            a.misdated_readings
        );
    }
    pool.close().await;
    let status = engine.terminate()?;
    assert!(status.success(), "engine exit: {status}");
    Ok(())
}
