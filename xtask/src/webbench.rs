//! `cargo xtask bench web`: what the dashboard costs. The release builds of the engine and
//! hearth-web on loopback (no mDNS: `--engine URL`), then:
//! - the page: bytes of every embedded file, and the binary's size;
//! - the relay: latency of `GET /v1/control` straight from the engine and through
//!   `/api/v1/control` (sequential, so the overhead per request shows);
//! - live events: 100 dashboards connected to `/api/events`, one reading posted to the engine,
//!   the time until every dashboard has it;
//! - memory: hearth-web's RSS idle and with those 100 streams open.
//!
//! Figures are printed, never asserted (timed tests are not tests).

use std::time::{Duration, Instant};

use hearth_proto::client::EngineClient;
use hearth_proto::sensors::{SensorReport, SensorUpdate};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::bench::proc_usage;
use hearth_harness::procs::{self, Children};
use hearth_harness::{ENGINE, SENSOR_AGENT, WEB, root};

const REQUESTS: usize = 2000;
const STREAMS: usize = 100;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub(crate) fn bench_web(_static_link: bool) -> anyhow::Result<()> {
    hearth_harness::build("build the engine and hearth-web (release)", "release", &[ENGINE, WEB])?;
    let engine_bin = hearth_harness::binary("release", ENGINE.package);
    let web_bin = hearth_harness::binary("release", WEB.package);
    let work = tempfile::tempdir()?;
    let data = work.path().to_string_lossy().to_string();
    let key: hearth_common::auth::DeviceCredential =
        hearth_harness::device_key(&engine_bin, work.path(), SENSOR_AGENT, "bench")?.parse()?;
    let agent_credential = key.agent_credential("bench");

    let mut children = Children::default();
    let engine_url = crate::bench::start_engine(&mut children, &engine_bin, &data)?;
    let web = children.start(
        WEB.package,
        procs::bound(&web_bin)
            .args(["--listen", "127.0.0.1:0", "--engine", &engine_url])
            .env("RUST_LOG", "warn,hearth_web=info"),
    )?;
    let web_url = web.listening_url(Duration::from_secs(30))?;
    let web_pid = web.id();
    let web_port: u16 =
        web_url.rsplit(':').next().and_then(|p| p.parse().ok()).ok_or_else(|| {
            anyhow::anyhow!("hearth-web listens at {web_url}, which names no port")
        })?;

    // What build.rs embeds: every file but dotfiles.
    let files: Vec<u64> = std::fs::read_dir(root().join("web-ui/assets"))?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .collect();
    let assets: u64 = files.iter().sum();
    let binary = std::fs::metadata(&web_bin)?.len();

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let direct = EngineClient::new(&engine_url, None);
        // The dashboard's relay speaks the engine's paths under /api.
        let relayed = EngineClient::new(&format!("{web_url}/api"), None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while relayed.status().await.is_err() {
            anyhow::ensure!(Instant::now() < deadline, "hearth-web did not relay at {web_url}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (idle_rss, _, _) = proc_usage(web_pid)?;

        let mut times = [Vec::new(), Vec::new()];
        for (i, client) in [&direct, &relayed].into_iter().enumerate() {
            for _ in 0..REQUESTS {
                let t = Instant::now();
                client.control().await?;
                times[i].push(t.elapsed());
            }
            times[i].sort();
        }

        // Dashboards: raw HTTP/1.1 streams, each reading until it sees a reading event.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..STREAMS {
            let (tx, ready_tx) = (tx.clone(), ready_tx.clone());
            tokio::spawn(async move {
                let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", web_port)).await
                else {
                    return;
                };
                let req = "GET /api/events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
                if s.write_all(req.as_bytes()).await.is_err() {
                    return;
                }
                let mut lines = BufReader::new(s).lines();
                let mut told = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.is_empty() && !told {
                        // The headers are in: this dashboard is subscribed.
                        told = true;
                        let _ = ready_tx.send(());
                    }
                    if line.contains("\"type\":\"reading\"") {
                        let _ = tx.send(Instant::now());
                        return;
                    }
                }
            });
        }
        for _ in 0..STREAMS {
            ready_rx.recv().await.ok_or_else(|| anyhow::anyhow!("a stream failed"))?;
        }
        let streams_rss = proc_usage(web_pid)?.0;
        let agent = EngineClient::new(&engine_url, Some(agent_credential.clone()));
        let sent = Instant::now();
        agent
            .sensor_update(&SensorUpdate {
                host_id: "bench".into(),
                sensors: [(
                    "28-00000000beef".to_owned(),
                    SensorReport {
                        kind: "DS18B20".into(),
                        value: Some(21.0),
                        alias: None,
                        extra: None,
                        timestamp: None,
                    },
                )]
                .into(),
                agent_time: None,
            })
            .await?;
        let mut arrivals = Vec::new();
        for _ in 0..STREAMS {
            let at = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .ok()
                .flatten()
                .ok_or_else(|| anyhow::anyhow!("a dashboard never got the reading"))?;
            arrivals.push(at.duration_since(sent));
        }
        arrivals.sort();

        let mib = |kib: u64| kib as f64 / 1024.0;
        println!("hearth-web (release, loopback, engine with an empty SQLite file):");
        println!(
            "  the page: {:.1} KiB in {} embedded files (uncompressed); binary {:.2} MiB",
            assets as f64 / 1024.0,
            files.len(),
            binary as f64 / (1024.0 * 1024.0)
        );
        for (name, t) in [("engine direct", &times[0]), ("through hearth-web", &times[1])] {
            println!(
                "  GET control, {name}: p50 {:.2} ms  p99 {:.2} ms  ({REQUESTS} sequential)",
                ms(percentile(t, 0.5)),
                ms(percentile(t, 0.99))
            );
        }
        println!(
            "  relay overhead at p50: {:.2} ms",
            ms(percentile(&times[1], 0.5).saturating_sub(percentile(&times[0], 0.5)))
        );
        println!(
            "  one reading to {STREAMS} dashboards (engine ingest + relay): first {:.1} ms, median {:.1} ms, last {:.1} ms",
            ms(arrivals[0]),
            ms(percentile(&arrivals, 0.5)),
            ms(arrivals[arrivals.len() - 1])
        );
        println!(
            "  RSS: idle {:.1} MiB, with {STREAMS} event streams {:.1} MiB",
            mib(idle_rss),
            mib(streams_rss)
        );
        anyhow::Ok(())
    })?;
    drop(children);
    Ok(())
}
