//! `ang_sep(ra1, dec1, ra2, dec2)`: great-circle separation in arcseconds.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Float64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::Result;
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::coords::position;
use crate::args::{all_scalar, f64_arg, finish, rows};

/// Great-circle separation of two points given in radians, in radians.
///
/// Vincenty's formula (the special case of the ellipsoid formula for a sphere): it is well
/// conditioned at every separation, unlike the law of cosines (loses all precision below
/// ~1″) or haversine (loses precision near antipodes).
#[inline]
pub fn separation_rad(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (s1, c1) = crate::math::sin_cos(lat1);
    let (s2, c2) = crate::math::sin_cos(lat2);
    separation_rad_pre(s1, c1, lon1, s2, c2, lon2)
}

/// [`separation_rad`] with the sines and cosines of the latitudes already known, so a fixed
/// centre (a cone) costs nothing per row.
#[inline]
pub fn separation_rad_pre(s1: f64, c1: f64, lon1: f64, s2: f64, c2: f64, lon2: f64) -> f64 {
    let (sdl, cdl) = crate::math::sin_cos(lon2 - lon1);
    let num1 = c2 * sdl;
    let num2 = c1 * s2 - s1 * c2 * cdl;
    let den = s1 * s2 + c1 * c2 * cdl;
    crate::math::atan2(crate::math::hypot(num1, num2), den)
}

/// Separation in arcseconds of two positions in degrees; `None` when a position is NaN.
/// RA is wrapped; Dec outside [-90, 90] is an error naming the value.
#[inline]
pub fn ang_sep_arcsec(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> Result<Option<f64>> {
    let (Some((l1, b1)), Some((l2, b2))) = (
        position("ang_sep", ra1, dec1)?,
        position("ang_sep", ra2, dec2)?,
    ) else {
        return Ok(None);
    };
    Ok(Some(separation_rad(l1, b1, l2, b2).to_degrees() * 3600.0))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Great-circle separation between two sky positions, in arcseconds (Vincenty's \
         formula: accurate at milli-arcsecond separations, at the poles and near antipodes). \
         RA is wrapped; a NaN or null coordinate gives null; a declination outside [-90, 90] \
         is an error.",
        "ang_sep(ra1, dec1, ra2, dec2)",
    )
    .with_sql_example("SELECT ang_sep(359.9999, 0.0, 0.0001, 0.0); -- 0.72 arcsec")
    .with_argument("ra1", "right ascension of the first position, degrees")
    .with_argument("dec1", "declination of the first position, degrees")
    .with_argument("ra2", "right ascension of the second position, degrees")
    .with_argument("dec2", "declination of the second position, degrees")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct AngSepFunc {
    signature: Signature,
}

impl Default for AngSepFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl AngSepFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Float64; 4], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for AngSepFunc {
    fn name(&self) -> &str {
        "ang_sep"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let a: Vec<_> = (0..4)
            .map(|i| f64_arg("ang_sep", &args.args, i))
            .collect::<Result<_>>()?;
        let mut out = Float64Builder::with_capacity(n);
        for row in 0..n {
            match (a[0].get(row), a[1].get(row), a[2].get(row), a[3].get(row)) {
                (Some(r1), Some(d1), Some(r2), Some(d2)) => {
                    out.append_option(ang_sep_arcsec(r1, d1, r2, d2)?)
                }
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

    fn sep(a: f64, b: f64, c: f64, d: f64) -> f64 {
        ang_sep_arcsec(a, b, c, d).unwrap().unwrap()
    }

    #[test]
    fn milliarcsecond_separations() {
        // 1 mas along the equator.
        let d = 1e-3 / 3600.0;
        assert!((sep(10.0, 0.0, 10.0 + d, 0.0) - 1e-3).abs() < 1e-9);
        // 1 mas along a meridian at high declination.
        assert!((sep(10.0, 80.0, 10.0, 80.0 + d) - 1e-3).abs() < 1e-9);
        // Across RA = 0/360.
        assert!((sep(359.9999, 0.0, 0.0001, 0.0) - 0.72).abs() < 1e-9);
    }

    #[test]
    fn poles() {
        // Two points 1" from the pole on opposite meridians are 2" apart.
        let d = 1.0 / 3600.0;
        assert!((sep(0.0, 90.0 - d, 180.0, 90.0 - d) - 2.0).abs() < 1e-7);
        // Any RA at the pole is the same point.
        assert!(sep(12.0, -90.0, 271.0, -90.0).abs() < 1e-7);
        assert!((sep(0.0, 90.0, 0.0, -90.0) - 180.0 * 3600.0).abs() < 1e-6);
    }

    #[test]
    fn antipodes_and_symmetry() {
        assert!((sep(0.0, 0.0, 180.0, 0.0) - 648000.0).abs() < 1e-6);
        assert!((sep(1.0, 2.0, 3.0, 4.0) - sep(3.0, 4.0, 1.0, 2.0)).abs() < 1e-9);
    }

    #[test]
    fn bad_input() {
        assert_eq!(ang_sep_arcsec(f64::NAN, 0.0, 0.0, 0.0).unwrap(), None);
        let e = ang_sep_arcsec(0.0, 0.0, 0.0, 100.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("100"), "{e}");
    }
}
