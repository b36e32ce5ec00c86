//! A model's request queue: as many requests run at once as the model decodes together (a local
//! model's batch), up to `capacity` more wait their turn in arrival order, and any beyond that
//! are turned away at once (429) with a Retry-After from the recent time per request, rather
//! than piling up.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct ModelQueue {
    /// Places for the running request and the waiting ones; a request holds one from admission
    /// to its end.
    places: Arc<Semaphore>,
    /// The turn to generate; tokio's semaphore is fair, so waiting requests go first come, first
    /// served.
    turn: Arc<Semaphore>,
    capacity: usize,
    /// Moving average of recent requests' time on the model, for Retry-After.
    recent_secs: Mutex<Option<f64>>,
}

/// A request's place in the queue; dropping it (the request ended or was cancelled) frees it.
pub struct Place {
    _place: OwnedSemaphorePermit,
    turn: Arc<Semaphore>,
}

/// The turn to generate, with the place it came from.
pub struct Turn {
    _place: Place,
    _turn: OwnedSemaphorePermit,
}

/// The queue is full.
#[derive(Debug, Clone, Copy)]
pub struct Full {
    pub waiting: usize,
    pub retry_after_secs: u64,
}

impl ModelQueue {
    /// A queue where `running` requests run at once and `capacity` more may wait.
    pub fn new(running: usize, capacity: usize) -> ModelQueue {
        let running = running.max(1);
        ModelQueue {
            places: Arc::new(Semaphore::new(running + capacity)),
            turn: Arc::new(Semaphore::new(running)),
            capacity,
            recent_secs: Mutex::new(None),
        }
    }

    /// A place in the queue, or `Full` at once.
    pub fn admit(&self) -> Result<Place, Full> {
        match Arc::clone(&self.places).try_acquire_owned() {
            Ok(place) => Ok(Place {
                _place: place,
                turn: Arc::clone(&self.turn),
            }),
            Err(_) => Err(Full {
                waiting: self.capacity,
                retry_after_secs: self.retry_after_secs(),
            }),
        }
    }

    /// Records how long a request held the model.
    pub fn record(&self, took: Duration) {
        if let Ok(mut recent) = self.recent_secs.lock() {
            let secs = took.as_secs_f64();
            *recent = Some(match *recent {
                Some(average) => 0.8 * average + 0.2 * secs,
                None => secs,
            });
        }
    }

    /// A place frees up when the running request ends: about one request's time from now.
    fn retry_after_secs(&self) -> u64 {
        let recent = self.recent_secs.lock().ok().and_then(|recent| *recent);
        recent.map_or(1, |secs| secs.ceil() as u64).clamp(1, 60)
    }
}

impl Place {
    /// Waits for the turn to generate (cancelled by dropping the future, which gives up the
    /// place too).
    pub async fn turn(self) -> Turn {
        let turn = Arc::clone(&self.turn)
            .acquire_owned()
            .await
            .expect("the turn semaphore is never closed");
        Turn {
            _place: self,
            _turn: turn,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_runs_capacity_waits_and_the_rest_are_refused() {
        let queue = ModelQueue::new(1, 2);
        let first = queue.admit().expect("a place").turn().await;
        let waiting: Vec<Place> = (0..2).map(|_| queue.admit().expect("a place")).collect();
        let full = queue.admit().err().expect("the queue is full");
        assert_eq!(full.waiting, 2);
        assert_eq!(full.retry_after_secs, 1, "no history: one second");
        queue.record(Duration::from_millis(2500));
        assert_eq!(queue.admit().err().expect("full").retry_after_secs, 3);
        drop(first);
        let mut waiting = waiting.into_iter();
        let second = waiting.next().expect("a waiting request").turn().await;
        assert!(
            queue.admit().is_ok(),
            "the finished request's place is free"
        );
        drop(second);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_frees_its_place() {
        let queue = ModelQueue::new(1, 0);
        let running = queue.admit().expect("a place").turn().await;
        assert!(queue.admit().is_err());
        drop(running);
        let place = queue.admit().expect("a place again");
        drop(place);
        assert!(queue.admit().is_ok());
    }

    /// A model that decodes a batch of three runs three requests at once; the fourth waits.
    #[tokio::test]
    async fn a_batch_runs_together_and_the_next_waits_for_a_turn() {
        let queue = ModelQueue::new(3, 1);
        let mut running = Vec::new();
        for _ in 0..3 {
            running.push(queue.admit().expect("a place").turn().await);
        }
        let waiting = queue.admit().expect("a waiting place");
        assert!(
            queue.admit().is_err(),
            "three running and one waiting fill it"
        );
        let turn = tokio::time::timeout(Duration::from_millis(50), waiting.turn()).await;
        assert!(turn.is_err(), "no turn while the batch is full");
        running.pop();
        let waiting = queue.admit().expect("the finished request's place");
        tokio::time::timeout(Duration::from_secs(5), waiting.turn())
            .await
            .expect("a turn once one of the batch ended");
    }
}
