//! PutObject, GetObject (with Range), HeadObject, DeleteObject.

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use http::Method;

use crate::config::StorageClass;
use crate::oss::api::{finish, hv, Ctx, Fail, OssResult};
use crate::oss::body::{self, Received, RecvError, Sink};
use crate::oss::error::OssError;
use crate::server::{empty, file_body};
use crate::store::{ObjectMeta, RestoreState};
use crate::util::http_date;

/// Largest PutObject body and largest part: 5 GB (reference §4.1).
pub const MAX_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// `x-oss-storage-class` of the request, else the bucket's storage class, else the
/// emulator-wide default.
pub fn storage_class(ctx: &Ctx) -> Result<StorageClass, OssError> {
    match ctx.header("x-oss-storage-class") {
        None => Ok(ctx
            .bucket
            .as_ref()
            .and_then(|b| b.storage_class)
            .unwrap_or(ctx.shared.config.storage_class)),
        Some(s) => s.parse().map_err(|_| {
            OssError::invalid_argument(
                "",
                "The storage class you specified is not valid.",
                "x-oss-storage-class",
                s,
            )
        }),
    }
}

/// `x-oss-meta-*` headers, names lower-cased without the prefix.
pub fn user_meta(ctx: &Ctx) -> BTreeMap<String, String> {
    ctx.headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-oss-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect()
}

/// The decoded `Content-MD5` header, if any.
pub fn expected_md5(ctx: &Ctx) -> Result<Option<[u8; 16]>, OssError> {
    let Some(v) = ctx.header("content-md5") else {
        return Ok(None);
    };
    let bad = || {
        OssError::new(
            400,
            "InvalidDigest",
            "",
            "The Content-MD5 you specified is not valid.",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .map_err(|_| bad())?;
    let arr: [u8; 16] = bytes.try_into().map_err(|_| bad())?;
    Ok(Some(arr))
}

fn too_large(proposed: Option<u64>) -> OssError {
    let e = OssError::new(
        400,
        "EntityTooLarge",
        "",
        "Your proposed upload exceeds the maximum allowed size.",
    )
    .with("MaxSizeAllowed", MAX_PUT_BYTES.to_string());
    match proposed {
        Some(p) => e.with("ProposedSize", p.to_string()),
        None => e,
    }
}

/// Refuses a declared Content-Length above `max` before reading anything.
pub fn check_length(ctx: &Ctx, max: u64) -> Result<(), OssError> {
    if let Some(len) = ctx
        .header("content-length")
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > max {
            return Err(too_large(Some(len)));
        }
    }
    Ok(())
}

/// Streams the body into a temp file; checks size and Content-MD5.
pub async fn receive_into_temp(
    ctx: &mut Ctx,
    reset_after: Option<u64>,
    part: Option<(&str, u32)>,
) -> Result<(PathBuf, Received), Fail> {
    let md5 = expected_md5(ctx)?;
    let Some(b) = ctx.body.take() else {
        return Err(OssError::internal("body already consumed").into());
    };
    let tmp = ctx.shared.store.temp_path();
    let sink = Sink {
        dest: Some(&tmp),
        limit: MAX_PUT_BYTES,
        reset_after,
        part,
    };
    let got = match body::receive(&ctx.shared, b, sink).await {
        Ok(r) => r,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(match e {
                RecvError::TooLarge => too_large(None).into(),
                RecvError::Client => OssError::new(
                    400,
                    "IncompleteBody",
                    "",
                    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
                )
                .into(),
                RecvError::Io(e) => OssError::internal(&e.to_string()).into(),
                RecvError::Reset => Fail::Abort,
            });
        }
    };
    if let Some(want) = md5 {
        if want != got.md5 {
            let _ = std::fs::remove_file(&tmp);
            return Err(OssError::new(
                400,
                "InvalidDigest",
                "",
                "The Content-MD5 you specified did not match what we received.",
            )
            .into());
        }
    }
    Ok((tmp, got))
}

/// `x-oss-forbid-overwrite: true` and the object exists → `409 FileAlreadyExists`.
pub fn check_overwrite(ctx: &Ctx, bucket: &str, key: &str) -> Result<(), OssError> {
    if ctx.header("x-oss-forbid-overwrite") == Some("true")
        && ctx.shared.store.head(bucket, key).is_some()
    {
        return Err(OssError::new(
            409,
            "FileAlreadyExists",
            "",
            "The object you specified already exists and can not be overwritten.",
        ));
    }
    Ok(())
}

/// Quoted ETag header value.
pub fn quoted(etag: &str) -> String {
    format!("\"{etag}\"")
}

/// PutObject.
pub async fn put(ctx: &mut Ctx) -> OssResult {
    let bucket = ctx.bucket()?.name.clone();
    let key = ctx.key()?.to_string();
    if ctx.headers.contains_key("x-oss-copy-source") {
        return Err(OssError::new(
            501,
            "NotImplemented",
            "",
            "CopyObject is not implemented by the emulator.",
        )
        .into());
    }
    let class = storage_class(ctx)?;
    check_length(ctx, MAX_PUT_BYTES)?;
    check_overwrite(ctx, &bucket, &key)?;
    let (tmp, got) = receive_into_temp(ctx, None, None).await?;
    let etag = hex::encode_upper(got.md5);
    let meta = ObjectMeta {
        key,
        size: got.size,
        etag: etag.clone(),
        crc64: got.crc64,
        content_type: ctx
            .header("content-type")
            .unwrap_or("application/octet-stream")
            .to_string(),
        last_modified: ctx.now,
        storage_class: class,
        multipart: false,
        user_meta: user_meta(ctx),
        restore_ready_ms: None,
        restore_expiry: None,
        part_files: None,
    };
    if let Err(e) = ctx.shared.store.commit_object(&bucket, meta, &tmp) {
        let _ = std::fs::remove_file(&tmp);
        return Err(OssError::internal(&e.to_string()).into());
    }
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

/// A parsed `Range: bytes=…` header against an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable range: whole object.
    Whole,
    /// Inclusive byte range.
    Bytes(u64, u64),
    /// Syntactically fine but outside the object.
    Unsatisfiable,
}

/// Parses one `bytes=a-b`, `bytes=a-` or `bytes=-n`. Anything else (several ranges, garbage)
/// is ignored as OSS does, giving the whole object.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeSpec::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (num(a), num(b)) {
        (Some(start), Some(end)) if start <= end => {
            if start >= size {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Bytes(start, end.min(size - 1))
            }
        }
        (Some(start), None) if b.is_empty() => {
            if start >= size {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Bytes(start, size - 1)
            }
        }
        (None, Some(n)) if a.is_empty() => {
            if n == 0 || size == 0 {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Bytes(size - n.min(size), size - 1)
            }
        }
        _ => RangeSpec::Whole,
    }
}

/// GetObject, or HeadObject when `head`.
pub async fn get(ctx: &mut Ctx, head: bool) -> OssResult {
    let bucket = ctx.bucket()?.clone();
    let key = ctx.key()?.to_string();
    let opened = ctx
        .shared
        .store
        .open_object(&bucket.name, &key)
        .map_err(|e| OssError::internal(&e.to_string()))?;
    let Some((meta, file)) = opened else {
        return Err(OssError::no_such_key(&key).into());
    };
    let now_ms = crate::util::unix_now_ms();
    // Real OSS: 403 InvalidObjectState, EC 0016-00000404 ("the object cannot be read") for an
    // Archive object not restored or still restoring. (409 ArchiveRestoreNotFinished is
    // CleanRestoredObject's answer during a restore, not GetObject's.)
    if !head && !meta.readable(now_ms) {
        return Err(OssError::new(
            403,
            "InvalidObjectState",
            "0016-00000404",
            "The operation is not valid for the object's state.",
        )
        .into());
    }
    let etag = quoted(&meta.etag);
    if let Some(m) = ctx.header("if-match") {
        if m.trim() != etag && m.trim() != "*" {
            return Err(OssError::new(
                412,
                "PreconditionFailed",
                "",
                "At least one of the pre-conditions you specified did not hold.",
            )
            .with("Condition", "If-Match")
            .into());
        }
    }
    if let Some(m) = ctx.header("if-none-match") {
        if m.trim() == etag || m.trim() == "*" {
            return finish(ctx.builder(304).header("ETag", etag).body(empty()));
        }
    }
    let mut b = ctx
        .builder(200)
        .header("Content-Type", hv(&meta.content_type))
        .header("ETag", etag)
        .header("Last-Modified", http_date(meta.last_modified))
        .header("Accept-Ranges", "bytes")
        .header(
            "x-oss-object-type",
            if meta.multipart {
                "Multipart"
            } else {
                "Normal"
            },
        )
        .header("x-oss-storage-class", meta.storage_class.as_str())
        .header("x-oss-hash-crc64ecma", meta.crc64.to_string());
    match meta.restore_state(now_ms) {
        RestoreState::None => {}
        RestoreState::Ongoing => b = b.header("x-oss-restore", "ongoing-request=\"true\""),
        RestoreState::Restored(exp) => {
            b = b.header(
                "x-oss-restore",
                hv(&format!(
                    "ongoing-request=\"false\", expiry-date=\"{}\"",
                    http_date(exp)
                )),
            )
        }
    }
    if !meta.multipart {
        if let Ok(md5) = hex::decode(&meta.etag) {
            b = b.header(
                "Content-MD5",
                base64::engine::general_purpose::STANDARD.encode(md5),
            );
        }
    }
    if bucket.encrypted {
        b = b.header("x-oss-server-side-encryption", "KMS");
    }
    for (k, v) in &meta.user_meta {
        b = b.header(format!("x-oss-meta-{k}"), hv(v));
    }
    if head || ctx.method == Method::HEAD {
        return finish(b.header("Content-Length", meta.size).body(empty()));
    }
    let (status, start, len) = match parse_range(ctx.header("range"), meta.size) {
        RangeSpec::Whole => (200, 0, meta.size),
        RangeSpec::Bytes(s, e) => {
            b = b.header("Content-Range", format!("bytes {s}-{e}/{}", meta.size));
            (206, s, e - s + 1)
        }
        RangeSpec::Unsatisfiable => {
            if ctx.header("x-oss-range-behavior") == Some("standard") {
                return Err(OssError::new(
                    416,
                    "InvalidRange",
                    "",
                    "The requested range cannot be satisfied.",
                )
                .with("ActualObjectSize", meta.size.to_string())
                .into());
            }
            (200, 0, meta.size)
        }
    };
    let b = b.status(status).header("Content-Length", len);
    finish(b.body(file_body(ctx.shared.clone(), file, start, len)))
}

/// DeleteObject: 204 whether or not it existed.
pub async fn delete(ctx: &mut Ctx) -> OssResult {
    let bucket = ctx.bucket()?.name.clone();
    let key = ctx.key()?.to_string();
    ctx.shared
        .store
        .delete_object(&bucket, &key)
        .map_err(|e| OssError::internal(&e.to_string()))?;
    finish(ctx.builder(204).body(empty()))
}

/// Most days a restored copy may be kept (OSS: 1 to 7 for Archive).
pub const MAX_RESTORE_DAYS: u64 = 7;

/// The `<Days>` of a `<RestoreRequest>` body; 1 when there is no body.
fn restore_days(body: &[u8]) -> Result<u64, OssError> {
    let text = std::str::from_utf8(body).map_err(|_| OssError::malformed_xml("not UTF-8"))?;
    if text.trim().is_empty() {
        return Ok(1);
    }
    let days = text
        .split_once("<Days>")
        .and_then(|(_, rest)| rest.split_once("</Days>"))
        .map(|(d, _)| d.trim());
    match days {
        None => Ok(1),
        Some(d) => d
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=MAX_RESTORE_DAYS).contains(n))
            .ok_or_else(|| {
                OssError::invalid_argument("", "The Days you specified is not valid.", "Days", d)
            }),
    }
}

/// RestoreObject (`POST /<key>?restore`): `202 Accepted` the first time, `409
/// RestoreAlreadyInProgress` while restoring, `200 OK` once restored (the copy's lifetime
/// is extended); `400 OperationNotSupported` for an object that is not of an archive class.
pub async fn restore(ctx: &mut Ctx) -> OssResult {
    let body_bytes = match ctx.body.take() {
        Some(b) => body::read_small(b, 64 * 1024).await.map_err(|e| match e {
            RecvError::TooLarge => OssError::malformed_xml("the body is larger than 64 KiB"),
            _ => OssError::new(400, "IncompleteBody", "", "The request body is incomplete."),
        })?,
        None => Vec::new(),
    };
    let bucket = ctx.bucket()?.name.clone();
    let key = ctx.key()?.to_string();
    let Some(mut meta) = ctx.shared.store.head(&bucket, &key) else {
        return Err(OssError::no_such_key(&key).into());
    };
    if !meta.storage_class.is_archive() {
        return Err(OssError::new(
            400,
            "OperationNotSupported",
            "",
            "The operation is not supported for this resource.",
        )
        .into());
    }
    let now_ms = crate::util::unix_now_ms();
    let status = match meta.restore_state(now_ms) {
        RestoreState::Ongoing => {
            return Err(OssError::new(
                409,
                "RestoreAlreadyInProgress",
                "",
                "The restore operation is in progress.",
            )
            .into())
        }
        RestoreState::Restored(_) => 200,
        RestoreState::None => 202,
    };
    let days = restore_days(&body_bytes)?;
    let secs = ctx.shared.config.restore_seconds;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = (secs * 1000.0) as u64;
    let ready = if status == 202 {
        now_ms + ms
    } else {
        meta.restore_ready_ms.unwrap_or(now_ms)
    };
    meta.restore_ready_ms = Some(ready);
    meta.restore_expiry = Some(ready / 1000 + days * 86_400);
    match ctx.shared.store.update_meta(&bucket, meta) {
        Ok(true) => {}
        Ok(false) => return Err(OssError::no_such_key(&key).into()),
        Err(e) => return Err(OssError::internal(&e.to_string()).into()),
    }
    finish(ctx.builder(status).body(empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100), RangeSpec::Bytes(0, 9));
        assert_eq!(
            parse_range(Some("bytes=90-"), 100),
            RangeSpec::Bytes(90, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=-10"), 100),
            RangeSpec::Bytes(90, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100),
            RangeSpec::Bytes(0, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=50-1000"), 100),
            RangeSpec::Bytes(50, 99)
        );
        assert_eq!(
            parse_range(Some("bytes=100-"), 100),
            RangeSpec::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=9-0"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 100), RangeSpec::Whole);
        assert_eq!(parse_range(None, 100), RangeSpec::Whole);
        assert_eq!(parse_range(Some("bytes=-0"), 100), RangeSpec::Unsatisfiable);
    }
}
