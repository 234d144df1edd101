//! The sans-IO protocol core: no sockets, no clock, no tokio. Time is passed in.

pub mod advert;
pub mod auth_hmac;
pub mod clock;
pub mod codec;
mod display;
pub mod node;
pub mod sync;
pub mod types;
pub mod vr;

pub use advert::{Advert, Auth};
pub use types::{Centisecs, Family, MacDisplay, Priority, Version, VipSpec, Vrid};
