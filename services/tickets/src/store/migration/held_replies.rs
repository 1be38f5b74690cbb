//! Replies held back for a supervisor (issue 16): an agent's public reply that made a
//! forbidden commitment is kept as an internal note marked held until a supervisor
//! releases it to the customer or discards it. Existing entries are not held.

use sea_orm_migration::prelude::*;

pub struct AddHeldReplies;

impl MigrationName for AddHeldReplies {
    fn name(&self) -> &str {
        "m20261202_000020_add_held_replies"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddHeldReplies {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("ticket_replies", "held").await? {
            m.alter_table(
                Table::alter()
                    .table("ticket_replies")
                    .add_column(
                        ColumnDef::new("held")
                            .boolean()
                            .not_null()
                            .default(false)
                            .to_owned(),
                    )
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
