//! The simulated production estate: services, datastores, queues, hosts, pods, teams, monitors and
//! the call graph (a DAG from frontends down to datastores), all derived from a seed.

use serde::Serialize;

use crate::rng::{SimRng, hash_str};

/// What a component is; decides which metrics it has and which faults can start on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    Frontend,
    Service,
    Postgres,
    Redis,
}

impl ComponentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentKind::Frontend => "frontend",
            ComponentKind::Service => "service",
            ComponentKind::Postgres => "postgres",
            ComponentKind::Redis => "redis",
        }
    }

    pub fn is_datastore(self) -> bool {
        matches!(self, ComponentKind::Postgres | ComponentKind::Redis)
    }
}

/// A running instance of a component, placed on a host.
#[derive(Debug, Clone, Serialize)]
pub struct Pod {
    pub name: String,
    pub host: String,
}

/// A node of the call graph.
#[derive(Debug, Clone, Serialize)]
pub struct Component {
    pub name: String,
    pub kind: ComponentKind,
    pub team: String,
    pub technology: &'static str,
    /// Distance from the frontends; callees always have a larger layer (the graph is a DAG).
    pub layer: u32,
    /// Indices of the components this one calls.
    pub calls: Vec<usize>,
    /// Indices of the components that call this one.
    pub callers: Vec<usize>,
    pub pods: Vec<Pod>,
    /// Index into [`Topology::queues`] when this service consumes a Kafka topic.
    pub consumes: Option<usize>,
}

/// A Kafka topic with one producer and one consumer group.
#[derive(Debug, Clone, Serialize)]
pub struct Queue {
    pub topic: String,
    pub producer: usize,
    pub consumer: usize,
    pub consumer_group: String,
}

/// An alerting rule on one metric of one component.
#[derive(Debug, Clone, Serialize)]
pub struct Monitor {
    pub name: String,
    pub component: usize,
    pub metric: crate::signals::Metric,
    pub threshold: f64,
    pub description: String,
}

/// The whole estate.
#[derive(Debug, Clone)]
pub struct Topology {
    pub components: Vec<Component>,
    pub hosts: Vec<String>,
    pub teams: Vec<String>,
    pub queues: Vec<Queue>,
    pub monitors: Vec<Monitor>,
}

const FRONTENDS: [&str; 5] = [
    "web-frontend",
    "mobile-bff",
    "api-gateway",
    "partner-api",
    "admin-portal",
];

/// Business domains with the team that owns them.
const DOMAINS: [(&str, &str); 48] = [
    ("checkout", "payments"),
    ("payments", "payments"),
    ("cart", "shopping"),
    ("orders", "fulfillment"),
    ("inventory", "fulfillment"),
    ("catalog", "shopping"),
    ("search", "discovery"),
    ("recommendations", "discovery"),
    ("pricing", "shopping"),
    ("shipping", "fulfillment"),
    ("fulfillment", "fulfillment"),
    ("accounts", "identity"),
    ("auth", "identity"),
    ("notifications", "growth"),
    ("reviews", "discovery"),
    ("promotions", "growth"),
    ("loyalty", "growth"),
    ("tax", "payments"),
    ("fraud-detection", "risk"),
    ("ledger", "payments"),
    ("billing", "payments"),
    ("invoices", "payments"),
    ("refunds", "payments"),
    ("subscriptions", "growth"),
    ("media", "platform"),
    ("geo", "platform"),
    ("session", "identity"),
    ("profile", "identity"),
    ("wishlist", "shopping"),
    ("returns", "fulfillment"),
    ("warehouse", "fulfillment"),
    ("delivery-tracking", "fulfillment"),
    ("email", "growth"),
    ("sms", "growth"),
    ("feature-flags", "platform"),
    ("audit", "risk"),
    ("kyc", "risk"),
    ("currency", "payments"),
    ("product-images", "platform"),
    ("sellers", "marketplace"),
    ("payouts", "marketplace"),
    ("listings", "marketplace"),
    ("ads", "growth"),
    ("analytics-ingest", "data"),
    ("experiments", "data"),
    ("support-tickets", "support"),
    ("chat", "support"),
    ("rate-limiter", "platform"),
];

const SUFFIXES: [&str; 8] = [
    "api",
    "worker",
    "sync",
    "indexer",
    "scheduler",
    "gateway",
    "cache",
    "exporter",
];
const SERVICE_TECH: [&str; 5] = ["java", "go", "python", "node", "kotlin"];

impl Topology {
    /// The number of services a seed chooses: log-uniform between 10 and 500.
    pub fn services_for_seed(seed: u64) -> usize {
        let mut rng = SimRng::derive(seed, "topology.size", 0);
        let log_low = 10f64.ln();
        let log_high = 500f64.ln();
        (rng.range_f64(log_low, log_high).exp().round() as usize).clamp(10, 500)
    }

    /// Builds an estate of `services` services (clamped to 10..=500) from `seed`.
    pub fn generate(seed: u64, services: usize) -> Topology {
        let services = services.clamp(10, 500);
        let mut rng = SimRng::derive(seed, "topology", services as u64);
        let names = service_names(&mut rng, services);

        let frontend_count = (services / 25).clamp(1, FRONTENDS.len());
        let depth = match services {
            0..=20 => 3,
            21..=80 => 4,
            81..=250 => 5,
            _ => 6,
        };
        let host_count = (services / 4).max(3);
        let hosts: Vec<String> = (0..host_count)
            .map(|i| format!("ip-10-{}-{}-{}", rng.range_i64(0, 3), i / 200, i % 200 + 10))
            .collect();

        let mut components: Vec<Component> = Vec::new();
        for (i, (name, team)) in names.into_iter().enumerate() {
            let (kind, layer) = if i < frontend_count {
                (ComponentKind::Frontend, 0)
            } else {
                (ComponentKind::Service, 1 + rng.index(depth) as u32)
            };
            components.push(Component {
                name,
                kind,
                team,
                technology: if kind == ComponentKind::Frontend {
                    "node"
                } else {
                    SERVICE_TECH[rng.index(SERVICE_TECH.len())]
                },
                layer,
                calls: Vec::new(),
                callers: Vec::new(),
                pods: Vec::new(),
                consumes: None,
            });
        }
        // Layers must be non-empty from 1 up, so every service can get a caller one layer up.
        let mut by_layer: Vec<Vec<usize>> = vec![Vec::new(); depth + 1];
        for (i, c) in components.iter().enumerate() {
            by_layer[c.layer as usize].push(i);
        }
        for layer in 1..=depth {
            if by_layer[layer].is_empty() {
                // Borrow a service from the most crowded layer.
                let (donor, _) = by_layer
                    .iter()
                    .enumerate()
                    .skip(1)
                    .max_by_key(|(_, v)| v.len())
                    .expect("depth >= 1");
                let moved = by_layer[donor]
                    .pop()
                    .expect("the largest layer is not empty");
                components[moved].layer = layer as u32;
                by_layer[layer].push(moved);
            }
        }
        // Every service gets a caller from the layer above; then a few extra edges downwards.
        let mut edges: Vec<(usize, usize)> = Vec::new();
        for layer in 1..=depth {
            for &callee in &by_layer[layer] {
                let caller = *rng.pick(&by_layer[layer - 1]);
                edges.push((caller, callee));
            }
        }
        for layer in 0..depth {
            for &caller in &by_layer[layer] {
                let extra = rng.range_i64(0, 2);
                for _ in 0..extra {
                    let target_layer = rng.range_i64(layer as i64 + 1, depth as i64) as usize;
                    let callee = *rng.pick(&by_layer[target_layer]);
                    edges.push((caller, callee));
                }
            }
        }
        // Datastores: the deepest services own them; at least one Postgres and one Redis.
        let service_count = components.len();
        let mut owners: Vec<usize> = (frontend_count..service_count).collect();
        owners.sort_by_key(|&i| std::cmp::Reverse(components[i].layer));
        let mut postgres_owners = Vec::new();
        let mut redis_owners = Vec::new();
        for (rank, &owner) in owners.iter().enumerate() {
            if rank == 0 || rng.chance(0.3) {
                postgres_owners.push(owner);
            }
            if rank == 1 || rng.chance(0.15) {
                redis_owners.push(owner);
            }
        }
        for (owners, kind, suffix, technology) in [
            (
                &postgres_owners,
                ComponentKind::Postgres,
                "db",
                "postgres 15",
            ),
            (&redis_owners, ComponentKind::Redis, "redis", "redis 7"),
        ] {
            for &owner in owners {
                let index = components.len();
                let name = format!("{}-{}", components[owner].name, suffix);
                components.push(Component {
                    name,
                    kind,
                    team: components[owner].team.clone(),
                    technology,
                    layer: depth as u32 + 1,
                    calls: Vec::new(),
                    callers: Vec::new(),
                    pods: Vec::new(),
                    consumes: None,
                });
                edges.push((owner, index));
                if rng.chance(0.1) {
                    let other = frontend_count + rng.index(service_count - frontend_count);
                    edges.push((other, index));
                }
            }
        }
        edges.sort_unstable();
        edges.dedup();
        for (caller, callee) in edges {
            components[caller].calls.push(callee);
            components[callee].callers.push(caller);
        }
        // Pods on hosts.
        for component in &mut components {
            let pod_count = if component.kind.is_datastore() {
                2
            } else {
                rng.range_i64(2, 5) as usize
            };
            let replica_set = format!("{:08x}", rng.next_u64() as u32)[..7].to_string();
            for ordinal in 0..pod_count {
                let name = if component.kind.is_datastore() {
                    format!("{}-{}", component.name, ordinal)
                } else {
                    format!(
                        "{}-{}-{}",
                        component.name,
                        replica_set,
                        &format!("{:05x}", rng.next_u64() as u32 & 0xfffff)
                    )
                };
                let host = rng.pick(&hosts).clone();
                component.pods.push(Pod { name, host });
            }
        }
        // Kafka topics: a producer in a shallower layer, a consumer service anywhere deeper.
        let mut queues = Vec::new();
        let queue_count = (service_count / 12).max(1);
        let mut consumers_taken = std::collections::HashSet::new();
        for _ in 0..queue_count * 3 {
            if queues.len() == queue_count {
                break;
            }
            let producer = frontend_count + rng.index(service_count - frontend_count);
            let consumer = frontend_count + rng.index(service_count - frontend_count);
            if producer == consumer || consumers_taken.contains(&consumer) {
                continue;
            }
            let domain = components[producer]
                .name
                .split('-')
                .next()
                .unwrap_or("events")
                .to_string();
            let topic = format!("{domain}-events");
            if queues.iter().any(|q: &Queue| q.topic == topic) {
                continue;
            }
            consumers_taken.insert(consumer);
            let consumer_group = format!("{}-{}", components[consumer].name, domain);
            components[consumer].consumes = Some(queues.len());
            queues.push(Queue {
                topic,
                producer,
                consumer,
                consumer_group,
            });
        }
        let mut teams: Vec<String> = components.iter().map(|c| c.team.clone()).collect();
        teams.sort();
        teams.dedup();
        let mut topology = Topology {
            components,
            hosts,
            teams,
            queues,
            monitors: Vec::new(),
        };
        topology.monitors = default_monitors(&topology);
        topology
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.components.iter().position(|c| c.name == name)
    }

    /// Every component that (transitively) calls `component`, with its distance in hops.
    pub fn ancestors(&self, component: usize) -> Vec<(usize, u32)> {
        let mut seen = vec![false; self.components.len()];
        let mut out = Vec::new();
        let mut frontier = vec![component];
        seen[component] = true;
        let mut hops = 0;
        while !frontier.is_empty() {
            hops += 1;
            let mut next = Vec::new();
            for &c in &frontier {
                for &caller in &self.components[c].callers {
                    if !seen[caller] {
                        seen[caller] = true;
                        out.push((caller, hops));
                        next.push(caller);
                    }
                }
            }
            frontier = next;
        }
        out
    }

    /// Every component reachable from `component` through calls, up to `max_hops`.
    pub fn descendants(&self, component: usize, max_hops: u32) -> Vec<usize> {
        let mut seen = vec![false; self.components.len()];
        let mut out = Vec::new();
        let mut frontier = vec![component];
        seen[component] = true;
        for _ in 0..max_hops {
            let mut next = Vec::new();
            for &c in &frontier {
                for &callee in &self.components[c].calls {
                    if !seen[callee] {
                        seen[callee] = true;
                        out.push(callee);
                        next.push(callee);
                    }
                }
            }
            frontier = next;
        }
        out
    }

    pub fn is_ancestor(&self, candidate: usize, of: usize) -> bool {
        self.ancestors(of).iter().any(|(c, _)| *c == candidate)
    }
}

fn service_names(rng: &mut SimRng, count: usize) -> Vec<(String, String)> {
    let frontend_count = (count / 25).clamp(1, FRONTENDS.len());
    let mut out: Vec<(String, String)> = FRONTENDS[..frontend_count]
        .iter()
        .map(|n| (n.to_string(), "web".to_string()))
        .collect();
    let mut domains: Vec<(&str, &str)> = DOMAINS.to_vec();
    rng.shuffle(&mut domains);
    let mut round = 0usize;
    while out.len() < count {
        for (domain, team) in &domains {
            if out.len() == count {
                break;
            }
            let name = match round {
                0 => domain.to_string(),
                r => {
                    let suffix = SUFFIXES[(r - 1 + hash_str(domain) as usize) % SUFFIXES.len()];
                    if r <= SUFFIXES.len() {
                        format!("{domain}-{suffix}")
                    } else {
                        format!("{domain}-{suffix}-{r}")
                    }
                }
            };
            out.push((name, team.to_string()));
        }
        round += 1;
    }
    out
}

fn default_monitors(topology: &Topology) -> Vec<Monitor> {
    use crate::signals::Metric;
    let mut monitors = Vec::new();
    for (index, c) in topology.components.iter().enumerate() {
        let mut add = |suffix: &str, metric: Metric, threshold: f64, description: String| {
            monitors.push(Monitor {
                name: format!("{}-{}", c.name, suffix),
                component: index,
                metric,
                threshold,
                description,
            })
        };
        add(
            "error-rate",
            Metric::ErrorRatio,
            0.05,
            format!("{} error rate above 5%", c.name),
        );
        add(
            "p99-latency",
            Metric::LatencyP99,
            1.0,
            format!("{} p99 latency above 1s", c.name),
        );
        match c.kind {
            ComponentKind::Postgres | ComponentKind::Redis => {
                add(
                    "connections",
                    Metric::PoolUsage,
                    0.9,
                    format!("{} connection use above 90%", c.name),
                );
                add(
                    "disk",
                    Metric::Disk,
                    0.9,
                    format!("{} disk use above 90%", c.name),
                );
                add(
                    "memory",
                    Metric::Memory,
                    0.9,
                    format!("{} memory above 90% of limit", c.name),
                );
            }
            ComponentKind::Service | ComponentKind::Frontend => {
                add(
                    "memory",
                    Metric::Memory,
                    0.9,
                    format!("{} memory above 90% of limit", c.name),
                );
                add("cpu", Metric::Cpu, 0.9, format!("{} CPU above 90%", c.name));
            }
        }
        if let Some(queue) = c.consumes {
            let group = &topology.queues[queue].consumer_group;
            add(
                "consumer-lag",
                Metric::ConsumerLag,
                10_000.0,
                format!("{group} lag above 10k messages"),
            );
        }
    }
    monitors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_graph_is_a_dag_from_frontends_with_unique_names() {
        for seed in 0..40 {
            let services = Topology::services_for_seed(seed);
            assert!((10..=500).contains(&services));
            let t = Topology::generate(seed, services);
            let mut names: Vec<&str> = t.components.iter().map(|c| c.name.as_str()).collect();
            names.sort();
            names.dedup();
            assert_eq!(
                names.len(),
                t.components.len(),
                "seed {seed}: duplicate names"
            );
            for c in &t.components {
                for &callee in &c.calls {
                    assert!(
                        t.components[callee].layer > c.layer,
                        "seed {seed}: edge goes up"
                    );
                }
                if c.kind != ComponentKind::Frontend {
                    assert!(
                        !c.callers.is_empty(),
                        "seed {seed}: {} is unreachable",
                        c.name
                    );
                }
            }
            assert!(
                t.components
                    .iter()
                    .any(|c| c.kind == ComponentKind::Postgres)
            );
            assert!(t.components.iter().any(|c| c.kind == ComponentKind::Redis));
            assert!(!t.queues.is_empty());
        }
    }

    #[test]
    fn same_seed_same_topology() {
        let a = Topology::generate(9, 120);
        let b = Topology::generate(9, 120);
        let names = |t: &Topology| {
            t.components
                .iter()
                .map(|c| (c.name.clone(), c.calls.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&a), names(&b));
        assert_eq!(
            a.components.len()
                - a.components
                    .iter()
                    .filter(|c| c.kind.is_datastore())
                    .count(),
            120
        );
    }
}
