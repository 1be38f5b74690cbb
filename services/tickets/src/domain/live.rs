//! Where a live desk stream stands: a position in the tickets outbox in the order events
//! become final (committed, with nothing earlier still able to commit), so a client that
//! resumes after a cursor misses nothing and sees nothing twice, as long as the outbox
//! still holds what came after it.

use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::DomainError;

/// A position in the order events become final: the inserting transaction's id (always 0
/// on SQLite, whose single writer commits in `seq` order) and the row's `seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    pub txid: u64,
    pub seq: i64,
}

/// A cursor as handed to a client: the position and when it was handed out. The outbox
/// drops events published longer ago than its retention, so a position handed out longer
/// ago than that may lie before dropped events; newer ones never do, because every event
/// after a position was published after it was handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub at: Cursor,
    pub issued: DateTime<Utc>,
}

impl Token {
    /// Parses a token a stream handed out; `field` names it in the error.
    pub fn parse(field: &str, text: &str) -> Result<Self, DomainError> {
        let invalid = || DomainError::invalid(field, "is no cursor this service handed out");
        let mut parts = text.split('-');
        let mut next = || parts.next().ok_or_else(invalid);
        let (txid, seq, issued) = (next()?, next()?, next()?);
        if parts.next().is_some() {
            return Err(invalid());
        }
        Ok(Self {
            at: Cursor {
                txid: txid.parse().map_err(|_| invalid())?,
                seq: seq.parse().map_err(|_| invalid())?,
            },
            issued: issued
                .parse::<i64>()
                .ok()
                .and_then(DateTime::from_timestamp_millis)
                .ok_or_else(invalid)?,
        })
    }

    /// Whether events after the position may have been dropped by now.
    pub fn expired(&self, retention: Duration, now: DateTime<Utc>) -> bool {
        self.issued < now - retention
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{}",
            self.at.txid,
            self.at.seq,
            self.issued.timestamp_millis()
        )
    }
}

/// Which events a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watched {
    Ticket(String),
    /// The tickets in the group at the time each event is read.
    Group(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_order_by_transaction_then_seq_and_expire_after_retention() {
        let issued = DateTime::from_timestamp_millis(1_764_000_000_123).unwrap();
        let a = Token {
            at: Cursor { txid: 7, seq: 90 },
            issued,
        };
        assert_eq!(Token::parse("after", &a.to_string()).unwrap(), a);
        assert!(
            Cursor { txid: 7, seq: 90 } < Cursor { txid: 8, seq: 3 },
            "a later transaction comes later whatever its seq"
        );
        for bad in ["", "7", "x-1-1", "7-1", "-1-2-3", "7-1-2-3", "7-1-x"] {
            assert!(Token::parse("after", bad).is_err(), "{bad}");
        }
        let day = Duration::hours(24);
        assert!(!a.expired(day, issued + day));
        assert!(a.expired(day, issued + day + Duration::milliseconds(1)));
    }
}
