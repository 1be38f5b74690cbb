//! The spare-parts tables. Stock rows carry CHECK constraints, the database's own
//! refusal of a negative quantity or of more reserved than on hand, behind the domain's
//! rule and the store's guarded update.

use aftersales_platform::db::schema::{index, long_text, text, text_null, ts, ts_null};
use sea_orm_migration::prelude::*;

pub struct CreatePartsTables;

impl MigrationName for CreatePartsTables {
    fn name(&self) -> &str {
        "m20261202_000035_create_parts_tables"
    }
}

fn quantity(name: &'static str) -> ColumnDef {
    ColumnDef::new(name).big_integer().not_null().to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreatePartsTables {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("parts")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("name"))
                .col(text_null("fee_code"))
                .col(ts("created_at"))
                .to_owned(),
            Table::create()
                .table("part_sites")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("name"))
                .col(text("kind"))
                .col(text("region_code"))
                .col(text_null("partner_id"))
                .col(ts("created_at"))
                .to_owned(),
            Table::create()
                .table("part_stock")
                .if_not_exists()
                .col(text("part_id"))
                .col(text("site_id"))
                .col(quantity("on_hand"))
                .col(quantity("reserved"))
                .col(quantity("in_transit"))
                .col(quantity("threshold"))
                .col(ColumnDef::new("low").boolean().not_null())
                .col(ts("updated_at"))
                .primary_key(Index::create().col("part_id").col("site_id"))
                .check(Expr::cust(
                    "on_hand >= 0 AND reserved >= 0 AND in_transit >= 0 AND reserved <= on_hand",
                ))
                .to_owned(),
            Table::create()
                .table("part_reservations")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("job_id"))
                .col(text("site_id"))
                .col(text("part_id"))
                .col(quantity("quantity"))
                .col(quantity("reserved"))
                .col(text("status"))
                .col(ts("created_at"))
                .to_owned(),
            Table::create()
                .table("part_transfers")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("part_id"))
                .col(text("from_site_id"))
                .col(text("to_site_id"))
                .col(quantity("quantity"))
                .col(text("status"))
                .col(ts("shipped_at"))
                .col(ts_null("received_at"))
                .col(long_text("resumed"))
                .to_owned(),
            Table::create()
                .table("part_receipts")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("site_id"))
                .col(text("reference"))
                .col(long_text("body"))
                .col(ts("received_at"))
                .to_owned(),
            Table::create()
                .table("stocktakes")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("site_id"))
                .col(long_text("body"))
                .col(text("counted_by"))
                .col(ts("counted_at"))
                .to_owned(),
            Table::create()
                .table("part_movements")
                .if_not_exists()
                .col(text("id").primary_key())
                .col(text("part_id"))
                .col(text("site_id"))
                .col(text("kind"))
                .col(quantity("on_hand_delta"))
                .col(quantity("reserved_delta"))
                .col(quantity("in_transit_delta"))
                .col(text("reference"))
                .col(ts("at"))
                .to_owned(),
        ];
        for table in tables {
            m.create_table(table).await?;
        }
        for (name, table, columns) in [
            ("part_stock_site", "part_stock", &["site_id", "part_id"][..]),
            (
                "part_reservations_job",
                "part_reservations",
                &["job_id"][..],
            ),
            (
                "part_reservations_waiting",
                "part_reservations",
                &["site_id", "part_id", "status"][..],
            ),
            (
                "part_movements_part",
                "part_movements",
                &["part_id", "at"][..],
            ),
        ] {
            m.create_index(index(name, table, columns)).await?;
        }
        Ok(())
    }
}
