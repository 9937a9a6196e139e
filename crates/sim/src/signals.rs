//! The raw signal vocabulary of the world: metric kinds, effects that bend a metric, log lines and
//! change / Kubernetes events. Faults produce these; the telemetry API serves them.

use serde::Serialize;

/// A metric every component (or every component of a kind) exports, one series per component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    LatencyP50,
    LatencyP99,
    ErrorRatio,
    RequestRate,
    Cpu,
    Memory,
    Restarts,
    PoolUsage,
    ConsumerLag,
    Disk,
}

impl Metric {
    pub const ALL: [Metric; 10] = [
        Metric::LatencyP50,
        Metric::LatencyP99,
        Metric::ErrorRatio,
        Metric::RequestRate,
        Metric::Cpu,
        Metric::Memory,
        Metric::Restarts,
        Metric::PoolUsage,
        Metric::ConsumerLag,
        Metric::Disk,
    ];

    /// The Prometheus metric name.
    pub fn prom_name(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "request_latency_p50_seconds",
            Metric::LatencyP99 => "request_latency_p99_seconds",
            Metric::ErrorRatio => "request_error_ratio",
            Metric::RequestRate => "request_rate_per_second",
            Metric::Cpu => "cpu_usage_ratio",
            Metric::Memory => "memory_usage_ratio",
            Metric::Restarts => "container_restarts_total",
            Metric::PoolUsage => "connection_pool_usage_ratio",
            Metric::ConsumerLag => "kafka_consumergroup_lag",
            Metric::Disk => "disk_usage_ratio",
        }
    }

    pub fn from_prom_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.prom_name() == name)
    }

    pub fn help(self) -> &'static str {
        match self {
            Metric::LatencyP50 => "median request latency",
            Metric::LatencyP99 => "99th percentile request latency",
            Metric::ErrorRatio => "fraction of requests that failed",
            Metric::RequestRate => "requests served per second",
            Metric::Cpu => "CPU use as a fraction of the limit",
            Metric::Memory => "memory working set as a fraction of the limit",
            Metric::Restarts => "container restarts since start",
            Metric::PoolUsage => "connections in use as a fraction of the maximum",
            Metric::ConsumerLag => "messages the consumer group is behind",
            Metric::Disk => "disk use as a fraction of the volume",
        }
    }

    pub fn is_counter(self) -> bool {
        self == Metric::Restarts
    }
}

/// How an effect bends a metric while it is active.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "value")]
pub enum Shift {
    /// Move the value towards a level (ratios: memory, CPU, errors, disk, pool).
    Toward(f64),
    /// Multiply the value (latency, request rate).
    Scale(f64),
    /// Add to the value (consumer lag).
    Add(f64),
    /// Add one to a counter every this many seconds (restarts).
    CountEvery(i64),
}

/// One change a fault (or a background anomaly) makes to one metric of one component.
#[derive(Debug, Clone, Serialize)]
pub struct Effect {
    pub component: usize,
    pub metric: Metric,
    /// Unix seconds.
    pub start: i64,
    /// Seconds from start to full strength.
    pub ramp: i64,
    /// Unix seconds; after it the effect fades over [`RECOVERY_SECS`].
    pub end: i64,
    pub shift: Shift,
    /// A symptom carried up the call graph rather than a signal of the fault itself.
    pub propagated: bool,
}

pub const RECOVERY_SECS: i64 = 300;

impl Effect {
    /// Strength in [0, 1] at `t`.
    pub fn intensity(&self, t: i64) -> f64 {
        if t < self.start {
            return 0.0;
        }
        let ramp = self.ramp.max(1) as f64;
        let at = |s: i64| ((s - self.start) as f64 / ramp).min(1.0);
        if t <= self.end {
            at(t)
        } else {
            let fade = 1.0 - (t - self.end) as f64 / RECOVERY_SECS as f64;
            at(self.end) * fade.max(0.0)
        }
    }

    pub fn apply(&self, value: f64, t: i64) -> f64 {
        match self.shift {
            Shift::CountEvery(every) => {
                if t < self.start {
                    value
                } else {
                    let until = t.min(self.end);
                    value + ((until - self.start) / every.max(1) + 1) as f64
                }
            }
            shift => {
                let k = self.intensity(t);
                if k == 0.0 {
                    return value;
                }
                match shift {
                    Shift::Toward(level) => value + (level - value) * k,
                    Shift::Scale(factor) => value * (1.0 + (factor - 1.0) * k),
                    Shift::Add(amount) => value + amount * k,
                    Shift::CountEvery(_) => unreachable!("handled above"),
                }
            }
        }
    }

    /// Last instant at which the effect changes its metric.
    pub fn last_active(&self) -> i64 {
        match self.shift {
            Shift::CountEvery(_) => i64::MAX,
            _ => self.end + RECOVERY_SECS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Info,
    Warn,
    Error,
    Fatal,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

/// One log line as a log store would return it.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Unix milliseconds.
    pub time_ms: i64,
    pub component: usize,
    pub pod: String,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Deploy,
    Config,
    Kubernetes,
    Infra,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Deploy => "deploy",
            EventKind::Config => "config",
            EventKind::Kubernetes => "kubernetes",
            EventKind::Infra => "infra",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        [
            EventKind::Deploy,
            EventKind::Config,
            EventKind::Kubernetes,
            EventKind::Infra,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A change or platform event: deploys, config changes, Kubernetes events.
#[derive(Debug, Clone, Serialize)]
pub struct WorldEvent {
    /// Unix seconds.
    pub time: i64,
    pub component: usize,
    pub kind: EventKind,
    pub reason: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effect_ramps_holds_and_fades() {
        let e = Effect {
            component: 0,
            metric: Metric::Memory,
            start: 1000,
            ramp: 100,
            end: 2000,
            shift: Shift::Toward(1.0),
            propagated: false,
        };
        assert_eq!(e.apply(0.5, 999), 0.5);
        assert!((e.apply(0.5, 1050) - 0.75).abs() < 1e-9);
        assert!((e.apply(0.5, 1500) - 1.0).abs() < 1e-9);
        assert_eq!(e.apply(0.5, 2000 + RECOVERY_SECS + 1), 0.5);
        let restarts = Effect {
            shift: Shift::CountEvery(240),
            metric: Metric::Restarts,
            ..e
        };
        assert_eq!(restarts.apply(0.0, 1000), 1.0);
        assert_eq!(restarts.apply(0.0, 1480), 3.0);
        assert_eq!(restarts.apply(0.0, 9000), 5.0);
    }
}
