//! Order statistics shared by the metrics, with numpy's conventions (so the numbers equal
//! RAIL's): the median of an even count is the mean of the two middle values, percentiles
//! interpolate linearly between order statistics.

/// numpy's `median`. Reorders `v`; NaN for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    let (_, hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    let hi = *hi;
    if n % 2 == 1 {
        return hi;
    }
    // The lower middle value is the largest of the lower half.
    let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    0.5 * (lo + hi)
}

/// numpy's `percentile(v, q)` (linear method) of values that are already sorted.
pub fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    quantile_sorted(sorted, q / 100.0)
}

/// numpy's `quantile(v, p)` (linear method), p in [0, 1], of sorted values.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let h = (n - 1) as f64 * p;
    let lo = h.floor();
    let i = lo as usize;
    if i + 1 >= n {
        return sorted[n - 1];
    }
    let (a, b) = (sorted[i], sorted[i + 1]);
    // numpy's _lerp: a + (b - a)·t, written from the nearer end for accuracy.
    let t = h - lo;
    let d = b - a;
    if t >= 0.5 {
        b - d * (1.0 - t)
    } else {
        a + d * t
    }
}

/// dz = (zphot − ztrue) / (1 + ztrue), the scaled error every point metric is built on.
#[inline]
pub fn dz(zphot: f64, ztrue: f64) -> f64 {
    (zphot - ztrue) / (1.0 + ztrue)
}

pub fn sort(v: &mut [f64]) {
    v.sort_unstable_by(f64::total_cmp);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numpy_conventions() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
        let s = [1.0, 2.0, 3.0, 4.0];
        // numpy.percentile([1,2,3,4], [25, 75]) = [1.75, 3.25]
        assert_eq!(percentile_sorted(&s, 25.0), 1.75);
        assert_eq!(percentile_sorted(&s, 75.0), 3.25);
        assert_eq!(quantile_sorted(&s, 1.0), 4.0);
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
    }
}
