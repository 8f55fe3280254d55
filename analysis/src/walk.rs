//! The backward walk that finds a critical path in a [`Timeline`] (see the crate doc,
//! "Critical path"): from the end of the work of a start span, at each span the child
//! (or blocking chain) that finished last before the current point, then the one that
//! finished last before that one started, and so on; the span's own time fills the gaps.
//! Background edges are never followed. Iterative, so deep traces cannot overflow the
//! stack.

use crate::timeline::{NONE, Timeline};

/// A queue wait on a path: `(producer, consumer)` by slice position; the wait runs from
/// the producer's end to the consumer's start.
pub(crate) type Wait = (usize, usize);

/// The spans and queue waits on the critical path that explains `from`'s work, from its
/// start up to its finish.
pub(crate) fn critical_path(t: &Timeline<'_>, from: usize) -> (Vec<usize>, Vec<Wait>) {
    struct Frame {
        x: usize,
        t: u64,
        cursor: usize,
        after: usize,
    }
    let mut on_path = Vec::new();
    let mut waits = Vec::new();
    let mut stack = vec![Frame {
        x: from,
        t: t.finish[from],
        cursor: t.offset[from],
        after: NONE,
    }];
    on_path.push(from);
    while let Some(frame) = stack.last_mut() {
        let x = frame.x;
        if frame.after != NONE {
            let c = frame.after;
            frame.after = NONE;
            if t.is_async(c) && t.start[c] > t.end[x] {
                waits.push((x, c));
                frame.t = frame.t.min(t.end[x]);
            } else {
                frame.t = frame.t.min(t.start[c]);
            }
        }
        let mut chosen = NONE;
        if frame.t > t.start[x] {
            while frame.cursor < t.offset[x + 1] {
                let c = t.kids[frame.cursor];
                frame.cursor += 1;
                if t.follows(x, c) && t.finish[c] <= frame.t && t.start[c] >= t.start[x] {
                    chosen = c;
                    break;
                }
            }
        }
        if chosen == NONE {
            stack.pop();
            continue;
        }
        frame.after = chosen;
        let limit = frame.t.min(t.finish[chosen]);
        on_path.push(chosen);
        stack.push(Frame {
            x: chosen,
            t: limit,
            cursor: t.offset[chosen],
            after: NONE,
        });
    }
    (on_path, waits)
}
