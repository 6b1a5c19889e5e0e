//! The store a swarm's control plane lives in: keys and values, leases, and watches, as etcd has
//! them. Two implementations: [`super::memory`] (in-process, for the engines of a lab held by
//! one process) and etcd (engines in separate processes).

use std::fmt;
use std::io;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// A lease's id in its store.
pub type LeaseId = i64;

/// Keys and their values, sorted by key.
pub type Entries = Vec<(String, Vec<u8>)>;

/// A change under a watched prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `key` now holds `value` (created or changed).
    Put {
        /// The key.
        key: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// `key` was deleted, or went with its lease.
    Delete {
        /// The key.
        key: String,
    },
}

/// A watch: what the prefix held when it started, then every change after, in order and without
/// a gap. Dropping it ends it.
#[derive(Debug)]
pub struct Watch {
    /// The keys and values under the prefix when the watch started, sorted by key.
    pub current: Entries,
    /// The changes since.
    pub events: mpsc::UnboundedReceiver<Event>,
}

/// What ends a lease (see [`Lease::new`]).
type End = Box<dyn FnOnce(bool) -> BoxFuture<'static, io::Result<()>> + Send + Sync>;

/// A lease: keys written with it go when it ends. Its store keeps it alive while this handle
/// lives; [`Lease::revoke`] ends it at once (a node leaving), dropping it ends it as a process
/// dying would (at once in process, after its time to live through a remote store).
pub struct Lease {
    /// Its id in the store.
    pub id: LeaseId,
    end: Option<End>,
}

impl Lease {
    /// A lease ended by `end`: `end(true)` revokes it, and its future completes once the store
    /// has deleted its keys; `end(false)` stops keeping it alive before it returns (the handle
    /// was dropped), and its future is dropped unawaited.
    pub fn new(
        id: LeaseId,
        end: impl FnOnce(bool) -> BoxFuture<'static, io::Result<()>> + Send + Sync + 'static,
    ) -> Self {
        Self {
            id,
            end: Some(Box::new(end)),
        }
    }

    /// Ends the lease now: once this returns, its keys are deleted. A remote store needs a
    /// round trip for that, hence the future.
    pub async fn revoke(mut self) -> io::Result<()> {
        match self.end.take() {
            Some(end) => end(true).await,
            None => Ok(()),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(end) = self.end.take() {
            drop(end(false));
        }
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease").field("id", &self.id).finish()
    }
}

/// A key-value store with leases and watches. Keys are `/`-separated paths; values are bytes
/// (the cluster writes JSON).
pub trait Store: fmt::Debug + Send + Sync {
    /// The value at `key`.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<Vec<u8>>>>;

    /// Every key under `prefix` with its value, sorted by key.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<Entries>>;

    /// Writes `value` at `key`, tied to `lease` when given.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, io::Result<()>>;

    /// Writes `value` at `key` if what is there is `expected` (`None`: nothing); true when it
    /// did. Allocations are made of this.
    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, io::Result<bool>>;

    /// Deletes `key` (nothing when it is not there).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>>;

    /// A lease with this time to live, kept alive while its handle lives.
    fn grant(&self, ttl: Duration) -> BoxFuture<'_, io::Result<Lease>>;

    /// Watches the keys under `prefix`.
    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<Watch>>;
}
