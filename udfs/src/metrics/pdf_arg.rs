//! Reading a `pdf` argument: a `FixedSizeList` or `List` of Float32/Float64 per row, and the
//! redshift grid its samples sit on.
//!
//! The grid comes, in this order, from explicit `zmin, zmax` arguments (the number of points
//! is the list length), from the field metadata pz writes on every `pdf` it produces
//! (`pz.zmin`, `pz.zmax`, `pz.nz`), else it is RAIL's default z ∈ [0, 3] with 301 points.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, plan_err, Result};

use crate::photoz::grid::ZGrid;

/// True for the list types a `pdf` argument may have.
pub fn is_pdf_type(t: &DataType) -> bool {
    let inner = match t {
        DataType::FixedSizeList(f, _) | DataType::List(f) | DataType::LargeList(f) => f.data_type(),
        _ => return false,
    };
    matches!(
        inner,
        DataType::Float32 | DataType::Float64 | DataType::Float16
    )
}

/// Plan-time check of a `pdf` argument's type.
pub fn check_pdf_type(fname: &str, t: &DataType) -> Result<()> {
    if is_pdf_type(t) {
        Ok(())
    } else {
        plan_err!(
            "{fname}: the pdf argument must be a list of Float32 or Float64 (FixedSizeList or List), got {t}"
        )
    }
}

/// The grid of a `pdf` field: explicit limits, else the field's metadata, else the default.
/// A `FixedSizeList` field's length is checked against the grid here, at planning, so a
/// column that cannot fit fails before any row is read.
pub fn resolve_grid(
    fname: &str,
    field: &Field,
    explicit: Option<(f64, f64)>,
) -> Result<GridSource> {
    let source = if let Some((zmin, zmax)) = explicit {
        GridSource::Limits { zmin, zmax }
    } else if let Some(g) = ZGrid::from_metadata(field.metadata()) {
        GridSource::Fixed(
            g.map_err(|e| datafusion::error::DataFusionError::Plan(format!("{fname}: {e}")))?,
        )
    } else {
        GridSource::Default
    };
    if let DataType::FixedSizeList(_, n) = field.data_type() {
        let n = *n as usize;
        if let GridSource::Limits { zmin, zmax } = source {
            ZGrid::new(zmin, zmax, n)
                .map_err(|e| datafusion::error::DataFusionError::Plan(format!("{fname}: {e}")))?;
        } else if let Some(why) = source.mismatch(n) {
            return plan_err!(
                "{fname}: the pdf column '{}' holds {n} values per row but {why}{}",
                field.name(),
                source.sql_advice()
            );
        }
    }
    Ok(source)
}

/// Where a PDF's grid comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GridSource {
    /// Field metadata (pz's own PDFs).
    Fixed(ZGrid),
    /// `zmin, zmax` given in the call; the number of points is the list length.
    Limits { zmin: f64, zmax: f64 },
    /// Nothing said: z ∈ [0, 3], 301 points.
    Default,
}

impl GridSource {
    /// Why PDFs of `len` samples do not fit this grid, or None when they do.
    pub fn mismatch(&self, len: usize) -> Option<String> {
        match *self {
            GridSource::Fixed(g) if g.nz != len => Some(format!(
                "the grid in the pdf field's metadata (pz.zmin {}, pz.zmax {}, pz.nz {}) has {} points",
                g.zmin, g.zmax, g.nz, g.nz
            )),
            GridSource::Default if len != ZGrid::default().nz => {
                Some("the default grid (z = 0..3) has 301 points".to_string())
            }
            _ => None,
        }
    }

    /// What to do about a mismatch in SQL, where the grid is given by arguments.
    fn sql_advice(&self) -> &'static str {
        match self {
            GridSource::Default => "; pass zmin, zmax (the PDFs' length is the number of points)",
            GridSource::Fixed(_) => {
                "; pass zmin, zmax to read them on linspace(zmin, zmax, their length)"
            }
            GridSource::Limits { .. } => "",
        }
    }

    /// The grid for PDFs of `len` samples, or an error that says why they do not fit.
    pub fn grid_for(&self, fname: &str, len: usize) -> Result<ZGrid> {
        self.grid_for_row(fname, len, || "a PDF".to_string())
    }

    /// As [`GridSource::grid_for`], with the error naming the PDF as `which()` says (e.g.
    /// "the PDF at row 3 of its batch").
    pub fn grid_for_row(
        &self,
        fname: &str,
        len: usize,
        which: impl FnOnce() -> String,
    ) -> Result<ZGrid> {
        if let Some(why) = self.mismatch(len) {
            return exec_err!(
                "{fname}: {} has {len} values but {why}{}",
                which(),
                self.sql_advice()
            );
        }
        match *self {
            GridSource::Fixed(g) => Ok(g),
            GridSource::Limits { zmin, zmax } => ZGrid::new(zmin, zmax, len)
                .map_err(|e| datafusion::error::DataFusionError::Plan(format!("{fname}: {e}"))),
            GridSource::Default => Ok(ZGrid::default()),
        }
    }
}

/// How an error names row `i` of a batch of `n` rows inside a SQL function, which sees
/// batches, not the table's row numbers; the true redshift, when there is one, helps find it.
pub fn row_label(i: usize, n: usize, ztrue: Option<f64>) -> String {
    match ztrue {
        Some(z) => format!("the PDF at row {} of its batch of {n} (ztrue {z})", i + 1),
        None => format!("the PDF at row {} of its batch of {n}", i + 1),
    }
}

/// The PDFs of one batch, read as f64.
pub struct PdfColumn {
    values: Float64Array,
    /// (start, len) per row; None for a null row.
    spans: Vec<Option<(usize, usize)>>,
}

impl PdfColumn {
    pub fn new(fname: &str, array: &ArrayRef) -> Result<Self> {
        let spans: Vec<Option<(usize, usize)>>;
        let child: ArrayRef;
        match array.data_type() {
            DataType::FixedSizeList(_, n) => {
                let a = array.as_fixed_size_list();
                let n = *n as usize;
                spans = (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| (a.value_offset(i) as usize, n)))
                    .collect();
                child = a.values().clone();
            }
            DataType::List(_) => {
                let a = array.as_list::<i32>();
                let o = a.value_offsets();
                spans = (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| (o[i] as usize, (o[i + 1] - o[i]) as usize)))
                    .collect();
                child = a.values().clone();
            }
            DataType::LargeList(_) => {
                let a = array.as_list::<i64>();
                let o = a.value_offsets();
                spans = (0..a.len())
                    .map(|i| (!a.is_null(i)).then(|| (o[i] as usize, (o[i + 1] - o[i]) as usize)))
                    .collect();
                child = a.values().clone();
            }
            other => {
                return exec_err!("{fname}: the pdf argument must be a list of floats, got {other}")
            }
        }
        let values = cast(&child, &DataType::Float64)?;
        let Some(values) = values.as_any().downcast_ref::<Float64Array>() else {
            return exec_err!("{fname}: the pdf values are not numeric");
        };
        Ok(PdfColumn {
            values: values.clone(),
            spans,
        })
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Row `i`'s samples (nulls inside a PDF read as NaN), or None for a null PDF.
    pub fn row<'a>(&self, i: usize, buf: &'a mut Vec<f64>) -> Option<&'a [f64]> {
        let (start, len) = self.spans[i]?;
        buf.clear();
        let v = self.values.values();
        if self.values.null_count() == 0 {
            buf.extend_from_slice(&v[start..start + len]);
        } else {
            buf.extend((start..start + len).map(|j| {
                if self.values.is_null(j) {
                    f64::NAN
                } else {
                    v[j]
                }
            }));
        }
        Some(buf.as_slice())
    }
}

/// Negative samples no deeper than this fraction of a PDF's peak are round-off and read as
/// zero: qp's `interp` writes about −4e-16 beside a PDF's support (1,813 of RAIL's 20,449
/// FlexZBoost PDFs of DC2), and float32 PDFs carry ~1e-7 of their peak. Zeroing such a
/// sample moves no metric by more than this fraction; a deeper dip means the samples are
/// not a density, and the PDF is left out.
pub const ROUNDOFF: f64 = 1e-6;

/// Why a PDF is left out of the PDF metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Excluded {
    /// The PDF (or, for a metric that needs one, its true redshift) is null.
    Null,
    /// A sample is NaN or infinite (a null inside a list reads as NaN), or the integral
    /// overflows.
    NotFinite,
    /// A sample is negative beyond round-off ([`ROUNDOFF`] of the peak).
    Negative,
    /// Every sample is zero: there is nothing to normalise.
    AllZero,
}

impl Excluded {
    pub const ALL: [Excluded; 4] = [
        Excluded::Null,
        Excluded::NotFinite,
        Excluded::Negative,
        Excluded::AllZero,
    ];

    /// A short name, as `pz_pdf_status` returns it and metrics.json keys it.
    pub fn key(self) -> &'static str {
        match self {
            Excluded::Null => "null",
            Excluded::NotFinite => "not_finite",
            Excluded::Negative => "negative",
            Excluded::AllZero => "all_zero",
        }
    }

    /// What a person reads.
    pub fn describe(self) -> &'static str {
        match self {
            Excluded::Null => "no PDF (null)",
            Excluded::NotFinite => "a NaN or infinite sample",
            Excluded::Negative => "a sample negative beyond round-off (1e-6 of the peak)",
            Excluded::AllZero => "every sample zero",
        }
    }
}

/// Checks that samples can be read as a density; returns the floor below which a negative
/// sample is no longer round-off.
pub fn check(pdf: &[f64]) -> std::result::Result<f64, Excluded> {
    let mut peak = 0.0f64;
    for v in pdf {
        if !v.is_finite() {
            return Err(Excluded::NotFinite);
        }
        peak = peak.max(*v);
    }
    let floor = -ROUNDOFF * peak;
    if pdf.iter().any(|v| *v < floor) || (peak == 0.0 && pdf.iter().any(|v| *v < 0.0)) {
        return Err(Excluded::Negative);
    }
    if peak == 0.0 {
        return Err(Excluded::AllZero);
    }
    Ok(floor)
}

/// [`check`], then sets negative round-off to zero in place; returns how many samples it
/// zeroed.
pub fn clean(pdf: &mut [f64]) -> std::result::Result<usize, Excluded> {
    check(pdf)?;
    let mut zeroed = 0;
    for v in pdf.iter_mut() {
        if *v < 0.0 {
            *v = 0.0;
            zeroed += 1;
        }
    }
    Ok(zeroed)
}

/// Normalises a PDF to unit trapezoid integral over its grid, as qp's `interp`
/// representation does, after [`clean`]; returns the integral it had, or why the PDF
/// cannot be normalised.
pub fn normalise(pdf: &mut [f64], grid: &ZGrid) -> std::result::Result<f64, Excluded> {
    clean(pdf)?;
    let area = integral(pdf, grid);
    if !area.is_finite() {
        return Err(Excluded::NotFinite);
    }
    if area <= 0.0 {
        return Err(Excluded::AllZero);
    }
    for v in pdf.iter_mut() {
        *v /= area;
    }
    Ok(area)
}

/// Trapezoid integral of samples on the grid.
pub fn integral(pdf: &[f64], grid: &ZGrid) -> f64 {
    let n = pdf.len();
    if n < 2 {
        return f64::NAN;
    }
    let inner: f64 = pdf[1..n - 1].iter().sum();
    (inner + 0.5 * (pdf[0] + pdf[n - 1])) * grid.step()
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{FixedSizeListArray, Float32Array, ListArray};
    use datafusion::arrow::datatypes::Float32Type;
    use std::sync::Arc;

    #[test]
    fn reads_fixed_and_variable_lists() {
        let f = Arc::new(Field::new("item", DataType::Float32, true));
        let fixed = FixedSizeListArray::new(
            f,
            3,
            Arc::new(Float32Array::from(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0])),
            None,
        );
        let a: ArrayRef = Arc::new(fixed.slice(1, 1));
        let c = PdfColumn::new("t", &a).unwrap();
        let mut buf = Vec::new();
        assert_eq!(c.row(0, &mut buf).unwrap(), &[4.0, 5.0, 6.0]);
        let l: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![
            Some(vec![Some(1.0), Some(2.0)]),
            None,
            Some(vec![Some(3.0), None]),
        ]));
        let c = PdfColumn::new("t", &l).unwrap();
        assert_eq!(c.row(0, &mut buf).unwrap(), &[1.0, 2.0]);
        assert!(c.row(1, &mut buf).is_none());
        assert!(c.row(2, &mut buf).unwrap()[1].is_nan());
    }

    #[test]
    fn grid_mismatch_is_named() {
        let e = GridSource::Default.grid_for("pz_pit", 300).unwrap_err();
        assert!(e.to_string().contains("a PDF has 300 values"), "{e}");
        let e = GridSource::Default
            .grid_for_row("pz_pit", 300, || row_label(2, 10, Some(0.5)))
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("the PDF at row 3 of its batch of 10 (ztrue 0.5) has 300 values"),
            "{e}"
        );
        let g = GridSource::Limits {
            zmin: 0.0,
            zmax: 2.0,
        }
        .grid_for("f", 201)
        .unwrap();
        assert_eq!(g.nz, 201);
        let mut p = vec![1.0; 301];
        assert!((normalise(&mut p, &ZGrid::default()).unwrap() - 3.0).abs() < 1e-12);
        assert_eq!(
            normalise(&mut [0.0; 301], &ZGrid::default()),
            Err(Excluded::AllZero)
        );
    }

    #[test]
    fn roundoff_reads_as_zero_and_real_dips_leave_the_pdf_out() {
        let g = ZGrid::default();
        // qp's round-off beside the support: kept, read as zero.
        let mut p = vec![2.0; 301];
        p[0] = -4e-16;
        p[300] = -3.9e-16;
        assert_eq!(clean(&mut p.clone()), Ok(2));
        // The two end samples, now zero, carry half a cell each: 2 · 2.99.
        assert!((normalise(&mut p, &g).unwrap() - 5.98).abs() < 1e-12);
        assert_eq!((p[0], p[300]), (0.0, 0.0));
        // A dip of 1e-3 of the peak is not round-off.
        let mut q = vec![2.0; 301];
        q[10] = -2e-3;
        assert_eq!(normalise(&mut q, &g), Err(Excluded::Negative));
        // Nothing positive to measure round-off against.
        let mut r = vec![0.0; 301];
        r[3] = -1e-20;
        assert_eq!(normalise(&mut r, &g), Err(Excluded::Negative));
        let mut n = vec![1.0; 301];
        n[7] = f64::NAN;
        assert_eq!(normalise(&mut n, &g), Err(Excluded::NotFinite));
        assert_eq!(
            normalise(&mut [f64::MAX; 301], &g),
            Err(Excluded::NotFinite)
        );
    }
}
