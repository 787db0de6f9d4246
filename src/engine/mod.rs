//! The execution engine: admission, rate limits, per-tenant queues with weighted-fair
//! dispatch, a bounded runner pool, group commit of every state change, and recovery after
//! a restart (queued executions resume; ones that were running are sealed as interrupted).

pub mod actions;
pub mod admission;
mod committer;
pub mod evidence;
pub mod limiter;
pub mod packages;
pub mod residency;
pub mod runner;
pub mod scheduler;
mod sealer;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore, oneshot};

pub use committer::CommitError;
pub use sealer::Signing;

use crate::config::{Config, ExecActionConfig, HttpActionConfig};
use crate::domain::actor::{Access, Actor, TenantScope};
use crate::domain::duration;
use crate::domain::execution::{Execution, ExecutionStatus, TaskStatus};
use crate::domain::ids::{ExecutionId, TenantId};
use crate::domain::validate::{self, ValidManifest};
use crate::policy::Policies;
use crate::store::{ActiveState, Store, StoreError};
use crate::telemetry::Metrics;
use actions::ActionEnv;
use committer::{CheckpointSigner, Committer};
use limiter::Limiter;
use runner::RunEnv;
use scheduler::FairQueue;
use sealer::Sealer;

/// Per-tenant engine settings.
#[derive(Debug, Clone)]
pub struct TenantSettings {
    /// Share of runners under contention.
    pub weight: u32,
    /// Submissions per second.
    pub rate: u32,
    /// Burst.
    pub burst: u32,
    /// Queue bound.
    pub max_queued: usize,
    /// Allowed regions (empty: all).
    pub allowed_regions: Vec<String>,
}

/// What the engine needs from the configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Tenants.
    pub tenants: BTreeMap<TenantId, TenantSettings>,
    /// Declared regions.
    pub regions: Vec<String>,
    /// Storage locations and region tags.
    pub locations: BTreeMap<String, String>,
    /// The region of this node, if declared.
    pub node_region: Option<String>,
    /// The residency rules the auditor checks receipts against.
    pub residency: crate::domain::residency::Rules,
    /// Open residency violations deny new runs of the tenant that touch them.
    pub residency_enforce: bool,
    /// Runner pool size.
    pub runners: usize,
    /// Global (rate, burst).
    pub global_rate: (u32, u32),
    /// Most tasks per manifest.
    pub max_tasks: usize,
    /// Most commands per group commit.
    pub max_batch: usize,
    /// Default execution limit.
    pub execution_timeout: Duration,
    /// Default attempt limit.
    pub task_timeout: Duration,
    /// Largest outputs per task.
    pub max_output_bytes: usize,
    /// Largest artifact.
    pub max_artifact_bytes: usize,
    /// `builtin/http` settings.
    pub http: HttpActionConfig,
    /// `builtin/exec` settings.
    pub exec: ExecActionConfig,
    /// Root of work directories.
    pub work_root: PathBuf,
    /// Workflow packages installed from the catalog (shared: installing one makes it
    /// usable at once).
    pub packages: packages::Packages,
    /// The appliance's own base URL (`appliance.url`).
    pub appliance_url: String,
}

impl EngineConfig {
    /// Derives the engine settings from a validated configuration.
    pub fn from_config(c: &Config) -> Result<Self, String> {
        let parse = |key: &str, v: &str| duration::parse(v).map_err(|e| format!("{key}: {e}"));
        let mut tenants = BTreeMap::new();
        for (id, t) in &c.tenants {
            let id = TenantId::new(id).map_err(|e| e.to_string())?;
            tenants.insert(
                id,
                TenantSettings {
                    weight: t.weight,
                    rate: t.rate.unwrap_or(c.limits.tenant_rate),
                    burst: t.burst.unwrap_or(c.limits.tenant_burst),
                    max_queued: t.max_queued.unwrap_or(c.limits.queue_per_tenant),
                    allowed_regions: t.allowed_regions.clone(),
                },
            );
        }
        Ok(EngineConfig {
            tenants,
            regions: c.regions.clone(),
            locations: c
                .locations
                .iter()
                .map(|(k, v)| (k.clone(), v.region.clone()))
                .collect(),
            node_region: c.node_region.clone(),
            residency: c.residency_rules(),
            residency_enforce: c.features.residency_auditor_enforce,
            runners: c.limits.runners,
            global_rate: (c.limits.global_rate, c.limits.global_burst),
            max_tasks: c.limits.max_tasks,
            max_batch: c.commit.max_batch,
            execution_timeout: parse("limits.execution_timeout", &c.limits.execution_timeout)?,
            task_timeout: parse("limits.task_timeout", &c.limits.task_timeout)?,
            max_output_bytes: c.limits.max_output_bytes,
            max_artifact_bytes: c.limits.max_artifact_bytes,
            http: {
                // The appliance's own address joins the allow-list, for the runner and
                // for admission alike.
                let mut http = c.actions.http.clone();
                if http.allow_self
                    && let Some(own) = c.self_url().strip_prefix("http://")
                {
                    http.allowed_hosts.push(own.to_owned());
                }
                http
            },
            exec: c.actions.exec.clone(),
            packages: packages::Packages::default(),
            work_root: c.data_dir.join("work"),
            appliance_url: c.self_url(),
        })
    }
}

/// Why a submission was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The tenant is not configured.
    #[error("tenant {0} is not configured on this appliance")]
    UnknownTenant(String),
    /// A rate limit refused it.
    #[error("{scope} rate limit exceeded; retry in {}ms", retry_after.as_millis())]
    RateLimited {
        /// `tenant` or `global`.
        scope: &'static str,
        /// When to retry.
        retry_after: Duration,
    },
    /// The tenant's queue is full.
    #[error("the queue of tenant {tenant} is full ({limit} executions)")]
    QueueFull {
        /// The tenant.
        tenant: String,
        /// Its bound.
        limit: usize,
        /// When to retry.
        retry_after: Duration,
    },
    /// The appliance is shutting down.
    #[error("the appliance is shutting down")]
    Unavailable,
    /// Recording it failed; it was not accepted.
    #[error("the execution could not be recorded: {0}")]
    Commit(#[from] CommitError),
}

/// Why the engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Committing failed.
    #[error(transparent)]
    Commit(#[from] CommitError),
    /// Something else in setup.
    #[error("{0}")]
    Setup(String),
    /// A request with impossible parameters (a tree size that does not exist, …).
    #[error("{0}")]
    Invalid(String),
}

struct Job {
    exec: Execution,
    submitted: Instant,
}

/// Executions this process has accepted and not yet sealed, and who waits for them. One lock,
/// so a waiter either sees the execution in flight or finds it final in the store.
#[derive(Default)]
struct Waiting {
    inflight: HashMap<ExecutionId, TenantId>,
    waiters: HashMap<ExecutionId, Vec<(u64, oneshot::Sender<Execution>)>>,
}

struct Inner {
    store: Arc<Store>,
    committer: Committer,
    committer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    sealer: Sealer,
    policies: Arc<Policies>,
    signing: Arc<Signing>,
    metrics: Arc<Metrics>,
    cfg: EngineConfig,
    limiter: Limiter,
    queue: Mutex<FairQueue<Job>>,
    wake: Notify,
    waiting: Mutex<Waiting>,
    next_waiter: AtomicU64,
    runners: Arc<Semaphore>,
    jobs: Mutex<tokio::task::JoinSet<()>>,
    /// The dispatcher task, awaited at shutdown (it holds the engine, and so the store).
    dispatcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    run_env: RunEnv,
    closing: AtomicBool,
    /// What open residency violations block (read at admission when enforcing).
    residency_blocks: parking_lot::RwLock<crate::domain::residency::Blocks>,
    /// One residency audit (or resolution) at a time.
    residency_audit: Mutex<()>,
}

/// What recovery found at start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Queued executions put back in their queues.
    pub resumed: usize,
    /// Running executions sealed as interrupted.
    pub interrupted: usize,
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

/// A submission slot of a tenant, taken by [`Engine::admit`].
#[derive(Debug)]
pub struct Admitted(TenantId);

const INTERRUPTED: &str = "the appliance stopped while this execution was running; it was not resumed because its tasks may have had side effects";

impl Engine {
    /// Starts the committer and the dispatcher, and recovers executions left by a previous
    /// run. Must be called inside a Tokio runtime.
    pub async fn start(
        store: Arc<Store>,
        cfg: EngineConfig,
        signing: Signing,
        policies: Arc<Policies>,
        metrics: Arc<Metrics>,
    ) -> Result<(Engine, Recovery), EngineError> {
        let signing = Arc::new(signing);
        store.write(|w| {
            for key in std::iter::once(&signing.appliance).chain(signing.tenant_keys.values()) {
                let p = key.public();
                w.put_key(
                    p.keyid(),
                    &serde_json::json!({"keyid": p.keyid(), "algorithm": p.algorithm(), "pem": p.pem()}),
                )?;
            }
            Ok(())
        })?;
        let (committer, thread) = Committer::spawn(
            store.clone(),
            CheckpointSigner {
                key: signing.appliance.clone(),
                origin: signing.origin.clone(),
            },
            metrics.clone(),
            cfg.max_batch,
        )
        .map_err(|e| EngineError::Setup(format!("starting the commit thread: {e}")))?;
        let actions = ActionEnv::new(
            cfg.http.clone(),
            cfg.exec.clone(),
            cfg.locations.clone(),
            cfg.work_root.clone(),
            cfg.max_artifact_bytes,
            cfg.appliance_url.clone(),
        )
        .map_err(EngineError::Setup)?;
        let limiter = Limiter::new(
            cfg.global_rate,
            cfg.tenants
                .iter()
                .map(|(t, s)| (t.clone(), (s.rate, s.burst))),
        );
        metrics.log_size.set(store.read()?.log_size()? as i64);
        let sealer = Sealer::new(store.clone(), signing.clone())?;
        let blocks = residency::load_blocks(&store, &cfg.residency, &metrics)?;

        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                committer,
                committer_thread: Mutex::new(Some(thread)),
                sealer,
                policies,
                signing,
                metrics,
                limiter,
                queue: Mutex::new(FairQueue::default()),
                wake: Notify::new(),
                waiting: Mutex::new(Waiting::default()),
                next_waiter: AtomicU64::new(0),
                runners: Arc::new(Semaphore::new(cfg.runners)),
                jobs: Mutex::new(tokio::task::JoinSet::new()),
                dispatcher: Mutex::new(None),
                run_env: RunEnv {
                    actions,
                    execution_timeout: cfg.execution_timeout,
                    task_timeout: cfg.task_timeout,
                    max_output_bytes: cfg.max_output_bytes,
                    packages: cfg.packages.clone(),
                },
                cfg,
                closing: AtomicBool::new(false),
                residency_blocks: parking_lot::RwLock::new(blocks),
                residency_audit: Mutex::new(()),
            }),
        };
        let recovery = engine.recover().await?;
        let dispatcher = tokio::spawn(engine.clone().dispatch());
        *engine.inner.dispatcher.lock() = Some(dispatcher);
        Ok((engine, recovery))
    }

    /// The store (for reads).
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The store, shared (for background workers that outlive a borrow).
    pub fn shared_store(&self) -> Arc<Store> {
        self.inner.store.clone()
    }

    /// The active policies.
    pub fn policies(&self) -> &Arc<Policies> {
        &self.inner.policies
    }

    /// Durably appends an audit event (and the decision it records, in the same transaction).
    pub async fn audit(
        &self,
        event: crate::domain::audit::NewAuditEvent,
        decision: Option<&crate::domain::execution::Decision>,
    ) -> Result<(), CommitError> {
        let decision = decision
            .map(crate::store::EncodedDecision::new)
            .transpose()
            .map_err(|e| CommitError::Store(e.to_string()))?;
        self.inner.committer.audit(event, decision).await
    }

    /// Signing keys and the log origin.
    pub fn signing(&self) -> &Signing {
        &self.inner.signing
    }

    /// Engine settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// The context manifests are validated in.
    pub fn validation_context(&self) -> validate::Context<'_> {
        validate::Context {
            regions: &self.inner.cfg.regions,
            catalog: &self.inner.cfg.packages,
            max_tasks: self.inner.cfg.max_tasks,
            max_timeout: Duration::from_secs(24 * 3600),
        }
    }

    /// Queue length per tenant.
    pub fn queue_depths(&self) -> Vec<(TenantId, usize)> {
        self.inner.queue.lock().depths()
    }

    /// Whether the engine accepts submissions.
    pub fn is_accepting(&self) -> bool {
        !self.inner.closing.load(Ordering::SeqCst)
    }

    /// Takes a submission slot of `tenant`: the appliance accepts submissions, the tenant is
    /// configured, and its rate limit and the global one allow one more. Taken before the
    /// request body is parsed, so a tenant flooding past its quota costs little.
    pub fn admit(&self, tenant: &TenantId) -> Result<Admitted, SubmitError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::SeqCst) {
            return Err(SubmitError::Unavailable);
        }
        if !inner.cfg.tenants.contains_key(tenant) {
            return Err(SubmitError::UnknownTenant(tenant.to_string()));
        }
        if let Err(r) = inner.limiter.check(tenant) {
            inner
                .metrics
                .limiter_rejections
                .with_label_values(&[r.scope.as_str(), tenant.as_str()])
                .inc();
            return Err(SubmitError::RateLimited {
                scope: r.scope.as_str(),
                retry_after: r.retry_after,
            });
        }
        Ok(Admitted(tenant.clone()))
    }

    /// Admits, records and enqueues an execution. A denied execution is sealed with its
    /// receipt and returned with status `denied`; otherwise it is returned `queued`, already
    /// durable.
    ///
    /// The work runs in its own task: if the caller goes away (a client disconnects), an
    /// execution that became durable is still queued, never left behind.
    pub async fn submit(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        manifest: ValidManifest,
        canary: bool,
    ) -> Result<Execution, SubmitError> {
        let admitted = self.admit(scope.tenant())?;
        self.submit_admitted(admitted, scope, actor, manifest, canary)
            .await
    }

    /// [`Engine::submit`] with a slot taken by [`Engine::admit`] (for the scope's tenant; a
    /// slot of another tenant does not count, and one is taken for the scope's).
    pub async fn submit_admitted(
        &self,
        admitted: Admitted,
        scope: &TenantScope,
        actor: &Actor,
        manifest: ValidManifest,
        canary: bool,
    ) -> Result<Execution, SubmitError> {
        if &admitted.0 != scope.tenant() {
            self.admit(scope.tenant())?;
        }
        let engine = self.clone();
        let (scope, actor) = (scope.clone(), actor.clone());
        tokio::spawn(async move { engine.submit_here(&scope, &actor, manifest, canary).await })
            .await
            .map_err(|e| {
                SubmitError::Commit(CommitError::Store(format!("submission task failed: {e}")))
            })?
    }

    async fn submit_here(
        &self,
        scope: &TenantScope,
        actor: &Actor,
        manifest: ValidManifest,
        canary: bool,
    ) -> Result<Execution, SubmitError> {
        let inner = &self.inner;
        if inner.closing.load(Ordering::SeqCst) {
            return Err(SubmitError::Unavailable);
        }
        let tenant = scope.tenant();
        let Some(settings) = inner.cfg.tenants.get(tenant) else {
            return Err(SubmitError::UnknownTenant(tenant.to_string()));
        };
        let started = Instant::now();
        let mut exec = Execution::new(
            ExecutionId::generate(),
            tenant.clone(),
            manifest.manifest,
            manifest.digest,
            canary,
            actor.subject.clone(),
            jiff::Timestamp::now(),
        );
        let deciding = std::time::Instant::now();
        let decisions = {
            let blocks = inner.residency_blocks.read();
            let mut params = Self::admission_params(&inner.cfg, settings);
            if inner.cfg.residency_enforce {
                params.blocked = blocks.tenants.get(tenant.as_str());
            }
            admission::decide(&inner.policies, actor, &exec, &params)
        };
        inner
            .metrics
            .decision_seconds
            .observe(deciding.elapsed().as_secs_f64());
        for d in &decisions {
            inner
                .metrics
                .decisions
                .with_label_values(&[d.policy.as_str(), if d.allow { "allow" } else { "deny" }])
                .inc();
        }
        let allowed = decisions.iter().all(|d| d.allow);
        let reasons: Vec<String> = decisions
            .iter()
            .flat_map(|d| d.reasons.iter().map(|r| r.message.clone()))
            .collect();
        exec.decisions.extend(decisions);
        if !allowed {
            exec.status = ExecutionStatus::Denied;
            exec.finished_at = Some(jiff::Timestamp::now());
            for t in &mut exec.tasks {
                t.status = TaskStatus::Skipped;
            }
            exec.error = Some(format!(
                "denied by admission policy: {}",
                reasons.join("; ")
            ));
            let sealed = inner
                .sealer
                .seal(&inner.committer, exec, Vec::new())
                .await?;
            inner
                .metrics
                .finished
                .with_label_values(&[tenant.as_str(), "denied"])
                .inc();
            return Ok(sealed);
        }
        if !inner
            .queue
            .lock()
            .reserve(tenant, settings.weight, settings.max_queued)
        {
            inner
                .metrics
                .limiter_rejections
                .with_label_values(&["queue", tenant.as_str()])
                .inc();
            return Err(SubmitError::QueueFull {
                tenant: tenant.to_string(),
                limit: settings.max_queued,
                retry_after: Duration::from_secs(1),
            });
        }
        let encoded = crate::store::EncodedExecution::new(&exec)
            .and_then(|r| {
                let d = exec
                    .decisions
                    .iter()
                    .map(crate::store::EncodedDecision::new)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((r, d))
            })
            .map_err(|e| CommitError::Store(e.to_string()));
        let put = match encoded {
            Ok((record, decisions)) => inner.committer.put(record, decisions).await,
            Err(e) => Err(e),
        };
        if let Err(e) = put {
            inner.queue.lock().release(tenant);
            return Err(e.into());
        }

        inner
            .metrics
            .accept_seconds
            .observe(started.elapsed().as_secs_f64());
        inner
            .metrics
            .submitted
            .with_label_values(&[tenant.as_str()])
            .inc();
        self.enqueue(
            settings.weight,
            Job {
                exec: exec.clone(),
                submitted: started,
            },
        );
        Ok(exec)
    }

    fn enqueue(&self, weight: u32, job: Job) {
        let tenant = job.exec.tenant.clone();
        self.inner
            .waiting
            .lock()
            .inflight
            .insert(job.exec.id.clone(), tenant.clone());
        let depth = {
            let mut q = self.inner.queue.lock();
            q.push(&tenant, weight, job);
            q.len_of(&tenant)
        };
        self.inner
            .metrics
            .queue_depth
            .with_label_values(&[tenant.as_str()])
            .set(depth as i64);
        self.inner.wake.notify_one();
    }

    /// Waits until the execution is final or `timeout` passes; returns its latest state, or
    /// `None` if the scope's tenant has no such execution.
    pub async fn wait_final(
        &self,
        scope: &TenantScope,
        id: &ExecutionId,
        timeout: Duration,
    ) -> Result<Option<Execution>, StoreError> {
        let (tx, rx) = oneshot::channel();
        let wid = self.inner.next_waiter.fetch_add(1, Ordering::Relaxed);
        let in_flight = {
            let mut w = self.inner.waiting.lock();
            let mine = w.inflight.get(id) == Some(scope.tenant());
            if mine {
                w.waiters.entry(id.clone()).or_default().push((wid, tx));
            }
            mine
        };
        if !in_flight {
            // Not accepted by this process, or already sealed: the store has its state.
            return self.inner.store.read()?.execution(scope, id);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(e)) => Ok(Some(e)),
            _ => {
                self.forget_waiter(id, wid);
                self.inner.store.read()?.execution(scope, id)
            }
        }
    }

    fn forget_waiter(&self, id: &ExecutionId, wid: u64) {
        let mut w = self.inner.waiting.lock();
        if let Some(list) = w.waiters.get_mut(id) {
            list.retain(|(x, _)| *x != wid);
            if list.is_empty() {
                w.waiters.remove(id);
            }
        }
    }

    fn notify_final(&self, exec: &Execution) {
        let list = {
            let mut w = self.inner.waiting.lock();
            w.inflight.remove(&exec.id);
            w.waiters.remove(&exec.id)
        };
        for (_, tx) in list.into_iter().flatten() {
            let _ = tx.send(exec.clone());
        }
    }

    /// Forgets an execution this process could not finish; its waiters read the store.
    fn abandon(&self, id: &ExecutionId) {
        let mut w = self.inner.waiting.lock();
        w.inflight.remove(id);
        w.waiters.remove(id);
    }

    fn admission_params<'a>(
        cfg: &'a EngineConfig,
        tenant: &'a TenantSettings,
    ) -> admission::Params<'a> {
        admission::Params {
            allowed_regions: &tenant.allowed_regions,
            exec_enabled: cfg.exec.enabled,
            http_allowed_hosts: &cfg.http.allowed_hosts,
            locations: &cfg.locations,
            node_region: cfg.node_region.as_deref(),
            blocked: None,
            packages: &cfg.packages,
        }
    }

    async fn recover(&self) -> Result<Recovery, EngineError> {
        let active = self.inner.store.read()?.active()?;
        let mut recovery = Recovery::default();
        for (tenant, id, state) in active {
            let scope = TenantScope::system(tenant.clone(), Access::Run);
            let Some(mut exec) = self.inner.store.read()?.execution(&scope, &id)? else {
                tracing::error!(%tenant, execution = %id, "active execution has no record; skipped");
                continue;
            };
            let settings = self.inner.cfg.tenants.get(&tenant);
            match (state, settings) {
                (ActiveState::Queued, Some(s)) => {
                    let weight = s.weight;
                    self.enqueue(
                        weight,
                        Job {
                            exec,
                            submitted: Instant::now(),
                        },
                    );
                    recovery.resumed += 1;
                }
                (state, settings) => {
                    let now = jiff::Timestamp::now();
                    exec.status = ExecutionStatus::Interrupted;
                    exec.finished_at = Some(now);
                    exec.error = Some(if settings.is_none() {
                        format!(
                            "tenant {tenant} is no longer configured; the execution was not run"
                        )
                    } else {
                        debug_assert_eq!(state, ActiveState::Running);
                        INTERRUPTED.to_owned()
                    });
                    for t in &mut exec.tasks {
                        if matches!(t.status, TaskStatus::Pending | TaskStatus::Running) {
                            t.status = TaskStatus::Skipped;
                        }
                    }
                    self.inner
                        .sealer
                        .seal(&self.inner.committer, exec, Vec::new())
                        .await?;
                    self.inner
                        .metrics
                        .finished
                        .with_label_values(&[tenant.as_str(), "interrupted"])
                        .inc();
                    recovery.interrupted += 1;
                }
            }
        }
        if recovery != Recovery::default() {
            tracing::info!(
                resumed = recovery.resumed,
                interrupted = recovery.interrupted,
                "recovered executions"
            );
        }
        Ok(recovery)
    }

    async fn dispatch(self) {
        loop {
            let Ok(permit) = self.inner.runners.clone().acquire_owned().await else {
                return;
            };
            let job = loop {
                let notified = self.inner.wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.inner.closing.load(Ordering::SeqCst) {
                    return;
                }
                let popped = self.inner.queue.lock().pop();
                if let Some((tenant, job)) = popped {
                    let depth = self.inner.queue.lock().len_of(&tenant);
                    self.inner
                        .metrics
                        .queue_depth
                        .with_label_values(&[tenant.as_str()])
                        .set(depth as i64);
                    break job;
                }
                notified.await;
            };
            let engine = self.clone();
            let mut jobs = self.inner.jobs.lock();
            while jobs.try_join_next().is_some() {}
            jobs.spawn(async move {
                engine.run_job(job).await;
                drop(permit);
            });
        }
    }

    async fn run_job(&self, job: Job) {
        let inner = &self.inner;
        let mut exec = job.exec;
        let started_at = jiff::Timestamp::now();
        inner.metrics.runners_busy.inc();
        if let Err(e) = inner
            .committer
            .start(exec.tenant.clone(), exec.id.clone(), started_at)
            .await
        {
            tracing::error!(execution = %exec.id, error = %e, "could not record the start; the execution stays queued for the next start");
            self.abandon(&exec.id);
            inner.metrics.runners_busy.dec();
            return;
        }
        exec.status = ExecutionStatus::Running;
        exec.started_at = Some(started_at);
        let outcome = runner::run(exec, &inner.run_env).await;
        let tenant = outcome.execution.tenant.clone();
        let id = outcome.execution.id.clone();
        match inner
            .sealer
            .seal(&inner.committer, outcome.execution, outcome.artifacts)
            .await
        {
            Ok(sealed) => {
                inner
                    .metrics
                    .finished
                    .with_label_values(&[tenant.as_str(), sealed.status.as_str()])
                    .inc();
                inner
                    .metrics
                    .execution_seconds
                    .observe(job.submitted.elapsed().as_secs_f64());
                self.notify_final(&sealed);
            }
            Err(e) => {
                tracing::error!(execution = %id, error = %e, "could not seal the execution; it will be marked interrupted at the next start");
                self.abandon(&id);
            }
        }
        inner.metrics.runners_busy.dec();
    }

    /// Stops accepting, lets running executions finish for up to `grace`, abandons the rest
    /// (they are sealed as interrupted at the next start), then stops the committer. Queued
    /// executions stay queued in the store and resume at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.closing.store(true, Ordering::SeqCst);
        inner.wake.notify_waiters();
        let permits = u32::try_from(inner.cfg.runners).unwrap_or(u32::MAX);
        match tokio::time::timeout(grace, inner.runners.acquire_many(permits)).await {
            Ok(Ok(all)) => all.forget(),
            _ => tracing::warn!(
                "executions still running after the grace period; they will be marked interrupted at the next start"
            ),
        }
        inner.runners.close();
        let dispatcher = inner.dispatcher.lock().take();
        if let Some(d) = dispatcher {
            let _ = d.await;
        }
        let mut jobs = std::mem::take(&mut *inner.jobs.lock());
        jobs.abort_all();
        while jobs.join_next().await.is_some() {}
        inner.committer.stop();
        let handle = inner.committer_thread.lock().take();
        if let Some(h) = handle {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

#[cfg(test)]
mod tests;
