//! Partners and the regions they cover.

use aftersales_platform::db::{from_json, to_json};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
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

/// Locks the partners, in id order, until the transaction ends (PostgreSQL): what a
/// transaction that offers several jobs takes before it counts their capacity.
pub async fn lock_partners<C: ConnectionTrait>(conn: &C, ids: &[String]) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    let query = partner::Entity::find()
        .select_only()
        .column(partner::Column::Id)
        .filter(partner::Column::Id.is_in(ids.iter().map(String::as_str)))
        .order_by_asc(partner::Column::Id);
    lock_if_postgres(conn, query, true)
        .into_tuple::<String>()
        .all(conn)
        .await?;
    Ok(())
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
