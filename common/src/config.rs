//! Layered configuration: command-line flags > environment variables > TOML file > defaults.
//!
//! Each binary declares one `clap::Parser` struct that is also `Serialize + Deserialize`. clap
//! handles flags, env vars and defaults (so `--help` documents all three); this module lays the
//! TOML file (`--config`) under whatever was not set on the command line or in the environment.
//! Keys in the file are the long flag names with `_` instead of `-`; structured settings that
//! have no flag (lists of sensors or outputs) come from the file only.

use std::ffi::OsString;
use std::path::Path;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Parse flags and env vars from `args`, then lay the file named by the `config` argument under
/// them. clap errors (and `--help`, `--version`) exit the process with clap's message.
pub fn load<T>() -> anyhow::Result<T>
where
    T: CommandFactory + FromArgMatches + Serialize + DeserializeOwned,
{
    load_from(std::env::args_os()).or_else(|e| match e.downcast::<clap::Error>() {
        Ok(clap_err) => clap_err.exit(),
        Err(e) => Err(e),
    })
}

/// As [`load`], from the given arguments (the first is the program name). Errors are returned,
/// never printed.
pub fn load_from<T, I, S>(args: I) -> anyhow::Result<T>
where
    T: CommandFactory + FromArgMatches + Serialize + DeserializeOwned,
    I: IntoIterator<Item = S>,
    S: Into<OsString> + Clone,
{
    // Every option of the binary is global: accepted after a subcommand too
    // (`hearth-engine device-key --data-dir D hall`), as people type it.
    let command = T::command().mut_args(|a| if a.is_positional() { a } else { a.global(true) });
    let matches = command.clone().try_get_matches_from(args)?;
    let cli = T::from_arg_matches(&matches)?;
    let Some(path) = matches.get_one::<std::path::PathBuf>("config") else {
        return Ok(cli);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    layer(cli, &matches, &command, &text, path)
}

fn layer<T: Serialize + DeserializeOwned>(
    cli: T,
    matches: &clap::ArgMatches,
    command: &clap::Command,
    text: &str,
    path: &Path,
) -> anyhow::Result<T> {
    let file: serde_json::Map<String, serde_json::Value> =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))?;
    let serde_json::Value::Object(mut merged) = serde_json::to_value(&cli)? else {
        anyhow::bail!("configuration must serialize to a table");
    };
    for (key, value) in file {
        if !merged.contains_key(&key) {
            anyhow::bail!("config file {}: unknown key `{key}`", path.display());
        }
        let is_flag = command.get_arguments().any(|a| a.get_id().as_str() == key);
        let set_explicitly = is_flag
            && matches!(
                matches.value_source(&key),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            );
        if !set_explicitly {
            merged.insert(key, value);
        }
    }
    serde_json::from_value(serde_json::Value::Object(merged))
        .map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, clap::Parser, Serialize, Deserialize)]
    struct Demo {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        #[arg(long, env = "HEARTH_TEST_CONFIG_PORT", default_value_t = 1)]
        port: u16,
        #[arg(long, default_value = "a")]
        name: String,
        #[arg(skip)]
        #[serde(default)]
        items: Vec<String>,
    }

    #[test]
    fn precedence_is_flag_then_file_then_default() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "port = 7\nname = \"from-file\"\nitems = [\"x\"]\n")?;
        let f = file.to_string_lossy().to_string();
        let d: Demo = load_from(["demo", "--config", &f])?;
        assert_eq!((d.port, d.name.as_str(), d.items.len()), (7, "from-file", 1));
        let d: Demo = load_from(["demo", "--config", &f, "--port", "9"])?;
        assert_eq!((d.port, d.name.as_str()), (9, "from-file"));
        let d: Demo = load_from(["demo"])?;
        assert_eq!((d.port, d.name.as_str()), (1, "a"));
        Ok(())
    }

    #[derive(Debug, clap::Parser, Serialize, Deserialize)]
    struct WithCommand {
        #[arg(long)]
        config: Option<std::path::PathBuf>,
        #[arg(long, default_value = "/var/lib/x")]
        data_dir: String,
        #[command(subcommand)]
        command: Option<Sub>,
    }

    #[derive(Debug, clap::Subcommand, Serialize, Deserialize)]
    enum Sub {
        Key { host: String },
    }

    #[test]
    fn options_are_accepted_after_a_subcommand() -> anyhow::Result<()> {
        let c: WithCommand = load_from(["x", "key", "--data-dir", "/d", "hall"])?;
        assert_eq!(c.data_dir, "/d");
        assert!(matches!(c.command, Some(Sub::Key { ref host }) if host == "hall"));
        let c: WithCommand = load_from(["x", "--data-dir", "/e", "key", "hall"])?;
        assert_eq!(c.data_dir, "/e");
        // The file is found, and a flag after the subcommand still wins over it.
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "data_dir = \"/from-file\"\n")?;
        let f = file.to_string_lossy().to_string();
        let c: WithCommand = load_from(["x", "key", "--config", &f, "hall"])?;
        assert_eq!(c.data_dir, "/from-file");
        let c: WithCommand = load_from(["x", "key", "--config", &f, "--data-dir", "/flag", "h"])?;
        assert_eq!(c.data_dir, "/flag");
        Ok(())
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("c.toml");
        let f = file.to_string_lossy().to_string();
        std::fs::write(&file, "prot = 7\n")?;
        let err = load_from::<Demo, _, _>(["demo", "--config", &f]).err();
        assert!(err.is_some_and(|e| e.to_string().contains("unknown key `prot`")));
        std::fs::write(&file, "port = \"seven\"\n")?;
        assert!(load_from::<Demo, _, _>(["demo", "--config", &f]).is_err());
        assert!(load_from::<Demo, _, _>(["demo", "--config", "/nonexistent.toml"]).is_err());
        Ok(())
    }
}
