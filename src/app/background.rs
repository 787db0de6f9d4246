//! The appliance's background workers: one thread keeps the search index caught up with
//! the store's change sequence (a new execution is searchable within a second or so) and
//! samples the queue depths the console charts; another runs the residency auditor at start
//! and then every `residency.audit_interval`. Both are stopped and joined when the
//! appliance is dropped.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::domain::ids::TenantId;
use crate::search::SearchIndex;
use crate::store::Store;
use crate::telemetry::Metrics;

/// How often the indexer looks for new changes when idle.
const POLL: Duration = Duration::from_millis(100);
/// How long the indexer waits after a failure before retrying.
const RETRY: Duration = Duration::from_secs(1);
/// How often queue depths are sampled.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Samples kept (one hour at [`SAMPLE_EVERY`]).
pub const SAMPLES: usize = 360;

/// Queue depth per tenant at one instant.
#[derive(Debug, Clone)]
pub struct QueueSample {
    /// When.
    pub at: jiff::Timestamp,
    /// Queued executions per tenant.
    pub depths: Vec<(TenantId, usize)>,
}

/// The last hour of queue depth samples, oldest first.
#[derive(Debug, Default)]
pub struct QueueHistory(Mutex<VecDeque<QueueSample>>);

impl QueueHistory {
    /// Records a sample, dropping the oldest beyond [`SAMPLES`].
    pub fn record(&self, sample: QueueSample) {
        let mut q = self.0.lock();
        if q.len() >= SAMPLES {
            q.pop_front();
        }
        q.push_back(sample);
    }

    /// Every sample, oldest first.
    pub fn samples(&self) -> Vec<QueueSample> {
        self.0.lock().iter().cloned().collect()
    }
}

/// The running workers; they stop when dropped.
pub struct Background {
    stop: Arc<AtomicBool>,
    handles: Vec<JoinHandle<()>>,
}

/// The residency auditor's schedule and the audit to run.
pub struct Auditor {
    /// Time between audits.
    pub every: Duration,
    /// Runs one audit; returns whether it succeeded.
    pub audit: Box<dyn Fn() -> bool + Send>,
}

/// Runs `auditor` now and then every `auditor.every` until `stop` is set.
fn audit_loop(stop: &AtomicBool, auditor: &Auditor) {
    while !stop.load(Ordering::Acquire) {
        let next = Instant::now()
            + if (auditor.audit)() {
                auditor.every
            } else {
                RETRY * 60
            };
        while !stop.load(Ordering::Acquire) && Instant::now() < next {
            std::thread::park_timeout(next.saturating_duration_since(Instant::now()));
        }
    }
}

impl Background {
    /// Starts the workers.
    pub fn start(
        store: Arc<Store>,
        search: Arc<SearchIndex>,
        metrics: Arc<Metrics>,
        history: Arc<QueueHistory>,
        depths: impl Fn() -> Vec<(TenantId, usize)> + Send + 'static,
        auditor: Auditor,
    ) -> Background {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let audit_stop = stop.clone();
        let audit_handle = std::thread::Builder::new()
            .name("maestro-residency".into())
            .spawn(move || audit_loop(&audit_stop, &auditor))
            .expect("the residency auditor thread starts");
        let flag = flag.clone();
        let handle = std::thread::Builder::new()
            .name("maestro-background".into())
            .spawn(move || {
                let mut sampled: Option<Instant> = None;
                while !flag.load(Ordering::Acquire) {
                    if sampled.is_none_or(|t| t.elapsed() >= SAMPLE_EVERY) {
                        history.record(QueueSample {
                            at: jiff::Timestamp::now(),
                            depths: depths(),
                        });
                        sampled = Some(Instant::now());
                    }
                    let report = || {
                        let state = search.state();
                        let last = store
                            .read()
                            .and_then(|r| r.last_change())
                            .ok()
                            .flatten();
                        let behind = state.behind(last);
                        metrics
                            .index_lag
                            .set(i64::try_from(behind).unwrap_or(i64::MAX));
                        metrics
                            .index_documents
                            .set(i64::try_from(state.documents).unwrap_or(i64::MAX));
                    };
                    // Before a step too: a rebuild of a large store is one long step.
                    report();
                    let wait = match search.step(&store) {
                        Ok(0) => POLL,
                        Ok(_) => Duration::ZERO,
                        Err(e) => {
                            metrics.index_errors.inc();
                            tracing::warn!(error = %e, "the search index could not catch up; retrying");
                            RETRY
                        }
                    };
                    report();
                    if !wait.is_zero() {
                        std::thread::park_timeout(wait);
                    }
                }
            })
            .expect("the background thread starts");
        Background {
            stop,
            handles: vec![handle, audit_handle],
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for h in &self.handles {
            h.thread().unpark();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
