//! The printed report: throughput against the COPY baseline, latency per request, storage per
//! event and verification against a COPY of the rows it reads, each with its target beside it. Targets are printed, never asserted: figures from a
//! shared two-core machine inform, they do not pass or fail a build.

use crate::appends::Measured;
use crate::verification::{ReadKind, Verification};
use crate::workload::ContentSize;
use std::time::Duration;

/// Batched appends should reach this many events per second...
const BATCHED_EVENTS_PER_S: f64 = 50_000.0;
/// ...and this share of the COPY baseline.
const BATCHED_SHARE_OF_COPY: f64 = 0.35;
/// Single-event appends with concurrent writers should answer within this at the 99th percentile.
const SINGLE_P99: Duration = Duration::from_millis(10);
/// Verification should keep this share of a COPY of the rows it reads.
const VERIFY_SHARE_OF_COPY: f64 = 0.6;

/// Tables shown on their own in the storage breakdown; the rest are summed as "other".
const STORAGE_TABLES: [&str; 5] = ["chain_entries", "events", "merkle_nodes", "outbox", "copy_baseline"];

/// What a row of the report measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Single,
    Batched,
    Copy,
    ClientOnly,
}

#[derive(Debug)]
pub struct Row {
    pub label: String,
    pub kind: Kind,
    pub measured: Measured,
}

impl Row {
    fn events_per_s(&self) -> f64 {
        self.measured.events as f64 / self.measured.elapsed.as_secs_f64()
    }
}

/// Facts about the run printed above the tables.
#[derive(Debug)]
pub struct Setting {
    pub server_version: String,
    pub cores: usize,
    pub content: ContentSize,
}

pub fn print(setting: &Setting, rows: &[Row], verification: Option<&Verification>, total: Duration) {
    println!();
    println!(
        "Audit-log benchmark: PostgreSQL {} on {} cores shared by client and server",
        setting.server_version, setting.cores
    );
    println!(
        "Events: {:.0} bytes canonical on average ({} to {}); every writer has a connection of its own",
        setting.content.mean, setting.content.min, setting.content.max
    );
    println!("Note: fsync, synchronous_commit and full_page_writes are off for the appends and the COPY");
    println!("baseline alike (same throwaway cluster), so neither side waits for the disk.");
    if !rows.is_empty() {
        print_throughput(rows);
        print_latency(rows);
        print_storage(rows);
    }
    if let Some(v) = verification {
        print_verification(v);
    }
    println!();
    println!("Whole run, set-up included: {:.1} s", total.as_secs_f64());
}

fn print_throughput(rows: &[Row]) {
    let copy = rows.iter().find(|r| r.kind == Kind::Copy).map(Row::events_per_s);
    let table = rows
        .iter()
        .map(|r| {
            let rate = r.events_per_s();
            let share = copy.map(|c| rate / c);
            let (rate_target, share_target) = match r.kind {
                Kind::Batched => (
                    verdict(format!(">= {}", grouped(BATCHED_EVENTS_PER_S)), rate >= BATCHED_EVENTS_PER_S),
                    verdict(
                        format!(">= {BATCHED_SHARE_OF_COPY:.2}"),
                        share.is_some_and(|s| s >= BATCHED_SHARE_OF_COPY),
                    ),
                ),
                _ => (String::new(), String::new()),
            };
            let share = match (r.kind, share) {
                (Kind::Copy, _) | (_, None) => String::new(),
                (_, Some(s)) => format!("{s:.3}"),
            };
            vec![
                r.label.clone(),
                grouped(r.measured.events as f64),
                format!("{:.2}", r.measured.elapsed.as_secs_f64()),
                grouped(rate),
                rate_target,
                share,
                share_target,
            ]
        })
        .collect::<Vec<_>>();
    print_table("Throughput", &["", "events", "seconds", "events/s", "target", "/ COPY", "target"], &table);
}

fn print_latency(rows: &[Row]) {
    let table = rows
        .iter()
        .filter(|r| !r.measured.latencies.is_empty())
        .map(|r| {
            let l = &r.measured.latencies;
            let p99 = percentile(l, 0.99);
            let target = match r.kind {
                Kind::Single => verdict(format!("p99 <= {}", millis(SINGLE_P99)), p99 <= SINGLE_P99),
                _ => String::new(),
            };
            vec![
                r.label.clone(),
                grouped(l.len() as f64),
                millis(percentile(l, 0.5)),
                millis(p99),
                millis(l.last().copied().unwrap_or_default()),
                target,
            ]
        })
        .collect::<Vec<_>>();
    print_table("Latency per request", &["", "requests", "p50", "p99", "max", "target"], &table);
}

fn print_storage(rows: &[Row]) {
    let table = rows
        .iter()
        .filter(|r| r.kind != Kind::ClientOnly)
        .map(|r| {
            let growth = &r.measured.growth;
            let per_event = |bytes: i64| format!("{:.0}", bytes as f64 / r.measured.events as f64);
            let named: i64 = STORAGE_TABLES.iter().map(|t| growth.bytes(t)).sum();
            let mut cells = vec![r.label.clone()];
            cells.extend(STORAGE_TABLES.iter().map(|t| per_event(growth.bytes(t))));
            cells.push(per_event(growth.total() - named));
            cells.push(per_event(growth.total()));
            cells
        })
        .collect::<Vec<_>>();
    let mut headers = vec![""];
    headers.extend(STORAGE_TABLES);
    headers.extend(["other", "total"]);
    print_table("Storage growth, bytes per event (pg_total_relation_size: heap, TOAST, indexes)", &headers, &table);
}

fn print_verification(v: &Verification) {
    println!();
    println!(
        "Verification set-up (not measured): {} events appended in batches by 1 writer in {:.1} s ({} events/s), \
         VACUUM ANALYZE {:.1} s",
        grouped(v.events as f64),
        v.fill.as_secs_f64(),
        grouped(v.events as f64 / v.fill.as_secs_f64()),
        v.vacuum.as_secs_f64()
    );
    let copy = v.reads.iter().find(|r| r.kind == ReadKind::CopyJoin).map(|r| r.events_per_s());
    let table = v
        .reads
        .iter()
        .map(|r| {
            let share = copy.map(|c| r.events_per_s() / c);
            let target = match r.kind {
                ReadKind::Verify => {
                    verdict(format!(">= {VERIFY_SHARE_OF_COPY:.2}"), share.is_some_and(|s| s >= VERIFY_SHARE_OF_COPY))
                }
                _ => String::new(),
            };
            let share = match (r.kind, share) {
                (ReadKind::CopyJoin, _) | (_, None) => String::new(),
                (_, Some(s)) => format!("{s:.3}"),
            };
            vec![
                r.label.clone(),
                grouped(r.events as f64),
                format!("{:.2}", r.elapsed.as_secs_f64()),
                grouped(r.events_per_s()),
                share,
                target,
            ]
        })
        .collect::<Vec<_>>();
    print_table(
        "Verification of one tenant's whole chain, 1 connection",
        &["", "events", "seconds", "events/s", "/ COPY join", "target"],
        &table,
    );
    println!();
    println!("Plan of the scan query (EXPLAIN ANALYZE, BUFFERS)");
    for line in &v.plan {
        println!("  {line}");
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(crate) fn verdict(target: String, met: bool) -> String {
    format!("{target} {}", if met { "met" } else { "MISSED" })
}

fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// A whole number with thousands separators: 1234567.8 -> "1,234,568".
pub(crate) fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints a titled table: the first column left-aligned, the others right-aligned.
pub(crate) fn print_table(title: &str, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| if i == 0 { format!("{c:<w$}") } else { format!("{c:>w$}") })
            .collect();
        println!("  {}", text.join("   ").trim_end());
    };
    println!();
    println!("{title}");
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 0.5), Duration::from_millis(50));
        assert_eq!(percentile(&ms, 0.99), Duration::from_millis(99));
        assert_eq!(percentile(&ms[..1], 0.99), Duration::from_millis(1));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
    }

    #[test]
    fn grouped_separates_thousands() {
        for (n, text) in [(0.0, "0"), (999.4, "999"), (1000.0, "1,000"), (1_234_567.8, "1,234,568")] {
            assert_eq!(grouped(n), text);
        }
    }
}
