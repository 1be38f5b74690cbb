//! Who issued a command, for histories and audit lines: the caller the token proved,
//! never whoever a request body names. A body's `aftersales.common.v1.Actor` is only
//! believed when it *is* the token's subject, or when a service account with the role
//! `act-as` names the end user it acts for — then both are kept.

use aftersales_protos::common::v1 as common;
use tonic::Status;

use crate::auth::{Caller, roles};

/// The longest actor id kept; longer ones are cut.
const MAX_ID: usize = 128;

/// Who a command is recorded as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: String,
    /// In lower case, e.g. `agent`.
    pub role: String,
    /// The service account that acted for `id`, when one did.
    pub via: Option<String>,
}

impl Actor {
    /// The role of a partner repair shop acting through the gateway.
    pub const PARTNER_ROLE: &'static str = "partner";

    pub fn new(id: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            role: role.into(),
            via: None,
        }
    }

    /// A service itself (deadlines, consumers): `("tickets", "system")`.
    pub fn system(service: &str) -> Self {
        Self::new(service, "system")
    }

    /// The partner this actor acts for, if it is a partner.
    pub fn partner(&self) -> Option<&str> {
        (self.role == Self::PARTNER_ROLE).then_some(self.id.as_str())
    }
}

/// `(id, role)` of the request's actor; `("anonymous", "unspecified")` when none is given.
/// The role is the enum's name in lower case, e.g. `agent`.
fn actor(actor: Option<&common::Actor>) -> (String, String) {
    match actor {
        Some(a) if !a.id.is_empty() => (a.id.chars().take(MAX_ID).collect(), role_name(a.role)),
        _ => ("anonymous".into(), "unspecified".into()),
    }
}

fn role_name(role: i32) -> String {
    common::ActorRole::try_from(role)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("ACTOR_ROLE_")
                .to_lowercase()
        })
        .unwrap_or_else(|_| "unspecified".into())
}

/// The roles of the desk, most senior first: the one a token subject is recorded with.
const DESK_ROLES: [&str; 4] = [
    roles::MANAGER,
    roles::SUPERVISOR,
    roles::AGENT,
    roles::ADMIN,
];

/// The actor of a call made by `caller` whose body names `claimed`:
/// - no actor in the body: the token's subject, with its most senior desk role (or
///   `service` for a service account);
/// - the token's subject: the same, with the role the body names if the token has it;
/// - someone else: only for a caller with the role `act-as`, recorded as that person
///   with `via` naming the caller; anyone else is refused (`PERMISSION_DENIED`).
///
/// With authentication disabled (the unrestricted caller) the body is all there is.
pub fn actor_of(caller: &Caller, claimed: Option<&common::Actor>) -> Result<Actor, Status> {
    let claimed = claimed.filter(|a| !a.id.trim().is_empty());
    if caller.is_unrestricted() {
        let (id, role) = actor(claimed);
        return Ok(Actor::new(id, role));
    }
    let token_role = || {
        DESK_ROLES
            .iter()
            .find(|r| caller.has_role(r))
            .map_or_else(|| "service".to_owned(), |r| (*r).to_owned())
    };
    let Some(claimed) = claimed else {
        return Ok(Actor::new(caller.subject.clone(), token_role()));
    };
    let named_role = role_name(claimed.role);
    if claimed.id == caller.subject {
        let role = if caller.has_role(&named_role) {
            named_role
        } else {
            token_role()
        };
        return Ok(Actor::new(caller.subject.clone(), role));
    }
    // Partners reach the suite only through the gateway.
    let for_partner = named_role == "partner";
    if caller.has_role(roles::ACT_AS) && (!for_partner || caller.has_role(roles::GATEWAY)) {
        // The audit record of this call names both: the account and the end user.
        crate::audit::acting_for(claimed.id.chars().take(MAX_ID).collect::<String>().as_str());
        return Ok(Actor {
            id: claimed.id.chars().take(MAX_ID).collect(),
            role: named_role,
            via: Some(caller.subject.clone()),
        });
    }
    Err(Status::permission_denied(
        "actor: names someone other than the token's subject; only a service account \
         with the role act-as may act for another",
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn caller(subject: &str, roles: &[&str]) -> Caller {
        Caller {
            subject: subject.into(),
            roles: roles
                .iter()
                .map(|r| (*r).to_owned())
                .collect::<BTreeSet<_>>(),
            client_id: None,
        }
    }

    fn body(id: &str, role: common::ActorRole) -> common::Actor {
        common::Actor {
            id: id.into(),
            role: role as i32,
        }
    }

    #[test]
    fn roles_read_as_lower_case_names() {
        let a = body("agent-7", common::ActorRole::Supervisor);
        assert_eq!(actor(Some(&a)), ("agent-7".into(), "supervisor".into()));
        assert_eq!(actor(None), ("anonymous".into(), "unspecified".into()));
    }

    #[test]
    fn the_token_decides_who_acts() {
        let agent = caller("agent-7", &["agent", "pii:read"]);
        assert_eq!(
            actor_of(&agent, None).unwrap(),
            Actor::new("agent-7", "agent")
        );
        let own = body("agent-7", common::ActorRole::Manager);
        // Claiming a role the token lacks records the token's role.
        assert_eq!(
            actor_of(&agent, Some(&own)).unwrap(),
            Actor::new("agent-7", "agent")
        );
        let other = body("agent-8", common::ActorRole::Agent);
        let refused = actor_of(&agent, Some(&other)).unwrap_err();
        assert_eq!(refused.code(), tonic::Code::PermissionDenied);
        assert!(refused.message().contains("act-as"));
    }

    #[test]
    fn a_service_account_with_act_as_acts_for_another_and_both_are_kept() {
        let gateway = caller("gateway", &["service:gateway", "act-as"]);
        let partner = body("partner-1", common::ActorRole::Partner);
        let actor = actor_of(&gateway, Some(&partner)).unwrap();
        assert_eq!(
            actor,
            Actor {
                id: "partner-1".into(),
                role: "partner".into(),
                via: Some("gateway".into()),
            }
        );
        assert_eq!(
            actor_of(&gateway, None).unwrap(),
            Actor::new("gateway", "service")
        );
    }

    #[tokio::test]
    async fn the_audit_record_of_an_act_as_call_names_the_end_user() {
        let gateway = caller("gateway", &["service:gateway", "act-as"]);
        let partner = body("partner-1", common::ActorRole::Partner);
        let (actor, filled) =
            crate::audit::Scope::run(async { actor_of(&gateway, Some(&partner)) }).await;
        assert_eq!(actor.unwrap().via.as_deref(), Some("gateway"));
        assert_eq!(filled.on_behalf_of.as_deref(), Some("partner-1"));
        let agent = caller("agent-7", &["agent"]);
        let ((), own) = crate::audit::Scope::run(async {
            actor_of(&agent, None).unwrap();
        })
        .await;
        assert_eq!(own.on_behalf_of, None);
    }

    #[test]
    fn without_authentication_the_body_is_all_there_is() {
        let anyone = Caller::unrestricted();
        let claimed = body("agent-9", common::ActorRole::Agent);
        assert_eq!(
            actor_of(&anyone, Some(&claimed)).unwrap(),
            Actor::new("agent-9", "agent")
        );
        assert_eq!(
            actor_of(&anyone, None).unwrap(),
            Actor::new("anonymous", "unspecified")
        );
    }
}
