//! `HatsTable`: a HATS catalog as a DataFusion table with HEALPix partition pruning.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{plan_datafusion_err, plan_err, DFSchema, Result};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use super::catalog::HatsCatalog;
use super::prune::{regions_from_filters, select_partitions};

/// How a table finds its margin catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarginSpec {
    /// Look for a sibling margin catalog whose primary is this one.
    Auto,
    /// No margin.
    Disabled,
    /// This directory.
    Path(String),
}

impl MarginSpec {
    /// From an OPTIONS value: a path, or `none`/`auto`.
    pub fn parse(v: Option<&str>) -> Self {
        match v.map(str::trim) {
            None | Some("") | Some("auto") => MarginSpec::Auto,
            Some("none") | Some("false") => MarginSpec::Disabled,
            Some(p) => MarginSpec::Path(p.to_string()),
        }
    }

    pub fn as_option(&self) -> String {
        match self {
            MarginSpec::Auto => "auto".into(),
            MarginSpec::Disabled => "none".into(),
            MarginSpec::Path(p) => p.clone(),
        }
    }
}

/// A HATS catalog (and its margin, when it has one) as a table.
#[derive(Debug, Clone)]
pub struct HatsTable {
    pub location: String,
    pub catalog: Arc<HatsCatalog>,
    pub margin: Option<Arc<HatsCatalog>>,
    pub margin_spec: MarginSpec,
}

impl HatsTable {
    /// Opens the catalog at `location` and resolves its margin.
    pub fn open(location: &str, margin_spec: MarginSpec) -> Result<Self> {
        let catalog = HatsCatalog::open(location)?;
        let margin = match &margin_spec {
            MarginSpec::Disabled => None,
            MarginSpec::Path(p) => {
                let m = HatsCatalog::open(p)?;
                if !m.is_margin() {
                    return plan_err!(
                        "'{p}' is given as the margin of {} but its dataproduct_type is {}, not margin",
                        catalog.root.display(),
                        m.properties.catalog_type.as_str()
                    );
                }
                Some(m)
            }
            MarginSpec::Auto if catalog.is_margin() => None,
            MarginSpec::Auto => catalog.discover_margin()?,
        };
        Ok(HatsTable {
            location: location.to_string(),
            catalog: Arc::new(catalog),
            margin: margin.map(Arc::new),
            margin_spec,
        })
    }
}

#[async_trait]
impl TableProvider for HatsTable {
    fn schema(&self) -> SchemaRef {
        self.catalog.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune partitions (and row groups) but every row is still checked above.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let cat = &self.catalog;
        let props = &cat.properties;
        let regions = regions_from_filters(filters, &props.ra_column, &props.dec_column);
        let pixels: Vec<_> = cat.partitions.iter().map(|p| p.pixel).collect();
        let selected = select_partitions(&pixels, &regions, cat.max_order().max(1));

        let mut files: Vec<(std::path::PathBuf, u64)> = Vec::new();
        for &i in &selected {
            files.extend(cat.partitions[i].files(&cat.root)?);
        }
        for (path, size) in &files {
            check_parquet_tail(path, *size)?;
            cat.check_file(path)?;
        }

        let projected_schema = match projection {
            Some(p) => Arc::new(cat.schema.project(p)?),
            None => cat.schema.clone(),
        };
        let info = ScanInfo {
            catalog: cat.name().to_string(),
            location: cat.root.display().to_string(),
            total_partitions: cat.partitions.len(),
            scanned_partitions: selected.len(),
            files: files.len(),
            regions: regions.iter().map(|r| r.to_string()).collect(),
        };
        if files.is_empty() {
            let empty: Arc<dyn ExecutionPlan> = Arc::new(EmptyExec::new(projected_schema));
            return Ok(Arc::new(HatsScanExec::new(empty, info)));
        }

        let groups = balance(files, state.config().target_partitions().max(1));
        let mut source = ParquetSource::new(cat.schema.clone());
        if let Some(pred) = conjunction(filters.iter().cloned()) {
            let df_schema = DFSchema::try_from(cat.schema.as_ref().clone())?;
            if let Ok(physical) = state.create_physical_expr(pred, &df_schema) {
                source = source.with_predicate(physical);
            }
        }
        let config =
            FileScanConfigBuilder::new(ObjectStoreUrl::local_filesystem(), Arc::new(source))
                .with_file_groups(groups)
                .with_limit(limit)
                .with_projection_indices(projection.cloned())?
                .build();
        let exec: Arc<dyn ExecutionPlan> = DataSourceExec::from_data_source(config);
        Ok(Arc::new(HatsScanExec::new(exec, info)))
    }
}

/// Spreads files over `n` groups, largest first onto the lightest group, keeping each group
/// in pixel order.
fn balance(files: Vec<(std::path::PathBuf, u64)>, n: usize) -> Vec<FileGroup> {
    let n = n.min(files.len()).max(1);
    let mut order: Vec<usize> = (0..files.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(files[i].1));
    let mut load = vec![0u64; n];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in order {
        let g = (0..n).min_by_key(|&g| load[g]).unwrap_or(0);
        load[g] += files[i].1;
        members[g].push(i);
    }
    members
        .into_iter()
        .filter(|m| !m.is_empty())
        .map(|mut m| {
            m.sort_unstable();
            FileGroup::new(
                m.into_iter()
                    .map(|i| PartitionedFile::new(object_path(&files[i].0), files[i].1))
                    .collect(),
            )
        })
        .collect()
}

/// An object-store path for a local absolute path.
fn object_path(p: &Path) -> String {
    p.to_string_lossy().trim_start_matches('/').to_string()
}

/// A Parquet file ends with its footer length and `PAR1`; a truncated file does not.
/// Checking here names the file, where the reader's error would not.
fn check_parquet_tail(path: &Path, size: u64) -> Result<()> {
    let bad =
        |why: &str| plan_datafusion_err!("{} is not a valid Parquet file: {why}", path.display());
    if size < 12 {
        return Err(bad(&format!("only {size} bytes (truncated?)")));
    }
    let mut f = std::fs::File::open(path).map_err(|e| bad(&e.to_string()))?;
    let mut tail = [0u8; 8];
    f.seek(SeekFrom::End(-8)).map_err(|e| bad(&e.to_string()))?;
    f.read_exact(&mut tail).map_err(|e| bad(&e.to_string()))?;
    if &tail[4..] != b"PAR1" {
        return Err(bad("no PAR1 magic at the end (truncated?)"));
    }
    let footer = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as u64;
    if footer + 12 > size {
        return Err(bad(&format!(
            "footer of {footer} bytes does not fit in {size} bytes (truncated?)"
        )));
    }
    Ok(())
}

/// What a HATS scan reads, shown by EXPLAIN and carried through Ballista.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanInfo {
    pub catalog: String,
    pub location: String,
    pub total_partitions: usize,
    pub scanned_partitions: usize,
    pub files: usize,
    pub regions: Vec<String>,
}

/// The scan of a HATS catalog: the pruned Parquet scan plus what pruning did.
#[derive(Debug)]
pub struct HatsScanExec {
    pub input: Arc<dyn ExecutionPlan>,
    pub info: ScanInfo,
}

impl HatsScanExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, info: ScanInfo) -> Self {
        HatsScanExec { input, info }
    }
}

impl DisplayAs for HatsScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let i = &self.info;
        write!(
            f,
            "HatsScanExec: catalog={}, partitions={}/{}, files={}",
            i.catalog, i.scanned_partitions, i.total_partitions, i.files
        )?;
        if !i.regions.is_empty() {
            write!(f, ", pruned_by=[{}]", i.regions.join(", "))?;
        }
        Ok(())
    }
}

impl ExecutionPlan for HatsScanExec {
    fn name(&self) -> &str {
        "HatsScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if children.len() != 1 {
            return plan_err!("HatsScanExec takes one child, got {}", children.len());
        }
        Ok(Arc::new(HatsScanExec::new(
            children.remove(0),
            self.info.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}
