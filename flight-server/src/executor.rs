//! A runtime of its own for query work, apart from the one that answers gRPC.
//!
//! DataFusion's operators compute inside their polls: an aggregate over a large join can
//! hold a worker thread for seconds. On the runtime that serves the network, that would
//! stall every other client's calls and the timers that enforce time limits. So queries run
//! here, and the gRPC side only moves finished batches through a small channel: a deadline,
//! a cancel or a client that goes away is seen at once there, and ends the query's task.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::{Future, Stream, StreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::ServeError;

/// Batches a query may have made ahead of the client.
const BATCHES_AHEAD: usize = 2;

/// The query runtime. Its threads stop when the last clone is dropped.
#[derive(Clone)]
pub struct QueryRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    handle: tokio::runtime::Handle,
    // Dropping the sender lets the runtime's owner thread end, dropping the runtime where
    // blocking is allowed (a runtime may not be dropped inside another one).
    _stop: std::sync::mpsc::Sender<()>,
}

impl QueryRuntime {
    /// A multi-threaded runtime of `threads` workers (the machine's cores when `None`).
    pub fn new(threads: Option<usize>) -> Result<Self, ServeError> {
        let threads = threads.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let (handle_tx, handle_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("pz-query-runtime".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads.max(1))
                    .thread_name("pz-query")
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => {
                        let _ = handle_tx.send(Ok(rt.handle().clone()));
                        // Blocks until every QueryRuntime clone is gone.
                        let _ = stop_rx.recv();
                        rt.shutdown_background();
                    }
                    Err(e) => {
                        let _ = handle_tx.send(Err(e.to_string()));
                    }
                }
            })
            .map_err(|e| ServeError::Internal(format!("cannot start the query runtime: {e}")))?;
        let handle = handle_rx
            .recv()
            .map_err(|_| ServeError::Internal("the query runtime did not start".into()))?
            .map_err(|e| ServeError::Internal(format!("cannot start the query runtime: {e}")))?;
        Ok(QueryRuntime {
            inner: Arc::new(Inner {
                handle,
                _stop: stop_tx,
            }),
        })
    }

    /// Runs `work` on the query runtime; dropping the returned future stops it.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ServeError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, ServeError>> + Send + 'static,
    {
        let task = AbortOnDrop(self.inner.handle.spawn(work));
        task.await
    }

    /// The stream `start` makes, run on the query runtime and polled from here: batches
    /// come through a channel of [`BATCHES_AHEAD`]. Dropping the stream stops the query.
    pub fn stream<F>(&self, schema: SchemaRef, start: F) -> SendableRecordBatchStream
    where
        F: Future<Output = Result<SendableRecordBatchStream, DataFusionError>> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel(BATCHES_AHEAD);
        let task = self.inner.handle.spawn(async move {
            let mut stream = match start.await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            };
            while let Some(item) = stream.next().await {
                if tx.send(item).await.is_err() {
                    // The receiver is gone: the client left or the query was stopped.
                    return;
                }
            }
        });
        Box::pin(Remote {
            schema,
            rx,
            _task: AbortOnDrop(task),
        })
    }
}

/// A task that is aborted when its handle is dropped (tokio's detaches instead).
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<Result<T, ServeError>> {
    type Output = Result<T, ServeError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(out) => out,
            Err(e) if e.is_panic() => Err(ServeError::Internal(
                "the query's task failed unexpectedly; the server goes on".into(),
            )),
            Err(_) => Err(ServeError::Cancelled("the query was stopped".into())),
        })
    }
}

struct Remote {
    schema: SchemaRef,
    rx: mpsc::Receiver<Result<RecordBatch, DataFusionError>>,
    _task: AbortOnDrop<()>,
}

impl Stream for Remote {
    type Item = Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl RecordBatchStream for Remote {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn busy_queries_do_not_hold_up_the_callers_runtime() {
        let rt = QueryRuntime::new(Some(1)).unwrap();
        // A query that computes without yielding for a second.
        let busy = rt.stream(schema(), async {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                std::hint::spin_loop();
            }
            let b = RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(vec![1]))])?;
            Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema(),
                futures::stream::iter([Ok(b)]),
            )) as SendableRecordBatchStream)
        });
        // This single-threaded runtime still answers meanwhile.
        let t = Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(t.elapsed() < Duration::from_millis(500));
        let got: Vec<_> = busy.collect().await;
        assert_eq!(got.len(), 1);
        assert!(got[0].is_ok());
    }

    #[tokio::test]
    async fn dropping_the_stream_stops_the_query() {
        let rt = QueryRuntime::new(Some(1)).unwrap();
        let finished = Arc::new(AtomicBool::new(false));
        let f = Arc::clone(&finished);
        let s = rt.stream(schema(), async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            f.store(true, Ordering::SeqCst);
            Err(DataFusionError::Execution("never reached".into()))
        });
        drop(s);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(!finished.load(Ordering::SeqCst));
        let v = rt.run(async { Ok(7) }).await.unwrap();
        assert_eq!(v, 7);
    }
}
