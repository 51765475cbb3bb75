//! `auditlog query` and `auditlog tail`: read events with the `GET /v1/events` filters.
//!
//! `query` follows `next_cursor` until it has the number of events asked for or the pages run
//! out. `tail` polls in ascending order after the last event seen; the service only returns a
//! `next_cursor` after a full page, so the cursor of the last event is built here from its seq
//! (`shared::service::query::Cursor`, the same encoding the service issues).

use crate::client::Client;
use anyhow::Result;
use clap::Args;
use serde_json::Value;
use shared::service::query::{Cursor, Order};
use std::time::Duration;

/// The filters of `GET /v1/events`.
#[derive(Debug, Clone, Default, Args)]
pub struct Filters {
    /// Exact action, or a prefix followed by * (user.* matches every action starting user.).
    #[arg(long)]
    pub action: Option<String>,
    #[arg(long)]
    pub actor_id: Option<String>,
    #[arg(long)]
    pub resource_type: Option<String>,
    #[arg(long)]
    pub resource_id: Option<String>,
    /// success, failure, denied or error.
    #[arg(long)]
    pub outcome: Option<String>,
    /// low, medium, high or critical.
    #[arg(long)]
    pub severity: Option<String>,
    #[arg(long)]
    pub source: Option<String>,
    /// occurred_at >= FROM (RFC 3339, e.g. 2026-11-24T00:00:00Z).
    #[arg(long)]
    pub from: Option<String>,
    /// occurred_at < TO (RFC 3339).
    #[arg(long)]
    pub to: Option<String>,
    /// Full-text search (words, "phrases", -exclusions).
    #[arg(short = 'q', long = "query")]
    pub q: Option<String>,
}

impl Filters {
    /// The filters as query parameters, named as the API names them.
    pub fn params(&self) -> Vec<(String, String)> {
        [
            ("action", &self.action),
            ("actor_id", &self.actor_id),
            ("resource_type", &self.resource_type),
            ("resource_id", &self.resource_id),
            ("outcome", &self.outcome),
            ("severity", &self.severity),
            ("source", &self.source),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_ref().map(|v| (name.to_owned(), v.clone())))
        .collect()
    }
}

/// The largest page `GET /v1/events` serves.
const MAX_PAGE: u64 = 1000;

/// Prints up to `limit` events matching the filters, in `order`.
pub async fn run_query(client: &Client, filters: &Filters, order: &str, limit: u64, json_output: bool) -> Result<()> {
    let mut printer = Printer::new(json_output);
    let mut cursor: Option<String> = None;
    let mut printed = 0u64;
    while printed < limit {
        let mut query = filters.params();
        query.push(("order".into(), order.to_owned()));
        query.push(("limit".into(), (limit - printed).min(MAX_PAGE).to_string()));
        if let Some(c) = &cursor {
            query.push(("cursor".into(), c.clone()));
        }
        let page = client.get("/v1/events", &query).await?;
        let events = page.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
        for event in events.iter().take((limit - printed) as usize) {
            printer.print(event);
            printed += 1;
        }
        match page.get("next_cursor").and_then(Value::as_str) {
            Some(next) if !events.is_empty() => cursor = Some(next.to_owned()),
            _ => break,
        }
    }
    Ok(())
}

/// Prints new events as they are appended, until interrupted.
pub async fn run_tail(
    client: &Client,
    filters: &Filters,
    interval: Duration,
    from_start: bool,
    json_output: bool,
) -> Result<()> {
    let mut printer = Printer::new(json_output);
    let mut last_seq: Option<u64> = None;
    if !from_start {
        let mut query = filters.params();
        query.push(("order".into(), "desc".into()));
        query.push(("limit".into(), "1".into()));
        let page = client.get("/v1/events", &query).await?;
        last_seq = page.pointer("/events/0/seq").and_then(Value::as_u64);
    }
    loop {
        let mut query = filters.params();
        query.push(("order".into(), "asc".into()));
        query.push(("limit".into(), MAX_PAGE.to_string()));
        if let Some(seq) = last_seq {
            query.push(("cursor".into(), Cursor { order: Order::Asc, last_seq: seq }.encode()));
        }
        let page = client.get("/v1/events", &query).await?;
        let events = page.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
        for event in &events {
            printer.print(event);
            if let Some(seq) = event.get("seq").and_then(Value::as_u64) {
                last_seq = Some(seq);
            }
        }
        let more = page.get("next_cursor").is_some_and(|c| !c.is_null()) && !events.is_empty();
        if !more {
            tokio::time::sleep(interval).await;
        }
    }
}

/// Prints entries as a table (header first) or as JSON Lines.
#[derive(Debug)]
struct Printer {
    json: bool,
    header_printed: bool,
}

impl Printer {
    fn new(json: bool) -> Self {
        Printer { json, header_printed: false }
    }

    fn print(&mut self, entry: &Value) {
        use std::io::Write as _;
        if self.json {
            println!("{entry}");
        } else {
            if !self.header_printed {
                println!("{:>8}  {:<27}  {:<32}  {:<24}  OUTCOME", "SEQ", "RECEIVED_AT", "ACTION", "ACTOR");
                self.header_printed = true;
            }
            let text = |pointer: &str| entry.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned();
            let seq = entry.get("seq").map_or_else(String::new, Value::to_string);
            let erased = entry.get("event").is_none_or(Value::is_null);
            let (action, actor, outcome) = if erased {
                ("(erased)".to_owned(), String::new(), String::new())
            } else {
                (text("/event/action"), text("/event/actor/id"), text("/event/outcome"))
            };
            println!("{seq:>8}  {:<27}  {action:<32}  {actor:<24}  {outcome}", text("/received_at"));
        }
        let _ = std::io::stdout().flush();
    }
}
