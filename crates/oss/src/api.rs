//! One function per OSS API, as methods of [`Client`].

use bytes::Bytes;
use http::Method;
use std::path::Path;
use tokio::io::AsyncReadExt;

use std::sync::atomic::{AtomicU32, Ordering};

use preflight_aliyun::retry::Verdict;

use crate::client::{network, Body, Client, Op};
use crate::error::{Error, Result};
use crate::upload::PART_INTEGRITY_RETRIES;
use crate::xml::{self, Part, Upload};

/// Chunk size when streaming a file body.
const STREAM_CHUNK: usize = 1 << 20;
/// Page size of ListParts / ListMultipartUploads (the API's maximum).
const PAGE: u32 = 1000;

/// Result of PutObject / UploadPart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    /// ETag with quotes.
    pub etag: String,
    /// `x-oss-hash-crc64ecma`, if sent.
    pub crc64: Option<u64>,
}

/// Result of HeadObject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size in bytes.
    pub size: u64,
    /// ETag with quotes.
    pub etag: String,
    /// Whole-object CRC-64.
    pub crc64: Option<u64>,
    /// Storage class.
    pub storage_class: Option<String>,
    /// `x-oss-server-side-encryption`.
    pub encryption: Option<String>,
    /// `x-oss-restore`: the state of a RestoreObject on an Archive or Cold
    /// Archive object, e.g. `ongoing-request="false", expiry-date="…"`.
    pub restore: Option<String>,
}

impl ObjectMeta {
    /// For a cold object: whether a restored copy is readable now
    /// (`x-oss-restore: ongoing-request="false"`); `Some(false)` while the
    /// restore runs or when none was asked for; `None` for other classes.
    pub fn restored(&self) -> Option<bool> {
        let cold = matches!(
            self.storage_class.as_deref(),
            Some("Archive" | "ColdArchive" | "DeepColdArchive")
        );
        if !cold {
            return None;
        }
        Some(self.restore.as_deref().is_some_and(restore_done))
    }
}

/// Whether an `x-oss-restore` header value says the restore is done.
fn restore_done(value: &str) -> bool {
    value.split(',').any(|part| {
        part.trim()
            .strip_prefix("ongoing-request=")
            .is_some_and(|v| v.trim_matches('"') == "false")
    })
}

/// What GetBucketInfo says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Region id (`oss-` prefix removed).
    pub region: String,
    /// Default encryption algorithm, if any.
    pub sse_algorithm: Option<String>,
    /// Public endpoint host.
    pub extranet_endpoint: String,
    /// Internal endpoint host.
    pub intranet_endpoint: String,
    /// Default storage class of new objects (`Standard`, `Archive`, …); empty if not told.
    pub storage_class: String,
}

/// The storage class every object this client writes is given (`x-oss-storage-class`):
/// ImportImage cannot read an Archive object, and a bucket's default class may be Archive.
pub const STORAGE_CLASS: &str = "Standard";

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn crc_header(resp: &reqwest::Response) -> Option<u64> {
    header(resp, "x-oss-hash-crc64ecma").and_then(|v| v.trim().parse().ok())
}

fn sse(alg: Option<String>) -> Option<String> {
    alg.filter(|a| !a.is_empty() && a != "None")
}

/// The first `len` bytes of a file, as a stream of chunks.
pub(crate) async fn file_stream(
    path: &Path,
    len: u64,
) -> Result<impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::io(path, e))?;
    let stream = futures_util::stream::try_unfold((file, len), |(mut f, left)| async move {
        if left == 0 {
            return Ok(None);
        }
        let n = usize::try_from(left)
            .unwrap_or(STREAM_CHUNK)
            .min(STREAM_CHUNK);
        let mut buf = vec![0u8; n];
        f.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(Some((Bytes::from(buf), (f, left - n as u64))))
    });
    Ok(stream)
}

impl Client {
    /// PutObject from memory. `content_md5` is base64 of the MD5 (sent as `Content-MD5`).
    pub async fn put_object(&self, key: &str, data: Bytes, content_md5: &str) -> Result<PutResult> {
        let op = Op::new("PutObject", Method::PUT, Some(key))
            .header("content-type", "application/octet-stream")
            .header("content-md5", content_md5)
            .header("x-oss-storage-class", STORAGE_CLASS)
            .body(Body::Bytes(data));
        let r = self.send(&op).await?;
        Ok(PutResult {
            etag: header(&r, "etag").unwrap_or_default(),
            crc64: crc_header(&r),
        })
    }

    /// PutObject streaming the first `len` bytes of a file (read again on each retry).
    pub async fn put_object_file(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        content_md5: &str,
    ) -> Result<PutResult> {
        let op = Op::new("PutObject", Method::PUT, Some(key))
            .header("content-type", "application/octet-stream")
            .header("content-md5", content_md5)
            .header("x-oss-storage-class", STORAGE_CLASS)
            .body(Body::File {
                path: path.to_path_buf(),
                len,
            });
        let r = self.send(&op).await?;
        Ok(PutResult {
            etag: header(&r, "etag").unwrap_or_default(),
            crc64: crc_header(&r),
        })
    }

    /// PutObject of `body`, verified: OSS's `x-oss-hash-crc64ecma` must equal the CRC-64 of
    /// what was sent, `local_crc()` once the answer is in (`None`: the body was not read to
    /// its end), else the object is sent again by the client's one retry loop (at most
    /// [`crate::upload::PART_INTEGRITY_RETRIES`] mismatching sends). `content_md5` (base64)
    /// is sent only when given: the CRC-64 check is what proves the bytes.
    pub(crate) async fn put_object_verified(
        &self,
        key: &str,
        body: Body,
        content_md5: Option<&str>,
        local_crc: impl Fn() -> Option<u64>,
    ) -> Result<PutResult> {
        let mut op = Op::new("PutObject", Method::PUT, Some(key))
            .header("content-type", "application/octet-stream")
            .header("x-oss-storage-class", STORAGE_CLASS)
            .body(body);
        if let Some(md5) = content_md5 {
            op = op.header("content-md5", md5);
        }
        self.send_verified(&op, local_crc, || format!("object {key:?}"))
            .await
    }

    /// UploadPart of `data`, verified against `crc` like [`Self::put_object_verified`].
    pub(crate) async fn upload_part_verified(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
        content_md5: Option<&str>,
        crc: u64,
    ) -> Result<PutResult> {
        let mut op = Op::new("UploadPart", Method::PUT, Some(key))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .header("content-type", "application/octet-stream")
            .body(Body::Bytes(data));
        if let Some(md5) = content_md5 {
            op = op.header("content-md5", md5);
        }
        self.send_verified(&op, || Some(crc), || format!("part {number} of {key:?}"))
            .await
    }

    /// Sends a write whose answer must carry the CRC-64 `local_crc()` gives for what was
    /// sent. A mismatch is judged inside the client's retry loop (not by a loop around it),
    /// so transport retries and integrity re-sends share one attempt budget.
    async fn send_verified(
        &self,
        op: &Op<'_>,
        local_crc: impl Fn() -> Option<u64>,
        what: impl Fn() -> String,
    ) -> Result<PutResult> {
        let mismatches = AtomicU32::new(0);
        let what = &what;
        let local_crc = &local_crc;
        self.retrying(
            op,
            |r| async move {
                let got = PutResult {
                    etag: header(&r, "etag").unwrap_or_default(),
                    crc64: crc_header(&r),
                };
                let Some(crc) = local_crc() else {
                    // An answer before the whole body went: not a write of these bytes.
                    return Err(Error::Network {
                        op: op.name,
                        message: "answered before the whole body was sent".into(),
                    });
                };
                match got.crc64 {
                    Some(c) if c == crc => Ok(got),
                    Some(c) => Err(Error::ChecksumMismatch {
                        what: what(),
                        local: crc,
                        server: c,
                    }),
                    None => Err(Error::MissingChecksum { what: what() }),
                }
            },
            |e| match e {
                // Changed on the way (or a server fault): sending again overwrites it.
                Error::ChecksumMismatch { .. } => {
                    let n = mismatches.fetch_add(1, Ordering::Relaxed) + 1;
                    if n < PART_INTEGRITY_RETRIES {
                        Verdict::RETRY
                    } else {
                        Verdict::Fatal
                    }
                }
                e => e.verdict(),
            },
        )
        .await
    }

    /// HeadObject.
    pub async fn head_object(&self, key: &str) -> Result<ObjectMeta> {
        let r = self
            .send(&Op::new("HeadObject", Method::HEAD, Some(key)))
            .await?;
        Ok(ObjectMeta {
            size: header(&r, "content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            etag: header(&r, "etag").unwrap_or_default(),
            crc64: crc_header(&r),
            storage_class: header(&r, "x-oss-storage-class"),
            encryption: header(&r, "x-oss-server-side-encryption"),
            restore: header(&r, "x-oss-restore"),
        })
    }

    /// GetObject into memory (tests and small objects).
    pub async fn get_object(&self, key: &str) -> Result<Bytes> {
        let r = self
            .send(&Op::new("GetObject", Method::GET, Some(key)))
            .await?;
        r.bytes().await.map_err(|e| network("GetObject", &e))
    }

    /// DeleteObject.
    pub async fn delete_object(&self, key: &str) -> Result<()> {
        self.send(&Op::new("DeleteObject", Method::DELETE, Some(key)))
            .await?;
        Ok(())
    }

    /// GetBucketInfo.
    pub async fn get_bucket_info(&self) -> Result<BucketInfo> {
        let (_, body) = self
            .send_text(&Op::new("GetBucketInfo", Method::GET, None).query("bucketInfo", ""))
            .await?;
        let doc: xml::BucketInfoDoc = xml::parse("GetBucketInfo", &body)?;
        let b = doc.bucket;
        Ok(BucketInfo {
            region: b
                .location
                .strip_prefix("oss-")
                .unwrap_or(&b.location)
                .to_string(),
            name: b.name,
            sse_algorithm: sse(b.server_side_encryption_rule.and_then(|r| r.sse_algorithm)),
            extranet_endpoint: b.extranet_endpoint,
            intranet_endpoint: b.intranet_endpoint,
            storage_class: b.storage_class,
        })
    }

    /// GetBucketLocation: the region id (`oss-` prefix removed).
    pub async fn get_bucket_location(&self) -> Result<String> {
        let (_, body) = self
            .send_text(&Op::new("GetBucketLocation", Method::GET, None).query("location", ""))
            .await?;
        let doc: xml::LocationDoc = xml::parse("GetBucketLocation", &body)?;
        let v = doc.value.trim();
        Ok(v.strip_prefix("oss-").unwrap_or(v).to_string())
    }

    /// GetBucketEncryption: the default algorithm, or `None` when no rule is set
    /// (`NoSuchServerSideEncryptionRule`).
    pub async fn get_bucket_encryption(&self) -> Result<Option<String>> {
        match self
            .send_text(&Op::new("GetBucketEncryption", Method::GET, None).query("encryption", ""))
            .await
        {
            Ok((_, body)) => {
                let doc: xml::EncryptionDoc = xml::parse("GetBucketEncryption", &body)?;
                Ok(sse(doc.default.and_then(|d| d.sse_algorithm)))
            }
            Err(e) if e.code() == Some("NoSuchServerSideEncryptionRule") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// InitiateMultipartUpload: the upload id.
    pub async fn initiate_multipart_upload(&self, key: &str) -> Result<String> {
        let op = Op::new("InitiateMultipartUpload", Method::POST, Some(key))
            .query("uploads", "")
            .query("encoding-type", "url")
            .header("content-type", "application/octet-stream")
            .header("x-oss-storage-class", STORAGE_CLASS);
        let (_, body) = self.send_text(&op).await?;
        let doc: xml::InitiateResult = xml::parse("InitiateMultipartUpload", &body)?;
        Ok(doc.upload_id)
    }

    /// UploadPart with `Content-MD5`.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        data: Bytes,
        content_md5: &str,
    ) -> Result<PutResult> {
        let op = Op::new("UploadPart", Method::PUT, Some(key))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .header("content-type", "application/octet-stream")
            .header("content-md5", content_md5)
            .body(Body::Bytes(data));
        let r = self.send(&op).await?;
        Ok(PutResult {
            etag: header(&r, "etag").unwrap_or_default(),
            crc64: crc_header(&r),
        })
    }

    /// CompleteMultipartUpload with `(part number, ETag)` pairs (sorted here).
    pub async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<PutResult> {
        let mut parts = parts.to_vec();
        parts.sort_by_key(|p| p.0);
        let body = xml::complete_body(&parts);
        let md5 = crate::upload::md5_base64(body.as_bytes());
        let op = Op::new("CompleteMultipartUpload", Method::POST, Some(key))
            .query("uploadId", upload_id)
            .query("encoding-type", "url")
            .header("content-type", "application/xml")
            .header("content-md5", &md5)
            .body(Body::Bytes(Bytes::from(body)));
        // A retried Complete whose first answer was lost gets NoSuchUpload; the uploader
        // then checks the object itself.
        let (headers, body) = self.send_text(&op).await?;
        let crc64 = headers
            .get("x-oss-hash-crc64ecma")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let doc: xml::CompleteResult = xml::parse("CompleteMultipartUpload", &body)?;
        Ok(PutResult {
            etag: doc.etag,
            crc64,
        })
    }

    /// One page of ListParts after `marker`.
    pub async fn list_parts_page(
        &self,
        key: &str,
        upload_id: &str,
        marker: u32,
    ) -> Result<xml::ListPartsPage> {
        let op = Op::new("ListParts", Method::GET, Some(key))
            .query("uploadId", upload_id)
            .query("max-parts", PAGE.to_string())
            .query("part-number-marker", marker.to_string())
            .query("encoding-type", "url");
        let (_, body) = self.send_text(&op).await?;
        xml::parse("ListParts", &body)
    }

    /// ListParts, every page.
    pub async fn list_parts(&self, key: &str, upload_id: &str) -> Result<Vec<Part>> {
        let mut out = Vec::new();
        let mut marker = 0;
        loop {
            let page = self.list_parts_page(key, upload_id, marker).await?;
            let last = page.parts.iter().map(|p| p.part_number).max();
            out.extend(page.parts);
            match (page.is_truncated, page.next_part_number_marker.or(last)) {
                // A marker that does not advance would loop forever.
                (true, Some(next)) if next > marker => marker = next,
                _ => break,
            }
        }
        Ok(out)
    }

    /// AbortMultipartUpload.
    pub async fn abort_multipart_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        self.send(
            &Op::new("AbortMultipartUpload", Method::DELETE, Some(key))
                .query("uploadId", upload_id),
        )
        .await?;
        Ok(())
    }

    /// ListMultipartUploads with `prefix`, every page; keys decoded.
    pub async fn list_multipart_uploads(&self, prefix: &str) -> Result<Vec<Upload>> {
        let mut out = Vec::new();
        let (mut key_marker, mut id_marker) = (String::new(), String::new());
        loop {
            let mut op = Op::new("ListMultipartUploads", Method::GET, None)
                .query("uploads", "")
                .query("max-uploads", PAGE.to_string())
                .query("encoding-type", "url");
            if !prefix.is_empty() {
                op = op.query("prefix", prefix);
            }
            if !key_marker.is_empty() {
                op = op
                    .query("key-marker", key_marker.clone())
                    .query("upload-id-marker", id_marker.clone());
            }
            let (_, body) = self.send_text(&op).await?;
            let page: xml::ListUploadsPage = xml::parse("ListMultipartUploads", &body)?;
            out.extend(page.uploads.into_iter().map(|u| Upload {
                key: xml::url_decode(&u.key),
                ..u
            }));
            match (page.is_truncated, page.next_key_marker) {
                (true, Some(k))
                    if !k.is_empty()
                        && (k != key_marker
                            || page.next_upload_id_marker.as_deref() != Some(&id_marker)) =>
                {
                    key_marker = xml::url_decode(&k);
                    id_marker = page.next_upload_id_marker.unwrap_or_default();
                }
                _ => break,
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod restore_tests {
    use super::*;

    fn meta(class: &str, restore: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            size: 1,
            etag: String::new(),
            crc64: None,
            storage_class: Some(class.to_string()),
            encryption: None,
            restore: restore.map(str::to_string),
        }
    }

    #[test]
    fn x_oss_restore_says_when_a_cold_object_is_readable() {
        let done = r#"ongoing-request="false", expiry-date="Sun, 16 Apr 2017 08:12:33 GMT""#;
        assert_eq!(meta("Archive", Some(done)).restored(), Some(true));
        assert_eq!(meta("ColdArchive", Some(done)).restored(), Some(true));
        assert_eq!(
            meta("Archive", Some(r#"ongoing-request="true""#)).restored(),
            Some(false)
        );
        assert_eq!(meta("Archive", None).restored(), Some(false));
        assert_eq!(meta("Standard", None).restored(), None);
    }
}
