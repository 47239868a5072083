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
//! This crate does no I/O.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use serde::{Deserialize, Serialize};
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

/// A check with a stable code. Declared as a `static` next to the code that
/// checks it, and listed in its crate's `RULES`.
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
#[derive(Debug, Default)]
pub struct FindingSink {
    findings: Vec<Finding>,
    per_code: std::collections::BTreeMap<String, usize>,
    max_per_code: usize,
}

impl FindingSink {
    /// A sink that keeps at most `max_per_code` findings of each code.
    pub fn new(max_per_code: usize) -> Self {
        FindingSink {
            findings: Vec::new(),
            per_code: Default::default(),
            max_per_code,
        }
    }

    /// Adds a finding (dropped, but counted, past the cap).
    pub fn push(&mut self, finding: Finding) {
        let count = self.per_code.entry(finding.code.clone()).or_insert(0);
        *count += 1;
        if *count <= self.max_per_code {
            self.findings.push(finding);
        }
    }

    /// Counts `n` more violations of `rule` whose findings were never built because they
    /// would be past the cap: a hostile image can break a rule once per table entry, and
    /// building thousands of messages only to drop them cost more than reading the table.
    pub fn count_unbuilt(&mut self, rule: &Rule, n: usize) {
        if n > 0 {
            *self.per_code.entry(rule.code.to_string()).or_insert(0) += n;
        }
    }

    /// Number of findings seen with `code`, kept or not.
    pub fn count(&self, code: &str) -> usize {
        self.per_code.get(code).copied().unwrap_or(0)
    }

    /// The kept findings, plus one note per code that went over the cap.
    pub fn into_findings(mut self) -> Vec<Finding> {
        for (code, &count) in &self.per_code {
            if count > self.max_per_code {
                let severity = self
                    .findings
                    .iter()
                    .find(|f| &f.code == code)
                    .map_or(Severity::Info, |f| f.severity);
                self.findings.push(Finding {
                    code: code.clone(),
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
