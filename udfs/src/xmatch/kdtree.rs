//! A static 3-d tree over unit vectors: k nearest neighbours within a chord radius.
//!
//! Points on the sphere become unit vectors; the great-circle order of distances equals the
//! order of chord (Euclidean) distances, so an exact Euclidean search answers the sky
//! question with no special cases at RA = 0/360 or the poles.

/// Unit vector of (ra, dec) in degrees.
#[inline]
pub fn unit_vector(ra_deg: f64, dec_deg: f64) -> [f64; 3] {
    let (sr, cr) = ra_deg.to_radians().sin_cos();
    let (sd, cd) = dec_deg.to_radians().sin_cos();
    [cd * cr, cd * sr, sd]
}

/// Chord length of an angular separation in arcseconds.
#[inline]
pub fn chord_of_arcsec(arcsec: f64) -> f64 {
    2.0 * (arcsec / 3600.0).to_radians().mul_add(0.5, 0.0).sin()
}

/// A static k-d tree over points of `D` coordinates (3 for unit vectors on the sky, more for
/// colour spaces).
#[derive(Debug, Clone)]
pub struct KdTree<const D: usize = 3> {
    points: Vec<[f64; D]>,
    /// Original index of each stored point (points are permuted into tree order).
    index: Vec<u32>,
}

const LEAF: usize = 32;

impl<const D: usize> KdTree<D> {
    /// Builds the tree; `points[i]` keeps the id `i`.
    pub fn build(points: Vec<[f64; D]>) -> Self {
        let mut items: Vec<([f64; D], u32)> = points.into_iter().zip(0u32..).collect();
        build_rec(&mut items, 0);
        let (points, index) = items.into_iter().unzip();
        KdTree { points, index }
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The `k` nearest points to `q` with squared chord distance ≤ `max_d2`, nearest first,
    /// ties broken by the smaller original index. Appends (id, squared chord) to `out`.
    pub fn knn_within(&self, q: &[f64; D], k: usize, max_d2: f64, out: &mut Vec<(u32, f64)>) {
        out.clear();
        if k == 0 || self.points.is_empty() {
            return;
        }
        let mut off = [0.0; D];
        self.search(0, self.points.len(), 0, q, k, max_d2, out, 0.0, &mut off);
    }

    /// `rd` is a lower bound of the squared distance from `q` to every point in `lo..hi`:
    /// the sum over axes of `off[axis]²`, the offsets of `q` from the splitting planes that
    /// bound this cell (Arya & Mount's incremental distance). In many dimensions it prunes
    /// far more cells than the distance to the last plane alone.
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        lo: usize,
        hi: usize,
        depth: usize,
        q: &[f64; D],
        k: usize,
        max_d2: f64,
        best: &mut Vec<(u32, f64)>,
        rd: f64,
        off: &mut [f64; D],
    ) {
        if hi - lo <= LEAF {
            for i in lo..hi {
                let d = dist2(&self.points[i], q);
                if d <= max_d2 {
                    insert(best, k, (self.index[i], d));
                }
            }
            return;
        }
        let axis = depth % D;
        let mid = lo + (hi - lo) / 2;
        // The pivot stays at `mid`: everything before it is ≤ it on this axis, after it ≥.
        let p = &self.points[mid];
        let d = dist2(p, q);
        if d <= max_d2 {
            insert(best, k, (self.index[mid], d));
        }
        let diff = q[axis] - p[axis];
        let (near, far) = if diff < 0.0 {
            ((lo, mid), (mid + 1, hi))
        } else {
            ((mid + 1, hi), (lo, mid))
        };
        self.search(near.0, near.1, depth + 1, q, k, max_d2, best, rd, off);
        let bound = if best.len() == k {
            best[k - 1].1.min(max_d2)
        } else {
            max_d2
        };
        let old = off[axis];
        let far_rd = rd - old * old + diff * diff;
        if far_rd <= bound {
            off[axis] = diff;
            self.search(far.0, far.1, depth + 1, q, k, max_d2, best, far_rd, off);
            off[axis] = old;
        }
    }
}

#[inline]
fn sq(x: f64) -> f64 {
    x * x
}

#[inline]
fn dist2<const D: usize>(a: &[f64; D], b: &[f64; D]) -> f64 {
    let mut s = 0.0;
    for i in 0..D {
        s += sq(a[i] - b[i]);
    }
    s
}

/// Keeps `best` (id, distance) sorted by (distance, id) and at most `k` long.
#[inline]
fn insert(best: &mut Vec<(u32, f64)>, k: usize, cand: (u32, f64)) {
    if best.len() == k {
        let last = best[k - 1];
        if (cand.1, cand.0) >= (last.1, last.0) {
            return;
        }
        best.pop();
    }
    let pos = best.partition_point(|b| (b.1, b.0) < (cand.1, cand.0));
    best.insert(pos, cand);
}

/// Puts the median on `axis` at the middle, smaller before, larger after, then recurses on
/// both sides (the median itself stays put), in place.
fn build_rec<const D: usize>(items: &mut [([f64; D], u32)], depth: usize) {
    let n = items.len();
    if n <= LEAF {
        return;
    }
    let axis = depth % D;
    let mid = n / 2;
    items.select_nth_unstable_by(mid, |a, b| a.0[axis].total_cmp(&b.0[axis]));
    let (left, right) = items.split_at_mut(mid);
    build_rec(left, depth + 1);
    build_rec(&mut right[1..], depth + 1);
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
}
