//! The CDE loss estimators are tuned with (and validated by): for each object
//! ∫ p(z)² dz − 2 p(z_true), averaged; lower is better.

use super::grid::ZGrid;

/// One object's CDE-loss term for a PDF sampled on `grid`: the trapezoid integral of p², minus
/// twice p at the grid point nearest `z_true` (RAIL's `CDELoss` and flexcode's `cde_loss`).
#[inline]
pub fn cde_loss_term(pdf: &[f64], grid: &ZGrid, z_true: f64) -> f64 {
    let h = grid.step();
    let mut sq = 0.0;
    for i in 0..pdf.len() {
        let w = if i == 0 || i + 1 == pdf.len() {
            0.5
        } else {
            1.0
        };
        sq += w * pdf[i] * pdf[i];
    }
    sq * h - 2.0 * pdf[grid.nearest(z_true)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_pdf_loss() {
        // p = 1/3 on [0, 3]: ∫p² = 1/3, p(z) = 1/3, loss = 1/3 − 2/3.
        let g = ZGrid::default();
        let pdf = vec![1.0 / 3.0; 301];
        assert!((cde_loss_term(&pdf, &g, 1.0) + 1.0 / 3.0).abs() < 1e-12);
    }
}
