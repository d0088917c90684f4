//! What every `/v1` operation of the OpenAPI document shares, added after the handlers'
//! annotations so that those only say what is particular to them: the API's description,
//! bearer security, the scopes, the `Idempotency-Key` header and the replay marker on writes,
//! the common error responses, and that responses always carry every field.

use serde_json::{Map, Value, json};

use crate::OPERATION_SCOPES;

const API_DESCRIPTION: &str = "The loyalty ledger of a club: members, purchases that earn points, \
redemptions, adjustments, transfers, and the program that sets the rules.\n\n\
Authenticate every `/v1` call with `Authorization: Bearer <key>`; a key belongs to one club \
and has a scope: `admin` (everything), `pos` (enrollment, look-up, purchases, refunds, \
redemptions) or `read` (GET only). Bodies are JSON and unknown fields are refused. Send an \
`Idempotency-Key` with every POST: a retry answers the stored response with \
`Idempotent-Replayed: true`. Lists answer `{\"data\": [...], \"next_cursor\": ...}`; pass \
`next_cursor` back as `?cursor=` until it is null. Errors are RFC 9457 problem documents with \
a stable `code`.";

/// Adds the conventions to the document made from the handlers' annotations.
pub fn apply(document: &mut Value) {
    if let Some(info) = document.get_mut("info") {
        info["description"] = json!(API_DESCRIPTION);
    }
    document["components"]["securitySchemes"] = json!({
        "api_key": {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key (`ptk_...`), created with `patron keys create`."
        }
    });
    require_every_response_field(document);
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if path.starts_with("/v1/") {
                apply_to_operation(method, operation);
            } else {
                operation["security"] = json!([]);
            }
        }
    }
}

/// Responses always carry every field (`null` when there is no value): say so, so that
/// clients may rely on it and the contract test checks it.
fn require_every_response_field(document: &mut Value) {
    let Some(schemas) = document
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        if !(name.ends_with("Out") || name.ends_with("Page")) {
            continue;
        }
        let fields: Vec<Value> = schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().map(Value::String).collect())
            .unwrap_or_default();
        schema["required"] = Value::Array(fields);
    }
}

/// One `/v1` operation: security, its scopes, the key and the replay marker where it takes
/// one, and the common errors.
fn apply_to_operation(method: &str, operation: &mut Value) {
    operation["security"] = json!([{ "api_key": [] }]);
    let id = operation
        .get("operationId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    describe_scopes(&id, operation);
    let writes = matches!(method, "post" | "patch" | "put");
    // A PUT or DELETE that runs through `mutate` takes a key too (the program's PUT is
    // idempotent by its text).
    let idempotent = matches!(method, "post" | "patch")
        || matches!(id.as_str(), "set_member_tier" | "remove_member_tier");
    if idempotent {
        add_idempotency_key(operation);
    }
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    if idempotent {
        mark_replays(responses);
    }
    add_common_errors(responses, writes, idempotent);
}

fn describe_scopes(id: &str, operation: &mut Value) {
    let Some((_, scopes)) = OPERATION_SCOPES.iter().find(|(op, _)| *op == id) else {
        return;
    };
    let description = operation
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let scope_line = format!("Scopes: {scopes}.");
    operation["description"] = json!(if description.is_empty() {
        scope_line
    } else {
        format!("{description}\n\n{scope_line}")
    });
}

fn add_idempotency_key(operation: &mut Value) {
    let parameters = operation
        .as_object_mut()
        .map(|op| op.entry("parameters").or_insert_with(|| json!([])));
    if let Some(Value::Array(parameters)) = parameters {
        parameters.push(json!({
            "name": "Idempotency-Key",
            "in": "header",
            "required": false,
            "description": "Makes the call safe to retry: the same key with the same request answers the stored response (with `Idempotent-Replayed: true`) and has no new effect; with another request it is refused (422). Keys are kept at least 24 hours, per club.",
            "schema": { "type": "string", "minLength": 1, "maxLength": 255 }
        }));
    }
}

fn mark_replays(responses: &mut Map<String, Value>) {
    for (status, response) in responses.iter_mut() {
        if status.starts_with('2') {
            response["headers"]["Idempotent-Replayed"] = json!({
                "description": "`true` when this is the stored response of an earlier identical request",
                "schema": { "type": "string", "enum": ["true"] }
            });
        }
    }
}

fn add_common_errors(responses: &mut Map<String, Value>, writes: bool, idempotent: bool) {
    let mut common: Vec<(&str, &str)> = vec![
        (
            "400",
            "`malformed_body`, `unknown_field`, `missing_field`, `invalid_type`, `invalid_parameter`, `invalid_idempotency_key`, `malformed_request`",
        ),
        (
            "401",
            "`unauthenticated`: no key, or an unknown or revoked one",
        ),
        ("403", "`insufficient_scope`"),
        ("414", "`uri_too_long`: the path and query are over 64 KiB"),
        ("429", "`rate_limited`: see `Retry-After`"),
        (
            "431",
            "`headers_too_large`: over 100 header fields, or about 400 KiB of them",
        ),
        ("500", "`internal_error`"),
        ("503", "`unavailable`: see `Retry-After`"),
    ];
    if writes {
        common.push(("413", "`body_too_large`"));
        common.push(("415", "`unsupported_media_type`"));
    }
    if idempotent {
        common.push((
            "409",
            "`idempotency_key_in_flight`: the same key is still running",
        ));
        common.push((
            "422",
            "`idempotency_key_reused`: the key was used for another request",
        ));
    }
    for (status, description) in common {
        match responses.get_mut(status) {
            Some(existing) => {
                let before = existing
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                existing["description"] = json!(format!("{before}; {description}"));
            }
            None => {
                responses.insert(status.to_string(), problem_response(description));
            }
        }
    }
}

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {
            crate::problem::PROBLEM_CONTENT_TYPE: {
                "schema": { "$ref": "#/components/schemas/Problem" }
            }
        }
    })
}
