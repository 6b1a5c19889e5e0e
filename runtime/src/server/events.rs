//! `GET /events` (`docker events`): the engine's event log as dockerd 20.10 streams it, one
//! JSON object per line: the kept events from `since` (when `since` or `until` is given), then
//! what happens until `until` (or until the client goes), all through the filters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;

use super::{Answer, Refusal, Served, filters};
use crate::api::filter::Filters;
use crate::engine::Event;

pub(super) fn routes() -> Router<Arc<Served>> {
    Router::new().route("/events", get(events))
}

/// `GET /events?since=&until=&filters=`.
async fn events(
    State(served): State<Arc<Served>>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer<Response> {
    let text = |key: &str| query.get(key).map_or("", String::as_str);
    let (since, until) = (event_time(text("since"))?, event_time(text("until"))?);
    if let (Some(since), Some(until)) = (since, until)
        && until < since
    {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!(
                "`since` time ({}) cannot be after `until` time ({})",
                text("since"),
                text("until")
            ),
        ));
    }
    let filters = filters(&query)?;
    let log = served.engine.lock().await.events();
    let (past, receiver) = log.subscribe(since, until);
    let now = now_nanos();
    // Until a time to come: the stream ends then; one gone by: only the past is sent.
    let deadline = until.map(|u| tokio::time::Instant::now() + nanos_from(now, u));
    let past: std::collections::VecDeque<Event> =
        past.into_iter().filter(|e| include(e, &filters)).collect();
    let state = (past, receiver, filters, deadline);
    let stream = futures::stream::unfold(
        state,
        |(mut past, mut receiver, filters, deadline)| async move {
            let event = match past.pop_front() {
                Some(event) => event,
                None => loop {
                    let next = async {
                        match deadline {
                            Some(at) => tokio::time::timeout_at(at, receiver.recv()).await.ok(),
                            None => Some(receiver.recv().await),
                        }
                    };
                    match next.await? {
                        Ok(event) if include(&event, &filters) => break event,
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                },
            };
            let line = serde_json::to_string(&event).unwrap_or_default() + "\n";
            let chunk = Ok::<_, std::io::Error>(Bytes::from(line));
            Some((chunk, (past, receiver, filters, deadline)))
        },
    );
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .expect("a valid response"))
}

/// Nanoseconds since the epoch now.
fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// How long from `now` to `until` (both in nanoseconds), nothing when it has passed.
fn nanos_from(now: i64, until: i64) -> Duration {
    Duration::from_nanos(until.saturating_sub(now).max(0) as u64)
}

/// A `since`/`until` as the CLI sends it (`SECONDS[.NANOS]`, moby's `ParseTimestamps`) in
/// nanoseconds; none when empty.
fn event_time(text: &str) -> Answer<Option<i64>> {
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = || {
        Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("strconv.ParseInt: parsing {text:?}: invalid syntax"),
        )
    };
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = seconds.parse().map_err(|_| invalid())?;
    let nanos = match fraction {
        "" => 0,
        digits => {
            let value: i64 = digits.parse().map_err(|_| invalid())?;
            let scale = 9 - digits.len().min(9) as u32;
            value * 10i64.pow(scale)
        }
    };
    Ok(Some(seconds.saturating_mul(1_000_000_000) + nanos))
}

/// Whether `event` passes the filters, as moby's `daemon/events.Filter.Include`.
fn include(event: &Event, filters: &Filters) -> bool {
    let values = |key: &str| filters.get(key).filter(|v| !v.is_empty());
    let exact = |key: &str, source: &str| values(key).is_none_or(|v| v.iter().any(|x| x == source));
    let fuzzy = |key: &str, source: &str| {
        values(key).is_none_or(|v| v.iter().any(|x| source.starts_with(x.as_str())))
    };
    let attributes = &event.actor.attributes;
    let name = attributes.get("name").map_or("", String::as_str);
    // health_status, exec_create and exec_start (without their colon) match by prefix.
    let action_fuzzy = values("event").is_some_and(|v| {
        v.iter()
            .any(|x| matches!(x.as_str(), "health_status" | "exec_create" | "exec_start"))
    });
    let action = match action_fuzzy {
        true => fuzzy("event", &event.action),
        false => exact("event", &event.action),
    };
    let named = [
        "container",
        "network",
        "daemon",
        "plugin",
        "volume",
        "service",
        "node",
    ]
    .into_iter()
    .chain(["secret", "config"])
    .all(|key| fuzzy(key, &event.actor.id) || fuzzy(key, name));
    let image = attributes.get("image").map_or("", String::as_str);
    let untagged = |s: &str| {
        s.split_once(':')
            .map_or(s.to_string(), |(n, _)| n.to_string())
    };
    let image = values("image").is_none_or(|v| {
        v.iter()
            .any(|x| x == image || untagged(x) == untagged(image) && !x.contains(':'))
    });
    let labels = values("label").is_none_or(|v| {
        v.iter().all(|wanted| match wanted.split_once('=') {
            Some((k, value)) => attributes.get(k).is_some_and(|x| x == value),
            None => attributes.contains_key(wanted.as_str()),
        })
    });
    action && exact("type", &event.kind) && exact("scope", &event.scope) && named && image && labels
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rstest::rstest;

    use super::*;
    use crate::engine::Actor;

    fn event(kind: &str, action: &str, id: &str, attributes: &[(&str, &str)]) -> Event {
        Event {
            status: String::new(),
            id: String::new(),
            from: String::new(),
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: attributes
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            },
            scope: "local".into(),
            time: 0,
            time_nano: 0,
        }
    }

    fn filter(pairs: &[(&str, &str)]) -> Filters {
        let mut filters = Filters::new();
        for (k, v) in pairs {
            filters
                .entry(k.to_string())
                .or_default()
                .push(v.to_string());
        }
        filters
    }

    #[rstest]
    #[case(&[], true)]
    #[case(&[("type", "container")], true)]
    #[case(&[("type", "network")], false)]
    #[case(&[("event", "start")], true)]
    #[case(&[("event", "stop"), ("event", "start")], true)]
    #[case(&[("event", "sta")], false)]
    #[case(&[("container", "web")], true)]
    #[case(&[("container", "abc")], true)]
    #[case(&[("container", "db")], false)]
    #[case(&[("network", "app")], false)]
    #[case(&[("image", "busybox")], true)]
    #[case(&[("image", "busybox:latest")], false)]
    #[case(&[("label", "tier=front")], true)]
    #[case(&[("label", "tier")], true)]
    #[case(&[("label", "tier"), ("label", "nope")], false)]
    #[case(&[("scope", "swarm")], false)]
    fn container_events_pass_filters_as_dockerd_decides(
        #[case] pairs: &[(&str, &str)],
        #[case] passes: bool,
    ) {
        let start = event(
            "container",
            "start",
            "abc123",
            &[("name", "web"), ("image", "busybox"), ("tier", "front")],
        );
        assert_eq!(include(&start, &filter(pairs)), passes);
    }

    #[test]
    fn exec_events_match_by_prefix_and_network_events_by_network() {
        let exec = event(
            "container",
            "exec_start: sh -c date",
            "abc",
            &[("name", "web")],
        );
        assert!(include(&exec, &filter(&[("event", "exec_start")])));
        assert!(!include(&exec, &filter(&[("event", "exec_die")])));
        let connect = event(
            "network",
            "connect",
            "n1",
            &[("name", "app"), ("container", "abc")],
        );
        assert!(include(&connect, &filter(&[("network", "app")])));
        assert!(!include(&connect, &filter(&[("container", "web")])));
    }

    #[test]
    fn times_are_seconds_with_optional_nanoseconds() {
        assert_eq!(event_time("").ok(), Some(None));
        assert_eq!(event_time("0").ok(), Some(Some(0)));
        assert_eq!(event_time("12.5").ok(), Some(Some(12_500_000_000)));
        assert_eq!(
            event_time("1765000000.000000001").ok(),
            Some(Some(1_765_000_000_000_000_001))
        );
        assert!(event_time("soon").is_err());
        assert_eq!(nanos_from(10, 5), Duration::ZERO);
    }
}
