#!/usr/bin/env python3
"""Run Alibaba's official OSS SDK (oss2) against the ecs-preflight emulator.

Usage (arguments or EMU_* environment variables):
  oss_sdk.py --endpoint http://127.0.0.1:PORT --ak ID --sk SECRET --bucket B --region R
             [--encrypted-bucket EB] [--sts-ak ID --sts-sk SECRET --sts-token TOKEN]
             [--workdir DIR] [--v4only-bucket VB] [--archive-bucket AB]

Exercises put/get (V1, V4, STS, presigned), ranged get, head, delete, a multipart
resumable_upload with small parts and several threads, bucket info/location/encryption,
and checks that a wrong secret is refused with SignatureDoesNotMatch. With --v4only-bucket:
V1 (oss2's default) is refused there with 403 AccessDenied, EC 0002-00000080, and V4 works.
With --archive-bucket (an Archive-default bucket): new objects are Archive unless
x-oss-storage-class says otherwise, GetObject is refused until restore_object finishes, and
head_object shows x-oss-restore while restoring and after. Exits non-zero on the first
mismatch.
"""
import argparse
import hashlib
import os
import sys
import tempfile
import time

import oss2
import requests
from oss2 import utils as oss_utils
from oss2.credentials import StaticCredentialsProvider

CHECKS = 0


def check(cond, what):
    global CHECKS
    if not cond:
        raise AssertionError("FAILED: " + what)
    CHECKS += 1
    print("ok  " + what, flush=True)


def expect_error(fn, code, status, what):
    try:
        fn()
    except oss2.exceptions.OssError as e:
        check(e.status == status and e.code == code,
              "%s -> %s %s (got %s %s: %s)" % (what, status, code, e.status, e.code, e.message))
        return e
    raise AssertionError("FAILED: %s succeeded, expected %s" % (what, code))


def crc64(data):
    c = oss_utils.Crc64(0)
    c.update(data)
    return c.crc


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=env("EMU_ENDPOINT"))
    ap.add_argument("--ak", default=env("EMU_AK"))
    ap.add_argument("--sk", default=env("EMU_SK"))
    ap.add_argument("--bucket", default=env("EMU_BUCKET", "ecs-preflight"))
    ap.add_argument("--region", default=env("EMU_REGION", "cn-hangzhou"))
    ap.add_argument("--encrypted-bucket", default=env("EMU_ENCRYPTED_BUCKET"))
    ap.add_argument("--sts-ak", default=env("EMU_STS_AK"))
    ap.add_argument("--sts-sk", default=env("EMU_STS_SK"))
    ap.add_argument("--sts-token", default=env("EMU_STS_TOKEN"))
    ap.add_argument("--workdir", default=env("EMU_WORKDIR"))
    ap.add_argument("--v4only-bucket", default=env("EMU_V4ONLY_BUCKET"))
    ap.add_argument("--archive-bucket", default=env("EMU_ARCHIVE_BUCKET"))
    a = ap.parse_args()
    if not (a.endpoint and a.ak and a.sk):
        ap.error("--endpoint, --ak and --sk are required")
    workdir = a.workdir or tempfile.mkdtemp(prefix="oss-sdk-")

    # --- V1 (oss2's default signer) ---------------------------------------------------------
    auth = oss2.Auth(a.ak, a.sk)
    bucket = oss2.Bucket(auth, a.endpoint, a.bucket, enable_crc=True)
    data = b"hello world"
    r = bucket.put_object("sdk/hello.txt", data)
    check(r.status == 200, "V1 put_object")
    check(r.crc == crc64(data), "put_object x-oss-hash-crc64ecma matches local CRC-64")
    check(r.etag == hashlib.md5(data).hexdigest().upper(), "put_object ETag is the upper-case MD5")
    got = bucket.get_object("sdk/hello.txt").read()
    check(got == data, "V1 get_object returns the bytes (and oss2 verified the CRC)")

    special = "sdk/dir with space/a+b=c&d%e.txt"
    bucket.put_object(special, b"special")
    check(bucket.get_object(special).read() == b"special", "key with space, + = & %% round-trips")
    check(bucket.object_exists(special), "object_exists (HEAD) on special key")

    rng = bucket.get_object("sdk/hello.txt", byte_range=(6, 10)).read()
    check(rng == b"world", "ranged get_object bytes=6-10")

    meta = bucket.head_object("sdk/hello.txt")
    check(meta.content_length == len(data), "head_object Content-Length")
    check(meta.headers.get("x-oss-storage-class") == "Standard", "head_object storage class")
    check(meta.headers.get("x-oss-object-type") == "Normal", "head_object object type Normal")

    # --- bucket APIs ---------------------------------------------------------------------------
    info = bucket.get_bucket_info()
    check(info.name == a.bucket, "get_bucket_info name")
    check(info.location == "oss-" + a.region, "get_bucket_info location")
    check(info.bucket_encryption_rule.sse_algorithm is None, "get_bucket_info: no default encryption")
    loc = bucket.get_bucket_location()
    check(loc.location == "oss-" + a.region, "get_bucket_location")
    expect_error(bucket.get_bucket_encryption, "NoSuchServerSideEncryptionRule", 404,
                 "get_bucket_encryption on an unencrypted bucket")
    if a.encrypted_bucket:
        eb = oss2.Bucket(auth, a.endpoint, a.encrypted_bucket)
        enc = eb.get_bucket_encryption()
        check(enc.sse_algorithm == "KMS", "get_bucket_encryption on an encrypted bucket")
        check(eb.get_bucket_info().bucket_encryption_rule.sse_algorithm == "KMS",
              "get_bucket_info shows KMS encryption")

    # --- multipart: resumable_upload with small parts and threads ----------------------------
    path = os.path.join(workdir, "multipart.bin")
    blob = os.urandom(1024 * 1024 + 12345)
    with open(path, "wb") as f:
        f.write(blob)
    store = oss2.ResumableStore(root=workdir)
    r = oss2.resumable_upload(bucket, "sdk/multipart.bin", path, store=store,
                              multipart_threshold=200 * 1024, part_size=100 * 1024,
                              num_threads=4)
    check(r.status == 200, "resumable_upload (11 parts, 4 threads) completed")
    check(r.crc == crc64(blob), "CompleteMultipartUpload CRC-64 equals the file's")
    body = bucket.get_object("sdk/multipart.bin").read()
    check(hashlib.md5(body).digest() == hashlib.md5(blob).digest(), "multipart object content")
    head = bucket.head_object("sdk/multipart.bin")
    check(head.headers.get("x-oss-object-type") == "Multipart", "head_object type Multipart")
    check(head.etag.endswith("-11"), "multipart ETag has the part count")

    # multipart by hand: list_parts, abort, list uploads, EntityTooSmall
    up = bucket.init_multipart_upload("sdk/manual.bin").upload_id
    p1 = bucket.upload_part("sdk/manual.bin", up, 1, b"a" * 10)
    p2 = bucket.upload_part("sdk/manual.bin", up, 2, b"b" * 10)
    parts = bucket.list_parts("sdk/manual.bin", up).parts
    check([p.part_number for p in parts] == [1, 2], "list_parts lists both parts")
    uploads = [u.upload_id for u in bucket.list_multipart_uploads().upload_list]
    check(up in uploads, "list_multipart_uploads shows the upload")
    expect_error(lambda: bucket.complete_multipart_upload(
        "sdk/manual.bin", up, [oss2.models.PartInfo(1, p1.etag), oss2.models.PartInfo(2, p2.etag)]),
        "EntityTooSmall", 400, "complete with a 10-byte first part")
    bucket.abort_multipart_upload("sdk/manual.bin", up)
    expect_error(lambda: bucket.list_parts("sdk/manual.bin", up), "NoSuchUpload", 404,
                 "list_parts after abort")

    # --- V4 -----------------------------------------------------------------------------------
    auth4 = oss2.ProviderAuthV4(StaticCredentialsProvider(a.ak, a.sk))
    b4 = oss2.Bucket(auth4, a.endpoint, a.bucket, region=a.region)
    b4.put_object("sdk/v4.txt", b"v4 body")
    check(b4.get_object("sdk/v4.txt").read() == b"v4 body", "V4 put/get")
    check(b4.get_bucket_info().name == a.bucket, "V4 get_bucket_info")
    r4 = oss2.resumable_upload(b4, "sdk/multipart-v4.bin", path, store=store,
                               multipart_threshold=200 * 1024, part_size=300 * 1024,
                               num_threads=2)
    check(r4.crc == crc64(blob), "V4 resumable_upload CRC-64")
    b4_wrong_region = oss2.Bucket(auth4, a.endpoint, a.bucket, region="eu-central-1")
    # OSS answers a bucket of another region with 403 AccessDenied and the endpoint to use.
    e = expect_error(lambda: b4_wrong_region.get_object("sdk/v4.txt"), "AccessDenied", 403,
                     "V4 signed for another region")
    check(e.details.get("Endpoint") == "oss-%s.aliyuncs.com" % a.region,
          "the wrong-region answer names the endpoint (got %r)" % (e.details,))

    # --- a V4-only bucket ----------------------------------------------------------------------
    if a.v4only_bucket:
        v1 = oss2.Bucket(auth, a.endpoint, a.v4only_bucket)
        e = expect_error(lambda: v1.put_object("sdk/v1.txt", b"v1"), "AccessDenied", 403,
                         "V1 put_object on a V4-only bucket")
        check(e.ec == "0002-00000080", "V1 refusal carries EC 0002-00000080 (got %r)" % e.ec)
        e = expect_error(lambda: v1.head_object("sdk/v1.txt"), "AccessDenied", 403,
                         "V1 head_object on a V4-only bucket (error in x-oss-err)")
        check(e.headers.get("x-oss-ec") == "0002-00000080", "HEAD refusal x-oss-ec header")
        v4b = oss2.Bucket(auth4, a.endpoint, a.v4only_bucket, region=a.region)
        v4b.put_object("sdk/v4only.txt", b"v4 only")
        check(v4b.get_object("sdk/v4only.txt").read() == b"v4 only", "V4 put/get on a V4-only bucket")
        check(v4b.get_bucket_info().name == a.v4only_bucket, "V4 get_bucket_info on a V4-only bucket")

    # --- an Archive-default bucket and RestoreObject --------------------------------------------
    if a.archive_bucket:
        ab = oss2.Bucket(auth4, a.endpoint, a.archive_bucket, region=a.region)
        check(ab.get_bucket_info().storage_class == "Archive", "get_bucket_info StorageClass Archive")
        ab.put_object("sdk/cold.bin", b"cold bytes")
        h = ab.head_object("sdk/cold.bin")
        check(h.headers.get("x-oss-storage-class") == "Archive", "new object takes the bucket's class")
        check("x-oss-restore" not in h.headers, "no x-oss-restore before a restore")
        expect_error(lambda: ab.get_object("sdk/cold.bin"), "InvalidObjectState", 403,
                     "get_object of an Archive object not restored")
        ab.put_object("sdk/warm.bin", b"warm", headers={"x-oss-storage-class": "Standard"})
        check(ab.head_object("sdk/warm.bin").headers.get("x-oss-storage-class") == "Standard",
              "x-oss-storage-class: Standard on PutObject overrides the bucket's class")
        up = ab.init_multipart_upload("sdk/warm-mp.bin",
                                      headers={"x-oss-storage-class": "Standard"}).upload_id
        p1 = ab.upload_part("sdk/warm-mp.bin", up, 1, b"m" * 10)
        ab.complete_multipart_upload("sdk/warm-mp.bin", up, [oss2.models.PartInfo(1, p1.etag)])
        check(ab.head_object("sdk/warm-mp.bin").headers.get("x-oss-storage-class") == "Standard",
              "x-oss-storage-class: Standard on InitiateMultipartUpload")
        r = ab.restore_object("sdk/cold.bin")
        check(r.status == 202, "restore_object -> 202 Accepted")
        h = ab.head_object("sdk/cold.bin")
        check(h.headers.get("x-oss-restore") == 'ongoing-request="true"',
              "x-oss-restore while restoring (got %r)" % h.headers.get("x-oss-restore"))
        expect_error(lambda: ab.restore_object("sdk/cold.bin"), "RestoreAlreadyInProgress", 409,
                     "restore_object while restoring")
        deadline = time.time() + 30
        while time.time() < deadline:
            restore = ab.head_object("sdk/cold.bin").headers.get("x-oss-restore", "")
            if restore.startswith('ongoing-request="false"'):
                break
            time.sleep(0.2)
        check(restore.startswith('ongoing-request="false", expiry-date="'),
              "x-oss-restore once restored (got %r)" % restore)
        check(ab.get_object("sdk/cold.bin").read() == b"cold bytes", "get_object once restored")
        expect_error(lambda: ab.restore_object("sdk/warm.bin"), "OperationNotSupported", 400,
                     "restore_object of a Standard object")

    # --- presigned URLs -----------------------------------------------------------------------
    url = bucket.sign_url("GET", "sdk/hello.txt", 60)
    check(requests.get(url).content == data, "V1 presigned GET")
    url4 = b4.sign_url("GET", "sdk/v4.txt", 60)
    check(requests.get(url4).content == b"v4 body", "V4 presigned GET")

    # --- STS ----------------------------------------------------------------------------------
    if a.sts_ak:
        sts = oss2.Bucket(oss2.StsAuth(a.sts_ak, a.sts_sk, a.sts_token), a.endpoint, a.bucket)
        sts.put_object("sdk/sts.txt", b"sts")
        check(sts.get_object("sdk/sts.txt").read() == b"sts", "STS token put/get (V1)")
        wrong = oss2.Bucket(oss2.StsAuth(a.sts_ak, a.sts_sk, "bad-token"), a.endpoint, a.bucket)
        expect_error(lambda: wrong.get_object("sdk/sts.txt"), "InvalidSecurityToken", 403,
                     "STS with a wrong token")

    # --- wrong secret -------------------------------------------------------------------------
    bad = oss2.Bucket(oss2.Auth(a.ak, a.sk + "x"), a.endpoint, a.bucket)
    expect_error(lambda: bad.put_object("sdk/nope.txt", b"x"), "SignatureDoesNotMatch", 403,
                 "V1 put_object with a wrong secret")
    expect_error(lambda: bad.get_bucket_info(), "SignatureDoesNotMatch", 403,
                 "V1 get_bucket_info with a wrong secret")
    bad4 = oss2.Bucket(oss2.ProviderAuthV4(StaticCredentialsProvider(a.ak, a.sk + "x")),
                       a.endpoint, a.bucket, region=a.region)
    expect_error(lambda: bad4.get_object("sdk/v4.txt"), "SignatureDoesNotMatch", 403,
                 "V4 get_object with a wrong secret")
    nokey = oss2.Bucket(oss2.Auth("NoSuchKeyId", a.sk), a.endpoint, a.bucket)
    expect_error(lambda: nokey.get_object("sdk/hello.txt"), "InvalidAccessKeyId", 403,
                 "unknown AccessKeyId")
    check(not bucket.object_exists("sdk/nope.txt"), "refused put stored nothing")

    # --- delete -------------------------------------------------------------------------------
    bucket.delete_object("sdk/hello.txt")
    expect_error(lambda: bucket.get_object("sdk/hello.txt"), "NoSuchKey", 404, "get after delete")
    expect_error(lambda: oss2.Bucket(auth, a.endpoint, "no-such-bucket-x").get_object("k"),
                 "NoSuchBucket", 404, "unknown bucket")

    print("oss_sdk: %d passed, 0 failed" % CHECKS)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(e, file=sys.stderr)
        print("oss_sdk: %d passed, 1 failed" % CHECKS)
        sys.exit(1)
