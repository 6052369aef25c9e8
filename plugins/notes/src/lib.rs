//! The `notes` example plugin: notes kept in the plugin key-value store. Anyone may read; writing needs
//! the role `user` (an API key or a signed-in session). Each note is one JSON value under `note/<id>`.
//!
//! - `GET /notes` — `{"notes": [...]}`, oldest first (HTML view `notes.html`)
//! - `POST /notes` — `{"title", "body"}` → 201 with the note
//! - `GET /notes/{id}` — the note (HTML view `note.html`)
//! - `PUT /notes/{id}` — `{"title", "body"}` → the updated note
//! - `DELETE /notes/{id}` — 204

use plugin_sdk::prelude::*;
use plugin_sdk::{clock, kv};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Note {
    id: String,
    title: String,
    body: String,
    author: String,
    created: u64,
    updated: u64,
}

#[derive(Deserialize)]
struct NoteInput {
    title: String,
    #[serde(default)]
    body: String,
}

fn plugin() -> Plugin {
    Plugin::new(
        "notes",
        env!("CARGO_PKG_VERSION"),
        "Notes in the plugin key-value store",
    )
    .get("/notes", list)
    .summary("All notes")
    .view("notes.html")
    .post("/notes", create)
    .summary("Add a note")
    .role(Role::User)
    .get("/notes/{id}", show)
    .summary("One note")
    .view("note.html")
    .put("/notes/{id}", update)
    .summary("Change a note")
    .role(Role::User)
    .delete("/notes/{id}", remove)
    .summary("Delete a note")
    .role(Role::User)
    .template("notes.html", include_str!("../templates/notes.html"))
    .template("note.html", include_str!("../templates/note.html"))
}

fn key(id: &str) -> String {
    format!("note/{id}")
}

fn input(req: &Request) -> std::result::Result<NoteInput, Error> {
    let input: NoteInput = req.json()?;
    if input.title.trim().is_empty() {
        return Err(Error::bad_request("a note needs a title"));
    }
    Ok(input)
}

fn load(id: &str) -> std::result::Result<Note, Error> {
    kv::get_json(&key(id))?.ok_or_else(|| Error::not_found(format!("no note {id}")))
}

fn list(_: &Request) -> Result {
    let mut notes = Vec::new();
    for k in kv::list("note/")? {
        if let Some(note) = kv::get_json::<Note>(&k)? {
            notes.push(note);
        }
    }
    notes.sort_by_key(|n| n.created);
    Response::json(&json!({ "notes": notes }))
}

fn create(req: &Request) -> Result {
    let input = input(req)?;
    let now = clock::now_millis();
    // Time-based ids need no counter to race on; a clash (same millisecond and nanosecond tail) moves on.
    let mut id = String::new();
    for attempt in 0..4u64 {
        let tail = (clock::monotonic_nanos() + attempt) & 0xffff;
        id = format!("{now:011x}{tail:04x}");
        if kv::get(&key(&id))?.is_none() {
            break;
        }
    }
    let note = Note {
        id,
        title: input.title,
        body: input.body,
        author: req.subject().to_owned(),
        created: now,
        updated: now,
    };
    kv::set_json(&key(&note.id), &note)?;
    Response::created(&format!("/notes/{}", note.id), &note)
}

fn show(req: &Request) -> Result {
    let id: String = req.param("id")?;
    Response::json(&load(&id)?)
}

fn update(req: &Request) -> Result {
    let id: String = req.param("id")?;
    let input = input(req)?;
    let mut note = load(&id)?;
    note.title = input.title;
    note.body = input.body;
    note.updated = clock::now_millis();
    kv::set_json(&key(&id), &note)?;
    Response::json(&note)
}

fn remove(req: &Request) -> Result {
    let id: String = req.param("id")?;
    if kv::delete(&key(&id))? {
        Ok(Response::empty().status(204))
    } else {
        Err(Error::not_found(format!("no note {id}")))
    }
}

plugin_sdk::plugin!(plugin);
