//! Printing: JSON documents for `--output json`, readable text otherwise.

use serde::Serialize;

use super::Format;
use crate::attest::receipt::{Outcome, Report};
use crate::domain::execution::{Execution, ExecutionStatus, ExecutionSummary, TaskStatus};

/// Where results go.
pub struct Output {
    format: Format,
}

impl Output {
    /// An output in a format.
    pub fn new(format: Format) -> Self {
        Output { format }
    }

    /// Whether JSON was asked for.
    pub fn is_json(&self) -> bool {
        self.format == Format::Json
    }

    /// Prints `value` as JSON, or the text `text()` makes.
    pub fn print<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        match self.format {
            Format::Json => self.json_always(value),
            Format::Text => println!("{}", text().trim_end()),
        }
    }

    /// Like [`Output::print`], on stderr (for commands whose stdout carries data).
    pub fn print_err<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        match self.format {
            Format::Json => match serde_json::to_string_pretty(value) {
                Ok(s) => eprintln!("{s}"),
                Err(e) => eprintln!("error: encoding output: {e}"),
            },
            Format::Text => eprintln!("{}", text().trim_end()),
        }
    }

    /// Prints JSON regardless of the format (for commands whose output is a document).
    pub fn json_always<T: Serialize>(&self, value: &T) {
        match serde_json::to_string_pretty(value) {
            Ok(s) => println!("{s}"),
            Err(e) => eprintln!("error: encoding output: {e}"),
        }
    }
}

fn mark(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Succeeded => "ok  ",
        TaskStatus::Failed => "FAIL",
        TaskStatus::Skipped => "skip",
        TaskStatus::Pending => "wait",
        TaskStatus::Running => "run ",
    }
}

/// A readable account of an execution.
pub fn execution_text(e: &Execution) -> String {
    let mut s = String::new();
    let took = match (e.started_at, e.finished_at) {
        (Some(a), Some(b)) => format!(" in {}ms", b.duration_since(a).as_millis()),
        _ => String::new(),
    };
    s.push_str(&format!(
        "execution {} ({}) {}{took}\n",
        e.id,
        e.tenant,
        e.status.as_str()
    ));
    s.push_str(&format!(
        "  manifest   {}@{} {}\n",
        e.manifest.name, e.manifest.version, e.manifest_digest
    ));
    s.push_str(&format!(
        "  region     {}{}\n",
        e.region,
        if e.canary { " (canary)" } else { "" }
    ));
    s.push_str(&format!(
        "  submitted  {} by {}\n",
        e.submitted_at, e.submitted_by
    ));
    if let Some(err) = &e.error {
        s.push_str(&format!("  error      {err}\n"));
    }
    s.push_str("  tasks\n");
    let width = e.tasks.iter().map(|t| t.id.len()).max().unwrap_or(0);
    for t in &e.tasks {
        let attempts = match t.attempts.len() {
            0 => String::new(),
            1 => "1 attempt".into(),
            n => format!("{n} attempts"),
        };
        s.push_str(&format!(
            "    {} {:width$}  {:18} {attempts}\n",
            mark(t.status),
            t.id,
            t.uses
        ));
        if t.status == TaskStatus::Failed
            && let Some(err) = t.attempts.last().and_then(|a| a.error.as_ref())
        {
            s.push_str(&format!("         {err}\n"));
        }
    }
    if !e.artifacts.is_empty() {
        s.push_str("  artifacts\n");
        for a in &e.artifacts {
            s.push_str(&format!(
                "    {} {} bytes in {} ({})  {}\n",
                a.name, a.size, a.location, a.region, a.digest
            ));
        }
    }
    for d in &e.decisions {
        let outcome = if d.allow {
            "allow".to_string()
        } else {
            format!(
                "deny: {}",
                d.reasons
                    .iter()
                    .map(|r| r.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        s.push_str(&format!("  decision   {} {} {outcome}\n", d.kind, d.policy));
    }
    match &e.receipt {
        Some(r) => s.push_str(&format!(
            "  receipt    {} (log index {})\n",
            r.digest, r.log_index
        )),
        None if e.status.is_final() => {}
        None => s.push_str("  receipt    (when the execution is final)\n"),
    }
    s
}

/// A table of executions.
pub fn summaries_text(items: &[ExecutionSummary], next: Option<&str>) -> String {
    if items.is_empty() {
        return "no executions".into();
    }
    let mut s = format!(
        "{:30} {:11} {:24} {:10} {}\n",
        "ID", "STATUS", "WORKFLOW", "REGION", "SUBMITTED"
    );
    for e in items {
        s.push_str(&format!(
            "{:30} {:11} {:24} {:10} {}\n",
            e.id,
            e.status.as_str(),
            format!("{}@{}", e.name, e.version),
            e.region,
            e.submitted_at
        ));
    }
    if let Some(n) = next {
        s.push_str(&format!("more: --cursor {n}\n"));
    }
    s
}

/// A verification report.
pub fn report_text(r: &Report) -> String {
    let mut s = checks_text(&r.checks);
    match (r.valid, &r.execution_id) {
        (true, Some(id)) => s.push_str(&format!(
            "receipt {} of execution {id} ({}) is valid\n",
            r.digest.map(|d| d.to_string()).unwrap_or_default(),
            r.status.as_deref().unwrap_or("?")
        )),
        (true, None) => s.push_str("receipt is valid\n"),
        (false, _) => s.push_str("receipt is NOT valid\n"),
    }
    s
}

/// One line per check: outcome, name, detail.
pub fn checks_text(checks: &[crate::attest::receipt::Check]) -> String {
    let mut s = String::new();
    for c in checks {
        let m = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skip",
        };
        s.push_str(&format!("{m}  {:10} {}\n", c.name, c.detail));
    }
    s
}

/// Exit code for a final execution.
pub fn exit_for(status: ExecutionStatus) -> super::Exit {
    match status {
        ExecutionStatus::Succeeded => super::Exit::Ok,
        ExecutionStatus::Denied => super::Exit::Denied,
        ExecutionStatus::Queued | ExecutionStatus::Running => super::Exit::Ok,
        ExecutionStatus::Failed | ExecutionStatus::Interrupted => super::Exit::Failed,
    }
}
