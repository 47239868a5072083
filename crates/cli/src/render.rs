//! Writing the library's results out: the reports of `info`, `check` and `rules`, and the
//! [`Rendered`] result of every cloud command. The text itself is the library's
//! (`preflight_pipeline::rendering`).

use crate::OutputFormat;
use preflight_pipeline::rendering;
use preflight_pipeline::{CheckReport, ImageReport, Rendered};
use std::io::{IsTerminal, Write};

/// ANSI colours, only on a terminal and never with NO_COLOR.
fn colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Prints a report: its JSON (the versioned schema), or `lines` for people.
fn print_report(
    report: &impl serde::Serialize,
    output: OutputFormat,
    lines: impl FnOnce(bool) -> Vec<String>,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output {
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Human => {
            for line in lines(colour()) {
                writeln!(out, "{line}")?;
            }
        }
    }
    Ok(())
}

/// Prints `info`.
pub fn print_info(report: &ImageReport, output: OutputFormat) -> anyhow::Result<()> {
    print_report(report, output, |c| rendering::info_lines(report, c))
}

/// Prints `check`: per disk, its facts and findings; then request findings.
pub fn print_check(report: &CheckReport, output: OutputFormat) -> anyhow::Result<()> {
    print_report(report, output, |c| rendering::check_report_lines(report, c))
}

/// Prints the catalogue: `rules`, `rules --output json`, `rules --markdown`.
pub fn print_rules(output: OutputFormat, markdown: bool) -> anyhow::Result<()> {
    if output == OutputFormat::Json && !markdown {
        return print_report(&rendering::rules_json(), output, |_| Vec::new());
    }
    print_report(&(), OutputFormat::Human, |_| {
        rendering::rules_lines(markdown)
    })
}

/// Writes a result out and returns its exit code: its JSON on stdout, or its human lines
/// (on stdout, or on stderr when the result says so) unless `hide_lines` (`--quiet` where
/// the exit code is the result); then what it says on stderr.
pub fn emit(r: &Rendered, output: OutputFormat, hide_lines: bool) -> anyhow::Result<u8> {
    match output {
        OutputFormat::Json if !r.json.is_null() => {
            println!("{}", serde_json::to_string_pretty(&r.json)?);
        }
        OutputFormat::Human if !hide_lines => {
            for line in &r.lines {
                if r.lines_on_stderr {
                    eprintln!("{line}");
                } else {
                    println!("{line}");
                }
            }
        }
        _ => {}
    }
    for line in &r.stderr {
        eprintln!("{line}");
    }
    Ok(r.exit_code)
}
