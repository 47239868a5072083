//! After the import: copy the image to other regions and share it with other accounts, as
//! Packer's `image_copy_regions`, `image_copy_names` and `image_share_account` do.
//!
//! * [`FleetPlan::validate`] refuses, before anything is sent, a copy region that is not
//!   shaped like a region id or equals the source region, and an account id that is not a
//!   16-digit Alibaba Cloud account id; [`check_regions`] refuses a region DescribeRegions
//!   does not list (also before any upload).
//! * [`copy_and_share`] runs once the source image is `Available`: per region, an earlier
//!   copy is looked up first (DescribeImages by name in that region, with the
//!   [`SOURCE_TAG`] naming this source image), else `CopyImage` with a `ClientToken` derived
//!   from the source image and the copy's parameters (a retried call gets the same copy);
//!   every copy is waited for in parallel; then `ModifyImageSharePermission` adds, on the
//!   source and on every copy, only the accounts DescribeImageSharePermission does not
//!   already list. A rerun therefore sends no CopyImage and no ModifyImageSharePermission.
//!   A ClientToken that answers with a copy that no longer exists (cancelled, or failed) is
//!   salted with that copy's id and sent again, so a rerun after a cancel makes a new copy.
//! * [`copy_and_share_until`] does the same until a `stop` future completes (Ctrl-C): then
//!   every copy not yet `Available` is cancelled ([`cancel_copies`], CancelCopyImage), or,
//!   when detaching, left to go on; the result lists every copy and what became of it.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use preflight_aliyun::CredentialProvider;
use preflight_ecs::{self as ecs, CopyImageRequest, DescribeImagesQuery};
use serde::Serialize;

use crate::endpoints::Endpoints;

/// The tag every copy carries, naming its source image: how a rerun recognises a copy it
/// made (DescribeImages does not say what an image was copied from).
pub const SOURCE_TAG: &str = "ecs-preflight:source-image";
/// Most tags of an image (Tag.N, N 1..=20): with as many, the copy carries no [`SOURCE_TAG`]
/// and a rerun relies on the ClientToken alone.
pub const MAX_TAGS: usize = 20;
/// Length of an Alibaba Cloud account id (UID).
pub const ACCOUNT_ID_LEN: usize = 16;
/// How many dead copies in a row a CopyImage token is salted past (see [`copy_and_share`]):
/// each is a copy an earlier run cancelled or that failed; more means something else is wrong.
const MAX_FRESH_TOKENS: usize = 5;

/// What to do after the image is available.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetPlan {
    /// Regions to copy the image to, in order.
    pub copy_regions: Vec<String>,
    /// Names of the copies, as Packer's `image_copy_names`: the i-th names the copy to the
    /// i-th region, and a region without a name of its own gets the source image's name. One
    /// name alone names every copy (names are unique per region, so one name serves all).
    /// More names than regions is refused ([`FleetError::TooManyNames`]).
    pub copy_names: Vec<String>,
    /// Accounts to share the source image and every copy with.
    pub share_accounts: Vec<String>,
}

/// Why the copy or share step refused or stopped.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// A copy region that is not shaped like a region id (`cn-shanghai`).
    #[error("--copy-to-region {region:?} is not a region id (like cn-shanghai)")]
    RegionMalformed {
        /// The value given.
        region: String,
    },
    /// A copy region that ECS (DescribeRegions) does not list.
    #[error("--copy-to-region {region:?} is not an ECS region (DescribeRegions lists {known})")]
    RegionUnknown {
        /// The value given.
        region: String,
        /// The regions listed, comma-separated.
        known: String,
    },
    /// A copy region equal to the import region.
    #[error("--copy-to-region {region:?} is the import region itself: the image is already there")]
    SameRegion {
        /// The region.
        region: String,
    },
    /// An account id that is not a 16-digit Alibaba Cloud account id.
    #[error("--share-with-account {account:?} is not an Alibaba Cloud account id (16 digits)")]
    AccountMalformed {
        /// The value given.
        account: String,
    },
    /// A copy name that ECS would refuse.
    #[error("--copy-name {name:?} is not a valid image name: {why}")]
    NameMalformed {
        /// The value given.
        name: String,
        /// Why.
        why: String,
    },
    /// More copy names than copy regions: which name goes where is unclear.
    #[error("{} --copy-name ({}) for {} --copy-to-region ({}): give one name for every copy, or at most one per region, in the regions' order", names.len(), quoted(names), regions.len(), quoted(regions))]
    TooManyNames {
        /// The names given.
        names: Vec<String>,
        /// The regions given.
        regions: Vec<String>,
    },
    /// The same copy region twice with different names: one of the two would be dropped.
    #[error("--copy-to-region {region:?} is given twice with different names ({}); give each region once", quoted(names))]
    RegionRepeated {
        /// The region.
        region: String,
        /// Its names.
        names: Vec<String>,
    },
    /// An ECS call failed.
    #[error("{context}: {source}")]
    Ecs {
        /// What was being done.
        context: String,
        /// The ECS error.
        source: Box<ecs::Error>,
    },
    /// A copy ended `CreateFailed` or vanished.
    #[error("the copy {image_id} in {region} failed: it is {status}")]
    CopyFailed {
        /// Destination region.
        region: String,
        /// The copy.
        image_id: String,
        /// Its last status.
        status: String,
    },
    /// The timeout passed before a copy was available; the copy goes on and a rerun waits
    /// for it again.
    #[error("the copy {image_id} in {region} is still {status} after the timeout; run the same command again to wait for it")]
    CopyTimedOut {
        /// Destination region.
        region: String,
        /// The copy.
        image_id: String,
        /// Its last status.
        status: String,
    },
}

impl FleetError {
    /// A stable code: `COPY.RegionMalformed`, `COPY.RegionUnknown`, `COPY.SameRegion`,
    /// `COPY.NameMalformed`, `COPY.TooManyNames`, `COPY.RegionRepeated`,
    /// `SHARE.AccountMalformed`, `COPY.Ecs`, `COPY.Failed`, `COPY.TimedOut`.
    pub fn code(&self) -> &'static str {
        match self {
            FleetError::RegionMalformed { .. } => "COPY.RegionMalformed",
            FleetError::RegionUnknown { .. } => "COPY.RegionUnknown",
            FleetError::SameRegion { .. } => "COPY.SameRegion",
            FleetError::NameMalformed { .. } => "COPY.NameMalformed",
            FleetError::TooManyNames { .. } => "COPY.TooManyNames",
            FleetError::RegionRepeated { .. } => "COPY.RegionRepeated",
            FleetError::AccountMalformed { .. } => "SHARE.AccountMalformed",
            FleetError::Ecs { .. } => "COPY.Ecs",
            FleetError::CopyFailed { .. } => "COPY.Failed",
            FleetError::CopyTimedOut { .. } => "COPY.TimedOut",
        }
    }

    /// True for a wrong setting, refused before any upload (the CLI's exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            FleetError::RegionMalformed { .. }
                | FleetError::RegionUnknown { .. }
                | FleetError::SameRegion { .. }
                | FleetError::NameMalformed { .. }
                | FleetError::TooManyNames { .. }
                | FleetError::RegionRepeated { .. }
                | FleetError::AccountMalformed { .. }
        )
    }
}

/// `"a", "b"`: values quoted as the messages quote one.
fn quoted(values: &[String]) -> String {
    values
        .iter()
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn region_shaped(r: &str) -> bool {
    (4..=64).contains(&r.len())
        && r.contains('-')
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !r.starts_with('-')
        && !r.ends_with('-')
}

/// ImageName rule of the API (2–128 characters, a letter first, not `aliyun`/`acs:`, no
/// `http(s)://`, letters, digits, `.`, `:`, `_`, `-`); `Err` says which part fails.
fn check_image_name(n: &str) -> Result<(), String> {
    let lower = n.to_ascii_lowercase();
    if !(2..=128).contains(&n.chars().count()) {
        return Err("it must be 2 to 128 characters".into());
    }
    if !n.chars().next().is_some_and(char::is_alphabetic) {
        return Err("it must start with a letter".into());
    }
    if lower.starts_with("aliyun") || lower.starts_with("acs:") {
        return Err("it must not start with aliyun or acs:".into());
    }
    if lower.contains("http://") || lower.contains("https://") {
        return Err("it must not contain http:// or https://".into());
    }
    if !n
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | ':' | '_' | '-'))
    {
        return Err("only letters, digits, '.', ':', '_' and '-' are allowed".into());
    }
    Ok(())
}

impl FleetPlan {
    /// True when there is nothing to copy or share.
    pub fn is_empty(&self) -> bool {
        self.copy_regions.is_empty() && self.share_accounts.is_empty()
    }

    /// The name of the copy to the `index`-th region: its own name, the one name given for
    /// all, or `None` (the source image's name).
    pub fn copy_name(&self, index: usize) -> Option<&str> {
        match self.copy_names.as_slice() {
            [one] => Some(one.as_str()),
            names => names.get(index).map(String::as_str),
        }
    }

    /// The local checks, before any request: region shapes, no copy to `source_region`,
    /// 16-digit account ids, valid copy names and no more of them than regions. A region
    /// given twice with the same name is dropped the second time; with another name it is
    /// refused.
    pub fn validate(&mut self, source_region: &str) -> Result<(), FleetError> {
        if self.copy_names.len() > 1 && self.copy_names.len() > self.copy_regions.len() {
            return Err(FleetError::TooManyNames {
                names: self.copy_names.clone(),
                regions: self.copy_regions.clone(),
            });
        }
        for r in &self.copy_regions {
            if !region_shaped(r) {
                return Err(FleetError::RegionMalformed { region: r.clone() });
            }
            if r == source_region {
                return Err(FleetError::SameRegion { region: r.clone() });
            }
        }
        for a in &self.share_accounts {
            if a.len() != ACCOUNT_ID_LEN || !a.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FleetError::AccountMalformed { account: a.clone() });
            }
        }
        for n in &self.copy_names {
            check_image_name(n).map_err(|why| FleetError::NameMalformed {
                name: n.clone(),
                why,
            })?;
        }
        // Duplicates dropped pairwise, so the i-th name still belongs to the i-th region.
        let per_copy = self.copy_names.len() > 1;
        let mut regions = Vec::new();
        let mut names = Vec::new();
        for (i, r) in self.copy_regions.iter().enumerate() {
            let name = self.copy_name(i);
            match regions.iter().position(|x| x == r) {
                None => {
                    regions.push(r.clone());
                    if per_copy {
                        if let Some(n) = name {
                            names.push(n.to_string());
                        }
                    }
                }
                Some(first) if self.copy_name(first) == name => {}
                Some(first) => {
                    return Err(FleetError::RegionRepeated {
                        region: r.clone(),
                        names: [self.copy_name(first), name]
                            .into_iter()
                            .map(|n| n.unwrap_or("the image's name").to_string())
                            .collect(),
                    })
                }
            }
        }
        self.copy_regions = regions;
        if per_copy {
            self.copy_names = names;
        }
        let mut seen = std::collections::HashSet::new();
        self.share_accounts.retain(|a| seen.insert(a.clone()));
        Ok(())
    }
}

/// Refuses a copy region DescribeRegions does not list. `Ok(Some(note))` when the key may
/// not call DescribeRegions: the regions are then not verified (the note says so).
pub async fn check_regions(
    client: &ecs::Client,
    plan: &FleetPlan,
) -> Result<Option<String>, FleetError> {
    if plan.copy_regions.is_empty() {
        return Ok(None);
    }
    let regions = match client.describe_regions().await {
        Ok(r) => r,
        Err(e) if crate::ecs_denied(&e) => {
            return Ok(Some(format!(
                "DescribeRegions was denied ({}): the copy regions are not verified",
                e.code().unwrap_or_default()
            )))
        }
        Err(source) => {
            return Err(FleetError::Ecs {
                context: "cannot list the ECS regions".into(),
                source: Box::new(source),
            })
        }
    };
    for r in &plan.copy_regions {
        if !regions.iter().any(|x| &x.region_id == r) {
            let known: Vec<&str> = regions.iter().map(|x| x.region_id.as_str()).collect();
            return Err(FleetError::RegionUnknown {
                region: r.clone(),
                known: known.join(", "),
            });
        }
    }
    Ok(None)
}

/// One image of the result: the source or a copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct FleetImage {
    /// Region.
    pub region: String,
    /// Image id.
    pub image_id: String,
    /// `Status` when last seen (`Available`).
    pub status: String,
    /// `source` or `copy`.
    pub role: String,
    /// True when an earlier run had made this copy (no CopyImage was sent).
    pub reused: bool,
    /// Every account the image is shared with (of those asked for).
    pub shared_with: Vec<String>,
    /// The accounts this run added (empty on a rerun).
    pub newly_shared: Vec<String>,
}

/// The result of [`copy_and_share`]: the source first, then one copy per region.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FleetOutcome {
    /// Every image.
    pub images: Vec<FleetImage>,
}

/// What the copy and share step is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FleetEvent {
    /// A copy was started, or found from an earlier run.
    CopyStarted {
        /// Destination region.
        region: String,
        /// The copy.
        image_id: String,
        /// True when found, not made.
        reused: bool,
    },
    /// A copy's status or progress changed.
    CopyProgress {
        /// Destination region.
        region: String,
        /// The copy.
        image_id: String,
        /// `Status`.
        status: String,
        /// `Progress` (`"40%"`).
        progress: String,
    },
    /// A copy is `Available`.
    CopyAvailable {
        /// Destination region.
        region: String,
        /// The copy.
        image_id: String,
    },
    /// A stop came: CancelCopyImage was sent for this copy and ECS deleted it.
    CopyCancelled {
        /// Destination region.
        region: String,
        /// The copy (deleted).
        image_id: String,
    },
    /// An image is shared: `added` by this run, the rest were already.
    Shared {
        /// Region.
        region: String,
        /// Image.
        image_id: String,
        /// Accounts added now.
        added: Vec<String>,
    },
}

/// How [`copy_and_share`] reaches ECS and waits.
#[derive(Clone)]
pub struct FleetContext {
    /// Endpoints (a destination region's client uses [`Endpoints::ecs_config`]).
    pub endpoints: Endpoints,
    /// Credentials.
    pub credentials: Arc<CredentialProvider>,
    /// RPC signature.
    pub signature: ecs::SignatureMethod,
    /// Time between two DescribeImages of a copy.
    pub poll_interval: Duration,
    /// Longest wait for the copies.
    pub timeout: Duration,
}

impl FleetContext {
    fn client(&self, region: &str) -> Result<ecs::Client, FleetError> {
        let mut cfg = self.endpoints.ecs_config(region);
        cfg.signature = self.signature;
        ecs::Client::new(cfg, self.credentials.clone()).map_err(|source| FleetError::Ecs {
            context: format!("cannot create the ECS client for {region}"),
            source: Box::new(source),
        })
    }
}

fn ecs_err(context: String) -> impl FnOnce(ecs::Error) -> FleetError {
    move |source| FleetError::Ecs {
        context,
        source: Box::new(source),
    }
}

/// The CopyImage request for `region`: the copy's name, the source's description and tags
/// (tags are not copied on their own), the [`SOURCE_TAG`], and the ClientToken.
pub fn copy_request(
    source: &ecs::Image,
    source_region: &str,
    region: &str,
    name: Option<&str>,
) -> CopyImageRequest {
    let mut tags: Vec<(String, String)> = source
        .tags
        .iter()
        .filter(|(k, _)| k != SOURCE_TAG)
        .cloned()
        .collect();
    if tags.len() < MAX_TAGS {
        tags.push((SOURCE_TAG.to_string(), source.image_id.clone()));
    }
    let name = name
        .map(str::to_string)
        .or_else(|| Some(source.image_name.clone()).filter(|n| !n.is_empty()));
    let mut r = CopyImageRequest {
        destination_region: region.to_string(),
        name,
        description: Some(format!(
            "copy of {} from {source_region} by ecs-preflight",
            source.image_id
        )),
        tags,
        client_token: None,
    };
    r.client_token = Some(ecs::copy_client_token(&source.image_id, &r));
    r
}

/// A copy in this state will never become `Available`: a rerun copies again rather than adopt
/// it, and a wait ends on it. One definition, so finding, checking and waiting agree.
fn copy_is_dead(status: &str) -> bool {
    matches!(status, "CreateFailed" | "UnAvailable")
}

/// An earlier run's copy of `source` in the request's region: same name, the [`SOURCE_TAG`]
/// naming the source, and not dead. `None` when not found (or DescribeImages is denied).
async fn find_copy(
    client: &ecs::Client,
    source_id: &str,
    r: &CopyImageRequest,
) -> Result<Option<ecs::Image>, FleetError> {
    let Some(name) = &r.name else {
        return Ok(None);
    };
    let found = client
        .describe_images_in(
            &r.destination_region,
            &DescribeImagesQuery {
                image_name: Some(name.clone()),
                ..DescribeImagesQuery::default()
            },
        )
        .await;
    match found {
        Ok(images) => Ok(images.into_iter().find(|i| {
            i.image_name == *name
                && i.tags
                    .iter()
                    .any(|(k, v)| k == SOURCE_TAG && v == source_id)
                && !copy_is_dead(&i.status)
        })),
        Err(e) if crate::ecs_denied(&e) => Ok(None),
        Err(e) => Err(ecs_err(format!(
            "cannot list the images of {}",
            r.destination_region
        ))(e)),
    }
}

/// True when DescribeImages of `region` lists the copy `image_id` in a state that can
/// still become `Available`; also true when DescribeImages is denied (nothing to go on).
async fn copy_alive(
    client: &ecs::Client,
    region: &str,
    image_id: &str,
) -> Result<bool, FleetError> {
    let found = client
        .describe_images_in(
            region,
            &DescribeImagesQuery {
                image_id: Some(image_id.to_string()),
                ..DescribeImagesQuery::default()
            },
        )
        .await;
    match found {
        Ok(images) => Ok(images
            .iter()
            .any(|i| i.image_id == image_id && !copy_is_dead(&i.status))),
        Err(e) if crate::ecs_denied(&e) => Ok(true),
        Err(e) => Err(ecs_err(format!("cannot list the images of {region}"))(e)),
    }
}

/// The copy of `source` to `region`: an earlier run's (found by name and [`SOURCE_TAG`]),
/// else a CopyImage. ECS answers a reused ClientToken with the copy it named even when that
/// copy was cancelled since (it no longer exists): then the token is salted with the dead
/// copy's id ([`ecs::copy_client_token_after`]) and CopyImage sent again. Returns the copy's
/// id and whether it was found rather than made. `tracked` knows of the copy from the moment
/// it is found or CopyImage answers, and of each CopyImage while it is unanswered, so that a
/// stop at any await here leaves nothing uncancelled.
async fn start_copy(
    ctx: &FleetContext,
    src_client: &ecs::Client,
    source_region: &str,
    source: &ecs::Image,
    region: &str,
    name: Option<&str>,
    tracked: &Mutex<Tracked>,
) -> Result<(String, bool), FleetError> {
    let base = copy_request(source, source_region, region, name);
    let dest = ctx.client(region)?;
    if let Some(found) = find_copy(&dest, &source.image_id, &base).await? {
        lock(tracked).track(CopyInFlight {
            region: region.to_string(),
            image_id: found.image_id.clone(),
            available: found.status == "Available",
        });
        return Ok((found.image_id, true));
    }
    let mut r = base.clone();
    let mut dead = None;
    for _ in 0..=MAX_FRESH_TOKENS {
        let pending = PendingCopy {
            source_region: source_region.to_string(),
            source_image_id: source.image_id.clone(),
            request: r.clone(),
        };
        lock(tracked).pending.push(pending.clone());
        let answer = src_client.copy_image(&source.image_id, &r).await;
        {
            // Answered: no longer pending; a copy it names is one to cancel on a stop.
            let mut t = lock(tracked);
            t.pending.retain(|p| *p != pending);
            if let Ok(id) = &answer {
                t.track(CopyInFlight {
                    region: region.to_string(),
                    image_id: id.clone(),
                    available: false,
                });
            }
        }
        let id = answer.map_err(ecs_err(format!("CopyImage to {region}")))?;
        if copy_alive(&dest, region, &id).await? {
            return Ok((id, false));
        }
        // Gone (cancelled or failed): nothing of it to cancel.
        lock(tracked)
            .copies
            .retain(|c| !(c.region == region && c.image_id == id));
        r.client_token = Some(ecs::copy_client_token_after(
            &source.image_id,
            &base,
            Some(&id),
        ));
        dead = Some(id);
    }
    Err(FleetError::CopyFailed {
        region: region.to_string(),
        image_id: dead.unwrap_or_default(),
        status: format!("gone (cancelled or failed {MAX_FRESH_TOKENS} times in a row)"),
    })
}

/// Waits until the copy `image_id` of `region` is `Available`.
async fn wait_copy(
    ctx: FleetContext,
    region: String,
    image_id: String,
    on_event: Arc<dyn Fn(FleetEvent) + Send + Sync>,
    copies: Arc<Mutex<Tracked>>,
) -> Result<FleetImage, FleetError> {
    let client = ctx.client(&region)?;
    let start = Instant::now();
    let mut last = (String::new(), String::new());
    loop {
        let images = client
            .describe_images_in(
                &region,
                &DescribeImagesQuery {
                    image_id: Some(image_id.clone()),
                    ..DescribeImagesQuery::default()
                },
            )
            .await
            .map_err(ecs_err(format!(
                "cannot follow the copy {image_id} in {region}"
            )))?;
        let (status, progress) = images
            .iter()
            .find(|i| i.image_id == image_id)
            .map(|i| (i.status.clone(), i.progress.clone()))
            .unwrap_or_default();
        if (status.clone(), progress.clone()) != last {
            on_event(FleetEvent::CopyProgress {
                region: region.clone(),
                image_id: image_id.clone(),
                status: status.clone(),
                progress: progress.clone(),
            });
            last = (status.clone(), progress);
        }
        match status.as_str() {
            "Available" => {
                mark_available(&copies, &image_id);
                on_event(FleetEvent::CopyAvailable {
                    region: region.clone(),
                    image_id: image_id.clone(),
                });
                return Ok(FleetImage {
                    region,
                    image_id,
                    status,
                    role: "copy".into(),
                    ..FleetImage::default()
                });
            }
            dead if dead.is_empty() || copy_is_dead(dead) => {
                return Err(FleetError::CopyFailed {
                    region,
                    image_id,
                    status: if status.is_empty() {
                        "not listed".into()
                    } else {
                        status
                    },
                })
            }
            _ => {}
        }
        if start.elapsed() >= ctx.timeout {
            return Err(FleetError::CopyTimedOut {
                region,
                image_id,
                status,
            });
        }
        let left = ctx.timeout.saturating_sub(start.elapsed());
        tokio::time::sleep(ctx.poll_interval.min(left)).await;
    }
}

/// Adds to `image_id` of `region` the accounts of `accounts` it is not shared with yet.
async fn share(
    ctx: &FleetContext,
    image: &mut FleetImage,
    accounts: &[String],
    on_event: &(dyn Fn(FleetEvent) + Send + Sync),
) -> Result<(), FleetError> {
    if accounts.is_empty() {
        return Ok(());
    }
    let client = ctx.client(&image.region)?;
    let already = client
        .image_shared_accounts(&image.region, &image.image_id)
        .await
        .map_err(ecs_err(format!(
            "cannot read the share permission of {} in {}",
            image.image_id, image.region
        )))?;
    let missing: Vec<String> = accounts
        .iter()
        .filter(|a| !already.contains(a))
        .cloned()
        .collect();
    if !missing.is_empty() {
        client
            .share_image(&image.region, &image.image_id, &missing)
            .await
            .map_err(ecs_err(format!(
                "cannot share {} in {}",
                image.image_id, image.region
            )))?;
    }
    on_event(FleetEvent::Shared {
        region: image.region.clone(),
        image_id: image.image_id.clone(),
        added: missing.clone(),
    });
    image.shared_with = accounts.to_vec();
    image.newly_shared = missing;
    Ok(())
}

/// Copies the `Available` image `source` of `source_region` to every region of `plan`,
/// waits for every copy in parallel, then shares the source and every copy. Safe to rerun:
/// copies and shares already made are found, not made again.
pub async fn copy_and_share(
    ctx: &FleetContext,
    source_region: &str,
    source: &ecs::Image,
    plan: &FleetPlan,
    on_event: Arc<dyn Fn(FleetEvent) + Send + Sync>,
) -> Result<FleetOutcome, FleetError> {
    let tracked = Arc::new(Mutex::new(Tracked::default()));
    copy_and_share_tracked(ctx, source_region, source, plan, on_event, tracked).await
}

/// A copy this run started or found, as far as it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInFlight {
    /// Destination region.
    pub region: String,
    /// The copy.
    pub image_id: String,
    /// Seen `Available`: nothing to cancel.
    pub available: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn mark_available(tracked: &Mutex<Tracked>, image_id: &str) {
    for c in lock(tracked)
        .copies
        .iter_mut()
        .filter(|c| c.image_id == image_id)
    {
        c.available = true;
    }
}

/// A CopyImage sent whose answer is not in (a stop may have dropped it): sent again with the
/// same ClientToken, ECS names the copy the first one made, or makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingCopy {
    source_region: String,
    source_image_id: String,
    request: CopyImageRequest,
}

/// What a copy and share step has started, as far as it got: what a stop must cancel.
#[derive(Debug, Default)]
pub(crate) struct Tracked {
    /// Copies found or named by CopyImage's answer, and whether seen `Available`.
    pub copies: Vec<CopyInFlight>,
    /// CopyImage requests sent and not answered.
    pub pending: Vec<PendingCopy>,
}

impl Tracked {
    /// Records `c` once (a pipeline's copy step may run again and find the same copy).
    fn track(&mut self, c: CopyInFlight) {
        if !self.copies.iter().any(|k| k.image_id == c.image_id) {
            self.copies.push(c);
        }
    }
}

/// After a stop, the copies of `tracked`, with those of CopyImage requests left unanswered
/// learnt by sending each again (same ClientToken: the same copy). With `detach` they are not
/// sent again: a rerun finds what they made by its ClientToken or name.
pub(crate) async fn stopped_copies(
    ctx: &FleetContext,
    tracked: &Mutex<Tracked>,
    detach: bool,
) -> Vec<CopyInFlight> {
    let (mut copies, pending) = {
        let t = lock(tracked);
        (t.copies.clone(), t.pending.clone())
    };
    if detach {
        return copies;
    }
    for p in pending {
        let Ok(client) = ctx.client(&p.source_region) else {
            continue;
        };
        // Refused (or unreachable): ECS made no copy it would tell us of; nothing to cancel.
        if let Ok(id) = client.copy_image(&p.source_image_id, &p.request).await {
            if !copies.iter().any(|c| c.image_id == id) {
                copies.push(CopyInFlight {
                    region: p.request.destination_region.clone(),
                    image_id: id,
                    available: false,
                });
            }
        }
    }
    copies
}

/// What became of a copy when a stop came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyStopState {
    /// CancelCopyImage was sent: the copy is deleted.
    Cancelled,
    /// The copy was already `Available` (or finished before CancelCopyImage): it stays.
    Available,
    /// Detached: the copy goes on in the cloud; a rerun waits for it.
    Left,
    /// CancelCopyImage failed (see `error`): the copy may go on.
    CancelFailed,
}

/// A copy as a stop left it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoppedCopy {
    /// Destination region.
    pub region: String,
    /// The copy.
    pub image_id: String,
    /// What became of it.
    pub state: CopyStopState,
    /// CancelCopyImage's error, for `cancel_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How [`copy_and_share_until`] ended.
#[derive(Debug)]
pub enum FleetEnd {
    /// Every copy is available and every share made.
    Done(FleetOutcome),
    /// The stop came first: every copy this run started or found, and what became of it.
    Stopped(Vec<StoppedCopy>),
}

/// [`copy_and_share`] until `stop` completes. Then every copy not yet `Available` is
/// cancelled (CancelCopyImage) unless `detach`, which leaves them going on; a rerun of the
/// same command finds the copies left (or makes the cancelled ones again) and shares.
pub async fn copy_and_share_until(
    ctx: &FleetContext,
    source_region: &str,
    source: &ecs::Image,
    plan: &FleetPlan,
    on_event: Arc<dyn Fn(FleetEvent) + Send + Sync>,
    stop: impl Future<Output = ()>,
    detach: bool,
) -> Result<FleetEnd, FleetError> {
    let tracked = Arc::new(Mutex::new(Tracked::default()));
    // Biased, stop first: a stop already due wins over work that happens to be ready.
    tokio::select! {
        biased;
        () = stop => {}
        r = copy_and_share_tracked(ctx, source_region, source, plan, on_event.clone(), tracked.clone()) => {
            return r.map(FleetEnd::Done);
        }
    }
    // The work future is dropped here, and with it the JoinSet of waits (aborted).
    let seen = stopped_copies(ctx, &tracked, detach).await;
    Ok(FleetEnd::Stopped(
        cancel_copies(ctx, &seen, detach, on_event.as_ref()).await,
    ))
}

/// After a stop: CancelCopyImage for every copy of `copies` not yet `Available` (in its own
/// region), or, when `detach`, nothing. A copy that finished meanwhile
/// (`IncorrectImageStatus`) is reported `Available`.
pub async fn cancel_copies(
    ctx: &FleetContext,
    copies: &[CopyInFlight],
    detach: bool,
    on_event: &(dyn Fn(FleetEvent) + Send + Sync),
) -> Vec<StoppedCopy> {
    let mut out = Vec::with_capacity(copies.len());
    for c in copies {
        let stopped = |state, error| StoppedCopy {
            region: c.region.clone(),
            image_id: c.image_id.clone(),
            state,
            error,
        };
        if c.available {
            out.push(stopped(CopyStopState::Available, None));
            continue;
        }
        if detach {
            out.push(stopped(CopyStopState::Left, None));
            continue;
        }
        match cancel_one(ctx, c).await {
            Ok(()) => {
                on_event(FleetEvent::CopyCancelled {
                    region: c.region.clone(),
                    image_id: c.image_id.clone(),
                });
                out.push(stopped(CopyStopState::Cancelled, None));
            }
            Err(None) => out.push(stopped(CopyStopState::Available, None)),
            Err(Some(m)) => out.push(stopped(CopyStopState::CancelFailed, Some(m))),
        }
    }
    out
}

/// CancelCopyImage of one copy. `Err(None)`: refused because the copy finished meanwhile
/// (`IncorrectImageStatus` and DescribeImages says `Available`); `Err(Some(why))` otherwise.
async fn cancel_one(ctx: &FleetContext, c: &CopyInFlight) -> Result<(), Option<String>> {
    let client = ctx.client(&c.region).map_err(|e| Some(e.to_string()))?;
    let Err(e) = client.cancel_copy_image(&c.region, &c.image_id).await else {
        return Ok(());
    };
    if e.code() == Some("IncorrectImageStatus") {
        let now = client
            .describe_images_in(
                &c.region,
                &DescribeImagesQuery {
                    image_id: Some(c.image_id.clone()),
                    ..DescribeImagesQuery::default()
                },
            )
            .await;
        if let Ok(images) = now {
            if images
                .iter()
                .any(|i| i.image_id == c.image_id && i.status == "Available")
            {
                return Err(None);
            }
        }
    }
    Err(Some(format!(
        "CancelCopyImage of {} in {}: {e}",
        c.image_id, c.region
    )))
}

/// [`copy_and_share`], recording in `copies` every copy started or found and when it is
/// seen `Available`, and every CopyImage not yet answered (what [`stopped_copies`] and
/// [`cancel_copies`] need after a stop).
pub(crate) async fn copy_and_share_tracked(
    ctx: &FleetContext,
    source_region: &str,
    source: &ecs::Image,
    plan: &FleetPlan,
    on_event: Arc<dyn Fn(FleetEvent) + Send + Sync>,
    copies: Arc<Mutex<Tracked>>,
) -> Result<FleetOutcome, FleetError> {
    let src_client = ctx.client(source_region)?;
    let mut started = Vec::with_capacity(plan.copy_regions.len());
    for (i, region) in plan.copy_regions.iter().enumerate() {
        let (image_id, reused) = start_copy(
            ctx,
            &src_client,
            source_region,
            source,
            region,
            plan.copy_name(i),
            &copies,
        )
        .await?;
        on_event(FleetEvent::CopyStarted {
            region: region.clone(),
            image_id: image_id.clone(),
            reused,
        });
        started.push((region.clone(), image_id, reused));
    }
    let mut waits = tokio::task::JoinSet::new();
    for (i, (region, image_id, _)) in started.iter().enumerate() {
        let (ctx, region, image_id, f, copies) = (
            ctx.clone(),
            region.clone(),
            image_id.clone(),
            on_event.clone(),
            copies.clone(),
        );
        waits.spawn(async move { (i, wait_copy(ctx, region, image_id, f, copies).await) });
    }
    let mut done: Vec<Option<FleetImage>> = vec![None; started.len()];
    let mut first_error = None;
    while let Some(joined) = waits.join_next().await {
        match joined {
            Ok((i, Ok(mut img))) => {
                img.reused = started[i].2;
                done[i] = Some(img);
            }
            Ok((_, Err(e))) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(FleetError::CopyFailed {
                    region: String::new(),
                    image_id: String::new(),
                    status: format!("the wait stopped: {e}"),
                });
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut images = vec![FleetImage {
        region: source_region.to_string(),
        image_id: source.image_id.clone(),
        status: source.status.clone(),
        role: "source".into(),
        ..FleetImage::default()
    }];
    images.extend(done.into_iter().flatten());
    for image in &mut images {
        share(ctx, image, &plan.share_accounts, on_event.as_ref()).await?;
    }
    Ok(FleetOutcome { images })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_that_cannot_become_available_is_dead() {
        for status in ["CreateFailed", "UnAvailable"] {
            assert!(copy_is_dead(status), "{status}");
        }
        for status in ["Creating", "Waiting", "Available"] {
            assert!(!copy_is_dead(status), "{status}");
        }
    }

    #[test]
    fn local_refusals() {
        let ok = |regions: &[&str], accounts: &[&str]| {
            let mut p = FleetPlan {
                copy_regions: regions.iter().map(|s| s.to_string()).collect(),
                share_accounts: accounts.iter().map(|s| s.to_string()).collect(),
                copy_names: Vec::new(),
            };
            p.validate("cn-hangzhou").map(|()| p).map_err(|e| e.code())
        };
        let p = ok(
            &["cn-shanghai", "cn-beijing", "cn-shanghai"],
            &["1234567890123457"],
        )
        .unwrap();
        assert_eq!(p.copy_regions, ["cn-shanghai", "cn-beijing"]);
        assert_eq!(ok(&["cn-hangzhou"], &[]).unwrap_err(), "COPY.SameRegion");
        assert_eq!(ok(&["Shanghai"], &[]).unwrap_err(), "COPY.RegionMalformed");
        assert_eq!(
            ok(&["cn_shanghai"], &[]).unwrap_err(),
            "COPY.RegionMalformed"
        );
        for bad in [
            "12345",
            "12345678901234567",
            "123456789012345a",
            "user@example.com",
            "",
        ] {
            assert_eq!(
                ok(&[], &[bad]).unwrap_err(),
                "SHARE.AccountMalformed",
                "{bad}"
            );
        }
        let mut named = FleetPlan {
            copy_names: vec!["aliyun-x".into()],
            ..FleetPlan::default()
        };
        assert_eq!(
            named.validate("cn-hangzhou").unwrap_err().code(),
            "COPY.NameMalformed"
        );
    }

    #[test]
    fn copy_names_go_with_their_regions() {
        fn names(p: &FleetPlan) -> Vec<Option<&str>> {
            (0..p.copy_regions.len()).map(|i| p.copy_name(i)).collect()
        }
        let plan = |regions: &[&str], given: &[&str]| {
            let mut p = FleetPlan {
                copy_regions: regions.iter().map(|s| s.to_string()).collect(),
                copy_names: given.iter().map(|s| s.to_string()).collect(),
                share_accounts: Vec::new(),
            };
            p.validate("cn-hangzhou").map(|()| p)
        };
        let p = plan(&["cn-shanghai", "cn-beijing"], &["web-sh", "web-bj"]).unwrap();
        assert_eq!(names(&p), [Some("web-sh"), Some("web-bj")]);
        // One name names every copy, as before.
        let p = plan(&["cn-shanghai", "cn-beijing"], &["web"]).unwrap();
        assert_eq!(names(&p), [Some("web"), Some("web")]);
        // Fewer names: the rest take the source's name (Packer's image_copy_names).
        let p = plan(&["cn-shanghai", "cn-beijing", "cn-qingdao"], &["a1", "b1"]).unwrap();
        assert_eq!(names(&p), [Some("a1"), Some("b1"), None]);
        // A repeated region with its same name is dropped, and the names stay in step.
        let p = plan(
            &["cn-shanghai", "cn-beijing", "cn-shanghai", "cn-qingdao"],
            &["a1", "b1", "a1", "c1"],
        )
        .unwrap();
        assert_eq!(p.copy_regions, ["cn-shanghai", "cn-beijing", "cn-qingdao"]);
        assert_eq!(names(&p), [Some("a1"), Some("b1"), Some("c1")]);

        let e = plan(&["cn-shanghai"], &["a1", "b1"]).unwrap_err();
        assert_eq!(e.code(), "COPY.TooManyNames");
        assert!(e.is_usage());
        let m = e.to_string();
        for v in ["\"a1\"", "\"b1\"", "\"cn-shanghai\""] {
            assert!(m.contains(v), "{m}");
        }
        assert_eq!(
            plan(&[], &["a1", "b1"]).unwrap_err().code(),
            "COPY.TooManyNames"
        );
        let e = plan(&["cn-shanghai", "cn-shanghai"], &["a1", "b1"]).unwrap_err();
        assert_eq!(e.code(), "COPY.RegionRepeated");
        assert!(e.to_string().contains("\"b1\""), "{e}");
        let e = plan(&["cn-shanghai", "cn-beijing"], &["good-1", "aliyun-x"]).unwrap_err();
        assert_eq!(e.code(), "COPY.NameMalformed");
        assert!(e.to_string().contains("aliyun-x"), "{e}");
    }

    #[test]
    fn copy_requests_keep_tags_and_mark_the_source() {
        let src = ecs::Image {
            image_id: "m-src".into(),
            image_name: "web-01".into(),
            tags: vec![("owner".into(), "team-a".into())],
            ..ecs::Image::default()
        };
        let r = copy_request(&src, "cn-hangzhou", "cn-shanghai", None);
        assert_eq!(r.name.as_deref(), Some("web-01"));
        assert_eq!(
            r.tags,
            [
                ("owner".to_string(), "team-a".to_string()),
                (SOURCE_TAG.to_string(), "m-src".to_string())
            ]
        );
        let again = copy_request(&src, "cn-hangzhou", "cn-shanghai", None);
        assert_eq!(r.client_token, again.client_token);
        let other = copy_request(&src, "cn-hangzhou", "cn-beijing", None);
        assert_ne!(r.client_token, other.client_token);
        assert!(r.client_token.as_deref().unwrap().len() <= 64);
        // After a dead copy: another token, the same one every time, and another again
        // after the next dead copy.
        let after = |dead| ecs::copy_client_token_after("m-src", &r, Some(dead));
        assert_ne!(Some(after("m-dead1")), r.client_token);
        assert_eq!(after("m-dead1"), after("m-dead1"));
        assert_ne!(after("m-dead1"), after("m-dead2"));
        assert!(after("m-dead1").len() <= 64);
    }
}
