//! The Alibaba Cloud RPC API: request parsing, signatures, actions.
pub mod request;
pub mod sign;
