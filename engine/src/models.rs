//! CREATE MODEL, DROP MODEL, SHOW MODELS and DESCRIBE MODEL: informing models from a query,
//! keeping them in the session's registry and the data directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::{exec_datafusion_err, plan_err, Result};
use pz_udfs::photoz::registry::UnusableModel;
use pz_udfs::photoz::{Algorithm, Model};

/// The training SELECT's columns: the numeric ones as f64 (null → NaN), and the name and
/// type of every other one.
pub struct TrainingColumns {
    pub names: Vec<String>,
    pub values: Vec<Vec<f64>>,
    pub non_numeric: Vec<(String, String)>,
}

/// Columns of the training batches as f64 (null → NaN). Non-numeric columns are set aside
/// with their types, so `Model::inform_typed` can say a feature has the wrong type rather
/// than that it is missing.
pub fn batches_to_columns(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<TrainingColumns> {
    let mut names = Vec::new();
    let mut values = Vec::new();
    let mut non_numeric = Vec::new();
    for (i, f) in schema.fields().iter().enumerate() {
        if !(f.data_type().is_numeric()) {
            non_numeric.push((f.name().clone(), f.data_type().to_string()));
            continue;
        }
        let mut col = Vec::new();
        for b in batches {
            let a = cast(b.column(i), &DataType::Float64)?;
            let a = a.as_any().downcast_ref::<Float64Array>().ok_or_else(|| {
                exec_datafusion_err!("column {} did not cast to Float64", f.name())
            })?;
            col.extend((0..a.len()).map(|r| if a.is_null(r) { f64::NAN } else { a.value(r) }));
        }
        names.push(f.name().clone());
        values.push(col);
    }
    if names.is_empty() {
        return plan_err!(
            "the training SELECT has no numeric columns (it has: {})",
            crate::column_list(schema)
        );
    }
    Ok(TrainingColumns {
        names,
        values,
        non_numeric,
    })
}

/// Informs a model (on a blocking thread: informing is CPU-bound and may take seconds).
pub async fn inform(
    name: String,
    algorithm: &str,
    options: Vec<(String, String)>,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    query: String,
) -> Result<Model> {
    let algorithm = Algorithm::parse(algorithm)?;
    let columns = batches_to_columns(&schema, &batches)?;
    drop(batches);
    let options: BTreeMap<String, String> = options.into_iter().collect();
    tokio::task::spawn_blocking(move || {
        Model::inform_typed(
            &name,
            algorithm,
            options,
            columns.names,
            columns.values,
            &columns.non_numeric,
            crate::PZ_VERSION,
            Some(query),
        )
    })
    .await
    .map_err(|e| exec_datafusion_err!("informing the model stopped: {e}"))?
}

fn string_col(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

/// One row about a model just made.
pub fn created_batch(m: &Model) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("algorithm", DataType::Utf8, false),
        Field::new("n_train", DataType::Int64, false),
        Field::new("inform_seconds", DataType::Float64, false),
        Field::new("warnings", DataType::Utf8, false),
    ]));
    Ok(RecordBatch::try_new(
        schema,
        vec![
            string_col(vec![m.name.clone()]),
            string_col(vec![m.algorithm.name().to_string()]),
            Arc::new(Int64Array::from(vec![m.provenance.n_train as i64])),
            Arc::new(Float64Array::from(vec![m.provenance.inform_seconds])),
            string_col(vec![m.provenance.warnings.join("; ")]),
        ],
    )?)
}

/// SHOW MODELS: the usable models, then the stored ones that could not be loaded (their
/// other columns null, `status` says why).
pub fn show_batch(models: &[Arc<Model>], unusable: &[UnusableModel]) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("model", DataType::Utf8, false),
        Field::new("algorithm", DataType::Utf8, true),
        Field::new("n_features", DataType::Int64, true),
        Field::new("n_train", DataType::Int64, true),
        Field::new("grid", DataType::Utf8, true),
        Field::new("pz_version", DataType::Utf8, true),
        Field::new("created_unix", DataType::Int64, true),
        Field::new("status", DataType::Utf8, false),
    ]));
    let n_unusable = unusable.len();
    let text = |f: &dyn Fn(&Model) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter(
            models
                .iter()
                .map(|m| Some(f(m)))
                .chain(std::iter::repeat_n(None, n_unusable)),
        ))
    };
    let int = |f: &dyn Fn(&Model) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter(
            models
                .iter()
                .map(|m| Some(f(m)))
                .chain(std::iter::repeat_n(None, n_unusable)),
        ))
    };
    let names = models
        .iter()
        .map(|m| m.name.clone())
        .chain(unusable.iter().map(|u| u.name.clone()))
        .collect();
    let status = models
        .iter()
        .map(|_| "ok".to_string())
        .chain(
            unusable
                .iter()
                .map(|u| format!("unusable: {} ({})", u.reason, u.file.display())),
        )
        .collect();
    Ok(RecordBatch::try_new(
        schema,
        vec![
            string_col(names),
            text(&|m| m.algorithm.name().to_string()),
            int(&|m| m.features.len() as i64),
            int(&|m| m.provenance.n_train as i64),
            text(&|m| format!("{}..{} ({} points)", m.grid.zmin, m.grid.zmax, m.grid.nz)),
            text(&|m| m.provenance.pz_version.clone()),
            int(&|m| m.provenance.created_unix as i64),
            string_col(status),
        ],
    )?)
}

/// DESCRIBE MODEL: property / value rows.
pub fn describe_batch(m: &Model) -> Result<RecordBatch> {
    let mut rows: Vec<(String, String)> = vec![
        ("model".into(), m.name.clone()),
        ("algorithm".into(), m.algorithm.name().into()),
        ("format_version".into(), m.format_version.to_string()),
        (
            "features".into(),
            m.features
                .iter()
                .map(|f| f.column.clone())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        ("bands".into(), m.photometry.bands.join(",")),
        (
            "ref_band".into(),
            m.photometry.bands[m.photometry.ref_band].clone(),
        ),
        (
            "mag_limits".into(),
            m.photometry
                .mag_limits
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(","),
        ),
        (
            "nondetect_val".into(),
            m.photometry.nondetect_val.to_string(),
        ),
        (
            "grid".into(),
            format!("zmin={} zmax={} nz={}", m.grid.zmin, m.grid.zmax, m.grid.nz),
        ),
        ("n_train".into(), m.provenance.n_train.to_string()),
        (
            "n_train_dropped".into(),
            m.provenance.n_train_dropped.to_string(),
        ),
        (
            "training_sha256".into(),
            m.provenance.training_checksum.clone(),
        ),
        (
            "training_query".into(),
            m.provenance.training_query.clone().unwrap_or_default(),
        ),
        ("pz_version".into(), m.provenance.pz_version.clone()),
        ("created_unix".into(), m.provenance.created_unix.to_string()),
        (
            "inform_seconds".into(),
            format!("{:.3}", m.provenance.inform_seconds),
        ),
    ];
    for (i, w) in m.provenance.warnings.iter().enumerate() {
        rows.push((format!("warning.{}", i + 1), w.clone()));
    }
    for (k, v) in &m.options {
        rows.push((format!("option.{k}"), v.clone()));
    }
    for (k, v) in m.fitted_parameters() {
        rows.push((format!("fitted.{k}"), v));
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("property", DataType::Utf8, false),
        Field::new("value", DataType::Utf8, false),
    ]));
    let (k, v): (Vec<String>, Vec<String>) = rows.into_iter().unzip();
    Ok(RecordBatch::try_new(
        schema,
        vec![string_col(k), string_col(v)],
    )?)
}

/// A one-column message result (DROP MODEL).
pub fn message_batch(msg: String) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "result",
        DataType::Utf8,
        false,
    )]));
    Ok(RecordBatch::try_new(schema, vec![string_col(vec![msg])])?)
}
