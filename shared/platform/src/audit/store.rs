//! Audit records in the service's own database: the `audit_records` table (add
//! [`migration::CreateAuditRecords`] to the service's migrator), the sink that writes it
//! and the paged listing.

use std::{future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::{Map, Value};

use super::{AuditError, AuditRecord, AuditSink};

pub mod entity {
    //! The stored records.
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_records")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub at: ChronoDateTimeUtc,
        pub subject: String,
        pub on_behalf_of: Option<String>,
        /// A JSON array of strings.
        pub roles: String,
        pub client_id: Option<String>,
        pub rpc: String,
        pub target: Option<String>,
        pub outcome: String,
        /// A JSON object.
        pub detail: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod migration {
    //! The table, for the migrator of every service that serves gRPC.
    use sea_orm_migration::prelude::*;

    use crate::db::schema::{index, long_text, text, text_null, ts};

    pub struct CreateAuditRecords;

    impl MigrationName for CreateAuditRecords {
        fn name(&self) -> &str {
            "m20261201_000001_create_audit_records"
        }
    }

    #[async_trait::async_trait]
    impl MigrationTrait for CreateAuditRecords {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table("audit_records")
                        .if_not_exists()
                        .col(text("id").primary_key())
                        .col(ts("at"))
                        .col(text("subject"))
                        .col(text_null("on_behalf_of"))
                        .col(long_text("roles"))
                        .col(text_null("client_id"))
                        .col(text("rpc"))
                        .col(text_null("target"))
                        .col(text("outcome"))
                        .col(long_text("detail"))
                        .to_owned(),
                )
                .await?;
            for (name, column) in [
                ("audit_records_subject", "subject"),
                ("audit_records_rpc", "rpc"),
                ("audit_records_target", "target"),
                ("audit_records_at", "at"),
            ] {
                manager
                    .create_index(index(name, "audit_records", &[column]))
                    .await?;
            }
            Ok(())
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table("audit_records").to_owned())
                .await
        }
    }
}

/// Which records a listing wants; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub subject: Option<String>,
    /// A full path (`/pkg.Service/Method`) or a method name.
    pub rpc: Option<String>,
    pub target: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// A service's audit records, in its database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    db: DatabaseConnection,
}

impl AuditLog {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The gRPC service listing these records.
    pub fn api(
        &self,
    ) -> aftersales_protos::audit::v1::audit_service_server::AuditServiceServer<super::AuditApi>
    {
        super::AuditApi::new(self.clone()).into_server()
    }

    /// Keeps `records`: one insert per 500 (SQLite bounds the values of one statement),
    /// so a migration moving an older log in hands them all at once.
    pub async fn insert<C: ConnectionTrait>(
        conn: &C,
        records: Vec<AuditRecord>,
    ) -> Result<(), DbErr> {
        let mut records = records.into_iter().peekable();
        while records.peek().is_some() {
            Self::insert_batch(conn, records.by_ref().take(500).collect()).await?;
        }
        Ok(())
    }

    async fn insert_batch<C: ConnectionTrait>(
        conn: &C,
        records: Vec<AuditRecord>,
    ) -> Result<(), DbErr> {
        let rows = records
            .into_iter()
            .map(|r| {
                Ok(entity::ActiveModel {
                    id: Set(r.id),
                    at: Set(r.at),
                    subject: Set(r.subject),
                    on_behalf_of: Set(r.on_behalf_of),
                    roles: Set(crate::db::to_json(&r.roles)?),
                    client_id: Set(r.client_id),
                    rpc: Set(r.rpc),
                    target: Set(r.target),
                    outcome: Set(r.outcome),
                    detail: Set(crate::db::to_json(&r.detail)?),
                })
            })
            .collect::<Result<Vec<_>, DbErr>>()?;
        entity::Entity::insert_many(rows).exec(conn).await?;
        Ok(())
    }

    /// Up to `limit` records matching `filter`, newest first, older than the record
    /// `before` when given.
    pub async fn list(
        &self,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditRecord>, DbErr> {
        Self::query(&self.db, filter, before, limit).await
    }

    /// [`list`](Self::list) on any connection (a service reading its own records inside a
    /// transaction, e.g. care's export of a customer's access log).
    pub async fn query<C: ConnectionTrait>(
        conn: &C,
        filter: &AuditFilter,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditRecord>, DbErr> {
        use entity::Column;
        let mut q = entity::Entity::find();
        if let Some(subject) = &filter.subject {
            q = q.filter(Column::Subject.eq(subject.as_str()));
        }
        match filter.rpc.as_deref() {
            Some(path) if path.starts_with('/') => q = q.filter(Column::Rpc.eq(path)),
            Some(method) => q = q.filter(Column::Rpc.ends_with(format!("/{method}"))),
            None => {}
        }
        if let Some(target) = &filter.target {
            q = q.filter(Column::Target.eq(target.as_str()));
        }
        if let Some(since) = filter.since {
            q = q.filter(Column::At.gte(since));
        }
        if let Some(until) = filter.until {
            q = q.filter(Column::At.lt(until));
        }
        if let Some(before) = before {
            q = q.filter(Column::Id.lt(before));
        }
        q.order_by_desc(Column::Id)
            .limit(limit)
            .all(conn)
            .await?
            .into_iter()
            .map(from_row)
            .collect()
    }
}

fn from_row(row: entity::Model) -> Result<AuditRecord, DbErr> {
    Ok(AuditRecord {
        roles: crate::db::from_json("audit_records", &row.roles)?,
        detail: crate::db::from_json::<Map<String, Value>>("audit_records", &row.detail)?,
        id: row.id,
        at: row.at,
        subject: row.subject,
        on_behalf_of: row.on_behalf_of,
        client_id: row.client_id,
        rpc: row.rpc,
        target: row.target,
        outcome: row.outcome,
    })
}

impl AuditSink for AuditLog {
    fn write<'a>(
        &'a self,
        records: Vec<AuditRecord>,
    ) -> Pin<Box<dyn Future<Output = Result<(), AuditError>> + Send + 'a>> {
        Box::pin(async move { Ok(Self::insert(&self.db, records).await?) })
    }
}
