//! The in-process store: for the engines of a lab held by one process. A lease lives while its
//! handle does; dropping it (an engine killed) ends it at once, as a store notices a client's
//! connection close.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use super::store::{Entries, Event, Lease, LeaseId, Store, Watch};

/// A value and the lease it goes with.
#[derive(Debug, Clone)]
struct Entry {
    value: Vec<u8>,
    lease: Option<LeaseId>,
}

#[derive(Debug, Default)]
struct State {
    entries: BTreeMap<String, Entry>,
    watches: Vec<(String, mpsc::UnboundedSender<Event>)>,
    next_lease: LeaseId,
}

impl State {
    fn notify(&mut self, event: &Event) {
        let key = match event {
            Event::Put { key, .. } | Event::Delete { key } => key.clone(),
        };
        // A watcher that went away has dropped its receiver: forget it.
        self.watches.retain(|(prefix, sender)| {
            !key.starts_with(prefix) || sender.send(event.clone()).is_ok()
        });
    }

    fn put(&mut self, key: &str, value: Vec<u8>, lease: Option<LeaseId>) {
        let entry = Entry {
            value: value.clone(),
            lease,
        };
        self.entries.insert(key.to_string(), entry);
        self.notify(&Event::Put {
            key: key.to_string(),
            value,
        });
    }

    fn delete(&mut self, key: &str) {
        if self.entries.remove(key).is_some() {
            self.notify(&Event::Delete {
                key: key.to_string(),
            });
        }
    }

    fn end_lease(&mut self, lease: LeaseId) {
        let keys: Vec<String> = (self.entries.iter())
            .filter(|(_, e)| e.lease == Some(lease))
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.delete(&key);
        }
    }
}

/// A store in this process's memory.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Store for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<Option<Vec<u8>>>> {
        let value = self.state().entries.get(key).map(|e| e.value.clone());
        Box::pin(async move { Ok(value) })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<Entries>> {
        let found = (self.state().entries.range(prefix.to_string()..))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect();
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, io::Result<()>> {
        self.state().put(key, value, lease);
        Box::pin(async { Ok(()) })
    }

    fn swap<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Vec<u8>>,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    ) -> BoxFuture<'a, io::Result<bool>> {
        let mut state = self.state();
        let current = state.entries.get(key).map(|e| &e.value);
        let done = current == expected.as_ref();
        if done {
            state.put(key, value, lease);
        }
        Box::pin(async move { Ok(done) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, io::Result<()>> {
        self.state().delete(key);
        Box::pin(async { Ok(()) })
    }

    /// In process there is no connection to lose: the lease lives exactly as long as its
    /// handle, whatever `_ttl` says.
    fn grant(&self, _ttl: Duration) -> BoxFuture<'_, io::Result<Lease>> {
        let id = {
            let mut state = self.state();
            state.next_lease += 1;
            state.next_lease
        };
        let state: Weak<Mutex<State>> = Arc::downgrade(&self.state);
        let lease = Lease::new(id, move |_revoked| {
            if let Some(state) = state.upgrade() {
                state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .end_lease(id);
            }
            Box::pin(futures::future::ready(Ok(())))
        });
        Box::pin(async move { Ok(lease) })
    }

    fn watch<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, io::Result<Watch>> {
        let (sender, events) = mpsc::unbounded_channel();
        let mut state = self.state();
        let current = (state.entries.range(prefix.to_string()..))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, e)| (k.clone(), e.value.clone()))
            .collect();
        state.watches.push((prefix.to_string(), sender));
        Box::pin(async move { Ok(Watch { current, events }) })
    }
}

/// The in-process stores of a lab's swarms, found by the address their first manager
/// advertises (`10.10.0.1:2377`): what `swarm join` reaches in process.
#[derive(Debug, Default)]
pub struct MemoryHub {
    stores: Mutex<HashMap<String, Arc<MemoryStore>>>,
}

impl MemoryHub {
    /// A hub without swarms.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new store for a swarm whose manager listens at `address`.
    pub fn create(&self, address: &str) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::new());
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        stores.insert(address.to_string(), store.clone());
        store
    }

    /// The store of the swarm whose manager listens at `address`.
    pub fn find(&self, address: &str) -> Option<Arc<MemoryStore>> {
        let stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        stores.get(address).cloned()
    }

    /// Makes `address` (another manager's) lead to `store` too.
    pub fn add_address(&self, address: &str, store: Arc<MemoryStore>) {
        let mut stores = self.stores.lock().unwrap_or_else(PoisonError::into_inner);
        stores.insert(address.to_string(), store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block<T>(future: impl std::future::Future<Output = T>) -> T {
        futures::executor::block_on(future)
    }

    #[test]
    fn swaps_allocate_once() {
        let store = MemoryStore::new();
        assert!(block(store.swap("ipam/n/10.0.1.2", None, b"a".to_vec(), None)).unwrap());
        assert!(!block(store.swap("ipam/n/10.0.1.2", None, b"b".to_vec(), None)).unwrap());
        let current = Some(b"a".to_vec());
        assert!(block(store.swap("ipam/n/10.0.1.2", current, b"b".to_vec(), None)).unwrap());
        assert_eq!(
            block(store.get("ipam/n/10.0.1.2")).unwrap(),
            Some(b"b".to_vec())
        );
    }

    #[test]
    fn watches_see_the_present_then_every_change_under_their_prefix() {
        let store = MemoryStore::new();
        block(store.put("ep/n1/a", b"1".to_vec(), None)).unwrap();
        block(store.put("ep/n2/x", b"9".to_vec(), None)).unwrap();
        let mut watch = block(store.watch("ep/n1/")).unwrap();
        assert_eq!(watch.current, [("ep/n1/a".to_string(), b"1".to_vec())]);
        block(store.put("ep/n1/b", b"2".to_vec(), None)).unwrap();
        block(store.put("ep/n2/y", b"8".to_vec(), None)).unwrap();
        block(store.delete("ep/n1/a")).unwrap();
        let put = Event::Put {
            key: "ep/n1/b".into(),
            value: b"2".to_vec(),
        };
        assert_eq!(watch.events.try_recv().unwrap(), put);
        let delete = Event::Delete {
            key: "ep/n1/a".into(),
        };
        assert_eq!(watch.events.try_recv().unwrap(), delete);
        assert!(watch.events.try_recv().is_err());
        let listed: Vec<String> = (block(store.list("ep/")).unwrap().into_iter())
            .map(|(k, _)| k)
            .collect();
        assert_eq!(listed, ["ep/n1/b", "ep/n2/x", "ep/n2/y"]);
    }

    #[test]
    fn keys_go_with_their_lease_revoked_or_dropped() {
        let store = MemoryStore::new();
        let mut watch = block(store.watch("nodes/")).unwrap();
        let lease = block(store.grant(Duration::from_secs(1))).unwrap();
        block(store.put("nodes/a", b"a".to_vec(), Some(lease.id))).unwrap();
        let other = block(store.grant(Duration::from_secs(1))).unwrap();
        block(store.put("nodes/b", b"b".to_vec(), Some(other.id))).unwrap();
        block(lease.revoke()).unwrap();
        drop(other);
        assert!(block(store.list("nodes/")).unwrap().is_empty());
        let deleted: Vec<Event> = std::iter::from_fn(|| watch.events.try_recv().ok())
            .filter(|e| matches!(e, Event::Delete { .. }))
            .collect();
        assert_eq!(deleted.len(), 2);
    }

    #[test]
    fn hubs_find_swarms_by_their_managers_addresses() {
        let hub = MemoryHub::new();
        let store = hub.create("10.10.0.1:2377");
        assert!(hub.find("10.10.0.2:2377").is_none());
        hub.add_address("10.10.0.2:2377", store.clone());
        let found = hub.find("10.10.0.2:2377").unwrap();
        assert!(Arc::ptr_eq(&found, &store));
    }
}
