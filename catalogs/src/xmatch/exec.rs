//! `CrossmatchExec`: the aligned tasks as a parallel, streaming physical plan.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int32Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{concat_batches, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{exec_datafusion_err, internal_err, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;
use pz_udfs::xmatch::nearest_within;

use super::align::{align, Task};
use super::read::{f64_column, read_partitions};
use crate::hats::table::HatsTable;

/// What to cross-match.
#[derive(Debug, Clone)]
pub struct CrossmatchSpec {
    pub left: Arc<HatsTable>,
    pub right: Arc<HatsTable>,
    pub left_name: String,
    pub right_name: String,
    pub radius_arcsec: f64,
    pub n_neighbors: usize,
    /// One-to-one: each right row goes to at most one left row, the closest.
    pub unique: bool,
    /// Columns the query uses from each side (None: all). Unread columns come out null and
    /// are projected away above the plan.
    pub left_read: Option<Vec<String>>,
    pub right_read: Option<Vec<String>>,
}

impl CrossmatchSpec {
    /// Left columns, right columns (clashing names suffixed with their table's name),
    /// `dist_arcsec`, `match_rank`.
    pub fn output_schema(&self) -> SchemaRef {
        Self::schema_for(
            &self.left.catalog.schema,
            &self.right.catalog.schema,
            &self.left_name,
            &self.right_name,
        )
    }

    /// The output schema for inputs of these schemas and names.
    pub fn schema_for(
        ls: &SchemaRef,
        rs: &SchemaRef,
        left_name: &str,
        right_name: &str,
    ) -> SchemaRef {
        let (lsuf, rsuf) = if left_name == right_name {
            ("left".to_string(), "right".to_string())
        } else {
            (left_name.to_string(), right_name.to_string())
        };
        let mut fields = Vec::new();
        for f in ls.fields() {
            let clash = rs.field_with_name(f.name()).is_ok();
            let name = if clash {
                format!("{}_{lsuf}", f.name())
            } else {
                f.name().clone()
            };
            fields.push(Field::new(name, f.data_type().clone(), true));
        }
        for f in rs.fields() {
            let clash = ls.field_with_name(f.name()).is_ok();
            let name = if clash {
                format!("{}_{rsuf}", f.name())
            } else {
                f.name().clone()
            };
            fields.push(Field::new(name, f.data_type().clone(), true));
        }
        fields.push(Field::new("dist_arcsec", DataType::Float64, false));
        fields.push(Field::new("match_rank", DataType::Int32, false));
        Arc::new(Schema::new(fields))
    }

    /// The right margin catalog, when present and wide enough for the radius.
    fn usable_margin(&self) -> Option<&crate::hats::catalog::HatsCatalog> {
        let m = self.right.margin.as_deref()?;
        let threshold = m.properties.margin_threshold_arcsec?;
        (threshold >= self.radius_arcsec).then_some(m)
    }
}

/// The matches of one task, with the keys the one-to-one step needs.
struct TaskOutput {
    batch: RecordBatch,
    left_keys: Vec<u64>,
    right_keys: Vec<(u64, u64)>,
}

/// The columns of `full` to read: those named (plus position and index columns), in order.
fn read_schema(
    full: &SchemaRef,
    wanted: &Option<Vec<String>>,
    props: &crate::hats::properties::CatalogProperties,
) -> Result<SchemaRef> {
    let Some(w) = wanted else {
        return Ok(full.clone());
    };
    let keep: Vec<usize> = full
        .fields()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            let n = f.name();
            w.iter().any(|x| x == n)
                || *n == props.ra_column
                || *n == props.dec_column
                || props.healpix_column.as_deref() == Some(n.as_str())
        })
        .map(|(i, _)| i)
        .collect();
    Ok(Arc::new(full.project(&keep)?))
}

/// `rows`' columns laid out as `full`, null where a column was not read.
fn widen(rows: &RecordBatch, full: &SchemaRef, idx: &UInt32Array) -> Result<Vec<ArrayRef>> {
    full.fields()
        .iter()
        .map(|f| match rows.column_by_name(f.name()) {
            Some(c) => Ok(take(c.as_ref(), idx, None)?),
            None => Ok(datafusion::arrow::array::new_null_array(
                f.data_type(),
                idx.len(),
            )),
        })
        .collect()
}

/// (RA, Dec) pairs for the kernel. A null coordinate becomes NaN, which the kernel matches
/// with nothing: the value buffer under a null holds whatever was there (often 0, 0).
fn positions(ra: &Float64Array, dec: &Float64Array) -> Vec<(f64, f64)> {
    ra.iter()
        .zip(dec.iter())
        .map(|p| match p {
            (Some(a), Some(d)) => (a, d),
            _ => (f64::NAN, f64::NAN),
        })
        .collect()
}

fn run_task(
    spec: &CrossmatchSpec,
    schema: &SchemaRef,
    task_index: usize,
    task: &Task,
) -> Result<TaskOutput> {
    let left = &spec.left.catalog;
    let right = &spec.right.catalog;
    let lschema = read_schema(&left.schema, &spec.left_read, &left.properties)?;
    let rschema = read_schema(&right.schema, &spec.right_read, &right.properties)?;
    let lrows = read_partitions(
        left,
        &[task.left_partition],
        &[task.pixel.range29()],
        &lschema,
    )?;
    let mut rbatches = vec![read_partitions(
        right,
        &task.right_partitions,
        &task.search_ranges,
        &rschema,
    )?];
    if let Some(m) = spec.usable_margin() {
        rbatches.push(read_partitions(
            m,
            &task.margin_partitions,
            &task.search_ranges,
            &rschema,
        )?);
    }
    let rrows = concat_batches(&rschema, &rbatches)?;
    let (lra, ldec) = (
        f64_column(&lrows, &left.properties.ra_column)?,
        f64_column(&lrows, &left.properties.dec_column)?,
    );
    let (rra, rdec) = (
        f64_column(&rrows, &right.properties.ra_column)?,
        f64_column(&rrows, &right.properties.dec_column)?,
    );
    let lpos = positions(&lra, &ldec);
    let rpos = positions(&rra, &rdec);
    // One-to-one needs more candidates than k: a left row whose nearest right row goes to a
    // closer left row falls back to its next nearest.
    let k_search = if spec.unique {
        (4 * spec.n_neighbors).max(16)
    } else {
        spec.n_neighbors
    };
    let matches = nearest_within(&lpos, &rpos, spec.radius_arcsec, k_search);

    let li = UInt32Array::from_iter_values(matches.iter().map(|m| m.left));
    let ri = UInt32Array::from_iter_values(matches.iter().map(|m| m.right));
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    cols.extend(widen(&lrows, &left.schema, &li)?);
    cols.extend(widen(&rrows, &right.schema, &ri)?);
    cols.push(Arc::new(Float64Array::from_iter_values(
        matches.iter().map(|m| m.dist_arcsec),
    )));
    cols.push(Arc::new(Int32Array::from_iter_values(
        matches.iter().map(|m| m.rank as i32),
    )));
    let batch = RecordBatch::try_new(schema.clone(), cols)?;
    let left_keys = matches
        .iter()
        .map(|m| ((task_index as u64) << 32) | m.left as u64)
        .collect();
    let right_keys = matches
        .iter()
        .map(|m| {
            (
                rpos[m.right as usize].0.to_bits(),
                rpos[m.right as usize].1.to_bits(),
            )
        })
        .collect();
    Ok(TaskOutput {
        batch,
        left_keys,
        right_keys,
    })
}

/// One-to-one assignment: pairs in order of distance (ties by left, then right key); a pair
/// is kept when its right row is still free and its left row has fewer than k pairs.
/// Ranks are renumbered among the kept pairs.
fn assign_unique(outputs: Vec<TaskOutput>, schema: &SchemaRef, k: usize) -> Result<RecordBatch> {
    let batches: Vec<RecordBatch> = outputs.iter().map(|o| o.batch.clone()).collect();
    let all = concat_batches(schema, &batches)?;
    let left_keys: Vec<u64> = outputs
        .iter()
        .flat_map(|o| o.left_keys.iter().copied())
        .collect();
    let right_keys: Vec<(u64, u64)> = outputs
        .iter()
        .flat_map(|o| o.right_keys.iter().copied())
        .collect();
    let n = all.num_rows();
    let dist_col = all
        .column(schema.fields().len() - 2)
        .as_any()
        .downcast_ref::<Float64Array>()
        .ok_or_else(|| exec_datafusion_err!("crossmatch: dist_arcsec is not Float64"))?
        .clone();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        dist_col
            .value(a)
            .total_cmp(&dist_col.value(b))
            .then(left_keys[a].cmp(&left_keys[b]))
            .then(right_keys[a].cmp(&right_keys[b]))
    });
    let mut taken: std::collections::HashSet<(u64, u64)> = Default::default();
    let mut per_left: HashMap<u64, i32> = HashMap::new();
    let mut kept: Vec<(usize, i32)> = Vec::new();
    for i in order {
        if taken.contains(&right_keys[i]) {
            continue;
        }
        let c = per_left.entry(left_keys[i]).or_insert(0);
        if *c as usize >= k {
            continue;
        }
        *c += 1;
        taken.insert(right_keys[i]);
        kept.push((i, *c));
    }
    // Back to left order, nearest first.
    kept.sort_by_key(|&(i, rank)| (left_keys[i], rank));
    let idx = UInt32Array::from_iter_values(kept.iter().map(|&(i, _)| i as u32));
    let mut cols: Vec<ArrayRef> = Vec::new();
    for c in all.columns().iter().take(all.num_columns() - 1) {
        cols.push(take(c.as_ref(), &idx, None)?);
    }
    cols.push(Arc::new(Int32Array::from_iter_values(
        kept.iter().map(|&(_, r)| r),
    )));
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// The cross-match as a physical plan: tasks spread over output partitions, each task one
/// batch; with `unique`, one partition that assigns pairs globally.
#[derive(Debug)]
pub struct CrossmatchExec {
    spec: CrossmatchSpec,
    tasks: Arc<Vec<Task>>,
    /// Task indices per output partition.
    assignment: Vec<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// Keeps temporary inputs alive while the plan exists.
    scratch: Option<Arc<dyn std::any::Any + Send + Sync>>,
}

impl CrossmatchExec {
    /// Ties the life of temporary input catalogs to this plan.
    pub fn with_scratch(mut self, scratch: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        self.scratch = Some(scratch);
        self
    }

    pub fn try_new(spec: CrossmatchSpec, target_partitions: usize) -> Result<Self> {
        let margin = spec.usable_margin();
        let tasks = align(
            &spec.left.catalog,
            &spec.right.catalog,
            margin,
            spec.radius_arcsec,
        );
        let n = if spec.unique {
            1
        } else {
            target_partitions.max(1).min(tasks.len().max(1))
        };
        let mut assignment = vec![Vec::new(); n];
        for (i, _) in tasks.iter().enumerate() {
            assignment[i % n].push(i);
        }
        let schema = spec.output_schema();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(n),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(CrossmatchExec {
            spec,
            tasks: Arc::new(tasks),
            assignment,
            schema,
            properties,
            scratch: None,
        })
    }

    pub fn tasks(&self) -> &[Task] {
        &self.tasks
    }
}

impl DisplayAs for CrossmatchExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "CrossmatchExec: left={}, right={}, radius_arcsec={}, n_neighbors={}, unique={}, tasks={}, margin={}",
            self.spec.left_name,
            self.spec.right_name,
            self.spec.radius_arcsec,
            self.spec.n_neighbors,
            self.spec.unique,
            self.tasks.len(),
            if self.spec.usable_margin().is_some() { "catalog" } else { "neighbour partitions" }
        )
    }
}

impl ExecutionPlan for CrossmatchExec {
    fn name(&self) -> &str {
        "CrossmatchExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !children.is_empty() {
            return internal_err!("CrossmatchExec has no children");
        }
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let Some(mine) = self.assignment.get(partition).cloned() else {
            return internal_err!("CrossmatchExec has no partition {partition}");
        };
        let spec = self.spec.clone();
        let tasks = Arc::clone(&self.tasks);
        let schema = self.schema.clone();
        let scratch = self.scratch.clone();
        if spec.unique {
            let k = spec.n_neighbors;
            let fut = async move {
                let out = tokio::task::spawn_blocking(move || -> Result<RecordBatch> {
                    let mut outputs = Vec::with_capacity(mine.len());
                    for i in mine {
                        outputs.push(run_task(&spec, &schema, i, &tasks[i])?);
                    }
                    let out = assign_unique(outputs, &schema, k);
                    drop(scratch);
                    out
                })
                .await
                .map_err(|e| exec_datafusion_err!("crossmatch task failed: {e}"))??;
                Ok(out)
            };
            let stream = futures::stream::once(fut);
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                stream,
            )));
        }
        let stream = futures::stream::iter(mine).then(move |i| {
            let (spec, tasks, schema) = (spec.clone(), Arc::clone(&tasks), schema.clone());
            // Temporary inputs must outlive every task that reads them.
            let keep = scratch.clone();
            async move {
                tokio::task::spawn_blocking(move || {
                    let out = run_task(&spec, &schema, i, &tasks[i]).map(|o| o.batch);
                    drop(keep);
                    out
                })
                .await
                .map_err(|e| exec_datafusion_err!("crossmatch task failed: {e}"))?
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            stream,
        )))
    }
}
