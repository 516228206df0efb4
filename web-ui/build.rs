//! Embeds every file under `assets/` in the binary: generates `$OUT_DIR/assets.rs`, a table of
//! (name, content type, ETag, bytes). The dashboard then works with no network and no files
//! beside the binary. No dependency: a directory walk and an FNV-1a hash for the ETag.

#[path = "src/mime.rs"]
#[allow(unreachable_pub)]
mod mime;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    // Read when the script runs, not when it was compiled: a build script compiled in another
    // checkout (a moved target dir) must not embed that checkout's files, or none.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let dir = Path::new(&manifest).join("assets");
    // A directory makes cargo rerun this script when anything under it changes. Relative to
    // the package: cargo then checks THIS checkout's files, where an absolute path would keep
    // checking the checkout that last ran the script (a target dir shared or copied between
    // checkouts would embed that checkout's dashboard, whatever is edited here).
    println!("cargo:rerun-if-changed=assets");
    println!("cargo:rerun-if-changed=src/mime.rs");
    let mut files = Vec::new();
    walk(&dir, &mut files);
    files.sort();
    // A dashboard without its page is a build error, not a binary that answers 404.
    assert!(
        files.iter().any(|f| f.ends_with("index.html")),
        "{}: no index.html to embed",
        dir.display()
    );
    let mut out = String::from("/// Every embedded asset, by path under `assets/`.\n");
    out.push_str("pub(crate) static ASSETS: &[Asset] = &[\n");
    for file in &files {
        let name = file.strip_prefix(&dir).map(|p| p.to_string_lossy().replace('\\', "/"));
        let Ok(name) = name else { continue };
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let _ = writeln!(
            out,
            "    Asset {{ name: {name:?}, content_type: {:?}, etag: \"\\\"{:016x}\\\"\", body: include_bytes!({:?}) }},",
            mime::content_type(&name),
            fnv1a(&bytes),
            file.display().to_string(),
        );
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    std::fs::write(dest.join("assets.rs"), out).unwrap_or_else(|e| panic!("assets.rs: {e}"));
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else if !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')) {
            files.push(path);
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}
