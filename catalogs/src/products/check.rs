//! `pz product check`: every file record against its bytes (size, SHA-256, and the rows of
//! a table), and every stored object against the records (orphans: bytes no record names,
//! left by a process killed between writing and recording, or between forgetting and
//! removing).

use parquet::arrow::async_reader::AsyncFileReader;
use std::collections::{HashMap, HashSet};

use super::storage::{FILES, STAGING, STAGING_MAX_IDLE};
use super::{converted_table_key, formats::Format, ProductStore};
use crate::store::{FileRole, StoreError};

/// What the check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub files_checked: u64,
    /// Records whose bytes are missing or differ, one line each naming product and file.
    pub problems: Vec<String>,
    /// Keys of stored objects no record names.
    pub orphans: Vec<String>,
    /// Staging objects of uploads that may still be running (written to lately).
    pub uploads_in_progress: Vec<String>,
    /// Orphans removed (with `remove_orphans`).
    pub removed: u64,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.orphans.is_empty()
    }
}

impl ProductStore {
    /// Checks every record against its bytes and lists (or removes) orphans.
    pub async fn check(&self, remove_orphans: bool) -> Result<CheckReport, StoreError> {
        let mut report = CheckReport::default();
        let mut expected: HashSet<String> = HashSet::new();
        let mut tables: HashMap<String, (String, i64)> = HashMap::new();
        for (internal_name, f) in self.meta.all_product_files().await? {
            report.files_checked += 1;
            expected.insert(f.storage_key.clone());
            let what = format!(
                "product {} ({internal_name}) file '{}'",
                f.product_id, f.name
            );
            match self.storage.digest(&f.storage_key).await {
                Err(e) => report.problems.push(format!("{what}: {e}")),
                Ok((size, sha)) => {
                    if size as i64 != f.size_bytes {
                        report.problems.push(format!(
                            "{what}: {size} bytes stored, {} recorded",
                            f.size_bytes
                        ));
                    } else if sha != f.sha256 {
                        report.problems.push(format!(
                            "{what}: SHA-256 {sha} stored, {} recorded",
                            f.sha256
                        ));
                    }
                }
            }
            if f.role == FileRole::Main {
                if let Some(rows) = f.n_rows {
                    let key = match Format::of_name(&f.name) {
                        Format::Parquet => f.storage_key.clone(),
                        _ => {
                            let k = converted_table_key(&internal_name);
                            expected.insert(k.clone());
                            k
                        }
                    };
                    tables.insert(what, (key, rows));
                }
            }
        }
        for (what, (key, rows)) in tables {
            match self.parquet_rows(&key).await {
                Ok(n) if n == rows => {}
                Ok(n) => report.problems.push(format!(
                    "{what}: its table {key} holds {n} rows, {rows} recorded"
                )),
                Err(e) => report
                    .problems
                    .push(format!("{what}: its table {key}: {e}")),
            }
        }
        for prefix in [FILES, "tables", STAGING] {
            for o in self.storage.list(prefix).await? {
                if expected.contains(&o.key) {
                    continue;
                }
                if prefix == STAGING && o.idle < STAGING_MAX_IDLE.as_secs() {
                    report.uploads_in_progress.push(o.key);
                    continue;
                }
                if remove_orphans {
                    self.storage.remove(&o.key).await?;
                    report.removed += 1;
                }
                report.orphans.push(o.key);
            }
        }
        report.problems.sort();
        report.orphans.sort();
        Ok(report)
    }

    async fn parquet_rows(&self, key: &str) -> Result<i64, StoreError> {
        let mut reader = self.storage.parquet_reader(key).await?;
        let meta = reader
            .get_metadata(None)
            .await
            .map_err(|e| StoreError::Storage(format!("not a readable Parquet file: {e}")))?;
        Ok(meta.file_metadata().num_rows())
    }
}
