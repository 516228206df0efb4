//! The engine's identity on disk: the site secret (all credentials derive from it) and the
//! engine id (the stable mDNS instance name). Both are created on first start, mode 0600.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use hearth_common::auth::{SiteSecret, hex};

const SECRET_FILE: &str = "site.secret";
const ENGINE_ID_FILE: &str = "engine.id";

/// Load the site secret and engine id from `data_dir`, creating them on first start.
pub(crate) fn load_or_create(data_dir: &Path) -> anyhow::Result<(SiteSecret, String)> {
    std::fs::create_dir_all(data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create data dir {}: {e}", data_dir.display()))?;
    let secret_path = data_dir.join(SECRET_FILE);
    let secret = match std::fs::read_to_string(&secret_path) {
        Ok(text) => SiteSecret::from_hex(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", secret_path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = SiteSecret::generate()?;
            write_private(&secret_path, &secret.to_hex())?;
            tracing::info!(path = %secret_path.display(), "created a new site secret");
            secret
        }
        Err(e) => anyhow::bail!("cannot read {}: {e}", secret_path.display()),
    };
    let id_path = data_dir.join(ENGINE_ID_FILE);
    let engine_id = match std::fs::read_to_string(&id_path) {
        Ok(text) if !text.trim().is_empty() => text.trim().to_owned(),
        Ok(_) | Err(_) => {
            let mut bytes = [0u8; 6];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
            let id = hex(&bytes);
            write_private(&id_path, &id)?;
            id
        }
    };
    Ok((secret, engine_id))
}

/// Write a new file readable by its owner only; never replaces an existing one.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}
