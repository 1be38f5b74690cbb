//! Customer profiles: creating or replacing one (its tier follows from the tier rules),
//! reading one masked or, for a reader holding `pii:read`, in clear text with an audit
//! line, the timeline, and replacing the tier rules (every customer moves to the tier
//! they now give). The name and contact fields are sealed here before they reach the
//! store and opened here after; start-up seals the names stored before names were.

use aftersales_platform::{audit, idempotency::Idempotency};
use aftersales_runtime::command::{Begun, Remembered};
use sea_orm::ConnectionTrait;

use crate::{
    domain::{
        DomainError, Reader,
        customer::{Contact, Customer, PurchaseStats, TierRules, normalise_phone},
        new_id,
        records::{PiiRead, TimelineEntry},
    },
    error::{CareError, not_found},
    events,
    store::{self, SealedCustomer},
};

use super::{CareCore, paged, replayed};

const UPSERT_CUSTOMER_SCOPE: &str = "care.UpsertCustomer";
const UPSERT_TIER_RULES_SCOPE: &str = "care.UpsertTierRules";
/// The setting the tier rules are kept under.
const TIER_RULES: &str = "tier_rules";

/// A profile as a caller sends it.
#[derive(Debug, Clone)]
pub struct CustomerInput {
    pub id: String,
    pub name: String,
    pub contact: Contact,
    pub region_code: String,
    pub purchases: PurchaseStats,
}

/// A profile as one reader may see it.
#[derive(Debug, Clone)]
pub struct Shown {
    pub customer: Customer,
    pub contact: Contact,
    pub unmasked: bool,
}

impl Shown {
    /// `customer` with its name and contact masked.
    fn masked(mut customer: Customer) -> Self {
        customer.name = customer.masked_name();
        Self {
            contact: customer.contact.masked(),
            customer,
            unmasked: false,
        }
    }
}

impl CareCore {
    pub(super) fn seal(&self, c: &Customer) -> Result<SealedCustomer, CareError> {
        let seal = |field: &str, value: &str| self.vault.seal(&c.id, field, value);
        Ok(SealedCustomer {
            id: c.id.clone(),
            name_sealed: seal("name", &c.name)?,
            clear_name: String::new(),
            region_code: c.region_code.clone(),
            key_id: self.vault.active_key_id().to_owned(),
            phone_sealed: seal("phone", &c.contact.phone)?,
            email_sealed: seal("email", &c.contact.email)?,
            address_sealed: seal("address", &c.contact.address)?,
            phone_hash: self.phone_hash(&c.contact.phone)?,
            tier: c.tier,
            purchases: c.purchases.clone(),
            anonymised: c.anonymised,
            created_at: c.created_at,
            updated_at: c.updated_at,
            last_activity_at: c.last_activity_at,
        })
    }

    pub(super) fn open(&self, row: &SealedCustomer) -> Result<Customer, CareError> {
        let open = |field: &str, sealed: &str| self.vault.open(&row.key_id, &row.id, field, sealed);
        let name = if row.clear_name.is_empty() {
            open("name", &row.name_sealed)?
        } else {
            row.clear_name.clone()
        };
        Ok(Customer {
            id: row.id.clone(),
            name,
            contact: Contact {
                phone: open("phone", &row.phone_sealed)?,
                email: open("email", &row.email_sealed)?,
                address: open("address", &row.address_sealed)?,
            },
            region_code: row.region_code.clone(),
            purchases: row.purchases.clone(),
            tier: row.tier,
            anonymised: row.anonymised,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_activity_at: row.last_activity_at,
        })
    }

    /// The search hash of a phone: its normalised digits under the search key.
    fn phone_hash(&self, phone: &str) -> Result<String, CareError> {
        Ok(self.vault.search_hash(&normalise_phone(phone))?)
    }

    /// Seals the names stored in clear text before names were sealed (the whole row again,
    /// under the active key), a batch per command; how many. Start-up runs it before
    /// serving; once every name is sealed it finds nothing.
    pub async fn seal_clear_names(&self) -> Result<u64, CareError> {
        const SEAL_NAMES_SCOPE: &str = "care.SealNames";
        let mut sealed = 0;
        loop {
            let cmd = self.pipeline.begin_unkeyed(SEAL_NAMES_SCOPE).await?;
            let ids = store::customers_with_clear_names(cmd.txn(), 100).await?;
            if ids.is_empty() {
                cmd.abandon().await?;
                return Ok(sealed);
            }
            for id in &ids {
                let Some(row) = store::get_customer(cmd.txn(), id, true).await? else {
                    continue;
                };
                let customer = self.open(&row)?;
                store::save_customer(cmd.txn(), &self.seal(&customer)?).await?;
                sealed += 1;
            }
            cmd.commit(&self.pipeline, &Remembered::ids(ids)).await?;
        }
    }

    async fn tier_rules<C: ConnectionTrait>(&self, conn: &C) -> Result<TierRules, CareError> {
        Ok(store::get_setting(conn, TIER_RULES)
            .await?
            .unwrap_or_else(TierRules::default_rules))
    }

    /// Creates or replaces a profile; the answer is masked (the writer already knows it).
    pub async fn upsert_customer(
        &self,
        input: CustomerInput,
        idem: Option<&Idempotency>,
    ) -> Result<Shown, CareError> {
        self.pipeline
            .keyed(idem, || self.try_upsert_customer(&input, idem))
            .await
    }

    async fn try_upsert_customer(
        &self,
        input: &CustomerInput,
        idem: Option<&Idempotency>,
    ) -> Result<Shown, CareError> {
        let mut cmd = match self.pipeline.begin(UPSERT_CUSTOMER_SCOPE, idem).await? {
            Begun::Replay(remembered) => {
                return Ok(Shown::masked(
                    self.load_customer(replayed(&remembered)?).await?,
                ));
            }
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let existing = match store::get_customer(cmd.txn(), &input.id, true).await? {
            Some(row) => Some(self.open(&row)?),
            None => None,
        };
        let rules = self.tier_rules(cmd.txn()).await?;
        let tier = rules.tier_of(&input.purchases);
        let customer = Customer {
            id: input.id.clone(),
            name: input.name.clone(),
            contact: input.contact.clone(),
            region_code: input.region_code.clone(),
            purchases: input.purchases.clone(),
            tier,
            anonymised: false,
            created_at: existing.as_ref().map_or(now, |c| c.created_at),
            updated_at: now,
            last_activity_at: now,
        };
        store::save_customer(cmd.txn(), &self.seal(&customer)?).await?;
        let previous = existing.as_ref().map(|c| c.tier);
        if previous != Some(tier) {
            cmd.publish(vec![events::tier_changed(
                &customer.id,
                previous,
                tier,
                now,
            )])
            .await?;
        }
        cmd.commit(&self.pipeline, &Remembered::id(&customer.id))
            .await?;
        Ok(Shown::masked(customer))
    }

    pub(super) async fn load_customer(&self, id: &str) -> Result<Customer, CareError> {
        let row = store::get_customer(self.db(), id, false)
            .await?
            .ok_or_else(|| not_found("customer", id))?;
        self.open(&row)
    }

    /// A profile by id or phone, masked unless the reader holds `pii:read`; an unmasked
    /// read is written to the audit log before it is answered.
    pub async fn get_customer(
        &self,
        id: Option<&str>,
        phone: Option<&str>,
        reader: &Reader,
    ) -> Result<Shown, CareError> {
        let row = match (id, phone) {
            (Some(id), _) => store::get_customer(self.db(), id, false)
                .await?
                .ok_or_else(|| not_found("customer", id))?,
            (None, Some(phone)) => {
                store::customer_by_phone_hash(self.db(), &self.phone_hash(phone)?)
                    .await?
                    .ok_or_else(|| not_found("customer with phone", "(given)"))?
            }
            (None, None) => {
                return Err(DomainError::invalid("customer_id", "or phone is required").into());
            }
        };
        let customer = self.open(&row)?;
        if !reader.may_read_pii() {
            return Ok(Shown::masked(customer));
        }
        self.audit(&customer, reader, "GetCustomer").await?;
        Ok(Shown {
            contact: customer.contact.clone(),
            customer,
            unmasked: true,
        })
    }

    /// Names a clear-text read of `customer`'s contact fields in the call's audit record,
    /// which the server writes before the answer leaves (and withholds the answer when it
    /// cannot: see `aftersales_platform::audit`). The read as recorded.
    pub(super) async fn audit(
        &self,
        customer: &Customer,
        reader: &Reader,
        operation: &str,
    ) -> Result<PiiRead, CareError> {
        let read = PiiRead {
            id: new_id(),
            customer_id: customer.id.clone(),
            actor_id: reader.actor.id.clone(),
            actor_role: reader.actor.role.clone(),
            purpose: reader.purpose.clone(),
            operation: operation.to_owned(),
            fields: customer
                .present_fields()
                .into_iter()
                .map(str::to_owned)
                .collect(),
            read_at: self.now(),
        };
        if !audit::target(format!("customer:{}", read.customer_id)) {
            tracing::warn!(operation, "a clear-text read outside an audited call");
        }
        audit::note("actor", read.actor_id.as_str());
        audit::note("actor_role", read.actor_role.as_str());
        audit::note("purpose", read.purpose.as_str());
        audit::note("operation", read.operation.as_str());
        audit::note("fields", read.fields.clone());
        Ok(read)
    }

    pub async fn timeline(
        &self,
        customer_id: &str,
        before: Option<&str>,
        size: u64,
    ) -> Result<(Vec<TimelineEntry>, Option<String>), CareError> {
        let page = store::timeline_page(self.db(), customer_id, before, size + 1).await?;
        Ok(paged(page, size, |t| t.id.clone()))
    }

    /// Replaces the rules and moves every customer to the tier they now give, in one
    /// command.
    pub async fn upsert_tier_rules(&self, mut rules: TierRules) -> Result<TierRules, CareError> {
        rules.validate()?;
        let mut cmd = self.pipeline.begin_unkeyed(UPSERT_TIER_RULES_SCOPE).await?;
        let now = cmd.now();
        let current = self.tier_rules(cmd.txn()).await?;
        rules.version = current.version + 1;
        store::put_setting(cmd.txn(), TIER_RULES, &rules, now).await?;
        let mut after = String::new();
        loop {
            let page = store::customers_after(cmd.txn(), &after, 500).await?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let mut changes = Vec::new();
            for mut row in page {
                let tier = rules.tier_of(&row.purchases);
                if row.tier != tier && !row.anonymised {
                    changes.push(events::tier_changed(&row.id, Some(row.tier), tier, now));
                    row.tier = tier;
                    row.updated_at = now;
                    store::save_customer(cmd.txn(), &row).await?;
                }
            }
            cmd.publish(changes).await?;
        }
        cmd.commit(&self.pipeline, &Remembered::id(TIER_RULES))
            .await?;
        Ok(rules)
    }
}
