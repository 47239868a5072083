//! Multipart upload: Initiate, UploadPart, Complete, ListParts, Abort, ListMultipartUploads.

use base64::Engine;
use md5::{Digest, Md5};

use crate::faults::FaultKind;
use crate::oss::api::{finish, Ctx, OssResult};
use crate::oss::body::{self, combine_crc, RecvError, Sink};
use crate::oss::error::OssError;
use crate::oss::object::{
    check_length, check_overwrite, expected_md5, quoted, receive_into_temp, storage_class,
    user_meta, MAX_PUT_BYTES,
};
use crate::oss::xml::{parse_complete, CompleteXmlError, XmlWriter};
use crate::server::empty;
use crate::store::{valid_upload_id, Completed, ObjectMeta, PartMeta, Upload};
use crate::util::{pct, random_hex, Utc};

/// Smallest part other than the last: 100 KB (reference §4.1; enforced at Complete).
pub const MIN_PART_BYTES: u64 = 100 * 1024;
/// Largest part: 5 GB.
pub const MAX_PART_BYTES: u64 = MAX_PUT_BYTES;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Default and largest page of ListParts / ListMultipartUploads.
pub const MAX_PAGE: usize = 1000;
/// Largest CompleteMultipartUpload body: 10,000 parts at under 200 bytes each, with room.
pub const MAX_COMPLETE_BODY: usize = 4 * 1024 * 1024;

fn enc(ctx: &Ctx, key: &str) -> String {
    if ctx.url_encoding() {
        pct(key)
    } else {
        key.to_string()
    }
}

fn find_upload(ctx: &Ctx, ec: &'static str) -> Result<Upload, OssError> {
    let id = ctx.q("uploadId").unwrap_or_default().to_string();
    let (bucket, key) = (
        ctx.bucket
            .as_ref()
            .map(|b| b.name.as_str())
            .unwrap_or_default(),
        ctx.key.as_deref().unwrap_or_default(),
    );
    if !valid_upload_id(&id) {
        return Err(OssError::no_such_upload(&id, ec));
    }
    ctx.shared
        .store
        .upload(bucket, key, &id)
        .ok_or_else(|| OssError::no_such_upload(&id, ec))
}

/// InitiateMultipartUpload.
pub async fn initiate(ctx: &mut Ctx) -> OssResult {
    let bucket = ctx.bucket()?.name.clone();
    let key = ctx.key()?.to_string();
    let class = storage_class(ctx)?;
    let up = Upload {
        upload_id: random_hex(32),
        bucket: bucket.clone(),
        key: key.clone(),
        initiated: ctx.now,
        storage_class: class,
        content_type: ctx
            .header("content-type")
            .unwrap_or("application/octet-stream")
            .to_string(),
        user_meta: user_meta(ctx),
        parts: Default::default(),
    };
    let id = up.upload_id.clone();
    ctx.shared
        .store
        .create_upload(up)
        .map_err(|e| OssError::internal(&e.to_string()))?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.el("Bucket", &bucket)
        .el("Key", &enc(ctx, &key))
        .el("UploadId", &id);
    if ctx.url_encoding() {
        w.el("EncodingType", "url");
    }
    ctx.xml(200, w.finish())
}

/// Parses a part number: digits only, 1..=10000.
pub fn parse_part_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|n| (1..=MAX_PART_NUMBER).contains(n))
}

/// UploadPart.
pub async fn upload_part(ctx: &mut Ctx) -> OssResult {
    let Some(raw) = ctx.q("partNumber").map(str::to_string) else {
        return Err(OssError::invalid_argument(
            "0017-00000219",
            "Missing partNumber in the request.",
            "partNumber",
            "",
        )
        .into());
    };
    let Some(n) = parse_part_number(&raw) else {
        return Err(OssError::invalid_argument(
            "0017-00000220",
            "Part number must be an integer between 1 and 10000, inclusive.",
            "partNumber",
            &raw,
        )
        .into());
    };
    if ctx.q("uploadId").is_none() {
        return Err(OssError::invalid_argument(
            "",
            "Missing uploadId in the request.",
            "uploadId",
            "",
        )
        .into());
    }
    let up = find_upload(ctx, "0042-00000104")?;
    check_length(ctx, MAX_PART_BYTES)?;
    expected_md5(ctx)?;
    let id = up.upload_id.clone();
    ctx.shared.counters.part_attempt(&id, n);
    let faults = ctx.shared.faults();
    let (reset, _) = ctx.shared.roll(FaultKind::UploadPartReset);
    let (error, idx) = ctx.shared.roll(FaultKind::UploadPartError);
    let reset_after = if reset {
        ctx.shared.counters.fault("upload_part_reset");
        Some(faults.reset_after_bytes.max(1))
    } else {
        None
    };
    if error && !reset {
        let status = faults.error_status(idx);
        ctx.shared.counters.fault(if status == 503 {
            "upload_part_503"
        } else {
            "upload_part_500"
        });
        if let Some(b) = ctx.body.take() {
            let sink = Sink {
                dest: None,
                limit: MAX_PART_BYTES,
                reset_after: None,
                part: Some((&id, n)),
            };
            let _ = body::receive(&ctx.shared, b, sink).await;
        }
        return Err(if status == 503 {
            OssError::new(
                503,
                "ServiceUnavailable",
                "",
                "Service is unavailable, please try again later.",
            )
        } else {
            OssError::new(
                500,
                "InternalError",
                "",
                "We encountered an internal error. Please try again.",
            )
        }
        .into());
    }
    let (tmp, got) = receive_into_temp(ctx, reset_after, Some((&id, n))).await?;
    let part = PartMeta {
        number: n,
        size: got.size,
        etag: hex::encode_upper(got.md5),
        crc64: got.crc64,
        last_modified: ctx.now,
    };
    let etag = part.etag.clone();
    match ctx.shared.store.commit_part(&id, part, &tmp) {
        Ok(true) => {}
        Ok(false) => return Err(OssError::no_such_upload(&id, "0042-00000104").into()),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(OssError::internal(&e.to_string()).into());
        }
    }
    ctx.shared.counters.part_stored(&id, n, got.size);
    finish(
        ctx.builder(200)
            .header("ETag", quoted(&etag))
            .header(
                "Content-MD5",
                base64::engine::general_purpose::STANDARD.encode(got.md5),
            )
            .header("x-oss-hash-crc64ecma", got.crc64.to_string())
            .body(empty()),
    )
}

fn invalid_part(n: u32, etag: &str) -> OssError {
    OssError::new(
        400,
        "InvalidPart",
        "",
        "One or more of the specified parts could not be found or the specified entity tag might not have matched the part's entity tag.",
    )
    .with("PartNumber", n.to_string())
    .with("ETag", etag)
}

/// Picks and checks the parts named by a CompleteMultipartUpload request.
fn chosen_parts(ctx: &Ctx, up: &Upload, body: &[u8]) -> Result<Vec<PartMeta>, OssError> {
    if ctx.header("x-oss-complete-all") == Some("yes") {
        if !body.is_empty() {
            return Err(OssError::new(
                400,
                "InvalidArgument",
                "0042-00000216",
                "Should not speficy both complete all header and http body.",
            ));
        }
        if up.parts.is_empty() {
            return Err(OssError::new(
                400,
                "InvalidArgument",
                "",
                "The upload has no parts to complete.",
            ));
        }
        return Ok(up.parts.values().cloned().collect());
    }
    if let Some(want) = expected_md5(ctx)? {
        let got: [u8; 16] = Md5::digest(body).into();
        if got != want {
            return Err(OssError::new(
                400,
                "InvalidDigest",
                "",
                "The Content-MD5 you specified did not match what we received.",
            ));
        }
    }
    let listed = parse_complete(body).map_err(|e| match e {
        CompleteXmlError::Malformed(m) => OssError::malformed_xml(&m),
        CompleteXmlError::TooManyParts => OssError::invalid_argument(
            "",
            "A multipart upload has at most 10000 parts.",
            "Part",
            "10001",
        ),
    })?;
    if listed.is_empty() {
        return Err(OssError::malformed_xml("at least one <Part> is required"));
    }
    let mut out: Vec<PartMeta> = Vec::with_capacity(listed.len());
    for p in &listed {
        let n: u32 = p
            .number
            .trim()
            .parse()
            .map_err(|_| OssError::malformed_xml("PartNumber must be an integer"))?;
        if let Some(prev) = out.last() {
            if n <= prev.number {
                return Err(OssError::new(
                    400,
                    "InvalidPartOrder",
                    "0042-00000209",
                    "The list of parts was not in ascending order. Parts list must specified in order by part number.",
                ));
            }
        }
        let stored = up
            .parts
            .get(&n)
            .filter(|s| s.etag.eq_ignore_ascii_case(p.etag.trim()))
            .ok_or_else(|| invalid_part(n, &p.etag))?;
        out.push(stored.clone());
    }
    Ok(out)
}

fn location(ctx: &Ctx, bucket: &str, key: &str) -> String {
    if ctx.host.starts_with(&format!("{bucket}.")) {
        format!("http://{}/{}", ctx.host, pct(key))
    } else {
        format!("http://{}/{bucket}/{}", ctx.host, pct(key))
    }
}

/// CompleteMultipartUpload.
pub async fn complete(ctx: &mut Ctx) -> OssResult {
    let bucket = ctx.bucket()?.name.clone();
    let key = ctx.key()?.to_string();
    let up = find_upload(ctx, "")?;
    let body_bytes = match ctx.body.take() {
        Some(b) => body::read_small(b, MAX_COMPLETE_BODY)
            .await
            .map_err(|e| match e {
                RecvError::TooLarge => OssError::malformed_xml("the body is larger than 4 MiB"),
                _ => OssError::new(400, "IncompleteBody", "", "The request body is incomplete."),
            })?,
        None => Vec::new(),
    };
    let parts = chosen_parts(ctx, &up, &body_bytes)?;
    if let Some((i, small)) = parts
        .iter()
        .enumerate()
        .find(|(i, p)| i + 1 < parts.len() && p.size < MIN_PART_BYTES)
    {
        let _ = i;
        return Err(OssError::new(
            400,
            "EntityTooSmall",
            "0042-00000213",
            "Your proposed upload is smaller than the minimum allowed size.",
        )
        .with("PartNumber", small.number.to_string())
        .with("PartSize", small.size.to_string())
        .with("MinSizeAllowed", MIN_PART_BYTES.to_string())
        .into());
    }
    check_overwrite(ctx, &bucket, &key)?;
    let size: u64 = parts.iter().map(|p| p.size).sum();
    let mut md5s = Vec::with_capacity(parts.len() * 16);
    for p in &parts {
        md5s.extend(hex::decode(&p.etag).unwrap_or_default());
    }
    let etag = format!("{}-{}", hex::encode_upper(Md5::digest(&md5s)), parts.len());
    let crc = combine_crc(parts.iter().map(|p| (p.crc64, p.size)));
    let meta = ObjectMeta {
        key: key.clone(),
        size,
        etag: etag.clone(),
        crc64: crc,
        content_type: up.content_type.clone(),
        last_modified: ctx.now,
        storage_class: up.storage_class,
        multipart: true,
        user_meta: up.user_meta.clone(),
        restore_ready_ms: None,
        restore_expiry: None,
        part_files: None, // set by the store
    };
    // The object is the part files themselves: no byte is copied.
    match ctx
        .shared
        .store
        .commit_multipart(&bucket, meta, &up.upload_id, &parts)
    {
        Ok(Completed::Done) => {}
        Ok(Completed::NoSuchUpload) => {
            return Err(OssError::no_such_upload(&up.upload_id, "").into())
        }
        Ok(Completed::PartChanged(n)) => {
            let etag = parts
                .iter()
                .find(|p| p.number == n)
                .map(|p| p.etag.clone())
                .unwrap_or_default();
            return Err(invalid_part(n, &etag).into());
        }
        Err(e) => return Err(OssError::internal(&e.to_string()).into()),
    }
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    if ctx.url_encoding() {
        w.el("EncodingType", "url");
    }
    w.el("Location", &location(ctx, &bucket, &key))
        .el("Bucket", &bucket)
        .el("Key", &enc(ctx, &key))
        .el("ETag", &quoted(&etag));
    let doc = w.finish();
    ctx.shared
        .counters
        .sent(u64::try_from(doc.len()).unwrap_or(0));
    finish(
        ctx.builder(200)
            .header("Content-Type", "application/xml")
            .header("ETag", quoted(&etag))
            .header("x-oss-hash-crc64ecma", crc.to_string())
            .body(crate::server::full(doc)),
    )
}

fn page_size(ctx: &Ctx, name: &str) -> Result<usize, OssError> {
    match ctx.q(name) {
        None => Ok(MAX_PAGE),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n.min(MAX_PAGE))
            .ok_or_else(|| {
                OssError::invalid_argument(
                    "",
                    format!("{name} must be an integer between 1 and 1000."),
                    name,
                    v,
                )
            }),
    }
}

/// ListParts.
pub fn list_parts(ctx: &mut Ctx) -> OssResult {
    let up = find_upload(ctx, "0042-00000002")?;
    let max = page_size(ctx, "max-parts")?;
    let marker: u32 = match ctx.q("part-number-marker") {
        None | Some("") => 0,
        Some(v) => v.parse().map_err(|_| {
            OssError::invalid_argument(
                "",
                "part-number-marker must be an integer.",
                "part-number-marker",
                v,
            )
        })?,
    };
    let after: Vec<&PartMeta> = up
        .parts
        .range(marker.saturating_add(1)..)
        .map(|(_, p)| p)
        .collect();
    let truncated = after.len() > max;
    let page = &after[..after.len().min(max)];
    let next = page.last().map_or(marker, |p| p.number);
    let mut w = XmlWriter::new("ListPartsResult");
    w.el("Bucket", &up.bucket)
        .el("Key", &enc(ctx, &up.key))
        .el("UploadId", &up.upload_id)
        .el("StorageClass", up.storage_class.as_str())
        .el("PartNumberMarker", &marker.to_string())
        .el("NextPartNumberMarker", &next.to_string())
        .el("MaxParts", &max.to_string())
        .el("IsTruncated", if truncated { "true" } else { "false" });
    if ctx.url_encoding() {
        w.el("EncodingType", "url");
    }
    for p in page {
        w.open("Part")
            .el("PartNumber", &p.number.to_string())
            .el(
                "LastModified",
                &Utc::from_unix(p.last_modified).iso8601_millis(),
            )
            .el("ETag", &quoted(&p.etag))
            .el("HashCrc64ecma", &p.crc64.to_string())
            .el("Size", &p.size.to_string())
            .close();
    }
    ctx.xml(200, w.finish())
}

/// AbortMultipartUpload.
pub fn abort(ctx: &mut Ctx) -> OssResult {
    let up = find_upload(ctx, "0042-00000002")?;
    if !ctx.shared.store.remove_upload(&up.upload_id) {
        return Err(OssError::no_such_upload(&up.upload_id, "0042-00000002").into());
    }
    finish(ctx.builder(204).body(empty()))
}

/// ListMultipartUploads (prefix, key-marker, upload-id-marker, max-uploads; no delimiter
/// grouping).
pub fn list_uploads(ctx: &mut Ctx) -> OssResult {
    let bucket = ctx.bucket()?.name.clone();
    let max = page_size(ctx, "max-uploads")?;
    let prefix = ctx.q("prefix").unwrap_or("").to_string();
    let key_marker = ctx.q("key-marker").unwrap_or("").to_string();
    let id_marker = ctx.q("upload-id-marker").unwrap_or("").to_string();
    let all: Vec<Upload> = ctx
        .shared
        .store
        .uploads(&bucket)
        .into_iter()
        .filter(|u| u.key.starts_with(&prefix))
        .filter(|u| {
            if id_marker.is_empty() {
                u.key > key_marker
            } else {
                (&u.key, &u.upload_id) > (&key_marker, &id_marker)
            }
        })
        .collect();
    let truncated = all.len() > max;
    let page = &all[..all.len().min(max)];
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.el("Bucket", &bucket)
        .el("KeyMarker", &enc(ctx, &key_marker))
        .el("UploadIdMarker", &id_marker)
        .el(
            "NextKeyMarker",
            &page.last().map(|u| enc(ctx, &u.key)).unwrap_or_default(),
        )
        .el(
            "NextUploadIdMarker",
            &page.last().map(|u| u.upload_id.clone()).unwrap_or_default(),
        )
        .el("Delimiter", ctx.q("delimiter").unwrap_or(""))
        .el("Prefix", &enc(ctx, &prefix))
        .el("MaxUploads", &max.to_string())
        .el("IsTruncated", if truncated { "true" } else { "false" });
    if ctx.url_encoding() {
        w.el("EncodingType", "url");
    }
    for u in page {
        w.open("Upload")
            .el("Key", &enc(ctx, &u.key))
            .el("UploadId", &u.upload_id)
            .el("StorageClass", u.storage_class.as_str())
            .el("Initiated", &Utc::from_unix(u.initiated).iso8601_millis())
            .close();
    }
    ctx.xml(200, w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_numbers() {
        assert_eq!(parse_part_number("1"), Some(1));
        assert_eq!(parse_part_number("10000"), Some(10_000));
        for bad in ["0", "10001", "abc", "", "-1", "+1", "1.0", "99999999999"] {
            assert_eq!(parse_part_number(bad), None, "{bad}");
        }
    }
}
