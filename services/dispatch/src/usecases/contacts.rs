//! The customer's contact on a job: sealed under the job's id the moment the job exists
//! (`aftersales_platform::seal`, the scheme care's vault uses, under the context
//! `aftersales.dispatch`), sealed again under the active key whenever a command changes
//! the job, and opened only to be shown: in clear text to the partner on its accepted,
//! open job and to a reader holding `pii:read` on `GetJob`, each such read recorded in the
//! suite's audit trail (target `job:<id>`); masked to everyone else. When
//! care anonymises a customer, the contacts on that customer's jobs are erased.
//!
//! Jobs stored before contacts were sealed hold their contact in clear text in the body
//! (an empty key id); start-up seals them all before the service serves
//! ([`DispatchCore::seal_clear_contacts`]), and until then they still read.

use aftersales_platform::audit;
use aftersales_runtime::command::Remembered;
use sea_orm::ConnectionTrait;

use crate::{
    domain::{
        Actor,
        job::{Contact, JobAggregate, JobView, SealedContact},
    },
    error::DispatchError,
    store,
};

use super::DispatchCore;

/// The associated-data context of dispatch's sealed fields (`aftersales.dispatch/<job
/// id>/<field>`); changing it would leave every stored contact unopenable.
pub const SEAL_CONTEXT: &str = "aftersales.dispatch";

const SEAL_SCOPE: &str = "dispatch.SealContacts";

/// Who reads a job, for what it shows of the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactRight {
    /// Masked (or, for a partner, only on its accepted open work).
    Masked,
    /// In clear text: a reader holding `pii:read`, audited.
    Clear,
}

impl DispatchCore {
    pub(super) fn seal_contact(
        &self,
        job_id: &str,
        contact: &Contact,
    ) -> Result<SealedContact, DispatchError> {
        let seal = |field: &str, value: &str| self.vault.seal(job_id, field, value);
        Ok(SealedContact {
            key_id: self.vault.active_key_id().to_owned(),
            name: seal("name", &contact.name)?,
            phone: seal("phone", &contact.phone)?,
            address: seal("address", &contact.address)?,
        })
    }

    fn open_contact(&self, job_id: &str, sealed: &SealedContact) -> Result<Contact, DispatchError> {
        if sealed.key_id.is_empty() {
            // Stored in clear text before contacts were sealed (start-up seals it).
            return Ok(Contact {
                name: sealed.name.clone(),
                phone: sealed.phone.clone(),
                address: sealed.address.clone(),
            });
        }
        let open = |field: &str, value: &str| self.vault.open(&sealed.key_id, job_id, field, value);
        Ok(Contact {
            name: open("name", &sealed.name)?,
            phone: open("phone", &sealed.phone)?,
            address: open("address", &sealed.address)?,
        })
    }

    /// Seals the job's contact again under the active key, when it is under another (or
    /// in clear text); whether it did.
    fn reseal(&self, agg: &mut JobAggregate) -> Result<bool, DispatchError> {
        let Some(sealed) = &agg.job.contact else {
            return Ok(false);
        };
        if sealed.key_id == self.vault.active_key_id() {
            return Ok(false);
        }
        let clear = self.open_contact(&agg.job.id, sealed)?;
        agg.job.contact = Some(self.seal_contact(&agg.job.id, &clear)?);
        Ok(true)
    }

    /// Loads and locks a job a command is about to change, its contact sealed under the
    /// active key: whatever the command then writes is.
    pub(super) async fn load_for_update<C: ConnectionTrait>(
        &self,
        conn: &C,
        id: &str,
    ) -> Result<Option<JobAggregate>, DispatchError> {
        let Some(mut agg) = store::load_job(conn, id, true).await? else {
            return Ok(None);
        };
        self.reseal(&mut agg)?;
        Ok(Some(agg))
    }

    /// Jobs as `actor` may see them. A partner sees its own view of each job
    /// ([`JobAggregate::scoped_to`]) and the contact in clear text only on its accepted,
    /// open work. Anyone else sees the contact masked, or with [`ContactRight::Clear`] in
    /// clear text. Every clear read is audited ([`audit_clear_read`]).
    pub(super) fn views(
        &self,
        jobs: Vec<JobAggregate>,
        actor: &Actor,
        right: ContactRight,
    ) -> Result<Vec<JobView>, DispatchError> {
        if let Some(partner) = actor.partner() {
            return jobs
                .into_iter()
                .map(|agg| {
                    let contact = match &agg.job.contact {
                        Some(sealed) if agg.shows_contact_to(partner) => {
                            audit_clear_read(&agg.job.id);
                            audit::note("partner", partner);
                            Some(self.open_contact(&agg.job.id, sealed)?)
                        }
                        _ => None,
                    };
                    Ok(JobView {
                        job: agg.scoped_to(partner),
                        contact,
                    })
                })
                .collect();
        }
        jobs.into_iter()
            .map(|agg| {
                let contact = match &agg.job.contact {
                    None if agg.job.contact_erased => Some(Contact::erased()),
                    None => None,
                    Some(sealed) => {
                        let clear = self.open_contact(&agg.job.id, sealed)?;
                        Some(match right {
                            ContactRight::Clear => {
                                audit_clear_read(&agg.job.id);
                                clear
                            }
                            ContactRight::Masked => clear.masked(),
                        })
                    }
                };
                Ok(JobView { job: agg, contact })
            })
            .collect()
    }

    /// Seals every contact stored in clear text by a version before contacts were
    /// sealed, a batch per command; how many jobs it wrote. Start-up runs it before
    /// serving; then it finds nothing.
    pub async fn seal_clear_contacts(&self) -> Result<u64, DispatchError> {
        let mut sealed = 0;
        loop {
            let cmd = self.pipeline.begin_unkeyed(SEAL_SCOPE).await?;
            let ids = store::jobs_to_seal(cmd.txn(), 100).await?;
            if ids.is_empty() {
                cmd.abandon().await?;
                return Ok(sealed);
            }
            for id in &ids {
                // Written again, every row gets its column: NULL no more.
                if let Some(agg) = self.load_for_update(cmd.txn(), id).await? {
                    store::save_job(cmd.txn(), &agg).await?;
                    sealed += 1;
                }
            }
            cmd.commit(&self.pipeline, &Remembered::ids(ids)).await?;
        }
    }

    /// Erases the contact on every job of the anonymised customer, inside the
    /// consumer's transaction; how many jobs changed (none when the event comes again).
    pub async fn erase_contacts_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        customer_id: &str,
    ) -> Result<u64, DispatchError> {
        let now = self.pipeline.now();
        let mut erased = 0;
        for id in store::jobs_with_contact_of(conn, customer_id).await? {
            let Some(mut agg) = store::load_job(conn, &id, true).await? else {
                continue;
            };
            if agg.erase_contact(now) {
                store::save_job(conn, &agg).await?;
                erased += 1;
            }
        }
        Ok(erased)
    }
}

/// Names a clear read of the job's contact in the request's audit record (target
/// `job:<id>`, the fields shown), which makes the call recorded in the trail whatever its
/// RPC. The auth layer writes the record before the answer leaves, or withholds the answer.
fn audit_clear_read(job_id: &str) {
    audit::target(format!("job:{job_id}"));
    audit::note("contact", "clear");
    audit::note("fields", CONTACT_FIELDS.to_vec());
}

/// The fields a clear read shows.
const CONTACT_FIELDS: [&str; 3] = ["name", "phone", "address"];

#[cfg(test)]
mod tests {
    use aftersales_platform::seal::Vault;

    use super::*;

    #[test]
    fn the_context_binds_a_sealed_field_to_dispatch() {
        let dispatch = Vault::development(SEAL_CONTEXT);
        let care = Vault::development("aftersales.care");
        let sealed = dispatch.seal("job-1", "phone", "13800000000").unwrap();
        assert!(
            care.open(dispatch.active_key_id(), "job-1", "phone", &sealed)
                .is_err()
        );
        assert_eq!(
            dispatch
                .open(dispatch.active_key_id(), "job-1", "phone", &sealed)
                .unwrap(),
            "13800000000"
        );
    }
}
