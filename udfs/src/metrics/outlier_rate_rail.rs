//! `pz_outlier_rate_rail(zphot, ztrue)`: the fraction with |dz| > max(0.06, 3 σ_IQR), as
//! RAIL's `PointOutlierRate`.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};
use super::sigma_iqr::sigma_iqr;

/// Outlier fraction with RAIL's adaptive cut, over sorted dz values.
pub fn outlier_rate_rail(sorted_dz: &[f64]) -> f64 {
    let cut = (3.0 * sigma_iqr(sorted_dz)).max(0.06);
    sorted_dz.iter().filter(|d| d.abs() > cut).count() as f64 / sorted_dz.len() as f64
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Catastrophic outlier fraction as the LSST Science Book and RAIL's PointOutlierRate \
         define it: |dz| > max(0.06, 3·σ_IQR).",
        "pz_outlier_rate_rail(zphot, ztrue)",
    )
    .with_sql_example("SELECT pz_outlier_rate_rail(z_mode, redshift) FROM t;")
    .with_argument("zphot", "point estimate")
    .with_argument("ztrue", "reference redshift")
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_outlier_rate_rail",
    input: ValuesInput::Dz,
    finish: outlier_rate_rail,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}
