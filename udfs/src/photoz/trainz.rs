//! trainZ: every object gets the training set's N(z), the no-information baseline that any
//! photo-z must beat.

use datafusion::common::{plan_err, Result};
use serde::{Deserialize, Serialize};

use super::model::{EstimateEnv, Estimator, RowExtra, TrainingSet};
use super::options::OptionReader;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainZModel {
    /// The training N(z) on the grid, as a density.
    pub nz: Vec<f64>,
}

impl TrainZModel {
    /// `estimate_row` copies the N(z) into a PDF of the grid's `nz` points.
    pub fn check(&self, nz: usize) -> std::result::Result<(), String> {
        if self.nz.len() != nz {
            return Err(format!(
                "trainz: the N(z) has {} values for a grid of {nz} points",
                self.nz.len()
            ));
        }
        if self.nz.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err("trainz: the N(z) has a negative or non-finite value".into());
        }
        Ok(())
    }
}

impl Estimator for TrainZModel {
    type Scratch = ();

    fn inform(training: &TrainingSet, env: &EstimateEnv, _options: &OptionReader) -> Result<Self> {
        let grid = env.grid;
        let mut counts = vec![0.0; grid.nz];
        let mut n = 0usize;
        for &z in &training.redshift {
            // Training redshifts off the grid carry no information about it.
            if z.is_finite()
                && z >= grid.zmin - 0.5 * grid.step()
                && z <= grid.zmax + 0.5 * grid.step()
            {
                counts[grid.nearest(z)] += 1.0;
                n += 1;
            }
        }
        if n == 0 {
            return plan_err!(
                "trainz: no training redshift lies on the grid [{}, {}]",
                grid.zmin,
                grid.zmax
            );
        }
        // Each count is a bin of width step centred on its grid point; the end bins are half
        // inside the grid, so the density there is twice the count per width.
        let h = grid.step();
        let last = grid.nz - 1;
        let nz = counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let width = if i == 0 || i == last { 0.5 * h } else { h };
                c / (n as f64 * width)
            })
            .collect();
        Ok(TrainZModel { nz })
    }

    fn estimate_row(
        &self,
        _env: &EstimateEnv,
        _row: usize,
        _mags: &[f64],
        _errs: &[f64],
        pdf: &mut [f64],
        _scratch: &mut (),
        _extra: &mut RowExtra,
    ) -> bool {
        pdf.copy_from_slice(&self.nz);
        true
    }
}
