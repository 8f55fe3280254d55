//! Reusable buffers for request bodies.
//!
//! A body lives from its receipt through the write-ahead log's in-memory tail to the
//! store writer, tens of milliseconds. Freed, its buffer went back to the allocator,
//! which returned the pages to the OS before the next body of that size came (hopscope
//! runs mimalloc with a 10 ms purge delay to keep its footprint small), so every body
//! of ~270 KiB page-faulted ~70 fresh pages in. Bodies are gathered in buffers from this
//! pool instead; a buffer comes back when the last [`Bytes`] referring to it drops.
//!
//! Contract: memory stays bounded. The pool keeps at most `max_spare` idle buffers, none
//! larger than [`MAX_POOLED`]; others are freed as usual. Buffers in use are not counted:
//! their bodies are held by the request, the log's tail or the store writer, each
//! bounded on its own.

use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

/// Largest buffer kept for reuse; larger bodies (rare, up to `max_request_bytes`) are
/// freed when done.
pub const MAX_POOLED: usize = 4 << 20;

/// See the module doc. Share it as `Arc<BodyPool>`.
#[derive(Debug)]
pub struct BodyPool {
    spare: Mutex<Vec<Vec<u8>>>,
    max_spare: usize,
}

impl BodyPool {
    /// A pool keeping up to `max_spare` idle buffers (0 keeps none: every body is freed).
    pub fn new(max_spare: usize) -> Arc<Self> {
        Arc::new(Self {
            spare: Mutex::new(Vec::with_capacity(max_spare)),
            max_spare,
        })
    }

    /// An empty buffer with room for `capacity` bytes, reused when one is idle.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        match self.spare.lock().pop() {
            Some(mut buffer) => {
                buffer.reserve(capacity);
                buffer
            }
            None => Vec::with_capacity(capacity),
        }
    }

    /// `buffer` as shared bytes; the buffer returns to the pool when the last clone of
    /// them drops.
    pub fn share(self: &Arc<Self>, buffer: Vec<u8>) -> Bytes {
        Bytes::from_owner(Pooled {
            buffer,
            pool: Arc::clone(self),
        })
    }

    /// Idle buffers held.
    pub fn spare(&self) -> usize {
        self.spare.lock().len()
    }

    /// Gives back a buffer taken with [`BodyPool::take`] and not shared after all.
    pub fn give_back(&self, mut buffer: Vec<u8>) {
        if buffer.capacity() > MAX_POOLED {
            return;
        }
        let mut spare = self.spare.lock();
        if spare.len() < self.max_spare {
            buffer.clear();
            spare.push(buffer);
        }
    }
}

/// A buffer on loan from a [`BodyPool`], owned by the [`Bytes`] made of it.
struct Pooled {
    buffer: Vec<u8>,
    pool: Arc<BodyPool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.buffer));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_returns_when_its_last_bytes_drop_and_is_reused() {
        let pool = BodyPool::new(2);
        let mut buffer = pool.take(6);
        buffer.extend_from_slice(b"abcdef");
        let body = pool.share(buffer);
        assert_eq!(&body[..], b"abcdef");
        let part = body.slice(2..4);
        drop(body);
        assert_eq!(pool.spare(), 0, "a slice still refers to the buffer");
        assert_eq!(&part[..], b"cd");
        drop(part);
        assert_eq!(pool.spare(), 1);
        let reused = pool.take(3);
        assert!(reused.is_empty() && reused.capacity() >= 6, "the idle buffer, emptied");
        assert_eq!(pool.spare(), 0);
    }

    #[test]
    fn idle_buffers_are_bounded_in_number_and_size() {
        let pool = BodyPool::new(2);
        let bodies: Vec<Bytes> = (0..3).map(|_| pool.share(pool.take(1))).collect();
        drop(bodies);
        assert_eq!(pool.spare(), 2);
        let pool = BodyPool::new(2);
        drop(pool.share(Vec::with_capacity(MAX_POOLED + 1)));
        assert_eq!(pool.spare(), 0, "a buffer over MAX_POOLED is freed");
    }
}
