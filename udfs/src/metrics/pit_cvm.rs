//! `pz_pit_cvm(pit)`: the Cramér–von Mises statistic of PIT values against U(0, 1).

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};

/// W² = 1/(12n) + Σ ((2i − 1)/(2n) − x_(i))² over sorted values (scipy's `cramervonmises`).
pub fn cvm_uniform(sorted: &[f64]) -> f64 {
    let n = sorted.len() as f64;
    let mut w = 1.0 / (12.0 * n);
    for (i, x) in sorted.iter().enumerate() {
        let u = (2.0 * (i + 1) as f64 - 1.0) / (2.0 * n);
        w += (u - x.clamp(0.0, 1.0)).powi(2);
    }
    w
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Cramér–von Mises statistic W² of PIT values against the uniform distribution on [0, 1] \
         (scipy.stats.cramervonmises, as qp's PIT class uses it). Exact.",
        "pz_pit_cvm(pit)",
    )
    .with_sql_example("SELECT pz_pit_cvm(pz_pit(pdf, redshift)) FROM t;")
    .with_argument(
        "pit",
        "PIT values in [0, 1], e.g. from pz_pit; NULLs are left out, a NaN or a value outside [0, 1] is an error",
    )
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_pit_cvm",
    input: ValuesInput::Pit,
    finish: cvm_uniform,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    #[test]
    fn perfect_sample_has_the_minimum() {
        let n = 50;
        let v: Vec<f64> = (0..n)
            .map(|i| (2.0 * i as f64 + 1.0) / (2.0 * n as f64))
            .collect();
        assert!((super::cvm_uniform(&v) - 1.0 / (12.0 * n as f64)).abs() < 1e-15);
    }
}
