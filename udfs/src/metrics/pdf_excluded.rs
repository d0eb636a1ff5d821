//! `pz_pdf_excluded(pdf [, ztrue] [, zmin, zmax])`: how many rows the PDF metrics leave out,
//! so a left-out PDF is never silent; and `pz_pdf_status(pdf [, zmin, zmax])`, which says
//! for one row whether its PDF is used and, if not, why.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Documentation, ScalarFunctionArgs,
    ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::aggregate::{f64_array, literal_limits, pdf_ztrue};
use super::pdf_arg::{check_pdf_type, normalise, resolve_grid, row_label, GridSource, PdfColumn};
use super::pit::scalar_limits;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Number of rows the PDF metrics leave out: a null PDF, a PDF that cannot be \
         normalised (a NaN or infinite sample, a sample negative beyond round-off of 1e-6 of \
         its peak, every sample zero) and, when ztrue is given, a null true redshift. With the \
         arguments of pz_cde_loss / pz_crps / pz_brier / pz_pit it counts the rows those leave \
         out, so count(*) = used + excluded; with (pdf) alone it counts those pz_nz leaves out. \
         pz_pdf_status(pdf) names the reason per row.",
        "pz_pdf_excluded(pdf [, ztrue] [, zmin, zmax])",
    )
    .with_sql_example("SELECT pz_cde_loss(pdf, redshift), pz_pdf_excluded(pdf, redshift) FROM t;")
    .with_argument(
        "pdf",
        "FixedSizeList or List of Float32/Float64 sampled on the grid",
    )
    .with_argument("ztrue", "reference redshift (optional)")
    .with_argument(
        "zmin, zmax",
        "grid limits when the pdf field has no pz grid metadata",
    )
    .build()
});

/// Splits `(pdf [, ztrue] [, zmin, zmax])`: whether a ztrue is given.
fn has_ztrue(name: &str, args: &[DataType]) -> Result<bool> {
    let with = match args.len() {
        1 | 3 => false,
        2 | 4 => true,
        n => {
            return plan_err!(
                "{name} takes (pdf), (pdf, ztrue), (pdf, zmin, zmax) or (pdf, ztrue, zmin, zmax), got {n} arguments"
            )
        }
    };
    check_pdf_type(name, &args[0])?;
    if let Some(t) = args[1..].iter().find(|t| !(t.is_numeric() || t.is_null())) {
        return plan_err!("{name}: ztrue, zmin and zmax must be numeric, got {t}");
    }
    Ok(with)
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PdfExcluded {
    signature: Signature,
}

pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(PdfExcluded {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl AggregateUDFImpl for PdfExcluded {
    fn name(&self) -> &str {
        "pz_pdf_excluded"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        has_ztrue("pz_pdf_excluded", args)?;
        Ok(DataType::Int64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let name = "pz_pdf_excluded";
        let types: Vec<DataType> = args
            .expr_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let with_ztrue = has_ztrue(name, &types)?;
        let limits = literal_limits(name, args.exprs, if with_ztrue { 2 } else { 1 })?;
        let grid = resolve_grid(name, &args.expr_fields[0], limits)?;
        Ok(Box::new(ExcludedAcc {
            grid,
            with_ztrue,
            excluded: 0,
            buf: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[excluded]", args.name),
            DataType::Int64,
            true,
        ))])
    }

    fn default_value(&self, _data_type: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug)]
struct ExcludedAcc {
    grid: GridSource,
    with_ztrue: bool,
    excluded: i64,
    buf: Vec<f64>,
}

impl Accumulator for ExcludedAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let name = "pz_pdf_excluded";
        let pdfs = PdfColumn::new(name, &values[0])?;
        let zt = if self.with_ztrue {
            Some(f64_array(&values[1])?)
        } else {
            None
        };
        let mut buf = std::mem::take(&mut self.buf);
        let n = pdfs.len();
        for i in 0..n {
            // The same order of checks as the metrics, so the same rows raise the same errors.
            let z = match &zt {
                Some(a) if !a.is_valid(i) => {
                    self.excluded += 1;
                    continue;
                }
                Some(a) => Some(pdf_ztrue(name, a.value(i))?),
                None => None,
            };
            let Some(p) = pdfs.row(i, &mut buf) else {
                self.excluded += 1;
                continue;
            };
            let grid = self
                .grid
                .grid_for_row(name, p.len(), || row_label(i, n, z))?;
            if normalise(&mut buf, &grid).is_err() {
                self.excluded += 1;
            }
        }
        self.buf = buf;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let c = states[0].as_primitive::<Int64Type>();
        for i in 0..c.len() {
            if c.is_valid(i) {
                self.excluded += c.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![ScalarValue::Int64(Some(self.excluded))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(self.excluded)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.buf.capacity() * 8
    }
}

static STATUS_DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Whether the PDF metrics use a row's PDF: 'ok', or why not: 'null', 'not_finite' (a \
         NaN or infinite sample), 'negative' (a sample below -1e-6 of the peak; shallower \
         round-off reads as zero and is 'ok'), 'all_zero'. A PDF that does not fit the grid \
         is an error, as in the metrics.",
        "pz_pdf_status(pdf [, zmin, zmax])",
    )
    .with_sql_example(
        "SELECT id, pz_pdf_status(pdf) AS why FROM photoz WHERE pz_pdf_status(pdf) <> 'ok';",
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
pub struct PdfStatus {
    signature: Signature,
}

pub fn status_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(PdfStatus {
        signature: Signature::variadic_any(Volatility::Immutable),
    }))
}

impl ScalarUDFImpl for PdfStatus {
    fn name(&self) -> &str {
        "pz_pdf_status"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() != 1 && args.len() != 3 {
            return plan_err!(
                "pz_pdf_status takes (pdf) or (pdf, zmin, zmax), got {} arguments",
                args.len()
            );
        }
        has_ztrue("pz_pdf_status", args)?;
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name = "pz_pdf_status";
        let n = args.number_rows;
        let limits = scalar_limits(name, &args.args, 1)?;
        let source = resolve_grid(name, &args.arg_fields[0], limits)?;
        let pdfs = PdfColumn::new(name, &args.args[0].to_array(n)?)?;
        let mut out = StringBuilder::with_capacity(n, 4 * n);
        let mut buf = Vec::new();
        for i in 0..n {
            let status = match pdfs.row(i, &mut buf) {
                None => super::pdf_arg::Excluded::Null.key(),
                Some(p) => {
                    let grid = source.grid_for_row(name, p.len(), || row_label(i, n, None))?;
                    match normalise(&mut buf, &grid) {
                        Ok(_) => "ok",
                        Err(why) => why.key(),
                    }
                }
            };
            out.append_value(status);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&STATUS_DOC)
    }
}
