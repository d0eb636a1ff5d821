//! `pz_brier(pdf, ztrue [, zmin, zmax])`: the Brier score of the PDF's bin probabilities.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{PdfMeanAggregate, PdfMeanSpec};
use crate::photoz::grid::ZGrid;

/// Σ_i (P_i − O_i)² where P_i is the probability of the cell around grid point i (the PDF's
/// trapezoid weight there, so Σ P = 1 for a normalised PDF) and O is 1 at the grid point
/// nearest ztrue, 0 elsewhere (all 0 when ztrue is off the grid). Bounded: 0 ≤ B ≤ 2.
pub fn brier(pdf: &[f64], grid: &ZGrid, ztrue: f64) -> f64 {
    let n = pdf.len();
    let h = grid.step();
    let hit =
        (ztrue >= grid.zmin - 0.5 * h && ztrue <= grid.zmax + 0.5 * h).then(|| grid.nearest(ztrue));
    let mut s = 0.0;
    for (i, v) in pdf.iter().enumerate() {
        let w = if i == 0 || i + 1 == n { 0.5 * h } else { h };
        let p = v * w;
        let o = if hit == Some(i) { 1.0 } else { 0.0 };
        s += (p - o) * (p - o);
    }
    s
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Brier score, bounded form: mean over objects of Σ_i (P_i − O_i)², where P_i is the \
         probability the normalised PDF puts in the cell of grid point i and O_i is 1 for the \
         cell holding ztrue. 0 is perfect, 2 the worst. PDFs that cannot be normalised, and \
         rows with a null PDF or ztrue, are left out: pz_pdf_excluded(pdf, ztrue) counts them.",
        "pz_brier(pdf, ztrue [, zmin, zmax])",
    )
    .with_sql_example("SELECT pz_brier(pdf, redshift) FROM t;")
    .with_argument(
        "pdf",
        "FixedSizeList or List of Float32/Float64 sampled on the grid",
    )
    .with_argument("ztrue", "reference redshift")
    .with_argument(
        "zmin, zmax",
        "grid limits when the pdf field has no pz grid metadata",
    )
    .build()
});

pub static SPEC: PdfMeanSpec = PdfMeanSpec {
    name: "pz_brier",
    term: brier,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    PdfMeanAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        let g = ZGrid::default();
        // All mass in the true cell: 0. All mass in another cell: 2.
        let mut p = vec![0.0; 301];
        p[100] = 1.0 / g.step();
        assert!(brier(&p, &g, 1.0).abs() < 1e-12);
        assert!((brier(&p, &g, 2.0) - 2.0).abs() < 1e-12);
    }
}
