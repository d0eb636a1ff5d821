//! Reproducible sampling.

pub mod seeded_uniform;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

pub const DOC_SECTION: datafusion::logical_expr::DocSection =
    datafusion::logical_expr::DocSection {
        include: true,
        label: "Sampling Functions",
        description: Some("Draws that depend only on a seed and a row's key."),
    };

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![Arc::new(ScalarUDF::from(
        seeded_uniform::SeededUniformFunc::new(),
    ))]
}
