//! A static 3-d tree over unit vectors: k nearest neighbours within a chord radius.
//!
//! Points on the sphere become unit vectors; the great-circle order of distances equals the
//! order of chord (Euclidean) distances, so an exact Euclidean search answers the sky
//! question with no special cases at RA = 0/360 or the poles.

/// Unit vector of (ra, dec) in degrees.
#[inline]
pub fn unit_vector(ra_deg: f64, dec_deg: f64) -> [f64; 3] {
    let (sr, cr) = crate::math::sin_cos(ra_deg.to_radians());
    let (sd, cd) = crate::math::sin_cos(dec_deg.to_radians());
    [cd * cr, cd * sr, sd]
}

/// Chord length of an angular separation in arcseconds.
#[inline]
pub fn chord_of_arcsec(arcsec: f64) -> f64 {
    2.0 * crate::math::sin((arcsec / 3600.0).to_radians() * 0.5)
}

/// A static k-d tree over points of `D` coordinates (3 for unit vectors on the sky, more for
/// colour spaces).
#[derive(Debug, Clone)]
pub struct KdTree<const D: usize = 3> {
    /// Coordinates in tree order, one array per axis: a leaf's distances are then a few
    /// straight loops the compiler turns into vector code.
    coords: [Vec<f64>; D],
    /// Original index of each stored point (points are permuted into tree order).
    index: Vec<u32>,
    /// Tree position of each original index (the inverse of `index`).
    position: Vec<u32>,
    /// Splitting axis of the node whose pivot sits at this position (unused in leaves).
    /// Splitting on the widest axis instead of cycling keeps cells compact when the axes
    /// have different spreads (a weighted magnitude beside colours), so fewer are visited.
    axis: Vec<u8>,
}

const LEAF: usize = 32;
/// Points whose distances are computed together in a leaf.
const LANES: usize = 4;

impl<const D: usize> KdTree<D> {
    /// Builds the tree; `points[i]` keeps the id `i`.
    pub fn build(points: Vec<[f64; D]>) -> Self {
        let mut items: Vec<([f64; D], u32)> = points.into_iter().zip(0u32..).collect();
        let mut axis = vec![0u8; items.len()];
        build_rec(&mut items, &mut axis);
        // LANES − 1 padding values at the end let a leaf be read in whole groups of LANES.
        let coords = std::array::from_fn(|d| {
            let mut c: Vec<f64> = items.iter().map(|(p, _)| p[d]).collect();
            c.extend([f64::MAX; LANES - 1]);
            c
        });
        let index: Vec<u32> = items.iter().map(|&(_, i)| i).collect();
        let mut position = vec![0u32; index.len()];
        for (pos, &id) in (0u32..).zip(&index) {
            position[id as usize] = pos;
        }
        KdTree {
            coords,
            index,
            position,
            axis,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The `k` nearest points to `q` with squared chord distance ≤ `max_d2`, nearest first,
    /// ties broken by the smaller original index. Appends (id, squared chord) to `out`.
    pub fn knn_within(&self, q: &[f64; D], k: usize, max_d2: f64, out: &mut Vec<(u32, f64)>) {
        self.knn_seeded(q, k, max_d2, &[], out);
    }

    /// As [`Self::knn_within`], first trying the points `seeds` (original ids), typically the
    /// neighbours of a query close to this one. The answer is the same with any seeds; good
    /// ones give the search a tight bound from the start, so it opens fewer cells.
    pub fn knn_seeded(
        &self,
        q: &[f64; D],
        k: usize,
        max_d2: f64,
        seeds: &[u32],
        out: &mut Vec<(u32, f64)>,
    ) {
        out.clear();
        if k == 0 || self.is_empty() {
            return;
        }
        for &id in seeds {
            if let Some(&pos) = self.position.get(id as usize) {
                let d = self.dist2_at(pos as usize, q);
                if d <= max_d2 {
                    insert(out, k, (id, d));
                }
            }
        }
        self.search(q, k, max_d2, out);
    }

    /// Start of the leaf whose cell holds `q`: queries sorted by it run through the tree in
    /// order, each close to the one before.
    pub fn leaf_of(&self, q: &[f64; D]) -> u32 {
        let (mut lo, mut hi) = (0, self.len());
        while hi - lo > LEAF {
            let mid = lo + (hi - lo) / 2;
            let axis = usize::from(self.axis[mid]);
            if q[axis] < self.coords[axis][mid] {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo as u32
    }

    #[inline]
    fn dist2_at(&self, i: usize, q: &[f64; D]) -> f64 {
        let mut s = 0.0;
        for (d, c) in self.coords.iter().enumerate() {
            s += sq(c[i] - q[d]);
        }
        s
    }

    /// Squared distances of the `LANES` points from `j` (some may lie past the leaf), axis
    /// by axis: straight-line code the compiler turns into vector instructions.
    #[inline]
    fn group_dist2(&self, j: usize, q: &[f64; D]) -> [f64; LANES] {
        let mut acc = [0.0; LANES];
        for (d, c) in self.coords.iter().enumerate() {
            let x = &c[j..j + LANES];
            for l in 0..LANES {
                acc[l] += sq(x[l] - q[d]);
            }
        }
        acc
    }

    /// The search proper, compiled twice: for AVX2 when the CPU has it (a leaf's distances
    /// then take a quarter of the instructions), else for the baseline. No `mul_add` is
    /// used, so both round identically.
    fn search(&self, q: &[f64; D], k: usize, max_d2: f64, best: &mut Vec<(u32, f64)>) {
        #[cfg(target_arch = "x86_64")]
        {
            if crate::cpu::avx2_enabled() {
                // SAFETY: `avx2_enabled` holds only when the CPU reports AVX2 (and FMA);
                // `search_avx2` assumes AVX2 alone.
                return unsafe { self.search_avx2(q, k, max_d2, best) };
            }
        }
        self.search_body(q, k, max_d2, best)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn search_avx2(&self, q: &[f64; D], k: usize, max_d2: f64, best: &mut Vec<(u32, f64)>) {
        self.search_body(q, k, max_d2, best)
    }

    /// Depth first, nearer child first, with an explicit stack of the farther cells still
    /// to look at. Each carries `rd`, a lower bound of the squared distance from `q` to any
    /// point in it: the sum over axes of `off[axis]²`, the offsets of `q` from the
    /// splitting planes that bound the cell (Arya & Mount's incremental distance). In many
    /// dimensions it prunes far more cells than the distance to the last plane alone.
    #[inline(always)]
    fn search_body(&self, q: &[f64; D], k: usize, max_d2: f64, best: &mut Vec<(u32, f64)>) {
        let mut stack: Vec<(usize, usize, f64, [f64; D])> = Vec::with_capacity(64);
        stack.push((0, self.len(), 0.0, [0.0; D]));
        while let Some((mut lo, mut hi, rd, off)) = stack.pop() {
            if rd > bound_of(best, k, max_d2) {
                continue;
            }
            while hi - lo > LEAF {
                let mid = lo + (hi - lo) / 2;
                let axis = usize::from(self.axis[mid]);
                // The pivot stays at `mid`: everything before it is ≤ it on this axis, after
                // it ≥.
                let d = self.dist2_at(mid, q);
                if d <= max_d2 {
                    insert(best, k, (self.index[mid], d));
                }
                let diff = q[axis] - self.coords[axis][mid];
                let (near, far) = if diff < 0.0 {
                    ((lo, mid), (mid + 1, hi))
                } else {
                    ((mid + 1, hi), (lo, mid))
                };
                let far_rd = rd - off[axis] * off[axis] + diff * diff;
                // Checked again when popped, after the nearer side has tightened the bound.
                if far_rd <= bound_of(best, k, max_d2) {
                    let mut far_off = off;
                    far_off[axis] = diff;
                    stack.push((far.0, far.1, far_rd, far_off));
                }
                (lo, hi) = near;
            }
            // Most points of a leaf lose to the current k-th; compare first, insert rarely.
            let mut bound = bound_of(best, k, max_d2);
            for j in (lo..hi).step_by(LANES) {
                let d2 = self.group_dist2(j, q);
                for (l, &d) in d2.iter().enumerate().take(hi - j) {
                    if d <= bound {
                        insert(best, k, (self.index[j + l], d));
                        bound = bound_of(best, k, max_d2);
                    }
                }
            }
        }
    }
}

/// The largest squared distance a new candidate may have and still enter `best`.
#[inline]
fn bound_of(best: &[(u32, f64)], k: usize, max_d2: f64) -> f64 {
    if best.len() == k {
        best[k - 1].1.min(max_d2)
    } else {
        max_d2
    }
}

#[inline]
fn sq(x: f64) -> f64 {
    x * x
}

/// Keeps `best` (id, distance) sorted by (distance, id), at most `k` long and without
/// repeated ids (a seed is met again in the tree).
#[inline]
fn insert(best: &mut Vec<(u32, f64)>, k: usize, cand: (u32, f64)) {
    if best.len() == k {
        let last = best[k - 1];
        if (cand.1, cand.0) >= (last.1, last.0) {
            return;
        }
    }
    if best.iter().any(|b| b.0 == cand.0) {
        return;
    }
    if best.len() == k {
        best.pop();
    }
    // Shift the few larger ones up by hand: `Vec::insert` calls memmove, costly at this size.
    best.push(cand);
    let mut i = best.len() - 1;
    while i > 0 && (best[i - 1].1, best[i - 1].0) > (cand.1, cand.0) {
        best[i] = best[i - 1];
        i -= 1;
    }
    best[i] = cand;
}

/// Puts the median on the widest axis at the middle, smaller before, larger after, records
/// that axis in `axis[mid]`, then recurses on both sides (the median itself stays put).
fn build_rec<const D: usize>(items: &mut [([f64; D], u32)], axis: &mut [u8]) {
    let n = items.len();
    if n <= LEAF {
        return;
    }
    let mut lo = [f64::INFINITY; D];
    let mut hi = [f64::NEG_INFINITY; D];
    for (p, _) in items.iter() {
        for d in 0..D {
            lo[d] = lo[d].min(p[d]);
            hi[d] = hi[d].max(p[d]);
        }
    }
    let widest = (0..D)
        .max_by(|&a, &b| (hi[a] - lo[a]).total_cmp(&(hi[b] - lo[b])))
        .unwrap_or(0);
    let mid = n / 2;
    items.select_nth_unstable_by(mid, |a, b| a.0[widest].total_cmp(&b.0[widest]));
    axis[mid] = widest as u8;
    let (left, right) = items.split_at_mut(mid);
    let (axis_left, axis_right) = axis.split_at_mut(mid);
    build_rec(left, axis_left);
    build_rec(&mut right[1..], &mut axis_right[1..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_brute_force() {
        // Points clustered around RA 0 and the south pole.
        let mut pts = Vec::new();
        let mut s = 12345u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..3000 {
            pts.push(unit_vector(
                (rnd() - 0.5) * 0.2 + 360.0,
                -30.0 + (rnd() - 0.5) * 0.1,
            ));
        }
        for _ in 0..3000 {
            pts.push(unit_vector(rnd() * 360.0, -89.95 + rnd() * 0.05));
        }
        let tree = KdTree::build(pts.clone());
        let max = chord_of_arcsec(30.0);
        let mut out = Vec::new();
        for qi in (0..pts.len()).step_by(37) {
            let q = pts[qi];
            tree.knn_within(&q, 5, max * max, &mut out);
            let mut brute: Vec<(u32, f64)> = pts
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    (
                        i as u32,
                        sq(p[0] - q[0]) + sq(p[1] - q[1]) + sq(p[2] - q[2]),
                    )
                })
                .filter(|(_, d)| *d <= max * max)
                .collect();
            brute.sort_by(|a, b| (a.1, a.0).partial_cmp(&(b.1, b.0)).unwrap());
            brute.truncate(5);
            assert_eq!(out, brute, "query {qi}");
        }
    }

    /// Six axes with spreads from 0.01 to 3 (a weighted magnitude beside colours), with
    /// duplicated points so ties by id are exercised.
    #[test]
    fn matches_brute_force_in_six_dimensions() {
        let mut rng = crate::photoz::rng::SplitMix64::new(99);
        let mut rnd = || rng.uniform();
        let scale = [3.0, 0.5, 0.2, 0.01, 1.0, 0.05];
        let mut pts: Vec<[f64; 6]> = (0..5000)
            .map(|_| std::array::from_fn(|d| rnd() * scale[d]))
            .collect();
        pts.extend_from_within(0..300);
        let tree = KdTree::build(pts.clone());
        let mut out = Vec::new();
        for qi in 0..400 {
            let q: [f64; 6] = std::array::from_fn(|d| (rnd() * 1.2 - 0.1) * scale[d]);
            let q = if qi % 4 == 0 { pts[qi] } else { q };
            let max_d2 = if qi % 3 == 0 { 0.05 } else { f64::INFINITY };
            tree.knn_within(&q, 9, max_d2, &mut out);
            let mut brute: Vec<(u32, f64)> = pts
                .iter()
                .enumerate()
                .map(|(i, p)| (i as u32, (0..6).map(|d| sq(p[d] - q[d])).sum::<f64>()))
                .filter(|(_, d)| *d <= max_d2)
                .collect();
            brute.sort_by(|a, b| (a.1, a.0).partial_cmp(&(b.1, b.0)).unwrap());
            brute.truncate(9);
            assert_eq!(out, brute, "query {qi}");
        }
    }

    /// Any seeds, good, poor, repeated or out of range, give the unseeded answer.
    #[test]
    fn seeds_do_not_change_the_answer() {
        let mut rng = crate::photoz::rng::SplitMix64::new(5);
        let mut rnd = || rng.uniform();
        let pts: Vec<[f64; 4]> = (0..3000)
            .map(|_| std::array::from_fn(|d| rnd() * (d + 1) as f64))
            .collect();
        let tree = KdTree::build(pts.clone());
        let (mut plain, mut seeded, mut previous) = (Vec::new(), Vec::new(), Vec::<u32>::new());
        for qi in 0..300 {
            let q: [f64; 4] = std::array::from_fn(|d| rnd() * (d + 1) as f64);
            let max_d2 = if qi % 2 == 0 { 0.3 } else { f64::INFINITY };
            tree.knn_within(&q, 7, max_d2, &mut plain);
            let mut seeds = previous.clone();
            seeds.extend([previous.first().copied().unwrap_or(0), 999_999, qi as u32]);
            tree.knn_seeded(&q, 7, max_d2, &seeds, &mut seeded);
            assert_eq!(plain, seeded, "query {qi}");
            previous = seeded.iter().map(|x| x.0).collect();
            let leaf = tree.leaf_of(&q) as usize;
            assert!(leaf < pts.len());
        }
    }
}
