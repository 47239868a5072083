//! The ImportImage parameters `check` takes: the API's parameter names in
//! kebab-case. Values are not validated here: the rules crate checks each
//! one and reports the API error code it would cause. Only the tool's own
//! options (`--size-limits`, `--disk-role`, the `--tag` syntax) are parsed.

use anyhow::{bail, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use preflight_rules::{DiskParams, DiskRole, ImportParams, SizeLimits};
use std::path::PathBuf;

/// ImportImage parameters, checked before any byte is uploaded.
#[derive(clap::Args, Debug, Clone, Default)]
#[command(next_help_heading = "ImportImage parameters")]
pub struct RequestArgs {
    /// RegionId: the region to import into, e.g. cn-hangzhou. The OSS bucket
    /// must be in the same region.
    #[arg(long, value_name = "REGION_ID")]
    pub region: Option<String>,

    /// OSSBucket: the bucket the images are uploaded to (name only, no
    /// oss:// prefix).
    #[arg(long, value_name = "BUCKET")]
    pub bucket: Option<String>,

    /// OSSObject: the object key of the system disk image [default: the
    /// image's file name]. Data disks use their file names (with `import`,
    /// the keys given to --data-disk, whole).
    #[arg(long, value_name = "KEY")]
    pub object: Option<String>,

    /// ImageName: 2–128 characters, starting with a letter or a Chinese
    /// character; letters, digits, '.', ':', '_', '-'.
    #[arg(long, value_name = "NAME")]
    pub image_name: Option<String>,

    /// Description: 2–256 characters, not starting with http:// or https://.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Architecture: i386, x86_64 or arm64 [API default: x86_64].
    #[arg(long, value_name = "ARCH")]
    pub architecture: Option<String>,

    /// OSType: linux or windows [API default: linux].
    #[arg(long, value_name = "OS_TYPE")]
    pub os_type: Option<String>,

    /// Platform: the distribution, e.g. Ubuntu, "Rocky Linux", "Windows
    /// Server 2022" [API default: "Others Linux"].
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,

    /// BootMode: BIOS or UEFI (arm64: UEFI only) [API default: BIOS, UEFI on
    /// arm64].
    #[arg(long, value_name = "MODE")]
    pub boot_mode: Option<String>,

    /// LicenseType: Auto, Aliyun or BYOL (Windows images).
    #[arg(long, value_name = "TYPE")]
    pub license_type: Option<String>,

    /// Tag.N: an image tag, KEY=VALUE (VALUE may be empty). Repeatable, at
    /// most 20.
    #[arg(long, value_name = "KEY=VALUE")]
    pub tag: Vec<String>,

    /// ResourceGroupId: the resource group of the imported image.
    #[arg(long, value_name = "ID")]
    pub resource_group_id: Option<String>,

    /// Format of the system disk image: RAW, VHD, QCOW2 or VMDK [default:
    /// detected]. ECS uses the detected format; a different one is a warning.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// DiskImageSize of the system disk, in GiB [default: the virtual size
    /// rounded up, raised to the minimum].
    #[arg(long, value_name = "GIB")]
    pub disk_image_size: Option<u64>,

    /// What the first image is meant to be. ImportImage always takes the
    /// first disk as the system disk: `data` is warned about, and the
    /// system-disk size limits still apply.
    #[arg(
        long,
        value_name = "ROLE",
        value_parser = PossibleValuesParser::new(["system", "data"])
            .try_map(|s| s.parse::<DiskRole>()),
    )]
    pub disk_role: Option<DiskRole>,

    /// A data disk image, imported with the system disk (the first image);
    /// with `import`, its object key in the bucket. Repeatable, at most 16.
    #[arg(long, value_name = "IMAGE")]
    pub data_disk: Vec<PathBuf>,

    /// DetectionStrategy: Standard runs the cloud-side image check after the
    /// import (most Linux and Windows versions).
    #[arg(long, value_name = "STRATEGY")]
    pub detection_strategy: Option<String>,

    /// Features.NvmeSupport: supported or unsupported [default: detected in
    /// the guest].
    #[arg(long, value_name = "SUPPORT")]
    pub nvme_support: Option<String>,

    /// Features.ImdsSupport: v1 or v2 [API default: v1].
    #[arg(long, value_name = "VERSION")]
    pub imds_support: Option<String>,

    /// ClientToken: makes the import idempotent; ASCII, at most 64
    /// characters.
    #[arg(long, value_name = "TOKEN")]
    pub client_token: Option<String>,

    /// RoleName: the RAM role ECS assumes to read the bucket [API default:
    /// AliyunECSImageImportDefaultRole].
    #[arg(long, value_name = "ROLE")]
    pub role_name: Option<String>,

    /// StorageLocationArn: only for OSS on CloudBox,
    /// arn:acs:cloudbox:{RegionId}:{AliUid}:cloudbox/{CloudBoxId}.
    #[arg(long, value_name = "ARN")]
    pub storage_location_arn: Option<String>,

    /// DiskImageSize limits: classic (system 5–500 GiB, data 5–1000 GiB) or
    /// 2026 (the Jun-2026 API page: 1–2048 GiB for both).
    #[arg(
        long,
        value_name = "PROFILE",
        default_value = "classic",
        value_parser = PossibleValuesParser::new(["classic", "2026"])
            .try_map(|s| s.parse::<SizeLimits>()),
    )]
    pub size_limits: SizeLimits,

    /// Do not inspect the guest OS (partitions, boot mode, drivers).
    #[arg(long)]
    pub skip_guest: bool,
}

impl RequestArgs {
    /// The parameters for the rules crate. `disks[0]` (the system disk)
    /// takes `--object`, `--format` and `--disk-image-size`; each
    /// `--data-disk` gets the defaults. Fails only on a `--tag` without `=`.
    pub fn to_params(&self) -> Result<ImportParams> {
        let tags = self
            .tag
            .iter()
            .map(|t| match t.split_once('=') {
                Some((key, value)) => Ok((key.to_string(), value.to_string())),
                None => bail!("--tag {t:?} is not KEY=VALUE (write {t}= for an empty value)"),
            })
            .collect::<Result<Vec<_>>>()?;
        let mut disks = Vec::with_capacity(1 + self.data_disk.len());
        disks.push(DiskParams {
            bucket: None,
            object: self.object.clone(),
            format: self.format.clone(),
            disk_image_size: self.disk_image_size,
        });
        disks.extend(self.data_disk.iter().map(|_| DiskParams::default()));
        Ok(ImportParams {
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            image_name: self.image_name.clone(),
            description: self.description.clone(),
            architecture: self.architecture.clone(),
            os_type: self.os_type.clone(),
            platform: self.platform.clone(),
            boot_mode: self.boot_mode.clone(),
            license_type: self.license_type.clone(),
            tags,
            resource_group_id: self.resource_group_id.clone(),
            disk_role: self.disk_role,
            disks,
            detection_strategy: self.detection_strategy.clone(),
            nvme_support: self.nvme_support.clone(),
            imds_support: self.imds_support.clone(),
            client_token: self.client_token.clone(),
            role_name: self.role_name.clone(),
            storage_location_arn: self.storage_location_arn.clone(),
            size_limits: self.size_limits,
            skip_guest: self.skip_guest,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        import: RequestArgs,
    }

    fn parse(args: &[&str]) -> Result<ImportParams> {
        let cli = Cli::try_parse_from(std::iter::once("check").chain(args.iter().copied()))?;
        cli.import.to_params()
    }

    #[test]
    fn every_flag_reaches_the_params() {
        let p = parse(&[
            "--region",
            "cn-hangzhou",
            "--bucket",
            "b-1",
            "--object",
            "o.qcow2",
            "--image-name",
            "web",
            "--description",
            "a web image",
            "--architecture",
            "x86_64",
            "--os-type",
            "linux",
            "--platform",
            "Rocky Linux",
            "--boot-mode",
            "UEFI",
            "--license-type",
            "Auto",
            "--tag",
            "env=prod",
            "--tag",
            "empty=",
            "--tag",
            "k=a=b",
            "--resource-group-id",
            "rg-1",
            "--format",
            "QCOW2",
            "--disk-image-size",
            "40",
            "--disk-role",
            "system",
            "--data-disk",
            "d1.qcow2",
            "--data-disk",
            "d2.raw",
            "--detection-strategy",
            "Standard",
            "--nvme-support",
            "supported",
            "--imds-support",
            "v2",
            "--client-token",
            "tok",
            "--role-name",
            "R",
            "--storage-location-arn",
            "arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1",
            "--size-limits",
            "2026",
            "--skip-guest",
        ])
        .unwrap();
        assert_eq!(p.region.as_deref(), Some("cn-hangzhou"));
        assert_eq!(p.platform.as_deref(), Some("Rocky Linux"));
        assert_eq!(
            p.tags,
            [("env", "prod"), ("empty", ""), ("k", "a=b")]
                .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(p.disks.len(), 3);
        assert_eq!(p.disks[0].object.as_deref(), Some("o.qcow2"));
        assert_eq!(p.disks[0].format.as_deref(), Some("QCOW2"));
        assert_eq!(p.disks[0].disk_image_size, Some(40));
        assert_eq!(p.disks[1], DiskParams::default());
        assert_eq!(p.disk_role, Some(DiskRole::System));
        assert_eq!(p.size_limits, SizeLimits::Y2026);
        assert!(p.skip_guest);
        assert_eq!(
            p.storage_location_arn.as_deref(),
            Some("arn:acs:cloudbox:cn-hangzhou:1:cloudbox/cb-1")
        );
    }

    #[test]
    fn defaults() {
        let p = parse(&[]).unwrap();
        assert_eq!(p.size_limits, SizeLimits::Classic);
        assert_eq!(p.disk_role, None);
        assert_eq!(p.disks, vec![DiskParams::default()]);
        assert!(p.tags.is_empty() && !p.skip_guest);
    }

    #[test]
    fn bad_tool_options_are_refused() {
        assert!(parse(&["--tag", "novalue"]).is_err());
        assert!(parse(&["--size-limits", "2020"]).is_err());
        assert!(parse(&["--disk-role", "boot"]).is_err());
        assert!(parse(&["--disk-image-size", "ten"]).is_err());
        // API values are not refused here: the rules report them with their codes.
        assert!(parse(&["--architecture", "amd64"]).is_ok());
    }
}
