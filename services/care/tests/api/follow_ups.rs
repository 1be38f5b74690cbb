//! Follow-ups against a real tickets service on the same bus: a resolution creates a
//! follow-up due within the window; an unsatisfied customer gets the ticket reopened.

use std::time::Duration as StdDuration;

use aftersales_platform::codes::instant;
use aftersales_protos::{care::v1 as pb, tickets::v1 as tickets};
use chrono::Duration;

use crate::helpers::*;

struct Suite {
    care: TestApp,
    tickets: Tickets,
}

async fn suite(backend: Backend, window: Duration) -> Suite {
    let (bus, _) = aftersales_runtime::testing::backbone(backend, "unused")
        .await
        .expect("a bus");
    let tickets = Tickets::spawn(backend, bus.clone()).await;
    let mut setup = Setup::new(backend);
    setup.bus = Some(bus);
    setup.config.tickets_url = tickets.url.clone();
    setup.config.rules.follow_up_window = window;
    let care = spawn_with(setup).await;
    Suite { care, tickets }
}

impl Suite {
    /// A ticket created and resolved in the tickets service.
    async fn resolved_ticket(&mut self, customer: &str) -> tickets::Ticket {
        let ticket = self
            .tickets
            .client
            .create_ticket(tickets::CreateTicketRequest {
                customer_id: customer.into(),
                order_id: "order-1".into(),
                channel: tickets::Channel::Hotline as i32,
                category: tickets::Category::Complaint as i32,
                severity: tickets::Severity::General as i32,
                subject: "washer leaks".into(),
                description: "water on the floor".into(),
                ..Default::default()
            })
            .await
            .expect("ticket")
            .into_inner();
        self.tickets
            .client
            .change_status(tickets::ChangeStatusRequest {
                ticket_id: ticket.id.clone(),
                status: tickets::TicketStatus::Resolved as i32,
                reason: "replaced the hose".into(),
                actor: Some(agent()),
            })
            .await
            .expect("resolved")
            .into_inner()
    }

    async fn wait_for_follow_up(
        &mut self,
        ticket_id: &str,
        status: pb::FollowUpStatus,
    ) -> pb::FollowUp {
        for _ in 0..300 {
            if let Some(f) = self.care.follow_ups(ticket_id).await.into_iter().next()
                && f.status == status as i32
            {
                return f;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("no {status:?} follow-up for ticket {ticket_id}");
    }

    async fn stop(self) {
        self.care.stop().await;
        self.tickets.stop().await;
    }
}

#[tokio::test]
async fn a_resolved_ticket_gets_a_follow_up_due_within_24_hours() {
    let mut s = suite(Backend::Postgres, Duration::hours(24)).await;
    let ticket = s.resolved_ticket("cust-1").await;
    let follow_up = s
        .wait_for_follow_up(&ticket.id, pb::FollowUpStatus::Pending)
        .await;
    let resolved_at = instant(ticket.resolved_at.as_ref().expect("resolved_at")).unwrap();
    let due_at = instant(follow_up.due_at.as_ref().expect("due_at")).unwrap();
    assert_eq!(due_at - resolved_at, Duration::hours(24));
    assert_eq!(follow_up.customer_id, "cust-1");
    // A replayed resolution (same event) adds no second follow-up.
    s.care.wait_for_events(3).await;
    assert_eq!(s.care.follow_ups(&ticket.id).await.len(), 1);
    s.stop().await;
}

#[tokio::test]
async fn an_unrecorded_follow_up_turns_overdue_on_the_deadline_queue() {
    let mut s = suite(Backend::Sqlite, Duration::seconds(1)).await;
    let ticket = s.resolved_ticket("cust-2").await;
    let overdue = s
        .wait_for_follow_up(&ticket.id, pb::FollowUpStatus::Overdue)
        .await;
    assert_eq!(
        s.care
            .count("SELECT COUNT(*) AS n FROM outbox WHERE event_type = 'care.FollowUpOverdue'")
            .await,
        1
    );
    // An overdue follow-up can still be recorded.
    let done = s
        .care
        .client
        .record_follow_up(pb::RecordFollowUpRequest {
            follow_up_id: overdue.id.clone(),
            reached: true,
            solved: true,
            satisfied: true,
            csat: 5,
            actor: Some(agent()),
            ..Default::default()
        })
        .await
        .expect("recorded")
        .into_inner();
    assert_eq!(done.status, pb::FollowUpStatus::Done as i32);
    assert!(!done.reopen_requested);
    s.stop().await;
}

#[tokio::test]
async fn an_unsatisfied_follow_up_reopens_the_ticket() {
    let mut s = suite(Backend::Postgres, Duration::hours(24)).await;
    let ticket = s.resolved_ticket("cust-3").await;
    let follow_up = s
        .wait_for_follow_up(&ticket.id, pb::FollowUpStatus::Pending)
        .await;
    let request = pb::RecordFollowUpRequest {
        idempotency_key: "visit-1".into(),
        follow_up_id: follow_up.id.clone(),
        reached: true,
        solved: true,
        satisfied: false,
        csat: 2,
        comment: "still drips".into(),
        actor: Some(agent()),
    };
    let recorded = s
        .care
        .client
        .record_follow_up(request.clone())
        .await
        .expect("recorded")
        .into_inner();
    assert!(recorded.reopen_requested);
    assert!(recorded.ticket_reopened, "tickets confirmed the reopen");

    let after = s
        .tickets
        .client
        .get_ticket(tickets::GetTicketRequest {
            id: ticket.id.clone(),
        })
        .await
        .expect("ticket")
        .into_inner();
    assert_eq!(after.status, tickets::TicketStatus::Reopened as i32);
    assert_eq!(after.reopen_count, 1);

    // A retry answers with the first result and reopens nothing more.
    let again = s
        .care
        .client
        .record_follow_up(request)
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(again.id, recorded.id);
    let after = s
        .tickets
        .client
        .get_ticket(tickets::GetTicketRequest {
            id: ticket.id.clone(),
        })
        .await
        .expect("ticket")
        .into_inner();
    assert_eq!(after.reopen_count, 1);

    // Recording twice without a key is refused as an illegal transition.
    let twice = s
        .care
        .client
        .record_follow_up(pb::RecordFollowUpRequest {
            follow_up_id: follow_up.id.clone(),
            reached: true,
            solved: true,
            satisfied: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(twice.code(), tonic::Code::FailedPrecondition);
    s.stop().await;
}
