//! Data rights and retention: exporting every record care holds about a customer
//! (unmasked, for a reader holding `pii:read`, and audited), erasing one customer's
//! personal data on request, and anonymising customers with no activity for the
//! retention period. Anonymising keeps ids, tiers and the facts
//! behind the KPIs; contact fields, the name and free-text comments go.

use aftersales_platform::{
    audit::{self, AuditFilter, AuditLog, AuditRecord},
    idempotency::Idempotency,
};
use aftersales_runtime::command::{Begun, Command, Remembered};
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    domain::{
        Reader,
        customer::{ANONYMISED_NAME, Contact, Customer},
        followup::FollowUp,
        listing::TaskFilter,
        proactive::{CareTask, Warranty},
        records::{PiiRead, Survey, TimelineEntry},
        spot_check::SpotCheck,
    },
    error::{CareError, not_found},
    events, store,
};

use super::{CareCore, CareDeadline};

const ANONYMISE_SCOPE: &str = "care.AnonymiseCustomer";
const ERASE_SCOPE: &str = "care.EraseCustomer";

/// Every record care holds about one customer.
#[derive(Debug, Clone)]
pub struct CustomerData {
    pub customer: Customer,
    pub timeline: Vec<TimelineEntry>,
    pub follow_ups: Vec<FollowUp>,
    pub surveys: Vec<Survey>,
    pub warranties: Vec<Warranty>,
    pub tasks: Vec<CareTask>,
    pub access_log: Vec<PiiRead>,
    pub exported_at: DateTime<Utc>,
    pub spot_checks: Vec<SpotCheck>,
}

/// The clear-text reads of a customer's personal data, oldest first: the audit records
/// naming the customer, then `this_read` (whose record the server writes once the export
/// is answered).
async fn access_log<C: ConnectionTrait>(
    conn: &C,
    customer_id: &str,
    this_read: PiiRead,
) -> Result<Vec<PiiRead>, DbErr> {
    let filter = AuditFilter {
        target: Some(format!("customer:{customer_id}")),
        ..AuditFilter::default()
    };
    let mut reads: Vec<PiiRead> = AuditLog::query(conn, &filter, None, u64::MAX >> 1)
        .await?
        .into_iter()
        .rev()
        .map(|record| pii_read(customer_id, record))
        .collect();
    reads.push(this_read);
    Ok(reads)
}

/// A read as the access log shows it, from the notes `CareCore::audit` made.
fn pii_read(customer_id: &str, record: AuditRecord) -> PiiRead {
    let note = |key: &str| {
        record
            .detail
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let operation = note("operation");
    PiiRead {
        customer_id: customer_id.to_owned(),
        actor_id: Some(note("actor"))
            .filter(|a| !a.is_empty())
            .unwrap_or_else(|| record.subject.clone()),
        actor_role: note("actor_role"),
        purpose: note("purpose"),
        operation: if operation.is_empty() {
            record.rpc.rsplit('/').next().unwrap_or_default().to_owned()
        } else {
            operation
        },
        fields: record
            .detail
            .get("fields")
            .and_then(|v| v.as_array())
            .map(|fields| {
                fields
                    .iter()
                    .filter_map(|f| f.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        read_at: record.at,
        id: record.id,
    }
}

impl CareCore {
    /// Every record about one customer, unmasked: needs `pii:read`, and is audited.
    pub async fn export(
        &self,
        customer_id: &str,
        reader: &Reader,
    ) -> Result<CustomerData, CareError> {
        if !reader.may_read_pii() {
            return Err(CareError::PiiForbidden("an export"));
        }
        let customer = self.load_customer(customer_id).await?;
        let this_read = self.audit(&customer, reader, "ExportCustomerData").await?;
        let db = self.db();
        let filter = TaskFilter {
            customer_id: Some(customer_id.to_owned()),
            ..Default::default()
        };
        Ok(CustomerData {
            timeline: store::timeline_page(db, customer_id, None, u64::MAX >> 1).await?,
            follow_ups: store::follow_ups_of(db, customer_id).await?,
            surveys: store::surveys_of(db, customer_id).await?,
            warranties: store::warranties_of(db, customer_id).await?,
            tasks: store::list_tasks(db, &filter, None, u64::MAX >> 1).await?,
            access_log: access_log(db, customer_id, this_read).await?,
            spot_checks: store::spot_checks_of_customer(db, customer_id).await?,
            exported_at: self.now(),
            customer,
        })
    }

    /// Anonymises customers with no activity since `as_of - retention`, one command
    /// each. A row that does not open (its key is no longer configured, or a field was
    /// altered) is logged by id and left for an operator; the run goes on past it.
    pub async fn anonymise_inactive(&self, as_of: DateTime<Utc>) -> Result<u64, CareError> {
        let before = as_of - self.rules.retention;
        let mut count = 0;
        let mut after = String::new();
        loop {
            let ids = store::inactive_customers(self.db(), before, &after, 100).await?;
            let Some(last) = ids.last() else { break };
            after = last.clone();
            for id in ids {
                if self.anonymise(&id, before).await? {
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// Erases one customer's personal data on request (the right to erasure): the same
    /// anonymisation retention applies, at once, whatever the customer's activity; the
    /// other services erase their copies when the event reaches them. Erasing an
    /// anonymised customer again changes nothing and publishes nothing.
    pub async fn erase_customer(
        &self,
        id: &str,
        idem: Option<&Idempotency>,
    ) -> Result<Customer, CareError> {
        audit::target(format!("customer:{id}"));
        let cmd = match self.pipeline.begin(ERASE_SCOPE, idem).await? {
            Begun::Replay(_) => return self.load_customer(id).await,
            Begun::Fresh(cmd) => cmd,
        };
        let Some(row) = store::get_customer(cmd.txn(), id, true).await? else {
            cmd.abandon().await?;
            return Err(not_found("customer", id));
        };
        let customer = self.open(&row)?;
        if customer.anonymised {
            cmd.abandon().await?;
            return Ok(customer);
        }
        self.wipe(cmd, customer).await
    }

    /// Anonymises one customer if it is still inactive since `before`; whether it did.
    async fn anonymise(&self, id: &str, before: DateTime<Utc>) -> Result<bool, CareError> {
        let cmd = self.pipeline.begin_unkeyed(ANONYMISE_SCOPE).await?;
        let Some(row) = store::lock_inactive_customer(cmd.txn(), id, before).await? else {
            cmd.abandon().await?;
            return Ok(false);
        };
        let opened = row.map_err(CareError::from).and_then(|row| self.open(&row));
        let customer = match opened {
            Ok(customer) => customer,
            Err(err) => {
                cmd.abandon().await?;
                // A vault error names the key id or the field, never the content; other
                // errors may quote stored data, so they are not logged.
                let reason = match err {
                    CareError::Vault(err) => err.to_string(),
                    _ => "stored data does not decode".to_owned(),
                };
                tracing::warn!(
                    customer_id = %id,
                    %reason,
                    "retention cannot open this customer's row; skipping it"
                );
                return Ok(false);
            }
        };
        self.wipe(cmd, customer).await?;
        Ok(true)
    }

    /// Replaces the customer's name and contact, clears its free-text comments and
    /// tells the other services, in the locked command `cmd`.
    async fn wipe(
        &self,
        mut cmd: Command<CareDeadline>,
        mut customer: Customer,
    ) -> Result<Customer, CareError> {
        let now = cmd.now();
        customer.name = ANONYMISED_NAME.into();
        customer.contact = Contact::default();
        customer.anonymised = true;
        customer.updated_at = now;
        store::save_customer(cmd.txn(), &self.seal(&customer)?).await?;
        store::clear_comments(cmd.txn(), &customer.id).await?;
        cmd.publish(vec![events::customer_anonymised(&customer.id, now)])
            .await?;
        cmd.commit(&self.pipeline, &Remembered::id(&customer.id))
            .await?;
        Ok(customer)
    }
}
