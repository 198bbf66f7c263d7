//! The broker's figures as the embedding handle and the HTTP listener see
//! them: the core's counters ([`core::Stats`]) and what only the event loop
//! knows (its bridges, its uptime, the store's health).
//!
//! [`core::Stats`]: crate::core::Stats

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use crate::bridge::BridgeStats;
use crate::core;
use crate::store::StoreStatus;

/// Running counters, for `$SYS`, the embedding handle and `/metrics`
/// (exported as [`crate::Stats`]).
///
/// The core's counters read as fields of this struct (it dereferences to
/// [`core::Stats`]): `stats.clients_connected`, `stats.publish_dropped`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BrokerStats {
    /// The core's counters.
    pub core: core::Stats,
    /// Each bridge's figures.
    pub bridges: Vec<BridgeStats>,
    /// Time since the event loop started.
    pub uptime: Duration,
    /// The store's health and figures when persistence is on.
    pub store: Option<StoreStatus>,
}

impl Deref for BrokerStats {
    type Target = core::Stats;

    fn deref(&self) -> &core::Stats {
        &self.core
    }
}

impl DerefMut for BrokerStats {
    fn deref_mut(&mut self) -> &mut core::Stats {
        &mut self.core
    }
}
