//! The kernel/user contract of vrrp-xdp.
//!
//! Everything the XDP program and the agent must agree on lives here, `#![no_std]`, with a
//! size assertion for every type that crosses the boundary.
#![no_std]

pub mod event;
pub mod maps;
pub mod respond;
pub mod verdict;
pub mod wire;
