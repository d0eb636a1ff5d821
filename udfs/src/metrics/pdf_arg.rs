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
/// `explicit_nz` is the list length when the type fixes it.
pub fn resolve_grid(
    fname: &str,
    field: &Field,
    explicit: Option<(f64, f64)>,
) -> Result<GridSource> {
    if let Some((zmin, zmax)) = explicit {
        return Ok(GridSource::Limits { zmin, zmax });
    }
    if let Some(g) = ZGrid::from_metadata(field.metadata()) {
        return Ok(GridSource::Fixed(g.map_err(|e| {
            datafusion::error::DataFusionError::Plan(format!("{fname}: {e}"))
        })?));
    }
    Ok(GridSource::Default)
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
    /// The grid for PDFs of `len` samples, or an error that says why they do not fit.
    pub fn grid_for(&self, fname: &str, len: usize) -> Result<ZGrid> {
        let g = match *self {
            GridSource::Fixed(g) => g,
            GridSource::Limits { zmin, zmax } => ZGrid::new(zmin, zmax, len)
                .map_err(|e| datafusion::error::DataFusionError::Plan(format!("{fname}: {e}")))?,
            GridSource::Default => ZGrid::default(),
        };
        if g.nz != len {
            let from = match self {
                GridSource::Fixed(_) => "the grid in the pdf field's metadata",
                GridSource::Limits { .. } => "the explicit grid",
                GridSource::Default => {
                    "the default grid (z = 0..3, 301 points; pass zmin, zmax for another)"
                }
            };
            return exec_err!(
                "{fname}: a PDF has {len} values but {from} has {} points",
                g.nz
            );
        }
        Ok(g)
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

/// Normalises a PDF to unit trapezoid integral over its grid, as qp's `interp`
/// representation does; returns the integral it had, or None when the PDF cannot be
/// normalised (not finite, negative, or all zero).
pub fn normalise(pdf: &mut [f64], grid: &ZGrid) -> Option<f64> {
    let area = integral(pdf, grid);
    if !(area.is_finite() && area > 0.0) || pdf.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    for v in pdf.iter_mut() {
        *v /= area;
    }
    Some(area)
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
        assert!(e.to_string().contains("300 values"), "{e}");
        let g = GridSource::Limits {
            zmin: 0.0,
            zmax: 2.0,
        }
        .grid_for("f", 201)
        .unwrap();
        assert_eq!(g.nz, 201);
        let mut p = vec![1.0; 301];
        assert!((normalise(&mut p, &ZGrid::default()).unwrap() - 3.0).abs() < 1e-12);
        assert!(normalise(&mut [0.0; 301], &ZGrid::default()).is_none());
    }
}
