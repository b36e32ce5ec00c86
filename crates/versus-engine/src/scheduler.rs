//! Continuous batching: one thread per loaded model runs every request's generation together.
//! Requests join and leave between decode steps; each step is one forward pass over every
//! active sequence (its next token, or a chunk of its prompt), so the weights are read once per
//! step however many sequences there are. On a memory-bound CPU, and on a GPU even more, a step
//! for eight sequences costs little more than a step for one.
//!
//! Why a thread of its own rather than a task per request: a forward pass uses every core, so
//! two at once only slow each other down; one loop that owns the decoder decides what runs.
//!
//! Admission: a request waits (it is never killed) until a batch place is free and its KV cache
//! (its prompt plus its token limit, at the model's bytes per position) fits in the budget
//! beside the active ones; one request alone is always admitted, as it would run unbatched.
//! Long prompts are fed in chunks between decode steps, at most `prefill_chunk` prompt
//! tokens per step in all, so a new arrival does not stall the sequences already decoding.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::decoder::{Decoder, Feed};
use crate::error::EngineError;
use crate::generate::{GenerateOptions, Generation, Generator};
use crate::tokenizer::Tokenizer;

/// How the scheduler batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most sequences decoded together.
    pub max_batch: usize,
    /// Prompt tokens fed per step, over every sequence still reading its prompt.
    pub prefill_chunk: usize,
    /// Bytes the active sequences' KV caches may reserve together.
    pub kv_budget_bytes: u64,
}

/// Default for [`BatchLimits::max_batch`].
pub const DEFAULT_MAX_BATCH: usize = 8;

/// Default for [`BatchLimits::prefill_chunk`]: as many positions as one forward pass takes.
pub const DEFAULT_PREFILL_CHUNK: usize = 256;

impl Default for BatchLimits {
    fn default() -> BatchLimits {
        BatchLimits {
            max_batch: DEFAULT_MAX_BATCH,
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            kv_budget_bytes: u64::MAX,
        }
    }
}

/// What a request hears back: pieces of final text as they come, then the end.
#[derive(Debug)]
pub enum Event {
    Text(String),
    Done(Result<Generation, EngineError>),
}

/// A request on its way to the scheduler.
struct Job {
    prompt_ids: Vec<u32>,
    options: GenerateOptions,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    cancel: Arc<AtomicBool>,
    arrived: Instant,
}

impl Job {
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed) || self.events.is_closed()
    }
}

/// A handle on one model's scheduler thread. Dropping the last handle ends the thread once
/// the requests it holds are answered.
pub struct Scheduler {
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    limits: BatchLimits,
    stats: Arc<Counters>,
}

/// What the scheduler has done so far, for benchmarks, logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchStats {
    /// Forward passes run.
    pub steps: u64,
    /// Sequences in those passes, added up (over `steps`: the mean batch).
    pub sequence_steps: u64,
    /// The most sequences in one pass.
    pub peak_batch: usize,
    /// Requests that had to wait for the KV budget while a batch place was free.
    pub waited_for_memory: u64,
}

#[derive(Debug, Default)]
struct Counters {
    steps: AtomicU64,
    sequence_steps: AtomicU64,
    peak_batch: AtomicUsize,
    waited_for_memory: AtomicU64,
}

/// A submitted request: its events, and the flag that cancels it (also cancelled when the
/// receiver is dropped).
pub struct Submitted {
    pub events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    pub cancel: Arc<AtomicBool>,
}

impl Scheduler {
    /// Starts the scheduler thread for a model. `kv_bytes_per_position` is what one cached
    /// position of one sequence costs (every layer's keys and values).
    pub fn start(
        decoder: Arc<Decoder>,
        tokenizer: Arc<Tokenizer>,
        limits: BatchLimits,
        kv_bytes_per_position: u64,
    ) -> Result<Scheduler, EngineError> {
        let limits = BatchLimits {
            max_batch: limits.max_batch.max(1),
            prefill_chunk: limits.prefill_chunk.max(1),
            ..limits
        };
        let (sender, receiver) = mpsc::channel();
        let stats = Arc::new(Counters::default());
        let counters = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("versus-scheduler".into())
            .spawn(move || {
                Batcher {
                    decoder,
                    tokenizer,
                    limits,
                    kv_bytes_per_position: kv_bytes_per_position.max(1),
                    waiting: VecDeque::new(),
                    active: Vec::new(),
                    counters,
                    memory_wait_counted: false,
                }
                .run(&receiver)
            })
            .map_err(|error| {
                EngineError::Other(format!("cannot start the scheduler thread: {error}"))
            })?;
        Ok(Scheduler {
            jobs: Some(sender),
            thread: Some(thread),
            limits,
            stats,
        })
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    pub fn stats(&self) -> BatchStats {
        BatchStats {
            steps: self.stats.steps.load(Ordering::Relaxed),
            sequence_steps: self.stats.sequence_steps.load(Ordering::Relaxed),
            peak_batch: self.stats.peak_batch.load(Ordering::Relaxed),
            waited_for_memory: self.stats.waited_for_memory.load(Ordering::Relaxed),
        }
    }

    /// Queues a request; `arrived` is when it came in (time to first token counts from there).
    pub fn submit(
        &self,
        prompt_ids: Vec<u32>,
        options: GenerateOptions,
        arrived: Instant,
    ) -> Result<Submitted, EngineError> {
        let (events, receiver) = tokio::sync::mpsc::unbounded_channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let job = Job {
            prompt_ids,
            options,
            events,
            cancel: Arc::clone(&cancel),
            arrived,
        };
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| EngineError::Other("the model's scheduler has stopped".into()))?;
        Ok(Submitted {
            events: receiver,
            cancel,
        })
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Closing the channel ends the loop once what it holds is answered.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A sequence being generated.
struct Active {
    generator: Generator,
    job: Job,
    reserved_bytes: u64,
}

/// The scheduler thread's state.
struct Batcher {
    decoder: Arc<Decoder>,
    tokenizer: Arc<Tokenizer>,
    limits: BatchLimits,
    kv_bytes_per_position: u64,
    waiting: VecDeque<Job>,
    active: Vec<Active>,
    counters: Arc<Counters>,
    /// Whether the request at the head of the queue was already counted as waiting for memory.
    memory_wait_counted: bool,
}

/// How long the loop sleeps when idle before it checks the waiting requests again (a cancelled
/// waiting request is answered within this).
const IDLE_POLL: Duration = Duration::from_millis(50);

impl Batcher {
    fn run(mut self, jobs: &Receiver<Job>) {
        let mut open = true;
        loop {
            if self.active.is_empty() && self.waiting.is_empty() {
                if !open {
                    return;
                }
                match jobs.recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(_) => return,
                }
            }
            while open {
                match jobs.try_recv() {
                    Ok(job) => self.waiting.push_back(job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => open = false,
                }
            }
            self.drop_cancelled_waiting();
            self.admit();
            if self.active.is_empty() {
                // Everything waiting was cancelled, or nothing fits (cannot happen: one request
                // alone is always admitted); wait for the next arrival.
                if open {
                    match jobs.recv_timeout(IDLE_POLL) {
                        Ok(job) => self.waiting.push_back(job),
                        Err(RecvTimeoutError::Timeout) => {}
                        Err(RecvTimeoutError::Disconnected) => open = false,
                    }
                }
                continue;
            }
            self.step();
        }
    }

    fn drop_cancelled_waiting(&mut self) {
        self.waiting.retain(|job| {
            if job.cancelled() {
                let _ = job.events.send(Event::Done(Err(EngineError::Other(
                    "cancelled before it started".into(),
                ))));
                false
            } else {
                true
            }
        });
    }

    fn reserved(&self) -> u64 {
        self.active.iter().map(|active| active.reserved_bytes).sum()
    }

    /// Moves waiting requests into the batch, first come first served, while a place is free
    /// and the KV budget allows.
    fn admit(&mut self) {
        while self.active.len() < self.limits.max_batch {
            let Some(job) = self.waiting.front() else {
                return;
            };
            let positions = Generator::positions(job.prompt_ids.len(), &job.options) as u64;
            let bytes = positions.saturating_mul(self.kv_bytes_per_position);
            if !self.active.is_empty()
                && self.reserved().saturating_add(bytes) > self.limits.kv_budget_bytes
            {
                if !self.memory_wait_counted {
                    self.memory_wait_counted = true;
                    self.counters
                        .waited_for_memory
                        .fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
            self.memory_wait_counted = false;
            let Some(job) = self.waiting.pop_front() else {
                return;
            };
            match Generator::new(
                &self.decoder,
                &self.tokenizer,
                &job.prompt_ids,
                &job.options,
                job.arrived,
            ) {
                Ok(generator) => self.active.push(Active {
                    generator,
                    job,
                    reserved_bytes: bytes,
                }),
                Err(error) => {
                    let _ = job.events.send(Event::Done(Err(error)));
                }
            }
        }
    }

    /// One forward pass over the batch, then a token for every sequence that finished its feed.
    fn step(&mut self) {
        // Cancelled sequences leave first, with what they have.
        let mut index = 0;
        while index < self.active.len() {
            if self.active[index].job.cancelled() {
                let Active { generator, job, .. } = self.active.remove(index);
                let mut send = |piece: &str| {
                    let _ = job.events.send(Event::Text(piece.to_string()));
                };
                let _ = job.events.send(Event::Done(generator.cancel(&mut send)));
            } else {
                index += 1;
            }
        }
        if self.active.is_empty() {
            return;
        }

        // What each sequence feeds: its one new token, or the next chunk of its prompt, the
        // prompt chunks sharing one budget (oldest first, so the first arrival finishes first).
        let mut prefill_left = self.limits.prefill_chunk;
        let mut takes = Vec::with_capacity(self.active.len());
        for active in &self.active {
            let pending = active.generator.pending().len();
            let take = if active.generator.prefilling() {
                let take = pending.min(prefill_left);
                prefill_left -= take;
                take
            } else {
                pending
            };
            takes.push(take);
        }
        let pending: Vec<Vec<u32>> = self
            .active
            .iter()
            .zip(&takes)
            .map(|(active, &take)| active.generator.pending()[..take].to_vec())
            .collect();
        let mut fed: Vec<usize> = Vec::new();
        let result = {
            let mut feeds: Vec<Feed<'_>> = Vec::new();
            for (index, (active, tokens)) in self.active.iter_mut().zip(&pending).enumerate() {
                if !tokens.is_empty() {
                    fed.push(index);
                    feeds.push(Feed {
                        sequence: active.generator.sequence_mut(),
                        tokens,
                    });
                }
            }
            self.counters.steps.fetch_add(1, Ordering::Relaxed);
            self.counters
                .sequence_steps
                .fetch_add(feeds.len() as u64, Ordering::Relaxed);
            self.counters
                .peak_batch
                .fetch_max(feeds.len(), Ordering::Relaxed);
            self.decoder.feed_batch(&mut feeds)
        };
        let logits = match result {
            Ok(logits) => logits,
            Err(error) => {
                // A failed pass fails the sequences in it, not the model: they are answered
                // with the error and the rest go on.
                for index in fed.iter().rev() {
                    let active = self.active.remove(*index);
                    let _ = active
                        .job
                        .events
                        .send(Event::Done(Err(EngineError::Other(format!(
                            "the forward pass failed: {error}"
                        )))));
                }
                return;
            }
        };
        let mut finished = Vec::new();
        for (&index, logits) in fed.iter().zip(&logits) {
            let active = &mut self.active[index];
            active.generator.consumed(takes[index]);
            if !active.generator.pending().is_empty() {
                continue; // more of its prompt to feed
            }
            let events = &active.job.events;
            let mut send = |piece: &str| {
                let _ = events.send(Event::Text(piece.to_string()));
            };
            match active.generator.next_token(logits, &mut send) {
                Ok(None) => {}
                Ok(Some(generation)) => finished.push((index, Ok(generation))),
                Err(error) => finished.push((index, Err(error))),
            }
        }
        // Highest index first, so each removal leaves the other indices valid (and the batch
        // keeps its arrival order, which the prefill budget follows).
        finished.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
        for (index, outcome) in finished {
            let active = self.active.remove(index);
            let _ = active.job.events.send(Event::Done(outcome));
        }
    }
}
