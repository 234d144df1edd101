//! vrrp-agent: the user-space half of vrrp-xdp.

pub mod config;
pub mod daemon;
pub mod io;
pub mod proto;
