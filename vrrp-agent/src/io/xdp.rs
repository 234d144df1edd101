//! Loads the embedded XDP object onto an interface and keeps its maps in sync.
//!
//! One copy of the object is loaded per interface, so every map is per interface. The
//! program is attached through a bpf_link owned by this process: it detaches when the
//! process exits, also on a crash.

use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::{ProgramError, Xdp, XdpMode};
use aya::{Ebpf, EbpfError};
use vrrp_common::event::counter;
use vrrp_common::maps::{self, VRID_SLOTS, VridConfig, vrid_slot};

/// The XDP object, embedded at build time (empty when built without `cargo xtask build`).
pub static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vrrp-xdp.bpf.o"));

/// Name of the program function in the object.
pub const PROGRAM: &str = "vrrp_xdp";

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "this vrrp-agent was built without its XDP object: build it with `cargo xtask build`, or run with --no-xdp"
    )]
    NoObject,
    #[error("loading the XDP object: {0}")]
    Load(#[from] Box<EbpfError>),
    #[error("the XDP object has no program `{PROGRAM}`")]
    NoProgram,
    #[error("the XDP object has no map `{0}`")]
    NoMap(&'static str),
    #[error("XDP program: {0}")]
    Program(#[from] Box<ProgramError>),
    #[error("XDP map `{name}`: {source}")]
    Map {
        name: &'static str,
        #[source]
        source: aya::maps::MapError,
    },
    #[error(
        "cannot attach XDP to {iface} (native: {native}; generic: {generic}); run with --no-xdp to use raw sockets"
    )]
    Attach {
        iface: String,
        native: Box<ProgramError>,
        generic: Box<ProgramError>,
    },
}

/// How the program is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum AttachMode {
    /// In the driver (native XDP): the fast path, and XDP_TX works.
    Native,
    /// In the generic receive path (SKB mode): works everywhere, slower.
    Generic,
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "native",
            Self::Generic => "generic",
        })
    }
}

/// Loads the object without attaching it (tests run it with BPF_PROG_TEST_RUN).
pub fn load() -> Result<Ebpf, XdpError> {
    if OBJECT.is_empty() {
        return Err(XdpError::NoObject);
    }
    let mut ebpf = Ebpf::load(OBJECT).map_err(Box::new)?;
    program(&mut ebpf)?.load().map_err(Box::new)?;
    Ok(ebpf)
}

/// The XDP program inside a loaded object.
pub fn program(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(PROGRAM)
        .ok_or(XdpError::NoProgram)?
        .try_into()
        .map_err(|e| XdpError::Program(Box::new(e)))
}

/// The data plane of one interface: the loaded program, attached, and its maps.
pub struct DataPlane {
    ebpf: Ebpf,
    iface: String,
    mode: AttachMode,
}

impl DataPlane {
    /// Loads and attaches to `iface`: native first, generic as the fallback.
    pub fn attach(iface: &str, force_generic: bool) -> Result<Self, XdpError> {
        let mut ebpf = load()?;
        let prog = program(&mut ebpf)?;
        let mode = if force_generic {
            prog.attach(iface, XdpMode::Skb).map_err(Box::new)?;
            AttachMode::Generic
        } else {
            match prog.attach(iface, XdpMode::Driver) {
                Ok(_) => AttachMode::Native,
                Err(ProgramError::UnknownInterface { name }) => {
                    return Err(XdpError::Program(Box::new(
                        ProgramError::UnknownInterface { name },
                    )));
                }
                Err(native) => match prog.attach(iface, XdpMode::Skb) {
                    Ok(_) => {
                        tracing::warn!(%iface, error = %native, "native XDP unavailable; attached in generic (SKB) mode");
                        AttachMode::Generic
                    }
                    Err(generic) => {
                        return Err(XdpError::Attach {
                            iface: iface.to_string(),
                            native: Box::new(native),
                            generic: Box::new(generic),
                        });
                    }
                },
            }
        };
        tracing::info!(%iface, %mode, "XDP program attached");
        Ok(Self {
            ebpf,
            iface: iface.to_string(),
            mode,
        })
    }

    pub fn mode(&self) -> AttachMode {
        self.mode
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// Tells the program about a virtual router on this interface (or forgets it with the
    /// default, unconfigured value).
    pub fn set_vrid(&mut self, ipv6: bool, vrid: u8, cfg: VridConfig) -> Result<(), XdpError> {
        set_vrid(&mut self.ebpf, ipv6, vrid, cfg)
    }

    /// Counters summed over CPUs, indexed by `vrrp_common::event::counter`.
    pub fn counters(&self) -> Result<[u64; counter::COUNT as usize], XdpError> {
        counters(&self.ebpf)
    }

    /// Adverts seen per (family, VRID) for VRIDs that are not ours: (ipv6, vrid, count).
    pub fn foreign_vrids(&self) -> Result<Vec<(bool, u8, u64)>, XdpError> {
        let map = self
            .ebpf
            .map(maps::FOREIGN_VRIDS)
            .ok_or(XdpError::NoMap(maps::FOREIGN_VRIDS))?;
        let arr: PerCpuArray<&MapData, u64> =
            PerCpuArray::try_from(map).map_err(|source| XdpError::Map {
                name: maps::FOREIGN_VRIDS,
                source,
            })?;
        let mut out = Vec::new();
        for slot in 0..VRID_SLOTS {
            let v = arr.get(&slot, 0).map_err(|source| XdpError::Map {
                name: maps::FOREIGN_VRIDS,
                source,
            })?;
            let n: u64 = v.iter().sum();
            if n > 0 {
                out.push((slot >= 256, (slot % 256) as u8, n));
            }
        }
        Ok(out)
    }
}

pub fn set_vrid(ebpf: &mut Ebpf, ipv6: bool, vrid: u8, cfg: VridConfig) -> Result<(), XdpError> {
    let map = ebpf
        .map_mut(maps::VRID_CONFIG)
        .ok_or(XdpError::NoMap(maps::VRID_CONFIG))?;
    let mut arr: Array<&mut MapData, VridConfig> =
        Array::try_from(map).map_err(|source| XdpError::Map {
            name: maps::VRID_CONFIG,
            source,
        })?;
    arr.set(vrid_slot(ipv6, vrid), cfg, 0)
        .map_err(|source| XdpError::Map {
            name: maps::VRID_CONFIG,
            source,
        })
}

pub fn counters(ebpf: &Ebpf) -> Result<[u64; counter::COUNT as usize], XdpError> {
    let map = ebpf
        .map(maps::COUNTERS)
        .ok_or(XdpError::NoMap(maps::COUNTERS))?;
    let arr: PerCpuArray<&MapData, u64> =
        PerCpuArray::try_from(map).map_err(|source| XdpError::Map {
            name: maps::COUNTERS,
            source,
        })?;
    let mut out = [0u64; counter::COUNT as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        let v = arr.get(&(i as u32), 0).map_err(|source| XdpError::Map {
            name: maps::COUNTERS,
            source,
        })?;
        *slot = v.iter().sum();
    }
    Ok(out)
}
