//! `pz_sigma_iqr(zphot, ztrue)`: the interquartile range of dz over 1.349, as RAIL's
//! `PointSigmaIQR`.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};
use super::stats::percentile_sorted;

/// IQR/1.349 of sorted dz values (numpy's linear percentiles).
pub fn sigma_iqr(sorted_dz: &[f64]) -> f64 {
    (percentile_sorted(sorted_dz, 75.0) - percentile_sorted(sorted_dz, 25.0)) / 1.349
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Photo-z scatter from the interquartile range: (P75 − P25)(dz) / 1.349 (RAIL's \
         PointSigmaIQR, numpy's linear percentiles). Exact.",
        "pz_sigma_iqr(zphot, ztrue)",
    )
    .with_sql_example("SELECT pz_sigma_iqr(z_mode, redshift) FROM t;")
    .with_argument("zphot", "point estimate")
    .with_argument("ztrue", "reference redshift")
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_sigma_iqr",
    input: ValuesInput::Dz,
    finish: sigma_iqr,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}
