//! Cross-matching: nearest neighbours on the sphere.

pub mod kdtree;
pub mod nearest;

pub use kdtree::KdTree;
pub use nearest::{nearest_within, Match};
