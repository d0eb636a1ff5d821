//! Photo-z estimation: the `Estimator` abstraction, models, and the algorithms (trainZ, k-NN,
//! BPZ, FlexZBoost), with `photoz()` as their SQL face.

// Kernels here walk several arrays in lockstep (grid, template, band); index loops read
// more plainly than zipped iterators.
#![allow(clippy::needless_range_loop)]

pub mod bpz;
pub mod cde;
pub mod fastexp;
pub mod flexzboost;
pub mod gauss;
pub mod gbdt;
pub mod grid;
pub mod knn;
pub mod model;
pub mod options;
pub mod photometry;
pub mod photoz_udf;
pub mod registry;
pub mod rng;
pub mod simd;
pub mod summary;
pub mod trainz;

pub use grid::ZGrid;
pub use model::{Algorithm, Estimator, Model};
pub use registry::ModelRegistry;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

pub const DOC_SECTION: datafusion::logical_expr::DocSection =
    datafusion::logical_expr::DocSection {
        include: true,
        label: "Photo-z Functions",
        description: Some("Redshift PDFs and point estimates from models made with CREATE MODEL."),
    };

/// The photo-z functions over a model registry.
pub fn functions(registry: ModelRegistry) -> Vec<Arc<ScalarUDF>> {
    vec![photoz_udf::photoz_udf(registry)]
}
