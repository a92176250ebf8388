//! The recommendation engine behind `recommend()`: turns a history and options into a
//! ranked, explained list, with the same code in the CLI and in the browser.
//!
//! Scenarios: for you (history), similar items (a context item), frequently bought
//! together (the cart), cross-category (filters, diversity), new items (cold-start content
//! vectors), promotions (boost, promote). Every result carries its reasons.
