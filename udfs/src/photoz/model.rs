//! Models: the `Estimator` abstraction (inform, estimate), and the versioned, serialisable
//! artifact that carries an informed estimator with its configuration, features, grid and
//! training provenance.

use std::collections::BTreeMap;

use datafusion::common::{exec_datafusion_err, exec_err, plan_err, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bpz::BpzModel;
use super::flexzboost::FlexZBoostModel;
use super::grid::ZGrid;
use super::knn::KnnModel;
use super::options::{Domain, OptionReader};
use super::photometry::{Feature, Photometry, PhotometryConfig};
use super::summary::{normalise_and_summarise, PdfSummary};
use super::trainz::TrainZModel;

/// Bumped when the serialised layout changes; older files are refused with a clear message.
/// 2: a SHA-256 of the header and payload follows the header; provenance has warnings.
pub const MODEL_FORMAT_VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"PZMODEL\0";
/// Magic and format version.
const HEADER_LEN: usize = 12;
const CHECKSUM_LEN: usize = 32;

/// Most grid points a model may have: every batch's PDFs take rows × nz × 4 bytes.
pub const MAX_MODEL_NZ: usize = 10_001;

/// What an estimator sees besides the photometry.
pub struct EstimateEnv<'a> {
    pub photometry: &'a PhotometryConfig,
    pub grid: &'a ZGrid,
}

/// Extra per-object outputs some algorithms have.
#[derive(Debug, Default, Clone, Copy)]
pub struct RowExtra {
    /// BPZ: index of the best template at the mode.
    pub best_template: Option<u32>,
}

/// A photo-z algorithm: inform on a training set, then estimate a PDF per object.
pub trait Estimator: Sized {
    /// Per-thread buffers reused across rows.
    type Scratch: Default;

    /// Trains on `training`; reads its OPTIONS from `options`.
    fn inform(training: &TrainingSet, env: &EstimateEnv, options: &OptionReader) -> Result<Self>;

    /// Work done once per batch before its rows (e.g. tree-major traversal of boosters).
    fn begin_batch(&self, _env: &EstimateEnv, _phot: &Photometry, _scratch: &mut Self::Scratch) {}

    /// The order to estimate the batch's rows in, when one keeps the estimator's tables in
    /// cache (rows sharing a table row run together); None for the batch's own order. Each
    /// row's result is the same in any order.
    fn row_order(&self, _env: &EstimateEnv, _phot: &Photometry) -> Option<Vec<u32>> {
        None
    }

    /// Fills `pdf` (any positive scale) for object `row` of the batch; false when there is no
    /// estimate.
    #[allow(clippy::too_many_arguments)]
    fn estimate_row(
        &self,
        env: &EstimateEnv,
        row: usize,
        mags: &[f64],
        errs: &[f64],
        pdf: &mut [f64],
        scratch: &mut Self::Scratch,
        extra: &mut RowExtra,
    ) -> bool;
}

/// The training data of `CREATE MODEL … AS SELECT`.
pub struct TrainingSet {
    pub photometry: Photometry,
    pub redshift: Vec<f64>,
    /// Every column of the SELECT, in order.
    pub columns: Vec<String>,
    pub features: Vec<Feature>,
    /// SHA-256 over the feature and redshift values, rows in the order of their values (the
    /// same training rows give the same checksum however they arrive).
    pub checksum: String,
}

impl TrainingSet {
    /// Builds a training set from per-column values (NaN for null); `columns[i]` names
    /// `values[i]`. Rows with no redshift are dropped (counted in the returned number).
    pub fn from_columns(
        cfg: &PhotometryConfig,
        columns: Vec<String>,
        values: Vec<Vec<f64>>,
    ) -> Result<(Self, usize)> {
        let features = cfg.features_from_columns(&columns)?;
        let Some(zi) = columns.iter().position(|c| *c == cfg.redshift_column) else {
            return plan_err!(
                "the training SELECT has no redshift column '{}' (it has: {}); name it so or set OPTIONS (redshift_column '…')",
                cfg.redshift_column,
                columns.join(", ")
            );
        };
        let n_all = values.first().map(|v| v.len()).unwrap_or(0);
        let mut keep: Vec<usize> = (0..n_all).filter(|&i| values[zi][i].is_finite()).collect();
        // The rows in an order of their values, not of their arrival: a SELECT over a join or
        // over many partitions yields its rows in whatever order the threads finish, and the
        // estimators' held-out splits and bagging draw by row position. Rows that compare
        // equal hold the same values in every column a model reads, so their order is moot.
        let used: Vec<&[f64]> = std::iter::once(zi)
            .chain(
                features
                    .iter()
                    .filter_map(|f| columns.iter().position(|c| *c == f.column)),
            )
            .map(|ci| values[ci].as_slice())
            .collect();
        keep.sort_unstable_by(|&a, &b| {
            used.iter()
                .map(|col| col[a].total_cmp(&col[b]))
                .find(|o| o.is_ne())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut phot = Photometry::new(keep.len(), cfg.nbands());
        let mut hasher = Sha256::new();
        for f in &features {
            let ci = columns.iter().position(|c| *c == f.column).unwrap_or(0);
            let col: Vec<f64> = keep.iter().map(|&i| values[ci][i]).collect();
            for v in &col {
                hasher.update(v.to_le_bytes());
            }
            phot.set_column(f.band, f.is_error, &col);
        }
        let redshift: Vec<f64> = keep.iter().map(|&i| values[zi][i]).collect();
        for v in &redshift {
            hasher.update(v.to_le_bytes());
        }
        Ok((
            TrainingSet {
                photometry: phot,
                redshift,
                columns,
                features,
                checksum: hex_of(&hasher.finalize()),
            },
            n_all - keep.len(),
        ))
    }
}

fn checksum(header: &[u8], payload: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut h = Sha256::new();
    h.update(header);
    h.update(payload);
    h.finalize().into()
}

/// What the training set must have before any algorithm sees it, and the doubts worth a
/// warning: some detected magnitudes (else an estimator that reads photometry learns one
/// PDF for everything), redshifts on the grid (else the model cannot place them).
fn check_training(
    algorithm: Algorithm,
    training: &TrainingSet,
    cfg: &PhotometryConfig,
    grid: &ZGrid,
) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    let phot = &training.photometry;
    let n = phot.n;
    // trainZ never reads the photometry: its single N(z) is the point.
    if algorithm != Algorithm::TrainZ {
        if !(0..n).any(|i| cfg.usable(phot.mags(i))) {
            return plan_err!(
                "{}: every one of the {n} training rows has only non-detections \
                 ({} {}, NaN or null in every band): the model could only predict one PDF for everything",
                algorithm.name(),
                cfg.nondetect_val,
                cfg.unobserved_val
            );
        }
        for (b, band) in cfg.bands.iter().enumerate() {
            let detected = (0..n).any(|i| {
                let m = phot.mags(i)[b];
                m.is_finite() && !cfg.is_nondetect(m) && !cfg.is_unobserved(m)
            });
            if !detected {
                warnings.push(format!(
                    "band {band}: none of the {n} training magnitudes is a detection, so the band tells the model nothing"
                ));
            }
        }
    }
    let half = 0.5 * grid.step();
    let off: Vec<f64> = training
        .redshift
        .iter()
        .copied()
        .filter(|&z| !(z >= grid.zmin - half && z <= grid.zmax + half))
        .collect();
    if !off.is_empty() {
        let lo = off.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = off.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let what = format!(
            "{} of the {n} training redshifts lie off the grid [{}, {}] (from {lo} to {hi})",
            off.len(),
            grid.zmin,
            grid.zmax
        );
        if off.len() == n {
            return plan_err!(
                "{}: {what}; set zmin and zmax to cover them",
                algorithm.name()
            );
        }
        warnings.push(format!(
            "{what}; the model cannot place them (set zmin/zmax to cover them, or leave them out of the SELECT)"
        ));
    }
    Ok(warnings)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Algorithm {
    TrainZ,
    Knn,
    Bpz,
    FlexZBoost,
}

impl Algorithm {
    pub const ALL: [Algorithm; 4] = [
        Algorithm::TrainZ,
        Algorithm::Knn,
        Algorithm::Bpz,
        Algorithm::FlexZBoost,
    ];

    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "trainz" | "train_z" => Ok(Algorithm::TrainZ),
            "knn" | "k_nearneigh" | "knearneigh" => Ok(Algorithm::Knn),
            "bpz" | "bpz_lite" => Ok(Algorithm::Bpz),
            "flexzboost" | "flexcode" => Ok(Algorithm::FlexZBoost),
            other => plan_err!(
                "unknown photo-z algorithm '{other}'; pz has: {}",
                Algorithm::ALL
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::TrainZ => "trainz",
            Algorithm::Knn => "knn",
            Algorithm::Bpz => "bpz",
            Algorithm::FlexZBoost => "flexzboost",
        }
    }
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub n_train: usize,
    /// Training rows left out because their redshift was null or not finite.
    pub n_train_dropped: usize,
    pub training_checksum: String,
    pub pz_version: String,
    pub created_unix: u64,
    pub inform_seconds: f64,
    /// The SELECT the model was informed on, when known.
    pub training_query: Option<String>,
    /// What was doubtful about the training set (the model was made all the same).
    #[serde(default)]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ModelBody {
    TrainZ(TrainZModel),
    Knn(KnnModel),
    Bpz(Box<BpzModel>),
    FlexZBoost(FlexZBoostModel),
}

/// An informed estimator and everything needed to apply it again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub format_version: u32,
    pub name: String,
    pub algorithm: Algorithm,
    /// OPTIONS as given to CREATE MODEL.
    pub options: BTreeMap<String, String>,
    /// The inputs of `photoz()`, in the order the training SELECT gave them.
    pub features: Vec<Feature>,
    pub photometry: PhotometryConfig,
    pub grid: ZGrid,
    pub provenance: Provenance,
    pub body: ModelBody,
}

/// What `estimate` returns for a batch.
#[derive(Debug, Default)]
pub struct Estimates {
    /// `n × nz` densities (unit integral over the grid); zeros where `summary` is None.
    pub pdf: Vec<f32>,
    pub summary: Vec<Option<PdfSummary>>,
    pub best_template: Vec<Option<u32>>,
}

impl Model {
    /// Informs a model. `training_query` is recorded in the provenance.
    pub fn inform(
        name: &str,
        algorithm: Algorithm,
        options: BTreeMap<String, String>,
        columns: Vec<String>,
        values: Vec<Vec<f64>>,
        pz_version: &str,
        training_query: Option<String>,
    ) -> Result<Model> {
        Self::inform_typed(
            name,
            algorithm,
            options,
            columns,
            values,
            &[],
            pz_version,
            training_query,
        )
    }

    /// [`Model::inform`], also told the training SELECT's columns that are not numbers
    /// (name, type), so that one the model needs is reported as having the wrong type
    /// rather than as missing.
    #[allow(clippy::too_many_arguments)]
    pub fn inform_typed(
        name: &str,
        algorithm: Algorithm,
        options: BTreeMap<String, String>,
        columns: Vec<String>,
        values: Vec<Vec<f64>>,
        non_numeric: &[(String, String)],
        pz_version: &str,
        training_query: Option<String>,
    ) -> Result<Model> {
        let started = std::time::Instant::now();
        let reader = OptionReader::new(algorithm.name(), &options);
        let photometry = PhotometryConfig::from_options(&reader)?;
        let grid = ZGrid::new(
            reader.f64_in("zmin", 0.0, Domain::from_below(0.0, 100.0))?,
            reader.f64_in("zmax", 3.0, Domain::above_to(0.0, 100.0))?,
            reader.usize_in("nz", 301, 2, MAX_MODEL_NZ)?,
        )?;
        for (column, ty) in non_numeric {
            if let Some(role) = photometry.role_of(column) {
                return plan_err!(
                    "{}: column '{column}' ({role}) has type {ty}, but the training columns must be numbers; \
                     CAST it in the SELECT, e.g. CAST({column} AS DOUBLE)",
                    algorithm.name()
                );
            }
        }
        let (training, dropped) = TrainingSet::from_columns(&photometry, columns, values)?;
        if training.photometry.n == 0 {
            return plan_err!(
                "{}: the training set is empty{}",
                algorithm.name(),
                if dropped > 0 {
                    format!(" ({dropped} rows had no redshift)")
                } else {
                    String::new()
                }
            );
        }
        let warnings = check_training(algorithm, &training, &photometry, &grid)?;
        let env = EstimateEnv {
            photometry: &photometry,
            grid: &grid,
        };
        let body = match algorithm {
            Algorithm::TrainZ => ModelBody::TrainZ(TrainZModel::inform(&training, &env, &reader)?),
            Algorithm::Knn => ModelBody::Knn(KnnModel::inform(&training, &env, &reader)?),
            Algorithm::Bpz => ModelBody::Bpz(Box::new(BpzModel::inform(&training, &env, &reader)?)),
            Algorithm::FlexZBoost => {
                ModelBody::FlexZBoost(FlexZBoostModel::inform(&training, &env, &reader)?)
            }
        };
        reader.finish()?;
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let model = Model {
            format_version: MODEL_FORMAT_VERSION,
            name: name.to_string(),
            algorithm,
            options,
            features: training.features.clone(),
            photometry,
            grid,
            provenance: Provenance {
                n_train: training.photometry.n,
                n_train_dropped: dropped,
                training_checksum: training.checksum.clone(),
                pz_version: pz_version.to_string(),
                created_unix,
                inform_seconds: started.elapsed().as_secs_f64(),
                training_query,
                warnings,
            },
            body,
        };
        if let Err(e) = model.check() {
            return plan_err!("model '{name}': {e}");
        }
        Ok(model)
    }

    /// Every invariant estimation relies on (lengths, indices, grids, trees, option
    /// domains), so that no model that passes makes `estimate` panic, loop or read out of
    /// bounds. `from_bytes` and `inform` run it; a model built by hand should too.
    pub fn validate(&self) -> Result<()> {
        self.check()
            .map_err(|e| exec_datafusion_err!("model '{}' is not consistent: {e}", self.name))
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.format_version != MODEL_FORMAT_VERSION {
            return Err(format!(
                "it records format version {} inside a version {MODEL_FORMAT_VERSION} file",
                self.format_version
            ));
        }
        let g = self.grid;
        if ZGrid::new(g.zmin, g.zmax, g.nz).is_err() || g.nz > MAX_MODEL_NZ {
            return Err(format!(
                "grid zmin={} zmax={} nz={} (need 0 <= zmin < zmax, 2 <= nz <= {MAX_MODEL_NZ})",
                g.zmin, g.zmax, g.nz
            ));
        }
        self.photometry.check()?;
        let nb = self.photometry.nbands();
        // `photoz()` fills band `band` from each feature: every band's magnitude and error
        // exactly once.
        let mut seen = vec![[false; 2]; nb];
        for f in &self.features {
            let Some(slot) = seen.get_mut(f.band).map(|s| &mut s[f.is_error as usize]) else {
                return Err(format!("feature '{}' is band {} of {nb}", f.column, f.band));
            };
            if std::mem::replace(slot, true) {
                return Err(format!(
                    "feature '{}' repeats band {}'s {}",
                    f.column,
                    self.photometry.bands[f.band],
                    if f.is_error { "error" } else { "magnitude" }
                ));
            }
        }
        if self.features.len() != 2 * nb {
            return Err(format!(
                "{} features for {nb} bands (a magnitude and an error each)",
                self.features.len()
            ));
        }
        match (self.algorithm, &self.body) {
            (Algorithm::TrainZ, ModelBody::TrainZ(m)) => m.check(g.nz),
            (Algorithm::Knn, ModelBody::Knn(m)) => m.check(nb),
            (Algorithm::Bpz, ModelBody::Bpz(m)) => m.check(nb, &g),
            (Algorithm::FlexZBoost, ModelBody::FlexZBoost(m)) => m.check(nb),
            (a, _) => Err(format!(
                "its algorithm is {} but it holds another algorithm's fit",
                a.name()
            )),
        }
    }

    /// Estimates PDFs and summaries for a batch. A batch whose shape is not this model's
    /// (another band count, arrays of the wrong length) gets no estimate for any row.
    pub fn estimate(&self, phot: &Photometry) -> Estimates {
        let cells = phot.n.checked_mul(phot.nbands);
        if phot.nbands != self.photometry.nbands()
            || cells != Some(phot.mag.len())
            || cells != Some(phot.err.len())
        {
            return Estimates {
                pdf: vec![0.0; phot.n.saturating_mul(self.grid.nz)],
                summary: vec![None; phot.n],
                best_template: vec![None; phot.n],
            };
        }
        match &self.body {
            ModelBody::TrainZ(m) => self.run(m, phot),
            ModelBody::Knn(m) => self.run(m, phot),
            ModelBody::Bpz(m) => self.run(m.as_ref(), phot),
            ModelBody::FlexZBoost(m) => self.run(m, phot),
        }
    }

    fn run<E: Estimator>(&self, est: &E, phot: &Photometry) -> Estimates {
        let env = EstimateEnv {
            photometry: &self.photometry,
            grid: &self.grid,
        };
        let nz = self.grid.nz;
        let mut out = Estimates {
            pdf: vec![0.0f32; phot.n * nz],
            summary: vec![None; phot.n],
            best_template: vec![None; phot.n],
        };
        let mut scratch = E::Scratch::default();
        est.begin_batch(&env, phot, &mut scratch);
        let order = est
            .row_order(&env, phot)
            .filter(|o| o.len() == phot.n)
            .unwrap_or_else(|| (0..phot.n as u32).collect());
        let mut pdf = vec![0.0f64; nz];
        let mut blocks = Vec::with_capacity(nz / 8 + 1);
        for &i in &order {
            let i = i as usize;
            let mags = phot.mags(i);
            let mut extra = RowExtra::default();
            let summary = if self.photometry.usable(mags)
                && est.estimate_row(
                    &env,
                    i,
                    mags,
                    phot.errs(i),
                    &mut pdf,
                    &mut scratch,
                    &mut extra,
                ) {
                normalise_and_summarise(
                    &pdf,
                    &self.grid,
                    &mut blocks,
                    &mut out.pdf[i * nz..(i + 1) * nz],
                )
            } else {
                None
            };
            if summary.is_some() {
                out.best_template[i] = extra.best_template;
            }
            out.summary[i] = summary;
        }
        out
    }

    /// The model file: magic, format version, the SHA-256 of those and the payload, then
    /// the payload (the model as named MessagePack).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut payload = Vec::new();
        rmp_serde::encode::write_named(&mut payload, self)
            .map_err(|e| exec_datafusion_err!("model '{}': cannot serialise: {e}", self.name))?;
        Ok(Self::seal(&payload))
    }

    /// Wraps a MessagePack payload in the model file layout with its checksum, as
    /// `to_bytes` does; for tools (and fuzzing) that make payloads themselves.
    pub fn seal(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + CHECKSUM_LEN + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&MODEL_FORMAT_VERSION.to_le_bytes());
        let sum = checksum(&out, payload);
        out.extend_from_slice(&sum);
        out.extend_from_slice(payload);
        out
    }

    /// Reads a model file (or the bytes of one in a plan). Refused: another format version,
    /// bytes that do not match their checksum, a payload that does not decode, and a model
    /// that fails [`Model::validate`] — whoever wrote the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        if bytes.len() < HEADER_LEN || &bytes[..8] != MAGIC {
            return exec_err!("not a pz model (bad magic)");
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != MODEL_FORMAT_VERSION {
            return exec_err!(
                "model format version {version} is not the one this pz reads ({MODEL_FORMAT_VERSION}); inform the model again"
            );
        }
        let Some((sum, payload)) = bytes[HEADER_LEN..].split_at_checked(CHECKSUM_LEN) else {
            return exec_err!(
                "corrupt pz model: {} bytes, shorter than the header and its checksum",
                bytes.len()
            );
        };
        if checksum(&bytes[..HEADER_LEN], payload)[..] != *sum {
            return exec_err!(
                "corrupt pz model: the content does not match its SHA-256 checksum (the bytes changed after the model was written); inform it again"
            );
        }
        let model: Model = rmp_serde::from_slice(payload)
            .map_err(|e| exec_datafusion_err!("corrupt pz model: {e}"))?;
        if let Err(e) = model.check() {
            return exec_err!("corrupt pz model '{}': {e}", model.name);
        }
        Ok(model)
    }

    /// Whether this algorithm reports a best template.
    pub fn has_best_template(&self) -> bool {
        matches!(self.body, ModelBody::Bpz(_))
    }

    /// A few algorithm-specific facts for DESCRIBE MODEL.
    pub fn fitted_parameters(&self) -> Vec<(String, String)> {
        match &self.body {
            ModelBody::TrainZ(_) => vec![],
            ModelBody::Knn(m) => vec![
                ("k".into(), m.k.to_string()),
                ("sigma".into(), format!("{:.6}", m.sigma)),
                ("only_colors".into(), m.only_colors.to_string()),
                ("mag_weight".into(), m.mag_weight.to_string()),
                (
                    "validation_cde_loss".into(),
                    format!("{:.5}", m.validation_cde_loss),
                ),
            ],
            ModelBody::Bpz(m) => m.describe(),
            ModelBody::FlexZBoost(m) => m.describe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::photoz::gbdt::Node;
    use crate::photoz::rng::SplitMix64;

    const BANDS: [&str; 6] = ["u", "g", "r", "i", "z", "y"];
    const CENTRES: [f64; 6] = [3700.0, 4800.0, 6200.0, 7500.0, 8700.0, 9700.0];

    /// Galaxy-like training columns: a break that walks redward with z.
    fn columns(n: usize, seed: u64) -> (Vec<String>, Vec<Vec<f64>>) {
        let mut rng = SplitMix64::new(seed);
        let mut cols: Vec<Vec<f64>> = (0..13).map(|_| Vec::with_capacity(n)).collect();
        for _ in 0..n {
            let z = 0.05 + 2.5 * rng.uniform();
            let bright = 20.0 + 5.0 * rng.uniform();
            for b in 0..6 {
                let red = if CENTRES[b] / (1.0 + z) < 4000.0 {
                    1.5
                } else {
                    0.0
                };
                let err = 0.02 + 0.05 * (bright - 20.0) / 5.0;
                cols[b].push(bright + red - 0.1 * b as f64 + err * (rng.uniform() - 0.5));
                cols[6 + b].push(err);
            }
            cols[12].push(z);
        }
        let mut names: Vec<String> = BANDS.iter().map(|b| format!("mag_{b}")).collect();
        names.extend(BANDS.iter().map(|b| format!("magerr_{b}")));
        names.push("redshift".into());
        (names, cols)
    }

    /// Templates and box-like filters in BPZ's formats, in a fresh directory.
    fn bpz_dir(tag: &str) -> std::path::PathBuf {
        // Tests run in parallel: each call gets its own directory.
        static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("pz-model-test-{tag}-{}-{call}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut list = String::new();
        for t in 0..4 {
            let mut s = String::new();
            for k in 0..1200 {
                let wl = 500.0 + 10.0 * k as f64;
                let brk = if wl < 4000.0 {
                    0.3 + 0.15 * t as f64
                } else {
                    1.0
                };
                s += &format!("{wl} {}\n", brk / (1.0 + 0.0002 * wl * (t + 1) as f64));
            }
            std::fs::write(dir.join(format!("T{t}.sed")), s).unwrap();
            list += &format!("T{t}.sed\n");
        }
        std::fs::write(dir.join("TEST.list"), list).unwrap();
        for (b, c) in BANDS.iter().zip(CENTRES) {
            let mut s = String::new();
            for k in 0..800 {
                let wl = 3000.0 + 10.0 * k as f64;
                s += &format!("{wl} {}\n", if (wl - c).abs() < 400.0 { 1.0 } else { 0.0 });
            }
            std::fs::write(dir.join(format!("TEST_{b}.res")), s).unwrap();
        }
        dir
    }

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn inform(algorithm: Algorithm, options: BTreeMap<String, String>) -> Result<Model> {
        let (names, cols) = columns(600, 5);
        Model::inform("m", algorithm, options, names, cols, "test", None)
    }

    fn bpz_options(dir: &std::path::Path) -> Vec<(String, String)> {
        let d = dir.display().to_string();
        vec![
            ("sed_dir".into(), d.clone()),
            ("filter_dir".into(), d),
            ("template_list".into(), "TEST.list".into()),
            (
                "filters".into(),
                BANDS
                    .iter()
                    .map(|b| format!("TEST_{b}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        ]
    }

    /// One small informed model of every algorithm.
    fn every_model() -> Vec<Model> {
        let dir = bpz_dir("every");
        // A coarse grid keeps the prior table (built per decoded model) quick.
        let mut bpz: BTreeMap<String, String> = bpz_options(&dir).into_iter().collect();
        bpz.insert("nz".into(), "101".into());
        let models = vec![
            inform(Algorithm::TrainZ, BTreeMap::new()).unwrap(),
            inform(Algorithm::Knn, BTreeMap::new()).unwrap(),
            inform(Algorithm::Bpz, bpz).unwrap(),
            inform(
                Algorithm::FlexZBoost,
                opts(&[
                    ("n_trees", "15"),
                    ("max_basis", "12"),
                    ("nbump", "3"),
                    ("nsharp", "3"),
                ]),
            )
            .unwrap(),
        ];
        std::fs::remove_dir_all(&dir).ok();
        models
    }

    /// Rows to estimate: 40, so the tree walk meets full blocks of 16 and a partial one.
    fn batch() -> Photometry {
        let (_, cols) = columns(40, 77);
        let mut p = Photometry::new(40, 6);
        for b in 0..6 {
            p.set_column(b, false, &cols[b]);
            p.set_column(b, true, &cols[6 + b]);
        }
        p
    }

    fn payload(bytes: &[u8]) -> &[u8] {
        &bytes[HEADER_LEN + CHECKSUM_LEN..]
    }

    #[test]
    fn informing_does_not_depend_on_the_order_of_the_rows() {
        // A SELECT over a join or many partitions gives its rows in any order; the held-out
        // splits (k-NN, FlexZBoost) must not follow it.
        let (names, cols) = columns(600, 5);
        let perm = crate::photoz::rng::permutation(600, 99);
        let shuffled: Vec<Vec<f64>> = cols
            .iter()
            .map(|c| perm.iter().map(|&i| c[i]).collect())
            .collect();
        for algorithm in [Algorithm::Knn, Algorithm::FlexZBoost] {
            let a = Model::inform(
                "m",
                algorithm,
                BTreeMap::new(),
                names.clone(),
                cols.clone(),
                "t",
                None,
            )
            .unwrap();
            let b = Model::inform(
                "m",
                algorithm,
                BTreeMap::new(),
                names.clone(),
                shuffled.clone(),
                "t",
                None,
            )
            .unwrap();
            assert_eq!(a.body, b.body, "{algorithm:?}");
            assert_eq!(
                a.provenance.training_checksum,
                b.provenance.training_checksum
            );
        }
    }

    #[test]
    fn a_model_file_changed_in_place_is_refused() {
        let m = inform(Algorithm::Knn, BTreeMap::new()).unwrap();
        let bytes = m.to_bytes().unwrap();
        assert_eq!(Model::from_bytes(&bytes).unwrap(), m);
        // One byte of the payload changed, as an editor or a bad disk would.
        let mut changed = bytes.clone();
        let at = changed.len() - 100;
        changed[at] ^= 0x01;
        let e = Model::from_bytes(&changed).unwrap_err().to_string();
        assert!(e.contains("does not match its SHA-256 checksum"), "{e}");
        let e = Model::from_bytes(&bytes[..40]).unwrap_err().to_string();
        assert!(
            e.contains("shorter than the header and its checksum"),
            "{e}"
        );
        // A file of the first layout (no checksum) is refused by its version, clearly.
        let mut v1 = MAGIC.to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(payload(&bytes));
        let e = Model::from_bytes(&v1).unwrap_err().to_string();
        assert!(
            e.contains("model format version 1 is not the one this pz reads (2)"),
            "{e}"
        );
    }

    /// Each corruption keeps a valid checksum (whoever wrote the bytes computed it), so only
    /// the structural checks stand between it and the estimators.
    #[test]
    fn structurally_bad_models_are_refused_when_decoded() {
        let models = every_model();
        type Corrupt = Box<dyn Fn(&mut Model)>;
        let body = |i: usize| models[i].clone();
        let cases: Vec<(usize, &str, Corrupt)> = vec![
            (
                3,
                "splits on feature 40000 of 6",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    let g = &mut f.gbdt[0];
                    let root = g.roots[0] as usize;
                    let leaf = g.nodes.iter().position(|n| n.feature == u32::MAX).unwrap() as u32;
                    g.nodes[root] = Node {
                        feature: 40000,
                        threshold: f64::INFINITY,
                        left: leaf,
                        right: leaf,
                    };
                }),
            ),
            (
                3,
                "is reached twice",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    let g = &mut f.gbdt[0];
                    let root = g.roots[0];
                    let n = &mut g.nodes[root as usize];
                    n.left = root;
                }),
            ),
            (
                3,
                "names leaf",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    let g = &mut f.gbdt[0];
                    let leaf = g.nodes.iter().position(|n| n.feature == u32::MAX).unwrap();
                    g.nodes[leaf].left = 1 << 30;
                }),
            ),
            (
                3,
                "past the",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    f.gbdt[0].roots[0] = 1 << 30;
                }),
            ),
            (
                3,
                "has threshold NaN",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    let g = &mut f.gbdt[0];
                    let root = g.roots[0] as usize;
                    g.nodes[root].threshold = f64::NAN;
                }),
            ),
            (
                3,
                "predict",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    f.n_basis += 1;
                }),
            ),
            (
                3,
                "kept basis terms",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    f.best_basis.push(500);
                }),
            ),
            (
                3,
                "sharpening exponent",
                Box::new(|m| {
                    let ModelBody::FlexZBoost(f) = &mut m.body else {
                        unreachable!()
                    };
                    f.sharpen_alpha = f64::NAN;
                }),
            ),
            (
                1,
                "neighbours with 600 training rows",
                Box::new(|m| {
                    let ModelBody::Knn(k) = &mut m.body else {
                        unreachable!()
                    };
                    k.k = 10_000;
                }),
            ),
            (
                1,
                "feature values for 600 training redshifts",
                Box::new(|m| {
                    let ModelBody::Knn(k) = &mut m.body else {
                        unreachable!()
                    };
                    k.features.truncate(100);
                }),
            ),
            (
                1,
                "feature dimensions",
                Box::new(|m| {
                    let ModelBody::Knn(k) = &mut m.body else {
                        unreachable!()
                    };
                    k.dims = 1;
                }),
            ),
            (
                2,
                "mag_err_min 25",
                Box::new(|m| {
                    let ModelBody::Bpz(b) = &mut m.body else {
                        unreachable!()
                    };
                    b.mag_err_min = 25.0;
                }),
            ),
            (
                2,
                "the flux table holds",
                Box::new(|m| {
                    let ModelBody::Bpz(b) = &mut m.body else {
                        unreachable!()
                    };
                    b.flux.pop();
                }),
            ),
            (
                2,
                "do not add up",
                Box::new(|m| {
                    let ModelBody::Bpz(b) = &mut m.body else {
                        unreachable!()
                    };
                    b.prior.nt_array = vec![1, 2, 9];
                }),
            ),
            (
                2,
                "parameters for fewer than its 3 broad types",
                Box::new(|m| {
                    let ModelBody::Bpz(b) = &mut m.body else {
                        unreachable!()
                    };
                    b.prior.alpha.pop();
                }),
            ),
            (
                2,
                "m0 40",
                Box::new(|m| {
                    let ModelBody::Bpz(b) = &mut m.body else {
                        unreachable!()
                    };
                    b.prior.m0 = 40.0;
                }),
            ),
            (
                0,
                "the N(z) has 300 values for a grid of 301",
                Box::new(|m| {
                    let ModelBody::TrainZ(t) = &mut m.body else {
                        unreachable!()
                    };
                    t.nz.pop();
                }),
            ),
            (
                0,
                "feature 'mag_u' is band 9 of 6",
                Box::new(|m| m.features[0].band = 9),
            ),
            (
                0,
                "repeats band g's magnitude",
                Box::new(|m| m.features[0].band = 1),
            ),
            (
                0,
                "reference band 7 of 6",
                Box::new(|m| m.photometry.ref_band = 7),
            ),
            (
                0,
                "5 limiting magnitudes for 6 bands",
                Box::new(|m| {
                    m.photometry.mag_limits.pop();
                }),
            ),
            (0, "grid zmin=0 zmax=3 nz=1", Box::new(|m| m.grid.nz = 1)),
            (
                0,
                "its algorithm is knn",
                Box::new(|m| m.algorithm = Algorithm::Knn),
            ),
        ];
        for (i, (which, words, corrupt)) in cases.iter().enumerate() {
            let mut m = body(*which);
            corrupt(&mut m);
            let e = match Model::from_bytes(&m.to_bytes().unwrap()) {
                Ok(_) => panic!("case {i} ({words}) decoded"),
                Err(e) => e.to_string(),
            };
            assert!(
                e.contains("corrupt pz model 'm'") && e.contains(words),
                "case {i}: {e}"
            );
        }
    }

    /// What the fuzz target does, in small: mutated payloads (resealed, so the checksum
    /// passes) either fail to decode or estimate without a panic.
    #[test]
    fn mutated_model_bytes_never_crash_an_estimate() {
        let phot = batch();
        let mut rng = SplitMix64::new(11);
        for m in every_model() {
            let started = std::time::Instant::now();
            // As many as a few seconds allow in a debug build (BPZ builds its prior table per
            // model; the checksum of FlexZBoost's larger payload is slow unoptimised).
            let mutations = match m.algorithm {
                Algorithm::TrainZ => 1000,
                Algorithm::Knn => 600,
                Algorithm::Bpz => 150,
                Algorithm::FlexZBoost => 120,
            };
            let good = m.to_bytes().unwrap();
            let base = payload(&good).to_vec();
            let mut decoded = 0;
            for _ in 0..mutations {
                let mut p = base.clone();
                for _ in 0..1 + rng.below(3) {
                    let at = rng.below(p.len());
                    match rng.below(3) {
                        0 => p[at] ^= 1 << rng.below(8),
                        1 => p[at] = rng.below(256) as u8,
                        _ => p[at] = [0x00, 0x7f, 0xff, 0xcb, 0xce][rng.below(5)],
                    }
                }
                if let Ok(model) = Model::from_bytes(&Model::seal(&p)) {
                    decoded += 1;
                    let est = model.estimate(&phot);
                    assert_eq!(est.summary.len(), phot.n);
                    assert_eq!(est.pdf.len(), phot.n * model.grid.nz);
                }
            }
            println!(
                "{}: {decoded} of {mutations} decoded, {:?}",
                m.algorithm.name(),
                started.elapsed()
            );
            assert!(decoded > 0, "{}: no mutation decoded", m.algorithm.name());
        }
    }

    /// The first row's PDF from `e` on `grid`, through the estimator's own steps.
    fn first_pdf<E: Estimator>(e: &E, m: &Model, grid: &ZGrid, phot: &Photometry) -> Vec<f64> {
        let env = EstimateEnv {
            photometry: &m.photometry,
            grid,
        };
        let mut s = E::Scratch::default();
        e.begin_batch(&env, phot, &mut s);
        let mut pdf = vec![0.0; grid.nz];
        let mut extra = RowExtra::default();
        assert!(e.estimate_row(
            &env,
            0,
            phot.mags(0),
            phot.errs(0),
            &mut pdf,
            &mut s,
            &mut extra
        ));
        pdf
    }

    /// The FlexZBoost basis and the BPZ prior table were cached on first use whatever grid
    /// the next caller passed; an estimator used on a second grid must give what a fresh one
    /// gives there.
    #[test]
    fn cached_tables_follow_the_grid() {
        let phot = batch();
        let models = every_model();
        let other = ZGrid::new(0.0, 2.0, 61).unwrap();
        let ModelBody::FlexZBoost(f) = &models[3].body else {
            unreachable!()
        };
        first_pdf(f, &models[3], &models[3].grid, &phot);
        let used = first_pdf(f, &models[3], &other, &phot);
        let fresh = first_pdf(&f.clone(), &models[3], &other, &phot);
        assert_eq!(used, fresh);
        // BPZ: a grid of the same size, so only the prior differs.
        let ModelBody::Bpz(b) = &models[2].body else {
            unreachable!()
        };
        let same_size = ZGrid::new(0.0, 2.0, models[2].grid.nz).unwrap();
        first_pdf(b.as_ref(), &models[2], &models[2].grid, &phot);
        let used = first_pdf(b.as_ref(), &models[2], &same_size, &phot);
        let fresh = first_pdf(&b.as_ref().clone(), &models[2], &same_size, &phot);
        assert_eq!(used, fresh);
    }

    /// The estimators index the model's per-band tables by the batch's bands.
    #[test]
    fn a_batch_of_other_bands_gets_no_estimate() {
        let m = inform(Algorithm::Knn, opts(&[("bands", "u,g,r,i,z")])).unwrap();
        let est = m.estimate(&batch());
        assert!(est.summary.iter().all(|s| s.is_none()));
        assert_eq!(est.pdf.len(), 40 * 301);
    }

    #[test]
    fn training_problems_are_errors_or_warnings() {
        let (names, mut cols) = columns(300, 9);
        // Every magnitude a non-detection.
        let mut dark = cols.clone();
        for c in dark.iter_mut().take(6) {
            c.iter_mut().for_each(|v| *v = 99.0);
        }
        let e = Model::inform(
            "m",
            Algorithm::Knn,
            BTreeMap::new(),
            names.clone(),
            dark,
            "t",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("every one of the 300 training rows has only non-detections"),
            "{e}"
        );
        // Some redshifts off the grid: a warning; all of them: an error.
        cols[12][0] = 3.7;
        cols[12][1] = -0.2;
        let m = Model::inform(
            "m",
            Algorithm::Knn,
            BTreeMap::new(),
            names.clone(),
            cols.clone(),
            "t",
            None,
        )
        .unwrap();
        assert!(
            m.provenance.warnings.iter().any(|w| w.contains(
                "2 of the 300 training redshifts lie off the grid [0, 3] (from -0.2 to 3.7)"
            )),
            "{:?}",
            m.provenance.warnings
        );
        let far: Vec<Vec<f64>> = cols
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 12 {
                    c.iter().map(|z| z + 10.0).collect()
                } else {
                    c.clone()
                }
            })
            .collect();
        let e = Model::inform(
            "m",
            Algorithm::TrainZ,
            BTreeMap::new(),
            names.clone(),
            far,
            "t",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("300 of the 300 training redshifts lie off the grid"),
            "{e}"
        );
        // One band never detected: a warning naming it.
        cols[0].iter_mut().for_each(|v| *v = 99.0);
        let m = Model::inform(
            "m",
            Algorithm::Knn,
            BTreeMap::new(),
            names.clone(),
            cols,
            "t",
            None,
        )
        .unwrap();
        assert!(
            m.provenance
                .warnings
                .iter()
                .any(|w| w.starts_with("band u: none of the 300")),
            "{:?}",
            m.provenance.warnings
        );
        // A string column where a magnitude should be: the wrong type, not missing.
        let (names, cols) = columns(300, 9);
        let keep: Vec<usize> = (1..13).collect();
        let e = Model::inform_typed(
            "m",
            Algorithm::Knn,
            BTreeMap::new(),
            keep.iter().map(|&i| names[i].clone()).collect(),
            keep.iter().map(|&i| cols[i].clone()).collect(),
            &[("mag_u".to_string(), "Utf8".to_string())],
            "t",
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("column 'mag_u' (the magnitude of band u) has type Utf8"),
            "{e}"
        );
    }

    #[test]
    fn a_bpz_template_without_flux_is_an_error() {
        let dir = bpz_dir("dark");
        let text: String = (0..100)
            .map(|k| format!("{} 0\n", 500.0 + 10.0 * k as f64))
            .collect();
        std::fs::write(dir.join("T2.sed"), text).unwrap();
        let e = inform(Algorithm::Bpz, bpz_options(&dir).into_iter().collect())
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).ok();
        assert!(
            e.contains("template 'T2.sed' of TEST.list has zero flux in every filter"),
            "{e}"
        );
    }

    /// Options outside their domains fail at CREATE MODEL, naming the option and domain.
    #[test]
    fn options_are_checked_against_their_domains() {
        let dir = bpz_dir("opts");
        let cases: Vec<(Algorithm, &str, &str, &str)> = vec![
            (
                Algorithm::Bpz,
                "mag_err_min",
                "25",
                "mag_err_min must be a number in [0, 20], got '25'",
            ),
            (
                Algorithm::Bpz,
                "p_min",
                "NaN",
                "p_min must be a number in [0, 1), got 'NaN'",
            ),
            (
                Algorithm::Bpz,
                "zp_error",
                "0.1,inf",
                "zp_error must be 1 to 6 comma-separated numbers, each a number in [0, 5]",
            ),
            (
                Algorithm::Bpz,
                "nt_array",
                "1,1,1,1",
                "prior 'informed' fits at most 3 broad types",
            ),
            (
                Algorithm::FlexZBoost,
                "max_depth",
                "25",
                "max_depth must be a whole number from 1 to 20, got '25'",
            ),
            (
                Algorithm::FlexZBoost,
                "max_depth",
                "64",
                "max_depth must be a whole number from 1 to 20, got '64'",
            ),
            (Algorithm::FlexZBoost, "max_depth", "16", "would take"),
            (
                Algorithm::FlexZBoost,
                "lambda",
                "-1",
                "lambda must be a number in [0, 1000000000000], got '-1'",
            ),
            (
                Algorithm::FlexZBoost,
                "learning_rate",
                "inf",
                "learning_rate must be a number in (0, 1], got 'inf'",
            ),
            (
                Algorithm::FlexZBoost,
                "basis_per_booster",
                "0",
                "basis_per_booster must be a whole number from 1 to 35, got '0'",
            ),
            (
                Algorithm::FlexZBoost,
                "nbump",
                "0",
                "nbump must be a whole number from 1 to 1000",
            ),
            (
                Algorithm::FlexZBoost,
                "sharpmin",
                "0",
                "sharpmin must be a number in (0, 10]",
            ),
            (
                Algorithm::Knn,
                "nneigh_max",
                "100000000000",
                "nneigh_max must be a whole number from 1 to 1000",
            ),
            (
                Algorithm::Knn,
                "sigma_grid_min",
                "-0.1",
                "sigma_grid_min must be a number in (0, 10]",
            ),
            (
                Algorithm::Knn,
                "train_frac",
                "1",
                "train_frac must be a number in (0, 1), got '1'",
            ),
            (
                Algorithm::Knn,
                "mag_weights",
                "0.1,-2",
                "mag_weights must be 1 to 100 comma-separated numbers",
            ),
            (
                Algorithm::Knn,
                "nz",
                "1000000",
                "nz must be a whole number from 2 to 10001",
            ),
            (
                Algorithm::Knn,
                "zmax",
                "1e300",
                "zmax must be a number in (0, 100]",
            ),
            (
                Algorithm::Knn,
                "mag_limits",
                "u:inf,g:27,r:27,i:27,z:26,y:25",
                "the limit of band 'u' (inf) must be a number in (0, 50]",
            ),
            (
                Algorithm::Knn,
                "bands",
                "u,g,u",
                "option bands lists 'u' twice",
            ),
            (
                Algorithm::Knn,
                "nondetect_val",
                "-99",
                "nondetect_val -99 and unobserved_val -99 must be finite and differ",
            ),
        ];
        for (algorithm, key, value, words) in cases {
            let mut o: BTreeMap<String, String> = if algorithm == Algorithm::Bpz {
                bpz_options(&dir).into_iter().collect()
            } else {
                BTreeMap::new()
            };
            if key == "nt_array" {
                o.insert("prior".into(), "informed".into());
            }
            o.insert(key.into(), value.into());
            let e = match inform(algorithm, o) {
                Ok(_) => panic!("{key} = {value} was accepted"),
                Err(e) => e.to_string(),
            };
            assert!(e.contains(words), "{key} = {value}: {e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
