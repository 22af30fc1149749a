//! The scheduler driven by a simulated host: each task finishes a fixed
//! time after its submission, answers come back at once, and one poll is
//! sent per `every` at most (the loop's rate limiter). Time is a virtual
//! clock advanced by the driver, so nothing here depends on how fast the
//! machine runs.

#![allow(clippy::needless_range_loop)] // tasks are indexes into several parallel vectors

use super::*;

const INTERVAL: Duration = Duration::from_secs(5);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// A task to appear at `added` (since the start), `age` old then, that
/// finishes `takes` after its submission.
#[derive(Clone, Copy)]
struct Spec {
    added: Duration,
    age: Duration,
    takes: Duration,
    model: &'static str,
}

fn spec(age: f64, takes: f64) -> Spec {
    Spec {
        added: Duration::ZERO,
        age: secs(age),
        takes: secs(takes),
        model: "",
    }
}

/// What the simulation saw.
struct Run {
    start: Instant,
    sched: Scheduler,
    specs: Vec<Spec>,
    /// Send times of each task's polls.
    polls: Vec<Vec<Instant>>,
    /// Every poll in order: (task, time).
    log: Vec<(usize, Instant)>,
    /// When each task was found finished.
    found: Vec<Option<Instant>>,
}

impl Run {
    /// Task `i`'s age at `t`.
    fn age(&self, i: usize, t: Instant) -> Duration {
        let s = &self.specs[i];
        s.age + t.saturating_duration_since(self.start + s.added)
    }

    fn first_poll_age(&self, i: usize) -> Duration {
        self.age(i, self.polls[i][0])
    }

    fn polls_per_task(&self) -> f64 {
        self.log.len() as f64 / self.specs.len() as f64
    }
}

/// Runs `specs` (those added at zero known from the start) to the end.
fn simulate(specs: &[Spec], every: Duration) -> Run {
    let start = Instant::now();
    let initial: Vec<Duration> = (specs.iter())
        .filter(|s| s.added.is_zero())
        .map(|s| s.age)
        .collect();
    let mut later: Vec<Spec> = specs
        .iter()
        .copied()
        .filter(|s| !s.added.is_zero())
        .collect();
    later.sort_by_key(|s| s.added);
    let mut order: Vec<Spec> = specs
        .iter()
        .copied()
        .filter(|s| s.added.is_zero())
        .collect();
    let mut run = Run {
        start,
        sched: Scheduler::new(&initial, INTERVAL, start),
        specs: Vec::new(),
        polls: vec![Vec::new(); specs.len()],
        log: Vec::new(),
        found: vec![None; specs.len()],
    };
    let mut later = later.into_iter().peekable();
    let mut now = start;
    let mut next_send = start;
    // Schedule index → task: an added task may take an ended one's slot.
    let mut task_of: Vec<usize> = (0..order.len()).collect();
    loop {
        while let Some(s) = later.next_if(|s| start + s.added <= now) {
            let slot = run.sched.add(s.age, start + s.added);
            if task_of.len() <= slot {
                task_of.resize(slot + 1, usize::MAX);
            }
            assert!(
                task_of[slot] == usize::MAX || run.found[task_of[slot]].is_some(),
                "slot {slot} reused while its task is not done"
            );
            task_of[slot] = order.len();
            order.push(s);
        }
        run.specs = order.clone();
        if run.sched.left() == 0 && later.peek().is_none() {
            return run;
        }
        if now >= next_send
            && let Some(slot) = run.sched.next(now)
        {
            let i = task_of[slot];
            assert!(
                run.found[i].is_none(),
                "task {i} polled after it was found finished"
            );
            run.polls[i].push(now);
            run.log.push((i, now));
            let model = run.specs[i].model;
            if run.age(i, now) >= run.specs[i].takes {
                run.found[i] = Some(now);
                run.sched.finished(slot, now, model, now);
            } else {
                run.sched.running(slot, now, model);
            }
            next_send = now + every;
            continue;
        }
        let mut wake = run.sched.wake().map(|w| w.max(next_send));
        if let Some(s) = later.peek() {
            let at = start + s.added;
            wake = Some(wake.map_or(at, |w| w.min(at)));
        }
        let wake = wake.expect("tasks left but nothing due: the schedule stalled");
        assert!(now < start + secs(100_000.0), "the simulation does not end");
        now = wake.max(now + Duration::from_millis(1));
    }
}

fn assert_interval_kept(run: &Run) {
    for (i, polls) in run.polls.iter().enumerate() {
        for pair in polls.windows(2) {
            assert!(
                pair[1] - pair[0] >= INTERVAL,
                "task {i} polled {:?} apart",
                pair[1] - pair[0]
            );
        }
    }
}

#[test]
fn tasks_are_polled_no_more_often_than_the_interval_and_never_once_finished() {
    // Durations that vary, scouts, misses and backoff all included.
    let specs: Vec<Spec> = (0..200)
        .map(|i| spec(f64::from(i % 7), 20.0 + f64::from(i % 13) * 3.0))
        .collect();
    let run = simulate(&specs, secs(0.05));
    assert_interval_kept(&run);
    assert!(run.found.iter().all(Option::is_some), "every task finished");
    // `simulate` asserts no poll after a task was found finished.
}

#[test]
fn a_steady_host_costs_little_more_than_one_poll_per_task() {
    let specs: Vec<Spec> = (0..300).map(|_| spec(0.0, 40.0)).collect();
    let run = simulate(&specs, secs(0.01));
    assert!(
        run.polls_per_task() <= 1.5,
        "{} polls per task",
        run.polls_per_task()
    );
    let e = run.sched.estimate("").expect("an estimate");
    assert!(
        e >= secs(40.0) && e <= secs(40.0) + INTERVAL,
        "estimate {e:?}"
    );
    // Every task is found within an interval of its finishing.
    for i in 0..specs.len() {
        let late = run.age(i, run.found[i].unwrap()) - specs[i].takes;
        assert!(
            late <= INTERVAL,
            "task {i} found {late:?} after it finished"
        );
    }
}

#[test]
fn before_the_first_estimate_only_the_oldest_few_scout() {
    let specs: Vec<Spec> = (0..40)
        .map(|i| spec(f64::from(40 - i) / 10.0, 40.0))
        .collect();
    let run = simulate(&specs, secs(0.01));
    let first_finish = run.found.iter().flatten().min().copied().unwrap();
    let before: Vec<usize> = (run.log.iter())
        .filter(|(_, t)| *t < first_finish)
        .map(|(i, _)| *i)
        .collect();
    assert!(!before.is_empty());
    // Ages 4.0, 3.9, …: the oldest tasks are 0..EARLY_SCOUTS.
    assert!(
        before.iter().all(|&i| i < EARLY_SCOUTS),
        "polled before the first finish: {before:?}"
    );
    // The first finished scout taught everyone: no other task was polled
    // long before it was done.
    for i in EARLY_SCOUTS..specs.len() {
        if !is_scout(i) {
            assert!(
                run.first_poll_age(i) >= secs(40.0),
                "task {i} first polled at {:?}",
                run.first_poll_age(i)
            );
        }
    }
}

#[test]
fn due_tasks_are_polled_oldest_first() {
    // Submitted long ago, in shuffled order: all due at once.
    let ages = [
        7200.0, 9000.0, 3600.0, 86_400.0, 5000.0, 4000.0, 12_000.0, 7000.0,
    ];
    let specs: Vec<Spec> = ages.iter().map(|&a| spec(a, 60.0)).collect();
    let run = simulate(&specs, secs(1.0));
    let polled: Vec<f64> = run.log.iter().map(|(i, _)| ages[*i]).collect();
    let mut sorted = polled.clone();
    sorted.sort_by(|a, b| b.total_cmp(a));
    assert_eq!(polled, sorted, "polled in submission order");
    assert_eq!(run.log.len(), ages.len(), "one poll each");
    // Due at once: back to back at the rate.
    assert_eq!(run.log.last().unwrap().1 - run.start, secs(7.0));
}

#[test]
fn the_estimate_follows_the_host_down_and_up() {
    // 60 tasks of 40 s, then (from 200 s on, one every 2 s) 300 of 10 s,
    // then 150 of 40 s again.
    let mut specs: Vec<Spec> = (0..60).map(|_| spec(0.0, 40.0)).collect();
    let batch = |from: f64, takes: f64, n: u32| {
        (0..n).map(move |k| Spec {
            added: secs(from + 2.0 * f64::from(k)),
            ..spec(0.0, takes)
        })
    };
    specs.extend(batch(200.0, 10.0, 300));
    specs.extend(batch(900.0, 40.0, 150));
    let run = simulate(&specs, secs(0.01));
    assert_interval_kept(&run);
    // The last 50 fast tasks were found near 10 s, not at 40 s.
    for i in 310..360 {
        let found = run.age(i, run.found[i].unwrap());
        assert!(found <= secs(20.0), "fast task {i} found at {found:?}");
    }
    // The last 50 slow ones are found within an interval or two.
    for i in 460..510 {
        let late = run.age(i, run.found[i].unwrap()) - specs[i].takes;
        assert!(late <= INTERVAL * 2, "slow task {i} found {late:?} late");
    }
    let e = run.sched.estimate("").unwrap();
    assert!(e >= secs(40.0) && e <= secs(45.0), "estimate {e:?}");
}

#[test]
fn a_failed_poll_waits_at_least_the_interval_and_a_given_up_scout_hands_over() {
    let start = Instant::now();
    let ages = [
        secs(10.0),
        secs(9.0),
        secs(8.0),
        secs(7.0),
        secs(6.0),
        secs(5.0),
    ];
    let mut s = Scheduler::new(&ages, INTERVAL, start);
    let mut first = Vec::new();
    while let Some(i) = s.next(start) {
        first.push(i);
    }
    assert_eq!(first, vec![0, 1, 2, 3], "the early scouts, oldest first");
    // A failure asking for a retry sooner than the interval gets the interval.
    s.failed(0, start, start + secs(1.0));
    assert_eq!(s.next(start + secs(4.9)), None);
    assert_eq!(s.next(start + INTERVAL), Some(0));
    // A scout given up hands over to the next oldest, due at once.
    s.give_up(1, start + INTERVAL);
    assert_eq!(s.next(start + INTERVAL), Some(4));
    assert_eq!(s.left(), 5);
    assert_eq!(
        s.next(start + secs(1000.0)),
        Some(5),
        "the rest wait at most PRIOR"
    );
}

// ---------------------------------------------------------------- packing

/// Tasks submitted `ages` seconds before the start, every one due at once.
fn due_at_start(ages: &[f64]) -> (Scheduler, Instant) {
    let start = Instant::now();
    let ages: Vec<Duration> = ages.iter().map(|&a| secs(a)).collect();
    (Scheduler::new(&ages, INTERVAL, start), start)
}

#[test]
fn a_batch_packs_the_due_tasks_oldest_first_up_to_its_size() {
    // Hours old: all due at once, in shuffled order.
    let ages = [7200.0, 9000.0, 3600.0, 86_400.0, 5000.0];
    let (mut s, start) = due_at_start(&ages);
    assert_eq!(s.next_batch(start, 3, INTERVAL), vec![3, 1, 0]);
    assert_eq!(s.next_batch(start, 3, INTERVAL), vec![4, 2]);
    assert!(
        s.next_batch(start, 3, INTERVAL).is_empty(),
        "in flight: never packed twice"
    );
    // With a size of 1 it is `next`.
    let (mut s, start) = due_at_start(&ages);
    assert_eq!(s.next_batch(start, 1, INTERVAL), vec![3]);
    assert_eq!(s.next(start), Some(1));
}

#[test]
fn a_batch_takes_tasks_due_within_the_interval_along_but_keeps_the_interval() {
    // Before any estimate the oldest EARLY_SCOUTS (0..4) are due at once,
    // the others at PRIOR of age: task 4 two seconds later, task 5 forty.
    let prior = PRIOR.as_secs_f64();
    let ages = [700.0, 699.0, 698.0, 697.0, prior - 2.0, prior - 40.0];
    let (mut s, start) = due_at_start(&ages);
    assert_eq!(
        s.next_batch(start, 10, INTERVAL),
        vec![0, 1, 2, 3, 4],
        "task 4, due within the interval and never polled, rides along"
    );
    for i in 0..5 {
        s.running(i, start, "");
    }
    // Nothing due: nothing rides along on its own.
    assert!(s.next_batch(start + secs(1.0), 10, INTERVAL).is_empty());
    // A scout that ends hands over to task 5, due now; the others are due
    // within the interval but were polled less than half of one ago: they
    // wait.
    let now = start + secs(1.0);
    s.give_up(0, now);
    assert_eq!(s.next_batch(now, 10, INTERVAL), vec![5]);
    // An interval after their poll they go together, up to the size.
    let later = start + INTERVAL;
    assert_eq!(s.next_batch(later, 3, INTERVAL), vec![1, 2, 3]);
    assert_eq!(s.next_batch(later, 3, INTERVAL), vec![4]);
}

#[test]
fn polls_that_drifted_apart_share_a_request_again() {
    let ages = [700.0, 699.0];
    let (mut s, start) = due_at_start(&ages);
    // Polled alone, a few milliseconds apart (they came in one by one).
    assert_eq!(s.next_batch(start, 1, INTERVAL), vec![0]);
    s.running(0, start, "");
    let apart = start + secs(0.003);
    assert_eq!(s.next_batch(apart, 10, INTERVAL), vec![1]);
    s.running(1, apart, "");
    // Task 0 is due first; task 1, due 3 ms later, rides along.
    let due = start + INTERVAL;
    assert_eq!(s.next_batch(due, 10, INTERVAL), vec![0, 1]);
}
