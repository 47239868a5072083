//! `--copy-to-region`, `--copy-name` and `--share-with-account` of `import` and
//! `upload-and-import` (their progress is [`crate::progress`]'s). The work is the pipeline library's
//! [`preflight_pipeline::fleet`].

use preflight_pipeline::fleet::FleetPlan;

/// The copy and share flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FleetArgs {
    /// After the image is Available, copy it to REGION (CopyImage; repeatable). The copies
    /// keep the image's tags and are waited for in parallel.
    #[arg(
        help_heading = "Copy and share",
        long = "copy-to-region",
        value_name = "REGION"
    )]
    pub copy_to_region: Vec<String>,
    /// Name of every copy (one name for all: names are unique per region)
    /// [default: the image's name].
    #[arg(
        help_heading = "Copy and share",
        long = "copy-name",
        value_name = "NAME"
    )]
    pub copy_name: Option<String>,
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
            copy_name: self.copy_name.clone(),
            share_accounts: self.share_with_account.clone(),
        }
    }
}
