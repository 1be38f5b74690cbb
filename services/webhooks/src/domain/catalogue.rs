//! Which event types an endpoint may subscribe to: internal subscribers any type of the
//! suite's catalogue, partners only the ones that concern a partner (their offers, jobs
//! cancelled under them, their quotes' reviews, their settlements, the parts their waiting
//! jobs needed having arrived).

use super::{DomainError, Owner, invalid};

/// The types a partner may be pushed; each names the partner it concerns.
pub const PARTNER_TYPES: &[&str] = &[
    "dispatch.JobOffered",
    "dispatch.OfferWithdrawn",
    "dispatch.JobCancelled",
    "dispatch.QuoteReviewed",
    "dispatch.SettlementIssued",
    "dispatch.JobPartsReady",
];

/// Most types one endpoint subscribes to.
pub const MAX_TYPES: usize = 64;

pub fn for_partners(event_type: &str) -> bool {
    PARTNER_TYPES.contains(&event_type)
}

/// The types `owner` may subscribe to, out of the suite's `catalogue`.
pub fn available<'a>(owner: &Owner, catalogue: &[&'a str]) -> Vec<&'a str> {
    catalogue
        .iter()
        .copied()
        .filter(|t| matches!(owner, Owner::Internal) || for_partners(t))
        .collect()
}

/// `types` checked for `owner`: at least one, each known and open to the owner, no
/// repeats; returned sorted.
pub fn check(
    owner: &Owner,
    types: &[String],
    catalogue: &[&str],
) -> Result<Vec<String>, DomainError> {
    const FIELD: &str = "event_types";
    if types.is_empty() {
        return Err(invalid(FIELD, "name at least one event type"));
    }
    if types.len() > MAX_TYPES {
        return Err(invalid(FIELD, format!("at most {MAX_TYPES} entries")));
    }
    let open = available(owner, catalogue);
    let mut checked = Vec::with_capacity(types.len());
    for t in types {
        if !catalogue.contains(&t.as_str()) {
            return Err(invalid(
                FIELD,
                format!("{t:?} is no event type of the suite"),
            ));
        }
        if !open.contains(&t.as_str()) {
            return Err(invalid(
                FIELD,
                format!("{t:?} is not open to partners; they may take {PARTNER_TYPES:?}"),
            ));
        }
        checked.push(t.clone());
    }
    checked.sort();
    checked.dedup();
    if checked.len() != types.len() {
        return Err(invalid(FIELD, "names a type twice"));
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOGUE: &[&str] = &[
        "tickets.TicketCreated",
        "dispatch.JobOffered",
        "dispatch.JobCancelled",
    ];

    fn types(list: &[&str]) -> Vec<String> {
        list.iter().map(|t| t.to_string()).collect()
    }

    #[test]
    fn partners_may_take_only_partner_types() {
        let partner = Owner::Partner("p".into());
        assert_eq!(
            check(&partner, &types(&["dispatch.JobOffered"]), CATALOGUE),
            Ok(types(&["dispatch.JobOffered"]))
        );
        assert!(check(&partner, &types(&["tickets.TicketCreated"]), CATALOGUE).is_err());
        assert!(
            check(
                &Owner::Internal,
                &types(&["tickets.TicketCreated"]),
                CATALOGUE
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_empty_and_repeated_types_are_refused() {
        let o = Owner::Internal;
        assert!(check(&o, &[], CATALOGUE).is_err());
        assert!(check(&o, &types(&["tickets.Nope"]), CATALOGUE).is_err());
        assert!(
            check(
                &o,
                &types(&["dispatch.JobOffered", "dispatch.JobOffered"]),
                CATALOGUE
            )
            .is_err()
        );
    }
}
