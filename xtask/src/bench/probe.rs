//! The client's view of a VIP: one ARP who-has (IPv4) or Neighbor Solicitation (IPv6) every
//! millisecond from a client namespace, and who answered each one. The benchmarks probe one
//! IPv4 VIP; the soak (`xtask soak`) runs one prober per VIP.
//!
//! Each probe carries sender IP 192.0.2.(100 + seq % M); a reply is addressed to that IP, so
//! it names the probe it answers (replies come back well within M probe periods, the reuse
//! period). Every sender IP costs a neighbour entry in the answering kernel, and the kernel
//! drops its ARP reply when the (machine-wide) neighbour table is full, so M stays small.
//! Send times come from a periodic timerfd (absolute deadlines, no sleep drift); a probe's
//! time is taken just before it is sent, and every figure is computed from send times, so a
//! receiver thread delayed by load does not shift them.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use vrrp_tests::{Host, parse_mac};

use super::{VIP_OCTETS, arp_request, csum, ifindex, packet_receiver, packet_socket, sll};

/// Probe sender IPs cycle through 192.0.2.100 ..= 192.0.2.(100 + M - 1) (IPv6:
/// 2001:db8::100 ..), M <= 100.
const SEQ_BASE: u8 = 100;

/// What a prober asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// ARP who-has; the reply's sender MAC is the answerer.
    V4([u8; 4]),
    /// Neighbor Solicitation; the advertisement's Ethernet source is the answerer.
    V6([u8; 16]),
}

impl Target {
    pub fn parse(ip: &str) -> Result<Self> {
        Ok(match ip.parse::<std::net::IpAddr>()? {
            std::net::IpAddr::V4(a) => Self::V4(a.octets()),
            std::net::IpAddr::V6(a) => Self::V6(a.octets()),
        })
    }

    fn ethertype(self) -> u16 {
        match self {
            Self::V4(_) => 0x0806,
            Self::V6(_) => 0x86dd,
        }
    }

    /// The probe with residue `k`.
    fn frame(self, mac: [u8; 6], k: u8) -> Vec<u8> {
        match self {
            Self::V4(vip) => arp_request(mac, [192, 0, 2, SEQ_BASE + k], vip),
            Self::V6(vip) => neighbor_solicitation(mac, probe_ip6(k), vip),
        }
    }

    /// The residue a reply in `buf` answers and its answerer, if it is a reply to us.
    fn reply(self, buf: &[u8], client_mac: [u8; 6]) -> Option<(u8, [u8; 6])> {
        let mut who = [0u8; 6];
        match self {
            // An ARP reply from the VIP to this client (gratuitous ARP is addressed elsewhere).
            Self::V4(vip) => {
                if buf.len() < 42
                    || buf[20..22] != [0, 2]
                    || buf[28..32] != vip
                    || buf[32..38] != client_mac
                    || buf[38..41] != [192, 0, 2]
                {
                    return None;
                }
                who.copy_from_slice(&buf[22..28]);
                Some((buf[41].wrapping_sub(SEQ_BASE), who))
            }
            // ICMPv6 type 136 for the VIP, to one of our probe addresses.
            Self::V6(vip) => {
                if buf.len() < 78
                    || buf[0..6] != client_mac
                    || buf[20] != 58
                    || buf[54] != 136
                    || buf[62..78] != vip
                    || buf[38..53] != probe_ip6(0)[..15]
                {
                    return None;
                }
                who.copy_from_slice(&buf[6..12]);
                Some((buf[53].wrapping_sub(SEQ_BASE), who))
            }
        }
    }
}

/// The IPv6 probe source of residue `k`: 2001:db8::(100 + k) (hex digits, as for IPv4).
fn probe_ip6(k: u8) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    a[15] = SEQ_BASE + k;
    a
}

/// A Neighbor Solicitation for `target` from `src`, to its solicited-node multicast group,
/// with the source link-layer option (so the answerer needs no solicitation of its own).
fn neighbor_solicitation(mac: [u8; 6], src: [u8; 16], target: [u8; 16]) -> Vec<u8> {
    let mut dst = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
    dst[13..].copy_from_slice(&target[13..]);
    let mut icmp = vec![135u8, 0, 0, 0, 0, 0, 0, 0];
    icmp.extend_from_slice(&target);
    icmp.extend_from_slice(&[1, 1]);
    icmp.extend_from_slice(&mac);
    // Checksum over the pseudo-header (src, dst, length, next header 58) and the message.
    let mut pseudo = Vec::with_capacity(40 + icmp.len());
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&(icmp.len() as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 58]);
    pseudo.extend_from_slice(&icmp);
    let c = csum(&pseudo, 0);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::with_capacity(54 + icmp.len());
    f.extend_from_slice(&[0x33, 0x33, dst[12], dst[13], dst[14], dst[15]]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&0x86ddu16.to_be_bytes());
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[58, 255]);
    f.extend_from_slice(&src);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&icmp);
    f
}

/// Everything the prober saw so far.
#[derive(Default)]
pub struct ProbeLog {
    /// Send time of probe `seq` (the index).
    pub sent: Vec<Instant>,
    /// Bit `i` set: the MAC `macs[i]` answered probe `seq`.
    pub answered: Vec<u32>,
    /// Replier MACs in order of first appearance (at most 32 are told apart).
    pub macs: Vec<[u8; 6]>,
    /// Replies that matched no probe (outside the sequence range).
    pub unmatched: u64,
}

impl ProbeLog {
    /// The answer bit of `mac`, 0 if it never answered.
    pub fn bit(&self, mac: [u8; 6]) -> u32 {
        self.macs
            .iter()
            .position(|m| *m == mac)
            .map(|i| 1u32 << i)
            .unwrap_or(0)
    }

    /// The first probe sent at or after `t`.
    pub fn seq_at(&self, t: Instant) -> usize {
        self.sent.partition_point(|s| *s < t)
    }
}

pub struct Prober {
    pub log: Arc<Mutex<ProbeLog>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Result<()>>>,
}

/// Real-time priority for the calling thread (best effort): the prober is the measuring
/// instrument, it must not be starved by the load it measures (CPU hog, flood, other work).
fn realtime() {
    let p = libc::sched_param { sched_priority: 50 };
    // SAFETY: p is valid; pid 0 is the calling thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &p) };
}

/// Starts a thread that has entered network namespace `ns` (like `in_netns`, but not joined).
pub fn spawn_in_netns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> JoinHandle<Result<T>> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || -> Result<T> {
        let file = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .with_context(|| format!("entering {path}"))?;
        f()
    })
}

impl Prober {
    /// Starts probing `VIP` from `client` every `period`, with `residues` sender IPs.
    pub fn start(client: &Host, period: Duration, residues: u8) -> Result<Self> {
        Self::start_target(client, period, residues, Target::V4(VIP_OCTETS))
    }

    /// Starts probing `target` from `client` every `period`, with `residues` sender IPs.
    pub fn start_target(
        client: &Host,
        period: Duration,
        residues: u8,
        target: Target,
    ) -> Result<Self> {
        let mac = parse_mac(&client.mac)?;
        let m = u64::from(residues.clamp(1, 100));
        let frames: Vec<Vec<u8>> = (0..m).map(|i| target.frame(mac, i as u8)).collect();
        let log = Arc::new(Mutex::new(ProbeLog::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let ready = Arc::new(AtomicBool::new(false));
        let rx = {
            let (log, stop, ready, ifn) = (
                log.clone(),
                stop.clone(),
                ready.clone(),
                client.ifname.clone(),
            );
            spawn_in_netns(&client.ns, move || {
                receive(&ifn, target, mac, m, &log, &stop, &ready)
            })
        };
        let t = Instant::now();
        while !ready.load(Ordering::SeqCst) {
            if rx.is_finished() || t.elapsed() > Duration::from_secs(5) {
                stop.store(true, Ordering::SeqCst);
                return match rx.join() {
                    Ok(Err(e)) => Err(e.context("prober receiver")),
                    _ => bail!("prober receiver did not start"),
                };
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let tx = {
            let (log, stop, ifn) = (log.clone(), stop.clone(), client.ifname.clone());
            spawn_in_netns(&client.ns, move || {
                send(&ifn, target.ethertype(), &frames, period, &log, &stop)
            })
        };
        Ok(Self {
            log,
            stop,
            threads: vec![rx, tx],
        })
    }

    /// Stops both threads; the first error either hit.
    pub fn stop(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::SeqCst);
        let mut r = Ok(());
        for t in self.threads.drain(..) {
            match t.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => r = r.and(Err(e)),
                Err(_) => r = r.and(Err(anyhow::anyhow!("prober thread panicked"))),
            }
        }
        r
    }

    /// Whether a prober thread ended (it only does on an error or `stop`).
    pub fn failed(&self) -> bool {
        self.threads.iter().any(|t| t.is_finished())
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn send(
    ifname: &str,
    ethertype: u16,
    frames: &[Vec<u8>],
    period: Duration,
    log: &Mutex<ProbeLog>,
    stop: &AtomicBool,
) -> Result<()> {
    realtime();
    let idx = ifindex(ifname)?;
    let fd = packet_socket(0)?;
    let addr = sll(idx, ethertype);
    // SAFETY: plain timerfd_create; checked below.
    let tfd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    if tfd < 0 {
        bail!("timerfd_create: {}", std::io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    let tfd = unsafe { OwnedFd::from_raw_fd(tfd) };
    let ts = libc::timespec {
        tv_sec: period.as_secs() as i64,
        tv_nsec: period.subsec_nanos() as i64,
    };
    // A periodic timer: the kernel keeps the deadlines, so late wake-ups do not accumulate.
    let spec = libc::itimerspec {
        it_interval: ts,
        it_value: ts,
    };
    // SAFETY: spec is valid for the call.
    if unsafe { libc::timerfd_settime(tfd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
        bail!("timerfd_settime: {}", std::io::Error::last_os_error());
    }
    let mut seq: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        let mut expirations = 0u64;
        // SAFETY: an 8-byte buffer, as timerfd reads require.
        let r = unsafe {
            libc::read(
                tfd.as_raw_fd(),
                (&raw mut expirations).cast(),
                std::mem::size_of::<u64>(),
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            bail!("timerfd read: {e}");
        }
        let f = &frames[(seq % frames.len() as u64) as usize];
        {
            // Recorded before the send, so a reply can never arrive before its probe is known.
            let mut l = log
                .lock()
                .map_err(|_| anyhow::anyhow!("probe log poisoned"))?;
            l.sent.push(Instant::now());
            l.answered.push(0);
        }
        // SAFETY: buffer and address are valid for the call.
        let r = unsafe {
            libc::sendto(
                fd.as_raw_fd(),
                f.as_ptr().cast(),
                f.len(),
                0,
                (&raw const addr).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            // A full queue loses this probe (it stays unanswered, which is what a client sees).
            if !matches!(e.raw_os_error(), Some(libc::ENOBUFS) | Some(libc::EAGAIN)) {
                bail!("sendto on {ifname}: {e}");
            }
        }
        seq += 1;
    }
    Ok(())
}

fn receive(
    ifname: &str,
    target: Target,
    client_mac: [u8; 6],
    m: u64,
    log: &Mutex<ProbeLog>,
    stop: &AtomicBool,
    ready: &AtomicBool,
) -> Result<()> {
    realtime();
    let fd = packet_receiver(ifname, target.ethertype(), 4 << 20, 50_000)?;
    ready.store(true, Ordering::SeqCst);
    let mut buf = [0u8; 128];
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: buf is valid for its length.
        let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if r < 42 {
            continue;
        }
        let Some((k, sha)) = target.reply(&buf[..r as usize], client_mac) else {
            continue;
        };
        let k = u64::from(k);
        let mut l = log
            .lock()
            .map_err(|_| anyhow::anyhow!("probe log poisoned"))?;
        if k >= m || l.sent.is_empty() {
            l.unmatched += 1;
            continue;
        }
        // The latest probe sent with this residue.
        let last = l.sent.len() as u64 - 1;
        let back = (last % m + m - k) % m;
        let Some(seq) = last.checked_sub(back) else {
            l.unmatched += 1;
            continue;
        };
        let bit = match l.macs.iter().position(|m| *m == sha) {
            Some(i) => 1u32 << i,
            None if l.macs.len() < 32 => {
                l.macs.push(sha);
                1u32 << (l.macs.len() - 1)
            }
            None => 0,
        };
        l.answered[seq as usize] |= bit;
    }
    Ok(())
}

/// What the client saw around a fault at `t0`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Sample {
    /// From the fault to the first probe the new owner answered (None: not within the window).
    pub takeover_ms: Option<f64>,
    /// The longest time without any answered probe, from 20 probes before the fault to the end
    /// of the window: between the last answered probe before and the first after, minus one
    /// probe period (0 when every probe was answered).
    pub gap_ms: f64,
    /// The gap ran to the end of the window (a lower bound).
    pub gap_censored: bool,
    /// The last probe after the fault the old owner answered (None: none after the fault).
    pub old_answered_ms: Option<f64>,
    /// The old owner still answered at the end of the window.
    pub old_censored: bool,
    /// Probes sent in the window.
    pub probes: usize,
    /// Probes answered by both owners in the window.
    pub both: usize,
    /// The window's length.
    pub window_ms: f64,
    /// Probes before the fault (over the load's lead time, or 20 probes) that the new owner
    /// already answered: a split brain before anything failed.
    pub new_before_fault: usize,
    /// Who answered each probe from 20 before the fault to the window's end, run-length
    /// coded: `o` old owner, `n` new owner, `b` both, `x` someone else, `.` nobody; `|` marks
    /// the fault, `~N` a pause of N ms in the probe stream (the prober starved).
    pub timeline: String,
    /// The longest pause in the probe stream over the window beyond one period: the prober
    /// (real-time priority) was held off, so the whole machine probably was (noise).
    pub probe_stall_ms: f64,
    /// How long putting the original master back took after the window (restart included).
    pub restore_ms: f64,
}

pub fn analyse(
    log: &ProbeLog,
    t0: Instant,
    before: Duration,
    window: Duration,
    old_mac: [u8; 6],
    new_mac: [u8; 6],
    period: Duration,
) -> Sample {
    let ms = |t: Instant| t.saturating_duration_since(t0).as_secs_f64() * 1e3;
    let (old, new) = (log.bit(old_mac), log.bit(new_mac));
    let s0 = log.seq_at(t0);
    let end = log.seq_at(t0 + window);
    let pre = s0.saturating_sub(20);
    let early = t0
        .checked_sub(before)
        .map(|t| log.seq_at(t))
        .unwrap_or(0)
        .min(pre);
    let mut s = Sample {
        probes: end.saturating_sub(s0),
        window_ms: window.as_secs_f64() * 1e3,
        ..Sample::default()
    };
    s.timeline = timeline(log, early, s0, end, old, new, period);
    s.new_before_fault = (early..s0).filter(|&i| log.answered[i] & new != 0).count();
    s.probe_stall_ms = (s0.max(1)..end)
        .map(|i| {
            (log.sent[i] - log.sent[i - 1])
                .saturating_sub(period)
                .as_secs_f64()
                * 1e3
        })
        .fold(0.0, f64::max);
    s.takeover_ms = (s0..end)
        .find(|&i| log.answered[i] & new != 0)
        .map(|i| ms(log.sent[i]));
    if let Some(i) = (s0..end).rev().find(|&i| log.answered[i] & old != 0) {
        s.old_answered_ms = Some(ms(log.sent[i]));
        // Within the last 10 probe periods of the window: it was still answering.
        s.old_censored = log.sent[i] + 10 * period >= t0 + window;
    }
    s.both = (s0..end)
        .filter(|&i| log.answered[i] & old != 0 && log.answered[i] & new != 0)
        .count();
    // Longest run of unanswered probes, measured between the answered probes around it.
    let mut last_answered: Option<Instant> = None;
    let mut run_start: Option<Instant> = None;
    let mut best = 0.0f64;
    for i in pre..end {
        if log.answered[i] != 0 {
            if let Some(rs) = run_start.take() {
                let from = last_answered.unwrap_or(rs);
                let g = (log.sent[i] - from).as_secs_f64() * 1e3 - period.as_secs_f64() * 1e3;
                best = best.max(g);
            }
            last_answered = Some(log.sent[i]);
        } else if run_start.is_none() {
            run_start = Some(log.sent[i]);
        }
    }
    if let Some(rs) = run_start {
        let from = last_answered.unwrap_or(rs);
        let g = (t0 + window).saturating_duration_since(from).as_secs_f64() * 1e3;
        if g >= best {
            best = g;
            s.gap_censored = true;
        }
    }
    s.gap_ms = best.max(0.0);
    s
}

fn timeline(
    log: &ProbeLog,
    pre: usize,
    s0: usize,
    end: usize,
    old: u32,
    new: u32,
    period: Duration,
) -> String {
    let sym = |a: u32| match (a & old != 0, a & new != 0) {
        _ if a == 0 => '.',
        (true, true) => 'b',
        (true, false) => 'o',
        (false, true) => 'n',
        (false, false) => 'x',
    };
    let mut out = String::new();
    let mut run: Option<(char, usize)> = None;
    let flush = |out: &mut String, run: &mut Option<(char, usize)>| {
        if let Some((c, k)) = run.take() {
            if k == 1 {
                out.push(c);
            } else {
                out.push_str(&format!("{c}{k}"));
            }
            out.push(' ');
        }
    };
    for i in pre..end {
        if i == s0 {
            flush(&mut out, &mut run);
            out.push_str("| ");
        }
        if i > pre {
            let dt = log.sent[i] - log.sent[i - 1];
            if dt > period * 3 {
                flush(&mut out, &mut run);
                out.push_str(&format!("~{:.0} ", dt.as_secs_f64() * 1e3));
            }
        }
        let c = sym(log.answered[i]);
        run = match run {
            Some((rc, k)) if rc == c => Some((c, k + 1)),
            r => {
                let mut r = r;
                flush(&mut out, &mut r);
                Some((c, 1))
            }
        };
    }
    flush(&mut out, &mut run);
    out.trim_end().to_string()
}

/// Whether, over the `span` before now (less the last 5 ms, replies in flight), every probe
/// was answered by `owner` and none by anyone else.
pub fn settled(log: &ProbeLog, owner: [u8; 6], span: Duration, period: Duration) -> bool {
    let bit = log.bit(owner);
    let now = Instant::now();
    let (Some(from), Some(to)) = (
        now.checked_sub(span + Duration::from_millis(5)),
        now.checked_sub(Duration::from_millis(5)),
    ) else {
        return false;
    };
    let (a, b) = (log.seq_at(from), log.seq_at(to));
    // At least half the expected probes must exist (the sender may be starved a little).
    let expected = (span.as_secs_f64() / period.as_secs_f64()) as usize;
    b - a >= expected / 2 && b > a && bit != 0 && (a..b).all(|i| log.answered[i] == bit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neighbor_solicitation_is_well_formed() {
        let mac = [2, 0, 0, 0, 0, 10];
        let vip = Target::parse("2001:db8::42").unwrap();
        let Target::V6(t) = vip else { panic!() };
        let f = vip.frame(mac, 3);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[0..6], &[0x33, 0x33, 0xff, 0, 0, 0x42]);
        assert_eq!(
            &f[38..54],
            &[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x42]
        );
        // The checksum verifies: pseudo-header plus message sums to zero.
        let mut pseudo = f[22..54].to_vec();
        pseudo.extend_from_slice(&32u32.to_be_bytes());
        pseudo.extend_from_slice(&[0, 0, 0, 58]);
        pseudo.extend_from_slice(&f[54..]);
        assert_eq!(csum(&pseudo, 0), 0);
        assert_eq!(&f[62..78], &t);
        // An advertisement back to residue 3's address names residue 3 and its sender.
        let mut na = vec![0u8; 86];
        na[0..6].copy_from_slice(&mac);
        na[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        na[20] = 58;
        na[38..54].copy_from_slice(&probe_ip6(3));
        na[54] = 136;
        na[62..78].copy_from_slice(&t);
        assert_eq!(vip.reply(&na, mac), Some((3, [2, 0, 0, 0, 0, 1])));
        na[54] = 135;
        assert_eq!(vip.reply(&na, mac), None);
    }

    #[test]
    fn arp_reply_names_its_residue() {
        let mac = [2, 0, 0, 0, 0, 10];
        let vip = Target::parse("192.0.2.41").unwrap();
        let mut r = vip.frame([2, 0, 0, 0, 0, 1], 7);
        r[20..22].copy_from_slice(&[0, 2]);
        r[28..32].copy_from_slice(&[192, 0, 2, 41]);
        r[32..38].copy_from_slice(&mac);
        r[38..42].copy_from_slice(&[192, 0, 2, SEQ_BASE + 7]);
        assert_eq!(vip.reply(&r, mac), Some((7, [2, 0, 0, 0, 0, 1])));
    }
}
