//! The ECS (2014-05-26) and RAM (2015-05-01) RPC half: request parsing (GET query or POST
//! form), HMAC-SHA1 and ACS3-HMAC-SHA256 verification, dispatch, and the JSON/XML shapes.

pub mod api;
pub mod copy;
pub mod import;
pub mod render;
pub mod sign;
pub mod state;

use std::sync::Arc;

use http::{HeaderMap, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::Value;

pub use state::EcsState;

use crate::config::AccessKey;
use crate::oss::body::read_small;
use crate::server::{full, Body, Shared};
use crate::util::{parse_iso8601, parse_query, request_id_uuid, skew, unix_now, QueryParam};

/// Largest RPC body (form-encoded parameters).
pub const MAX_RPC_BODY: usize = 1024 * 1024;
/// ECS API version.
pub const ECS_VERSION: &str = "2014-05-26";
/// RAM API version.
pub const RAM_VERSION: &str = "2015-05-01";
/// STS API version (AssumeRole).
pub const STS_VERSION: &str = "2015-04-01";
/// Timestamps more than 15 minutes from server time are refused.
pub const MAX_SKEW_SECS: u64 = 15 * 60;

/// An RPC error answer: HTTP status, code, message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsError {
    /// HTTP status.
    pub status: u16,
    /// `Code`.
    pub code: String,
    /// `Message`.
    pub message: String,
}

impl EcsError {
    /// A new error.
    pub fn new(status: u16, code: impl Into<String>, message: impl Into<String>) -> Self {
        EcsError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    /// `400 MissingParameter` in the documented wording.
    pub fn missing(name: &str) -> Self {
        EcsError::new(
            400,
            "MissingParameter",
            format!("An input parameter \"{name}\" that is mandatory for processing the request is not supplied."),
        )
    }

    /// `400 InvalidParameter` naming the parameter.
    pub fn invalid(name: &str, why: &str) -> Self {
        EcsError::new(
            400,
            "InvalidParameter",
            format!("The specified parameter \"{name}\" is not valid: {why}."),
        )
    }
}

/// Which service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// ECS.
    Ecs,
    /// RAM.
    Ram,
    /// STS.
    Sts,
}

impl Product {
    /// The product name (`Ecs`, `Ram`, `Sts`).
    pub fn name(self) -> &'static str {
        match self {
            Product::Ecs => "Ecs",
            Product::Ram => "Ram",
            Product::Sts => "Sts",
        }
    }

    /// The RAM namespace of its actions (`ecs`, `ram`, `sts`).
    pub fn ram_namespace(self) -> &'static str {
        match self {
            Product::Ecs => "ecs",
            Product::Ram => "ram",
            Product::Sts => "sts",
        }
    }
}

/// The service a Host names: `ecs.aliyuncs.com`, `ecs.<region>.aliyuncs.com`,
/// `ecs-<region>.aliyuncs.com`, `ecs-vpc.<region>.aliyuncs.com`, `ram.aliyuncs.com`,
/// `sts.aliyuncs.com`, `sts.<region>.aliyuncs.com`, `sts-vpc.<region>.aliyuncs.com`.
pub fn service_of_host(host: &str) -> Option<Product> {
    let name = host.rsplit_once(':').map_or(host, |(h, p)| {
        if p.bytes().all(|b| b.is_ascii_digit()) {
            h
        } else {
            host
        }
    });
    let name = name.to_ascii_lowercase();
    let rest = name.strip_suffix(".aliyuncs.com")?;
    let first = rest.split('.').next().unwrap_or("");
    if first == "ecs" || first.starts_with("ecs-") {
        Some(Product::Ecs)
    } else if first == "ram" {
        Some(Product::Ram)
    } else if first == "sts" || first.starts_with("sts-") {
        Some(Product::Sts)
    } else {
        None
    }
}

/// The request's parameters (query and form body together).
#[derive(Debug, Clone, Default)]
pub struct Params(pub Vec<QueryParam>);

impl Params {
    /// The value of `key` (the last one if repeated).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|p| p.key == key)
            .map(|p| p.value.as_str())
    }

    /// A required, non-empty parameter.
    pub fn required(&self, key: &str) -> Result<&str, EcsError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| EcsError::missing(key))
    }
}

/// One API call being served.
pub struct Call<'a> {
    /// Shared state.
    pub shared: &'a Arc<Shared>,
    /// Parameters.
    pub params: &'a Params,
    /// Request id.
    pub request_id: &'a str,
}

/// Whether a request is ECS/RAM RPC rather than OSS.
pub fn is_rpc<B>(req: &Request<B>) -> bool {
    let h = req.headers();
    if h.contains_key("x-acs-action") {
        return true;
    }
    let auth = h
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth.starts_with("ACS3-") {
        return true;
    }
    if auth.starts_with("OSS") || req.uri().path() != "/" {
        return false;
    }
    let q = req.uri().query().unwrap_or("");
    let has_action = q.split('&').any(|p| p.starts_with("Action="));
    let form = h
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    has_action || (req.method() == http::Method::POST && form)
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn lookup<'k>(keys: &'k [AccessKey], id: &str) -> Result<&'k AccessKey, EcsError> {
    keys.iter().find(|k| k.id == id).ok_or_else(|| {
        EcsError::new(
            404,
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        )
    })
}

fn check_token(key: &AccessKey, provided: Option<&str>) -> Result<(), EcsError> {
    match (key.security_token.as_deref(), provided) {
        (None, None) => Ok(()),
        (Some(t), Some(p)) if t == p => Ok(()),
        (Some(_), None) => Err(EcsError::new(
            400,
            "MissingSecurityToken",
            "SecurityToken is mandatory for this AccessKeyId.",
        )),
        _ => Err(EcsError::new(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        )),
    }
}

fn check_time(value: &str, now: u64) -> Result<(), EcsError> {
    let t = parse_iso8601(value).ok_or_else(|| {
        EcsError::new(
            400,
            "InvalidTimeStamp.Format",
            "Specified time stamp or date value is not well formatted.",
        )
    })?;
    if skew(t, now) > MAX_SKEW_SECS {
        return Err(EcsError::new(
            400,
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    Ok(())
}

fn nonce_once(shared: &Shared, key_id: &str, nonce: &str) -> Result<(), EcsError> {
    if shared.ecs.use_nonce(key_id, nonce) {
        Ok(())
    } else {
        Err(EcsError::new(
            400,
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ))
    }
}

/// HMAC-SHA1 RPC signature (SignatureVersion 1.0) over every parameter received.
fn verify_rpc(shared: &Shared, method: &str, params: &Params, now: u64) -> Result<(), EcsError> {
    let id = params.required("AccessKeyId")?;
    let sig = params.required("Signature")?;
    let sm = params.required("SignatureMethod")?;
    if sm != "HMAC-SHA1" {
        return Err(EcsError::new(
            400,
            "InvalidSignatureMethod",
            format!("Specified signature method {sm:?} is not supported."),
        ));
    }
    let sv = params.required("SignatureVersion")?;
    if sv != "1.0" {
        return Err(EcsError::new(
            400,
            "InvalidSignatureVersion",
            format!("Specified signature version {sv:?} is not supported."),
        ));
    }
    let nonce = params.required("SignatureNonce")?;
    check_time(params.required("Timestamp")?, now)?;
    let keys = shared.keys();
    let key = lookup(&keys, id)?;
    check_token(key, params.get("SecurityToken"))?;
    let sts = sign::rpc_string_to_sign(method, &params.0);
    if sign::rpc_sign(&key.secret, &sts) != sig {
        return Err(EcsError::new(
            400,
            "SignatureDoesNotMatch",
            format!("Specified signature is not matched with our calculation. server string to sign is:{sts}"),
        ));
    }
    nonce_once(shared, id, nonce)
}

/// Headers an ACS3 signature must cover when present.
const ACS3_MUST_SIGN: &[&str] = &[
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
    "x-acs-security-token",
];

/// ACS3-HMAC-SHA256 over the client's SignedHeaders.
fn verify_acs3(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &HeaderMap,
    query: &[QueryParam],
    body: &[u8],
    now: u64,
) -> Result<(), EcsError> {
    let auth = header(headers, "authorization").unwrap_or("");
    let rest = auth.strip_prefix("ACS3-HMAC-SHA256 ").ok_or_else(|| {
        EcsError::new(
            400,
            "InvalidAuthorization",
            "Specified signature algorithm is not supported; use ACS3-HMAC-SHA256.",
        )
    })?;
    let h = sign::parse_acs3(rest).ok_or_else(|| {
        EcsError::new(
            400,
            "InvalidAuthorization",
            "Specified Authorization header is malformed.",
        )
    })?;
    for name in [
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
        "x-acs-version",
        "x-acs-action",
    ] {
        if header(headers, name).is_none() {
            return Err(EcsError::missing(name));
        }
    }
    for name in ACS3_MUST_SIGN {
        if headers.contains_key(*name) && !h.signed_headers.iter().any(|s| s == name) {
            return Err(EcsError::new(400, "IncompleteSignature", format!("The request signature does not conform to Aliyun standards: header {name} must be signed.")));
        }
    }
    check_time(header(headers, "x-acs-date").unwrap_or(""), now)?;
    let keys = shared.keys();
    let key = lookup(&keys, &h.access_key_id)?;
    check_token(key, header(headers, "x-acs-security-token"))?;
    let mut signed: Vec<(String, String)> = Vec::new();
    for name in &h.signed_headers {
        let mut vals: Vec<String> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_string())
            .collect();
        vals.sort();
        signed.push((name.clone(), vals.join(",")));
    }
    let canon = sign::acs3_canonical_request(method, path, query, &signed, &sign::sha256_hex(body));
    let sts = sign::acs3_string_to_sign(&canon);
    if sign::acs3_sign(&key.secret, &sts) != h.signature {
        return Err(EcsError::new(
            400,
            "IncompleteSignature",
            format!("The request signature does not conform to Aliyun standards. server string to sign is:{sts}"),
        ));
    }
    nonce_once(
        shared,
        &h.access_key_id,
        header(headers, "x-acs-signature-nonce").unwrap_or(""),
    )
}

/// The code of an injected outage ([`crate::Faults::unavailable_actions`]).
const UNAVAILABLE: &str = "ServiceUnavailable";

fn known_action(product: Product, action: &str) -> bool {
    match product {
        Product::Ecs => matches!(
            action,
            "ImportImage"
                | "DescribeTasks"
                | "DescribeTaskAttribute"
                | "DescribeImages"
                | "CancelTask"
                | "DescribeRegions"
                | "CopyImage"
                | "CancelCopyImage"
                | "ModifyImageSharePermission"
                | "DescribeImageSharePermission"
        ),
        Product::Ram => matches!(action, "GetRole" | "ListPoliciesForRole"),
        Product::Sts => matches!(action, "AssumeRole" | "AssumeRoleWithOIDC"),
    }
}

async fn dispatch(call: &Call<'_>, product: Product, action: &str) -> Result<Value, EcsError> {
    match (product, action) {
        (Product::Ecs, "ImportImage") => import::import_image(call),
        (Product::Ecs, "DescribeTasks") => api::describe_tasks(call),
        (Product::Ecs, "DescribeTaskAttribute") => api::describe_task_attribute(call),
        (Product::Ecs, "DescribeImages") => api::describe_images(call),
        (Product::Ecs, "CancelTask") => api::cancel_task(call),
        (Product::Ecs, "DescribeRegions") => api::describe_regions(call),
        (Product::Ecs, "CopyImage") => copy::copy_image(call),
        (Product::Ecs, "CancelCopyImage") => copy::cancel_copy_image(call),
        (Product::Ecs, "ModifyImageSharePermission") => copy::modify_image_share_permission(call),
        (Product::Ecs, "DescribeImageSharePermission") => {
            copy::describe_image_share_permission(call)
        }
        (Product::Ram, "GetRole") => api::get_role(call),
        (Product::Ram, "ListPoliciesForRole") => api::list_policies_for_role(call),
        (Product::Sts, "AssumeRole") => api::assume_role(call),
        (Product::Sts, "AssumeRoleWithOIDC") => api::assume_role_with_oidc(call),
        _ => Err(EcsError::new(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )),
    }
}

/// Serves one RPC request. `only`: the endpoint serves this product alone (a call for another
/// product is refused as that endpoint refuses it: `400 InvalidVersion`).
pub async fn handle(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    only: Option<Product>,
) -> Response<Body> {
    let request_id = request_id_uuid();
    let (parts, body) = req.into_parts();
    let host = header(&parts.headers, "host")
        .unwrap_or("ecs.aliyuncs.com")
        .to_string();
    // The Tea SDK sends x-acs-action with either signature; only the Authorization header
    // says which one was used.
    let acs3 = header(&parts.headers, "authorization").is_some_and(|a| a.starts_with("ACS3-"));
    let now = unix_now();
    let body = read_small(body, MAX_RPC_BODY).await;
    let query = parse_query(parts.uri.query().unwrap_or(""), true);
    let is_form = header(&parts.headers, "content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let mut product = Product::Ecs;
    let mut action_name = String::from("RpcUnknown");
    let mut want_xml = false;
    let result: Result<Value, EcsError> = async {
        let body = body.map_err(|_| {
            EcsError::new(
                400,
                "InvalidParameter",
                "The request body is too large or incomplete.",
            )
        })?;
        let query = query.ok_or_else(|| {
            EcsError::new(
                400,
                "InvalidParameter",
                "The query string is not valid UTF-8.",
            )
        })?;
        let form = if is_form {
            let text = std::str::from_utf8(&body).map_err(|_| {
                EcsError::new(400, "InvalidParameter", "The form body is not valid UTF-8.")
            })?;
            parse_query(text, true).ok_or_else(|| {
                EcsError::new(400, "InvalidParameter", "The form body is not valid UTF-8.")
            })?
        } else {
            Vec::new()
        };
        // Like the gateway, merge into one map: a name in both query and body (the core SDK
        // puts RegionId in both) is one parameter, the body's value winning.
        let mut all: Vec<QueryParam> = Vec::new();
        for p in query.iter().cloned().chain(form) {
            match all.iter_mut().find(|x| x.key == p.key) {
                Some(x) => x.value = p.value,
                None => all.push(p),
            }
        }
        let params = Params(all);
        let format = params
            .get("Format")
            .unwrap_or(if acs3 { "JSON" } else { "XML" });
        want_xml = format.eq_ignore_ascii_case("xml");
        let (action, version) = if acs3 {
            (
                header(&parts.headers, "x-acs-action").map(str::to_string),
                header(&parts.headers, "x-acs-version").map(str::to_string),
            )
        } else {
            (
                params.get("Action").map(str::to_string),
                params.get("Version").map(str::to_string),
            )
        };
        let action = action
            .filter(|a| !a.is_empty())
            .ok_or_else(|| EcsError::missing("Action"))?;
        let version = version
            .filter(|v| !v.is_empty())
            .ok_or_else(|| EcsError::missing("Version"))?;
        product = match version.as_str() {
            ECS_VERSION if only.is_none_or(|o| o == Product::Ecs) => Product::Ecs,
            RAM_VERSION if only.is_none_or(|o| o == Product::Ram) => Product::Ram,
            STS_VERSION if only.is_none_or(|o| o == Product::Sts) => Product::Sts,
            _ => {
                return Err(EcsError::new(
                    400,
                    "InvalidVersion",
                    "Specified parameter Version is not valid.",
                ))
            }
        };
        if !known_action(product, &action) {
            return Err(EcsError::new(
                404,
                "InvalidAction.NotFound",
                "Specified api is not found, please check your url and method.",
            ));
        }
        action_name = action.clone();
        shared.counters.request(&action);
        let key_id = if acs3 {
            header(&parts.headers, "authorization")
                .and_then(|a| sign::parse_acs3(a.strip_prefix("ACS3-HMAC-SHA256 ")?))
                .map(|h| h.access_key_id)
        } else {
            params.get("AccessKeyId").map(str::to_string)
        };
        // AssumeRoleWithOIDC is anonymous: the OIDC token is the proof, there is no key.
        let anonymous = product == Product::Sts && action == "AssumeRoleWithOIDC";
        if anonymous {
            shared.counters.signature("anonymous");
        } else if acs3 {
            verify_acs3(
                shared,
                parts.method.as_str(),
                parts.uri.path(),
                &parts.headers,
                &query,
                &body,
                now,
            )?;
            shared.counters.signature(sign::ACS3);
        } else {
            verify_rpc(shared, parts.method.as_str(), &params, now)?;
            shared.counters.signature("HMAC-SHA1");
        }
        let ram_action = format!("{}:{action}", product.ram_namespace());
        let denied = shared
            .keys()
            .iter()
            .any(|k| Some(&k.id) == key_id.as_ref() && k.denies(&ram_action));
        if denied {
            return Err(match product {
                Product::Ram => EcsError::new(
                    403,
                    "NoPermission",
                    format!("You are not authorized to do this action. You should be authorized by RAM. Action: {ram_action}"),
                ),
                _ => EcsError::new(
                    403,
                    "Forbidden.RAM",
                    "User not authorized to operate on the specified resource, or this API doesn't support RAM.",
                ),
            });
        }
        if shared
            .faults()
            .unavailable_actions
            .iter()
            .any(|a| a == &action)
        {
            return Err(EcsError::new(
                503,
                UNAVAILABLE,
                "The request has failed due to a temporary failure of the server.",
            ));
        }
        let call = Call {
            shared,
            params: &params,
            request_id: &request_id,
        };
        dispatch(&call, product, &action).await
    }
    .await;
    if action_name == "RpcUnknown" {
        shared.counters.request(&action_name);
    }
    let mut retry_after = None;
    let (status, value) = match result {
        Ok(mut v) => {
            if let Value::Object(m) = &mut v {
                m.insert("RequestId".into(), Value::String(request_id.clone()));
            }
            (200, v)
        }
        Err(e) => {
            shared.counters.error(&e.code);
            if e.code == UNAVAILABLE {
                retry_after = shared.faults().unavailable_retry_after;
            }
            let hostname = host.split(':').next().unwrap_or("").to_string();
            let v = serde_json::json!({
                "RequestId": request_id,
                "HostId": hostname,
                "Code": e.code,
                "Message": e.message,
                "Recommend": format!("https://api.aliyun.com/troubleshoot?q={}&product={}&requestId={}", e.code, product.name(), request_id),
            });
            (e.status, v)
        }
    };
    let (ctype, text) = if want_xml {
        let root = if status == 200 {
            format!("{action_name}Response")
        } else {
            "Error".to_string()
        };
        ("text/xml;charset=utf-8", render::to_xml(&root, &value))
    } else {
        ("application/json;charset=utf-8", value.to_string())
    };
    let mut b = Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", ctype)
        .header("x-acs-request-id", request_id.as_str())
        .header("Date", crate::util::http_date(now));
    if let Some(secs) = retry_after {
        b = b.header("x-acs-retry-after", secs.to_string());
    }
    b.body(full(text))
        .unwrap_or_else(|_| Response::new(full("")))
}
