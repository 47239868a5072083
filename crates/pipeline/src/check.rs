//! The `check` use case: every disk inspected, the guest on the system disk, the local
//! ImportImage rules, and the versioned report `ecs-preflight check --output json` prints.

use std::path::{Path, PathBuf};

use preflight_guest::GuestReport;
use preflight_report::{ImageFacts, ImageReport, SCHEMA_VERSION};
use preflight_rules::{
    evaluate, DiskFacts, DiskRole, Evaluation, GuestFacts, ImportParams, Plan, ScopedFinding,
};
use serde::Serialize;

use crate::{PipelineError, Result};

/// The report of `check` (schema: `docs/report-schema.md`). It lives here rather than in
/// `preflight-report` because it embeds the guest report and the plan, whose crates sit
/// above `preflight-report`.
#[derive(Serialize, Debug, Clone)]
pub struct CheckReport {
    /// Version of this JSON schema.
    pub schema_version: u32,
    /// `pass` when there is no error finding, else `fail`.
    pub verdict: &'static str,
    /// The first (system) disk's facts, at the top level.
    #[serde(flatten)]
    pub system: ImageFacts,
    /// Every finding, about any disk or the request, errors first.
    pub findings: Vec<ScopedFinding>,
    /// Each disk's facts and its own findings.
    pub disks: Vec<ImageReport>,
    /// What guest inspection found on the system disk (absent with
    /// `skip_guest`, or when the system disk could not be opened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest: Option<GuestReport>,
    /// The ImportImage request that would be sent.
    pub plan: Plan,
}

impl CheckReport {
    /// True when any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.finding.is_error())
    }
}

/// `info`: what one image is (format, sizes, version, features), without the integrity
/// check.
pub fn info(path: &Path) -> Result<ImageReport> {
    let inspection = inspect(path, false)?;
    Ok(image_report(path, &inspection))
}

/// `check`: inspects `disks` (the system disk first, then the data disks), the guest on
/// the system disk unless [`ImportParams::skip_guest`], and evaluates every local
/// ImportImage rule. The report serialises to what `ecs-preflight check --output json`
/// prints for the same disks and parameters.
pub fn check(disks: &[PathBuf], params: &ImportParams) -> Result<CheckReport> {
    let local = inspect_local(disks, params)?;
    let mut findings = local.evaluation.findings;
    // Errors first; within a severity, request-level findings, then by disk.
    findings.sort_by(|a, b| {
        a.finding
            .severity
            .cmp(&b.finding.severity)
            .then_with(|| a.disk.cmp(&b.disk))
    });
    let first = local
        .disks
        .first()
        .ok_or_else(|| PipelineError::Usage("check needs at least the system disk".to_string()))?;
    let system = first.facts.clone();
    let has_errors = findings.iter().any(|f| f.finding.is_error());
    Ok(CheckReport {
        schema_version: SCHEMA_VERSION,
        verdict: if has_errors { "fail" } else { "pass" },
        system,
        findings,
        disks: local.disks,
        guest: local.guest,
        plan: local.evaluation.plan,
    })
}

/// What the local check found, before the findings are sorted for the report.
pub(crate) struct LocalCheck {
    /// Each disk's report.
    pub disks: Vec<ImageReport>,
    /// The guest inspection of the system disk, when it ran.
    pub guest: Option<GuestReport>,
    /// The local rules' findings and the plan.
    pub evaluation: Evaluation,
}

/// Inspects every disk (and the guest on the system disk) and evaluates the local rules:
/// the one loop both `check` and the one-shot run.
pub(crate) fn inspect_local(disks: &[PathBuf], params: &ImportParams) -> Result<LocalCheck> {
    let mut reports = Vec::with_capacity(disks.len());
    let mut facts = Vec::with_capacity(disks.len());
    let mut guest = None;
    for (index, path) in disks.iter().enumerate() {
        let inspection = inspect(path, true)?;
        let report = image_report(path, &inspection);
        let role = params.role_of(index);
        let mut disk = DiskFacts::new(
            path.display().to_string(),
            inspection.info.as_ref().map(|i| i.format.as_str()),
            inspection.info.as_ref().map(|i| i.virtual_size),
            role,
        );
        disk.findings = report.findings.clone();
        // The OS lives on the system disk; data disks are not inspected.
        let inspect_guest =
            index == 0 && role == DiskRole::System && !params.skip_guest && !report.has_errors();
        if let (true, Some(image)) = (inspect_guest, inspection.image.as_ref()) {
            let found = preflight_guest::inspect_with(
                image.as_ref(),
                preflight_guest::InspectOptions::for_nvme_support(params.nvme_support.as_deref()),
            );
            disk.findings.extend(found.findings.iter().cloned());
            guest = Some(found);
        }
        facts.push(disk);
        reports.push(report);
    }
    let guest_facts = guest.as_ref().map(guest_facts);
    let evaluation = evaluate(&facts, params, guest_facts.as_ref(), params.size_limits);
    Ok(LocalCheck {
        disks: reports,
        guest,
        evaluation,
    })
}

/// The report of one inspection: its facts, and its findings errors first.
pub fn image_report(path: &Path, inspection: &preflight_formats::Inspection) -> ImageReport {
    let info = inspection.info.as_ref();
    let mut findings = inspection.findings.clone();
    preflight_report::sort_findings(&mut findings);
    ImageReport {
        schema_version: SCHEMA_VERSION,
        facts: ImageFacts {
            path: path.display().to_string(),
            format: inspection.detected.clone(),
            subformat: info.and_then(|i| i.subformat.clone()),
            virtual_size: info.map(|i| i.virtual_size),
            file_size: info.map_or(inspection.file_size, |i| i.file_size),
            allocated_size: info.map(|i| i.allocated_size),
        },
        cluster_size: info.and_then(|i| i.cluster_size),
        version: info.and_then(|i| i.version.clone()),
        features: info.map(|i| i.features.clone()).unwrap_or_default(),
        backing_file: info.and_then(|i| i.backing_file.clone()),
        encryption: info.and_then(|i| i.encryption.clone()),
        findings,
    }
}

/// What the rules need of a guest inspection, in the API's spelling.
pub fn guest_facts(found: &GuestReport) -> GuestFacts {
    let f = &found.facts;
    GuestFacts {
        architecture: f.architecture.clone(),
        os_type: f.os_type.clone(),
        platform: f.platform.clone(),
        boot_mode: f.boot_mode.clone(),
        boot_modes: f.boot.modes(f.architecture.as_deref()),
        nvme_support: f.nvme_support.clone(),
        uefi_without_fallback: f.boot.uefi && !f.boot.efi_fallback_loader,
    }
}

/// Inspects one image (`integrity`: also check its tables); a missing or unreadable file
/// is [`PipelineError::Read`].
pub fn inspect(path: &Path, integrity: bool) -> Result<preflight_formats::Inspection> {
    preflight_formats::inspect(path, preflight_formats::InspectOptions { check: integrity })
        .map_err(|source| PipelineError::Read {
            path: path.to_path_buf(),
            source,
        })
}
