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
use crate::flight::PzFlightService;
use crate::flight_sql::FlightSqlProtocol;
use crate::limits::Limits;

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
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_message_bytes: 256 << 20,
            grace: Duration::from_secs(5),
            limits: Limits::default(),
        }
    }
}

/// A bound, not yet serving, server: its address is known (a `:0` port is chosen by now).
pub struct BoundServer {
    listener: tokio::net::TcpListener,
    service: PzFlightService,
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
        let protocol =
            FlightSqlProtocol::new(Arc::new(PzBackend::new(ctx, config.limits.clone())), auth)?;
        Ok(BoundServer {
            listener,
            service: PzFlightService::new(Arc::new(protocol)),
            config,
        })
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
        let signal = async move {
            stop.await;
            let _ = stopped_tx.send(());
        };
        let server = tonic::transport::Server::builder()
            .add_service(
                FlightServiceServer::new(self.service)
                    .max_decoding_message_size(self.config.max_message_bytes)
                    .max_encoding_message_size(usize::MAX),
            )
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), signal);
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
