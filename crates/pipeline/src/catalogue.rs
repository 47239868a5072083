//! The rule catalogue (`ecs-preflight rules`) and the fixes for the error codes ImportImage
//! answers with. Built from each crate's `RULES`, so it cannot drift from what is checked.

use preflight_report::Rule;

/// Every rule the tool checks, from the code itself: the formats' rules, the guest's,
/// then the ImportImage request's.
pub fn all_rules() -> Vec<&'static Rule> {
    let mut rules = preflight_formats::all_rules();
    rules.extend_from_slice(preflight_guest::RULES);
    rules.extend_from_slice(preflight_rules::RULES);
    rules
}

/// The fix for an error code ImportImage answered with: a service-decided code's, else the
/// hint of the rule with that code.
pub fn fix_for_api_code(code: &str) -> Option<&'static str> {
    if let Some(s) = preflight_rules::service_code(code) {
        return Some(s.fix);
    }
    all_rules()
        .into_iter()
        .find(|r| r.code == code)
        .map(|r| r.hint)
        .filter(|h| !h.is_empty())
}

/// Where a code comes from: `API` for an ImportImage error code, `ours` for one of
/// ecs-preflight's own.
pub fn code_origin(code: &str) -> &'static str {
    if preflight_rules::is_api_code(code) {
        "API"
    } else {
        "ours"
    }
}

pub use preflight_rules::{ServiceCode, SERVICE_CODES};
