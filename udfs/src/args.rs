//! Argument plumbing shared by the UDF wrappers: turning `ColumnarValue`s into typed arrays.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::ColumnarValue;

/// One numeric argument, either a scalar (constant for the batch) or one value per row.
pub enum F64Arg {
    Scalar(Option<f64>),
    Array(Float64Array),
}

impl F64Arg {
    pub fn get(&self, row: usize) -> Option<f64> {
        match self {
            F64Arg::Scalar(v) => *v,
            F64Arg::Array(a) => {
                if a.is_null(row) {
                    None
                } else {
                    Some(a.value(row))
                }
            }
        }
    }

    pub fn scalar(&self) -> Option<Option<f64>> {
        match self {
            F64Arg::Scalar(v) => Some(*v),
            F64Arg::Array(_) => None,
        }
    }
}

/// Reads argument `idx` of `fname` as Float64 (integers and Float32 are cast).
pub fn f64_arg(fname: &str, args: &[ColumnarValue], idx: usize) -> Result<F64Arg> {
    let Some(arg) = args.get(idx) else {
        return exec_err!("{fname}: missing argument {}", idx + 1);
    };
    match arg {
        ColumnarValue::Scalar(s) => {
            if s.is_null() {
                return Ok(F64Arg::Scalar(None));
            }
            match s.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(v) => Ok(F64Arg::Scalar(v)),
                other => exec_err!(
                    "{fname}: argument {} is {other:?}, expected a number",
                    idx + 1
                ),
            }
        }
        ColumnarValue::Array(a) => {
            let a = cast_to(a, &DataType::Float64)?;
            match a.as_any().downcast_ref::<Float64Array>() {
                Some(f) => Ok(F64Arg::Array(f.clone())),
                None => exec_err!("{fname}: argument {} is not numeric", idx + 1),
            }
        }
    }
}

/// Reads argument `idx` as a constant integer (e.g. a HEALPix order).
pub fn i64_scalar_or_array(fname: &str, args: &[ColumnarValue], idx: usize) -> Result<I64Arg> {
    let Some(arg) = args.get(idx) else {
        return exec_err!("{fname}: missing argument {}", idx + 1);
    };
    match arg {
        ColumnarValue::Scalar(s) => {
            if s.is_null() {
                return Ok(I64Arg::Scalar(None));
            }
            match s.cast_to(&DataType::Int64)? {
                ScalarValue::Int64(v) => Ok(I64Arg::Scalar(v)),
                other => exec_err!(
                    "{fname}: argument {} is {other:?}, expected an integer",
                    idx + 1
                ),
            }
        }
        ColumnarValue::Array(a) => {
            let a = cast_to(a, &DataType::Int64)?;
            match a.as_any().downcast_ref::<Int64Array>() {
                Some(i) => Ok(I64Arg::Array(i.clone())),
                None => exec_err!("{fname}: argument {} is not an integer", idx + 1),
            }
        }
    }
}

pub enum I64Arg {
    Scalar(Option<i64>),
    Array(Int64Array),
}

impl I64Arg {
    pub fn get(&self, row: usize) -> Option<i64> {
        match self {
            I64Arg::Scalar(v) => *v,
            I64Arg::Array(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }
}

/// One string argument, scalar or per row.
pub enum StrArg {
    Scalar(Option<String>),
    Array(StringArray),
}

impl StrArg {
    pub fn get(&self, row: usize) -> Option<&str> {
        match self {
            StrArg::Scalar(v) => v.as_deref(),
            StrArg::Array(a) => (!a.is_null(row)).then(|| a.value(row)),
        }
    }
}

pub fn str_arg(fname: &str, args: &[ColumnarValue], idx: usize) -> Result<StrArg> {
    let Some(arg) = args.get(idx) else {
        return exec_err!("{fname}: missing argument {}", idx + 1);
    };
    match arg {
        ColumnarValue::Scalar(s) => {
            if s.is_null() {
                return Ok(StrArg::Scalar(None));
            }
            match s.cast_to(&DataType::Utf8)? {
                ScalarValue::Utf8(v) => Ok(StrArg::Scalar(v)),
                other => exec_err!(
                    "{fname}: argument {} is {other:?}, expected a string",
                    idx + 1
                ),
            }
        }
        ColumnarValue::Array(a) => {
            let a = cast_to(a, &DataType::Utf8)?;
            match a.as_any().downcast_ref::<StringArray>() {
                Some(s) => Ok(StrArg::Array(s.clone())),
                None => exec_err!("{fname}: argument {} is not a string", idx + 1),
            }
        }
    }
}

fn cast_to(a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if a.data_type() == to {
        Ok(Arc::clone(a))
    } else {
        Ok(cast(a, to)?)
    }
}

/// True when every argument is a scalar, so the result should be a scalar too.
pub fn all_scalar(args: &[ColumnarValue]) -> bool {
    args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_)))
}

/// Wraps a one-row result array as a scalar when every input was a scalar.
pub fn finish(array: ArrayRef, scalar: bool) -> Result<ColumnarValue> {
    if scalar && array.len() == 1 {
        Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
            &array, 0,
        )?))
    } else {
        Ok(ColumnarValue::Array(array))
    }
}

/// Rows to produce: the batch size, or one when all inputs are scalars.
pub fn rows(args: &[ColumnarValue], number_rows: usize) -> usize {
    if all_scalar(args) {
        1
    } else {
        number_rows
    }
}
