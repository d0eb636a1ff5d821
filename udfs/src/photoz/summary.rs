//! Point estimates from a PDF sampled on a grid.

use super::grid::ZGrid;

/// Half-width of the ODDS window in units of (1 + z_mode), as in Benítez (2000)'s use of a
/// fixed interval around the peak.
pub const ODDS_HALF_WIDTH: f64 = 0.06;

/// What `photoz()` reports besides the PDF.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PdfSummary {
    pub z_mode: f64,
    pub z_mean: f64,
    pub z_median: f64,
    /// 16th and 84th percentiles: the central 68 % interval.
    pub z_lo68: f64,
    pub z_hi68: f64,
    /// Probability within ±0.06 (1 + z_mode) of the mode.
    pub odds: f64,
}

/// Width of the blocks whose running sums locate quantiles.
const BLOCK: usize = 8;

/// Summarises `pdf` and writes it, normalised to unit trapezoid integral over the grid, to
/// `out` as f32. `blocks` is scratch. None (and `out` untouched) when the PDF has a negative
/// or non-finite value or no mass.
///
/// One pass gives the totals and the running sums of blocks of 8 points; quantiles then
/// walk the blocks and step inside one block. This keeps the long dependent chain of a
/// full cumulative sum off the hot path: the summary costs little next to the estimators.
pub fn normalise_and_summarise(
    pdf: &[f64],
    grid: &ZGrid,
    blocks: &mut Vec<f64>,
    out: &mut [f32],
) -> Option<PdfSummary> {
    let n = pdf.len();
    if n < 2 || out.len() != n {
        return None;
    }
    let h = grid.step();
    blocks.clear();
    let mut index_sum = [0.0f64; BLOCK];
    let mut low = [0.0f64; BLOCK];
    let mut high = [0.0f64; BLOCK];
    let mut base = 0.0;
    let mut chunks = pdf.chunks_exact(BLOCK);
    for c in &mut chunks {
        for l in 0..BLOCK {
            index_sum[l] += c[l] * (base + l as f64);
            low[l] = low[l].min(c[l]);
            high[l] = high[l].max(c[l]);
        }
        blocks.push(c.iter().sum());
        base += BLOCK as f64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (l, &p) in rest.iter().enumerate() {
            index_sum[l] += p * (base + l as f64);
            low[l] = low[l].min(p);
            high[l] = high[l].max(p);
        }
        blocks.push(rest.iter().sum());
    }
    for b in 1..blocks.len() {
        blocks[b] += blocks[b - 1];
    }
    // NaN passes min/max but not the sum; ±inf fails either.
    let total = *blocks.last()?;
    let lowest = low.iter().fold(f64::INFINITY, |a, &b| a.min(b));
    let peak = high.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
    let (first, last) = (pdf[0], pdf[n - 1]);
    let acc = h * (total - 0.5 * (first + last));
    if !total.is_finite() || lowest < 0.0 || !(acc > 0.0 && acc.is_finite()) {
        return None;
    }
    let inv = 1.0 / acc;
    for (o, &p) in out.iter_mut().zip(pdf) {
        *o = (p * inv) as f32;
    }
    let best = pdf.iter().position(|&p| p == peak).unwrap_or(0);
    let z_mode = grid.z(best);
    let weighted: f64 = index_sum.iter().sum();
    let zmoment = h
        * (grid.zmin * (total - 0.5 * (first + last))
            + h * (weighted - 0.5 * (n - 1) as f64 * last));
    // Unnormalised trapezoid CDF at grid point i.
    let cdf = |i: usize| -> f64 {
        let b = i / BLOCK;
        let before = if b == 0 { 0.0 } else { blocks[b - 1] };
        let inside: f64 = pdf[b * BLOCK..=i].iter().sum();
        h * (before + inside - 0.5 * (first + pdf[i]))
    };
    let quantile = |q: f64| -> f64 {
        let target = q * acc;
        let Some(b) = (0..blocks.len()).find(|&b| {
            let e = (b * BLOCK + BLOCK - 1).min(n - 1);
            h * (blocks[b] - 0.5 * (first + pdf[e])) >= target
        }) else {
            return grid.zmax;
        };
        let e = (b * BLOCK + BLOCK - 1).min(n - 1);
        let i = (b * BLOCK..=e).find(|&i| cdf(i) >= target).unwrap_or(e);
        if i == 0 {
            return grid.z(0);
        }
        let (c0, c1) = (cdf(i - 1), cdf(i));
        let t = if c1 > c0 {
            (target - c0) / (c1 - c0)
        } else {
            0.0
        };
        grid.z(i - 1) + t * h
    };
    let cdf_at = |z: f64| -> f64 {
        let x = (z - grid.zmin) / h;
        if x <= 0.0 {
            return 0.0;
        }
        let i = x.floor() as usize;
        if i + 1 >= n {
            return 1.0;
        }
        let t = x - i as f64;
        let (c0, c1) = (cdf(i), cdf(i + 1));
        (c0 + t * (c1 - c0)) * inv
    };
    let w = ODDS_HALF_WIDTH * (1.0 + z_mode);
    Some(PdfSummary {
        z_mode,
        z_mean: zmoment * inv,
        z_median: quantile(0.5),
        z_lo68: quantile(0.158_655_253_931_457_05),
        z_hi68: quantile(0.841_344_746_068_542_9),
        odds: (cdf_at(z_mode + w) - cdf_at(z_mode - w)).clamp(0.0, 1.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaussian_summary() {
        let g = ZGrid::default();
        let (mu, s) = (1.2, 0.05);
        let pdf: Vec<f64> = g
            .points()
            .iter()
            .map(|z| (-(z - mu) * (z - mu) / (2.0 * s * s)).exp() * 7.0)
            .collect();
        let mut blocks = Vec::new();
        let mut out = vec![0.0f32; g.nz];
        let r = normalise_and_summarise(&pdf, &g, &mut blocks, &mut out).unwrap();
        assert!((r.z_mode - 1.2).abs() < 1e-12);
        assert!((r.z_mean - mu).abs() < 1e-6, "{r:?}");
        assert!((r.z_median - mu).abs() < 1e-3, "{r:?}");
        assert!((r.z_lo68 - (mu - s)).abs() < 2e-3, "{r:?}");
        assert!((r.z_hi68 - (mu + s)).abs() < 2e-3, "{r:?}");
        // ±0.132 = ±2.64σ holds 99.2 %.
        assert!((r.odds - 0.9917).abs() < 2e-3, "{r:?}");
        let area: f64 = out
            .windows(2)
            .map(|w| 0.5 * g.step() * f64::from(w[0] + w[1]))
            .sum();
        assert!((area - 1.0).abs() < 1e-6);
        let zero = vec![0.0; 301];
        assert!(normalise_and_summarise(&zero, &g, &mut blocks, &mut out).is_none());
        for poison in [f64::NAN, f64::INFINITY, -1e-300] {
            let mut bad = vec![1.0; 301];
            bad[3] = poison;
            assert!(normalise_and_summarise(&bad, &g, &mut blocks, &mut out).is_none());
        }
    }

    /// The block walk must agree with a plain running trapezoid sum, on every grid size
    /// (remainders of the blocks of 8) and on PDFs with mass at the edges.
    #[test]
    fn matches_running_sum() {
        for nz in [2usize, 3, 8, 9, 17, 301, 1000] {
            let g = ZGrid::new(0.1, 2.5, nz).unwrap();
            let mut rng = crate::photoz::rng::SplitMix64::new(7);
            for case in 0..40 {
                let pdf: Vec<f64> = (0..nz)
                    .map(|i| {
                        let r = rng.uniform();
                        // Sparse spikes and zero runs, and mass at both ends.
                        if case % 3 == 0 && i % 5 != 0 {
                            0.0
                        } else {
                            r
                        }
                    })
                    .collect();
                let h = g.step();
                let mut cdf = vec![0.0];
                for i in 1..nz {
                    let c = cdf[i - 1] + 0.5 * h * (pdf[i - 1] + pdf[i]);
                    cdf.push(c);
                }
                let acc = cdf[nz - 1];
                if acc <= 0.0 {
                    continue;
                }
                let cdf: Vec<f64> = cdf.iter().map(|c| c / acc).collect();
                let mean = (1..nz)
                    .map(|i| 0.5 * h * (pdf[i - 1] * g.z(i - 1) + pdf[i] * g.z(i)))
                    .sum::<f64>()
                    / acc;
                let quantile = |q: f64| {
                    let i = cdf.partition_point(|&c| c < q);
                    if i == 0 {
                        return g.z(0);
                    }
                    if i >= nz {
                        return g.zmax;
                    }
                    let t = (q - cdf[i - 1]) / (cdf[i] - cdf[i - 1]);
                    g.z(i - 1) + t * h
                };
                let mut blocks = Vec::new();
                let mut out = vec![0.0f32; nz];
                let r = normalise_and_summarise(&pdf, &g, &mut blocks, &mut out).unwrap();
                let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
                assert!(close(r.z_mean, mean), "nz {nz}: {} vs {mean}", r.z_mean);
                assert!(close(r.z_median, quantile(0.5)), "nz {nz} case {case}");
                assert!(close(r.z_lo68, quantile(0.158_655_253_931_457_05)));
                assert!(close(r.z_hi68, quantile(0.841_344_746_068_542_9)));
                let mode = pdf.iter().cloned().fold(0.0, f64::max);
                assert_eq!(r.z_mode, g.z(pdf.iter().position(|&p| p == mode).unwrap()));
                for (o, p) in out.iter().zip(&pdf) {
                    assert_eq!(*o, (p / acc) as f32);
                }
            }
        }
    }
}
