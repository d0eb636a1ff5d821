//! Photo-z validation metrics as SQL functions, one per file.
//!
//! Point metrics are aggregates over `(zphot, ztrue)` with dz = (zphot − ztrue)/(1 + ztrue);
//! PDF metrics take a `pdf` (FixedSizeList or List of floats) with its grid from the field
//! metadata pz writes, explicit `zmin, zmax`, or the default z ∈ [0, 3] with 301 points.
//! Every aggregate merges partial states exactly, so one partition, many, or a Ballista
//! cluster give the same answer. The numbers equal RAIL's (`rail.evaluation`, qp) on the
//! same inputs; each function's documentation says where a convention is RAIL's own.
//!
//! Nothing is dropped silently: null inputs are left out (as SQL's aggregates do) and the
//! PDFs the PDF metrics cannot use are counted by `pz_pdf_excluded` and named per row by
//! `pz_pdf_status`; values that are present but unusable (NaN redshifts, PIT values outside
//! [0, 1], PDFs that do not fit the grid) are errors.

pub mod aggregate;
pub mod bias;
pub mod brier;
pub mod cde_loss;
pub mod crps;
pub mod nz;
pub mod outlier_frac;
pub mod outlier_rate_rail;
pub mod pdf_arg;
pub mod pdf_excluded;
pub mod pit;
pub mod pit_ad;
pub mod pit_cvm;
pub mod pit_ks;
pub mod pit_outlier_rate;
pub mod sigma_iqr;
pub mod sigma_nmad;
pub mod stats;
pub mod tomo_bin;

use std::sync::Arc;

use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

pub const DOC_SECTION: datafusion::logical_expr::DocSection =
    datafusion::logical_expr::DocSection {
        include: true,
        label: "Photo-z Validation Functions",
        description: Some(
            "Point, PDF and N(z) metrics of photo-z estimates against reference redshifts.",
        ),
    };

/// The scalar validation functions.
pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![pit::udf(), pdf_excluded::status_udf(), tomo_bin::udf()]
}

/// The validation aggregates.
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    [
        bias::udaf(),
        sigma_nmad::udaf(),
        sigma_iqr::udaf(),
        outlier_frac::udaf(),
        outlier_rate_rail::udaf(),
        pit_ks::udaf(),
        pit_cvm::udaf(),
        pit_ad::udaf(),
        pit_outlier_rate::udaf(),
        cde_loss::udaf(),
        crps::udaf(),
        brier::udaf(),
        nz::udaf(),
        pdf_excluded::udaf(),
    ]
    .into_iter()
    .map(Arc::new)
    .collect()
}

/// Normal-distribution helpers for the kernels' tests.
#[cfg(test)]
pub(crate) mod stats_test {
    pub fn normal_pdf(x: f64) -> f64 {
        (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
    }

    /// Φ(x) by Simpson integration of the density from 0 (error ~1e-13 for |x| < 10).
    pub fn normal_cdf(x: f64) -> f64 {
        let n = 2_000;
        let h = x / n as f64;
        let mut s = normal_pdf(0.0) + normal_pdf(x);
        for i in 1..n {
            let w = if i % 2 == 1 { 4.0 } else { 2.0 };
            s += w * normal_pdf(i as f64 * h);
        }
        0.5 + s * h / 3.0
    }

    /// Inverse of Φ by bisection.
    pub fn probit(p: f64) -> f64 {
        let (mut lo, mut hi) = (-10.0, 10.0);
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if normal_cdf(mid) < p {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        0.5 * (lo + hi)
    }
}
