//! FlexZBoost (Izbicki & Lee 2017; RAIL's FlexZBoost): p(z|x) = Σ βⱼ(x) φⱼ(z) on a cosine
//! basis, the βⱼ regressed on the reference magnitude and adjacent colours by gradient-boosted
//! trees, then small bumps removed and the PDF sharpened (p^α), both tuned by CDE loss on a
//! held-out quarter; finally refit on every row.

use std::sync::OnceLock;

use datafusion::common::{plan_err, Result};
use serde::{Deserialize, Serialize};

use super::cde::cde_loss_term;
use super::gbdt::{
    padded_nodes, CompiledForest, GbdtParams, MultiGbdt, MAX_COMPILED_NODES, MAX_TREE_DEPTH,
};
use super::model::{EstimateEnv, Estimator, RowExtra, TrainingSet};
use super::options::{Domain, OptionReader};
use super::photometry::mag_and_colours;
use super::rng::permutation;

#[derive(Debug, Serialize, Deserialize)]
pub struct FlexZBoostModel {
    pub n_basis: usize,
    /// Basis terms kept: those that lower the CDE loss on the held-out part.
    pub best_basis: Vec<usize>,
    pub bump_threshold: f64,
    pub sharpen_alpha: f64,
    pub params: GbdtParams,
    /// Boosters, each predicting a consecutive run of basis coefficients (one booster for all
    /// of them by default: shared trees are much cheaper to evaluate).
    pub gbdt: Vec<MultiGbdt>,
    pub validation_cde_loss: f64,
    /// Basis values on the unit grid for the kept terms, `nz × best_basis.len()`, with the
    /// `nz` they were made for; rebuilt on load.
    #[serde(skip)]
    basis_on_grid: OnceLock<(usize, Vec<f64>)>,
    /// The boosters laid out for batch prediction; None when one fails its check (a model
    /// that skipped [`FlexZBoostModel::check`]), and then nothing is estimated.
    #[serde(skip)]
    compiled: OnceLock<Option<Vec<CompiledForest>>>,
}

impl Clone for FlexZBoostModel {
    fn clone(&self) -> Self {
        FlexZBoostModel {
            n_basis: self.n_basis,
            best_basis: self.best_basis.clone(),
            bump_threshold: self.bump_threshold,
            sharpen_alpha: self.sharpen_alpha,
            params: self.params.clone(),
            gbdt: self.gbdt.clone(),
            validation_cde_loss: self.validation_cde_loss,
            basis_on_grid: OnceLock::new(),
            compiled: OnceLock::new(),
        }
    }
}

impl PartialEq for FlexZBoostModel {
    fn eq(&self, o: &Self) -> bool {
        self.n_basis == o.n_basis
            && self.best_basis == o.best_basis
            && self.bump_threshold == o.bump_threshold
            && self.sharpen_alpha == o.sharpen_alpha
            && self.gbdt == o.gbdt
    }
}

/// Most basis terms a model may have.
const MAX_BASIS: usize = 200;
/// Bump thresholds are areas of a unit-mean density on [0, 1].
const BUMP_DOMAIN: Domain = Domain::closed(0.0, 1.0);
/// Sharpening exponents: p^α of a density stays finite for these.
const SHARPEN_DOMAIN: Domain = Domain::above_to(0.0, 10.0);
/// Most trees per booster, and most tuning steps for bumps and sharpening.
const MAX_TREES: usize = 10_000;
const MAX_TUNING_STEPS: usize = 1_000;

/// The cosine basis on [0, 1]: 1, √2 cos(πu), √2 cos(2πu), …
#[inline]
fn cosine(j: usize, u: f64) -> f64 {
    if j == 0 {
        1.0
    } else {
        std::f64::consts::SQRT_2 * crate::math::cos(std::f64::consts::PI * j as f64 * u)
    }
}

/// Independent partial sums: a single running sum is one long chain of dependent adds,
/// which the compiler may not reorder into vector code.
const LANES: usize = 8;

/// Σ v and the count of v over the values v > `c`, in lanes of plain selects (no branch per
/// value).
#[inline(always)]
fn sum_count_above(d: &[f64], c: f64) -> (f64, f64) {
    let mut sum = [0.0; LANES];
    // Integer counts: a compare mask subtracted as -1 vectorises; a float select did not.
    let mut count = [0u64; LANES];
    let mut chunks = d.chunks_exact(LANES);
    for x in &mut chunks {
        for l in 0..LANES {
            let above = x[l] > c;
            sum[l] += if above { x[l] } else { 0.0 };
            count[l] += u64::from(above);
        }
    }
    let (mut s, mut m) = (0.0, 0u64);
    for &v in chunks.remainder() {
        if v > c {
            s += v;
            m += 1;
        }
    }
    (
        sum.iter().sum::<f64>() + s,
        (count.iter().sum::<u64>() + m) as f64,
    )
}

/// Makes a density on the unit grid non-negative with mean 1 by subtracting the constant that
/// achieves it (flexcode's `normalize`, solved exactly instead of by bisection).
#[inline(always)]
pub fn normalise_unit(d: &mut [f64]) {
    let n = d.len() as f64;
    let (pos, _) = sum_count_above(d, 0.0);
    if pos == 0.0 {
        d.iter_mut().for_each(|v| *v = 1.0);
        return;
    }
    if pos < n {
        let s = n / pos;
        d.iter_mut()
            .for_each(|v| *v = if *v < 0.0 { 0.0 } else { *v * s });
        return;
    }
    // Find c ≥ 0 with Σ max(d − c, 0) = n: over the values above c the sum is linear in c.
    let mut c = 0.0;
    loop {
        let (s, m) = sum_count_above(d, c);
        let next = (s - n) / m;
        if next <= c + 1e-15 * c.abs().max(1.0) {
            c = next.max(c);
            break;
        }
        c = next;
    }
    d.iter_mut().for_each(|v| *v = (*v - c).max(0.0));
}

/// Zeroes connected positive stretches with area (on the unit grid) below `delta`, then
/// renormalises (flexcode's `remove_bumps`).
#[inline(always)]
pub fn remove_bumps(d: &mut [f64], delta: f64) {
    let n = d.len();
    let bin = 1.0 / n as f64;
    let mut i = 0;
    while i < n {
        // Runs of zeros dominate a sharp PDF: step over them a block at a time.
        while i + LANES <= n && d[i..i + LANES].iter().all(|&v| v <= 0.0) {
            d[i..i + LANES].fill(0.0);
            i += LANES;
        }
        // Anything not above zero, NaN included: a NaN that neither loop took would never
        // be stepped past.
        while i < n && d[i].partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            d[i] = 0.0;
            i += 1;
        }
        let start = i;
        let mut area = 0.0;
        while i < n && d[i] > 0.0 {
            area += d[i] * bin;
            i += 1;
        }
        if area < delta {
            d[start..i].iter_mut().for_each(|v| *v = 0.0);
        }
    }
    normalise_unit(d);
}

/// Raises to the power `alpha` and renormalises.
#[inline(always)]
pub fn sharpen(d: &mut [f64], alpha: f64) {
    if alpha != 1.0 {
        // Most of a PDF is zero after bump removal, and 0^α = 0.
        d.iter_mut()
            .filter(|v| **v > 0.0)
            .for_each(|v| *v = crate::math::pow(*v, alpha));
    }
    normalise_unit(d);
}

impl FlexZBoostModel {
    /// The kept basis functions on a grid of `nz` points: cached for the first `nz` asked
    /// for (the model's grid), computed afresh for any other.
    fn basis(&self, nz: usize) -> std::borrow::Cow<'_, [f64]> {
        let (cached_nz, table) = self
            .basis_on_grid
            .get_or_init(|| (nz, basis_table(&self.best_basis, nz)));
        if *cached_nz == nz {
            std::borrow::Cow::Borrowed(table)
        } else {
            std::borrow::Cow::Owned(basis_table(&self.best_basis, nz))
        }
    }

    fn compiled(&self) -> Option<&[CompiledForest]> {
        self.compiled
            .get_or_init(|| {
                self.gbdt
                    .iter()
                    .map(|g| CompiledForest::try_new(g).ok())
                    .collect()
            })
            .as_deref()
    }

    /// Everything estimation relies on, for a model decoded from bytes or just informed:
    /// the basis indices, the post-processing constants, and boosters that together predict
    /// every coefficient from the `nbands` features and compile (which checks their trees).
    pub fn check(&self, nbands: usize) -> std::result::Result<(), String> {
        if !(1..=MAX_BASIS).contains(&self.n_basis) {
            return Err(format!(
                "flexzboost: {} basis terms (1 to {MAX_BASIS})",
                self.n_basis
            ));
        }
        if self.best_basis.is_empty()
            || self.best_basis.windows(2).any(|w| w[0] >= w[1])
            || self.best_basis.iter().any(|&j| j >= self.n_basis)
        {
            return Err(format!(
                "flexzboost: kept basis terms {:?} are not increasing indices below {}",
                self.best_basis, self.n_basis
            ));
        }
        if !BUMP_DOMAIN.contains(self.bump_threshold) {
            return Err(format!(
                "flexzboost: bump threshold {} is not {BUMP_DOMAIN}",
                self.bump_threshold
            ));
        }
        if !SHARPEN_DOMAIN.contains(self.sharpen_alpha) {
            return Err(format!(
                "flexzboost: sharpening exponent {} is not {SHARPEN_DOMAIN}",
                self.sharpen_alpha
            ));
        }
        let outputs: usize = self.gbdt.iter().map(|g| g.n_outputs).sum();
        if self.gbdt.is_empty() || outputs != self.n_basis {
            return Err(format!(
                "flexzboost: {} boosters predict {outputs} coefficients for {} basis terms",
                self.gbdt.len(),
                self.n_basis
            ));
        }
        let mut total = 0usize;
        let mut compiled = Vec::with_capacity(self.gbdt.len());
        for (b, g) in self.gbdt.iter().enumerate() {
            if g.n_features != nbands {
                return Err(format!(
                    "flexzboost: booster {b} takes {} features; the model's {nbands} bands give {nbands}",
                    g.n_features
                ));
            }
            let c =
                CompiledForest::try_new(g).map_err(|e| format!("flexzboost: booster {b}: {e}"))?;
            total = total.saturating_add(c.n_nodes());
            compiled.push(c);
        }
        if total > MAX_COMPILED_NODES {
            return Err(format!(
                "flexzboost: the boosters take {total} nodes once padded for prediction (at most {MAX_COMPILED_NODES})"
            ));
        }
        // The forests are built; keep them rather than build them again on the first batch.
        let _ = self.compiled.set(Some(compiled));
        Ok(())
    }

    /// Density on the unit grid from the basis coefficients (all n_basis of them); `table`
    /// holds the kept basis functions on the grid, one row each.
    #[inline(always)]
    ///
    /// Grid points go in blocks of 16 whose sums stay in registers while every basis
    /// function is added, in basis order as a row-by-row pass would.
    fn density(coefs: &[f64], best: &[usize], table: &[f64], out: &mut [f64]) {
        const G: usize = 16;
        let nz = out.len();
        let mut g0 = 0;
        while g0 + G <= nz {
            let mut acc = [0.0; G];
            for (jj, &j) in best.iter().enumerate() {
                let c = coefs[j];
                let row = &table[jj * nz + g0..jj * nz + g0 + G];
                for l in 0..G {
                    acc[l] += c * row[l];
                }
            }
            out[g0..g0 + G].copy_from_slice(&acc);
            g0 += G;
        }
        for (g, o) in out.iter_mut().enumerate().skip(g0) {
            let mut acc = 0.0;
            for (jj, &j) in best.iter().enumerate() {
                acc += coefs[j] * table[jj * nz + g];
            }
            *o = acc;
        }
    }

    pub fn describe(&self) -> Vec<(String, String)> {
        vec![
            ("n_basis".into(), self.n_basis.to_string()),
            ("basis_kept".into(), self.best_basis.len().to_string()),
            (
                "bump_threshold".into(),
                format!("{:.4}", self.bump_threshold),
            ),
            ("sharpen_alpha".into(), format!("{:.4}", self.sharpen_alpha)),
            ("n_trees".into(), self.params.n_trees.to_string()),
            ("max_depth".into(), self.params.max_depth.to_string()),
            (
                "learning_rate".into(),
                self.params.learning_rate.to_string(),
            ),
            (
                "validation_cde_loss".into(),
                format!("{:.5}", self.validation_cde_loss),
            ),
        ]
    }
}

/// Fits one booster per run of `group` consecutive outputs.
fn fit_groups(
    x: &[f64],
    nf: usize,
    y: &[f64],
    k: usize,
    group: usize,
    p: &GbdtParams,
) -> Vec<MultiGbdt> {
    let n = y.len().checked_div(k).unwrap_or(0);
    (0..k)
        .step_by(group)
        .map(|start| {
            let end = (start + group).min(k);
            let w = end - start;
            let ys: Vec<f64> = (0..n)
                .flat_map(|i| y[i * k + start..i * k + end].iter().copied())
                .collect();
            MultiGbdt::fit(x, nf, &ys, w, p)
        })
        .collect()
}

#[inline]
fn predict_groups(boosters: &[MultiGbdt], x: &[f64], out: &mut [f64]) {
    let mut start = 0;
    for b in boosters {
        b.predict_into(x, &mut out[start..start + b.n_outputs]);
        start += b.n_outputs;
    }
}

/// The kept basis functions on the unit grid, `[term][grid point]`.
fn basis_table(best: &[usize], nz: usize) -> Vec<f64> {
    let mut t = Vec::with_capacity(nz * best.len());
    for &j in best {
        for g in 0..nz {
            t.push(cosine(j, g as f64 / (nz - 1) as f64));
        }
    }
    t
}

fn linspace(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if n <= 1 {
        return vec![lo];
    }
    // Clamped: rounding must not carry the last value past `hi`, out of the option's domain.
    (0..n)
        .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64).min(hi))
        .collect()
}

#[derive(Default)]
pub struct FlexScratch {
    limited: Vec<f64>,
    feat: Vec<f64>,
    /// Basis coefficients of every row of the batch, `n × n_basis`.
    coefs: Vec<f64>,
}

impl Estimator for FlexZBoostModel {
    type Scratch = FlexScratch;

    fn inform(training: &TrainingSet, env: &EstimateEnv, o: &OptionReader) -> Result<Self> {
        let train_frac = o.f64_in("trainfrac", 0.75, Domain::open(0.0, 1.0))?;
        let seed = o.u64("seed", 1138)?;
        let n_basis = o.usize_in("max_basis", 35, 1, MAX_BASIS)?;
        let basis_system = o.string("basis_system", "cosine");
        let (bumpmin, bumpmax, nbump) = (
            o.f64_in("bumpmin", 0.02, BUMP_DOMAIN)?,
            o.f64_in("bumpmax", 0.35, BUMP_DOMAIN)?,
            o.usize_in("nbump", 20, 1, MAX_TUNING_STEPS)?,
        );
        let (sharpmin, sharpmax, nsharp) = (
            o.f64_in("sharpmin", 0.7, SHARPEN_DOMAIN)?,
            o.f64_in("sharpmax", 2.1, SHARPEN_DOMAIN)?,
            o.usize_in("nsharp", 15, 1, MAX_TUNING_STEPS)?,
        );
        if bumpmin > bumpmax || sharpmin > sharpmax {
            return plan_err!(
                "flexzboost: need bumpmin <= bumpmax and sharpmin <= sharpmax, got bumpmin {bumpmin}, bumpmax {bumpmax}, sharpmin {sharpmin}, sharpmax {sharpmax}"
            );
        }
        let retrain_full = o.bool("retrain_full", true)?;
        let group = o.usize_in("basis_per_booster", 7.min(n_basis), 1, n_basis)?;
        // Measured on DC2 (see the issue note): 5 boosters of 7 coefficients, 150 trees at
        // rate 0.2 on 64 bins match one XGBoost model per coefficient (RAIL) in accuracy at a
        // fraction of the cost.
        let d = GbdtParams {
            n_trees: 150,
            learning_rate: 0.2,
            max_bins: 64,
            ..GbdtParams::default()
        };
        let params = GbdtParams {
            n_trees: o.usize_in("n_trees", d.n_trees, 1, MAX_TREES)?,
            max_depth: o.usize_in("max_depth", d.max_depth, 1, MAX_TREE_DEPTH)?,
            learning_rate: o.f64_in(
                "learning_rate",
                d.learning_rate,
                Domain::above_to(0.0, 1.0),
            )?,
            // cnt + lambda divides every leaf: lambda >= 0 keeps it >= 1.
            lambda: o.f64_in("lambda", d.lambda, Domain::closed(0.0, 1e12))?,
            min_child_rows: o.usize_in("min_child_rows", d.min_child_rows, 1, usize::MAX)?,
            max_bins: o.usize_in("max_bins", d.max_bins, 2, 256)?,
        };
        if basis_system != "cosine" {
            return plan_err!(
                "flexzboost: basis_system '{basis_system}' is not supported (only 'cosine')"
            );
        }
        // Prediction pads every tree to 2^depth: refuse before training what could not be
        // laid out afterwards.
        let boosters = n_basis.div_ceil(group);
        let padded = padded_nodes(params.max_depth)
            .saturating_mul(params.n_trees)
            .saturating_mul(boosters);
        if padded > MAX_COMPILED_NODES {
            return plan_err!(
                "flexzboost: max_depth {} with n_trees {} and {boosters} boosters (max_basis {n_basis} / basis_per_booster {group}) would take {padded} tree nodes once padded for prediction (at most {MAX_COMPILED_NODES}); lower max_depth or n_trees",
                params.max_depth,
                params.n_trees
            );
        }
        let n = training.photometry.n;
        let n_fit = (n as f64 * train_frac).round() as usize;
        if n_fit < 2 || n - n_fit < 1 {
            return plan_err!("flexzboost: the training set has {n} rows; it needs at least 2 to fit and 1 to tune on");
        }
        let grid = env.grid;
        let cfg = env.photometry;
        let nb = cfg.nbands();
        let mut limited = vec![0.0; nb];
        let mut feat = Vec::new();
        let mut x = Vec::with_capacity(n * nb);
        for i in 0..n {
            cfg.limited_mags(training.photometry.mags(i), &mut limited);
            mag_and_colours(&limited, cfg.ref_band, false, &mut feat);
            x.extend_from_slice(&feat);
        }
        let nf = feat.len();
        let u = |z: f64| (z - grid.zmin) / (grid.zmax - grid.zmin);
        let mut y = Vec::with_capacity(n * n_basis);
        for &z in &training.redshift {
            for j in 0..n_basis {
                y.push(cosine(j, u(z)));
            }
        }
        let perm = permutation(n, seed);
        let take = |idx: &[usize], src: &[f64], w: usize| -> Vec<f64> {
            idx.iter()
                .flat_map(|&i| src[i * w..(i + 1) * w].iter().copied())
                .collect()
        };
        let (fit_idx, val_idx) = perm.split_at(n_fit);
        let gbdt = fit_groups(
            &take(fit_idx, &x, nf),
            nf,
            &take(fit_idx, &y, n_basis),
            n_basis,
            group,
            &params,
        );

        // Tune on the held-out rows.
        let nv = val_idx.len();
        let mut coefs = vec![0.0; nv * n_basis];
        for (r, &i) in val_idx.iter().enumerate() {
            predict_groups(
                &gbdt,
                &x[i * nf..(i + 1) * nf],
                &mut coefs[r * n_basis..(r + 1) * n_basis],
            );
        }
        let best_basis: Vec<usize> = (0..n_basis)
            .filter(|&j| {
                let (mut t1, mut t2) = (0.0, 0.0);
                for (r, &i) in val_idx.iter().enumerate() {
                    let c = coefs[r * n_basis + j];
                    t1 += c * c;
                    t2 += c * y[i * n_basis + j];
                }
                (t1 - 2.0 * t2) / (nv as f64) < 0.0
            })
            .collect();
        if best_basis.is_empty() {
            return plan_err!(
                "flexzboost: no basis term improves on a flat PDF for this training set"
            );
        }
        let table = basis_table(&best_basis, grid.nz);
        let mut base = vec![0.0; nv * grid.nz];
        for r in 0..nv {
            let d = &mut base[r * grid.nz..(r + 1) * grid.nz];
            FlexZBoostModel::density(
                &coefs[r * n_basis..(r + 1) * n_basis],
                &best_basis,
                &table,
                d,
            );
            normalise_unit(d);
        }
        let z_val: Vec<f64> = val_idx.iter().map(|&i| training.redshift[i]).collect();
        let loss_of = |post: &dyn Fn(&mut [f64])| -> f64 {
            let mut tmp = vec![0.0; grid.nz];
            let mut total = 0.0;
            for r in 0..nv {
                tmp.copy_from_slice(&base[r * grid.nz..(r + 1) * grid.nz]);
                post(&mut tmp);
                let scale = 1.0 / (grid.zmax - grid.zmin);
                tmp.iter_mut().for_each(|v| *v *= scale);
                total += cde_loss_term(&tmp, grid, z_val[r]);
            }
            total / nv as f64
        };
        let mut best_bump = (f64::INFINITY, bumpmin);
        for delta in linspace(bumpmin, bumpmax, nbump.max(1)) {
            let l = loss_of(&|d: &mut [f64]| remove_bumps(d, delta));
            if l < best_bump.0 {
                best_bump = (l, delta);
            }
        }
        let bump = best_bump.1;
        let mut best_sharp = (f64::INFINITY, sharpmin);
        for alpha in linspace(sharpmin, sharpmax, nsharp.max(1)) {
            let l = loss_of(&|d: &mut [f64]| {
                remove_bumps(d, bump);
                sharpen(d, alpha);
            });
            if l < best_sharp.0 {
                best_sharp = (l, alpha);
            }
        }
        let gbdt = if retrain_full {
            fit_groups(&x, nf, &y, n_basis, group, &params)
        } else {
            gbdt
        };
        Ok(FlexZBoostModel {
            n_basis,
            best_basis,
            bump_threshold: bump,
            sharpen_alpha: best_sharp.1,
            params,
            gbdt,
            validation_cde_loss: best_sharp.0,
            basis_on_grid: OnceLock::new(),
            compiled: OnceLock::new(),
        })
    }

    fn begin_batch(
        &self,
        env: &EstimateEnv,
        phot: &super::photometry::Photometry,
        s: &mut FlexScratch,
    ) {
        let cfg = env.photometry;
        let nf = self.gbdt.first().map(|g| g.n_features).unwrap_or(0);
        let mut x = Vec::with_capacity(phot.n * nf);
        s.limited.resize(phot.nbands, 0.0);
        for i in 0..phot.n {
            cfg.limited_mags(phot.mags(i), &mut s.limited);
            mag_and_colours(&s.limited, cfg.ref_band, false, &mut s.feat);
            if s.feat.len() != nf {
                // A model whose band count does not match cannot estimate: NaN marks it.
                x.extend(std::iter::repeat_n(f64::NAN, nf));
            } else {
                x.extend_from_slice(&s.feat);
            }
        }
        s.coefs.clear();
        s.coefs.resize(phot.n * self.n_basis, 0.0);
        let Some(compiled) = self.compiled() else {
            // Boosters that do not compile predict nothing: every row goes without an estimate.
            s.coefs.iter_mut().for_each(|c| *c = f64::NAN);
            return;
        };
        let mut start = 0;
        for b in compiled {
            b.predict_batch(&x, phot.n, &mut s.coefs, self.n_basis, start);
            start += b.n_outputs();
        }
        if nf > 0 {
            for i in 0..phot.n {
                if x[i * nf].is_nan() {
                    s.coefs[i * self.n_basis] = f64::NAN;
                }
            }
        }
    }

    fn estimate_row(
        &self,
        _env: &EstimateEnv,
        row: usize,
        _mags: &[f64],
        _errs: &[f64],
        pdf: &mut [f64],
        s: &mut FlexScratch,
        _extra: &mut RowExtra,
    ) -> bool {
        let Some(coefs) = s.coefs.get(row * self.n_basis..(row + 1) * self.n_basis) else {
            return false;
        };
        if coefs.iter().any(|c| c.is_nan()) {
            return false;
        }
        post_process(self, coefs, &self.basis(pdf.len()), pdf);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalise_unit_matches_the_definition() {
        let mut d: Vec<f64> = (0..301)
            .map(|i| ((i as f64) / 30.0).sin() * 3.0 + 0.5)
            .collect();
        normalise_unit(&mut d);
        let mean: f64 = d.iter().sum::<f64>() / d.len() as f64;
        assert!((mean - 1.0).abs() < 1e-12, "{mean}");
        assert!(d.iter().all(|v| *v >= 0.0));
        let mut small = vec![0.5, -1.0, 0.25, 0.25];
        normalise_unit(&mut small);
        assert_eq!(small, vec![2.0, 0.0, 1.0, 1.0]);
    }

    /// The run walk against flexcode's definition, point by point, on PDFs with runs of every
    /// length, touching both ends.
    #[test]
    fn remove_bumps_matches_the_definition() {
        let mut rng = crate::photoz::rng::SplitMix64::new(3);
        for case in 0..200 {
            let n = [301, 100, 9, 17][case % 4];
            let d: Vec<f64> = (0..n)
                .map(|_| {
                    let r = rng.uniform();
                    if r < 0.45 {
                        0.0
                    } else {
                        r * 4.0
                    }
                })
                .collect();
            let delta = 0.01 + 0.002 * (case % 7) as f64;
            let mut want = d.clone();
            let bin = 1.0 / n as f64;
            let (mut left, mut area) = (0, 0.0);
            for right in 0..n {
                if want[right] <= 0.0 {
                    if area < delta {
                        want[left..=right].iter_mut().for_each(|v| *v = 0.0);
                    }
                    left = right + 1;
                    area = 0.0;
                } else {
                    area += want[right] * bin;
                }
            }
            if area < delta {
                want[left..].iter_mut().for_each(|v| *v = 0.0);
            }
            normalise_unit(&mut want);
            let mut got = d;
            remove_bumps(&mut got, delta);
            assert_eq!(got, want, "case {case}");
        }
    }

    #[test]
    fn small_bumps_go() {
        let mut d = vec![0.0; 100];
        for v in &mut d[10..60] {
            *v = 1.0;
        }
        d[80] = 0.5; // area 0.005
        remove_bumps(&mut d, 0.02);
        assert_eq!(d[80], 0.0);
        let mean: f64 = d.iter().sum::<f64>() / 100.0;
        assert!((mean - 1.0).abs() < 1e-12);
    }
}

#[inline(always)]
fn post_process_impl(m: &FlexZBoostModel, coefs: &[f64], table: &[f64], pdf: &mut [f64]) {
    FlexZBoostModel::density(coefs, &m.best_basis, table, pdf);
    normalise_unit(pdf);
    remove_bumps(pdf, m.bump_threshold);
    sharpen(pdf, m.sharpen_alpha);
}

crate::avx2_dispatch!(
    fn post_process(m: &FlexZBoostModel, coefs: &[f64], table: &[f64], pdf: &mut [f64]) -> () => post_process_impl
);
