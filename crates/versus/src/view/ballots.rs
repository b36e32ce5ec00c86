//! Ballots for blind voting: the pair a voter was shown, bound to the vote on the server.
//!
//! The vote form carries only an opaque random id; the run, task and which model sat left and
//! right stay here. So a client cannot vote for models it was not shown (or name models at
//! all), cannot learn the names before voting, and cannot vote twice with one ballot: taking a
//! ballot removes it. Ballots live in memory (a restart voids them) and expire.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use versus_store::RunId;

use super::db::lock;
use super::error::ViewError;
use super::security::random_hex;

/// How long a shown pair can be voted on.
const BALLOT_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);
/// Open ballots one client (one `versus_csrf` cookie) may hold; a client that reloads the vote
/// page past this loses its own oldest ballot, never another client's.
pub const BALLOTS_PER_CLIENT: usize = 16;
/// Open ballots across all clients; beyond it new vote pages are refused (503) until ballots are
/// used or expire: a flood of anonymous requests can delay new ballots, but never void a ballot
/// a voter holds.
pub const MAX_BALLOTS: usize = 100_000;

/// The pair shown on one vote page.
#[derive(Debug, Clone, PartialEq)]
pub struct Ballot {
    pub run: RunId,
    pub task: String,
    pub category: Option<String>,
    /// Stored as the vote's `model_a`.
    pub left: String,
    /// Stored as the vote's `model_b`.
    pub right: String,
}

struct OpenBallot {
    issued: Instant,
    client: String,
    ballot: Ballot,
}

#[derive(Default)]
struct Book {
    open: HashMap<String, OpenBallot>,
    /// Each client's open ballot ids, oldest first.
    by_client: HashMap<String, VecDeque<String>>,
}

impl Book {
    fn remove(&mut self, id: &str) -> Option<OpenBallot> {
        let open = self.open.remove(id)?;
        if let Some(ids) = self.by_client.get_mut(&open.client) {
            ids.retain(|other| other != id);
            if ids.is_empty() {
                self.by_client.remove(&open.client);
            }
        }
        Some(open)
    }

    fn drop_expired(&mut self, now: Instant) {
        let expired: Vec<String> = self
            .open
            .iter()
            .filter(|(_, open)| now.duration_since(open.issued) >= BALLOT_LIFETIME)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.remove(&id);
        }
    }
}

#[derive(Default)]
pub struct Ballots {
    book: Mutex<Book>,
}

impl Ballots {
    /// Files a ballot for `client` (its CSRF cookie) and returns its id (128 random bits, hex).
    pub fn issue(&self, client: &str, ballot: Ballot) -> Result<String, ViewError> {
        let id = random_hex(16)?;
        let now = Instant::now();
        let mut book = lock(&self.book);
        if book.open.len() >= MAX_BALLOTS {
            book.drop_expired(now);
        }
        let held = book.by_client.get(client).map_or(0, VecDeque::len);
        if held >= BALLOTS_PER_CLIENT {
            let oldest = book
                .by_client
                .get(client)
                .and_then(|ids| ids.front().cloned());
            if let Some(oldest) = oldest {
                book.remove(&oldest);
            }
        } else if book.open.len() >= MAX_BALLOTS {
            return Err(ViewError::Unavailable(
                "too many vote pages are open; vote on one you have open, or try again later"
                    .into(),
            ));
        }
        book.open.insert(
            id.clone(),
            OpenBallot {
                issued: now,
                client: client.to_string(),
                ballot,
            },
        );
        book.by_client
            .entry(client.to_string())
            .or_default()
            .push_back(id.clone());
        Ok(id)
    }

    /// Takes `client`'s ballot out (single use); `None` if unknown, another client's, used or
    /// expired.
    pub fn take(&self, client: &str, id: &str) -> Option<Ballot> {
        let mut book = lock(&self.book);
        if book.open.get(id)?.client != client {
            return None;
        }
        let open = book.remove(id)?;
        (open.issued.elapsed() < BALLOT_LIFETIME).then_some(open.ballot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ballot_is_taken_once() {
        let ballots = Ballots::default();
        let ballot = Ballot {
            run: 1,
            task: "t".into(),
            category: None,
            left: "a".into(),
            right: "b".into(),
        };
        let id = ballots.issue("me", ballot.clone()).unwrap();
        assert_eq!(ballots.take("me", "forged"), None);
        assert_eq!(ballots.take("someone else", &id), None);
        assert_eq!(ballots.take("me", &id), Some(ballot));
        assert_eq!(ballots.take("me", &id), None);
    }

    fn ballot(task: &str) -> Ballot {
        Ballot {
            run: 1,
            task: task.into(),
            category: None,
            left: "a".into(),
            right: "b".into(),
        }
    }

    #[test]
    fn a_flood_of_vote_pages_never_voids_another_voters_ballot() {
        let ballots = Ballots::default();
        let mine = ballots.issue("voter", ballot("mine")).unwrap();
        // One client reloading: only its own oldest ballots go.
        let flooder: Vec<String> = (0..BALLOTS_PER_CLIENT + 5)
            .map(|i| ballots.issue("flooder", ballot(&i.to_string())).unwrap())
            .collect();
        assert_eq!(ballots.take("flooder", &flooder[0]), None, "evicted");
        assert!(ballots
            .take("flooder", &flooder[BALLOTS_PER_CLIENT + 4])
            .is_some());
        // Many anonymous clients (a fresh cookie each): new ballots are refused at the cap, and
        // the voter's ballot stays.
        let mut refused = 0;
        for i in 0..MAX_BALLOTS + 10 {
            if ballots
                .issue(&format!("anonymous-{i}"), ballot("x"))
                .is_err()
            {
                refused += 1;
            }
        }
        assert!(refused >= 10, "{refused}");
        assert_eq!(ballots.take("voter", &mine), Some(ballot("mine")));
    }
}
