//! Partition pruning: which HEALPix leaves can hold rows that pass a query's filters.
//!
//! Recognised conjuncts (on the catalog's own RA/Dec columns, constant other arguments):
//! `cone(ra, dec, ra0, dec0, radius_deg)` and `healpix(order, ra, dec) = pixel`.
//! Anything else prunes nothing; the filters are still applied to every row afterwards.

use std::fmt;
use std::ops::Range;

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use super::pixel::{intersects_any, Pixel, ORDER_29};

/// A region of sky a filter confines rows to.
#[derive(Debug, Clone, PartialEq)]
pub enum SkyRegion {
    Cone { ra: f64, dec: f64, radius_deg: f64 },
    Pixel(Pixel),
}

impl fmt::Display for SkyRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkyRegion::Cone {
                ra,
                dec,
                radius_deg,
            } => {
                write!(f, "cone(ra={ra}, dec={dec}, r={radius_deg}deg)")
            }
            SkyRegion::Pixel(p) => write!(f, "healpix(order={}, pixel={})", p.order(), p.npix()),
        }
    }
}

impl SkyRegion {
    /// Sorted, disjoint `_healpix_29` ranges that cover the region (a superset of it),
    /// computed at `depth` for cones. `None` means "the whole sky".
    pub fn ranges29(&self, depth: u8) -> Option<Vec<Range<u64>>> {
        match self {
            SkyRegion::Pixel(p) => Some(vec![p.range29()]),
            SkyRegion::Cone {
                ra,
                dec,
                radius_deg,
            } => {
                if *radius_deg >= 180.0 {
                    return None;
                }
                // cdshealpix and the shift below only know orders up to 29.
                let depth = depth.min(ORDER_29);
                let lon = ra.rem_euclid(360.0).to_radians();
                let lat = dec.to_radians();
                let bmoc = cdshealpix::nested::cone_coverage_approx(
                    depth,
                    lon,
                    lat,
                    radius_deg.to_radians(),
                );
                let shift = 2 * (ORDER_29 - depth) as u32;
                Some(
                    bmoc.to_ranges()
                        .iter()
                        .map(|r| (r.start << shift)..(r.end << shift))
                        .collect(),
                )
            }
        }
    }
}

/// The regions the conjuncts of `filters` confine rows to.
pub fn regions_from_filters(filters: &[Expr], ra_col: &str, dec_col: &str) -> Vec<SkyRegion> {
    let mut out = Vec::new();
    for f in filters {
        collect(f, ra_col, dec_col, &mut out);
    }
    out
}

fn collect(e: &Expr, ra_col: &str, dec_col: &str, out: &mut Vec<SkyRegion>) {
    match e {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::And,
            right,
        }) => {
            collect(left, ra_col, dec_col, out);
            collect(right, ra_col, dec_col, out);
        }
        Expr::ScalarFunction(f)
            if f.func.name() == "cone"
                && f.args.len() == 5
                && is_column(&f.args[0], ra_col)
                && is_column(&f.args[1], dec_col) =>
        {
            if let (Some(ra), Some(dec), Some(r)) = (
                literal_f64(&f.args[2]),
                literal_f64(&f.args[3]),
                literal_f64(&f.args[4]),
            ) {
                if ra.is_finite() && (-90.0..=90.0).contains(&dec) && r >= 0.0 {
                    out.push(SkyRegion::Cone {
                        ra,
                        dec,
                        radius_deg: r,
                    });
                }
            }
        }
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            let pair = healpix_call(left, ra_col, dec_col)
                .zip(literal_i64(right))
                .or_else(|| healpix_call(right, ra_col, dec_col).zip(literal_i64(left)));
            if let Some((order, pixel)) = pair {
                // A pixel that does not exist (healpix() never returns it) prunes nothing
                // here; the filter still runs on every row.
                if let (Ok(order), Ok(pixel)) = (u8::try_from(order), u64::try_from(pixel)) {
                    if let Ok(px) = Pixel::new(order, pixel) {
                        out.push(SkyRegion::Pixel(px));
                    }
                }
            }
        }
        _ => {}
    }
}

/// `healpix(k, ra, dec)` on the catalog's columns → k.
fn healpix_call(e: &Expr, ra_col: &str, dec_col: &str) -> Option<i64> {
    match e {
        Expr::ScalarFunction(f) if f.func.name() == "healpix" && f.args.len() == 3 => {
            if is_column(&f.args[1], ra_col) && is_column(&f.args[2], dec_col) {
                literal_i64(&f.args[0])
            } else {
                None
            }
        }
        Expr::Cast(c) => healpix_call(&c.expr, ra_col, dec_col),
        _ => None,
    }
}

fn is_column(e: &Expr, name: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == name,
        Expr::Cast(c) => is_column(&c.expr, name),
        Expr::TryCast(c) => is_column(&c.expr, name),
        _ => false,
    }
}

fn literal(e: &Expr) -> Option<ScalarValue> {
    match e {
        Expr::Literal(v, _) => Some(v.clone()),
        Expr::Cast(c) => literal(&c.expr)?.cast_to(c.field.data_type()).ok(),
        Expr::TryCast(c) => literal(&c.expr)?.cast_to(c.field.data_type()).ok(),
        Expr::Negative(inner) => literal(inner)?.arithmetic_negate().ok(),
        _ => None,
    }
}

fn literal_f64(e: &Expr) -> Option<f64> {
    match literal(e)?
        .cast_to(&datafusion::arrow::datatypes::DataType::Float64)
        .ok()?
    {
        ScalarValue::Float64(v) => v,
        _ => None,
    }
}

fn literal_i64(e: &Expr) -> Option<i64> {
    match literal(e)?
        .cast_to(&datafusion::arrow::datatypes::DataType::Int64)
        .ok()?
    {
        ScalarValue::Int64(v) => v,
        _ => None,
    }
}

/// Indices of the partitions that overlap every region.
pub fn select_partitions(pixels: &[Pixel], regions: &[SkyRegion], depth: u8) -> Vec<usize> {
    let covers: Vec<Vec<Range<u64>>> = regions.iter().filter_map(|r| r.ranges29(depth)).collect();
    pixels
        .iter()
        .enumerate()
        .filter(|(_, px)| {
            let r = px.range29();
            covers.iter().all(|c| intersects_any(&r, c))
        })
        .map(|(i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(order: u8, npix: u64) -> Pixel {
        Pixel::new(order, npix).unwrap()
    }

    #[test]
    fn cone_covers_its_centre_pixel_and_wraps() {
        let pixels: Vec<Pixel> = (0..(12u64 << 6)).map(|p| px(3, p)).collect();
        let region = SkyRegion::Cone {
            ra: 0.0,
            dec: -30.0,
            radius_deg: 1.0,
        };
        let sel = select_partitions(&pixels, &[region], 3);
        let centre = cdshealpix::nested::hash(3, 0.0, (-30f64).to_radians());
        let west = cdshealpix::nested::hash(3, 359.2f64.to_radians(), (-30f64).to_radians());
        let east = cdshealpix::nested::hash(3, 0.8f64.to_radians(), (-30f64).to_radians());
        for p in [centre, west, east] {
            assert!(
                sel.contains(&(p as usize)),
                "pixel {p} missing from {sel:?}"
            );
        }
        assert!(sel.len() < 10);
    }

    #[test]
    fn pole_cone_keeps_all_pixels_around_the_pole() {
        let pixels: Vec<Pixel> = (0..12u64).map(|p| px(0, p)).collect();
        let region = SkyRegion::Cone {
            ra: 0.0,
            dec: 90.0,
            radius_deg: 2.0,
        };
        let sel = select_partitions(&pixels, &[region], 0);
        assert_eq!(sel, vec![0, 1, 2, 3]);
    }

    #[test]
    fn pixel_region_selects_parents_and_children() {
        let pixels = vec![px(1, 16), px(2, 68), px(2, 69)];
        let sel = select_partitions(&pixels, &[SkyRegion::Pixel(px(1, 17))], 2);
        assert_eq!(sel, vec![1, 2]);
        let sel = select_partitions(&pixels, &[SkyRegion::Pixel(px(0, 4))], 2);
        assert_eq!(sel, vec![0, 1, 2]);
        let sel = select_partitions(&pixels, &[SkyRegion::Pixel(px(3, 64 * 4))], 3);
        assert_eq!(sel, vec![0]);
    }
}
