//! `deredden(mag, ebv, band)`: remove Galactic extinction from an LSST magnitude.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Float64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::args::{all_scalar, f64_arg, finish, rows, str_arg};

/// Magnitudes at or above this are non-detection sentinels (RAIL's 99), left untouched.
pub const NON_DETECTION_MAG: f64 = 99.0;

/// A_band / E(B−V) for the LSST bands (Schlafly & Finkbeiner 2011, R_V = 3.1).
pub fn extinction_coefficient(band: &str) -> Result<f64> {
    let b = band.trim();
    let b = b
        .strip_prefix("lsst_")
        .or_else(|| b.strip_prefix("LSST_"))
        .unwrap_or(b);
    Ok(match b {
        "u" | "U" => 4.81,
        "g" | "G" => 3.64,
        "r" | "R" => 2.70,
        "i" | "I" => 2.06,
        "z" | "Z" => 1.58,
        "y" | "Y" => 1.31,
        _ => return exec_err!("deredden: unknown band '{band}', expected one of u, g, r, i, z, y"),
    })
}

/// Extinction-corrected magnitude: mag − R_band · E(B−V).
///
/// A non-detection (mag ≥ 99) is passed through unchanged so its sentinel survives; NaN mag
/// or E(B−V) gives `None`; a negative E(B−V) is an error.
#[inline]
pub fn deredden(mag: f64, ebv: f64, r_band: f64) -> Result<Option<f64>> {
    if mag.is_nan() || ebv.is_nan() {
        return Ok(None);
    }
    if ebv < 0.0 {
        return exec_err!("deredden: E(B-V) {ebv} is negative");
    }
    if mag >= NON_DETECTION_MAG {
        return Ok(Some(mag));
    }
    Ok(Some(mag - r_band * ebv))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Magnitude corrected for Galactic extinction: mag − R·E(B−V) with A/E(B−V) = \
         u 4.81, g 3.64, r 2.70, i 2.06, z 1.58, y 1.31. Non-detections (mag ≥ 99) pass \
         through unchanged; a NaN or null input gives null; an unknown band or a negative \
         E(B−V) is an error.",
        "deredden(mag, ebv, band)",
    )
    .with_sql_example("SELECT deredden(mag_g, ebv, 'g') FROM objects;")
    .with_argument("mag", "AB magnitude")
    .with_argument("ebv", "E(B−V) reddening, e.g. from the SFD map")
    .with_argument("band", "'u', 'g', 'r', 'i', 'z' or 'y'")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DereddenFunc {
    signature: Signature,
}

impl Default for DereddenFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl DereddenFunc {
    pub fn new() -> Self {
        use DataType::*;
        Self {
            signature: Signature::exact(vec![Float64, Float64, Utf8], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for DereddenFunc {
    fn name(&self) -> &str {
        "deredden"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let mag = f64_arg("deredden", &args.args, 0)?;
        let ebv = f64_arg("deredden", &args.args, 1)?;
        let band = str_arg("deredden", &args.args, 2)?;
        let fixed = match &band {
            crate::args::StrArg::Scalar(Some(b)) => Some(extinction_coefficient(b)?),
            _ => None,
        };
        let mut out = Float64Builder::with_capacity(n);
        for row in 0..n {
            let r = match fixed {
                Some(r) => Some(r),
                None => band.get(row).map(extinction_coefficient).transpose()?,
            };
            match (mag.get(row), ebv.get(row), r) {
                (Some(m), Some(e), Some(r)) => out.append_option(deredden(m, e, r)?),
                _ => out.append_null(),
            }
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
    fn coefficients() {
        let expect = [
            ("u", 4.81),
            ("g", 3.64),
            ("r", 2.70),
            ("i", 2.06),
            ("z", 1.58),
            ("y", 1.31),
        ];
        for (b, r) in expect {
            assert_eq!(extinction_coefficient(b).unwrap(), r);
        }
        assert_eq!(extinction_coefficient("lsst_g").unwrap(), 3.64);
        let e = extinction_coefficient("w").unwrap_err().to_string();
        assert!(e.contains("'w'"), "{e}");
    }

    #[test]
    fn corrects_and_keeps_sentinels() {
        assert!((deredden(24.0, 0.1, 3.64).unwrap().unwrap() - 23.636).abs() < 1e-12);
        assert_eq!(deredden(99.0, 0.1, 3.64).unwrap(), Some(99.0));
        assert_eq!(deredden(f64::NAN, 0.1, 3.64).unwrap(), None);
        assert!(deredden(24.0, -0.1, 3.64).is_err());
    }
}
