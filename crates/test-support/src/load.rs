//! The operator-like load of `hasocks_loadgen::mix` (short sessions in a loop, long checksummed
//! streams), paced under the tests' [`DEADLINE`](crate::DEADLINE).

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};

pub use hasocks_loadgen::mix::{LongResult, Mix, Tally};

/// A [`Mix`] whose pacing fails the test when the sessions stop flowing.
pub struct Load(Mix);

impl Load {
    /// Starts `clients` short-session loops and `longs` long sessions.
    pub fn start(proxy: SocketAddr, target: SocketAddr, clients: u64, longs: u64) -> Load {
        Load(Mix::start(proxy, target, clients, longs))
    }

    /// Waits until `n` more short sessions have passed; panics after the deadline.
    pub async fn pace(&self, n: u64) {
        let flowing = self.0.pace(n, crate::DEADLINE).await;
        assert!(
            flowing,
            "timed out waiting for sessions flowing: {:?}",
            self.0.tally.first()
        );
    }

    /// Stops everything; returns (ok, failed, refused) of the short sessions.
    pub async fn finish(self) -> (u64, u64, u64) {
        self.0.finish().await
    }
}

impl Deref for Load {
    type Target = Mix;

    fn deref(&self) -> &Mix {
        &self.0
    }
}

impl DerefMut for Load {
    fn deref_mut(&mut self) -> &mut Mix {
        &mut self.0
    }
}
