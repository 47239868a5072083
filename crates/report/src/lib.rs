//! Findings with stable codes, and the rule catalogue they come from.
//!
//! Every check in ecs-preflight is a [`Rule`]: a stable `code` (the ECS API
//! error code where one exists), a [`Severity`], a one-line summary of what it
//! checks and a hint saying how to fix a violation. A check that fails turns
//! its rule into a [`Finding`] carrying the offending value in its message.
//! Crates publish their rules as a `RULES` slice so the CLI can list every
//! code from the code itself (`ecs-preflight rules`), and the list cannot
//! drift from what is checked.
//!
//! There is one way to declare a rule, a `static` built by the `const fn`
//! [`Rule::new`], with a doc comment when its code does not say enough:
//!
//! ```
//! use preflight_report::{Rule, Severity};
//!
//! /// The cluster size is one qemu can open.
//! pub static CLUSTER_BITS: Rule = Rule::new(
//!     "QCOW2.ClusterBits",
//!     Severity::Error,
//!     "cluster_bits is between 9 and 21",
//!     "Re-create the image with qemu-img.",
//! );
//! pub static RULES: &[&Rule] = &[&CLUSTER_BITS];
//! ```
//!
//! and one way to report many violations cheaply, a [`FindingSink`] with
//! [`report!`] (or [`FindingSink::report`]), which formats only the messages
//! it keeps.
//!
//! This crate does no I/O.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Version of the JSON report schema. Bump on any incompatible change;
/// adding a field is compatible.
pub const SCHEMA_VERSION: u32 = 1;

/// How bad a finding is. Errors make `check` exit 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The import would fail, or the image cannot be used as it is.
    Error,
    /// The import may succeed but something is likely wrong.
    Warning,
    /// Worth knowing; nothing to fix.
    Info,
}

impl Severity {
    /// The lowercase name used in JSON and text output.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A check with a stable code. Declared as a `static` by [`Rule::new`] next to
/// the code that checks it, and listed in its crate's `RULES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Stable code, e.g. `QCOW2.ClusterBits` or `InvalidImageSize`.
    pub code: &'static str,
    /// Severity of a violation.
    pub severity: Severity,
    /// What the rule checks, one line.
    pub summary: &'static str,
    /// How to fix a violation.
    pub hint: &'static str,
}

impl Rule {
    /// Declares a rule.
    pub const fn new(
        code: &'static str,
        severity: Severity,
        summary: &'static str,
        hint: &'static str,
    ) -> Self {
        Rule {
            code,
            severity,
            summary,
            hint,
        }
    }

    /// A violation of this rule; `message` names the offending value.
    pub fn finding(&self, message: impl Into<String>) -> Finding {
        Finding {
            code: self.code.to_string(),
            severity: self.severity,
            message: message.into(),
            hint: self.hint.to_string(),
        }
    }

    /// A violation with a hint specific to this case (e.g. a command line
    /// naming the user's file).
    pub fn finding_with_hint(
        &self,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Finding {
        Finding {
            code: self.code.to_string(),
            severity: self.severity,
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// One result of a check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code of the rule that produced it.
    pub code: String,
    /// Error, warning or info.
    pub severity: Severity,
    /// What was found, naming the offending value.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl Finding {
    /// True for error findings.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.severity, self.code, self.message)
    }
}

/// One image's facts and findings: the top level of `info --output json` and one entry
/// of the check report's `disks` (schema: `docs/report-schema.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageReport {
    /// Version of this JSON schema.
    pub schema_version: u32,
    /// What the image is and how big: also the top level of the check report.
    #[serde(flatten)]
    pub facts: ImageFacts,
    /// Cluster, block or grain size.
    pub cluster_size: Option<u64>,
    /// Format version.
    pub version: Option<String>,
    /// Feature flags that are set.
    pub features: Vec<String>,
    /// Backing file named by the image.
    pub backing_file: Option<String>,
    /// Encryption method.
    pub encryption: Option<String>,
    /// Everything found, errors first.
    pub findings: Vec<Finding>,
}

/// An image's headline facts: the first fields of an [`ImageReport`], and the system disk's
/// facts at the top of the check report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageFacts {
    /// The path as given.
    pub path: String,
    /// Detected format (ours, or the name of a refused one such as `vdi`).
    pub format: String,
    /// Variant within the format.
    pub subformat: Option<String>,
    /// Guest-visible size in bytes (absent when the image could not be opened).
    pub virtual_size: Option<u64>,
    /// File size in bytes.
    pub file_size: u64,
    /// Bytes of guest data stored.
    pub allocated_size: Option<u64>,
}

impl ImageReport {
    /// True when any finding is an error.
    pub fn has_errors(&self) -> bool {
        has_errors(&self.findings)
    }
}

/// True when any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(Finding::is_error)
}

/// Sorts findings errors first, then by code, keeping the order of equal ones.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        a.severity
            .cmp(&b.severity)
            .then_with(|| a.code.cmp(&b.code))
    });
}

/// Caps a list of findings: keeps the first `max` of each code and replaces
/// the rest by one summary finding, so a badly corrupt image gives a readable
/// report and bounded memory.
///
/// A hostile table breaks a rule once per entry, so a push must be cheap: the
/// counts are a short list (one entry per distinct code, a few dozen at most)
/// searched by pointer first, since almost every code is a rule's `&'static str`.
#[derive(Debug, Default)]
pub struct FindingSink {
    findings: Vec<Finding>,
    per_code: Vec<(Cow<'static, str>, usize)>,
    max_per_code: usize,
}

impl FindingSink {
    /// A sink that keeps at most `max_per_code` findings of each code.
    pub fn new(max_per_code: usize) -> Self {
        FindingSink {
            findings: Vec::new(),
            per_code: Vec::new(),
            max_per_code,
        }
    }

    /// The count of `rule`'s code, added at zero if new.
    fn count_of_rule(&mut self, rule: &'static Rule) -> &mut usize {
        let code = rule.code;
        let at = match self
            .per_code
            .iter()
            .position(|(c, _)| matches!(c, Cow::Borrowed(b) if std::ptr::eq(*b, code)))
            .or_else(|| self.per_code.iter().position(|(c, _)| c == code))
        {
            Some(at) => {
                // Next time the pointer comparison finds it.
                self.per_code[at].0 = Cow::Borrowed(code);
                at
            }
            None => {
                self.per_code.push((Cow::Borrowed(code), 0));
                self.per_code.len() - 1
            }
        };
        &mut self.per_code[at].1
    }

    /// Adds a finding (dropped, but counted, past the cap).
    pub fn push(&mut self, finding: Finding) {
        let at = match self.per_code.iter().position(|(c, _)| *c == finding.code) {
            Some(at) => at,
            None => {
                self.per_code.push((Cow::Owned(finding.code.clone()), 0));
                self.per_code.len() - 1
            }
        };
        let count = &mut self.per_code[at].1;
        *count = count.saturating_add(1);
        if *count <= self.max_per_code {
            self.findings.push(finding);
        }
    }

    /// True if a finding of `rule` would be kept; otherwise counts the violation as
    /// unbuilt and returns false. Lets a caller skip formatting a message that would be
    /// dropped (see [`report!`]): `if sink.room(&R) { sink.push(R.finding(..)) }`.
    pub fn room(&mut self, rule: &'static Rule) -> bool {
        let max = self.max_per_code;
        let count = self.count_of_rule(rule);
        if *count < max {
            return true;
        }
        *count = count.saturating_add(1);
        false
    }

    /// Adds a violation of `rule`, building its message only if it is kept.
    pub fn report(&mut self, rule: &'static Rule, message: impl FnOnce() -> String) {
        if self.room(rule) {
            self.push(rule.finding(message()));
        }
    }

    /// Counts `n` more violations of `rule` whose findings were never built because they
    /// would be past the cap: a hostile image can break a rule once per table entry, and
    /// building thousands of messages only to drop them cost more than reading the table.
    pub fn count_unbuilt(&mut self, rule: &'static Rule, n: usize) {
        if n > 0 {
            let count = self.count_of_rule(rule);
            *count = count.saturating_add(n);
        }
    }

    /// Number of findings seen with `code`, kept or not.
    pub fn count(&self, code: &str) -> usize {
        self.per_code
            .iter()
            .find(|(c, _)| c == code)
            .map_or(0, |&(_, n)| n)
    }

    /// The kept findings, plus one note per code that went over the cap (in code order).
    pub fn into_findings(mut self) -> Vec<Finding> {
        self.per_code.sort_by(|a, b| a.0.cmp(&b.0));
        for (code, count) in &self.per_code {
            let count = *count;
            if count > self.max_per_code {
                let severity = self
                    .findings
                    .iter()
                    .find(|f| f.code == *code)
                    .map_or(Severity::Info, |f| f.severity);
                self.findings.push(Finding {
                    code: code.to_string(),
                    severity,
                    message: format!(
                        "{} more findings of this code not shown ({count} in all)",
                        count - self.max_per_code
                    ),
                    hint: "Only the first findings of each code are listed.".to_string(),
                });
            }
        }
        self.findings
    }
}

/// Adds a violation of a rule to a [`FindingSink`], formatting its message (`format!`
/// arguments) only while the sink still keeps findings of that code:
/// `report!(sink, &rules::L2_ENTRY, "entry {i} points past the end")`.
///
/// A macro rather than [`FindingSink::report`] with a closure so that the message may
/// borrow what the sink's owner holds (`self.sink` and `self.geo` at once).
#[macro_export]
macro_rules! report {
    ($sink:expr, $rule:expr, $($fmt:tt)+) => {{
        let rule: &'static $crate::Rule = $rule;
        if $sink.room(rule) {
            $sink.push(rule.finding(format!($($fmt)+)));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    static DEMO: Rule = Rule::new("DEMO.Code", Severity::Error, "demo", "fix it");

    #[test]
    fn unbuilt_findings_are_counted_in_the_summary() {
        let mut sink = FindingSink::new(2);
        for i in 0..2 {
            sink.push(DEMO.finding(format!("entry {i}")));
        }
        sink.count_unbuilt(&DEMO, 998);
        assert_eq!(sink.count("DEMO.Code"), 1000);
        let all = sink.into_findings();
        assert_eq!(all.len(), 3);
        assert!(all[2].message.contains("998 more"), "{}", all[2].message);
    }

    #[test]
    fn finding_serializes_with_lowercase_severity() {
        let f = DEMO.finding("value 7 is bad");
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["code"], "DEMO.Code");
        assert_eq!(json["severity"], "error");
        assert_eq!(json["message"], "value 7 is bad");
        assert_eq!(json["hint"], "fix it");
    }

    #[test]
    fn sink_caps_per_code_and_summarises() {
        let mut sink = FindingSink::new(2);
        for i in 0..5 {
            sink.push(DEMO.finding(format!("n{i}")));
        }
        assert_eq!(sink.count("DEMO.Code"), 5);
        let out = sink.into_findings();
        assert_eq!(out.len(), 3);
        assert!(out[2].message.contains("3 more"));
        assert!(has_errors(&out));
    }

    static OTHER: Rule = Rule::new("DEMO.Other", Severity::Warning, "other", "fix that");

    #[test]
    fn report_builds_only_the_messages_kept_and_counts_the_rest() {
        let mut sink = FindingSink::new(2);
        let mut built = 0;
        for i in 0..1000 {
            sink.report(&DEMO, || {
                built += 1;
                format!("entry {i}")
            });
        }
        report!(sink, &OTHER, "entry {}", 7);
        assert_eq!(built, 2);
        assert_eq!(sink.count("DEMO.Code"), 1000);
        assert_eq!(sink.count("DEMO.Other"), 1);
        let all = sink.into_findings();
        let messages: Vec<&str> = all.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "entry 0",
                "entry 1",
                "entry 7",
                "998 more findings of this code not shown (1000 in all)"
            ]
        );
        assert_eq!(all[3].code, "DEMO.Code");
        assert_eq!(all[3].severity, Severity::Error);
    }

    #[test]
    fn pushed_and_reported_findings_of_one_code_share_the_cap() {
        let mut sink = FindingSink::new(3);
        // A finding built elsewhere carries an owned code: the same count as the rule's.
        sink.push(DEMO.finding("pushed"));
        sink.push(Finding {
            code: "DEMO.Code".to_string(),
            severity: Severity::Error,
            message: "built by hand".into(),
            hint: String::new(),
        });
        assert!(sink.room(&DEMO));
        sink.push(DEMO.finding("third"));
        assert!(!sink.room(&DEMO), "the cap is reached");
        sink.count_unbuilt(&DEMO, 5);
        assert_eq!(sink.count("DEMO.Code"), 9);
        assert_eq!(sink.count("DEMO.Missing"), 0);
        let all = sink.into_findings();
        assert_eq!(all.len(), 4);
        assert!(all[3].message.starts_with("6 more"), "{}", all[3].message);
    }

    #[test]
    fn summaries_come_in_code_order_whatever_the_order_seen() {
        let mut sink = FindingSink::new(0);
        sink.push(OTHER.finding("x"));
        sink.push(DEMO.finding("y"));
        let codes: Vec<String> = sink.into_findings().into_iter().map(|f| f.code).collect();
        assert_eq!(codes, ["DEMO.Code", "DEMO.Other"]);
    }

    #[test]
    fn sort_puts_errors_first() {
        let mut v = vec![
            Rule::new("B", Severity::Info, "", "").finding(""),
            Rule::new("A", Severity::Error, "", "").finding(""),
        ];
        sort_findings(&mut v);
        assert_eq!(v[0].code, "A");
    }
}
