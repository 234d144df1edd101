//! Instants in serialized data (transcript files): milliseconds since an epoch that the
//! reader or writer sets for its thread. The agent itself never serializes an `Instant`.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    static EPOCH: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Instants on this thread (de)serialize as milliseconds since `epoch` from now on.
pub fn set_epoch(epoch: Instant) {
    EPOCH.with(|e| e.set(Some(epoch)));
}

/// `#[serde(with = "clock::ms")]` for an `Instant` field.
pub mod ms {
    use super::*;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser};

    pub fn serialize<S: Serializer>(t: &Instant, s: S) -> Result<S::Ok, S::Error> {
        let epoch = EPOCH
            .with(Cell::get)
            .ok_or_else(|| ser::Error::custom("no clock epoch set for this thread"))?;
        let ms = t.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        ms.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Instant, D::Error> {
        let ms = f64::deserialize(d)?;
        let epoch = EPOCH
            .with(Cell::get)
            .ok_or_else(|| de::Error::custom("no clock epoch set for this thread"))?;
        if !(ms.is_finite() && ms >= 0.0) {
            return Err(de::Error::custom(format!("{ms} ms is not a time")));
        }
        Ok(epoch + Duration::from_secs_f64(ms / 1000.0))
    }
}

/// The fake clock's one real reading, for unit tests: everything else is this plus a Duration.
#[cfg(test)]
#[expect(clippy::disallowed_methods, reason = "the base of the fake clock")]
pub(crate) fn test_epoch() -> Instant {
    Instant::now()
}
