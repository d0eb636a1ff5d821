//! `pz_crps(pdf, ztrue [, zmin, zmax])`: the continuous ranked probability score.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{PdfMeanAggregate, PdfMeanSpec};
use crate::photoz::grid::ZGrid;

/// ∫ (F(z) − 1[z ≥ ztrue])² dz for a PDF with unit trapezoid integral on `grid`. F is the
/// exact integral of the linearly interpolated PDF (quadratic within a cell); the integral
/// is exact per cell by Simpson's rule, and the cell holding ztrue is split there. Outside
/// the grid F is 0 below and 1 above, so a ztrue off the grid adds its distance to it.
pub fn crps(pdf: &[f64], grid: &ZGrid, ztrue: f64) -> f64 {
    let n = pdf.len();
    let h = grid.step();
    let mut total = 0.0;
    let mut f_lo = 0.0;
    for i in 0..n - 1 {
        let (z0, z1) = (grid.z(i), grid.z(i + 1));
        let (p0, p1) = (pdf[i], pdf[i + 1]);
        let slope = (p1 - p0) / h;
        // F at z0 + s within the cell.
        let f_at = |s: f64| f_lo + p0 * s + 0.5 * slope * s * s;
        // ∫ (F − c)² over [a, b] ⊂ cell: the integrand is a quartic; Simpson's rule on two
        // halves is not exact for it, so use 3-point Gauss–Legendre (exact to degree 5).
        let piece = |a: f64, b: f64, c: f64| {
            let (mid, half) = (0.5 * (a + b), 0.5 * (b - a));
            let r = (0.6f64).sqrt();
            let g = |s: f64| (f_at(s) - c).powi(2);
            half * (5.0 / 9.0 * g(mid - half * r)
                + 8.0 / 9.0 * g(mid)
                + 5.0 / 9.0 * g(mid + half * r))
        };
        total += if ztrue <= z0 {
            piece(0.0, h, 1.0)
        } else if ztrue >= z1 {
            piece(0.0, h, 0.0)
        } else {
            let s = ztrue - z0;
            piece(0.0, s, 0.0) + piece(s, h, 1.0)
        };
        f_lo = f_at(h);
    }
    if ztrue < grid.zmin {
        total += grid.zmin - ztrue;
    } else if ztrue > grid.zmax {
        total += ztrue - grid.zmax;
    }
    total
}

static DOC: LazyLock<Documentation> =
    LazyLock::new(|| {
        Documentation::builder(
        super::DOC_SECTION,
        "Continuous ranked probability score: mean over objects of ∫(CDF(z) − H(z − ztrue))² dz, \
         with each PDF normalised to unit integral and read as linear between grid points; \
         the CDF is 0 below the grid and 1 above it. In units of redshift; lower is better. \
         PDFs that cannot be normalised, and rows with a null PDF or ztrue, are left out: \
         pz_pdf_excluded(pdf, ztrue) counts them.",
        "pz_crps(pdf, ztrue [, zmin, zmax])",
    )
    .with_sql_example("SELECT pz_crps(pdf, redshift) FROM t;")
    .with_argument("pdf", "FixedSizeList or List of Float32/Float64 sampled on the grid")
    .with_argument("ztrue", "reference redshift")
    .with_argument("zmin, zmax", "grid limits when the pdf field has no pz grid metadata")
    .build()
    });

pub static SPEC: PdfMeanSpec = PdfMeanSpec {
    name: "pz_crps",
    term: crps,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    PdfMeanAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::pdf_arg::normalise;
    use crate::metrics::stats_test::{normal_cdf, normal_pdf};

    #[test]
    fn gaussian_crps_has_its_closed_form() {
        // CRPS(N(μ, σ), y) = σ [x(2Φ(x) − 1) + 2φ(x) − 1/√π], x = (y − μ)/σ.
        let g = ZGrid::new(0.0, 3.0, 3001).unwrap();
        let (mu, sigma) = (1.2, 0.08);
        let mut p: Vec<f64> = g
            .points()
            .iter()
            .map(|z| normal_pdf((z - mu) / sigma) / sigma)
            .collect();
        normalise(&mut p, &g).unwrap();
        for y in [1.2, 1.25, 0.9, 2.0] {
            let x = (y - mu) / sigma;
            let exact = sigma
                * (x * (2.0 * normal_cdf(x) - 1.0) + 2.0 * normal_pdf(x)
                    - 1.0 / std::f64::consts::PI.sqrt());
            let got = crps(&p, &g, y);
            // Linear interpolation of the PDF errs by ~(h/σ)²/12 ≈ 1.3e-5 relative here.
            assert!(
                (got - exact).abs() < 5e-5 * exact,
                "y {y}: {got} vs {exact}"
            );
        }
        // Off the grid: the distance is added.
        let far = crps(&p, &g, 3.5);
        assert!((far - (crps(&p, &g, 3.0) + 0.5)).abs() < 1e-9);
    }
}
