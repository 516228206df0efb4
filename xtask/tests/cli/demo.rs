//! The demo, run as `cargo xtask demo` runs it (the real xtask binary, which builds and starts
//! the real binaries), on free loopback ports with its own data dir, and no mDNS (the default,
//! so no network namespace is needed). Stopped the ways it gets stopped: SIGTERM (a service
//! manager, `timeout`, an IDE), SIGHUP, and `kill -9` of xtask itself; and started on a port
//! that is taken.

use std::time::Duration;

use hearth_proto::client::EngineClient;

use super::{Leftovers, Running, alive, children_of, port_free, port_in, root, scratch, xtask};

type R = anyhow::Result<()>;

/// A fresh clone builds the four binaries first (in the same target dir as these tests).
const BUILD_AND_START: Duration = Duration::from_secs(900);
const STOP_WITHIN: Duration = Duration::from_secs(30);

/// The demo's four children, as started, and the ports they listen on.
struct Demo {
    xtask: Running,
    children: Leftovers,
    ports: Vec<u16>,
    engine_url: String,
    _data: tempfile::TempDir,
}

/// Start `cargo xtask demo --port 0 --web-port 0 --data-dir <fresh>` and wait until it runs.
fn start_demo() -> anyhow::Result<Demo> {
    let data = scratch()?;
    let mut xtask = Running::start(
        xtask()
            .args(["demo", "--port", "0", "--web-port", "0", "--data-dir"])
            .arg(data.path())
            .current_dir(root()),
    )?;
    xtask.line_with("Hearth is running", BUILD_AND_START)?;
    // Each server said where it listens before xtask printed that.
    let log = xtask.said();
    let mut ports = Vec::new();
    for who in ["[engine] ", "[relay agent] ", "[web] "] {
        let line = log
            .lines()
            .find(|l| l.starts_with(who) && l.contains("listening on http://"))
            .ok_or_else(|| anyhow::anyhow!("{who}never said where it listens:\n{log}"))?;
        ports.push(port_in(line)?);
    }
    let engine_url = format!("http://127.0.0.1:{}", ports[0]);
    let children = children_of(xtask.pid());
    let names: Vec<&str> = children.iter().map(|p| p.comm.as_str()).collect();
    // /proc's comm is cut at 15 bytes.
    for name in ["hearth-engine", "hearth-relay-ag", "hearth-sensor-a", "hearth-web"] {
        anyhow::ensure!(names.contains(&name), "no {name} among xtask's children: {children:?}");
    }
    Ok(Demo { xtask, children: Leftovers(children), ports, engine_url, _data: data })
}

impl Demo {
    /// Every child gone (waiting up to [`STOP_WITHIN`] for them), every port free.
    fn assert_all_gone(&self) -> R {
        let deadline = std::time::Instant::now() + STOP_WITHIN;
        while self.children.0.iter().any(alive) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left: Vec<_> = self.children.0.iter().filter(|p| alive(p)).collect();
        assert!(left.is_empty(), "still running: {left:?}\n{}", self.xtask.said());
        for port in &self.ports {
            assert!(port_free(*port), "port {port} is still bound\n{}", self.xtask.said());
        }
        Ok(())
    }
}

fn signal(pid: u32, sig: &str) -> R {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status()?.success();
    anyhow::ensure!(ok, "kill {sig} {pid} failed");
    Ok(())
}

#[test]
fn demo_stopped_by_sigterm_leaves_no_process_and_no_bound_port() -> R {
    let mut demo = start_demo()?;

    // The seeded past is there at once: the last 24 hours of readings reach back about a day
    // (the live sensor has reported for seconds only).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let page =
        rt.block_on(EngineClient::new(&demo.engine_url, None).readings("28-00000000a001"))?;
    let oldest = page.points.first().map(|p| p.at);
    let day_ago =
        hearth_proto::Timestamp::now().checked_sub(jiff::SignedDuration::from_hours(20))?;
    assert!(
        oldest.is_some_and(|t| t < day_ago),
        "no seeded history: the oldest reading of the last day is {oldest:?} ({} points)",
        page.points.len()
    );

    // Two rooms, one boiler: the house the demo made through the API, each room reporting
    // from its own sensor agent.
    let api = EngineClient::new(&demo.engine_url, None);
    let house = rt.block_on(api.zones())?;
    let zones: Vec<_> =
        house.zones.iter().map(|z| (z.id.as_str(), z.name.as_str(), z.valves.join(","))).collect();
    assert_eq!(
        zones,
        [
            ("house", "Living room", "demo-relay/valve-1".to_owned()),
            ("bedroom", "Bedroom", "demo-relay/valve-2".to_owned())
        ]
    );
    let plants: Vec<_> = house.plants.iter().map(|p| (p.id.as_str(), p.zones.join(","))).collect();
    assert_eq!(plants, [("boiler", "house,bedroom".to_owned())]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while rt.block_on(api.readings("28-00000000b001")).map_or(true, |p| p.points.is_empty()) {
        anyhow::ensure!(std::time::Instant::now() < deadline, "the bedroom never reported");
        std::thread::sleep(Duration::from_millis(200));
    }

    signal(demo.xtask.pid(), "-TERM")?;
    let status = demo.xtask.exit(STOP_WITHIN)?;
    demo.assert_all_gone()?;
    // A stop is the demo's normal end.
    assert!(status.success(), "the demo ended with {status}:\n{}", demo.xtask.said());
    let said = demo.xtask.said();
    assert!(said.contains("every process it started has ended"), "{said}");
    Ok(())
}

#[test]
fn demo_stopped_by_sighup_leaves_no_process_and_no_bound_port() -> R {
    let mut demo = start_demo()?;
    signal(demo.xtask.pid(), "-HUP")?;
    let status = demo.xtask.exit(STOP_WITHIN)?;
    demo.assert_all_gone()?;
    assert!(status.success(), "the demo ended with {status}:\n{}", demo.xtask.said());
    Ok(())
}

/// `kill -9` of xtask cannot be caught: its children go because the kernel signals them when
/// their parent dies.
#[test]
fn demo_killed_with_sigkill_takes_its_children_along() -> R {
    let mut demo = start_demo()?;
    signal(demo.xtask.pid(), "-KILL")?;
    demo.xtask.exit(STOP_WITHIN)?;
    demo.assert_all_gone()
}

/// A port already taken: xtask notices the child that stopped, shows what it said and names
/// the flag that picks another port, at once (not after waiting for an answer).
#[test]
fn a_busy_port_is_reported_with_the_childs_message_and_the_flag() -> R {
    for (flag, other) in [("--port", "--web-port"), ("--web-port", "--port")] {
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = taken.local_addr()?.port().to_string();
        let data = scratch()?;
        let mut xtask = Running::start(
            xtask()
                .args(["demo", flag, &port, other, "0", "--data-dir"])
                .arg(data.path())
                .current_dir(root()),
        )?;
        let status = xtask.exit(BUILD_AND_START)?;
        let said = xtask.said();
        assert_eq!(status.code(), Some(1), "{flag} {port} taken: {status}\n{said}");
        assert!(said.contains("Address already in use"), "the child's message is missing:\n{said}");
        assert!(
            said.contains(&format!("Port {port} is taken"))
                && said.contains(&format!("cargo xtask demo {flag} <port>")),
            "no advice to use {flag}:\n{said}"
        );
        assert!(!said.contains("did not answer"), "{said}");
        drop(taken);
    }
    Ok(())
}
