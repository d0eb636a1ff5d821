//! `seeded_uniform(seed, key)`: a uniform draw in [0, 1) fixed by a seed and a row's key.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, Float64Builder, Int64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ScalarFunctionArgs, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use crate::args::{all_scalar, finish, i64_scalar_or_array, rows};

#[inline]
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a, so string keys hash the same on every platform and version.
#[inline]
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Uniform in [0, 1) from a seed and an integer key: the same pair always gives the same
/// value, whatever the partitioning or thread count.
#[inline]
pub fn seeded_uniform_u64(seed: u64, key: u64) -> f64 {
    let h = splitmix64(splitmix64(seed) ^ splitmix64(key.wrapping_add(0x632B_E59B_D9B4_E019)));
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// As [`seeded_uniform_u64`] for a string key.
#[inline]
pub fn seeded_uniform_str(seed: u64, key: &str) -> f64 {
    seeded_uniform_u64(seed, fnv1a(key.as_bytes()))
}

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "A uniform number in [0, 1) determined only by the seed and the row's key (an integer \
         or a string id), so a split such as `seeded_uniform(42, id) < 0.7` is the same \
         however the data are partitioned and however many threads run. A null key gives null.",
        "seeded_uniform(seed, key)",
    )
    .with_sql_example("SELECT id, seeded_uniform(42, id) < 0.7 AS is_training_set FROM specz;")
    .with_argument("seed", "an integer seed")
    .with_argument("key", "the row's id: an integer or a string")
    .build()
});

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SeededUniformFunc {
    signature: Signature,
}

impl Default for SeededUniformFunc {
    fn default() -> Self {
        Self::new()
    }
}

impl SeededUniformFunc {
    pub fn new() -> Self {
        use DataType::*;
        Self {
            signature: Signature::one_of(
                vec![
                    TypeSignature::Exact(vec![Int64, Int64]),
                    TypeSignature::Exact(vec![Int64, Utf8]),
                ],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for SeededUniformFunc {
    fn name(&self) -> &str {
        "seeded_uniform"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = rows(&args.args, args.number_rows);
        let seed = i64_scalar_or_array("seeded_uniform", &args.args, 0)?;
        let Some(key) = args.args.get(1) else {
            return exec_err!("seeded_uniform(seed, key) needs a key");
        };
        let key = match key {
            ColumnarValue::Scalar(s) => s.to_array_of_size(n)?,
            ColumnarValue::Array(a) => a.clone(),
        };
        let mut out = Float64Builder::with_capacity(n);
        match key.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let k = cast(&key, &DataType::Utf8)?;
                let k = k.as_any().downcast_ref::<StringArray>().ok_or_else(|| {
                    datafusion::common::exec_datafusion_err!("seeded_uniform: key is not a string")
                })?;
                for row in 0..n {
                    match (seed.get(row), k.is_null(row)) {
                        (Some(s), false) => {
                            out.append_value(seeded_uniform_str(s as u64, k.value(row)))
                        }
                        _ => out.append_null(),
                    }
                }
            }
            _ => {
                let k = cast(&key, &DataType::Int64)?;
                let k = k.as_any().downcast_ref::<Int64Array>().ok_or_else(|| {
                    datafusion::common::exec_datafusion_err!(
                        "seeded_uniform: key is not an integer"
                    )
                })?;
                for row in 0..n {
                    match (seed.get(row), k.is_null(row)) {
                        (Some(s), false) => {
                            out.append_value(seeded_uniform_u64(s as u64, k.value(row) as u64))
                        }
                        _ => out.append_null(),
                    }
                }
            }
        }
        finish(Arc::new(out.finish()), all_scalar(&args.args))
    }

    fn documentation(&self) -> Option<&Documentation> {
        Some(&DOC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_by_seed_and_key_and_uniform() {
        assert_eq!(seeded_uniform_u64(42, 7), seeded_uniform_u64(42, 7));
        assert_ne!(seeded_uniform_u64(42, 7), seeded_uniform_u64(43, 7));
        assert_ne!(seeded_uniform_str(1, "a"), seeded_uniform_str(1, "b"));
        let n = 100_000;
        let below = (0..n).filter(|&k| seeded_uniform_u64(9, k) < 0.7).count();
        assert!((below as f64 / n as f64 - 0.7).abs() < 0.01, "{below}");
        let mean: f64 = (0..n).map(|k| seeded_uniform_u64(3, k)).sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.005);
    }
}
