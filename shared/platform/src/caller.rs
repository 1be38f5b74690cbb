//! Who issued a command, from the request's `aftersales.common.v1.Actor`, for histories
//! and audit lines.

use aftersales_protos::common::v1 as common;

/// The longest actor id kept; longer ones are cut.
const MAX_ID: usize = 128;

/// `(id, role)` of the request's actor; `("anonymous", "unspecified")` when none is given.
/// The role is the enum's name in lower case, e.g. `agent`.
pub fn actor(actor: Option<&common::Actor>) -> (String, String) {
    match actor {
        Some(a) if !a.id.is_empty() => (
            a.id.chars().take(MAX_ID).collect(),
            common::ActorRole::try_from(a.role)
                .map(|r| {
                    r.as_str_name()
                        .trim_start_matches("ACTOR_ROLE_")
                        .to_lowercase()
                })
                .unwrap_or_else(|_| "unspecified".into()),
        ),
        _ => ("anonymous".into(), "unspecified".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_read_as_lower_case_names() {
        let a = common::Actor {
            id: "agent-7".into(),
            role: common::ActorRole::Supervisor as i32,
        };
        assert_eq!(actor(Some(&a)), ("agent-7".into(), "supervisor".into()));
        assert_eq!(actor(None), ("anonymous".into(), "unspecified".into()));
    }
}
