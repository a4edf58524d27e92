//! The supervisors connected to this switchboard process: a sender per live WebSocket, so the
//! scheduler and the API can push messages to them. This is only a routing table; whether a
//! supervisor is connected, and everything about its jobs, lives in the database.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use paddock_core::SupervisorId;
use paddock_core::protocol::SwitchboardMessage;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
struct Entry {
    connection: String,
    tx: mpsc::UnboundedSender<SwitchboardMessage>,
}

#[derive(Debug, Clone, Default)]
pub struct Hub {
    inner: Arc<Mutex<HashMap<SupervisorId, Entry>>>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SupervisorId, Entry>> {
        // A poisoned map is still a consistent map: every critical section is a single insert,
        // remove or lookup.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a connection; an older connection of the same supervisor is dropped (its
    /// sender closes, which ends its socket task).
    pub fn register(
        &self,
        id: SupervisorId,
        connection: String,
        tx: mpsc::UnboundedSender<SwitchboardMessage>,
    ) {
        self.lock().insert(id, Entry { connection, tx });
    }

    /// Removes a connection if it is still the registered one.
    pub fn unregister(&self, id: SupervisorId, connection: &str) {
        let mut map = self.lock();
        if map.get(&id).is_some_and(|e| e.connection == connection) {
            map.remove(&id);
        }
    }

    /// Removes whatever connection of this supervisor is registered.
    pub fn remove(&self, id: SupervisorId) {
        self.lock().remove(&id);
    }

    /// Sends to a supervisor connected here; false when it is not.
    pub fn send(&self, id: SupervisorId, msg: SwitchboardMessage) -> bool {
        self.lock().get(&id).is_some_and(|e| e.tx.send(msg).is_ok())
    }

    /// The connection ids registered here (all of them alive: a silent one is closed).
    pub fn connections(&self) -> Vec<String> {
        self.lock().values().map(|e| e.connection.clone()).collect()
    }

    pub fn connected(&self) -> HashSet<SupervisorId> {
        self.lock().keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
