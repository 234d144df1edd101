//! The sans-IO protocol core: no sockets, no clock, no tokio. Time is passed in.

pub mod advert;
pub mod types;

pub use advert::{Advert, Auth};
pub use types::{Centisecs, Family, Priority, Version, Vrid};
