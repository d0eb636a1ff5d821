//! Runtime dispatch to AVX2+FMA builds of the hot loops. The same Rust body is compiled twice;
//! no `mul_add` is used, so both builds round identically and results do not depend on the
//! CPU a partition runs on.

/// Defines `$name` that calls `$body` (an `#[inline(always)]` function) through an AVX2+FMA
/// build when the CPU has those features (and `PZ_DISABLE_AVX2` is unset), else directly.
#[macro_export]
macro_rules! avx2_dispatch {
    ($(#[$m:meta])* $vis:vis fn $name:ident $(<$lt:lifetime>)? ($($arg:ident : $ty:ty),* $(,)?) -> $ret:ty => $body:path) => {
        $(#[$m])*
        #[inline]
        $vis fn $name $(<$lt>)? ($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2 $(<$lt>)? ($($arg: $ty),*) -> $ret {
                    $body($($arg),*)
                }
                if $crate::cpu::avx2_enabled() {
                    // SAFETY: `avx2_enabled` holds only when the CPU reports AVX2 and FMA,
                    // the only features `avx2` assumes.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $body($($arg),*)
        }
    };
}
