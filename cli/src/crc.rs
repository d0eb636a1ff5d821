//! `pz combine-redshifts`: Combine Redshift Catalogs.

use std::collections::BTreeMap;
use std::path::PathBuf;

use pz_engine::pipelines::crc::{CrcConfig, CrcInput, CrcMode, TiePolicy};
use pz_engine::pipelines::tsm::OutputFormat;

use crate::error::CliError;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// Only concatenate (with homogenized flags).
    #[value(name = "concatenate")]
    Concatenate,
    /// Concatenate and mark duplicates (tie_result, group_id).
    #[value(
        name = "concatenate_and_mark_duplicates",
        alias = "concatenate-and-mark-duplicates"
    )]
    MarkDuplicates,
    /// Concatenate and keep the best of each duplicate group.
    #[value(
        name = "concatenate_and_remove_duplicates",
        alias = "concatenate-and-remove-duplicates"
    )]
    RemoveDuplicates,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Ties {
    /// Drop every member of an unresolved tie.
    #[value(name = "remove_all", alias = "remove-all")]
    RemoveAll,
    /// Keep every member of an unresolved tie.
    #[value(name = "keep_all", alias = "keep-all")]
    KeepAll,
    /// Keep one member of an unresolved tie, drawn with --seed.
    #[value(name = "draw_one", alias = "draw-one")]
    DrawOne,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Parquet,
    Csv,
    Hats,
}

#[derive(clap::Args, Debug)]
pub struct CrcArgs {
    /// A catalog as SOURCE=PATH (Parquet, CSV or HATS); repeat for each catalog.
    #[arg(long = "input", value_name = "SOURCE=PATH", required = true)]
    inputs: Vec<String>,
    /// Column map of one source: SOURCE:STD=COLUMN,… with STD among id, ra, dec, z, z_err,
    /// z_flag, survey, z_flag_homogenized, instrument_type_homogenized (only ra, dec and z
    /// are mandatory; names already standard need no map).
    #[arg(long = "map", value_name = "SOURCE:STD=COL,…")]
    maps: Vec<String>,
    /// Instrument type (s, g or p) of a source whose survey is not in the translation file.
    #[arg(long = "instrument-type", value_name = "SOURCE=s|g|p")]
    instrument_types: Vec<String>,
    /// What to do with duplicates.
    #[arg(long, value_enum, default_value = "concatenate_and_remove_duplicates")]
    mode: Mode,
    /// What to do with unresolved ties (only with concatenate_and_remove_duplicates;
    /// default keep_all).
    #[arg(long, value_enum)]
    ties: Option<Ties>,
    /// Seed for --ties draw_one (default 42).
    #[arg(long)]
    seed: Option<u64>,
    /// Keep only rows with z_flag_homogenized >= this.
    #[arg(long, value_name = "FLAG")]
    flag_cut: Option<i32>,
    /// A flag translation file (YAML) replacing pz's own.
    #[arg(long, value_name = "FILE")]
    translation: Option<PathBuf>,
    /// Extra columns to carry through (null where a catalog lacks them).
    #[arg(long, value_delimiter = ',', value_name = "A,B,…")]
    extra_columns: Vec<String>,
    /// Duplicate search radius (arcsec).
    #[arg(long, default_value_t = 0.5)]
    radius_arcsec: f64,
    /// Most neighbours considered per row.
    #[arg(long, default_value_t = 10)]
    max_neighbors: usize,
    /// Output directory.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Parquet)]
    format: Format,
}

fn usage(msg: String) -> CliError {
    CliError::Usage(msg)
}

pub async fn run(a: &CrcArgs) -> Result<(), CliError> {
    let mut inputs: Vec<CrcInput> = Vec::new();
    for spec in &a.inputs {
        let (source, path) = spec
            .split_once('=')
            .ok_or_else(|| usage(format!("--input '{spec}': expected SOURCE=PATH")))?;
        if source.trim().is_empty() || path.trim().is_empty() {
            return Err(usage(format!(
                "--input '{spec}': expected SOURCE=PATH, both non-empty"
            )));
        }
        inputs.push(CrcInput {
            source: source.trim().to_string(),
            path: PathBuf::from(path.trim()),
            columns: BTreeMap::new(),
            instrument_type: None,
        });
    }
    let find = |inputs: &mut Vec<CrcInput>, source: &str, flag: &str| -> Result<usize, CliError> {
        inputs
            .iter()
            .position(|i| i.source == source)
            .ok_or_else(|| usage(format!("{flag}: no --input named '{source}'")))
    };
    for m in &a.maps {
        let (source, pairs) = m
            .split_once(':')
            .ok_or_else(|| usage(format!("--map '{m}': expected SOURCE:STD=COLUMN,…")))?;
        let i = find(&mut inputs, source.trim(), "--map")?;
        for pair in pairs.split(',').filter(|p| !p.trim().is_empty()) {
            let (std, col) = pair
                .split_once('=')
                .ok_or_else(|| usage(format!("--map '{m}': '{pair}' is not STD=COLUMN")))?;
            if col.trim().is_empty() {
                return Err(usage(format!("--map '{m}': '{pair}' names no column")));
            }
            let previous = inputs[i]
                .columns
                .insert(std.trim().to_string(), col.trim().to_string());
            if let Some(p) = previous {
                return Err(usage(format!(
                    "--map: {}'s {} is mapped twice (to '{p}' and '{}')",
                    source.trim(),
                    std.trim(),
                    col.trim()
                )));
            }
        }
    }
    for t in &a.instrument_types {
        let (source, ty) = t
            .split_once('=')
            .ok_or_else(|| usage(format!("--instrument-type '{t}': expected SOURCE=s|g|p")))?;
        let i = find(&mut inputs, source.trim(), "--instrument-type")?;
        let c = match ty.trim() {
            "s" => 's',
            "g" => 'g',
            "p" => 'p',
            other => {
                return Err(usage(format!(
                    "--instrument-type '{t}': '{other}' is not s, g or p"
                )))
            }
        };
        if inputs[i].instrument_type.replace(c).is_some() {
            return Err(usage(format!(
                "--instrument-type: '{}' is given twice",
                source.trim()
            )));
        }
    }
    if a.ties.is_some() && !matches!(a.mode, Mode::RemoveDuplicates) {
        return Err(usage(
            "--ties applies only to --mode concatenate_and_remove_duplicates".into(),
        ));
    }
    if a.seed.is_some() && !matches!(a.ties, Some(Ties::DrawOne)) {
        eprintln!("warning: --seed is used only by --ties draw_one; it is ignored");
    }
    let cfg = CrcConfig {
        inputs,
        mode: match a.mode {
            Mode::Concatenate => CrcMode::Concatenate,
            Mode::MarkDuplicates => CrcMode::ConcatenateAndMarkDuplicates,
            Mode::RemoveDuplicates => CrcMode::ConcatenateAndRemoveDuplicates,
        },
        ties: match a.ties.unwrap_or(Ties::KeepAll) {
            Ties::RemoveAll => TiePolicy::RemoveAll,
            Ties::KeepAll => TiePolicy::KeepAll,
            Ties::DrawOne => TiePolicy::DrawOne,
        },
        seed: a.seed.unwrap_or(42),
        flag_cut: a.flag_cut,
        translation: a.translation.clone(),
        extra_columns: a.extra_columns.clone(),
        radius_arcsec: a.radius_arcsec,
        max_neighbors: a.max_neighbors,
        out: a.out.clone(),
        format: match a.format {
            Format::Parquet => OutputFormat::Parquet,
            Format::Csv => OutputFormat::Csv,
            Format::Hats => OutputFormat::Hats,
        },
    };
    let s = cfg.run().await?;
    println!(
        "combined {} rows into {} ({} duplicate groups, {} unresolved ties) in {:.2} s -> {}",
        s.rows_in,
        s.rows_out,
        s.duplicate_groups,
        s.unresolved_ties,
        s.seconds,
        s.output.display()
    );
    Ok(())
}
