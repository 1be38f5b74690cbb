//! A service's permission table: for every RPC (its full gRPC path), the roles any one of
//! which lets a caller in. Deny by default: a method without a row is refused to everyone.
//! [`Permissions::coverage`] compares a table with the service's descriptor, for the unit
//! test each service keeps ("every RPC has its row, and no row names a method the service
//! does not have").

use std::collections::HashMap;

use prost::Message;
use prost_types::FileDescriptorSet;
use tonic::Status;

use super::Caller;

/// RPC path → roles, any of which suffices.
#[derive(Debug, Clone, Default)]
pub struct Permissions {
    rows: HashMap<&'static str, &'static [&'static str]>,
}

/// How a table fits a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Methods of the service with no row (refused to everyone).
    pub missing: Vec<String>,
    /// Rows naming a path the service does not have (a typo, or a removed RPC).
    pub stray: Vec<String>,
    /// Paths with more than one row (only the last would count).
    pub duplicate: Vec<String>,
    /// Rows that grant no role at all (so refuse everyone, like a missing row).
    pub empty: Vec<String>,
}

impl Coverage {
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
            && self.stray.is_empty()
            && self.duplicate.is_empty()
            && self.empty.is_empty()
    }
}

impl Permissions {
    /// A table from rows such as
    /// `("/aftersales.tickets.v1.TicketService/GetTicket", &["agent", "supervisor"])`.
    pub fn new(rows: &[(&'static str, &'static [&'static str])]) -> Self {
        Self {
            rows: rows.iter().copied().collect(),
        }
    }

    /// The roles that may call `path`; `None` when the table has no row for it.
    pub fn roles_for(&self, path: &str) -> Option<&'static [&'static str]> {
        self.rows.get(path).copied()
    }

    /// Whether `caller` may call `path`: `PERMISSION_DENIED` naming the roles needed when
    /// not, and for every caller when the table has no row for `path`.
    pub fn check(&self, caller: &Caller, path: &str) -> Result<(), Status> {
        match self.roles_for(path) {
            Some(roles) if !roles.is_empty() && caller.has_any_role(roles) => Ok(()),
            Some(roles) if !roles.is_empty() => Err(Status::permission_denied(format!(
                "requires {} {}",
                if roles.len() == 1 {
                    "the role"
                } else {
                    "one of the roles"
                },
                roles.join(", ")
            ))),
            _ => Err(Status::permission_denied("method not permitted")),
        }
    }

    /// Whether `rows` is the complete table of a crate serving `services` (full names):
    /// every method of each has exactly one non-empty row, every row belongs to one of
    /// them, and every `audited` method has a row. The problems, one per line, otherwise:
    /// what each service's unit test asserts.
    pub fn table_problems(
        rows: &[(&'static str, &'static [&'static str])],
        audited: &[&str],
        descriptor_set: &[u8],
        services: &[&str],
    ) -> Result<(), String> {
        let mut problems: Vec<String> = audited
            .iter()
            .filter(|path| !rows.iter().any(|(p, _)| p == *path))
            .map(|path| format!("{path} is audited but has no row"))
            .collect();
        let mut stray_for_all: Option<Vec<String>> = None;
        for service in services {
            let coverage = Self::coverage(rows, descriptor_set, service)
                .map_err(|e| format!("descriptor set: {e}"))?;
            problems.extend(coverage.missing.iter().map(|m| format!("no row for {m}")));
            problems.extend(
                coverage
                    .duplicate
                    .iter()
                    .map(|m| format!("two rows for {m}")),
            );
            problems.extend(coverage.empty.iter().map(|m| format!("no role for {m}")));
            stray_for_all = Some(match stray_for_all {
                None => coverage.stray,
                Some(before) => before
                    .into_iter()
                    .filter(|p| coverage.stray.contains(p))
                    .collect(),
            });
        }
        problems.extend(
            stray_for_all
                .unwrap_or_default()
                .iter()
                .map(|p| format!("{p} is no method of {services:?}")),
        );
        problems.dedup();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// How `rows` covers the methods of `service` (a full name such as
    /// `aftersales.tickets.v1.TicketService`) in an encoded descriptor set such as
    /// `aftersales_protos::FILE_DESCRIPTOR_SET`. A service the set does not hold has
    /// every row stray.
    pub fn coverage(
        rows: &[(&'static str, &'static [&'static str])],
        descriptor_set: &[u8],
        service: &str,
    ) -> Result<Coverage, prost::DecodeError> {
        let set = FileDescriptorSet::decode(descriptor_set)?;
        let methods: Vec<String> = set
            .file
            .iter()
            .flat_map(|file| {
                file.service
                    .iter()
                    .filter(move |s| format!("{}.{}", file.package(), s.name()) == service)
            })
            .flat_map(|s| s.method.iter())
            .map(|m| format!("/{service}/{}", m.name()))
            .collect();
        let mut coverage = Coverage {
            missing: methods
                .iter()
                .filter(|m| !rows.iter().any(|(path, _)| path == m))
                .cloned()
                .collect(),
            stray: rows
                .iter()
                .filter(|(path, _)| !methods.iter().any(|m| m == path))
                .map(|(path, _)| (*path).to_owned())
                .collect(),
            duplicate: Vec::new(),
            empty: rows
                .iter()
                .filter(|(_, roles)| roles.iter().all(|r| r.trim().is_empty()))
                .map(|(path, _)| (*path).to_owned())
                .collect(),
        };
        for (i, (path, _)) in rows.iter().enumerate() {
            if rows[..i].iter().any(|(earlier, _)| earlier == path)
                && !coverage.duplicate.iter().any(|d| d == path)
            {
                coverage.duplicate.push((*path).to_owned());
            }
        }
        Ok(coverage)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use tonic::Code;

    use super::*;

    const GET: &str = "/aftersales.tickets.v1.TicketService/GetTicket";
    const POLICY: &str = "/aftersales.tickets.v1.TicketService/UpsertSlaPolicy";

    fn caller(roles: &[&str]) -> Caller {
        Caller {
            subject: "u".into(),
            roles: roles
                .iter()
                .map(|r| (*r).to_owned())
                .collect::<BTreeSet<_>>(),
            client_id: None,
        }
    }

    fn table() -> Permissions {
        Permissions::new(&[(GET, &["agent", "supervisor"]), (POLICY, &["admin"])])
    }

    #[test]
    fn any_listed_role_suffices() {
        let table = table();
        assert!(table.check(&caller(&["agent"]), GET).is_ok());
        assert!(table.check(&caller(&["supervisor", "x"]), GET).is_ok());
        assert!(table.check(&caller(&["admin"]), POLICY).is_ok());
    }

    #[test]
    fn a_missing_role_is_denied_naming_what_is_needed() {
        let table = table();
        let denied = table.check(&caller(&["analyst"]), GET).unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(
            denied.message(),
            "requires one of the roles agent, supervisor"
        );
        let denied = table.check(&caller(&[]), POLICY).unwrap_err();
        assert_eq!(denied.message(), "requires the role admin");
    }

    #[test]
    fn a_method_without_a_row_is_denied_to_everyone_even_the_unrestricted() {
        let table = table();
        let path = "/aftersales.tickets.v1.TicketService/ListTickets";
        for who in [caller(&["admin", "agent"]), Caller::unrestricted()] {
            assert_eq!(
                table.check(&who, path).unwrap_err().code(),
                Code::PermissionDenied
            );
        }
        let nobody = Permissions::new(&[(GET, &[])]);
        assert!(nobody.check(&Caller::unrestricted(), GET).is_err());
        assert!(table.check(&Caller::unrestricted(), POLICY).is_ok());
    }

    #[test]
    fn a_table_problem_is_named_and_a_row_of_another_served_service_is_no_stray() {
        let rows: &[(&str, &[&str])] = &[
            (GET, &["agent"]),
            (
                "/aftersales.dispatch.v1.PartnerKeyService/IssuePartnerKey",
                &["admin"],
            ),
            ("/aftersales.tickets.v1.TicketService/Gone", &["admin"]),
        ];
        let problems = Permissions::table_problems(
            rows,
            &["/aftersales.tickets.v1.TicketService/Unlisted"],
            aftersales_protos::FILE_DESCRIPTOR_SET,
            &[
                "aftersales.tickets.v1.TicketService",
                "aftersales.dispatch.v1.PartnerKeyService",
            ],
        )
        .unwrap_err();
        assert!(problems.contains("no row for /aftersales.tickets.v1.TicketService/ListTickets"));
        assert!(problems.contains("TicketService/Gone is no method"));
        assert!(problems.contains("TicketService/Unlisted is audited but has no row"));
        assert!(
            !problems.contains("IssuePartnerKey is no method"),
            "{problems}"
        );
    }

    #[test]
    fn coverage_names_missing_stray_duplicate_and_empty_rows() {
        let rows: &[(&str, &[&str])] = &[
            (GET, &["agent"]),
            (GET, &["agent"]),
            (POLICY, &[]),
            (
                "/aftersales.tickets.v1.TicketService/GetTickets",
                &["agent"],
            ),
        ];
        let coverage = Permissions::coverage(
            rows,
            aftersales_protos::FILE_DESCRIPTOR_SET,
            "aftersales.tickets.v1.TicketService",
        )
        .unwrap();
        assert!(!coverage.is_complete());
        assert!(
            coverage
                .missing
                .iter()
                .any(|m| m == "/aftersales.tickets.v1.TicketService/CreateTicket")
        );
        assert!(!coverage.missing.iter().any(|m| m == GET || m == POLICY));
        // Every method but the two rows that name real ones (GET and POLICY).
        let methods = Permissions::coverage(
            &[],
            aftersales_protos::FILE_DESCRIPTOR_SET,
            "aftersales.tickets.v1.TicketService",
        )
        .unwrap()
        .missing
        .len();
        assert!(methods > 2);
        assert_eq!(
            coverage.missing.len(),
            methods - 2,
            "{:?}",
            coverage.missing
        );
        assert_eq!(
            coverage.stray,
            ["/aftersales.tickets.v1.TicketService/GetTickets"]
        );
        assert_eq!(coverage.duplicate, [GET]);
        assert_eq!(coverage.empty, [POLICY]);
    }

    #[test]
    fn a_full_table_is_complete() {
        let rows: &[(&str, &[&str])] = &[("/aftersales.bench.v1.Echo/Echo", &["agent"])];
        let set = aftersales_protos::BENCH_DESCRIPTOR_SET;
        let coverage = Permissions::coverage(rows, set, "aftersales.bench.v1.Echo").unwrap();
        assert!(coverage.is_complete(), "{coverage:?}");
        let elsewhere = Permissions::coverage(rows, set, "aftersales.bench.v1.Nope").unwrap();
        assert_eq!(elsewhere.stray, [rows[0].0]);
    }
}
