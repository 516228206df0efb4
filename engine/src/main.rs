//! `hearth-engine`: see the library for everything; this only parses and dispatches.

use hearth_engine::{Command, Config};

fn main() -> std::process::ExitCode {
    hearth_common::init_logging("info");
    let result = hearth_common::config::load::<Config>().and_then(|config| match &config.command {
        Some(Command::DeviceKey { host_id, role, bearer }) => {
            let key = hearth_engine::issue_device_key(&config, host_id, (*role).into())?;
            let credential = key.agent_credential(host_id);
            if *bearer {
                println!("{credential}");
            } else {
                // stdout carries the key alone, so `device-key ... > hall.key` stays a key file.
                println!("{key}");
                eprintln!(
                    "device key for host {host_id} ({role} role) above: give it to the agent \
                     (--device-key, HEARTH_SENSOR_DEVICE_KEY or HEARTH_RELAY_DEVICE_KEY).\n\
                     An agent presents it as this HTTP header (see the README, third-party \
                     agents):\nAuthorization: Bearer {credential}",
                    role = format!("{role:?}").to_lowercase(),
                );
            }
            Ok(())
        }
        Some(Command::AdminToken) => {
            println!("{}", hearth_engine::print_admin_token(&config)?);
            Ok(())
        }
        Some(Command::MigrateStore { from, to }) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(hearth_engine::migrate_store(from, to)),
        Some(Command::Simulate { days, seed, bench: true, .. }) => {
            println!("{}", hearth_engine::sim::bench(*days, *seed).map_err(anyhow::Error::msg)?);
            Ok(())
        }
        Some(Command::Simulate { days, seed, algorithm, zones, bench: false }) => {
            let algorithms =
                algorithm.clone().map_or_else(hearth_engine::sim::algorithms, |a| vec![a]);
            for algorithm in algorithms {
                if let Some(rooms) = *zones {
                    let opts = hearth_engine::sim::ZoneSimOptions {
                        rooms,
                        days: *days,
                        seed: *seed,
                        algorithm,
                    };
                    let report = hearth_engine::sim::simulate_zones(&opts);
                    println!("{}", report.map_err(anyhow::Error::msg)?);
                    continue;
                }
                let opts = hearth_engine::sim::SimOptions { days: *days, seed: *seed, algorithm };
                println!("{}", hearth_engine::sim::simulate(&opts).map_err(anyhow::Error::msg)?);
            }
            Ok(())
        }
        None | Some(Command::Serve) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(hearth_engine::run(config, hearth_common::shutdown_signal())),
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-engine: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
