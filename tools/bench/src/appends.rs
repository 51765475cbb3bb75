//! Appends through `service::ingest`, the path every ingest request takes: validation,
//! canonicalisation and sealing, then the append transaction. Each writer is a tokio task with a
//! connection of its own, as separate Lambda instances would be.

use crate::db::{BenchDb, TableSizes};
use crate::workload::Pool;
use anyhow::{Context, Result};
use shared::service::ingest::{ingest, Request};
use shared::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What each request carries.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    One,
    Batch(usize),
}

impl Shape {
    fn events(self) -> usize {
        match self {
            Shape::One => 1,
            Shape::Batch(size) => size,
        }
    }
}

/// Who writes how much: `tenants` tenants, each with `writers_per_tenant` concurrent writers
/// sending `requests_per_writer` requests.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub shape: Shape,
    pub tenants: usize,
    pub writers_per_tenant: usize,
    pub requests_per_writer: usize,
}

impl Plan {
    /// Writers on one tenant sending single events.
    pub fn single(writers: usize, per_writer: usize) -> Self {
        Plan { shape: Shape::One, tenants: 1, writers_per_tenant: writers, requests_per_writer: per_writer }
    }

    /// One writer per tenant, together appending about `events` in batches of `size`.
    pub fn batches(size: usize, tenants: usize, events: usize) -> Self {
        let requests_per_writer = (events / (size * tenants)).max(1);
        Plan { shape: Shape::Batch(size), tenants, writers_per_tenant: 1, requests_per_writer }
    }

    pub fn events(&self) -> usize {
        self.tenants * self.writers_per_tenant * self.requests_per_writer * self.shape.events()
    }
}

/// The timed part of a scenario.
#[derive(Debug)]
pub struct Measured {
    pub events: usize,
    pub elapsed: Duration,
    /// Every request's latency, sorted.
    pub latencies: Vec<Duration>,
    pub growth: TableSizes,
}

/// Runs `plan` against `db`. Connections are opened and warmed up (one append each, which also
/// prepares the statements) before the clock starts.
pub async fn run(db: &BenchDb, pool: &Arc<Pool>, plan: Plan) -> Result<Measured> {
    let mut admin = Store::connect(db.app_url()).await.context("connecting as the service")?;
    let mut writers = Vec::new();
    for t in 0..plan.tenants {
        let tenant = admin.create_tenant(&format!("bench-{t}")).await.context("creating a tenant")?;
        for _ in 0..plan.writers_per_tenant {
            writers.push((warm_store(db, tenant, pool).await?, tenant));
        }
    }
    let before = db.table_sizes().await?;

    let started = Instant::now();
    let tasks: Vec<_> =
        writers.into_iter().map(|(store, tenant)| tokio::spawn(write(store, tenant, Arc::clone(pool), plan))).collect();
    let mut latencies = Vec::with_capacity(plan.requests_per_writer * tasks.len());
    for task in futures::future::join_all(tasks).await {
        latencies.extend(task.context("a writer panicked")??);
    }
    let elapsed = started.elapsed();

    latencies.sort_unstable();
    let growth = db.table_sizes().await?.growth_since(&before);
    Ok(Measured { events: plan.events(), elapsed, latencies, growth })
}

async fn warm_store(db: &BenchDb, tenant: Uuid, pool: &Pool) -> Result<Store> {
    let mut store = Store::connect(db.app_url()).await.context("connecting as the service")?;
    ingest(&mut store, tenant, Request::One(pool.one(0)), None).await.context("warm-up append")?;
    Ok(store)
}

/// One writer's requests, in order; returns each request's latency.
async fn write(mut store: Store, tenant: Uuid, pool: Arc<Pool>, plan: Plan) -> Result<Vec<Duration>> {
    let mut latencies = Vec::with_capacity(plan.requests_per_writer);
    for n in 0..plan.requests_per_writer {
        let request = match plan.shape {
            Shape::One => Request::One(pool.one(n)),
            Shape::Batch(size) => Request::Batch(pool.batch(n, size)),
        };
        let started = Instant::now();
        ingest(&mut store, tenant, request, None).await.with_context(|| format!("append {n}"))?;
        latencies.push(started.elapsed());
    }
    Ok(latencies)
}
