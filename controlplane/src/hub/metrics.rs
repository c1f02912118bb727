//! The hub's `/metrics`: its own counters (`skua_hub_*`) are
//! `prometheus-client` metrics in one registry, encoded with its
//! Prometheus text (0.0.4) encoder after the families the hub shares with
//! workers (`skua_build_info`, `skua_uptime_seconds`, the pod watcher's
//! `skua_kubernetes_*`), which `crate::metrics` renders from snapshots
//! (that module says why it is hand-written).
//!
//! Every labelled family is created with all its label values at start, so
//! a family is served (at 0) before anything happens.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::streams::Class;
use super::{lock, HubState};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StreamLabels {
    pub class: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    pub class: &'static str,
}

/// The hub's counters and gauges (`/metrics`; tests read them too).
#[derive(Debug)]
pub struct HubCounters {
    pub items_published: Counter,
    pub items_evicted: Counter,
    /// Items dropped because one alone was over `hub.items_max_bytes`.
    pub items_oversize: Counter,
    /// Items published without the hub's `onItemQueried` because its queue
    /// (`hub.queried_queue`) was full.
    pub items_unqueried: Counter,
    pub console_lines: Counter,
    pub console_evicted: Counter,
    pub console_oversize: Counter,
    /// Events not sent to a live-stream client whose queue was full.
    pub sse_dropped: Counter,
    /// Live streams refused, by class and reason (`full`, `token`).
    pub streams_refused: Family<StreamLabels, Counter>,
    /// Live streams closed by the hub, by class and reason (`stalled`,
    /// `replaced`).
    pub streams_evicted: Family<StreamLabels, Counter>,
    pub hub_actions: Counter,
    /// Hub actions no subscriber was there to take.
    pub hub_actions_unheard: Counter,
    /// Events a slow worker link missed (it resynced from a snapshot).
    pub events_lagged: Counter,
    pub worker_reports: Counter,
    /// Worker reports and links refused, by reason (`full`, `identity`).
    pub workers_refused: Family<ReasonLabel, Counter>,
    pub requests: Counter,
    /// Requests refused before authentication, by reason (`host`,
    /// `origin`, `content_type`).
    pub requests_refused: Family<ReasonLabel, Counter>,
    pub unauthorized: Counter,
    pub forbidden: Counter,
    pub bad_requests: Counter,
    pub too_large: Counter,
    pub body_timeouts: Counter,
    pub store_errors: Counter,
    items_held: Gauge,
    items_held_bytes: Gauge,
    console_held: Gauge,
    console_held_bytes: Gauge,
    streams: Family<ClassLabel, Gauge>,
    workers_online: Gauge,
    registry: Registry,
}

impl Default for HubCounters {
    fn default() -> Self {
        let c = Counter::default;
        let mut h = HubCounters {
            items_published: c(),
            items_evicted: c(),
            items_oversize: c(),
            items_unqueried: c(),
            console_lines: c(),
            console_evicted: c(),
            console_oversize: c(),
            sse_dropped: c(),
            streams_refused: Family::default(),
            streams_evicted: Family::default(),
            hub_actions: c(),
            hub_actions_unheard: c(),
            events_lagged: c(),
            worker_reports: c(),
            workers_refused: Family::default(),
            requests: c(),
            requests_refused: Family::default(),
            unauthorized: c(),
            forbidden: c(),
            bad_requests: c(),
            too_large: c(),
            body_timeouts: c(),
            store_errors: c(),
            items_held: Gauge::default(),
            items_held_bytes: Gauge::default(),
            console_held: Gauge::default(),
            console_held_bytes: Gauge::default(),
            streams: Family::default(),
            workers_online: Gauge::default(),
            registry: Registry::default(),
        };
        for class in [Class::Viewer, Class::Link] {
            for reason in ["full", "token"] {
                let _ =
                    h.streams_refused.get_or_create(&StreamLabels { class: class.name(), reason });
            }
            for reason in ["stalled", "replaced"] {
                let _ =
                    h.streams_evicted.get_or_create(&StreamLabels { class: class.name(), reason });
            }
            let _ = h.streams.get_or_create(&ClassLabel { class: class.name() });
        }
        for reason in ["full", "identity"] {
            let _ = h.workers_refused.get_or_create(&ReasonLabel { reason });
        }
        for reason in ["host", "origin", "content_type"] {
            let _ = h.requests_refused.get_or_create(&ReasonLabel { reason });
        }
        h.register();
        h
    }
}

impl HubCounters {
    fn register(&mut self) {
        let r = &mut self.registry;
        // (name without `_total` for counters: the encoder adds it; help
        // without the final period: the encoder adds it.)
        let counters: [(&str, &str, &Counter); 18] = [
            ("skua_hub_items_published", "Items published to the hub", &self.items_published),
            ("skua_hub_items_evicted", "Items pushed out of the hub's ring (hub.items_capacity, hub.items_max_bytes)", &self.items_evicted),
            ("skua_hub_items_oversize", "Items dropped because one alone was over hub.items_max_bytes", &self.items_oversize),
            ("skua_hub_items_unqueried", "Items published without the hub's onItemQueried because its queue was full (hub.queried_queue)", &self.items_unqueried),
            ("skua_hub_console_lines", "Console lines published to the hub", &self.console_lines),
            ("skua_hub_console_evicted", "Console lines pushed out of the hub's ring (hub.console_capacity, hub.console_max_bytes)", &self.console_evicted),
            ("skua_hub_console_oversize", "Console lines dropped because one alone was over hub.console_max_bytes", &self.console_oversize),
            ("skua_hub_sse_dropped", "Live-stream events dropped because the client's queue was full (hub.sse_client_queue, hub.sse_client_queue_bytes)", &self.sse_dropped),
            ("skua_hub_actions", "hub.action calls received", &self.hub_actions),
            ("skua_hub_actions_unheard", "hub.action calls no subscriber took", &self.hub_actions_unheard),
            ("skua_hub_events_lagged", "Events worker links missed (they resynced from a snapshot)", &self.events_lagged),
            ("skua_hub_worker_reports", "Worker reports received", &self.worker_reports),
            ("skua_hub_requests", "HTTP requests received", &self.requests),
            ("skua_hub_unauthorized", "Requests refused with 401 (no or unknown token)", &self.unauthorized),
            ("skua_hub_forbidden", "Requests refused with 403 (the token's role or identity may not)", &self.forbidden),
            ("skua_hub_bad_requests", "Requests refused with 400, 415 or 422", &self.bad_requests),
            ("skua_hub_too_large", "Requests refused with 413 (hub.max_body_bytes)", &self.too_large),
            ("skua_hub_body_timeouts", "Requests whose body did not arrive within hub.body_timeout_ms (408, connection closed)", &self.body_timeouts),
        ];
        for (name, help, m) in counters {
            r.register(name, help, m.clone());
        }
        r.register(
            "skua_hub_store_errors",
            "Script store operations that failed",
            self.store_errors.clone(),
        );
        r.register(
            "skua_hub_streams_refused",
            "Live streams refused, by class (viewer, link) and reason (full: hub.max_sse_clients or hub.max_worker_links; token: hub.max_streams_per_token or hub.max_links_per_token)",
            self.streams_refused.clone(),
        );
        r.register(
            "skua_hub_streams_evicted",
            "Live streams closed by the hub, by class and reason (stalled: hub.stream_stall_ms; replaced: the worker linked again)",
            self.streams_evicted.clone(),
        );
        r.register(
            "skua_hub_workers_refused",
            "Worker reports and links refused, by reason (full: hub.max_workers; identity: the name belongs to another token or to the hub)",
            self.workers_refused.clone(),
        );
        r.register(
            "skua_hub_requests_refused",
            "Requests refused before authentication, by reason (host: hub.allowed_hosts; origin: hub.allowed_origins; content_type: auth none without a JSON content type)",
            self.requests_refused.clone(),
        );
        let gauges: [(&str, &str, &Gauge); 5] = [
            ("skua_hub_items_held", "Items in the hub's ring now", &self.items_held),
            (
                "skua_hub_items_held_bytes",
                "Bytes the hub's item ring holds now (at most hub.items_max_bytes)",
                &self.items_held_bytes,
            ),
            ("skua_hub_console_held", "Console lines in the hub's ring now", &self.console_held),
            (
                "skua_hub_console_held_bytes",
                "Bytes the hub's console ring holds now (at most hub.console_max_bytes)",
                &self.console_held_bytes,
            ),
            (
                "skua_hub_workers_online",
                "Workers heard from within hub.worker_timeout_ms",
                &self.workers_online,
            ),
        ];
        for (name, help, m) in gauges {
            r.register(name, help, m.clone());
        }
        r.register("skua_hub_streams", "Live streams open now, by class", self.streams.clone());
    }

    pub(crate) fn stream_refused(&self, class: Class, reason: &'static str) {
        self.streams_refused.get_or_create(&StreamLabels { class: class.name(), reason }).inc();
    }

    pub(crate) fn stream_evicted(&self, class: Class, reason: &'static str) {
        self.streams_evicted.get_or_create(&StreamLabels { class: class.name(), reason }).inc();
    }

    pub(crate) fn worker_refused(&self, reason: &'static str) {
        self.workers_refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub(crate) fn request_refused(&self, reason: &'static str) {
        self.requests_refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A labelled counter's value (tests, reports).
    pub fn refused_streams(&self, class: &'static str, reason: &'static str) -> u64 {
        self.streams_refused.get_or_create(&StreamLabels { class, reason }).get()
    }

    pub fn evicted_streams(&self, class: &'static str, reason: &'static str) -> u64 {
        self.streams_evicted.get_or_create(&StreamLabels { class, reason }).get()
    }
}

/// The whole exposition of the hub's `/metrics`.
pub(crate) fn render(state: &HubState) -> String {
    let snap = crate::metrics::MetricsSnapshot {
        uptime: Some(state.started.elapsed()),
        kubernetes: state.kube.get().map(|k| k.snapshot()),
        ..Default::default()
    };
    let mut out = crate::metrics::render(&snap);
    let c = &state.counters;
    let (n, bytes) = lock(&state.items).held();
    c.items_held.set(n as i64);
    c.items_held_bytes.set(bytes as i64);
    let (n, bytes) = lock(&state.console).held();
    c.console_held.set(n as i64);
    c.console_held_bytes.set(bytes as i64);
    for class in [Class::Viewer, Class::Link] {
        let open = state.streams.open(class) as i64;
        c.streams.get_or_create(&ClassLabel { class: class.name() }).set(open);
    }
    let timeout = Duration::from_millis(state.cfg.worker_timeout_ms);
    let online = lock(&state.workers).values().filter(|e| e.seen.elapsed() < timeout).count();
    c.workers_online.set(online as i64);
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &c.registry);
    out
}
