//! The thin I/O shell: sockets, netlink, announcements, the XDP loader.

pub mod announce;
pub mod guardian;
pub mod kfilter;
pub mod netlink;
pub mod sched;
pub mod socket;
pub mod ticker;
pub mod xdp;
