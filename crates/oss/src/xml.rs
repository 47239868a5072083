//! XML bodies of the OSS APIs the uploader uses. OSS XML has no namespace. Keys come back
//! URL-encoded when the request said `encoding-type=url` (always, here), and are decoded.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::error::{Error, Result};

pub(crate) fn parse<'de, T: Deserialize<'de>>(op: &'static str, text: &'de str) -> Result<T> {
    quick_xml::de::from_str(text).map_err(|e| Error::Response {
        op,
        message: format!("bad XML: {e}"),
    })
}

/// Decodes a key sent with `encoding-type=url`.
pub(crate) fn url_decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// `<Error>` body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ErrorBody {
    /// Error code.
    pub code: String,
    /// Message.
    pub message: String,
    /// Request id.
    pub request_id: String,
    /// Error-center code.
    #[serde(rename = "EC")]
    pub ec: String,
    /// The endpoint the bucket must be addressed at, in the answer OSS gives a request for a
    /// bucket of another region (`oss-cn-beijing.aliyuncs.com`).
    pub endpoint: String,
}

/// `InitiateMultipartUploadResult`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InitiateResult {
    /// The upload id.
    pub upload_id: String,
}

/// One part in `ListPartsResult`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Part {
    /// Part number.
    pub part_number: u32,
    /// ETag, with its quotes.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-64 of the part, when the server reports it (newer responses do).
    #[serde(default)]
    pub hash_crc64ecma: Option<u64>,
}

/// `ListPartsResult` (one page).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListPartsPage {
    /// Marker for the next page.
    #[serde(default)]
    pub next_part_number_marker: Option<u32>,
    /// Whether more pages follow.
    #[serde(default)]
    pub is_truncated: bool,
    /// The parts.
    #[serde(rename = "Part", default)]
    pub parts: Vec<Part>,
}

/// One upload in `ListMultipartUploadsResult`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Upload {
    /// Object key (decoded by [`crate::Client::list_multipart_uploads`]).
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// When it was initiated (ISO 8601).
    #[serde(default)]
    pub initiated: String,
}

/// `ListMultipartUploadsResult` (one page).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListUploadsPage {
    /// Whether more pages follow.
    #[serde(default)]
    pub is_truncated: bool,
    /// Key marker for the next page.
    #[serde(default)]
    pub next_key_marker: Option<String>,
    /// Upload-id marker for the next page.
    #[serde(default)]
    pub next_upload_id_marker: Option<String>,
    /// The uploads.
    #[serde(rename = "Upload", default)]
    pub uploads: Vec<Upload>,
}

/// `CompleteMultipartUploadResult`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CompleteResult {
    /// The object's ETag.
    #[serde(rename = "ETag", default)]
    pub etag: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct BucketInfoDoc {
    pub bucket: BucketInfoXml,
}

/// `BucketInfo/Bucket`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BucketInfoXml {
    /// Name.
    pub name: String,
    /// `oss-<region>`.
    pub location: String,
    /// Public endpoint.
    pub extranet_endpoint: String,
    /// Internal endpoint.
    pub intranet_endpoint: String,
    /// Default storage class of new objects (`Standard`, `IA`, `Archive`, …).
    pub storage_class: String,
    /// Default encryption.
    pub server_side_encryption_rule: Option<SseRuleXml>,
}

/// `ServerSideEncryptionRule` inside BucketInfo.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SseRuleXml {
    /// `AES256`, `KMS`, `SM4`, or `None`/absent.
    #[serde(rename = "SSEAlgorithm")]
    pub sse_algorithm: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LocationDoc {
    #[serde(rename = "$text", default)]
    pub value: String,
}

#[derive(Debug, Deserialize)]
pub(crate) struct EncryptionDoc {
    #[serde(rename = "ApplyServerSideEncryptionByDefault", default)]
    pub default: Option<SseRuleXml>,
}

/// Escapes text for an XML element.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The CompleteMultipartUpload body, parts in ascending order.
pub(crate) fn complete_body(parts: &[(u32, String)]) -> String {
    let mut s = String::from("<CompleteMultipartUpload>");
    for (n, etag) in parts {
        s.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>{}</ETag></Part>",
            escape(etag)
        ));
    }
    s.push_str("</CompleteMultipartUpload>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parts_shapes() {
        let p: ListPartsPage = parse("ListParts", r#"<?xml version="1.0" encoding="UTF-8"?>
<ListPartsResult><Bucket>b</Bucket><Key>o</Key><UploadId>U</UploadId><NextPartNumberMarker>5</NextPartNumberMarker>
<MaxParts>1000</MaxParts><IsTruncated>true</IsTruncated>
<Part><PartNumber>1</PartNumber><LastModified>2012-02-23T07:01:34.000Z</LastModified><ETag>"3349DC70"</ETag><Size>6291456</Size></Part>
<Part><PartNumber>5</PartNumber><ETag>"7265F4D2"</ETag><Size>1024</Size><HashCrc64ecma>123</HashCrc64ecma></Part>
</ListPartsResult>"#).unwrap();
        assert!(p.is_truncated);
        assert_eq!(p.next_part_number_marker, Some(5));
        assert_eq!(p.parts.len(), 2);
        assert_eq!(p.parts[0].hash_crc64ecma, None);
        assert_eq!(p.parts[1].hash_crc64ecma, Some(123));
        assert_eq!(p.parts[0].etag, "\"3349DC70\"");
        let empty: ListPartsPage = parse(
            "ListParts",
            "<ListPartsResult><IsTruncated>false</IsTruncated></ListPartsResult>",
        )
        .unwrap();
        assert!(empty.parts.is_empty());
    }

    #[test]
    fn bucket_docs() {
        let b: BucketInfoDoc = parse("GetBucketInfo", "<BucketInfo><Bucket><Location>oss-cn-hangzhou</Location><Name>x</Name><ServerSideEncryptionRule><SSEAlgorithm>KMS</SSEAlgorithm></ServerSideEncryptionRule></Bucket></BucketInfo>").unwrap();
        assert_eq!(b.bucket.location, "oss-cn-hangzhou");
        assert_eq!(
            b.bucket
                .server_side_encryption_rule
                .unwrap()
                .sse_algorithm
                .as_deref(),
            Some("KMS")
        );
        let l: LocationDoc = parse(
            "GetBucketLocation",
            "<?xml version=\"1.0\"?><LocationConstraint>oss-cn-beijing</LocationConstraint>",
        )
        .unwrap();
        assert_eq!(l.value, "oss-cn-beijing");
        let e: EncryptionDoc = parse("GetBucketEncryption", "<ServerSideEncryptionRule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></ServerSideEncryptionRule>").unwrap();
        assert_eq!(e.default.unwrap().sse_algorithm.as_deref(), Some("AES256"));
        let err: ErrorBody = parse("x", "<Error><Code>NoSuchBucket</Code><Message>m</Message><RequestId>r</RequestId><EC>0015-00000101</EC></Error>").unwrap();
        let moved: ErrorBody = parse("x", "<Error><Code>AccessDenied</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Bucket>b</Bucket><Endpoint>oss-cn-beijing.aliyuncs.com</Endpoint></Error>").unwrap();
        assert_eq!(moved.endpoint, "oss-cn-beijing.aliyuncs.com");
        assert_eq!(
            (err.code.as_str(), err.ec.as_str()),
            ("NoSuchBucket", "0015-00000101")
        );
        assert_eq!(
            complete_body(&[(1, "\"AB\"".into())]),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;AB&quot;</ETag></Part></CompleteMultipartUpload>"
        );
    }
}
