//! Docker's Engine API, as far as the engines need it, and the one docker command language:
//! the CLI's grammar ([`cli`]) and its requests as structures ([`spec`]), the request bodies the
//! CLI builds from them with its client-side checks ([`request`], [`ports`], [`body`]), and
//! [`dispatch`], where a command becomes calls on an [`EngineApi`]: the reference engine
//! in-process, or a Docker Engine over its socket. (`crate::server` serves an engine as Docker
//! Engine API 1.41 on a unix socket, for the real docker CLI.)

pub mod body;
pub mod cli;
pub mod dispatch;
pub mod filter;
pub mod names;
pub mod ports;
pub mod request;
pub mod spec;

pub use dispatch::{ApiError, ApiResult, EngineApi};
