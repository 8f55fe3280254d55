//! An exporter that keeps spans in memory, for tests and examples.

use std::sync::{Arc, Mutex};

use super::{BoxFuture, SpanExporter};
use crate::error::Result;
use crate::resource::Resource;
use crate::span::SpanData;

/// Collects exported spans in memory. Clones share the same storage.
#[derive(Clone, Debug, Default)]
pub struct InMemoryExporter {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl InMemoryExporter {
    /// An empty exporter.
    pub fn new() -> InMemoryExporter {
        InMemoryExporter::default()
    }

    /// Everything exported so far.
    pub fn spans(&self) -> Vec<SpanData> {
        match self.spans.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl SpanExporter for InMemoryExporter {
    fn export<'a>(&'a mut self, batch: &'a [SpanData], _resource: &'a Resource) -> BoxFuture<'a, Result<()>> {
        let spans = self.spans.clone();
        Box::pin(async move {
            match spans.lock() {
                Ok(mut s) => s.extend_from_slice(batch),
                Err(poisoned) => poisoned.into_inner().extend_from_slice(batch),
            }
            Ok(())
        })
    }
}
