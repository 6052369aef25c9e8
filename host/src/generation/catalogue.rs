//! The route catalogue (`GET /api`): every route of a generation with its plugin, version, method, path,
//! required role and summary. Both bodies — JSON and the HTML page — are made once, when the generation
//! is built; a request only picks one and clones a reference-counted buffer.

use bytes::Bytes;
use serde::Serialize;

use crate::generation::manifest::{Manifest, method_str, role_str};
use crate::generation::views::{RenderError, Views};

/// One route as the catalogue lists it.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    plugin: &'a str,
    version: &'a str,
    method: &'static str,
    path: &'a str,
    role: &'static str,
    summary: &'a str,
    view: Option<&'a str>,
    /// A plain GET without parameters: the HTML page links it.
    link: bool,
}

#[derive(Debug, Serialize)]
struct PluginEntry<'a> {
    name: &'a str,
    version: &'a str,
    description: &'a str,
}

#[derive(Debug, Serialize)]
struct Listing<'a> {
    generation: u64,
    plugins: Vec<PluginEntry<'a>>,
    routes: Vec<Entry<'a>>,
}

/// Both representations of a generation's catalogue, ready to send.
#[derive(Debug, Clone)]
pub struct Catalogue {
    pub json: Bytes,
    pub html: Bytes,
}

impl Catalogue {
    /// Build the catalogue of generation `id` from its manifests, rendering `catalogue.html` once.
    pub fn build(id: u64, manifests: &[&Manifest], views: &Views) -> Result<Self, RenderError> {
        let mut routes: Vec<Entry<'_>> = manifests
            .iter()
            .flat_map(|m| {
                m.routes.iter().map(|r| Entry {
                    plugin: &m.name,
                    version: &m.version,
                    method: method_str(r.method),
                    path: r.path.as_str(),
                    role: role_str(r.role),
                    summary: &r.summary,
                    view: r.view.as_deref(),
                    link: method_str(r.method) == "GET" && !r.path.as_str().contains('{'),
                })
            })
            .collect();
        routes.sort_by(|a, b| (a.path, a.method).cmp(&(b.path, b.method)));
        let listing = Listing {
            generation: id,
            plugins: manifests
                .iter()
                .map(|m| PluginEntry {
                    name: &m.name,
                    version: &m.version,
                    description: &m.description,
                })
                .collect(),
            routes,
        };
        let json = serde_json::to_vec(&listing).expect("the catalogue serializes");
        let mut context = minijinja::Value::from_serialize(&listing);
        // The page's layout reads `page`; the catalogue has no per-request facts.
        context =
            minijinja::context! { page => minijinja::context! { generation => id }, ..context };
        let html = views.render("catalogue.html", &context)?;
        Ok(Self {
            json: Bytes::from(json),
            html: Bytes::from(html),
        })
    }
}
