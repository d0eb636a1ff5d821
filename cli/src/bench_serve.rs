//! `pz bench serve`: `pz serve` measured on loopback by the clients people install
//! (pyarrow.flight, ADBC's Flight SQL driver), beside a minimal pyarrow.flight server.
//! The measuring lives in tests/python/bench_serve.py, embedded so the binary needs no
//! checkout; this only runs it with this binary as the server.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::CliError;

#[derive(clap::Args, Debug)]
pub struct ServeBenchArgs {
    /// A Python with pyarrow, numpy and adbc_driver_flightsql (e.g. .venv-test/bin/python).
    #[arg(long, value_name = "PYTHON")]
    python: PathBuf,
    /// Working folder: the generated Parquet files (kept, and reused by runs of the same
    /// sizes), a fresh data directory and mock sky, the server's log (serve.log). The
    /// global --data-dir is not used.
    #[arg(long, value_name = "DIR", default_value = "pz-bench-serve")]
    work: PathBuf,
    /// Rows of the wide table, 8 float64 columns [default: 20000000; --quick: 200000].
    #[arg(long, value_parser = crate::args::at_least_one)]
    rows: Option<usize>,
    /// Rows of the photo-z table: objectId, z_mode and a 301-point float32 pdf
    /// [default: 1000000; --quick: 20000].
    #[arg(long, value_parser = crate::args::at_least_one)]
    pdf_rows: Option<usize>,
    /// Concurrent ADBC clients, a process each [default: 50; --quick: 4].
    #[arg(long, value_parser = crate::args::at_least_one)]
    clients: Option<usize>,
    /// Length of the concurrent run, in seconds [default: 60; --quick: 5].
    #[arg(long, value_parser = crate::args::positive)]
    seconds: Option<f64>,
    /// Timed DoGet reads per server after one warm-up; the best is reported
    /// [default: 3; --quick: 2].
    #[arg(long, value_parser = crate::args::at_least_one)]
    repeat: Option<usize>,
    /// Tiny sizes (flags given still win): a smoke run of all three parts.
    #[arg(long)]
    quick: bool,
}

const SCRIPT: &str = include_str!("../../tests/python/bench_serve.py");

pub fn serve(a: &ServeBenchArgs) -> Result<(), CliError> {
    let pz = std::env::current_exe()
        .map_err(|e| CliError::Usage(format!("cannot tell where this pz binary is: {e}")))?;
    // The script must stay on disk for the whole run: it starts itself again as the
    // reference server, and multiprocessing's spawn re-imports it in every client.
    let script = std::env::temp_dir().join(format!("pz-bench-serve-{}.py", std::process::id()));
    std::fs::write(&script, SCRIPT).map_err(CliError::io(&script))?;
    let mut cmd = Command::new(&a.python);
    cmd.arg(&script)
        .arg("--pz")
        .arg(&pz)
        .arg("--work")
        .arg(&a.work);
    let counts = [
        ("--rows", a.rows),
        ("--pdf-rows", a.pdf_rows),
        ("--clients", a.clients),
        ("--repeat", a.repeat),
    ];
    for (flag, v) in counts {
        if let Some(v) = v {
            cmd.arg(flag).arg(v.to_string());
        }
    }
    if let Some(s) = a.seconds {
        cmd.arg("--seconds").arg(s.to_string());
    }
    if a.quick {
        cmd.arg("--quick");
    }
    let result = run_streaming(&mut cmd, &a.python);
    let _ = std::fs::remove_file(&script);
    result.map(|_| ())
}

/// As bench.rs's `run_reference`, but echoing every line as it comes: the run takes
/// minutes, and its human-readable lines are the report. The last line is the JSON.
fn run_streaming(cmd: &mut Command, python: &Path) -> Result<serde_json::Value, CliError> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(CliError::io(python))?;
    let mut last = String::new();
    if let Some(out) = child.stdout.take() {
        let stdout = std::io::stdout();
        for line in BufReader::new(out).lines() {
            let line = line.map_err(CliError::io(python))?;
            {
                let mut o = stdout.lock();
                let _ = writeln!(o, "{line}");
                let _ = o.flush();
            }
            if !line.trim().is_empty() {
                last = line;
            }
        }
    }
    let status = child.wait().map_err(CliError::io(python))?;
    let json: Option<serde_json::Value> = serde_json::from_str(&last).ok();
    if !status.success() {
        let why = match json.as_ref().and_then(|j| j.get("failures")) {
            Some(f) => format!("failed: {f}"),
            None => format!("exited with {status} (see its standard error above)"),
        };
        return Err(CliError::Usage(format!("the serve benchmark {why}")));
    }
    json.ok_or_else(|| CliError::Usage("the serve benchmark printed no JSON line".into()))
}
