//! `cone(ra, dec, ra0, dec0, radius_deg)`: is a position inside a cone on the sky?

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::BooleanBuilder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::ang_sep::separation_rad_pre;
use super::coords::position;
use crate::args::{all_scalar, f64_arg, finish, rows};

/// A cone: centre and radius. Membership is decided with the same arithmetic as
/// `ang_sep(...) <= radius_deg * 3600`, so the two never disagree on a boundary.
#[derive(Debug, Clone, Copy)]
pub struct Cone {
    pub ra_deg: f64,
    pub dec_deg: f64,
    pub radius_deg: f64,
    lon: f64,
    sin_lat: f64,
    cos_lat: f64,
    radius_arcsec: f64,
}

impl Cone {
    /// Validates the centre and radius. A NaN centre gives `None` (no cone).
    pub fn new(ra0: f64, dec0: f64, radius_deg: f64) -> Result<Option<Cone>> {
        if radius_deg.is_nan() || radius_deg < 0.0 {
            return exec_err!("cone: radius {radius_deg} degrees must be zero or positive");
        }
        let Some((lon, lat)) = position("cone", ra0, dec0)? else {
            return Ok(None);
        };
        let (sin_lat, cos_lat) = crate::math::sin_cos(lat);
        Ok(Some(Cone {
            ra_deg: lon.to_degrees(),
            dec_deg: dec0,
            radius_deg,
            lon,
            sin_lat,
            cos_lat,
            radius_arcsec: radius_deg * 3600.0,
        }))
    }

    /// Whether (ra, dec) in degrees lies inside; `None` for a NaN position.
    #[inline]
    pub fn contains(&self, ra: f64, dec: f64) -> Result<Option<bool>> {
        let Some((lon, lat)) = position("cone", ra, dec)? else {
            return Ok(None);
        };
        let (s, c) = crate::math::sin_cos(lat);
        let sep = separation_rad_pre(self.sin_lat, self.cos_lat, self.lon, s, c, lon);
        Ok(Some(sep.to_degrees() * 3600.0 <= self.radius_arcsec))
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "True when (ra, dec) lies within radius_deg of (ra0, dec0) on the sky. Exactly \
         `ang_sep(ra, dec, ra0, dec0) <= radius_deg * 3600`. On a HATS table a `cone(...)` in \
         WHERE on the catalog's RA/Dec columns reads only the partitions that overlap the cone. \
         Null or NaN positions give null; a negative radius is an error.",
        "cone(ra, dec, ra0, dec0, radius_deg)",
    )
    .with_sql_example("SELECT count(*) FROM objects WHERE cone(ra, dec, 0.0, -30.0, 1.0);")
    .with_argument("ra", "right ascension of the row, degrees")
    .with_argument("dec", "declination of the row, degrees")
    .with_argument("ra0", "right ascension of the cone centre, degrees")
    .with_argument("dec0", "declination of the cone centre, degrees")
    .with_argument("radius_deg", "cone radius, degrees")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ConeFunc {
    signature: Signature,
}

impl Default for ConeFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl ConeFunc {
    pub fn new() -> Self {
        Self {
            signature: Signature::exact(vec![DataType::Float64; 5], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for ConeFunc {
    fn name(&self) -> &str {
        "cone"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let a: Vec<_> = (0..5)
            .map(|i| f64_arg("cone", &args.args, i))
            .collect::<Result<_>>()?;
        // The usual call has a constant centre: build the cone once.
        let fixed = match (a[2].scalar(), a[3].scalar(), a[4].scalar()) {
            (Some(Some(r)), Some(Some(d)), Some(Some(rad))) => Some(Cone::new(r, d, rad)?),
            _ => None,
        };
        let mut out = BooleanBuilder::with_capacity(n);
        for row in 0..n {
            let cone = match fixed {
                Some(c) => c,
                None => match (a[2].get(row), a[3].get(row), a[4].get(row)) {
                    (Some(r), Some(d), Some(rad)) => Cone::new(r, d, rad)?,
                    _ => None,
                },
            };
            match (cone, a[0].get(row), a[1].get(row)) {
                (Some(c), Some(ra), Some(dec)) => out.append_option(c.contains(ra, dec)?),
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
    use crate::astro::ang_sep::ang_sep_arcsec;

    #[test]
    fn inside_and_outside() {
        let c = Cone::new(0.0, -30.0, 1.0).unwrap().unwrap();
        assert_eq!(c.contains(359.5, -30.0).unwrap(), Some(true));
        assert_eq!(c.contains(0.5, -30.0).unwrap(), Some(true));
        assert_eq!(c.contains(2.0, -30.0).unwrap(), Some(false));
        assert_eq!(c.contains(0.0, -31.0001).unwrap(), Some(false));
        assert_eq!(c.contains(f64::NAN, -30.0).unwrap(), None);
    }

    #[test]
    fn agrees_with_ang_sep_on_a_grid() {
        let c = Cone::new(359.7, -29.9, 0.37).unwrap().unwrap();
        for i in 0..200 {
            for j in 0..200 {
                let ra = 359.0 + i as f64 * 0.01;
                let dec = -30.5 + j as f64 * 0.006;
                let sep = ang_sep_arcsec(ra, dec, 359.7, -29.9).unwrap().unwrap();
                assert_eq!(c.contains(ra, dec).unwrap(), Some(sep <= 0.37 * 3600.0));
            }
        }
    }

    #[test]
    fn bad_radius_and_centre() {
        let e = Cone::new(0.0, 0.0, -1.0).unwrap_err().to_string();
        assert!(e.contains("-1"), "{e}");
        assert!(Cone::new(0.0, 0.0, f64::NAN).is_err());
        assert!(Cone::new(0.0, 95.0, 1.0).is_err());
        assert!(Cone::new(f64::NAN, 0.0, 1.0).unwrap().is_none());
    }
}
