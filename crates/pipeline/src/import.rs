//! The cloud facts ImportImage's rules need from ECS and RAM, probed once for `import` and
//! the one-shot alike.

use preflight_ecs as ecs;
use preflight_rules::Plan;

use crate::{ecs_denied, same_source, PipelineError, Result};

/// What the ECS and RAM probes found for a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcsProbe {
    /// The RAM role ImportImage will assume (the CloudBox one with `StorageLocationArn`).
    pub role: String,
    /// The policy that role needs.
    pub policy: &'static str,
    /// Whether the role exists (`None`: GetRole was denied).
    pub role_exists: Option<bool>,
    /// Whether another image has the plan's name (`None`: no name, or DescribeImages was
    /// denied). An image imported from the same objects is not "another".
    pub image_name_taken: Option<bool>,
    /// This request's own earlier import: the one image with the name, from the same objects.
    pub own_earlier: Option<ecs::Image>,
    /// What could not be verified (a denied probe), one sentence each.
    pub not_verified: Vec<String>,
}

/// RAM GetRole for the import role and DescribeImages for the plan's image name. A denied
/// probe is a `not_verified` sentence, not an error.
pub async fn probe_ecs(client: &ecs::Client, plan: &Plan) -> Result<EcsProbe> {
    let mut not_verified = Vec::new();
    // With StorageLocationArn, the CloudBox role (seed 004).
    let (role, policy) = preflight_rules::import_role(plan);
    let role = role.to_string();
    let role_exists = match client.get_role(&role).await {
        Ok(r) => Some(r.is_some()),
        Err(e) if ecs_denied(&e) => {
            not_verified.push(format!(
                "RAM GetRole was denied ({}): whether the role {role} exists is not verified",
                e.code().unwrap_or_default()
            ));
            None
        }
        Err(source) => {
            return Err(PipelineError::Ecs {
                context: "cannot look up the RAM role".into(),
                source: Box::new(source),
            })
        }
    };
    let mut own_earlier = None;
    let mut image_name_taken = None;
    if let Some(name) = plan.image_name.clone() {
        let found = client
            .describe_images(&ecs::DescribeImagesQuery {
                image_name: Some(name.clone()),
                ..Default::default()
            })
            .await;
        match found {
            Ok(found) => {
                let same: Vec<&ecs::Image> =
                    found.iter().filter(|i| i.image_name == name).collect();
                image_name_taken = Some(match same.as_slice() {
                    [] => false,
                    [one] if same_source(one, plan) => {
                        own_earlier = Some((*one).clone());
                        false
                    }
                    _ => true,
                });
            }
            Err(e) if ecs_denied(&e) => not_verified.push(format!(
                "DescribeImages was denied ({}): whether an image named {name:?} already exists is not verified",
                e.code().unwrap_or_default()
            )),
            Err(source) => {
                return Err(PipelineError::Ecs {
                    context: "cannot list images".into(),
                    source: Box::new(source),
                })
            }
        }
    }
    Ok(EcsProbe {
        role,
        policy,
        role_exists,
        image_name_taken,
        own_earlier,
        not_verified,
    })
}
