//! Housekeeping of what the kernel holds for us: XDP_TX health, foreign-VRID counts, and the
//! kernel ARP/NA filter, which someone may remove behind our back.

use tracing::{debug, warn};

use super::Driver;
use crate::io::kfilter;
use crate::proto::node::NodeInput;

impl Driver {
    /// Every second: a data plane whose XDP_TX fails stops answering so the kernel's ARP/ND
    /// does it (never worse than the kernel); the foreign-VRID counts are refreshed.
    pub(super) async fn data_plane_watch(&mut self) {
        let mut failing = Vec::new();
        for (ifindex, iface) in &mut self.res.ifaces {
            let Some(dp) = iface.dataplane.as_ref() else {
                continue;
            };
            if let Ok(c) = dp.counters() {
                let unknown = c[vrrp_common::event::counter::DROP_UNKNOWN_VRID as usize];
                if unknown != iface.foreign.0
                    && let Ok(f) = dp.foreign_vrids()
                {
                    iface.foreign = (unknown, f);
                }
            }
            // XDP_TX is only used for owned VIPs: nothing to watch (three ioctls) before.
            if !self.node.answering(*ifindex) {
                continue;
            }
            let errors = dp.xdp_tx_errors();
            if let (Some(now), Some(before)) = (errors, iface.tx_errors)
                && now > before
            {
                warn!(iface = %iface.name, errors = now - before, "XDP_TX errors on this interface");
                failing.push(*ifindex);
            }
            iface.tx_errors = errors;
        }
        for ifindex in failing {
            self.feed(NodeInput::XdpTxFailing { ifindex }).await;
        }
    }

    /// The kernel ARP/NA filter removed behind our back (`nft flush ruleset`, another
    /// program): put back, with a warning, or a crash would leave the kernel answering.
    pub(super) async fn check_kernel_filter(&mut self) {
        let Some(vips) = self.kfilter.clone().filter(|v| !v.is_empty()) else {
            return;
        };
        match kfilter::present().await {
            Ok(true) => {}
            Ok(false) => {
                warn!(
                    table = kfilter::TABLE,
                    "the kernel ARP/NA filter was removed behind our back: restoring it"
                );
                self.io.filter_restored += 1;
                if let Err(e) = kfilter::install(&vips).await {
                    warn!(error = %e, "cannot restore the kernel ARP/NA filter");
                }
            }
            Err(e) => debug!(error = %e, "cannot check the kernel ARP/NA filter"),
        }
    }
}
