//! vrrp-agent: the user-space half of vrrp-xdp.

pub mod proto;
