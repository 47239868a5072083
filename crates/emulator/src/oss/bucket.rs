//! GetBucketInfo, GetBucketLocation, GetBucketEncryption (reference §4.10–4.12).

use crate::config::ACCOUNT_ID;
use crate::oss::api::{Ctx, OssResult};
use crate::oss::error::OssError;
use crate::oss::xml::XmlWriter;
use crate::util::Utc;

/// Creation date reported for every configured bucket (2024-01-01T00:00:00Z).
pub const BUCKET_CREATION: u64 = 1_704_067_200;

/// GetBucketInfo.
pub fn info(ctx: &mut Ctx) -> OssResult {
    let b = ctx.bucket()?.clone();
    let mut w = XmlWriter::new("BucketInfo");
    w.open("Bucket")
        .el("AccessMonitor", "Disabled")
        .el(
            "CreationDate",
            &Utc::from_unix(BUCKET_CREATION).iso8601_millis(),
        )
        .el(
            "ExtranetEndpoint",
            &format!("oss-{}.aliyuncs.com", b.region),
        )
        .el(
            "IntranetEndpoint",
            &format!("oss-{}-internal.aliyuncs.com", b.region),
        )
        .el("Location", &format!("oss-{}", b.region))
        .el("StorageClass", ctx.shared.config.storage_class.as_str())
        .el("DataRedundancyType", "LRS")
        .el("TransferAcceleration", "Disabled")
        .el("CrossRegionReplication", "Disabled")
        .el("Name", &b.name)
        .el("ResourceGroupId", "rg-acfmemulator")
        .open("Owner")
        .el("DisplayName", ACCOUNT_ID)
        .el("ID", ACCOUNT_ID)
        .close()
        .open("AccessControlList")
        .el("Grant", "private")
        .close()
        .open("ServerSideEncryptionRule");
    if b.encrypted {
        w.el("SSEAlgorithm", "KMS")
            .el("KMSMasterKeyID", "")
            .el("KMSDataEncryption", "SM4");
    } else {
        w.el("SSEAlgorithm", "None");
    }
    w.close()
        .open("BucketPolicy")
        .el("LogBucket", "")
        .el("LogPrefix", "")
        .close()
        .close();
    ctx.xml(200, w.finish())
}

/// GetBucketLocation.
pub fn location(ctx: &mut Ctx) -> OssResult {
    let region = ctx.bucket()?.region.clone();
    let mut w = XmlWriter::new("LocationConstraint");
    w.el_text(&format!("oss-{region}"));
    ctx.xml(200, w.finish())
}

/// GetBucketEncryption: the rule, or `404 NoSuchServerSideEncryptionRule`.
pub fn encryption(ctx: &mut Ctx) -> OssResult {
    let b = ctx.bucket()?.clone();
    if !b.encrypted {
        return Err(OssError::new(
            404,
            "NoSuchServerSideEncryptionRule",
            "",
            "The server side encryption configuration was not found.",
        )
        .with("BucketName", b.name)
        .into());
    }
    let mut w = XmlWriter::new("ServerSideEncryptionRule");
    w.open("ApplyServerSideEncryptionByDefault")
        .el("SSEAlgorithm", "KMS")
        .el("KMSDataEncryption", "SM4")
        .el("KMSMasterKeyID", "")
        .close();
    ctx.xml(200, w.finish())
}
