//! Models: the `Estimator` abstraction (inform, estimate), and the versioned, serialisable
//! artifact that carries an informed estimator with its configuration, features, grid and
//! training provenance.

use std::collections::BTreeMap;

use datafusion::common::{exec_err, plan_err, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::bpz::BpzModel;
use super::flexzboost::FlexZBoostModel;
use super::grid::ZGrid;
use super::knn::KnnModel;
use super::options::OptionReader;
use super::photometry::{Feature, Photometry, PhotometryConfig};
use super::summary::{normalise_and_summarise, PdfSummary};
use super::trainz::TrainZModel;

/// Bumped when the serialised layout changes; older files are refused with a clear message.
pub const MODEL_FORMAT_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"PZMODEL\0";

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
    /// SHA-256 over the feature and redshift values as read.
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
        let keep: Vec<usize> = (0..n_all).filter(|&i| values[zi][i].is_finite()).collect();
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
        let started = std::time::Instant::now();
        let reader = OptionReader::new(algorithm.name(), &options);
        let photometry = PhotometryConfig::from_options(&reader)?;
        let grid = ZGrid::new(
            reader.f64("zmin", 0.0)?,
            reader.f64("zmax", 3.0)?,
            reader.usize("nz", 301)?,
        )?;
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
        Ok(Model {
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
            },
            body,
        })
    }

    /// Estimates PDFs and summaries for a batch.
    pub fn estimate(&self, phot: &Photometry) -> Estimates {
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

    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&MODEL_FORMAT_VERSION.to_le_bytes());
        rmp_serde::encode::write_named(&mut out, self).map_err(|e| {
            datafusion::common::DataFusionError::Execution(format!(
                "model '{}': cannot serialise: {e}",
                self.name
            ))
        })?;
        Ok(out)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Model> {
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return exec_err!("not a pz model (bad magic)");
        }
        let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        if version != MODEL_FORMAT_VERSION {
            return exec_err!(
                "model format version {version} is not the one this pz reads ({MODEL_FORMAT_VERSION}); inform the model again"
            );
        }
        rmp_serde::from_slice(&bytes[12..]).map_err(|e| {
            datafusion::common::DataFusionError::Execution(format!("corrupt pz model: {e}"))
        })
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
