//! hopscope demo workload (in progress).
