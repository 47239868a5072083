//! `ecs-preflight`: get a disk image into Alibaba Cloud ECS on the first try.
//!
//! This binary only parses arguments, calls the library crates and renders
//! their results; every check lives in a library crate.

// The doc comments here are clap's `--help` text, written for a terminal:
// `[default]`, `NAME@REGION[:FLAG]` and `<region>` are not rustdoc links or HTML.
#![allow(
    rustdoc::broken_intra_doc_links,
    rustdoc::invalid_html_tags,
    rustdoc::bare_urls
)]

mod batch_cmd;
mod endpoint_args;
mod fleet_args;
mod import_cmd;
mod oneshot_cmd;
mod progress;
mod render;
mod request_args;
mod shared_flags;
mod upload_cmd;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

use preflight_pipeline::exit::{FAILED as EXIT_FINDINGS, OK as EXIT_OK, USAGE as EXIT_ENV};

#[derive(Parser, Debug)]
#[command(
    name = "ecs-preflight",
    version,
    about = "Check a disk image against every Alibaba Cloud ECS ImportImage rule before uploading it",
    long_about = "Check a disk image against every Alibaba Cloud ECS ImportImage rule before uploading it.\n\n\
        Formats are detected by content (qcow2, VHD, VHDX, VMDK, RAW); formats ECS refuses (VDI, QED, \
        LUKS, ISO, compressed files, ...) are named with the command that fixes them.",
    after_help = include_str!("../help/main.txt")
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output format for commands that report.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// For people: grouped, errors first, colour on a terminal.
    Human,
    /// The versioned JSON report (see docs/report-schema.md).
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Show what an image is: format, sizes, version, features (no integrity check).
    #[command(
        after_help = "Examples:\n  ecs-preflight info disk.qcow2\n  ecs-preflight info disk.vhd --output json"
    )]
    Info {
        /// The disk image.
        image: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
    },
    /// Check an image (and an ImportImage request) for everything that would make the import fail.
    #[command(after_help = include_str!("../help/check.txt"))]
    Check {
        /// The disk image: the system disk (DiskDeviceMapping.1).
        image: PathBuf,
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
        #[command(flatten)]
        quiet: shared_flags::QuietFlag,
        #[command(flatten)]
        import: request_args::RequestArgs,
    },
    /// List every check: its code, severity, what it checks and how to fix it.
    #[command(
        after_help = "Examples:\n  ecs-preflight rules\n  ecs-preflight rules --output json\n  ecs-preflight rules --markdown > docs/rules.md"
    )]
    Rules {
        /// Output format.
        #[arg(long, short = 'o', value_enum, default_value_t = OutputFormat::Human)]
        output: OutputFormat,
        /// Print the Markdown catalogue (docs/rules.md).
        #[arg(long, conflicts_with = "output")]
        markdown: bool,
    },
    /// Upload an image to OSS: cloud rules first, then a resumable, CRC-64-verified multipart upload.
    Upload(upload_cmd::UploadArgs),
    /// Import an image already in OSS into ECS: cloud rules, ImportImage, then wait for the image.
    Import(import_cmd::ImportCmdArgs),
    /// The whole flow: check, upload every disk, import, wait for the image (resumable).
    UploadAndImport(oneshot_cmd::OneShotArgs),
    /// Many images from one TOML manifest: check them all, or upload and import them all.
    Batch(batch_cmd::BatchArgs),
    /// Wait for an import task started earlier (e.g. with `import --detach`).
    Wait(import_cmd::WaitArgs),
    /// Run a local emulator of OSS, ECS and RAM (for trying the whole flow offline, and for tests).
    #[cfg(feature = "emulator")]
    Emulator(preflight_emulator::launch::Overrides),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  ecs-preflight completions bash > /etc/bash_completion.d/ecs-preflight\n  ecs-preflight completions zsh > ~/.zfunc/_ecs-preflight"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// Parses the command line. `--region`, where a command takes it, defaults to
/// `ALIBABA_CLOUD_REGION_ID` or the aliyun CLI profile's `region_id`.
fn parse_cli() -> Cli {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `--profile NAME` / `--profile=NAME`, for the profile whose region_id is the default.
    let profile = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        match a.strip_prefix("--profile") {
            Some("") => args.get(i + 1)?.to_str().map(str::to_string),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        }
    });
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let mut cmd = Cli::command();
    if let Some(region) = preflight_aliyun::cli_config::default_region(
        &|k| std::env::var(k).ok(),
        home.as_deref(),
        profile.as_deref(),
    ) {
        // Once per run: clap wants a 'static default without its "string" feature.
        let region: &'static str = Box::leak(region.into_boxed_str());
        for sub in ["check", "upload", "import", "wait", "upload-and-import"] {
            cmd = cmd.mut_subcommand(sub, |s| {
                s.mut_arg("region", |a| a.default_value(region).required(false))
            });
        }
    }
    let matches = cmd.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn main() -> ExitCode {
    // A panic the guest inspector catches is a finding; its backtrace would be noise.
    preflight_guest::quiet_caught_panics();
    let cli = parse_cli();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("ecs-preflight: error: {err:#}");
            ExitCode::from(EXIT_ENV)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Info { image, output } => {
            let report = preflight_pipeline::info(&image)?;
            render::print_info(&report, output)?;
            Ok(verdict_code(&report.findings))
        }
        Command::Check {
            image,
            output,
            quiet,
            import,
        } => {
            let params = import.to_params()?;
            let mut disks = vec![image];
            disks.extend(import.data_disk.iter().cloned());
            let report = preflight_pipeline::check(&disks, &params)?;
            // The verdict is the exit code; asked-for JSON is the result.
            if !quiet.on || output == OutputFormat::Json {
                render::print_check(&report, output)?;
            }
            Ok(if report.has_errors() {
                EXIT_FINDINGS
            } else {
                EXIT_OK
            })
        }
        Command::Rules { output, markdown } => {
            render::print_rules(output, markdown)?;
            Ok(EXIT_OK)
        }
        Command::Upload(args) => upload_cmd::run(args),
        Command::Import(args) => import_cmd::run(args),
        Command::Wait(args) => import_cmd::run_wait(args),
        Command::UploadAndImport(args) => oneshot_cmd::run(args),
        Command::Batch(args) => batch_cmd::run(args),
        #[cfg(feature = "emulator")]
        Command::Emulator(overrides) => {
            let config = overrides.config()?;
            let say = |line: &str| {
                println!("{line}");
                let _ = std::io::Write::flush(&mut std::io::stdout());
            };
            block_on(preflight_emulator::launch::serve(config, say))?
                .context("cannot start the emulator")?;
            Ok(EXIT_OK)
        }
        Command::Completions { shell } => {
            // Into a buffer first: clap_complete panics when its writer fails (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "ecs-preflight", &mut script);
            use std::io::Write;
            match std::io::stdout().lock().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(EXIT_OK),
            }
        }
    }
}

/// Runs `task` on a multi-threaded runtime. A task still blocking at the end (a map pass
/// stopped by Ctrl-C) is not waited for.
fn block_on<F: std::future::Future>(task: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let output = runtime.block_on(task);
    runtime.shutdown_background();
    Ok(output)
}

/// Ctrl-C, caught from now on: a signal that comes right after is not lost. Inside a runtime.
fn ctrl_c() -> anyhow::Result<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut sig = signal(SignalKind::interrupt()).context("cannot catch Ctrl-C")?;
        Ok(Box::pin(async move {
            sig.recv().await;
        }))
    }
    #[cfg(not(unix))]
    Ok(Box::pin(async {
        // Without a signal handler there is no Ctrl-C to honour: never stop.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }))
}

/// A library error that ends a command before it has a result: the credential chain is
/// shown in its own words.
fn fail(e: preflight_pipeline::PipelineError) -> anyhow::Error {
    match e {
        preflight_pipeline::PipelineError::Credentials(message) => anyhow::anyhow!(message),
        e => e.into(),
    }
}

fn verdict_code(findings: &[preflight_report::Finding]) -> u8 {
    if preflight_report::has_errors(findings) {
        EXIT_FINDINGS
    } else {
        EXIT_OK
    }
}
