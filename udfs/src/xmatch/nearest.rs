//! For each left position, its k nearest right positions within a radius.

use super::kdtree::{chord_of_arcsec, unit_vector, KdTree};
use crate::astro::ang_sep::ang_sep_arcsec;

/// One matched pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    pub left: u32,
    pub right: u32,
    pub dist_arcsec: f64,
    /// 1 = nearest.
    pub rank: u32,
}

/// The k nearest `right` positions within `radius_arcsec` of every `left` position
/// (degrees). Positions with NaN coordinates match nothing. Pairs come out by left index,
/// then rank. Separations are recomputed with Vincenty's formula, so `dist_arcsec` equals
/// `ang_sep` exactly; the rank follows the chord order, which is the same order.
pub fn nearest_within(
    left: &[(f64, f64)],
    right: &[(f64, f64)],
    radius_arcsec: f64,
    k: usize,
) -> Vec<Match> {
    let valid =
        |p: &(f64, f64)| p.0.is_finite() && p.1.is_finite() && (-90.0..=90.0).contains(&p.1);
    let mut ids = Vec::with_capacity(right.len());
    let mut vecs = Vec::with_capacity(right.len());
    for (i, p) in right.iter().enumerate() {
        if valid(p) {
            ids.push(i as u32);
            vecs.push(unit_vector(p.0, p.1));
        }
    }
    let tree = KdTree::build(vecs);
    // A hair of slack on the chord so float rounding never loses a boundary pair; the exact
    // test below decides.
    let chord = chord_of_arcsec(radius_arcsec) * (1.0 + 1e-12) + 1e-15;
    let mut found = Vec::new();
    let mut out = Vec::new();
    for (li, l) in left.iter().enumerate() {
        if !valid(l) {
            continue;
        }
        tree.knn_within(&unit_vector(l.0, l.1), k, chord * chord, &mut found);
        let mut rank = 0;
        for &(t, _) in &found {
            let ri = ids[t as usize];
            let r = right[ri as usize];
            let Ok(Some(d)) = ang_sep_arcsec(l.0, l.1, r.0, r.1) else {
                continue;
            };
            if d <= radius_arcsec {
                rank += 1;
                out.push(Match {
                    left: li as u32,
                    right: ri,
                    dist_arcsec: d,
                    rank,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_neighbours_across_ra_zero_and_at_the_pole() {
        let left = [(359.9999, 10.0), (0.0, -90.0), (f64::NAN, 0.0)];
        let right = [
            (0.0001, 10.0),
            (180.0, -89.9999),
            (0.0, -89.9998),
            (10.0, 10.0),
        ];
        let m = nearest_within(&left, &right, 1.0, 3);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].left, m[0].right, m[0].rank), (0, 0, 1));
        assert!((m[0].dist_arcsec - 0.7089).abs() < 1e-3);
        assert_eq!((m[1].left, m[1].right, m[1].rank), (1, 1, 1));
        assert_eq!((m[2].left, m[2].right, m[2].rank), (1, 2, 2));
        assert!(m[1].dist_arcsec < m[2].dist_arcsec);
    }

    #[test]
    fn radius_is_inclusive_and_k_limits() {
        let left = [(10.0, 0.0)];
        let right: Vec<(f64, f64)> = (1..=5).map(|i| (10.0 + i as f64 / 3600.0, 0.0)).collect();
        let m = nearest_within(&left, &right, 3.0, 10);
        assert_eq!(m.iter().map(|x| x.right).collect::<Vec<_>>(), vec![0, 1, 2]);
        let m = nearest_within(&left, &right, 10.0, 2);
        assert_eq!(m.len(), 2);
        assert!(nearest_within(&left, &right, 0.5, 3).is_empty());
    }
}
