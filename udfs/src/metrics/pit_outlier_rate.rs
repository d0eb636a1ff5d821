//! `pz_pit_outlier_rate(pit)`: the fraction of PIT mass in the extreme tails, as qp's PIT
//! class reports it.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{ValuesAggregate, ValuesInput, ValuesSpec};
use super::stats::quantile_sorted;

pub const PIT_MIN: f64 = 1e-4;
pub const PIT_MAX: f64 = 0.9999;

/// CDF(1e-4) + 1 − CDF(0.9999) of the PIT distribution, with the CDF built as qp builds it:
/// 100 quantiles of the PIT values (fewer if there are fewer values) at evenly spaced levels;
/// repeated values and those not strictly inside (0, 1) dropped; padded to levels 0 and 1 by
/// linear extrapolation; then a quadratic interpolating spline through (value, level), 0
/// below its first point and 1 above its last. NaN when fewer than three points remain.
pub fn pit_outlier_rate(sorted: &[f64]) -> f64 {
    let n_levels = sorted.len().min(100);
    if n_levels < 2 {
        return f64::NAN;
    }
    let mut locs: Vec<f64> = Vec::with_capacity(n_levels + 2);
    let mut levels: Vec<f64> = Vec::with_capacity(n_levels + 2);
    for j in 0..n_levels {
        let q = if j + 1 == n_levels {
            1.0
        } else {
            j as f64 * (1.0 / (n_levels - 1) as f64)
        };
        let x = quantile_sorted(sorted, q);
        // Quantiles of sorted data never decrease: a repeat is the previous value.
        if locs.last() == Some(&x) {
            continue;
        }
        locs.push(x);
        levels.push(q);
    }
    let keep: Vec<usize> = (0..locs.len())
        .filter(|&i| locs[i] > 0.0 && locs[i] < 1.0)
        .collect();
    let mut x: Vec<f64> = keep.iter().map(|&i| locs[i]).collect();
    let mut y: Vec<f64> = keep.iter().map(|&i| levels[i]).collect();
    if x.len() < 2 {
        return f64::NAN;
    }
    if y[0] > f64::EPSILON {
        let x0 = x[0] - y[0] * (x[1] - x[0]) / (y[1] - y[0]);
        x.insert(0, x0);
        y.insert(0, 0.0);
    }
    let m = x.len();
    if y[m - 1] < 1.0 {
        let xl = x[m - 1] - (1.0 - y[m - 1]) * (x[m - 2] - x[m - 1]) / (y[m - 1] - y[m - 2]);
        x.push(xl);
        y.push(1.0);
    }
    let Some(spline) = QuadraticSpline::interpolate(&x, &y) else {
        return f64::NAN;
    };
    let cdf = |t: f64| {
        if t < x[0] {
            0.0
        } else if t > x[x.len() - 1] {
            1.0
        } else {
            spline.eval(t)
        }
    };
    cdf(PIT_MIN) + (1.0 - cdf(PIT_MAX))
}

/// A degree-2 B-spline through given points, with knots at the midpoints between them
/// except the second and second-to-last (the "not-a-knot" choice for even degree that
/// scipy's `interp1d(kind="quadratic")` makes).
pub struct QuadraticSpline {
    knots: Vec<f64>,
    coef: Vec<f64>,
}

impl QuadraticSpline {
    pub fn interpolate(x: &[f64], y: &[f64]) -> Option<Self> {
        let m = x.len();
        if m < 3 || y.len() != m {
            return None;
        }
        let mut knots = vec![x[0]; 3];
        for i in 1..m - 2 {
            knots.push(0.5 * (x[i] + x[i + 1]));
        }
        knots.extend([x[m - 1]; 3]);
        // Collocation: Σ_j c_j B_j(x_i) = y_i, solved densely (m ≤ 102).
        let mut a = vec![0.0; m * m];
        let mut basis = [0.0; 3];
        for i in 0..m {
            let span = find_span(&knots, m, x[i]);
            basis_funs(&knots, span, x[i], &mut basis);
            for (r, b) in basis.iter().enumerate() {
                a[i * m + span - 2 + r] = *b;
            }
        }
        let coef = solve(a, y.to_vec(), m)?;
        Some(QuadraticSpline { knots, coef })
    }

    pub fn eval(&self, t: f64) -> f64 {
        let m = self.coef.len();
        let span = find_span(&self.knots, m, t);
        let mut basis = [0.0; 3];
        basis_funs(&self.knots, span, t, &mut basis);
        (0..3).map(|r| basis[r] * self.coef[span - 2 + r]).sum()
    }
}

/// The knot interval [t_l, t_{l+1}) holding `t`, l in [2, m − 1].
fn find_span(t: &[f64], m: usize, x: f64) -> usize {
    let mut l = 2;
    while l < m - 1 && x >= t[l + 1] {
        l += 1;
    }
    l
}

/// The three non-zero degree-2 B-splines at `x` in span `l` (Cox–de Boor).
fn basis_funs(t: &[f64], l: usize, x: f64, out: &mut [f64; 3]) {
    let mut left = [0.0; 3];
    let mut right = [0.0; 3];
    out[0] = 1.0;
    for j in 1..=2 {
        left[j] = x - t[l + 1 - j];
        right[j] = t[l + j] - x;
        let mut saved = 0.0;
        for r in 0..j {
            let denom = right[r + 1] + left[j - r];
            let temp = if denom == 0.0 { 0.0 } else { out[r] / denom };
            out[r] = saved + right[r + 1] * temp;
            saved = left[j - r] * temp;
        }
        out[j] = saved;
    }
}

/// Gaussian elimination with partial pivoting; None for a singular system.
fn solve(mut a: Vec<f64>, mut b: Vec<f64>, m: usize) -> Option<Vec<f64>> {
    for c in 0..m {
        let p = (c..m).max_by(|&i, &j| a[i * m + c].abs().total_cmp(&a[j * m + c].abs()))?;
        if a[p * m + c] == 0.0 {
            return None;
        }
        if p != c {
            for k in 0..m {
                a.swap(p * m + k, c * m + k);
            }
            b.swap(p, c);
        }
        for r in c + 1..m {
            let f = a[r * m + c] / a[c * m + c];
            if f != 0.0 {
                for k in c..m {
                    a[r * m + k] -= f * a[c * m + k];
                }
                b[r] -= f * b[c];
            }
        }
    }
    let mut x = vec![0.0; m];
    for r in (0..m).rev() {
        let s: f64 = (r + 1..m).map(|k| a[r * m + k] * x[k]).sum();
        x[r] = (b[r] - s) / a[r * m + r];
    }
    Some(x)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Fraction of the PIT distribution below 0.0001 or above 0.9999, as qp's PIT class \
         computes it (a quantile representation from 100 quantiles of the PIT values, \
         interpolated by a quadratic spline).",
        "pz_pit_outlier_rate(pit)",
    )
    .with_sql_example("SELECT pz_pit_outlier_rate(pz_pit(pdf, redshift)) FROM t;")
    .with_argument(
        "pit",
        "PIT values in [0, 1], e.g. from pz_pit; NULLs are left out, a NaN or a value outside [0, 1] is an error",
    )
    .build()
});

pub static SPEC: ValuesSpec = ValuesSpec {
    name: "pz_pit_outlier_rate",
    input: ValuesInput::Pit,
    finish: pit_outlier_rate,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    ValuesAggregate::udaf(&SPEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spline_reproduces_quadratics_and_data() {
        let x: Vec<f64> = (0..12).map(|i| (i as f64 * 0.37).powf(1.3)).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 * v * v - v + 0.5).collect();
        let s = QuadraticSpline::interpolate(&x, &y).unwrap();
        for (a, b) in x.iter().zip(&y) {
            assert!((s.eval(*a) - b).abs() < 1e-9);
        }
        let t = 1.2345;
        assert!((s.eval(t) - (2.0 * t * t - t + 0.5)).abs() < 1e-9);
    }

    #[test]
    fn uniform_pits_have_almost_no_outliers() {
        let v: Vec<f64> = (0..10_000).map(|i| (i as f64 + 0.5) / 10_000.0).collect();
        let r = pit_outlier_rate(&v);
        assert!((0.0..1e-3).contains(&r), "{r}");
    }
}
