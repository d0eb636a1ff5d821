//! `pz validate`: photo-z estimates against reference redshifts → metrics.json + report.html.

use std::path::PathBuf;

use pz_engine::pipelines::validate::{ValidateConfig, Validation};
use pz_engine::{DataDir, PzContext};

use crate::error::CliError;

#[derive(clap::Args, Debug)]
pub struct ValidateArgs {
    /// The photo-z table: a table in the data directory, or a Parquet/CSV file or HATS
    /// directory with the id, the point estimate and the PDF.
    #[arg(long, value_name = "TABLE|FILE")]
    pz: String,
    /// The reference redshifts: a table, or a Parquet/CSV file or HATS directory.
    #[arg(long, value_name = "TABLE|FILE")]
    truth: String,
    /// The column both inputs are matched on.
    #[arg(long, default_value = "objectId")]
    id_column: String,
    /// The point estimate in --pz.
    #[arg(long, default_value = "z_mode")]
    zphot_column: String,
    /// The PDF in --pz (FixedSizeList or List of floats on the grid).
    #[arg(long, default_value = "pdf")]
    pdf_column: String,
    /// The true redshift in --truth (default: redshift, z_true, ztrue, z or specz).
    #[arg(long)]
    ztrue_column: Option<String>,
    /// The i magnitude for the magnitude trends and the i < 25 target selection
    /// (default: mag_i in --truth, else in --pz).
    #[arg(long)]
    mag_column: Option<String>,
    /// Tomographic bin edges in photo-z.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0,0.3,0.6,0.9,1.2,1.5,2,3"
    )]
    tomo_edges: Vec<f64>,
    /// The lowest redshift of the grid the PDFs are sampled on (with --zmax; the number of
    /// points is the PDFs' length). Default: the grid in the pdf column's pz metadata, else
    /// RAIL's z = 0..3 with 301 points.
    #[arg(long, requires = "zmax", allow_negative_numbers = true)]
    zmin: Option<f64>,
    /// The highest redshift of the PDFs' grid (with --zmin).
    #[arg(long, requires = "zmin")]
    zmax: Option<f64>,
    /// Output directory (must not exist or be empty): metrics.json and report.html.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The report's heading.
    #[arg(long, default_value = "Photo-z validation")]
    title: String,
}

impl ValidateArgs {
    pub fn config(&self) -> ValidateConfig {
        ValidateConfig {
            pz: self.pz.clone(),
            truth: self.truth.clone(),
            id_column: self.id_column.clone(),
            zphot_column: self.zphot_column.clone(),
            pdf_column: self.pdf_column.clone(),
            ztrue_column: self.ztrue_column.clone(),
            mag_column: self.mag_column.clone(),
            tomo_edges: self.tomo_edges.clone(),
            grid: self.zmin.zip(self.zmax),
            out: self.out.clone(),
            title: self.title.clone(),
        }
    }
}

/// Prints the summary lines a person reads after a validation.
pub fn print_summary(v: &Validation, out: &std::path::Path) {
    for w in &v.warnings {
        eprintln!("warning: {w}");
    }
    let m = &v.overall;
    let f = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
    println!(
        "validated {} objects: bias {}  sigma_nmad {}  outliers(|dz|>0.15) {}  PIT KS {}  CDE loss {}",
        v.n_matched,
        f(m.bias),
        f(m.sigma_nmad),
        f(m.outlier_frac_0p15),
        f(m.pit_ks),
        f(m.cde_loss)
    );
    for t in &v.targets {
        println!(
            "  target {:<44} {:>8}  {:<28} {}",
            t.metric,
            f(t.value),
            t.requirement,
            if t.pass { "PASS" } else { "FAIL" }
        );
    }
    println!("  {}", out.join("metrics.json").display());
    println!("  {}", out.join("report.html").display());
}

pub async fn run(args: &ValidateArgs, data_dir: &Option<PathBuf>) -> Result<(), CliError> {
    let dir = crate::resolve_data_dir(data_dir)?;
    let ctx = PzContext::open(DataDir::new(&dir)).await?;
    let v = args.config().run(&ctx).await?;
    print_summary(&v, &args.out);
    Ok(())
}
