//! What the pipelines share: SQL quoting, input kinds, counting rows, staged output directories.

use std::path::{Path, PathBuf};

use datafusion::common::{exec_datafusion_err, plan_err, Result};

/// A SQL identifier in double quotes.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A SQL string literal.
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The first value of a one-number query (e.g. `SELECT count(*) …`), 0 for no row.
pub async fn count(ctx: &crate::PzContext, sql: &str) -> Result<u64> {
    let rows = super::validate::f64_rows(ctx, sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().copied().flatten())
        .unwrap_or(0.0) as u64)
}

/// How to read an input path: `HATS` (a catalog directory), `CSV` or `PARQUET`.
pub fn input_kind(path: &Path) -> &'static str {
    if path.join("hats.properties").is_file()
        || path.join("properties").is_file()
        || path.join("catalog_info.json").is_file()
    {
        "HATS"
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    {
        "CSV"
    } else {
        "PARQUET"
    }
}

/// An output directory built in a temporary sibling and moved into place only when it is
/// complete; dropped without [`StagedDir::commit`], it leaves nothing behind.
pub struct StagedDir {
    out: PathBuf,
    tmp: PathBuf,
    pipeline: &'static str,
    committed: bool,
}

impl StagedDir {
    /// Refuses an `out` that exists and is not empty (before any work is done).
    pub fn check_free(out: &Path, pipeline: &'static str) -> Result<()> {
        let busy = out.exists()
            && std::fs::read_dir(out)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true);
        if busy {
            return plan_err!("{pipeline}: {} exists and is not empty", out.display());
        }
        Ok(())
    }

    pub fn create(out: &Path, pipeline: &'static str) -> Result<Self> {
        Self::check_free(out, pipeline)?;
        let parent = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent)
            .map_err(|e| exec_datafusion_err!("{}: {e}", parent.display()))?;
        let name = out
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.pz-tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .map_err(|e| exec_datafusion_err!("{}: {e}", tmp.display()))?;
        Ok(StagedDir {
            out: out.to_path_buf(),
            tmp,
            pipeline,
            committed: false,
        })
    }

    /// Where to write meanwhile.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Moves the finished directory to its place.
    pub fn commit(mut self) -> Result<()> {
        if self.out.exists() {
            // Empty, as checked at creation.
            let _ = std::fs::remove_dir(&self.out);
        }
        std::fs::rename(&self.tmp, &self.out).map_err(|e| {
            exec_datafusion_err!(
                "{}: cannot move the output to {}: {e}",
                self.pipeline,
                self.out.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
        }
    }
}
