//! `swift infer --serve`: an OpenAI-compatible HTTP server (axum + tokio)
//! over a continuous-batching scheduler.
//!
//! * Routes ([`routes`]): `GET /health`, `GET /v1/models`,
//!   `GET /v1/models/{id}`, `POST /v1/chat/completions`,
//!   `POST /v1/completions`; streaming answers are server-sent events with
//!   keep-alive, ending in `data: [DONE]`.
//! * The model runs on one scheduler thread ([`scheduler`]), off the async
//!   runtime: requests queue in a bounded channel (a full queue answers 429
//!   at once), join the running batch between decode steps, and are
//!   cancelled when their client goes away.
//! * Adapters: every served model (the base and each `--adapter name=DIR`)
//!   is a [`ServedModel`]; the `model` field of a request picks one.
//! * Errors are OpenAI's JSON shape ([`error::ApiError`]).
//! * [`serve`] returns after SIGINT / SIGTERM once in-flight requests are
//!   done (or cancelled after a grace period).

pub mod api;
pub mod error;
pub mod scheduler;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};

use crate::model::generate::TokenLogprob;
use crate::model::sampling::SamplingFields;
use crate::model::Model;
use crate::tokenizer::Tokenizer;
use api::{ChatRequest, CompletionLogprobs, CompletionRequest, PromptSpec};
use error::ApiError;
use scheduler::{Event, Request, Scheduler, SchedulerConfig};

/// Route paths.
pub mod routes {
    pub const HEALTH: &str = "/health";
    pub const MODELS: &str = "/v1/models";
    pub const MODEL: &str = "/v1/models/{id}";
    pub const CHAT: &str = "/v1/chat/completions";
    pub const COMPLETIONS: &str = "/v1/completions";
}

/// A model the server answers for.
#[derive(Debug, Clone)]
pub struct ServedModel {
    /// The id clients put in `model`.
    pub name: String,
    pub model: Arc<Model>,
    /// The base model's id for an adapter alias.
    pub parent: Option<String>,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub host: String,
    /// 0 picks a free port (the bound address goes to `on_listen`).
    pub port: u16,
    /// Require `Authorization: Bearer KEY` (not on /health).
    pub api_key: Option<String>,
    /// Most sequences decoded together.
    pub max_batch: usize,
    /// Most requests waiting to join the batch; more are answered 429.
    pub queue: usize,
    /// Largest request body in bytes; more is answered 413.
    pub body_limit: usize,
    /// Sampling values set on the command line: a request's own fields
    /// override them (see [`crate::model::sampling::resolve`]).
    pub sampling_flags: SamplingFields,
    /// The model's `generation_config.json` values (empty without one):
    /// under the request's and the command line's, over the built-in
    /// defaults.
    pub model_sampling: SamplingFields,
    /// After SIGINT / SIGTERM, how long in-flight requests may run before
    /// they are cancelled.
    pub shutdown_grace: Duration,
    /// Threads of the HTTP runtime (the model uses rayon's pool).
    pub http_threads: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
            max_batch: 16,
            queue: 64,
            body_limit: 4 << 20,
            sampling_flags: SamplingFields::default(),
            model_sampling: SamplingFields::default(),
            shutdown_grace: Duration::from_secs(10),
            http_threads: 2,
        }
    }
}

/// Everything a handler needs.
struct AppState {
    names: Vec<String>,
    parents: Vec<Option<String>>,
    tokenizer: Arc<Tokenizer>,
    scheduler: Scheduler,
    opts: ServeOptions,
    context: usize,
    vocab: usize,
    created: i64,
}

impl AppState {
    fn resolve(&self, model: &Option<String>) -> Result<usize, ApiError> {
        match model.as_deref() {
            None | Some("") => Ok(0),
            Some(m) => self
                .names
                .iter()
                .position(|n| n == m)
                .ok_or_else(|| ApiError::unknown_model(m, &self.names)),
        }
    }
}

/// What [`serve`] tells its caller once it listens.
#[derive(Debug, Clone)]
pub struct Listening {
    pub addr: SocketAddr,
    pub models: Vec<String>,
}

/// Serve until SIGINT / SIGTERM. `models[0]` is the base model; all share
/// `tokenizer`. `on_listen` runs once the socket is bound.
pub fn serve(
    models: Vec<ServedModel>,
    tokenizer: Tokenizer,
    opts: ServeOptions,
    on_listen: impl FnOnce(&Listening),
) -> Result<()> {
    anyhow::ensure!(!models.is_empty(), "no model to serve");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.http_threads.max(1))
        .thread_name("swift-http")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let context = models[0].model.config().max_position_embeddings;
    let vocab = models[0].model.vocab_size();
    let tokenizer = Arc::new(tokenizer);
    let scheduler = Scheduler::start(
        models.iter().map(|m| m.model.clone()).collect(),
        tokenizer.clone(),
        SchedulerConfig {
            max_batch: opts.max_batch,
            queue: opts.queue,
        },
    )
    .context("starting the scheduler thread")?;
    let state = Arc::new(AppState {
        names: models.iter().map(|m| m.name.clone()).collect(),
        parents: models.iter().map(|m| m.parent.clone()).collect(),
        tokenizer,
        scheduler,
        opts: opts.clone(),
        context,
        vocab,
        created: api::now(),
    });
    let st = state.clone();
    let res: Result<()> = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind((st.opts.host.as_str(), st.opts.port))
            .await
            .with_context(|| format!("binding {}:{}", st.opts.host, st.opts.port))?;
        let addr = listener.local_addr().context("reading the bound address")?;
        on_listen(&Listening {
            addr,
            models: st.names.clone(),
        });
        let app = router(st.clone());
        let st2 = st.clone();
        let shutdown = async move {
            wait_for_signal().await;
            st2.scheduler.close();
            let grace = st2.opts.shutdown_grace;
            let st3 = st2.clone();
            tokio::spawn(async move {
                tokio::time::sleep(grace).await;
                st3.scheduler.cancel_all();
            });
        };
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")?;
        Ok(())
    });
    state.scheduler.cancel_all();
    state.scheduler.join();
    rt.shutdown_timeout(Duration::from_secs(1));
    res
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn router(state: Arc<AppState>) -> Router {
    let limit = state.opts.body_limit;
    Router::new()
        .route(routes::HEALTH, get(health))
        .route(routes::MODELS, get(list_models))
        .route(routes::MODEL, get(get_model))
        .route(routes::CHAT, post(chat))
        .route(routes::COMPLETIONS, post(completions))
        .fallback(|uri: Uri| async move { ApiError::not_found(uri.path()) })
        .layer(middleware::from_fn_with_state(state.clone(), auth))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn auth(
    State(st): State<Arc<AppState>>,
    req: axum::extract::Request,
    next: Next,
) -> Response {
    if let Some(key) = &st.opts.api_key {
        if req.uri().path() != routes::HEALTH {
            let ok = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .is_some_and(|k| k.trim() == key);
            if !ok {
                return ApiError::unauthorized().into_response();
            }
        }
    }
    next.run(req).await
}

async fn health(State(st): State<Arc<AppState>>) -> Response {
    let s = &st.scheduler.stats;
    let closing = st.scheduler.is_closed();
    let body = json!({
        "status": if closing { "shutting_down" } else { "ok" },
        "running": s.running.load(std::sync::atomic::Ordering::SeqCst),
        "waiting": s.waiting.load(std::sync::atomic::Ordering::SeqCst),
        "generated_tokens": s.generated_tokens.load(std::sync::atomic::Ordering::Relaxed),
        "finished_sequences": s.finished_sequences.load(std::sync::atomic::Ordering::Relaxed),
        "cancelled_sequences": s.cancelled_sequences.load(std::sync::atomic::Ordering::Relaxed),
        "peak_running": s.peak_running.load(std::sync::atomic::Ordering::Relaxed),
    });
    let code = if closing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

fn model_card(st: &AppState, i: usize) -> Value {
    json!({
        "id": st.names[i],
        "object": "model",
        "created": st.created,
        "owned_by": "swift",
        "root": st.parents[i].as_ref().unwrap_or(&st.names[i]),
        "parent": st.parents[i],
        "max_model_len": st.context,
    })
}

async fn list_models(State(st): State<Arc<AppState>>) -> Response {
    let data: Vec<Value> = (0..st.names.len()).map(|i| model_card(&st, i)).collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

async fn get_model(State(st): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    match st.resolve(&Some(id)) {
        Ok(i) => Json(model_card(&st, i)).into_response(),
        Err(e) => e.into_response(),
    }
}

fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        let status = r.status();
        let mut e = if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::bad_request(format!("the request body is too large: {}", r.body_text()))
        } else {
            ApiError::bad_request(r.body_text())
        };
        e.status = status;
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            e.code = Some("request_too_large");
        }
        e
    })
}

async fn chat(State(st): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    match chat_inner(st, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn completions(
    State(st): State<Arc<AppState>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match completions_inner(st, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Which answer shape a request gets.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Chat,
    Completion,
}

/// Per-choice data the answer needs besides the events.
#[derive(Debug, Clone)]
struct ChoiceSpec {
    /// Echoed prompt text (completions with `echo`).
    echo: Option<String>,
    /// Prompt token ids (for echoed logprobs).
    prompt_ids: Vec<u32>,
    /// Whether the answer carries logprobs.
    logprobs: bool,
    /// Counts toward `usage.prompt_tokens` (the first of its prompt's `n`).
    counts_prompt: bool,
}

/// What a validated request sends and how its answer looks.
struct Prepared {
    kind: Kind,
    model: usize,
    jobs: Vec<scheduler::Job>,
    choices: Vec<ChoiceSpec>,
    stream: bool,
    include_usage: bool,
}

async fn chat_inner(
    st: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body_bytes(body)?;
    let req: ChatRequest = api::parse(&bytes)?;
    let model = st.resolve(&req.common.model)?;
    let plan = req
        .common
        .plan(&st.opts.sampling_flags, &st.opts.model_sampling)?;
    if req.messages.is_empty() {
        return Err(ApiError::bad_param(
            "messages",
            "messages must not be empty",
        ));
    }
    let mut msgs = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        msgs.push(json!({"role": m.role, "content": api::content_text(&m.content, i)?}));
    }
    let tok = &st.tokenizer;
    let rendered = tok
        .apply_chat_template(&msgs, true)
        .map_err(|e| ApiError::bad_param("messages", format!("chat template: {e:#}")))?;
    let ids = tok
        .encode(&rendered, false)
        .map_err(|e| ApiError::bad_param("messages", format!("{e:#}")))?;
    let max = req.max_completion_tokens.or(req.common.max_tokens);
    let param = if req.max_completion_tokens.is_some() {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let max_new = api::check_lengths(ids.len(), max, None, 1, st.context, param)?;
    let logprobs = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (false, Some(_)) => {
            return Err(ApiError::bad_param(
                "top_logprobs",
                "top_logprobs needs logprobs: true",
            ))
        }
        (false, None) => None,
        (true, n) => {
            let n = n.unwrap_or(0);
            if !(0..=api::MAX_TOP_LOGPROBS).contains(&n) {
                return Err(ApiError::bad_param(
                    "top_logprobs",
                    format!(
                        "top_logprobs must be in 0..={}, got {n}",
                        api::MAX_TOP_LOGPROBS
                    ),
                ));
            }
            Some(n as usize)
        }
    };
    let jobs = api::jobs_for(&ids, &plan, max_new, logprobs, None, 0);
    let choices = (0..plan.n)
        .map(|j| ChoiceSpec {
            echo: None,
            prompt_ids: Vec::new(),
            logprobs: logprobs.is_some(),
            counts_prompt: j == 0,
        })
        .collect();
    run_request(
        st,
        Prepared {
            kind: Kind::Chat,
            model,
            jobs,
            choices,
            stream: plan.stream,
            include_usage: plan.include_usage,
        },
    )
    .await
}

async fn completions_inner(
    st: Arc<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let bytes = body_bytes(body)?;
    let req: CompletionRequest = api::parse(&bytes)?;
    let model = st.resolve(&req.common.model)?;
    let plan = req
        .common
        .plan(&st.opts.sampling_flags, &st.opts.model_sampling)?;
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_param("suffix", "suffix is not supported"));
    }
    let tok = &st.tokenizer;
    // (ids, text) per prompt.
    let mut prompts: Vec<(Vec<u32>, String)> = Vec::new();
    let encode = |s: &str| -> Result<(Vec<u32>, String), ApiError> {
        let ids = tok
            .encode(s, true)
            .map_err(|e| ApiError::bad_param("prompt", format!("{e:#}")))?;
        Ok((ids, s.to_string()))
    };
    let from_ids = |ids: &[i64]| -> Result<(Vec<u32>, String), ApiError> {
        let ids = api::check_ids(ids, st.vocab)?;
        let text = tok.decode(&ids, false).unwrap_or_default();
        Ok((ids, text))
    };
    match &req.prompt {
        PromptSpec::Text(s) => prompts.push(encode(s)?),
        PromptSpec::Texts(v) => {
            for s in v {
                prompts.push(encode(s)?);
            }
        }
        PromptSpec::Ids(v) => prompts.push(from_ids(v)?),
        PromptSpec::IdLists(v) => {
            for ids in v {
                prompts.push(from_ids(ids)?);
            }
        }
    }
    if prompts.is_empty() {
        return Err(ApiError::bad_param("prompt", "prompt must not be empty"));
    }
    if prompts.len() * plan.n > api::MAX_JOBS {
        return Err(ApiError::bad_param(
            "n",
            format!(
                "{} prompts times n = {} is more than {} sequences",
                prompts.len(),
                plan.n,
                api::MAX_JOBS
            ),
        ));
    }
    let echo = req.echo.unwrap_or(false);
    let logprobs = match req.logprobs {
        None => None,
        Some(n) if (0..=api::MAX_TOP_LOGPROBS).contains(&n) => Some(n as usize),
        Some(n) => {
            return Err(ApiError::bad_param(
                "logprobs",
                format!("logprobs must be in 0..={}, got {n}", api::MAX_TOP_LOGPROBS),
            ))
        }
    };
    let mut jobs = Vec::new();
    let mut choices = Vec::new();
    for (pi, (ids, text)) in prompts.iter().enumerate() {
        let max_new = api::check_lengths(
            ids.len(),
            req.common.max_tokens,
            Some(16),
            0,
            st.context,
            "max_tokens",
        )?;
        let prompt_lp = if echo { logprobs } else { None };
        jobs.extend(api::jobs_for(
            ids,
            &plan,
            max_new,
            logprobs,
            prompt_lp,
            pi * plan.n,
        ));
        for j in 0..plan.n {
            choices.push(ChoiceSpec {
                echo: echo.then(|| text.clone()),
                prompt_ids: if echo { ids.clone() } else { Vec::new() },
                logprobs: logprobs.is_some(),
                counts_prompt: j == 0,
            });
        }
    }
    run_request(
        st,
        Prepared {
            kind: Kind::Completion,
            model,
            jobs,
            choices,
            stream: plan.stream,
            include_usage: plan.include_usage,
        },
    )
    .await
}

/// Queue the jobs, then answer at once (stream) or when all are done.
async fn run_request(st: Arc<AppState>, p: Prepared) -> Result<Response, ApiError> {
    let (tx, rx) = unbounded_channel();
    st.scheduler.submit(Request {
        model: p.model,
        jobs: p.jobs,
        events: tx,
    })?;
    let answer = Answer::new(&st, p.kind, p.model, p.choices, p.include_usage);
    if p.stream {
        Ok(stream_response(answer, rx))
    } else {
        collect_response(answer, rx).await
    }
}

/// One choice being assembled.
#[derive(Debug, Clone, Default)]
struct ChoiceAcc {
    text: String,
    /// Chat: `logprobs.content` entries.
    chat_lps: Vec<Value>,
    /// Completions: the logprobs object.
    comp_lps: CompletionLogprobs,
    finish: Option<&'static str>,
    prompt_tokens: usize,
    completion_tokens: usize,
    error: Option<String>,
    done: bool,
    /// Stream: whether the echoed prompt went out.
    echoed: bool,
}

/// The answer of one request, built from its events.
struct Answer {
    kind: Kind,
    id: String,
    created: i64,
    model: String,
    tokenizer: Arc<Tokenizer>,
    specs: Vec<ChoiceSpec>,
    accs: Vec<ChoiceAcc>,
    include_usage: bool,
    remaining: usize,
}

impl Answer {
    fn new(
        st: &AppState,
        kind: Kind,
        model: usize,
        specs: Vec<ChoiceSpec>,
        include_usage: bool,
    ) -> Answer {
        let n = specs.len();
        Answer {
            kind,
            id: api::new_id(if kind == Kind::Chat {
                "chatcmpl-"
            } else {
                "cmpl-"
            }),
            created: api::now(),
            model: st.names[model].clone(),
            tokenizer: st.tokenizer.clone(),
            specs,
            accs: vec![ChoiceAcc::default(); n],
            include_usage,
            remaining: n,
        }
    }

    fn push_prompt_logprobs(&mut self, index: usize, lps: &[Option<TokenLogprob>]) {
        let tok = self.tokenizer.clone();
        let (spec, acc) = (&self.specs[index], &mut self.accs[index]);
        if !spec.logprobs || spec.echo.is_none() {
            return;
        }
        for (i, &id) in spec.prompt_ids.iter().enumerate() {
            acc.comp_lps
                .push(&tok, id, lps.get(i).and_then(|l| l.as_ref()));
        }
    }

    /// Apply an event; returns the choice index it concerned.
    fn apply(&mut self, ev: &Event) -> Option<usize> {
        match ev {
            Event::PromptLogprobs { index, logprobs } => {
                if *index < self.accs.len() {
                    self.push_prompt_logprobs(*index, logprobs);
                }
                Some(*index)
            }
            Event::Token {
                index,
                id,
                text,
                logprob,
            } => {
                let tok = self.tokenizer.clone();
                let spec = self.specs.get(*index)?;
                let acc = &mut self.accs[*index];
                if acc.done {
                    return None;
                }
                acc.text.push_str(text);
                if spec.logprobs {
                    if let Some(lp) = logprob {
                        match self.kind {
                            Kind::Chat => acc.chat_lps.push(api::chat_logprob(&tok, lp)),
                            Kind::Completion => acc.comp_lps.push(&tok, *id, Some(lp)),
                        }
                    }
                }
                Some(*index)
            }
            Event::Done {
                index,
                finish_reason,
                prompt_tokens,
                completion_tokens,
            } => {
                let acc = self.accs.get_mut(*index)?;
                if acc.done {
                    return None;
                }
                acc.finish = Some(finish_reason);
                acc.prompt_tokens = *prompt_tokens;
                acc.completion_tokens = *completion_tokens;
                acc.done = true;
                self.remaining -= 1;
                Some(*index)
            }
            Event::Error { index, message } => {
                let acc = self.accs.get_mut(*index)?;
                if acc.done {
                    return None;
                }
                acc.error = Some(message.clone());
                acc.done = true;
                self.remaining -= 1;
                Some(*index)
            }
        }
    }

    fn usage(&self) -> Value {
        let prompt: usize = self
            .accs
            .iter()
            .zip(&self.specs)
            .filter(|(_, s)| s.counts_prompt)
            .map(|(a, _)| a.prompt_tokens)
            .sum();
        let completion: usize = self.accs.iter().map(|a| a.completion_tokens).sum();
        api::usage(prompt, completion)
    }

    fn full_json(&self) -> Value {
        let choices: Vec<Value> = self
            .accs
            .iter()
            .zip(&self.specs)
            .enumerate()
            .map(|(i, (a, s))| match self.kind {
                Kind::Chat => json!({
                    "index": i,
                    "message": {"role": "assistant", "content": a.text},
                    "logprobs": if s.logprobs { json!({"content": a.chat_lps}) } else { Value::Null },
                    "finish_reason": a.finish,
                }),
                Kind::Completion => json!({
                    "index": i,
                    "text": format!("{}{}", s.echo.as_deref().unwrap_or(""), a.text),
                    "logprobs": if s.logprobs { a.comp_lps.to_json() } else { Value::Null },
                    "finish_reason": a.finish,
                }),
            })
            .collect();
        json!({
            "id": self.id,
            "object": if self.kind == Kind::Chat { "chat.completion" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": self.usage(),
        })
    }

    fn chunk(&self, choice: Value) -> String {
        let mut v = json!({
            "id": self.id,
            "object": if self.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" },
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v.to_string()
    }

    /// The chunks that open a stream.
    fn opening(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..self.specs.len() {
            match self.kind {
                Kind::Chat => out.push(self.chunk(json!({
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": Value::Null,
                    "finish_reason": Value::Null,
                }))),
                Kind::Completion => {
                    // Echo without prompt logprobs goes out at once.
                    if self.specs[i].echo.is_some() && !self.specs[i].logprobs {
                        out.push(self.echo_chunk(i));
                    }
                }
            }
        }
        out
    }

    fn echo_chunk(&mut self, i: usize) -> String {
        self.accs[i].echoed = true;
        let lp = if self.specs[i].logprobs {
            self.accs[i].comp_lps.to_json()
        } else {
            Value::Null
        };
        self.chunk(json!({
            "index": i,
            "text": self.specs[i].echo.clone().unwrap_or_default(),
            "logprobs": lp,
            "finish_reason": Value::Null,
        }))
    }

    /// The chunks an event makes.
    fn stream_event(&mut self, ev: Event) -> Vec<String> {
        let before = match &ev {
            Event::Token { index, .. } => self
                .accs
                .get(*index)
                .map(|a| (a.chat_lps.len(), a.comp_lps.tokens.len())),
            _ => None,
        };
        let Some(i) = self.apply(&ev) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match ev {
            Event::PromptLogprobs { .. } => {
                if self.specs[i].echo.is_some() && !self.accs[i].echoed {
                    out.push(self.echo_chunk(i));
                }
            }
            Event::Token { text, .. } => {
                let (c0, p0) = before.unwrap_or((0, 0));
                let (spec, acc) = (&self.specs[i], &self.accs[i]);
                if text.is_empty()
                    && !(spec.logprobs && acc.chat_lps.len() + acc.comp_lps.tokens.len() > c0 + p0)
                {
                    return out;
                }
                let choice = match self.kind {
                    Kind::Chat => json!({
                        "index": i,
                        "delta": {"content": text},
                        "logprobs": if spec.logprobs { json!({"content": acc.chat_lps[c0..]}) } else { Value::Null },
                        "finish_reason": Value::Null,
                    }),
                    Kind::Completion => json!({
                        "index": i,
                        "text": text,
                        "logprobs": if spec.logprobs { acc.comp_lps.since(p0) } else { Value::Null },
                        "finish_reason": Value::Null,
                    }),
                };
                out.push(self.chunk(choice));
            }
            Event::Done { finish_reason, .. } => {
                let choice = match self.kind {
                    Kind::Chat => json!({
                        "index": i, "delta": {}, "logprobs": Value::Null,
                        "finish_reason": finish_reason,
                    }),
                    Kind::Completion => json!({
                        "index": i, "text": "", "logprobs": Value::Null,
                        "finish_reason": finish_reason,
                    }),
                };
                out.push(self.chunk(choice));
            }
            Event::Error { message, .. } => {
                out.push(ApiError::internal(message).body().to_string());
            }
        }
        if self.remaining == 0 {
            out.extend(self.closing());
        }
        out
    }

    fn closing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.include_usage {
            out.push(
                json!({
                    "id": self.id,
                    "object": if self.kind == Kind::Chat { "chat.completion.chunk" } else { "text_completion" },
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": self.usage(),
                })
                .to_string(),
            );
        }
        out.push("[DONE]".into());
        out
    }
}

async fn collect_response(
    mut answer: Answer,
    mut rx: UnboundedReceiver<Event>,
) -> Result<Response, ApiError> {
    while answer.remaining > 0 {
        match rx.recv().await {
            Some(ev) => {
                answer.apply(&ev);
            }
            None => return Err(ApiError::internal("the scheduler stopped")),
        }
    }
    if let Some(e) = answer.accs.iter().find_map(|a| a.error.clone()) {
        return Err(if e.contains("shutting down") {
            ApiError::shutting_down()
        } else {
            ApiError::internal(e)
        });
    }
    Ok(Json(answer.full_json()).into_response())
}

struct StreamState {
    answer: Answer,
    rx: UnboundedReceiver<Event>,
    out: VecDeque<String>,
    finished: bool,
}

fn stream_response(mut answer: Answer, rx: UnboundedReceiver<Event>) -> Response {
    let out: VecDeque<String> = answer.opening().into();
    let state = StreamState {
        answer,
        rx,
        out,
        finished: false,
    };
    let stream = futures_util::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(d) = s.out.pop_front() {
                if d == "[DONE]" {
                    s.finished = true;
                }
                return Some((Ok::<_, Infallible>(SseEvent::default().data(d)), s));
            }
            if s.finished {
                return None;
            }
            match s.rx.recv().await {
                Some(ev) => {
                    let chunks = s.answer.stream_event(ev);
                    s.out.extend(chunks);
                }
                None => {
                    s.out.push_back(
                        ApiError::internal("the scheduler stopped")
                            .body()
                            .to_string(),
                    );
                    s.out.push_back("[DONE]".into());
                }
            }
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(10)))
        .into_response()
}
