//! The kernel/user contract of vrrp-xdp.
//!
//! Everything the XDP program and the agent must agree on lives here, `#![no_std]`, with a
//! size assertion for every type that crosses the boundary.
#![no_std]

// The host model of the data plane (`xdp::host`) keeps its maps and records in `Vec`s.
#[cfg(any(test, feature = "host"))]
extern crate std;

pub mod event;
pub mod maps;
pub mod respond;
pub mod verdict;
pub mod wire;
pub mod xdp;
