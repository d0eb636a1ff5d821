//! Plans made at `GetFlightInfo`, kept for the `DoGet` that usually follows within
//! milliseconds.
//!
//! Tickets are self-contained (they carry the SQL), so a `DoGet` can always plan again, on
//! any server; this cache only saves planning twice on the common path. An entry is taken
//! once, by the same user with the same rights, and only while it is fresh: a plan holds
//! the tables as they were when it was made, so a stale one must not be served after DDL.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;

/// How long a plan waits for its `DoGet`.
pub const PLAN_TTL: Duration = Duration::from_secs(5);
/// Plans kept at most; beyond this a new plan is simply not kept.
const CAPACITY: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    user: String,
    admin: bool,
    sql: String,
}

#[derive(Default)]
pub struct PlanCache {
    entries: Mutex<HashMap<Key, (Instant, SessionState, LogicalPlan)>>,
}

impl PlanCache {
    /// Keeps `plan` (made with `state`) for `user`'s next run of `sql`.
    pub fn keep(&self, user: &str, admin: bool, sql: &str, state: SessionState, plan: LogicalPlan) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let now = Instant::now();
        if entries.len() >= CAPACITY {
            entries.retain(|_, (made, _, _)| now.duration_since(*made) < PLAN_TTL);
            if entries.len() >= CAPACITY {
                return;
            }
        }
        let key = Key {
            user: user.to_string(),
            admin,
            sql: sql.to_string(),
        };
        entries.insert(key, (now, state, plan));
    }

    /// The plan kept for `user`'s `sql`, removed from the cache; `None` if there is none
    /// or it is older than [`PLAN_TTL`].
    pub fn take(&self, user: &str, admin: bool, sql: &str) -> Option<(SessionState, LogicalPlan)> {
        let mut entries = self.entries.lock().ok()?;
        let key = Key {
            user: user.to_string(),
            admin,
            sql: sql.to_string(),
        };
        let (made, state, plan) = entries.remove(&key)?;
        (made.elapsed() < PLAN_TTL).then_some((state, plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn plan(sql: &str) -> (SessionState, LogicalPlan) {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let plan = state.create_logical_plan(sql).await.unwrap();
        (state, plan)
    }

    #[tokio::test]
    async fn a_plan_is_taken_once_by_the_same_user_with_the_same_rights() {
        let cache = PlanCache::default();
        let (state, p) = plan("SELECT 1").await;
        cache.keep("ana", false, "SELECT 1", state, p);
        assert!(cache.take("bob", false, "SELECT 1").is_none());
        assert!(cache.take("ana", true, "SELECT 1").is_none());
        assert!(cache.take("ana", false, "SELECT 2").is_none());
        assert!(cache.take("ana", false, "SELECT 1").is_some());
        assert!(cache.take("ana", false, "SELECT 1").is_none(), "taken once");
    }

    #[tokio::test]
    async fn a_full_cache_keeps_no_more() {
        let cache = PlanCache::default();
        for i in 0..CAPACITY + 10 {
            let (state, p) = plan("SELECT 1").await;
            cache.keep("ana", false, &format!("SELECT {i}"), state, p);
        }
        assert!(cache.take("ana", false, "SELECT 0").is_some());
        assert!(cache
            .take("ana", false, &format!("SELECT {}", CAPACITY + 5))
            .is_none());
    }
}
