//! The search query language: what `GET /api/v1/search?q=…` and the console's search box
//! accept, parsed into clauses with a clear error (column and reason) for anything else.
//!
//! ```text
//! sha256:9f86d0…          a digest (artifact, receipt, manifest, decision input), full or a prefix of ≥ 4 hex digits
//! 9f86d081                 a bare hex prefix of ≥ 8 digits is a digest prefix too
//! ex_01J…  dc_01J…         an execution or decision id
//! status:failed            queued, running, succeeded, failed, denied, interrupted
//! name:nightly-etl  version:1.2.0  task:fetch  uses:http  region:eu-west-1
//! policy:mc.admission      decisions of a policy
//! reason:http_host_not_allowed   a deny reason code, or words of its message ("reason:\"not allowed\"")
//! kind:execution|decision  canary:true  after:2026-11-01  before:2026-11-25T12:00:00Z
//! timeout "allow list"     free words and phrases (names, tasks, reasons, errors)
//! -status:succeeded        a leading '-' excludes
//! ```
//!
//! The tenant is never part of a query: the guard decides which tenants a search sees.

use jiff::Timestamp;

use super::execution::ExecutionStatus;

/// Longest query accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 1024;
/// Most clauses in one query.
pub const MAX_CLAUSES: usize = 32;
/// Shortest digest prefix after `digest:` or `sha256:`.
pub const MIN_DIGEST_PREFIX: usize = 4;
/// Shortest bare hex word taken as a digest prefix.
pub const MIN_BARE_DIGEST: usize = 8;

/// Fields a query may name.
pub const FIELDS: &[&str] = &[
    "digest", "id", "status", "name", "version", "task", "uses", "region", "policy", "reason",
    "kind", "canary", "after", "before",
];

/// Why a query was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query column {column}: {message}")]
pub struct QueryError {
    /// 1-based character column where the problem starts.
    pub column: usize,
    /// What is wrong and what to write instead.
    pub message: String,
}

/// What a search document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    /// An execution with its tasks, artifacts, receipt and admission decisions.
    Execution,
    /// A decision that belongs to no execution (an access decision of the guard).
    Decision,
}

impl DocKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocKind::Execution => "execution",
            DocKind::Decision => "decision",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "execution" => Some(DocKind::Execution),
            "decision" => Some(DocKind::Decision),
            _ => None,
        }
    }
}

/// One condition of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clause {
    /// A digest: lowercase hex, full (64) or a prefix.
    Digest(String),
    /// An execution or decision id.
    Id(String),
    /// A status.
    Status(ExecutionStatus),
    /// A manifest name (exact).
    Name(String),
    /// A manifest version (exact).
    Version(String),
    /// A task id (exact).
    Task(String),
    /// What a task uses (exact, e.g. `http`, `pkg:etl@1.0.0`).
    Uses(String),
    /// A region (exact).
    Region(String),
    /// A policy id (exact, e.g. `mc.admission`).
    Policy(String),
    /// A deny reason code (exact) or words of a reason message.
    Reason(String),
    /// Documents of one kind.
    Kind(DocKind),
    /// Canary (synthetic) runs, or regular ones.
    Canary(bool),
    /// At or after this instant.
    After(Timestamp),
    /// Before this instant.
    Before(Timestamp),
    /// Free text: a word, or a phrase of several words.
    Text(String),
}

/// A clause and whether it must hold or must not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    /// The condition.
    pub clause: Clause,
    /// `-` in front: documents matching it are excluded.
    pub negated: bool,
}

/// A parsed query: every term must hold (negated ones must not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The terms, in the order written.
    pub terms: Vec<Term>,
}

impl Query {
    /// Whether the query names no condition (every document of the visible tenants).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Hit {
    /// What it is.
    #[schemars(with = "String")]
    pub kind: DocKind,
    /// Owning tenant.
    pub tenant: String,
    /// Execution id (ex_…) or decision id (dc_…).
    pub id: String,
    /// Status of an execution; `allowed` or `denied` for a decision.
    pub status: String,
    /// Manifest name (executions) or policy id (decisions).
    pub name: String,
    /// Manifest version (executions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Region (executions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// When it was submitted or decided (RFC 3339).
    pub at: String,
    /// Digest of the receipt (executions that have one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
    /// The first deny reason or the error, in a line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

/// A page of search results, newest first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Results {
    /// The hits of this page.
    pub hits: Vec<Hit>,
    /// How many documents match: exact when `total_exact`, else a lower bound (counting
    /// stops at 10,000).
    pub total: u64,
    /// Whether `total` is exact.
    pub total_exact: bool,
    /// Pass as `cursor` for the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

struct Word {
    column: usize,
    text: String,
    quoted: bool,
    field: Option<(String, usize)>,
    negated: bool,
}

/// Splits the query into words: `field:value`, `field:"quoted value"`, `"phrase"`, `-word`.
fn words(q: &str) -> Result<Vec<Word>, QueryError> {
    let chars: Vec<char> = q.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let negated = chars[i] == '-' && chars.get(i + 1).is_some_and(|c| !c.is_whitespace());
        if negated {
            i += 1;
        }
        // An optional field name: letters and '_' followed by ':' (and not `sha256:`).
        let mut field = None;
        let mut j = i;
        while j < chars.len() && (chars[j].is_ascii_alphabetic() || chars[j] == '_') {
            j += 1;
        }
        if j > i && j < chars.len() && chars[j] == ':' {
            let name: String = chars[i..j].iter().collect::<String>().to_ascii_lowercase();
            if name != "sha256" {
                field = Some((name, i + 1));
                i = j + 1;
            }
        }
        let (text, quoted) = if chars.get(i) == Some(&'"') {
            let open = i;
            i += 1;
            let begin = i;
            while i < chars.len() && chars[i] != '"' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(QueryError {
                    column: open + 1,
                    message: "this quote is never closed; end the phrase with \"".into(),
                });
            }
            let t: String = chars[begin..i].iter().collect();
            i += 1;
            (t, true)
        } else {
            let begin = i;
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '"' {
                    return Err(QueryError {
                        column: i + 1,
                        message: "a quote may only start a phrase: write \"several words\" or field:\"several words\"".into(),
                    });
                }
                i += 1;
            }
            (chars[begin..i].iter().collect(), false)
        };
        if text.trim().is_empty() {
            let what = match &field {
                Some((f, _)) => format!("{f}: needs a value, e.g. {f}:{}", example(f)),
                None => "empty phrase".into(),
            };
            return Err(QueryError {
                column: start + 1,
                message: what,
            });
        }
        out.push(Word {
            column: start + 1,
            text,
            quoted,
            field,
            negated,
        });
    }
    Ok(out)
}

fn example(field: &str) -> &'static str {
    match field {
        "digest" => "sha256:9f86d081",
        "id" => "ex_01JD0000000000000000000000",
        "status" => "failed",
        "name" => "nightly-etl",
        "version" => "1.2.0",
        "task" => "fetch",
        "uses" => "http",
        "region" => "eu-west-1",
        "policy" => "mc.admission",
        "reason" => "http_host_not_allowed",
        "kind" => "execution",
        "after" | "before" => "2026-11-01",
        "canary" => "true",
        _ => "value",
    }
}

/// The lowercase hex of a digest or digest prefix, `sha256:` optional.
fn digest_prefix(text: &str, min: usize) -> Option<String> {
    let lower = text.to_ascii_lowercase();
    let hex = lower.strip_prefix("sha256:").unwrap_or(&lower);
    (hex.len() >= min && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_owned())
}

fn is_object_id(text: &str) -> bool {
    (text.starts_with("ex_") || text.starts_with("dc_"))
        && text.len() > 3
        && text.len() <= 64
        && text[3..].bytes().all(|b| b.is_ascii_alphanumeric())
}

fn instant(text: &str, end_of_day: bool) -> Option<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Some(t);
    }
    let date: jiff::civil::Date = text.parse().ok()?;
    let day: Timestamp = format!("{date}T00:00:00Z").parse().ok()?;
    if end_of_day {
        day.checked_add(jiff::SignedDuration::from_hours(24)).ok()
    } else {
        Some(day)
    }
}

fn exact(field: &str, w: &Word) -> Result<String, QueryError> {
    if w.text.len() > 256 || w.text.chars().any(char::is_control) {
        return Err(QueryError {
            column: w.column,
            message: format!("{field}: the value must be at most 256 printable characters"),
        });
    }
    Ok(w.text.clone())
}

fn clause(w: &Word) -> Result<Clause, QueryError> {
    let Some((field, column)) = &w.field else {
        if !w.quoted {
            if let Some(hex) = digest_prefix(&w.text, MIN_BARE_DIGEST).or_else(|| {
                w.text
                    .to_ascii_lowercase()
                    .starts_with("sha256:")
                    .then(|| digest_prefix(&w.text, MIN_DIGEST_PREFIX))
                    .flatten()
            }) {
                return Ok(Clause::Digest(hex));
            }
            if w.text.to_ascii_lowercase().starts_with("sha256:") {
                return Err(QueryError {
                    column: w.column,
                    message: format!(
                        "a digest is sha256: and {MIN_DIGEST_PREFIX} to 64 hex digits"
                    ),
                });
            }
            if is_object_id(&w.text) {
                return Ok(Clause::Id(w.text.clone()));
            }
        }
        return Ok(Clause::Text(exact("text", w)?));
    };
    let bad = |message: String| QueryError {
        column: *column,
        message,
    };
    Ok(match field.as_str() {
        "tenant" => {
            return Err(bad(
                "the tenant is not part of a query: your sign-in decides which tenants you see (tokens for every tenant name one with ?tenant=)".into(),
            ));
        }
        "digest" => Clause::Digest(digest_prefix(&w.text, MIN_DIGEST_PREFIX).ok_or_else(|| {
            bad(format!(
                "digest: expected sha256: and {MIN_DIGEST_PREFIX} to 64 hex digits, got {:?}",
                truncate(&w.text)
            ))
        })?),
        "id" => {
            if !is_object_id(&w.text) {
                return Err(bad(format!(
                    "id: expected an execution (ex_…) or decision (dc_…) id, got {:?}",
                    truncate(&w.text)
                )));
            }
            Clause::Id(w.text.clone())
        }
        "status" => Clause::Status(ExecutionStatus::parse(&w.text.to_ascii_lowercase()).ok_or_else(|| {
            bad(format!(
                "status: {:?} is not a status; use queued, running, succeeded, failed, denied or interrupted",
                truncate(&w.text)
            ))
        })?),
        "name" => Clause::Name(exact(field, w)?),
        "version" => Clause::Version(exact(field, w)?),
        "task" => Clause::Task(exact(field, w)?),
        "uses" => Clause::Uses(exact(field, w)?),
        "region" => Clause::Region(exact(field, w)?),
        "policy" => Clause::Policy(exact(field, w)?),
        "reason" => Clause::Reason(exact(field, w)?),
        "kind" => Clause::Kind(DocKind::parse(&w.text.to_ascii_lowercase()).ok_or_else(|| {
            bad(format!(
                "kind: {:?} is not a kind; use execution or decision",
                truncate(&w.text)
            ))
        })?),
        "canary" => match w.text.to_ascii_lowercase().as_str() {
            "true" | "yes" => Clause::Canary(true),
            "false" | "no" => Clause::Canary(false),
            _ => {
                return Err(bad(format!(
                    "canary: {:?} is not true or false",
                    truncate(&w.text)
                )));
            }
        },
        "after" | "before" => {
            let t = instant(&w.text, field == "before").ok_or_else(|| {
                bad(format!(
                    "{field}: {:?} is not a date (2026-11-01) or an RFC 3339 time (2026-11-01T12:00:00Z)",
                    truncate(&w.text)
                ))
            })?;
            if field == "after" {
                Clause::After(t)
            } else {
                Clause::Before(t)
            }
        }
        other => {
            return Err(bad(format!(
                "unknown field {:?}; fields are {}",
                truncate(other),
                FIELDS.join(", ")
            )));
        }
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Parses a query. An empty or blank query matches everything visible.
pub fn parse(q: &str) -> Result<Query, QueryError> {
    if q.len() > MAX_QUERY_BYTES {
        return Err(QueryError {
            column: 1,
            message: format!("the query is {} bytes; at most {MAX_QUERY_BYTES}", q.len()),
        });
    }
    if let Some(at) = q.chars().position(char::is_control)
        && q.chars()
            .nth(at)
            .is_some_and(|c| c != '\t' && c != '\n' && c != '\r')
    {
        return Err(QueryError {
            column: at + 1,
            message: "control characters are not allowed".into(),
        });
    }
    let words = words(q)?;
    if words.len() > MAX_CLAUSES {
        return Err(QueryError {
            column: words[MAX_CLAUSES].column,
            message: format!("at most {MAX_CLAUSES} terms in one query"),
        });
    }
    let mut terms = Vec::with_capacity(words.len());
    for w in &words {
        terms.push(Term {
            clause: clause(w)?,
            negated: w.negated,
        });
    }
    if !terms.is_empty() && terms.iter().all(|t| t.negated) {
        return Err(QueryError {
            column: words[0].column,
            message: "a query cannot only exclude; add a term that must hold".into(),
        });
    }
    Ok(Query { terms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(q: &str) -> Clause {
        let mut p = parse(q).unwrap();
        assert_eq!(p.terms.len(), 1, "{q}");
        p.terms.remove(0).clause
    }

    #[test]
    fn digests_ids_and_fields() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(one(&format!("sha256:{hex}")), Clause::Digest(hex.into()));
        assert_eq!(
            one(&format!("SHA256:{}", hex.to_uppercase())),
            Clause::Digest(hex.into())
        );
        assert_eq!(one("sha256:9f86"), Clause::Digest("9f86".into()));
        assert_eq!(one("9f86d081"), Clause::Digest("9f86d081".into()));
        assert_eq!(one("digest:9f86"), Clause::Digest("9f86".into()));
        // Short bare hex is a word, not a digest.
        assert_eq!(one("cafe"), Clause::Text("cafe".into()));
        assert_eq!(
            one("ex_01JD0000000000000000000000"),
            Clause::Id("ex_01JD0000000000000000000000".into())
        );
        assert_eq!(
            one("status:FAILED"),
            Clause::Status(ExecutionStatus::Failed)
        );
        assert_eq!(
            one("uses:pkg:etl@1.0.0"),
            Clause::Uses("pkg:etl@1.0.0".into())
        );
        assert_eq!(
            one("reason:\"not on the allow-list\""),
            Clause::Reason("not on the allow-list".into())
        );
        assert_eq!(one("\"allow list\""), Clause::Text("allow list".into()));
        assert_eq!(one("kind:decision"), Clause::Kind(DocKind::Decision));
        assert_eq!(one("canary:TRUE"), Clause::Canary(true));
        assert_eq!(
            one("after:2026-11-01"),
            Clause::After("2026-11-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(
            one("before:2026-11-01"),
            Clause::Before("2026-11-02T00:00:00Z".parse().unwrap())
        );
        let q = parse("status:failed -task:fetch timeout").unwrap();
        assert_eq!(q.terms.len(), 3);
        assert!(q.terms[1].negated);
        assert!(parse("   ").unwrap().is_empty());
    }

    #[test]
    fn bad_queries_say_where_and_what() {
        for (q, column, needle) in [
            ("tenant:globex", 1, "not part of a query"),
            ("status:done", 1, "not a status"),
            ("a colour:red", 3, "unknown field"),
            ("name:\"open", 6, "never closed"),
            ("digest:xyz", 1, "hex digits"),
            ("sha256:12", 1, "hex digits"),
            ("after:yesterday", 1, "not a date"),
            ("-status:failed", 1, "only exclude"),
            ("ab\"cd", 3, "quote"),
            ("name:", 1, "needs a value"),
            ("id:42", 1, "execution (ex_…)"),
            ("canary:maybe", 1, "true or false"),
        ] {
            let e = parse(q).unwrap_err();
            assert_eq!(e.column, column, "{q}: {e}");
            assert!(e.message.contains(needle), "{q}: {e}");
        }
        assert!(
            parse(&"a ".repeat(40))
                .unwrap_err()
                .message
                .contains("at most")
        );
        assert!(
            parse(&"a".repeat(2000))
                .unwrap_err()
                .message
                .contains("bytes")
        );
        assert!(parse("a\u{0}b").unwrap_err().message.contains("control"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(q in ".{0,200}") {
            let _ = parse(&q);
        }
    }
}
