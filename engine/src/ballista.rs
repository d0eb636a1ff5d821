//! Ballista glue: session configs that carry pz's codecs, and an in-process standalone
//! cluster (scheduler + executor) for tests and single-machine runs.

use std::sync::Arc;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::common::Result;

use datafusion::prelude::{SessionConfig, SessionContext};

use crate::codec::{PzLogicalCodec, PzPhysicalCodec};

/// A Ballista session config with pz's codecs wrapped around Ballista's.
pub fn ballista_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(PzLogicalCodec::new(Arc::new(
            BallistaLogicalExtensionCodec::default(),
        ))))
        .with_ballista_physical_extension_codec(Arc::new(PzPhysicalCodec::new(Arc::new(
            BallistaPhysicalExtensionCodec::default(),
        ))))
}

/// Starts an in-process Ballista scheduler and executor that know pz, and returns a
/// context whose queries run on them.
pub async fn standalone_context(parallelism: usize) -> Result<SessionContext> {
    let config = ballista_config().with_ballista_standalone_parallelism(parallelism.max(1));
    let state = crate::session_state(config);
    let ctx = SessionContext::standalone_with_state(state).await?;
    // Ballista's upgrade of the client state swaps in its own scalar function list; the
    // scheduler and executor were built from the state above and already know pz's.
    let models = crate::model_registry(&ctx.state());
    let mut udfs = pz_udfs::scalar_functions();
    udfs.extend(pz_udfs::photoz::functions(models.clone()));
    for udf in udfs {
        ctx.register_udf(udf.as_ref().clone());
    }
    for udaf in pz_udfs::aggregate_functions() {
        ctx.register_udaf(udaf.as_ref().clone());
    }
    ctx.register_udtf(
        "photoz_table",
        Arc::new(crate::photoz_table::PhotozTableFunction::new(
            Arc::clone(ctx.state().catalog_list()),
            models,
        )),
    );
    Ok(ctx)
}
