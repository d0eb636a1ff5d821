//! k-NN as RAIL's KNearNeigh: the reference magnitude and adjacent colours in a k-d tree; the
//! PDF is a mixture of Gaussians at the k nearest training redshifts, weighted by inverse
//! distance, with one common width. k and the width are chosen by CDE loss on a held-out
//! quarter of the training set; the tree is then rebuilt on every row.

use std::sync::OnceLock;

use datafusion::common::{plan_err, Result};
use serde::{Deserialize, Serialize};

use super::cde::cde_loss_term;
use super::gauss::add_gaussian;
use super::grid::ZGrid;
use super::model::{EstimateEnv, Estimator, RowExtra, TrainingSet};
use super::options::{Domain, OptionReader};
use super::photometry::{mag_and_colours, Photometry};
use super::rng::permutation;
use crate::xmatch::KdTree;

/// RAIL adds this to distances so an exact duplicate does not divide by zero.
const TEENY: f64 = 1e-15;

/// Most neighbours a model may use: the batch keeps `k` of them per row.
const MAX_K: usize = 1_000;
/// Gaussian widths in redshift.
const SIGMA_DOMAIN: Domain = Domain::above_to(0.0, 10.0);
/// Weights of the reference magnitude against the colours.
const WEIGHT_DOMAIN: Domain = Domain::closed(0.0, 1e6);

#[derive(Debug, Serialize, Deserialize)]
pub struct KnnModel {
    pub dims: usize,
    /// Training features, row-major (`dims` per row).
    pub features: Vec<f64>,
    pub redshift: Vec<f64>,
    pub k: usize,
    pub sigma: f64,
    pub only_colors: bool,
    /// Weight of the reference magnitude against the colours in the distance (chosen with k
    /// and σ; 0 is RAIL's colours-only space).
    #[serde(default = "one")]
    pub mag_weight: f64,
    /// CDE loss of the chosen (k, sigma) on the held-out part.
    pub validation_cde_loss: f64,
    #[serde(skip)]
    /// Boxed: a tree of ten axes would make every model value large.
    tree: OnceLock<Box<AnyTree>>,
}

impl Clone for KnnModel {
    fn clone(&self) -> Self {
        KnnModel {
            dims: self.dims,
            features: self.features.clone(),
            redshift: self.redshift.clone(),
            k: self.k,
            sigma: self.sigma,
            only_colors: self.only_colors,
            mag_weight: self.mag_weight,
            validation_cde_loss: self.validation_cde_loss,
            tree: OnceLock::new(),
        }
    }
}

fn one() -> f64 {
    1.0
}

impl PartialEq for KnnModel {
    fn eq(&self, o: &Self) -> bool {
        self.dims == o.dims
            && self.features == o.features
            && self.redshift == o.redshift
            && self.k == o.k
            && self.sigma == o.sigma
            && self.only_colors == o.only_colors
            && self.mag_weight == o.mag_weight
    }
}

/// A k-d tree whose dimension is only known at run time (bands are configurable).
#[derive(Debug)]
enum AnyTree {
    D2(KdTree<2>),
    D3(KdTree<3>),
    D4(KdTree<4>),
    D5(KdTree<5>),
    D6(KdTree<6>),
    D7(KdTree<7>),
    D8(KdTree<8>),
    D9(KdTree<9>),
    D10(KdTree<10>),
}

macro_rules! tree_dispatch {
    ($($v:ident => $d:literal),*) => {
        impl AnyTree {
            fn build(dims: usize, flat: &[f64]) -> Result<Self> {
                match dims {
                    $($d => Ok(AnyTree::$v(KdTree::build(
                        flat.chunks_exact($d).map(|c| {
                            let mut a = [0.0; $d];
                            a.copy_from_slice(c);
                            a
                        }).collect(),
                    ))),)*
                    _ => plan_err!("knn: {dims} features are not supported (2 to 10)"),
                }
            }

            fn query(&self, q: &[f64], k: usize, out: &mut Vec<(u32, f64)>) {
                self.query_seeded(q, k, &[], out)
            }

            fn query_seeded(&self, q: &[f64], k: usize, seeds: &[u32], out: &mut Vec<(u32, f64)>) {
                match self {
                    $(AnyTree::$v(t) => {
                        let mut a = [0.0; $d];
                        a.copy_from_slice(&q[..$d]);
                        t.knn_seeded(&a, k, f64::INFINITY, seeds, out)
                    })*
                }
            }

            fn leaf_of(&self, q: &[f64]) -> u32 {
                match self {
                    $(AnyTree::$v(t) => {
                        let mut a = [0.0; $d];
                        a.copy_from_slice(&q[..$d]);
                        t.leaf_of(&a)
                    })*
                }
            }
        }
    };
}
tree_dispatch!(D2 => 2, D3 => 3, D4 => 4, D5 => 5, D6 => 6, D7 => 7, D8 => 8, D9 => 9, D10 => 10);

/// Per-thread buffers for estimation, and the neighbours of every row of the batch.
#[derive(Default)]
pub struct KnnScratch {
    limited: Vec<f64>,
    feat: Vec<f64>,
    nn: Vec<(u32, f64)>,
    /// Features of the batch's rows, `dims` each (NaN-free only where `has_features`).
    batch_features: Vec<f64>,
    has_features: Vec<bool>,
    /// (leaf, row) of each row with features, sorted.
    order: Vec<(u32, u32)>,
    /// Up to `k` neighbours per row, `k` slots each; `found[row]` of them are filled.
    neighbours: Vec<(u32, f64)>,
    found: Vec<u32>,
}

impl KnnModel {
    /// Everything estimation relies on, for a model decoded from bytes or just informed:
    /// the feature space matches the model's `nbands` bands and the tree's dimensions, the
    /// feature table is one row per training redshift, all finite, and k and σ are usable.
    pub fn check(&self, nbands: usize) -> std::result::Result<(), String> {
        let want = if self.only_colors {
            nbands.saturating_sub(1)
        } else {
            nbands
        };
        if self.dims != want || !(2..=10).contains(&self.dims) {
            return Err(format!(
                "knn: {} feature dimensions, but {nbands} bands{} give {want} (2 to 10 are supported)",
                self.dims,
                if self.only_colors { " (colours only)" } else { "" }
            ));
        }
        let n = self.redshift.len();
        if n == 0 || n > u32::MAX as usize || self.features.len() != n.saturating_mul(self.dims) {
            return Err(format!(
                "knn: {} feature values for {n} training redshifts of {} dimensions",
                self.features.len(),
                self.dims
            ));
        }
        if !(1..=MAX_K.min(n)).contains(&self.k) {
            return Err(format!(
                "knn: k = {} neighbours with {n} training rows (1 to {} possible)",
                self.k,
                MAX_K.min(n)
            ));
        }
        if !SIGMA_DOMAIN.contains(self.sigma) || !WEIGHT_DOMAIN.contains(self.mag_weight) {
            return Err(format!(
                "knn: sigma {} must be {SIGMA_DOMAIN} and mag_weight {} {WEIGHT_DOMAIN}",
                self.sigma, self.mag_weight
            ));
        }
        if self
            .features
            .iter()
            .chain(&self.redshift)
            .any(|v| !v.is_finite())
        {
            return Err("knn: a training feature or redshift is not finite".into());
        }
        Ok(())
    }

    fn tree(&self) -> &AnyTree {
        self.tree.get_or_init(|| {
            // Validated at inform time; a model read from disk has the same shape.
            Box::new(
                AnyTree::build(self.dims, &self.features)
                    .unwrap_or(AnyTree::D2(KdTree::build(Vec::new()))),
            )
        })
    }

    /// Mixture PDF of the neighbours `nn` (ids into `redshift`, squared distances).
    fn mixture(
        redshift: &[f64],
        nn: &[(u32, f64)],
        k: usize,
        sigma: f64,
        grid: &ZGrid,
        pdf: &mut [f64],
    ) {
        pdf.iter_mut().for_each(|p| *p = 0.0);
        let nn = &nn[..k.min(nn.len())];
        let wsum: f64 = nn.iter().map(|(_, d2)| 1.0 / (d2.sqrt() + TEENY)).sum();
        for &(id, d2) in nn {
            let w = 1.0 / (d2.sqrt() + TEENY) / wsum;
            add_gaussian(pdf, grid, redshift[id as usize], sigma, w);
        }
    }
}

fn features_of(
    training: &TrainingSet,
    env: &EstimateEnv,
    only_colors: bool,
    mag_weight: f64,
) -> (usize, Vec<f64>) {
    let nb = env.photometry.nbands();
    let mut limited = vec![0.0; nb];
    let mut feat = Vec::new();
    let mut flat = Vec::with_capacity(training.photometry.n * nb);
    for i in 0..training.photometry.n {
        env.photometry
            .limited_mags(training.photometry.mags(i), &mut limited);
        mag_and_colours(&limited, env.photometry.ref_band, only_colors, &mut feat);
        if !only_colors {
            feat[0] *= mag_weight;
        }
        flat.extend_from_slice(&feat);
    }
    (feat.len().max(if only_colors { nb - 1 } else { nb }), flat)
}

impl Estimator for KnnModel {
    type Scratch = KnnScratch;

    fn inform(training: &TrainingSet, env: &EstimateEnv, o: &OptionReader) -> Result<Self> {
        let train_frac = o.f64_in("train_frac", 0.75, Domain::open(0.0, 1.0))?;
        let seed = o.u64("seed", 0)?;
        let sigma_min = o.f64_in("sigma_grid_min", 0.01, SIGMA_DOMAIN)?;
        let sigma_max = o.f64_in("sigma_grid_max", 0.075, SIGMA_DOMAIN)?;
        let n_sigma = o.usize_in("ngrid_sigma", 10, 1, 1_000)?;
        let k_min = o.usize_in("nneigh_min", 3, 1, MAX_K)?;
        let k_max = o.usize_in("nneigh_max", 7, 1, MAX_K)?;
        let only_colors = o.bool("only_colors", false)?;
        if k_max < k_min {
            return plan_err!("knn: need 1 <= nneigh_min <= nneigh_max, got {k_min} and {k_max}");
        }
        if sigma_min > sigma_max {
            return plan_err!(
                "knn: need sigma_grid_min <= sigma_grid_max, got {sigma_min} and {sigma_max}"
            );
        }
        let n = training.photometry.n;
        let n_fit = (n as f64 * train_frac).round() as usize;
        if n_fit < k_max || n - n_fit == 0 {
            return plan_err!(
                "knn: the training set has {n} rows; with train_frac {train_frac} that leaves {n_fit} to search and {} to tune on, \
                 but k-NN needs at least nneigh_max = {k_max} to search and 1 to tune on",
                n - n_fit
            );
        }
        let weights: Vec<f64> = if only_colors {
            vec![0.0]
        } else {
            match o.f64_list_in("mag_weights", WEIGHT_DOMAIN, 100)? {
                Some(w) => w,
                None => vec![0.0, 0.05, 0.1, 0.2, 0.35, 0.5, 1.0],
            }
        };
        let perm = permutation(n, seed);
        let grid = env.grid;
        let mut pdf = vec![0.0; grid.nz];
        let mut best = (f64::INFINITY, sigma_min, k_min, weights[0]);
        for &weight in &weights {
            // A zero weight is RAIL's colours-only space: drop the magnitude altogether.
            let colours_only = only_colors || weight == 0.0;
            let (dims, flat) = features_of(training, env, colours_only, weight);
            let row = |i: usize| &flat[i * dims..(i + 1) * dims];
            let mut fit_flat = Vec::with_capacity(n_fit * dims);
            let mut fit_z = Vec::with_capacity(n_fit);
            for &i in &perm[..n_fit] {
                fit_flat.extend_from_slice(row(i));
                fit_z.push(training.redshift[i]);
            }
            let tree = AnyTree::build(dims, &fit_flat)?;
            // Neighbours of each validation object, once, for the largest k.
            let mut neighbours = Vec::with_capacity(n - n_fit);
            let mut nn = Vec::new();
            for &i in &perm[n_fit..] {
                tree.query(row(i), k_max, &mut nn);
                neighbours.push((nn.clone(), training.redshift[i]));
            }
            for s in 0..n_sigma {
                let sigma = if n_sigma == 1 {
                    sigma_min
                } else {
                    sigma_min + (sigma_max - sigma_min) * s as f64 / (n_sigma - 1) as f64
                };
                for k in k_min..=k_max {
                    let mut loss = 0.0;
                    for (nn, z) in &neighbours {
                        KnnModel::mixture(&fit_z, nn, k, sigma, grid, &mut pdf);
                        loss += cde_loss_term(&pdf, grid, *z);
                    }
                    loss /= neighbours.len() as f64;
                    if loss < best.0 {
                        best = (loss, sigma, k, weight);
                    }
                }
            }
        }
        let (best_loss, best_sigma, best_k, best_weight) = best;
        let colours_only = only_colors || best_weight == 0.0;
        let (dims, flat) = features_of(training, env, colours_only, best_weight);
        let model = KnnModel {
            dims,
            features: flat,
            redshift: training.redshift.clone(),
            k: best_k,
            sigma: best_sigma,
            only_colors: colours_only,
            mag_weight: best_weight,
            validation_cde_loss: best_loss,
            tree: OnceLock::new(),
        };
        model.tree();
        Ok(model)
    }

    /// Finds the neighbours of the whole batch first, visiting rows in the tree's leaf order
    /// and seeding each search with the previous row's neighbours: consecutive queries are
    /// then close, so each search starts from a tight bound and takes the same branches as
    /// the last. The neighbours, and so the PDFs, are those of independent searches.
    fn begin_batch(&self, env: &EstimateEnv, phot: &Photometry, s: &mut KnnScratch) {
        let (n, dims, k) = (phot.n, self.dims, self.k);
        let tree = self.tree();
        s.batch_features.clear();
        s.has_features.clear();
        s.order.clear();
        for row in 0..n {
            let mags = phot.mags(row);
            let ok = env.photometry.usable(mags) && {
                s.limited.resize(mags.len(), 0.0);
                env.photometry.limited_mags(mags, &mut s.limited);
                mag_and_colours(
                    &s.limited,
                    env.photometry.ref_band,
                    self.only_colors,
                    &mut s.feat,
                );
                if !self.only_colors {
                    s.feat[0] *= self.mag_weight;
                }
                s.feat.len() == dims
            };
            if ok {
                s.batch_features.extend_from_slice(&s.feat);
                s.order.push((tree.leaf_of(&s.feat), row as u32));
            } else {
                s.batch_features.extend(std::iter::repeat_n(f64::NAN, dims));
            }
            s.has_features.push(ok);
        }
        s.order.sort_unstable();
        s.neighbours.clear();
        s.neighbours.resize(n * k, (0, 0.0));
        s.found.clear();
        s.found.resize(n, 0);
        let mut seeds: Vec<u32> = Vec::with_capacity(k);
        for &(_, row) in &s.order {
            let row = row as usize;
            let q = &s.batch_features[row * dims..(row + 1) * dims];
            tree.query_seeded(q, k, &seeds, &mut s.nn);
            s.neighbours[row * k..row * k + s.nn.len()].copy_from_slice(&s.nn);
            s.found[row] = s.nn.len() as u32;
            seeds.clear();
            seeds.extend(s.nn.iter().map(|x| x.0));
        }
    }

    fn estimate_row(
        &self,
        env: &EstimateEnv,
        row: usize,
        _mags: &[f64],
        _errs: &[f64],
        pdf: &mut [f64],
        s: &mut KnnScratch,
        _extra: &mut RowExtra,
    ) -> bool {
        let k = self.k;
        let found = s.found.get(row).copied().unwrap_or(0) as usize;
        if !s.has_features.get(row).copied().unwrap_or(false) || found == 0 {
            return false;
        }
        let nn = &s.neighbours[row * k..row * k + found];
        KnnModel::mixture(&self.redshift, nn, k, self.sigma, env.grid, pdf);
        true
    }
}
