//! A store that connects in the background, so the collector can start (and acknowledge
//! spans into its write-ahead log) while the database is still down.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use hopscope_schemas::{SpanRecord, TraceId};
use tracing::{info, warn};

use crate::aggregates::{
    DependencyEdge, EntryTrace, EntryTraceQuery, ExceptionGroup, InterfaceStats, MiddlewareInstance, MiddlewareQuery,
    Mismatch, Window,
};
use crate::{
    AggregateReader, AggregateStore, DependencyLink, Operation, OperationQuery, Result, SpanReader, SpanWriter,
    StorageError, Trace, TraceQuery,
};

/// Stands in for a store that is not connected yet.
///
/// Contract: until the background connection succeeds every call fails with
/// [`StorageError::Retryable`] ("not connected yet"), which the write path retries and the
/// query API answers with 503; afterwards every call goes to the connected store.
#[derive(Clone)]
pub struct DeferredStore {
    slot: Arc<OnceLock<Arc<dyn AggregateStore>>>,
    name: &'static str,
}

impl DeferredStore {
    /// Starts connecting on the current runtime: `open` is called until it succeeds,
    /// waiting `retry` (doubling up to 5 s) between failures, each of which is logged.
    pub fn connect<F, Fut>(name: &'static str, retry: Duration, open: F) -> Self
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<Arc<dyn AggregateStore>>> + Send,
    {
        let slot: Arc<OnceLock<Arc<dyn AggregateStore>>> = Arc::default();
        let filled = Arc::clone(&slot);
        tokio::spawn(async move {
            let mut delay = retry;
            for attempt in 1u64.. {
                match open().await {
                    Ok(store) => {
                        info!(store = name, attempt, "store connected");
                        let _ = filled.set(store);
                        return;
                    }
                    Err(err) => {
                        warn!(store = name, attempt, error = %err, retry_in_ms = delay.as_millis() as u64,
                              "store not reachable yet; spans wait in the write-ahead log");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
        Self { slot, name }
    }

    /// True once the store is connected.
    pub fn is_connected(&self) -> bool {
        self.slot.get().is_some()
    }

    fn store(&self) -> Result<&Arc<dyn AggregateStore>> {
        self.slot
            .get()
            .ok_or_else(|| StorageError::Retryable(format!("{} is not connected yet", self.name)))
    }
}

#[async_trait]
impl SpanWriter for DeferredStore {
    async fn write_spans(&self, spans: Vec<SpanRecord>) -> Result<()> {
        self.store()?.write_spans(spans).await
    }
}

#[async_trait]
impl SpanReader for DeferredStore {
    async fn services(&self) -> Result<Vec<String>> {
        self.store()?.services().await
    }

    async fn operations(&self, query: &OperationQuery) -> Result<Vec<Operation>> {
        self.store()?.operations(query).await
    }

    async fn trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        self.store()?.trace(trace_id).await
    }

    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        self.store()?.find_traces(query).await
    }

    async fn dependencies(&self, start_ns: u64, end_ns: u64) -> Result<Vec<DependencyLink>> {
        self.store()?.dependencies(start_ns, end_ns).await
    }
}

#[async_trait]
impl AggregateReader for DeferredStore {
    async fn entry_traces(&self, query: &EntryTraceQuery) -> Result<Vec<EntryTrace>> {
        self.store()?.entry_traces(query).await
    }

    async fn middleware(&self, query: &MiddlewareQuery) -> Result<Vec<MiddlewareInstance>> {
        self.store()?.middleware(query).await
    }

    async fn interfaces(&self, window: &Window) -> Result<Vec<InterfaceStats>> {
        self.store()?.interfaces(window).await
    }

    async fn exceptions(&self, window: &Window, examples: usize) -> Result<Vec<ExceptionGroup>> {
        self.store()?.exceptions(window, examples).await
    }

    async fn dependency_edges(&self, window: &Window) -> Result<Vec<DependencyEdge>> {
        self.store()?.dependency_edges(window).await
    }

    async fn mismatches(&self, window: &Window, limit: usize) -> Result<Vec<Mismatch>> {
        self.store()?.mismatches(window, limit).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::EmbeddedStore;

    #[tokio::test]
    async fn retryable_until_connected_then_delegates() {
        let attempts = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&attempts);
        let store = DeferredStore::connect("test store", Duration::from_millis(10), move || {
            let attempt = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                if attempt < 2 {
                    Err(StorageError::Retryable("down".into()))
                } else {
                    Ok(Arc::new(EmbeddedStore::default()) as Arc<dyn AggregateStore>)
                }
            }
        });
        let early = store.services().await;
        assert!(matches!(early, Err(StorageError::Retryable(_))) || store.is_connected());
        for _ in 0..200 {
            if store.is_connected() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(store.is_connected());
        assert_eq!(attempts.load(Ordering::SeqCst), 3);
        assert!(store.services().await.unwrap().is_empty());
        let window = Window {
            start_ns: 0,
            end_ns: u64::MAX,
            cloud_kind: None,
        };
        assert!(
            store.interfaces(&window).await.unwrap().is_empty(),
            "aggregates delegate too"
        );
    }
}
