//! Carriers through the core: their signed webhooks verified against the gateway's clock,
//! and their tracking events forwarded to returns.

use aftersales_protos::returns::v1::{RecordTrackingEventRequest, Return};

use super::Gateway;
use crate::error::{GatewayError, Upstream};

impl Gateway {
    /// Checks a carrier's signature over its timestamp and the raw body, and the timestamp
    /// against the gateway's clock; nothing is read before both pass.
    pub fn verify_carrier(
        &self,
        carrier: &str,
        signature: Option<&str>,
        timestamp: Option<&str>,
        body: &[u8],
    ) -> Result<(), GatewayError> {
        self.carriers
            .verify(carrier, signature, timestamp, body, self.clock.now())
    }

    /// Forwards a verified carrier event to returns.
    pub async fn record_tracking(
        &self,
        request: RecordTrackingEventRequest,
    ) -> Result<Return, GatewayError> {
        let mut client = self.returns.clone();
        self.forward(Upstream::Returns, client.record_tracking_event(request))
            .await
    }
}
