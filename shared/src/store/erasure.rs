//! What an erasure removes. The erasure itself is an [`AdminChange::Erase`](super::admin::AdminChange),
//! applied through `audit_erase` (migration V7) on a connection of the maintenance role, in the
//! same transaction as the event that records it: the service role cannot call it.

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What to erase: exactly one criterion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureTarget {
    /// One event.
    Event(Uuid),
    /// Every event of one actor id (a data subject).
    Actor(String),
    /// Every event received before this time (a retention window shorter than the partitions').
    ReceivedBefore(DateTime<Utc>),
}
