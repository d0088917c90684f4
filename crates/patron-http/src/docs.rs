//! The API reference page on `/docs`: the OpenAPI document rendered to plain HTML on the
//! server, once at start-up. No JavaScript, no CDN: it works offline and behind firewalls.

use std::fmt::Write;

use serde_json::Value;

use crate::problem::Code;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}\
code,pre{font-family:ui-monospace,monospace;background:#f4f4f4;padding:0 .25em;border-radius:3px}\
table{border-collapse:collapse;width:100%;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#fafafa}.op{border-top:2px solid #eee;padding-top:.5em;margin-top:1.5em}\
.method{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}\
.get{color:#0a6}.post{color:#06c}.put{color:#a60}.patch{color:#a0a}.delete{color:#c00}nav ul{columns:2}td p{margin:.15em 0}";

/// Escapes text for HTML content and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Text with `code spans` shown as code, and paragraphs kept.
fn prose(text: &str) -> String {
    let mut out = String::new();
    for paragraph in text.split("\n\n") {
        out.push_str("<p>");
        for (index, part) in escape(paragraph).split('`').enumerate() {
            if index % 2 == 1 {
                let _ = write!(out, "<code>{part}</code>");
            } else {
                out.push_str(part);
            }
        }
        out.push_str("</p>");
    }
    out
}

fn schema_anchor(name: &str) -> String {
    format!("schema-{name}")
}

/// A JSON Schema as a short type expression with links to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!(
            "<a href=\"#{}\">{}</a>",
            escape(&schema_anchor(name)),
            escape(name)
        );
    }
    for combinator in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema.get(combinator).and_then(Value::as_array) {
            let joiner = if combinator == "allOf" {
                " &amp; "
            } else {
                " | "
            };
            return parts.iter().map(type_of).collect::<Vec<_>>().join(joiner);
        }
    }
    let types: Vec<String> = match schema.get("type") {
        Some(Value::String(single)) => vec![single.clone()],
        Some(Value::Array(many)) => many
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".to_string();
    }
    types
        .iter()
        .map(|kind| match kind.as_str() {
            "array" => format!(
                "array of {}",
                schema
                    .get("items")
                    .map_or_else(|| "any".to_string(), type_of)
            ),
            "object" if schema.get("properties").is_none() => "object".to_string(),
            other => match schema.get("format").and_then(Value::as_str) {
                Some(format) => format!("{} ({})", escape(other), escape(format)),
                None => escape(other),
            },
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

fn render_parameters(out: &mut String, parameters: &[Value]) {
    if parameters.is_empty() {
        return;
    }
    out.push_str("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Type</th><th>Required</th><th>Description</th></tr>");
    for parameter in parameters {
        let text = |key: &str| {
            parameter
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let required = parameter
            .get("required")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text("name")),
            escape(&text("in")),
            parameter
                .get("schema")
                .map_or_else(|| "any".to_string(), type_of),
            if required { "yes" } else { "no" },
            prose(&text("description")),
        );
    }
    out.push_str("</table>");
}

fn render_content(content: Option<&Value>) -> String {
    let Some(content) = content.and_then(Value::as_object) else {
        return String::new();
    };
    content
        .iter()
        .map(|(media_type, media)| {
            format!(
                "<code>{}</code> {}",
                escape(media_type),
                media.get("schema").map_or_else(String::new, type_of)
            )
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

fn render_operation(out: &mut String, method: &str, path: &str, operation: &Value) {
    let text = |key: &str| {
        operation
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let id = text("operationId");
    let _ = write!(
        out,
        "<div class=\"op\" id=\"op-{}\"><h3><span class=\"method {}\">{}</span> <code>{}</code></h3><p><strong>{}</strong></p>{}",
        escape(&id),
        escape(method),
        escape(method),
        escape(path),
        escape(&text("summary")),
        prose(&text("description")),
    );
    if let Some(parameters) = operation.get("parameters").and_then(Value::as_array) {
        render_parameters(out, parameters);
    }
    if let Some(body) = operation.get("requestBody") {
        let description = body
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let _ = write!(
            out,
            "<h4>Request body</h4><p>{}</p><p>{}</p>",
            render_content(body.get("content")),
            escape(description)
        );
    }
    if let Some(responses) = operation.get("responses").and_then(Value::as_object) {
        out.push_str(
            "<h4>Responses</h4><table><tr><th>Status</th><th>Description</th><th>Body</th></tr>",
        );
        for (status, response) in responses {
            let description = response
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let headers = response
                .get("headers")
                .and_then(Value::as_object)
                .map(|headers| {
                    headers
                        .keys()
                        .map(|name| format!("<code>{}</code>", escape(name)))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|names| !names.is_empty())
                .map_or_else(String::new, |names| format!("<br>Headers: {names}"));
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}{}</td></tr>",
                escape(status),
                prose(description),
                render_content(response.get("content")),
                headers,
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</div>");
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let _ = write!(
        out,
        "<div class=\"op\" id=\"{}\"><h3><code>{}</code></h3>",
        escape(&schema_anchor(name)),
        escape(name)
    );
    if let Some(description) = schema.get("description").and_then(Value::as_str) {
        out.push_str(&prose(description));
    }
    let mut parts = vec![schema];
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        parts.extend(all.iter());
    }
    let mut rows = String::new();
    for part in parts {
        if part.get("$ref").is_some() {
            let _ = write!(
                rows,
                "<tr><td colspan=\"4\">all the fields of {}</td></tr>",
                type_of(part)
            );
        }
        let required: Vec<&str> = part
            .get("required")
            .and_then(Value::as_array)
            .map(|names| names.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(properties) = part.get("properties").and_then(Value::as_object) {
            for (field, property) in properties {
                let description = property
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let _ = write!(
                    rows,
                    "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(field),
                    type_of(property),
                    if required.contains(&field.as_str()) {
                        "yes"
                    } else {
                        "no"
                    },
                    prose(description),
                );
            }
        }
    }
    if !rows.is_empty() {
        let _ = write!(
            out,
            "<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Description</th></tr>{rows}</table>"
        );
    } else {
        let _ = write!(out, "<p>{}</p>", type_of(schema));
    }
    out.push_str("</div>");
}

/// An operation of the document: (first tag, path, method, the operation).
type Operation = (String, String, String, Value);

/// Renders the reference page from the OpenAPI document.
pub fn render(document: &Value) -> String {
    let mut out = String::with_capacity(128 * 1024);
    render_head(&mut out, document);
    let (tags, operations) = operations_by_tag(document);
    render_nav(&mut out, &tags, &operations);
    for tag in &tags {
        let description = document
            .get("tags")
            .and_then(Value::as_array)
            .and_then(|declared| {
                declared
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some(tag.as_str()))
            })
            .and_then(|t| t.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let _ = write!(out, "<h2>{}</h2>{}", escape(tag), prose(description));
        for (_, path, method, operation) in operations.iter().filter(|(t, ..)| t == tag) {
            render_operation(&mut out, method, path, operation);
        }
    }
    render_error_codes(&mut out);
    out.push_str("<h2 id=\"schemas\">Schemas</h2>");
    if let Some(schemas) = document
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (name, schema) in schemas {
            render_schema(&mut out, name, schema);
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// The page's head, title and the API's description.
fn render_head(out: &mut String, document: &Value) {
    let info = document.get("info").cloned().unwrap_or(Value::Null);
    let title = info.get("title").and_then(Value::as_str).unwrap_or("API");
    let version = info
        .get("version")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} reference</title><style>{STYLE}</style></head><body><h1>{} <small>v{}</small></h1>{}\
         <p>The machine-readable contract is <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>",
        escape(title),
        escape(title),
        escape(version),
        prose(
            info.get("description")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
    );
}

/// The operations, grouped by their first tag, in path order; the tags in the document's
/// order, then those it does not declare.
fn operations_by_tag(document: &Value) -> (Vec<String>, Vec<Operation>) {
    let mut operations: Vec<Operation> = Vec::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if operation.get("responses").is_none() {
                    continue;
                }
                let tag = operation
                    .get("tags")
                    .and_then(Value::as_array)
                    .and_then(|tags| tags.first())
                    .and_then(Value::as_str)
                    .unwrap_or("other")
                    .to_string();
                operations.push((tag, path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    let mut tags: Vec<String> = Vec::new();
    if let Some(declared) = document.get("tags").and_then(Value::as_array) {
        tags.extend(
            declared
                .iter()
                .filter_map(|tag| tag.get("name").and_then(Value::as_str))
                .map(str::to_string),
        );
    }
    for (tag, ..) in &operations {
        if !tags.contains(tag) {
            tags.push(tag.clone());
        }
    }
    (tags, operations)
}

/// The list of endpoints at the top of the page.
fn render_nav(out: &mut String, tags: &[String], operations: &[Operation]) {
    out.push_str("<nav><h2>Endpoints</h2><ul>");
    for tag in tags {
        for (_, path, method, operation) in operations.iter().filter(|(t, ..)| t == tag) {
            let id = operation
                .get("operationId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let _ = write!(
                out,
                "<li><a href=\"#op-{}\"><span class=\"method {}\">{}</span> <code>{}</code></a></li>",
                escape(id),
                escape(method),
                escape(method),
                escape(path)
            );
        }
    }
    out.push_str(
        "</ul><p><a href=\"#errors\">Error codes</a> · <a href=\"#schemas\">Schemas</a></p></nav>",
    );
}

/// The table of every problem code.
fn render_error_codes(out: &mut String) {
    out.push_str("<h2 id=\"errors\">Error codes</h2><p>Every error is an RFC 9457 problem document (<code>application/problem+json</code>) whose <code>code</code> is one of these.</p>\
                   <table><tr><th>Code</th><th>Status</th><th>Title</th><th>When</th></tr>");
    for code in Code::ALL {
        let _ = write!(
            out,
            "<tr id=\"problem-{}\"><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(code.as_str()),
            escape(code.as_str()),
            code.status().as_u16(),
            escape(code.title()),
            prose(code.when()),
        );
    }
    out.push_str("</table>");
}
