//! `healpix(order, ra, dec)`: the nested HEALPix index of a position.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::Int64Builder;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::coords::position;
use crate::args::{f64_arg, finish, i64_scalar_or_array, rows};

/// Deepest order HEALPix supports with 64-bit nested indices (and the order of `_healpix_29`).
pub const MAX_ORDER: u8 = 29;

/// Nested HEALPix index of (ra, dec) in degrees at `order` (0–29).
///
/// Equals `_healpix_29 >> 2*(29 - order)` for the rows hats-import writes. RA is wrapped,
/// NaN positions give `None`, Dec outside [-90, 90] is an error.
#[inline]
pub fn healpix_nested(order: u8, ra_deg: f64, dec_deg: f64) -> Result<Option<u64>> {
    if order > MAX_ORDER {
        return exec_err!("healpix: order {order} is outside 0..=29");
    }
    Ok(position("healpix", ra_deg, dec_deg)?
        .map(|(lon, lat)| cdshealpix::nested::hash(order, lon, lat)))
}

/// Checks a HEALPix order given as any integer.
pub fn checked_order(order: i64) -> Result<u8> {
    if (0..=MAX_ORDER as i64).contains(&order) {
        Ok(order as u8)
    } else {
        exec_err!("healpix: order {order} is outside 0..=29")
    }
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Nested HEALPix pixel index of a sky position at the given order (0–29). \
         Equal to `_healpix_29 >> 2*(29-order)` for rows written by hats-import. RA is wrapped \
         into [0, 360); a NaN or null position gives null; a declination outside [-90, 90] is \
         an error. In a WHERE clause on a HATS table, `healpix(k, ra, dec) = p` prunes \
         partitions.",
        "healpix(order, ra, dec)",
    )
    .with_sql_example("SELECT healpix(5, 359.9, -30.0);")
    .with_argument("order", "HEALPix order (depth), 0 to 29")
    .with_argument("ra", "right ascension in degrees")
    .with_argument("dec", "declination in degrees")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HealpixFunc {
    signature: Signature,
}

impl Default for HealpixFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl HealpixFunc {
    pub fn new() -> Self {
        use DataType::*;
        Self {
            signature: Signature::exact(vec![Int64, Float64, Float64], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for HealpixFunc {
    fn name(&self) -> &str {
        "healpix"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let order = i64_scalar_or_array("healpix", &args.args, 0)?;
        let ra = f64_arg("healpix", &args.args, 1)?;
        let dec = f64_arg("healpix", &args.args, 2)?;
        let mut out = Int64Builder::with_capacity(n);
        for row in 0..n {
            match (order.get(row), ra.get(row), dec.get(row)) {
                (Some(k), Some(ra), Some(dec)) => {
                    let k = checked_order(k)?;
                    match healpix_nested(k, ra, dec)? {
                        Some(p) => out.append_value(p as i64),
                        None => out.append_null(),
                    }
                }
                _ => out.append_null(),
            }
        }
        finish(
            Arc::new(out.finish()),
            n == 1 && crate::args::all_scalar(&args.args),
        )
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_pixels() {
        // Order 0: base pixel 4 holds RA 0, Dec 0 (nested scheme); the south pole is in 8..11.
        assert_eq!(healpix_nested(0, 0.0, 0.0).unwrap(), Some(4));
        assert!((8..12).contains(&healpix_nested(0, 10.0, -89.9).unwrap().unwrap()));
        assert!(healpix_nested(0, 10.0, 89.9).unwrap().unwrap() < 4);
    }

    #[test]
    fn orders_nest() {
        let (ra, dec) = (359.99, -30.2);
        let p29 = healpix_nested(29, ra, dec).unwrap().unwrap();
        for k in 0..=29u8 {
            let pk = healpix_nested(k, ra, dec).unwrap().unwrap();
            assert_eq!(pk, p29 >> (2 * (29 - k as u32)), "order {k}");
        }
    }

    #[test]
    fn ra_is_wrapped() {
        assert_eq!(
            healpix_nested(10, -0.5, 12.0).unwrap(),
            healpix_nested(10, 359.5, 12.0).unwrap()
        );
        assert_eq!(
            healpix_nested(10, 720.25, 12.0).unwrap(),
            healpix_nested(10, 0.25, 12.0).unwrap()
        );
    }

    #[test]
    fn bad_input() {
        assert_eq!(healpix_nested(5, f64::NAN, 0.0).unwrap(), None);
        assert_eq!(healpix_nested(5, 0.0, f64::NAN).unwrap(), None);
        let e = healpix_nested(5, 0.0, -91.0).unwrap_err().to_string();
        assert!(e.contains("-91"), "{e}");
        assert!(healpix_nested(30, 0.0, 0.0).is_err());
        assert!(checked_order(-1).is_err());
        assert!(checked_order(30).is_err());
        // The poles themselves are valid positions.
        assert!(healpix_nested(29, 123.0, 90.0).unwrap().is_some());
        assert!(healpix_nested(29, 123.0, -90.0).unwrap().is_some());
    }
}
