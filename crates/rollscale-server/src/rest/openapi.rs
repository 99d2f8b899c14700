//! The OpenAPI 3.0 document of the REST API, generated from [`ROUTES`](super::ROUTES) and the
//! [`dto`](super::dto) types' JSON schemas. `docs/openapi.json` in the repository is this
//! document; a test fails when they differ (`UPDATE_OPENAPI=1 cargo test -p rollscale-server
//! --test rest_api` rewrites it).

use super::dto::ErrorBody;
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

/// Makes a type's schema (a `$ref` into the components) with the document's generator.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// The [`SchemaFn`] of `T`.
pub fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// Path parameters of an OpenAPI path (`{id}`).
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect()
}

/// The document, as a JSON value.
pub fn document() -> Value {
    let mut generator = SchemaSettings::openapi3().into_generator();
    let error = schema::<ErrorBody>(&mut generator);
    let mut paths = Map::new();
    for route in super::ROUTES {
        let mut parameters = path_parameters(route.path);
        for (name, description) in route.query {
            parameters.push(json!({"name": name, "in": "query", "required": false, "description": description,
                                   "schema": {"type": "string"}}));
        }
        if super::idempotent(route) {
            parameters.push(json!({
                "name": "Idempotency-Key", "in": "header", "required": false,
                "description": "1 to 64 printable ASCII characters: the first request with this key creates, a \
                                retry with the same key and request gets the first answer and creates nothing, \
                                and the key with another request is refused (IdempotentParameterMismatch). \
                                Per AccessKey; the RPC API's ClientToken.",
                "schema": {"type": "string", "maxLength": 64},
            }));
        }
        let content_type = if route.stream { "text/event-stream" } else { "application/json" };
        let mut operation = json!({
            "summary": route.summary,
            "operationId": operation_id(route.method, route.path),
            "x-rollscale-action": route.action,
            "parameters": parameters,
            "responses": {
                "200": {"description": "OK", "content": {content_type: {"schema": (route.response)(&mut generator)}}},
                "default": {"description": "An error, with a code", "content": {"application/json": {"schema": error}}},
            },
            "security": [{"acs3": []}, {"bearer": []}],
        });
        if let Some((field, choices)) = route.action_by {
            let by_value: Map<String, Value> =
                choices.iter().map(|(value, action)| (value.to_string(), json!(action))).collect();
            operation["x-rollscale-action-by"] = json!({"field": field, "actions": by_value});
        }
        if let Some(body) = route.body {
            operation["requestBody"] =
                json!({"required": true, "content": {"application/json": {"schema": body(&mut generator)}}});
        }
        let item = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        item[route.method] = operation;
    }
    paths.insert(
        "/v1/openapi.json".into(),
        json!({"get": {"summary": "This document", "operationId": "getOpenapi", "security": [],
                       "responses": {"200": {"description": "OK", "content": {"application/json": {}}}}}}),
    );
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "rollscale REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Scaling groups and their rolling updates, over the same service as the Alibaba Cloud \
                            RPC API on `/`. Authenticate with an ACS3-HMAC-SHA256 signature or a bearer token \
                            (`POST /v1/tokens`, or `rollscale token`).",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "acs3": {"type": "apiKey", "in": "header", "name": "Authorization",
                         "description": "ACS3-HMAC-SHA256 Credential=<AccessKey id>,SignedHeaders=…,Signature=…"},
                "bearer": {"type": "http", "scheme": "bearer"},
            },
        },
    })
}

/// The document as served and as checked in: pretty JSON with a final newline.
pub fn document_text() -> String {
    let mut text = serde_json::to_string_pretty(&document()).unwrap_or_default();
    text.push('\n');
    text
}

/// `get /v1/rolling-updates/{id}/instances` → `getRollingUpdatesIdInstances`.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for word in path.trim_start_matches("/v1/").split(['/', '-', '_']) {
        let word = word.trim_matches(|c| c == '{' || c == '}');
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            id.push(first.to_ascii_uppercase());
            id.extend(chars);
        }
    }
    id
}
