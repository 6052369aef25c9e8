//! The `notes` example plugin: notes kept in the plugin key-value store. Anyone may read; writing needs
//! the role `user` (an API key or a signed-in session). Each note is one JSON value under `note/<id>`.
//!
//! - `GET /notes` — `{"notes": [...]}`, oldest first (HTML view `notes.html`)
//! - `POST /notes` — `{"title", "body"}` → 201 with the note
//! - `GET /notes/{id}` — the note (HTML view `note.html`)
//! - `PUT /notes/{id}` — `{"title", "body"}` → the updated note
//! - `DELETE /notes/{id}` — 204
//!
//! Ids are 16 random hex digits (64 bits from the host's generator): no counter to race on, nothing to
//! guess from.

use plugin_sdk::prelude::*;
use plugin_sdk::{clock, kv, random};
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

/// A new note's id: 8 random bytes as hex.
fn new_id() -> String {
    random::bytes(8)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn create(req: &Request) -> Result {
    let input = input(req)?;
    let now = clock::now_millis();
    let note = Note {
        id: new_id(),
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

#[cfg(test)]
mod tests {
    //! The handlers against the SDK's fake host: `plugin().call(..)` routes like the host does, the
    //! store and the clock are per-test fakes (plugin_sdk::testing).

    use plugin_sdk::prelude::*;
    use plugin_sdk::testing;

    fn call(request: plugin_sdk::RequestBuilder) -> Result {
        super::plugin().call(request.build())
    }

    /// POST a note as user `ada`; the created note.
    fn create(title: &str) -> Value {
        let request = Request::builder()
            .post("/notes")
            .role(Role::User)
            .subject("ada")
            .json(&json!({ "title": title, "body": "text" }));
        call(request).unwrap().body_json().unwrap()
    }

    fn get(path: &str) -> Result<Value, Error> {
        call(Request::builder().get(path))?.body_json()
    }

    #[test]
    fn writes_need_a_user_and_reads_do_not() {
        let plugin = super::plugin();
        let roles: Vec<(&str, &str, Role)> = plugin
            .routes()
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.role))
            .collect();
        assert_eq!(
            roles,
            [
                ("GET", "/notes", Role::Anonymous),
                ("POST", "/notes", Role::User),
                ("GET", "/notes/{id}", Role::Anonymous),
                ("PUT", "/notes/{id}", Role::User),
                ("DELETE", "/notes/{id}", Role::User),
            ]
        );
    }

    #[test]
    fn a_created_note_is_201_with_its_location_and_can_be_read_back() {
        let request = Request::builder()
            .post("/notes")
            .role(Role::User)
            .subject("ada")
            .json(&json!({ "title": "first", "body": "hello" }));
        let created = call(request).unwrap();
        assert_eq!(created.status_code(), 201);
        let note: Value = created.body_json().unwrap();
        assert_eq!(
            (&note["title"], &note["author"]),
            (&json!("first"), &json!("ada"))
        );
        let location = created.header_value("location").unwrap();
        assert_eq!(location, format!("/notes/{}", note["id"].as_str().unwrap()));
        assert_eq!(get(location).unwrap(), note);
    }

    #[test]
    fn the_list_is_oldest_first() {
        for title in ["a", "b", "c"] {
            create(title);
            testing::advance_millis(1);
        }
        let list = get("/notes").unwrap();
        let titles: Vec<&str> = list["notes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["title"].as_str().unwrap())
            .collect();
        assert_eq!(titles, ["a", "b", "c"]);
    }

    #[test]
    fn timestamps_follow_the_clock_and_an_update_keeps_created() {
        testing::set_now_millis(1_800_000_000_000);
        let note = create("draft");
        assert_eq!(
            (&note["created"], &note["updated"]),
            (&json!(1_800_000_000_000u64), &json!(1_800_000_000_000u64))
        );
        testing::advance_millis(60_000);
        let path = format!("/notes/{}", note["id"].as_str().unwrap());
        let request = Request::builder()
            .put(&path)
            .role(Role::User)
            .json(&json!({ "title": "final" }));
        let updated: Value = call(request).unwrap().body_json().unwrap();
        assert_eq!(
            (&updated["title"], &updated["body"]),
            (&json!("final"), &json!(""))
        );
        assert_eq!(updated["created"], 1_800_000_000_000u64);
        assert_eq!(updated["updated"], 1_800_000_060_000u64);
        assert_eq!(get(&path).unwrap(), updated);
    }

    #[test]
    fn ids_are_random_hex_and_come_from_the_hosts_generator() {
        let ids: Vec<String> = (0..50)
            .map(|_| {
                create("same millisecond")["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        for id in &ids {
            assert_eq!(id.len(), 16, "{id}");
            assert!(
                id.chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{id}"
            );
        }
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), 50, "50 notes in one millisecond, 50 ids");
        assert_eq!(testing::kv_keys().len(), 50);
        // The same seed, the same id: the id is the generator's, not the clock's.
        testing::reset();
        testing::seed_random(9);
        let first = create("a")["id"].clone();
        testing::reset();
        testing::seed_random(9);
        testing::advance_millis(123_456);
        assert_eq!(create("b")["id"], first);
    }

    #[test]
    fn a_deleted_note_is_gone() {
        let note = create("short-lived");
        let path = format!("/notes/{}", note["id"].as_str().unwrap());
        let delete = || call(Request::builder().delete(&path).role(Role::User));
        assert_eq!(delete().unwrap().status_code(), 204);
        assert_eq!(get(&path).unwrap_err().status(), 404);
        assert_eq!(delete().unwrap_err().status(), 404);
        assert!(testing::kv_keys().is_empty());
    }

    #[test]
    fn a_note_without_a_title_is_400() {
        for body in [json!({ "body": "no title" }), json!({ "title": "  " })] {
            let request = Request::builder()
                .post("/notes")
                .role(Role::User)
                .json(&body);
            assert_eq!(call(request).unwrap_err().status(), 400, "{body}");
        }
        assert!(testing::kv_keys().is_empty());
    }

    #[test]
    fn invalid_json_is_400_and_says_so() {
        let request = Request::builder()
            .post("/notes")
            .role(Role::User)
            .header("content-type", "application/json")
            .body("{not json");
        let error = call(request).unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(error.message().starts_with("invalid JSON body"), "{error}");
    }
}
