//! Teams and routing (issue 15): support groups, agents, shifts and routing rules, and
//! the group of each ticket (existing tickets have none).

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct AddTeams;

impl MigrationName for AddTeams {
    fn name(&self) -> &str {
        "m20261202_000016_add_teams_and_routing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddTeams {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("tickets", "group_id").await? {
            m.alter_table(
                Table::alter()
                    .table("tickets")
                    .add_column(text_null("group_id"))
                    .to_owned(),
            )
            .await?;
        }
        // A group's queue and its agents' open work are read by group and assignee.
        m.create_index(index(
            "tickets_group",
            "tickets",
            &["group_id", "assignee", "id"],
        ))
        .await?;
        m.create_table(
            Table::create()
                .table("support_groups")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(long_text("body"))
                // The agent given the group's last ticket, for round-robin.
                .col(text_null("last_assigned"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("support_agents")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("shifts")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("group_id"))
                .col(ts("starts_at"))
                .col(ts("ends_at"))
                .col(long_text("agent_ids"))
                .col(ColumnDef::new("ended").boolean().not_null())
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(index("shifts_group", "shifts", &["group_id", "ends_at"]))
            .await?;
        // The shift ends still to hand over, for rebuilding the deadline schedule.
        m.create_index(index("shifts_pending", "shifts", &["ended", "id"]))
            .await?;
        m.create_table(
            Table::create()
                .table("routing_rules")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(ColumnDef::new("priority").integer().not_null())
                .col(long_text("body"))
                .col(ts("updated_at"))
                .to_owned(),
        )
        .await
    }
}

/// The SLA risk of each ticket (the earliest due instant of its running or breached
/// clocks), kept with the ticket so a group's queue is read in risk order a page at a time
/// instead of whole. Existing tickets have none until their next change (they are in no
/// group, so in no queue).
pub struct AddQueueRisk;

impl MigrationName for AddQueueRisk {
    fn name(&self) -> &str {
        "m20261202_000018_add_ticket_queue_risk"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddQueueRisk {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m.has_column("tickets", "risk_at").await? {
            m.alter_table(
                Table::alter()
                    .table("tickets")
                    .add_column(ts_null("risk_at"))
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(index(
            "tickets_queue",
            "tickets",
            &["group_id", "assignee", "risk_at", "id"],
        ))
        .await
    }
}
