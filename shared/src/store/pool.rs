//! A small pool of [`Store`]s. A Lambda instance serves one request at a time and keeps one
//! connection (size 1), reused across warm invocations and replaced when it breaks; the local
//! gateway serves many at once with a few. Connections open lazily, on first use, so a cold start
//! makes no database round trip before its first request needs one.

use super::connect::DbConfig;
use super::publishers::DEFAULT_POLICY_TTL;
use super::{Store, StoreError};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Up to `size` connections, shared by cloning.
#[derive(Debug, Clone)]
pub struct StorePool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: DbConfig,
    idle: Mutex<Vec<Store>>,
    permits: Arc<Semaphore>,
    policy_ttl: Duration,
}

impl StorePool {
    pub fn new(config: DbConfig, size: usize) -> Self {
        let size = size.max(1);
        StorePool {
            inner: Arc::new(Inner {
                config,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(size)),
                policy_ttl: DEFAULT_POLICY_TTL,
            }),
        }
    }

    /// How long each store keeps a tenant's publisher policy (see `Store::publisher_policy`).
    /// Set before first use.
    pub fn with_policy_ttl(mut self, ttl: Duration) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.policy_ttl = ttl;
        }
        self
    }

    /// A store for the caller's exclusive use until the guard drops; waits while all are in use.
    pub async fn get(&self) -> Result<PooledStore, StoreError> {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Config("the store pool was closed".into()))?;
        let idle = {
            let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
            idle.pop()
        };
        let store = match idle {
            Some(store) if !store.is_closed() => store,
            _ => {
                let mut store = Store::connect_with(&self.inner.config).await?;
                store.set_policy_ttl(self.inner.policy_ttl);
                store
            }
        };
        Ok(PooledStore { store: Some(store), pool: self.inner.clone(), _permit: permit })
    }
}

/// A store taken from the pool; derefs to [`Store`] and goes back when dropped (unless broken).
#[derive(Debug)]
pub struct PooledStore {
    store: Option<Store>,
    pool: Arc<Inner>,
    _permit: OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        self.store.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for PooledStore {
    fn deref_mut(&mut self) -> &mut Store {
        self.store.as_mut().expect("present until drop")
    }
}

impl Drop for PooledStore {
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            // A broken connection is dropped; the next user opens a fresh one. So is a store
            // whose operation was cancelled mid-transaction (the local gateway's function
            // timeout cancels a request): idle in the pool, its transaction could hold the
            // tenant's chain head lock, and an append on another connection would wait for it
            // until this store's next use. Closing the connection ends the transaction.
            if !store.is_closed() && !store.open_transaction {
                self.pool.idle.lock().unwrap_or_else(|p| p.into_inner()).push(store);
            }
        }
    }
}
