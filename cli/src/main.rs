//! `pz`: photometric redshifts for LSST on Apache DataFusion.

mod args;
mod bench;
mod bench_photoz;
mod bench_serve;
mod crc;
mod demo;
mod error;
mod output;
mod products;
mod serve;
mod sql;
mod tsm;
mod users;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use error::CliError;

#[derive(Parser, Debug)]
#[command(name = "pz", version, about = "Photometric redshifts for LSST on Apache DataFusion", long_about = None)]
struct Cli {
    /// Where pz keeps what must persist (registered tables, models, products).
    /// Default: $PZ_DATA_DIR, else the platform's user data folder (e.g. ~/.local/share/pz).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The metadata database (users, tokens): `postgres://…`, or `sqlite://…`.
    /// Default: $PZ_DATABASE_URL, else SQLite in the data directory (pz.sqlite).
    #[arg(long, global = true, value_name = "URL", env = "PZ_DATABASE_URL")]
    database_url: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run SQL: -c for a string, -f for a file, or an interactive prompt without either.
    Sql(sql::SqlArgs),
    /// Write a mock LSST sky: a HATS object catalog, a truth table and reference redshifts.
    Simulate(SimulateArgs),
    /// The main job on the embedded default sky: simulate, then query it.
    Demo(demo::DemoArgs),
    /// Training Set Maker: cross-match reference redshifts with a HATS object catalog.
    Tsm(tsm::TsmArgs),
    /// Combine reference redshift catalogs: homogenize flags, mark or remove duplicates.
    CombineRedshifts(crc::CrcArgs),
    /// Validate photo-zs against reference redshifts: metrics.json and report.html.
    Validate(validate::ValidateArgs),
    /// Benchmarks of whole jobs.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Serve the data directory's tables, views and models over Arrow Flight and Flight SQL.
    Serve(serve::ServeArgs),
    /// The users of `pz serve`.
    #[command(subcommand)]
    User(users::UserCommand),
    /// API tokens of `pz serve` users.
    #[command(subcommand)]
    Token(users::TokenCommand),
    /// Data releases of the product store.
    #[command(subcommand)]
    Release(products::ReleaseCommand),
    /// Products of the product store (records; uploads come through `pz serve`).
    #[command(subcommand)]
    Product(products::ProductCommand),
}

#[derive(clap::Args, Debug)]
pub struct SimulateArgs {
    /// Number of galaxies in the object catalog.
    #[arg(long, default_value_t = 100_000)]
    objects: usize,
    /// Number of reference (spectroscopic) redshifts.
    #[arg(long, default_value_t = 5_000)]
    specz: usize,
    /// Random seed: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output directory (gets objects/, truth.parquet, specz.parquet).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Most rows per HATS partition.
    #[arg(long, default_value_t = 20_000)]
    pixel_threshold: u64,
    /// Patch centre RA in degrees.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    ra_center: f64,
    /// Patch centre Dec in degrees.
    #[arg(long, default_value_t = -30.0, allow_negative_numbers = true)]
    dec_center: f64,
    /// Galaxies per square degree (sets the patch area).
    #[arg(long, default_value_t = 100_000.0)]
    density: f64,
}

impl SimulateArgs {
    pub fn config(&self) -> pz_engine::simulate::SimulateConfig {
        pz_engine::simulate::SimulateConfig {
            objects: self.objects,
            specz: self.specz,
            seed: self.seed,
            out: self.out.clone(),
            ra_center: self.ra_center,
            dec_center: self.dec_center,
            density_per_deg2: self.density,
            pixel_threshold: self.pixel_threshold,
            ..Default::default()
        }
    }
}

/// The data directory: flag, else $PZ_DATA_DIR, else the platform default.
pub fn resolve_data_dir(flag: &Option<PathBuf>) -> Result<PathBuf, CliError> {
    if let Some(d) = flag {
        return Ok(d.clone());
    }
    if let Some(d) = std::env::var_os("PZ_DATA_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    dirs::data_dir().map(|d| d.join("pz")).ok_or_else(|| {
        CliError::Usage("no user data folder on this platform: pass --data-dir".into())
    })
}

fn run_simulate(args: &SimulateArgs) -> Result<(), CliError> {
    let t0 = std::time::Instant::now();
    let s = pz_engine::simulate::simulate(&args.config())?;
    println!(
        "simulated {} galaxies over {:.3} deg² (seed {}) in {:.2} s",
        s.hats.rows,
        s.area_deg2,
        args.seed,
        t0.elapsed().as_secs_f64()
    );
    println!(
        "  objects  {}  ({} HATS partitions)",
        s.objects_dir.display(),
        s.hats.partitions.len()
    );
    println!("  truth    {}", s.truth_path.display());
    println!(
        "  specz    {}  ({} rows, {} on catalogued objects)",
        s.specz_path.display(),
        s.specz_rows,
        s.specz_matched
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Sql(args) => sql::run(args, &cli.data_dir).await,
            Command::Simulate(args) => run_simulate(args),
            Command::Demo(args) => demo::run(args).await,
            Command::Tsm(args) => tsm::run(args).await,
            Command::CombineRedshifts(args) => crc::run(args).await,
            Command::Validate(args) => validate::run(args, &cli.data_dir).await,
            Command::Bench(cmd) => bench::run(cmd).await,
            Command::Serve(args) => serve::run(args, &cli.data_dir, &cli.database_url).await,
            Command::User(cmd) => users::run_user(cmd, &cli.data_dir, &cli.database_url).await,
            Command::Token(cmd) => users::run_token(cmd, &cli.data_dir, &cli.database_url).await,
            Command::Release(cmd) => {
                products::run_release(cmd, &cli.data_dir, &cli.database_url).await
            }
            Command::Product(cmd) => {
                products::run_product(cmd, &cli.data_dir, &cli.database_url).await
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            ExitCode::FAILURE
        }
    }
}
