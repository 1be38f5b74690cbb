//! The verified caller of an RPC, and how its roles are read from a token's claims.

use std::collections::BTreeSet;

use serde::Deserialize;
use serde_json::Value;
use tonic::Status;

use super::AuthError;

/// The role that stands for every role. Only [`Caller::unrestricted`] (the caller
/// `AUTH_MODE=disabled` lets in) holds it; a token naming it is not believed.
pub const ALL_ROLES: &str = "*";

/// Who is calling, as the token proves it: the [`AuthLayer`](super::AuthLayer) puts one in
/// the extensions of every request it lets through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub` (for a service account without one, its client id).
    pub subject: String,
    /// The `roles` claim and the space-separated `scope` claim, together.
    pub roles: BTreeSet<String>,
    /// The OAuth client the token was issued to (`azp`, else `client_id`).
    pub client_id: Option<String>,
}

impl Caller {
    /// The caller of a port whose authentication is disabled: subject `anonymous`, every
    /// role.
    pub fn unrestricted() -> Self {
        Self {
            subject: "anonymous".into(),
            roles: BTreeSet::from([ALL_ROLES.to_owned()]),
            client_id: None,
        }
    }

    /// The caller of a port without authentication (`AUTH_MODE=disabled`).
    pub fn is_unrestricted(&self) -> bool {
        self.roles.contains(ALL_ROLES)
    }

    /// Whether the caller holds `role` (or every role).
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.contains(ALL_ROLES) || self.roles.contains(role)
    }

    /// Whether the caller holds at least one of `roles` (or every role).
    pub fn has_any_role(&self, roles: &[&str]) -> bool {
        self.roles.contains(ALL_ROLES) || roles.iter().any(|role| self.roles.contains(*role))
    }

    /// The caller the [`AuthLayer`](super::AuthLayer) verified for this request. Without one
    /// the server was built without the layer, and nothing may be granted.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<&Caller, Status> {
        request
            .extensions()
            .get::<Caller>()
            .ok_or_else(|| Status::unauthenticated("no verified caller"))
    }

    /// The caller a token's (verified) claims describe.
    pub(crate) fn from_claims(claims: Claims) -> Result<Self, AuthError> {
        let client_id = claims.azp.or(claims.client_id).filter(|c| !c.is_empty());
        let subject = claims
            .sub
            .filter(|s| !s.is_empty())
            .or_else(|| client_id.clone())
            .ok_or(AuthError::Malformed)?;
        Ok(Self {
            subject,
            roles: roles(claims.roles.as_ref(), claims.scope.as_ref()),
            client_id,
        })
    }
}

/// The claims a [`Caller`] is made of; `exp`, `iss` and `aud` are checked by the
/// verifier before these are read.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    roles: Option<Value>,
    #[serde(default)]
    scope: Option<Value>,
    #[serde(default)]
    azp: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
}

/// Roles from the `roles` claim (an array of strings) and the `scope` claim (a
/// space-separated string). Either may also come in the other shape, as providers differ;
/// anything else adds nothing. Empty names and [`ALL_ROLES`] are dropped.
pub(crate) fn roles(roles: Option<&Value>, scope: Option<&Value>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for claim in [roles, scope].into_iter().flatten() {
        match claim {
            Value::String(names) => out.extend(names.split_whitespace().map(str::to_owned)),
            Value::Array(items) => out.extend(
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::trim)
                    .map(str::to_owned),
            ),
            _ => {}
        }
    }
    out.retain(|role| !role.is_empty() && role != ALL_ROLES);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Claims {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn roles_come_from_the_roles_array_and_the_scope_string() {
        let caller = Caller::from_claims(claims(json!({
            "sub": "u-1",
            "roles": ["agent", "pii:read"],
            "scope": "openid  reports agent",
            "azp": "console",
        })))
        .unwrap();
        assert_eq!(caller.subject, "u-1");
        assert_eq!(caller.client_id.as_deref(), Some("console"));
        let roles: Vec<&str> = caller.roles.iter().map(String::as_str).collect();
        assert_eq!(roles, ["agent", "openid", "pii:read", "reports"]);
    }

    #[test]
    fn odd_shapes_add_what_they_can_and_never_the_wildcard() {
        let set = roles(Some(&json!("a b")), Some(&json!(["c", 7, "", "*", " d "])));
        let roles: Vec<&str> = set.iter().map(String::as_str).collect();
        assert_eq!(roles, ["a", "b", "c", "d"]);
        assert!(super::roles(Some(&json!({"x": 1})), Some(&json!(3))).is_empty());
        assert!(super::roles(None, None).is_empty());
    }

    #[test]
    fn a_service_account_without_sub_is_its_client() {
        let caller = Caller::from_claims(claims(json!({"client_id": "care"}))).unwrap();
        assert_eq!(caller.subject, "care");
        assert!(caller.roles.is_empty());
        assert_eq!(
            Caller::from_claims(claims(json!({"sub": ""}))).unwrap_err(),
            AuthError::Malformed
        );
    }

    #[test]
    fn the_unrestricted_caller_holds_every_role_and_a_token_caller_only_its_own() {
        let anyone = Caller::unrestricted();
        assert!(anyone.has_role("admin") && anyone.has_any_role(&["refunds"]));
        let agent = Caller::from_claims(claims(json!({"sub": "a", "roles": ["agent"]}))).unwrap();
        assert!(agent.has_role("agent"));
        assert!(!agent.has_role("admin"));
        assert!(agent.has_any_role(&["admin", "agent"]));
        assert!(!agent.has_any_role(&[]));
    }

    #[test]
    fn a_request_without_a_verified_caller_is_unauthenticated() {
        let mut request = tonic::Request::new(());
        assert_eq!(
            Caller::of(&request).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        request.extensions_mut().insert(Caller::unrestricted());
        assert_eq!(Caller::of(&request).unwrap().subject, "anonymous");
    }
}
