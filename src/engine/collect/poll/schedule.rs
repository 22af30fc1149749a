//! When each task is polled: the policy, as pure logic (no IO, no clock of
//! its own: every call is told `now`), so it is tested by simulation.
//!
//! # The policy, and why
//! A poll that finds a task still running is wasted; the ideal is one poll
//! per task, the one that finds it finished. So:
//! - **Oldest first.** Among the tasks due, the one submitted earliest is
//!   polled first: it is the likeliest to be done, and when the rate limit
//!   is the bottleneck the catalog then fills in submission order.
//! - **Not before it can plausibly be finished.** A task's first poll is at
//!   its submission time plus the estimate ([`super::estimate`]: the median
//!   of recent durations, per model once the clips named it). A task
//!   submitted longer ago than that (a rerun hours later) is simply due at
//!   once. A task whose row has no usable `submitted_at` counts as
//!   submitted at collect's start.
//! - **Learning the estimate.** A finished answer bounds the duration from
//!   above (the task finished before this poll) and, if an earlier poll
//!   found it running, from below. With both bounds within two intervals
//!   the upper one is recorded (the time a poll finds it done, which is
//!   what a first poll should aim at); with wider bounds, their midpoint
//!   (the poll was late, e.g. behind the rate limit). A task found finished
//!   on its first poll says only "no later than this", which the schedule
//!   itself chose: it is not recorded, or the estimate could never fall.
//! - **Scouts.** Before any task has finished there is no estimate: the
//!   oldest [`EARLY_SCOUTS`] tasks are polled every interval, and the rest
//!   wait (until [`PRIOR`] after their submission at most), so the first
//!   finished task teaches everyone. A scout that ends without teaching
//!   (finished at its first poll, given up) hands over to the next oldest.
//!   Afterwards one task in [`SCOUT_EVERY`] keeps scouting: its first poll
//!   is up to two intervals *before* the estimate, so the estimate follows
//!   the host when it gets faster (and misses, which follow from a slower
//!   host, record bounded durations, so it follows that way too).
//! - **Backing off.** A task still running past its estimate is polled
//!   again after the interval, then 2, 4 and at most 8 intervals: a task
//!   the host is sitting on should not cost a poll every interval for the
//!   whole deadline.
//! - **Never more often than the interval.** Every due time is at least
//!   `interval` after the task's last poll was sent, whatever the rule.
//! - **Packed, where the provider polls many tasks per request**
//!   ([`Scheduler::next_batch`]): a request carries every task due, oldest
//!   first, and fills up with tasks due within the next interval that
//!   were never polled or last polled half an interval ago or more. The
//!   interval bounds requests, and a task riding along in a request that
//!   goes out anyway adds none.
//!   The overall `--poll-rate` is the limiter's, in the loop; finished and
//!   given-up tasks are never handed out again.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use tokio::time::Instant;

use super::estimate::Estimates;

/// Tasks polled every interval before any estimate exists.
pub const EARLY_SCOUTS: usize = 4;
/// One task in this many scouts ahead of the estimate.
pub const SCOUT_EVERY: usize = 10;
/// Before any estimate, the other tasks wait at most this long after their
/// submission.
pub const PRIOR: Duration = Duration::from_secs(10 * 60);
/// The backoff of a running task stops doubling at 2^this intervals.
const MAX_BACKOFF_STEPS: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Done,
}

/// One task's place in the schedule.
#[derive(Debug, Clone)]
struct Slot {
    /// Time since submission at the scheduler's start (zero for a task
    /// submitted later).
    age: Duration,
    /// Submission after the scheduler's start (zero for one before).
    after: Duration,
    /// 0 for the oldest task.
    rank: usize,
    state: State,
    /// When it is due (while waiting).
    due: Instant,
    last_sent: Option<Instant>,
    /// The age at the last poll that found it running.
    lower: Option<Duration>,
    /// Running answers at or past the estimate.
    misses: u32,
    /// Named by the clips; empty until then.
    model: String,
    /// Polls ahead of the estimate (module docs).
    scout: bool,
    /// One of the scouts polled before any estimate.
    early: bool,
}

/// The schedule of every task of one collect run.
#[derive(Debug)]
pub struct Scheduler {
    interval: Duration,
    start: Instant,
    slots: Vec<Slot>,
    /// (due, index); entries whose time is no longer the slot's are stale.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Due now: (rank, index), oldest first.
    ready: BinaryHeap<Reverse<(usize, usize)>>,
    estimates: Estimates,
    /// The overall estimate the unpolled tasks were last planned with.
    planned_with: Option<Duration>,
    /// Task indexes, oldest first.
    by_rank: Vec<usize>,
    /// Where in `by_rank` the next scout is looked for (before any
    /// estimate).
    next_scout: usize,
    left: usize,
    /// Slots of ended tasks, for the next [`Scheduler::add`]: a collect
    /// of a million tasks keeps only the window it is polling.
    free: Vec<usize>,
    /// The rank the next added task gets.
    next_rank: usize,
}

impl Scheduler {
    /// A schedule for tasks submitted `ages[i]` before `start` (index `i`
    /// is the caller's task index; ties in age keep index order).
    pub fn new(ages: &[Duration], interval: Duration, start: Instant) -> Scheduler {
        let mut order: Vec<usize> = (0..ages.len()).collect();
        order.sort_by_key(|&i| (Reverse(ages[i]), i));
        let mut rank = vec![0; ages.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let mut s = Scheduler {
            interval: interval.max(Duration::from_millis(1)),
            start,
            slots: Vec::with_capacity(ages.len()),
            due: BinaryHeap::new(),
            ready: BinaryHeap::new(),
            estimates: Estimates::default(),
            planned_with: None,
            by_rank: order.clone(),
            next_scout: EARLY_SCOUTS,
            left: 0,
            free: Vec::new(),
            next_rank: ages.len(),
        };
        for (i, &age) in ages.iter().enumerate() {
            s.insert(age, rank[i]);
        }
        s
    }

    /// Adds a task submitted `age` before `now`, ranked after every task
    /// so far (tasks come in results order, which is submission order);
    /// returns its index, which may be one an ended task had.
    pub fn add(&mut self, age: Duration, now: Instant) -> usize {
        let since_start = now.saturating_duration_since(self.start);
        let rank = self.next_rank;
        self.next_rank += 1;
        let i = self.insert(age.saturating_sub(since_start), rank);
        self.slots[i].after = since_start.saturating_sub(age);
        let due = self.first_due(i);
        self.set_due(i, due);
        if self.estimates.get("").is_none() {
            // Only needed to promote scouts before the first estimate.
            self.by_rank.push(i);
            self.prune_scout_candidates();
        }
        i
    }

    fn insert(&mut self, age: Duration, rank: usize) -> usize {
        let slot = Slot {
            age,
            after: Duration::ZERO,
            rank,
            state: State::Waiting,
            due: self.start,
            last_sent: None,
            lower: None,
            misses: 0,
            model: String::new(),
            scout: is_scout(rank),
            early: rank < EARLY_SCOUTS,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        self.left += 1;
        let due = self.first_due(i);
        self.set_due(i, due);
        i
    }

    /// The per-task interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Tasks not finished or given up yet (in flight included).
    pub fn left(&self) -> usize {
        self.left
    }

    /// The estimate for a task of `model` (empty: unknown).
    pub fn estimate(&self, model: &str) -> Option<Duration> {
        self.estimates.get(model)
    }

    /// The next task to poll at `now`, oldest first, marked in flight.
    pub fn next(&mut self, now: Instant) -> Option<usize> {
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            let slot = &self.slots[i];
            if slot.state == State::Waiting && slot.due == at {
                self.ready.push(Reverse((slot.rank, i)));
            }
        }
        while let Some(Reverse((_, i))) = self.ready.pop() {
            let slot = &mut self.slots[i];
            if slot.state == State::Waiting && slot.due <= now {
                slot.state = State::InFlight;
                return Some(i);
            }
        }
        None
    }

    /// Up to `max` tasks to poll together at `now` (one request of a
    /// provider with a batch poll), marked in flight: every task due, oldest
    /// first; then, if one is due and there is room, the tasks due within
    /// `ahead` that were never polled or last polled half an interval ago
    /// or more, oldest first. The request goes out anyway, so a task that
    /// rides along costs the host no request, and does not cost one of its
    /// own a moment later; tasks whose polls drifted apart by a few
    /// milliseconds share requests again. With `max` 1 this is
    /// [`Scheduler::next`].
    pub fn next_batch(&mut self, now: Instant, max: usize, ahead: Duration) -> Vec<usize> {
        let mut batch = Vec::new();
        while batch.len() < max {
            match self.next(now) {
                Some(i) => batch.push(i),
                None => break,
            }
        }
        if batch.is_empty() || batch.len() >= max || ahead.is_zero() {
            return batch;
        }
        let horizon = now + ahead;
        // (rank, index) of the tasks that may ride along, and the heap
        // entries to put back.
        let mut early = Vec::new();
        let mut back = Vec::new();
        while let Some(&Reverse((at, i))) = self.due.peek() {
            if at > horizon {
                break;
            }
            self.due.pop();
            let slot = &self.slots[i];
            if slot.state != State::Waiting || slot.due != at {
                continue; // stale, as in `next`
            }
            let rested = slot
                .last_sent
                .is_none_or(|sent| sent + self.interval / 2 <= now);
            if rested {
                early.push((slot.rank, i));
            } else {
                back.push((at, i));
            }
        }
        early.sort_unstable();
        for (_, i) in early {
            if batch.len() < max {
                self.slots[i].state = State::InFlight;
                batch.push(i);
            } else {
                back.push((self.slots[i].due, i));
            }
        }
        self.due.extend(back.into_iter().map(Reverse));
        batch
    }

    /// When a task is next due (a past instant if one is due now).
    pub fn wake(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(self.start);
        }
        self.due.peek().map(|Reverse((at, _))| *at)
    }

    /// A poll sent at `sent` found task `i` still running.
    pub fn running(&mut self, i: usize, sent: Instant, model: &str) {
        let age = self.age_at(i, sent);
        self.learn_model(i, model);
        let estimate = self.estimates.get(&self.slots[i].model);
        let slot = &mut self.slots[i];
        slot.last_sent = Some(sent);
        slot.lower = Some(age);
        slot.state = State::Waiting;
        let (early, scout) = (slot.early, slot.scout);
        let due = match estimate {
            // Before an estimate, only scouts (and long-waiting tasks) poll.
            None if early => sent + self.interval,
            Some(e) if age < e && scout => sent + self.interval,
            Some(e) if age < e => self.at_age(i, e),
            _ => {
                slot.misses += 1;
                let steps = (slot.misses - 1).min(MAX_BACKOFF_STEPS);
                sent + self.interval * 2u32.pow(steps)
            }
        };
        let due = self.not_before_interval(i, due);
        self.set_due(i, due);
    }

    /// A poll sent at `sent` found task `i` finished: it is done, and its
    /// duration may teach the estimate.
    pub fn finished(&mut self, i: usize, sent: Instant, model: &str, now: Instant) {
        let upper = self.age_at(i, sent);
        self.learn_model(i, model);
        let estimate = self.estimates.get(&self.slots[i].model);
        let slot = &self.slots[i];
        let observed = match slot.lower {
            Some(lower) if upper.saturating_sub(lower) <= self.interval * 2 => Some(upper),
            Some(lower) => Some(lower + (upper - lower) / 2),
            // Ahead of the estimate, a scout's "no later than" is news.
            None if slot.scout && estimate.is_some_and(|e| upper < e) => Some(upper),
            None => None,
        };
        if let Some(d) = observed {
            let model = slot.model.clone();
            self.estimates.observe(&model, d);
        }
        self.end(i, now);
        self.replan();
    }

    /// A failed poll: task `i` is due again at `at` (never sooner than the
    /// interval after `sent`).
    pub fn failed(&mut self, i: usize, sent: Instant, at: Instant) {
        let slot = &mut self.slots[i];
        slot.last_sent = Some(sent);
        slot.state = State::Waiting;
        let due = self.not_before_interval(i, at);
        self.set_due(i, due);
    }

    /// Task `i` is left for the next run (or known finished elsewhere).
    pub fn give_up(&mut self, i: usize, now: Instant) {
        self.end(i, now);
    }

    fn end(&mut self, i: usize, now: Instant) {
        let slot = &mut self.slots[i];
        if slot.state == State::Done {
            return;
        }
        slot.state = State::Done;
        self.left -= 1;
        let early = slot.early;
        self.free.push(i);
        if self.estimates.get("").is_none() {
            if early {
                self.promote_scout(now);
            }
        } else if !self.by_rank.is_empty() {
            self.by_rank = Vec::new();
        }
    }

    /// Keeps the scout candidates to the window's size: when they outgrow
    /// twice the slots, those that can no longer become scouts (polled,
    /// ended, reused) go. A run whose tasks all finish at their first poll
    /// never learns an estimate, and would otherwise keep one entry per
    /// task it ever saw.
    fn prune_scout_candidates(&mut self) {
        if self.by_rank.len() <= 2 * self.slots.len().max(EARLY_SCOUTS) {
            return;
        }
        let start = self.next_scout.min(self.by_rank.len());
        let slots = &self.slots;
        let mut kept: Vec<usize> = self.by_rank[start..]
            .iter()
            .copied()
            .filter(|&i| {
                let s = &slots[i];
                s.state == State::Waiting && !s.early && s.last_sent.is_none()
            })
            .collect();
        kept.dedup();
        self.by_rank = kept;
        self.next_scout = 0;
    }

    /// Before any estimate, the oldest unpolled waiting task becomes a
    /// scout in place of one that ended without teaching.
    fn promote_scout(&mut self, now: Instant) {
        while let Some(&i) = self.by_rank.get(self.next_scout) {
            self.next_scout += 1;
            let s = &mut self.slots[i];
            if s.state == State::Waiting && !s.early && s.last_sent.is_none() {
                s.early = true;
                self.set_due(i, now);
                return;
            }
        }
    }

    /// Re-plans the unpolled tasks when the overall estimate appeared or
    /// moved by an interval or more since they were last planned.
    fn replan(&mut self) {
        let Some(e) = self.estimates.get("") else {
            return;
        };
        let moved = self
            .planned_with
            .is_none_or(|p| p.abs_diff(e) >= self.interval);
        if !moved {
            return;
        }
        self.planned_with = Some(e);
        for i in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.state == State::Waiting && s.last_sent.is_none() {
                let due = self.first_due(i);
                self.set_due(i, due);
            }
        }
    }

    /// When an unpolled task is first due.
    fn first_due(&self, i: usize) -> Instant {
        let slot = &self.slots[i];
        match self.estimates.get(&slot.model) {
            Some(e) if slot.scout => {
                let lead = (self.interval * 2).min(e / 2);
                self.at_age(i, e - lead)
            }
            Some(e) => self.at_age(i, e),
            None if slot.early => self.start,
            None => self.at_age(i, PRIOR),
        }
    }

    fn learn_model(&mut self, i: usize, model: &str) {
        if !model.is_empty() && self.slots[i].model.is_empty() {
            self.slots[i].model = model.to_owned();
        }
    }

    /// `at`, or later: an interval after the task's last poll was sent.
    fn not_before_interval(&self, i: usize, at: Instant) -> Instant {
        self.slots[i]
            .last_sent
            .map_or(at, |s| at.max(s + self.interval))
    }

    fn set_due(&mut self, i: usize, at: Instant) {
        self.slots[i].due = at;
        self.due.push(Reverse((at, i)));
    }

    /// Task `i`'s time since submission at `t`.
    fn age_at(&self, i: usize, t: Instant) -> Duration {
        let s = &self.slots[i];
        s.age + t.saturating_duration_since(self.start + s.after)
    }

    /// When task `i` is `age` old (the start, if it already was then).
    fn at_age(&self, i: usize, age: Duration) -> Instant {
        let s = &self.slots[i];
        self.start + s.after + age.saturating_sub(s.age)
    }
}

/// One rank in [`SCOUT_EVERY`], spread by a multiplicative hash so that
/// no regular pattern in the manifest (models alternating, say) leaves a
/// kind of task without scouts.
pub fn is_scout(rank: usize) -> bool {
    let h = (rank as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    h.is_multiple_of(SCOUT_EVERY as u64)
}

#[cfg(test)]
#[path = "schedule_tests.rs"]
mod tests;
