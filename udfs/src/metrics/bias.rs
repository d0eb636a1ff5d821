//! `pz_bias(zphot, ztrue)`: the median of dz, as RAIL's `PointBias`.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};
use super::stats::quantile_sorted;

/// Median of sorted dz values.
pub fn bias(sorted_dz: &[f64]) -> f64 {
    quantile_sorted(sorted_dz, 0.5)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Photo-z bias: the median of dz = (zphot − ztrue)/(1 + ztrue) over the group (RAIL's \
         PointBias). Exact; rows with a null input are left out, a NaN or infinite redshift \
         (or a true redshift <= -1) is an error.",
        "pz_bias(zphot, ztrue)",
    )
    .with_sql_example("SELECT pz_bias(z_mode, redshift) FROM photoz JOIN truth USING (id);")
    .with_argument("zphot", "point estimate (e.g. z_mode)")
    .with_argument("ztrue", "reference redshift")
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_bias",
    input: ValuesInput::Dz,
    finish: bias,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}
