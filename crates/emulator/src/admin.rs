//! The admin endpoint, unsigned but answered only to loopback peers:
//!
//! | request | answer |
//! |---|---|
//! | `GET /_emulator/health` | `{"status":"ok"}` |
//! | `GET /_emulator/counters` | [`crate::Counters`] as JSON |
//! | `POST /_emulator/counters/reset` | 204, counters zeroed |
//! | `GET /_emulator/faults` | [`crate::Faults`] as JSON |
//! | `POST /_emulator/faults` | body: [`crate::Faults`] JSON (missing fields take their defaults); 200 with the faults now in force, 400 `{"error":…}` if invalid |
//!
//! Anything else under `/_emulator/` is 404; a non-loopback peer gets 403.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use crate::faults::Faults;
use crate::oss::body::read_small;
use crate::server::{full, Body, Shared};

/// Path prefix of the admin endpoint.
pub const PREFIX: &str = "/_emulator/";
/// Largest accepted admin body.
pub const MAX_ADMIN_BODY: usize = 64 * 1024;

fn json_response(status: u16, v: &serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("Content-Type", "application/json")
        .body(full(v.to_string()))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// Serves `/_emulator/...`.
pub async fn handle(
    shared: &Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body> {
    if !peer.ip().is_loopback() {
        return json_response(
            403,
            &json!({"error": "the admin endpoint answers loopback peers only"}),
        );
    }
    let path = req.uri().path().trim_start_matches(PREFIX).to_string();
    match (req.method().clone(), path.as_str()) {
        (Method::GET, "health") => json_response(200, &json!({"status": "ok"})),
        (Method::GET, "counters") => {
            let c = shared.counters.snapshot();
            json_response(200, &serde_json::to_value(c).unwrap_or_default())
        }
        (Method::POST, "counters/reset") => {
            shared.counters.reset();
            json_response(204, &json!({}))
        }
        (Method::GET, "faults") => json_response(
            200,
            &serde_json::to_value(shared.faults()).unwrap_or_default(),
        ),
        (Method::POST, "faults") => {
            let body = match read_small(req.into_body(), MAX_ADMIN_BODY).await {
                Ok(b) => b,
                Err(_) => {
                    return json_response(400, &json!({"error": "body too large or incomplete"}))
                }
            };
            let faults: Faults = match serde_json::from_slice(&body) {
                Ok(f) => f,
                Err(e) => return json_response(400, &json!({"error": e.to_string()})),
            };
            if let Err(e) = faults.validate() {
                return json_response(400, &json!({"error": e.to_string()}));
            }
            shared.set_faults_pub(faults);
            json_response(
                200,
                &serde_json::to_value(shared.faults()).unwrap_or_default(),
            )
        }
        _ => json_response(404, &json!({"error": "unknown admin path"})),
    }
}
