//! The newest appended records, kept in memory so that the storage writer, which follows
//! close behind the appends, takes them from here instead of reading the file back.
//!
//! Contract: the tail is only a cache. Every record in it is also in the log file, byte
//! for byte; a reader that does not find its next record here reads the file, and gets
//! the same bytes. The tail holds at most `max_bytes` of payload and keeps the *oldest*
//! records it was given: when full it refuses new ones, so that a writer that has fallen
//! behind finds the records it will read next here rather than ones it reaches only after
//! they were evicted. Records leave when a reader takes them (or a reader skips past them).

use std::collections::VecDeque;

use bytes::Bytes;

/// One record held in memory, with where its frame ends in its segment file (so a reader
/// that takes it can go on reading the file after it).
#[derive(Debug, Clone)]
pub(super) struct TailRecord {
    /// Its sequence number.
    pub seq: u64,
    /// The first sequence number of the segment holding it.
    pub segment: u64,
    /// Byte offset in that segment just past its frame.
    pub end: u64,
    /// Its payload, exactly as written to the file.
    pub payload: Bytes,
}

/// See the module doc.
#[derive(Debug)]
pub(super) struct Tail {
    records: VecDeque<TailRecord>,
    bytes: usize,
    max_bytes: usize,
}

impl Tail {
    /// An empty tail holding at most `max_bytes` of payload (0 holds nothing).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            records: VecDeque::new(),
            bytes: 0,
            max_bytes,
        }
    }

    /// Keeps `record` if it fits. Records must be pushed in increasing `seq` order (the
    /// log pushes under the lock that assigns sequence numbers).
    pub fn push(&mut self, record: TailRecord) {
        let len = record.payload.len();
        if self.bytes + len > self.max_bytes {
            return;
        }
        debug_assert!(self.records.back().is_none_or(|last| last.seq < record.seq));
        self.bytes += len;
        self.records.push_back(record);
    }

    /// Removes and returns the record with sequence number `seq`, if held; records before
    /// it are dropped (the reader has gone past them).
    pub fn take(&mut self, seq: u64) -> Option<TailRecord> {
        while let Some(front) = self.records.front() {
            if front.seq > seq {
                return None;
            }
            let record = self.records.pop_front()?;
            self.bytes -= record.payload.len();
            if record.seq == seq {
                return Some(record);
            }
        }
        None
    }

    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(seq: u64, len: usize) -> TailRecord {
        TailRecord {
            seq,
            segment: 1,
            end: seq * 100,
            payload: Bytes::from(vec![seq as u8; len]),
        }
    }

    #[test]
    fn keeps_the_oldest_records_that_fit_and_hands_each_out_once() {
        let mut tail = Tail::new(25);
        for seq in 1..=4 {
            tail.push(record(seq, 10));
        }
        // 1 and 2 fit; 3 and 4 were refused.
        assert_eq!(tail.bytes(), 20);
        assert_eq!(tail.take(1).unwrap().end, 100);
        assert!(tail.take(1).is_none());
        assert!(tail.take(3).is_none(), "3 was refused, and 2 is dropped on the way");
        assert_eq!(tail.bytes(), 0);
        tail.push(record(5, 10));
        assert!(
            tail.take(4).is_none(),
            "a reader before the tail's first record finds nothing"
        );
        assert_eq!(tail.take(5).unwrap().payload, Bytes::from(vec![5u8; 10]));
    }

    #[test]
    fn an_empty_budget_holds_nothing() {
        let mut tail = Tail::new(0);
        tail.push(record(1, 1));
        assert!(tail.take(1).is_none());
    }
}
