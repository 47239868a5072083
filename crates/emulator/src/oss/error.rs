//! OSS error responses (reference §6): an XML `<Error>` body, or for HEAD an empty body with the
//! XML base64-encoded in `x-oss-err` and the error-center code in `x-oss-ec`.

use base64::Engine;

use crate::util::xml_escape;

/// One OSS error, ready to be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OssError {
    /// HTTP status.
    pub status: u16,
    /// `<Code>`.
    pub code: &'static str,
    /// `<Message>`.
    pub message: String,
    /// Error-center code (`<EC>` and `x-oss-ec`), e.g. `0002-00000040`; empty where the
    /// reference gives none (then neither `<EC>` nor `x-oss-ec` is sent rather than a made-up one).
    pub ec: &'static str,
    /// Operation-specific extra elements (`BucketName`, `ArgumentName`, `StringToSign`, …).
    pub extra: Vec<(&'static str, String)>,
}

impl OssError {
    /// A new error without extras.
    pub fn new(
        status: u16,
        code: &'static str,
        ec: &'static str,
        message: impl Into<String>,
    ) -> Self {
        OssError {
            status,
            code,
            message: message.into(),
            ec,
            extra: Vec::new(),
        }
    }

    /// Adds an extra element.
    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.extra.push((name, value.into()));
        self
    }

    /// `400 InvalidArgument` naming the argument.
    pub fn invalid_argument(
        ec: &'static str,
        message: impl Into<String>,
        name: &str,
        value: &str,
    ) -> Self {
        OssError::new(400, "InvalidArgument", ec, message)
            .with("ArgumentName", name)
            .with("ArgumentValue", value)
    }

    /// `403 AccessDenied` for a bucket of another region, with the `<Endpoint>` it must be
    /// addressed at, as OSS answers it.
    pub fn wrong_endpoint(bucket_region: &str) -> Self {
        OssError::new(
            403,
            "AccessDenied",
            "0003-00001403",
            "The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.",
        )
        .with("Endpoint", format!("oss-{bucket_region}.aliyuncs.com"))
    }

    /// `404 NoSuchBucket`.
    pub fn no_such_bucket(bucket: &str) -> Self {
        OssError::new(
            404,
            "NoSuchBucket",
            "0015-00000101",
            "The specified bucket does not exist.",
        )
        .with("BucketName", bucket)
    }

    /// `404 NoSuchKey`.
    pub fn no_such_key(key: &str) -> Self {
        OssError::new(
            404,
            "NoSuchKey",
            "0026-00000001",
            "The specified key does not exist.",
        )
        .with("Key", key)
    }

    /// `404 NoSuchUpload`.
    pub fn no_such_upload(upload_id: &str, ec: &'static str) -> Self {
        OssError::new(
            404,
            "NoSuchUpload",
            ec,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with("UploadId", upload_id)
    }

    /// `400 MalformedXML`.
    pub fn malformed_xml(detail: &str) -> Self {
        OssError::new(
            400,
            "MalformedXML",
            "0042-00000205",
            format!("The XML you provided was not well-formed or did not validate against our published schema: {detail}"),
        )
    }

    /// `500 InternalError` for local failures (disk errors); the detail never carries secrets.
    pub fn internal(detail: &str) -> Self {
        OssError::new(
            500,
            "InternalError",
            "",
            format!("We encountered an internal error. Please try again. ({detail})"),
        )
    }

    /// The `<Error>` document.
    pub fn to_xml(&self, request_id: &str, host_id: &str) -> String {
        let mut s = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\n");
        let mut el = |name: &str, value: &str| {
            s.push_str(&format!("  <{name}>{}</{name}>\n", xml_escape(value)));
        };
        el("Code", self.code);
        el("Message", &self.message);
        el("RequestId", request_id);
        el("HostId", host_id);
        for (k, v) in &self.extra {
            el(k, v);
        }
        if !self.ec.is_empty() {
            el("EC", self.ec);
            el(
                "RecommendDoc",
                &format!("https://api.aliyun.com/troubleshoot?q={}", self.ec),
            );
        }
        s.push_str("</Error>\n");
        s
    }

    /// The `x-oss-err` header value for HEAD responses.
    pub fn to_header(&self, request_id: &str, host_id: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.to_xml(request_id, host_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let e = OssError::no_such_bucket("a<b");
        let x = e.to_xml("RID", "host");
        assert!(x.contains("<Code>NoSuchBucket</Code>"));
        assert!(x.contains("<BucketName>a&lt;b</BucketName>"));
        assert!(x.contains("<EC>0015-00000101</EC>"));
        let h = e.to_header("RID", "host");
        let back = base64::engine::general_purpose::STANDARD.decode(h).unwrap();
        assert_eq!(String::from_utf8(back).unwrap(), x);
    }
}
