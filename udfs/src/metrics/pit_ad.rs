//! `pz_pit_ad(pit)`: the Anderson–Darling statistic of PIT values, as qp computes it: the
//! standardised two-sample statistic of Scholz & Stephens (1987, midrank form) between the
//! PIT values and an evenly spaced sample of U(0, 1) of the same size.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};

/// scipy's `anderson_ksamp([pit, linspace(0, 1, n)])` statistic (midrank variant) for
/// sorted PIT values in [0, 1]. qp first drops values outside [0, 1]; so does this.
pub fn ad_vs_uniform(sorted: &[f64]) -> f64 {
    let a: Vec<f64> = sorted
        .iter()
        .copied()
        .filter(|x| (0.0..=1.0).contains(x))
        .collect();
    let n = a.len();
    if n < 2 {
        return f64::NAN;
    }
    let b: Vec<f64> = (0..n)
        .map(|i| {
            if i + 1 == n {
                1.0
            } else {
                i as f64 * (1.0 / (n - 1) as f64)
            }
        })
        .collect();
    two_sample_midrank(&a, &b)
}

/// The standardised k = 2 Anderson–Darling statistic of two sorted samples.
pub fn two_sample_midrank(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    let n = na + nb;
    // Walk the distinct values of the pooled sample in order: lj ties, Bj midrank position,
    // M_ij midrank count of sample i at or below z_j.
    let (mut ia, mut ib) = (0usize, 0usize);
    let (mut sum_a, mut sum_b) = (0.0, 0.0);
    while ia < a.len() || ib < b.len() {
        let z = match (a.get(ia), b.get(ib)) {
            (Some(x), Some(y)) => x.min(*y),
            (Some(x), None) => *x,
            (None, Some(y)) => *y,
            (None, None) => unreachable!(),
        };
        let below = (ia + ib) as f64;
        let (ja, jb) = (ia, ib);
        while ia < a.len() && a[ia] == z {
            ia += 1;
        }
        while ib < b.len() && b[ib] == z {
            ib += 1;
        }
        let (fa, fb) = ((ia - ja) as f64, (ib - jb) as f64);
        let lj = fa + fb;
        let bj = below + lj / 2.0;
        let denom = bj * (n - bj) - n * lj / 4.0;
        let ma = ia as f64 - fa / 2.0;
        let mb = ib as f64 - fb / 2.0;
        sum_a += lj / n * (n * ma - bj * na).powi(2) / denom;
        sum_b += lj / n * (n * mb - bj * nb).powi(2) / denom;
    }
    let a2 = (sum_a / na + sum_b / nb) * (n - 1.0) / n;
    // Standardisation (Scholz & Stephens eq. 4), with k = 2 samples.
    let k = 2.0;
    let big_h = 1.0 / na + 1.0 / nb;
    let nn = n as usize;
    let mut h_cum = 0.0;
    let mut g = 0.0;
    // hs_cs[j] = Σ_{i=N−1−j}^{N−1} 1/i for j = 0..N−3, divided by j + 2 in g.
    for (j, i) in (2..nn).rev().enumerate() {
        h_cum += 1.0 / i as f64;
        g += h_cum / (j + 2) as f64;
    }
    let h = h_cum + 1.0;
    let ca = (4.0 * g - 6.0) * (k - 1.0) + (10.0 - 6.0 * g) * big_h;
    let cb = (2.0 * g - 4.0) * k * k + 8.0 * h * k + (2.0 * g - 14.0 * h - 4.0) * big_h - 8.0 * h
        + 4.0 * g
        - 6.0;
    let cc = (6.0 * h + 2.0 * g - 2.0) * k * k
        + (4.0 * h - 4.0 * g + 6.0) * k
        + (2.0 * h - 6.0) * big_h
        + 4.0 * h;
    let cd = (2.0 * h + 6.0) * k * k - 4.0 * h * k;
    let sigmasq = (ca * n.powi(3) + cb * n * n + cc * n + cd) / ((n - 1.0) * (n - 2.0) * (n - 3.0));
    (a2 - (k - 1.0)) / sigmasq.sqrt()
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Anderson–Darling statistic of PIT values as qp's PIT class computes it: scipy's \
         k-sample test (midrank, standardised) between the PIT values in [0, 1] and an evenly \
         spaced sample of the same size. Exact.",
        "pz_pit_ad(pit)",
    )
    .with_sql_example("SELECT pz_pit_ad(pz_pit(pdf, redshift)) FROM t;")
    .with_argument(
        "pit",
        "PIT values in [0, 1], e.g. from pz_pit; NULLs are left out, a NaN or a value outside [0, 1] is an error",
    )
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_pit_ad",
    input: ValuesInput::Pit,
    finish: ad_vs_uniform,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    #[test]
    fn identical_samples_score_low_and_shifted_ones_high() {
        let u: Vec<f64> = (0..200).map(|i| i as f64 / 199.0).collect();
        let same = super::ad_vs_uniform(&u);
        assert!(same < 0.0, "{same}");
        let squeezed: Vec<f64> = u.iter().map(|x| 0.25 + 0.5 * x).collect();
        assert!(super::ad_vs_uniform(&squeezed) > 10.0);
    }
}
