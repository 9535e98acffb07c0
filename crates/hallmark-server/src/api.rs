//! The HTTP API: routes, handlers, errors and the middleware stack.

use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use hallmark::ledger::Record;
use serde::{Deserialize, Serialize};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::State;
use crate::metrics::{RequestLabels, RouteLabels};
use crate::store::{ALG, Inserted, NewRecord};

/// An error answer: `{"error": {"code", "message"}}` with a stable code.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorInfo,
}

/// The code and message of an [`ErrorBody`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorInfo {
    /// Stable, machine-readable: `invalid_input`, `unsupported_algorithm`, `unauthorized`,
    /// `not_found`, `conflict`, `too_large`, `timeout`, `unavailable`, `internal`.
    pub code: String,
    /// For a person.
    pub message: String,
}

struct ApiError(StatusCode, &'static str, String);

impl ApiError {
    fn bad(code: &'static str, msg: impl Into<String>) -> ApiError {
        ApiError(StatusCode::BAD_REQUEST, code, msg.into())
    }
    fn internal(e: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %e, "internal error");
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the registry database is unavailable; try again".into(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(ErrorBody {
                error: ErrorInfo {
                    code: self.1.into(),
                    message: self.2,
                },
            }),
        )
            .into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

/// A body the extractor refused: too large (413) or malformed (400).
fn rejected(status: StatusCode, text: String) -> ApiError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is larger than this server accepts".into(),
        )
    } else {
        ApiError::bad("invalid_input", text)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(e: BytesRejection) -> Self {
        rejected(e.status(), e.body_text())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        rejected(e.status(), e.body_text())
    }
}

fn from_hallmark(e: &hallmark::Error) -> ApiError {
    let code = e.code();
    let status = match code {
        hallmark::ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        hallmark::ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    ApiError(status, code.as_str(), e.message())
}

type ApiResult<T> = Result<T, ApiError>;

/// One match of a soft-binding query.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    /// The manifest's label (`GET /manifests/{manifestId}`).
    pub manifest_id: String,
    /// 100 for an exact watermark ID match (hallmark's IDs are error-corrected: a decoded ID
    /// is either exact or not found).
    pub similarity_score: u32,
}

/// The answer of `/matches/*`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Matches {
    /// The matches, oldest stamp first.
    pub matches: Vec<Match>,
}

/// `POST /v1/records`: one signed stamp record and, ideally, its manifest store.
#[derive(Debug, Serialize, Deserialize)]
pub struct RecordIn {
    /// The signed record (as in a ledger).
    pub record: Record,
    /// The manifest store, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_store: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BindingQuery {
    alg: Option<String>,
    value: Option<String>,
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContentQuery {
    max_results: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManifestQuery {
    return_active_manifest: Option<bool>,
}

const INDEX_HTML: &str = include_str!("../web/index.html");
const APP_JS: &str = include_str!("../web/app.js");
const STYLE_CSS: &str = include_str!("../web/style.css");
const OPENAPI: &str = include_str!("openapi.json");

/// The whole application: routes plus limits, request IDs, tracing and metrics.
pub fn router(state: State) -> axum::Router {
    let max_body = state.0.config.max_body;
    let timeout = state.0.config.timeout;
    let concurrency = state.0.config.concurrency.max(1);
    axum::Router::new()
        .route("/", get(|| async { page(INDEX_HTML, "text/html; charset=utf-8") }))
        .route("/app.js", get(|| async { page(APP_JS, "text/javascript; charset=utf-8") }))
        .route("/style.css", get(|| async { page(STYLE_CSS, "text/css; charset=utf-8") }))
        .route("/openapi.json", get(|| async { page(OPENAPI, "application/json") }))
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/services/supportedAlgorithms", get(supported))
        .route("/matches/byBinding", get(by_binding_get).post(by_binding_post))
        .route("/matches/byContent", post(by_content))
        .route("/manifests/{manifest_id}", get(manifest))
        .route("/v1/records", post(records))
        .route("/v1/ledger", post(ledger))
        .route("/v1/checkpoints", post(checkpoint_post))
        .route("/v1/checkpoints/{public_key}", get(checkpoint_get))
        .route("/v1/verify", post(verify))
        .fallback(|| async {
            ApiError(StatusCode::NOT_FOUND, "not_found", "no such endpoint".into())
        })
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(
            ServiceBuilder::new()
                .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_: Box<dyn std::any::Any + Send>| {
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the request failed inside the server".into(),
                    )
                    .into_response()
                }))
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(PropagateRequestIdLayer::x_request_id())
                .layer(TraceLayer::new_for_http().on_response(
                    tower_http::trace::DefaultOnResponse::new().level(tracing::Level::INFO),
                ).make_span_with(
                    |req: &Request| {
                        let id = req
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("-");
                        tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                    },
                ))
                .layer(middleware::from_fn(move |req: Request, next: Next| async move {
                    match tokio::time::timeout(timeout, next.run(req)).await {
                        Ok(r) => r,
                        Err(_) => ApiError(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "timeout",
                            "the request took longer than this server allows".into(),
                        )
                        .into_response(),
                    }
                }))
                .layer(tower::limit::GlobalConcurrencyLimitLayer::new(concurrency)),
        )
        .with_state(state)
}

fn page(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
                ),
            ),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        ],
        body,
    )
        .into_response()
}

/// Counts and times every request by its route template (never the raw path: IDs in paths
/// would make the label set unbounded).
async fn observe(
    axum::extract::State(state): axum::extract::State<State>,
    req: Request,
    next: Next,
) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().to_string();
    let start = Instant::now();
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let resp = if declared.is_some_and(|n| n > state.0.config.max_body as u64) {
        // Refused from its declared length, before a byte of it is read.
        rejected(StatusCode::PAYLOAD_TOO_LARGE, String::new()).into_response()
    } else {
        next.run(req).await
    };
    let m = &state.0.metrics;
    m.requests
        .get_or_create(&RequestLabels {
            method,
            route: route.clone(),
            status: resp.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&RouteLabels { route })
        .observe(start.elapsed().as_secs_f64());
    resp
}

async fn readyz(axum::extract::State(s): axum::extract::State<State>) -> Response {
    match s.0.store.ping().await {
        Ok(()) => Json(serde_json::json!({"status": "ready", "database": s.0.store.backend()}))
            .into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

async fn metrics(axum::extract::State(s): axum::extract::State<State>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.0.metrics.render(),
    )
        .into_response()
}

async fn supported() -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "watermarks": [{"alg": ALG}],
        "fingerprints": [],
    }))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

async fn authorize(s: &State, headers: &HeaderMap) -> ApiResult<()> {
    let Some(token) = bearer(headers) else {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this endpoint needs a bearer token (hallmark serve token create)".into(),
        ));
    };
    if token.len() > 200 || !s.0.store.token_valid(token).await? {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the bearer token is not valid for this registry".into(),
        ));
    }
    Ok(())
}

async fn authorize_read(s: &State, headers: &HeaderMap) -> ApiResult<()> {
    if s.0.config.private_reads {
        authorize(s, headers).await
    } else {
        Ok(())
    }
}

fn max_results(m: Option<i64>) -> ApiResult<i64> {
    match m {
        None => Ok(10),
        Some(n) if (1..=1000).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad(
            "invalid_input",
            "maxResults must be between 1 and 1000",
        )),
    }
}

/// Checks a soft binding query and returns the binding value's bytes.
fn binding_value(alg: Option<&str>, value: Option<&str>) -> ApiResult<Vec<u8>> {
    let alg = alg.ok_or_else(|| ApiError::bad("invalid_input", "alg is required"))?;
    let value = value.ok_or_else(|| ApiError::bad("invalid_input", "value is required"))?;
    if alg != ALG {
        return Err(ApiError::bad(
            "unsupported_algorithm",
            format!(
                "unsupported soft-binding algorithm {:?}; this service resolves {ALG} (see /services/supportedAlgorithms)",
                alg.chars().take(100).collect::<String>()
            ),
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(value.trim()))
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(value.trim()))
        .map_err(|_| ApiError::bad("invalid_input", "value is not valid base64"))?;
    if bytes.len() != 8 {
        return Err(ApiError::bad(
            "invalid_input",
            format!(
                "a {ALG} value is 8 bytes (the 64-bit watermark ID); this one is {}",
                bytes.len()
            ),
        ));
    }
    Ok(bytes)
}

async fn lookup(s: &State, value: &[u8], max: i64) -> ApiResult<Matches> {
    let ids = s.0.store.by_binding(ALG, value, max).await?;
    Ok(Matches {
        matches: ids
            .into_iter()
            .map(|manifest_id| Match {
                manifest_id,
                similarity_score: 100,
            })
            .collect(),
    })
}

async fn by_binding_get(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    q: Result<Query<BindingQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<Matches>> {
    authorize_read(&s, &headers).await?;
    let Query(q) = q.map_err(|e| ApiError::bad("invalid_input", e.body_text()))?;
    let value = binding_value(q.alg.as_deref(), q.value.as_deref())?;
    Ok(Json(lookup(&s, &value, max_results(q.max_results)?).await?))
}

async fn by_binding_post(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    q: Result<Query<BindingQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Json<BindingQuery>, JsonRejection>,
) -> ApiResult<Json<Matches>> {
    authorize_read(&s, &headers).await?;
    let Json(b) = body?;
    let Query(q) = q.map_err(|e| ApiError::bad("invalid_input", e.body_text()))?;
    let max = b.max_results.or(q.max_results);
    let value = binding_value(b.alg.as_deref(), b.value.as_deref())?;
    Ok(Json(lookup(&s, &value, max_results(max)?).await?))
}

/// Runs CPU-heavy work on the blocking pool, no more at once than there are cores.
async fn cpu<T: Send + 'static>(
    s: &State,
    f: impl FnOnce(&hallmark::Verifier) -> T + Send + 'static,
) -> ApiResult<T> {
    let _permit =
        s.0.cpu
            .acquire()
            .await
            .map_err(|_| ApiError::internal("shutting down"))?;
    let st = s.clone();
    tokio::task::spawn_blocking(move || f(&st.0.verifier))
        .await
        .map_err(|_| {
            ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the request failed inside the server".into(),
            )
        })
}

async fn by_content(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    q: Result<Query<ContentQuery>, axum::extract::rejection::QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Matches>> {
    authorize_read(&s, &headers).await?;
    let Query(q) = q.map_err(|e| ApiError::bad("invalid_input", e.body_text()))?;
    let max = max_results(q.max_results)?;
    let body = body?;
    if body.is_empty() {
        return Err(ApiError::bad(
            "invalid_input",
            "the request body is empty: send the image's bytes",
        ));
    }
    let det = cpu(&s, move |v| v.detect(&body))
        .await?
        .map_err(|e| from_hallmark(&e))?;
    match det.filter(|d| d.detected).and_then(|d| d.payload) {
        Some(p) => Ok(Json(lookup(&s, &p.0.to_be_bytes(), max).await?)),
        None => Ok(Json(Matches { matches: vec![] })),
    }
}

async fn manifest(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    Path(id): Path<String>,
    q: Result<Query<ManifestQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    authorize_read(&s, &headers).await?;
    let Query(q) = q.map_err(|e| ApiError::bad("invalid_input", e.body_text()))?;
    if id.len() > 1000 {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such manifest".into(),
        ));
    }
    match s.0.store.manifest(&id).await? {
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such manifest".into(),
        )),
        Some(None) => Err(ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            "the registry knows this manifest from a signed ledger only, without its bytes".into(),
        )),
        Some(Some(bytes)) => {
            // A store holds the manifests of the ingredients first and the active one last.
            let bytes = if q.return_active_manifest == Some(true) {
                crate::jumbf::active_only(&bytes).ok_or_else(|| {
                    ApiError(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the stored manifest store is not well-formed JUMBF".into(),
                    )
                })?
            } else {
                bytes
            };
            Ok(([(header::CONTENT_TYPE, "application/c2pa")], bytes).into_response())
        }
    }
}

#[derive(Serialize)]
struct Ingested {
    status: &'static str,
    #[serde(rename = "manifestId")]
    manifest_id: String,
}

async fn records(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    body: Result<Json<RecordIn>, JsonRejection>,
) -> ApiResult<Response> {
    authorize(&s, &headers).await?;
    let Json(r) = body?;
    hallmark::ledger::check_record(&r.record).map_err(|why| {
        ApiError::bad(
            "invalid_record",
            format!("the record does not verify: {why}"),
        )
    })?;
    let store = match &r.manifest_store {
        Some(b) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b)
                .map_err(|_| {
                    ApiError::bad("invalid_input", "manifest_store is not valid base64")
                })?,
        ),
        None => None,
    };
    let manifest_id = r.record.entry.manifest_id.clone();
    let outcome =
        s.0.store
            .insert(&NewRecord {
                record: r.record,
                manifest_store: store,
                source: "stamp",
            })
            .await?;
    match outcome {
        Inserted::Created => {
            s.0.metrics
                .ingested
                .get_or_create(&RouteLabels {
                    route: "/v1/records".into(),
                })
                .inc();
            Ok((
                StatusCode::CREATED,
                Json(Ingested {
                    status: "created",
                    manifest_id,
                }),
            )
                .into_response())
        }
        Inserted::Existing => Ok(Json(Ingested {
            status: "existing",
            manifest_id,
        })
        .into_response()),
        Inserted::Conflict => Err(ApiError(
            StatusCode::CONFLICT,
            "conflict",
            "another record is already registered under this manifest ID".into(),
        )),
    }
}

#[derive(Serialize)]
struct LedgerIngested {
    records: usize,
    created: usize,
    existing: usize,
    conflicts: usize,
}

async fn ledger(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<LedgerIngested>> {
    authorize(&s, &headers).await?;
    let body = body?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::bad("invalid_input", "a ledger is UTF-8 text"))?;
    if text.trim().is_empty() {
        return Err(ApiError::bad("invalid_input", "the ledger is empty"));
    }
    // The whole chain and every signature are checked before anything is stored.
    let recs = hallmark::ledger::verify_chain(text, None).map_err(|b| {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_ledger",
            format!("the ledger is broken at line {}: {}", b.line, b.reason),
        )
    })?;
    // A ledger shorter than, or rewritten under, a checkpoint registered for its signer is
    // refused whole: records were cut off the end or replaced since.
    if let Some(first) = recs.first() {
        for cp in s.0.store.checkpoints(&first.public_key).await? {
            hallmark::ledger::check_checkpoint(&recs, &cp, None).map_err(|why| {
                ApiError(
                    StatusCode::CONFLICT,
                    "conflict",
                    format!("the ledger contradicts a registered checkpoint: {why}"),
                )
            })?;
        }
    }
    let mut out = LedgerIngested {
        records: recs.len(),
        created: 0,
        existing: 0,
        conflicts: 0,
    };
    for record in recs {
        match s
            .0
            .store
            .insert(&NewRecord {
                record,
                manifest_store: None,
                source: "ledger",
            })
            .await?
        {
            Inserted::Created => out.created += 1,
            Inserted::Existing => out.existing += 1,
            Inserted::Conflict => out.conflicts += 1,
        }
    }
    s.0.metrics
        .ingested
        .get_or_create(&RouteLabels {
            route: "/v1/ledger".into(),
        })
        .inc_by(out.created as u64);
    Ok(Json(out))
}

async fn verify(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Response> {
    authorize_read(&s, &headers).await?;
    let body = body?;
    if body.is_empty() {
        return Err(ApiError::bad(
            "invalid_input",
            "the request body is empty: send the image's bytes",
        ));
    }
    let data = body.clone();
    let report = cpu(&s, move |v| hallmark::verify(&data, None, v)).await?;
    let mut report = report.map_err(|e| from_hallmark(&e))?;
    let id = report
        .watermark
        .as_ref()
        .filter(|w| w.detected)
        .and_then(|w| w.payload);
    if let (None, Some(id)) = (&report.c2pa, id) {
        let candidates = s.0.store.candidates(ALG, &id.0.to_be_bytes(), 10).await?;
        let trust = s.0.config.trust.clone();
        report = cpu(&s, move |_| {
            hallmark::recover(&mut report, &body, &candidates, &trust);
            report
        })
        .await?;
    }
    Ok(Json(report).into_response())
}

async fn checkpoint_post(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    body: Result<Json<hallmark::ledger::Checkpoint>, JsonRejection>,
) -> ApiResult<Response> {
    authorize(&s, &headers).await?;
    let Json(cp) = body?;
    hallmark::ledger::check_checkpoint_signature(&cp, None)
        .map_err(|why| ApiError::bad("invalid_checkpoint", why))?;
    match s.0.store.insert_checkpoint(&cp).await? {
        Inserted::Created => Ok((StatusCode::CREATED, Json(serde_json::json!({"status": "created"}))).into_response()),
        Inserted::Existing => Ok(Json(serde_json::json!({"status": "existing"})).into_response()),
        Inserted::Conflict => Err(ApiError(
            StatusCode::CONFLICT,
            "conflict",
            "a checkpoint of this signer for as many records names another head: the ledger was rewritten".into(),
        )),
    }
}

async fn checkpoint_get(
    axum::extract::State(s): axum::extract::State<State>,
    headers: HeaderMap,
    Path(public_key): Path<String>,
) -> ApiResult<Json<hallmark::ledger::Checkpoint>> {
    authorize_read(&s, &headers).await?;
    if public_key.len() != 64 || !public_key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad(
            "invalid_input",
            "a public key is 64 hex digits",
        ));
    }
    s.0.store
        .checkpoints(&public_key.to_ascii_lowercase())
        .await?
        .pop()
        .map(Json)
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "not_found",
                "no checkpoint for this key".into(),
            )
        })
}
