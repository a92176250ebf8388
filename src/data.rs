//! data (placeholder; owned by a helper).
