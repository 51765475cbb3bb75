//! Filtered listing and counts. Every filter value is a bind parameter; the SQL text is built
//! only from this file's fragments, never from input.

use super::read::{stored_from_row, StoredEntry};
use super::{tenant_param, to_i64, Store, StoreError, SET_TENANT};
use crate::service::query::{ActionMatch, EventFilter, EventQuery, Order};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// The most distinct actions `event_stats` reports (the most frequent ones); the total still
/// counts every event.
pub const MAX_STATS_ACTIONS: usize = 100;

/// Counts over a time window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventStats {
    pub from: String,
    pub to: String,
    pub total: u64,
    pub by_action: BTreeMap<String, u64>,
    pub by_outcome: BTreeMap<String, u64>,
    pub by_severity: BTreeMap<String, u64>,
}

/// The prefix pattern for `LIKE`, with the value's own wildcards escaped.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The SQL conditions of `f` on `events e` (appended to `conditions`, values to `params` as
/// bind parameters), and the `WITH` clause full text needs (empty without `q`). Shared by
/// listing and exports, so an export's filter means exactly what the listing's does.
pub(super) fn filter_conditions(
    f: &EventFilter,
    params: &mut Vec<Box<dyn ToSql + Sync + Send>>,
    conditions: &mut Vec<String>,
) -> String {
    let mut bind = |condition: &str, value: Box<dyn ToSql + Sync + Send>, params: &mut Vec<_>| {
        params.push(value);
        conditions.push(condition.replace('?', &format!("${}", params.len())));
    };
    match &f.action {
        Some(ActionMatch::Exact(a)) => bind("e.action = ?", Box::new(a.clone()), params),
        Some(ActionMatch::Prefix(p)) => bind("e.action LIKE ? ESCAPE '\\'", Box::new(like_prefix(p)), params),
        None => {}
    }
    if let Some(v) = &f.actor_id {
        bind("e.actor_id = ?", Box::new(v.clone()), params);
    }
    if let Some(v) = &f.resource_type {
        bind("e.resource_type = ?", Box::new(v.clone()), params);
    }
    if let Some(v) = &f.resource_id {
        bind("e.resource_id = ?", Box::new(v.clone()), params);
    }
    if let Some(v) = f.outcome {
        bind("e.outcome = ?", Box::new(v.as_str()), params);
    }
    if let Some(v) = f.severity {
        bind("e.severity = ?", Box::new(v.as_str()), params);
    }
    if let Some(v) = &f.source {
        bind("e.source = ?", Box::new(v.clone()), params);
    }
    if let Some(v) = f.from {
        bind("e.occurred_at >= ?", Box::new(v), params);
    }
    if let Some(v) = f.to {
        bind("e.occurred_at < ?", Box::new(v), params);
    }
    // Full text: the matches come from the GIN index first (through `audit_text_search`, see
    // V3 for why a function), then rows are taken from those in seq order. The price: a very
    // common term reads all its matches (OpenSearch, when configured, serves listings of those).
    match &f.q {
        Some(q) => {
            params.push(Box::new(q.clone()));
            conditions.push("e.seq IN (SELECT seq FROM text_matches)".to_owned());
            format!("WITH text_matches AS MATERIALIZED (SELECT seq FROM audit_text_search(${}))", params.len())
        }
        None => String::new(),
    }
}

impl Store {
    /// One page of the tenant's events matching `query`, in its order, after its cursor.
    pub async fn list_events(&mut self, tenant: Uuid, query: &EventQuery) -> Result<Vec<StoredEntry>, StoreError> {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tenant)];
        let mut conditions = vec!["e.tenant_id = $1".to_owned()];
        let with = filter_conditions(&query.filter, &mut params, &mut conditions);
        if let Some(c) = query.cursor {
            let op = if c.order == Order::Asc { "e.seq > $" } else { "e.seq < $" };
            params.push(Box::new(to_i64(c.last_seq)?));
            conditions.push(format!("{op}{}", params.len()));
        }
        let direction = if query.order == Order::Asc { "ASC" } else { "DESC" };
        let sql = format!(
            "{with}
             SELECT c.tenant_id, c.seq, c.event_id, c.received_at, c.content_digest, c.leaf_hash, c.chain_hash, e.content, e.salt
               FROM (SELECT * FROM events e WHERE {} ORDER BY e.seq {direction} LIMIT {}) e
               JOIN chain_entries c ON c.tenant_id = e.tenant_id AND c.seq = e.seq
              ORDER BY e.seq {direction}",
            conditions.join(" AND "),
            query.limit
        );
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let rows = tx.query(&sql, &refs).await?;
        tx.commit().await?;
        rows.iter().map(stored_from_row).collect()
    }

    /// Whether the tenant's entry at `seq` matches `filter`, exactly as a listing with that
    /// filter would decide (the same conditions). An entry whose content is gone matches only a
    /// filter without conditions on it.
    pub async fn entry_matches(&mut self, tenant: Uuid, seq: u64, filter: &EventFilter) -> Result<bool, StoreError> {
        let mut params: Vec<Box<dyn ToSql + Sync + Send>> = vec![Box::new(tenant), Box::new(to_i64(seq)?)];
        let mut conditions = vec!["e.tenant_id = $1".to_owned(), "e.seq = $2".to_owned()];
        let with = filter_conditions(filter, &mut params, &mut conditions);
        let sql = format!("{with} SELECT EXISTS (SELECT 1 FROM events e WHERE {})", conditions.join(" AND "));
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let row = tx.query_one(&sql, &refs).await?;
        tx.commit().await?;
        Ok(row.get(0))
    }

    /// Counts of the tenant's events with `from <= occurred_at < to`.
    pub async fn event_stats(
        &mut self,
        tenant: Uuid,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<EventStats, StoreError> {
        const SQL: &str =
            "SELECT GROUPING(action), GROUPING(outcome), GROUPING(severity), action, outcome, severity, count(*)
               FROM events
              WHERE tenant_id = $1 AND occurred_at >= $2 AND occurred_at < $3
              GROUP BY GROUPING SETS ((action), (outcome), (severity), ())";
        self.recover().await?;
        let tx = self.client.build_transaction().read_only(true).start().await?;
        tx.execute(SET_TENANT, &[&tenant_param(tenant)]).await?;
        let rows = tx.query(SQL, &[&tenant, &from, &to]).await?;
        tx.commit().await?;
        let mut stats = EventStats {
            from: crate::chain::event::format_timestamp(&from),
            to: crate::chain::event::format_timestamp(&to),
            ..Default::default()
        };
        let mut actions = Vec::new();
        for row in &rows {
            let (ga, go, gs): (i32, i32, i32) = (row.get(0), row.get(1), row.get(2));
            let count = u64::try_from(row.get::<_, i64>(6)).unwrap_or(0);
            match (ga, go, gs) {
                (0, _, _) => actions.push((row.get::<_, String>(3), count)),
                (_, 0, _) => {
                    stats.by_outcome.insert(row.get(4), count);
                }
                (_, _, 0) => {
                    // Events without a severity are counted under "none".
                    let severity: Option<String> = row.get(5);
                    stats.by_severity.insert(severity.unwrap_or_else(|| "none".into()), count);
                }
                _ => stats.total = count,
            }
        }
        actions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        stats.by_action = actions.into_iter().take(MAX_STATS_ACTIONS).collect();
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn prefix_patterns_escape_the_values_wildcards() {
        assert_eq!(like_prefix("user."), "user.%");
        assert_eq!(like_prefix("a%b_c\\"), "a\\%b\\_c\\\\%");
    }
}
