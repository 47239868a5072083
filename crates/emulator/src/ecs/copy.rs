//! CopyImage, CancelCopyImage, ModifyImageSharePermission and DescribeImageSharePermission:
//! a copy is a new image in the destination region, `Creating` until `copy_seconds` have
//! passed, then `Available`; a copy still `Creating` can be cancelled (it is deleted); sharing
//! needs an `Available` image and well-formed account ids.

use serde_json::{json, Value};

use crate::config::ACCOUNT_ID;
use crate::ecs::import::{fingerprint, known_region, region, tags, valid_image_name};
use crate::ecs::state::{Image, TokenEntry};
use crate::ecs::{Call, EcsError};
use crate::util::{random_alnum, unix_now_ms, Utc};

/// Most `AddAccount.N` / `RemoveAccount.N` of one ModifyImageSharePermission (N is 1..=10).
pub const MAX_ACCOUNTS_PER_CALL: u32 = 10;
/// Most accounts one image is shared with.
pub const MAX_SHARED_ACCOUNTS: usize = 50;

fn not_found() -> EcsError {
    EcsError::new(
        404,
        "InvalidImageId.NotFound",
        "The specified ImageId does not exist.",
    )
}

fn not_available() -> EcsError {
    EcsError::new(
        403,
        "IncorrectImageStatus",
        "The current status of the image does not support this operation.",
    )
}

/// The image `ImageId` of `region` with its status now; `InvalidImageId.NotFound` otherwise.
fn own_image(call: &Call<'_>, region: &str) -> Result<(Image, &'static str), EcsError> {
    let id = call.params.required("ImageId")?;
    let data = call.shared.ecs.lock();
    let image = data
        .images
        .get(id)
        .filter(|i| i.region == region)
        .cloned()
        .ok_or_else(not_found)?;
    let (status, _) = image
        .state(&data.tasks, unix_now_ms())
        .ok_or_else(not_found)?;
    Ok((image, status))
}

/// CopyImage: `RegionId` and `ImageId` name an `Available` image of this account;
/// `DestinationRegionId` a known region. The copy gets `DestinationImageName` (unique in its
/// region), `DestinationDescription` and `Tag.N`: tags are not copied on their own.
pub fn copy_image(call: &Call<'_>) -> Result<Value, EcsError> {
    let p = call.params;
    let region = region(call)?;
    let dest = p
        .get("DestinationRegionId")
        .filter(|d| !d.is_empty())
        .unwrap_or(&region)
        .to_string();
    if !known_region(call, &dest) {
        return Err(EcsError::new(
            404,
            "InvalidRegionId.NotFound",
            "The specified DestinationRegionId does not exist.",
        ));
    }
    let name = p.get("DestinationImageName").unwrap_or("").to_string();
    if !name.is_empty() && !valid_image_name(&name) {
        return Err(EcsError::new(
            400,
            "InvalidImageName.Malformed",
            "The specified DestinationImageName is wrongly formed.",
        ));
    }
    let description = p.get("DestinationDescription").unwrap_or("").to_string();
    if !description.is_empty()
        && (description.chars().count() > 256
            || description.starts_with("http://")
            || description.starts_with("https://"))
    {
        return Err(EcsError::new(
            400,
            "InvalidDescription.Malformed",
            "The specified description is wrongly formed.",
        ));
    }
    let token = p.get("ClientToken").unwrap_or("").to_string();
    if token.len() > 64 || !token.is_ascii() {
        return Err(EcsError::new(
            400,
            "InvalidClientToken.Malformed",
            "The specified parameter clientToken is not valid.",
        ));
    }
    let new_tags = tags(p)?;
    let dry_run = match p.get("DryRun") {
        None | Some("") => false,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(_) => return Err(EcsError::invalid("DryRun", "must be true or false")),
    };
    let (source, status) = own_image(call, &region)?;
    if !token.is_empty() && !dry_run {
        let data = call.shared.ecs.lock();
        if let Some(e) = data.client_tokens.get(&token) {
            if e.fingerprint != fingerprint(p) {
                return Err(EcsError::new(400, "IdempotentParameterMismatch", "Request uses a client token in a previous request but is not identical to that request."));
            }
            return Ok(json!({ "ImageId": e.image_id }));
        }
    }
    if status != "Available" {
        return Err(not_available());
    }
    if dry_run {
        return Err(EcsError::new(
            400,
            "DryRunOperation",
            "Request validation has been passed with DryRun flag set.",
        ));
    }
    let mut data = call.shared.ecs.lock();
    if !name.is_empty()
        && data
            .images
            .values()
            .any(|i| i.region == dest && i.name == name)
    {
        return Err(EcsError::new(
            400,
            "InvalidImageName.Duplicated",
            "The destination image is exist.",
        ));
    }
    let now = unix_now_ms();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let copy_ms = (call.shared.config.copy_seconds * 1000.0).round() as u64;
    let image_id = format!("m-{}", random_alnum(18));
    let copy = Image {
        image_id: image_id.clone(),
        region: dest.clone(),
        name: if name.is_empty() {
            format!("copy-of-{}", source.image_id)
        } else {
            name
        },
        description,
        tags: new_tags,
        created_ms: now,
        task_id: String::new(),
        copied_from: Some(source.image_id.clone()),
        ready_ms: Some(now.saturating_add(copy_ms)),
        shared_with: Vec::new(),
        ..source
    };
    data.images.insert(image_id.clone(), copy);
    if !token.is_empty() {
        data.client_tokens.insert(
            token,
            TokenEntry {
                fingerprint: fingerprint(p),
                image_id: image_id.clone(),
                task_id: String::new(),
                region: dest,
            },
        );
    }
    let snap = data.clone();
    drop(data);
    call.shared.ecs.save(&snap);
    Ok(json!({ "ImageId": image_id }))
}

/// CancelCopyImage: `RegionId` is the copy's (destination) region, `ImageId` a copy of this
/// account there still `Creating`. The copy is deleted; its source stays. Errors as
/// documented: `InvalidImageId.NotFound` (no such image in that region, or already
/// cancelled), `ImageCreatedNotFromCopy` (not made by CopyImage), `IncorrectImageStatus`
/// (the copy is finished). The ClientToken of the copy keeps naming it, as for a cancelled
/// import: a CopyImage with that token answers with the deleted id.
pub fn cancel_copy_image(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let id = call.params.required("ImageId")?.to_string();
    let now = unix_now_ms();
    let mut data = call.shared.ecs.lock();
    let image = data
        .images
        .get(&id)
        .filter(|i| i.region == region)
        .ok_or_else(not_found)?;
    if image.copied_from.is_none() {
        return Err(EcsError::new(
            400,
            "ImageCreatedNotFromCopy",
            "The specified image is not the target image of a copy action.",
        ));
    }
    // Checked under the same lock as the removal: a copy that turns Available meanwhile
    // is not cancelled.
    match image.state(&data.tasks, now) {
        Some(("Creating", _)) => {}
        Some(("Available", _)) => {
            return Err(EcsError::new(
                400,
                "IncorrectImageStatus",
                "The image is copied finished.",
            ))
        }
        _ => {
            return Err(EcsError::new(
                400,
                "IncorrectImageStatus",
                "The specified image is not coping.",
            ))
        }
    }
    data.images.remove(&id);
    let snap = data.clone();
    drop(data);
    call.shared.ecs.save(&snap);
    Ok(json!({}))
}

/// The accounts of `AddAccount.N` or `RemoveAccount.N`: N 1..=10, each a 16-digit
/// Alibaba Cloud account id other than the owner's.
fn accounts(call: &Call<'_>, prefix: &str) -> Result<Vec<String>, EcsError> {
    let mut out = Vec::new();
    for q in &call.params.0 {
        let Some(n) = q.key.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let n: u32 = n
            .parse()
            .ok()
            .filter(|n| (1..=MAX_ACCOUNTS_PER_CALL).contains(n))
            .ok_or_else(|| EcsError::invalid(&q.key, "N must be 1 to 10"))?;
        let a = q.value.trim();
        if a.len() != 16 || !a.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EcsError::new(
                400,
                "InvalidAccount.NotFound",
                format!("The specified {prefix}.{n} {a:?} is not a valid account."),
            ));
        }
        if a == ACCOUNT_ID {
            return Err(EcsError::new(
                400,
                "InvalidAccount.Forbidden",
                "The image cannot be shared with its owner.",
            ));
        }
        if !out.iter().any(|x| x == a) {
            out.push(a.to_string());
        }
    }
    Ok(out)
}

/// ModifyImageSharePermission: `AddAccount.N` and `RemoveAccount.N` of an `Available` image.
pub fn modify_image_share_permission(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let add = accounts(call, "AddAccount")?;
    let remove = accounts(call, "RemoveAccount")?;
    if let Some(v) = call.params.get("IsPublic").filter(|v| !v.is_empty()) {
        if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
            return Err(EcsError::invalid("IsPublic", "must be true or false"));
        }
    }
    let (image, status) = own_image(call, &region)?;
    if status != "Available" {
        return Err(not_available());
    }
    let now = unix_now_ms();
    let mut data = call.shared.ecs.lock();
    let Some(i) = data.images.get_mut(&image.image_id) else {
        return Err(not_found());
    };
    i.shared_with.retain(|(a, _)| !remove.contains(a));
    for a in add {
        if !i.shared_with.iter().any(|(x, _)| *x == a) {
            i.shared_with.push((a, now));
        }
    }
    if i.shared_with.len() > MAX_SHARED_ACCOUNTS {
        return Err(EcsError::new(
            403,
            "QuotaExceed.ShareImageUser",
            "The number of accounts the image is shared with exceeds the quota.",
        ));
    }
    let snap = data.clone();
    drop(data);
    call.shared.ecs.save(&snap);
    Ok(json!({}))
}

/// DescribeImageSharePermission: the accounts (`AliyunId`, `SharedTime`), paged.
pub fn describe_image_share_permission(call: &Call<'_>) -> Result<Value, EcsError> {
    let region = region(call)?;
    let num =
        match call.params.get("PageNumber") {
            None | Some("") => 1,
            Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                EcsError::invalid("PageNumber", "must be an integer of at least 1")
            })?,
        };
    let size = match call.params.get("PageSize") {
        None | Some("") => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| EcsError::invalid("PageSize", "must be an integer from 1 to 100"))?,
    };
    let (image, _) = own_image(call, &region)?;
    let accounts: Vec<Value> = image
        .shared_with
        .iter()
        .skip((num - 1).saturating_mul(size))
        .take(size)
        .map(|(a, t)| json!({"AliyunId": a, "SharedTime": Utc::from_unix(t / 1000).iso8601()}))
        .collect();
    Ok(json!({
        "ImageId": image.image_id,
        "RegionId": region,
        "PageNumber": num,
        "PageSize": size,
        "TotalCount": image.shared_with.len(),
        "ShareGroups": {"ShareGroup": []},
        "Accounts": {"Account": accounts},
    }))
}
