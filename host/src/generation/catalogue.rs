//! The route catalogue (`GET /api`): every route of a generation with its plugin, version, method, path,
//! required role and summary. Both bodies — JSON and the HTML page — are made once, when the generation
//! is built; a request only picks one and clones a reference-counted buffer.

use bytes::Bytes;
use serde::Serialize;

use crate::bindings::types::Method;
use crate::generation::manifest::Manifest;
use crate::generation::views::{RenderError, Views};

/// One route as the catalogue, the admin routes page and the admin plugin page list it.
#[derive(Debug, Serialize)]
pub struct RouteRow<'a> {
    pub plugin: &'a str,
    pub version: &'a str,
    pub method: &'static str,
    pub path: &'a str,
    pub role: &'static str,
    pub summary: &'a str,
    pub view: Option<&'a str>,
    /// A plain GET without parameters: a page may link it.
    pub link: bool,
}

/// Every route of `manifests`, ordered by path and method.
pub fn route_rows<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> Vec<RouteRow<'a>> {
    let mut rows: Vec<RouteRow<'a>> = manifests
        .into_iter()
        .flat_map(|m| {
            m.routes.iter().map(|r| RouteRow {
                plugin: &m.name,
                version: &m.version,
                method: r.method.as_str(),
                path: r.path.as_str(),
                role: r.role.as_str(),
                summary: &r.summary,
                view: r.view.as_deref(),
                link: r.method == Method::Get && !r.path.as_str().contains('{'),
            })
        })
        .collect();
    rows.sort_by(|a, b| (a.path, a.method).cmp(&(b.path, b.method)));
    rows
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
    /// Where the same routes are described as OpenAPI 3.1.
    openapi: &'static str,
    plugins: Vec<PluginEntry<'a>>,
    routes: Vec<RouteRow<'a>>,
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
        let routes = route_rows(manifests.iter().copied());
        let listing = Listing {
            generation: id,
            openapi: "/openapi.json",
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
