//! Querying: `GET /v1/events` (filters, order, an opaque cursor) and `GET /v1/stats`. This module
//! parses and checks the query string; `store::query` runs it.
//!
//! Pages are ordered by seq. Seqs are assigned under the tenant's head lock and commit in seq
//! order, so the seqs visible at any moment form a prefix of the chain; a cursor that is simply
//! "after seq N" (or "before seq N") therefore neither skips nor repeats an entry while others
//! append.

use crate::chain::event::{parse_timestamp, Outcome, Severity, ValidationError};
pub use crate::store::query::EventStats;
use crate::store::read::StoredEntry;
use crate::store::{Store, StoreError};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use uuid::Uuid;

/// The most entries one page holds, and the default.
pub const MAX_LIMIT: u32 = 1000;
pub const DEFAULT_LIMIT: u32 = 100;
/// Longest filter value accepted (longer values cannot match any stored field).
const MAX_FILTER_CHARS: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] crate::search::SearchError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Order {
    Asc,
    #[default]
    Desc,
}

/// `action=user.login` matches exactly; `action=user.*` matches every action starting `user.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionMatch {
    Exact(String),
    Prefix(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    pub action: Option<ActionMatch>,
    pub actor_id: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub outcome: Option<Outcome>,
    pub severity: Option<Severity>,
    pub source: Option<String>,
    /// `occurred_at >= from`.
    pub from: Option<DateTime<Utc>>,
    /// `occurred_at < to`.
    pub to: Option<DateTime<Utc>>,
    /// Full-text query (web-search syntax: words, "phrases", -exclusions).
    pub q: Option<String>,
}

/// Where the previous page ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub order: Order,
    pub last_seq: u64,
}

impl Cursor {
    const VERSION: &'static str = "v1";

    pub fn encode(&self) -> String {
        let order = match self.order {
            Order::Asc => "a",
            Order::Desc => "d",
        };
        URL_SAFE_NO_PAD.encode(format!("{}:{order}:{}", Self::VERSION, self.last_seq))
    }

    pub fn decode(raw: &str) -> Option<Cursor> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let mut parts = text.split(':');
        if parts.next()? != Self::VERSION {
            return None;
        }
        let order = match parts.next()? {
            "a" => Order::Asc,
            "d" => Order::Desc,
            _ => return None,
        };
        let last_seq: u64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() || last_seq > i64::MAX as u64 {
            return None;
        }
        Some(Cursor { order, last_seq })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub filter: EventFilter,
    pub limit: u32,
    pub cursor: Option<Cursor>,
    pub order: Order,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ValidationError {
    ValidationError::new(field, message)
}

fn text(name: &str, value: &str) -> Result<String, ValidationError> {
    if value.is_empty() || value.chars().count() > MAX_FILTER_CHARS || value.contains('\0') {
        return Err(invalid(name, format!("must be 1 to {MAX_FILTER_CHARS} characters")));
    }
    Ok(value.to_owned())
}

fn time(name: &str, value: &str) -> Result<DateTime<Utc>, ValidationError> {
    parse_timestamp(value).map_err(|_| invalid(name, "must be an RFC 3339 time with a zone, e.g. 2026-11-24T10:00:00Z"))
}

fn enum_value<T: serde::de::DeserializeOwned>(name: &str, value: &str, allowed: &str) -> Result<T, ValidationError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| invalid(name, format!("must be one of {allowed}")))
}

/// Rejects repeated and unknown names; `visit` handles each known one.
fn each_param<'a>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    known: &[&str],
    mut visit: impl FnMut(&'a str, &'a str) -> Result<(), ValidationError>,
) -> Result<(), ValidationError> {
    let mut seen = HashSet::new();
    for (name, value) in params {
        if !known.contains(&name) {
            return Err(invalid(name, format!("unknown query parameter; known: {}", known.join(", "))));
        }
        if !seen.insert(name) {
            return Err(invalid(name, "given more than once"));
        }
        visit(name, value)?;
    }
    Ok(())
}

/// The filter parameters of `GET /v1/events` (everything but paging and order).
pub const FILTER_PARAMS: &[&str] =
    &["action", "actor_id", "resource_type", "resource_id", "outcome", "severity", "source", "from", "to", "q"];

impl EventFilter {
    /// A filter from `GET /v1/events`'s filter parameters alone (an export's filter); paging
    /// parameters are unknown here.
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ValidationError> {
        let params: Vec<(&str, &str)> = params.into_iter().collect();
        if let Some((name, _)) = params.iter().find(|(n, _)| !FILTER_PARAMS.contains(n)) {
            return Err(invalid(name, format!("unknown filter; known: {}", FILTER_PARAMS.join(", "))));
        }
        Ok(EventQuery::from_params(params)?.filter)
    }
}

impl EventQuery {
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ValidationError> {
        const KNOWN: &[&str] = &[
            "action",
            "actor_id",
            "resource_type",
            "resource_id",
            "outcome",
            "severity",
            "source",
            "from",
            "to",
            "q",
            "limit",
            "cursor",
            "order",
        ];
        let mut f = EventFilter::default();
        let mut limit = DEFAULT_LIMIT;
        let mut cursor = None;
        let mut order = Order::default();
        each_param(params, KNOWN, |name, value| {
            match name {
                "action" => {
                    let value = text(name, value)?;
                    f.action = Some(match value.strip_suffix('*') {
                        Some(prefix) if !prefix.is_empty() => ActionMatch::Prefix(prefix.to_owned()),
                        Some(_) => return Err(invalid(name, "a prefix match needs a prefix before '*'")),
                        None => ActionMatch::Exact(value),
                    });
                }
                "actor_id" => f.actor_id = Some(text(name, value)?),
                "resource_type" => f.resource_type = Some(text(name, value)?),
                "resource_id" => f.resource_id = Some(text(name, value)?),
                "source" => f.source = Some(text(name, value)?),
                "q" => f.q = Some(text(name, value)?),
                "outcome" => f.outcome = Some(enum_value(name, value, "success, failure, denied, error")?),
                "severity" => f.severity = Some(enum_value(name, value, "low, medium, high, critical")?),
                "from" => f.from = Some(time(name, value)?),
                "to" => f.to = Some(time(name, value)?),
                "limit" => {
                    limit = value
                        .parse()
                        .ok()
                        .filter(|l| (1..=MAX_LIMIT).contains(l))
                        .ok_or_else(|| invalid(name, format!("must be an integer from 1 to {MAX_LIMIT}")))?;
                }
                "cursor" => {
                    cursor = Some(Cursor::decode(value).ok_or_else(|| {
                        invalid(name, "is not a cursor this API issued; pass next_cursor from the previous page as is")
                    })?);
                }
                "order" => {
                    order = match value {
                        "asc" => Order::Asc,
                        "desc" => Order::Desc,
                        _ => return Err(invalid(name, "must be asc or desc")),
                    }
                }
                _ => unreachable!("each_param passes only known names"),
            }
            Ok(())
        })?;
        if let (Some(from), Some(to)) = (f.from, f.to) {
            if from >= to {
                return Err(invalid("from", "must be earlier than to"));
            }
        }
        if let Some(c) = cursor {
            if c.order != order {
                return Err(invalid("cursor", "was issued for the other order; keep the same order while paging"));
            }
        }
        Ok(EventQuery { filter: f, limit, cursor, order })
    }
}

/// A page of entries and the cursor for the next, if there may be more.
#[derive(Debug, Clone)]
pub struct EventPage {
    pub entries: Vec<StoredEntry>,
    pub next_cursor: Option<String>,
}

impl EventPage {
    /// Keeps the first `kept` entries (a page cut short by its byte budget, see `api::page`). The
    /// cursor then points after the last entry kept, so the next page starts with the first one
    /// left out: nothing is skipped or repeated. A search page's left-out entries are its later
    /// hits, which the next search returns again.
    pub fn cut_after(&mut self, kept: usize, order: Order) {
        if kept >= self.entries.len() {
            return;
        }
        self.entries.truncate(kept);
        self.next_cursor = self.entries.last().map(|e| Cursor { order, last_seq: e.entry.seq }.encode());
    }
}

pub async fn list_events(store: &mut Store, tenant: Uuid, query: &EventQuery) -> Result<EventPage, QueryError> {
    let entries = store.list_events(tenant, query).await?;
    // A full page may have a successor; the cursor is where this one ended.
    let next_cursor = (entries.len() == query.limit as usize)
        .then(|| entries.last().map(|e| Cursor { order: query.order, last_seq: e.entry.seq }.encode()))
        .flatten();
    Ok(EventPage { entries, next_cursor })
}

/// A page of `query` (whose `q` is set) through OpenSearch: the matching seqs come from the
/// index, the entries from PostgreSQL, so every hit is the stored entry with its hashes. Hits
/// whose content was erased since they were indexed are left out (the indexer deletes them), so a
/// page may hold fewer than `limit` entries and still have a successor.
pub async fn search_events(
    search: &crate::search::OpenSearch,
    store: &mut Store,
    tenant: Uuid,
    query: &EventQuery,
) -> Result<EventPage, QueryError> {
    let after = query.cursor.map(|c| c.last_seq);
    let seqs = search.search_seqs(tenant, &query.filter, query.order, after, query.limit).await?;
    let next_cursor = (seqs.len() == query.limit as usize)
        .then(|| seqs.last().map(|&last_seq| Cursor { order: query.order, last_seq }.encode()))
        .flatten();
    let entries = store.entries_by_seqs(tenant, &seqs).await?.into_iter().filter(|e| e.content.is_some()).collect();
    Ok(EventPage { entries, next_cursor })
}

/// The window of `GET /v1/stats`: occurred_at in `[from, to)`, by default the last 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatsQuery {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl StatsQuery {
    pub fn from_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self, ValidationError> {
        let mut from = None;
        let mut to = None;
        each_param(params, &["from", "to"], |name, value| {
            let t = time(name, value)?;
            if name == "from" {
                from = Some(t);
            } else {
                to = Some(t);
            }
            Ok(())
        })?;
        let to = to.unwrap_or_else(Utc::now);
        let from = from.unwrap_or(to - Duration::hours(24));
        if from >= to {
            return Err(invalid("from", "must be earlier than to"));
        }
        Ok(StatsQuery { from, to })
    }
}

pub async fn event_stats(store: &mut Store, tenant: Uuid, query: &StatsQuery) -> Result<EventStats, QueryError> {
    Ok(store.event_stats(tenant, query.from, query.to).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<EventQuery, ValidationError> {
        EventQuery::from_params(q.iter().copied())
    }

    #[test]
    fn defaults_are_newest_first_pages_of_100() {
        let q = parse(&[]).unwrap();
        assert_eq!((q.limit, q.order, q.cursor), (100, Order::Desc, None));
        assert_eq!(q.filter, EventFilter::default());
    }

    #[test]
    fn action_ending_in_star_is_a_prefix() {
        let q = parse(&[("action", "user.*")]).unwrap();
        assert_eq!(q.filter.action, Some(ActionMatch::Prefix("user.".into())));
        let q = parse(&[("action", "user.login")]).unwrap();
        assert_eq!(q.filter.action, Some(ActionMatch::Exact("user.login".into())));
        assert_eq!(parse(&[("action", "*")]).unwrap_err().field, "action");
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor { order: Order::Asc, last_seq: 12345 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in [
            "",
            "x",
            "djE6YTo",
            &URL_SAFE_NO_PAD.encode("v2:a:1"),
            &URL_SAFE_NO_PAD.encode("v1:a:-1"),
            &URL_SAFE_NO_PAD.encode("v1:a:1:2"),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn rejects_each_bad_parameter_by_name() {
        let asc_cursor = Cursor { order: Order::Asc, last_seq: 3 }.encode();
        for (params, field) in [
            (vec![("limit", "0")], "limit"),
            (vec![("limit", "1001")], "limit"),
            (vec![("limit", "-1")], "limit"),
            (vec![("order", "up")], "order"),
            (vec![("outcome", "meh")], "outcome"),
            (vec![("severity", "LOW")], "severity"),
            (vec![("from", "2026-01-01")], "from"),
            (vec![("from", "2026-02-01T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")], "from"),
            (vec![("cursor", "nope")], "cursor"),
            (vec![("cursor", asc_cursor.as_str())], "cursor"),
            (vec![("tenant_id", "x")], "tenant_id"),
            (vec![("actor_id", "a"), ("actor_id", "b")], "actor_id"),
            (vec![("actor_id", "")], "actor_id"),
        ] {
            assert_eq!(parse(&params).unwrap_err().field, field, "{params:?}");
        }
    }

    #[test]
    fn stats_window_defaults_to_the_last_day() {
        let q = StatsQuery::from_params([]).unwrap();
        assert_eq!(q.to - q.from, Duration::hours(24));
        assert_eq!(StatsQuery::from_params([("q", "x")]).unwrap_err().field, "q");
    }
}
