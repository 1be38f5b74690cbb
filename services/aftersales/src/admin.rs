//! `aftersales admin`: what an operator runs inside a pod (`kubectl exec … -- aftersales
//! admin …`) with the pod's own environment.

use aftersales_deadlines::DeadlineQueue;
use aftersales_eventbus::consumer::replay_dead_letter;
use aftersales_platform::{
    auth::DevIssuer, client, config::Env, db, redis_conn::RedisTarget, tls::UpstreamTls,
};
use aftersales_protos::{
    common::v1 as common,
    dispatch::v1::{self as pb, partner_key_service_client::PartnerKeyServiceClient},
};
use anyhow::{Context, bail};

use crate::{
    backbone::Backbone,
    cli::{AdminCommand, EventsAction, KeysAction, ServiceName, SlaAction},
    suite,
};

pub async fn run(env: &Env, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::Migrate { services } => suite::migrate(env, &services).await,
        AdminCommand::Sla { action } => sla(env, action).await,
        AdminCommand::Events {
            action: EventsAction::Replay { service, event_id },
        } => replay(env, service, &event_id).await,
        AdminCommand::Keys {
            dispatch_url,
            token,
            action,
        } => {
            let tls = UpstreamTls::from_env(env)?;
            keys(&dispatch_url, &tls, token.as_deref(), action).await
        }
        AdminCommand::CheckConfig { service } => check_config(env, service).await,
        AdminCommand::Token {
            roles,
            subject,
            ttl_secs,
            data_dir,
        } => {
            let issuer = DevIssuer::load(&suite::dev_issuer_file(&data_dir)).context(
                "no development issuer here: `aftersales dev` creates it in its data directory",
            )?;
            let roles: Vec<&str> = roles.iter().map(|r| r.trim()).collect();
            let token = issuer.mint(&subject, &roles, std::time::Duration::from_secs(ttl_secs))?;
            println!("{token}");
            Ok(())
        }
    }
}

/// The Redis queue a service schedules on; the in-process one cannot be reached from here.
async fn redis_queue(env: &Env, service: ServiceName) -> anyhow::Result<DeadlineQueue> {
    if RedisTarget::from_env(env)?.is_none() {
        bail!(
            "REDIS_URL or REDIS_CLUSTER_NODES is required: an in-process queue lives inside the running process"
        );
    }
    let backbone = Backbone::from_env(env).await?;
    Ok(backbone.queue(suite::queue_name(service)?))
}

async fn sla(env: &Env, action: SlaAction) -> anyhow::Result<()> {
    match action {
        SlaAction::Stats { service } => {
            let stats = redis_queue(env, service).await?.stats().await?;
            println!(
                "{} queue: {} scheduled, {} in flight",
                service.name(),
                stats.scheduled,
                stats.in_flight
            );
        }
        SlaAction::Rebuild { service } => {
            redis_queue(env, service).await?.request_rebuild().await?;
            println!(
                "{} queue: rebuild requested; a running worker rebuilds it from the database \
                 within its loss-check interval (SLA_LOST_CHECK_INTERVAL_MS)",
                service.name()
            );
        }
    }
    Ok(())
}

/// A dead letter of the service's consumer group goes back on its stream; otherwise the
/// event is one the service published, and its outbox sends it again.
async fn replay(env: &Env, service: ServiceName, event_id: &str) -> anyhow::Result<()> {
    let database = suite::database_of(env, service)?;
    let conn = db::connect(&database).await?;
    // Dead letters go back through Redis; an in-process bus lives in the running process.
    if matches!(service, ServiceName::Tickets | ServiceName::Care)
        && RedisTarget::from_env(env)?.is_some()
    {
        let backbone = Backbone::from_env(env).await?;
        let group = service.name();
        if replay_dead_letter(&conn, &backbone.bus, group, event_id).await? {
            println!("dead letter {event_id} put back on its stream for the {group} group");
            return Ok(());
        }
    }
    if !aftersales_eventbus::outbox::mark_for_replay(&conn, event_id).await? {
        bail!(
            "{} has no event {event_id} in its outbox (published events are trimmed after OUTBOX_RETENTION_HOURS)",
            service.name()
        );
    }
    println!(
        "event {event_id} queued for publishing again by the {} relay",
        service.name()
    );
    Ok(())
}

fn operator() -> Option<common::Actor> {
    let id = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    Some(common::Actor {
        id: format!("cli:{id}"),
        role: common::ActorRole::System as i32,
    })
}

fn print_key(key: &pb::PartnerKey) {
    let when = |t: &Option<prost_types::Timestamp>| {
        t.as_ref()
            .and_then(aftersales_platform::codes::instant)
            .map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
    };
    println!(
        "{}  partner={}  prefix={}  label={:?}  expires={}  revoked={}",
        key.id,
        key.partner_id,
        key.prefix,
        key.label,
        when(&key.expires_at),
        when(&key.revoked_at)
    );
}

/// Partner keys through dispatch at `dispatch_url` (over TLS checked by `tls` when it is
/// `https://`).
async fn keys(
    dispatch_url: &str,
    tls: &UpstreamTls,
    token: Option<&str>,
    action: KeysAction,
) -> anyhow::Result<()> {
    let channel = client::endpoint(dispatch_url, tls)?
        .connect()
        .await
        .with_context(|| format!("dispatch at {dispatch_url}"))?;
    let bearer = token
        .map(|t| format!("Bearer {}", t.trim()).parse::<tonic::metadata::MetadataValue<_>>())
        .transpose()
        .context("the token is not a header value")?;
    // With a token, the operator recorded is its subject; without one (a suite running
    // AUTH_MODE=disabled), the login name.
    let with_token = bearer.is_some();
    let operator = || if with_token { None } else { operator() };
    let mut client = PartnerKeyServiceClient::with_interceptor(
        channel,
        move |mut request: tonic::Request<()>| {
            if let Some(bearer) = &bearer {
                request
                    .metadata_mut()
                    .insert("authorization", bearer.clone());
            }
            Ok(request)
        },
    );
    match action {
        KeysAction::Issue { partner, label } => {
            let issued = client
                .issue_partner_key(pb::IssuePartnerKeyRequest {
                    partner_id: partner,
                    label,
                    actor: operator(),
                })
                .await?
                .into_inner();
            if let Some(key) = &issued.key {
                print_key(key);
            }
            println!("secret (shown once): {}", issued.secret);
        }
        KeysAction::Rotate {
            key_id,
            overlap_secs,
        } => {
            let issued = client
                .rotate_partner_key(pb::RotatePartnerKeyRequest {
                    key_id,
                    overlap_seconds: overlap_secs,
                    actor: operator(),
                })
                .await?
                .into_inner();
            if let Some(key) = &issued.key {
                print_key(key);
            }
            println!("secret (shown once): {}", issued.secret);
        }
        KeysAction::Revoke { key_id } => {
            let key = client
                .revoke_partner_key(pb::RevokePartnerKeyRequest {
                    key_id,
                    actor: operator(),
                })
                .await?
                .into_inner();
            print_key(&key);
        }
        KeysAction::List { partner } => {
            let keys = client
                .list_partner_keys(pb::ListPartnerKeysRequest {
                    partner_id: partner.unwrap_or_default(),
                })
                .await?
                .into_inner()
                .keys;
            for key in &keys {
                print_key(key);
            }
        }
    }
    Ok(())
}

async fn check_config(env: &Env, service: ServiceName) -> anyhow::Result<()> {
    let database = suite::database_of(env, service)?;
    let conn = db::connect(&database)
        .await
        .with_context(|| format!("{}: the database does not answer", service.name()))?;
    conn.ping().await?;
    println!(
        "{}: configuration valid, database answers ({})",
        service.name(),
        redacted(&database.url)
    );
    if RedisTarget::from_env(env)?.is_some() {
        let queue = redis_queue(env, service).await?;
        let stats = queue.stats().await?;
        println!(
            "{}: Redis answers ({} deadlines scheduled)",
            service.name(),
            stats.scheduled
        );
    } else {
        println!(
            "{}: neither REDIS_URL nor REDIS_CLUSTER_NODES is set: in-process queue and bus (development only)",
            service.name()
        );
    }
    Ok(())
}

/// A database URL without its password.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redacted("postgres://app:s3cret@db:5432/tickets"),
            "postgres://app:***@db:5432/tickets"
        );
        assert_eq!(
            redacted("sqlite://data/tickets.db"),
            "sqlite://data/tickets.db"
        );
    }
}
