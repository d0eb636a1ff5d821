//! The two shapes every metric aggregate takes, so each metric file holds only its kernel and
//! its documentation:
//!
//! * [`ValuesAggregate`]: collects one number per row (dz from `zphot, ztrue`, or a PIT value)
//!   and finishes on the whole sorted multiset. The partial state is the values themselves,
//!   so medians and quantiles are exact and the answer does not depend on how rows were
//!   split across partitions or executors.
//! * [`PdfMeanAggregate`]: a per-object term of `(pdf, ztrue)` averaged over objects (CDE
//!   loss, CRPS, Brier). The partial state is a compensated sum and a count.
//!
//! Rows with a null input are left out, as SQL's own aggregates do. A value that is there but
//! is not a number the metric can use (a NaN or infinite redshift, a true redshift ≤ −1, a
//! PIT value outside [0, 1]) is an error that says so: leaving it out would change the
//! answer silently. PDFs that cannot be normalised (all zero, negative beyond round-off,
//! not finite) are left out of the PDF metrics and counted by `pz_pdf_excluded`. An
//! aggregate over no usable row, or one too few for the statistic, is null.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
};
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::PhysicalExpr;

use super::pdf_arg::{check_pdf_type, normalise, resolve_grid, row_label, GridSource, PdfColumn};
use crate::photoz::grid::ZGrid;

/// What a [`ValuesAggregate`] collects from each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValuesInput {
    /// `(zphot, ztrue)` → dz = (zphot − ztrue)/(1 + ztrue).
    Dz,
    /// PIT values, each a CDF value in [0, 1].
    Pit,
}

/// A metric over the multiset of collected values.
#[derive(Debug)]
pub struct ValuesSpec {
    pub name: &'static str,
    pub input: ValuesInput,
    /// Receives the values sorted ascending (never empty).
    pub finish: fn(&[f64]) -> f64,
    pub doc: &'static LazyLock<Documentation>,
}

/// The aggregate face of a [`ValuesSpec`].
pub struct ValuesAggregate {
    spec: &'static ValuesSpec,
    signature: Signature,
}

impl ValuesAggregate {
    pub fn udaf(spec: &'static ValuesSpec) -> AggregateUDF {
        AggregateUDF::new_from_impl(ValuesAggregate {
            spec,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    }
}

impl fmt::Debug for ValuesAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValuesAggregate")
            .field("name", &self.spec.name)
            .finish()
    }
}

impl PartialEq for ValuesAggregate {
    fn eq(&self, o: &Self) -> bool {
        self.spec.name == o.spec.name
    }
}
impl Eq for ValuesAggregate {}
impl Hash for ValuesAggregate {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.spec.name.hash(h)
    }
}

fn check_numeric(fname: &str, what: &str, t: &DataType) -> Result<()> {
    if t.is_numeric() || t.is_null() {
        Ok(())
    } else {
        plan_err!("{fname}: {what} must be numeric, got {t}")
    }
}

impl AggregateUDFImpl for ValuesAggregate {
    fn name(&self) -> &str {
        self.spec.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let name = self.spec.name;
        match self.spec.input {
            ValuesInput::Dz => {
                if args.len() != 2 {
                    return plan_err!("{name} takes (zphot, ztrue), got {} arguments", args.len());
                }
                check_numeric(name, "zphot", &args[0])?;
                check_numeric(name, "ztrue", &args[1])?;
            }
            ValuesInput::Pit => {
                if args.len() != 1 {
                    return plan_err!(
                        "{name} takes one column of PIT values, got {} arguments",
                        args.len()
                    );
                }
                check_numeric(name, "its argument", &args[0])?;
            }
        }
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(ValuesAccumulator {
            spec: self.spec,
            values: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![Arc::new(Field::new(
            format!("{}[values]", args.name),
            DataType::List(Arc::new(Field::new_list_field(DataType::Float64, true))),
            true,
        ))])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(self.spec.doc)
    }
}

/// One list value holding `values` (a partial state).
pub(crate) fn f64_list(values: Vec<f64>) -> ScalarValue {
    let n = values.len();
    ScalarValue::List(Arc::new(ListArray::new(
        Arc::new(Field::new_list_field(DataType::Float64, true)),
        OffsetBuffer::from_lengths([n]),
        Arc::new(Float64Array::from(values)),
        None,
    )))
}

pub(crate) fn f64_array(a: &ArrayRef) -> Result<Float64Array> {
    let c = cast(a, &DataType::Float64)?;
    Ok(c.as_primitive::<Float64Type>().clone())
}

#[derive(Debug)]
struct ValuesAccumulator {
    spec: &'static ValuesSpec,
    values: Vec<f64>,
}

impl Accumulator for ValuesAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let name = self.spec.name;
        match self.spec.input {
            ValuesInput::Dz => {
                let zp = f64_array(&values[0])?;
                let zt = f64_array(&values[1])?;
                for i in 0..zp.len() {
                    if zp.is_valid(i) && zt.is_valid(i) {
                        self.values.push(point_dz(name, zp.value(i), zt.value(i))?);
                    }
                }
            }
            ValuesInput::Pit => {
                let v = f64_array(&values[0])?;
                for i in 0..v.len() {
                    if v.is_valid(i) {
                        self.values.push(pit_value(name, v.value(i))?);
                    }
                }
            }
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let lists = states[0].as_list::<i32>();
        for i in 0..lists.len() {
            if lists.is_valid(i) {
                let v = lists.value(i);
                self.values
                    .extend(v.as_primitive::<Float64Type>().values().iter().copied());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![f64_list(std::mem::take(&mut self.values))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        if self.values.is_empty() {
            return Ok(ScalarValue::Float64(None));
        }
        super::stats::sort(&mut self.values);
        // A statistic undefined for so few values (e.g. Anderson–Darling of one PIT) is
        // NaN from the kernel; SQL says that with null.
        let v = (self.spec.finish)(&self.values);
        Ok(ScalarValue::Float64(v.is_finite().then_some(v)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * 8
    }
}

/// A per-object term of a normalised PDF and its true redshift, averaged over objects.
#[derive(Debug)]
pub struct PdfMeanSpec {
    pub name: &'static str,
    /// `pdf` has unit trapezoid integral on `grid`.
    pub term: fn(pdf: &[f64], grid: &ZGrid, ztrue: f64) -> f64,
    pub doc: &'static LazyLock<Documentation>,
}

pub struct PdfMeanAggregate {
    spec: &'static PdfMeanSpec,
    signature: Signature,
}

impl PdfMeanAggregate {
    pub fn udaf(spec: &'static PdfMeanSpec) -> AggregateUDF {
        AggregateUDF::new_from_impl(PdfMeanAggregate {
            spec,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    }
}

impl fmt::Debug for PdfMeanAggregate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PdfMeanAggregate")
            .field("name", &self.spec.name)
            .finish()
    }
}

impl PartialEq for PdfMeanAggregate {
    fn eq(&self, o: &Self) -> bool {
        self.spec.name == o.spec.name
    }
}
impl Eq for PdfMeanAggregate {}
impl Hash for PdfMeanAggregate {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.spec.name.hash(h)
    }
}

/// Checks `(pdf, ztrue [, zmin, zmax])` argument types.
pub fn check_pdf_ztrue_args(name: &str, args: &[DataType]) -> Result<()> {
    if args.len() != 2 && args.len() != 4 {
        return plan_err!(
            "{name} takes (pdf, ztrue) or (pdf, ztrue, zmin, zmax), got {} arguments",
            args.len()
        );
    }
    check_pdf_type(name, &args[0])?;
    check_numeric(name, "ztrue", &args[1])?;
    for t in &args[2..] {
        check_numeric(name, "zmin and zmax", t)?;
    }
    Ok(())
}

/// The grid limits given as literal arguments `first, first + 1`, if any.
pub fn literal_limits(
    name: &str,
    exprs: &[Arc<dyn PhysicalExpr>],
    first: usize,
) -> Result<Option<(f64, f64)>> {
    if exprs.len() <= first {
        return Ok(None);
    }
    let mut v = [0.0; 2];
    for (k, slot) in v.iter_mut().enumerate() {
        let Some(lit) = exprs
            .get(first + k)
            .and_then(|e| e.downcast_ref::<Literal>())
        else {
            return plan_err!("{name}: zmin and zmax must be constants");
        };
        match lit.value().cast_to(&DataType::Float64)? {
            ScalarValue::Float64(Some(x)) => *slot = x,
            other => return plan_err!("{name}: zmin and zmax must be numbers, got {other}"),
        }
    }
    Ok(Some((v[0], v[1])))
}

impl AggregateUDFImpl for PdfMeanAggregate {
    fn name(&self) -> &str {
        self.spec.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        check_pdf_ztrue_args(self.spec.name, args)?;
        Ok(DataType::Float64)
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let name = self.spec.name;
        let limits = literal_limits(name, args.exprs, 2)?;
        let grid = resolve_grid(name, &args.expr_fields[0], limits)?;
        Ok(Box::new(PdfMeanAccumulator {
            spec: self.spec,
            grid,
            sum: NeumaierSum::default(),
            count: 0,
            buf: Vec::new(),
        }))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[sum]", args.name),
                DataType::Float64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[compensation]", args.name),
                DataType::Float64,
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
        Some(self.spec.doc)
    }
}

/// Neumaier's compensated sum: partial sums merged in any order agree to the last bits
/// that matter for a mean of millions of terms.
#[derive(Debug, Default, Clone, Copy)]
pub struct NeumaierSum {
    pub sum: f64,
    pub comp: f64,
}

impl NeumaierSum {
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.comp += (self.sum - t) + x;
        } else {
            self.comp += (x - t) + self.sum;
        }
        self.sum = t;
    }

    pub fn merge(&mut self, o: NeumaierSum) {
        self.add(o.sum);
        self.comp += o.comp;
    }

    pub fn value(&self) -> f64 {
        self.sum + self.comp
    }
}

#[derive(Debug)]
struct PdfMeanAccumulator {
    spec: &'static PdfMeanSpec,
    grid: GridSource,
    sum: NeumaierSum,
    count: u64,
    buf: Vec<f64>,
}

impl Accumulator for PdfMeanAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let name = self.spec.name;
        let pdfs = PdfColumn::new(name, &values[0])?;
        let zt = f64_array(&values[1])?;
        let mut buf = std::mem::take(&mut self.buf);
        let n = pdfs.len();
        for i in 0..n {
            // Rows without a PDF or a true redshift are left out; pz_pdf_excluded counts
            // them.
            if !zt.is_valid(i) {
                continue;
            }
            let z = pdf_ztrue(name, zt.value(i))?;
            let Some(p) = pdfs.row(i, &mut buf) else {
                continue;
            };
            let grid = self
                .grid
                .grid_for_row(name, p.len(), || row_label(i, n, Some(z)))?;
            if normalise(&mut buf, &grid).is_err() {
                continue;
            }
            self.sum.add((self.spec.term)(&buf, &grid, z));
            self.count += 1;
        }
        self.buf = buf;
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let s = states[0].as_primitive::<Float64Type>();
        let c = states[1].as_primitive::<Float64Type>();
        let n = states[2].as_primitive::<UInt64Type>();
        for i in 0..s.len() {
            if n.is_valid(i) {
                self.sum.merge(NeumaierSum {
                    sum: s.value(i),
                    comp: c.value(i),
                });
                self.count += n.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::Float64(Some(self.sum.sum)),
            ScalarValue::Float64(Some(self.sum.comp)),
            ScalarValue::UInt64(Some(self.count)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            (self.count > 0).then(|| self.sum.value() / self.count as f64),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.buf.capacity() * 8
    }
}

/// dz of a (zphot, ztrue) pair, or an error saying which of the two cannot be used.
pub fn point_dz(name: &str, zphot: f64, ztrue: f64) -> Result<f64> {
    if !zphot.is_finite() {
        return exec_err!(
            "{name}: a photo-z (zphot) is {zphot}; photo-z values must be finite numbers (an object without an estimate should have NULL, which is left out)"
        );
    }
    let ztrue = pdf_ztrue(name, ztrue)?;
    if ztrue <= -1.0 {
        return exec_err!(
            "{name}: a true redshift (ztrue) is {ztrue}; dz = (zphot - ztrue)/(1 + ztrue) needs ztrue > -1"
        );
    }
    Ok(super::stats::dz(zphot, ztrue))
}

/// A true redshift a PDF metric can use: a finite number.
pub fn pdf_ztrue(name: &str, ztrue: f64) -> Result<f64> {
    if ztrue.is_finite() {
        Ok(ztrue)
    } else {
        exec_err!(
            "{name}: a true redshift (ztrue) is {ztrue}; true redshifts must be finite numbers (a missing one should be NULL, which is left out)"
        )
    }
}

/// PIT values may overshoot [0, 1] by this much from another tool's round-off; they are
/// clamped. Anything further out is not a CDF value.
pub const PIT_SLACK: f64 = 1e-12;

/// A PIT value the statistics can use, or an error that says what is wrong with it.
pub fn pit_value(name: &str, v: f64) -> Result<f64> {
    if (-PIT_SLACK..=1.0 + PIT_SLACK).contains(&v) {
        Ok(v.clamp(0.0, 1.0))
    } else {
        exec_err!(
            "{name}: a PIT value is {v}; PIT values are CDF values in [0, 1] (as pz_pit(pdf, ztrue) returns them)"
        )
    }
}
