//! `prometheus.metric(name, help, type, value, labels?)`: agents' own
//! metrics, served on `/metrics` next to skua's.
//!
//! A counter (type 1) adds `value` (≥ 0) to its series; a gauge (2) or
//! untyped metric (3) sets it. Names and label names follow Prometheus'
//! rules (`[a-zA-Z_:][a-zA-Z0-9_:]*`, label names not starting with `__`);
//! names starting with `skua_` are skua's own and refused. A name keeps the
//! type and help text it was first used with (another type is refused).
//! At most `integrations.prometheus.max_series` series exist; past it a new
//! series is refused (counted: [`AgentMetrics::series_refused`]), existing
//! ones keep updating.
//!
//! `prometheus.vector(name, help, type, value, labels)` is a counter vec (1)
//! or gauge vec (2): one series per label set, all with the label names of
//! its first call (as a Prometheus client's vec; other names are refused).
//! A name is either a metric or a vector.

use std::collections::BTreeMap;
use std::sync::Mutex;

use scripting::MetricKind;

use super::IntegrationError;

/// One metric family of agents.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFamily {
    pub name: String,
    pub help: String,
    pub kind: MetricKind,
    /// Label pairs (sorted by name) → value.
    pub series: BTreeMap<Vec<(String, String)>, f64>,
    /// Made by `prometheus.vector`: the label names every series has.
    pub vector_labels: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct AgentMetrics {
    max_series: usize,
    inner: Mutex<Inner>,
    refused: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Default)]
struct Inner {
    families: BTreeMap<String, AgentFamily>,
    series: usize,
}

pub fn valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

pub fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with("__")
}

impl AgentMetrics {
    pub fn new(max_series: usize) -> Self {
        AgentMetrics {
            max_series,
            inner: Mutex::new(Inner::default()),
            refused: Default::default(),
        }
    }

    /// New series refused at `max_series` so far.
    pub fn series_refused(&self) -> u64 {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Applies one `prometheus.metric` call; returns the series' new value.
    pub fn update(
        &self,
        name: &str,
        help: &str,
        kind: MetricKind,
        value: f64,
        labels: &BTreeMap<String, String>,
    ) -> Result<f64, IntegrationError> {
        self.apply(name, help, kind, value, labels, false)
    }

    /// Applies one `prometheus.vector` call; returns the series' new value.
    pub fn update_vector(
        &self,
        name: &str,
        help: &str,
        kind: MetricKind,
        value: f64,
        labels: &BTreeMap<String, String>,
    ) -> Result<f64, IntegrationError> {
        if kind == MetricKind::Untyped {
            return Err(IntegrationError::Invalid(
                "prometheus.vector: type is 1 (counter vec) or 2 (gauge vec)".into(),
            ));
        }
        if labels.is_empty() {
            return Err(IntegrationError::Invalid("prometheus.vector: labels are required".into()));
        }
        self.apply(name, help, kind, value, labels, true)
    }

    fn apply(
        &self,
        name: &str,
        help: &str,
        kind: MetricKind,
        value: f64,
        labels: &BTreeMap<String, String>,
        vector: bool,
    ) -> Result<f64, IntegrationError> {
        let helper = if vector { "prometheus.vector" } else { "prometheus.metric" };
        let bad = |m: String| Err(IntegrationError::Invalid(format!("{helper}: {m}")));
        if !valid_metric_name(name) {
            return bad(format!("{name:?} is not a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)"));
        }
        if name.starts_with("skua_") {
            return bad(format!("{name:?}: names starting with skua_ are skua's own"));
        }
        if let Some(l) = labels.keys().find(|l| !valid_label_name(l)) {
            return bad(format!("{l:?} is not a valid label name"));
        }
        if !value.is_finite() && kind == MetricKind::Counter {
            return bad(format!("counter {name} needs a finite value"));
        }
        if kind == MetricKind::Counter && value < 0.0 {
            return bad(format!("counter {name} can only go up (got {value})"));
        }
        let mut inner = self.inner.lock().map_err(|_| {
            IntegrationError::Unavailable("prometheus.metric: store poisoned".into())
        })?;
        let Inner { families, series } = &mut *inner;
        let key: Vec<(String, String)> =
            labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let names: Vec<String> = labels.keys().cloned().collect();
        if let Some(f) = families.get(name) {
            if f.kind != kind {
                return bad(format!("{name} is a {}, not a {}", f.kind.as_str(), kind.as_str()));
            }
            match (&f.vector_labels, vector) {
                (Some(want), true) if *want != names => {
                    return bad(format!("{name} has the labels {want:?}, not {names:?}"))
                }
                (Some(_), false) => return bad(format!("{name} is a vector (prometheus.vector)")),
                (None, true) => return bad(format!("{name} is a metric (prometheus.metric)")),
                _ => {}
            }
        }
        let is_new_series = !families.get(name).is_some_and(|f| f.series.contains_key(&key));
        if is_new_series && *series >= self.max_series {
            self.refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return bad(format!(
                "series limit reached (integrations.prometheus.max_series = {})",
                self.max_series
            ));
        }
        let fam = families.entry(name.to_string()).or_insert_with(|| AgentFamily {
            name: name.to_string(),
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
            vector_labels: vector.then_some(names),
        });
        if is_new_series {
            *series += 1;
        }
        let v = fam.series.entry(key).or_insert(0.0);
        if kind == MetricKind::Counter {
            *v += value;
        } else {
            *v = value;
        }
        Ok(*v)
    }

    pub fn snapshot(&self) -> Vec<AgentFamily> {
        self.inner.lock().map(|i| i.families.values().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(p: &[(&str, &str)]) -> BTreeMap<String, String> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn counters_add_gauges_set_limits_hold() {
        let m = AgentMetrics::new(2);
        let l = labels(&[("code", "500")]);
        assert_eq!(
            m.update("http_errors_total", "errors", MetricKind::Counter, 1.0, &l).unwrap(),
            1.0
        );
        assert_eq!(
            m.update("http_errors_total", "errors", MetricKind::Counter, 2.0, &l).unwrap(),
            3.0
        );
        assert!(m.update("http_errors_total", "errors", MetricKind::Counter, -1.0, &l).is_err());
        assert!(m.update("http_errors_total", "errors", MetricKind::Gauge, 1.0, &l).is_err());
        assert_eq!(m.update("queue", "q", MetricKind::Gauge, 5.0, &BTreeMap::new()).unwrap(), 5.0);
        assert_eq!(m.update("queue", "q", MetricKind::Gauge, 2.0, &BTreeMap::new()).unwrap(), 2.0);
        assert!(
            m.update("other", "o", MetricKind::Gauge, 1.0, &BTreeMap::new()).is_err(),
            "third series"
        );
        assert!(m.update("skua_x", "", MetricKind::Gauge, 1.0, &BTreeMap::new()).is_err());
        assert!(m.update("9bad", "", MetricKind::Gauge, 1.0, &BTreeMap::new()).is_err());
        assert!(m.update("ok", "", MetricKind::Gauge, 1.0, &labels(&[("__x", "1")])).is_err());
        assert_eq!(m.snapshot().len(), 2);
        assert_eq!(m.series_refused(), 1);
    }

    #[test]
    fn vectors_keep_their_label_names() {
        let m = AgentMetrics::new(3);
        let l = |pod: &str| labels(&[("s_pod", pod), ("s_script", "t")]);
        assert_eq!(
            m.update_vector("pod_bytes", "b", MetricKind::Counter, 5.0, &l("a")).unwrap(),
            5.0
        );
        assert_eq!(
            m.update_vector("pod_bytes", "b", MetricKind::Counter, 1.0, &l("a")).unwrap(),
            6.0
        );
        assert_eq!(
            m.update_vector("pod_bytes", "b", MetricKind::Counter, 2.0, &l("b")).unwrap(),
            2.0
        );
        let other = labels(&[("pod", "a")]);
        assert!(m.update_vector("pod_bytes", "b", MetricKind::Counter, 1.0, &other).is_err());
        assert!(m.update("pod_bytes", "b", MetricKind::Counter, 1.0, &l("a")).is_err());
        assert!(m.update_vector("g", "", MetricKind::Untyped, 1.0, &l("a")).is_err());
        assert!(m.update_vector("g", "", MetricKind::Gauge, 1.0, &BTreeMap::new()).is_err());
        m.update_vector("g", "", MetricKind::Gauge, 4.0, &l("a")).unwrap();
        assert!(m.update_vector("g", "", MetricKind::Gauge, 4.0, &l("z")).is_err(), "limit");
        assert_eq!(m.series_refused(), 1);
    }
}
