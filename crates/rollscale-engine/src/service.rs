//! The service layer's public face: [`Service`] and the values its commands take. The
//! commands and queries themselves are in `crate::app`, one module per resource; this module
//! keeps the paths other crates use (`rollscale_engine::service::{Service, NewGroup, …}`).

pub use crate::app::{is_settled, GroupChanges, NewConfiguration, NewGroup, Notification, Service, TaskInstance};
