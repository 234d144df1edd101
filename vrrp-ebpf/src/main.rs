//! The XDP program of vrrp-xdp: its maps, its effects (counters, the events ring, the silence
//! timer, frame writes) and its entry points. Parsing and every decision are
//! `vrrp_common::xdp`, which the host runs too (unit tests, the fuzz target). It validates
//! VRRP adverts and absorbs or reports them, answers ARP and Neighbor Solicitations for owned
//! VIPs with XDP_TX, and reports conflicting claims on them. It fails open: whatever it cannot
//! parse is passed to the kernel stack untouched.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod prog;

#[cfg(not(target_arch = "bpf"))]
fn main() {
    eprintln!("vrrp-ebpf is an XDP program: build it with `cargo xtask build`");
}

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any path that could reach here; nothing to do at run time.
    loop {}
}
