//! Erasing what people and carriers wrote about a return, when its customer is
//! anonymised.

use super::{Rma, SYSTEM_ROLE};

impl Rma {
    /// Replaces everything people and carriers wrote about the return with `marker` (the
    /// customer was anonymised): evidence references are dropped; a rejection reason, the
    /// inspection notes, the lab's notes, where the customer agreed to a partial refund,
    /// the last carrier event and every history note not written by the system (whose
    /// notes are rule names and references) become `marker`. Ids, lines, codes and times
    /// stay. Doing it again changes nothing.
    pub fn erase_free_text(&mut self, marker: &str) {
        let erase = |text: &mut String| {
            if !text.is_empty() {
                marker.clone_into(text);
            }
        };
        self.evidence.clear();
        if let Some(reason) = self.rejection_reason.as_mut()
            && *reason != self.eligibility_rule
        {
            erase(reason);
        }
        for line in &mut self.inspection {
            erase(&mut line.note);
        }
        if let Some(shipment) = self.shipment.as_mut() {
            erase(&mut shipment.last_event);
        }
        if let Some(lab) = self.third_party.as_mut() {
            erase(&mut lab.notes);
        }
        if let Some(agreement) = self.agreement.as_mut() {
            erase(&mut agreement.customer_agreement);
            erase(&mut agreement.reason);
        }
        for record in &mut self.history {
            if record.actor_role != SYSTEM_ROLE {
                erase(&mut record.note);
            }
        }
    }
}
