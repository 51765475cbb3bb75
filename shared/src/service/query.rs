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

impl EventFilter {
    /// A viewer token's pinned filter as an event filter: the same names and meanings as
    /// `GET /v1/events`'s parameters, `action_prefix=x` meaning `action=x*`. Errors name the
    /// field as `filter.<name>`.
    pub fn from_pin(pin: &crate::auth::Pin) -> Result<Self, ValidationError> {
        let prefixed = pin.get("action_prefix").map(|v| format!("{v}*"));
        let mut pairs = Vec::with_capacity(pin.len());
        for (name, value) in pin {
            if !crate::auth::PIN_FIELDS.contains(&name.as_str()) {
                return Err(invalid(
                    &format!("filter.{name}"),
                    format!("unknown filter; known: {}", crate::auth::PIN_FIELDS.join(", ")),
                ));
            }
            if name == "action_prefix" {
                if pin.contains_key("action") {
                    return Err(invalid("filter.action_prefix", "give action or action_prefix, not both"));
                }
                if value.ends_with('*') {
                    return Err(invalid("filter.action_prefix", "is a prefix already; leave out the '*'"));
                }
                pairs.push(("action", prefixed.as_deref().unwrap_or_default()));
            } else {
                pairs.push((name.as_str(), value.as_str()));
            }
        }
        EventFilter::from_params(pairs).map_err(|e| {
            let field =
                if e.field == "action" && pin.contains_key("action_prefix") { "action_prefix" } else { &e.field };
            ValidationError::new(format!("filter.{field}"), e.message.clone())
        })
    }

    /// The filter matching exactly the events both `self` and `other` match, or `None` when no
    /// event can match both (`actor_id=a` and `actor_id=b`, disjoint action prefixes, an empty
    /// time window): the caller then answers an empty result, not an error. A viewer token's
    /// reads are their filter ANDed with the token's pin, through this one function.
    pub fn and(&self, other: &EventFilter) -> Option<EventFilter> {
        fn same<T: PartialEq + Clone>(a: &Option<T>, b: &Option<T>) -> Option<Option<T>> {
            match (a, b) {
                (Some(x), Some(y)) if x != y => None,
                (Some(x), _) | (None, Some(x)) => Some(Some(x.clone())),
                (None, None) => Some(None),
            }
        }
        let action = match (&self.action, &other.action) {
            (None, a) | (a, None) => a.clone(),
            (Some(ActionMatch::Exact(a)), Some(ActionMatch::Exact(b))) => {
                (a == b).then(|| ActionMatch::Exact(a.clone()))?.into()
            }
            (Some(ActionMatch::Exact(a)), Some(ActionMatch::Prefix(p)))
            | (Some(ActionMatch::Prefix(p)), Some(ActionMatch::Exact(a))) => {
                Some(a.starts_with(p.as_str()).then(|| ActionMatch::Exact(a.clone()))?)
            }
            (Some(ActionMatch::Prefix(p)), Some(ActionMatch::Prefix(q))) => {
                let longer = if p.len() >= q.len() { (p, q) } else { (q, p) };
                Some(longer.0.starts_with(longer.1.as_str()).then(|| ActionMatch::Prefix(longer.0.clone()))?)
            }
        };
        let from = self.from.max(other.from);
        let to = match (self.to, other.to) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return None;
            }
        }
        let q = match (&self.q, &other.q) {
            (Some(a), Some(b)) if a != b => Some(search_conjunction(a, b)),
            (a, b) => a.clone().or_else(|| b.clone()),
        };
        Some(EventFilter {
            action,
            actor_id: same(&self.actor_id, &other.actor_id)?,
            resource_type: same(&self.resource_type, &other.resource_type)?,
            resource_id: same(&self.resource_id, &other.resource_id)?,
            outcome: same(&self.outcome, &other.outcome)?,
            severity: same(&self.severity, &other.severity)?,
            source: same(&self.source, &other.source)?,
            from,
            to,
            q,
        })
    }
}

/// Two full-text queries as one that matches what both match. In the search syntax (PostgreSQL's
/// `websearch_to_tsquery`, translated for OpenSearch with `default_operator: and`) adjacent
/// terms are ANDed and `or` binds only its two neighbours, so the queries are joined with a
/// space, after closing an unterminated phrase of the first and dropping an `or` that would join
/// the last term of one to the first of the other.
fn search_conjunction(a: &str, b: &str) -> String {
    let mut left = a.trim().to_owned();
    if left.matches('"').count() % 2 == 1 {
        left.push('"');
    }
    let is_or = |w: &str| w.eq_ignore_ascii_case("or");
    let mut left_words: Vec<&str> = left.split_whitespace().collect();
    while left_words.last().is_some_and(|w| is_or(w)) {
        left_words.pop();
    }
    let right_words: Vec<&str> = b.split_whitespace().skip_while(|w| is_or(w)).collect();
    left_words.into_iter().chain(right_words).collect::<Vec<_>>().join(" ")
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

    fn filter(q: &[(&str, &str)]) -> EventFilter {
        EventFilter::from_params(q.iter().copied()).unwrap()
    }

    #[test]
    fn and_of_filters_keeps_both_conditions() {
        let a = filter(&[("actor_id", "bob"), ("from", "2026-01-01T00:00:00Z")]);
        let b = filter(&[("action", "user.*"), ("from", "2026-02-01T00:00:00Z"), ("to", "2026-03-01T00:00:00Z")]);
        let both = a.and(&b).unwrap();
        assert_eq!(
            both,
            filter(&[
                ("actor_id", "bob"),
                ("action", "user.*"),
                ("from", "2026-02-01T00:00:00Z"),
                ("to", "2026-03-01T00:00:00Z")
            ])
        );
        assert_eq!(b.and(&a), Some(both));
        assert_eq!(a.and(&EventFilter::default()), Some(a.clone()));
    }

    #[test]
    fn and_of_actions_narrows_to_the_more_specific_one() {
        let and = |x: &str, y: &str| filter(&[("action", x)]).and(&filter(&[("action", y)])).map(|f| f.action);
        assert_eq!(and("user.login", "user.*"), Some(Some(ActionMatch::Exact("user.login".into()))));
        assert_eq!(and("user.*", "user.log*"), Some(Some(ActionMatch::Prefix("user.log".into()))));
        assert_eq!(and("user.login", "user.login"), Some(Some(ActionMatch::Exact("user.login".into()))));
    }

    #[test]
    fn a_contradictory_and_matches_nothing() {
        for (x, y) in [
            (vec![("actor_id", "bob")], vec![("actor_id", "alice")]),
            (vec![("action", "user.login")], vec![("action", "doc.*")]),
            (vec![("action", "user.*")], vec![("action", "doc.*")]),
            (vec![("action", "a.b")], vec![("action", "a.c")]),
            (vec![("outcome", "success")], vec![("outcome", "denied")]),
            (vec![("from", "2026-02-01T00:00:00Z")], vec![("to", "2026-01-01T00:00:00Z")]),
        ] {
            assert_eq!(filter(&x).and(&filter(&y)), None, "{x:?} AND {y:?}");
        }
    }

    #[test]
    fn and_of_two_searches_requires_both() {
        let and = |x: &str, y: &str| filter(&[("q", x)]).and(&filter(&[("q", y)])).unwrap().q.unwrap();
        assert_eq!(and("login", "failed"), "login failed");
        assert_eq!(and("a or b", "c or d"), "a or b c or d");
        assert_eq!(and("\"half phrase", "x"), "\"half phrase\" x");
        assert_eq!(and("a or", "or b"), "a b");
    }

    #[test]
    fn pins_use_the_listing_names_and_action_prefix() {
        let pin = |pairs: &[(&str, &str)]| {
            EventFilter::from_pin(&pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        assert_eq!(pin(&[("action_prefix", "user.")]).unwrap().action, Some(ActionMatch::Prefix("user.".into())));
        assert_eq!(pin(&[("actor_id", "bob")]).unwrap().actor_id.as_deref(), Some("bob"));
        for (pairs, field) in [
            (vec![("q", "x")], "filter.q"),
            (vec![("from", "2026-01-01T00:00:00Z")], "filter.from"),
            (vec![("tenant_id", "x")], "filter.tenant_id"),
            (vec![("outcome", "meh")], "filter.outcome"),
            (vec![("action_prefix", "")], "filter.action_prefix"),
            (vec![("action", "a"), ("action_prefix", "b")], "filter.action_prefix"),
            (vec![("actor_id", "")], "filter.actor_id"),
        ] {
            assert_eq!(pin(&pairs).unwrap_err().field, field, "{pairs:?}");
        }
    }

    #[test]
    fn stats_window_defaults_to_the_last_day() {
        let q = StatsQuery::from_params([]).unwrap();
        assert_eq!(q.to - q.from, Duration::hours(24));
        assert_eq!(StatsQuery::from_params([("q", "x")]).unwrap_err().field, "q");
    }
}
