//! The text forms users type and read, shared by the CLI and the server so that
//! both sides accept and print exactly the same things.
//!
//! - [`selector`]: PromQL vector selectors (`cpu{host=~"h.*"}`) and the canonical
//!   notation of a series (`cpu{host="h1"}`), which `Labels`' `Display` uses.

pub mod selector;
