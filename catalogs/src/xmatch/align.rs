//! Aligning two partition trees into independent cross-match tasks.

use std::ops::Range;

use crate::hats::catalog::HatsCatalog;
use crate::hats::pixel::{intersects_any, Pixel, ORDER_29};

/// One unit of work: the left rows inside `pixel` against the right rows near it.
#[derive(Debug, Clone)]
pub struct Task {
    /// The finer of the left and right leaf pixels.
    pub pixel: Pixel,
    /// The left leaf that holds `pixel`.
    pub left_partition: usize,
    /// Right leaves whose rows may be within the radius of `pixel`.
    pub right_partitions: Vec<usize>,
    /// Right margin leaves to read (when the margin catalog is used).
    pub margin_partitions: Vec<usize>,
    /// `_healpix_29` ranges covering every point within the radius of `pixel` (a superset).
    pub search_ranges: Vec<Range<u64>>,
}

/// Ranges (order 29) covering the pixel grown by `radius_arcsec`, from a cone around the
/// pixel centre through its farthest vertex.
pub fn grown_pixel_ranges(px: Pixel, radius_arcsec: f64) -> Vec<Range<u64>> {
    let (lon, lat) = cdshealpix::nested::center(px.order, px.pixel);
    let reach = cdshealpix::largest_center_to_vertex_distance(px.order, lon, lat)
        + (radius_arcsec / 3600.0).to_radians()
        + 1e-9;
    if reach >= std::f64::consts::PI {
        let whole_sky = 0..(12u64 << 58);
        return std::iter::once(whole_sky).collect();
    }
    // Fine enough that the cover hugs the cone, coarse enough to stay small.
    let depth = (px.order + 4).min(ORDER_29);
    let bmoc = cdshealpix::nested::cone_coverage_approx(depth, lon, lat, reach);
    let shift = 2 * (ORDER_29 - depth) as u32;
    bmoc.to_ranges()
        .iter()
        .map(|r| (r.start << shift)..(r.end << shift))
        .collect()
}

/// Tasks for `left` × `right`. `use_margin` reads the right margin catalog instead of the
/// neighbouring right leaves.
pub fn align(
    left: &HatsCatalog,
    right: &HatsCatalog,
    margin: Option<&HatsCatalog>,
    radius_arcsec: f64,
) -> Vec<Task> {
    let right_ranges: Vec<Range<u64>> =
        right.partitions.iter().map(|p| p.pixel.range29()).collect();
    let mut tasks = Vec::new();
    for (li, lp) in left.partitions.iter().enumerate() {
        let lr = lp.pixel.range29();
        for (ri, rp) in right.partitions.iter().enumerate() {
            let rr = &right_ranges[ri];
            if !(lr.start < rr.end && rr.start < lr.end) {
                continue;
            }
            let pixel = if lp.pixel.order >= rp.pixel.order {
                lp.pixel
            } else {
                rp.pixel
            };
            let search = grown_pixel_ranges(pixel, radius_arcsec);
            let (right_partitions, margin_partitions) = match margin {
                Some(m) => {
                    let mp = m
                        .partitions
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| p.pixel.overlaps(&rp.pixel))
                        .map(|(i, _)| i)
                        .collect();
                    (vec![ri], mp)
                }
                None => {
                    let near = right_ranges
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| intersects_any(r, &search))
                        .map(|(i, _)| i)
                        .collect();
                    (near, Vec::new())
                }
            };
            tasks.push(Task {
                pixel,
                left_partition: li,
                right_partitions,
                margin_partitions,
                search_ranges: search,
            });
        }
    }
    tasks
}
