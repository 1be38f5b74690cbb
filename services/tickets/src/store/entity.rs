//! sea-orm entities of the tickets database. Enums are stored as their text codes and
//! lists and policy bodies as JSON text, so the schema is the same on PostgreSQL and SQLite.

pub mod ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer_id: String,
        pub order_id: String,
        pub channel: String,
        pub category: String,
        pub severity: String,
        /// `simple` or `complex`; `simple` on tickets created before it was kept.
        pub complexity: String,
        pub subject: String,
        #[sea_orm(column_type = "Text")]
        pub description: String,
        #[sea_orm(column_type = "Text")]
        pub evidence: String,
        pub customer_tier: String,
        pub assignee: Option<String>,
        pub escalation_level: String,
        pub status: String,
        pub policy_id: String,
        pub policy_version: i32,
        pub breached: bool,
        pub reopen_count: i32,
        pub first_response_at: Option<ChronoDateTimeUtc>,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub resolved_at: Option<ChronoDateTimeUtc>,
        /// Product facts; null when intake did not know them (and on older tickets).
        pub sku: Option<String>,
        pub product_line: Option<String>,
        pub batch: Option<String>,
        pub region_code: Option<String>,
        pub order_line_id: Option<String>,
        /// JSON list of `{kind, id}`, sorted.
        #[sea_orm(column_type = "Text")]
        pub watchers: String,
        /// JSON list of the regional emergencies (incident ids) holding its clocks.
        #[sea_orm(column_type = "Text")]
        pub holds: String,
        /// The support group; null when none (and on older tickets).
        pub group_id: Option<String>,
        /// The SLA risk the queue is ordered by (`domain::routing::risk`); null when none.
        pub risk_at: Option<ChronoDateTimeUtc>,
        /// When the customer reported the problem; null on older tickets (created_at).
        pub reported_at: Option<ChronoDateTimeUtc>,
        /// JSON of the complaint flow so far; null when nothing of it happened.
        #[sea_orm(column_type = "Text", nullable)]
        pub flow: Option<String>,
        /// A threshold's reassignment not carried out yet; null when none.
        pub reassign_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod clock {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sla_clocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub ticket_id: String,
        pub kind: String,
        pub state: String,
        pub target_seconds: i64,
        pub calendar_id: Option<String>,
        pub warning_percent: i32,
        pub started_at: ChronoDateTimeUtc,
        pub paused_seconds: i64,
        pub paused_at: Option<ChronoDateTimeUtc>,
        pub due_at: ChronoDateTimeUtc,
        pub warning_at: ChronoDateTimeUtc,
        /// Every threshold fired (kept for the rows and readers that know only one).
        pub warned: bool,
        pub met_at: Option<ChronoDateTimeUtc>,
        pub breached_at: Option<ChronoDateTimeUtc>,
        pub cycle: i32,
        /// When the worker must look next; null when nothing can fire. Drives reconciling.
        pub next_fire_at: Option<ChronoDateTimeUtc>,
        /// The thresholds, e.g. "50,75,90"; null on older rows (`warning_percent` alone).
        pub warning_percents: Option<String>,
        /// Thresholds fired this cycle; older rows have 0 and say `warned` instead.
        pub warnings_fired: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod reply {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_replies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub ticket_id: String,
        pub author: String,
        pub author_id: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: ChronoDateTimeUtc,
        /// `public` (a reply) or `internal` (a note).
        pub visibility: String,
        /// JSON list of `{url, sha256}`.
        #[sea_orm(column_type = "Text")]
        pub attachments: String,
        /// Who entered it; null on entries written before it was kept.
        pub recorded_by: Option<String>,
        /// An agent's public reply held back as an internal note for a supervisor.
        pub held: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod activity {
    use sea_orm::entity::prelude::*;

    /// Who did what to a ticket, and when: the audit trail of every command.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_activity")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub ticket_id: String,
        pub actor_id: String,
        pub actor_role: String,
        pub action: String,
        #[sea_orm(column_type = "Text")]
        pub detail: String,
        pub at: ChronoDateTimeUtc,
        /// JSON list of `{field, before, after}`; `[]` on lines written before.
        #[sea_orm(column_type = "Text")]
        pub changes: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod policy {
    use sea_orm::entity::prelude::*;

    /// Every version of every policy; `is_current` marks the one new tickets match.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "sla_policies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub version: i32,
        pub is_current: bool,
        pub priority: i32,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod calendar {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "business_calendars")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod customer_tier {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customer_tiers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub customer_id: String,
        pub tier: String,
        pub changed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod emergency {
    use sea_orm::entity::prelude::*;

    /// A regional emergency care declared, as far as tickets holds clocks for it.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "regional_emergencies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: String,
        pub region_code: String,
        pub started_at: ChronoDateTimeUtc,
        pub ended_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod incident_link {
    use sea_orm::entity::prelude::*;

    /// A ticket care linked to a major incident.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incident_links")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub incident_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: String,
        pub linked_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod support_group {
    use sea_orm::entity::prelude::*;

    /// A support group; `body` is the JSON of the domain's group.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "support_groups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub last_assigned: Option<String>,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod support_agent {
    use sea_orm::entity::prelude::*;

    /// An agent of the desk; `body` is the JSON of the domain's agent.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "support_agents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod shift {
    use sea_orm::entity::prelude::*;

    /// A shift of a group's roster.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shifts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub group_id: String,
        pub starts_at: ChronoDateTimeUtc,
        pub ends_at: ChronoDateTimeUtc,
        /// JSON list of agent ids, sorted.
        #[sea_orm(column_type = "Text")]
        pub agent_ids: String,
        pub ended: bool,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod routing_rule {
    use sea_orm::entity::prelude::*;

    /// A routing rule; `body` is the JSON of the domain's rule.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "routing_rules")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub priority: i32,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
