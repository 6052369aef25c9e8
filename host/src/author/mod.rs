//! The plugin author's kit, behind `plugin-host new|build|call|test|dev`: start a plugin crate from
//! templates compiled into the binary ([`scaffold`]), build it for wasm and make the component
//! ([`toolchain`]), run requests through the real host path without a server ([`sandbox`], [`call`],
//! [`cases`]), check a plugin against the ones it will join ([`clash`]), and a rebuild-and-reload loop
//! on a local server ([`dev`]). The SDK itself travels inside
//! the binary too ([`sdk`]), so nothing is downloaded at run time.

pub mod call;
pub mod cases;
pub mod clash;
pub mod dev;
pub mod logs;
pub mod sandbox;
pub mod scaffold;
pub mod sdk;
pub mod toolchain;
