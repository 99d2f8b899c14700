//! The HAProxy load balancer driver (in progress).
