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
  --only S              run only scenario S: appends, verify or api            (BENCH_ONLY, all)
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
    pub scenarios: Scenarios,
}

/// Which scenarios run: the appends (with their COPY baseline and client-side share), the
/// verification of a filled tenant, the HTTP API, or all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenarios {
    All,
    Appends,
    Verify,
    Api,
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
            scenarios: match lookup("--only", "BENCH_ONLY").as_deref().map(str::trim) {
                None | Some("") => Scenarios::All,
                Some("appends") => Scenarios::Appends,
                Some("verify") => Scenarios::Verify,
                Some("api") => Scenarios::Api,
                Some(other) => bail!("--only: {other:?} is not a scenario (appends, verify or api)"),
            },
        };
        if config.writers == 0
            || config.tenants == 0
            || config.verify_events == 0
            || config.api_events < 1000
            || config.api_requests == 0
        {
            bail!("--writers, --tenants, --verify-events and --api-requests must be at least 1, --api-events at least 1000");
        }
        Ok(Some(config))
    }
}

const FLAGS: [&str; 10] = [
    "--writers",
    "--single",
    "--batched",
    "--batch-sizes",
    "--tenants",
    "--copy",
    "--verify-events",
    "--api-events",
    "--api-requests",
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
