//! The current span context: which span new spans are children of by default.
//!
//! The current context is per thread. Async code carries it with [`FutureExt`]: a wrapped
//! future makes its context current while it is polled and restores the previous one
//! afterwards, so it follows the task across threads and `.await` points (the same
//! approach as `tracing::Instrumented` and OpenTelemetry's `WithContext`).

use std::cell::RefCell;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use crate::id::SpanContext;
use crate::span::Span;

thread_local! {
    static CURRENT: RefCell<Option<SpanContext>> = const { RefCell::new(None) };
}

/// The current span context on this thread, if any.
pub fn current() -> Option<SpanContext> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Runs `f` with a reference to the current context, without cloning it.
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&SpanContext>) -> R) -> R {
    CURRENT.with(|c| f(c.borrow().as_ref()))
}

/// Makes `cx` current and returns the previous one (for callers that restore it
/// themselves, in nesting order).
pub(crate) fn replace(cx: Option<SpanContext>) -> Option<SpanContext> {
    CURRENT.with(|c| c.replace(cx))
}

/// Makes `cx` current until the returned guard is dropped. Guards must be dropped in
/// reverse order of creation; they are not `Send`, so they cannot outlive an `.await` on
/// another thread. In async code use [`FutureExt`] instead.
pub fn attach(cx: SpanContext) -> ContextGuard {
    ContextGuard {
        previous: replace(Some(cx)),
        _not_send: PhantomData,
    }
}

/// Restores the previous current context when dropped.
#[must_use = "the context is current only while the guard lives"]
pub struct ContextGuard {
    previous: Option<SpanContext>,
    _not_send: PhantomData<*const ()>,
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        replace(self.previous.take());
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a span context current. See [`FutureExt::with_context`].
    pub struct WithContext<F> {
        #[pin]
        inner: F,
        cx: SpanContext,
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _guard = attach(this.cx.clone());
        this.inner.poll(task)
    }
}

pin_project_lite::pin_project! {
    /// A future that runs inside a span and ends it when it completes (or is dropped).
    /// See [`FutureExt::in_span`].
    pub struct InSpan<F> {
        #[pin]
        inner: F,
        span: Option<Span>,
        cx: SpanContext,
    }
}

impl<F: Future> Future for InSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let poll = {
            let _guard = attach(this.cx.clone());
            this.inner.poll(task)
        };
        if poll.is_ready()
            && let Some(span) = this.span.take()
        {
            span.end();
        }
        poll
    }
}

/// Extension methods that carry a span context across `.await`s.
pub trait FutureExt: Future + Sized {
    /// Polls `self` with `cx` as the current context.
    fn with_context(self, cx: SpanContext) -> WithContext<Self> {
        WithContext { inner: self, cx }
    }

    /// Polls `self` with `span` as the current span, and ends `span` when `self`
    /// completes. If the future is dropped first, the span ends then (span drop ends it).
    fn in_span(self, span: Span) -> InSpan<Self> {
        let cx = span.context().clone();
        InSpan {
            inner: self,
            span: Some(span),
            cx,
        }
    }
}

impl<F: Future> FutureExt for F {}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::id::{SpanId, TraceFlags, TraceId};

    #[test]
    fn guards_nest_and_restore() {
        let a = SpanContext::new(TraceId::random(), SpanId::random(), TraceFlags::SAMPLED);
        let b = SpanContext::new(a.trace_id, SpanId::random(), TraceFlags::SAMPLED);
        assert_eq!(current(), None);
        {
            let _ga = attach(a.clone());
            {
                let _gb = attach(b.clone());
                assert_eq!(current(), Some(b));
            }
            assert_eq!(current(), Some(a));
        }
        assert_eq!(current(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn context_follows_the_future() {
        let a = SpanContext::new(TraceId::random(), SpanId::random(), TraceFlags::SAMPLED);
        let seen = tokio::spawn(
            async {
                tokio::task::yield_now().await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                current()
            }
            .with_context(a.clone()),
        )
        .await
        .unwrap();
        assert_eq!(seen, Some(a));
        assert_eq!(current(), None);
    }
}
