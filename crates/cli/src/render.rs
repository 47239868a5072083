//! Rendering the library's reports: `info`, `check` and the rule catalogue, as JSON or
//! as text for people.

use crate::OutputFormat;
use preflight_pipeline::catalogue::{all_rules, code_origin, SERVICE_CODES};
use preflight_pipeline::{CheckReport, ImageReport};
use preflight_report::{Finding, Severity};
use std::io::{IsTerminal, Write};

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
        for s in SERVICE_CODES {
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
        list.extend(SERVICE_CODES.iter().map(|s| {
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
        for s in SERVICE_CODES {
            writeln!(
                out,
                "{} (HTTP {})\n    not checked: {}\n    fix: {}",
                s.code, s.http_status, s.why_unchecked, s.fix
            )?;
        }
    }
    Ok(())
}

/// Prints a use case's result on stdout: its JSON, or its human lines.
pub fn print_result(r: &preflight_pipeline::Rendered, output: OutputFormat) -> anyhow::Result<()> {
    match output {
        OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&r.json)?),
        OutputFormat::Human => {
            for line in &r.lines {
                println!("{line}");
            }
        }
    }
    Ok(())
}
