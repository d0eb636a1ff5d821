//! Combine Redshift Catalogs: concatenate reference catalogs of many surveys with
//! homogenised quality flags, find duplicates (the same galaxy in several catalogs, or twice
//! in one), keep the best measurement of each, as LIneA's CRC pipeline does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{concat_batches, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{
    exec_datafusion_err, plan_datafusion_err, plan_err, DataFusionError, Result,
};
use datafusion::datasource::MemTable;
use pz_udfs::sampling::seeded_uniform::seeded_uniform_str;
use pz_udfs::xmatch::nearest_within;
use serde::Serialize;

use super::flags::{quality_flag, Translation, VALID_FLAGS};
use super::inputs::{check_rows, registration_error, ColumnCheck, Expect};
use super::output::{quote_ident, quote_str, StagedDir};
use super::provenance::{checksum, InputRecord};
use crate::PzContext;

/// Standard column names an input may map.
pub const STANDARD: [&str; 9] = [
    "id",
    "ra",
    "dec",
    "z",
    "z_err",
    "z_flag",
    "survey",
    "z_flag_homogenized",
    "instrument_type_homogenized",
];

#[derive(Debug, Clone, Serialize)]
pub struct CrcInput {
    /// Source name (also the survey when the catalog has no survey column).
    pub source: String,
    pub path: PathBuf,
    /// Standard name → column in this catalog (unmapped standard names are used as they are,
    /// when present).
    pub columns: BTreeMap<String, String>,
    /// Instrument type for a catalog whose survey is not in the translation file.
    pub instrument_type: Option<char>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CrcMode {
    Concatenate,
    ConcatenateAndMarkDuplicates,
    ConcatenateAndRemoveDuplicates,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TiePolicy {
    RemoveAll,
    KeepAll,
    DrawOne,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrcConfig {
    pub inputs: Vec<CrcInput>,
    pub mode: CrcMode,
    pub ties: TiePolicy,
    pub seed: u64,
    /// Keep only rows with z_flag_homogenized >= this.
    pub flag_cut: Option<i32>,
    /// Replaces pz's translation file.
    pub translation: Option<PathBuf>,
    /// Extra columns to carry (null where a catalog lacks them).
    pub extra_columns: Vec<String>,
    pub radius_arcsec: f64,
    pub max_neighbors: usize,
    pub out: PathBuf,
    pub format: super::tsm::OutputFormat,
}

#[derive(Debug, Serialize)]
pub struct CrcSummary {
    pub output: PathBuf,
    pub rows_in: usize,
    pub rows_out: usize,
    pub duplicate_groups: usize,
    pub unresolved_ties: usize,
    pub seconds: f64,
}

/// One catalog loaded with standard names and types.
struct Loaded {
    batch: RecordBatch,
    /// The survey flag is quality-like: floating point, every value within [0, 1].
    quality_like: bool,
    has_homogenized: bool,
}

fn col_f64(b: &RecordBatch, name: &str) -> Result<Float64Array> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Float64Array>().cloned())
        .ok_or_else(|| exec_datafusion_err!("internal: column {name} is not Float64"))
}

fn col_str(b: &RecordBatch, name: &str) -> Result<StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned())
        .ok_or_else(|| exec_datafusion_err!("internal: column {name} is not Utf8"))
}

fn col_i32(b: &RecordBatch, name: &str) -> Result<Int32Array> {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned())
        .ok_or_else(|| exec_datafusion_err!("internal: column {name} is not Int32"))
}

impl CrcConfig {
    fn validate(&self) -> Result<()> {
        if self.inputs.is_empty() {
            return plan_err!("combine-redshifts: give at least one --input");
        }
        let r = self.radius_arcsec;
        if !r.is_finite() || r <= 0.0 {
            return plan_err!(
                "combine-redshifts: --radius-arcsec (the duplicate radius) must be positive and finite, got {r}"
            );
        }
        let max = pz_catalogs::PzOptions::default().max_radius_arcsec()?;
        if r > max {
            return plan_err!(
                "combine-redshifts: --radius-arcsec {r} is above the cross-match maximum of {max} arcsec ({} sets it)",
                pz_catalogs::config::MAX_RADIUS_ENV
            );
        }
        if !(1..=1000).contains(&self.max_neighbors) {
            return plan_err!(
                "combine-redshifts: --max-neighbors must be from 1 to 1000, got {}",
                self.max_neighbors
            );
        }
        let mut extras = std::collections::BTreeSet::new();
        for e in &self.extra_columns {
            if e.trim().is_empty() {
                return plan_err!("combine-redshifts: --extra-columns has an empty column name");
            }
            if !extras.insert(e.as_str()) {
                return plan_err!("combine-redshifts: --extra-columns names '{e}' twice");
            }
            if self.schema(&[]).field_with_name(e).is_ok() {
                return plan_err!(
                    "combine-redshifts: --extra-columns '{e}' is a column pz writes itself; map it with --map instead, or rename it"
                );
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for i in &self.inputs {
            if i.source.trim().is_empty() {
                return plan_err!(
                    "combine-redshifts: --input ={}: the source name is empty",
                    i.path.display()
                );
            }
            if !names.insert(i.source.as_str()) {
                return plan_err!(
                    "combine-redshifts: source name '{}' is given twice",
                    i.source
                );
            }
            if !i.path.exists() {
                return plan_err!(
                    "combine-redshifts: input {} does not exist",
                    i.path.display()
                );
            }
            for k in i.columns.keys() {
                if !STANDARD.contains(&k.as_str()) {
                    return plan_err!(
                        "combine-redshifts: source '{}': '{k}' is not a standard column ({})",
                        i.source,
                        STANDARD.join(", ")
                    );
                }
            }
        }
        if let Some(c) = self.flag_cut {
            if !VALID_FLAGS.contains(&c) {
                return plan_err!(
                    "combine-redshifts: --flag-cut {c} is not one of 0, 1, 2, 3, 4, 6"
                );
            }
        }
        Ok(())
    }

    async fn load(
        &self,
        ctx: &PzContext,
        idx: usize,
        extra_types: &mut BTreeMap<String, DataType>,
    ) -> Result<Loaded> {
        let input = &self.inputs[idx];
        let path = input.path.display().to_string();
        let kind = super::output::input_kind(&input.path);
        let table = format!("crc_input_{idx}");
        let opts = if kind == "CSV" {
            " OPTIONS ('format.has_header' 'true')"
        } else {
            ""
        };
        let what = format!("combine-redshifts: --input {}=", input.source);
        if let Err(e) = ctx
            .run_last(&format!(
                "CREATE EXTERNAL TABLE {table} STORED AS {kind} LOCATION {}{opts}",
                quote_str(&path)
            ))
            .await
        {
            return Err(registration_error(&what, &input.path, kind, e).await);
        }
        let schema = ctx
            .ctx
            .table(table.as_str())
            .await?
            .schema()
            .as_arrow()
            .clone();
        let source_col = |std: &str| -> Option<String> {
            match input.columns.get(std) {
                Some(c) => Some(c.clone()),
                None => schema.field_with_name(std).ok().map(|_| std.to_string()),
            }
        };
        for std in ["ra", "dec", "z"] {
            match source_col(std) {
                Some(c) if schema.field_with_name(&c).is_ok() => {}
                Some(c) => return plan_err!("combine-redshifts: {path} has no column '{c}' (mapped to {std})"),
                None => return plan_err!("combine-redshifts: {path} has no '{std}' column; map one with --map {}:{std}=<column>", input.source),
            }
        }
        // Every value the casts below rely on, checked where it is (file, row) first: a cast
        // failing inside the query names neither.
        let mut checks = Vec::new();
        for (std, expect) in [
            ("ra", Expect::Ra),
            ("dec", Expect::Dec),
            ("z", Expect::Number),
            ("z_err", Expect::Number),
            ("z_flag", Expect::Number),
            ("z_flag_homogenized", Expect::Number),
        ] {
            if let Some(c) = source_col(std).filter(|c| schema.field_with_name(c).is_ok()) {
                checks.push(ColumnCheck::new(&c, std, expect));
            }
        }
        for e in &self.extra_columns {
            let numeric = extra_types.get(e).is_some_and(|t| t.is_numeric());
            if numeric && schema.field_with_name(e).is_ok() {
                checks.push(ColumnCheck::new(e, e, Expect::Number));
            }
        }
        check_rows(&what, &input.path, kind, &checks).await?;
        let mut select = Vec::new();
        let mut quality_like = false;
        for (std, ty) in [
            ("id", "Utf8"),
            ("ra", "Float64"),
            ("dec", "Float64"),
            ("z", "Float64"),
            ("z_err", "Float64"),
            ("z_flag", "Float64"),
            ("survey", "Utf8"),
            ("z_flag_homogenized", "Int32"),
            ("instrument_type_homogenized", "Utf8"),
        ] {
            match source_col(std) {
                Some(c) => {
                    let f = schema.field_with_name(&c).map_err(|_| {
                        plan_datafusion_err!(
                            "combine-redshifts: {path} has no column '{c}' (mapped to {std})"
                        )
                    })?;
                    if std == "z_flag" {
                        quality_like = matches!(
                            f.data_type(),
                            DataType::Float32 | DataType::Float64 | DataType::Float16
                        );
                    }
                    select.push(format!("arrow_cast({}, '{ty}') AS {std}", quote_ident(&c)));
                }
                None => select.push(format!("arrow_cast(NULL, '{ty}') AS {std}")),
            }
        }
        for e in &self.extra_columns {
            match schema.field_with_name(e) {
                Ok(f) => {
                    let t = extra_types
                        .entry(e.clone())
                        .or_insert_with(|| f.data_type().clone())
                        .clone();
                    select.push(format!(
                        "arrow_cast({}, '{t}') AS {}",
                        quote_ident(e),
                        quote_ident(e)
                    ));
                }
                Err(_) => select.push(format!("arrow_cast(NULL, 'Utf8') AS {}", quote_ident(e))),
            }
        }
        let out = ctx
            .run_last(&format!("SELECT {} FROM {table}", select.join(", ")))
            .await?
            .ok_or_else(|| exec_datafusion_err!("no result"))?;
        let batch = concat_batches(&out.schema, &out.batches)?;
        let ra = col_f64(&batch, "ra")?;
        let dec = col_f64(&batch, "dec")?;
        for r in 0..batch.num_rows() {
            let (a, d) = (ra.value(r), dec.value(r));
            if ra.is_null(r)
                || dec.is_null(r)
                || !a.is_finite()
                || !d.is_finite()
                || !(-90.0..=90.0).contains(&d)
            {
                return plan_err!(
                    "combine-redshifts: {path} row {}: bad position (ra={}, dec={})",
                    r + 1,
                    if ra.is_null(r) {
                        "null".into()
                    } else {
                        a.to_string()
                    },
                    if dec.is_null(r) {
                        "null".into()
                    } else {
                        d.to_string()
                    }
                );
            }
        }
        if quality_like {
            let f = col_f64(&batch, "z_flag")?;
            quality_like = f.iter().flatten().all(|v| (0.0..=1.0).contains(&v));
        }
        let has_homogenized = source_col("z_flag_homogenized").is_some()
            && source_col("instrument_type_homogenized").is_some();
        Ok(Loaded {
            batch,
            quality_like,
            has_homogenized,
        })
    }

    /// (z_flag_homogenized, instrument_type_homogenized) for every row of one input.
    fn homogenize(&self, idx: usize, l: &Loaded, t: &Translation) -> Result<(Vec<i32>, Vec<char>)> {
        let input = &self.inputs[idx];
        let path = input.path.display();
        let b = &l.batch;
        let n = b.num_rows();
        let z = col_f64(b, "z")?;
        let flag = col_f64(b, "z_flag")?;
        let survey = col_str(b, "survey")?;
        let hflag = col_i32(b, "z_flag_homogenized")?;
        let htype = col_str(b, "instrument_type_homogenized")?;
        let (mut flags, mut types) = (Vec::with_capacity(n), Vec::with_capacity(n));
        for r in 0..n {
            let sname = if survey.is_null(r) {
                input.source.as_str()
            } else {
                survey.value(r)
            };
            if l.has_homogenized && !hflag.is_null(r) && !htype.is_null(r) {
                let f = hflag.value(r);
                let ty = htype.value(r).trim().chars().next().unwrap_or('?');
                if !VALID_FLAGS.contains(&f) || !['s', 'g', 'p'].contains(&ty) {
                    return plan_err!(
                        "combine-redshifts: {path} row {}: z_flag_homogenized {f} / instrument_type_homogenized '{}' are not valid (0–4 or 6; s, g or p)",
                        r + 1,
                        htype.value(r)
                    );
                }
                flags.push(f);
                types.push(ty);
                continue;
            }
            let rule = t.survey(sname);
            let ty = match (rule, input.instrument_type) {
                (_, Some(c)) => c,
                (Some(rule), None) => rule.instrument_type,
                (None, None) if l.quality_like => 's',
                (None, None) => {
                    return plan_err!(
                        "combine-redshifts: no flag translation for survey '{sname}' ({path}, row {}) in {}; add it there, or give z_flag_homogenized and instrument_type_homogenized",
                        r + 1,
                        t.source
                    )
                }
            };
            // No redshift, or no flag: nothing to vouch for it.
            let f = if z.is_null(r) || !z.value(r).is_finite() || flag.is_null(r) {
                0
            } else if l.quality_like {
                quality_flag(flag.value(r)).unwrap_or(0)
            } else {
                let Some(rule) = rule else {
                    return plan_err!(
                        "combine-redshifts: no flag translation for survey '{sname}' ({path}, row {}) in {}",
                        r + 1,
                        t.source
                    );
                };
                rule.flag(flag.value(r)).ok_or_else(|| {
                    plan_datafusion_err!(
                        "combine-redshifts: flag {} of survey '{}' ({path}, row {}) matches no value or rule in {}",
                        flag.value(r),
                        rule.name,
                        r + 1,
                        t.source
                    )
                })?
            };
            flags.push(f);
            types.push(ty);
        }
        Ok((flags, types))
    }

    pub async fn run(&self) -> Result<CrcSummary> {
        self.run_inner().await.map_err(|e| self.user_error(e))
    }

    /// An error from inside the pipeline, with the working tables named by the inputs they
    /// stand for.
    fn user_error(&self, e: DataFusionError) -> DataFusionError {
        let text = e.strip_backtrace();
        let mut renamed = text.clone();
        // Highest index first, so crc_input_1 does not cut into crc_input_12.
        for (i, input) in self.inputs.iter().enumerate().rev() {
            renamed = renamed.replace(
                &format!("crc_input_{i}"),
                &format!("--input {}={}", input.source, input.path.display()),
            );
        }
        if renamed == text {
            e
        } else {
            DataFusionError::Plan(renamed)
        }
    }

    async fn run_inner(&self) -> Result<CrcSummary> {
        let t0 = Instant::now();
        self.validate()?;
        StagedDir::check_free(&self.out, "combine-redshifts")?;
        let translation = match &self.translation {
            Some(p) => Translation::from_file(p)?,
            None => Translation::default_rules()?,
        };
        let ctx = PzContext::ephemeral();
        let mut extra_types = BTreeMap::new();
        let mut parts = Vec::new();
        let mut inputs = Vec::new();
        for i in 0..self.inputs.len() {
            let l = self.load(&ctx, i, &mut extra_types).await?;
            let (flags, types) = self.homogenize(i, &l, &translation)?;
            inputs.push(InputRecord {
                role: self.inputs[i].source.clone(),
                path: self.inputs[i].path.display().to_string(),
                rows: l.batch.num_rows() as u64,
                sha256: checksum(&self.inputs[i].path)?,
            });
            parts.push((i, l.batch, flags, types));
        }
        for e in &self.extra_columns {
            // load() records the type of every extra column an input has.
            if !extra_types.contains_key(e) {
                return plan_err!(
                    "combine-redshifts: --extra-columns '{e}': no input has this column"
                );
            }
        }
        let combined = self.combine(parts)?;
        let rows_in = combined.num_rows();
        let (result, groups, ties) = self.resolve(combined)?;

        let staged = StagedDir::create(&self.out, "combine-redshifts")?;
        let rows_out = result.num_rows();
        let file = self
            .write(&ctx, result, staged.path(), &inputs, rows_in, t0)
            .await
            .map_err(|e| staged.user_error(e))?;
        staged.commit()?;
        Ok(CrcSummary {
            output: self.out.join(file),
            rows_in,
            rows_out,
            duplicate_groups: groups,
            unresolved_ties: ties,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }

    fn schema(&self, extras: &[Field]) -> SchemaRef {
        let mut f = vec![
            Field::new("CRD_ID", DataType::Utf8, false),
            Field::new("id", DataType::Utf8, true),
            Field::new("ra", DataType::Float64, false),
            Field::new("dec", DataType::Float64, false),
            Field::new("z", DataType::Float64, true),
            Field::new("z_err", DataType::Float64, true),
            Field::new("z_flag", DataType::Float64, true),
            Field::new("survey", DataType::Utf8, true),
            Field::new("source", DataType::Utf8, false),
            Field::new("z_flag_homogenized", DataType::Int32, false),
            Field::new("instrument_type_homogenized", DataType::Utf8, false),
            Field::new("tie_result", DataType::Int32, true),
            Field::new("group_id", DataType::Int64, true),
        ];
        f.extend(extras.iter().cloned());
        Arc::new(Schema::new(f))
    }

    /// All inputs in one batch with CRD_ID, source and homogenized flags (tie_result and
    /// group_id still null).
    fn combine(
        &self,
        parts: Vec<(usize, RecordBatch, Vec<i32>, Vec<char>)>,
    ) -> Result<RecordBatch> {
        let extras: Vec<Field> = self
            .extra_columns
            .iter()
            .map(|e| {
                let t = parts
                    .iter()
                    .filter_map(|(_, b, _, _)| {
                        b.schema()
                            .field_with_name(e)
                            .ok()
                            .map(|f| f.data_type().clone())
                    })
                    .find(|t| *t != DataType::Utf8 && *t != DataType::Null)
                    .unwrap_or(DataType::Utf8);
                Field::new(e, t, true)
            })
            .collect();
        let schema = self.schema(&extras);
        let mut batches = Vec::new();
        for (i, b, flags, types) in parts {
            let n = b.num_rows();
            let source = &self.inputs[i].source;
            let mut cols: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|r| format!("CRD{}_{}", i + 1, r + 1)),
                )),
                b.column_by_name("id")
                    .cloned()
                    .unwrap_or_else(|| Arc::new(StringArray::new_null(n))),
            ];
            for c in ["ra", "dec", "z", "z_err", "z_flag", "survey"] {
                cols.push(
                    b.column_by_name(c)
                        .cloned()
                        .ok_or_else(|| exec_datafusion_err!("internal: {c}"))?,
                );
            }
            cols.push(Arc::new(StringArray::from_iter_values(
                std::iter::repeat_n(source.as_str(), n),
            )));
            cols.push(Arc::new(Int32Array::from(flags)));
            cols.push(Arc::new(StringArray::from_iter_values(
                types.iter().map(|c| c.to_string()),
            )));
            cols.push(Arc::new(Int32Array::new_null(n)));
            cols.push(Arc::new(Int64Array::new_null(n)));
            for f in &extras {
                let c = b
                    .column_by_name(f.name())
                    .cloned()
                    .unwrap_or_else(|| datafusion::arrow::array::new_null_array(f.data_type(), n));
                let c = if c.data_type() == f.data_type() {
                    c
                } else {
                    datafusion::arrow::compute::cast(&c, f.data_type())?
                };
                cols.push(c);
            }
            batches.push(RecordBatch::try_new(schema.clone(), cols)?);
        }
        Ok(concat_batches(&schema, &batches)?)
    }

    /// Duplicate groups, tie_result, group_id; then the mode, tie policy and flag cut.
    fn resolve(&self, all: RecordBatch) -> Result<(RecordBatch, usize, usize)> {
        let n = all.num_rows();
        let flags = col_i32(&all, "z_flag_homogenized")?;
        let mut tie: Vec<Option<i32>> = vec![None; n];
        let mut group: Vec<Option<i64>> = vec![None; n];
        let (mut n_groups, mut n_ties) = (0usize, 0usize);
        if self.mode != CrcMode::Concatenate {
            let ra = col_f64(&all, "ra")?;
            let dec = col_f64(&all, "dec")?;
            let z = col_f64(&all, "z")?;
            let types = col_str(&all, "instrument_type_homogenized")?;
            let pos: Vec<(f64, f64)> = ra
                .values()
                .iter()
                .zip(dec.values())
                .map(|(a, b)| (*a, *b))
                .collect();
            // Union–find over pairs closer than the radius; stars stay out.
            let mut parent: Vec<usize> = (0..n).collect();
            fn find(p: &mut [usize], mut x: usize) -> usize {
                while p[x] != x {
                    p[x] = p[p[x]];
                    x = p[x];
                }
                x
            }
            let is_star = |i: usize| flags.value(i) == 6;
            for m in nearest_within(&pos, &pos, self.radius_arcsec, self.max_neighbors + 1) {
                let (a, b) = (m.left as usize, m.right as usize);
                if a == b || is_star(a) || is_star(b) {
                    continue;
                }
                let (ra_, rb) = (find(&mut parent, a), find(&mut parent, b));
                if ra_ != rb {
                    parent[ra_.max(rb)] = ra_.min(rb);
                }
            }
            let mut members: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
            for (i, t) in tie.iter_mut().enumerate() {
                if is_star(i) {
                    *t = Some(3);
                    continue;
                }
                let r = find(&mut parent, i);
                members.entry(r).or_default().push(i);
            }
            let type_rank = |i: usize| match types.value(i) {
                "s" => 0,
                "g" => 1,
                _ => 2,
            };
            for (_, m) in members {
                if m.len() == 1 {
                    tie[m[0]] = Some(1);
                    continue;
                }
                n_groups += 1;
                let gid = n_groups as i64;
                let best_flag = m.iter().map(|&i| flags.value(i)).max().unwrap_or(0);
                let best_type = m
                    .iter()
                    .filter(|&&i| flags.value(i) == best_flag)
                    .map(|&i| type_rank(i))
                    .min()
                    .unwrap_or(0);
                let survivors: Vec<usize> = m
                    .iter()
                    .copied()
                    .filter(|&i| flags.value(i) == best_flag && type_rank(i) == best_type)
                    .collect();
                let zs: Vec<f64> = survivors
                    .iter()
                    .filter(|&&i| !z.is_null(i))
                    .map(|&i| z.value(i))
                    .collect();
                let spread = zs.iter().cloned().fold(f64::NEG_INFINITY, f64::max)
                    - zs.iter().cloned().fold(f64::INFINITY, f64::min);
                let agree =
                    survivors.len() == 1 || (zs.len() == survivors.len() && spread <= 0.001);
                for &i in &m {
                    group[i] = Some(gid);
                    tie[i] = Some(0);
                }
                if agree {
                    // Rows are in CRD order (source, then row), so the first is the smallest CRD_ID.
                    tie[survivors[0]] = Some(1);
                } else {
                    n_ties += 1;
                    for &i in &survivors {
                        tie[i] = Some(2);
                    }
                }
            }
        }
        let crd = col_str(&all, "CRD_ID")?;
        let mut keep = vec![true; n];
        if self.mode == CrcMode::ConcatenateAndRemoveDuplicates {
            let mut tied: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
            for i in 0..n {
                match tie[i] {
                    Some(0) => keep[i] = false,
                    Some(2) => {
                        if let Some(g) = group[i] {
                            tied.entry(g).or_default().push(i);
                        }
                    }
                    _ => {}
                }
            }
            for rows in tied.into_values() {
                match self.ties {
                    TiePolicy::KeepAll => {}
                    TiePolicy::RemoveAll => rows.iter().for_each(|&i| keep[i] = false),
                    TiePolicy::DrawOne => {
                        let u = seeded_uniform_str(self.seed, crd.value(rows[0]));
                        let pick = ((u * rows.len() as f64) as usize).min(rows.len() - 1);
                        for (k, &i) in rows.iter().enumerate() {
                            keep[i] = k == pick;
                        }
                    }
                }
            }
        }
        if let Some(cut) = self.flag_cut {
            for (i, k) in keep.iter_mut().enumerate() {
                if flags.value(i) < cut {
                    *k = false;
                }
            }
        }
        let schema = all.schema();
        let ti = schema.index_of("tie_result")?;
        let gi = schema.index_of("group_id")?;
        let mut cols = all.columns().to_vec();
        cols[ti] = Arc::new(Int32Array::from(tie));
        cols[gi] = Arc::new(Int64Array::from(group));
        let batch = RecordBatch::try_new(schema, cols)?;
        let mask = datafusion::arrow::array::BooleanArray::from(keep);
        Ok((filter_record_batch(&batch, &mask)?, n_groups, n_ties))
    }

    async fn write(
        &self,
        ctx: &PzContext,
        result: RecordBatch,
        dir: &Path,
        inputs: &[InputRecord],
        rows_in: usize,
        t0: Instant,
    ) -> Result<String> {
        use super::tsm::OutputFormat;
        let rows = result.num_rows();
        let table = MemTable::try_new(result.schema(), vec![vec![result]])?;
        ctx.ctx.register_table("crc_result", Arc::new(table))?;
        let (file, stored, opts) = match self.format {
            OutputFormat::Parquet => ("combined.parquet", "PARQUET", ""),
            OutputFormat::Csv => (
                "combined.csv",
                "CSV",
                " OPTIONS ('format.has_header' 'true')",
            ),
            OutputFormat::Hats => ("combined", "HATS", ""),
        };
        ctx.run_last(&format!(
            "COPY (SELECT * FROM crc_result) TO {} STORED AS {stored}{opts}",
            quote_str(&dir.join(file).display().to_string())
        ))
        .await?;
        let provenance = serde_json::json!({
            "pipeline": "combine-redshifts",
            "pz_version": crate::PZ_VERSION,
            "config": self,
            "inputs": inputs,
            "rows_in": rows_in,
            "output": {"path": self.out.join(file).display().to_string(), "rows": rows},
            "seconds": t0.elapsed().as_secs_f64(),
        });
        let p = dir.join("provenance.json");
        std::fs::write(
            &p,
            serde_json::to_string_pretty(&provenance).map_err(|e| exec_datafusion_err!("{e}"))?,
        )
        .map_err(|e| exec_datafusion_err!("{}: {e}", p.display()))?;
        Ok(file.to_string())
    }
}
