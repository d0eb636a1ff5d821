//! `pz_tomo_bin(z, [edges…])`: the tomographic bin a redshift falls in.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, Int32Builder};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, plan_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

use super::aggregate::f64_array;

/// The 1-based bin of `z` among increasing `edges`: bin k holds edges[k−1] ≤ z < edges[k],
/// the last bin includes its upper edge. None outside the edges or for NaN.
pub fn tomo_bin(z: f64, edges: &[f64]) -> Option<i32> {
    let n = edges.len();
    if n < 2 || !(z >= edges[0] && z <= edges[n - 1]) {
        return None;
    }
    let k = edges.partition_point(|e| *e <= z);
    Some(k.min(n - 1) as i32)
}

/// Checks that edges can define bins.
pub fn check_edges(edges: &[f64]) -> Result<()> {
    if edges.len() < 2 {
        return plan_err!(
            "pz_tomo_bin: give at least two bin edges, got {}",
            edges.len()
        );
    }
    if let Some(w) = edges
        .windows(2)
        .find(|w| w[0].is_nan() || w[1].is_nan() || w[0] >= w[1])
    {
        return plan_err!(
            "pz_tomo_bin: bin edges must increase strictly; {} is followed by {}",
            w[0],
            w[1]
        );
    }
    Ok(())
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "Tomographic bin of a redshift: 1 for edges[0] ≤ z < edges[1], 2 for the next, …; the \
         last bin includes its upper edge; null outside the edges. GROUP BY it to get every \
         metric and N(z) per bin. Edges are an array or a list of numbers.",
        "pz_tomo_bin(z, [edge0, edge1, …]) or pz_tomo_bin(z, edge0, edge1, …)",
    )
    .with_sql_example(
        "SELECT pz_tomo_bin(z_mode, [0.2, 0.5, 0.8, 1.2]) AS bin, pz_sigma_nmad(z_mode, redshift) FROM t GROUP BY bin;",
    )
    .with_argument("z", "the redshift that assigns the bin (usually the photo-z point estimate)")
    .with_argument("edges", "increasing bin edges")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TomoBinFunc {
    signature: Signature,
}

pub fn udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(TomoBinFunc {
        signature: Signature::variadic_any(Volatility::Immutable),
    }))
}

fn edges_of(args: &[ColumnarValue]) -> Result<Vec<f64>> {
    let mut edges = Vec::new();
    for a in &args[1..] {
        let ColumnarValue::Scalar(s) = a else {
            return exec_err!("pz_tomo_bin: bin edges must be constants");
        };
        match s {
            ScalarValue::List(l) => {
                let v = f64_array(&l.value(0))?;
                edges.extend(v.iter().map(|x| x.unwrap_or(f64::NAN)));
            }
            ScalarValue::LargeList(l) => {
                let v = f64_array(&l.value(0))?;
                edges.extend(v.iter().map(|x| x.unwrap_or(f64::NAN)));
            }
            ScalarValue::FixedSizeList(l) => {
                let v = f64_array(&l.value(0))?;
                edges.extend(v.iter().map(|x| x.unwrap_or(f64::NAN)));
            }
            other => match other.cast_to(&DataType::Float64)? {
                ScalarValue::Float64(Some(x)) => edges.push(x),
                v => return exec_err!("pz_tomo_bin: a bin edge is {v}"),
            },
        }
    }
    check_edges(&edges)?;
    Ok(edges)
}

impl ScalarUDFImpl for TomoBinFunc {
    fn name(&self) -> &str {
        "pz_tomo_bin"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        if args.len() < 2 {
            return plan_err!("pz_tomo_bin takes (z, [edges…]) or (z, edge0, edge1, …)");
        }
        if !(args[0].is_numeric() || args[0].is_null()) {
            return plan_err!("pz_tomo_bin: z must be numeric, got {}", args[0]);
        }
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let edges = edges_of(&args.args)?;
        let n = args.number_rows;
        let z = f64_array(&args.args[0].to_array(n)?)?;
        let mut out = Int32Builder::with_capacity(n);
        let zv = &z;
        for i in 0..n {
            out.append_option(if zv.is_valid(i) {
                tomo_bin(zv.value(i), &edges)
            } else {
                None
            });
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins() {
        let e = [0.2, 0.5, 1.0];
        assert_eq!(tomo_bin(0.1, &e), None);
        assert_eq!(tomo_bin(0.2, &e), Some(1));
        assert_eq!(tomo_bin(0.49, &e), Some(1));
        assert_eq!(tomo_bin(0.5, &e), Some(2));
        assert_eq!(tomo_bin(1.0, &e), Some(2));
        assert_eq!(tomo_bin(1.01, &e), None);
        assert_eq!(tomo_bin(f64::NAN, &e), None);
        assert!(check_edges(&[0.5, 0.2]).is_err());
    }
}
