//! `pz_pit_ks(pit)`: the Kolmogorov–Smirnov statistic of PIT values against U(0, 1).

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};

/// sup |F_n(x) − x| over sorted values (scipy's `kstest(x, uniform.cdf)` statistic).
pub fn ks_uniform(sorted: &[f64]) -> f64 {
    let n = sorted.len() as f64;
    let mut d: f64 = 0.0;
    for (i, x) in sorted.iter().enumerate() {
        let c = x.clamp(0.0, 1.0);
        let plus = (i + 1) as f64 / n - c;
        let minus = c - i as f64 / n;
        d = d.max(plus).max(minus);
    }
    d
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Kolmogorov–Smirnov statistic of PIT values against the uniform distribution on [0, 1] \
         (scipy.stats.kstest, as qp's PIT class uses it). Exact.",
        "pz_pit_ks(pit)",
    )
    .with_sql_example("SELECT pz_pit_ks(pz_pit(pdf, redshift)) FROM t;")
    .with_argument(
        "pit",
        "PIT values in [0, 1], e.g. from pz_pit; NULLs are left out, a NaN or a value outside [0, 1] is an error",
    )
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_pit_ks",
    input: ValuesInput::Pit,
    finish: ks_uniform,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_values() {
        // A perfectly spread sample: D = 1/(2n) at midpoints.
        let v: Vec<f64> = (0..10).map(|i| (i as f64 + 0.5) / 10.0).collect();
        assert!((super::ks_uniform(&v) - 0.05).abs() < 1e-15);
        assert!((super::ks_uniform(&[0.0, 0.0]) - 1.0).abs() < 1e-15);
    }
}
