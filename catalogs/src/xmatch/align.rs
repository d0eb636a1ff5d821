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
    let (lon, lat) = cdshealpix::nested::center(px.order(), px.npix());
    let reach = cdshealpix::largest_center_to_vertex_distance(px.order(), lon, lat)
        + (radius_arcsec / 3600.0).to_radians()
        + 1e-9;
    if reach >= std::f64::consts::PI {
        let whole_sky = 0..(12u64 << 58);
        return std::iter::once(whole_sky).collect();
    }
    // Fine enough that the cover hugs the cone, coarse enough to stay small.
    let depth = (px.order() + 4).min(ORDER_29);
    let bmoc = cdshealpix::nested::cone_coverage_approx(depth, lon, lat, reach);
    let shift = 2 * (ORDER_29 - depth) as u32;
    bmoc.to_ranges()
        .iter()
        .map(|r| (r.start << shift)..(r.end << shift))
        .collect()
}

/// Tasks for `left` × `right`. `use_margin` reads the right margin catalog instead of the
/// neighbouring right leaves.
///
/// Every left row is in exactly one task. Where a right leaf overlaps the left leaf, the task
/// is the finer of the two pixels; the parts of a left leaf that no right leaf covers (right
/// leaves finer than it, or none at all) become tasks of their own against the right leaves
/// within reach, since a right row just across the boundary can be within the radius.
pub fn align(
    left: &HatsCatalog,
    right: &HatsCatalog,
    margin: Option<&HatsCatalog>,
    radius_arcsec: f64,
) -> Vec<Task> {
    let right_ranges: Vec<Range<u64>> =
        right.partitions.iter().map(|p| p.pixel.range29()).collect();
    let near = |search: &[Range<u64>]| -> Vec<usize> {
        right_ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| intersects_any(r, search))
            .map(|(i, _)| i)
            .collect()
    };
    let mut tasks = Vec::new();
    for (li, lp) in left.partitions.iter().enumerate() {
        let lr = lp.pixel.range29();
        let mut finer: Vec<Pixel> = Vec::new();
        let mut whole = false;
        for (ri, rp) in right.partitions.iter().enumerate() {
            let rr = &right_ranges[ri];
            if !(lr.start < rr.end && rr.start < lr.end) {
                continue;
            }
            let pixel = if lp.pixel.order() >= rp.pixel.order() {
                whole = true;
                lp.pixel
            } else {
                finer.push(rp.pixel);
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
                None => (near(&search), Vec::new()),
            };
            tasks.push(Task {
                pixel,
                left_partition: li,
                right_partitions,
                margin_partitions,
                search_ranges: search,
            });
        }
        if whole {
            continue;
        }
        // No right row lies in an uncovered part, so the margin (rows around right leaves)
        // adds nothing there: the neighbouring right leaves' own rows are the candidates.
        let mut gaps = Vec::new();
        uncovered(lp.pixel, &finer, &mut gaps);
        for pixel in gaps {
            let search = grown_pixel_ranges(pixel, radius_arcsec);
            let right_partitions = near(&search);
            if right_partitions.is_empty() {
                continue;
            }
            tasks.push(Task {
                pixel,
                left_partition: li,
                right_partitions,
                margin_partitions: Vec::new(),
                search_ranges: search,
            });
        }
    }
    tasks
}

/// The largest pixels inside `p` that none of `covered` (pixels inside `p`, not
/// overlapping each other) overlaps.
fn uncovered(p: Pixel, covered: &[Pixel], out: &mut Vec<Pixel>) {
    let inside: Vec<Pixel> = covered.iter().copied().filter(|c| c.overlaps(&p)).collect();
    if inside.is_empty() {
        out.push(p);
        return;
    }
    if inside.iter().any(|c| c.contains(&p)) {
        return;
    }
    // Some covered pixel is finer than p, so p is above order 29 and has children.
    for child in p.children().into_iter().flatten() {
        uncovered(child, &inside, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn px(order: u8, npix: u64) -> Pixel {
        Pixel::new(order, npix).unwrap()
    }

    #[test]
    fn uncovered_parts_tile_the_rest_of_the_pixel() {
        let mut out = Vec::new();
        uncovered(px(0, 4), &[px(1, 17), px(2, 72)], &mut out);
        // 1/16, 1/19 whole; of 1/18, the three children beside 2/72.
        assert_eq!(
            out,
            vec![px(1, 16), px(2, 73), px(2, 74), px(2, 75), px(1, 19)]
        );
        let mut out = Vec::new();
        uncovered(px(3, 5), &[], &mut out);
        assert_eq!(out, vec![px(3, 5)]);
        let mut out = Vec::new();
        uncovered(px(3, 5), &[px(3, 5)], &mut out);
        assert!(out.is_empty());
    }
}
