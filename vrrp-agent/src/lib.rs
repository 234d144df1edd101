//! vrrp-agent: the user-space half of vrrp-xdp.

pub mod cli;
pub mod config;
pub mod control;
pub mod driver;
pub mod io;
pub mod notify;
pub mod proto;
pub mod security;
pub mod track;
pub mod wake;
