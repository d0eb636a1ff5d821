//! HEALPix pixel arithmetic for partition trees.

use std::ops::Range;

use datafusion::common::{plan_err, Result};

/// Deepest HEALPix order; `_healpix_29` indices live here.
pub const ORDER_29: u8 = 29;

/// A pixel of a partition tree: (order, nested index). Only [`Pixel::new`] makes one, so
/// every `Pixel` is a real HEALPix pixel and the arithmetic below cannot overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pixel {
    order: u8,
    npix: u64,
}

impl Pixel {
    /// The pixel `npix` of order `order`, or an error when HEALPix has no such pixel
    /// (order above 29, or `npix` not below 12·4^order).
    pub fn new(order: u8, npix: u64) -> Result<Self> {
        let Some(count) = Self::count_at(order) else {
            return plan_err!(
                "Norder={order}/Npix={npix} is not a HEALPix pixel: the order must be at most {ORDER_29}"
            );
        };
        if npix >= count {
            return plan_err!(
                "Norder={order}/Npix={npix} is not a HEALPix pixel: order {order} has {count} pixels (Npix 0 to {})",
                count - 1
            );
        }
        Ok(Pixel { order, npix })
    }

    /// For callers that derive a pixel from a valid one (parent, child) or from a
    /// `_healpix_29` index shifted to a valid order: the caller guarantees the invariant.
    fn derived(order: u8, npix: u64) -> Self {
        debug_assert!(Self::count_at(order).is_some_and(|c| npix < c));
        Pixel { order, npix }
    }

    pub fn order(&self) -> u8 {
        self.order
    }

    /// The nested index within the order (HATS's `Npix`).
    pub fn npix(&self) -> u64 {
        self.npix
    }

    /// The `_healpix_29` values this pixel covers.
    pub fn range29(&self) -> Range<u64> {
        let shift = 2 * u32::from(ORDER_29 - self.order);
        (self.npix << shift)..((self.npix + 1) << shift)
    }

    /// HATS directory number: `(pixel div 10000) * 10000`.
    pub fn dir(&self) -> u64 {
        (self.npix / 10_000) * 10_000
    }

    /// Relative path of this pixel's file: `Norder=K/Dir=D/Npix=N<suffix>`.
    pub fn relative_path(&self, suffix: &str) -> String {
        format!(
            "Norder={}/Dir={}/Npix={}{}",
            self.order,
            self.dir(),
            self.npix,
            suffix
        )
    }

    /// Number of pixels HEALPix has at `order`; `None` above order 29.
    pub fn count_at(order: u8) -> Option<u64> {
        (order <= ORDER_29).then(|| 12u64 << (2 * u32::from(order)))
    }

    /// The four pixels of the next order inside this one; `None` at order 29.
    pub fn children(&self) -> Option<[Pixel; 4]> {
        if self.order >= ORDER_29 {
            return None;
        }
        let (o, p) = (self.order + 1, self.npix * 4);
        Some([0, 1, 2, 3].map(|i| Pixel::derived(o, p + i)))
    }

    /// True when `other` lies inside this pixel (or is it).
    pub fn contains(&self, other: &Pixel) -> bool {
        let (a, b) = (self.range29(), other.range29());
        a.start <= b.start && b.end <= a.end
    }

    /// Centre of the pixel as (RA, Dec) in degrees.
    pub fn center_deg(&self) -> (f64, f64) {
        let (lon, lat) = cdshealpix::nested::center(self.order, self.npix);
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
/// Orders out of 0..=29 (or reversed) and histogram keys that are not pixels of
/// `highest_order` are errors.
pub fn align_partitions(
    histogram: &std::collections::BTreeMap<u64, u64>,
    highest_order: u8,
    lowest_order: u8,
    threshold: u64,
    drop_empty_siblings: bool,
) -> Result<Vec<(Pixel, u64)>> {
    use std::collections::BTreeMap;
    if lowest_order > highest_order {
        return plan_err!(
            "HATS partitioning: lowest_order {lowest_order} is above highest_order {highest_order}"
        );
    }
    // Validates highest_order, and so every lower order.
    if let Some((&last, _)) = histogram.last_key_value() {
        Pixel::new(highest_order, last)?;
    } else if Pixel::count_at(highest_order).is_none() {
        return plan_err!("HATS partitioning: highest_order {highest_order} is above {ORDER_29}");
    }
    // Counts per order, from the histogram down to `lowest_order`.
    let mut levels: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); highest_order as usize + 1];
    levels[highest_order as usize] = histogram
        .iter()
        .filter(|(_, &c)| c > 0)
        .map(|(&p, &c)| (p, c))
        .collect();
    for k in (lowest_order..highest_order).rev() {
        let mut up: BTreeMap<u64, u64> = BTreeMap::new();
        for (&p, &c) in &levels[k as usize + 1] {
            let e = up.entry(p >> 2).or_insert(0);
            *e = e.saturating_add(c);
        }
        levels[k as usize] = up;
    }
    let count = |order: u8, p: u64| levels[order as usize].get(&p).copied().unwrap_or(0);

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
                    let shift = 2 * u32::from(highest_order - k);
                    for (_, o) in final_order.range_mut(p << shift..(p + 1) << shift) {
                        *o = k;
                    }
                }
            }
        }
        let mut leaves: BTreeMap<Pixel, u64> = BTreeMap::new();
        for (&p, &k) in &final_order {
            // A valid pixel of `highest_order` shifted up to order k is a pixel of order k.
            let px = Pixel::derived(k, p >> (2 * u32::from(highest_order - k)));
            leaves.entry(px).or_insert_with(|| count(k, px.npix));
        }
        let mut leaves: Vec<(Pixel, u64)> = leaves.into_iter().collect();
        leaves.sort_by_key(|(px, _)| px.range29().start);
        return Ok(leaves);
    }

    // Without dropping siblings: the largest pixel, from low order to high, whose rows fit.
    let mut leaves: Vec<(Pixel, u64)> = Vec::new();
    let mut stack: Vec<Pixel> = levels[lowest_order as usize]
        .keys()
        .map(|&p| Pixel::derived(lowest_order, p))
        .collect();
    while let Some(px) = stack.pop() {
        let n = count(px.order, px.npix);
        if n <= threshold || px.order == highest_order {
            leaves.push((px, n));
        } else {
            let below = &levels[px.order as usize + 1];
            for c in px.npix * 4..px.npix * 4 + 4 {
                if below.contains_key(&c) {
                    stack.push(Pixel::derived(px.order + 1, c));
                }
            }
        }
    }
    leaves.sort_by_key(|(px, _)| px.range29().start);
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn px(order: u8, npix: u64) -> Pixel {
        Pixel::new(order, npix).unwrap()
    }

    #[test]
    fn paths_and_ranges() {
        let p = px(6, 16537);
        assert_eq!(
            p.relative_path(".parquet"),
            "Norder=6/Dir=10000/Npix=16537.parquet"
        );
        assert_eq!(p.range29().start, 16537u64 << 46);
        assert!(px(5, 4134).overlaps(&px(6, 16537)));
        assert!(!px(5, 4135).overlaps(&px(6, 16537)));
        assert_eq!(Pixel::count_at(0), Some(12));
        let kids = px(5, 4134).children().unwrap();
        assert_eq!(kids[1], px(6, 16537));
        assert!(kids
            .iter()
            .all(|k| px(5, 4134).contains(k) && !k.contains(&px(5, 4134))));
        assert!(px(29, 7).children().is_none());
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
        let leaves = align_partitions(&h, 1, 0, 5, false).unwrap();
        assert_eq!(leaves, vec![(px(0, 0), 4), (px(1, 4), 10)]);
        // Without dropping empty siblings a lone pixel grows into its parent.
        let leaves = align_partitions(&h, 1, 0, 100, false).unwrap();
        assert_eq!(leaves, vec![(px(0, 0), 4), (px(0, 1), 10)]);
        // Over the threshold they stay.
        let leaves = align_partitions(&h, 1, 0, 3, false).unwrap();
        assert_eq!(leaves.len(), 5);
        // A lone pixel stays at its order when empty siblings are dropped.
        let leaves = align_partitions(&h, 1, 0, 100, true).unwrap();
        assert_eq!(leaves[0], (px(0, 0), 4));
        assert_eq!(leaves[1], (px(1, 4), 10));
        assert_eq!(leaves.iter().map(|l| l.1).sum::<u64>(), 14);
    }

    #[test]
    fn only_real_pixels_can_be_made() {
        let e = Pixel::new(30, 0).unwrap_err().to_string();
        assert!(
            e.contains("Norder=30/Npix=0") && e.contains("at most 29"),
            "{e}"
        );
        let e = Pixel::new(255, 1).unwrap_err().to_string();
        assert!(e.contains("Norder=255"), "{e}");
        let e = Pixel::new(0, 12).unwrap_err().to_string();
        assert!(e.contains("Npix 0 to 11"), "{e}");
        assert!(Pixel::new(29, (12u64 << 58) - 1).is_ok());
        assert!(Pixel::new(29, 12u64 << 58).is_err());
        assert_eq!(Pixel::count_at(30), None);
        // The last pixel of order 29 ends exactly at the top of the index space.
        assert_eq!(px(29, (12u64 << 58) - 1).range29().end, 12u64 << 58);
    }

    #[test]
    fn partitioning_rejects_impossible_inputs() {
        let h: BTreeMap<u64, u64> = [(0, 1)].into();
        let e = align_partitions(&h, 30, 0, 5, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Norder=30"), "{e}");
        let e = align_partitions(&BTreeMap::new(), 31, 0, 5, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("highest_order 31"), "{e}");
        let e = align_partitions(&h, 2, 3, 5, true).unwrap_err().to_string();
        assert!(e.contains("lowest_order 3 is above highest_order 2"), "{e}");
        let bad: BTreeMap<u64, u64> = [(48, 1)].into();
        let e = align_partitions(&bad, 1, 0, 5, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Norder=1/Npix=48"), "{e}");
        // Counts that would overflow when summed up the tree saturate instead.
        let huge: BTreeMap<u64, u64> = [(0, u64::MAX), (1, u64::MAX)].into();
        let leaves = align_partitions(&huge, 1, 0, 5, false).unwrap();
        assert_eq!(leaves.len(), 2);
    }
}
