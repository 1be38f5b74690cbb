//! What care runs beside its API besides the suite's deadline worker (which fires
//! follow-up due times and reopen retries through `usecases::deadlines`): the event
//! consumers that keep the read model, and the retention run.

use std::{sync::Arc, time::Duration};

use aftersales_eventbus::{
    EventBus,
    consumer::{Consumer, ConsumerSettings},
};
use aftersales_platform::CancellationToken;
use tokio::task::JoinHandle;

use crate::{
    projection::{GROUP, Projection, STREAMS},
    usecases::CareCore,
};

/// How long a delivery may stay unacknowledged before another read takes it over. Shorter
/// than the bus default: a read that times out on the client after Redis handed out its
/// deliveries leaves them pending, and they should not wait half a minute.
const STALE_AFTER: Duration = Duration::from_secs(5);

/// Starts one consumer per stream care reads, all in the `care` group.
pub fn spawn_consumers(
    core: &CareCore,
    bus: &EventBus,
    projection: &Arc<Projection>,
    block: Duration,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    STREAMS
        .iter()
        .map(|stream| {
            let mut settings = ConsumerSettings::new(*stream, GROUP);
            settings.block = block;
            settings.stale_after = STALE_AFTER;
            let consumer =
                Consumer::new(core.db().clone(), bus.clone(), settings, projection.clone());
            tokio::spawn(consumer.run(stop.clone()))
        })
        .collect()
}

/// Anonymises inactive customers now and then every `every`, until `stop`.
pub fn spawn_retention(
    core: Arc<CareCore>,
    every: Duration,
    stop: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match core.anonymise_inactive(core.now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(customers = n, "retention anonymised inactive customers"),
                Err(err) => {
                    tracing::warn!(error = %err, "retention run failed; trying again later")
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                () = stop.cancelled() => return,
            }
        }
    })
}
