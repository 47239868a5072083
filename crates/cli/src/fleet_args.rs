//! `--copy-to-region`, `--copy-name` and `--share-with-account` of `import` and
//! `upload-and-import`, and how their result is shown. The work is the pipeline library's
//! [`preflight_pipeline::fleet`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use preflight_pipeline::fleet::{FleetEvent, FleetPlan};

/// The copy and share flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FleetArgs {
    /// After the image is Available, copy it to REGION (CopyImage; repeatable). The copies
    /// keep the image's tags and are waited for in parallel. Ctrl-C while copying cancels
    /// the copies not yet Available (CancelCopyImage), unless --detach leaves them going on;
    /// either way it exits 130 and a rerun copies and shares.
    #[arg(
        help_heading = "Copy and share",
        long = "copy-to-region",
        value_name = "REGION"
    )]
    pub copy_to_region: Vec<String>,
    /// Name of the copy to the --copy-to-region in the same position (repeatable, as Packer's
    /// image_copy_names); one name alone names every copy [default: the image's name].
    #[arg(
        help_heading = "Copy and share",
        long = "copy-name",
        value_name = "NAME"
    )]
    pub copy_name: Vec<String>,
    /// Share the image and every copy with this Alibaba Cloud account id (16 digits;
    /// ModifyImageSharePermission; repeatable).
    #[arg(
        help_heading = "Copy and share",
        long = "share-with-account",
        value_name = "UID"
    )]
    pub share_with_account: Vec<String>,
}

impl FleetArgs {
    /// The plan these flags ask for.
    pub fn plan(&self) -> FleetPlan {
        FleetPlan {
            copy_regions: self.copy_to_region.clone(),
            copy_names: self.copy_name.clone(),
            share_accounts: self.share_with_account.clone(),
        }
    }
}

/// One progress line per copy (a bar when drawing to a terminal in human mode, else a line
/// per change unless quiet).
pub struct FleetProgress {
    talk: bool,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl FleetProgress {
    /// `talk`: print anything at all; `bars`: draw bars (human output on stderr).
    pub fn new(talk: bool, bars: bool) -> Arc<Self> {
        use std::io::IsTerminal as _;
        // A pipe gets lines, not bars that would never be drawn.
        let bars = bars && std::io::stderr().is_terminal();
        let target = if bars {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Arc::new(FleetProgress {
            talk: talk && !bars,
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        })
    }

    fn bar(&self, region: &str) -> ProgressBar {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        bars.entry(region.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(100));
                b.set_style(
                    ProgressStyle::with_template("   copy {prefix:16} {bar:30} {pos:>3}% {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                b.set_prefix(region.to_string());
                b
            })
            .clone()
    }

    /// Shows one event.
    pub fn event(&self, e: &FleetEvent) {
        let say = |m: String| {
            if self.talk {
                eprintln!("{m}");
            }
        };
        match e {
            FleetEvent::CopyStarted {
                region,
                image_id,
                reused,
            } => {
                let how = if *reused {
                    " (made by an earlier run)"
                } else {
                    ""
                };
                say(format!("   copy to {region}: image {image_id}{how}"));
                self.bar(region).set_message(image_id.clone());
            }
            FleetEvent::CopyProgress {
                region,
                image_id,
                status,
                progress,
            } => {
                say(format!("   copy {region} {image_id}: {status} {progress}"));
                let pct = progress.trim_end_matches('%').parse::<u64>().unwrap_or(0);
                let b = self.bar(region);
                b.set_position(pct.min(100));
                b.set_message(format!("{image_id} {status}"));
            }
            FleetEvent::CopyAvailable { region, image_id } => {
                let b = self.bar(region);
                b.set_position(100);
                b.finish_with_message(format!("{image_id} Available"));
                say(format!("   copy {region} {image_id}: Available"));
            }
            FleetEvent::CopyCancelled { region, image_id } => {
                self.bar(region)
                    .abandon_with_message(format!("{image_id} cancelled"));
                say(format!(
                    "   copy {region} {image_id}: cancelled (CancelCopyImage)"
                ));
            }
            FleetEvent::Shared {
                region,
                image_id,
                added,
            } => {
                if added.is_empty() {
                    say(format!("   {image_id} ({region}): already shared"));
                } else {
                    say(format!(
                        "   {image_id} ({region}): shared with {}",
                        added.join(", ")
                    ));
                }
            }
        }
    }
}
