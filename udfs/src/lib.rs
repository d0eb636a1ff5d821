//! pz's kernels and their DataFusion faces.
//!
//! Every function lives in its own file inside a domain folder (`astro/`, later `photoz/`,
//! `xmatch/`, `metrics/`). Each file holds a plain Rust kernel, testable without DataFusion,
//! and a thin `ScalarUDFImpl` around it. This crate knows nothing of storage or servers.

// Test code may use std's maths to make data; what pz computes uses `pz_udfs::math`.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod args;
pub mod astro;
pub mod cpu;
pub mod math;
pub mod metrics;
pub mod photoz;
pub mod sampling;
pub mod xmatch;

use std::sync::Arc;

use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{AggregateUDF, ScalarUDF};

/// Every scalar function pz defines, ready to register.
pub fn scalar_functions() -> Vec<Arc<ScalarUDF>> {
    let mut f = astro::functions();
    f.extend(sampling::functions());
    f.extend(metrics::functions());
    f
}

/// Every aggregate function pz defines (the validation metrics).
pub fn aggregate_functions() -> Vec<Arc<AggregateUDF>> {
    metrics::aggregate_functions()
}

/// Registers every pz function with a registry (a `SessionContext` or `SessionState`).
pub fn register_all(registry: &mut dyn FunctionRegistry) -> datafusion::common::Result<()> {
    for udf in scalar_functions() {
        registry.register_udf(udf)?;
    }
    for udaf in aggregate_functions() {
        registry.register_udaf(udaf)?;
    }
    Ok(())
}
