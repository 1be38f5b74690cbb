//! sea-orm entities of the care database, private to `store`. The name and contact fields
//! are stored sealed (see `aftersales_platform::seal`); facts, follow-ups, warranties and
//! tasks are stored whole as JSON, with the columns queries filter on beside them.

pub mod customer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "customers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// Empty: the name is sealed in `name_sealed`. A name in clear text is one stored
        /// before names were sealed, until start-up seals it.
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub name_sealed: String,
        pub region_code: String,
        /// The key the sealed fields of this row were sealed with.
        pub key_id: String,
        #[sea_orm(column_type = "Text")]
        pub phone_sealed: String,
        #[sea_orm(column_type = "Text")]
        pub email_sealed: String,
        #[sea_orm(column_type = "Text")]
        pub address_sealed: String,
        pub phone_hash: String,
        pub tier: String,
        #[sea_orm(column_type = "Text")]
        pub purchases: String,
        pub anonymised: bool,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        pub last_activity_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod setting {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "care_settings")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ticket_fact {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_facts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: String,
        pub customer_id: String,
        pub category: Option<String>,
        pub region: Option<String>,
        pub batch: Option<String>,
        pub open: bool,
        pub created_at: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        /// The first resolution and who it is charged to, for the spot-check sample.
        pub resolved_at: Option<ChronoDateTimeUtc>,
        pub agent_id: Option<String>,
        pub group_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod spot_check_score {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "spot_check_scores")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub ticket_id: String,
        pub week_start: ChronoDateTimeUtc,
        pub agent_id: String,
        pub group_id: String,
        pub resolved_at: ChronoDateTimeUtc,
        pub score: i32,
        #[sea_orm(column_type = "Text")]
        pub note: String,
        pub scored_by: String,
        pub scored_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod job_fact {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "job_facts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub job_id: String,
        pub ticket_id: String,
        pub customer_id: String,
        pub open: bool,
        pub created_at: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod timeline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "timeline")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer_id: String,
        pub kind: String,
        pub subject_id: String,
        pub event: String,
        #[sea_orm(column_type = "Text")]
        pub summary: String,
        pub channel: Option<String>,
        pub occurred_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod follow_up {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "follow_ups")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub ticket_id: String,
        pub customer_id: String,
        pub status: String,
        pub resolved_at: ChronoDateTimeUtc,
        pub due_at: ChronoDateTimeUtc,
        pub reopen_pending: bool,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod survey {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "surveys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer_id: String,
        pub subject: String,
        pub subject_id: String,
        pub csat: i32,
        #[sea_orm(column_type = "Text")]
        pub comment: String,
        pub recorded_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod warranty {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "warranties")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer_id: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod care_task {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "care_tasks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub customer_id: String,
        pub kind: String,
        pub subject_id: String,
        pub due_at: ChronoDateTimeUtc,
        pub dedupe_key: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod incident {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incidents")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub status: String,
        /// The scope's key while the incident is open (unique: one open incident per
        /// scope), null once closed.
        pub open_scope: Option<String>,
        pub opened_at: ChronoDateTimeUtc,
        /// When its clocks next act; null when none will.
        pub next_due_at: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub body: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod incident_ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "incident_tickets")]
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

pub mod cost_entry {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "cost_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub kind: String,
        pub ticket_id: String,
        pub product_line: Option<String>,
        pub region: Option<String>,
        pub amount_minor: i64,
        pub currency: String,
        pub at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stock_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub part_id: String,
        pub site_id: String,
        pub region: String,
        pub delta: i64,
        pub consumed: i64,
        pub at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod met_clock {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "met_clocks")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub clock_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub cycle: i64,
        pub ticket_id: String,
        pub kind: i32,
        pub due_at: Option<ChronoDateTimeUtc>,
        pub met_at: ChronoDateTimeUtc,
        pub actual_minus_standard_ms: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
