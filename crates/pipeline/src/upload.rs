//! The `upload` use case ([`ImageUpload`]) and the rules it checks before it sends a byte:
//! the ones about where the bytes go (bucket and object names, the key's suffix), then the
//! bucket's cloud rules.

mod image;

pub use image::{AbortOutcome, AbortedUpload, ImageUpload, UnrecordedKey, UploadResult};

use std::path::Path;

use preflight_report::{Finding, Rule};
use preflight_rules::{
    disks, evaluate, evaluate_cloud, BucketFacts, CloudFacts, DiskFacts, DiskParams, DiskRole,
    ImportParams, Plan,
};

use crate::{check::inspect, PipelineError, Result};

/// The local rules about the upload's destination; the image itself is `check`'s business.
pub static DESTINATION_RULES: [&Rule; 3] = [
    &disks::OBJECT_SUFFIX,
    &disks::OBJECT_MALFORMED,
    &disks::BUCKET_MALFORMED,
];

/// What the pre-upload rules found.
#[derive(Debug, Clone)]
pub struct UploadCheck {
    /// The destination and bucket findings, in rule order.
    pub findings: Vec<Finding>,
    /// What the bucket probes found.
    pub bucket: BucketFacts,
    /// The ImportImage request these settings make (its one disk mapping names the key).
    pub plan: Plan,
}

/// The rules `upload` runs before sending `image` (detected as `format`) to `key` in the
/// client's bucket in `region`: [`DESTINATION_RULES`], a key suffix naming another format,
/// then the bucket's cloud rules (exists, in the region, unencrypted).
pub async fn upload_check(
    client: &preflight_oss::Client,
    image: &Path,
    region: &str,
    key: &str,
    format: &str,
) -> Result<UploadCheck> {
    let inspection = inspect(image, false)?;
    let disk = DiskFacts::new(
        image.display().to_string(),
        Some(&inspection.detected),
        inspection.info.as_ref().map(|i| i.virtual_size),
        DiskRole::System,
    );
    let params = ImportParams {
        region: Some(region.to_string()),
        bucket: Some(client.bucket().to_string()),
        disks: vec![DiskParams {
            object: Some(key.to_string()),
            ..DiskParams::default()
        }],
        ..ImportParams::default()
    };
    let evaluation = evaluate(&[disk], &params, None, Default::default());
    let mut findings: Vec<Finding> = evaluation
        .findings
        .into_iter()
        .map(|s| s.finding)
        .filter(|f| DESTINATION_RULES.iter().any(|r| r.code == f.code))
        .collect();
    findings.extend(suffix_mismatch(key, format));
    let probe = bucket_facts(client)
        .await
        .map_err(|source| PipelineError::Oss {
            context: "cannot read the bucket's facts".to_string(),
            source: Box::new(source),
        })?;
    let cloud = CloudFacts {
        buckets: vec![probe.facts.clone()],
        not_verified: probe.not_verified,
        ..CloudFacts::default()
    };
    findings.extend(
        evaluate_cloud(&evaluation.plan, &cloud)
            .into_iter()
            .map(|s| s.finding),
    );
    Ok(UploadCheck {
        findings,
        bucket: probe.facts,
        plan: evaluation.plan,
    })
}

/// A known suffix naming another format than the file's (`disk.raw` holding qcow2).
pub fn suffix_mismatch(key: &str, detected: &str) -> Option<Finding> {
    let ext = Path::new(key).extension()?.to_str()?.to_ascii_lowercase();
    let known = ["raw", "qcow2", "vhd", "vmdk"];
    (known.contains(&ext.as_str()) && known.contains(&detected) && ext != detected).then(|| {
        disks::OBJECT_SUFFIX.finding_with_hint(
            format!("object key {key:?} ends in .{ext} but the image is {detected}"),
            format!(
                "Name the object after its format: --object {}",
                Path::new(key).with_extension(detected).display()
            ),
        )
    })
}

/// What the bucket probes found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketProbe {
    /// The facts for the cloud rules.
    pub facts: BucketFacts,
    /// What could not be verified (a denied optional probe), one sentence each.
    pub not_verified: Vec<String>,
}

/// Exists, region, encryption and default storage class of `client`'s bucket, for the cloud
/// rules, asked with the client's own signature (V4 with its region, unless V1 was asked
/// for). A bucket of another region is answered by OSS with 403 and the `<Endpoint>` to use,
/// whatever the signature: that names the bucket's region. A missing bucket is a fact, not
/// an error; a denied GetBucketEncryption is a note (GetBucketInfo carries the encryption too).
pub async fn bucket_facts(
    client: &preflight_oss::Client,
) -> std::result::Result<BucketProbe, preflight_oss::Error> {
    let name = client.bucket().to_string();
    let facts = |exists, region| BucketFacts {
        name: name.clone(),
        exists,
        region,
        encrypted: None,
        storage_class: None,
    };
    let info = match client.get_bucket_info().await {
        Ok(info) => info,
        Err(e) if e.code() == Some("NoSuchBucket") => {
            return Ok(BucketProbe {
                facts: facts(false, None),
                not_verified: Vec::new(),
            })
        }
        Err(e) => match e.bucket_region() {
            // In another region: that is all the rules need (the import is refused).
            Some(region) => {
                return Ok(BucketProbe {
                    facts: facts(true, Some(region)),
                    not_verified: Vec::new(),
                })
            }
            None => return Err(e),
        },
    };
    let mut not_verified = Vec::new();
    // `get_bucket_encryption` already answers None when no rule is set.
    let rule = match client.get_bucket_encryption().await {
        Ok(rule) => rule.is_some(),
        Err(e) if e.kind() == preflight_oss::ErrorKind::AccessDenied => {
            not_verified.push(format!(
                "GetBucketEncryption on bucket {name:?} was denied ({}): its encryption is taken from GetBucketInfo alone",
                e.code().unwrap_or_default()
            ));
            false
        }
        Err(e) => return Err(e),
    };
    Ok(BucketProbe {
        facts: BucketFacts {
            encrypted: Some(rule || info.sse_algorithm.is_some()),
            storage_class: Some(info.storage_class).filter(|c| !c.is_empty()),
            ..facts(true, Some(info.region))
        },
        not_verified,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_rules() {
        assert!(suffix_mismatch("a.raw", "qcow2").is_some());
        assert!(suffix_mismatch("a.qcow2", "qcow2").is_none());
        assert!(suffix_mismatch("a.img", "raw").is_none());
    }
}
