//! Faults and incidents: what breaks, where, when, and how its symptoms travel up the call graph
//! to the callers (later and attenuated), plus unrelated background anomalies that happen anyway.

use serde::Serialize;

use crate::rng::SimRng;
use crate::signals::{Effect, EventKind, LogLevel, LogLine, Metric, Shift, WorldEvent};
use crate::topology::{ComponentKind, Topology};

/// The root-cause taxonomy is evalmint's own, so truth and labels speak the same names.
pub use evalmint_model::Category;

/// The kinds of fault the world can suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    OomKill,
    MemoryLeak,
    CpuSaturation,
    BadDeploy,
    ConfigChange,
    ConnectionPoolExhaustion,
    SlowDependency,
    PacketLoss,
    DnsFailure,
    DiskFull,
    CertificateExpiry,
    ConsumerLag,
    TrafficSpike,
    DataCorruption,
    NodeFailure,
}

impl FaultKind {
    pub const ALL: [FaultKind; 15] = [
        FaultKind::OomKill,
        FaultKind::MemoryLeak,
        FaultKind::CpuSaturation,
        FaultKind::BadDeploy,
        FaultKind::ConfigChange,
        FaultKind::ConnectionPoolExhaustion,
        FaultKind::SlowDependency,
        FaultKind::PacketLoss,
        FaultKind::DnsFailure,
        FaultKind::DiskFull,
        FaultKind::CertificateExpiry,
        FaultKind::ConsumerLag,
        FaultKind::TrafficSpike,
        FaultKind::DataCorruption,
        FaultKind::NodeFailure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::OomKill => "oom_kill",
            FaultKind::MemoryLeak => "memory_leak",
            FaultKind::CpuSaturation => "cpu_saturation",
            FaultKind::BadDeploy => "bad_deploy",
            FaultKind::ConfigChange => "config_change",
            FaultKind::ConnectionPoolExhaustion => "connection_pool_exhaustion",
            FaultKind::SlowDependency => "slow_dependency",
            FaultKind::PacketLoss => "packet_loss",
            FaultKind::DnsFailure => "dns_failure",
            FaultKind::DiskFull => "disk_full",
            FaultKind::CertificateExpiry => "certificate_expiry",
            FaultKind::ConsumerLag => "consumer_lag",
            FaultKind::TrafficSpike => "traffic_spike",
            FaultKind::DataCorruption => "data_corruption",
            FaultKind::NodeFailure => "node_failure",
        }
    }

    pub fn category(self) -> Category {
        match self {
            FaultKind::OomKill | FaultKind::MemoryLeak => Category::RESOURCE_MEMORY,
            FaultKind::CpuSaturation => Category::RESOURCE_CPU,
            FaultKind::BadDeploy => Category::BAD_DEPLOY,
            FaultKind::ConfigChange => Category::CONFIG_CHANGE,
            FaultKind::ConnectionPoolExhaustion => Category::RESOURCE_CONNECTION_POOL,
            FaultKind::SlowDependency => Category::DEPENDENCY_FAILURE,
            FaultKind::PacketLoss => Category::NETWORK_LOSS,
            FaultKind::DnsFailure => Category::NETWORK_DNS,
            FaultKind::DiskFull => Category::RESOURCE_DISK,
            FaultKind::CertificateExpiry => Category::CERT_EXPIRY,
            FaultKind::ConsumerLag => Category::QUEUE_BACKLOG,
            FaultKind::TrafficSpike => Category::TRAFFIC_SPIKE,
            FaultKind::DataCorruption => Category::DATA_ISSUE,
            FaultKind::NodeFailure => Category::INFRASTRUCTURE,
        }
    }

    /// How a person would name the mechanism in an RCA.
    pub fn mechanism(self) -> &'static str {
        match self {
            FaultKind::OomKill => "pods OOM-killed",
            FaultKind::MemoryLeak => "memory leak",
            FaultKind::CpuSaturation => "CPU saturation",
            FaultKind::BadDeploy => "bad deploy raising errors",
            FaultKind::ConfigChange => "bad configuration change",
            FaultKind::ConnectionPoolExhaustion => "connection pool exhaustion",
            FaultKind::SlowDependency => "slow responses",
            FaultKind::PacketLoss => "packet loss",
            FaultKind::DnsFailure => "DNS resolution failure",
            FaultKind::DiskFull => "disk full",
            FaultKind::CertificateExpiry => "expired TLS certificate",
            FaultKind::ConsumerLag => "Kafka consumer lag",
            FaultKind::TrafficSpike => "traffic spike",
            FaultKind::DataCorruption => "bad data after a migration",
            FaultKind::NodeFailure => "node failure",
        }
    }

    /// The metric on the root component that a fault of this kind moves the most.
    pub fn signature_metric(self) -> Metric {
        match self {
            FaultKind::OomKill | FaultKind::MemoryLeak => Metric::Memory,
            FaultKind::CpuSaturation => Metric::Cpu,
            FaultKind::BadDeploy | FaultKind::ConfigChange | FaultKind::PacketLoss => {
                Metric::ErrorRatio
            }
            FaultKind::DataCorruption | FaultKind::CertificateExpiry => Metric::ErrorRatio,
            FaultKind::ConnectionPoolExhaustion => Metric::PoolUsage,
            FaultKind::SlowDependency => Metric::LatencyP99,
            FaultKind::DnsFailure | FaultKind::TrafficSpike => Metric::RequestRate,
            FaultKind::DiskFull => Metric::Disk,
            FaultKind::ConsumerLag => Metric::ConsumerLag,
            FaultKind::NodeFailure => Metric::Restarts,
        }
    }

    /// Seconds from onset until callers can notice (some faults take a while to bite).
    fn noticeable_after(self) -> i64 {
        match self {
            FaultKind::OomKill => 480,
            FaultKind::CpuSaturation
            | FaultKind::TrafficSpike
            | FaultKind::ConnectionPoolExhaustion => 120,
            _ => 0,
        }
    }

    fn can_start_on(self, topology: &Topology, component: usize) -> bool {
        let c = &topology.components[component];
        let has_callers = !c.callers.is_empty();
        match self {
            FaultKind::OomKill => matches!(c.kind, ComponentKind::Service | ComponentKind::Redis),
            FaultKind::MemoryLeak
            | FaultKind::BadDeploy
            | FaultKind::ConfigChange
            | FaultKind::PacketLoss
            | FaultKind::NodeFailure => c.kind == ComponentKind::Service,
            FaultKind::CpuSaturation => {
                matches!(c.kind, ComponentKind::Service | ComponentKind::Postgres)
            }
            FaultKind::ConnectionPoolExhaustion
            | FaultKind::DiskFull
            | FaultKind::DataCorruption => c.kind == ComponentKind::Postgres,
            FaultKind::SlowDependency | FaultKind::CertificateExpiry => {
                has_callers && matches!(c.kind, ComponentKind::Service | ComponentKind::Redis)
            }
            FaultKind::DnsFailure => has_callers && c.kind != ComponentKind::Frontend,
            FaultKind::ConsumerLag => c.consumes.is_some(),
            FaultKind::TrafficSpike => {
                matches!(c.kind, ComponentKind::Service | ComponentKind::Frontend)
            }
        }
    }
}

/// Something unrelated that happened near an incident; a red herring for investigators.
#[derive(Debug, Clone, Serialize)]
pub struct BackgroundAnomaly {
    pub component: usize,
    pub description: String,
}

/// One incident: a fault on a root component and everything it caused.
#[derive(Debug, Clone)]
pub struct Incident {
    pub index: u64,
    pub id: String,
    pub kind: FaultKind,
    pub root: usize,
    /// Unix seconds.
    pub onset: i64,
    pub end: i64,
    /// From the root up to the alerted component, each a caller of the previous one.
    pub chain: Vec<usize>,
    pub alerted: usize,
    /// Index into [`Topology::monitors`].
    pub monitor: usize,
    pub fired_at: i64,
    pub effects: Vec<Effect>,
    pub logs: Vec<LogLine>,
    pub events: Vec<WorldEvent>,
    pub background: Vec<BackgroundAnomaly>,
}

/// How a kind's symptoms look on the callers: error level at the first hop, latency factor.
fn caller_symptoms(kind: FaultKind) -> (f64, f64) {
    match kind {
        FaultKind::ConnectionPoolExhaustion => (0.35, 8.0),
        FaultKind::DnsFailure => (0.45, 1.5),
        FaultKind::CertificateExpiry => (0.4, 1.3),
        FaultKind::SlowDependency => (0.2, 12.0),
        FaultKind::DiskFull => (0.25, 2.0),
        FaultKind::PacketLoss => (0.18, 5.0),
        FaultKind::OomKill | FaultKind::NodeFailure => (0.2, 3.0),
        FaultKind::DataCorruption => (0.22, 1.2),
        FaultKind::BadDeploy | FaultKind::ConfigChange => (0.25, 1.5),
        FaultKind::CpuSaturation | FaultKind::TrafficSpike => (0.12, 6.0),
        FaultKind::MemoryLeak => (0.1, 4.0),
        FaultKind::ConsumerLag => (0.08, 2.5),
    }
}

/// Generates incident number `index` of the world `seed`, starting at `onset`.
pub fn generate_incident(seed: u64, index: u64, topology: &Topology, onset: i64) -> Incident {
    let mut rng = SimRng::derive(seed, "incident", index);
    let kind = loop {
        let kind = *rng.pick(&FaultKind::ALL);
        if (0..topology.components.len()).any(|c| kind.can_start_on(topology, c)) {
            break kind;
        }
    };
    let eligible: Vec<usize> = (0..topology.components.len())
        .filter(|&c| kind.can_start_on(topology, c))
        .collect();
    let root = *rng.pick(&eligible);
    let duration = rng.range_i64(20, 60) * 60;
    let end = onset + duration;
    let mut builder = IncidentBuilder {
        topology,
        rng: &mut rng,
        effects: Vec::new(),
        logs: Vec::new(),
        events: Vec::new(),
    };
    builder.root_signals(kind, root, onset, end);

    // Symptoms climb the call graph: each hop later and (past the first) weaker.
    let (first_hop_error, latency_factor) = caller_symptoms(kind);
    let mut affected: Vec<(usize, u32, i64, f64, usize)> = Vec::new(); // component, hops, start, error, parent
    let noticed = onset + kind.noticeable_after();
    let mut frontier: Vec<(usize, i64, f64)> = vec![(root, noticed, first_hop_error / 0.8)];
    let mut seen = vec![false; topology.components.len()];
    seen[root] = true;
    for hops in 1..=5u32 {
        let mut next = Vec::new();
        for &(node, start, error) in &frontier {
            for &caller in &topology.components[node].callers {
                if seen[caller] {
                    continue;
                }
                seen[caller] = true;
                let delay = builder.rng.range_i64(30, 240);
                let attenuation = if hops == 1 {
                    0.8
                } else {
                    builder.rng.range_f64(0.6, 0.9)
                };
                let caller_error = (error * attenuation).min(0.9);
                if caller_error < 0.01 {
                    continue;
                }
                affected.push((caller, hops, start + delay, caller_error, node));
                next.push((caller, start + delay, caller_error));
            }
        }
        frontier = next;
    }
    for &(caller, hops, start, error, parent) in &affected {
        let latency = 1.0 + (latency_factor - 1.0) * 0.75f64.powi(hops as i32 - 1);
        builder.propagated(kind, caller, parent, start, end, error, latency, hops);
    }

    // The alert: usually on the loudest caller far up the graph, sometimes on the root itself.
    let roll = builder.rng.unit();
    let alerted = if affected.is_empty() || roll < 0.18 {
        root
    } else if roll < 0.35 {
        let hop1: Vec<usize> = affected.iter().filter(|a| a.1 == 1).map(|a| a.0).collect();
        *builder.rng.pick(&hop1)
    } else {
        let loudest_top = affected.iter().map(|a| a.1).max().unwrap_or(1);
        let top: Vec<usize> = affected
            .iter()
            .filter(|a| a.1 == loudest_top)
            .map(|a| a.0)
            .collect();
        *builder.rng.pick(&top)
    };
    let mut chain = vec![alerted];
    while let Some(&(_, _, _, _, parent)) = affected
        .iter()
        .find(|a| a.0 == *chain.last().expect("non-empty"))
    {
        chain.push(parent);
    }
    chain.reverse();
    let alerted_start = affected
        .iter()
        .find(|a| a.0 == alerted)
        .map_or(noticed, |a| a.2);
    let monitor_metric = if alerted == root {
        kind.signature_metric()
    } else {
        Metric::ErrorRatio
    };
    let monitor = topology
        .monitors
        .iter()
        .position(|m| m.component == alerted && m.metric == monitor_metric)
        .or_else(|| {
            topology
                .monitors
                .iter()
                .position(|m| m.component == alerted && m.metric == Metric::ErrorRatio)
        })
        .expect("every component has an error-rate monitor");
    let fired_at = alerted_start + builder.rng.range_i64(120, 360);

    // Unrelated things that happen anyway.
    let mut background = Vec::new();
    let anomaly_count = builder.rng.range_i64(0, 2);
    for _ in 0..anomaly_count {
        let candidate = builder.rng.index(topology.components.len());
        if candidate == root || seen[candidate] {
            continue;
        }
        let at = onset + builder.rng.range_i64(-20 * 60, 10 * 60);
        background.push(builder.background_anomaly(candidate, at));
    }
    // Now and then the anomaly is on a sibling dependency of the alerted component: a real confuser.
    if builder.rng.chance(0.3) {
        let siblings: Vec<usize> = topology.components[alerted]
            .calls
            .iter()
            .copied()
            .filter(|&c| c != root && !seen[c])
            .collect();
        if !siblings.is_empty() {
            let sibling = *builder.rng.pick(&siblings);
            let at = onset + builder.rng.range_i64(-10 * 60, 5 * 60);
            background.push(builder.background_anomaly(sibling, at));
        }
    }
    let IncidentBuilder {
        mut effects,
        mut logs,
        mut events,
        ..
    } = builder;
    effects.sort_by_key(|e| (e.start, e.component));
    logs.sort_by_key(|l| (l.time_ms, l.component));
    events.sort_by_key(|e| (e.time, e.component));
    Incident {
        index,
        id: format!("inc-{index:06}"),
        kind,
        root,
        onset,
        end,
        chain,
        alerted,
        monitor,
        fired_at,
        effects,
        logs,
        events,
        background,
    }
}

struct IncidentBuilder<'a> {
    topology: &'a Topology,
    rng: &'a mut SimRng,
    effects: Vec<Effect>,
    logs: Vec<LogLine>,
    events: Vec<WorldEvent>,
}

impl IncidentBuilder<'_> {
    /// An effect of the fault itself on `component`.
    fn cause(
        &mut self,
        component: usize,
        metric: Metric,
        start: i64,
        ramp: i64,
        end: i64,
        shift: Shift,
    ) {
        self.effects.push(Effect {
            component,
            metric,
            start,
            ramp,
            end,
            shift,
            propagated: false,
        });
    }

    /// A symptom carried up the call graph to `component`.
    fn symptom(
        &mut self,
        component: usize,
        metric: Metric,
        start: i64,
        ramp: i64,
        end: i64,
        shift: Shift,
    ) {
        self.effects.push(Effect {
            component,
            metric,
            start,
            ramp,
            end,
            shift,
            propagated: true,
        });
    }

    /// `count` log lines spread over [start, end) on the component's pods.
    fn logs(
        &mut self,
        component: usize,
        start: i64,
        end: i64,
        count: usize,
        level: LogLevel,
        messages: &[String],
    ) {
        let pods = &self.topology.components[component].pods;
        for _ in 0..count {
            let time_ms = start * 1000 + self.rng.range_i64(0, ((end - start).max(1)) * 1000 - 1);
            let pod = self.rng.pick(pods).name.clone();
            let message = self.rng.pick(messages).clone();
            self.logs.push(LogLine {
                time_ms,
                component,
                pod,
                level,
                message,
            });
        }
    }

    fn event(
        &mut self,
        time: i64,
        component: usize,
        kind: EventKind,
        reason: &str,
        message: String,
    ) {
        self.events.push(WorldEvent {
            time,
            component,
            kind,
            reason: reason.to_string(),
            message,
        });
    }

    fn version(&mut self) -> String {
        format!(
            "v{}.{}.{}",
            self.rng.range_i64(1, 4),
            self.rng.range_i64(0, 40),
            self.rng.range_i64(0, 12)
        )
    }

    fn commit(&mut self) -> String {
        format!("{:07x}", self.rng.next_u64() & 0xfff_ffff)
    }

    fn root_signals(&mut self, kind: FaultKind, root: usize, onset: i64, end: i64) {
        let t = self.topology;
        let name = t.components[root].name.clone();
        let pod = t.components[root].pods[0].name.clone();
        let host = t.components[root].pods[0].host.clone();
        let java = matches!(t.components[root].technology, "java" | "kotlin");
        let s = |x: &str| x.to_string();
        match kind {
            FaultKind::OomKill => {
                self.cause(root, Metric::Memory, onset, 480, end, Shift::Toward(0.99));
                self.cause(
                    root,
                    Metric::Restarts,
                    onset + 480,
                    1,
                    end,
                    Shift::CountEvery(240),
                );
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset + 480,
                    60,
                    end,
                    Shift::Toward(0.08),
                );
                let messages = if java {
                    vec![
                        s("java.lang.OutOfMemoryError: Java heap space"),
                        s(
                            "Exception in thread \"http-nio-8080-exec-12\" java.lang.OutOfMemoryError: Java heap space",
                        ),
                    ]
                } else {
                    vec![
                        s("fatal error: runtime: out of memory"),
                        s("runtime: out of memory: cannot allocate 67108864-byte block"),
                    ]
                };
                self.logs(root, onset + 420, end, 12, LogLevel::Fatal, &messages);
                for k in 0..3 {
                    let at = onset + 480 + k * 240;
                    let pod = t.components[root].pods[k as usize % t.components[root].pods.len()]
                        .name
                        .clone();
                    self.event(
                        at,
                        root,
                        EventKind::Kubernetes,
                        "OOMKilled",
                        format!("Container {name} in pod {pod} was OOMKilled (exit code 137)"),
                    );
                    self.event(
                        at + 30,
                        root,
                        EventKind::Kubernetes,
                        "BackOff",
                        format!("Back-off restarting failed container {name} in pod {pod}"),
                    );
                }
            }
            FaultKind::MemoryLeak => {
                // Memory has been creeping up since a deploy; the onset is when it starts to hurt.
                self.cause(
                    root,
                    Metric::Memory,
                    onset - 40 * 60,
                    45 * 60,
                    end,
                    Shift::Toward(0.97),
                );
                self.cause(root, Metric::LatencyP99, onset, 300, end, Shift::Scale(3.5));
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset,
                    300,
                    end,
                    Shift::Toward(0.03),
                );
                let deploy_at = onset - self.rng.range_i64(60, 180) * 60;
                let version = self.version();
                let commit = self.commit();
                self.event(
                    deploy_at,
                    root,
                    EventKind::Deploy,
                    "Deployed",
                    format!("deployed {name} {version} (commit {commit})"),
                );
                self.logs(
                    root,
                    onset,
                    end,
                    10,
                    LogLevel::Warn,
                    &[
                        s("GC pause 1840ms (G1 Evacuation Pause) heap 3890M->3870M(4096M)"),
                        s("heap usage 94% after full GC"),
                    ],
                );
                self.logs(
                    root,
                    end - (end - onset) / 4,
                    end,
                    4,
                    LogLevel::Error,
                    &[s("java.lang.OutOfMemoryError: GC overhead limit exceeded")],
                );
            }
            FaultKind::CpuSaturation => {
                self.cause(root, Metric::Cpu, onset, 180, end, Shift::Toward(0.98));
                self.cause(
                    root,
                    Metric::LatencyP99,
                    onset + 60,
                    180,
                    end,
                    Shift::Scale(4.0),
                );
                self.cause(
                    root,
                    Metric::LatencyP50,
                    onset + 60,
                    180,
                    end,
                    Shift::Scale(2.5),
                );
                self.logs(
                    root,
                    onset + 120,
                    end,
                    10,
                    LogLevel::Warn,
                    &[
                        s("request timed out after 5000ms while waiting for a worker thread"),
                        s("thread pool queue full (512 tasks), rejecting request"),
                        s("CPU throttled: 87% of periods throttled in the last minute"),
                    ],
                );
                self.event(
                    onset + 240,
                    root,
                    EventKind::Kubernetes,
                    "ScalingLimited",
                    format!(
                        "HorizontalPodAutoscaler {name}: desired replicas above max replicas (6)"
                    ),
                );
            }
            FaultKind::BadDeploy => {
                let version = self.version();
                let commit = self.commit();
                self.event(
                    onset - 30,
                    root,
                    EventKind::Deploy,
                    "Deployed",
                    format!("deployed {name} {version} (commit {commit})"),
                );
                let level = self.rng.range_f64(0.2, 0.45);
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset,
                    60,
                    end,
                    Shift::Toward(level),
                );
                let messages = if java {
                    vec![
                        format!(
                            "java.lang.NullPointerException: Cannot invoke \"Order.getId()\" because \"order\" is null at com.acme.{}.Handler.handle",
                            name.replace('-', "")
                        ),
                        s("500 Internal Server Error: unhandled exception in request handler"),
                    ]
                } else {
                    vec![
                        s(
                            "panic: runtime error: invalid memory address or nil pointer dereference",
                        ),
                        s("500 Internal Server Error: unhandled exception in request handler"),
                    ]
                };
                self.logs(root, onset, end, 15, LogLevel::Error, &messages);
            }
            FaultKind::ConfigChange => {
                let key = self
                    .rng
                    .pick(&[
                        "RETRY_BUDGET",
                        "UPSTREAM_TIMEOUT_MS",
                        "MAX_BATCH_SIZE",
                        "FEATURE_NEW_PRICING",
                        "CACHE_TTL_SECONDS",
                    ])
                    .to_string();
                self.event(
                    onset - 20,
                    root,
                    EventKind::Config,
                    "ConfigMapUpdated",
                    format!("configmap {name}-config updated: {key} changed"),
                );
                let level = self.rng.range_f64(0.15, 0.4);
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset,
                    60,
                    end,
                    Shift::Toward(level),
                );
                self.logs(
                    root,
                    onset,
                    end,
                    12,
                    LogLevel::Error,
                    &[
                        format!("invalid configuration value for {key}: rejecting requests"),
                        format!("config reload applied: {key}; request validation failed"),
                    ],
                );
            }
            FaultKind::ConnectionPoolExhaustion => {
                self.cause(root, Metric::PoolUsage, onset, 240, end, Shift::Toward(1.0));
                self.cause(
                    root,
                    Metric::LatencyP99,
                    onset + 60,
                    180,
                    end,
                    Shift::Scale(6.0),
                );
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset + 120,
                    120,
                    end,
                    Shift::Toward(0.05),
                );
                self.logs(root, onset + 180, end, 14, LogLevel::Fatal, &[
                    s("FATAL: remaining connection slots are reserved for non-replication superuser connections"),
                    s("FATAL: sorry, too many clients already"),
                ]);
            }
            FaultKind::SlowDependency => {
                let factor = self.rng.range_f64(10.0, 25.0);
                self.cause(
                    root,
                    Metric::LatencyP99,
                    onset,
                    120,
                    end,
                    Shift::Scale(factor),
                );
                self.cause(
                    root,
                    Metric::LatencyP50,
                    onset,
                    120,
                    end,
                    Shift::Scale(factor / 2.5),
                );
                self.logs(
                    root,
                    onset + 60,
                    end,
                    12,
                    LogLevel::Warn,
                    &[
                        s("slow request: POST /v1/resolve took 8423ms"),
                        s("slow request: GET /v1/items took 6120ms (lock wait 5800ms)"),
                    ],
                );
            }
            FaultKind::PacketLoss => {
                let level = self.rng.range_f64(0.06, 0.14);
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset,
                    60,
                    end,
                    Shift::Toward(level),
                );
                self.cause(root, Metric::LatencyP99, onset, 60, end, Shift::Scale(4.0));
                self.logs(root, onset, end, 12, LogLevel::Error, &[
                    s("read tcp 10.0.3.17:8080->10.0.5.2:43122: read: connection reset by peer"),
                    s("write tcp 10.0.3.17:8080->10.0.7.9:51840: write: broken pipe"),
                ]);
                self.event(
                    onset + 60,
                    root,
                    EventKind::Infra,
                    "PacketLoss",
                    format!("node {host}: eth0 retransmits 6.2% (pod {pod})"),
                );
            }
            FaultKind::DnsFailure => {
                self.cause(
                    root,
                    Metric::RequestRate,
                    onset,
                    60,
                    end,
                    Shift::Scale(0.05),
                );
                self.event(onset - 10, root, EventKind::Config, "DNSRecordChanged", format!("DNS record {name}.prod.svc.cluster.local removed from zone during service migration"));
                self.logs(
                    root,
                    onset,
                    end,
                    3,
                    LogLevel::Warn,
                    &[s("no incoming requests for 60s; health check only traffic")],
                );
            }
            FaultKind::DiskFull => {
                self.cause(
                    root,
                    Metric::Disk,
                    onset - 600,
                    600,
                    end,
                    Shift::Toward(1.0),
                );
                self.cause(root, Metric::ErrorRatio, onset, 60, end, Shift::Toward(0.2));
                self.logs(root, onset, end, 12, LogLevel::Fatal, &[
                    s("PANIC: could not write to file \"pg_wal/xlogtemp.1234\": No space left on device"),
                    s("ERROR: could not extend file \"base/16384/24576\": No space left on device"),
                ]);
                self.event(
                    onset - 120,
                    root,
                    EventKind::Kubernetes,
                    "VolumeNearlyFull",
                    format!("PersistentVolumeClaim data-{pod} usage above 95%"),
                );
            }
            FaultKind::CertificateExpiry => {
                self.cause(root, Metric::RequestRate, onset, 30, end, Shift::Scale(0.3));
                self.cause(root, Metric::ErrorRatio, onset, 30, end, Shift::Toward(0.3));
                self.logs(root, onset, end, 12, LogLevel::Error, &[s("http: TLS handshake error from 10.0.4.21:53122: remote error: tls: bad certificate")]);
                self.event(
                    onset,
                    root,
                    EventKind::Infra,
                    "CertificateExpired",
                    format!("certificate {name}-tls expired (notAfter reached)"),
                );
            }
            FaultKind::ConsumerLag => {
                let queue = &t.queues[t.components[root]
                    .consumes
                    .expect("consumer lag needs a consumer")];
                let (topic, group) = (queue.topic.clone(), queue.consumer_group.clone());
                let lag = self.rng.range_f64(50_000.0, 250_000.0);
                self.cause(
                    root,
                    Metric::ConsumerLag,
                    onset,
                    end - onset,
                    end,
                    Shift::Add(lag),
                );
                self.cause(root, Metric::Cpu, onset, 120, end, Shift::Toward(0.95));
                self.logs(root, onset, end, 10, LogLevel::Warn, &[
                    format!("consumer group {group} is behind on {topic} partition 3: lag 48213"),
                    format!("Rebalancing consumer group {group}: member left the group (max.poll.interval.ms exceeded)"),
                ]);
                self.event(
                    onset + 60,
                    root,
                    EventKind::Kubernetes,
                    "ConsumerRebalance",
                    format!("consumer group {group} on {topic} rebalanced 4 times in 5m"),
                );
            }
            FaultKind::TrafficSpike => {
                let factor = self.rng.range_f64(4.0, 8.0);
                self.cause(
                    root,
                    Metric::RequestRate,
                    onset,
                    120,
                    end,
                    Shift::Scale(factor),
                );
                self.cause(root, Metric::Cpu, onset + 60, 120, end, Shift::Toward(0.95));
                self.cause(
                    root,
                    Metric::LatencyP99,
                    onset + 60,
                    120,
                    end,
                    Shift::Scale(3.0),
                );
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset + 120,
                    120,
                    end,
                    Shift::Toward(0.06),
                );
                self.logs(
                    root,
                    onset,
                    end,
                    12,
                    LogLevel::Warn,
                    &[
                        s("rate limit exceeded for client crawler-7f3a: 429 Too Many Requests"),
                        s("request rate 5.8x above 7-day baseline"),
                    ],
                );
                self.event(
                    onset + 180,
                    root,
                    EventKind::Kubernetes,
                    "SuccessfulRescale",
                    format!("HorizontalPodAutoscaler {name}: scaled from 3 to 10 replicas"),
                );
            }
            FaultKind::DataCorruption => {
                self.event(
                    onset - 60,
                    root,
                    EventKind::Deploy,
                    "MigrationApplied",
                    format!("schema migration 0042_backfill_order_refs applied to {name}"),
                );
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset,
                    60,
                    end,
                    Shift::Toward(0.12),
                );
                self.logs(
                    root,
                    onset,
                    end,
                    12,
                    LogLevel::Error,
                    &[
                        s("ERROR: invalid input syntax for type uuid: \"\""),
                        s("ERROR: duplicate key value violates unique constraint \"orders_pkey\""),
                    ],
                );
            }
            FaultKind::NodeFailure => {
                self.event(
                    onset,
                    root,
                    EventKind::Kubernetes,
                    "NodeNotReady",
                    format!("Node {host} status is now: NodeNotReady"),
                );
                self.event(
                    onset + 60,
                    root,
                    EventKind::Kubernetes,
                    "Evicted",
                    format!("Pod {pod} evicted: node {host} is not ready"),
                );
                self.cause(
                    root,
                    Metric::Restarts,
                    onset + 60,
                    1,
                    end,
                    Shift::CountEvery(300),
                );
                self.cause(
                    root,
                    Metric::ErrorRatio,
                    onset,
                    60,
                    end,
                    Shift::Toward(0.15),
                );
                self.cause(root, Metric::RequestRate, onset, 60, end, Shift::Scale(0.5));
                self.logs(root, onset, end, 8, LogLevel::Error, &[
                    format!("dial tcp 10.0.3.17:8080: connect: connection refused (pod {pod})"),
                    s("readiness probe failed: Get \"http://10.0.3.17:8080/ready\": context deadline exceeded"),
                ]);
            }
        }
    }

    /// Symptoms on a caller `hops` away from the root, reached through `callee`.
    #[allow(clippy::too_many_arguments)]
    fn propagated(
        &mut self,
        kind: FaultKind,
        caller: usize,
        callee: usize,
        start: i64,
        end: i64,
        error: f64,
        latency: f64,
        hops: u32,
    ) {
        let callee_name = self.topology.components[callee].name.clone();
        self.symptom(
            caller,
            Metric::ErrorRatio,
            start,
            90,
            end,
            Shift::Toward(error),
        );
        self.symptom(
            caller,
            Metric::LatencyP99,
            start,
            90,
            end,
            Shift::Scale(latency),
        );
        self.symptom(
            caller,
            Metric::LatencyP50,
            start,
            90,
            end,
            Shift::Scale(1.0 + (latency - 1.0) / 3.0),
        );
        let s = |x: String| x;
        let messages = if hops == 1 {
            match kind {
                FaultKind::ConnectionPoolExhaustion => vec![
                    s("HikariPool-1 - Connection is not available, request timed out after 30000ms.".into()),
                    format!("org.postgresql.util.PSQLException: FATAL: remaining connection slots are reserved (host {callee_name})"),
                ],
                FaultKind::DnsFailure => vec![format!("dial tcp: lookup {callee_name} on 10.96.0.10:53: no such host")],
                FaultKind::CertificateExpiry => vec![format!(
                    "Get \"https://{callee_name}:8443/v1/status\": x509: certificate has expired or is not yet valid"
                )],
                FaultKind::SlowDependency | FaultKind::CpuSaturation | FaultKind::TrafficSpike | FaultKind::MemoryLeak => {
                    vec![format!("upstream request timeout calling {callee_name}: context deadline exceeded")]
                }
                FaultKind::DiskFull | FaultKind::DataCorruption => {
                    vec![format!("query against {callee_name} failed: ERROR: could not complete statement")]
                }
                _ => vec![
                    format!("upstream {callee_name} returned 503 Service Unavailable"),
                    format!("call to {callee_name} failed: connection refused"),
                ],
            }
        } else {
            vec![
                format!("upstream {callee_name} returned 502 Bad Gateway"),
                format!("request to {callee_name} failed after 3 retries"),
            ]
        };
        let count = (error * 60.0).round().clamp(2.0, 30.0) as usize;
        self.logs(caller, start, end, count, LogLevel::Error, &messages);
    }

    fn background_anomaly(&mut self, component: usize, at: i64) -> BackgroundAnomaly {
        let name = self.topology.components[component].name.clone();
        let description = match self.rng.index(4) {
            0 => {
                let version = self.version();
                let commit = self.commit();
                self.event(
                    at,
                    component,
                    EventKind::Deploy,
                    "Deployed",
                    format!("deployed {name} {version} (commit {commit})"),
                );
                format!("routine deploy of {name} {version}")
            }
            1 => {
                self.cause(
                    component,
                    Metric::LatencyP99,
                    at,
                    60,
                    at + 600,
                    Shift::Scale(1.8),
                );
                self.logs(
                    component,
                    at,
                    at + 600,
                    4,
                    LogLevel::Warn,
                    &["slow query: 1240ms SELECT ... FROM sessions".to_string()],
                );
                format!("brief latency bump on {name}")
            }
            2 => {
                self.logs(
                    component,
                    at,
                    at + 300,
                    6,
                    LogLevel::Error,
                    &[
                        "failed to refresh feature flags: 404 Not Found (will retry)".to_string(),
                        "deprecated API called by client mobile-ios/5.2".to_string(),
                    ],
                );
                format!("harmless error log burst on {name}")
            }
            _ => {
                self.event(
                    at,
                    component,
                    EventKind::Config,
                    "ConfigMapUpdated",
                    format!("configmap {name}-config updated: LOG_LEVEL changed"),
                );
                format!("harmless config change on {name}")
            }
        };
        BackgroundAnomaly {
            component,
            description,
        }
    }
}
