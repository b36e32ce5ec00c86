//! Ballots for blind voting: the pair a voter was shown, bound to the vote on the server.
//!
//! The vote form carries only an opaque random id; the run, task and which model sat left and
//! right stay here. So a client cannot vote for models it was not shown (or name models at
//! all), cannot learn the names before voting, and cannot vote twice with one ballot: taking a
//! ballot removes it. Ballots live in memory (a restart voids them) and expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use versus_store::RunId;

use super::db::lock;
use super::error::ViewError;
use super::security::random_hex;

/// How long a shown pair can be voted on.
const BALLOT_LIFETIME: Duration = Duration::from_secs(6 * 60 * 60);
/// Outstanding ballots kept at most; the oldest go first (a client reloading the vote page in a
/// loop cannot grow the server's memory without bound).
const MAX_BALLOTS: usize = 10_000;

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

#[derive(Default)]
pub struct Ballots {
    open: Mutex<HashMap<String, (Instant, Ballot)>>,
}

impl Ballots {
    /// Files a ballot and returns its id (128 random bits, hex).
    pub fn issue(&self, ballot: Ballot) -> Result<String, ViewError> {
        let id = random_hex(16)?;
        let now = Instant::now();
        let mut open = lock(&self.open);
        open.retain(|_, (issued, _)| now.duration_since(*issued) < BALLOT_LIFETIME);
        if open.len() >= MAX_BALLOTS {
            let oldest = open
                .iter()
                .min_by_key(|(_, (issued, _))| *issued)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                open.remove(&oldest);
            }
        }
        open.insert(id.clone(), (now, ballot));
        Ok(id)
    }

    /// Takes a ballot out (single use); `None` if unknown, used or expired.
    pub fn take(&self, id: &str) -> Option<Ballot> {
        let (issued, ballot) = lock(&self.open).remove(id)?;
        (issued.elapsed() < BALLOT_LIFETIME).then_some(ballot)
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
        let id = ballots.issue(ballot.clone()).unwrap();
        assert_eq!(ballots.take("forged"), None);
        assert_eq!(ballots.take(&id), Some(ballot));
        assert_eq!(ballots.take(&id), None);
    }
}
