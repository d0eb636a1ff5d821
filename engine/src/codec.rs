//! Extension codecs that carry pz's plan nodes (HATS tables and scans, pz functions) across
//! process boundaries: Ballista's scheduler and executors, or any datafusion-proto user.
//!
//! Each codec wraps another (Ballista's own, or DataFusion's default) and tags every buffer
//! with one byte: `PZ` for nodes pz encodes, `INNER` for those the wrapped codec handles.

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{exec_datafusion_err, exec_err, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::{DefaultLogicalExtensionCodec, LogicalExtensionCodec};
use datafusion_proto::physical_plan::{
    DefaultPhysicalExtensionCodec, PhysicalExtensionCodec, PhysicalProtoConverterExtension,
};
use pz_catalogs::hats::table::{MarginSpec, ScanInfo};
use pz_catalogs::{HatsScanExec, HatsTable};
use pz_udfs::photoz::photoz_udf::PhotozFunc;
use pz_udfs::photoz::{Model, ModelRegistry};
use serde::{Deserialize, Serialize};

const INNER: u8 = 0;
const PZ: u8 = 1;

#[derive(Serialize, Deserialize)]
struct HatsTableMsg {
    location: String,
    margin: String,
}

#[derive(Serialize, Deserialize)]
struct HatsScanMsg {
    catalog: String,
    location: String,
    total_partitions: usize,
    scanned_partitions: usize,
    files: usize,
    regions: Vec<String>,
}

fn pz_udf(name: &str) -> Option<Arc<ScalarUDF>> {
    pz_udfs::scalar_functions()
        .into_iter()
        .find(|f| f.name() == name)
}

fn pz_udaf(name: &str) -> Option<Arc<AggregateUDF>> {
    pz_udfs::aggregate_functions()
        .into_iter()
        .find(|f| f.name() == name)
}

const PHOTOZ_BOUND: u8 = b'B';
const PHOTOZ_REGISTRY: u8 = b'R';

/// `photoz` carries its model(s): bound to one model (after planning) it ships that model;
/// unplanned, it ships every model of its registry.
fn encode_photoz(udf: &ScalarUDF, buf: &mut Vec<u8>) -> Result<bool> {
    let Some(f) = udf.inner().downcast_ref::<PhotozFunc>() else {
        return Ok(false);
    };
    match f.bound_model() {
        Some(m) => {
            buf.push(PHOTOZ_BOUND);
            buf.extend_from_slice(&m.to_bytes()?);
        }
        None => {
            buf.push(PHOTOZ_REGISTRY);
            for m in f.registry().list() {
                let b = m.to_bytes()?;
                buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
                buf.extend_from_slice(&b);
            }
        }
    }
    Ok(true)
}

fn decode_photoz(buf: &[u8]) -> Result<Arc<ScalarUDF>> {
    match buf.split_first() {
        Some((&PHOTOZ_BOUND, rest)) => Ok(Arc::new(ScalarUDF::new_from_impl(PhotozFunc::bound(
            Arc::new(Model::from_bytes(rest)?),
        )))),
        Some((&PHOTOZ_REGISTRY, mut rest)) => {
            let registry = ModelRegistry::new();
            while !rest.is_empty() {
                if rest.len() < 8 {
                    return exec_err!("pz codec: truncated photoz model list");
                }
                let (len, tail) = rest.split_at(8);
                let len = u64::from_le_bytes(len.try_into().unwrap_or([0; 8])) as usize;
                if tail.len() < len {
                    return exec_err!("pz codec: truncated photoz model");
                }
                registry.insert(Model::from_bytes(&tail[..len])?);
                rest = &tail[len..];
            }
            Ok(pz_udfs::photoz::photoz_udf::photoz_udf(registry))
        }
        _ => exec_err!("pz codec: photoz arrived without its model"),
    }
}

fn split(buf: &[u8]) -> Result<(u8, &[u8])> {
    buf.split_first()
        .map(|(t, rest)| (*t, rest))
        .ok_or_else(|| exec_datafusion_err!("pz codec: empty buffer"))
}

fn to_json<T: Serialize>(v: &T, buf: &mut Vec<u8>) -> Result<()> {
    buf.push(PZ);
    serde_json::to_writer(buf, v).map_err(|e| exec_datafusion_err!("pz codec: {e}"))
}

fn from_json<'a, T: Deserialize<'a>>(buf: &'a [u8]) -> Result<T> {
    serde_json::from_slice(buf).map_err(|e| exec_datafusion_err!("pz codec: {e}"))
}

/// Logical codec: HATS tables travel as their location and margin choice.
#[derive(Debug)]
pub struct PzLogicalCodec {
    inner: Arc<dyn LogicalExtensionCodec>,
}

impl PzLogicalCodec {
    pub fn new(inner: Arc<dyn LogicalExtensionCodec>) -> Self {
        PzLogicalCodec { inner }
    }
}

impl Default for PzLogicalCodec {
    fn default() -> Self {
        Self::new(Arc::new(DefaultLogicalExtensionCodec {}))
    }
}

impl LogicalExtensionCodec for PzLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        match split(buf)? {
            (INNER, rest) => self.inner.try_decode(rest, inputs, ctx),
            (tag, _) => exec_err!("pz codec: no logical extension node with tag {tag}"),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        buf.push(INNER);
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match split(buf)? {
            (PZ, rest) => {
                let m: HatsTableMsg = from_json(rest)?;
                let t = HatsTable::open(&m.location, MarginSpec::parse(Some(&m.margin)))?;
                Ok(Arc::new(t))
            }
            (_, rest) => self
                .inner
                .try_decode_table_provider(rest, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(t) = (node.as_ref() as &dyn std::any::Any).downcast_ref::<HatsTable>() {
            let msg = HatsTableMsg {
                location: t.catalog.root.display().to_string(),
                margin: t.margin_spec.as_option(),
            };
            return to_json(&msg, buf);
        }
        buf.push(INNER);
        self.inner.try_encode_table_provider(table_ref, node, buf)
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        match split(buf)? {
            (PZ, _) => Ok(Arc::new(pz_catalogs::hats::format::HatsFormatFactory)),
            (_, rest) => self.inner.try_decode_file_format(rest, ctx),
        }
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        if node
            .as_ref()
            .is::<pz_catalogs::hats::format::HatsFormatFactory>()
        {
            buf.push(PZ);
            return Ok(());
        }
        buf.push(INNER);
        self.inner.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if name == pz_udfs::photoz::photoz_udf::NAME {
            return decode_photoz(buf);
        }
        if let Some(f) = pz_udf(name) {
            return Ok(f);
        }
        self.inner.try_decode_udf(name, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match pz_udaf(name) {
            Some(f) => Ok(f),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_photoz(node, buf)? {
            return Ok(());
        }
        self.inner.try_encode_udf(node, buf)
    }
}

/// Physical codec: a HATS scan travels as its display facts; its Parquet child is encoded
/// by DataFusion itself.
#[derive(Debug)]
pub struct PzPhysicalCodec {
    inner: Arc<dyn PhysicalExtensionCodec>,
}

impl PzPhysicalCodec {
    pub fn new(inner: Arc<dyn PhysicalExtensionCodec>) -> Self {
        PzPhysicalCodec { inner }
    }
}

impl Default for PzPhysicalCodec {
    fn default() -> Self {
        Self::new(Arc::new(DefaultPhysicalExtensionCodec {}))
    }
}

impl PhysicalExtensionCodec for PzPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match split(buf)? {
            (PZ, rest) => {
                let m: HatsScanMsg = from_json(rest)?;
                let [input] = inputs else {
                    return exec_err!(
                        "pz codec: HatsScanExec needs one input, got {}",
                        inputs.len()
                    );
                };
                let info = ScanInfo {
                    catalog: m.catalog,
                    location: m.location,
                    total_partitions: m.total_partitions,
                    scanned_partitions: m.scanned_partitions,
                    files: m.files,
                    regions: m.regions,
                };
                Ok(Arc::new(HatsScanExec::new(input.clone(), info)))
            }
            (_, rest) => self.inner.try_decode(rest, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = (node.as_ref() as &dyn std::any::Any).downcast_ref::<HatsScanExec>() {
            let i = &scan.info;
            let msg = HatsScanMsg {
                catalog: i.catalog.clone(),
                location: i.location.clone(),
                total_partitions: i.total_partitions,
                scanned_partitions: i.scanned_partitions,
                files: i.files,
                regions: i.regions.clone(),
            };
            return to_json(&msg, buf);
        }
        buf.push(INNER);
        self.inner.try_encode(node, buf, proto_converter)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        if name == pz_udfs::photoz::photoz_udf::NAME {
            return decode_photoz(buf);
        }
        if let Some(f) = pz_udf(name) {
            return Ok(f);
        }
        self.inner.try_decode_udf(name, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        match pz_udaf(name) {
            Some(f) => Ok(f),
            None => self.inner.try_decode_udaf(name, buf),
        }
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        if encode_photoz(node, buf)? {
            return Ok(());
        }
        self.inner.try_encode_udf(node, buf)
    }
}
