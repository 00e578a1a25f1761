//! Benchmarks of heph.
