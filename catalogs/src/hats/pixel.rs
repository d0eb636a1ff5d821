//! HEALPix pixel arithmetic for partition trees.

use std::ops::Range;

/// Deepest HEALPix order; `_healpix_29` indices live here.
pub const ORDER_29: u8 = 29;

/// A pixel of a partition tree: (order, nested index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pixel {
    pub order: u8,
    pub pixel: u64,
}

impl Pixel {
    pub fn new(order: u8, pixel: u64) -> Self {
        Pixel { order, pixel }
    }

    /// The `_healpix_29` values this pixel covers.
    pub fn range29(&self) -> Range<u64> {
        let shift = 2 * (ORDER_29 - self.order) as u32;
        (self.pixel << shift)..((self.pixel + 1) << shift)
    }

    /// HATS directory number: `(pixel div 10000) * 10000`.
    pub fn dir(&self) -> u64 {
        (self.pixel / 10_000) * 10_000
    }

    /// Relative path of this pixel's file: `Norder=K/Dir=D/Npix=N<suffix>`.
    pub fn relative_path(&self, suffix: &str) -> String {
        format!(
            "Norder={}/Dir={}/Npix={}{}",
            self.order,
            self.dir(),
            self.pixel,
            suffix
        )
    }

    /// Number of pixels of order `order` that HEALPix has.
    pub fn count_at(order: u8) -> u64 {
        12u64 << (2 * order as u32)
    }

    /// Centre of the pixel as (RA, Dec) in degrees.
    pub fn center_deg(&self) -> (f64, f64) {
        let (lon, lat) = cdshealpix::nested::center(self.order, self.pixel);
        (lon.to_degrees(), lat.to_degrees())
    }

    /// True when the two pixels overlap (one contains the other).
    pub fn overlaps(&self, other: &Pixel) -> bool {
        let a = self.range29();
        let b = other.range29();
        a.start < b.end && b.start < a.end
    }
}

/// True when `range` intersects any of `sorted` (sorted, disjoint ranges).
pub fn intersects_any(range: &Range<u64>, sorted: &[Range<u64>]) -> bool {
    // First range whose end is past our start.
    let idx = sorted.partition_point(|r| r.end <= range.start);
    sorted.get(idx).is_some_and(|r| r.start < range.end)
}

/// Adaptive partitioning as hats-import does it.
///
/// `histogram` holds row counts at `highest_order` (key = pixel). Without
/// `drop_empty_siblings` a leaf is the largest pixel (order ≥ `lowest_order`) whose rows fit
/// under `threshold`. With it (hats-import's default), a pixel only absorbs its children
/// when more than one of them holds rows, so leaves do not spread over empty sky. Either
/// way the work starts from the coarsest order at which every pixel fits the threshold.
/// Returns the non-empty leaves in nested (`_healpix_29`) order with their row counts.
pub fn align_partitions(
    histogram: &std::collections::BTreeMap<u64, u64>,
    highest_order: u8,
    lowest_order: u8,
    threshold: u64,
    drop_empty_siblings: bool,
) -> Vec<(Pixel, u64)> {
    use std::collections::BTreeMap;
    // Counts per order, from the histogram down to `lowest_order`.
    let mut levels: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); highest_order as usize + 1];
    levels[highest_order as usize] = histogram
        .iter()
        .filter(|(_, &c)| c > 0)
        .map(|(&p, &c)| (p, c))
        .collect();
    for k in (lowest_order..highest_order).rev() {
        let mut up = BTreeMap::new();
        for (&p, &c) in &levels[k as usize + 1] {
            *up.entry(p >> 2).or_insert(0) += c;
        }
        levels[k as usize] = up;
    }

    // As hats-import does (`use_lower_order`): start from the coarsest order, at or below
    // `highest_order`, at which every pixel still fits the threshold.
    let mut highest_order = highest_order;
    for k in (lowest_order + 1..=highest_order).rev() {
        if levels[k as usize].values().any(|&c| c > threshold) {
            break;
        }
        highest_order = k;
    }

    if drop_empty_siblings {
        // From high order to low, a pixel takes over everything beneath it when its rows fit
        // the threshold and more than one of its four children holds rows (a lone child
        // keeps its own, smaller pixel). A later, lower-order collapse overrides.
        let mut final_order: BTreeMap<u64, u8> = levels[highest_order as usize]
            .keys()
            .map(|&p| (p, highest_order))
            .collect();
        for k in (lowest_order..highest_order).rev() {
            let below = &levels[k as usize + 1];
            for (&p, &sum) in &levels[k as usize] {
                let quad_max = (p * 4..p * 4 + 4)
                    .map(|c| below.get(&c).copied().unwrap_or(0))
                    .max()
                    .unwrap_or(0);
                if sum != quad_max && sum <= threshold {
                    let shift = 2 * (highest_order - k) as u32;
                    for (_, o) in final_order.range_mut(p << shift..(p + 1) << shift) {
                        *o = k;
                    }
                }
            }
        }
        let mut leaves: BTreeMap<Pixel, u64> = BTreeMap::new();
        for (&p, &k) in &final_order {
            let px = Pixel::new(k, p >> (2 * (highest_order - k) as u32));
            leaves
                .entry(px)
                .or_insert_with(|| levels[k as usize][&px.pixel]);
        }
        let mut leaves: Vec<(Pixel, u64)> = leaves.into_iter().collect();
        leaves.sort_by_key(|(px, _)| px.range29().start);
        return leaves;
    }

    // Without dropping siblings: the largest pixel, from low order to high, whose rows fit.
    let mut leaves: Vec<(Pixel, u64)> = Vec::new();
    let mut stack: Vec<Pixel> = levels[lowest_order as usize]
        .keys()
        .map(|&p| Pixel::new(lowest_order, p))
        .collect();
    while let Some(px) = stack.pop() {
        let count = levels[px.order as usize][&px.pixel];
        if count <= threshold || px.order == highest_order {
            leaves.push((px, count));
        } else {
            let below = &levels[px.order as usize + 1];
            for c in px.pixel * 4..px.pixel * 4 + 4 {
                if below.contains_key(&c) {
                    stack.push(Pixel::new(px.order + 1, c));
                }
            }
        }
    }
    leaves.sort_by_key(|(px, _)| px.range29().start);
    leaves
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn paths_and_ranges() {
        let p = Pixel::new(6, 16537);
        assert_eq!(
            p.relative_path(".parquet"),
            "Norder=6/Dir=10000/Npix=16537.parquet"
        );
        assert_eq!(p.range29().start, 16537u64 << 46);
        assert!(Pixel::new(5, 4134).overlaps(&Pixel::new(6, 16537)));
        assert!(!Pixel::new(5, 4135).overlaps(&Pixel::new(6, 16537)));
        assert_eq!(Pixel::count_at(0), 12);
    }

    #[test]
    fn intersect_sorted_ranges() {
        let r = vec![0..10, 20..30];
        assert!(intersects_any(&(5..6), &r));
        assert!(!intersects_any(&(10..20), &r));
        assert!(intersects_any(&(29..40), &r));
        assert!(!intersects_any(&(30..40), &r));
    }

    #[test]
    fn siblings_merge_under_threshold() {
        // Order 1: children of base pixel 0 hold 1 row each → merge into (0, 0).
        let h: BTreeMap<u64, u64> = [(0, 1), (1, 1), (2, 1), (3, 1), (4, 10)].into();
        let leaves = align_partitions(&h, 1, 0, 5, false);
        assert_eq!(leaves, vec![(Pixel::new(0, 0), 4), (Pixel::new(1, 4), 10)]);
        // Without dropping empty siblings a lone pixel grows into its parent.
        let leaves = align_partitions(&h, 1, 0, 100, false);
        assert_eq!(leaves, vec![(Pixel::new(0, 0), 4), (Pixel::new(0, 1), 10)]);
        // Over the threshold they stay.
        let leaves = align_partitions(&h, 1, 0, 3, false);
        assert_eq!(leaves.len(), 5);
        // A lone pixel stays at its order when empty siblings are dropped.
        let leaves = align_partitions(&h, 1, 0, 100, true);
        assert_eq!(leaves[0], (Pixel::new(0, 0), 4));
        assert_eq!(leaves[1], (Pixel::new(1, 4), 10));
        assert_eq!(leaves.iter().map(|l| l.1).sum::<u64>(), 14);
    }
}
