//! Shared helpers for pz's cross-crate tests.

use std::path::PathBuf;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared` beside the project, when it is there.
pub fn shared_dir() -> Option<PathBuf> {
    let p = workspace_root().join("../shared");
    p.join("README.md")
        .is_file()
        .then(|| p.canonicalize().unwrap_or(p))
}

/// The shared HATS data, or `None` after printing why the calling test skips.
pub fn shared_hats(test: &str) -> Option<PathBuf> {
    match shared_dir()
        .map(|d| d.join("data/hats"))
        .filter(|d| d.join("objects").is_dir())
    {
        Some(d) => Some(d),
        None => {
            println!("SKIP {test}: ../shared/data/hats is not beside the project");
            None
        }
    }
}

/// Cells of a result as strings (NULL for nulls), row by row.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let opts = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let fmts: Vec<_> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).expect("formattable column"))
            .collect();
        for r in 0..b.num_rows() {
            out.push(fmts.iter().map(|f| f.value(r).to_string()).collect());
        }
    }
    out
}

/// A small mock sky, written once per test process into a temp dir kept for its life.
pub fn small_sky(
    objects: usize,
    seed: u64,
) -> (tempfile::TempDir, pz_engine::simulate::SimulateSummary) {
    let dir = tempfile::tempdir().expect("temp dir");
    let cfg = pz_engine::simulate::SimulateConfig {
        objects,
        specz: objects / 20,
        seed,
        out: dir.path().join("sky"),
        pixel_threshold: (objects as u64 / 8).max(100),
        ..Default::default()
    };
    let s = pz_engine::simulate::simulate(&cfg).expect("simulate");
    (dir, s)
}
