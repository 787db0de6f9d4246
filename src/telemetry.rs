//! Telemetry: the Prometheus metrics of the appliance (one registry, every `mc_*` metric
//! defined here) and structured logging setup. Only this module imports `prometheus`.

use prometheus::{
    Encoder as _, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::config::LogFormat;

/// Every metric the appliance exports.
pub struct Metrics {
    registry: Registry,
    /// Executions accepted, by tenant.
    pub submitted: IntCounterVec,
    /// Executions that reached a final status, by tenant and status.
    pub finished: IntCounterVec,
    /// Submissions refused by a rate limit or a full queue, by scope and tenant.
    pub limiter_rejections: IntCounterVec,
    /// Queued executions, by tenant.
    pub queue_depth: IntGaugeVec,
    /// Executions running now.
    pub runners_busy: IntGauge,
    /// Commands per group commit.
    pub commit_batch: Histogram,
    /// Time to build and durably commit one batch.
    pub commit_seconds: Histogram,
    /// Submission to durable acceptance.
    pub accept_seconds: Histogram,
    /// Submission to durable receipt.
    pub execution_seconds: Histogram,
    /// Leaves in the transparency log.
    pub log_size: IntGauge,
    /// Receipts signed and logged.
    pub receipts: IntCounter,
    /// Policy decisions, by policy and outcome.
    pub decisions: IntCounterVec,
    /// Attempts to reach another tenant's data, by route and outcome (denied, or allowed
    /// for an auditor where policy grants it).
    pub cross_tenant_access: IntCounterVec,
    /// Refused bearer tokens, by reason.
    pub auth_failures: IntCounterVec,
    /// Failed refreshes of the issuer's keys while the last keys stayed in use.
    pub oidc_stale_keys: IntCounter,
    /// Changes of the store the search index does not hold yet.
    pub index_lag: IntGauge,
    /// Documents in the search index.
    pub index_documents: IntGauge,
    /// Failed attempts of the indexer (retried).
    pub index_errors: IntCounter,
    /// Residency violations the auditor found (each counted once), by tenant and region.
    pub residency_violations: IntCounterVec,
    /// Open residency violations, by tenant and region.
    pub residency_open: IntGaugeVec,
    /// Residency audits, by result (`ok`, `failed`).
    pub residency_audit_runs: IntCounterVec,
    /// Receipts the residency auditor checked.
    pub residency_audit_receipts: IntCounter,
    /// When the last residency audit succeeded (Unix seconds).
    pub residency_audit_last_success: Gauge,
    /// Golden workflow runs, by golden and result (`passed`, `failed`).
    pub golden_runs: IntCounterVec,
    /// Whether the last run of each golden passed (1) or not (0), by golden.
    pub golden_last_passed: IntGaugeVec,
    /// When each golden last ran (Unix seconds), by golden.
    pub golden_last_run: IntGaugeVec,
    /// Post-release validations that passed.
    pub postrelease_success: IntCounter,
    /// Post-release validations that failed (or could not run).
    pub postrelease_failure: IntCounter,
    /// Whether the last post-release validation passed (1) or not (0).
    pub postrelease_last_passed: IntGauge,
    /// Console page render time in milliseconds, by page.
    pub console_view_ms: HistogramVec,
    /// HTTP requests, by route, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request duration, by route.
    pub http_seconds: HistogramVec,
    /// Time to evaluate the admission policies of one submission.
    pub decision_seconds: Histogram,
    /// Size of the filesystem holding the data directory, bytes.
    pub data_volume_size: IntGauge,
    /// Space of that filesystem available to the appliance, bytes.
    pub data_volume_available: IntGauge,
    /// Size of the store file, bytes.
    pub store_size: IntGauge,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let m = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let gauge = |name: &str, help: &str| {
            let m = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let submitted = counter_vec(
            "mc_executions_submitted_total",
            "Executions accepted, by tenant.",
            &["tenant"],
        );
        let finished = counter_vec(
            "mc_executions_finished_total",
            "Executions that reached a final status, by tenant and status.",
            &["tenant", "status"],
        );
        let limiter_rejections = counter_vec(
            "mc_limiter_rejections_total",
            "Submissions refused by a rate limit or a full queue, by scope (global, tenant, queue) and tenant.",
            &["scope", "tenant"],
        );
        let queue_depth = IntGaugeVec::new(
            Opts::new("mc_queue_depth", "Queued executions, by tenant."),
            &["tenant"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(queue_depth.clone()))
            .expect("unique metric");
        let runners_busy = gauge("mc_runners_busy", "Executions running now.");
        let commit_batch = histogram(
            "mc_commit_batch_size",
            "Commands committed per transaction (group commit).",
            vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0,
            ],
        );
        let commit_seconds = histogram(
            "mc_commit_duration_seconds",
            "Time to build, sign and durably commit one batch.",
            LATENCY_BUCKETS.to_vec(),
        );
        let accept_seconds = histogram(
            "mc_submit_to_durable_seconds",
            "Time from submission to durable acceptance.",
            LATENCY_BUCKETS.to_vec(),
        );
        let execution_seconds = histogram(
            "mc_submit_to_receipt_seconds",
            "Time from submission to a durable, signed, logged receipt.",
            LATENCY_BUCKETS.to_vec(),
        );
        let log_size = gauge("mc_log_size", "Leaves in the transparency log.");
        let decision_seconds = histogram(
            "mc_policy_decision_duration_seconds",
            "Time to evaluate the admission policies of one submission (admission and residency).",
            LATENCY_BUCKETS.to_vec(),
        );
        let data_volume_size = gauge(
            "mc_data_volume_size_bytes",
            "Size of the filesystem holding the data directory, read at scrape time.",
        );
        let data_volume_available = gauge(
            "mc_data_volume_available_bytes",
            "Space available to the appliance on the filesystem holding the data directory, read at scrape time.",
        );
        let store_size = gauge(
            "mc_store_size_bytes",
            "Size of the store file (maestro.redb), read at scrape time.",
        );
        let receipts = IntCounter::new("mc_receipts_signed_total", "Receipts signed and logged.")
            .expect("valid metric");
        registry
            .register(Box::new(receipts.clone()))
            .expect("unique metric");
        let decisions = counter_vec(
            "mc_policy_decisions_total",
            "Policy decisions, by policy and outcome (allow, deny).",
            &["policy", "outcome"],
        );
        let cross_tenant_access = counter_vec(
            "mc_tenant_cross_access_total",
            "Attempts to reach another tenant's data, by route, outcome (denied, allowed) and source (request, or probe: the isolation report's own attempts).",
            &["route", "outcome", "source"],
        );
        let auth_failures = counter_vec(
            "mc_auth_failures_total",
            "Requests whose bearer token was missing or refused, by reason.",
            &["reason"],
        );
        let oidc_stale_keys = IntCounter::new(
            "mc_oidc_stale_keys_total",
            "Failed refreshes of the OIDC issuer's keys while the last keys stayed in use (oidc.jwks_max_stale).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(oidc_stale_keys.clone()))
            .expect("unique metric");
        let index_lag = gauge(
            "mc_index_lag_changes",
            "Changes of the store not yet in the search index (0 when caught up).",
        );
        let index_documents = gauge(
            "mc_index_documents",
            "Documents in the search index (executions and decisions without one).",
        );
        let index_errors = IntCounter::new(
            "mc_index_errors_total",
            "Failed attempts of the search indexer to catch up (retried).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(index_errors.clone()))
            .expect("unique metric");
        let residency_violations = counter_vec(
            "mc_residency_violations_total",
            "Residency violations found by the auditor (each counted once), by tenant and region.",
            &["tenant", "region"],
        );
        let residency_open = IntGaugeVec::new(
            Opts::new(
                "mc_residency_violations_open",
                "Residency violations not resolved, by tenant and region.",
            ),
            &["tenant", "region"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(residency_open.clone()))
            .expect("unique metric");
        let residency_audit_runs = counter_vec(
            "mc_residency_audits_total",
            "Runs of the residency auditor, by result (ok, failed).",
            &["result"],
        );
        let golden_runs = counter_vec(
            "mc_golden_runs_total",
            "Runs of the golden workflows, by golden and result (passed, failed).",
            &["golden", "result"],
        );
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let m = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let golden_last_passed = gauge_vec(
            "mc_golden_last_passed",
            "Whether the last run of each golden workflow ended as expected (1) or not (0).",
            &["golden"],
        );
        let golden_last_run = gauge_vec(
            "mc_golden_last_run_timestamp_seconds",
            "When each golden workflow last ran (Unix seconds).",
            &["golden"],
        );
        let counter = |name: &str, help: &str| {
            let m = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(m.clone()))
                .expect("unique metric");
            m
        };
        let postrelease_success = counter(
            "mc_postrelease_success_total",
            "Post-release validations that passed.",
        );
        let postrelease_failure = counter(
            "mc_postrelease_failure_total",
            "Post-release validations that failed or could not run.",
        );
        let postrelease_last_passed = gauge(
            "mc_postrelease_last_passed",
            "Whether the last post-release validation passed (1) or not (0).",
        );
        let residency_audit_receipts = IntCounter::new(
            "mc_residency_audit_receipts_total",
            "Receipts checked by the residency auditor.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(residency_audit_receipts.clone()))
            .expect("unique metric");
        let residency_audit_last_success = Gauge::new(
            "mc_residency_audit_last_success_timestamp_seconds",
            "When the last residency audit succeeded (Unix seconds; 0 before the first).",
        )
        .expect("valid metric");
        registry
            .register(Box::new(residency_audit_last_success.clone()))
            .expect("unique metric");
        let console_view_ms = HistogramVec::new(
            HistogramOpts::new(
                "mc_console_view_ms",
                "Console page render time in milliseconds (data, checks and HTML), by page.",
            )
            .buckets(vec![
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
            ]),
            &["page"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(console_view_ms.clone()))
            .expect("unique metric");
        let http_requests = counter_vec(
            "mc_http_requests_total",
            "HTTP requests, by route, method and status.",
            &["route", "method", "status"],
        );
        let http_seconds = HistogramVec::new(
            HistogramOpts::new(
                "mc_http_request_duration_seconds",
                "HTTP request duration, by route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(http_seconds.clone()))
            .expect("unique metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "mc_build_info",
                "Version of the running appliance (value is always 1).",
            ),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build_info.clone()))
            .expect("unique metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Metrics {
            registry,
            submitted,
            finished,
            limiter_rejections,
            queue_depth,
            runners_busy,
            commit_batch,
            commit_seconds,
            accept_seconds,
            execution_seconds,
            log_size,
            receipts,
            decisions,
            cross_tenant_access,
            auth_failures,
            oidc_stale_keys,
            index_lag,
            index_documents,
            index_errors,
            residency_violations,
            residency_open,
            residency_audit_runs,
            residency_audit_receipts,
            residency_audit_last_success,
            golden_runs,
            golden_last_passed,
            golden_last_run,
            postrelease_success,
            postrelease_failure,
            postrelease_last_passed,
            console_view_ms,
            http_requests,
            http_seconds,
            decision_seconds,
            data_volume_size,
            data_volume_available,
            store_size,
        }
    }

    /// Reads the disk gauges: the filesystem holding `data_dir`, and the store file in it.
    /// A value that cannot be read keeps its last one.
    pub fn observe_disk(&self, data_dir: &std::path::Path) {
        if let Ok(m) = std::fs::metadata(data_dir.join(crate::store::DB_FILE)) {
            self.store_size
                .set(i64::try_from(m.len()).unwrap_or(i64::MAX));
        }
        if let Ok(v) = rustix::fs::statvfs(data_dir) {
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(v.f_frsize)).unwrap_or(i64::MAX);
            self.data_volume_size.set(bytes(v.f_blocks));
            self.data_volume_available.set(bytes(v.f_bavail));
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        String::from_utf8(buf).expect("metrics are UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Installs the global tracing subscriber (once; later calls are ignored).
pub fn init_tracing(level: &str, format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_help() {
        let m = Metrics::new();
        m.submitted.with_label_values(&["acme"]).inc();
        let text = m.render();
        assert!(text.contains("# HELP mc_executions_submitted_total"));
        assert!(text.contains("mc_executions_submitted_total{tenant=\"acme\"} 1"));
        assert!(text.contains("mc_build_info{version="));
    }
}
