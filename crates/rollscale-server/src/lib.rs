//! rollscale's HTTP surface.
pub mod rpc;
