//! Starting and stopping the server.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use pz_engine::PzContext;
use tokio_stream::wrappers::TcpListenerStream;

use crate::auth::Authenticator;
use crate::backend::PzBackend;
use crate::error::ServeError;
use crate::executor::QueryRuntime;
use crate::flight::PzFlightService;
use crate::flight_sql::FlightSqlProtocol;
use crate::limits::Limits;
use crate::running::RunningQueries;

/// A certificate chain and its private key, PEM, for serving over TLS.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key is never printed.
        f.debug_struct("TlsIdentity")
            .field("cert_pem_bytes", &self.cert_pem.len())
            .finish_non_exhaustive()
    }
}

/// How a server is run.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Largest message a client may send (parameters, ingested batches). tonic's default,
    /// 4 MiB, is smaller than one batch ADBC sends unsplit.
    pub max_message_bytes: usize,
    /// After a stop is asked for, how long running requests may take to end before they
    /// are cancelled.
    pub grace: Duration,
    pub limits: Limits,
    /// Serve over TLS with this identity (plain gRPC when `None`).
    pub tls: Option<TlsIdentity>,
    /// Worker threads of the query runtime (the machine's cores when `None`).
    pub query_threads: Option<usize>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_message_bytes: 256 << 20,
            grace: Duration::from_secs(5),
            limits: Limits::default(),
            tls: None,
            query_threads: None,
        }
    }
}

/// A bound, not yet serving, server: its address is known (a `:0` port is chosen by now).
pub struct BoundServer {
    listener: tokio::net::TcpListener,
    service: PzFlightService,
    running: Arc<RunningQueries>,
    config: ServeConfig,
}

impl BoundServer {
    /// Binds `config.listen` for a server of `ctx`.
    pub async fn bind(
        ctx: Arc<PzContext>,
        auth: Arc<dyn Authenticator>,
        config: ServeConfig,
    ) -> Result<Self, ServeError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| {
                ServeError::Internal(format!("cannot listen on {}: {e}", config.listen))
            })?;
        let runtime = QueryRuntime::new(config.query_threads)?;
        let running = Arc::new(RunningQueries::default());
        let backend = PzBackend::new(ctx, config.limits.clone(), runtime);
        let protocol = FlightSqlProtocol::new(Arc::new(backend), auth, Arc::clone(&running))?;
        Ok(BoundServer {
            listener,
            service: PzFlightService::new(Arc::new(protocol)),
            running,
            config,
        })
    }

    /// The URI clients connect to: `grpc://HOST:PORT`, or `grpc+tls://…` with TLS.
    pub fn uri(&self) -> Result<String, ServeError> {
        let scheme = if self.config.tls.is_some() {
            "grpc+tls"
        } else {
            "grpc"
        };
        Ok(format!("{scheme}://{}", self.local_addr()?))
    }

    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener
            .local_addr()
            .map_err(|e| ServeError::Internal(format!("no local address: {e}")))
    }

    /// Serves until `stop` completes; requests still running `grace` later are cancelled
    /// (their streams dropped, which stops their queries).
    pub async fn serve(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let grace = self.config.grace;
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        let running = Arc::clone(&self.running);
        let signal = async move {
            stop.await;
            // Running queries end now, each with an error saying why; tonic then waits for
            // their streams to close, which they do at once.
            let n = running.stop_all();
            tracing::info!(cancelled = n, "stopping: running queries cancelled");
            let _ = stopped_tx.send(());
        };
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &self.config.tls {
            let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(|e| ServeError::invalid(format!("the TLS certificate or key: {e}")))?;
        }
        let server = builder
            .add_service(
                FlightServiceServer::new(self.service)
                    .max_decoding_message_size(self.config.max_message_bytes)
                    .max_encoding_message_size(usize::MAX),
            )
            .serve_with_incoming_shutdown(without_nagle(self.listener), signal);
        let deadline = async move {
            if stopped_rx.await.is_ok() {
                tokio::time::sleep(grace).await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            r = server => r.map_err(|e| ServeError::Internal(format!("the server stopped: {e}"))),
            _ = deadline => {
                tracing::info!("stopped with requests still running: they are cancelled");
                Ok(())
            }
        }
    }
}

/// Accepted connections with Nagle's algorithm off. tonic's own `tcp_nodelay` applies only
/// to listeners it binds; without it a small reply waits for the client's delayed ACK, tens
/// of milliseconds for every `SELECT 1`.
fn without_nagle(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use futures::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!("cannot turn off Nagle's algorithm on a connection: {e}");
            }
        })
    })
}
