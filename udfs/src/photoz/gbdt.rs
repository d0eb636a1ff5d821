//! Gradient-boosted regression trees with vector leaves: one tree per round predicts every
//! output at once (squared error), grown depth-wise on binned features as histogram GBDTs
//! (XGBoost's `hist`) are. FlexZBoost's basis coefficients are smooth functions of the same
//! photometry, so a shared tree structure fits them together at a fraction of the cost of one
//! model per coefficient.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GbdtParams {
    pub n_trees: usize,
    pub max_depth: usize,
    pub learning_rate: f64,
    /// L2 penalty on leaf values (XGBoost's `lambda`).
    pub lambda: f64,
    /// Fewest training rows in a leaf (`min_child_weight` for squared error).
    pub min_child_rows: usize,
    /// Histogram bins per feature (at most 256).
    pub max_bins: usize,
}

impl Default for GbdtParams {
    /// XGBoost's defaults with FlexZBoost's depth 8.
    fn default() -> Self {
        GbdtParams {
            n_trees: 100,
            max_depth: 8,
            learning_rate: 0.3,
            lambda: 1.0,
            min_child_rows: 1,
            max_bins: 256,
        }
    }
}

/// A node: internal when `feature != LEAF` (go to `left` when x ≤ threshold), else `left` is
/// the leaf's index.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub feature: u32,
    pub threshold: f64,
    pub left: u32,
    pub right: u32,
}

const LEAF: u32 = u32::MAX;

/// Deepest tree a booster may hold: prediction pads every tree to a complete one of
/// 2^depth bottom positions.
pub const MAX_TREE_DEPTH: usize = 20;

/// Most features a booster may split on: a compiled node keeps the feature in 16 bits.
pub const MAX_FEATURES: usize = 0xFFFF;

/// Most nodes (internal and bottom positions) a compiled forest may hold once padded,
/// about 8 bytes each.
pub const MAX_COMPILED_NODES: usize = 1 << 24;

/// Nodes a tree of depth `d` takes once padded to a complete tree.
pub fn padded_nodes(depth: usize) -> usize {
    (1usize << depth.min(MAX_TREE_DEPTH + 1)) * 2 - 1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiGbdt {
    pub n_features: usize,
    pub n_outputs: usize,
    pub base: Vec<f64>,
    pub nodes: Vec<Node>,
    pub roots: Vec<u32>,
    /// `n_leaves × n_outputs`, learning rate applied.
    pub leaves: Vec<f32>,
}

impl MultiGbdt {
    /// Fits `y` (`n × n_outputs`, row-major) on `x` (`n × n_features`, row-major).
    pub fn fit(
        x: &[f64],
        n_features: usize,
        y: &[f64],
        n_outputs: usize,
        p: &GbdtParams,
    ) -> MultiGbdt {
        let n = x.len().checked_div(n_features).unwrap_or(0);
        let k = n_outputs;
        let nbins = p.max_bins.clamp(2, 256);
        // Bin edges per feature from the sorted values: up to nbins − 1 cuts, x ≤ cut goes left.
        let mut cuts: Vec<Vec<f64>> = Vec::with_capacity(n_features);
        let mut binned = vec![0u8; n * n_features];
        for f in 0..n_features {
            let mut v: Vec<f64> = (0..n)
                .map(|i| x[i * n_features + f])
                .filter(|v| !v.is_nan())
                .collect();
            v.sort_by(|a, b| a.total_cmp(b));
            v.dedup();
            let c: Vec<f64> = if v.len() < nbins {
                v
            } else {
                let mut c: Vec<f64> = (1..nbins)
                    .map(|j| v[j * (v.len() - 1) / (nbins - 1)])
                    .collect();
                c.dedup();
                c
            };
            for i in 0..n {
                let xv = x[i * n_features + f];
                let b = if xv.is_nan() {
                    0
                } else {
                    c.partition_point(|&e| e < xv)
                };
                binned[i * n_features + f] = b.min(255) as u8;
            }
            cuts.push(c);
        }
        let mut base = vec![0.0; k];
        for i in 0..n {
            for j in 0..k {
                base[j] += y[i * k + j];
            }
        }
        if n > 0 {
            base.iter_mut().for_each(|b| *b /= n as f64);
        }
        let mut model = MultiGbdt {
            n_features,
            n_outputs: k,
            base: base.clone(),
            nodes: Vec::new(),
            roots: Vec::new(),
            leaves: Vec::new(),
        };
        if n == 0 {
            return model;
        }
        let mut pred: Vec<f64> = (0..n).flat_map(|_| base.iter().copied()).collect();
        let mut grad = vec![0.0; n * k];
        let stride = k + 1;
        let mut hist = vec![0.0f64; n_features * nbins * stride];
        let mut rows: Vec<u32> = (0..n as u32).collect();
        let mut gl = vec![0.0; k];
        let mut gtot = vec![0.0; k];
        for _ in 0..p.n_trees {
            for i in 0..n * k {
                grad[i] = y[i] - pred[i];
            }
            for (i, r) in rows.iter_mut().enumerate() {
                *r = i as u32;
            }
            let root = model.nodes.len() as u32;
            model.roots.push(root);
            model.nodes.push(Node {
                feature: LEAF,
                threshold: 0.0,
                left: 0,
                right: 0,
            });
            // (node, start, end, depth)
            let mut stack = vec![(root as usize, 0usize, n, 0usize)];
            while let Some((node, start, end, depth)) = stack.pop() {
                let seg = &rows[start..end];
                let cnt = seg.len() as f64;
                gtot.iter_mut().for_each(|g| *g = 0.0);
                for &r in seg {
                    let g = &grad[r as usize * k..(r as usize + 1) * k];
                    for j in 0..k {
                        gtot[j] += g[j];
                    }
                }
                let mut best: Option<(f64, usize, usize)> = None;
                if depth < p.max_depth && seg.len() >= 2 * p.min_child_rows.max(1) {
                    hist.iter_mut().for_each(|h| *h = 0.0);
                    for &r in seg {
                        let r = r as usize;
                        let g = &grad[r * k..(r + 1) * k];
                        for f in 0..n_features {
                            let b = binned[r * n_features + f] as usize;
                            let h =
                                &mut hist[(f * nbins + b) * stride..(f * nbins + b + 1) * stride];
                            h[0] += 1.0;
                            for j in 0..k {
                                h[j + 1] += g[j];
                            }
                        }
                    }
                    let parent_score: f64 =
                        gtot.iter().map(|g| g * g).sum::<f64>() / (cnt + p.lambda);
                    for f in 0..n_features {
                        let nb = cuts[f].len().min(nbins - 1);
                        let mut nl = 0.0;
                        gl.iter_mut().for_each(|g| *g = 0.0);
                        for b in 0..nb {
                            let h = &hist[(f * nbins + b) * stride..(f * nbins + b + 1) * stride];
                            if h[0] == 0.0 {
                                continue;
                            }
                            nl += h[0];
                            for j in 0..k {
                                gl[j] += h[j + 1];
                            }
                            let nr = cnt - nl;
                            if nl < p.min_child_rows as f64 || nr < p.min_child_rows.max(1) as f64 {
                                continue;
                            }
                            let mut sl = 0.0;
                            let mut sr = 0.0;
                            for j in 0..k {
                                sl += gl[j] * gl[j];
                                let gr = gtot[j] - gl[j];
                                sr += gr * gr;
                            }
                            let gain = sl / (nl + p.lambda) + sr / (nr + p.lambda) - parent_score;
                            if gain > 1e-12 && best.is_none_or(|(bg, _, _)| gain > bg) {
                                best = Some((gain, f, b));
                            }
                        }
                    }
                }
                match best {
                    Some((_, f, b)) => {
                        // Partition the segment in place: bin ≤ b first.
                        let seg = &mut rows[start..end];
                        let mut i = 0;
                        let mut j = seg.len();
                        while i < j {
                            if (binned[seg[i] as usize * n_features + f] as usize) <= b {
                                i += 1;
                            } else {
                                j -= 1;
                                seg.swap(i, j);
                            }
                        }
                        let left = model.nodes.len() as u32;
                        model.nodes.push(Node {
                            feature: LEAF,
                            threshold: 0.0,
                            left: 0,
                            right: 0,
                        });
                        model.nodes.push(Node {
                            feature: LEAF,
                            threshold: 0.0,
                            left: 0,
                            right: 0,
                        });
                        model.nodes[node] = Node {
                            feature: f as u32,
                            threshold: cuts[f][b],
                            left,
                            right: left + 1,
                        };
                        stack.push((left as usize + 1, start + i, end, depth + 1));
                        stack.push((left as usize, start, start + i, depth + 1));
                    }
                    None => {
                        let leaf = (model.leaves.len() / k) as u32;
                        let scale = p.learning_rate / (cnt + p.lambda);
                        for j in 0..k {
                            model.leaves.push((gtot[j] * scale) as f32);
                        }
                        model.nodes[node].left = leaf;
                        let lv = &model.leaves[leaf as usize * k..(leaf as usize + 1) * k];
                        for &r in &rows[start..end] {
                            let pr = &mut pred[r as usize * k..(r as usize + 1) * k];
                            for j in 0..k {
                                pr[j] += lv[j] as f64;
                            }
                        }
                    }
                }
            }
        }
        model
    }

    /// Checks everything prediction relies on: output and leaf lengths, every node's feature,
    /// threshold and children in range, and each tree a tree (no node reached twice, so no
    /// cycle and no sharing between trees) no deeper than [`MAX_TREE_DEPTH`]. Returns each
    /// tree's depth. A model decoded from bytes has been through this before any walk.
    pub fn check(&self) -> Result<Vec<usize>, String> {
        if !(1..=MAX_FEATURES).contains(&self.n_features) {
            return Err(format!(
                "booster has {} features (1 to {MAX_FEATURES} are possible)",
                self.n_features
            ));
        }
        let k = self.n_outputs;
        if k == 0 || self.base.len() != k {
            return Err(format!(
                "booster has {k} outputs and {} base values",
                self.base.len()
            ));
        }
        if !self.leaves.len().is_multiple_of(k) {
            return Err(format!(
                "booster leaves hold {} values, not a multiple of its {k} outputs",
                self.leaves.len()
            ));
        }
        if self.base.iter().any(|v| !v.is_finite()) || self.leaves.iter().any(|v| !v.is_finite()) {
            return Err("booster has a non-finite base or leaf value".into());
        }
        let n_leaves = self.leaves.len() / k;
        let n_nodes = self.nodes.len();
        if n_nodes > u32::MAX as usize {
            return Err(format!("booster has {n_nodes} nodes"));
        }
        let mut seen = vec![false; n_nodes];
        let mut depths = Vec::with_capacity(self.roots.len());
        let mut stack: Vec<(usize, usize)> = Vec::new();
        for (t, &root) in self.roots.iter().enumerate() {
            let mut depth = 0;
            stack.clear();
            stack.push((root as usize, 0));
            while let Some((i, level)) = stack.pop() {
                let Some(nd) = self.nodes.get(i) else {
                    return Err(format!("tree {t}: node {i} is past the {n_nodes} nodes"));
                };
                if std::mem::replace(&mut seen[i], true) {
                    return Err(format!(
                        "tree {t}: node {i} is reached twice (a cycle, or shared between trees)"
                    ));
                }
                if nd.feature == LEAF {
                    if nd.left as usize >= n_leaves {
                        return Err(format!(
                            "tree {t}: node {i} names leaf {} of {n_leaves}",
                            nd.left
                        ));
                    }
                    depth = depth.max(level);
                    continue;
                }
                if nd.feature as usize >= self.n_features {
                    return Err(format!(
                        "tree {t}: node {i} splits on feature {} of {}",
                        nd.feature, self.n_features
                    ));
                }
                if !nd.threshold.is_finite() {
                    return Err(format!("tree {t}: node {i} has threshold {}", nd.threshold));
                }
                if level + 1 > MAX_TREE_DEPTH {
                    return Err(format!("tree {t} is deeper than {MAX_TREE_DEPTH}"));
                }
                stack.push((nd.left as usize, level + 1));
                stack.push((nd.right as usize, level + 1));
            }
            depths.push(depth);
        }
        Ok(depths)
    }

    /// Adds the model's prediction for one row `x` to `out` (which it first sets to the base).
    #[inline]
    pub fn predict_into(&self, x: &[f64], out: &mut [f64]) {
        let k = self.n_outputs;
        out[..k].copy_from_slice(&self.base);
        for &root in &self.roots {
            let mut i = root as usize;
            loop {
                let nd = &self.nodes[i];
                if nd.feature == LEAF {
                    let lv = &self.leaves[nd.left as usize * k..(nd.left as usize + 1) * k];
                    for j in 0..k {
                        out[j] += lv[j] as f64;
                    }
                    break;
                }
                // NaN goes left, as it was binned.
                i = if x[nd.feature as usize].is_nan() || x[nd.feature as usize] <= nd.threshold {
                    nd.left
                } else {
                    nd.right
                } as usize;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_two_outputs_of_two_features() {
        let mut s = 1u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        };
        let n = 4000;
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let (a, b) = (rnd(), rnd());
            x.extend([a, b]);
            y.extend([(3.0 * a).sin() + b, if a > 0.5 { 1.0 } else { -1.0 } * b]);
        }
        let m = MultiGbdt::fit(
            &x,
            2,
            &y,
            2,
            &GbdtParams {
                n_trees: 60,
                max_depth: 5,
                ..Default::default()
            },
        );
        let mut out = [0.0; 2];
        let mut mse = 0.0;
        for _ in 0..500 {
            let (a, b) = (rnd(), rnd());
            m.predict_into(&[a, b], &mut out);
            let t = [(3.0 * a).sin() + b, if a > 0.5 { 1.0 } else { -1.0 } * b];
            mse += (out[0] - t[0]).powi(2) + (out[1] - t[1]).powi(2);
        }
        mse /= 1000.0;
        assert!(mse < 2e-3, "mse {mse}");
        // The training predictions the booster tracked equal what predict_into gives.
        let mut refit = [0.0; 2];
        m.predict_into(&x[..2], &mut refit);
        assert!(refit.iter().all(|v| v.is_finite()));
    }
}

/// A booster laid out for fast batch prediction: every tree padded to a complete binary tree
/// of its depth (a leaf above the bottom becomes a node whose both sides lead to it), so a
/// row descends by index arithmetic, `i = 2i + 1 + (x > t)`, with no unpredictable branch,
/// and several rows descend together to overlap their memory latency.
///
/// Thresholds are replaced by their rank among the thresholds of the same feature, and each
/// row's features by how many of those thresholds lie below them: `x > t_k` exactly when
/// `rank(x) > k`. A node is then one `u32` (feature, rank), a quarter of the bytes, and the
/// decisions (so the predictions) are the same bit for bit.
///
/// Only [`CompiledForest::try_new`] makes one, from a booster that passed
/// [`MultiGbdt::check`]: every node's feature is below `n_features` and every tree has the
/// depth `depth` records, which is what the AVX2 gathers rely on.
#[derive(Debug, Clone)]
pub struct CompiledForest {
    n_outputs: usize,
    n_features: usize,
    base: Vec<f64>,
    depth: Vec<u8>,
    node_offset: Vec<usize>,
    leaf_offset: Vec<usize>,
    /// Build-time only: the padded trees' features and thresholds.
    feature: Vec<u32>,
    threshold: Vec<f64>,
    /// `feature << 16 | rank`; rank `NEVER` sends every row left.
    node: Vec<u32>,
    /// Sorted distinct finite thresholds per feature.
    cuts: Vec<Vec<f64>>,
    leaf_index: Vec<u32>,
    /// The leaves' outputs, each padded by zeros to `padded_outputs`, a multiple of 4:
    /// adding a leaf to a row is then whole vector adds.
    padded_leaves: Vec<f32>,
    padded_outputs: usize,
}

/// Rows that descend a tree together.
const LANES: usize = 16;

/// Rows that meet every tree before the next rows do.
const CHUNK: usize = 512;

fn has_avx2() -> bool {
    crate::cpu::avx2_enabled()
}

/// Rows as ranks among one forest's thresholds, `n × nf`. Only
/// [`CompiledForest::quantise`] makes one, so `q.len() == n · nf` with `nf` that forest's
/// feature count.
struct Quantised {
    q: Vec<u32>,
    n: usize,
    nf: usize,
}

impl CompiledForest {
    /// Walks rows `r0..r0 + m` of `q` down tree `t`; `idx[j]` ends at the bottom-level
    /// position of row `r0 + j`. Full blocks use AVX2 gathers (two vectors of 8 rows) when
    /// the CPU has them; the decisions are the same integer comparisons either way.
    #[inline]
    fn descend(
        &self,
        t: usize,
        q: &Quantised,
        r0: usize,
        m: usize,
        avx2: bool,
        idx: &mut [u32; LANES],
    ) {
        let d = self.depth[t] as usize;
        let nodes = &self.node[self.node_offset[t]..self.node_offset[t] + (1 << d) - 1];
        let nf = self.n_features;
        #[cfg(target_arch = "x86_64")]
        if avx2
            && m == LANES
            && q.nf == nf
            && r0 + LANES <= q.n
            && q.q.len() < i32::MAX as usize
            && nodes.len() < i32::MAX as usize
        {
            // SAFETY: `avx2` is only true on the AVX2 build (the CPU reports it). Every
            // gathered index is in bounds: node positions stay below 2^d − 1 = nodes.len()
            // for the first d levels; every node's feature is < nf (the only constructor,
            // `try_new`, checked the booster, and padding nodes use feature 0), so
            // (r0 + j)·nf + feature < (r0 + LANES)·nf ≤ q.n·nf = q.q.len(); all fit in i32.
            unsafe { descend_avx2(nodes, &q.q, nf as i32, d, r0 as i32, idx) };
            return;
        }
        idx[..m].iter_mut().for_each(|i| *i = 0);
        for _ in 0..d {
            for j in 0..m {
                let i = idx[j] as usize;
                let nd = nodes[i];
                let v = q.q[(r0 + j) * nf + (nd >> 16) as usize];
                idx[j] = 2 * i as u32 + 1 + (v > (nd & 0xFFFF)) as u32;
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn descend_avx2(
    nodes: &[u32],
    q: &[u32],
    nf: i32,
    d: usize,
    r0: i32,
    idx: &mut [u32; LANES],
) {
    use std::arch::x86_64::*;
    let np = nodes.as_ptr() as *const i32;
    let qp = q.as_ptr() as *const i32;
    let one = _mm256_set1_epi32(1);
    let low = _mm256_set1_epi32(0xFFFF);
    let nfv = _mm256_set1_epi32(nf);
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let base_a = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32(r0), lane), nfv);
    let base_b = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32(r0 + 8), lane), nfv);
    let mut ia = _mm256_setzero_si256();
    let mut ib = _mm256_setzero_si256();
    for _ in 0..d {
        let na = _mm256_i32gather_epi32::<4>(np, ia);
        let nb = _mm256_i32gather_epi32::<4>(np, ib);
        let va =
            _mm256_i32gather_epi32::<4>(qp, _mm256_add_epi32(base_a, _mm256_srli_epi32::<16>(na)));
        let vb =
            _mm256_i32gather_epi32::<4>(qp, _mm256_add_epi32(base_b, _mm256_srli_epi32::<16>(nb)));
        // cmpgt gives −1 where the row goes right: i ← 2i + 1 − (−1).
        let ga = _mm256_cmpgt_epi32(va, _mm256_and_si256(na, low));
        let gb = _mm256_cmpgt_epi32(vb, _mm256_and_si256(nb, low));
        ia = _mm256_sub_epi32(_mm256_add_epi32(_mm256_slli_epi32::<1>(ia), one), ga);
        ib = _mm256_sub_epi32(_mm256_add_epi32(_mm256_slli_epi32::<1>(ib), one), gb);
    }
    _mm256_storeu_si256(idx.as_mut_ptr() as *mut __m256i, ia);
    _mm256_storeu_si256(idx.as_mut_ptr().add(8) as *mut __m256i, ib);
}
const NEVER: u32 = 0xFFFF;

impl CompiledForest {
    /// Lays out a booster for batch prediction, after [`MultiGbdt::check`]; refuses one that
    /// fails it, whose padded trees would exceed [`MAX_COMPILED_NODES`], or that has more
    /// distinct thresholds on a feature than a 16-bit rank holds.
    pub fn try_new(m: &MultiGbdt) -> Result<Self, String> {
        let depths = m.check()?;
        let total = depths
            .iter()
            .map(|&d| padded_nodes(d))
            .fold(0usize, usize::saturating_add);
        if total > MAX_COMPILED_NODES {
            return Err(format!(
                "the booster's {} trees take {total} nodes once padded (at most {MAX_COMPILED_NODES})",
                depths.len()
            ));
        }
        let mut f = CompiledForest {
            n_outputs: m.n_outputs,
            n_features: m.n_features,
            base: m.base.clone(),
            depth: Vec::new(),
            node_offset: Vec::new(),
            leaf_offset: Vec::new(),
            feature: Vec::new(),
            threshold: Vec::new(),
            node: Vec::new(),
            cuts: Vec::new(),
            leaf_index: Vec::new(),
            padded_leaves: Vec::new(),
            padded_outputs: m.n_outputs.div_ceil(4).max(1) * 4,
        };
        let k = m.n_outputs;
        if k > 0 {
            for leaf in m.leaves.chunks_exact(k) {
                f.padded_leaves.extend_from_slice(leaf);
                f.padded_leaves
                    .extend(std::iter::repeat_n(0.0, f.padded_outputs - k));
            }
        }
        for (&root, &d) in m.roots.iter().zip(&depths) {
            let internal = (1usize << d) - 1;
            let (no, lo) = (f.feature.len(), f.leaf_index.len());
            f.depth.push(d as u8);
            f.node_offset.push(no);
            f.leaf_offset.push(lo);
            f.feature.resize(no + internal, 0);
            f.threshold.resize(no + internal, f64::INFINITY);
            f.leaf_index.resize(lo + internal + 1, 0);
            fill(m, &mut f, root as usize, 0, 0, d, no, lo);
        }
        f.cuts = vec![Vec::new(); f.n_features];
        for (&ft, &t) in f.feature.iter().zip(&f.threshold) {
            if t.is_finite() {
                f.cuts[ft as usize].push(t);
            }
        }
        for (ft, c) in f.cuts.iter_mut().enumerate() {
            c.sort_by(f64::total_cmp);
            c.dedup();
            // Ranks of rows go up to c.len() and must stay below NEVER.
            if c.len() >= NEVER as usize {
                return Err(format!(
                    "feature {ft} has {} distinct thresholds (at most {})",
                    c.len(),
                    NEVER - 1
                ));
            }
        }
        let feature = std::mem::take(&mut f.feature);
        let threshold = std::mem::take(&mut f.threshold);
        f.node = feature
            .iter()
            .zip(&threshold)
            .map(|(&ft, &t)| {
                let rank = if t.is_finite() {
                    f.cuts[ft as usize].partition_point(|c| *c < t) as u32
                } else {
                    NEVER
                };
                (ft << 16) | rank
            })
            .collect();
        Ok(f)
    }

    /// Each row's features as ranks among the thresholds (NaN ranks 0, so it goes left; so
    /// does a row past the end of `x`).
    fn quantise(&self, x: &[f64], n: usize) -> Quantised {
        let nf = self.n_features;
        let mut q = vec![0u32; n * nf];
        for r in 0..n {
            for f in 0..nf {
                let v = x.get(r * nf + f).copied().unwrap_or(f64::NAN);
                q[r * nf + f] = self.cuts[f].partition_point(|c| *c < v) as u32;
            }
        }
        Quantised { q, n, nf }
    }

    /// Predictions for `n` rows (`x`: `n × n_features`) into `out` (`n × out_stride`, this
    /// booster's outputs from `out_offset`).
    pub fn predict_batch(
        &self,
        x: &[f64],
        n: usize,
        out: &mut [f64],
        out_stride: usize,
        out_offset: usize,
    ) {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU reports AVX2, the only feature `predict_batch_avx2` assumes.
            unsafe { self.predict_batch_avx2(x, n, out, out_stride, out_offset) };
            return;
        }
        self.predict_batch_body(x, n, out, out_stride, out_offset, false)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn predict_batch_avx2(
        &self,
        x: &[f64],
        n: usize,
        out: &mut [f64],
        out_stride: usize,
        out_offset: usize,
    ) {
        self.predict_batch_body(x, n, out, out_stride, out_offset, true)
    }

    #[inline(always)]
    fn predict_batch_body(
        &self,
        x: &[f64],
        n: usize,
        out: &mut [f64],
        out_stride: usize,
        out_offset: usize,
        avx2: bool,
    ) {
        // Literal widths, so the inlined body adds each leaf with a fixed run of vector adds.
        let kp = self.padded_outputs;
        match kp {
            4 => self.predict_padded(x, n, out, out_stride, out_offset, avx2, 4),
            8 => self.predict_padded(x, n, out, out_stride, out_offset, avx2, 8),
            12 => self.predict_padded(x, n, out, out_stride, out_offset, avx2, 12),
            16 => self.predict_padded(x, n, out, out_stride, out_offset, avx2, 16),
            _ => self.predict_padded(x, n, out, out_stride, out_offset, avx2, kp),
        }
    }

    /// `kp` outputs a leaf (padded): the sums of a chunk of rows are kept in that layout, and
    /// copied out at the end of the chunk.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn predict_padded(
        &self,
        x: &[f64],
        n: usize,
        out: &mut [f64],
        out_stride: usize,
        out_offset: usize,
        avx2: bool,
        kp: usize,
    ) {
        let k = self.n_outputs;
        let q = self.quantise(x, n);
        let mut idx = [0u32; LANES];
        let mut start = vec![0.0f64; kp];
        start[..k].copy_from_slice(&self.base);
        let mut acc = vec![0.0f64; CHUNK * kp];
        // Rows in chunks, every tree over a chunk: the chunk's sums stay in cache while the
        // trees stream past, instead of the whole batch's sums once per tree.
        let mut c0 = 0;
        while c0 < n {
            let c1 = (c0 + CHUNK).min(n);
            for a in acc.chunks_exact_mut(kp) {
                a.copy_from_slice(&start);
            }
            for t in 0..self.depth.len() {
                let d = self.depth[t] as usize;
                let leaf_of = &self.leaf_index[self.leaf_offset[t]..self.leaf_offset[t] + (1 << d)];
                let mut r0 = c0;
                while r0 < c1 {
                    let m = LANES.min(c1 - r0);
                    self.descend(t, &q, r0, m, avx2, &mut idx);
                    for j in 0..m {
                        let leaf = leaf_of[idx[j] as usize + 1 - (1 << d)] as usize;
                        let lv = &self.padded_leaves[leaf * kp..(leaf + 1) * kp];
                        let row = r0 + j - c0;
                        let a = &mut acc[row * kp..(row + 1) * kp];
                        for (a, &l) in a.iter_mut().zip(lv) {
                            *a += f64::from(l);
                        }
                    }
                    r0 += m;
                }
            }
            for r in c0..c1 {
                out[r * out_stride + out_offset..r * out_stride + out_offset + k]
                    .copy_from_slice(&acc[(r - c0) * kp..(r - c0) * kp + k]);
            }
            c0 = c1;
        }
    }

    pub fn n_outputs(&self) -> usize {
        self.n_outputs
    }

    /// Nodes held once padded: internal ones and bottom positions.
    pub fn n_nodes(&self) -> usize {
        self.node.len() + self.leaf_index.len()
    }
}

#[allow(clippy::too_many_arguments)]
fn fill(
    m: &MultiGbdt,
    f: &mut CompiledForest,
    node: usize,
    pos: usize,
    level: usize,
    depth: usize,
    no: usize,
    lo: usize,
) {
    let nd = m.nodes[node];
    if level == depth {
        f.leaf_index[lo + pos + 1 - (1 << depth)] = nd.left;
        return;
    }
    if nd.feature == LEAF {
        // Padding: +∞ sends every row left; both subtrees end in this leaf anyway.
        f.feature[no + pos] = 0;
        f.threshold[no + pos] = f64::INFINITY;
        fill(m, f, node, 2 * pos + 1, level + 1, depth, no, lo);
        fill(m, f, node, 2 * pos + 2, level + 1, depth, no, lo);
    } else {
        f.feature[no + pos] = nd.feature;
        f.threshold[no + pos] = nd.threshold;
        fill(
            m,
            f,
            nd.left as usize,
            2 * pos + 1,
            level + 1,
            depth,
            no,
            lo,
        );
        fill(
            m,
            f,
            nd.right as usize,
            2 * pos + 2,
            level + 1,
            depth,
            no,
            lo,
        );
    }
}

#[cfg(test)]
mod compiled_tests {
    use super::*;

    #[test]
    fn compiled_forest_predicts_what_the_trees_do() {
        // 3 and 8 outputs take the padded paths (4 and 8 wide), 17 the general one.
        for k in [3usize, 8, 17] {
            let mut s = 9u64;
            let mut rnd = || {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 53) as f64
            };
            let n = 3000;
            let mut x = Vec::new();
            let mut y = Vec::new();
            for _ in 0..n {
                let (a, b, c) = (rnd(), rnd(), rnd());
                x.extend([a, b, c]);
                for o in 0..k {
                    let w = o as f64;
                    y.push(match o % 3 {
                        0 => a * b + w,
                        1 => ((5.0 + w) * c).sin(),
                        _ => {
                            if a > 0.3 {
                                c
                            } else {
                                -b * w
                            }
                        }
                    });
                }
            }
            // Some NaN features: they go left in both layouts.
            x[5] = f64::NAN;
            let m = MultiGbdt::fit(
                &x,
                3,
                &y,
                k,
                &GbdtParams {
                    n_trees: 30,
                    max_depth: 6,
                    ..Default::default()
                },
            );
            let c = CompiledForest::try_new(&m).unwrap();
            let stride = k + 2;
            let mut batch = vec![0.0; n * stride];
            c.predict_batch(&x, n, &mut batch, stride, 2);
            let mut one = vec![0.0; k];
            for r in 0..n {
                m.predict_into(&x[r * 3..(r + 1) * 3], &mut one);
                assert_eq!(
                    &batch[r * stride + 2..r * stride + 2 + k],
                    &one[..],
                    "k {k} row {r}"
                );
            }
        }
    }
}

#[cfg(test)]
mod check_tests {
    use super::*;

    fn leaf() -> Node {
        Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
        }
    }

    fn one_split(feature: u32, threshold: f64, n_features: usize) -> MultiGbdt {
        MultiGbdt {
            n_features,
            n_outputs: 1,
            base: vec![0.0],
            nodes: vec![
                Node {
                    feature,
                    threshold,
                    left: 1,
                    right: 2,
                },
                leaf(),
                leaf(),
            ],
            roots: vec![0],
            leaves: vec![1.0],
        }
    }

    /// The reported case: a feature far past the input behind an infinite threshold (which
    /// `new` never looked up) sent the AVX2 gathers out of bounds on any block of 16 rows.
    #[test]
    fn a_feature_past_the_input_is_refused_before_any_walk() {
        let m = one_split(40000, f64::INFINITY, 1);
        let e = CompiledForest::try_new(&m).unwrap_err();
        assert!(e.contains("splits on feature 40000 of 1"), "{e}");
        assert!(m.check().is_err());
        // The same tree on a feature that exists compiles and predicts over full blocks.
        let ok = one_split(0, 0.5, 1);
        let c = CompiledForest::try_new(&ok).unwrap();
        let x: Vec<f64> = (0..40).map(|i| i as f64 / 40.0).collect();
        let mut out = vec![f64::NAN; 40];
        c.predict_batch(&x, 40, &mut out, 1, 0);
        assert!(out.iter().all(|v| *v == 1.0), "{out:?}");
    }

    #[test]
    fn trees_that_are_not_trees_are_refused() {
        // A cycle: recursion over it overflowed the stack.
        let mut cyclic = one_split(0, 0.5, 1);
        cyclic.nodes[0].left = 0;
        assert!(cyclic
            .check()
            .unwrap_err()
            .contains("node 0 is reached twice"));
        // Two trees sharing a node.
        let mut shared = one_split(0, 0.5, 1);
        shared.roots.push(1);
        assert!(shared.check().unwrap_err().contains("reached twice"));
        let mut far_child = one_split(0, 0.5, 1);
        far_child.nodes[0].right = 99;
        assert!(far_child
            .check()
            .unwrap_err()
            .contains("node 99 is past the 3 nodes"));
        let mut far_leaf = one_split(0, 0.5, 1);
        far_leaf.nodes[2].left = 5;
        assert!(far_leaf.check().unwrap_err().contains("names leaf 5 of 1"));
        let no_features = one_split(0, 0.5, 0);
        assert!(no_features.check().unwrap_err().contains("0 features"));
        let mut nan_leaf = one_split(0, 0.5, 1);
        nan_leaf.leaves[0] = f32::NAN;
        assert!(nan_leaf.check().unwrap_err().contains("non-finite"));
        // A chain deeper than the padded layout allows.
        let mut deep = MultiGbdt {
            n_features: 1,
            n_outputs: 1,
            base: vec![0.0],
            nodes: Vec::new(),
            roots: vec![0],
            leaves: vec![0.0],
        };
        for i in 0..=MAX_TREE_DEPTH as u32 {
            deep.nodes.push(Node {
                feature: 0,
                threshold: i as f64,
                left: 2 * i + 1,
                right: 2 * i + 2,
            });
            deep.nodes.push(leaf());
        }
        deep.nodes.push(leaf());
        let e = deep.check().unwrap_err();
        assert!(e.contains("deeper than 20"), "{e}");
        deep.nodes.truncate(2 * MAX_TREE_DEPTH);
        deep.nodes.push(leaf());
        assert_eq!(deep.check().unwrap(), vec![MAX_TREE_DEPTH]);
    }
}
