//! What a pipeline records beside its output: inputs with checksums, configuration, timing.

use std::path::{Path, PathBuf};

use datafusion::common::{exec_datafusion_err, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// One input as provenance records it.
#[derive(Debug, Clone, Serialize)]
pub struct InputRecord {
    pub role: String,
    pub path: String,
    pub rows: u64,
    /// SHA-256 of the file, or for a directory (a HATS catalog) of every file's relative
    /// path and bytes in path order.
    pub sha256: String,
}

/// SHA-256 of a file or of a directory tree.
pub fn checksum(path: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    let meta =
        std::fs::metadata(path).map_err(|e| exec_datafusion_err!("{}: {e}", path.display()))?;
    if meta.is_file() {
        feed(&mut hasher, path)?;
    } else {
        let mut files = Vec::new();
        walk(path, &mut files)?;
        files.sort();
        for f in files {
            let rel = f
                .strip_prefix(path)
                .unwrap_or(&f)
                .to_string_lossy()
                .into_owned();
            hasher.update(rel.as_bytes());
            hasher.update([0u8]);
            feed(&mut hasher, &f)?;
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

fn feed(hasher: &mut Sha256, path: &Path) -> Result<()> {
    use std::io::Read;
    let mut f =
        std::fs::File::open(path).map_err(|e| exec_datafusion_err!("{}: {e}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| exec_datafusion_err!("{}: {e}", path.display()))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(|e| exec_datafusion_err!("{}: {e}", dir.display()))? {
        let p = e
            .map_err(|e| exec_datafusion_err!("{}: {e}", dir.display()))?
            .path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}
