//! What to run: event counts and writer counts from flags, else `BENCH_*` environment variables,
//! else defaults sized so that a full run takes about four minutes on a two-core machine (the
//! appends about 40 s, filling the tenant to verify about 100 s, its reads about 90 s).

use anyhow::{bail, Context, Result};
use shared::store::append::MAX_BATCH;
use std::collections::HashMap;
use std::str::FromStr;

pub const USAGE: &str = "\
usage: bench [options]

  --writers N           concurrent single-event writers, one connection each   (BENCH_WRITERS, 8)
  --single N            single-event appends per writer                        (BENCH_SINGLE, 2000)
  --batched N           events appended per batch size and writer layout      (BENCH_BATCHED, 200000)
  --batch-sizes A,B     batch sizes to run, each 1 to 1000                     (BENCH_BATCH_SIZES, 100,1000)
  --tenants N           also run the batches with N writers on N tenants; 1 skips (BENCH_TENANTS, 2)
  --copy N              rows in the COPY baseline                              (BENCH_COPY, = --batched)
  --verify-events N     events in the tenant whose chain is verified           (BENCH_VERIFY_EVENTS, 5000000)
  --api-events N        events in the tenant the API is timed on               (BENCH_API_EVENTS, 10000000)
  --api-requests N      timed requests per request shape                       (BENCH_API_REQUESTS, 500)
  --index-events N      events in the tenant the indexer indexes               (BENCH_INDEX_EVENTS, 200000)
  --index-heap-mib N    heap of the benchmark's OpenSearch node                (BENCH_INDEX_HEAP_MIB, 1024)
  --export-events N     events in the tenant that is exported                  (BENCH_EXPORT_EVENTS, 1000000)
  --only S              run only scenario S: appends, verify, api, index or export (BENCH_ONLY, all)
  -h, --help            this text";

/// The benchmark's knobs.
#[derive(Debug, Clone)]
pub struct Config {
    pub writers: usize,
    pub single_per_writer: usize,
    pub batched_events: usize,
    pub batch_sizes: Vec<usize>,
    pub tenants: usize,
    pub copy_events: usize,
    pub verify_events: usize,
    pub api_events: usize,
    pub api_requests: usize,
    pub index_events: usize,
    pub index_heap_mib: u32,
    pub export_events: usize,
    pub scenarios: Scenarios,
}

/// Which scenarios run: the appends (with their COPY baseline and client-side share), the
/// verification of a filled tenant, the HTTP API, indexing into OpenSearch, exports, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenarios {
    All,
    Appends,
    Verify,
    Api,
    Index,
    Export,
}

impl Scenarios {
    pub fn appends(self) -> bool {
        matches!(self, Scenarios::All | Scenarios::Appends)
    }

    pub fn verify(self) -> bool {
        matches!(self, Scenarios::All | Scenarios::Verify)
    }

    pub fn api(self) -> bool {
        matches!(self, Scenarios::All | Scenarios::Api)
    }

    pub fn index(self) -> bool {
        matches!(self, Scenarios::All | Scenarios::Index)
    }

    pub fn export(self) -> bool {
        matches!(self, Scenarios::All | Scenarios::Export)
    }
}

impl Config {
    /// Reads the process's flags and environment. `Ok(None)` means help was asked for.
    pub fn from_args_and_env() -> Result<Option<Self>> {
        let mut flags = HashMap::new();
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            if !FLAGS.contains(&flag.as_str()) {
                bail!("unknown argument {flag:?}\n\n{USAGE}");
            }
            let value = args.next().with_context(|| format!("{flag} needs a value"))?;
            flags.insert(flag, value);
        }
        let lookup = |flag: &str, var: &str| flags.get(flag).cloned().or_else(|| std::env::var(var).ok());

        let batched_events = number(lookup("--batched", "BENCH_BATCHED"), 200_000, "--batched")?;
        let config = Config {
            writers: number(lookup("--writers", "BENCH_WRITERS"), 8, "--writers")?,
            single_per_writer: number(lookup("--single", "BENCH_SINGLE"), 2000, "--single")?,
            batched_events,
            batch_sizes: sizes(lookup("--batch-sizes", "BENCH_BATCH_SIZES"))?,
            tenants: number(lookup("--tenants", "BENCH_TENANTS"), 2, "--tenants")?,
            copy_events: number(lookup("--copy", "BENCH_COPY"), batched_events, "--copy")?,
            verify_events: number(lookup("--verify-events", "BENCH_VERIFY_EVENTS"), 5_000_000, "--verify-events")?,
            api_events: number(lookup("--api-events", "BENCH_API_EVENTS"), 10_000_000, "--api-events")?,
            api_requests: number(lookup("--api-requests", "BENCH_API_REQUESTS"), 500, "--api-requests")?,
            index_events: number(lookup("--index-events", "BENCH_INDEX_EVENTS"), 200_000, "--index-events")?,
            index_heap_mib: number(lookup("--index-heap-mib", "BENCH_INDEX_HEAP_MIB"), 1024, "--index-heap-mib")?,
            export_events: number(lookup("--export-events", "BENCH_EXPORT_EVENTS"), 1_000_000, "--export-events")?,
            scenarios: match lookup("--only", "BENCH_ONLY").as_deref().map(str::trim) {
                None | Some("") => Scenarios::All,
                Some("appends") => Scenarios::Appends,
                Some("verify") => Scenarios::Verify,
                Some("api") => Scenarios::Api,
                Some("index") => Scenarios::Index,
                Some("export") => Scenarios::Export,
                Some(other) => bail!("--only: {other:?} is not a scenario (appends, verify, api, index or export)"),
            },
        };
        if config.writers == 0
            || config.tenants == 0
            || config.verify_events == 0
            || config.api_events < 1000
            || config.api_requests == 0
            || config.index_events == 0
            || config.export_events == 0
            || config.index_heap_mib < 256
        {
            bail!(
                "--writers, --tenants, --verify-events, --api-requests, --index-events and --export-events must be \
                 at least 1, --api-events at least 1000, --index-heap-mib at least 256"
            );
        }
        Ok(Some(config))
    }
}

const FLAGS: [&str; 13] = [
    "--writers",
    "--single",
    "--batched",
    "--batch-sizes",
    "--tenants",
    "--copy",
    "--verify-events",
    "--api-events",
    "--api-requests",
    "--index-events",
    "--index-heap-mib",
    "--export-events",
    "--only",
];

fn number<T: FromStr>(value: Option<String>, default: T, name: &str) -> Result<T> {
    match value {
        Some(v) => v.trim().replace('_', "").parse().ok().with_context(|| format!("{name}: {v:?} is not a count")),
        None => Ok(default),
    }
}

fn sizes(value: Option<String>) -> Result<Vec<usize>> {
    let Some(list) = value else { return Ok(vec![100, MAX_BATCH]) };
    let sizes =
        list.split(',').map(|s| number::<usize>(Some(s.to_owned()), 0, "--batch-sizes")).collect::<Result<Vec<_>>>()?;
    if sizes.is_empty() || sizes.iter().any(|&s| s == 0 || s > MAX_BATCH) {
        bail!("--batch-sizes: each size must be 1 to {MAX_BATCH}");
    }
    Ok(sizes)
}
