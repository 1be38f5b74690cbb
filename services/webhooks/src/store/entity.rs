//! sea-orm entities of the webhooks database: endpoints (secrets sealed) and deliveries
//! (the body sent and every attempt as JSON).

pub mod endpoint {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "endpoints")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub partner_id: String,
        #[sea_orm(column_type = "Text")]
        pub url: String,
        #[sea_orm(column_type = "Text")]
        pub event_types: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub description: String,
        /// `key_id:sealed`.
        #[sea_orm(column_type = "Text")]
        pub secret: String,
        #[sea_orm(column_type = "Text", nullable)]
        pub previous_secret: Option<String>,
        pub previous_secret_expires_at: Option<ChronoDateTimeUtc>,
        pub failing_since: Option<ChronoDateTimeUtc>,
        #[sea_orm(column_type = "Text")]
        pub disabled_reason: String,
        pub created_at: ChronoDateTimeUtc,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod delivery {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "deliveries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub endpoint_id: String,
        /// The event's id (the `webhook-id`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub event_type: String,
        #[sea_orm(column_type = "Text")]
        pub body: String,
        pub state: String,
        #[sea_orm(column_type = "Text")]
        pub attempts: String,
        pub next_attempt_at: Option<ChronoDateTimeUtc>,
        pub created_at: ChronoDateTimeUtc,
        pub delivered_at: Option<ChronoDateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
