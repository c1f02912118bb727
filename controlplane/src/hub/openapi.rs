//! The OpenAPI description of the hub's API, generated from the handlers'
//! `#[utoipa::path]` attributes and the request and response types
//! (`utoipa::ToSchema`), served at `/api/openapi.json`. Each operation's
//! description ends with the role it needs, taken from [`ROUTES`], so the
//! table stays the one place that says it. `docs/openapi.json` is a
//! committed copy for clients; a test fails when it differs from what the
//! code generates (`SKUA_BLESS=1` rewrites it).

use std::sync::OnceLock;

use bytes::Bytes;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;

use super::api::{self, ROUTES};
use super::auth::Need;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "skua hub API",
        version = "1",
        description = "The hub's HTTP API. Every path but /healthz, /readyz and the dashboard's \
            static files needs `Authorization: Bearer TOKEN`. Roles: read (GET, console \
            excepted), admin (everything the dashboard does, console lines, hub.action), \
            worker (/api/link/* and hub.action; the only role that receives env values). \
            401 without or with an unknown token, 403 when the token's role (or, for a \
            worker, its identity) may not; 403 for a request from another origin or, with \
            hub.auth none, for a Host that is not loopback; 415 for a JSON body without \
            Content-Type: application/json."
    ),
    paths(
        api::health, api::ready, api::openapi_json, api::metrics,
        api::agents_list, api::agent_get, api::agent_put, api::agent_delete,
        api::agent_activate, api::agent_deactivate, api::examples,
        api::env_list, api::env_put, api::env_delete,
        api::items_query, api::items_stream, api::item_get,
        api::console_query, api::console_stream,
        api::jobs, api::job_run, api::job_remove, api::workers,
        api::hub_action, api::link_events, api::link_items, api::link_console, api::link_stats,
    ),
    modifiers(&Roles),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Adds the bearer scheme, and to each operation the role [`ROUTES`] says
/// it needs.
struct Roles;

impl utoipa::Modify for Roles {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        for r in ROUTES {
            let Some(item) = doc.paths.paths.get_mut(r.pattern) else { continue };
            let op = match r.method {
                "GET" => item.get.as_mut(),
                "PUT" => item.put.as_mut(),
                "POST" => item.post.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            let Some(op) = op else { continue };
            let role = match r.need {
                Need::Public => "none (public)",
                Need::Read => "read or admin",
                Need::Admin => "admin",
                Need::Worker => "worker",
                Need::Action => "worker or admin",
            };
            let said = op.description.take().unwrap_or_default();
            let sep = if said.is_empty() { "" } else { "\n\n" };
            op.description = Some(format!("{said}{sep}Role: {role}."));
        }
    }
}

/// The description as a value.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The description's JSON (pretty, as committed in `docs/openapi.json`),
/// built once.
pub fn json() -> Bytes {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    JSON.get_or_init(|| {
        let mut s = document().to_pretty_json().unwrap_or_default();
        s.push('\n');
        Bytes::from(s)
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::api::Op;

    /// Every route of the table is described with its method, and nothing
    /// else is: the table and the handlers' attributes agree.
    #[test]
    fn every_route_of_the_table_is_described() {
        let v: serde_json::Value = serde_json::from_slice(&json()).unwrap();
        assert_eq!(v["openapi"], "3.1.0");
        let mut listed = 0;
        for r in ROUTES.iter().filter(|r| r.op != Op::Static) {
            let m = r.method.to_ascii_lowercase();
            let op = &v["paths"][r.pattern][&m];
            assert!(op.is_object(), "openapi.json lacks {} {}", r.method, r.pattern);
            let d = op["description"].as_str().unwrap_or("");
            assert!(d.contains("Role: "), "{} {}: {d}", r.method, r.pattern);
            listed += 1;
        }
        let described: usize =
            v["paths"].as_object().unwrap().values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(described, listed, "an operation the route table does not have");
        let schemes = &v["components"]["securitySchemes"]["bearer"];
        assert_eq!(schemes["scheme"], "bearer");
        // Every schema reference resolves.
        let text = String::from_utf8(json().to_vec()).unwrap();
        for r in text.split("\"$ref\": \"#/components/schemas/").skip(1) {
            let name = r.split('"').next().unwrap();
            assert!(v["components"]["schemas"][name].is_object(), "dangling $ref {name}");
        }
    }

    /// `docs/openapi.json` is what the code generates.
    #[test]
    fn the_committed_copy_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");
        let now = json();
        if std::env::var_os("SKUA_BLESS").is_some() {
            std::fs::write(path, &now).unwrap();
        }
        let committed = std::fs::read(path).unwrap_or_default();
        assert!(
            committed == now,
            "docs/openapi.json differs from the generated description; run \
             `SKUA_BLESS=1 cargo test -p controlplane --lib openapi` and commit it"
        );
    }
}
