//! One structured log line per request, through `tracing`: user, RPC, statement or table,
//! rows, bytes, milliseconds and outcome. A streamed result is logged when its stream ends
//! (or when the client goes away), so the line has the whole count.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tonic::Code;

/// What a request did, filled in as it runs.
#[derive(Debug, Default)]
pub struct RequestStats {
    rows: AtomicU64,
    bytes: AtomicU64,
    statement: Mutex<Option<String>>,
}

impl RequestStats {
    pub fn add_rows(&self, n: usize) {
        self.rows.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn set_statement(&self, s: &str) {
        if let Ok(mut g) = self.statement.lock() {
            *g = Some(s.to_string());
        }
    }

    fn statement(&self) -> String {
        self.statement
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_default()
    }
}

/// Writes the request's line when dropped.
pub struct RequestLog {
    pub stats: Arc<RequestStats>,
    user: String,
    rpc: &'static str,
    started: Instant,
    outcome: Mutex<Option<String>>,
    finished: AtomicBool,
}

impl RequestLog {
    pub fn start(rpc: &'static str, user: &str) -> Arc<Self> {
        Arc::new(RequestLog {
            stats: Arc::new(RequestStats::default()),
            user: user.to_string(),
            rpc,
            started: Instant::now(),
            outcome: Mutex::new(None),
            finished: AtomicBool::new(false),
        })
    }

    /// Records how the request ended (`ok`, or the gRPC code); the first word stands.
    pub fn outcome(&self, code: Code) {
        if let Ok(mut g) = self.outcome.lock() {
            if g.is_none() {
                *g = Some(if code == Code::Ok {
                    "ok".into()
                } else {
                    format!("{code:?}")
                });
            }
        }
    }

    /// The stream was read to its end.
    pub fn finished(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let outcome = self
            .outcome
            .lock()
            .ok()
            .and_then(|g| g.clone())
            .unwrap_or_else(|| {
                if self.finished.load(Ordering::Relaxed) {
                    "ok".into()
                } else {
                    "cancelled".into()
                }
            });
        tracing::info!(
            user = %self.user,
            rpc = self.rpc,
            statement = %self.stats.statement(),
            rows = self.stats.rows.load(Ordering::Relaxed),
            bytes = self.stats.bytes.load(Ordering::Relaxed),
            ms = self.started.elapsed().as_secs_f64() * 1e3,
            outcome = %outcome,
            "request"
        );
    }
}
