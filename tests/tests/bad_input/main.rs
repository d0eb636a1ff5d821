//! The bad-input corpus: one case per malformed input, each asserting the error's words and
//! that nothing was written. One module per area; they share the helpers here.

use std::path::Path;

use pz_engine::PzContext;

mod hats;
mod metrics;
mod models;
mod sql;

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// The error a script ends with, without DataFusion's backtrace.
pub(crate) async fn error_of(sql: &str) -> String {
    error_in(&PzContext::ephemeral(), sql).await
}

/// The error a script ends with in a given context.
pub(crate) async fn error_in(ctx: &PzContext, sql: &str) -> String {
    match ctx.run_last(sql).await {
        Ok(_) => panic!("expected an error from {sql}"),
        Err(e) => e.strip_backtrace(),
    }
}
