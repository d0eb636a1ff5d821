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
/// `histogram` holds row counts at `highest_order` (index = pixel). Starting there, four
/// sibling pixels merge into their parent while their summed count stays at or under
/// `threshold`, up to `lowest_order`. With `drop_empty_siblings`, a lone non-empty pixel
/// whose three siblings are empty stays at its own order instead of growing into a parent
/// that is mostly empty sky. Returns the non-empty leaves in nested (`_healpix_29`) order.
pub fn align_partitions(
    histogram: &std::collections::BTreeMap<u64, u64>,
    highest_order: u8,
    lowest_order: u8,
    threshold: u64,
    drop_empty_siblings: bool,
) -> Vec<(Pixel, u64)> {
    // Work on sparse maps, order by order: `leaves` are finished, `open` may still merge.
    let mut leaves: Vec<(Pixel, u64)> = Vec::new();
    let mut open: std::collections::BTreeMap<u64, u64> = histogram
        .iter()
        .filter(|(_, &c)| c > 0)
        .map(|(&p, &c)| (p, c))
        .collect();
    // Pixels at the current order whose subtree already holds finished leaves: their
    // parents can never merge.
    let mut blocked: std::collections::BTreeSet<u64> = Default::default();
    let mut order = highest_order;
    while order > lowest_order {
        // parent -> (summed count, non-empty children)
        let mut parents: std::collections::BTreeMap<u64, (u64, u8)> = Default::default();
        for (&p, &c) in &open {
            let e = parents.entry(p >> 2).or_insert((0, 0));
            e.0 += c;
            e.1 += 1;
        }
        let blocked_parents: std::collections::BTreeSet<u64> =
            blocked.iter().map(|p| p >> 2).collect();
        let mut next = std::collections::BTreeMap::new();
        let mut next_blocked = blocked_parents.clone();
        for (parent, (sum, nonempty)) in parents {
            let lone = drop_empty_siblings && nonempty == 1;
            if !blocked_parents.contains(&parent) && sum <= threshold && !lone {
                next.insert(parent, sum);
            } else {
                for child in parent * 4..parent * 4 + 4 {
                    if let Some(&c) = open.get(&child) {
                        leaves.push((Pixel::new(order, child), c));
                    }
                }
                next_blocked.insert(parent);
            }
        }
        open = next;
        blocked = next_blocked;
        order -= 1;
    }
    leaves.extend(open.into_iter().map(|(p, c)| (Pixel::new(order, p), c)));
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
