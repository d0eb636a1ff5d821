//! Astronomy functions: sky positions, HEALPix, photometry.

pub mod ang_sep;
pub mod cone;
pub mod coords;
pub mod deredden;
pub mod flux_err_to_mag_err;
pub mod flux_to_mag;
pub mod healpix;

use std::sync::Arc;

use datafusion::logical_expr::ScalarUDF;

/// Section under which these functions are documented.
pub const DOC_SECTION: datafusion::logical_expr::DocSection =
    datafusion::logical_expr::DocSection {
        include: true,
        label: "Astronomy Functions",
        description: Some("Positions on the sky, HEALPix indices and AB photometry."),
    };

pub fn functions() -> Vec<Arc<ScalarUDF>> {
    vec![
        Arc::new(ScalarUDF::from(healpix::HealpixFunc::new())),
        Arc::new(ScalarUDF::from(ang_sep::AngSepFunc::new())),
        Arc::new(ScalarUDF::from(cone::ConeFunc::new())),
        Arc::new(ScalarUDF::from(flux_to_mag::FluxToMagFunc::new())),
        Arc::new(ScalarUDF::from(
            flux_err_to_mag_err::FluxErrToMagErrFunc::new(),
        )),
        Arc::new(ScalarUDF::from(deredden::DereddenFunc::new())),
    ]
}
