//! `auth_hmac`: the VRRP authentication trailer of keepalived 2.4 (draft-cassen-vrrp-auth-hmac),
//! sans-IO. Implemented as keepalived 2.4.3 does it (`keepalived/vrrp/vrrp_auth_hmac.c`), so
//! the two interoperate:
//!
//! - a 28-byte trailer follows the VRRP message (after the VIPs, and the v2 auth data):
//!   `ext_type` (1 = HMAC-SHA256 truncated to 128 bits), `key_id`, 2 reserved bytes (zero),
//!   a 64-bit sequence (UTC seconds in 32 bits, a 1/2^16 s fraction in 16, a counter in 16),
//!   then the 16-byte truncated HMAC;
//! - the HMAC covers a 20-byte pseudo header (4 or 6, the VRRP version, the VRID, a zero, the
//!   sender's address zero-padded to 16 bytes), then the VRRP message with its checksum field
//!   read as zero, then the trailer up to the HMAC, then 16 zero bytes (the HMAC field);
//! - the checksum: over IPv4 the VRRP checksum covers the message only (not the trailer); over
//!   IPv6 it covers the whole payload, trailer included, as the kernel's `IPV6_CHECKSUM` does
//!   on keepalived's socket ([`seal`] and the codec's decode do the same);
//! - anti-replay: `time` (the default) refuses a sequence whose seconds are more than
//!   `time_window` away from our clock, then, like `monotonic`, one that does not grow
//!   (RFC 1982 serial arithmetic) past the last accepted from that sender. Unicast senders are
//!   anchored on their configured peer; multicast ones in 4 slots, least recently used evicted
//!   (only after the HMAC verified, so forged sources cannot churn them);
//! - modes: `enforce` (a trailer is required), `permissive` (signs, accepts trailerless
//!   adverts), `receive-only` (verifies a trailer when present, sends none).
//!
//! The clock is passed in ([`WallTime`], CLOCK_REALTIME as keepalived reads it): nothing here
//! reads one.

use std::collections::BTreeMap;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::types::{Family, Version, Vrid};

/// `ext_type` 1: HMAC-SHA256 truncated to 128 bits.
pub const EXT_TYPE_SHA256: u8 = 1;
/// The truncated HMAC's length.
pub const HMAC_LEN: usize = 16;
/// The whole trailer.
pub const TRAILER_LEN: usize = 28;
/// The trailer before the HMAC (type, key id, reserved, sequence).
const PREFIX_LEN: usize = TRAILER_LEN - HMAC_LEN;
/// Key lengths keepalived accepts (bytes).
pub const KEY_MIN: usize = 32;
pub const KEY_MAX: usize = 64;
/// `time_window` bounds, and the floor of the one derived from the advert interval (seconds).
pub const WINDOW_MIN: u32 = 1;
pub const WINDOW_MAX: u32 = 300;
pub const WINDOW_FLOOR: u32 = 5;
/// Multicast senders remembered per instance.
pub const MCAST_SENDERS: usize = 4;
/// The VRRP checksum field's offset (v2 and v3).
const CHECKSUM_OFFSET: usize = 6;

/// Sender and receiver behaviour (`mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Mode {
    /// Verifies a present trailer, sends none (a group gains verification before anyone signs).
    ReceiveOnly,
    /// Signs, and still accepts trailerless adverts.
    Permissive,
    /// Signs, and requires a valid trailer.
    Enforce,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReceiveOnly => "receive-only",
            Self::Permissive => "permissive",
            Self::Enforce => "enforce",
        }
    }
}

/// `anti_replay`: `time` enforces the freshness window, `monotonic` only strict growth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum AntiReplay {
    Time,
    Monotonic,
}

/// An instance's `auth_hmac` block, validated (the active key exists, lengths in range).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct HmacConfig {
    /// Key id (1..=255) to key bytes (32..=64).
    pub keys: BTreeMap<u8, Vec<u8>>,
    pub active_key: u8,
    pub mode: Mode,
    pub anti_replay: AntiReplay,
    /// Seconds; with `time` either configured or derived by [`derived_window`].
    pub time_window: u32,
}

impl std::fmt::Debug for HmacConfig {
    // Key bytes are secrets: never in logs or status.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HmacConfig")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active_key", &self.active_key)
            .field("mode", &self.mode)
            .field("anti_replay", &self.anti_replay)
            .field("time_window", &self.time_window)
            .finish()
    }
}

/// keepalived's window when `time_window` is not set: 3 advert intervals in whole seconds,
/// clamped to 5..=300.
pub fn derived_window(advert_int_centisecs: u32) -> u32 {
    (3 * (advert_int_centisecs / 100)).clamp(WINDOW_FLOOR, WINDOW_MAX)
}

/// CLOCK_REALTIME: seconds and nanoseconds since the Unix epoch.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct WallTime {
    pub secs: u64,
    pub nanos: u32,
}

impl WallTime {
    /// The sequence keepalived's `clock_seq` makes of it: seconds (mod 2^32) in the high 32
    /// bits, the 1/2^16 s fraction in the next 16, the counter cleared.
    fn seq(self) -> u64 {
        let subsec = (u64::from(self.nanos) << 16) / 1_000_000_000;
        (u64::from(self.secs as u32) << 32) | (subsec << 16)
    }

    /// The seconds as keepalived compares them (mod 2^32).
    fn secs32(self) -> u32 {
        self.secs as u32
    }
}

/// The trailer's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Trailer {
    pub ext_type: u8,
    pub key_id: u8,
    pub reserved: u16,
    /// seconds << 32 | fraction << 16 | counter.
    pub seq: u64,
    pub hmac: [u8; HMAC_LEN],
}

impl Trailer {
    pub fn parse(b: &[u8; TRAILER_LEN]) -> Self {
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&b[4..12]);
        let mut hmac = [0u8; HMAC_LEN];
        hmac.copy_from_slice(&b[PREFIX_LEN..]);
        Self {
            ext_type: b[0],
            key_id: b[1],
            reserved: u16::from_be_bytes([b[2], b[3]]),
            seq: u64::from_be_bytes(seq),
            hmac,
        }
    }

    pub fn emit(&self) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0] = self.ext_type;
        b[1] = self.key_id;
        b[2..4].copy_from_slice(&self.reserved.to_be_bytes());
        b[4..12].copy_from_slice(&self.seq.to_be_bytes());
        b[PREFIX_LEN..].copy_from_slice(&self.hmac);
        b
    }

    fn prefix(&self) -> [u8; PREFIX_LEN] {
        let b = self.emit();
        let mut p = [0u8; PREFIX_LEN];
        p.copy_from_slice(&b[..PREFIX_LEN]);
        p
    }

    fn secs(&self) -> u32 {
        (self.seq >> 32) as u32
    }
}

/// The 20-byte pseudo header bound into the HMAC (the IP header itself is not).
fn pseudo(family: Family, version: Version, vrid: Vrid, src: IpAddr) -> [u8; 20] {
    let mut out = [0u8; 20];
    out[0] = if family == Family::V6 { 6 } else { 4 };
    out[1] = version.number();
    out[2] = vrid.get();
    match src {
        IpAddr::V4(a) => out[4..8].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out[4..20].copy_from_slice(&a.octets()),
    }
    out
}

/// The keyed MAC over the draft's input, before truncation. `pdu` is the VRRP message (no
/// trailer); its checksum field is read as zero.
fn mac(
    key: &[u8],
    header: &[u8; 20],
    pdu: &[u8],
    prefix: &[u8; PREFIX_LEN],
) -> Option<Hmac<Sha256>> {
    // HMAC (RFC 2104) accepts any key length: longer than the block is hashed first, as
    // keepalived's manual construction does.
    let mut m = Hmac::<Sha256>::new_from_slice(key).ok()?;
    m.update(header);
    let (head, rest) = pdu.split_at(CHECKSUM_OFFSET.min(pdu.len()));
    m.update(head);
    m.update(&[0, 0]);
    m.update(rest.get(2..).unwrap_or(&[]));
    m.update(prefix);
    m.update(&[0u8; HMAC_LEN]);
    Some(m)
}

/// The truncated HMAC keepalived would put in a trailer with `prefix` after `pdu`.
pub fn digest(
    key: &[u8],
    family: Family,
    version: Version,
    vrid: Vrid,
    src: IpAddr,
    pdu: &[u8],
    trailer: &Trailer,
) -> [u8; HMAC_LEN] {
    let mut out = [0u8; HMAC_LEN];
    if let Some(m) = mac(
        key,
        &pseudo(family, version, vrid, src),
        pdu,
        &trailer.prefix(),
    ) {
        out.copy_from_slice(&m.finalize().into_bytes()[..HMAC_LEN]);
    }
    out
}

/// Why a received advert was refused, one per keepalived counter (`auth_ext_*`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, thiserror::Error,
)]
pub enum Reject {
    /// `enforce` and no trailer.
    #[error("missing authentication trailer")]
    Missing,
    /// Unknown `ext_type` or a non-zero reserved field.
    #[error("malformed authentication trailer")]
    Malformed,
    #[error("unknown authentication key id {key_id}")]
    UnknownKey { key_id: u8 },
    #[error("invalid authentication HMAC")]
    BadHmac,
    /// `time`: the sender's clock (or a capture's age) is outside the window.
    #[error("stale authentication trailer, clock skew {skew} s exceeds window {window} s")]
    Stale { skew: i32, window: u32 },
    /// The sequence did not grow past the last one accepted from that sender.
    #[error("replayed authentication trailer")]
    Replay,
    /// Unicast: the sender is not a configured peer (no replay state to anchor it on).
    #[error("unicast source is not a unicast peer")]
    NotAPeer,
    /// A trailer reached an instance without `auth_hmac` (keepalived: "packet too long").
    #[error("authentication trailer on an instance without auth_hmac")]
    Unexpected,
}

impl Reject {
    /// A stable label for counters and metrics.
    pub const fn kind(self) -> &'static str {
        match self {
            Self::Missing => "hmac_missing",
            Self::Malformed => "hmac_malformed",
            Self::UnknownKey { .. } => "hmac_unknown_key",
            Self::BadHmac => "hmac_invalid",
            Self::Stale { .. } => "hmac_stale",
            Self::Replay => "hmac_replay",
            Self::NotAPeer => "hmac_not_a_peer",
            Self::Unexpected => "hmac_unexpected",
        }
    }

    pub const KINDS: [&'static str; 8] = [
        "hmac_missing",
        "hmac_malformed",
        "hmac_unknown_key",
        "hmac_invalid",
        "hmac_stale",
        "hmac_replay",
        "hmac_not_a_peer",
        "hmac_unexpected",
    ];
}

/// What a verified advert carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verified {
    /// A valid trailer; `skew` is our seconds minus the sender's (with `time`).
    Signed { key_id: u8, skew: Option<i32> },
    /// No trailer, accepted by `permissive` / `receive-only`.
    Unsigned,
}

/// RFC 1982 serial arithmetic over the 64-bit sequence.
fn seq_after(a: u64, b: u64) -> bool {
    (a.wrapping_sub(b) as i64) > 0
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ReplayMark {
    valid: bool,
    seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct McastSlot {
    addr: IpAddr,
    mark: ReplayMark,
    /// LRU rank, 0 = empty.
    last_used: u32,
}

/// One instance's signing and verification state.
#[derive(Clone, Debug)]
pub struct HmacState {
    cfg: HmacConfig,
    family: Family,
    version: Version,
    vrid: Vrid,
    send_seq: u64,
    lru_clock: u32,
    mcast: [Option<McastSlot>; MCAST_SENDERS],
    unicast: BTreeMap<IpAddr, ReplayMark>,
}

impl HmacState {
    pub fn new(cfg: HmacConfig, family: Family, version: Version, vrid: Vrid) -> Self {
        Self {
            cfg,
            family,
            version,
            vrid,
            send_seq: 0,
            lru_clock: 0,
            mcast: [None; MCAST_SENDERS],
            unicast: BTreeMap::new(),
        }
    }

    pub fn config(&self) -> &HmacConfig {
        &self.cfg
    }

    /// A reload with a changed block (a new `active_key`, keys, mode): the replay marks and
    /// the send sequence stay, so neither side sees a replay or a gap.
    pub fn reconfigure(&mut self, cfg: HmacConfig) {
        self.cfg = cfg;
    }

    /// Whether adverts carry a trailer (every mode but `receive-only`).
    pub fn signs(&self) -> bool {
        self.cfg.mode != Mode::ReceiveOnly
    }

    /// keepalived's `next_seq`: the clock, or the last value plus one when the clock has not
    /// moved past it; with `time`, a sequence stranded more than the window ahead (a clock
    /// stepped back) restarts from the clock.
    fn next_seq(&mut self, wall: WallTime) -> u64 {
        let clk = wall.seq();
        if seq_after(clk, self.send_seq) {
            self.send_seq = clk;
            return clk;
        }
        let ahead = ((self.send_seq >> 32) as u32).wrapping_sub((clk >> 32) as u32) as i32;
        if self.cfg.anti_replay == AntiReplay::Time
            && i64::from(ahead) > i64::from(self.cfg.time_window)
        {
            self.send_seq = clk;
        } else {
            self.send_seq = self.send_seq.wrapping_add(1);
        }
        self.send_seq
    }

    /// The trailer for `pdu` (the VRRP message, checksum field anything) sent from `src`, or
    /// `None` in `receive-only`. One per logical advert: copies to several unicast peers carry
    /// the same trailer (the destination is not bound).
    pub fn sign(&mut self, wall: WallTime, src: IpAddr, pdu: &[u8]) -> Option<[u8; TRAILER_LEN]> {
        if !self.signs() {
            return None;
        }
        let seq = self.next_seq(wall);
        let mut t = Trailer {
            ext_type: EXT_TYPE_SHA256,
            key_id: self.cfg.active_key,
            reserved: 0,
            seq,
            hmac: [0; HMAC_LEN],
        };
        // The config guarantees the active key; without it keepalived sends a zero HMAC,
        // which every receiver refuses.
        if let Some(key) = self.cfg.keys.get(&self.cfg.active_key) {
            t.hmac = digest(key, self.family, self.version, self.vrid, src, pdu, &t);
        }
        Some(t.emit())
    }

    /// Verifies a received advert from `src` (`pdu` the VRRP message without the trailer)
    /// in keepalived's order: trailer fields, freshness (before the costly HMAC, and without
    /// trusting it), key, HMAC (constant time), then the sender's replay mark (moved only by
    /// verified data). `unicast_peers`: the instance's peers when it runs unicast.
    pub fn verify(
        &mut self,
        wall: WallTime,
        src: IpAddr,
        pdu: &[u8],
        trailer: Option<&[u8; TRAILER_LEN]>,
        unicast_peers: Option<&[IpAddr]>,
    ) -> Result<Verified, Reject> {
        let Some(raw) = trailer else {
            return if self.cfg.mode == Mode::Enforce {
                Err(Reject::Missing)
            } else {
                Ok(Verified::Unsigned)
            };
        };
        if let Some(peers) = unicast_peers
            && !peers.contains(&src)
        {
            return Err(Reject::NotAPeer);
        }
        let t = Trailer::parse(raw);
        if t.ext_type != EXT_TYPE_SHA256 || t.reserved != 0 {
            return Err(Reject::Malformed);
        }
        let mut skew = None;
        if self.cfg.anti_replay == AntiReplay::Time {
            let delta = wall.secs32().wrapping_sub(t.secs()) as i32;
            skew = Some(delta);
            if i64::from(delta).abs() > i64::from(self.cfg.time_window) {
                return Err(Reject::Stale {
                    skew: delta,
                    window: self.cfg.time_window,
                });
            }
        }
        let key = self
            .cfg
            .keys
            .get(&t.key_id)
            .ok_or(Reject::UnknownKey { key_id: t.key_id })?;
        let m = mac(
            key,
            &pseudo(self.family, self.version, self.vrid, src),
            pdu,
            &t.prefix(),
        )
        .ok_or(Reject::BadHmac)?;
        // Constant-time comparison of the leftmost 16 bytes.
        m.verify_truncated_left(&t.hmac)
            .map_err(|_| Reject::BadHmac)?;
        let time = self.cfg.anti_replay == AntiReplay::Time;
        let window = self.cfg.time_window;
        let mark = match unicast_peers {
            Some(_) => self.unicast.entry(src).or_default(),
            None => self.mcast_mark(src),
        };
        if !replay_ok(mark, t.seq, time.then_some((wall, window))) {
            return Err(Reject::Replay);
        }
        Ok(Verified::Signed {
            key_id: t.key_id,
            skew,
        })
    }

    fn next_lru(&mut self) -> u32 {
        self.lru_clock = self.lru_clock.wrapping_add(1);
        if self.lru_clock == 0 {
            self.lru_clock = 1;
        }
        self.lru_clock
    }

    /// The multicast sender's slot: found, or the least recently used one taken over.
    fn mcast_mark(&mut self, src: IpAddr) -> &mut ReplayMark {
        let rank = self.next_lru();
        let pos = match self
            .mcast
            .iter()
            .position(|s| s.is_some_and(|s| s.addr == src))
        {
            Some(p) => p,
            None => {
                let victim = self
                    .mcast
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| s.map_or(0, |s| s.last_used))
                    .map_or(0, |(i, _)| i);
                self.mcast[victim] = Some(McastSlot {
                    addr: src,
                    mark: ReplayMark::default(),
                    last_used: 0,
                });
                victim
            }
        };
        let slot = self.mcast[pos].get_or_insert(McastSlot {
            addr: src,
            mark: ReplayMark::default(),
            last_used: 0,
        });
        slot.last_used = rank;
        &mut slot.mark
    }
}

/// keepalived's `replay_ok`: with `time`, a mark older than the window no longer orders
/// anything (it recovers a sender reset after a clock step); then strict growth.
fn replay_ok(mark: &mut ReplayMark, seq: u64, time: Option<(WallTime, u32)>) -> bool {
    if let Some((wall, window)) = time
        && mark.valid
    {
        let age = wall.secs32().wrapping_sub((mark.seq >> 32) as u32) as i32;
        if i64::from(age).abs() > i64::from(window) {
            mark.valid = false;
        }
    }
    if mark.valid && !seq_after(seq, mark.seq) {
        return false;
    }
    mark.valid = true;
    mark.seq = seq;
    true
}

/// Decodes a key value as keepalived does: `hex:` then hex digit pairs (spaces and tabs
/// between them are skipped, a lone digit is one byte), otherwise the ASCII bytes themselves.
pub fn decode_key(s: &str) -> Result<Vec<u8>, String> {
    let Some(hex) = s.strip_prefix("hex:") else {
        return Ok(s.as_bytes().to_vec());
    };
    let digit = |c: u8| -> Result<u8, String> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or_else(|| format!("'{}' is not a hex digit", c as char))
    };
    let b = hex.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        let hi = digit(b[i])?;
        i += 1;
        if i < b.len() && b[i] != b' ' && b[i] != b'\t' {
            out.push((hi << 4) | digit(b[i])?);
            i += 1;
        } else {
            out.push(hi);
        }
    }
    Ok(out)
}

/// The contents of a `file:` key as keepalived reads them: trailing CR/LF removed, then
/// [`decode_key`]. keepalived reads at most 4 + 2 × 64 + 8 bytes.
pub fn decode_key_file(contents: &[u8]) -> Result<Vec<u8>, String> {
    if contents.len() > 4 + 2 * KEY_MAX + 8 - 1 {
        return Err("is too large".into());
    }
    let mut end = contents.len();
    while end > 0 && matches!(contents[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    let s = std::str::from_utf8(&contents[..end]).map_err(|_| "is not text".to_string())?;
    decode_key(s)
}

/// Appends `trailer` to the VRRP message in `msg` (encoded by the codec from `src` to `dst`)
/// and, over IPv6, recomputes the checksum over the whole payload as the kernel's
/// `IPV6_CHECKSUM` does on keepalived's socket. Over IPv4 the checksum stays the message's.
pub fn seal(
    msg: &mut Vec<u8>,
    pdu_len: usize,
    trailer: &[u8; TRAILER_LEN],
    src: IpAddr,
    dst: IpAddr,
) {
    msg.truncate(pdu_len);
    msg.extend_from_slice(trailer);
    if let (IpAddr::V6(_), IpAddr::V6(_)) = (src, dst) {
        super::codec::rechecksum_v6(msg, src, dst);
    }
}

#[cfg(test)]
mod tests;
