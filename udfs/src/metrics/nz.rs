//! `pz_nz(pdf [, zmin, zmax])`: the stacked redshift distribution N(z) of a group.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeListArray, Float64Array, ListArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::aggregate::{f64_list, literal_limits};
use super::pdf_arg::{check_pdf_type, normalise, resolve_grid, row_label, GridSource, PdfColumn};
use crate::photoz::grid::ZGrid;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Stacked N(z): the mean of the group's PDFs, each normalised to unit integral, so the \
         result is itself a PDF on the same grid (it carries the grid in its field metadata \
         when the input is a FixedSizeList). Negative round-off (within 1e-6 of a PDF's peak) \
         reads as zero; PDFs that cannot be normalised (all zero, negative, not finite) are \
         left out and counted by pz_pdf_excluded(pdf). Null for a group with no usable PDF.",
        "pz_nz(pdf [, zmin, zmax])",
    )
    .with_sql_example(
        "SELECT pz_tomo_bin(z_mode, [0.2, 0.6, 1.0]) AS bin, pz_nz(pdf) FROM t GROUP BY bin;",
    )
    .with_argument(
        "pdf",
        "FixedSizeList or List of Float32/Float64 sampled on the grid",
    )
    .with_argument(
        "zmin, zmax",
        "grid limits when the pdf field has no pz grid metadata",
    )
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct NzFunc {
    signature: Signature,
}

pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(NzFunc {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

fn item() -> FieldRef {
    Arc::new(Field::new_list_field(DataType::Float64, true))
}

impl AggregateUDFImpl for NzFunc {
    fn name(&self) -> &str {
        "pz_nz"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() != 1 && args.len() != 3 {
            return plan_err!(
                "pz_nz takes (pdf) or (pdf, zmin, zmax), got {} arguments",
                args.len()
            );
        }
        check_pdf_type("pz_nz", &args[0])?;
        Ok(match &args[0] {
            DataType::FixedSizeList(_, n) => DataType::FixedSizeList(item(), *n),
            _ => DataType::List(item()),
        })
    }

    fn return_field(&self, arg_fields: &[FieldRef]) -> Result<FieldRef> {
        let types: Vec<DataType> = arg_fields.iter().map(|f| f.data_type().clone()).collect();
        let t = self.return_type(&types)?;
        let mut f = Field::new("pz_nz", t.clone(), true);
        if let DataType::FixedSizeList(_, n) = t {
            let grid = match ZGrid::from_metadata(arg_fields[0].metadata()) {
                Some(g) => Some(g?),
                None if arg_fields.len() == 1 && n == 301 => Some(ZGrid::default()),
                None => None,
            };
            if let Some(g) = grid {
                f = f.with_metadata(g.metadata());
            }
        }
        Ok(Arc::new(f))
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let limits = literal_limits("pz_nz", args.exprs, 1)?;
        let grid = resolve_grid("pz_nz", &args.expr_fields[0], limits)?;
        Ok(Box::new(NzAcc {
            grid,
            fixed: match args.return_type() {
                DataType::FixedSizeList(_, n) => Some(*n),
                _ => None,
            },
            sum: Vec::new(),
            count: 0,
            buf: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[sum]", args.name),
                DataType::List(item()),
                true,
            )),
            Arc::new(Field::new(
                format!("{}[count]", args.name),
                DataType::UInt64,
                true,
            )),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug)]
struct NzAcc {
    grid: GridSource,
    /// The list length when the result is a FixedSizeList.
    fixed: Option<i32>,
    sum: Vec<f64>,
    count: u64,
    buf: Vec<f64>,
}

impl NzAcc {
    fn add(&mut self, v: &[f64]) -> Result<()> {
        if self.sum.is_empty() {
            self.sum = vec![0.0; v.len()];
        } else if self.sum.len() != v.len() {
            return exec_err!(
                "pz_nz: PDFs of different lengths in one group ({} and {})",
                self.sum.len(),
                v.len()
            );
        }
        for (s, x) in self.sum.iter_mut().zip(v) {
            *s += x;
        }
        Ok(())
    }
}

impl Accumulator for NzAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let pdfs = PdfColumn::new("pz_nz", &values[0])?;
        let mut buf = std::mem::take(&mut self.buf);
        let n = pdfs.len();
        for i in 0..n {
            let Some(p) = pdfs.row(i, &mut buf) else {
                continue;
            };
            let grid = self
                .grid
                .grid_for_row("pz_nz", p.len(), || row_label(i, n, None))?;
            if normalise(&mut buf, &grid).is_ok() {
                self.add(&buf)?;
                self.count += 1;
            }
        }
        self.buf = buf;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let sums = states[0].as_list::<i32>();
        let counts = states[1].as_primitive::<UInt64Type>();
        for i in 0..sums.len() {
            if counts.is_valid(i) && counts.value(i) > 0 {
                let v = sums.value(i);
                self.add(v.as_primitive::<Float64Type>().values())?;
                self.count += counts.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            f64_list(std::mem::take(&mut self.sum)),
            ScalarValue::UInt64(Some(self.count)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.count == 0 {
            return Ok(match self.fixed {
                Some(n) => {
                    ScalarValue::FixedSizeList(Arc::new(FixedSizeListArray::new_null(item(), n, 1)))
                }
                None => ScalarValue::List(Arc::new(ListArray::new_null(item(), 1))),
            });
        }
        let mean: Vec<f64> = self.sum.iter().map(|s| s / self.count as f64).collect();
        let n = mean.len();
        let values = Arc::new(Float64Array::from(mean));
        Ok(if self.fixed.is_some() {
            ScalarValue::FixedSizeList(Arc::new(FixedSizeListArray::new(
                item(),
                n as i32,
                values,
                None,
            )))
        } else {
            ScalarValue::List(Arc::new(ListArray::new(
                item(),
                OffsetBuffer::from_lengths([n]),
                values,
                None,
            )))
        })
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + (self.sum.capacity() + self.buf.capacity()) * 8
    }
}
