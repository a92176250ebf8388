//! eval (placeholder; owned by a helper).
