//! `PoolClient`: one model behind several endpoints of the same provider (replicas of an
//! inference server, or one API reached with several keys), as one `ChatModel`.
//!
//! Each request goes to the usable endpoint with the fewest requests in flight. An endpoint that
//! fails repeatedly (connection errors, timeouts, 5xx, garbled answers; never a 4xx the request
//! caused) is ejected for a back-off that grows with each ejection up to a bound, then gets a
//! single probe request before it takes traffic again. A failed attempt is retried on another
//! endpoint at once, within the model's retry policy (`retry.rs`); only when every endpoint has
//! failed the request does it back off as a single client would. Each endpoint's concurrency
//! adapts: additive increase on each answer, halved on 429 and 5xx, within `1..=concurrency`; a
//! 429's `Retry-After` pauses that endpoint alone. Optional per-key budgets of requests and tokens
//! per minute are token buckets, tokens estimated before a request (prompt size and `max_tokens`)
//! and corrected by the usage the answer reports.
//!
//! Every decision is made by `PoolState`, a state machine over an explicit clock, so that the unit
//! tests below drive it with a fake one and never sleep; `PoolClient` runs it with tokio's.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;
use versus_core::{ChatModel, ChatRequest, Completion, ErrorKind, ModelError};

use crate::client::{ApiClient, TextForwarder};
use crate::error::ApiError;
use crate::fault::Fault;

/// Failures in a row (connection, timeout, 5xx) that eject an endpoint.
pub const EJECT_AFTER_FAILURES: u32 = 3;
/// How long an endpoint stays out after its first ejection; each ejection in a row doubles it.
pub const FIRST_EJECTION: Duration = Duration::from_secs(2);
/// The longest an endpoint stays out before it is probed again.
pub const MAX_EJECTION: Duration = Duration::from_secs(60);
/// The completion tokens a request is assumed to spend when it sets no `max_tokens`, for the
/// tokens-per-minute budget until its usage is known.
pub const DEFAULT_COMPLETION_ESTIMATE: u64 = 1024;
/// Characters per token when a prompt's tokens are estimated from its text (the usual figure
/// for English with the common BPE vocabularies; the answer's usage corrects it).
const CHARS_PER_TOKEN: u64 = 4;
/// Added to a computed wake-up so that the budget has surely refilled by then.
const WAKE_MARGIN: Duration = Duration::from_millis(1);

/// What a pool is allowed: the same for every endpoint (or every key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolSettings {
    /// The most requests in flight on one endpoint (the model's `concurrency`); the adaptive
    /// limit starts at half of it and never exceeds it.
    pub concurrency: usize,
    /// Requests per minute allowed to each key (all the endpoints sharing it together).
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt and completion) per minute allowed to each key.
    pub tokens_per_minute: Option<u64>,
}

/// Something worth telling the user about a pool's endpoints. Endpoints are named by host (and
/// the key's variable when the pool has several keys), never by their whole URL or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolEvent {
    /// The endpoint failed `failures` times in a row and gets no requests for `back_off`.
    Ejected {
        endpoint: String,
        failures: u32,
        back_off: Duration,
    },
    /// The endpoint answered again (its probe, or a request still in flight) and takes requests.
    Returned { endpoint: String },
}

impl fmt::Display for PoolEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolEvent::Ejected {
                endpoint,
                failures,
                back_off,
            } => write!(
                f,
                "endpoint {endpoint} ejected after {failures} failures in a row; it is probed again in {}s",
                back_off.as_secs_f64()
            ),
            PoolEvent::Returned { endpoint } => {
                write!(f, "endpoint {endpoint} answers again and takes requests")
            }
        }
    }
}

/// Told of every `PoolEvent`, as it happens (the binary prints them on stderr).
pub type PoolObserver = Arc<dyn Fn(&PoolEvent) + Send + Sync>;

/// How one attempt on an endpoint ended, as far as the endpoint's health is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Outcome {
    /// An answer, with the tokens its usage reports (prompt and completion) when it does.
    Answered { tokens: Option<u64> },
    /// 429: slow down, and wait what the server asked on this endpoint.
    RateLimited { retry_after: Option<Duration> },
    /// 5xx (or an error the server reported in its answer): a failure, and slow down.
    Overloaded,
    /// No usable answer: the connection failed or was cut, the attempt timed out, the answer
    /// was garbled. A failure.
    Unreachable,
    /// The endpoint answered, but refused this request (4xx, a block, a body over the limits):
    /// the request's doing, not the endpoint's.
    Refused,
    /// The caller stopped waiting (the run was interrupted): nothing learnt.
    Abandoned,
}

impl Outcome {
    pub(crate) fn of(fault: &Fault) -> Outcome {
        match fault.kind {
            ErrorKind::RateLimited => Outcome::RateLimited {
                retry_after: fault.retry_after,
            },
            ErrorKind::Server => Outcome::Overloaded,
            ErrorKind::Connection | ErrorKind::Timeout | ErrorKind::InvalidResponse => {
                Outcome::Unreachable
            }
            _ => Outcome::Refused,
        }
    }
}

/// The tokens a request is assumed to cost before its usage is known: its text at
/// `CHARS_PER_TOKEN`, plus `max_tokens` (or `DEFAULT_COMPLETION_ESTIMATE`).
pub(crate) fn estimate_tokens(request: &ChatRequest) -> u64 {
    let characters: usize = request
        .messages
        .iter()
        .map(|message| message.text_content().chars().count())
        .sum();
    let prompt = (characters as u64).div_ceil(CHARS_PER_TOKEN);
    let completion = request
        .params
        .max_tokens
        .map_or(DEFAULT_COMPLETION_ESTIMATE, u64::from);
    prompt.saturating_add(completion)
}

/// A token bucket holding one minute's budget, refilled continuously.
#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    level: f64,
    per_second: f64,
    updated: Instant,
}

impl Bucket {
    fn per_minute(amount: f64, now: Instant) -> Bucket {
        Bucket {
            capacity: amount,
            level: amount,
            per_second: amount / 60.0,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_second).min(self.capacity);
        self.updated = self.updated.max(now);
    }

    /// `None` when `amount` may be taken now, else when it may. A request larger than the whole
    /// budget waits for a full bucket and then takes it below zero, so it is not refused forever.
    fn ready_at(&mut self, amount: f64, now: Instant) -> Option<Instant> {
        self.refill(now);
        let need = amount.min(self.capacity);
        if self.level >= need {
            return None;
        }
        let wait = (need - self.level) / self.per_second;
        Some(now + Duration::from_secs_f64(wait) + WAKE_MARGIN)
    }

    fn take(&mut self, amount: f64) {
        self.level -= amount;
    }

    fn give(&mut self, amount: f64) {
        self.level = (self.level + amount).min(self.capacity);
    }
}

/// The budgets of one key: requests and tokens per minute, each optional.
#[derive(Debug, Clone)]
struct Budget {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
}

impl Budget {
    fn ready_at(&mut self, tokens: u64, now: Instant) -> Option<Instant> {
        let requests = self.requests.as_mut().and_then(|b| b.ready_at(1.0, now));
        let tokens = self
            .tokens
            .as_mut()
            .and_then(|b| b.ready_at(tokens as f64, now));
        requests.into_iter().chain(tokens).max()
    }

    fn take(&mut self, tokens: u64) {
        if let Some(bucket) = &mut self.requests {
            bucket.take(1.0);
        }
        if let Some(bucket) = &mut self.tokens {
            bucket.take(tokens as f64);
        }
    }

    /// Settles the tokens taken before the request (`estimate`) against what it spent.
    fn settle(&mut self, estimate: u64, spent: Option<u64>, now: Instant) {
        if let Some(bucket) = &mut self.tokens {
            bucket.refill(now);
            bucket.give(estimate as f64);
            if let Some(spent) = spent {
                bucket.take(spent as f64);
            }
        }
    }
}

/// Whether an endpoint takes requests.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    Serving,
    /// Out until then.
    Ejected {
        until: Instant,
    },
    /// Back from an ejection: one request at a time until one answers.
    Probing {
        probe_out: bool,
    },
}

#[derive(Debug, Clone)]
struct EndpointState {
    /// Host (and key variable), for messages.
    label: String,
    /// Which budget (key) it draws from.
    key_slot: usize,
    in_flight: usize,
    /// The adaptive concurrency limit; requests in flight stay below its floor.
    window: f64,
    /// Failures in a row.
    failures: u32,
    /// Ejections in a row (reset by an answer), for the growing back-off.
    ejections: u32,
    health: Health,
    /// Paused by a 429's `Retry-After` until then.
    paused_until: Option<Instant>,
}

/// What `PoolState::choose` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    /// Send to this endpoint (already counted in flight, its budget taken).
    Use { endpoint: usize },
    /// Nothing is usable now: wait until then (a budget refills, a pause or ejection ends) or
    /// until a request finishes, whichever is first; `None`: until a request finishes.
    Wait { until: Option<Instant> },
}

/// The decisions of a pool, over an explicit clock.
#[derive(Debug, Clone)]
pub(crate) struct PoolState {
    endpoints: Vec<EndpointState>,
    budgets: Vec<Budget>,
    max_window: f64,
    start_window: f64,
    /// Where the round-robin among equally loaded endpoints resumes.
    cursor: usize,
}

impl PoolState {
    /// One endpoint per `(label, key_slot)`; `key_slot`s are dense from 0.
    pub(crate) fn new(
        endpoints: Vec<(String, usize)>,
        settings: &PoolSettings,
        now: Instant,
    ) -> PoolState {
        let max_window = settings.concurrency.max(1) as f64;
        let start_window = max_window.div_euclid(2.0).max(1.0);
        let slots = endpoints
            .iter()
            .map(|(_, slot)| slot + 1)
            .max()
            .unwrap_or(0);
        let budget = Budget {
            requests: settings
                .requests_per_minute
                .map(|amount| Bucket::per_minute(f64::from(amount), now)),
            tokens: settings
                .tokens_per_minute
                .map(|amount| Bucket::per_minute(amount as f64, now)),
        };
        PoolState {
            endpoints: endpoints
                .into_iter()
                .map(|(label, key_slot)| EndpointState {
                    label,
                    key_slot,
                    in_flight: 0,
                    window: start_window,
                    failures: 0,
                    ejections: 0,
                    health: Health::Serving,
                    paused_until: None,
                })
                .collect(),
            budgets: vec![budget; slots],
            max_window,
            start_window,
            cursor: 0,
        }
    }

    /// Picks the endpoint for a request estimated at `tokens`, preferring those not in `avoid`
    /// (the ones this request already failed on), and reserves it.
    pub(crate) fn choose(&mut self, now: Instant, avoid: &[usize], tokens: u64) -> Choice {
        for endpoint in &mut self.endpoints {
            if let Health::Ejected { until } = endpoint.health {
                if now >= until {
                    endpoint.health = Health::Probing { probe_out: false };
                }
            }
        }
        // With every endpoint out, waiting out the back-off helps nobody: the one due back
        // first is probed at once.
        let all_ejected = self
            .endpoints
            .iter()
            .all(|e| matches!(e.health, Health::Ejected { .. }));
        if all_ejected {
            let soonest = self.endpoints.iter_mut().min_by_key(|e| match e.health {
                Health::Ejected { until } => until,
                _ => now,
            });
            if let Some(endpoint) = soonest {
                endpoint.health = Health::Probing { probe_out: false };
            }
        }

        let mut wake: Option<Instant> = None;
        let mut earliest = |at: Instant| wake = Some(wake.map_or(at, |w| w.min(at)));
        let mut usable = Vec::new();
        for (index, endpoint) in self.endpoints.iter().enumerate() {
            let open = match endpoint.health {
                Health::Serving => endpoint.in_flight < endpoint.window.floor() as usize,
                Health::Probing { probe_out } => !probe_out,
                Health::Ejected { until } => {
                    earliest(until);
                    false
                }
            };
            if !open {
                continue;
            }
            if let Some(until) = endpoint.paused_until.filter(|&until| until > now) {
                earliest(until);
                continue;
            }
            if let Some(at) = self.budgets[endpoint.key_slot].ready_at(tokens, now) {
                earliest(at);
                continue;
            }
            usable.push(index);
        }
        let fresh: Vec<usize> = usable
            .iter()
            .copied()
            .filter(|index| !avoid.contains(index))
            .collect();
        // A request goes back to an endpoint it failed on only when no other can take it at
        // all (every other is out): it waits for a busy other endpoint rather than return.
        let others_serve = self.endpoints.iter().enumerate().any(|(index, endpoint)| {
            !avoid.contains(&index) && !matches!(endpoint.health, Health::Ejected { .. })
        });
        let candidates = match (fresh.is_empty(), others_serve) {
            (false, _) => fresh,
            (true, true) => Vec::new(),
            (true, false) => usable,
        };
        let count = self.endpoints.len();
        let cursor = self.cursor;
        // Fewest in flight; among equals, the first from the cursor on (round robin).
        let Some(chosen) = candidates.into_iter().min_by_key(|&index| {
            (
                self.endpoints[index].in_flight,
                (index + count - cursor) % count,
            )
        }) else {
            return Choice::Wait { until: wake };
        };
        let endpoint = &mut self.endpoints[chosen];
        endpoint.in_flight += 1;
        if let Health::Probing { .. } = endpoint.health {
            endpoint.health = Health::Probing { probe_out: true };
        }
        self.budgets[endpoint.key_slot].take(tokens);
        self.cursor = (chosen + 1) % count;
        Choice::Use { endpoint: chosen }
    }

    /// Whether an endpoint outside `avoid` could take a request soon (serving or due for a
    /// probe, not paused): then a failed request moves there instead of backing off.
    pub(crate) fn has_other(&self, avoid: &[usize], now: Instant) -> bool {
        self.endpoints.iter().enumerate().any(|(index, endpoint)| {
            !avoid.contains(&index)
                && endpoint.paused_until.is_none_or(|until| until <= now)
                && match endpoint.health {
                    Health::Serving | Health::Probing { .. } => true,
                    Health::Ejected { until } => until <= now,
                }
        })
    }

    /// Records how a request chosen earlier (estimated at `tokens`) ended; says what changed
    /// worth telling.
    pub(crate) fn finish(
        &mut self,
        index: usize,
        outcome: Outcome,
        tokens: u64,
        now: Instant,
    ) -> Option<PoolEvent> {
        let (max_window, start_window) = (self.max_window, self.start_window);
        let endpoint = &mut self.endpoints[index];
        endpoint.in_flight = endpoint.in_flight.saturating_sub(1);
        let budget = &mut self.budgets[endpoint.key_slot];
        match outcome {
            // Without reported usage the estimate stands.
            Outcome::Answered { tokens: spent } => {
                budget.settle(tokens, Some(spent.unwrap_or(tokens)), now);
            }
            _ => budget.settle(tokens, None, now),
        }
        match outcome {
            Outcome::Answered { .. } => {
                endpoint.window = (endpoint.window + 1.0 / endpoint.window).min(max_window);
            }
            Outcome::RateLimited { .. } | Outcome::Overloaded => {
                endpoint.window = (endpoint.window / 2.0).max(1.0);
            }
            _ => {}
        }
        if let Outcome::RateLimited {
            retry_after: Some(wait),
        } = outcome
        {
            let until = now + wait;
            endpoint.paused_until = Some(endpoint.paused_until.map_or(until, |p| p.max(until)));
        }
        match outcome {
            Outcome::Answered { .. } | Outcome::RateLimited { .. } | Outcome::Refused => {
                endpoint.failures = 0;
                let was_out = !matches!(endpoint.health, Health::Serving);
                endpoint.health = Health::Serving;
                if was_out {
                    endpoint.ejections = 0;
                    endpoint.window = start_window;
                    return Some(PoolEvent::Returned {
                        endpoint: endpoint.label.clone(),
                    });
                }
                None
            }
            Outcome::Overloaded | Outcome::Unreachable => {
                endpoint.failures = endpoint.failures.saturating_add(1);
                let eject = match endpoint.health {
                    Health::Serving => endpoint.failures >= EJECT_AFTER_FAILURES,
                    Health::Probing { .. } => true,
                    // Already out: a request sent before the ejection failed too.
                    Health::Ejected { .. } => false,
                };
                if !eject {
                    return None;
                }
                endpoint.ejections = endpoint.ejections.saturating_add(1);
                let back_off = ejection_back_off(endpoint.ejections);
                endpoint.health = Health::Ejected {
                    until: now + back_off,
                };
                Some(PoolEvent::Ejected {
                    endpoint: endpoint.label.clone(),
                    failures: endpoint.failures,
                    back_off,
                })
            }
            Outcome::Abandoned => {
                if let Health::Probing { .. } = endpoint.health {
                    endpoint.health = Health::Probing { probe_out: false };
                }
                None
            }
        }
    }
}

/// The back-off of the `ejections`-th ejection in a row: `FIRST_EJECTION` doubled each time, at
/// most `MAX_EJECTION`.
fn ejection_back_off(ejections: u32) -> Duration {
    let doublings = ejections.saturating_sub(1).min(16);
    FIRST_EJECTION
        .saturating_mul(1u32 << doublings)
        .min(MAX_EJECTION)
}

/// One model over several endpoints of the same provider; see the module's documentation.
/// Cloning is cheap and clones share the endpoints' state.
#[derive(Clone)]
pub struct PoolClient {
    shared: Arc<Shared>,
}

struct Shared {
    members: Vec<ApiClient>,
    state: Mutex<PoolState>,
    /// Woken whenever a request finishes, for those waiting for an endpoint.
    released: Notify,
    observer: Option<PoolObserver>,
}

impl fmt::Debug for PoolClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolClient")
            .field("members", &self.shared.members)
            .finish_non_exhaustive()
    }
}

impl PoolClient {
    /// A pool of `members`, clients of the same model (same provider and model name), each one
    /// endpoint (a URL with a key). Endpoints sharing a key variable share its budget.
    pub fn new(
        members: Vec<ApiClient>,
        settings: PoolSettings,
        observer: Option<PoolObserver>,
    ) -> Result<PoolClient, ApiError> {
        if members.is_empty() {
            return Err(ApiError::EmptyPool);
        }
        let mut keys: Vec<Option<String>> = Vec::new();
        for member in &members {
            if !keys.contains(&member.config().key_hint) {
                keys.push(member.config().key_hint.clone());
            }
        }
        let endpoints = members
            .iter()
            .map(|member| {
                let config = member.config();
                let host = crate::client::destination(&config.base_url)
                    .map(|destination| destination.host)
                    .unwrap_or_else(|_| member.endpoint().to_string());
                let label = match (&config.key_hint, keys.len() > 1) {
                    (Some(variable), true) => format!("{host} (key in {variable})"),
                    _ => host,
                };
                let slot = keys
                    .iter()
                    .position(|key| *key == config.key_hint)
                    .unwrap_or(0);
                (label, slot)
            })
            .collect();
        Ok(PoolClient {
            shared: Arc::new(Shared {
                state: Mutex::new(PoolState::new(endpoints, &settings, Instant::now())),
                members,
                released: Notify::new(),
                observer,
            }),
        })
    }

    /// The pool's endpoints, in the order given.
    pub fn members(&self) -> &[ApiClient] {
        &self.shared.members
    }

    fn state(&self) -> std::sync::MutexGuard<'_, PoolState> {
        // The state is consistent after every call; a panic elsewhere does not spoil it.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for an endpoint for a request estimated at `tokens`.
    async fn acquire(&self, avoid: &[usize], tokens: u64) -> Lease {
        loop {
            let released = self.shared.released.notified();
            tokio::pin!(released);
            // Registered before the state is read, so a release in between is not missed.
            released.as_mut().enable();
            let choice = self.state().choose(Instant::now(), avoid, tokens);
            match choice {
                Choice::Use { endpoint } => {
                    return Lease {
                        pool: self.clone(),
                        endpoint,
                        tokens,
                        finished: false,
                    }
                }
                Choice::Wait { until: Some(until) } => {
                    tokio::select! {
                        () = &mut released => {}
                        () = tokio::time::sleep_until(tokio::time::Instant::from_std(until)) => {}
                    }
                }
                Choice::Wait { until: None } => released.await,
            }
        }
    }

    fn finish(&self, endpoint: usize, outcome: Outcome, tokens: u64) {
        let event = self
            .state()
            .finish(endpoint, outcome, tokens, Instant::now());
        self.shared.released.notify_waiters();
        if let (Some(event), Some(observer)) = (event, &self.shared.observer) {
            observer(&event);
        }
    }

    /// Answers one request on the pool's endpoints, retrying on another endpoint after a
    /// transient fault; `on_text` sees text as `ApiClient::complete_streaming` shows it.
    pub async fn complete_streaming(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, ModelError> {
        let tokens = estimate_tokens(request);
        let retry = self.shared.members[0].config().retry.clone();
        let mut forwarder = TextForwarder::new(on_text);
        let mut attempts = 0u32;
        let mut avoid: Vec<usize> = Vec::new();
        loop {
            let lease = self.acquire(&avoid, tokens).await;
            let endpoint = lease.endpoint;
            let member = &self.shared.members[endpoint];
            let body = match member.request_body(request) {
                Ok(body) => body,
                Err(error) => {
                    lease.finish(Outcome::Refused);
                    return Err(error);
                }
            };
            attempts += 1;
            let fault = match member.try_once(body, &mut forwarder).await {
                Ok(answer) => {
                    lease.finish(Outcome::Answered {
                        tokens: answer.tokens(),
                    });
                    return Ok(answer.into_completion(forwarder, attempts));
                }
                Err(fault) => fault,
            };
            let outcome = Outcome::of(&fault);
            lease.finish(outcome);
            if !fault.retryable || attempts > retry.max_retries {
                return Err(fault.into_model_error(attempts, &member.inner.target));
            }
            if !avoid.contains(&endpoint) {
                avoid.push(endpoint);
            }
            let moves_on = self.state().has_other(&avoid, Instant::now());
            if !moves_on {
                // Every endpoint failed this request: back off as one client would, or wait
                // what the server asked (a 429's wait is already its endpoint's pause), then try
                // them all again.
                let paused = matches!(
                    outcome,
                    Outcome::RateLimited {
                        retry_after: Some(_)
                    }
                );
                if !paused {
                    let delay = fault
                        .retry_after
                        .unwrap_or_else(|| retry.backoff(attempts - 1));
                    tokio::time::sleep(delay).await;
                }
                avoid.clear();
            }
        }
    }
}

/// An endpoint reserved for one attempt; dropped unfinished (the caller gave up), it is released
/// as abandoned.
struct Lease {
    pool: PoolClient,
    endpoint: usize,
    tokens: u64,
    finished: bool,
}

impl Lease {
    fn finish(mut self, outcome: Outcome) {
        self.finished = true;
        self.pool.finish(self.endpoint, outcome, self.tokens);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.finished {
            self.pool
                .finish(self.endpoint, Outcome::Abandoned, self.tokens);
        }
    }
}

#[async_trait]
impl ChatModel for PoolClient {
    async fn complete(
        &self,
        request: &ChatRequest,
        // `for<'t>` as on `ApiClient`'s impl (dtolnay/async-trait#257).
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, ModelError> {
        self.complete_streaming(request, on_text).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use versus_core::{GenerationParams, Message};

    fn settings(concurrency: usize) -> PoolSettings {
        PoolSettings {
            concurrency,
            requests_per_minute: None,
            tokens_per_minute: None,
        }
    }

    /// A pool of `count` endpoints `e0`, `e1`, ..., on one key.
    fn pool(count: usize, settings: &PoolSettings, now: Instant) -> PoolState {
        let endpoints = (0..count).map(|index| (format!("e{index}"), 0)).collect();
        PoolState::new(endpoints, settings, now)
    }

    fn chosen(state: &mut PoolState, now: Instant, avoid: &[usize]) -> usize {
        match state.choose(now, avoid, 10) {
            Choice::Use { endpoint } => endpoint,
            wait => panic!("expected an endpoint, got {wait:?}"),
        }
    }

    const ANSWERED: Outcome = Outcome::Answered { tokens: Some(10) };

    #[test]
    fn requests_go_to_the_fewest_in_flight_in_turn() {
        let now = Instant::now();
        let mut state = pool(3, &settings(8), now);
        // Equal loads: round robin.
        let first: Vec<usize> = (0..3).map(|_| chosen(&mut state, now, &[])).collect();
        assert_eq!(first, [0, 1, 2]);
        // Endpoint 1 finishes: it has the fewest in flight.
        assert_eq!(state.finish(1, ANSWERED, 10, now), None);
        assert_eq!(chosen(&mut state, now, &[]), 1);
        // A request that failed on 0 and 2 avoids them while another endpoint is open.
        state.finish(0, ANSWERED, 10, now);
        assert_eq!(chosen(&mut state, now, &[0, 2]), 1);
        assert_eq!(chosen(&mut state, now, &[0, 1, 2]), 0, "all tried: any");
    }

    #[test]
    fn a_failed_request_waits_for_a_busy_endpoint_rather_than_return() {
        let now = Instant::now();
        let mut state = pool(2, &settings(2), now);
        // Window 1 each: endpoint 1 busy, the request failed on 0.
        assert_eq!(chosen(&mut state, now, &[]), 0);
        assert_eq!(chosen(&mut state, now, &[]), 1);
        state.finish(0, Outcome::Unreachable, 10, now);
        assert_eq!(state.choose(now, &[0], 10), Choice::Wait { until: None });
        state.finish(1, ANSWERED, 10, now);
        assert_eq!(chosen(&mut state, now, &[0]), 1);
    }

    #[test]
    fn the_window_starts_at_half_and_bounds_requests_in_flight() {
        let now = Instant::now();
        let mut state = pool(1, &settings(4), now);
        assert_eq!(chosen(&mut state, now, &[]), 0);
        assert_eq!(chosen(&mut state, now, &[]), 0);
        assert_eq!(state.choose(now, &[], 10), Choice::Wait { until: None });
        state.finish(0, ANSWERED, 10, now);
        assert_eq!(chosen(&mut state, now, &[]), 0);
    }

    #[test]
    fn the_window_grows_additively_and_halves_on_429_and_5xx() {
        let now = Instant::now();
        let mut state = pool(1, &settings(8), now);
        let window = |state: &PoolState| state.endpoints[0].window;
        assert_eq!(window(&state), 4.0);
        for _ in 0..4 {
            chosen(&mut state, now, &[]);
            state.finish(0, ANSWERED, 10, now);
        }
        // +1/window per answer: about one more request per window's worth of answers.
        assert!((window(&state) - 4.9).abs() < 0.05, "{}", window(&state));
        for _ in 0..100 {
            chosen(&mut state, now, &[]);
            state.finish(0, ANSWERED, 10, now);
        }
        assert_eq!(window(&state), 8.0, "bounded by concurrency");
        chosen(&mut state, now, &[]);
        state.finish(0, Outcome::Overloaded, 10, now);
        assert_eq!(window(&state), 4.0);
        for _ in 0..5 {
            chosen(&mut state, now, &[]);
            state.finish(0, Outcome::RateLimited { retry_after: None }, 10, now);
        }
        assert_eq!(window(&state), 1.0, "never below one");
        // A request the endpoint refused (4xx) says nothing about its load.
        chosen(&mut state, now, &[]);
        state.finish(0, Outcome::Refused, 10, now);
        assert_eq!(window(&state), 1.0);
    }

    #[test]
    fn retry_after_pauses_only_that_endpoint() {
        let now = Instant::now();
        let mut state = pool(2, &settings(4), now);
        assert_eq!(chosen(&mut state, now, &[]), 0);
        let wait = Duration::from_secs(5);
        state.finish(
            0,
            Outcome::RateLimited {
                retry_after: Some(wait),
            },
            10,
            now,
        );
        for _ in 0..2 {
            assert_eq!(chosen(&mut state, now, &[]), 1);
        }
        // Endpoint 1 is full (its window is 2); 0 is paused until `now + 5s`.
        assert_eq!(
            state.choose(now, &[], 10),
            Choice::Wait {
                until: Some(now + wait)
            }
        );
        assert_eq!(chosen(&mut state, now + wait, &[]), 0);
    }

    #[test]
    fn repeated_failures_eject_an_endpoint_until_a_single_probe_answers() {
        let start = Instant::now();
        let mut state = pool(2, &settings(8), start);
        // Two failures and an answer: the count starts again.
        for outcome in [Outcome::Unreachable, Outcome::Overloaded, ANSWERED] {
            let endpoint = chosen(&mut state, start, &[1]);
            assert_eq!(endpoint, 0);
            assert_eq!(state.finish(0, outcome, 10, start), None);
        }
        // A 4xx is the request's fault, not the endpoint's.
        chosen(&mut state, start, &[1]);
        assert_eq!(state.finish(0, Outcome::Refused, 10, start), None);
        for failure in 1..=EJECT_AFTER_FAILURES {
            chosen(&mut state, start, &[1]);
            let event = state.finish(0, Outcome::Unreachable, 10, start);
            if failure < EJECT_AFTER_FAILURES {
                assert_eq!(event, None);
            } else {
                assert_eq!(
                    event,
                    Some(PoolEvent::Ejected {
                        endpoint: "e0".into(),
                        failures: EJECT_AFTER_FAILURES,
                        back_off: FIRST_EJECTION,
                    })
                );
            }
        }
        // Out: everything goes to endpoint 1, even a request that avoids it.
        let during = start + FIRST_EJECTION / 2;
        assert_eq!(chosen(&mut state, during, &[]), 1);
        assert_eq!(chosen(&mut state, during, &[1]), 1);
        assert!(
            !state.has_other(&[1], during),
            "no other endpoint to move to"
        );
        // Back: one probe, and nothing more until it answers.
        let back = start + FIRST_EJECTION;
        assert!(state.has_other(&[1], back));
        assert_eq!(chosen(&mut state, back, &[1]), 0, "the probe");
        assert_eq!(chosen(&mut state, back, &[]), 1, "no second request");
        assert_eq!(
            state.choose(back, &[1], 10),
            Choice::Wait { until: None },
            "a request that failed on 1 waits for the probe's end"
        );
        // The probe fails: out again, twice as long.
        let event = state.finish(0, Outcome::Unreachable, 10, back);
        assert!(
            matches!(event, Some(PoolEvent::Ejected { back_off, .. }) if back_off == FIRST_EJECTION * 2),
            "{event:?}"
        );
        let later = back + FIRST_EJECTION * 2;
        assert_eq!(chosen(&mut state, later, &[1]), 0, "the next probe");
        assert_eq!(
            state.finish(0, ANSWERED, 10, later),
            Some(PoolEvent::Returned {
                endpoint: "e0".into()
            })
        );
        // Serving again, from the starting window.
        assert_eq!(chosen(&mut state, later, &[1]), 0);
        assert_eq!(chosen(&mut state, later, &[1]), 0);
        assert_eq!(state.endpoints[0].window, 4.0);
    }

    #[test]
    fn ejections_grow_to_a_bound() {
        let grown: Vec<u64> = (1..=8).map(|n| ejection_back_off(n).as_secs()).collect();
        assert_eq!(grown, [2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(ejection_back_off(u32::MAX), MAX_EJECTION);
    }

    #[test]
    fn with_every_endpoint_out_the_one_due_first_is_probed_at_once() {
        let now = Instant::now();
        let mut state = pool(2, &settings(2), now);
        for endpoint in [0, 1] {
            for _ in 0..EJECT_AFTER_FAILURES {
                chosen(&mut state, now, &[1 - endpoint]);
                state.finish(endpoint, Outcome::Unreachable, 10, now);
            }
        }
        let a_moment = now + Duration::from_millis(10);
        // Endpoint 1 was ejected second but at the same instant: either may go first; one probe.
        let probe = chosen(&mut state, a_moment, &[]);
        assert!(
            matches!(
                state.choose(a_moment, &[], 10),
                Choice::Wait { until: Some(_) }
            ),
            "only one probe while the other is out"
        );
        state.finish(probe, Outcome::Abandoned, 10, a_moment);
        assert_eq!(
            chosen(&mut state, a_moment, &[]),
            probe,
            "abandoned: probe again"
        );
    }

    #[test]
    fn a_request_budget_is_a_token_bucket_per_key() {
        let now = Instant::now();
        let limited = PoolSettings {
            requests_per_minute: Some(2),
            ..settings(8)
        };
        // Two endpoints on key 0, one on key 1.
        let mut state = PoolState::new(
            vec![("a".into(), 0), ("b".into(), 0), ("c".into(), 1)],
            &limited,
            now,
        );
        let picks: Vec<usize> = (0..4).map(|_| chosen(&mut state, now, &[])).collect();
        assert_eq!(picks, [0, 1, 2, 2], "key 0's two requests, then key 1's");
        // Both keys spent: one request per 30 s each.
        match state.choose(now, &[], 10) {
            Choice::Wait { until: Some(at) } => {
                let wait = at - now;
                assert!(
                    wait >= Duration::from_secs(30) && wait < Duration::from_millis(30_010),
                    "{wait:?}"
                );
            }
            other => panic!("{other:?}"),
        }
        // Half a minute later each key has one request again.
        let later = now + Duration::from_secs(30);
        let picked = [
            chosen(&mut state, later, &[]),
            chosen(&mut state, later, &[]),
        ];
        assert!(
            picked.contains(&2) && picked.iter().any(|&e| e < 2),
            "{picked:?}"
        );
        // Failed requests still count: the provider counted them.
        state.finish(picked[0], Outcome::Overloaded, 10, later);
        assert!(matches!(state.choose(later, &[], 10), Choice::Wait { .. }));
    }

    #[test]
    fn a_token_budget_takes_the_estimate_and_settles_on_reported_usage() {
        let now = Instant::now();
        let limited = PoolSettings {
            tokens_per_minute: Some(1000),
            ..settings(8)
        };
        let mut state = pool(1, &limited, now);
        let take = |state: &mut PoolState, tokens: u64| state.choose(now, &[], tokens);
        assert_eq!(take(&mut state, 600), Choice::Use { endpoint: 0 });
        // 400 left: a second 600-token request waits for 200 tokens (12 s at 1000/min).
        match take(&mut state, 600) {
            Choice::Wait { until: Some(at) } => {
                let wait = (at - now).as_secs_f64();
                assert!((wait - 12.0).abs() < 0.01, "{wait}");
            }
            other => panic!("{other:?}"),
        }
        // The first spent only 100: 900 left, enough at once.
        state.finish(0, Outcome::Answered { tokens: Some(100) }, 600, now);
        assert_eq!(take(&mut state, 600), Choice::Use { endpoint: 0 });
        // A failed request gives its estimate back.
        state.finish(0, Outcome::Unreachable, 600, now);
        assert_eq!(take(&mut state, 900), Choice::Use { endpoint: 0 });
        // One larger than the whole budget waits for a full bucket, then goes.
        state.finish(0, Outcome::Answered { tokens: None }, 900, now);
        let full = now + Duration::from_secs(60);
        assert!(matches!(take(&mut state, 5000), Choice::Wait { .. }));
        assert_eq!(state.choose(full, &[], 5000), Choice::Use { endpoint: 0 });
    }

    #[test]
    fn estimates_count_the_prompt_and_the_completion_allowed() {
        let request = |max_tokens: Option<u32>| ChatRequest {
            messages: vec![Message::system("12345678"), Message::user("123")],
            params: GenerationParams {
                max_tokens,
                ..GenerationParams::default()
            },
        };
        assert_eq!(estimate_tokens(&request(Some(100))), 3 + 100);
        assert_eq!(
            estimate_tokens(&request(None)),
            3 + DEFAULT_COMPLETION_ESTIMATE
        );
    }

    #[test]
    fn faults_are_read_for_the_endpoint_not_the_request() {
        let fault = |kind| Fault {
            kind,
            retryable: true,
            message: String::new(),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            Outcome::of(&fault(ErrorKind::RateLimited)),
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(1))
            }
        );
        assert_eq!(Outcome::of(&fault(ErrorKind::Server)), Outcome::Overloaded);
        for kind in [
            ErrorKind::Connection,
            ErrorKind::Timeout,
            ErrorKind::InvalidResponse,
        ] {
            assert_eq!(Outcome::of(&fault(kind)), Outcome::Unreachable);
        }
        for kind in [ErrorKind::BadRequest, ErrorKind::Auth, ErrorKind::Blocked] {
            assert_eq!(Outcome::of(&fault(kind)), Outcome::Refused);
        }
    }

    #[test]
    fn events_name_the_host_and_the_wait() {
        let ejected = PoolEvent::Ejected {
            endpoint: "10.0.0.2:8000".into(),
            failures: 3,
            back_off: Duration::from_secs(2),
        };
        assert_eq!(
            ejected.to_string(),
            "endpoint 10.0.0.2:8000 ejected after 3 failures in a row; it is probed again in 2s"
        );
    }

    #[tokio::test]
    async fn a_dead_endpoint_is_ejected_and_its_requests_are_answered_elsewhere() {
        use crate::{ClientConfig, RetryPolicy};
        use versus_testkit::{default_answer, FakeServer, Script};

        let alive = FakeServer::start(Script::new()).await.expect("a server");
        let dead_url = {
            let dead = FakeServer::start(Script::new()).await.expect("a server");
            dead.base_url()
        };
        let client = |url: String| {
            let mut config = ClientConfig::new(url, "m");
            config.retry = RetryPolicy {
                max_retries: 2,
                base_delay: Duration::from_millis(1),
                max_delay: Duration::from_millis(5),
            };
            ApiClient::new(config).expect("a client")
        };
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let observer: PoolObserver = Arc::new(move |event: &PoolEvent| {
            seen.lock().expect("not poisoned").push(event.clone());
        });
        let pool = PoolClient::new(
            vec![client(alive.base_url()), client(dead_url)],
            settings(2),
            Some(observer),
        )
        .expect("a pool");
        for index in 0..8 {
            let prompt = format!("question {index}");
            let request = ChatRequest {
                messages: vec![Message::user(prompt.clone())],
                params: GenerationParams::default(),
            };
            let completion = pool
                .complete_streaming(&request, &mut |_| {})
                .await
                .expect("answered by the live endpoint");
            assert_eq!(completion.text, default_answer("m", &prompt));
        }
        assert_eq!(alive.request_count(), 8);
        let events = events.lock().expect("not poisoned").clone();
        assert!(
            matches!(&events[..], [PoolEvent::Ejected { failures: 3, .. }]),
            "{events:?}"
        );
    }
}
