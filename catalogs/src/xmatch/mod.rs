//! Cross-matching two HATS catalogs, as LSDB does it and exactly.
//!
//! The two partition trees are aligned: every left leaf meets every right leaf that overlaps
//! it, and the pair is worked at the finer of the two pixels. For each such pixel the left
//! rows inside it are matched against the right rows that can lie within the radius of it:
//! the right leaves' own rows, plus either the right margin catalog (when its threshold
//! covers the radius) or the rows of the neighbouring right leaves. A k-d tree on unit
//! vectors finds the k nearest within the radius. Pixels are independent: they run in
//! parallel and memory is bounded by the largest pixel's pair of row sets.

pub mod align;
pub mod exec;
pub mod function;
pub mod read;

pub use exec::{CrossmatchExec, CrossmatchSpec};
pub use function::{CrossmatchFunction, DEFAULT_MAX_RADIUS_ARCSEC};
