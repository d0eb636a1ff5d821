//! The mock sky's SEDs and filters in BPZ's formats (`.sed`, `.res`, `.list`), so BPZ can be
//! informed on a simulated sky with no outside data.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use datafusion::common::{exec_datafusion_err, Result};

use super::photometry::{filter_transmission, sed_fnu, BANDS, BAND_EDGES};

/// Template types along the simulation's E → starburst sequence: one elliptical, two spirals,
/// three irregular/starburst (BPZ's three broad types, `nt_array` 1,2,3).
pub const TEMPLATE_TYPES: [f64; 6] = [0.05, 0.3, 0.5, 0.7, 0.85, 1.0];
/// Dust of the templates: the middle of the simulation's E(B−V) draws.
pub const TEMPLATE_EBV: f64 = 0.1;
pub const TEMPLATE_LIST: &str = "PZSIM.list";
pub const FILTER_PREFIX: &str = "PZSIM";

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text)
        .map_err(|e| exec_datafusion_err!("cannot write {}: {e}", path.display()))
}

/// Writes `dir/SED/*.sed`, `dir/SED/PZSIM.list` and `dir/FILTER/PZSIM_{u…y}.res`; returns
/// the SED and FILTER directories.
pub fn write_bpz_inputs(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let sed_dir = dir.join("SED");
    let filter_dir = dir.join("FILTER");
    for d in [&sed_dir, &filter_dir] {
        std::fs::create_dir_all(d)
            .map_err(|e| exec_datafusion_err!("cannot create {}: {e}", d.display()))?;
    }
    let mut list = String::new();
    for (i, &t) in TEMPLATE_TYPES.iter().enumerate() {
        let name = format!("pzsim_{i}_t{:03}.sed", (t * 100.0).round() as i64);
        let mut text = format!(
            "# pz simulate template: type t = {t}, E(B-V) = {TEMPLATE_EBV}\n# lambda[A] f_lambda\n"
        );
        let mut lam = 500.0;
        while lam <= 30_000.0 {
            // f_λ ∝ f_ν / λ²; the scale is arbitrary (BPZ fits an amplitude).
            let f = sed_fnu(t, TEMPLATE_EBV, lam) / (lam * lam) * 1e8;
            let _ = writeln!(text, "{lam:.1} {f:.6e}");
            lam += if lam < 10_000.0 { 5.0 } else { 20.0 };
        }
        write(&sed_dir.join(&name), &text)?;
        let _ = writeln!(list, "{name}");
    }
    write(&sed_dir.join(TEMPLATE_LIST), &list)?;
    for (b, band) in BANDS.iter().enumerate() {
        let (lo, hi) = BAND_EDGES[b];
        let mut text = format!("# pz simulate filter {band}: smooth top hat {lo}-{hi} A\n");
        let mut lam = lo - 400.0;
        while lam <= hi + 400.0 {
            let _ = writeln!(text, "{lam:.1} {:.6}", filter_transmission(b, lam));
            lam += 5.0;
        }
        write(
            &filter_dir.join(format!("{FILTER_PREFIX}_{band}.res")),
            &text,
        )?;
    }
    Ok((sed_dir, filter_dir))
}

/// The CREATE MODEL options that point BPZ at these files.
pub fn bpz_options(dir: &Path) -> String {
    let q = |p: PathBuf| p.display().to_string().replace('\'', "''");
    format!(
        "sed_dir '{}', filter_dir '{}', template_list '{TEMPLATE_LIST}', filters '{}', madau 'true'",
        q(dir.join("SED")),
        q(dir.join("FILTER")),
        BANDS.iter().map(|b| format!("{FILTER_PREFIX}_{b}")).collect::<Vec<_>>().join(",")
    )
}
