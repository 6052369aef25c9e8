//! @NAME@: a Plugin Host plugin.
//!
//! - `GET /@NAME@/{who}`: a greeting as JSON; browsers get it as HTML through `templates/greeting.html`.
//! - `POST /@NAME@/messages`: keep a message (`{"text": "..."}`) in the plugin's key-value store;
//!   callers need the `user` role (an API key or a signed-in session). Answers 201 with the message.
//! - `GET /@NAME@/messages`: every kept message, oldest first.
//!
//! The greeting word comes from the operator's `[plugins.@NAME@.config] greeting`, else "hello".

use plugin_sdk::prelude::*;
use plugin_sdk::{Deserialize, Serialize, clock, config, kv};

/// The plugin: its manifest and its handlers, declared together.
fn plugin() -> Plugin {
    Plugin::new("@NAME@", env!("CARGO_PKG_VERSION"), "Greets people and keeps their messages")
        .template("greeting.html", include_str!("../templates/greeting.html"))
        .get("/@NAME@/{who}", greet)
        .summary("Greet someone by name")
        .view("greeting.html")
        .post("/@NAME@/messages", post_message)
        .summary("Keep a message")
        .role(Role::User)
        .get("/@NAME@/messages", list_messages)
        .summary("Every kept message, oldest first")
}

fn greet(req: &Request) -> Result {
    let who: String = req.param("who")?;
    let greeting = config::get("greeting").unwrap_or_else(|| "hello".to_owned());
    Response::json(&json!({ "message": format!("{greeting}, {who}"), "greeting": greeting, "who": who }))
}

/// A message as the store keeps it and clients see it.
#[derive(Serialize, Deserialize)]
#[serde(crate = "plugin_sdk::serde")]
struct Message {
    id: String,
    text: String,
    from: String,
    at: u64,
}

/// What a client posts.
#[derive(Deserialize)]
#[serde(crate = "plugin_sdk::serde")]
struct NewMessage {
    text: String,
}

fn post_message(req: &Request) -> Result {
    let new: NewMessage = req.json()?;
    if new.text.trim().is_empty() {
        return Err(Error::unprocessable("a message needs some text"));
    }
    let at = clock::now_millis();
    // Keys sort as strings: a zero-padded time keeps them in order.
    let id = format!("{at:016}-{}", kv::list("message/")?.len());
    let message = Message { id: id.clone(), text: new.text, from: req.subject().to_owned(), at };
    kv::set_json(&format!("message/{id}"), &message)?;
    plugin_sdk::log!(Info, "kept message {id} from {}", message.from);
    Response::created(&format!("/@NAME@/messages#{id}"), &message)
}

fn list_messages(_: &Request) -> Result {
    let mut messages = Vec::new();
    for key in kv::list("message/")? {
        if let Some(message) = kv::get_json::<Message>(&key)? {
            messages.push(message);
        }
    }
    Response::json(&json!({ "messages": messages }))
}

plugin_sdk::plugin!(plugin);

#[cfg(test)]
mod tests;
