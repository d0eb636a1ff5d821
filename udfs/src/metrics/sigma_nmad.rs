//! `pz_sigma_nmad(zphot, ztrue)`: 1.4826 · median|dz − median dz|, as RAIL's `PointSigmaMAD`.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};
use super::stats::{median, quantile_sorted};

/// Normalised median absolute deviation of sorted dz values.
pub fn sigma_nmad(sorted_dz: &[f64]) -> f64 {
    let m = quantile_sorted(sorted_dz, 0.5);
    let mut dev: Vec<f64> = sorted_dz.iter().map(|d| (d - m).abs()).collect();
    1.4826 * median(&mut dev)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Photo-z scatter: σ_NMAD = 1.4826 · median|dz − median(dz)| with dz = (zphot − ztrue)/(1 + \
         ztrue) (RAIL's PointSigmaMAD). Exact.",
        "pz_sigma_nmad(zphot, ztrue)",
    )
    .with_sql_example("SELECT pz_sigma_nmad(z_mode, redshift) FROM t;")
    .with_argument("zphot", "point estimate")
    .with_argument("ztrue", "reference redshift")
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_sigma_nmad",
    input: ValuesInput::Dz,
    finish: sigma_nmad,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    #[test]
    fn gaussian_scatter_is_recovered() {
        // Deterministic normal quantiles: σ_NMAD of N(0, 0.05) is 0.05.
        let n = 2001;
        let mut v: Vec<f64> = (1..=n)
            .map(|i| 0.05 * crate::metrics::stats_test::probit(i as f64 / (n + 1) as f64))
            .collect();
        v.sort_by(f64::total_cmp);
        assert!((super::sigma_nmad(&v) - 0.05).abs() < 5e-4);
    }
}
