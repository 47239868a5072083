//! `--copy-to-region`, `--copy-name` and `--share-with-account` of `import` and
//! `upload-and-import` (their progress is [`crate::progress`]'s). The work is the pipeline library's
//! [`preflight_pipeline::fleet`].

use preflight_pipeline::fleet::FleetPlan;

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
