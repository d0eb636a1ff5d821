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
    Ok(position("healpix", ra_deg, dec_deg)?.map(|(lon, lat)| nested_hash(order, lon, lat)))
}

/// Nested HEALPix index at `depth` (0–29) of longitude `lon` in [0, 2π) and latitude `lat` in
/// [−π/2, π/2], in radians (Górski et al. 2005, as HEALPix C++'s `loc2pix`).
///
/// Written here rather than taken from `cdshealpix` because that crate calls std's `sin` and
/// `cos`, whose glibc builds differ in the last bit between CPUs: a point near a pixel edge
/// could then get two indices on two executors. This uses `crate::math` only.
#[inline]
pub fn nested_hash(depth: u8, lon: f64, lat: f64) -> u64 {
    let nside = 1u64 << depth;
    let ns = nside as f64;
    let z = crate::math::sin(lat);
    let za = z.abs();
    // Longitude in units of quarter turns, [0, 4); rounding may give exactly 4 for a
    // longitude a hair below 2π, which is longitude 0.
    let tt = lon * std::f64::consts::FRAC_2_PI;
    let tt = if (0.0..4.0).contains(&tt) { tt } else { 0.0 };
    if za <= 2.0 / 3.0 {
        // Equatorial belt: indices of the ascending and descending edge lines.
        let t1 = ns * (0.5 + tt);
        let t2 = ns * (z * 0.75);
        let jp = (t1 - t2) as u64;
        let jm = (t1 + t2) as u64;
        let (fp, fm) = (jp >> depth, jm >> depth);
        let face = if fp == fm {
            fp | 4
        } else if fp < fm {
            fp
        } else {
            fm + 8
        };
        let ix = jm & (nside - 1);
        let iy = nside - (jp & (nside - 1)) - 1;
        xyf_to_nested(ix, iy, face, depth)
    } else {
        // Polar caps. Near a pole 1 − |z| loses its digits; cos(lat) keeps them.
        let ntt = (tt as u64).min(3);
        let tp = tt - ntt as f64;
        let tmp = if za < 0.99 {
            ns * (3.0 * (1.0 - za)).sqrt()
        } else {
            ns * crate::math::cos(lat) / ((1.0 + za) / 3.0).sqrt()
        };
        let jp = ((tp * tmp) as u64).min(nside - 1);
        let jm = (((1.0 - tp) * tmp) as u64).min(nside - 1);
        if z > 0.0 {
            xyf_to_nested(nside - jm - 1, nside - jp - 1, ntt, depth)
        } else {
            xyf_to_nested(jp, jm, ntt + 8, depth)
        }
    }
}

/// The nested index of cell (x, y) of base face `face`: the face, then x and y interleaved
/// (x in the even bits).
#[inline]
fn xyf_to_nested(x: u64, y: u64, face: u64, depth: u8) -> u64 {
    (face << (2 * u32::from(depth))) | spread_bits(x) | (spread_bits(y) << 1)
}

/// Moves bit i of `v` (< 2³²) to bit 2i.
#[inline]
fn spread_bits(v: u64) -> u64 {
    let mut v = v & 0xFFFF_FFFF;
    v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
    v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
    v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
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

    /// The same cells as cdshealpix (an independent formulation) everywhere but within
    /// rounding of a cell edge, at every depth, over the whole sphere and at the seams: the
    /// poles, the ±2/3 transition of z, and longitude 0 / 2π.
    #[test]
    fn equals_cdshealpix_but_at_edges() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut uniform = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let two_pi = 2.0 * std::f64::consts::PI;
        let z_transition = (2.0f64 / 3.0).asin();
        let (mut n, mut differ) = (0usize, 0usize);
        for depth in [0u8, 1, 3, 7, 12, 20, 29] {
            for i in 0..40_000 {
                let lon = match i % 5 {
                    0 => 0.0,
                    1 => two_pi * (1.0 - 1e-17),
                    _ => uniform() * two_pi,
                };
                let lat = match i % 7 {
                    0 => std::f64::consts::FRAC_PI_2 * if i % 2 == 0 { 1.0 } else { -1.0 },
                    1 => z_transition * (1.0 + (uniform() - 0.5) * 1e-9),
                    2 => -z_transition,
                    _ => (2.0 * uniform() - 1.0).asin(),
                };
                let lon = if lon >= two_pi { 0.0 } else { lon };
                let ours = nested_hash(depth, lon, lat);
                let theirs = cdshealpix::nested::hash(depth, lon, lat);
                // Seam positions lie on edges by construction; only random ones are counted.
                let random = i % 5 >= 2 && i % 7 >= 3;
                n += usize::from(random);
                if ours != theirs {
                    differ += usize::from(random);
                    let layer = cdshealpix::nested::get(depth);
                    assert!(
                        layer.neighbours(theirs, false).values_vec().contains(&ours),
                        "depth {depth}, lon {lon}, lat {lat}: {ours} is not next to {theirs}"
                    );
                }
            }
        }
        println!("{differ} of {n} random positions differ from cdshealpix, each by one cell");
        assert!(differ * 100_000 <= n, "{differ} of {n} positions differ");
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
