//! The OpenAPI 3.1 document (`GET /openapi.json`): every plugin route of a generation with its path
//! parameters, required role (as security requirements), summary, a tag per plugin, its JSON and HTML
//! answers and the host's error answers; and the host's own routes (health, readiness, metrics, the
//! catalogues, and the admin JSON API when it shares the listener). Built with utoipa's model types
//! once per generation, serialized once; requests clone the buffer.

use bytes::Bytes;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required,
};

use crate::bindings::types::{Method, Role};
use crate::generation::manifest::Manifest;
use crate::generation::routes::PathPattern;

/// The security schemes: every way a caller can present an API key, and the browser session.
const SCHEMES: [&str; 4] = ["bearer", "apiKeyHeader", "apiKeyQuery", "session"];

/// The host's error statuses every plugin route can answer with, besides the plugin's own answers.
const PLUGIN_ROUTE_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "The request could not be read (a malformed path, header or query).",
    ),
    (
        "408",
        "The client did not send the body in time (`limits.client_body_timeout_ms`).",
    ),
    ("413", "The body is over `limits.max_request_body_bytes`."),
    (
        "500",
        "The plugin failed (a trap, its memory cap, an invalid response) or its page did not render.",
    ),
    (
        "503",
        "No instance could be had now (`limits.max_instances`, or the plugin's own cap); see `Retry-After`.",
    ),
    (
        "504",
        "The plugin did not answer within its deadline (`limits.request_timeout_ms`).",
    ),
];

/// The document for a generation serving `manifests`; `admin_api` when the admin API shares this
/// listener (no `admin_listen`).
pub fn build(generation: u64, manifests: &[&Manifest], admin_api: bool) -> Bytes {
    let mut paths = Paths::new();
    let mut tags = Vec::new();
    let mut sorted: Vec<&Manifest> = manifests.to_vec();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for m in sorted {
        tags.push(
            TagBuilder::new()
                .name(&m.name)
                .description(Some(format!(
                    "{} (plugin {} {})",
                    m.description, m.name, m.version
                )))
                .build(),
        );
        for route in &m.routes {
            let operation = plugin_operation(m, route);
            paths.add_path_operation(
                route.path.as_str(),
                vec![http_method(route.method)],
                operation,
            );
        }
    }
    host_routes(&mut paths);
    if admin_api {
        admin_routes(&mut paths);
        tags.push(
            TagBuilder::new()
                .name("admin")
                .description(Some("The admin JSON API (admin role; README, Admin API)"))
                .build(),
        );
    }
    tags.push(
        TagBuilder::new()
            .name("host")
            .description(Some(
                "The host's own routes: health, readiness, metrics, catalogues",
            ))
            .build(),
    );
    let document: OpenApi = OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Plugin Host")
                .version(format!("generation {generation}"))
                .description(Some(
                    "The routes of the plugins this host serves now (this document is rebuilt with \
                     every reload) and the host's own. Plugins answer JSON, or HTML when the client \
                     prefers it (`Accept`, or `?format=html`). Errors are `{\"error\": message, \
                     \"request_id\": id}`.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components()))
        .tags(Some(tags))
        .build();
    Bytes::from(serde_json::to_vec(&document).expect("the OpenAPI document serializes"))
}

fn http_method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::Get,
        Method::Head => HttpMethod::Head,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
        Method::Options => HttpMethod::Options,
    }
}

fn any_json() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::AnyValue)
            .build(),
    )
}

fn string() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::String).build())
}

fn json_object() -> Schema {
    Schema::Object(ObjectBuilder::new().schema_type(Type::Object).build())
}

fn error_ref() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("Error"))
}

/// An answer negotiated like every plugin answer: JSON of `json`'s shape, or an HTML page.
fn negotiated(description: &str, json: impl Into<RefOr<Schema>>) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new().schema(Some(json)).build(),
        )
        .content(
            "text/html",
            ContentBuilder::new().schema(Some(string())).build(),
        )
        .build()
}

/// An error answer: the host's JSON shape, or its error page for browsers.
fn error_response(description: &str) -> utoipa::openapi::Response {
    negotiated(description, error_ref())
}

/// A path parameter: one non-empty segment (the router splits the path before it decodes it).
fn path_parameter(name: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(Schema::Object(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .build(),
        )))
}

/// What a caller without acceptable credentials gets.
const UNAUTHENTICATED: (&str, &str) = (
    "401",
    "No credentials, or a key or session that is unknown, expired or revoked.",
);

/// Any one of the ways to present credentials (the route's role, in its description, decides whose
/// are enough).
fn security() -> Vec<SecurityRequirement> {
    SCHEMES
        .iter()
        .map(|s| SecurityRequirement::new(*s, Vec::<String>::new()))
        .collect()
}

fn plugin_operation(
    m: &Manifest,
    route: &crate::generation::manifest::Route,
) -> utoipa::openapi::path::Operation {
    let role = route.role;
    let page = match &route.view {
        Some(view) => format!("the page of view `{view}`"),
        None => "the generic data page".to_owned(),
    };
    let mut description = format!(
        "Plugin `{}` {}. Role: `{}`. HTML: {page}.",
        m.name,
        m.version,
        role.as_str()
    );
    if role != Role::Anonymous {
        description.push_str(" An API key with the role (or a higher one) and, if it is scoped, this plugin or route in its scopes.");
    }
    let mut responses = ResponsesBuilder::new().response(
        "default",
        negotiated(
            "The plugin's answer: its status and JSON body, or the HTML page made from it.",
            any_json(),
        ),
    );
    // A plugin may answer any route with no body at all.
    responses = responses.response(
        "204",
        ResponseBuilder::new()
            .description("The plugin's answer, without a body.")
            .build(),
    );
    let auth_errors: &[(&str, &str)] = if role == Role::Anonymous {
        &[]
    } else {
        &[
            UNAUTHENTICATED,
            (
                "403",
                "The caller's role or key scope does not allow this route.",
            ),
        ]
    };
    for (status, why) in auth_errors.iter().chain(PLUGIN_ROUTE_ERRORS) {
        responses = responses.response(*status, error_response(why));
    }
    let mut op = OperationBuilder::new()
        .tag(&m.name)
        .summary(Some(route.summary.clone()).filter(|s| !s.is_empty()))
        .description(Some(description))
        .operation_id(Some(operation_id(
            &m.name,
            route.method.as_str(),
            route.path.as_str(),
        )))
        .responses(responses.build());
    if role != Role::Anonymous {
        op = op.securities(Some(security()));
    }
    for name in route.path.param_names() {
        op = op.parameter(path_parameter(name));
    }
    if matches!(route.method, Method::Post | Method::Put | Method::Patch) {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .description(Some(
                    "Passed to the plugin as it came (JSON for most plugins).",
                ))
                .content(
                    "application/json",
                    ContentBuilder::new().schema(Some(any_json())).build(),
                )
                .build(),
        ));
    }
    op.build()
}

fn operation_id(tag: &str, method: &str, path: &str) -> String {
    let mut id = format!("{tag}_{}", method.to_ascii_lowercase());
    for c in path.chars() {
        id.push(if c.is_ascii_alphanumeric() { c } else { '_' });
    }
    id
}

/// One of the host's own operations.
struct HostRoute {
    path: &'static str,
    method: HttpMethod,
    summary: &'static str,
    role: Role,
    /// Content types and schema of the 200 answer.
    ok: (&'static [&'static str], fn() -> Schema),
    /// Extra documented statuses.
    errors: &'static [(&'static str, &'static str)],
    body: Option<&'static str>,
    tag: &'static str,
}

fn host_routes(paths: &mut Paths) {
    let routes = [
        HostRoute {
            path: "/healthz",
            method: HttpMethod::Get,
            summary: "Liveness: the process answers ({\"status\":\"ok\"}).",
            role: Role::Anonymous,
            ok: (&["application/json"], json_object),
            errors: &[],
            body: None,
            tag: "host",
        },
        HostRoute {
            path: "/readyz",
            method: HttpMethod::Get,
            summary: "Readiness: ready or degraded (200), or not ready with the reason (503).",
            role: Role::Anonymous,
            ok: (&["application/json"], json_object),
            errors: &[(
                "503",
                "Not ready: starting, shutting down, or the database is unreachable (cluster mode).",
            )],
            body: None,
            tag: "host",
        },
        HostRoute {
            path: "/api",
            method: HttpMethod::Get,
            summary: "The route catalogue of the serving generation (JSON, or an HTML page).",
            role: Role::Anonymous,
            ok: (&["application/json", "text/html"], json_object),
            errors: &[],
            body: None,
            tag: "host",
        },
        HostRoute {
            path: "/openapi.json",
            method: HttpMethod::Get,
            summary: "This document.",
            role: Role::Anonymous,
            ok: (&["application/json"], json_object),
            errors: &[],
            body: None,
            tag: "host",
        },
    ];
    for r in routes {
        add_host_route(paths, r);
    }
}

fn add_host_route(paths: &mut Paths, r: HostRoute) {
    let (content_types, schema) = r.ok;
    let mut ok = ResponseBuilder::new().description("OK");
    for content_type in content_types {
        let schema = if content_type.starts_with("text/") {
            string()
        } else {
            schema()
        };
        ok = ok.content(
            *content_type,
            ContentBuilder::new().schema(Some(schema)).build(),
        );
    }
    let mut responses = ResponsesBuilder::new().response("200", ok.build());
    let mut errors: Vec<(&str, &str)> = r.errors.to_vec();
    if r.role != Role::Anonymous {
        errors.push(UNAUTHENTICATED);
        errors.push(("403", "The caller is not an admin."));
    }
    if r.body.is_some() {
        errors.push(("413", "The body is too large."));
    }
    if r.tag == "admin" && (r.body.is_some() || r.path.contains('{')) {
        for (status, why) in [
            ("400", "A malformed path parameter or body."),
            ("404", "No such user, key or plugin."),
            ("422", "The change is refused; the message says why."),
        ] {
            if !errors.iter().any(|(s, _)| *s == status) {
                errors.push((status, why));
            }
        }
    }
    for (status, why) in errors {
        responses = responses.response(status, error_response(why));
    }
    let mut op = OperationBuilder::new()
        .tag(r.tag)
        .summary(Some(r.summary))
        .operation_id(Some(operation_id(r.tag, method_name(&r.method), r.path)))
        .responses(responses.build());
    if r.role != Role::Anonymous {
        op = op.securities(Some(security()));
    }
    let pattern = PathPattern::parse(r.path).expect("the host's route patterns are valid");
    for name in pattern.param_names() {
        op = op.parameter(path_parameter(name));
    }
    if let Some(kind) = r.body {
        let schema = if kind == "application/json" {
            json_object()
        } else {
            Schema::Object(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/wasm")
                    .build(),
            )
        };
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(kind, ContentBuilder::new().schema(Some(schema)).build())
                .build(),
        ));
    }
    paths.add_path_operation(r.path, vec![r.method], op.build());
}

fn method_name(m: &HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Delete => "delete",
        HttpMethod::Patch => "patch",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    }
}

/// `/metrics` and the admin JSON API, which share the listener unless `admin_listen` is set (the UI's
/// HTML pages and forms are not part of the document).
fn admin_routes(paths: &mut Paths) {
    const JSON: Option<&str> = Some("application/json");
    let admin = |path, method, summary, body| HostRoute {
        path,
        method,
        summary,
        role: Role::Admin,
        ok: (&["application/json"], json_object),
        errors: &[],
        body,
        tag: "admin",
    };
    let routes = [
        HostRoute {
            role: Role::Anonymous,
            ok: (&["text/plain"], string),
            tag: "host",
            ..admin(
                "/metrics",
                HttpMethod::Get,
                "Prometheus metrics (text exposition format 0.0.4).",
                None,
            )
        },
        admin(
            "/admin/api/reload",
            HttpMethod::Post,
            "Build a new generation from the plugins directory and swap it in.",
            None,
        ),
        admin(
            "/admin/api/generations",
            HttpMethod::Get,
            "The serving generation, retired ones still draining, and the last reload.",
            None,
        ),
        admin(
            "/admin/api/plugins",
            HttpMethod::Get,
            "Every plugin, enabled or not.",
            None,
        ),
        HostRoute {
            errors: &[(
                "422",
                "Refused: not a component, another plugin's name, a route conflict, ...",
            )],
            ..admin(
                "/admin/api/plugins/{name}",
                HttpMethod::Put,
                "Deploy a plugin component (the body is the .wasm file).",
                Some("application/octet-stream"),
            )
        },
        HostRoute {
            errors: &[("404", "No such plugin.")],
            ..admin(
                "/admin/api/plugins/{name}",
                HttpMethod::Delete,
                "Remove a plugin.",
                None,
            )
        },
        HostRoute {
            errors: &[("404", "No such plugin.")],
            ..admin(
                "/admin/api/plugins/{name}/disable",
                HttpMethod::Post,
                "Stop serving a plugin, keeping its file.",
                None,
            )
        },
        HostRoute {
            errors: &[("404", "No such plugin.")],
            ..admin(
                "/admin/api/plugins/{name}/enable",
                HttpMethod::Post,
                "Serve a disabled plugin again.",
                None,
            )
        },
        HostRoute {
            errors: &[("404", "Not in cluster mode.")],
            ..admin(
                "/admin/api/nodes",
                HttpMethod::Get,
                "Cluster mode: every node's state.",
                None,
            )
        },
        admin("/admin/api/users", HttpMethod::Get, "Every user.", None),
        HostRoute {
            errors: &[
                ("409", "The user exists."),
                ("422", "Invalid name, password or role."),
            ],
            ..admin(
                "/admin/api/users",
                HttpMethod::Post,
                "Add a user ({name, password, role}).",
                JSON,
            )
        },
        HostRoute {
            errors: &[
                ("404", "No such user."),
                ("409", "The last admin cannot be removed."),
            ],
            ..admin(
                "/admin/api/users/{name}",
                HttpMethod::Delete,
                "Remove a user and their keys and sessions.",
                None,
            )
        },
        HostRoute {
            errors: &[("404", "No such user."), ("422", "Invalid password.")],
            ..admin(
                "/admin/api/users/{name}/password",
                HttpMethod::Put,
                "Set a user's password ({password}).",
                JSON,
            )
        },
        admin(
            "/admin/api/keys",
            HttpMethod::Get,
            "Every API key (never the secret); ?user=NAME for one user's.",
            None,
        ),
        HostRoute {
            errors: &[
                ("404", "No such user."),
                ("422", "Invalid role, scope or expiry."),
            ],
            ..admin(
                "/admin/api/keys",
                HttpMethod::Post,
                "Make an API key ({user, role, scopes, expires}); the answer holds the secret once.",
                JSON,
            )
        },
        HostRoute {
            errors: &[("404", "No such key.")],
            ..admin(
                "/admin/api/keys/{id}",
                HttpMethod::Delete,
                "Revoke an API key by id or visible prefix.",
                None,
            )
        },
        admin(
            "/admin/api/audit",
            HttpMethod::Get,
            "The audit log, newest first (?before=ID&limit=N).",
            None,
        ),
    ];
    for r in routes {
        add_host_route(paths, r);
    }
}

fn components() -> utoipa::openapi::Components {
    let error = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("The host's error answer."))
        .property("error", string())
        .required("error")
        .property("request_id", string())
        .build();
    ComponentsBuilder::new()
        .schema("Error", Schema::Object(error))
        .security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("phk_ API key")
                    .description(Some("An API key in `Authorization: Bearer phk_...`."))
                    .build(),
            ),
        )
        .security_scheme(
            "apiKeyHeader",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Api-Key",
                "An API key in the X-Api-Key header.",
            ))),
        )
        .security_scheme(
            "apiKeyQuery",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "api-key",
                "An API key in the api-key query parameter (it never reaches the plugin).",
            ))),
        )
        .security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "ph_session",
                "The admin UI's session cookie (state-changing requests also need x-csrf-token).",
            ))),
        )
        .build()
}
