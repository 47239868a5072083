#!/usr/bin/env python3
"""A second opinion on every byte ecs-preflight signs.

A recording HTTP server on 127.0.0.1 that answers each OSS, ECS, RAM and STS request with a
plausible canned success (so the client's flow goes on), remembers every request as it came
off the wire, and when its stdin closes recomputes each request's signature with Alibaba's
OFFICIAL Python SDKs' signers, for the same request, date and headers:

  OSS V4          alibabacloud-oss-v2 SignerV4 (exact Authorization), oss2 ProviderAuthV4 (signature)
  OSS V1          alibabacloud-oss-v2 SignerV1 and oss2 Auth/StsAuth (exact Authorization)
  RPC HMAC-SHA1   alibabacloud-tea-openapi Utils.get_rpcsignature and aliyun-python-sdk-core's
                  rpc_signature_composer (ECS, RAM, STS AssumeRole)
  ACS3-HMAC-SHA256  alibabacloud-tea-openapi Utils.get_authorization (exact Authorization)

It shares no code with the client or the emulator. Usage:

  signcheck.py --key ID:SECRET [--region cn-hangzhou]

prints "PORT <n>" once listening, then, after stdin is closed, one JSON document: a list with,
per request, its kind, signature scheme, User-Agent and every check (sdk, ok, ours, theirs).
"""
import argparse
import base64
import datetime
import email.utils
import hashlib
import json
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import oss2
import oss2.auth
import oss2.http
import oss2.utils
from alibabacloud_oss_v2.crc import Crc64
from alibabacloud_oss_v2.credentials import StaticCredentialsProvider
from alibabacloud_oss_v2.signer import SignerV1, SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext
from alibabacloud_tea_openapi.utils import Utils as OpenApiUtils
from aliyunsdkcore.auth.composer import rpc_signature_composer as core_rpc

# What AssumeRole hands out; later requests signed with it are checked with it.
STS_AK, STS_SK, STS_TOKEN = "STS.recorded", "sts-recorded-secret", "CAIS-recorded-token"
IMAGE_ID, TASK_ID = "m-recorded0001", "t-recorded0001"
ROLE_POLICY = json.dumps({"Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow",
                                         "Principal": {"Service": ["ecs.aliyuncs.com"]}}],
                          "Version": "1"})


class Recorded:
    def __init__(self, method, target, headers, body):
        self.method, self.target, self.headers, self.body = method, target, headers, body
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.raw_query = split.query
        self.query = urllib.parse.parse_qsl(split.query, keep_blank_values=True)

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def params(self):
        p = dict(self.query)
        if (self.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
            p.update(urllib.parse.parse_qsl(self.body.decode(), keep_blank_values=True))
        return p

    def is_rpc(self):
        return "Action" in self.params() or self.header("x-acs-action") is not None

    def bucket_key(self):
        """Path-style: /bucket/key (key None for a bucket-level request)."""
        parts = self.path.lstrip("/").split("/", 1)
        bucket = urllib.parse.unquote(parts[0]) or None
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 and parts[1] else None
        return bucket, key

    def kind(self):
        if self.is_rpc():
            return self.params().get("Action") or self.header("x-acs-action")
        q = dict(self.query)
        _, key = self.bucket_key()
        m = self.method
        if key is None:
            for sub, name in (("bucketInfo", "GetBucketInfo"), ("encryption", "GetBucketEncryption"),
                              ("location", "GetBucketLocation"), ("uploads", "ListMultipartUploads")):
                if sub in q:
                    return name
            return "Bucket" + m
        if m == "PUT":
            return "UploadPart" if "partNumber" in q else "PutObject"
        if m == "POST":
            return "InitiateMultipartUpload" if "uploads" in q else "CompleteMultipartUpload"
        if m == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in q else "DeleteObject"
        if m == "GET":
            return "ListParts" if "uploadId" in q else "GetObject"
        if m == "HEAD":
            return "HeadObject"
        return "Object" + m


class State:
    def __init__(self, region):
        self.region = region
        self.lock = threading.Lock()
        self.requests = []
        self.objects = {}   # key -> bytes
        self.uploads = {}   # upload id -> (key, {part number: bytes})
        self.next_upload = 1


def crc64(data):
    c = Crc64(0)
    c.update(data)
    return c.sum64()


def etag(data):
    return '"%s"' % hashlib.md5(data).hexdigest().upper()


def xml(body):
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body


def answer_oss(st, r):
    """(status, headers, body) for an OSS request."""
    kind = r.kind()
    q = dict(r.query)
    bucket, key = r.bucket_key()
    region = st.region
    with st.lock:
        if kind == "GetBucketInfo":
            return 200, {}, xml(
                "<BucketInfo><Bucket><CreationDate>2024-01-01T00:00:00.000Z</CreationDate>"
                "<ExtranetEndpoint>oss-%s.aliyuncs.com</ExtranetEndpoint>"
                "<IntranetEndpoint>oss-%s-internal.aliyuncs.com</IntranetEndpoint>"
                "<Location>oss-%s</Location><StorageClass>Standard</StorageClass>"
                "<DataRedundancyType>LRS</DataRedundancyType><Name>%s</Name>"
                "<AccessControlList><Grant>private</Grant></AccessControlList>"
                "</Bucket></BucketInfo>" % (region, region, region, bucket))
        if kind == "GetBucketLocation":
            return 200, {}, xml("<LocationConstraint>oss-%s</LocationConstraint>" % region)
        if kind == "GetBucketEncryption":
            return 404, {"x-oss-ec": "0010-00000010"}, xml(
                "<Error><Code>NoSuchServerSideEncryptionRule</Code><Message>The server side "
                "encryption configuration was not found</Message><RequestId>R</RequestId>"
                "<HostId>h</HostId><BucketName>%s</BucketName><EC>0010-00000010</EC></Error>" % bucket)
        if kind == "ListMultipartUploads":
            ups = "".join("<Upload><Key>%s</Key><UploadId>%s</UploadId>"
                          "<Initiated>2024-01-01T00:00:00.000Z</Initiated></Upload>" % (k, u)
                          for u, (k, _) in st.uploads.items())
            return 200, {}, xml("<ListMultipartUploadsResult><Bucket>%s</Bucket><KeyMarker></KeyMarker>"
                                "<UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads>"
                                "<IsTruncated>false</IsTruncated>%s</ListMultipartUploadsResult>"
                                % (bucket, ups))
        if kind == "PutObject":
            st.objects[key] = r.body
            return 200, {"ETag": etag(r.body), "x-oss-hash-crc64ecma": str(crc64(r.body))}, ""
        if kind == "HeadObject":
            if key not in st.objects:
                err = xml("<Error><Code>NoSuchKey</Code><Message>The specified key does not exist."
                          "</Message><RequestId>R</RequestId><EC>0026-00000001</EC></Error>")
                return 404, {"x-oss-ec": "0026-00000001",
                             "x-oss-err": base64.b64encode(err.encode()).decode()}, ""
            data = st.objects[key]
            return 200, {"ETag": etag(data), "x-oss-hash-crc64ecma": str(crc64(data)),
                         "x-oss-storage-class": "Standard", "x-oss-object-type": "Normal",
                         "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
                         "Content-Length-Override": str(len(data))}, ""
        if kind == "GetObject":
            return 200, {}, st.objects.get(key, b"")
        if kind == "DeleteObject":
            st.objects.pop(key, None)
            return 204, {}, ""
        if kind == "InitiateMultipartUpload":
            uid = "%032X" % st.next_upload
            st.next_upload += 1
            st.uploads[uid] = (key, {})
            return 200, {}, xml("<InitiateMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                                "<UploadId>%s</UploadId></InitiateMultipartUploadResult>"
                                % (bucket, urllib.parse.quote(key), uid))
        if kind == "UploadPart":
            st.uploads.setdefault(q["uploadId"], (key, {}))[1][int(q["partNumber"])] = r.body
            return 200, {"ETag": etag(r.body), "x-oss-hash-crc64ecma": str(crc64(r.body))}, ""
        if kind == "ListParts":
            parts = st.uploads.get(q["uploadId"], (key, {}))[1]
            body = "".join("<Part><PartNumber>%d</PartNumber><LastModified>2024-01-01T00:00:00.000Z"
                           "</LastModified><ETag>%s</ETag><Size>%d</Size><HashCrc64ecma>%d"
                           "</HashCrc64ecma></Part>" % (n, etag(d), len(d), crc64(d))
                           for n, d in sorted(parts.items()))
            return 200, {}, xml("<ListPartsResult><Bucket>%s</Bucket><Key>%s</Key><UploadId>%s</UploadId>"
                                "<MaxParts>1000</MaxParts><IsTruncated>false</IsTruncated>%s"
                                "</ListPartsResult>" % (bucket, key, q["uploadId"], body))
        if kind == "CompleteMultipartUpload":
            _, parts = st.uploads.pop(q["uploadId"], (key, {}))
            data = b"".join(d for _, d in sorted(parts.items()))
            st.objects[key] = data
            return 200, {"x-oss-hash-crc64ecma": str(crc64(data))}, xml(
                "<CompleteMultipartUploadResult><Bucket>%s</Bucket><Key>%s</Key>"
                "<ETag>\"%s-%d\"</ETag></CompleteMultipartUploadResult>"
                % (bucket, key, hashlib.md5(data).hexdigest().upper(), len(parts)))
        if kind == "AbortMultipartUpload":
            st.uploads.pop(q["uploadId"], None)
            return 204, {}, ""
    return 400, {}, xml("<Error><Code>InvalidRequest</Code><Message>not recorded: %s</Message>"
                        "<RequestId>R</RequestId></Error>" % kind)


def answer_rpc(st, r):
    p = r.params()
    action = r.kind()
    out = {"RequestId": "R-" + action}
    if action == "AssumeRole":
        exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
        out.update({"AssumedRoleUser": {"Arn": "acs:ram::1:role/x/s", "AssumedRoleId": "1:s"},
                    "Credentials": {"AccessKeyId": STS_AK, "AccessKeySecret": STS_SK,
                                    "SecurityToken": STS_TOKEN,
                                    "Expiration": exp.strftime("%Y-%m-%dT%H:%M:%SZ")}})
    elif action == "ImportImage":
        out.update({"ImageId": IMAGE_ID, "TaskId": TASK_ID, "RegionId": st.region})
    elif action == "DescribeTasks":
        out.update({"TotalCount": 1, "PageNumber": 1, "PageSize": 100, "RegionId": st.region,
                    "TaskSet": {"Task": [{"TaskId": TASK_ID, "TaskAction": "ImportImage",
                                          "TaskStatus": "Finished", "SupportCancel": "false",
                                          "ResourceId": IMAGE_ID,
                                          "CreationTime": "2024-01-01T00:00Z",
                                          "FinishedTime": "2024-01-01T00:10Z"}]}})
    elif action == "DescribeTaskAttribute":
        out.update({"TaskId": p.get("TaskId", TASK_ID), "TaskAction": "ImportImage",
                    "TaskStatus": "Finished", "TaskProcess": "100%", "SupportCancel": "false",
                    "RegionId": st.region,
                    "OperationProgressSet": {"OperationProgress": [{"OperationStatus": "Success"}]}})
    elif action == "DescribeImages":
        images = []
        if p.get("ImageId"):
            images = [{"ImageId": p["ImageId"], "ImageName": "recorded", "Status": "Available",
                       "Progress": "100%", "Size": 1, "OSType": "linux", "Platform": "Ubuntu",
                       "Architecture": "x86_64", "BootMode": "BIOS",
                       "CreationTime": "2024-01-01T00:00Z"}]
        out.update({"TotalCount": len(images), "PageNumber": 1, "PageSize": 100,
                    "RegionId": st.region, "Images": {"Image": images}})
    elif action == "DescribeRegions":
        out.update({"Regions": {"Region": [{"RegionId": st.region, "LocalName": st.region,
                                            "RegionEndpoint": "ecs.%s.aliyuncs.com" % st.region}]}})
    elif action == "GetRole":
        out.update({"Role": {"RoleName": p.get("RoleName", ""), "RoleId": "1",
                             "Arn": "acs:ram::1:role/" + p.get("RoleName", "").lower(),
                             "AssumeRolePolicyDocument": ROLE_POLICY}})
    return 200, {"Content-Type": "application/json;charset=utf-8"}, json.dumps(out)


def make_handler(st):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def read_body(self):
            if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                out = b""
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def any(self):
            body = self.read_body()
            r = Recorded(self.command, self.path, list(self.headers.items()), body)
            with st.lock:
                st.requests.append(r)
            status, headers, payload = (answer_rpc if r.is_rpc() else answer_oss)(st, r)
            payload = payload if isinstance(payload, bytes) else payload.encode()
            length = headers.pop("Content-Length-Override", None)
            self.send_response(status)
            self.send_header("x-oss-request-id", "R%05d" % len(st.requests))
            if not r.is_rpc() and payload:
                self.send_header("Content-Type", "application/xml")
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", length or str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = any

    return Handler


# ---- verification ------------------------------------------------------------------------

def check(sdk, ours, theirs):
    return {"sdk": sdk, "ok": ours == theirs, "ours": ours, "theirs": theirs}


def shape(name, ok, detail):
    return {"sdk": "shape:" + name, "ok": bool(ok), "ours": detail, "theirs": ""}


def verify_oss(r, keys, region):
    auth = r.header("authorization") or ""
    bucket, key = r.bucket_key()
    headers = {k: v for k, v in r.headers if k.lower() != "authorization"}
    url = "http://127.0.0.1" + r.target
    ak = re.match(r"(?:OSS4-HMAC-SHA256 Credential=|OSS )([^/:]+)", auth)
    if not ak or ak.group(1) not in keys:
        return "unknown", [shape("access key", False, auth)]
    sk, token = keys[ak.group(1)]
    cred = StaticCredentialsProvider(ak.group(1), sk, token).get_credentials()
    checks = [shape("security token", r.header("x-oss-security-token") == token,
                    "x-oss-security-token present" if r.header("x-oss-security-token") else "no token")]
    if auth.startswith("OSS4-HMAC-SHA256 "):
        t = datetime.datetime.strptime(r.header("x-oss-date") or "", "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc)
        extra = re.search(r"AdditionalHeaders=([^,]*)", auth)
        req = HttpRequest(r.method, url, headers=dict(headers))
        ctx = SigningContext(product="oss", region=region, bucket=bucket, key=key, request=req,
                             credentials=cred, signing_time=t,
                             additional_headers=set(extra.group(1).split(";")) if extra else None)
        SignerV4().sign(ctx)
        checks.append(check("alibabacloud-oss-v2 SignerV4", auth, req.headers["Authorization"]))
        checks.append(check("alibabacloud-oss-v2 SignerV4 Date", r.header("date"), req.headers["Date"]))
        checks.append(check("alibabacloud-oss-v2 SignerV4 x-oss-content-sha256",
                            r.header("x-oss-content-sha256"), "UNSIGNED-PAYLOAD"))

        class FixedClock(datetime.datetime):
            @classmethod
            def utcnow(cls):
                return t.replace(tzinfo=None)

        saved = oss2.auth.datetime
        oss2.auth.datetime = FixedClock
        try:
            o = oss2.http.Request(r.method, url, params=dict(r.query), headers=dict(headers),
                                  region=region, product="oss")
            provider = oss2.credentials.StaticCredentialsProvider(ak.group(1), sk, token)
            oss2.ProviderAuthV4(provider)._sign_request(o, bucket, key or "")
        finally:
            oss2.auth.datetime = saved
        sig = lambda a: (re.search(r"Signature=([0-9a-f]+)", a) or [None, None])[1]
        checks.append(check("oss2 ProviderAuthV4 (signature)", sig(auth), sig(o.headers["authorization"])))
        return "OSS V4", checks
    if auth.startswith("OSS "):
        t = email.utils.parsedate_to_datetime(r.header("date"))
        req = HttpRequest(r.method, url, headers=dict(headers))
        ctx = SigningContext(product="oss", region=region, bucket=bucket, key=key, request=req,
                             credentials=cred, signing_time=t)
        if r.kind() == "GetBucketEncryption":
            # The SDK adds it per operation (operations/bucket_encryption.py).
            ctx.sub_resource = ["encryption"]
        SignerV1().sign(ctx)
        checks.append(check("alibabacloud-oss-v2 SignerV1", auth, req.headers["Authorization"]))
        saved = oss2.utils.http_date
        oss2.utils.http_date = lambda *a: r.header("date")
        try:
            o = oss2.http.Request(r.method, url, params=dict(r.query), headers=dict(headers))
            a = oss2.StsAuth(ak.group(1), sk, token) if token else oss2.Auth(ak.group(1), sk)
            a._sign_request(o, bucket, key or "")
        finally:
            oss2.utils.http_date = saved
        checks.append(check("oss2 Auth (V1)", auth, o.headers["authorization"]))
        return "OSS V1", checks
    return "unsigned", [shape("Authorization", False, auth)]


def verify_rpc(r, keys):
    auth = r.header("authorization") or ""
    if auth.startswith("ACS3-HMAC-SHA256 "):
        m = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})", auth)
        if not m or m.group(1) not in keys:
            return "ACS3", [shape("Authorization", False, auth)]
        sk, token = keys[m.group(1)]
        signed = m.group(2).split(";")
        need = ["host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
                "x-acs-signature-nonce", "x-acs-version"] + (["x-acs-security-token"] if token else [])
        sent_acs = sorted(k.lower() for k, _ in r.headers if k.lower().startswith("x-acs-"))

        class Req:
            method = r.method
            pathname = r.path
            query = dict(r.query)
            headers = {n: r.header(n) for n in signed}

        payload = hashlib.sha256(r.body).hexdigest()
        checks = [
            shape("signed headers", all(n in signed for n in need) and all(n in signed for n in sent_acs),
                  m.group(2)),
            shape("security token", r.header("x-acs-security-token") == token, "x-acs-security-token"),
            check("x-acs-content-sha256 is the body's", r.header("x-acs-content-sha256"), payload),
            check("alibabacloud-tea-openapi Utils.get_authorization", auth,
                  OpenApiUtils.get_authorization(Req, "ACS3-HMAC-SHA256", payload, m.group(1), sk)),
        ]
        return "ACS3-HMAC-SHA256", checks
    p = r.params()
    sig = p.pop("Signature", None)
    ak = p.get("AccessKeyId")
    if sig is None or ak not in keys:
        return "RPC", [shape("Signature parameter and key", False, r.target)]
    sk, token = keys[ak]
    compose = getattr(core_rpc, "__compose_string_to_sign")
    core_sign = getattr(core_rpc, "__get_signature")
    checks = [
        shape("SignatureMethod/Version", p.get("SignatureMethod") == "HMAC-SHA1"
              and p.get("SignatureVersion") == "1.0", "%s %s" % (p.get("SignatureMethod"), p.get("SignatureVersion"))),
        shape("Timestamp", re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", p.get("Timestamp", "")),
              p.get("Timestamp")),
        shape("SignatureNonce", p.get("SignatureNonce"), p.get("SignatureNonce")),
        shape("Format and Version", p.get("Format") and p.get("Version"), "%s %s" % (p.get("Format"), p.get("Version"))),
        shape("SecurityToken", p.get("SecurityToken") == token, "SecurityToken"),
        shape("no Authorization header", not auth, auth),
        check("alibabacloud-tea-openapi Utils.get_rpcsignature", sig,
              OpenApiUtils.get_rpcsignature(p, r.method, sk)),
        check("aliyun-python-sdk-core rpc_signature_composer", sig, core_sign(compose(r.method, p), sk)),
    ]
    return "RPC HMAC-SHA1", checks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", action="append", required=True, help="ID:SECRET[:TOKEN]")
    ap.add_argument("--region", default="cn-hangzhou")
    a = ap.parse_args()
    keys = {STS_AK: (STS_SK, STS_TOKEN)}
    for k in a.key:
        parts = k.split(":")
        keys[parts[0]] = (parts[1], parts[2] if len(parts) > 2 else None)
    st = State(a.region)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(st))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print("PORT %d" % server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()
    report = []
    for r in st.requests:
        try:
            scheme, checks = verify_rpc(r, keys) if r.is_rpc() else verify_oss(r, keys, a.region)
        except Exception as e:  # a crash in a check is a failed check, with its reason
            scheme, checks = "error", [shape("verification", False, repr(e))]
        report.append({"kind": r.kind(), "method": r.method, "target": r.target, "scheme": scheme,
                       "user_agent": r.header("user-agent"), "checks": checks})
    print(json.dumps(report, indent=1), flush=True)


if __name__ == "__main__":
    main()
