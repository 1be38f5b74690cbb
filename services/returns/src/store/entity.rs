//! sea-orm entities of the returns database. A return and a refund are stored whole as
//! JSON, with the columns lists and the workers filter on beside them.

pub mod rma {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "returns")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub order_id: String,
        pub customer_id: String,
        pub status: String,
        pub reason: String,
        pub carrier: Option<String>,
        pub tracking_number: Option<String>,
        pub overdue: bool,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
        /// The dispatch job repairing the goods, for a return sent to repair.
        pub repair_job_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod deadline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "return_deadlines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub return_id: String,
        pub step: String,
        pub due_at: ChronoDateTimeUtc,
        pub state: String,
        pub next_fire_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod refund {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refunds")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub return_id: String,
        pub state: String,
        /// Set while pending: when the payment is tried (again).
        pub next_attempt_at: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod tracking_event {
    use sea_orm::entity::prelude::*;

    /// Every carrier event once: the key makes a redelivered webhook a no-op.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tracking_events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub carrier: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub carrier_event_id: String,
        pub return_id: String,
        pub kind: String,
        #[sea_orm(column_type = "Text")]
        pub detail: String,
        pub occurred_at: ChronoDateTimeUtc,
        pub recorded_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod shipment {
    use sea_orm::entity::prelude::*;

    /// One booked pickup, for the monthly carrier reconciliation.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "shipments")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub return_id: String,
        pub carrier: String,
        pub tracking_number: String,
        pub fee_minor: i64,
        pub fee_currency: String,
        pub booked_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stock {
    use sea_orm::entity::prelude::*;

    /// The after-sales stock ledger: what was received and where it went.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stock_ledger")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        pub return_id: String,
        pub sku: String,
        pub quantity: i32,
        pub movement: String,
        pub at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod policy {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "return_policies")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub product_line: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod price_protection {
    use sea_orm::entity::prelude::*;

    /// The price-difference refund of an order line: one per line, so a second claim
    /// (or a concurrent one) finds the first.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "price_protections")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub order_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sku: String,
        pub refund_id: String,
        pub claimed_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod compensation {
    use sea_orm::entity::prelude::*;

    /// A compensation, whole as JSON, with what lists and the worker filter on.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "compensations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub ticket_id: String,
        /// Whose it is: found by it when the customer is anonymised.
        pub customer_id: String,
        pub status: String,
        /// Set while approved cash is unpaid: when the payment is tried (again).
        pub next_attempt_at: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
