//! VRRP codec (owned by the codec work).
