//! The queries running now, so they can be stopped from outside their own request: by
//! `CancelFlightInfo` (its FlightInfo's tickets name them) or all at once when the server
//! stops.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::{Future, Stream};
use sha2::{Digest, Sha256};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use crate::auth::Principal;
use crate::error::ServeError;

/// Why a query was stopped from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// Its FlightInfo was cancelled by the client.
    Cancelled,
    /// The server is stopping.
    ServerStopping,
}

impl StopReason {
    pub fn error(self) -> ServeError {
        match self {
            StopReason::Cancelled => {
                ServeError::Cancelled("the query was cancelled (CancelFlightInfo)".into())
            }
            StopReason::ServerStopping => {
                ServeError::Unavailable("the server is stopping; the query was cancelled".into())
            }
        }
    }
}

struct Entry {
    ticket: [u8; 32],
    user: String,
    stop: Stop,
}

#[derive(Clone, Default)]
struct Stop {
    token: CancellationToken,
    reason: Arc<OnceLock<StopReason>>,
}

impl Stop {
    fn fire(&self, reason: StopReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    fn reason(&self) -> StopReason {
        self.reason.get().copied().unwrap_or(StopReason::Cancelled)
    }
}

/// Every running query, by the digest of the ticket that started it.
#[derive(Default)]
pub struct RunningQueries {
    next: AtomicU64,
    entries: Mutex<HashMap<u64, Entry>>,
    stopping: OnceLock<()>,
}

fn digest(ticket: &[u8]) -> [u8; 32] {
    Sha256::digest(ticket).into()
}

impl RunningQueries {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Entry>> {
        // The map holds no invariant a panicking holder could break.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a query started by `ticket` for `user`; it is forgotten when the returned
    /// [`Running`] is dropped. Refused once the server is stopping.
    pub fn start(self: &Arc<Self>, ticket: &[u8], user: &str) -> Result<Running, ServeError> {
        if self.stopping.get().is_some() {
            return Err(StopReason::ServerStopping.error());
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stop = Stop::default();
        self.entries().insert(
            id,
            Entry {
                ticket: digest(ticket),
                user: user.to_string(),
                stop: stop.clone(),
            },
        );
        Ok(Running {
            id,
            registry: Arc::clone(self),
            stop,
        })
    }

    /// Cancels the queries started by any of `tickets` that `who` may cancel (their own;
    /// an admin's: anyone's). Returns how many were.
    pub fn cancel(&self, tickets: &[&[u8]], who: &Principal) -> usize {
        let wanted: Vec<[u8; 32]> = tickets.iter().map(|t| digest(t)).collect();
        let mut n = 0;
        for e in self.entries().values() {
            if wanted.contains(&e.ticket) && (who.admin || e.user == who.user) {
                e.stop.fire(StopReason::Cancelled);
                n += 1;
            }
        }
        n
    }

    /// Cancels every query, and refuses new ones: the server is stopping.
    pub fn stop_all(&self) -> usize {
        let _ = self.stopping.set(());
        let entries = self.entries();
        for e in entries.values() {
            e.stop.fire(StopReason::ServerStopping);
        }
        entries.len()
    }

    pub fn len(&self) -> usize {
        self.entries().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One running query's place in [`RunningQueries`].
pub struct Running {
    id: u64,
    registry: Arc<RunningQueries>,
    stop: Stop,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.registry.entries().remove(&self.id);
    }
}

impl Running {
    /// `stream`, ended with the stop's error when the query is stopped from outside; the
    /// plan's stream is dropped then, which stops the query.
    pub fn watch(self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let stopped = Box::pin(self.stop.token.clone().cancelled_owned());
        Box::pin(Watched {
            schema: stream.schema(),
            inner: Some(stream),
            stopped,
            running: self,
        })
    }

    /// Runs `work` unless the query is stopped first (then its error).
    pub async fn run<T>(
        &self,
        work: impl Future<Output = Result<T, ServeError>>,
    ) -> Result<T, ServeError> {
        tokio::select! {
            r = work => r,
            _ = self.stop.token.cancelled() => Err(self.stop.reason().error()),
        }
    }
}

struct Watched {
    schema: SchemaRef,
    inner: Option<SendableRecordBatchStream>,
    stopped: Pin<Box<WaitForCancellationFutureOwned>>,
    running: Running,
}

impl Stream for Watched {
    type Item = Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        if self.stopped.as_mut().poll(cx).is_ready() {
            self.inner = None;
            let e = self.running.stop.reason().error();
            return Poll::Ready(Some(Err(DataFusionError::External(Box::new(e)))));
        }
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl RecordBatchStream for Watched {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Schema;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use futures::StreamExt;

    fn pending_stream() -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            Arc::new(Schema::empty()),
            futures::stream::pending(),
        ))
    }

    fn user(name: &str, admin: bool) -> Principal {
        Principal {
            user: name.into(),
            admin,
        }
    }

    #[tokio::test]
    async fn a_cancel_stops_the_query_its_ticket_started() {
        let reg = Arc::new(RunningQueries::default());
        let mut s = reg
            .start(b"ticket-a", "ann")
            .unwrap()
            .watch(pending_stream());
        let _other = reg.start(b"ticket-b", "ann").unwrap();
        assert_eq!(
            reg.cancel(&[b"ticket-a"], &user("bob", false)),
            0,
            "not bob's"
        );
        assert_eq!(reg.cancel(&[b"ticket-a"], &user("ann", false)), 1);
        let e = s.next().await.unwrap().unwrap_err();
        let e = ServeError::from(e);
        assert_eq!(e.code(), tonic::Code::Cancelled, "{e}");
        drop(s);
        assert_eq!(reg.len(), 1, "a finished query is forgotten");
        assert_eq!(reg.cancel(&[b"ticket-b"], &user("root", true)), 1);
    }

    #[tokio::test]
    async fn stopping_cancels_everything_and_refuses_more() {
        let reg = Arc::new(RunningQueries::default());
        let running = reg.start(b"t", "ann").unwrap();
        let work = running.run(futures::future::pending::<Result<(), ServeError>>());
        let stop = async {
            tokio::task::yield_now().await;
            reg.stop_all()
        };
        let (r, n) = tokio::join!(work, stop);
        assert_eq!(n, 1);
        assert_eq!(r.unwrap_err().code(), tonic::Code::Unavailable);
        assert!(reg.start(b"u", "ann").is_err());
    }
}
