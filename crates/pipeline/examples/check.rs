//! Checks disk images before any upload and prints the report `ecs-preflight check --output
//! json` prints for them: the library and the CLI give the same bytes.
//!
//! ```text
//! qemu-img create -f qcow2 /tmp/sys.qcow2 20G
//! cargo run -p preflight-pipeline --example check -- /tmp/sys.qcow2 --skip-guest
//! ```
//!
//! Arguments: `SYSTEM_DISK [DATA_DISK]... [--region R] [--image-name NAME] [--skip-guest]`.
//! Exit code: 0 no error finding, 1 an error finding, 2 an unreadable disk.

use std::path::PathBuf;
use std::process::ExitCode;

use preflight_pipeline::{CheckReport, ImportParams, PipelineError};

/// The check report for a command line (without the program name).
pub fn report_for(args: impl IntoIterator<Item = String>) -> Result<CheckReport, PipelineError> {
    let mut args = args.into_iter();
    let mut disks = Vec::new();
    let mut params = ImportParams::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--region" => params.region = args.next(),
            "--image-name" => params.image_name = args.next(),
            "--skip-guest" => params.skip_guest = true,
            _ => disks.push(PathBuf::from(a)),
        }
    }
    preflight_pipeline::check(&disks, &params)
}

fn main() -> ExitCode {
    match report_for(std::env::args().skip(1)) {
        Ok(report) => {
            let json = serde_json::to_string_pretty(&report).expect("a report serialises");
            println!("{json}");
            ExitCode::from(u8::from(report.has_errors()))
        }
        Err(e) => {
            eprintln!("check: {e}");
            ExitCode::from(2)
        }
    }
}
