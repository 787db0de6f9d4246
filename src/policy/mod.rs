//! The policy engine: Rego policies evaluated by regorus, with time and memory limits, and
//! the conventions every policy package follows — a boolean `allow` and a set `deny` of
//! `{code, message}` reasons. Canonical syntax is Rego v1; files that only parse as Rego v0
//! (such as the sprint plan's `isolation.rego`) load too.
//!
//! Only this module imports regorus.

pub mod bundle;
mod explain;
pub mod testing;

use std::cell::RefCell;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

pub use bundle::PolicyBundle;
pub use explain::{Explanation, RuleExplanation};

use crate::domain::execution::DenyReason;
use crate::domain::ids::Digest;

/// What went wrong with a policy.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// A file does not parse as Rego v1 or v0.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A package the appliance needs is missing from the bundle.
    #[error("the policy bundle has no package {0}")]
    MissingPackage(String),
    /// The data document is not usable.
    #[error("policy data: {0}")]
    Data(String),
    /// Reading a bundle failed.
    #[error("{0}")]
    Io(String),
    /// Evaluation failed (a runtime error in the policy).
    #[error("evaluating {package}: {message}")]
    Eval {
        /// The package or query.
        package: String,
        /// The error.
        message: String,
    },
    /// Evaluation exceeded its time or memory limit.
    #[error("evaluating {package} exceeded its limits: {message}")]
    Limit {
        /// The package or query.
        package: String,
        /// Which limit.
        message: String,
    },
}

/// Limits on one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest one evaluation may run.
    pub time: Duration,
    /// Heap ceiling of the process while policies evaluate.
    pub memory_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_millis(200),
            memory_bytes: 2 * 1024 * 1024 * 1024,
        }
    }
}

/// The result of evaluating one package for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// `allow` is true and `deny` is empty.
    pub allow: bool,
    /// The `deny` reasons, sorted.
    pub reasons: Vec<DenyReason>,
    /// The whole package document, for explanations and differential tests.
    pub document: Value,
}

/// Rego syntax version of a loaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegoVersion {
    /// Rego v1 (`if`, `contains`, `:=` defaults).
    V1,
    /// Rego v0 (the pre-1.0 syntax).
    V0,
}

/// A loaded, ready-to-evaluate policy bundle.
pub struct Policies {
    bundle: Arc<PolicyBundle>,
    digest: Digest,
    template: regorus::Engine,
    versions: Vec<(String, RegoVersion)>,
    limits: Limits,
}

impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policies")
            .field("digest", &self.digest)
            .field("files", &self.versions)
            .finish_non_exhaustive()
    }
}

thread_local! {
    // Each thread evaluates on its own clone of the prepared engine, per bundle digest.
    static ENGINES: RefCell<Vec<(Digest, regorus::Engine)>> = const { RefCell::new(Vec::new()) };
    // And on its own VM per bundle digest and package (`None`: the VM cannot run it).
    static VMS: RefCell<Vec<(Digest, String, Option<regorus::rvm::RegoVM>)>> =
        const { RefCell::new(Vec::new()) };
}

fn to_regorus(v: &Value) -> Result<regorus::Value, String> {
    serde_json::from_value(v.clone()).map_err(|e| e.to_string())
}

fn to_json(v: &regorus::Value) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// Adds one file, as Rego v1 if it parses so, else as Rego v0.
fn add_file(
    engine: &mut regorus::Engine,
    path: &str,
    source: &str,
) -> Result<RegoVersion, PolicyError> {
    engine.set_rego_v0(false);
    match engine.add_policy(path.to_owned(), source.to_owned()) {
        Ok(_) => Ok(RegoVersion::V1),
        Err(v1) => {
            engine.set_rego_v0(true);
            let v0 = engine.add_policy(path.to_owned(), source.to_owned());
            engine.set_rego_v0(false);
            match v0 {
                Ok(_) => Ok(RegoVersion::V0),
                Err(_) => Err(PolicyError::Parse {
                    file: path.to_owned(),
                    message: v1.to_string().trim().to_owned(),
                }),
            }
        }
    }
}

fn limit_error(package: &str, message: String) -> PolicyError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("time limit") || lower.contains("memory limit") || lower.contains("exceeded")
    {
        PolicyError::Limit {
            package: package.to_owned(),
            message,
        }
    } else {
        PolicyError::Eval {
            package: package.to_owned(),
            message,
        }
    }
}

/// Reads `deny` (a set of `{code, message}` objects, or of strings, or of objects with a
/// `reason`) into sorted reasons.
fn reasons(deny: Option<&Value>) -> Vec<DenyReason> {
    let mut out: Vec<DenyReason> = deny
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|r| match r {
            Value::String(s) => DenyReason {
                code: "denied".into(),
                message: s.clone(),
            },
            Value::Object(m) => DenyReason {
                code: m
                    .get("code")
                    .or_else(|| m.get("reason"))
                    .and_then(Value::as_str)
                    .unwrap_or("denied")
                    .to_owned(),
                message: m
                    .get("message")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| r.to_string()),
            },
            other => DenyReason {
                code: "denied".into(),
                message: other.to_string(),
            },
        })
        .collect();
    out.sort_by(|a, b| (&a.code, &a.message).cmp(&(&b.code, &b.message)));
    out
}

/// A verdict from a package document holding `allow` and `deny`.
fn verdict(document: Value) -> Verdict {
    let allow_rule = document
        .get("allow")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let reasons = reasons(document.get("deny"));
    Verdict {
        allow: allow_rule && reasons.is_empty(),
        reasons,
        document,
    }
}

impl Policies {
    /// Loads a bundle: every decision file parses (v1, or v0), and evaluation limits apply.
    pub fn load(bundle: PolicyBundle, limits: Limits) -> Result<Self, PolicyError> {
        Self::build(bundle, limits, false)
    }

    /// Loads a bundle with its test files, for running them.
    pub fn load_with_tests(bundle: PolicyBundle, limits: Limits) -> Result<Self, PolicyError> {
        Self::build(bundle, limits, true)
    }

    fn build(bundle: PolicyBundle, limits: Limits, tests: bool) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
            limit: limits.time,
            check_interval: NonZeroU32::new(32).expect("non-zero"),
        });
        engine.set_strict_builtin_errors(false);
        regorus::set_global_memory_limit(Some(limits.memory_bytes));
        let mut versions = Vec::new();
        let files: Vec<(&String, &String)> = if tests {
            bundle.files.iter().collect()
        } else {
            bundle.policy_files().collect()
        };
        for (path, source) in files {
            versions.push((path.clone(), add_file(&mut engine, path, source)?));
        }
        engine
            .add_data(to_regorus(&bundle.data).map_err(PolicyError::Data)?)
            .map_err(|e| PolicyError::Data(e.to_string()))?;
        // Prepare the interpreter once (module analysis, scheduling, loop hoisting): every
        // clone for an explanation or an interpreted decision then starts prepared instead of
        // analysing the modules again.
        engine
            .eval_query("true".into(), false)
            .map_err(|e| PolicyError::Data(format!("preparing the policies: {e}")))?;
        let digest = bundle.digest();
        Ok(Policies {
            bundle: Arc::new(bundle),
            digest,
            template: engine,
            versions,
            limits,
        })
    }

    /// Loads a bundle and checks that it defines the packages the appliance asks.
    pub fn load_appliance(bundle: PolicyBundle, limits: Limits) -> Result<Self, PolicyError> {
        let p = Self::load(bundle, limits)?;
        let packages = p.packages()?;
        for required in ["mc.isolation", "mc.admission", "mc.residency"] {
            if !packages.iter().any(|x| x == required) {
                return Err(PolicyError::MissingPackage(required.into()));
            }
        }
        Ok(p)
    }

    /// The bundle's digest (pinned in every decision).
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The bundle.
    pub fn bundle(&self) -> &PolicyBundle {
        &self.bundle
    }

    /// The Rego version each file was loaded as.
    pub fn versions(&self) -> &[(String, RegoVersion)] {
        &self.versions
    }

    /// The limits evaluations run under.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Package names defined by the bundle.
    pub fn packages(&self) -> Result<Vec<String>, PolicyError> {
        let mut p: Vec<String> = self
            .template
            .get_packages()
            .map_err(|e| PolicyError::Eval {
                package: "*".into(),
                message: e.to_string(),
            })?
            .into_iter()
            .map(|p| p.trim_start_matches("data.").to_owned())
            .collect();
        p.sort();
        p.dedup();
        Ok(p)
    }

    fn with_engine<R>(&self, f: impl FnOnce(&mut regorus::Engine) -> R) -> R {
        ENGINES.with(|cell| {
            let mut engines = cell.borrow_mut();
            let pos = engines.iter().position(|(d, _)| *d == self.digest);
            let mut engine = match pos {
                Some(i) => engines.swap_remove(i).1,
                None => self.template.clone(),
            };
            drop(engines);
            let r = f(&mut engine);
            let mut engines = cell.borrow_mut();
            engines.push((self.digest, engine));
            if engines.len() > 4 {
                engines.remove(0);
            }
            r
        })
    }

    /// Evaluates a query (e.g. `data.mc.isolation.allow`) and returns its value (`null` when
    /// undefined).
    pub fn query(&self, query: &str, input: &Value) -> Result<Value, PolicyError> {
        let input = to_regorus(input).map_err(|e| PolicyError::Eval {
            package: query.to_owned(),
            message: format!("input: {e}"),
        })?;
        self.with_engine(|engine| {
            engine.set_input(input);
            let results = engine
                .eval_query(query.to_owned(), false)
                .map_err(|e| limit_error(query, e.to_string()))?;
            Ok(results
                .result
                .first()
                .and_then(|r| r.expressions.first())
                .map(|e| to_json(&e.value))
                .unwrap_or(Value::Null))
        })
    }

    /// Evaluates a package (`mc.isolation`) for an input: its `allow` and `deny`.
    ///
    /// Runs on the regorus VM (the package's `allow` and `deny` compiled once per thread);
    /// a package the VM cannot compile is evaluated by the interpreter instead, with the same
    /// result. `document` holds `allow` and `deny`.
    pub fn evaluate(&self, package: &str, input: &Value) -> Result<Verdict, PolicyError> {
        let vm_input = to_regorus(input).map_err(|e| PolicyError::Eval {
            package: package.to_owned(),
            message: format!("input: {e}"),
        })?;
        let on_vm = VMS.with(|cell| {
            let mut vms = cell.borrow_mut();
            let pos = vms
                .iter()
                .position(|(d, p, _)| *d == self.digest && p == package);
            let idx = match pos {
                Some(i) => i,
                None => {
                    if vms.len() >= 16 {
                        vms.remove(0);
                    }
                    vms.push((self.digest, package.to_owned(), self.compile(package)));
                    vms.len() - 1
                }
            };
            let vm = vms[idx].2.as_mut()?;
            Some(self.run_vm(vm, package, vm_input))
        });
        match on_vm {
            Some(result) => result,
            None => self.evaluate_interpreted(package, input),
        }
    }

    /// Compiles a package's `allow` and `deny` for the VM; `None` if the VM cannot run it.
    fn compile(&self, package: &str) -> Option<regorus::rvm::RegoVM> {
        use regorus::languages::rego::compiler::Compiler;
        let allow = format!("data.{package}.allow");
        let deny = format!("data.{package}.deny");
        let mut engine = self.template.clone();
        let entry: regorus::Rc<str> = allow.clone().into();
        let compiled = engine.compile_with_entrypoint(&entry).ok()?;
        let program = Compiler::compile_from_policy(&compiled, &[&allow, &deny]).ok()?;
        let mut vm = regorus::rvm::RegoVM::new();
        vm.load_program(program);
        vm.set_data(to_regorus(&self.bundle.data).ok()?).ok()?;
        // The time and memory limits bound an evaluation; the instruction count does not.
        vm.set_max_instructions(usize::MAX);
        vm.set_execution_timer_config(Some(regorus::utils::limits::ExecutionTimerConfig {
            limit: self.limits.time,
            check_interval: NonZeroU32::new(32).expect("non-zero"),
        }));
        vm.set_memory_budget_config(
            std::num::NonZeroU64::new(self.limits.memory_bytes)
                .map(|limit| regorus::utils::limits::MemoryBudgetConfig { limit }),
        );
        Some(vm)
    }

    fn run_vm(
        &self,
        vm: &mut regorus::rvm::RegoVM,
        package: &str,
        input: regorus::Value,
    ) -> Result<Verdict, PolicyError> {
        vm.set_input(input);
        let mut run = |rule: &str| {
            vm.execute_entry_point_by_name(&format!("data.{package}.{rule}"))
                .map(|v| to_json(&v))
                .map_err(|e| limit_error(package, e.to_string()))
        };
        let allow = run("allow")?;
        let deny = run("deny")?;
        Ok(verdict(serde_json::json!({ "allow": allow, "deny": deny })))
    }

    /// Evaluates a package on the interpreter: `document` is the whole package document.
    pub fn evaluate_interpreted(
        &self,
        package: &str,
        input: &Value,
    ) -> Result<Verdict, PolicyError> {
        Ok(verdict(self.query(&format!("data.{package}"), input)?))
    }

    /// Evaluates a package and explains which rules fired and why.
    pub fn explain(&self, package: &str, input: &Value) -> Result<Explanation, PolicyError> {
        explain::explain(self, package, input)
    }
}

#[cfg(test)]
mod tests;
