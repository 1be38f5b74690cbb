//! Customer rows (name and contact fields sealed, the phone only as a keyed hash) and the
//! service's settings (the tier rules). Clear-text reads are in the audit trail
//! (`aftersales_platform::audit`).

use aftersales_platform::db::{from_json, parse_code, to_json};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use crate::domain::{Tier, customer::PurchaseStats};

use super::{
    entity::{customer, setting},
    lock_if_postgres,
};

/// A customer as stored: name and contact fields sealed under the key `key_id` names, the
/// phone also as a keyed search hash. Only the use cases, holding the vault, seal and open
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedCustomer {
    pub id: String,
    pub name_sealed: String,
    /// The name of a row stored before names were sealed, in clear text; empty once the
    /// row is written again (start-up seals every such row, see
    /// [`customers_with_clear_names`]).
    pub clear_name: String,
    pub region_code: String,
    pub key_id: String,
    pub phone_sealed: String,
    pub email_sealed: String,
    pub address_sealed: String,
    pub phone_hash: String,
    pub tier: Tier,
    pub purchases: PurchaseStats,
    pub anonymised: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
}

impl TryFrom<customer::Model> for SealedCustomer {
    type Error = DbErr;

    fn try_from(row: customer::Model) -> Result<Self, DbErr> {
        Ok(Self {
            tier: parse_code("customer tier", &row.tier)?,
            purchases: from_json("customer", &row.purchases)?,
            id: row.id,
            name_sealed: row.name_sealed,
            clear_name: row.name,
            region_code: row.region_code,
            key_id: row.key_id,
            phone_sealed: row.phone_sealed,
            email_sealed: row.email_sealed,
            address_sealed: row.address_sealed,
            phone_hash: row.phone_hash,
            anonymised: row.anonymised,
            created_at: row.created_at,
            updated_at: row.updated_at,
            last_activity_at: row.last_activity_at,
        })
    }
}

fn sealed(rows: Vec<customer::Model>) -> Result<Vec<SealedCustomer>, DbErr> {
    rows.into_iter().map(SealedCustomer::try_from).collect()
}

pub async fn save_customer<C: ConnectionTrait>(conn: &C, c: &SealedCustomer) -> Result<(), DbErr> {
    customer::Entity::insert(customer::ActiveModel {
        id: Set(c.id.clone()),
        name: Set(c.clear_name.clone()),
        name_sealed: Set(c.name_sealed.clone()),
        region_code: Set(c.region_code.clone()),
        key_id: Set(c.key_id.clone()),
        phone_sealed: Set(c.phone_sealed.clone()),
        email_sealed: Set(c.email_sealed.clone()),
        address_sealed: Set(c.address_sealed.clone()),
        phone_hash: Set(c.phone_hash.clone()),
        tier: Set(c.tier.as_str().to_owned()),
        purchases: Set(to_json(&c.purchases)?),
        anonymised: Set(c.anonymised),
        created_at: Set(c.created_at),
        updated_at: Set(c.updated_at),
        last_activity_at: Set(c.last_activity_at),
    })
    .on_conflict(
        OnConflict::column(customer::Column::Id)
            .update_columns([
                customer::Column::Name,
                customer::Column::NameSealed,
                customer::Column::RegionCode,
                customer::Column::KeyId,
                customer::Column::PhoneSealed,
                customer::Column::EmailSealed,
                customer::Column::AddressSealed,
                customer::Column::PhoneHash,
                customer::Column::Tier,
                customer::Column::Purchases,
                customer::Column::Anonymised,
                customer::Column::UpdatedAt,
                customer::Column::LastActivityAt,
            ])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn get_customer<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<SealedCustomer>, DbErr> {
    lock_if_postgres(conn, customer::Entity::find_by_id(id.to_owned()), lock)
        .one(conn)
        .await?
        .map(SealedCustomer::try_from)
        .transpose()
}

pub async fn customer_by_phone_hash<C: ConnectionTrait>(
    conn: &C,
    hash: &str,
) -> Result<Option<SealedCustomer>, DbErr> {
    customer::Entity::find()
        .filter(customer::Column::PhoneHash.eq(hash))
        .filter(customer::Column::Anonymised.eq(false))
        .order_by_desc(customer::Column::UpdatedAt)
        .one(conn)
        .await?
        .map(SealedCustomer::try_from)
        .transpose()
}

/// Every customer, a page at a time by id.
pub async fn customers_after<C: ConnectionTrait>(
    conn: &C,
    after: &str,
    limit: u64,
) -> Result<Vec<SealedCustomer>, DbErr> {
    sealed(
        customer::Entity::find()
            .filter(customer::Column::Id.gt(after))
            .order_by_asc(customer::Column::Id)
            .limit(limit)
            .all(conn)
            .await?,
    )
}

/// Up to `limit` ids of customers whose name is still in clear text (stored before names
/// were sealed), in id order.
pub async fn customers_with_clear_names<C: ConnectionTrait>(
    conn: &C,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    Ok(customer::Entity::find()
        .filter(customer::Column::Name.ne(""))
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// The ids of the region's customers that are not anonymised, in id order.
pub async fn customers_in_region<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<String>, DbErr> {
    Ok(customer::Entity::find()
        .filter(customer::Column::RegionCode.eq(region_code))
        .filter(customer::Column::Anonymised.eq(false))
        .order_by_asc(customer::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// Ids after `after` of customers not yet anonymised whose last activity is before
/// `before`, in id order (the cursor lets a run go past rows it had to leave as they were).
pub async fn inactive_customers<C: ConnectionTrait>(
    conn: &C,
    before: DateTime<Utc>,
    after: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    Ok(customer::Entity::find()
        .filter(customer::Column::Id.gt(after))
        .filter(customer::Column::Anonymised.eq(false))
        .filter(customer::Column::LastActivityAt.lt(before))
        .order_by_asc(customer::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect())
}

/// The customer `id`, locked, if it is not anonymised and its last activity is before
/// `before`: what the retention run may anonymise. `Some(Err)` for a row that does not
/// decode, which the run leaves for an operator instead of stopping at it.
pub async fn lock_inactive_customer<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    before: DateTime<Utc>,
) -> Result<Option<Result<SealedCustomer, DbErr>>, DbErr> {
    let query = customer::Entity::find_by_id(id.to_owned())
        .filter(customer::Column::Anonymised.eq(false))
        .filter(customer::Column::LastActivityAt.lt(before));
    Ok(lock_if_postgres(conn, query, true)
        .one(conn)
        .await?
        .map(SealedCustomer::try_from))
}

/// Moves a customer's last activity forward (never back); unknown customers are skipped.
pub async fn touch_customer<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), DbErr> {
    customer::Entity::update_many()
        .col_expr(
            customer::Column::LastActivityAt,
            sea_orm::sea_query::Expr::value(at),
        )
        .filter(customer::Column::Id.eq(id))
        .filter(customer::Column::LastActivityAt.lt(at))
        .exec(conn)
        .await?;
    Ok(())
}

// ---- settings -------------------------------------------------------------------------

pub async fn get_setting<C: ConnectionTrait, T: serde::de::DeserializeOwned>(
    conn: &C,
    name: &str,
) -> Result<Option<T>, DbErr> {
    setting::Entity::find_by_id(name.to_owned())
        .one(conn)
        .await?
        .map(|row| from_json(name, &row.body))
        .transpose()
}

pub async fn put_setting<C: ConnectionTrait, T: serde::Serialize>(
    conn: &C,
    name: &str,
    value: &T,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    setting::Entity::insert(setting::ActiveModel {
        name: Set(name.to_owned()),
        body: Set(to_json(value)?),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(setting::Column::Name)
            .update_columns([setting::Column::Body, setting::Column::UpdatedAt])
            .to_owned(),
    )
    .exec(conn)
    .await?;
    Ok(())
}
