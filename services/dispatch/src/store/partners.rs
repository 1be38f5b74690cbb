//! Partners and the regions they cover.

use aftersales_platform::db::{from_json, to_json};
use sea_orm::{
    ActiveValue::Set,
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
    sea_query::{Expr, ExprTrait, OnConflict, Query},
};

use super::{
    entity::{partner, partner_region},
    lock_if_postgres,
};
use crate::domain::{listing::PartnerFilter, partner::Partner};

fn partner_row(p: &Partner) -> Result<partner::ActiveModel, DbErr> {
    Ok(partner::ActiveModel {
        id: Set(p.id.clone()),
        name: Set(p.spec.name.clone()),
        active: Set(p.spec.active),
        insured: Set(p.spec.insured),
        version: Set(p.version as i64),
        body: Set(to_json(p)?),
        created_at: Set(p.created_at),
        updated_at: Set(p.updated_at),
    })
}

/// Inserts or replaces a partner and the regions it covers.
pub async fn save_partner<C: ConnectionTrait>(conn: &C, p: &Partner) -> Result<(), DbErr> {
    partner::Entity::insert(partner_row(p)?)
        .on_conflict(
            OnConflict::column(partner::Column::Id)
                .update_columns([
                    partner::Column::Name,
                    partner::Column::Active,
                    partner::Column::Insured,
                    partner::Column::Version,
                    partner::Column::Body,
                    partner::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    partner_region::Entity::delete_many()
        .filter(partner_region::Column::PartnerId.eq(p.id.as_str()))
        .exec(conn)
        .await?;
    let regions: Vec<_> = p
        .spec
        .coverage
        .iter()
        .map(|c| partner_region::ActiveModel {
            partner_id: Set(p.id.clone()),
            region_code: Set(c.region_code.clone()),
        })
        .collect();
    if !regions.is_empty() {
        partner_region::Entity::insert_many(regions)
            .exec(conn)
            .await?;
    }
    Ok(())
}

pub async fn get_partner<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Partner>, DbErr> {
    let query = lock_if_postgres(conn, partner::Entity::find_by_id(id.to_owned()), lock);
    query
        .one(conn)
        .await?
        .map(|row| from_json("partner", &row.body))
        .transpose()
}

/// How a placement holds a partner's row until its transaction ends (PostgreSQL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerLock {
    /// Shared with other placements; keeps out changes and exclusive holders.
    Shared,
    Exclusive,
}

/// Locks one partner's row; answers its version, `None` when there is no such partner.
pub async fn lock_partner<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    how: PartnerLock,
) -> Result<Option<i64>, DbErr> {
    let query = partner::Entity::find_by_id(id.to_owned())
        .select_only()
        .column(partner::Column::Version);
    let query = match how {
        PartnerLock::Exclusive => lock_if_postgres(conn, query, true),
        PartnerLock::Shared if conn.get_database_backend() == DbBackend::Postgres => {
            query.lock_shared()
        }
        PartnerLock::Shared => query,
    };
    query.into_tuple::<i64>().one(conn).await
}

/// The partners with these ids, in id order.
pub async fn partners_by_id<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<Vec<Partner>, DbErr> {
    partner::Entity::find()
        .filter(partner::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(partner::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("partner", &row.body))
        .collect()
}

/// `(id, version)` of every partner covering a region, in id order, in one query: what
/// tells a cache of partners which entries still hold.
pub async fn partner_versions_covering<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<(String, i64)>, DbErr> {
    let covering = Query::select()
        .column(partner_region::Column::PartnerId)
        .from(partner_region::Entity)
        .and_where(Expr::col(partner_region::Column::RegionCode).eq(region_code))
        .to_owned();
    partner::Entity::find()
        .select_only()
        .column(partner::Column::Id)
        .column(partner::Column::Version)
        .filter(partner::Column::Id.in_subquery(covering))
        .order_by_asc(partner::Column::Id)
        .into_tuple()
        .all(conn)
        .await
}

/// A page of partners, newest first, before the cursor id. The skill filter is applied
/// to the page read (skills live in the JSON body), so a page may come back short.
pub async fn list_partners<C: ConnectionTrait>(
    conn: &C,
    f: &PartnerFilter,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Partner>, DbErr> {
    let mut q = partner::Entity::find();
    if let Some(region) = &f.region_code {
        let ids: Vec<String> = partner_region::Entity::find()
            .filter(partner_region::Column::RegionCode.eq(region.as_str()))
            .all(conn)
            .await?
            .into_iter()
            .map(|r| r.partner_id)
            .collect();
        q = q.filter(partner::Column::Id.is_in(ids));
    }
    if f.active_only {
        q = q.filter(partner::Column::Active.eq(true));
    }
    if let Some(before) = before {
        q = q.filter(partner::Column::Id.lt(before));
    }
    let partners = q
        .order_by_desc(partner::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json::<Partner>("partner", &row.body))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(match &f.skill {
        Some(skill) => partners
            .into_iter()
            .filter(|p| p.spec.skills.iter().any(|s| s == skill))
            .collect(),
        None => partners,
    })
}

/// Every partner covering a region (active or not: the ranking says why it is left out).
pub async fn partners_covering<C: ConnectionTrait>(
    conn: &C,
    region_code: &str,
) -> Result<Vec<Partner>, DbErr> {
    let ids: Vec<String> = partner_region::Entity::find()
        .filter(partner_region::Column::RegionCode.eq(region_code))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.partner_id)
        .collect();
    partner::Entity::find()
        .filter(partner::Column::Id.is_in(ids))
        .order_by_asc(partner::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("partner", &row.body))
        .collect()
}
