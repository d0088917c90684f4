//! A real server on a real socket per backend, a club on it with keys of every scope (and a
//! second club to prove isolation), and an HTTP client that checks every response it gets
//! against `/openapi.json` (the contract test) and every error against RFC 9457.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;
use patron_engine::keys::Scope;
use patron_engine::model::Tenant;
use patron_engine::testing::{self, TestDatabase};
use patron_engine::{Engine, ManualClock};
use patron_http::ServerConfig;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The coffee chain example, exactly as shipped (with its earning rules and join gift).
pub const COFFEE_EXAMPLE: &str = include_str!("../../../../examples/programs/coffee-chain.toml");
/// The coffee chain as most tests use it: its join gift ended in 2000, so that a new member's
/// balance starts at 0. The rule tests use [`COFFEE_EXAMPLE`].
pub static COFFEE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let source = COFFEE_EXAMPLE.replace(
        "kind = \"join\"\npoints = 25",
        "kind = \"join\"\npoints = 25\nuntil = 2000-01-01",
    );
    assert_ne!(
        source, COFFEE_EXAMPLE,
        "the example's join gift moved: update the tests"
    );
    source
});

/// The instant every test club lives at.
pub fn start() -> Timestamp {
    "2026-03-02T17:00:00Z".parse().unwrap()
}

/// The OpenAPI document as the server describes itself, with compiled response schemas.
pub struct Contract {
    document: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

impl Contract {
    pub fn new() -> Contract {
        let document: Value = serde_json::from_str(&patron_http::openapi_json()).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        Contract {
            document,
            validators: Mutex::new(HashMap::new()),
        }
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    /// The operation serving `method path`, with its path template.
    fn operation(&self, method: &str, path: &str) -> Option<(String, &Value)> {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        let paths = self.document["paths"].as_object()?;
        for (template, item) in paths {
            let pattern: Vec<&str> = template.split('/').collect();
            let matches = pattern.len() == segments.len()
                && pattern.iter().zip(&segments).all(|(p, s)| {
                    (p.starts_with('{') && p.ends_with('}') && !s.is_empty()) || p == s
                });
            if matches && let Some(operation) = item.get(method.to_ascii_lowercase()) {
                return Some((template.clone(), operation));
            }
        }
        None
    }

    fn validator(&self, id: &str, schema: &Value) -> Arc<jsonschema::Validator> {
        let mut validators = self.validators.lock().unwrap();
        if let Some(validator) = validators.get(id) {
            return validator.clone();
        }
        // OpenAPI 3.1 schemas are JSON Schema 2020-12; wrapping the response schema in a
        // document that carries `components` makes every `#/components/schemas/...` resolve.
        let wrapped = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "components": self.document["components"],
            "allOf": [schema],
        });
        let validator = Arc::new(
            jsonschema::validator_for(&wrapped)
                .unwrap_or_else(|e| panic!("schema of {id} does not compile: {e}")),
        );
        validators.insert(id.to_string(), validator.clone());
        validator
    }

    /// Panics unless the response is one the document describes, with a body its schema
    /// accepts. Routes the document does not describe (the documents themselves, unknown
    /// routes) are not checked.
    pub fn check(&self, method: &str, path: &str, answer: &Answer) {
        let Some((template, operation)) = self.operation(method, path) else {
            return;
        };
        let status = answer.status.to_string();
        let Some(response) = operation["responses"].get(&status) else {
            panic!(
                "contract: {method} {template} answered {status}, which /openapi.json does not list: {}",
                answer.text
            );
        };
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(
                answer.text.is_empty(),
                "contract: {method} {template} {status} has a body the document does not describe"
            );
            return;
        };
        let media_type = answer.content_type();
        let Some(media) = content.get(&media_type).or_else(|| {
            content
                .iter()
                .find(|(declared, _)| declared.split(';').next() == Some(media_type.as_str()))
                .map(|(_, media)| media)
        }) else {
            panic!(
                "contract: {method} {template} {status} answered {media_type}, the document says {:?}",
                content.keys().collect::<Vec<_>>()
            );
        };
        let Some(schema) = media.get("schema") else {
            return;
        };
        let instance = if media_type.contains("json") {
            answer.body.clone()
        } else {
            Value::String(answer.text.clone())
        };
        let id = format!("{method} {template} {status} {media_type}");
        let validator = self.validator(&id, schema);
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "contract: {id}: the body does not match the schema:\n{}\nbody: {}",
            errors.join("\n"),
            answer.text
        );
    }
}

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    /// The body parsed as JSON (Null when it is not JSON).
    pub body: Value,
}

impl Answer {
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn replayed(&self) -> bool {
        self.header("idempotent-replayed").as_deref() == Some("true")
    }

    /// The problem's `code`, or a panic naming what came instead.
    pub fn code(&self) -> &str {
        self.body["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not a problem document: {} {}", self.status, self.text))
    }

    /// Panics unless this is the problem `code` with `status`.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.body["code"].as_str()),
            (status, Some(code)),
            "expected {status} {code}, got {} {}",
            self.status,
            self.text
        );
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status, status, "unexpected answer: {}", self.text);
        &self.body
    }
}

/// RFC 9457: every error is `application/problem+json` with the standard members and ours.
fn check_problem(method: &str, path: &str, answer: &Answer) {
    // Readiness answers its own document when not ready (load balancers read the status).
    if answer.status < 400 || path == "/readyz" {
        return;
    }
    let context = format!("{method} {path} → {}: {}", answer.status, answer.text);
    assert_eq!(
        answer.content_type(),
        "application/problem+json",
        "{context}"
    );
    let body = &answer.body;
    assert_eq!(body["status"], answer.status, "{context}");
    let code = body["code"].as_str().unwrap_or_default();
    let known = patron_http::Code::parse(code)
        .unwrap_or_else(|| panic!("unknown problem code in {context}"));
    assert_eq!(known.status().as_u16(), answer.status, "{context}");
    assert_eq!(body["type"], format!("/problems/{code}"), "{context}");
    assert!(
        body["title"].as_str().is_some_and(|t| !t.is_empty()),
        "{context}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{context}"
    );
    if answer.status == 401 {
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{context}"
        );
    }
    if answer.status == 429 {
        let seconds: u64 = answer
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("429 without a Retry-After in seconds: {context}"));
        assert!(seconds >= 1, "{context}");
    }
}

/// What a request carries.
pub enum Body {
    None,
    Json(Value),
    Raw {
        content_type: Option<&'static str>,
        bytes: Vec<u8>,
    },
}

/// An HTTP client for one server that checks every answer.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
    contract: Arc<Contract>,
}

impl Api {
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        idempotency_key: Option<&str>,
        body: Body,
    ) -> Answer {
        let method_value = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method_value, format!("{}{path}", self.base));
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        if let Some(idempotency_key) = idempotency_key {
            request = request.header("idempotency-key", idempotency_key);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&value).unwrap()),
            Body::Raw {
                content_type,
                bytes,
            } => {
                let request = match content_type {
                    Some(content_type) => request.header("content-type", content_type),
                    None => request,
                };
                request.body(bytes)
            }
        };
        let response = request.send().await.unwrap_or_else(|e| {
            let shown: String = path.chars().take(200).collect();
            panic!("{method} {shown}: {e:?}")
        });
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        let answer = Answer {
            status,
            headers,
            text,
            body,
        };
        check_problem(method, path, &answer);
        self.contract.check(method, path, &answer);
        answer
    }

    pub async fn get(&self, path: &str, key: &str) -> Answer {
        self.send("GET", path, Some(key), None, Body::None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send("POST", path, Some(key), None, Body::Json(body))
            .await
    }

    pub async fn post_with_key(
        &self,
        path: &str,
        key: &str,
        idempotency_key: &str,
        body: Value,
    ) -> Answer {
        self.send(
            "POST",
            path,
            Some(key),
            Some(idempotency_key),
            Body::Json(body),
        )
        .await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Answer {
        self.send("PATCH", path, Some(key), None, Body::Json(body))
            .await
    }

    pub async fn put_program(&self, key: &str, source: &str) -> Answer {
        self.send(
            "PUT",
            "/v1/program",
            Some(key),
            None,
            Body::Raw {
                content_type: Some("application/toml"),
                bytes: source.as_bytes().to_vec(),
            },
        )
        .await
    }
}

/// A club served over HTTP on one backend.
pub struct Club {
    pub api: Api,
    pub engine: Engine,
    pub db: TestDatabase,
    pub tenant: Tenant,
    pub admin: String,
    pub pos: String,
    pub read: String,
    /// The admin key of a second club on the same server.
    pub other: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

impl Club {
    pub fn label(&self) -> &'static str {
        match self.db.backend() {
            patron_engine::testing::Backend::Sqlite => "sqlite",
            patron_engine::testing::Backend::Postgres => "postgres",
        }
    }

    /// Stops the server gracefully, then removes the database.
    pub async fn stop(mut self) {
        self.begin_shutdown();
        self.server_stopped().await;
        self.db.cleanup().await;
    }

    /// Asks the server to stop: it accepts nothing new, and lets requests in flight finish.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits until the server has stopped (panics if it failed).
    pub async fn server_stopped(&mut self) {
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Enrolls a member through the API and answers its id.
    pub async fn enroll(&self, external_id: &str) -> String {
        let answer = self
            .api
            .post(
                "/v1/members",
                &self.admin,
                json!({ "external_id": external_id, "channel": "pos" }),
            )
            .await;
        answer.assert_status(201)["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Credits points with an adjustment through the API.
    pub async fn grant(&self, member_id: &str, points: i64) {
        self.api
            .post(
                &format!("/v1/members/{member_id}/adjustments"),
                &self.admin,
                json!({ "points": points, "reason": "test grant" }),
            )
            .await
            .assert_status(201);
    }

    pub async fn available(&self, member_id: &str) -> i64 {
        self.api
            .get(&format!("/v1/members/{member_id}/balance"), &self.admin)
            .await
            .assert_status(200)["available"]
            .as_i64()
            .unwrap()
    }
}

/// A one-line USD purchase body.
pub fn purchase(document_id: &str, member_id: Option<&str>, unit_price_minor: i64) -> Value {
    json!({
        "document_id": document_id,
        "member_id": member_id,
        "store_id": "store-1",
        "channel": "pos",
        "currency": "USD",
        "lines": [{ "sku": "LATTE", "category": "drinks", "quantity": "1", "unit_price_minor": unit_price_minor }]
    })
}

static CONTRACT: std::sync::OnceLock<Arc<Contract>> = std::sync::OnceLock::new();

pub fn contract() -> Arc<Contract> {
    CONTRACT.get_or_init(|| Arc::new(Contract::new())).clone()
}

/// A test configuration: generous rate limits, small pages.
pub fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        page_size_max: 5,
        page_size_default: 3,
        ..ServerConfig::default()
    }
}

async fn key(engine: &Engine, tenant: &Tenant, scope: Scope) -> String {
    engine
        .create_api_key(tenant, scope, &format!("{} key", scope.as_str()), "test")
        .await
        .unwrap()
        .1
}

/// Starts a server on `127.0.0.1:0` over `db` with the coffee chain applied.
pub async fn club_on(db: TestDatabase, config: ServerConfig) -> Club {
    let clock = ManualClock::new(start());
    let engine = Engine::new(db.store.clone(), Arc::new(clock));
    let (tenant, _, _) = engine
        .apply_program("coffee", &COFFEE, "test")
        .await
        .unwrap();
    let (other_tenant, _, _) = engine
        .apply_program("other", &COFFEE, "test")
        .await
        .unwrap();
    let admin = key(&engine, &tenant, Scope::Admin).await;
    let pos = key(&engine, &tenant, Scope::Pos).await;
    let read = key(&engine, &tenant, Scope::Read).await;
    let other = key(&engine, &other_tenant, Scope::Admin).await;
    // Listening once bind returns: no waiting for the server to come up.
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(patron_http::serve_on(
        listener,
        engine.clone(),
        config,
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Club {
        api: Api {
            base,
            client,
            contract: contract(),
        },
        engine,
        db,
        tenant,
        admin,
        pos,
        read,
        other,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// One club per available backend.
pub async fn clubs_with(config: ServerConfig) -> Vec<Club> {
    let mut clubs = Vec::new();
    for db in testing::all().await {
        clubs.push(club_on(db, config.clone()).await);
    }
    clubs
}

pub async fn clubs() -> Vec<Club> {
    clubs_with(config()).await
}
