//! `pz_pit(pdf, ztrue [, zmin, zmax])`: the probability integral transform, CDF(ztrue), of
//! one object's PDF.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, Float64Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::aggregate::{check_pdf_ztrue_args, f64_array, pdf_ztrue};
use super::pdf_arg::{check, resolve_grid, row_label, PdfColumn};
use crate::photoz::grid::ZGrid;

/// CDF at `ztrue` of samples on `grid`, read as qp's `interp` representation reads them (so
/// PIT values equal RAIL's): the PDF is normalised to unit trapezoid integral, the CDF is
/// the running trapezoid sum at the grid points, linear in between, 0 below the grid and 1
/// above it. qp starts the running sum at half the first sample's cell (not at 0); that is
/// kept. Negative round-off reads as zero ([`crate::metrics::pdf_arg::ROUNDOFF`]). None
/// when the PDF cannot be normalised.
pub fn pit(pdf: &[f64], grid: &ZGrid, ztrue: f64) -> Option<f64> {
    let n = pdf.len();
    if n < 2 || !ztrue.is_finite() || check(pdf).is_err() {
        return None;
    }
    let y = |j: usize| pdf[j].max(0.0);
    // The running sum in qp's order of operations (numpy: dx·0.5·(y₁ + y₀), summed left to
    // right), so that values at the ends of a PDF's support are exactly 0 or 1 as in qp;
    // the k-sample AD statistic is sensitive to such ties.
    let cell = |j: usize| (grid.z(j + 1) - grid.z(j)) * 0.5 * (y(j + 1) + y(j));
    let total: f64 = (0..n - 1).fold(0.0, |acc, j| acc + cell(j));
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    if ztrue < grid.zmin {
        return Some(0.0);
    }
    if ztrue > grid.zmax {
        return Some(1.0);
    }
    // scipy's interp1d: the first grid point ≥ ztrue (searchsorted, left), clipped to [1, n−1].
    let h = grid.step();
    let mut hi = (((ztrue - grid.zmin) / h).ceil().max(0.0) as usize).min(n - 1);
    while hi > 0 && grid.z(hi - 1) >= ztrue {
        hi -= 1;
    }
    while hi < n - 1 && grid.z(hi) < ztrue {
        hi += 1;
    }
    let hi = hi.clamp(1, n - 1);
    let lo = hi - 1;
    let cumul = |i: usize| -> f64 {
        if i == 0 {
            0.5 * y(0) * (grid.z(1) - grid.z(0))
        } else {
            (0..i).fold(0.0, |acc, j| acc + cell(j))
        }
    };
    let (y0, y1) = (cumul(lo) / total, cumul(hi) / total);
    let slope = (y1 - y0) / (grid.z(hi) - grid.z(lo));
    // Rounding can carry the interpolation a few ulps past 1; a PIT is a probability.
    Some((slope * (ztrue - grid.z(lo)) + y0).clamp(0.0, 1.0))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Probability integral transform of one PDF: its CDF at the true redshift, as qp's \
         interp representation computes it (normalised to unit integral, linear between grid \
         points; 0 below the grid, 1 above it). Negative round-off (within 1e-6 of the peak) \
         reads as zero. Null for a null PDF or ztrue, and for a PDF that cannot be normalised \
         (all zero, negative, not finite; count them with pz_pdf_excluded, name them with \
         pz_pdf_status). A NaN or infinite ztrue is an error. Feed it to pz_pit_ks, \
         pz_pit_cvm, pz_pit_ad, pz_pit_outlier_rate.",
        "pz_pit(pdf, ztrue [, zmin, zmax])",
    )
    .with_sql_example("SELECT pz_pit_ks(pz_pit(pdf, redshift)) FROM photoz JOIN truth USING (id);")
    .with_argument("pdf", "FixedSizeList or List of Float32/Float64 sampled on the grid")
    .with_argument("ztrue", "reference redshift")
    .with_argument(
        "zmin, zmax",
        "the grid's limits when the pdf field carries no pz grid metadata (default 0, 3 with 301 points)",
    )
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PitFunc {
    signature: Signature,
}

pub fn udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(PitFunc {
        signature: Signature::variadic_any(Volatility::Immutable),
    }))
}

/// Explicit grid limits from scalar arguments `first`, `first + 1`.
pub fn scalar_limits(
    name: &str,
    args: &[ColumnarValue],
    first: usize,
) -> Result<Option<(f64, f64)>> {
    if args.len() <= first {
        return Ok(None);
    }
    let mut v = [0.0; 2];
    for (k, slot) in v.iter_mut().enumerate() {
        match args.get(first + k) {
            Some(ColumnarValue::Scalar(s)) => match s.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(x)) => *slot = x,
                other => return plan_err!("{name}: zmin and zmax must be numbers, got {other}"),
            },
            _ => return plan_err!("{name}: zmin and zmax must be constants"),
        }
    }
    Ok(Some((v[0], v[1])))
}

impl ScalarUDFImpl for PitFunc {
    fn name(&self) -> &str {
        "pz_pit"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        check_pdf_ztrue_args("pz_pit", args)?;
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let limits = scalar_limits("pz_pit", &args.args, 2)?;
        let source = resolve_grid("pz_pit", &args.arg_fields[0], limits)?;
        let pdf = args.args[0].to_array(n)?;
        let zt = f64_array(&args.args[1].to_array(n)?)?;
        let pdfs = PdfColumn::new("pz_pit", &pdf)?;
        let mut out = Float64Builder::with_capacity(n);
        let mut buf = Vec::new();
        for i in 0..n {
            let value = match pdfs.row(i, &mut buf) {
                Some(p) if zt.is_valid(i) => {
                    let z = pdf_ztrue("pz_pit", zt.value(i))?;
                    let grid =
                        source.grid_for_row("pz_pit", p.len(), || row_label(i, n, Some(z)))?;
                    pit(p, &grid, z)
                }
                _ => None,
            };
            out.append_option(value);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_pdf_gives_linear_cdf() {
        let g = ZGrid::default();
        let p = vec![7.0; 301];
        assert!((pit(&p, &g, 1.5).unwrap() - 0.5).abs() < 1e-12);
        assert!((pit(&p, &g, 2.995).unwrap() - 2.995 / 3.0).abs() < 1e-12);
        assert_eq!(pit(&p, &g, -0.1), Some(0.0));
        assert_eq!(pit(&p, &g, 3.1), Some(1.0));
        // qp's first cell starts at half a sample's worth, not at zero.
        assert!((pit(&p, &g, 0.0).unwrap() - 0.005 / 3.0).abs() < 1e-12);
        assert_eq!(pit(&vec![0.0; 301], &g, 1.0), None);
    }

    #[test]
    fn roundoff_below_the_support_is_zero_not_a_reason_to_drop() {
        // RAIL's FlexZBoost and BPZ PDFs hold qp's -4e-16 outside their support.
        let g = ZGrid::default();
        let mut p = vec![-4e-16; 301];
        for (k, v) in p.iter_mut().enumerate().skip(100).take(101) {
            *v = 1.0 + (k % 7) as f64;
        }
        let mut clean = p.clone();
        for v in clean.iter_mut() {
            *v = v.max(0.0);
        }
        for z in [0.3, 0.995, 1.0, 1.5, 2.0, 2.7] {
            let got = pit(&p, &g, z).expect("round-off is not a reason to drop the PDF");
            assert_eq!(got, pit(&clean, &g, z).unwrap());
        }
        // Below the support the CDF is exactly 0 (qp's round-off would make it -1e-17).
        assert_eq!(pit(&p, &g, 0.5), Some(0.0));
        assert_eq!(pit(&p, &g, 2.5), Some(1.0));
        p[150] = -0.01;
        assert_eq!(pit(&p, &g, 1.0), None);
    }
}
