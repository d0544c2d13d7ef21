//! Continuous batching: one thread owns the models and runs every admitted
//! sequence together, one batched forward per step
//! ([`crate::model::batched::forward_batch`]).
//!
//! Requests arrive through a bounded queue ([`Scheduler::submit`] answers
//! "busy" at once when it is full). Between steps, waiting requests join the
//! running batch (up to `max_batch` sequences; their prompts are prefilled in
//! the same step as the others' next tokens), finished ones leave, and a
//! sequence whose receiver was dropped (the client went away) is cancelled.
//! Sequences of different models (the base and each adapter alias) run in
//! separate forwards within the same step.
//!
//! Results go back per request through an unbounded channel of [`Event`]s.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

use super::error::ApiError;
use crate::model::batched::{forward_batch, BatchItem, SeqCache};
use crate::model::generate::{GenerateParams, Sequence, TokenLogprob};
use crate::model::sampling;
use crate::model::Model;
use crate::tokenizer::Tokenizer;

/// One sequence to generate.
#[derive(Debug, Clone)]
pub struct Job {
    pub prompt: Vec<u32>,
    pub params: GenerateParams,
    /// Log-probabilities of the prompt tokens with this many alternatives
    /// (`echo` + `logprobs` on /v1/completions).
    pub prompt_logprobs: Option<usize>,
    /// The choice index the events carry.
    pub index: usize,
}

/// One HTTP request: its sequences (n choices, several prompts), all on one
/// model, admitted together.
pub struct Request {
    pub model: usize,
    pub jobs: Vec<Job>,
    pub events: UnboundedSender<Event>,
}

/// What the scheduler reports about a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Per prompt token: `None` for the first, then its log-probability.
    PromptLogprobs {
        index: usize,
        logprobs: Vec<Option<TokenLogprob>>,
    },
    /// A generated token and the text it made safe to show.
    Token {
        index: usize,
        id: u32,
        text: String,
        logprob: Option<TokenLogprob>,
    },
    /// The sequence ended.
    Done {
        index: usize,
        finish_reason: &'static str,
        prompt_tokens: usize,
        completion_tokens: usize,
    },
    /// The sequence failed (the others go on).
    Error { index: usize, message: String },
}

/// Counters for /health and logs.
#[derive(Debug, Default)]
pub struct Stats {
    pub running: AtomicUsize,
    /// The most sequences that ever ran in one step.
    pub peak_running: AtomicUsize,
    pub waiting: AtomicUsize,
    pub steps: AtomicU64,
    pub generated_tokens: AtomicU64,
    pub finished_sequences: AtomicU64,
    pub cancelled_sequences: AtomicU64,
}

/// Limits.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Most sequences in the running batch.
    pub max_batch: usize,
    /// Most requests waiting to join.
    pub queue: usize,
}

/// The handle the HTTP side holds.
pub struct Scheduler {
    tx: Mutex<Option<SyncSender<Request>>>,
    queue: usize,
    pub stats: Arc<Stats>,
    cancel_all: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Scheduler {
    /// Start the scheduler thread over `models` (index = the request's
    /// `model`) sharing one tokenizer.
    pub fn start(
        models: Vec<Arc<Model>>,
        tokenizer: Arc<Tokenizer>,
        cfg: SchedulerConfig,
    ) -> std::io::Result<Scheduler> {
        let (tx, rx) = sync_channel::<Request>(cfg.queue.max(1));
        let stats = Arc::new(Stats::default());
        let cancel_all = Arc::new(AtomicBool::new(false));
        let (s, c) = (stats.clone(), cancel_all.clone());
        let thread = std::thread::Builder::new()
            .name("swift-scheduler".into())
            .spawn(move || run(models, tokenizer, rx, cfg, s, c))?;
        Ok(Scheduler {
            tx: Mutex::new(Some(tx)),
            queue: cfg.queue.max(1),
            stats,
            cancel_all,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queue a request; a full queue or a closed scheduler is an error at once.
    pub fn submit(&self, req: Request) -> Result<(), ApiError> {
        let guard = self.tx.lock().unwrap_or_else(|e| e.into_inner());
        let Some(tx) = guard.as_ref() else {
            return Err(ApiError::shutting_down());
        };
        self.stats.waiting.fetch_add(1, Ordering::SeqCst);
        match tx.try_send(req) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.stats.waiting.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    std::sync::mpsc::TrySendError::Full(_) => ApiError::busy(self.queue),
                    std::sync::mpsc::TrySendError::Disconnected(_) => ApiError::shutting_down(),
                })
            }
        }
    }

    /// Accept nothing more; what is queued and running still finishes.
    pub fn close(&self) {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Whether [`Scheduler::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).is_none()
    }

    /// Stop every running sequence at the next step (finish reason `stop`).
    pub fn cancel_all(&self) {
        self.cancel_all.store(true, Ordering::SeqCst);
    }

    /// Close, then wait for the thread to finish what it holds.
    pub fn join(&self) {
        self.close();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

/// A sequence in the running batch.
struct Running<'t> {
    model: usize,
    index: usize,
    seq: Sequence<'t>,
    cache: SeqCache,
    events: UnboundedSender<Event>,
    /// Still to compute (the prompt's log-probs, with this many alternatives).
    prompt_logprobs: Option<usize>,
}

impl Running<'_> {
    fn needs_forward(&self) -> bool {
        self.prompt_logprobs.is_some() || !self.seq.is_finished()
    }

    fn done_event(&self) -> Event {
        Event::Done {
            index: self.index,
            finish_reason: self.seq.finish().map(|f| f.reason()).unwrap_or("stop"),
            prompt_tokens: self.seq.prompt_len(),
            completion_tokens: self.seq.generated().len(),
        }
    }
}

fn admit<'t>(
    req: Request,
    models: &[Arc<Model>],
    tok: &'t Tokenizer,
    running: &mut Vec<Running<'t>>,
) {
    let Some(model) = models.get(req.model) else {
        for j in &req.jobs {
            let _ = req.events.send(Event::Error {
                index: j.index,
                message: format!("no model {}", req.model),
            });
        }
        return;
    };
    let ctx = model.config().max_position_embeddings;
    for job in req.jobs {
        match Sequence::new(tok, job.prompt, &job.params, ctx) {
            Ok(seq) => running.push(Running {
                model: req.model,
                index: job.index,
                seq,
                cache: SeqCache::new(model),
                events: req.events.clone(),
                prompt_logprobs: job.prompt_logprobs,
            }),
            Err(e) => {
                let _ = req.events.send(Event::Error {
                    index: job.index,
                    message: format!("{e:#}"),
                });
            }
        }
    }
}

/// One step for the sequences of one model. Sends the events; returns the
/// number of tokens generated.
fn step_model(model: &Model, group: &mut [&mut Running<'_>]) -> anyhow::Result<usize> {
    let plan: Vec<(Vec<u32>, bool)> = group
        .iter()
        .map(|r| {
            if r.prompt_logprobs.is_some() {
                (r.seq.tokens()[..r.seq.prompt_len()].to_vec(), true)
            } else {
                (r.seq.pending().to_vec(), false)
            }
        })
        .collect();
    let mut items: Vec<BatchItem<'_>> = group
        .iter_mut()
        .zip(&plan)
        .map(|(r, (ids, all))| BatchItem {
            ids,
            cache: &mut r.cache,
            all_logits: *all,
        })
        .collect();
    let logits = forward_batch(model, &mut items)?;
    drop(items);
    let vocab = model.vocab_size();
    let mut generated = 0;
    for (r, rows) in group.iter_mut().zip(logits) {
        let r: &mut Running<'_> = r;
        let last = &rows[rows.len() - vocab..];
        if let Some(n) = r.prompt_logprobs.take() {
            let toks = &r.seq.tokens()[..r.seq.prompt_len()];
            let mut lps = Vec::with_capacity(toks.len());
            lps.push(None);
            for (i, row) in rows.chunks_exact(vocab).take(toks.len() - 1).enumerate() {
                let id = toks[i + 1];
                let (lp, top) = sampling::token_logprobs(row, id, n);
                lps.push(Some(TokenLogprob {
                    id,
                    logprob: lp,
                    top,
                }));
            }
            let _ = r.events.send(Event::PromptLogprobs {
                index: r.index,
                logprobs: lps,
            });
        }
        if r.seq.is_finished() {
            continue;
        }
        r.seq.mark_fed();
        let out = r.seq.push_logits(last)?;
        generated += 1;
        let _ = r.events.send(Event::Token {
            index: r.index,
            id: out.id,
            text: out.text,
            logprob: out.logprob,
        });
    }
    Ok(generated)
}

fn run(
    models: Vec<Arc<Model>>,
    tokenizer: Arc<Tokenizer>,
    rx: Receiver<Request>,
    cfg: SchedulerConfig,
    stats: Arc<Stats>,
    cancel_all: Arc<AtomicBool>,
) {
    let tok: &Tokenizer = &tokenizer;
    let mut running: Vec<Running<'_>> = Vec::new();
    let mut held: Option<Request> = None;
    let mut disconnected = false;
    let max_batch = cfg.max_batch.max(1);
    loop {
        // Admit waiting requests while there is room.
        loop {
            let req = match held.take() {
                Some(r) => r,
                None if running.is_empty() => {
                    if disconnected {
                        return;
                    }
                    match rx.recv_timeout(Duration::from_millis(50)) {
                        Ok(r) => r,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => {
                            disconnected = true;
                            continue;
                        }
                    }
                }
                None => match rx.try_recv() {
                    Ok(r) => r,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                },
            };
            if !running.is_empty() && running.len() + req.jobs.len() > max_batch {
                held = Some(req);
                break;
            }
            stats.waiting.fetch_sub(1, Ordering::SeqCst);
            if cancel_all.load(Ordering::SeqCst) {
                // Shutting down: what was still queued is answered at once.
                for j in &req.jobs {
                    let _ = req.events.send(Event::Error {
                        index: j.index,
                        message: "the server is shutting down".into(),
                    });
                }
                continue;
            }
            admit(req, &models, tok, &mut running);
        }
        // Clients that went away; a shutdown that cannot wait.
        let stop_all = cancel_all.load(Ordering::SeqCst);
        running.retain_mut(|r| {
            if r.events.is_closed() {
                stats.cancelled_sequences.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if stop_all {
                if let Ok(rest) = r.seq.cancel() {
                    if !rest.is_empty() {
                        let _ = r.events.send(Event::Token {
                            index: r.index,
                            id: 0,
                            text: rest,
                            logprob: None,
                        });
                    }
                }
                r.prompt_logprobs = None;
            }
            true
        });
        stats
            .peak_running
            .fetch_max(running.len(), Ordering::Relaxed);
        // One forward per model over its sequences that need one.
        for (mi, model) in models.iter().enumerate() {
            let mut group: Vec<&mut Running<'_>> = running
                .iter_mut()
                .filter(|r| r.model == mi && r.needs_forward())
                .collect();
            if group.is_empty() {
                continue;
            }
            let res = std::panic::catch_unwind(AssertUnwindSafe(|| step_model(model, &mut group)));
            match res {
                Ok(Ok(n)) => {
                    stats
                        .generated_tokens
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Ok(Err(e)) => fail_group(&mut group, &format!("{e:#}")),
                Err(_) => fail_group(&mut group, "internal error in the model step"),
            }
        }
        stats.steps.fetch_add(1, Ordering::Relaxed);
        // Finished sequences leave.
        running.retain(|r| {
            if r.seq.is_finished() && r.prompt_logprobs.is_none() {
                let _ = r.events.send(r.done_event());
                stats.finished_sequences.fetch_add(1, Ordering::Relaxed);
                false
            } else {
                true
            }
        });
        stats.running.store(running.len(), Ordering::SeqCst);
    }
}

/// A failed step: tell each sequence of the group and finish it.
fn fail_group(group: &mut [&mut Running<'_>], message: &str) {
    for r in group.iter_mut() {
        let _ = r.events.send(Event::Error {
            index: r.index,
            message: message.to_string(),
        });
        let _ = r.seq.cancel();
        r.prompt_logprobs = None;
        // Closed for good: the Done that follows is ignored by the handler.
    }
}
