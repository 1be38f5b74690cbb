//! A database seeded with the first edition of the default SLA policies (issue 16) moving
//! to the new edition when the new release starts: its tickets keep the versions and
//! clocks they have, new tickets get the new defaults. On both backends.

use aftersales_protos::tickets::v1 as pb;
use aftersales_tickets::{
    domain::{
        Level, Severity, Status,
        policy::{SlaPolicy, SlaTarget},
    },
    store,
};
use chrono::{DateTime, Utc};

use crate::{
    complexity::{HOUR_MS, SEVERITIES, fixed, monday_10am, open, spawn_at},
    helpers::{Backend, clock, millis},
};

/// The first edition of the defaults, as databases seeded before issue 16 hold it,
/// written out here from the old code's numbers.
fn first_edition(at: DateTime<Utc>) -> Vec<SlaPolicy> {
    let base = SlaPolicy {
        id: "default".into(),
        version: 1,
        name: "General: respond in 1 h, resolve in 24 h".into(),
        priority: 1000,
        match_severities: vec![],
        match_categories: vec![],
        match_tiers: vec![],
        match_channels: vec![],
        match_complexities: vec![],
        first_response: SlaTarget::always_on(3_600),
        resolution: SlaTarget::always_on(86_400),
        periodic_update: None,
        pause_statuses: vec![Status::PendingCustomer],
        warning_percent: 75,
        escalate_on_breach: true,
        initial_level: Level::Agent,
        created_at: at,
        milestones: Default::default(),
        warnings: Vec::new(),
    };
    let complex = SlaTarget::business(86_400, "cn-workdays");
    vec![
        SlaPolicy {
            id: "urgent".into(),
            name: "Urgent: supervisor at once, 3 working days".into(),
            priority: 10,
            match_severities: vec![Severity::Urgent],
            resolution: complex.clone(),
            initial_level: Level::Supervisor,
            ..base.clone()
        },
        SlaPolicy {
            id: "important".into(),
            name: "Important: 3 working days".into(),
            priority: 20,
            match_severities: vec![Severity::Important],
            resolution: complex,
            ..base.clone()
        },
        base,
    ]
}

async fn old_tickets_keep_their_targets(backend: Backend) {
    let (mut app, manual) = spawn_at(backend, None).await;
    // The database as the first edition left it (no ticket was created yet, so nothing
    // has read the policies).
    app.execute("DELETE FROM sla_policies").await;
    for p in first_edition(monday_10am() - chrono::Duration::days(30)) {
        store::insert_policy_if_missing(app.core.db(), &p)
            .await
            .unwrap();
    }
    let mut old = Vec::new();
    for severity in SEVERITIES {
        let t = open(
            &mut app,
            pb::Channel::Hotline,
            severity,
            pb::Complexity::Simple,
        )
        .await;
        assert_eq!(t.sla_policy_version, 1);
        old.push((t.clone(), fixed(app.sla(&t.id).await)));
    }
    let urgent_old = clock(&old[0].1, pb::ClockKind::Resolution);
    assert_eq!(
        urgent_old.calendar_id, "cn-workdays",
        "the first edition gave urgent tickets 3 working days"
    );

    // The new release starts: its defaults are seeded over the first edition.
    manual.advance(chrono::Duration::hours(1));
    app.core.ensure_defaults().await.unwrap();
    app.core.ensure_defaults().await.unwrap();
    for (t, status) in &old {
        let now = fixed(app.sla(&t.id).await);
        assert_eq!(&now, status, "{} keeps its clocks", t.id);
        assert_eq!(&app.ticket(&t.id).await, t);
    }
    let policies = app
        .client
        .list_sla_policies(pb::ListSlaPoliciesRequest {})
        .await
        .unwrap()
        .into_inner()
        .policies;
    let versions: Vec<(&str, u32)> = policies
        .iter()
        .map(|p| (p.id.as_str(), p.version))
        .collect();
    assert_eq!(
        versions,
        [
            ("online-important", 1),
            ("online-urgent", 2),
            ("online", 1),
            ("urgent-complex", 2),
            ("urgent", 3),
            ("important", 3),
            ("important-simple", 1),
            ("complex", 1),
            ("default", 1),
        ]
    );

    // A new urgent ticket gets the new edition: 24 hours, not 3 working days.
    let now = monday_10am().timestamp_millis() + HOUR_MS;
    let t = open(
        &mut app,
        pb::Channel::Hotline,
        pb::Severity::Urgent,
        pb::Complexity::Simple,
    )
    .await;
    assert_eq!(
        (t.sla_policy_id.as_str(), t.sla_policy_version),
        ("urgent", 3)
    );
    // With the hand-off of edition 3: in a supervisor's hands within the hour.
    let hand_off = clock(&app.sla(&t.id).await, pb::ClockKind::HandOff);
    assert_eq!(millis(&hand_off.due_at), now + HOUR_MS);
    let resolution = clock(&app.sla(&t.id).await, pb::ClockKind::Resolution);
    assert_eq!(
        (resolution.calendar_id.as_str(), millis(&resolution.due_at)),
        ("", now + 24 * HOUR_MS)
    );
    // The old urgent ticket still answers to its first-edition version.
    let stored = store::policy_version(app.core.db(), "urgent", 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.resolution.calendar_id.as_deref(),
        Some("cn-workdays")
    );
    app.stop().await;
}

#[tokio::test]
async fn tickets_under_the_first_edition_keep_their_targets_when_the_new_defaults_arrive_on_postgres()
 {
    old_tickets_keep_their_targets(Backend::Postgres).await;
}

#[tokio::test]
async fn tickets_under_the_first_edition_keep_their_targets_when_the_new_defaults_arrive_on_sqlite()
{
    old_tickets_keep_their_targets(Backend::Sqlite).await;
}
