//! Service and operation names, interned once for the whole store, with live-span counts
//! so a name disappears (and its id is reused) with its last stored span.

use hopscope_schemas::SpanKind;
use rustc_hash::FxHashMap;

/// Estimated bytes of one interned name besides its text (map entry, table slot).
const NAME_OVERHEAD: usize = 96;

/// One service.
#[derive(Debug)]
struct ServiceEntry {
    name: Box<str>,
    live: u64,
    /// Operation name → operation id.
    ops: FxHashMap<Box<str>, u32>,
}

/// One operation of one service, with its live spans per span kind.
#[derive(Debug)]
struct OpEntry {
    service: u32,
    name: Box<str>,
    /// Live spans indexed by [`kind_slot`].
    kinds: [u64; 6],
}

/// Interned services and operations.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    services: Vec<Option<ServiceEntry>>,
    service_ids: FxHashMap<Box<str>, u32>,
    free_services: Vec<u32>,
    ops: Vec<Option<OpEntry>>,
    free_ops: Vec<u32>,
    /// Estimated bytes of the names held.
    pub bytes: usize,
}

/// The slot of a kind in the per-kind counts.
pub(crate) fn kind_slot(kind: SpanKind) -> usize {
    usize::try_from(kind.to_otlp()).unwrap_or(0).min(5)
}

/// All kinds, in slot order.
pub(crate) const KINDS: [SpanKind; 6] = [
    SpanKind::Unspecified,
    SpanKind::Internal,
    SpanKind::Server,
    SpanKind::Client,
    SpanKind::Producer,
    SpanKind::Consumer,
];

fn alloc<T>(table: &mut Vec<Option<T>>, free: &mut Vec<u32>, value: T) -> u32 {
    match free.pop() {
        Some(id) => {
            if let Some(slot) = table.get_mut(id as usize) {
                *slot = Some(value);
            }
            id
        }
        None => {
            table.push(Some(value));
            u32::try_from(table.len() - 1).unwrap_or(u32::MAX)
        }
    }
}

impl Catalog {
    /// Counts one more live span of `service`/`operation`/`kind`; returns the ids.
    pub fn acquire(&mut self, service: &str, operation: &str, kind: SpanKind) -> (u32, u32) {
        let sid = match self.service_ids.get(service) {
            Some(id) => *id,
            None => {
                self.bytes += NAME_OVERHEAD + 2 * service.len();
                let entry = ServiceEntry {
                    name: service.into(),
                    live: 0,
                    ops: FxHashMap::default(),
                };
                let id = alloc(&mut self.services, &mut self.free_services, entry);
                self.service_ids.insert(service.into(), id);
                id
            }
        };
        let Some(Some(entry)) = self.services.get_mut(sid as usize) else {
            return (sid, u32::MAX);
        };
        entry.live += 1;
        let oid = match entry.ops.get(operation) {
            Some(id) => *id,
            None => {
                self.bytes += NAME_OVERHEAD + 2 * operation.len();
                let op = OpEntry {
                    service: sid,
                    name: operation.into(),
                    kinds: [0; 6],
                };
                let id = alloc(&mut self.ops, &mut self.free_ops, op);
                entry.ops.insert(operation.into(), id);
                id
            }
        };
        if let Some(Some(op)) = self.ops.get_mut(oid as usize) {
            op.kinds[kind_slot(kind)] += 1;
        }
        (sid, oid)
    }

    /// Forgets one live span counted by [`Catalog::acquire`].
    pub fn release(&mut self, sid: u32, oid: u32, kind: SpanKind) {
        if let Some(slot) = self.ops.get_mut(oid as usize)
            && let Some(op) = slot
        {
            let count = &mut op.kinds[kind_slot(kind)];
            *count = count.saturating_sub(1);
            if op.kinds.iter().all(|k| *k == 0) {
                if let Some(Some(service)) = self.services.get_mut(op.service as usize) {
                    service.ops.remove(&op.name);
                }
                self.bytes = self.bytes.saturating_sub(NAME_OVERHEAD + 2 * op.name.len());
                *slot = None;
                self.free_ops.push(oid);
            }
        }
        if let Some(slot) = self.services.get_mut(sid as usize)
            && let Some(service) = slot
        {
            service.live = service.live.saturating_sub(1);
            if service.live == 0 {
                self.service_ids.remove(&service.name);
                self.bytes = self.bytes.saturating_sub(NAME_OVERHEAD + 2 * service.name.len());
                *slot = None;
                self.free_services.push(sid);
            }
        }
    }

    pub fn service_id(&self, name: &str) -> Option<u32> {
        self.service_ids.get(name).copied()
    }

    pub fn op_id(&self, sid: u32, name: &str) -> Option<u32> {
        match self.services.get(sid as usize) {
            Some(Some(service)) => service.ops.get(name).copied(),
            _ => None,
        }
    }

    pub fn service_name(&self, sid: u32) -> &str {
        match self.services.get(sid as usize) {
            Some(Some(service)) => &service.name,
            _ => "",
        }
    }

    pub fn op_name(&self, oid: u32) -> &str {
        match self.ops.get(oid as usize) {
            Some(Some(op)) => &op.name,
            _ => "",
        }
    }

    /// Names of the services with stored spans, sorted.
    pub fn services(&self) -> Vec<String> {
        let mut names: Vec<String> = self.service_ids.keys().map(|k| k.to_string()).collect();
        names.sort_unstable();
        names
    }

    /// Operations of a service with their live span counts per kind, sorted by name.
    pub fn operations(&self, service: &str) -> Vec<(String, [u64; 6])> {
        let Some(sid) = self.service_id(service) else {
            return Vec::new();
        };
        let Some(Some(entry)) = self.services.get(sid as usize) else {
            return Vec::new();
        };
        let mut out: Vec<(String, [u64; 6])> = entry
            .ops
            .values()
            .filter_map(|oid| match self.ops.get(*oid as usize) {
                Some(Some(op)) => Some((op.name.to_string(), op.kinds)),
                _ => None,
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// True when nothing is interned.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.service_ids.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_go_with_their_last_span_and_ids_are_reused() {
        let mut c = Catalog::default();
        let (s, o) = c.acquire("pay", "charge", SpanKind::Server);
        let (s2, o2) = c.acquire("pay", "charge", SpanKind::Client);
        assert_eq!((s, o), (s2, o2));
        assert_eq!(c.services(), vec!["pay"]);
        c.release(s, o, SpanKind::Server);
        assert_eq!(c.operations("pay")[0].1, [0, 0, 0, 1, 0, 0]);
        c.release(s, o, SpanKind::Client);
        assert!(c.is_empty() && c.bytes == 0);
        let (s3, o3) = c.acquire("cart", "add", SpanKind::Server);
        assert_eq!((s3, o3), (s, o));
        assert_eq!(c.service_name(s3), "cart");
        assert_eq!(c.op_name(o3), "add");
    }
}
