//! The redshift grid every PDF is sampled on.

use datafusion::common::{plan_err, Result};
use serde::{Deserialize, Serialize};

/// Field-metadata keys that carry the grid of a `pdf` column, so readers (pz's metrics,
/// pyarrow users) know what the samples mean.
pub const META_ZMIN: &str = "pz.zmin";
pub const META_ZMAX: &str = "pz.zmax";
pub const META_NZ: &str = "pz.nz";

/// `nz` equally spaced redshifts from `zmin` to `zmax`, both included (numpy's `linspace`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ZGrid {
    pub zmin: f64,
    pub zmax: f64,
    pub nz: usize,
}

impl Default for ZGrid {
    /// RAIL's default: z ∈ [0, 3], 301 points.
    fn default() -> Self {
        ZGrid {
            zmin: 0.0,
            zmax: 3.0,
            nz: 301,
        }
    }
}

impl ZGrid {
    pub fn new(zmin: f64, zmax: f64, nz: usize) -> Result<Self> {
        if !(zmin.is_finite() && zmax.is_finite()) || zmin < 0.0 || zmax <= zmin {
            return plan_err!("redshift grid: need 0 <= zmin < zmax, got zmin={zmin}, zmax={zmax}");
        }
        if !(2..=100_000).contains(&nz) {
            return plan_err!("redshift grid: nz must be from 2 to 100000, got {nz}");
        }
        Ok(ZGrid { zmin, zmax, nz })
    }

    pub fn step(&self) -> f64 {
        (self.zmax - self.zmin) / (self.nz - 1) as f64
    }

    /// The i-th grid point, computed as numpy's linspace does.
    #[inline]
    pub fn z(&self, i: usize) -> f64 {
        if i + 1 == self.nz {
            self.zmax
        } else {
            self.zmin + i as f64 * self.step()
        }
    }

    pub fn points(&self) -> Vec<f64> {
        (0..self.nz).map(|i| self.z(i)).collect()
    }

    /// Index of the grid point nearest to `z` (clamped to the grid).
    pub fn nearest(&self, z: f64) -> usize {
        let x = ((z - self.zmin) / self.step()).round();
        if x.is_nan() || x <= 0.0 {
            0
        } else {
            (x as usize).min(self.nz - 1)
        }
    }

    /// The metadata pz attaches to a `pdf` field.
    pub fn metadata(&self) -> std::collections::HashMap<String, String> {
        [
            (META_ZMIN.to_string(), self.zmin.to_string()),
            (META_ZMAX.to_string(), self.zmax.to_string()),
            (META_NZ.to_string(), self.nz.to_string()),
        ]
        .into_iter()
        .collect()
    }

    /// The grid described by field metadata, if it has pz's keys.
    pub fn from_metadata(meta: &std::collections::HashMap<String, String>) -> Option<Result<Self>> {
        let zmin = meta.get(META_ZMIN)?;
        let zmax = meta.get(META_ZMAX)?;
        let nz = meta.get(META_NZ)?;
        let parsed = (
            zmin.parse::<f64>(),
            zmax.parse::<f64>(),
            nz.parse::<usize>(),
        );
        Some(match parsed {
            (Ok(a), Ok(b), Ok(n)) => ZGrid::new(a, b, n),
            _ => plan_err!(
                "pdf field metadata has an unreadable grid: zmin={zmin}, zmax={zmax}, nz={nz}"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_grid_is_rails() {
        let g = ZGrid::default();
        assert_eq!(g.points().len(), 301);
        assert_eq!(g.z(0), 0.0);
        assert_eq!(g.z(300), 3.0);
        assert!((g.z(100) - 1.0).abs() < 1e-15);
        assert_eq!(g.nearest(1.004), 100);
        assert_eq!(g.nearest(-1.0), 0);
        assert_eq!(g.nearest(9.0), 300);
        let back = ZGrid::from_metadata(&g.metadata()).unwrap().unwrap();
        assert_eq!(back, g);
        assert!(ZGrid::new(1.0, 0.5, 10).is_err());
        assert!(ZGrid::new(0.0, 1.0, 1).is_err());
    }
}
