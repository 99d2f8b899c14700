//! rollscale's domain: the Auto Scaling model, the rolling-update templates and their
//! parameters, the planner and the rolling-update state machine.
//!
//! Architecture invariant: this crate does no I/O, has no async code and reads no clock or
//! randomness; time and random bits come in as arguments. Everything here is testable with
//! plain values.

pub mod access;
pub mod admission;
pub mod alert;
pub mod code;
pub mod domain;
pub mod error;
pub mod group;
pub mod health;
pub mod ids;
pub mod image_task;
pub mod names;
pub mod params;
pub mod plan;
pub mod policy;
pub mod schedule;
pub mod search;
pub mod task;

pub use code::{Class, Code};
pub use error::CoreError;
