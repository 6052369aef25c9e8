//! HTTP plumbing shared by every handler: the accept loop, the request's id, client and body
//! ([`context`]), the one error type ([`error`]), content negotiation and negotiated responses (JSON
//! errors or error pages).

pub(crate) mod context;
pub(crate) mod error;
pub(crate) mod listener;
pub(crate) mod negotiate;
pub(crate) mod proxy;
pub(crate) mod respond;
