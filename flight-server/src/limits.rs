//! What one query may take: memory (its own DataFusion memory pool), wall time, and how
//! many a user may run at once. A query over a limit ends with `ResourceExhausted` or
//! `DeadlineExceeded`; nothing else is disturbed.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::memory_pool::{GreedyMemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::session_state::SessionState;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::{Future, Stream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ServeError;

/// The limits of a server; `None` is no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub query_memory_bytes: Option<usize>,
    pub query_time: Option<Duration>,
    pub queries_per_user: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            query_memory_bytes: Some(4 << 30),
            query_time: Some(Duration::from_secs(3600)),
            queries_per_user: Some(8),
        }
    }
}

/// Counts each user's running queries against [`Limits::queries_per_user`].
#[derive(Debug, Default)]
pub struct Admission {
    per_user: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Admission {
    /// A permit for one more query of `user`, held until the query's stream is dropped.
    pub fn admit(
        &self,
        user: &str,
        limit: Option<usize>,
    ) -> Result<Option<OwnedSemaphorePermit>, ServeError> {
        let Some(limit) = limit else {
            return Ok(None);
        };
        let sem = {
            let mut map = self
                .per_user
                .lock()
                .map_err(|_| ServeError::Internal("the admission table is poisoned".into()))?;
            Arc::clone(
                map.entry(user.to_string())
                    .or_insert_with(|| Arc::new(Semaphore::new(limit))),
            )
        };
        sem.try_acquire_owned().map(Some).map_err(|_| {
            ServeError::ResourceExhausted(format!(
                "user '{user}' already runs {limit} queries, the most at once; wait for one to end"
            ))
        })
    }
}

/// The runtime one query executes with: the session's disk, caches and object stores, and
/// a memory pool of its own of `bytes`, so one query cannot take the memory of others.
/// `None` when there is no limit (the session's own runtime serves).
///
/// It goes into the query's task context rather than a rebuilt session state: operators
/// take memory from the task context, and building a state costs more than planning.
pub fn query_runtime(
    state: &SessionState,
    bytes: Option<usize>,
) -> Result<Option<Arc<RuntimeEnv>>, ServeError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let top = NonZeroUsize::new(3).unwrap_or(NonZeroUsize::MIN);
    let runtime = RuntimeEnvBuilder::from_runtime_env(state.runtime_env())
        .with_memory_pool(Arc::new(TrackConsumersPool::new(
            GreedyMemoryPool::new(bytes),
            top,
        )))
        .build_arc()?;
    Ok(Some(runtime))
}

/// A query's stream that ends with `DeadlineExceeded` once `time` has passed, and holds
/// the user's admission permit until it is dropped.
///
/// The stream is polled on the gRPC runtime, and the query runs on its own
/// ([`crate::executor`]), so the deadline fires on time even while an operator computes for
/// long inside one poll; dropping the stream then aborts the query's task.
pub fn bounded(
    stream: SendableRecordBatchStream,
    time: Option<Duration>,
    permit: Option<OwnedSemaphorePermit>,
) -> SendableRecordBatchStream {
    Box::pin(Bounded {
        schema: stream.schema(),
        inner: Some(stream),
        deadline: time.map(|t| (t, Box::pin(tokio::time::sleep(t)))),
        _permit: permit,
    })
}

struct Bounded {
    schema: SchemaRef,
    inner: Option<SendableRecordBatchStream>,
    deadline: Option<(Duration, Pin<Box<tokio::time::Sleep>>)>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Stream for Bounded {
    type Item = Result<RecordBatch, DataFusionError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        if let Some((limit, sleep)) = self.deadline.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                let limit = *limit;
                // Dropping the plan's stream stops the query and frees its memory.
                self.inner = None;
                return Poll::Ready(Some(Err(DataFusionError::External(Box::new(
                    ServeError::DeadlineExceeded(format!(
                        "the query ran past its time limit of {:.0} s and was stopped",
                        limit.as_secs_f64()
                    )),
                )))));
            }
        }
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl RecordBatchStream for Bounded {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }
}

/// `512MiB`, `4GiB`, `2GB`, `1000000` (bytes).
pub fn parse_bytes(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a size such as 512MiB or 4GiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        u => {
            return Err(format!(
                "'{s}': unknown unit '{u}' (B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)"
            ))
        }
    };
    if n == 0 {
        return Err(format!("'{s}': a limit must be more than 0"));
    }
    n.checked_mul(mult)
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(|| format!("'{s}' is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_bytes("512MiB"), Ok(512 << 20));
        assert_eq!(parse_bytes("2GB"), Ok(2_000_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        for bad in [
            "",
            "0MiB",
            "1.5GiB",
            "12XB",
            "-1",
            "99999999999999999999TiB",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_user_runs_at_most_so_many_queries() {
        let a = Admission::default();
        let p1 = a.admit("ann", Some(2)).unwrap();
        let _p2 = a.admit("ann", Some(2)).unwrap();
        let e = a.admit("ann", Some(2)).unwrap_err();
        assert!(matches!(e, ServeError::ResourceExhausted(_)), "{e}");
        assert!(a.admit("bob", Some(2)).is_ok(), "others are not held up");
        drop(p1);
        assert!(a.admit("ann", Some(2)).is_ok());
        assert!(a.admit("ann", None).unwrap().is_none());
    }
}
