//! Background jobs. A job does its work one unit at a time (`run_once`)
//! and says whether there was any; the supervisor (`Jobs`) runs each job
//! on its own task: again at once after work, after its poll interval when
//! idle, after a growing pause when it failed or panicked. Tests call
//! `run_once` themselves instead of waiting for a task. `stop` ends them
//! all, letting a unit under way finish (for a while: one that hangs is
//! cut short, which a transaction survives), so nothing writes once the
//! server closes its database.

use std::{future::Future, sync::Arc, time::Duration};

use tokio::{sync::watch, task::JoinHandle};

use crate::kernel::error::Result;

/// What one step of a job found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do: wait for the poll interval.
    Idle,
    /// Did some work: there may be more, step again at once.
    Worked,
}

pub trait Job: Send + Sync + 'static {
    /// A short name for logs (never data of the work itself).
    fn name(&self) -> &'static str;

    /// How long to wait after an idle step.
    fn every(&self) -> Duration;

    /// Does one unit of work.
    fn run_once(&self) -> impl Future<Output = Result<Outcome>> + Send;
}

/// Pauses after failures: `first`, doubling up to `max`; a step that
/// succeeds starts over.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first: Duration::from_secs(1), max: Duration::from_secs(300) }
    }
}

impl Backoff {
    /// The pause after `failures` failures in a row (1 or more).
    pub fn after(&self, failures: u32) -> Duration {
        let doubled = self.first.saturating_mul(1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX));
        doubled.min(self.max)
    }
}

/// The running jobs.
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    backoff: Backoff,
    grace: Duration,
}

impl Default for Jobs {
    fn default() -> Self {
        Jobs::new(Backoff::default())
    }
}

impl Jobs {
    pub fn new(backoff: Backoff) -> Jobs {
        Jobs { stop: watch::channel(false).0, tasks: vec![], backoff, grace: Duration::from_secs(15) }
    }

    /// How long `stop` lets a step under way go on before cutting it short.
    pub fn with_grace(mut self, grace: Duration) -> Jobs {
        self.grace = grace;
        self
    }

    /// Starts `job` on its own task.
    pub fn start<J: Job>(&mut self, job: J) {
        let job = Arc::new(job);
        let name = job.name();
        let stop = self.stop.subscribe();
        let backoff = self.backoff;
        let task = tokio::spawn(supervise(job, stop, backoff, self.grace));
        self.tasks.push((name, task));
    }

    /// The names of the jobs started, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.tasks.iter().map(|(n, _)| *n).collect()
    }

    /// Stops every job and waits until each has: a step under way finishes
    /// first, and none starts after.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, task) in self.tasks {
            if let Err(e) = task.await {
                tracing::error!(job = name, error = %e, "job supervisor ended abnormally");
            }
        }
    }
}

/// Runs `job` until stopped, restarting it after a panic.
async fn supervise<J: Job>(job: Arc<J>, mut stop: watch::Receiver<bool>, backoff: Backoff, grace: Duration) {
    let name = job.name();
    let mut panics = 0;
    loop {
        // Each life of the job on a task of its own: a panic ends that
        // task, not the supervisor.
        let mut life = tokio::spawn(steps(job.clone(), stop.clone(), backoff));
        let ended = tokio::select! {
            ended = &mut life => ended,
            _ = stopped_for(stop.clone(), grace) => {
                life.abort();
                let _ = life.await;
                tracing::warn!(job = name, grace_ms = grace.as_millis() as u64, "job step cut short at stop");
                return;
            }
        };
        match ended {
            Ok(()) => return,
            Err(e) if e.is_panic() => {
                panics += 1;
                let pause = backoff.after(panics);
                tracing::error!(job = name, panics, retry_in_ms = pause.as_millis() as u64, "job panicked; restarting");
                if wait(&mut stop, pause).await {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(job = name, error = %e, "job task ended");
                return;
            }
        }
    }
}

/// Steps `job` until stopped.
async fn steps<J: Job>(job: Arc<J>, mut stop: watch::Receiver<bool>, backoff: Backoff) {
    let name = job.name();
    let mut failures = 0;
    while !*stop.borrow() {
        let pause = match job.run_once().await {
            Ok(Outcome::Worked) => {
                failures = 0;
                // Let others run between steps of a long queue.
                tokio::task::yield_now().await;
                continue;
            }
            Ok(Outcome::Idle) => {
                failures = 0;
                job.every()
            }
            Err(e) => {
                failures += 1;
                let pause = backoff.after(failures);
                tracing::warn!(job = name, failures, retry_in_ms = pause.as_millis() as u64, error = %e, "job step failed");
                pause
            }
        };
        if wait(&mut stop, pause).await {
            return;
        }
    }
}

/// Resolves `grace` after the jobs are stopped.
async fn stopped_for(mut stop: watch::Receiver<bool>, grace: Duration) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    tokio::time::sleep(grace).await;
}

/// Sleeps for `pause`; answers whether the jobs were stopped meanwhile.
async fn wait(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(pause) => *stop.borrow(),
        // The sender's drop counts as a stop as well.
        _ = stop.changed() => true,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    };

    use super::*;

    /// Records when each step ran; fails or panics on the steps listed.
    struct Script {
        at: Arc<Mutex<Vec<std::time::Instant>>>,
        fail_on: Vec<usize>,
        panic_on: Vec<usize>,
        work_until: usize,
        running: Arc<AtomicBool>,
        slow: Duration,
    }

    impl Script {
        fn new() -> Script {
            Script {
                at: Default::default(),
                fail_on: vec![],
                panic_on: vec![],
                work_until: 0,
                running: Default::default(),
                slow: Duration::ZERO,
            }
        }
    }

    impl Job for Script {
        fn name(&self) -> &'static str {
            "script"
        }

        fn every(&self) -> Duration {
            Duration::from_secs(1)
        }

        async fn run_once(&self) -> Result<Outcome> {
            let n = {
                let mut at = self.at.lock().unwrap();
                at.push(std::time::Instant::now());
                at.len()
            };
            self.running.store(true, Ordering::SeqCst);
            tokio::time::sleep(self.slow).await;
            self.running.store(false, Ordering::SeqCst);
            if self.panic_on.contains(&n) {
                panic!("step {n} panics");
            }
            if self.fail_on.contains(&n) {
                return Err(anyhow::anyhow!("step {n} fails").into());
            }
            Ok(if n <= self.work_until { Outcome::Worked } else { Outcome::Idle })
        }
    }

    #[test]
    fn backoff_doubles_up_to_its_maximum() {
        let b = Backoff { first: Duration::from_millis(100), max: Duration::from_secs(1) };
        let pauses: Vec<u128> = (1..=6).map(|n| b.after(n).as_millis()).collect();
        assert_eq!(pauses, vec![100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.after(200), Duration::from_secs(1), "no overflow");
    }

    #[tokio::test]
    async fn a_step_can_be_driven_by_hand() {
        let job = Script { work_until: 1, fail_on: vec![3], ..Script::new() };
        assert_eq!(job.run_once().await.unwrap(), Outcome::Worked);
        assert_eq!(job.run_once().await.unwrap(), Outcome::Idle);
        assert!(job.run_once().await.is_err());
    }

    /// Work is stepped again at once, idleness waits for the interval,
    /// failures and panics pause with backoff and the job goes on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_supervisor_steps_backs_off_and_restarts() {
        let job = Script { work_until: 3, fail_on: vec![4, 5], panic_on: vec![6], ..Script::new() };
        let at = job.at.clone();
        let mut jobs = Jobs::new(Backoff { first: Duration::from_millis(150), max: Duration::from_secs(60) });
        jobs.start(job);
        assert_eq!(jobs.names(), vec!["script"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while at.lock().unwrap().len() < 8 {
            assert!(std::time::Instant::now() < deadline, "the job stopped stepping");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        jobs.stop().await;
        let at = at.lock().unwrap().clone();
        let gap = |i: usize| at[i] - at[i - 1];
        let ms = Duration::from_millis;
        // Steps 1–3 worked: the next came without the 1 s interval.
        for i in 1..4 {
            assert!(gap(i) < ms(900), "after work, step {} waited {:?}", i + 1, gap(i));
        }
        // Step 4 failed: 150 ms; step 5 failed again: 300 ms.
        assert!(gap(4) >= ms(150) && gap(4) < ms(900), "first backoff {:?}", gap(4));
        assert!(gap(5) >= ms(300), "second backoff {:?}", gap(5));
        // Step 6 panicked: restarted after the supervisor's backoff.
        assert!(gap(6) >= ms(150), "restart after a panic {:?}", gap(6));
        // Step 7 was idle: the next waited for the interval.
        assert!(gap(7) >= ms(1000), "after an idle step {:?}", gap(7));
    }

    /// A step that outlasts the grace period is cut short.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_cuts_short_a_step_that_hangs() {
        let job = Script { slow: Duration::from_secs(3600), ..Script::new() };
        let running = job.running.clone();
        let mut jobs = Jobs::default().with_grace(Duration::from_millis(200));
        jobs.start(job);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(running.load(Ordering::SeqCst));
        let asked = std::time::Instant::now();
        jobs.stop().await;
        let took = asked.elapsed();
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(10), "stopped after {took:?}");
        assert!(running.load(Ordering::SeqCst), "the step never finished: it was cut short");
    }

    /// `stop` lets the step under way finish and starts no other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn stop_waits_for_the_step_under_way() {
        let job = Script { slow: Duration::from_millis(400), ..Script::new() };
        let (at, running) = (job.at.clone(), job.running.clone());
        let mut jobs = Jobs::default();
        jobs.start(job);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(running.load(Ordering::SeqCst));
        jobs.stop().await;
        assert!(!running.load(Ordering::SeqCst), "the step finished before stop answered");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(at.lock().unwrap().len(), 1, "nothing ran after the stop");
    }
}
