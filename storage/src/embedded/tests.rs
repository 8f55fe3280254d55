//! Store-level tests of the embedded store (no I/O).
