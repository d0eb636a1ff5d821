//! Which builds of the hot loops this process runs.
//!
//! The AVX2 builds compute the same bits as the baseline ones (no `mul_add`, the same
//! integer decisions); `PZ_DISABLE_AVX2=1` runs the baseline everywhere, so a test (or an
//! operator doubting a node) can compare the two on one machine.

use std::sync::OnceLock;

/// The environment variable that turns the AVX2 builds off.
pub const DISABLE_AVX2_ENV: &str = "PZ_DISABLE_AVX2";

/// True when the CPU has AVX2 and FMA and `PZ_DISABLE_AVX2` is unset, empty or `0`.
pub fn avx2_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let disabled = std::env::var(DISABLE_AVX2_ENV)
            .map(|v| !v.is_empty() && v != "0")
            .unwrap_or(false);
        !disabled && detected()
    })
}

fn detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
