#!/usr/bin/env python3
"""Run Alibaba's official ECS/RAM SDKs against the ecs-preflight emulator.

Usage (arguments or EMU_* environment variables):
  ecs_sdk.py --endpoint http://127.0.0.1:PORT --ak ID --sk SECRET --bucket B --region R
             [--timeout SECONDS] [--expect-no-role]
  ecs_sdk.py ... --ecs-endpoint URL --ram-endpoint URL [--denied-ak ID] --service-checks-only

Three clients are used:
  * alibabacloud_ecs20140526 (Tea SDK) with its default ACS3-HMAC-SHA256 signature,
  * the same SDK with signature_algorithm='v2' (RPC HMAC-SHA1, parameters in the query, POST),
  * aliyun-python-sdk-core + aliyun-python-sdk-ecs (RPC HMAC-SHA1, GET query, and POST form
    bodies through CommonRequest).
It uploads a small qcow2-looking object with oss2, imports it, polls DescribeTasks /
DescribeTaskAttribute until Finished, checks DescribeImages (default Status=Available),
ClientToken idempotency, DryRun, RAM GetRole, and that a wrong secret is refused with
IncompleteSignature (ACS3) / SignatureDoesNotMatch (HMAC-SHA1). Exits non-zero on a mismatch.

With --service-checks-only (an emulator with --service-endpoints --strict-service-endpoints):
ECS and RAM answer on their own endpoints, a RAM call on the ECS endpoint (and the reverse) is
InvalidVersion, an RPC call on the OSS endpoint is refused, and a key denied
ecs:DescribeImages / ram:GetRole (--denied-ak, same secret) gets Forbidden.RAM / NoPermission.
"""
import argparse
import json
import os
import struct
import sys
import time
import uuid

import oss2
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest
from aliyunsdkecs.request.v20140526.DescribeTaskAttributeRequest import DescribeTaskAttributeRequest
from aliyunsdkecs.request.v20140526.ImportImageRequest import ImportImageRequest as CoreImportImageRequest
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_tea_openapi.utils_models import Config as TeaConfig

CHECKS = 0


def check(cond, what):
    global CHECKS
    if not cond:
        raise AssertionError("FAILED: " + what)
    CHECKS += 1
    print("ok  " + what, flush=True)


def error_code(e):
    if isinstance(e, ServerException):
        return e.get_error_code()
    return getattr(e, "code", None)


def expect_error(fn, code, what):
    try:
        fn()
    except AssertionError:
        raise
    except Exception as e:  # both SDK families raise their own exception types
        got = error_code(e)
        check(got == code, "%s -> %s (got %s: %s)" % (what, code, got, str(e)[:300]))
        return e
    raise AssertionError("FAILED: %s succeeded, expected %s" % (what, code))


def tea_client(a, secret, algorithm=None):
    host = a.endpoint.split("://", 1)[1].rstrip("/")
    cfg = TeaConfig(access_key_id=a.ak, access_key_secret=secret, endpoint=host,
                    protocol="http", region_id=a.region)
    if algorithm:
        cfg.signature_algorithm = algorithm
    return EcsClient(cfg)


def core_client(a, secret):
    return AcsClient(a.ak, secret, a.region, auto_retry=False)


def core_do(client, a, request):
    host = a.endpoint.split("://", 1)[1].rstrip("/")
    request.set_endpoint(host)
    request.set_protocol_type("http")
    request.set_accept_format("JSON")
    return json.loads(client.do_action_with_exception(request))


def common(a, product_version, action, method="GET", body=None, query=None):
    host = a.endpoint.split("://", 1)[1].rstrip("/")
    r = CommonRequest(domain=host, version=product_version, action_name=action)
    r.set_method(method)
    r.set_protocol_type("http")
    r.set_accept_format("json")
    for k, v in (query or {}).items():
        r.add_query_param(k, v)
    for k, v in (body or {}).items():
        r.add_body_params(k, v)
    return r


def wait_finished(poll, timeout, what):
    deadline = time.time() + timeout
    seen = set()
    while time.time() < deadline:
        status = poll()
        seen.add(status)
        if status in ("Finished", "Failed"):
            return status, seen
        time.sleep(0.3)
    raise AssertionError("FAILED: %s did not finish within %ss (saw %s)" % (what, timeout, seen))


def on(a, endpoint=None, ak=None):
    """A copy of the arguments aimed at another endpoint or signed by another key."""
    b = argparse.Namespace(**vars(a))
    if endpoint:
        b.endpoint = endpoint
    if ak:
        b.ak = ak
    return b


def service_checks(a):
    ecs = on(a, a.ecs_endpoint)
    ram = on(a, a.ram_endpoint)
    role = {"RoleName": "AliyunECSImageImportDefaultRole"}
    r = tea_client(ecs, a.sk).describe_regions(ecs_models.DescribeRegionsRequest())
    check(r.status_code == 200, "ACS3 DescribeRegions on the ECS endpoint")
    core = core_client(a, a.sk)
    got = core_do(core, ram, common(ram, "2015-05-01", "GetRole", query=role))
    check(got["Role"]["RoleName"] == role["RoleName"], "RAM GetRole on the RAM endpoint")
    expect_error(lambda: core_do(core, ecs, common(ecs, "2015-05-01", "GetRole", query=role)),
                 "InvalidVersion", "RAM GetRole sent to the ECS endpoint")
    expect_error(lambda: tea_client(ram, a.sk).describe_regions(ecs_models.DescribeRegionsRequest()),
                 "InvalidVersion", "ECS DescribeRegions sent to the RAM endpoint")
    try:
        core_do(core, a, common(a, "2014-05-26", "DescribeRegions"))
        refused = False
    except AssertionError:
        raise
    except Exception:  # OSS answers with its own XML error, not an ECS result
        refused = True
    check(refused, "ECS DescribeRegions sent to the OSS endpoint is refused")
    if a.denied_ak:
        d_ecs = on(ecs, ak=a.denied_ak)
        d_ram = on(ram, ak=a.denied_ak)
        dt = tea_client(d_ecs, a.sk)
        expect_error(lambda: dt.describe_images(ecs_models.DescribeImagesRequest(region_id=a.region)),
                     "Forbidden.RAM", "DescribeImages with a key denied ecs:DescribeImages")
        check(dt.describe_regions(ecs_models.DescribeRegionsRequest()).status_code == 200,
              "DescribeRegions with that key is allowed")
        dc = core_client(d_ram, a.sk)
        expect_error(lambda: core_do(dc, d_ram, common(d_ram, "2015-05-01", "GetRole", query=role)),
                     "NoPermission", "GetRole with a key denied ram:GetRole")


def main():
    env = os.environ.get
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", default=env("EMU_ENDPOINT"))
    ap.add_argument("--ak", default=env("EMU_AK"))
    ap.add_argument("--sk", default=env("EMU_SK"))
    ap.add_argument("--bucket", default=env("EMU_BUCKET", "ecs-preflight"))
    ap.add_argument("--region", default=env("EMU_REGION", "cn-hangzhou"))
    ap.add_argument("--timeout", type=float, default=float(env("EMU_TIMEOUT", "60")))
    ap.add_argument("--expect-no-role", action="store_true")
    ap.add_argument("--ecs-endpoint", default=env("EMU_ECS_ENDPOINT"))
    ap.add_argument("--ram-endpoint", default=env("EMU_RAM_ENDPOINT"))
    ap.add_argument("--denied-ak", default=env("EMU_DENIED_AK"))
    ap.add_argument("--service-checks-only", action="store_true")
    a = ap.parse_args()
    if not (a.endpoint and a.ak and a.sk):
        ap.error("--endpoint, --ak and --sk are required")
    if a.service_checks_only:
        if not (a.ecs_endpoint and a.ram_endpoint):
            ap.error("--service-checks-only needs --ecs-endpoint and --ram-endpoint")
        service_checks(a)
        print("ecs_sdk: %d passed, 0 failed" % CHECKS)
        return 0

    # A small object that looks like a 10 GiB qcow2 image.
    header = b"QFI\xfb" + struct.pack(">I", 3) + b"\0" * 16 + struct.pack(">Q", 10 * 1024 ** 3)
    image = header + b"\0" * (256 * 1024 - len(header))
    bucket = oss2.Bucket(oss2.Auth(a.ak, a.sk), a.endpoint, a.bucket)
    bucket.put_object("images/sdk-test.qcow2", image)
    check(True, "uploaded images/sdk-test.qcow2 with oss2")

    suffix = uuid.uuid4().hex[:8]
    tea = tea_client(a, a.sk)
    disk = ecs_models.ImportImageRequestDiskDeviceMapping(
        ossbucket=a.bucket, ossobject="images/sdk-test.qcow2", format="QCOW2", disk_image_size=20)

    def import_request(name, token=None, dry_run=None, object_key=None):
        d = disk if object_key is None else ecs_models.ImportImageRequestDiskDeviceMapping(
            ossbucket=a.bucket, ossobject=object_key, format="QCOW2", disk_image_size=20)
        return ecs_models.ImportImageRequest(
            region_id=a.region, image_name=name, disk_device_mapping=[d],
            architecture="x86_64", ostype="linux", platform="Ubuntu", boot_mode="BIOS",
            description="imported by the SDK conformance test", client_token=token,
            dry_run=dry_run, license_type="Auto",
            features=ecs_models.ImportImageRequestFeatures(nvme_support="supported", imds_support="v2"),
            tag=[ecs_models.ImportImageRequestTag(key="owner", value="sdk"),
                 ecs_models.ImportImageRequestTag(key="env", value="")])

    if a.expect_no_role:
        expect_error(lambda: tea.import_image(import_request("sdk-norole-" + suffix)),
                     "NoSetRoletoECSServiceAcount", "ImportImage without the RAM role")
        ram = core_client(a, a.sk)
        expect_error(lambda: core_do(ram, a, common(a, "2015-05-01", "GetRole",
                                                    query={"RoleName": "AliyunECSImageImportDefaultRole"})),
                     "EntityNotExist.Role", "RAM GetRole for a missing role")
        print("ecs_sdk: %d passed, 0 failed" % CHECKS)
        return 0

    # --- Tea SDK, ACS3-HMAC-SHA256 -------------------------------------------------------------
    expect_error(lambda: tea.import_image(import_request("sdk-dry-" + suffix, dry_run=True)),
                 "DryRunOperation", "ImportImage DryRun=true")
    token = str(uuid.uuid4())
    name = "sdk-acs3-" + suffix
    r = tea.import_image(import_request(name, token=token)).body
    check(r.image_id.startswith("m-") and r.task_id.startswith("t-"), "ACS3 ImportImage returns ImageId and TaskId")
    again = tea.import_image(import_request(name, token=token)).body
    check((again.image_id, again.task_id) == (r.image_id, r.task_id), "same ClientToken returns the same image")
    expect_error(lambda: tea.import_image(import_request(name, token=str(uuid.uuid4()))),
                 "InvalidImageName.Duplicated", "ImportImage with a name already taken")
    expect_error(lambda: tea.import_image(import_request("sdk-missing-" + suffix, object_key="images/nope.qcow2")),
                 "InvalidOSSObject.NotFound", "ImportImage of a missing object")
    expect_error(lambda: tea.import_image(import_request("1bad name")),
                 "InvalidImageName.Malformed", "ImportImage with a malformed name")

    pending = tea.describe_images(ecs_models.DescribeImagesRequest(region_id=a.region, image_id=r.image_id)).body
    check(pending.total_count == 0, "DescribeImages hides an importing image by default")
    creating = tea.describe_images(ecs_models.DescribeImagesRequest(
        region_id=a.region, image_id=r.image_id, status="Creating,Waiting,Available,CreateFailed")).body
    check(creating.total_count == 1, "DescribeImages with Status=Creating,Waiting,... shows it")

    def poll_tasks():
        body = tea.describe_tasks(ecs_models.DescribeTasksRequest(
            region_id=a.region, task_ids=r.task_id, task_action="ImportImage")).body
        return body.task_set.task[0].task_status

    status, seen = wait_finished(poll_tasks, a.timeout, "ACS3 import task")
    check(status == "Finished", "DescribeTasks reaches Finished (saw %s)" % sorted(seen))
    attr = tea.describe_task_attribute(ecs_models.DescribeTaskAttributeRequest(
        region_id=a.region, task_id=r.task_id)).body
    check(attr.task_process == "100%" and attr.task_status == "Finished", "DescribeTaskAttribute 100% Finished")
    imgs = tea.describe_images(ecs_models.DescribeImagesRequest(region_id=a.region, image_id=r.image_id)).body
    check(imgs.total_count == 1 and imgs.images.image[0].status == "Available", "DescribeImages: Available")
    check(imgs.images.image[0].image_name == name, "DescribeImages: ImageName")
    regions = tea.describe_regions(ecs_models.DescribeRegionsRequest()).body
    check(any(x.region_id == a.region for x in regions.regions.region), "DescribeRegions lists the region")

    # --- CopyImage, DescribeImages in the destination, image sharing ----------------------------
    dest = "cn-shanghai" if a.region != "cn-shanghai" else "cn-beijing"
    cp = tea.copy_image(ecs_models.CopyImageRequest(
        region_id=a.region, image_id=r.image_id, destination_region_id=dest,
        destination_image_name=name, client_token="sdk-copy-" + suffix,
        tag=[ecs_models.CopyImageRequestTag(key="owner", value="sdk")])).body
    check(cp.image_id.startswith("m-") and cp.image_id != r.image_id, "CopyImage returns a new ImageId")
    again = tea.copy_image(ecs_models.CopyImageRequest(
        region_id=a.region, image_id=r.image_id, destination_region_id=dest,
        destination_image_name=name, client_token="sdk-copy-" + suffix,
        tag=[ecs_models.CopyImageRequestTag(key="owner", value="sdk")])).body
    check(again.image_id == cp.image_id, "CopyImage with the same ClientToken returns the same copy")
    expect_error(lambda: tea.copy_image(ecs_models.CopyImageRequest(
        region_id=a.region, image_id="m-doesnotexist", destination_region_id=dest)),
                 "InvalidImageId.NotFound", "CopyImage of an unknown image")

    def poll_copy():
        body = tea.describe_images(ecs_models.DescribeImagesRequest(
            region_id=dest, image_id=cp.image_id, status="Creating,Available")).body
        return body.images.image[0].status if body.images.image else "missing"

    deadline = time.time() + a.timeout
    status = poll_copy()
    while status == "Creating" and time.time() < deadline:
        time.sleep(0.3)
        status = poll_copy()
    check(status == "Available", "the copy becomes Available in %s (saw %s)" % (dest, status))
    # CancelCopyImage: RegionId is the copy's region; only a copy still Creating is cancelled.
    expect_error(lambda: tea.cancel_copy_image(ecs_models.CancelCopyImageRequest(
        region_id=dest, image_id=cp.image_id)), "IncorrectImageStatus", "CancelCopyImage of a finished copy")
    expect_error(lambda: tea.cancel_copy_image(ecs_models.CancelCopyImageRequest(
        region_id=a.region, image_id=r.image_id)), "ImageCreatedNotFromCopy",
                 "CancelCopyImage of an image not made by CopyImage")
    dest2 = [x for x in ("cn-beijing", "cn-qingdao", "cn-zhangjiakou") if x not in (a.region, dest)][0]
    cp2 = tea.copy_image(ecs_models.CopyImageRequest(
        region_id=a.region, image_id=r.image_id, destination_region_id=dest2,
        destination_image_name=name, client_token="sdk-copy2-" + suffix)).body
    cancelled = tea.cancel_copy_image(ecs_models.CancelCopyImageRequest(
        region_id=dest2, image_id=cp2.image_id)).body
    check(bool(cancelled.request_id), "CancelCopyImage of a copy in progress answers with a RequestId")
    gone = tea.describe_images(ecs_models.DescribeImagesRequest(
        region_id=dest2, image_id=cp2.image_id, status="Creating,Available,CreateFailed")).body
    check(not gone.images.image, "the cancelled copy is deleted from %s" % dest2)
    src_left = tea.describe_images(ecs_models.DescribeImagesRequest(region_id=a.region, image_id=r.image_id)).body
    check(src_left.total_count == 1, "the source stays after CancelCopyImage")
    expect_error(lambda: tea.cancel_copy_image(ecs_models.CancelCopyImageRequest(
        region_id=dest2, image_id=cp2.image_id)), "InvalidImageId.NotFound", "CancelCopyImage of a cancelled copy")
    friend = "1111222233334444"
    tea.modify_image_share_permission(ecs_models.ModifyImageSharePermissionRequest(
        region_id=dest, image_id=cp.image_id, add_account=[friend]))
    shared = tea.describe_image_share_permission(ecs_models.DescribeImageSharePermissionRequest(
        region_id=dest, image_id=cp.image_id)).body
    check(shared.total_count == 1 and shared.accounts.account[0].aliyun_id == friend,
          "DescribeImageSharePermission lists the account")
    expect_error(lambda: tea.modify_image_share_permission(ecs_models.ModifyImageSharePermissionRequest(
        region_id=dest, image_id=cp.image_id, add_account=["not-an-account"])),
                 "InvalidAccount.NotFound", "ModifyImageSharePermission with a malformed account")

    # --- Tea SDK with the RPC HMAC-SHA1 signature (signature_algorithm='v2') --------------------
    tea_v2 = tea_client(a, a.sk, "v2")
    r2 = tea_v2.import_image(import_request("sdk-teav2-" + suffix)).body
    check(r2.task_id.startswith("t-"), "Tea SDK HMAC-SHA1 (v2) ImportImage")
    t2 = tea_v2.describe_tasks(ecs_models.DescribeTasksRequest(region_id=a.region, task_ids=r2.task_id)).body
    check(t2.total_count == 1, "Tea SDK HMAC-SHA1 (v2) DescribeTasks")
    c2 = tea_v2.cancel_task(ecs_models.CancelTaskRequest(region_id=a.region, task_id=r2.task_id)).body
    check(bool(c2.request_id), "CancelTask")
    expect_error(lambda: tea_v2.cancel_task(ecs_models.CancelTaskRequest(region_id=a.region, task_id=r2.task_id)),
                 "InvalidTaskId.IncorrectTaskStatus", "CancelTask twice")

    # --- old core SDK, HMAC-SHA1 ---------------------------------------------------------------
    core = core_client(a, a.sk)
    req = CoreImportImageRequest()
    req.set_ImageName("sdk-core-" + suffix)
    req.set_Architecture("x86_64")
    req.set_OSType("linux")
    req.set_Platform("CentOS")
    req.set_DiskDeviceMappings([{"OSSBucket": a.bucket, "OSSObject": "images/sdk-test.qcow2",
                                 "Format": "QCOW2", "DiskImageSize": 20}])
    r3 = core_do(core, a, req)
    check(r3["TaskId"].startswith("t-"), "core SDK (HMAC-SHA1, GET) ImportImage")

    def poll_core():
        q = common(a, "2014-05-26", "DescribeTasks", method="POST",
                   body={"RegionId": a.region, "TaskIds": r3["TaskId"]})
        return core_do(core, a, q)["TaskSet"]["Task"][0]["TaskStatus"]

    status, _ = wait_finished(poll_core, a.timeout, "core SDK import task")
    check(status == "Finished", "core SDK DescribeTasks (POST form body) reaches Finished")
    ta = DescribeTaskAttributeRequest()
    ta.set_TaskId(r3["TaskId"])
    attr3 = core_do(core, a, ta)
    check(attr3["TaskStatus"] == "Finished", "core SDK DescribeTaskAttribute")
    imgs3 = core_do(core, a, common(a, "2014-05-26", "DescribeImages",
                                    query={"RegionId": a.region, "ImageId": r3["ImageId"]}))
    check(imgs3["TotalCount"] == 1, "core SDK DescribeImages")
    role = core_do(core, a, common(a, "2015-05-01", "GetRole",
                                   query={"RoleName": "AliyunECSImageImportDefaultRole"}))
    check(role["Role"]["RoleName"] == "AliyunECSImageImportDefaultRole", "RAM GetRole finds the import role")
    expect_error(lambda: core_do(core, a, common(a, "2015-05-01", "GetRole", query={"RoleName": "NoSuchRole"})),
                 "EntityNotExist.Role", "RAM GetRole for an unknown role")

    # --- wrong secret --------------------------------------------------------------------------
    bad_tea = tea_client(a, a.sk + "x")
    expect_error(lambda: bad_tea.describe_regions(ecs_models.DescribeRegionsRequest()),
                 "IncompleteSignature", "ACS3 with a wrong secret")
    bad_v2 = tea_client(a, a.sk + "x", "v2")
    expect_error(lambda: bad_v2.describe_regions(ecs_models.DescribeRegionsRequest()),
                 "SignatureDoesNotMatch", "Tea HMAC-SHA1 with a wrong secret")
    bad_core = core_client(a, a.sk + "x")
    expect_error(lambda: core_do(bad_core, a, common(a, "2014-05-26", "DescribeRegions")),
                 "SignatureDoesNotMatch", "core SDK GET with a wrong secret")
    expect_error(lambda: core_do(bad_core, a, common(a, "2014-05-26", "DescribeTasks", method="POST",
                                                     body={"RegionId": a.region})),
                 "SignatureDoesNotMatch", "core SDK POST form with a wrong secret")

    print("ecs_sdk: %d passed, 0 failed" % CHECKS)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except AssertionError as e:
        print(e, file=sys.stderr)
        print("ecs_sdk: %d passed, 1 failed" % CHECKS)
        sys.exit(1)
