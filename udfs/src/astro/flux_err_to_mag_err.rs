//! `flux_err_to_mag_err(flux, flux_err)`: magnitude error from a flux error.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Float64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::args::{all_scalar, f64_arg, finish, rows};

/// 2.5 / ln(10): d(mag) = 1.0857 · d(flux) / flux.
pub const POGSON: f64 = 1.085_736_204_758_129_6;

/// First-order magnitude error of a flux measurement (both in the same unit).
/// No magnitude error without a positive finite flux, or with a negative or NaN error.
#[inline]
pub fn flux_err_to_mag_err(flux: f64, flux_err: f64) -> Option<f64> {
    (flux > 0.0 && flux.is_finite() && flux_err >= 0.0 && flux_err.is_finite())
        .then(|| POGSON * flux_err / flux)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Magnitude error from a flux and its 1σ error (same unit): 2.5/ln(10)·flux_err/flux. \
         Null when the flux is null, NaN, zero or negative (no magnitude), or the error is \
         null, NaN or negative.",
        "flux_err_to_mag_err(flux, flux_err)",
    )
    .with_sql_example("SELECT flux_err_to_mag_err(100.0, 10.0); -- 0.10857")
    .with_argument("flux", "flux, e.g. in nJy")
    .with_argument("flux_err", "1σ flux error, same unit")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FluxErrToMagErrFunc {
    signature: Signature,
}

impl Default for FluxErrToMagErrFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl FluxErrToMagErrFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Float64; 2], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FluxErrToMagErrFunc {
    fn name(&self) -> &str {
        "flux_err_to_mag_err"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let flux = f64_arg("flux_err_to_mag_err", &args.args, 0)?;
        let err = f64_arg("flux_err_to_mag_err", &args.args, 1)?;
        let mut out = Float64Builder::with_capacity(n);
        for row in 0..n {
            let v = match (flux.get(row), err.get(row)) {
                (Some(f), Some(e)) => flux_err_to_mag_err(f, e),
                _ => None,
            };
            out.append_option(v);
        }
        finish(Arc::new(out.finish()), all_scalar(&args.args))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_percent_is_about_a_tenth_of_a_mag() {
        assert!((flux_err_to_mag_err(100.0, 10.0).unwrap() - 0.10857362).abs() < 1e-8);
        assert_eq!(flux_err_to_mag_err(100.0, 0.0), Some(0.0));
    }

    #[test]
    fn undefined() {
        assert_eq!(flux_err_to_mag_err(0.0, 1.0), None);
        assert_eq!(flux_err_to_mag_err(-5.0, 1.0), None);
        assert_eq!(flux_err_to_mag_err(f64::NAN, 1.0), None);
        assert_eq!(flux_err_to_mag_err(5.0, -1.0), None);
        assert_eq!(flux_err_to_mag_err(5.0, f64::NAN), None);
    }
}
