//! The one place a pz session is built: every function, table function, table factory and
//! file format registered; persistent registrations in the data directory; the codecs that
//! carry pz plans through Ballista; and the pipelines (`simulate`, …).

// Test code may use std's maths to make data; what pz computes uses `pz_udfs::math`.
#![cfg_attr(test, allow(clippy::disallowed_methods))]

pub mod codec;
pub mod context;
pub mod data_dir;
pub mod ingest;
pub mod models;
pub mod photoz_table;
pub mod pipelines;
pub mod report;
pub mod simulate;

#[cfg(feature = "ballista")]
pub mod ballista;

pub use context::{PzContext, StatementOutcome};
pub use data_dir::DataDir;
pub use ingest::IngestAction;

use std::sync::Arc;
use std::time::Duration;

use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};
use pz_catalogs::hats::format::HatsFormatFactory;
use pz_catalogs::xmatch::CrossmatchFunction;
use pz_catalogs::{HatsInfoFunction, HatsTableFactory, HatsTableFunction, PzOptions};
use pz_udfs::photoz::ModelRegistry;

/// pz's version, recorded in everything it writes.
pub const PZ_VERSION: &str = env!("CARGO_PKG_VERSION");

/// How long a directory's file listing is reused. DataFusion keeps listings forever by
/// default, so files an operator adds to a registered table's directory outside pz would
/// never be seen by a long-running `pz serve`; with this they are, within this time.
pub const LIST_FILES_TTL: Duration = Duration::from_secs(10);

/// A session state with everything pz defines registered.
pub fn session_state(config: SessionConfig) -> SessionState {
    session_state_with_runtime(config, default_runtime())
}

fn default_runtime() -> Arc<RuntimeEnv> {
    let caches = CacheManagerConfig::default().with_list_files_cache_ttl(Some(LIST_FILES_TTL));
    RuntimeEnvBuilder::new()
        .with_cache_manager(caches)
        .build_arc()
        .unwrap_or_else(|_| Arc::new(RuntimeEnv::default()))
}

pub fn session_state_with_runtime(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> SessionState {
    let config = config.with_information_schema(true);
    // The models photoz() can use live in the config, so every clone of the state (Ballista's
    // included) sees the same ones.
    let config = match config.get_extension::<ModelRegistry>() {
        Some(_) => config,
        None => config.with_extension(Arc::new(ModelRegistry::new())),
    };
    // pz's `SET pz.…` settings; as config options they reach Ballista's executors too.
    let config = match config.options().extensions.get::<PzOptions>() {
        Some(_) => config,
        None => config.with_option_extension(PzOptions::default()),
    };
    let mut builder = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features();
    builder
        .table_factories()
        .get_or_insert_with(Default::default)
        .insert("HATS".to_string(), Arc::new(HatsTableFactory));
    let mut state = builder.build();
    register(&mut state);
    state
}

/// Registers pz's functions, table functions and formats on an existing state.
pub fn register(state: &mut SessionState) {
    let models = model_registry(state);
    let mut udfs = pz_udfs::scalar_functions();
    udfs.extend(pz_udfs::photoz::functions(models.clone()));
    for udf in udfs {
        // Re-registering replaces; the previous value is of no interest.
        let _ = datafusion::execution::FunctionRegistry::register_udf(state, udf);
    }
    for udaf in pz_udfs::aggregate_functions() {
        let _ = datafusion::execution::FunctionRegistry::register_udaf(state, udaf);
    }
    state.register_udtf(
        "photoz_table",
        Arc::new(photoz_table::PhotozTableFunction::new(
            Arc::clone(state.catalog_list()),
            models,
        )),
    );
    state.register_udtf("hats", Arc::new(HatsTableFunction));
    state.register_udtf("hats_info", Arc::new(HatsInfoFunction));
    let catalogs = Arc::clone(state.catalog_list());
    state.register_udtf("crossmatch", Arc::new(CrossmatchFunction::new(catalogs)));
    // With overwrite = true registration cannot fail (it only refuses to replace otherwise).
    let _ = state.register_file_format(Arc::new(HatsFormatFactory), true);
    state
        .table_factories_mut()
        .insert("HATS".to_string(), Arc::new(HatsTableFactory));
}

/// A plain (non-persistent) context with pz registered: for tests and embedding.
/// Files can be queried by path (`SELECT * FROM 'x.parquet'`).
pub fn session_context() -> SessionContext {
    SessionContext::new_with_state(session_state(SessionConfig::new())).enable_url_table()
}

/// The model registry of a session (created with the state; a bare state gets an empty one).
pub fn model_registry(state: &SessionState) -> ModelRegistry {
    state
        .config()
        .get_extension::<ModelRegistry>()
        .map(|r| r.as_ref().clone())
        .unwrap_or_default()
}

/// A schema's columns as `name type, …`, for messages that say what a table has.
pub(crate) fn column_list(schema: &datafusion::arrow::datatypes::Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{} {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}
