//! Runs every `tests/slt/*.slt` file against a fresh pz session.
//!
//! Placeholders in a file: `${SKY}` (a mock sky simulated once for the run: `objects/`,
//! `truth.parquet`, `specz.parquet`), `${TMP}` (a fresh temp directory per file) and
//! `${SHARED}` (`../shared`; a file that uses it is skipped, with the reason printed, when
//! `../shared` is absent).

use std::path::PathBuf;

use async_trait::async_trait;
use pz_engine::PzContext;
use sqllogictest::{DBOutput, DefaultColumnType};

struct PzDb {
    ctx: PzContext,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DbError {}

#[async_trait]
impl sqllogictest::AsyncDB for PzDb {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<Self::ColumnType>, Self::Error> {
        let out = self
            .ctx
            .run_last(sql)
            .await
            .map_err(|e| DbError(e.strip_backtrace()))?;
        let Some(out) = out else {
            return Ok(DBOutput::StatementComplete(0));
        };
        if out.schema.fields().is_empty() {
            return Ok(DBOutput::StatementComplete(0));
        }
        let rows = pz_tests::rows(&out.batches)
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|c| if c.is_empty() { "(empty)".into() } else { c })
                    .collect()
            })
            .collect();
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; out.schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "pz"
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let slt_dir = pz_tests::workspace_root().join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&slt_dir)
        .expect("tests/slt")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "slt"))
        .collect();
    files.sort();
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let (_sky_dir, sky) = pz_tests::small_sky(20_000, 7);
    let sky_root = sky
        .objects_dir
        .parent()
        .expect("sky root")
        .canonicalize()
        .expect("sky");
    let shared = pz_tests::shared_dir();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for file in files {
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read slt");
        if text.contains("${SHARED}") && shared.is_none() {
            println!("SKIP {name}: ../shared is not beside the project");
            skipped += 1;
            continue;
        }
        let tmp = tempfile::tempdir().expect("tmp");
        let mut script = text
            .replace("${SKY}", &sky_root.display().to_string())
            .replace("${TMP}", &tmp.path().display().to_string());
        if let Some(s) = &shared {
            script = script.replace("${SHARED}", &s.display().to_string());
        }
        let result = rt.block_on(async {
            let mut runner = sqllogictest::Runner::new(|| async {
                Ok(PzDb {
                    ctx: PzContext::ephemeral(),
                })
            });
            runner.run_script_async(&script).await
        });
        match result {
            Ok(()) => {
                println!("ok   {name}");
                passed += 1;
            }
            Err(e) => {
                println!("FAIL {name}\n{}", e.display(true));
                failed += 1;
            }
        }
    }
    println!("sqllogictest: {passed} passed, {failed} failed, {skipped} skipped");
    if failed > 0 {
        std::process::exit(1);
    }
}
