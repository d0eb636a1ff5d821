//! `flux_to_mag(flux_njy)`: AB magnitude of a flux in nanojansky.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Float64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::args::{all_scalar, f64_arg, finish, rows};

/// AB zero point for fluxes in nJy: m = -2.5 log10(f / 3631 Jy) = -2.5 log10(f_nJy) + 31.4.
pub const AB_ZERO_POINT_NJY: f64 = 31.4;

/// AB magnitude of a flux in nJy. Zero, negative, NaN or infinite flux has no magnitude.
#[inline]
pub fn flux_to_mag(flux_njy: f64) -> Option<f64> {
    (flux_njy > 0.0 && flux_njy.is_finite())
        .then(|| -2.5 * crate::math::log10(flux_njy) + AB_ZERO_POINT_NJY)
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "AB magnitude of a flux in nanojansky: -2.5·log10(flux) + 31.4. A null, NaN, \
         infinite, zero or negative flux gives a null magnitude (it is a non-detection; \
         code it as you need, e.g. `coalesce(flux_to_mag(f), 99)`).",
        "flux_to_mag(flux_njy)",
    )
    .with_sql_example("SELECT flux_to_mag(3631e9); -- 0.0")
    .with_argument("flux_njy", "flux in nJy")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct FluxToMagFunc {
    signature: Signature,
}

impl Default for FluxToMagFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl FluxToMagFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for FluxToMagFunc {
    fn name(&self) -> &str {
        "flux_to_mag"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let flux = f64_arg("flux_to_mag", &args.args, 0)?;
        let mut out = Float64Builder::with_capacity(n);
        for row in 0..n {
            out.append_option(flux.get(row).and_then(flux_to_mag));
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
    fn zero_point() {
        assert!((flux_to_mag(3631e9).unwrap()).abs() < 1e-3);
        assert!((flux_to_mag(1.0).unwrap() - 31.4).abs() < 1e-12);
        assert!((flux_to_mag(100.0).unwrap() - 26.4).abs() < 1e-12);
    }

    #[test]
    fn no_magnitude() {
        for f in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(flux_to_mag(f), None, "{f}");
        }
    }
}
