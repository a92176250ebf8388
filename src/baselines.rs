//! baselines (placeholder; owned by a helper).
