//! Monthly settlements.

use aftersales_platform::db::{from_json, to_json};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, sea_query::OnConflict,
};

use super::{entity::settlement, lock_if_postgres};
use crate::domain::settlement::Settlement;

fn settlement_row(s: &Settlement) -> Result<settlement::ActiveModel, DbErr> {
    Ok(settlement::ActiveModel {
        id: Set(s.id.clone()),
        partner_id: Set(s.partner_id.clone()),
        month: Set(s.month.clone()),
        status: Set(s.status.as_str().into()),
        body: Set(to_json(s)?),
        updated_at: Set(s.updated_at),
    })
}

pub async fn save_settlement<C: ConnectionTrait>(conn: &C, s: &Settlement) -> Result<(), DbErr> {
    settlement::Entity::insert(settlement_row(s)?)
        .on_conflict(
            OnConflict::column(settlement::Column::Id)
                .update_columns([
                    settlement::Column::Status,
                    settlement::Column::Body,
                    settlement::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn settlement_of<C: ConnectionTrait>(
    conn: &C,
    partner_id: &str,
    month: &str,
) -> Result<Option<Settlement>, DbErr> {
    settlement::Entity::find()
        .filter(settlement::Column::PartnerId.eq(partner_id))
        .filter(settlement::Column::Month.eq(month))
        .one(conn)
        .await?
        .map(|row| from_json("settlement", &row.body))
        .transpose()
}

pub async fn get_settlement<C: ConnectionTrait>(
    conn: &C,
    id: &str,
    lock: bool,
) -> Result<Option<Settlement>, DbErr> {
    let query = lock_if_postgres(conn, settlement::Entity::find_by_id(id.to_owned()), lock);
    query
        .one(conn)
        .await?
        .map(|row| from_json("settlement", &row.body))
        .transpose()
}

pub async fn list_settlements<C: ConnectionTrait>(
    conn: &C,
    partner_id: Option<&str>,
    before: Option<&str>,
    limit: u64,
) -> Result<Vec<Settlement>, DbErr> {
    let mut q = settlement::Entity::find();
    if let Some(p) = partner_id {
        q = q.filter(settlement::Column::PartnerId.eq(p));
    }
    if let Some(before) = before {
        q = q.filter(settlement::Column::Id.lt(before));
    }
    q.order_by_desc(settlement::Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| from_json("settlement", &row.body))
        .collect()
}
