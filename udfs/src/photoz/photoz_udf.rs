//! `photoz('<model>', <features…>)`: a redshift PDF and point estimates per object.

use std::hash::{Hash, Hasher};
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, FixedSizeListArray, Float32Array, Float64Array, Int32Array, StructArray,
};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields};
use datafusion::common::{exec_err, internal_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, Volatility,
};

use super::model::Model;
use super::photometry::Photometry;
use super::registry::ModelRegistry;
use crate::args::f64_arg;

pub const NAME: &str = "photoz";

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Photo-z of each row with a model made by CREATE MODEL: a struct of z_mode, z_mean, \
         z_median, z_lo68, z_hi68 (16th/84th percentiles), odds (probability within \
         ±0.06(1+z_mode)) and pdf, the density on the model's grid as FixedSizeList<Float32> \
         (grid in the field metadata: pz.zmin, pz.zmax, pz.nz). BPZ models add best_template. \
         The feature columns go in the order of the model's training SELECT (DESCRIBE MODEL \
         lists them). Non-detections (99, NaN, null) take the band's limit; a row with no \
         detection at all gives null.",
        "photoz('<model>', mag_u, magerr_u, …)",
    )
    .with_sql_example("SELECT id, photoz('knn', mag_u, magerr_u, mag_g, magerr_g, mag_r, magerr_r, mag_i, magerr_i, mag_z, magerr_z, mag_y, magerr_y).z_mode FROM objects;")
    .with_argument("model", "model name, a string literal")
    .with_argument("features", "the model's feature columns, in its training order")
    .build()
});

/// The function, either looking models up in a registry at planning time or bound to one
/// model (what planning turns it into, and what travels in a Ballista plan).
#[derive(Debug)]
pub struct PhotozFunc {
    registry: ModelRegistry,
    bound: Option<Arc<Model>>,
    signature: Signature,
}

impl PartialEq for PhotozFunc {
    fn eq(&self, o: &Self) -> bool {
        match (&self.bound, &o.bound) {
            (Some(a), Some(b)) => {
                Arc::ptr_eq(a, b) || (a.name == b.name && a.provenance == b.provenance)
            }
            (None, None) => self.registry.same(&o.registry),
            _ => false,
        }
    }
}

impl Eq for PhotozFunc {}

impl Hash for PhotozFunc {
    fn hash<H: Hasher>(&self, state: &mut H) {
        NAME.hash(state);
        if let Some(m) = &self.bound {
            m.name.hash(state);
            m.provenance.training_checksum.hash(state);
            m.provenance.created_unix.hash(state);
        }
    }
}

impl PhotozFunc {
    pub fn new(registry: ModelRegistry) -> Self {
        PhotozFunc {
            registry,
            bound: None,
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }

    /// The function bound to one model.
    pub fn bound(model: Arc<Model>) -> Self {
        PhotozFunc {
            registry: ModelRegistry::new(),
            bound: Some(model),
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }

    pub fn bound_model(&self) -> Option<&Arc<Model>> {
        self.bound.as_ref()
    }

    pub fn registry(&self) -> &ModelRegistry {
        &self.registry
    }

    fn model_for(&self, name: Option<&ScalarValue>) -> Result<Arc<Model>> {
        if let Some(m) = &self.bound {
            return Ok(Arc::clone(m));
        }
        match name {
            Some(ScalarValue::Utf8(Some(s)))
            | Some(ScalarValue::Utf8View(Some(s)))
            | Some(ScalarValue::LargeUtf8(Some(s))) => self.registry.get(s),
            _ => plan_err!(
                "photoz: the first argument must be a model name in quotes, e.g. photoz('knn', …)"
            ),
        }
    }
}

/// The struct `photoz()` returns for a model.
pub fn output_field(model: &Model) -> Field {
    let pdf_item = Arc::new(Field::new("item", DataType::Float32, true));
    let pdf = Field::new(
        "pdf",
        DataType::FixedSizeList(pdf_item, model.grid.nz as i32),
        true,
    )
    .with_metadata(model.grid.metadata());
    let mut fields: Vec<Field> = ["z_mode", "z_mean", "z_median", "z_lo68", "z_hi68", "odds"]
        .iter()
        .map(|n| Field::new(*n, DataType::Float64, true))
        .collect();
    fields.push(pdf);
    if model.has_best_template() {
        fields.push(Field::new("best_template", DataType::Int32, true));
    }
    let mut meta = model.grid.metadata();
    meta.insert("pz.model".to_string(), model.name.clone());
    meta.insert(
        "pz.algorithm".to_string(),
        model.algorithm.name().to_string(),
    );
    Field::new(NAME, DataType::Struct(Fields::from(fields)), true).with_metadata(meta)
}

/// Runs `model` on per-feature columns (already Float64, one per model feature).
pub fn estimate_columns(model: &Model, columns: &[Vec<f64>], n: usize) -> Result<StructArray> {
    let mut phot = Photometry::new(n, model.photometry.nbands());
    for (f, col) in model.features.iter().zip(columns) {
        phot.set_column(f.band, f.is_error, col);
    }
    let est = model.estimate(&phot);
    let field = output_field(model);
    let DataType::Struct(fields) = field.data_type() else {
        return internal_err!("photoz output is a struct");
    };
    let pick = |g: fn(&super::summary::PdfSummary) -> f64| -> ArrayRef {
        Arc::new(Float64Array::from_iter(
            est.summary.iter().map(|s| s.as_ref().map(g)),
        ))
    };
    let nulls = NullBuffer::from(
        est.summary
            .iter()
            .map(|s| s.is_some())
            .collect::<Vec<bool>>(),
    );
    let DataType::FixedSizeList(item, nz) = fields[6].data_type() else {
        return internal_err!("photoz pdf is a fixed-size list");
    };
    let pdf = FixedSizeListArray::try_new(
        Arc::clone(item),
        *nz,
        Arc::new(Float32Array::from(est.pdf)),
        Some(nulls.clone()),
    )?;
    let mut arrays: Vec<ArrayRef> = vec![
        pick(|s| s.z_mode),
        pick(|s| s.z_mean),
        pick(|s| s.z_median),
        pick(|s| s.z_lo68),
        pick(|s| s.z_hi68),
        pick(|s| s.odds),
        Arc::new(pdf),
    ];
    if model.has_best_template() {
        arrays.push(Arc::new(Int32Array::from_iter(
            est.best_template.iter().map(|t| t.map(|v| v as i32)),
        )));
    }
    Ok(StructArray::try_new(fields.clone(), arrays, Some(nulls))?)
}

impl ScalarUDFImpl for PhotozFunc {
    fn name(&self) -> &str {
        NAME
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        internal_err!("photoz: the return type comes from return_field_from_args")
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let model = self.model_for(args.scalar_arguments.first().copied().flatten())?;
        let given = args.arg_fields.len().saturating_sub(1);
        if given != model.features.len() {
            return plan_err!(
                "photoz('{}'): the model takes {} feature columns in this order: {}; got {given}",
                model.name,
                model.features.len(),
                model
                    .features
                    .iter()
                    .map(|f| f.column.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for (i, (f, feat)) in args.arg_fields[1..].iter().zip(&model.features).enumerate() {
            let t = f.data_type();
            if !(t.is_numeric() || *t == DataType::Null) {
                return plan_err!(
                    "photoz('{}'): feature {} ({}) must be numeric, got {t} from '{}'",
                    model.name,
                    i + 1,
                    feat.column,
                    f.name()
                );
            }
        }
        Ok(Arc::new(output_field(&model)))
    }

    fn simplify(&self, args: Vec<Expr>, _info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        if self.bound.is_some() {
            return Ok(ExprSimplifyResult::Original(args));
        }
        let name = match args.first() {
            Some(Expr::Literal(v, _)) => v.clone(),
            _ => return Ok(ExprSimplifyResult::Original(args)),
        };
        let model = self.model_for(Some(&name))?;
        let bound = ScalarUDF::new_from_impl(PhotozFunc::bound(model));
        Ok(ExprSimplifyResult::Simplified(Expr::ScalarFunction(
            ScalarFunction::new_udf(Arc::new(bound), args),
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let model = match (&self.bound, args.args.first()) {
            (Some(m), _) => Arc::clone(m),
            (None, Some(ColumnarValue::Scalar(s))) => self.model_for(Some(s))?,
            _ => return exec_err!("photoz: the first argument must be a model name in quotes"),
        };
        let n = args.number_rows;
        if args.args.len() != model.features.len() + 1 {
            return exec_err!(
                "photoz('{}'): expected {} feature columns, got {}",
                model.name,
                model.features.len(),
                args.args.len().saturating_sub(1)
            );
        }
        let mut cols = Vec::with_capacity(model.features.len());
        for i in 1..args.args.len() {
            let a = f64_arg(NAME, &args.args, i)?;
            cols.push(
                (0..n)
                    .map(|r| a.get(r).unwrap_or(f64::NAN))
                    .collect::<Vec<f64>>(),
            );
        }
        let out = estimate_columns(&model, &cols, n)?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

/// `photoz` over a registry, ready to register.
pub fn photoz_udf(registry: ModelRegistry) -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(PhotozFunc::new(registry)))
}
