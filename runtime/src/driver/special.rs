//! The host and null drivers (libnetwork's "special" drivers): containers share the docker
//! host's namespace (`host`) or keep one with only `lo` (`null`, the `none` network), so
//! neither has a datapath. Each allows one network, the predefined one.

use std::sync::{Mutex, PoisonError};

use drydock_netsim::Netns;
use futures::future::BoxFuture;

use super::{Capabilities, Driver, DriverError, Interface, JoinInfo, NetworkInfo, NetworkRequest};

/// The host driver's name.
pub(crate) const HOST: &str = "host";
/// The null driver's name.
pub(crate) const NULL: &str = "null";

/// Whether `driver` names the host or the null driver.
pub(crate) fn is_special(driver: &str) -> bool {
    driver == HOST || driver == NULL
}

/// The host or the null driver.
#[derive(Debug)]
pub(crate) struct Special {
    name: &'static str,
    /// Whether its one network exists.
    created: Mutex<bool>,
}

impl Special {
    /// The host driver.
    pub(crate) fn host() -> Self {
        Self::named(HOST)
    }

    /// The null driver.
    pub(crate) fn null() -> Self {
        Self::named(NULL)
    }

    fn named(name: &'static str) -> Self {
        Self {
            name,
            created: Mutex::default(),
        }
    }
}

impl Driver for Special {
    fn name(&self) -> &str {
        self.name
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::LOCAL
    }

    fn create_network<'a>(
        &'a self,
        _request: &'a NetworkRequest,
    ) -> BoxFuture<'a, Result<NetworkInfo, DriverError>> {
        Box::pin(async move {
            let mut created = self.created.lock().unwrap_or_else(PoisonError::into_inner);
            if *created {
                return Err(DriverError::Refused(format!(
                    "only one instance of \"{}\" network is allowed",
                    self.name
                )));
            }
            *created = true;
            Ok(NetworkInfo::default())
        })
    }

    fn delete_network<'a>(&'a self, _network: &'a str) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async move {
            Err(DriverError::Refused(format!(
                "network of type \"{}\" cannot be deleted",
                self.name
            )))
        })
    }

    fn create_endpoint<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
        _interface: &'a Interface,
    ) -> BoxFuture<'a, Result<Option<[u8; 6]>, DriverError>> {
        Box::pin(async { Ok(None) })
    }

    fn delete_endpoint<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Ok(()) })
    }

    fn join<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
        _sandbox: &'a Netns,
        _ifname: &'a str,
    ) -> BoxFuture<'a, Result<JoinInfo, DriverError>> {
        Box::pin(async { Ok(JoinInfo::default()) })
    }

    fn leave<'a>(
        &'a self,
        _network: &'a str,
        _endpoint: &'a str,
    ) -> BoxFuture<'a, Result<(), DriverError>> {
        Box::pin(async { Ok(()) })
    }
}
