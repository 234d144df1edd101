//! The virtual-router state machine (owned by the state machine work).
