//! The sans-IO protocol core: no sockets, no clock, no tokio. Time is passed in.

pub mod advert;
pub mod codec;
pub mod sync;
pub mod types;
pub mod vr;

pub use advert::{Advert, Auth};
pub use types::{Centisecs, Family, Priority, Version, Vrid};
