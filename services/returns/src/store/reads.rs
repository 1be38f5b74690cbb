//! Reading many returns at once for answers (GetReturn's batched reader): the returns
//! and their deadlines in one query (a return's row once per deadline), whatever the
//! number of returns.

use std::collections::HashMap;

use aftersales_platform::db::from_json;
use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Expr, ExprTrait, Order, Query},
};

use super::{
    deadline_from_row,
    entity::{deadline, rma},
};
use crate::domain::rma::ReturnAggregate;

/// The returns among `ids` that exist, with their deadlines (oldest first), by id.
pub async fn get_returns<C: ConnectionTrait>(
    conn: &C,
    ids: &[String],
) -> Result<HashMap<String, ReturnAggregate>, DbErr> {
    let query = Query::select()
        .expr_as(Expr::col((rma::Entity, rma::Column::Id)), "rid")
        .expr_as(Expr::col((rma::Entity, rma::Column::Body)), "body")
        .expr_as(Expr::col((deadline::Entity, deadline::Column::Id)), "did")
        .expr_as(
            Expr::col((deadline::Entity, deadline::Column::Step)),
            "step",
        )
        .expr_as(
            Expr::col((deadline::Entity, deadline::Column::DueAt)),
            "due_at",
        )
        .expr_as(
            Expr::col((deadline::Entity, deadline::Column::State)),
            "state",
        )
        .from(rma::Entity)
        .left_join(
            deadline::Entity,
            Expr::col((deadline::Entity, deadline::Column::ReturnId))
                .equals((rma::Entity, rma::Column::Id)),
        )
        .and_where(Expr::col((rma::Entity, rma::Column::Id)).is_in(ids.iter().map(String::as_str)))
        .order_by((deadline::Entity, deadline::Column::Id), Order::Asc)
        .to_owned();
    let mut found: HashMap<String, ReturnAggregate> = HashMap::new();
    for row in conn.query_all(&query).await? {
        let id: String = row.try_get("", "rid")?;
        let agg = match found.entry(id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let body: String = row.try_get("", "body")?;
                entry.insert(ReturnAggregate {
                    rma: from_json("return", &body)?,
                    deadlines: Vec::new(),
                })
            }
        };
        let Some(deadline_id) = row.try_get::<Option<String>>("", "did")? else {
            continue;
        };
        let due_at: DateTime<Utc> = row.try_get("", "due_at")?;
        agg.deadlines.push(deadline_from_row(deadline::Model {
            id: deadline_id,
            return_id: agg.rma.id.clone(),
            step: row.try_get("", "step")?,
            due_at,
            state: row.try_get("", "state")?,
            next_fire_at: None,
        })?);
    }
    Ok(found)
}
