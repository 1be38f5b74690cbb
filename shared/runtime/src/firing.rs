//! The paged rebuild every service's deadline schedule uses, and the one conversion from
//! a due instant to the queue's milliseconds.

use std::future::Future;

use aftersales_deadlines::{DeadlineQueue, Millis, worker::Member};
use chrono::{DateTime, Utc};

/// The queue's millisecond for an instant, rounded *up*: an instant with a fraction of a
/// millisecond is scheduled for the next whole one, so the worker never wakes before it.
pub fn due_millis(at: DateTime<Utc>) -> Millis {
    let ms = at.timestamp_millis();
    if at.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        ms
    } else {
        ms + 1
    }
}

/// Puts every pending member of one kind back on the schedule, a page at a time:
/// `page(after, limit)` returns `(id, fire_at)` in id order after `after`, and `member`
/// makes the typed member of an id. Returns how many were scheduled.
pub async fn schedule_all<M, E, F, Fut>(
    queue: &DeadlineQueue,
    member: impl Fn(String) -> M,
    mut page: F,
) -> Result<u64, E>
where
    M: Member,
    E: From<sea_orm::DbErr>,
    F: FnMut(String, u64) -> Fut,
    Fut: Future<Output = Result<Vec<(String, DateTime<Utc>)>, E>>,
{
    const PAGE: u64 = 5_000;
    let mut after = String::new();
    let mut count = 0;
    loop {
        let rows = page(after.clone(), PAGE).await?;
        let Some((last, _)) = rows.last() else {
            return Ok(count);
        };
        after = last.clone();
        let items: Vec<(String, i64)> = rows
            .into_iter()
            .map(|(id, at)| (member(id).to_text(), due_millis(at)))
            .collect();
        queue
            .schedule(&items)
            .await
            .map_err(|e| sea_orm::DbErr::Custom(format!("deadline queue: {e}")))?;
        count += items.len() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_fraction_of_a_millisecond_rounds_up_never_down() {
        let whole = Utc.timestamp_millis_opt(1_700_000_000_123).unwrap();
        assert_eq!(due_millis(whole), 1_700_000_000_123);
        let fraction = whole + chrono::Duration::microseconds(1);
        assert_eq!(due_millis(fraction), 1_700_000_000_124);
    }
}
