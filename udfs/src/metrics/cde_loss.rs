//! `pz_cde_loss(pdf, ztrue [, zmin, zmax])`: the conditional density estimation loss
//! (Izbicki & Lee 2017), as RAIL's `CDELoss`.

use std::sync::LazyLock;

use datafusion::logical_expr::{AggregateUDF, Documentation};

use super::aggregate::{PdfMeanAggregate, PdfMeanSpec};
use crate::photoz::cde::cde_loss_term;

static DOC: LazyLock<Documentation> = LazyLock::new(|| {
    Documentation::builder(
        super::DOC_SECTION,
        "CDE loss: mean over objects of ∫p(z)² dz − 2·p(ztrue), with each PDF normalised to \
         unit integral, ∫ by the trapezoid rule on the grid and p(ztrue) at the grid point \
         nearest ztrue (RAIL's CDELoss). Lower is better. Negative round-off (within 1e-6 of \
         the peak) reads as zero; PDFs that cannot be normalised, and rows with a null PDF or \
         ztrue, are left out: pz_pdf_excluded(pdf, ztrue) counts them. A NaN ztrue is an error.",
        "pz_cde_loss(pdf, ztrue [, zmin, zmax])",
    )
    .with_sql_example("SELECT pz_cde_loss(pdf, redshift) FROM t;")
    .with_argument(
        "pdf",
        "FixedSizeList or List of Float32/Float64 sampled on the grid",
    )
    .with_argument("ztrue", "reference redshift")
    .with_argument(
        "zmin, zmax",
        "grid limits when the pdf field has no pz grid metadata",
    )
    .build()
});

pub static SPEC: PdfMeanSpec = PdfMeanSpec {
    name: "pz_cde_loss",
    term: cde_loss_term,
    doc: &DOC,
};

pub fn udaf() -> AggregateUDF {
    PdfMeanAggregate::udaf(&SPEC)
}
