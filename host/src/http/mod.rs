//! HTTP plumbing shared by every handler: the accept loop, the request's id, client and body
//! ([`context`]), the one error type ([`error`]), content negotiation and negotiated responses (JSON
//! errors or error pages).

pub mod context;
pub mod error;
pub mod listener;
pub mod negotiate;
pub mod respond;
