//! Partner API keys (stored as hashes).

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use super::entity::partner_key;
use crate::domain::keys::PartnerKey;

fn key_from_row(row: partner_key::Model) -> (PartnerKey, String) {
    (
        PartnerKey {
            id: row.id,
            partner_id: row.partner_id,
            prefix: row.prefix,
            label: row.label,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        },
        row.secret_hash,
    )
}

pub async fn insert_key<C: ConnectionTrait>(
    conn: &C,
    key: &PartnerKey,
    secret_hash: &str,
) -> Result<(), DbErr> {
    partner_key::Entity::insert(partner_key::ActiveModel {
        id: Set(key.id.clone()),
        partner_id: Set(key.partner_id.clone()),
        prefix: Set(key.prefix.clone()),
        secret_hash: Set(secret_hash.to_owned()),
        label: Set(key.label.clone()),
        created_at: Set(key.created_at),
        expires_at: Set(key.expires_at),
        revoked_at: Set(key.revoked_at),
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// Records a key's end: an expiry (rotation) or a revocation.
pub async fn end_key<C: ConnectionTrait>(conn: &C, key: &PartnerKey) -> Result<(), DbErr> {
    partner_key::Entity::update_many()
        .col_expr(partner_key::Column::ExpiresAt, key.expires_at.into())
        .col_expr(partner_key::Column::RevokedAt, key.revoked_at.into())
        .filter(partner_key::Column::Id.eq(key.id.as_str()))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn get_key<C: ConnectionTrait>(conn: &C, id: &str) -> Result<Option<PartnerKey>, DbErr> {
    Ok(partner_key::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(|row| key_from_row(row).0))
}

pub async fn key_by_hash<C: ConnectionTrait>(
    conn: &C,
    secret_hash: &str,
) -> Result<Option<PartnerKey>, DbErr> {
    Ok(partner_key::Entity::find()
        .filter(partner_key::Column::SecretHash.eq(secret_hash))
        .one(conn)
        .await?
        .map(|row| key_from_row(row).0))
}

/// The keys of one partner, or of every partner.
pub async fn keys_of<C: ConnectionTrait>(
    conn: &C,
    partner_id: Option<&str>,
) -> Result<Vec<PartnerKey>, DbErr> {
    let mut query = partner_key::Entity::find();
    if let Some(partner_id) = partner_id {
        query = query.filter(partner_key::Column::PartnerId.eq(partner_id));
    }
    Ok(query
        .order_by_asc(partner_key::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| key_from_row(row).0)
        .collect())
}
