//! Building and rendering reports: the versioned JSON schema and the human text.

use crate::import_args::ImportArgs;
use crate::OutputFormat;
use preflight_report::{Finding, Rule, Severity, SCHEMA_VERSION};
use serde::Serialize;
use std::io::{IsTerminal, Write};
use std::path::Path;

/// One image's facts and findings: the top level of `info --output json`.
#[derive(Serialize, Debug)]
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
    /// Builds the report of one inspection.
    pub fn from_inspection(path: &Path, inspection: &preflight_formats::Inspection) -> Self {
        let info = inspection.info.as_ref();
        let mut findings = inspection.findings.clone();
        preflight_report::sort_findings(&mut findings);
        ImageReport {
            schema_version: SCHEMA_VERSION,
            path: path.display().to_string(),
            format: inspection.detected.clone(),
            subformat: info.and_then(|i| i.subformat.clone()),
            virtual_size: info.map(|i| i.virtual_size),
            file_size: info.map_or(inspection.file_size, |i| i.file_size),
            allocated_size: info.map(|i| i.allocated_size),
            cluster_size: info.and_then(|i| i.cluster_size),
            version: info.and_then(|i| i.version.clone()),
            features: info.map(|i| i.features.clone()).unwrap_or_default(),
            backing_file: info.and_then(|i| i.backing_file.clone()),
            encryption: info.and_then(|i| i.encryption.clone()),
            findings,
        }
    }
}

/// Prints `info`.
pub fn print_info(report: &ImageReport, output: OutputFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Human => {
            let style = Style::detect();
            write_image_facts(&mut out, report)?;
            write_findings(&mut out, &style, &report.findings, "  ")?;
        }
    }
    Ok(())
}

fn write_image_facts(out: &mut impl Write, r: &ImageReport) -> std::io::Result<()> {
    let sub = r
        .subformat
        .as_deref()
        .map(|s| format!(" ({s})"))
        .unwrap_or_default();
    writeln!(out, "{}: {}{}", r.path, r.format, sub)?;
    if let Some(v) = r.virtual_size {
        writeln!(out, "  virtual size:   {}", bytes(v))?;
    }
    writeln!(out, "  file size:      {}", bytes(r.file_size))?;
    if let Some(a) = r.allocated_size {
        writeln!(out, "  allocated:      {}", bytes(a))?;
    }
    if let Some(c) = r.cluster_size {
        writeln!(out, "  cluster size:   {c}")?;
    }
    if let Some(v) = &r.version {
        writeln!(out, "  version:        {v}")?;
    }
    if !r.features.is_empty() {
        writeln!(out, "  features:       {}", r.features.join(", "))?;
    }
    if let Some(b) = &r.backing_file {
        writeln!(out, "  backing file:   {b}")?;
    }
    if let Some(e) = &r.encryption {
        writeln!(out, "  encryption:     {e}")?;
    }
    Ok(())
}

fn bytes(n: u64) -> String {
    const GIB: f64 = (1u64 << 30) as f64;
    const MIB: f64 = (1u64 << 20) as f64;
    #[allow(clippy::cast_precision_loss)]
    let f = n as f64;
    if f >= GIB {
        format!("{:.2} GiB ({n} bytes)", f / GIB)
    } else if f >= MIB {
        format!("{:.2} MiB ({n} bytes)", f / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// ANSI colours, only on a terminal and never with NO_COLOR.
struct Style {
    colour: bool,
}

impl Style {
    fn detect() -> Self {
        Style {
            colour: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn severity(&self, s: Severity) -> String {
        if !self.colour {
            return s.as_str().to_string();
        }
        let code = match s {
            Severity::Error => "1;31",
            Severity::Warning => "1;33",
            Severity::Info => "36",
        };
        format!("\x1b[{code}m{}\x1b[0m", s.as_str())
    }
}

fn write_findings(
    out: &mut impl Write,
    style: &Style,
    findings: &[Finding],
    indent: &str,
) -> std::io::Result<()> {
    write_finding_lines(out, style, findings, indent)?;
    write_verdict(out, findings, indent)
}

fn write_finding_lines(
    out: &mut impl Write,
    style: &Style,
    findings: &[Finding],
    indent: &str,
) -> std::io::Result<()> {
    for f in findings {
        writeln!(
            out,
            "{indent}{} [{}] {}",
            style.severity(f.severity),
            f.code,
            f.message
        )?;
        writeln!(out, "{indent}    fix: {}", f.hint)?;
    }
    Ok(())
}

fn write_verdict(out: &mut impl Write, findings: &[Finding], indent: &str) -> std::io::Result<()> {
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .count();
    let verdict = if errors > 0 { "FAIL" } else { "OK" };
    writeln!(
        out,
        "{indent}verdict: {verdict} ({errors} errors, {warnings} warnings)"
    )?;
    Ok(())
}

/// The report of `check`.
#[derive(Serialize, Debug)]
pub struct CheckReport {
    /// Version of this JSON schema.
    pub schema_version: u32,
    /// `pass` when there is no error finding, else `fail`.
    pub verdict: &'static str,
    /// The first (system) disk's facts, at the top level.
    #[serde(flatten)]
    pub system: TopLevel,
    /// Every finding, about any disk or the request, errors first.
    pub findings: Vec<preflight_rules::ScopedFinding>,
    /// Each disk's facts and its own findings.
    pub disks: Vec<ImageReport>,
    /// What guest inspection found on the system disk (absent with
    /// `--skip-guest`, or when the system disk could not be opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<preflight_guest::GuestReport>,
    /// The ImportImage request that would be sent.
    pub plan: preflight_rules::Plan,
}

/// The system disk's facts repeated at the top of the check report.
#[derive(Serialize, Debug)]
pub struct TopLevel {
    /// See [`ImageReport::path`].
    pub path: String,
    /// See [`ImageReport::format`].
    pub format: String,
    /// See [`ImageReport::subformat`].
    pub subformat: Option<String>,
    /// See [`ImageReport::virtual_size`].
    pub virtual_size: Option<u64>,
    /// See [`ImageReport::file_size`].
    pub file_size: u64,
    /// See [`ImageReport::allocated_size`].
    pub allocated_size: Option<u64>,
}

impl CheckReport {
    /// True when any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.finding.is_error())
    }
}

/// Runs `check`: inspects every disk and evaluates the ImportImage rules.
pub fn check(image: &Path, args: &ImportArgs) -> anyhow::Result<CheckReport> {
    let params = args.to_params()?;
    let mut paths = vec![image.to_path_buf()];
    paths.extend(args.data_disk.iter().cloned());
    let mut disks = Vec::new();
    let mut facts = Vec::new();
    let mut guest = None;
    for (index, path) in paths.iter().enumerate() {
        let inspection = crate::inspect(path, true)?;
        let report = ImageReport::from_inspection(path, &inspection);
        let role = params.role_of(index);
        let mut disk = preflight_rules::DiskFacts::new(
            path.display().to_string(),
            inspection.info.as_ref().map(|i| i.format.as_str()),
            inspection.info.as_ref().map(|i| i.virtual_size),
            role,
        );
        disk.findings = report.findings.clone();
        // The OS lives on the system disk; data disks are not inspected.
        let inspect_guest = index == 0
            && role == preflight_rules::DiskRole::System
            && !params.skip_guest
            && !preflight_report::has_errors(&report.findings);
        if let (true, Some(image)) = (inspect_guest, inspection.image.as_ref()) {
            let found = preflight_guest::inspect_with(
                image.as_ref(),
                preflight_guest::InspectOptions::for_nvme_support(params.nvme_support.as_deref()),
            );
            disk.findings.extend(found.findings.iter().cloned());
            guest = Some(found);
        }
        facts.push(disk);
        disks.push(report);
    }
    let guest_facts = guest.as_ref().map(preflight_pipeline::guest_facts);
    let evaluation =
        preflight_rules::evaluate(&facts, &params, guest_facts.as_ref(), params.size_limits);
    let mut findings = evaluation.findings;
    // Errors first; within a severity, request-level findings, then by disk.
    findings.sort_by(|a, b| {
        a.finding
            .severity
            .cmp(&b.finding.severity)
            .then_with(|| a.disk.cmp(&b.disk))
    });
    let first = &disks[0];
    let system = TopLevel {
        path: first.path.clone(),
        format: first.format.clone(),
        subformat: first.subformat.clone(),
        virtual_size: first.virtual_size,
        file_size: first.file_size,
        allocated_size: first.allocated_size,
    };
    let has_errors = findings.iter().any(|f| f.finding.is_error());
    Ok(CheckReport {
        schema_version: SCHEMA_VERSION,
        verdict: if has_errors { "fail" } else { "pass" },
        system,
        findings,
        disks,
        guest,
        plan: evaluation.plan,
    })
}

/// Prints `check`: per disk, its facts and findings; then request findings.
pub fn print_check(report: &CheckReport, output: OutputFormat) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if output == OutputFormat::Json {
        serde_json::to_writer_pretty(&mut out, report)?;
        writeln!(out)?;
        return Ok(());
    }
    let style = Style::detect();
    // One group per disk (its facts, then its findings, errors first), then the findings
    // about the request as a whole.
    let group = |disk: Option<usize>| -> Vec<Finding> {
        report
            .findings
            .iter()
            .filter(|f| f.disk == disk)
            .map(|f| f.finding.clone())
            .collect()
    };
    for (index, disk) in report.disks.iter().enumerate() {
        let role = if index == 0 {
            "system disk"
        } else {
            "data disk"
        };
        write!(out, "[{role} {index}] ")?;
        write_image_facts(&mut out, disk)?;
        if let (0, Some(g)) = (index, &report.guest) {
            let f = &g.facts;
            let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "unknown".to_string());
            writeln!(
                out,
                "  guest: platform {}, os type {}, architecture {}, boot mode {}, NVMe {}",
                show(&f.platform),
                show(&f.os_type),
                show(&f.architecture),
                show(&f.boot_mode),
                show(&f.nvme_support)
            )?;
        }
        write_group(&mut out, &style, &group(Some(index)))?;
        writeln!(out)?;
    }
    writeln!(out, "[request]")?;
    write_group(&mut out, &style, &group(None))?;
    let all: Vec<Finding> = report.findings.iter().map(|f| f.finding.clone()).collect();
    writeln!(out)?;
    write_verdict(&mut out, &all, "")?;
    Ok(())
}

/// A group's findings, indented, or a line saying there are none.
fn write_group(out: &mut impl Write, style: &Style, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return writeln!(out, "  no findings");
    }
    write_finding_lines(out, style, findings, "  ")
}

/// Every rule the tool checks, from the code itself.
pub fn all_rules() -> Vec<&'static Rule> {
    let mut rules = preflight_formats::all_rules();
    rules.extend_from_slice(preflight_guest::RULES);
    rules.extend_from_slice(preflight_rules::RULES);
    rules
}

/// The fix for an error code ImportImage answered with: a service-decided code's, else the
/// hint of the rule with that code.
pub fn fix_for_api_code(code: &str) -> Option<&'static str> {
    if let Some(s) = preflight_rules::service_code(code) {
        return Some(s.fix);
    }
    all_rules()
        .into_iter()
        .find(|r| r.code == code)
        .map(|r| r.hint)
        .filter(|h| !h.is_empty())
}

/// `API` for an ImportImage error code, `ours` for ecs-preflight's own.
fn code_origin(code: &str) -> &'static str {
    if preflight_rules::is_api_code(code) {
        "API"
    } else {
        "ours"
    }
}

/// Prints the catalogue: `rules`, `rules --output json`, `rules --markdown`.
pub fn print_rules(output: OutputFormat, markdown: bool) -> anyhow::Result<()> {
    let rules = all_rules();
    let mut out = std::io::stdout().lock();
    if markdown {
        writeln!(out, "# ecs-preflight rules\n")?;
        writeln!(
            out,
            "Generated by `ecs-preflight rules --markdown`; do not edit by hand.\n"
        )?;
        writeln!(
            out,
            "Code: `API` is an ImportImage error code the check prevents; `ours` is a code of \
             ecs-preflight's, for a rule the API names no code for or for what it does not say.\n"
        )?;
        writeln!(
            out,
            "| code | code from | severity | what it checks | fix |"
        )?;
        writeln!(out, "|---|---|---|---|---|")?;
        for r in &rules {
            writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                r.code,
                code_origin(r.code),
                r.severity,
                r.summary.replace('|', "\\|"),
                r.hint.replace('|', "\\|")
            )?;
        }
        writeln!(out, "\n## Decided by the service\n")?;
        writeln!(
            out,
            "ImportImage error codes no check can foresee. When ImportImage answers with one, \
             `import` and `upload-and-import` print its fix.\n"
        )?;
        writeln!(out, "| code | HTTP | why it is not checked first | fix |")?;
        writeln!(out, "|---|---|---|---|")?;
        for s in preflight_rules::SERVICE_CODES {
            writeln!(
                out,
                "| `{}` | {} | {} | {} |",
                s.code,
                s.http_status,
                s.why_unchecked.replace('|', "\\|"),
                s.fix.replace('|', "\\|")
            )?;
        }
    } else if output == OutputFormat::Json {
        // One list: the checks, then the codes only the service decides.
        let mut list: Vec<serde_json::Value> = rules
            .iter()
            .map(|r| {
                let mut v = serde_json::json!(r);
                v["decided_by"] = "ecs-preflight".into();
                v["code_from"] = code_origin(r.code).into();
                v
            })
            .collect();
        list.extend(preflight_rules::SERVICE_CODES.iter().map(|s| {
            let mut v = serde_json::json!(s);
            v["decided_by"] = "service".into();
            v["code_from"] = "API".into();
            v
        }));
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else {
        for r in &rules {
            writeln!(
                out,
                "{} ({}, {} code)\n    {}\n    fix: {}",
                r.code,
                r.severity,
                code_origin(r.code),
                r.summary,
                r.hint
            )?;
        }
        writeln!(out, "\ndecided by the service (not checked first):")?;
        for s in preflight_rules::SERVICE_CODES {
            writeln!(
                out,
                "{} (HTTP {})\n    not checked: {}\n    fix: {}",
                s.code, s.http_status, s.why_unchecked, s.fix
            )?;
        }
    }
    Ok(())
}
