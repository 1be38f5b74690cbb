//! Connections to Redis that survive a Redis restart: a `ConnectionManager` reconnects on
//! its own, and bounded timeouts make a dead Redis an error instead of a hang.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Opens a self-reconnecting connection. `response_timeout` must exceed any blocking read
/// (XREADGROUP BLOCK) made on it.
pub async fn connect(
    url: &str,
    response_timeout: Duration,
) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500));
    ConnectionManager::new_with_config(client, config).await
}

/// The usual timeout for short commands.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(3);
