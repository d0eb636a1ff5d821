//! `pz_outlier_frac(zphot, ztrue [, threshold])`: the fraction of objects with |dz| above a
//! fixed threshold (default 0.15).

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, UInt64Type};
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, Documentation, Signature, Volatility,
};

use super::aggregate::{f64_array, point_dz};
use super::stats::dz;

pub const DEFAULT_THRESHOLD: f64 = 0.15;

/// True when |dz| exceeds the threshold.
#[inline]
pub fn is_outlier(zphot: f64, ztrue: f64, threshold: f64) -> bool {
    dz(zphot, ztrue).abs() > threshold
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Fraction of objects whose |dz| = |zphot − ztrue|/(1 + ztrue) exceeds a threshold \
         (default 0.15). Rows with a null input are left out; a NaN or infinite redshift, or a \
         true redshift <= -1, is an error.",
        "pz_outlier_frac(zphot, ztrue [, threshold])",
    )
    .with_sql_example(
        "SELECT pz_outlier_frac(z_mode, redshift), pz_outlier_frac(z_mode, redshift, 0.05) FROM t;",
    )
    .with_argument("zphot", "point estimate")
    .with_argument("ztrue", "reference redshift")
    .with_argument(
        "threshold",
        "the |dz| above which an object is an outlier; 0.15 if omitted",
    )
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct OutlierFrac {
    signature: Signature,
}

pub fn udaf() -> AggregateUDF {
    AggregateUDF::new_from_impl(OutlierFrac {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

impl AggregateUDFImpl for OutlierFrac {
    fn name(&self) -> &str {
        "pz_outlier_frac"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if !(2..=3).contains(&args.len()) {
            return plan_err!(
                "pz_outlier_frac takes (zphot, ztrue [, threshold]), got {} arguments",
                args.len()
            );
        }
        if let Some(t) = args.iter().find(|t| !(t.is_numeric() || t.is_null())) {
            return plan_err!("pz_outlier_frac: arguments must be numeric, got {t}");
        }
        Ok(DataType::Float64)
    }

    fn accumulator(&self, _args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OutlierAcc::default()))
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[outliers]", args.name),
                DataType::UInt64,
                true,
            )),
            Arc::new(Field::new(
                format!("{}[count]", args.name),
                DataType::UInt64,
                true,
            )),
        ])
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[derive(Debug, Default)]
struct OutlierAcc {
    outliers: u64,
    count: u64,
}

impl Accumulator for OutlierAcc {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let zp = f64_array(&values[0])?;
        let zt = f64_array(&values[1])?;
        let thr = values.get(2).map(f64_array).transpose()?;
        for i in 0..zp.len() {
            if !(zp.is_valid(i) && zt.is_valid(i)) {
                continue;
            }
            let d = point_dz("pz_outlier_frac", zp.value(i), zt.value(i))?;
            let threshold = match &thr {
                Some(a) if a.is_valid(i) => a.value(i),
                Some(_) => return exec_err!("pz_outlier_frac: the threshold is null"),
                None => DEFAULT_THRESHOLD,
            };
            if threshold.is_nan() || threshold < 0.0 {
                return exec_err!("pz_outlier_frac: the threshold must be >= 0, got {threshold}");
            }
            self.count += 1;
            self.outliers += (d.abs() > threshold) as u64;
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let o = states[0].as_primitive::<UInt64Type>();
        let n = states[1].as_primitive::<UInt64Type>();
        for i in 0..o.len() {
            if o.is_valid(i) && n.is_valid(i) {
                self.outliers += o.value(i);
                self.count += n.value(i);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            ScalarValue::UInt64(Some(self.outliers)),
            ScalarValue::UInt64(Some(self.count)),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(
            (self.count > 0).then(|| self.outliers as f64 / self.count as f64),
        ))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }
}
