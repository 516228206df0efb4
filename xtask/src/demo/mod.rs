//! `cargo xtask demo`: the whole system on this machine. The engine (SQLite in the data dir),
//! a simulated relay agent (a boiler and two zone valves) and two simulated sensor agents, each
//! a room behind its valve (`house.rs`), and the dashboard, all on 127.0.0.1; a small weekly
//! schedule per room and a few days of the living room's history on a fresh data dir. It prints where to look and runs until stopped (Ctrl-C, SIGTERM, SIGHUP), then
//! stops everything it started (see the harness's `procs.rs`).
//!
//! Every child's log is shown with its name. A child that stops is noticed at once, and what
//! it said is shown, with the fix when it is a port already taken.

mod history;
mod house;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hearth_proto::client::EngineClient;
use hearth_proto::control::{ControlSettings, Mode};

use hearth_harness::procs::{self, Children, Proc};
use hearth_harness::{ENGINE, RELAY_AGENT, SENSOR_AGENT, SERVICES, Service, WEB, root, target_dir};

/// The living room's sensor (the default zone's), seeded with its past.
const SENSOR_ID: &str = "28-00000000a001";
const SENSOR_ALIAS: &str = "living room";
const SENSOR_HOST: &str = "demo-sensor";
/// The bedroom's sensor, on an agent of its own: its own simulated room.
const BEDROOM_SENSOR_ID: &str = "28-00000000b001";
const BEDROOM_ALIAS: &str = "bedroom";
const BEDROOM_HOST: &str = "demo-bedroom";
const RELAY_HOST: &str = "demo-relay";
/// The bedroom starts below its schedule (19 °C by day, 17 °C at night), so at start it calls
/// for heat while the living room, where its past left it, is near its own setpoint.
const BEDROOM_START_C: f64 = 16.0;
/// Without a seeded past the living room starts above every setpoint of its schedule: it
/// waits while the bedroom heats.
const LIVING_START_C: f64 = 21.0;
/// The simulated room runs this many times faster than real time.
const TIME_SCALE: u32 = 60;
/// How long a child may take to start listening (a first start migrates the database).
const START_WITHIN: Duration = Duration::from_secs(60);

/// Run the whole system on this machine (engine, simulated agents, dashboard).
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "\
Open the dashboard it prints (http://127.0.0.1:8088 by default) in a browser on this machine. \
Ctrl-C, SIGTERM or SIGHUP stop every process it started.")]
pub(crate) struct Args {
    /// The engine's port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The dashboard's port on 127.0.0.1 (0: any free port). Default: the engine's + 8.
    #[arg(long)]
    web_port: Option<u16>,
    /// Where the demo keeps its database, site secret and simulated world. A restarted demo
    /// keeps what you changed. Default: demo/ in the cargo target directory.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Let the agents and the dashboard find the engine by mDNS, as in a house. mDNS then goes
    /// out on every network interface that is up. Default: they are given its URL.
    #[arg(long)]
    discovery: bool,
    /// No mDNS: the default (kept for scripts that pass it).
    #[arg(long, hide = true, conflicts_with = "discovery")]
    no_discovery: bool,
    /// Days of past readings to seed on a fresh data dir (0 to 14), so History shows a house
    /// at once.
    #[arg(long, default_value_t = 3, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(0..=14))]
    history_days: u32,
    /// Serve the dashboard's files from web-ui/assets on disk: an edit shows on reload.
    #[arg(long)]
    dev_assets: bool,
}

/// Wait for `proc` to log where it listens; when it stops first, say what it said, and when
/// that is a port already in use, which flag (of `port`: the flag and its value) picks another.
fn listening(proc: &mut Proc, port: Option<(&str, u16)>) -> anyhow::Result<String> {
    proc.listening_url(START_WITHIN).map_err(|e| {
        let said = format!("{e:#}");
        match port {
            Some((flag, port)) if said.contains("Address already in use") => anyhow::anyhow!(
                "{said}\nPort {port} is taken: another demo is still running, or another \
                 program holds it (`ss -ltnp 'sport = :{port}'` shows which). Pick another \
                 with `cargo xtask demo {flag} <port>` (0: any free port)."
            ),
            _ => e,
        }
    })
}

pub(crate) fn demo(args: &Args) -> anyhow::Result<()> {
    let discovery = args.discovery && !args.no_discovery;
    hearth_harness::build(
        "build the engine, the agents and the dashboard (debug; a few minutes on a fresh clone)",
        "dev",
        &SERVICES,
    )?;
    let bin = |s: Service| hearth_harness::binary("dev", s.package);
    let data = args.data_dir.clone().unwrap_or_else(|| target_dir().join("demo"));
    std::fs::create_dir_all(&data)
        .map_err(|e| anyhow::anyhow!("cannot make the data dir {}: {e}", data.display()))?;
    let data_s = data.to_string_lossy().to_string();
    let world = data.join("sim-world.json").to_string_lossy().to_string();
    let device_key =
        |s: Service, host: &str| hearth_harness::device_key(&bin(ENGINE), &data, s, host);
    let sensor_key = device_key(SENSOR_AGENT, SENSOR_HOST)?;
    let bedroom_key = device_key(SENSOR_AGENT, BEDROOM_HOST)?;
    let relay_key = device_key(RELAY_AGENT, RELAY_HOST)?;
    let admin = hearth_harness::engine_credential(&bin(ENGINE), &data, &["admin-token"])?;
    let sensor_credential =
        sensor_key.parse::<hearth_common::auth::DeviceCredential>()?.agent_credential(SENSOR_HOST);
    // The dashboard next to the engine: 8088 beside the default 8080.
    let web_port =
        args.web_port.unwrap_or(if args.port == 0 { 0 } else { args.port.saturating_add(8) });

    let mut children = Children::default();
    let mut engine = procs::bound(bin(ENGINE));
    engine.args([
        "--data-dir",
        &data_s,
        "--listen",
        &format!("127.0.0.1:{}", args.port),
        "--mdns",
        if discovery { "true" } else { "false" },
    ]);
    // The engine's info page links the dashboard; on its own it can only guess the usual port.
    // (With --web-port 0 the port is known only once the dashboard runs, after the engine.)
    if web_port != 0 {
        engine.args(["--dashboard-url", &format!("http://127.0.0.1:{web_port}/")]);
    }
    let engine = children.start(ENGINE.name, &mut engine)?;
    let url = listening(engine, Some(("--port", args.port)))?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let api = EngineClient::new(&url, Some(admin.clone()));
    let seeded = rt.block_on(async {
        let deadline = Instant::now() + START_WITHIN;
        while api.status().await.is_err() {
            procs::check_stop()?;
            anyhow::ensure!(Instant::now() < deadline, "the engine did not answer at {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Short minimum times so the demo cycles within a couple of minutes; a real furnace
        // keeps the 3-minute defaults.
        api.set_control(&ControlSettings {
            mode: Mode::Heat,
            min_on_s: 20,
            min_off_s: 20,
            changeover_s: 20,
            ..ControlSettings::default()
        })
        .await
        .map_err(|e| anyhow::anyhow!("setting the demo control settings: {e}"))?;
        let made = house::configure(&api, RELAY_HOST, SENSOR_ID, BEDROOM_SENSOR_ID).await?;
        if made.house {
            eprintln!(
                "xtask: the house made through the API: zones Living room and Bedroom, each \
                 behind its valve, on the plant Boiler"
            );
        }
        // The past only once: a restarted demo has its own.
        let known = api.sensors().await?.iter().any(|s| s.id == SENSOR_ID);
        if known || args.history_days == 0 {
            return anyhow::Ok(None);
        }
        eprintln!(
            "xtask: seeding {} days of the living room's history (through PUT /v1/sensors/backlog)",
            args.history_days
        );
        let agent = api.with_credential(Some(sensor_credential));
        let seeded =
            history::seed(&api, &agent, SENSOR_HOST, SENSOR_ID, SENSOR_ALIAS, args.history_days)
                .await?;
        anyhow::Ok(Some(seeded))
    })?;
    if let Some(s) = seeded {
        eprintln!("xtask: seeded {} readings; the room is at {:.1} °C", s.readings, s.last_c);
    }
    let engine_flag: Vec<&str> = if discovery { vec![] } else { vec!["--engine", &url] };
    // The boiler's own short-cycle protection at the relay agent, scaled like the engine's
    // minimum times (a real boiler keeps the defaults of deploy/config/relay-agent.toml); the
    // valves have none (they open and close freely).
    let relay_toml = data.join("relay-agent.toml");
    std::fs::write(
        &relay_toml,
        "[[outputs]]\nid = \"boiler\"\nname = \"Boiler\"\nfunction_hint = \"heat\"\n\
         min_on_s = 20\nmin_off_s = 20\n\n\
         [[outputs]]\nid = \"valve-1\"\nname = \"Living room valve\"\nfunction_hint = \"valve\"\n\n\
         [[outputs]]\nid = \"valve-2\"\nname = \"Bedroom valve\"\nfunction_hint = \"valve\"\n",
    )?;
    let relay = children.start(
        RELAY_AGENT.name,
        procs::bound(bin(RELAY_AGENT))
            .args(["--config", &relay_toml.to_string_lossy()])
            .args(["--host-id", RELAY_HOST, "--device-key", &relay_key])
            .args(["--hardware", "simulated", "--sim-world", &world])
            .args(["--listen", "127.0.0.1:0"])
            .args(&engine_flag),
    )?;
    listening(relay, None)?;
    // Two rooms, each its own simulated sensor agent on the one world file, heated only while
    // its zone's valve and the boiler are both on. The living room goes on from where the
    // seeded past ended.
    let living_c = seeded.map_or(LIVING_START_C, |s| s.last_c);
    let rooms = [
        (SENSOR_HOST, &sensor_key, SENSOR_ID, SENSOR_ALIAS, "valve-1", living_c, "sensor-queue"),
        (
            BEDROOM_HOST,
            &bedroom_key,
            BEDROOM_SENSOR_ID,
            BEDROOM_ALIAS,
            "valve-2",
            BEDROOM_START_C,
            "bedroom-queue",
        ),
    ];
    for (host, key, sensor, alias, valve, start_c, queue) in rooms {
        // The sensor named here, so the agent, the history and the zone agree.
        let config = data.join(format!("{host}.toml"));
        std::fs::write(&config, format!("[[sensors]]\nid = \"{sensor}\"\nalias = \"{alias}\"\n"))?;
        children.start(
            &format!("{} ({alias})", SENSOR_AGENT.name),
            procs::bound(bin(SENSOR_AGENT))
                .args(["--config", &config.to_string_lossy()])
                .args(["--host-id", host, "--device-key", key])
                .args(["--hardware", "simulated", "--sim-world", &world, "--interval-s", "2"])
                .args(["--sim-heated-by", &format!("{valve},boiler")])
                .args(["--queue-dir", &data.join(queue).to_string_lossy()])
                .args(["--sim-start-c", &format!("{start_c:.2}")])
                .args(["--sim-time-scale", &TIME_SCALE.to_string()])
                .args(&engine_flag),
        )?;
    }
    let mut web = procs::bound(bin(WEB));
    web.args(["--listen", &format!("127.0.0.1:{web_port}")]).args(&engine_flag);
    if args.dev_assets {
        web.args(["--dev-assets", &root().join("web-ui/assets").to_string_lossy()]);
    }
    let web = children.start(WEB.name, &mut web)?;
    let web_url = listening(web, Some(("--web-port", web_port)))?;
    if let Some(report) = children.exited()? {
        anyhow::bail!("{report}");
    }
    eprintln!(
        "\n  Hearth is running. The dashboard: {web_url}   (a browser on this machine)\n  \
         Admin token (the dashboard's login; for the API: -H 'Authorization: Bearer <token>'):\n    \
         {admin}\n  \
         The engine's API: {url}\n    \
         Watch it decide: curl {url}/v1/house   What is coming: curl {url}/v1/schedule/timeline\n    \
         Live: curl -N {url}/v1/events\n  \
         Two rooms, one boiler, {TIME_SCALE}× faster than real time: the living room at \
         {living_c:.1} °C{} behind valve-1, the bedroom at {BEDROOM_START_C:.1} °C behind valve-2.\n  \
         A room warms only while its valve is open and the boiler fires; the boiler fires once a \
         valve has been open {}s, and its pump runs on {}s after it stops.\n  \
         {}\n  \
         {}\n  \
         Data in {data_s}. Ctrl-C stops everything.\n",
        if seeded.is_some() {
            format!(" (History has its last {} days)", args.history_days)
        } else {
            String::new()
        },
        house::VALVE_DELAY_S,
        house::OVERRUN_S,
        house::SCHEDULES,
        if discovery {
            "The agents and the dashboard find the engine by mDNS, on every network interface \
             that is up (in a private network namespace, a browser outside it cannot reach the \
             dashboard)."
        } else {
            "The agents and the dashboard are given the engine's URL (no mDNS; --discovery shows \
             it)."
        },
    );
    loop {
        if let Some(sig) = procs::stop_requested() {
            // The signal thread has already sent SIGTERM; dropping them waits for the exits.
            drop(children);
            eprintln!("xtask: demo stopped ({sig}); every process it started has ended");
            return Ok(());
        }
        if let Some(report) = children.exited()? {
            anyhow::bail!("{report}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
