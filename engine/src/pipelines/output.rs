//! What the pipelines share: SQL quoting, input kinds, counting rows, staged output directories.

use std::path::{Path, PathBuf};

use datafusion::common::{exec_datafusion_err, exec_err, plan_err, DataFusionError, Result};
use datafusion::sql::parser::CopyToStatement;

/// A SQL identifier in double quotes.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A SQL string literal.
pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The first value of a one-number query (e.g. `SELECT count(*) …`), 0 for no row.
pub async fn count(ctx: &crate::PzContext, sql: &str) -> Result<u64> {
    let rows = super::validate::f64_rows(ctx, sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().copied().flatten())
        .unwrap_or(0.0) as u64)
}

/// How to read an input path: `HATS` (a catalog directory), `CSV` or `PARQUET` (a file by
/// its extension; a directory by the files in it: CSV when it holds CSV files and no
/// Parquet).
pub fn input_kind(path: &Path) -> &'static str {
    let is_csv = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    if path.join("hats.properties").is_file()
        || path.join("properties").is_file()
        || path.join("catalog_info.json").is_file()
    {
        "HATS"
    } else if is_csv(path) {
        "CSV"
    } else if path.is_dir() {
        let files: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        let parquet = files.iter().any(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
        });
        if !parquet && files.iter().any(|p| is_csv(p)) {
            "CSV"
        } else {
            "PARQUET"
        }
    } else {
        "PARQUET"
    }
}

/// The directories `create_dir_all(dir)` would create, outermost first (empty when `dir`
/// exists).
fn missing_ancestors(dir: &Path) -> Vec<PathBuf> {
    let mut missing: Vec<PathBuf> = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take_while(|a| !a.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    missing
}

/// Creates `dir` and its missing ancestors; returns those it created, so a failed job can
/// take them away again.
fn create_parents(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let created = missing_ancestors(dir);
    if !created.is_empty() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(created)
}

/// Removes the directories [`create_parents`] made, innermost first, as long as they are
/// empty (anything another process put there stays).
fn remove_created(created: &[PathBuf]) {
    for d in created.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// A path's parent as a directory to work in (`.` for a bare file name).
fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `message` with every spelling of the temporary `tmp` replaced by the user's `out`: errors
/// from the writers name the path they were handed, which the user never gave.
fn user_paths(message: &str, tmp: &Path, out: &Path) -> String {
    let mut forms: Vec<(String, String)> =
        vec![(tmp.display().to_string(), out.display().to_string())];
    if let Ok(cwd) = std::env::current_dir() {
        let (t, o) = (cwd.join(tmp), cwd.join(out));
        forms.push((t.display().to_string(), o.display().to_string()));
    }
    // object_store names local files without the leading '/'.
    let more: Vec<(String, String)> = forms
        .iter()
        .filter_map(|(t, o)| Some((t.strip_prefix('/')?.to_string(), o.clone())))
        .collect();
    forms.extend(more);
    // Longest first, so a relative form does not cut into an absolute one.
    forms.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
    let mut out = message.to_string();
    for (t, o) in forms {
        if !t.is_empty() && t != "." {
            out = out.replace(&t, &o);
        }
    }
    out
}

fn renamed_error(e: DataFusionError, tmp: &Path, out: &Path) -> DataFusionError {
    let text = e.strip_backtrace();
    let renamed = user_paths(&text, tmp, out);
    if renamed == text {
        e
    } else {
        DataFusionError::Execution(renamed)
    }
}

/// Moves every entry of `from` into `to`, then removes `from`. With `replace`, an entry
/// replaces one of the same name; without, directories on both sides are merged and nothing
/// of `to` is removed.
fn merge_into(from: &Path, to: &Path, replace: bool) -> std::io::Result<()> {
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dst = to.join(e.file_name());
        let src = e.path();
        if dst.is_dir() && src.is_dir() && !replace {
            merge_into(&src, &dst, replace)?;
            continue;
        }
        if replace && dst.is_dir() && !dst.is_symlink() {
            std::fs::remove_dir_all(&dst)?;
        }
        std::fs::rename(&src, &dst)?;
    }
    std::fs::remove_dir(from)
}

/// An output directory built in a temporary sibling and moved into place only when it is
/// complete; dropped without [`StagedDir::commit`], it leaves nothing behind (not even the
/// parent directories it had to create).
pub struct StagedDir {
    out: PathBuf,
    tmp: PathBuf,
    pipeline: &'static str,
    /// Whether `out` may already hold files (those the job writes are replaced).
    merge: bool,
    created: Vec<PathBuf>,
    committed: bool,
}

impl StagedDir {
    /// Refuses an `out` that is a file or a directory that is not empty (before any work is
    /// done).
    pub fn check_free(out: &Path, pipeline: &'static str) -> Result<()> {
        if !out.exists() {
            return Ok(());
        }
        if !out.is_dir() {
            return plan_err!(
                "{pipeline}: --out {} is a file, not a directory",
                out.display()
            );
        }
        match std::fs::read_dir(out).map(|mut d| d.next().is_none()) {
            Ok(true) => Ok(()),
            Ok(false) => plan_err!(
                "{pipeline}: --out {} exists and is not empty",
                out.display()
            ),
            Err(e) => plan_err!("{pipeline}: --out {} cannot be read: {e}", out.display()),
        }
    }

    pub fn create(out: &Path, pipeline: &'static str) -> Result<Self> {
        Self::check_free(out, pipeline)?;
        Self::new(out, pipeline, false)
    }

    /// As [`StagedDir::create`], for an `out` that may already hold other files: at commit,
    /// the entries the job wrote replace those of the same name, the rest stay.
    pub fn create_merging(out: &Path, pipeline: &'static str) -> Result<Self> {
        if out.exists() && !out.is_dir() {
            return plan_err!(
                "{pipeline}: --out {} is a file, not a directory",
                out.display()
            );
        }
        Self::new(out, pipeline, true)
    }

    fn new(out: &Path, pipeline: &'static str, merge: bool) -> Result<Self> {
        let parent = parent_dir(out);
        let created = create_parents(parent).map_err(|e| {
            exec_datafusion_err!(
                "{pipeline}: cannot create {} for --out {}: {e}",
                parent.display(),
                out.display()
            )
        })?;
        let name = out
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = parent.join(format!(".{name}.pz-tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        if let Err(e) = std::fs::create_dir(&tmp) {
            remove_created(&created);
            return exec_err!("{pipeline}: cannot write --out {}: {e}", out.display());
        }
        Ok(StagedDir {
            out: out.to_path_buf(),
            tmp,
            pipeline,
            merge,
            created,
            committed: false,
        })
    }

    /// Where to write meanwhile.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// The same error, naming the user's `--out` where it named the temporary directory.
    pub fn user_error(&self, e: DataFusionError) -> DataFusionError {
        renamed_error(e, &self.tmp, &self.out)
    }

    /// Moves the finished directory to its place.
    pub fn commit(mut self) -> Result<()> {
        let empty = std::fs::read_dir(&self.out).is_ok_and(|mut d| d.next().is_none());
        if empty {
            let _ = std::fs::remove_dir(&self.out);
        }
        let moved = if self.merge && self.out.is_dir() {
            merge_into(&self.tmp, &self.out, true)
        } else {
            std::fs::rename(&self.tmp, &self.out)
        };
        moved.map_err(|e| {
            exec_datafusion_err!(
                "{}: cannot move the output to {}: {e}",
                self.pipeline,
                self.out.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_dir_all(&self.tmp);
            remove_created(&self.created);
        }
    }
}

/// A `COPY … TO '<local path>'` written to a temporary sibling of its target and moved into
/// place only when the query has succeeded, so a failed COPY leaves nothing (not a 0-row
/// file, not an empty directory).
///
/// It also checks first that the target can be written at all: object_store's local store
/// retries a file it cannot create after making its parent directory, forever when the
/// directory exists but takes no files (`/proc`), so an unwritable target must never reach it.
pub struct StagedCopy {
    target: PathBuf,
    tmp: PathBuf,
    directory: bool,
    created: Vec<PathBuf>,
    committed: bool,
}

/// Distinguishes concurrent COPYs of one process to the same target.
static COPY_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl StagedCopy {
    /// For a COPY to a local path, points it at a fresh temporary sibling of its target (of
    /// the same kind: a file with the same extension, or a directory) after checking that
    /// the target can be written. `None` for COPYs pz does not stage: object stores, and
    /// `STORED AS HATS`, whose writer stages its own output.
    pub fn prepare(copy: &mut CopyToStatement) -> Result<Option<StagedCopy>> {
        if copy
            .stored_as
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("hats"))
        {
            return Ok(None);
        }
        let local = match copy.target.strip_prefix("file://") {
            Some(p) => p.to_string(),
            None if copy.target.contains("://") => return Ok(None),
            None => copy.target.clone(),
        };
        if local.is_empty() {
            return plan_err!("COPY: the target path is empty");
        }
        let explicit_single = copy.options.iter().find_map(|(k, v)| {
            (k.eq_ignore_ascii_case("single_file_output")).then(|| {
                v.to_string()
                    .trim_matches('\'')
                    .eq_ignore_ascii_case("true")
            })
        });
        let ends_with_slash = local.ends_with('/');
        let target = PathBuf::from(local.trim_end_matches('/'));
        let Some(name) = target.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return plan_err!("COPY: {} names no file or directory", copy.target);
        };
        // DataFusion's rule: a trailing '/' or no extension means a directory of files.
        let has_extension = name.contains('.') && !name.ends_with('.');
        let directory = match explicit_single {
            Some(single) => !single,
            None => ends_with_slash || !has_extension || !copy.partitioned_by.is_empty(),
        };
        if directory && target.is_file() {
            return plan_err!(
                "COPY: {} is a file; this COPY writes a directory of files",
                target.display()
            );
        }
        if !directory && target.is_dir() {
            return plan_err!(
                "COPY: {} is a directory; this COPY writes one file",
                target.display()
            );
        }
        let parent = parent_dir(&target);
        let created = create_parents(parent).map_err(|e| {
            exec_datafusion_err!(
                "COPY: cannot write {}: cannot create the directory {}: {e}",
                target.display(),
                parent.display()
            )
        })?;
        // The marker goes before the extension, so DataFusion reads the temporary name as it
        // reads the target's (its format, and file or directory), and without a leading dot,
        // which DataFusion would take for an extension.
        let (stem, ext) = match name.rfind('.') {
            Some(i) if has_extension && i > 0 => (&name[..i], &name[i..]),
            _ => (name.as_str(), ""),
        };
        let seq = COPY_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = parent.join(format!("{stem}~pz-tmp-{}-{seq}{ext}", std::process::id()));
        let probe = if directory {
            std::fs::create_dir(&tmp)
        } else {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .map(drop)
        };
        if let Err(e) = probe {
            remove_created(&created);
            return exec_err!(
                "COPY: cannot write {}: cannot create {} in {}: {e}",
                target.display(),
                if directory { "a directory" } else { "a file" },
                parent.display()
            );
        }
        let mut handed = tmp.display().to_string();
        if directory {
            handed.push('/');
        }
        copy.target = handed;
        Ok(Some(StagedCopy {
            target,
            tmp,
            directory,
            created,
            committed: false,
        }))
    }

    /// The same error, naming the user's target where it named the temporary one (and
    /// naming it first when it did not at all: a writer's "Nested type … is not supported"
    /// says nothing of where).
    pub fn user_error(&self, e: DataFusionError) -> DataFusionError {
        let e = renamed_error(e, &self.tmp, &self.target);
        let text = e.strip_backtrace();
        let target = self.target.display().to_string();
        if text.contains(&target) {
            return e;
        }
        exec_datafusion_err!("COPY to {target}: {}", super::inputs::first_line(&e))
    }

    /// Puts the finished output in place of (a file) or into (a directory) the target.
    pub fn commit(mut self) -> Result<()> {
        let moved = if self.directory && self.target.is_dir() {
            // DataFusion adds files to a directory target; so does pz.
            merge_into(&self.tmp, &self.target, false)
        } else {
            std::fs::rename(&self.tmp, &self.target)
        };
        moved.map_err(|e| {
            exec_datafusion_err!(
                "COPY: cannot move the result to {}: {e}",
                self.target.display()
            )
        })?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for StagedCopy {
    fn drop(&mut self) {
        if !self.committed {
            if self.directory {
                let _ = std::fs::remove_dir_all(&self.tmp);
            } else {
                let _ = std::fs::remove_file(&self.tmp);
            }
            remove_created(&self.created);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn staged_dirs_name_the_users_path_and_leave_nothing() {
        let w = tempfile::tempdir().unwrap();
        let out = w.path().join("a/b/out");
        let staged = StagedDir::create(&out, "tsm").unwrap();
        let inner = staged.path().join("training_set.csv");
        let e = staged.user_error(exec_datafusion_err!(
            "cannot write {}: disk full",
            inner.display()
        ));
        let text = e.to_string();
        assert!(
            text.contains(&out.join("training_set.csv").display().to_string())
                && !text.contains("pz-tmp"),
            "{text}"
        );
        drop(staged);
        // Not even the parents it had to create.
        assert!(entries(w.path()).is_empty());

        std::fs::write(w.path().join("f"), "").unwrap();
        let e = StagedDir::check_free(&w.path().join("f"), "tsm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a file, not a directory"), "{e}");
        std::fs::create_dir(w.path().join("d")).unwrap();
        std::fs::write(w.path().join("d/x"), "").unwrap();
        let e = StagedDir::check_free(&w.path().join("d"), "tsm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exists and is not empty"), "{e}");
    }

    #[test]
    fn merging_keeps_other_files_and_replaces_its_own() {
        let w = tempfile::tempdir().unwrap();
        let out = w.path().join("sky");
        std::fs::create_dir_all(out.join("objects")).unwrap();
        std::fs::write(out.join("objects/old"), "old").unwrap();
        std::fs::write(out.join("mine.txt"), "mine").unwrap();
        let staged = StagedDir::create_merging(&out, "simulate").unwrap();
        std::fs::create_dir(staged.path().join("objects")).unwrap();
        std::fs::write(staged.path().join("objects/new"), "new").unwrap();
        staged.commit().unwrap();
        assert_eq!(entries(&out), vec!["mine.txt", "objects"]);
        assert_eq!(entries(&out.join("objects")), vec!["new"]);
        assert_eq!(entries(w.path()), vec!["sky"]);
    }

    fn copy_of(sql: &str) -> CopyToStatement {
        match pz_sql::parse_statements(sql).unwrap().remove(0) {
            datafusion::sql::parser::Statement::CopyTo(c) => c,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn staged_copies_keep_the_targets_kind_and_clean_up() {
        let w = tempfile::tempdir().unwrap();
        let d = w.path().display();
        let mut c = copy_of(&format!("COPY (SELECT 1) TO '{d}/n/x.parquet'"));
        let staged = StagedCopy::prepare(&mut c).unwrap().unwrap();
        // Same extension (DataFusion takes the format and single-file mode from it).
        assert!(
            c.target.ends_with(".parquet") && c.target.contains("x~pz-tmp-"),
            "{}",
            c.target
        );
        let e = staged
            .user_error(exec_datafusion_err!("object store: {}#1: gone", c.target))
            .to_string();
        assert!(
            e.contains(&format!("{d}/n/x.parquet#1")) && !e.contains("pz-tmp"),
            "{e}"
        );
        drop(staged);
        assert!(entries(w.path()).is_empty());

        let mut c = copy_of(&format!("COPY (SELECT 1) TO '{d}/dir' STORED AS CSV"));
        let staged = StagedCopy::prepare(&mut c).unwrap().unwrap();
        assert!(
            c.target.ends_with('/') && !c.target.ends_with(".csv/"),
            "{}",
            c.target
        );
        drop(staged);
        assert!(entries(w.path()).is_empty());

        // Object stores and HATS are not staged here.
        let mut c = copy_of("COPY (SELECT 1) TO 's3://b/x.parquet'");
        assert!(StagedCopy::prepare(&mut c).unwrap().is_none());
        let mut c = copy_of(&format!("COPY (SELECT 1) TO '{d}/h' STORED AS HATS"));
        assert!(StagedCopy::prepare(&mut c).unwrap().is_none());
    }
}
