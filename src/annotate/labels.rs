//! Labels attached to sockets with `fdguard_label()`, keyed by socket identity (so a label never
//! follows an fd number to the next socket that gets it).

use dashmap::DashMap;
use once_cell::sync::Lazy;
use std::collections::BTreeSet;

static LABELS: Lazy<DashMap<u64, String>> = Lazy::new(DashMap::new);

/// Attaches `label` to socket `socket_id`, or removes its label with `None`.
pub fn set(socket_id: u64, label: Option<String>) {
    match label {
        Some(l) => {
            LABELS.insert(socket_id, l);
        }
        None => {
            LABELS.remove(&socket_id);
        }
    }
}

/// The label of socket `socket_id`, if any.
pub fn get(socket_id: u64) -> Option<String> {
    LABELS.get(&socket_id).map(|l| l.clone())
}

/// Forgets the labels of sockets that are no longer live.
pub fn keep_only(live: &BTreeSet<u64>) {
    LABELS.retain(|id, _| live.contains(id));
}
