//! `pz serve`: the data directory's session over Arrow Flight and Flight SQL.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use pz_catalogs::store::MetadataStore;
use pz_engine::{DataDir, PzContext};
use pz_flight_server::store_auth::StoreAuthenticator;
use pz_flight_server::{BoundServer, ServeConfig, TlsIdentity};

use crate::error::CliError;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:50051", value_name = "HOST:PORT")]
    listen: SocketAddr,
    /// Serve over TLS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve callers that send no credentials, as the read-only user 'anonymous'.
    #[arg(long)]
    allow_anonymous: bool,
    /// Memory one query may use (its own pool; operators that can spill do): e.g. 4GiB.
    #[arg(long, default_value = "4GiB", value_parser = pz_flight_server::limits::parse_bytes)]
    query_memory: usize,
    /// Wall time one query may run: e.g. 10m, 1h.
    #[arg(long, default_value = "1h", value_parser = crate::users::parse_lifetime)]
    query_timeout: std::time::Duration,
    /// Queries one user may run at once.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    max_queries_per_user: u64,
}

pub async fn run(
    args: &ServeArgs,
    data_dir: &Option<PathBuf>,
    database_url: &Option<String>,
) -> Result<(), CliError> {
    init_logging();
    let dir = crate::resolve_data_dir(data_dir)?;
    let store = MetadataStore::open_for(&dir, database_url.as_deref())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let ctx = PzContext::open(DataDir::new(dir)).await?;
    for w in &ctx.warnings {
        eprintln!("warning: {w}");
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsIdentity {
            cert_pem: read_pem(cert, "--tls-cert", "CERTIFICATE")?,
            key_pem: read_pem(key, "--tls-key", "PRIVATE KEY")?,
        }),
        _ => None,
    };
    let auth = Arc::new(StoreAuthenticator::new(store, args.allow_anonymous));
    let config = ServeConfig {
        listen: args.listen,
        limits: pz_flight_server::Limits {
            query_memory_bytes: Some(args.query_memory),
            query_time: Some(args.query_timeout),
            queries_per_user: Some(args.max_queries_per_user as usize),
        },
        tls,
        ..ServeConfig::default()
    };
    let server = BoundServer::bind(Arc::new(ctx), auth, config)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let uri = server.uri().map_err(|e| CliError::Usage(e.to_string()))?;
    // Scripts and tests read this line to learn the port.
    println!("pz serve: listening on {uri}");
    let _ = std::io::stdout().flush();
    server
        .serve(stop_signal())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    eprintln!("pz serve: stopped");
    Ok(())
}

/// A PEM file's bytes, checked to hold what its flag says (`label`), naming the file if not.
fn read_pem(path: &std::path::Path, flag: &str, label: &str) -> Result<Vec<u8>, CliError> {
    let bytes = std::fs::read(path)
        .map_err(|e| CliError::Usage(format!("{flag} {}: {e}", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    if !text.contains("-----BEGIN ") || !text.contains(label) {
        return Err(CliError::Usage(format!(
            "{flag} {}: not a PEM file holding a {label}",
            path.display()
        )));
    }
    Ok(bytes)
}

/// One line per request on standard error.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .try_init();
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
