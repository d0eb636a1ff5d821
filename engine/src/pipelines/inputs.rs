//! Reading the pipelines' input catalogs so that what is wrong in them is named: the file,
//! the column and the row.
//!
//! A pipeline reads an input through one registered table, which may stand for a directory
//! of files split into partitions; an error from inside such a scan (a cast, a schema merge)
//! knows neither the file nor the row. So before the real work, each file is read on its own,
//! in order, and the columns the pipeline relies on are checked value by value.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::{exec_datafusion_err, DataFusionError, Result};
use datafusion::prelude::{
    CsvReadOptions, DataFrame, ParquetReadOptions, SessionConfig, SessionContext,
};
use futures::StreamExt;

/// What a column must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Numbers (or text that reads as numbers); nulls allowed.
    Number,
    /// A right ascension: a finite number, never null.
    Ra,
    /// A declination: a finite number within [−90, 90], never null.
    Dec,
    /// Anything but null.
    Present,
}

/// One column to check: its name in the file, and the name the user knows it by (the
/// standard name it is mapped to, e.g. "ra").
#[derive(Debug, Clone)]
pub struct ColumnCheck {
    pub column: String,
    pub role: String,
    pub expect: Expect,
}

impl ColumnCheck {
    pub fn new(column: &str, role: &str, expect: Expect) -> Self {
        ColumnCheck {
            column: column.to_string(),
            role: role.to_string(),
            expect,
        }
    }
}

/// The files DataFusion reads for `path` stored as `kind` (`CSV` or `PARQUET`): the file
/// itself, or the files of a directory with the format's extension (and those of its
/// `key=value` partition directories), in path order.
pub fn data_files(path: &Path, kind: &str) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let ext = if kind == "CSV" { "csv" } else { "parquet" };
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let entries =
            std::fs::read_dir(&dir).map_err(|e| exec_datafusion_err!("{}: {e}", dir.display()))?;
        for e in entries {
            let p = e
                .map_err(|e| exec_datafusion_err!("{}: {e}", dir.display()))?
                .path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if p.is_dir() {
                if name.contains('=') {
                    stack.push(p);
                }
            } else if p
                .extension()
                .is_some_and(|x| x.to_string_lossy().eq_ignore_ascii_case(ext))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One file alone, read in order (one partition, so rows come as they are in the file).
async fn read_one(file: &Path, kind: &str) -> Result<DataFrame> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let p = file.display().to_string();
    // The file was named by the user (or listed by extension): take it whatever its name.
    let ext = file
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    if kind == "CSV" {
        ctx.read_csv(
            p,
            CsvReadOptions::new().has_header(true).file_extension(&ext),
        )
        .await
    } else {
        ctx.read_parquet(
            p,
            ParquetReadOptions {
                file_extension: &ext,
                ..Default::default()
            },
        )
        .await
    }
}

/// Why registering the directory `path` failed, when its files disagree on a column's type:
/// the column and two files that disagree. `None` when they do not (or it is not a
/// directory).
pub async fn schema_conflict(path: &Path, kind: &str) -> Option<String> {
    if !path.is_dir() {
        return None;
    }
    let mut seen: std::collections::BTreeMap<String, (DataType, PathBuf)> = Default::default();
    for f in data_files(path, kind).ok()? {
        let df = match read_one(&f, kind).await {
            Ok(df) => df,
            Err(e) => return Some(format!("{}: {}", f.display(), first_line(&e))),
        };
        for field in df.schema().fields() {
            match seen.get(field.name()) {
                Some((t, other)) if t != field.data_type() && *t != DataType::Null => {
                    return Some(format!(
                        "column '{}' is {t} in {} but {} in {}",
                        field.name(),
                        other.display(),
                        field.data_type(),
                        f.display()
                    ))
                }
                Some(_) => {}
                None => {
                    seen.insert(field.name().clone(), (field.data_type().clone(), f.clone()));
                }
            }
        }
    }
    None
}

/// A DataFusion error's message without its type prefixes and backtrace, on one line.
pub fn first_line(e: &DataFusionError) -> String {
    let text = e.strip_backtrace();
    let mut s = text.as_str();
    for p in [
        "Error during planning: ",
        "Execution error: ",
        "External error: ",
        "Arrow error: ",
        "Parquet error: ",
        "Parser error: ",
    ] {
        while let Some(rest) = s.strip_prefix(p) {
            s = rest;
        }
    }
    s.lines().next().unwrap_or_default().to_string()
}

/// Reads every file of `path` and checks `checks` row by row. The first bad value is an
/// error naming `what` (a prefix such as "tsm: --redshift "), the file, the column (and the standard
/// name it stands for), the row (for CSV also the line) and the value.
pub async fn check_rows(what: &str, path: &Path, kind: &str, checks: &[ColumnCheck]) -> Result<()> {
    if checks.is_empty() || !(kind == "CSV" || kind == "PARQUET") {
        return Ok(());
    }
    for file in data_files(path, kind)? {
        check_file(what, &file, kind, checks).await?;
    }
    Ok(())
}

async fn check_file(what: &str, file: &Path, kind: &str, checks: &[ColumnCheck]) -> Result<()> {
    let named = |msg: String| exec_datafusion_err!("{what}{}: {msg}", file.display());
    let df = read_one(file, kind)
        .await
        .map_err(|e| named(first_line(&e)))?;
    let present: Vec<&ColumnCheck> = checks
        .iter()
        .filter(|c| df.schema().field_with_unqualified_name(&c.column).is_ok())
        .collect();
    if present.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let cols: Vec<&str> = present.iter().map(|c| c.column.as_str()).collect();
    let df = df.select_columns(&cols)?;
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| named(first_line(&e)))?;
    let mut row0 = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| {
            let msg = first_line(&e);
            named(csv_value_error(&msg, &names).unwrap_or(msg))
        })?;
        for (i, check) in present.iter().enumerate() {
            if let Some((r, why)) = first_bad(batch.column(i), check.expect)? {
                let row = row0 + r + 1;
                let line = if kind == "CSV" {
                    format!(" (line {})", row + 1)
                } else {
                    String::new()
                };
                let col = if check.column == check.role {
                    format!("column '{}'", check.column)
                } else {
                    format!("column '{}' ({})", check.column, check.role)
                };
                return Err(named(format!("{col} row {row}{line}: {why}")));
            }
        }
        row0 += batch.num_rows();
    }
    Ok(())
}

/// arrow's CSV reader on a value that does not fit the column's inferred type (inference
/// reads only the first rows) says "Error while parsing value 'abc' as type 'Float64' for
/// column 1 at line 2500": the column by index, the row counted from the first data row.
/// In the words of [`check_rows`]: the column's name, the row, the file's line.
fn csv_value_error(msg: &str, names: &[String]) -> Option<String> {
    let between = |s: &'_ str, a: &str, b: &str| -> Option<String> {
        let i = s.find(a)? + a.len();
        let j = s[i..].find(b)? + i;
        Some(s[i..j].to_string())
    };
    let value = between(msg, "parsing value '", "'")?;
    let ty = between(msg, "as type '", "'")?;
    let col: usize = between(msg, "for column ", " ")?.parse().ok()?;
    let tail = &msg[msg.find("at line ")? + 8..];
    let row: usize = tail
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    let name = names.get(col)?;
    Some(format!(
        "column '{name}' row {row} (line {}): '{value}' is not a {ty} like the rows before it",
        row + 1
    ))
}

/// The first row of `a` that breaks `expect`, and what is wrong with it.
fn first_bad(a: &ArrayRef, expect: Expect) -> Result<Option<(usize, String)>> {
    if expect == Expect::Present {
        return Ok((0..a.len())
            .find(|&r| a.is_null(r))
            .map(|r| (r, "null".to_string())));
    }
    let numeric = a.data_type().is_numeric();
    let f = cast_with_options(
        a,
        &DataType::Float64,
        &CastOptions {
            safe: true,
            ..Default::default()
        },
    )?;
    let f = f
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| exec_datafusion_err!("internal: a Float64 cast gave {}", f.data_type()))?;
    let fmt = ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())?;
    for r in 0..a.len() {
        let why = if a.is_null(r) {
            match expect {
                Expect::Ra | Expect::Dec => Some("null (every row needs a position)".to_string()),
                _ => None,
            }
        } else if f.is_null(r) {
            Some(if numeric {
                format!("{} is out of range", fmt.value(r))
            } else {
                format!("'{}' is not a number", fmt.value(r))
            })
        } else {
            let v = f.value(r);
            match expect {
                Expect::Ra | Expect::Dec if !v.is_finite() => {
                    Some(format!("{v} is not a position"))
                }
                Expect::Dec if !(-90.0..=90.0).contains(&v) => {
                    Some(format!("{v} is outside [-90, 90]"))
                }
                _ => None,
            }
        };
        if let Some(why) = why {
            return Ok(Some((r, why)));
        }
    }
    Ok(None)
}

/// A clearer error for a failed registration of `path`: the files that disagree on a
/// column's type when that is the cause, else the original error, prefixed with `what`
/// and the path.
pub async fn registration_error(
    what: &str,
    path: &Path,
    kind: &str,
    e: DataFusionError,
) -> DataFusionError {
    match schema_conflict(path, kind).await {
        Some(why) => exec_datafusion_err!("{what}{}: {why}", path.display()),
        None => exec_datafusion_err!("{what}{}: {}", path.display(), first_line(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_reader_errors_in_column_names() {
        let names = vec!["id".to_string(), "RA".to_string()];
        let msg = "Error while parsing value 'abc' as type 'Float64' for column 1 at line 2500. Row data: '[r,abc]'";
        assert_eq!(
            csv_value_error(msg, &names).unwrap(),
            "column 'RA' row 2500 (line 2501): 'abc' is not a Float64 like the rows before it"
        );
        assert!(csv_value_error("something else", &names).is_none());
        assert!(csv_value_error(&msg.replace("column 1", "column 7"), &names).is_none());
    }
}
