//! `pz tsm`: the Training Set Maker.

use std::path::PathBuf;

use pz_engine::pipelines::tsm::{ColumnMap, OutputFormat, TsmConfig};

use crate::error::CliError;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Hats,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DustMap {
    /// Schlegel, Finkbeiner & Davis (1998) E(B−V), read from --ebv-column.
    Sfd,
}

#[derive(clap::Args, Debug)]
pub struct TsmArgs {
    /// Reference redshift catalog: Parquet, CSV or a HATS directory.
    #[arg(long, value_name = "CATALOG")]
    redshift: PathBuf,
    /// Object catalog (HATS directory).
    #[arg(long, value_name = "HATS_DIR")]
    objects: PathBuf,
    /// Match radius in arcseconds.
    #[arg(long, default_value_t = 1.0)]
    radius_arcsec: f64,
    /// Objects kept per redshift, nearest first.
    #[arg(long, default_value_t = 1)]
    n_neighbors: usize,
    /// One-to-one: an object goes to at most one redshift, the closest.
    #[arg(long)]
    unique: bool,
    /// Object columns to keep (default: all).
    #[arg(long, value_delimiter = ',', value_name = "A,B,…")]
    columns: Vec<String>,
    /// Turn object flux columns (nJy) into AB magnitudes (and flux errors into mag errors).
    #[arg(long)]
    flux_to_mag: bool,
    /// Deredden magnitudes with this dust map (needs --ebv-column).
    #[arg(long, value_enum, requires = "ebv_column")]
    deredden: Option<DustMap>,
    /// Object column holding E(B−V).
    #[arg(long, value_name = "COLUMN", requires = "deredden")]
    ebv_column: Option<String>,
    /// Fraction of rows flagged is_training_set (a seeded draw per redshift id).
    #[arg(long, default_value_t = 0.7)]
    train_fraction: f64,
    /// Seed of the training/validation draw.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory (gets the training set and provenance.json).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    format: Format,
    /// Redshift catalog column holding the id.
    #[arg(long, default_value = "id")]
    id_column: String,
    /// … right ascension (degrees).
    #[arg(long, default_value = "ra")]
    ra_column: String,
    /// … declination (degrees).
    #[arg(long, default_value = "dec")]
    dec_column: String,
    /// … redshift.
    #[arg(long, default_value = "z")]
    z_column: String,
    /// … redshift error (default: z_err, when the catalog has it).
    #[arg(long, value_name = "COLUMN")]
    z_err_column: Option<String>,
    /// … quality flag (default: z_flag, when the catalog has it).
    #[arg(long, value_name = "COLUMN")]
    z_flag_column: Option<String>,
    /// … survey name (default: survey, when the catalog has it).
    #[arg(long, value_name = "COLUMN")]
    survey_column: Option<String>,
}

pub async fn run(a: &TsmArgs) -> Result<(), CliError> {
    let cfg = TsmConfig {
        redshift: a.redshift.clone(),
        objects: a.objects.clone(),
        columns: ColumnMap {
            id: a.id_column.clone(),
            ra: a.ra_column.clone(),
            dec: a.dec_column.clone(),
            z: a.z_column.clone(),
            z_err: a.z_err_column.clone(),
            z_flag: a.z_flag_column.clone(),
            survey: a.survey_column.clone(),
        },
        radius_arcsec: a.radius_arcsec,
        n_neighbors: a.n_neighbors,
        unique: a.unique,
        object_columns: a.columns.clone(),
        flux_to_mag: a.flux_to_mag,
        ebv_column: a.deredden.and(a.ebv_column.clone()),
        train_fraction: a.train_fraction,
        seed: a.seed,
        out: a.out.clone(),
        format: match a.format {
            Format::Parquet => OutputFormat::Parquet,
            Format::Csv => OutputFormat::Csv,
            Format::Hats => OutputFormat::Hats,
        },
    };
    let s = cfg.run().await?;
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "training set: {} rows ({} flagged is_training_set) in {:.2} s -> {}",
        s.rows,
        s.training_rows,
        s.seconds,
        s.output.display()
    );
    println!("provenance:   {}", a.out.join("provenance.json").display());
    Ok(())
}
