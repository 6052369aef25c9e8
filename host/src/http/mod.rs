//! HTTP plumbing shared by every handler: the accept loop, content negotiation and negotiated
//! responses (JSON errors or error pages).

pub mod listener;
pub mod negotiate;
pub mod respond;
