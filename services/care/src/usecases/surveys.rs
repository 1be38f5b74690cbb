//! CSAT surveys: recording one (keyed by the caller's idempotency key) with its line on
//! the customer's timeline.

use aftersales_platform::idempotency::Idempotency;
use aftersales_runtime::command::{Begun, Remembered};

use crate::{
    domain::{
        SurveySubject, TimelineKind, new_id,
        records::{Survey, TimelineEntry},
    },
    error::{CareError, not_found},
    store,
};

use super::{CareCore, replayed};

const RECORD_SURVEY_SCOPE: &str = "care.RecordSurvey";

#[derive(Debug, Clone)]
pub struct SurveyInput {
    pub customer_id: String,
    pub subject: SurveySubject,
    pub subject_id: String,
    pub csat: u8,
    pub comment: String,
}

impl CareCore {
    pub async fn record_survey(
        &self,
        input: SurveyInput,
        idem: Option<&Idempotency>,
    ) -> Result<Survey, CareError> {
        self.pipeline
            .keyed(idem, || self.try_record_survey(&input, idem))
            .await
    }

    async fn try_record_survey(
        &self,
        input: &SurveyInput,
        idem: Option<&Idempotency>,
    ) -> Result<Survey, CareError> {
        let cmd = match self.pipeline.begin(RECORD_SURVEY_SCOPE, idem).await? {
            Begun::Replay(remembered) => return self.get_survey(replayed(&remembered)?).await,
            Begun::Fresh(cmd) => cmd,
        };
        let now = cmd.now();
        let survey = Survey {
            id: new_id(),
            customer_id: input.customer_id.clone(),
            subject: input.subject,
            subject_id: input.subject_id.clone(),
            csat: input.csat,
            comment: input.comment.clone(),
            recorded_at: now,
        };
        store::insert_survey(cmd.txn(), &survey).await?;
        let summary = format!(
            "survey on {} {}: CSAT {}",
            input.subject, input.subject_id, input.csat
        );
        let entry = TimelineEntry::own(
            &input.customer_id,
            TimelineKind::Survey,
            &survey.id,
            "care.SurveyRecorded",
            summary,
            now,
        );
        store::add_timeline(cmd.txn(), &entry).await?;
        cmd.commit(&self.pipeline, &Remembered::id(&survey.id))
            .await?;
        Ok(survey)
    }

    async fn get_survey(&self, id: &str) -> Result<Survey, CareError> {
        store::get_survey(self.db(), id)
            .await?
            .ok_or_else(|| not_found("survey", id))
    }
}
