//! Time source abstraction so that rules and flows can be tested with a fixed clock.

use std::sync::{Arc, Mutex, MutexGuard};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> OffsetDateTime;
}

/// The real clock (UTC).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the rules read the wall clock: everything else gets the time from a `Clock`.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self { now: Arc::new(Mutex::new(start)) }
    }

    /// Sets the current time to `t`.
    pub fn set(&self, t: OffsetDateTime) {
        *self.lock() = t;
    }

    /// Moves the clock by `d` (which may be negative).
    pub fn advance(&self, d: Duration) {
        let mut now = self.lock();
        *now += d;
    }

    fn lock(&self) -> MutexGuard<'_, OffsetDateTime> {
        // A poisoned lock still holds a valid `OffsetDateTime`.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_set_and_advance() {
        let start = datetime!(2026-04-01 09:00 UTC);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::minutes(10));
        assert_eq!(clock.now(), datetime!(2026-04-01 09:10 UTC));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn clones_share_time() {
        let clock = ManualClock::new(datetime!(2026-04-01 09:00 UTC));
        let other = clock.clone();
        other.advance(Duration::seconds(61));
        assert_eq!(clock.now(), datetime!(2026-04-01 09:01:01 UTC));
    }

    #[test]
    fn survives_poisoned_mutex() {
        let clock = ManualClock::new(datetime!(2026-04-01 09:00 UTC));
        let c2 = clock.clone();
        let _ = std::thread::spawn(move || {
            let _guard = c2.now.lock().unwrap();
            panic!("poison");
        })
        .join();
        assert!(clock.now.is_poisoned());
        clock.advance(Duration::seconds(1));
        assert_eq!(clock.now(), datetime!(2026-04-01 09:00:01 UTC));
    }

    #[test]
    fn system_clock_is_utc() {
        let now = SystemClock.now();
        assert_eq!(now.offset(), time::UtcOffset::UTC);
    }

    #[test]
    fn usable_as_trait_object() {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(datetime!(2026-04-01 09:00 UTC)));
        assert_eq!(clock.now(), datetime!(2026-04-01 09:00 UTC));
    }
}
