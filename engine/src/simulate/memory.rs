//! Whether a job sized by its arguments fits in memory, asked before the work starts.
//!
//! Allocation failure aborts a Rust process (a backtrace, no error), and on Linux a large
//! allocation may even succeed and be killed later. So sizes that come from the user are
//! checked against what the machine can hold first, and the allocations themselves use
//! `try_reserve`, which turns what slips through into an error.

use datafusion::common::{exec_datafusion_err, plan_err, Result};

/// Bytes this process may still use: the least of the system's available memory and the
/// cgroup's limit minus its usage. `None` where neither can be read (then only `try_reserve`
/// guards).
pub fn available_bytes() -> Option<u64> {
    let mut best: Option<u64> = None;
    let mut take = |v: u64| best = Some(best.map_or(v, |b| b.min(v)));
    if let Ok(text) = std::fs::read_to_string("/proc/meminfo") {
        if let Some(kb) = text
            .lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
        {
            take(kb.saturating_mul(1024));
        }
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
    };
    // cgroup v2, then v1 (whose "no limit" is a huge number, harmless under min).
    if let Some(max) = read("/sys/fs/cgroup/memory.max") {
        let used = read("/sys/fs/cgroup/memory.current").unwrap_or(0);
        take(max.saturating_sub(used));
    } else if let Some(max) = read("/sys/fs/cgroup/memory/memory.limit_in_bytes") {
        let used = read("/sys/fs/cgroup/memory/memory.usage_in_bytes").unwrap_or(0);
        take(max.saturating_sub(used));
    }
    best
}

/// A size in words: "88.0 TB", "512.0 MiB".
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 7] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Refuses a job that needs about `bytes` (`what` says which arguments asked for it) when
/// the machine has less available.
pub fn ensure_fits(bytes: f64, what: &str) -> Result<()> {
    ensure_fits_in(bytes, available_bytes(), what)
}

fn ensure_fits_in(bytes: f64, available: Option<u64>, what: &str) -> Result<()> {
    // Beyond any address space, whatever the machine says.
    if !bytes.is_finite() || bytes > u64::MAX as f64 / 2.0 {
        return plan_err!(
            "{what} needs about {}: more memory than any machine has",
            human(bytes)
        );
    }
    match available {
        Some(a) if bytes > a as f64 => plan_err!(
            "{what} needs about {} of memory, and {} is available",
            human(bytes),
            human(a as f64)
        ),
        _ => Ok(()),
    }
}

/// An empty vector with room for `n` items, or an error naming `what` when the memory is not
/// there (instead of an abort).
pub fn vec_with_capacity<T>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| {
        exec_datafusion_err!(
            "{what}: cannot allocate {}: {e}",
            human(n as f64 * std::mem::size_of::<T>() as f64)
        )
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_beyond_the_machine_are_errors() {
        let e = ensure_fits_in(88e12, Some(4 << 30), "--objects 1000000000000")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--objects 1000000000000")
                && e.contains("80.0 TiB")
                && e.contains("4.0 GiB"),
            "{e}"
        );
        assert!(ensure_fits_in(1e6, Some(4 << 30), "x").is_ok());
        assert!(ensure_fits_in(1e6, None, "x").is_ok());
        assert!(ensure_fits_in(f64::INFINITY, None, "x").is_err());
        assert!(ensure_fits_in(1e30, None, "x").is_err());
        let e = vec_with_capacity::<u64>(usize::MAX / 4, "galaxies")
            .unwrap_err()
            .to_string();
        assert!(e.contains("galaxies: cannot allocate"), "{e}");
        assert!(available_bytes().is_none_or(|b| b > 0));
    }
}
