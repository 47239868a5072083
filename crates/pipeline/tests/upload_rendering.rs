//! `ecs-preflight upload`'s results render in the library ([`UploadResult::render`],
//! [`AbortOutcome::render`], [`upload_refusal`]): the fields and lines the CLI prints,
//! checked without the binary.

use preflight_oss::UploadOutcome;
use preflight_pipeline::upload::{AbortOutcome, AbortedUpload, UnrecordedKey, UploadResult};
use preflight_pipeline::upload_refusal;
use preflight_report::{Finding, Severity};
use preflight_rules::BucketFacts;

fn warning() -> Finding {
    Finding {
        code: "OSS.StorageClass".into(),
        severity: Severity::Warning,
        message: "bucket default storage class is IA".into(),
        hint: "nothing to do: the object is written as Standard".into(),
    }
}

fn uploaded() -> UploadResult {
    UploadResult {
        object: UploadOutcome {
            bucket: "images".into(),
            key: "web.qcow2".into(),
            size: 10 << 20,
            // Above 2^53: a JSON number would lose its low digits.
            crc64: 18_446_744_073_709_551_615,
            etag: "\"ABC-2\"".into(),
            parts: 2,
            parts_sent: 1,
            parts_reused: 1,
            part_size: 8 << 20,
            upload_id: Some("U1".into()),
            already_there: false,
        },
        format: "qcow2".into(),
        conversion: None,
        seconds: 2.0,
        findings: vec![warning()],
        bucket_facts: BucketFacts {
            name: "images".into(),
            exists: true,
            region: Some("cn-hangzhou".into()),
            encrypted: Some(false),
            storage_class: Some("IA".into()),
        },
    }
}

#[test]
fn an_upload_renders_its_object_parts_and_throughput() {
    let r = uploaded().render();
    let j = &r.json;
    assert_eq!(j["status"], "uploaded");
    assert_eq!(j["bucket"], "images");
    assert_eq!(j["key"], "web.qcow2");
    assert_eq!(j["size"], 10 << 20);
    assert_eq!(j["crc64"], "18446744073709551615");
    assert_eq!(j["parts"], 2);
    assert_eq!(j["parts_sent"], 1);
    assert_eq!(j["parts_reused"], 1);
    assert_eq!(j["upload_id"], "U1");
    assert_eq!(j["already_there"], false);
    assert_eq!(j["seconds"], 2.0);
    assert_eq!(j["mib_per_s"], 5.0);
    assert_eq!(j["findings"][0]["code"], "OSS.StorageClass");
    assert_eq!(j["bucket_facts"]["storage_class"], "IA");
    assert_eq!(
        r.lines,
        [
            "uploaded oss://images/web.qcow2",
            "  format   qcow2",
            "  size     10485760 bytes",
            "  CRC-64   18446744073709551615 (verified: local = OSS)",
            "  ETag     \"ABC-2\"",
            "  parts    2 (1 sent, 1 already on OSS)",
            "  time     2.0 s, 5.0 MiB/s",
            "  bucket   cn-hangzhou, default storage class IA (this object: Standard)",
        ]
    );
}

#[test]
fn an_object_already_there_says_nothing_was_sent() {
    let mut done = uploaded();
    done.object.already_there = true;
    done.seconds = 0.0;
    done.bucket_facts.storage_class = None;
    let r = done.render();
    assert_eq!(r.json["already_there"], true);
    // No division by zero: a zero-second run has no throughput.
    assert_eq!(r.json["mib_per_s"], 0.0);
    assert_eq!(
        r.lines[0],
        "already on OSS, nothing sent: oss://images/web.qcow2"
    );
    assert!(!r.lines.iter().any(|l| l.starts_with("  bucket")), "{r:?}");
}

#[test]
fn a_refusal_renders_every_finding_of_the_rules() {
    let error = Finding {
        code: "OSS.BucketNotFound".into(),
        severity: Severity::Error,
        message: "bucket nope does not exist".into(),
        hint: "create it".into(),
    };
    let r = upload_refusal("nope", "web.qcow2", &[error, warning()]);
    assert_eq!(r.json["status"], "refused");
    assert_eq!(r.json["bucket"], "nope");
    assert_eq!(r.json["key"], "web.qcow2");
    assert_eq!(r.json["findings"].as_array().map(Vec::len), Some(2));
    assert_eq!(r.json["findings"][0]["code"], "OSS.BucketNotFound");
    assert_eq!(r.json["findings"][1]["severity"], "warning");
    assert!(r.lines.is_empty(), "the events showed the findings: {r:?}");
}

#[test]
fn an_abort_renders_the_uploads_aborted() {
    let done = AbortOutcome {
        aborted: vec![AbortedUpload {
            key: "web.qcow2".into(),
            upload_id: "U1".into(),
        }],
        not_recorded: Vec::new(),
    };
    let r = done.render("images");
    assert_eq!(r.json["status"], "aborted");
    assert_eq!(r.json["aborted"][0]["upload_id"], "U1");
    assert_eq!(
        r.lines,
        ["aborted upload U1 of oss://images/web.qcow2; its parts are deleted"]
    );
}

#[test]
fn an_abort_with_nothing_recorded_lists_what_oss_has() {
    let done = AbortOutcome {
        aborted: Vec::new(),
        not_recorded: vec![UnrecordedKey {
            key: "web.raw".into(),
            on_oss: vec![preflight_oss::xml::Upload {
                key: "web.raw".into(),
                upload_id: "OTHER".into(),
                initiated: "2026-12-04T10:00:00.000Z".into(),
            }],
        }],
    };
    let r = done.render("images");
    assert_eq!(r.json["status"], "not_recorded");
    assert_eq!(r.json["not_recorded"][0]["on_oss"][0]["upload_id"], "OTHER");
    assert_eq!(
        r.lines,
        [
            "no interrupted upload of oss://images/web.raw is recorded here",
            "  in progress on OSS (not started here, left alone): upload id OTHER since 2026-12-04T10:00:00.000Z",
        ]
    );
}
