//! What a listing of partners or jobs may be narrowed to: the filters a request asks for
//! and the use cases hand to the store.

use super::JobStatus;

/// Partners covering a region, offering a skill, or only the active ones.
#[derive(Debug, Clone, Default)]
pub struct PartnerFilter {
    pub region_code: Option<String>,
    pub skill: Option<String>,
    pub active_only: bool,
}

/// Jobs held by a partner, of a ticket, in some statuses.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub partner_id: Option<String>,
    pub ticket_id: Option<String>,
    pub statuses: Vec<JobStatus>,
}
