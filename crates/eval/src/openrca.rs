//! The OpenRCA-compatible grader: exact component and reason, a 60-second tolerance on the
//! occurrence time, the best permutation over several failures, and a score that is the share
//! of scoring points met. Which of time, component and reason count is the task's (`task_1` …
//! `task_7`).

use serde_json::Value;

/// One failure: what a prediction says or what the ground truth records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    pub datetime: Option<String>,
    pub component: Option<String>,
    pub reason: Option<String>,
}

/// Which fields a task scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scored {
    pub time: bool,
    pub component: bool,
    pub reason: bool,
}

impl Scored {
    /// The fields of OpenRCA's `task_1` … `task_7`.
    pub fn for_task(task: &str) -> Option<Scored> {
        let (time, component, reason) = match task {
            "task_1" => (true, false, false),
            "task_2" => (false, false, true),
            "task_3" => (false, true, false),
            "task_4" => (true, false, true),
            "task_5" => (true, true, false),
            "task_6" => (false, true, true),
            "task_7" => (true, true, true),
            _ => return None,
        };
        Some(Scored {
            time,
            component,
            reason,
        })
    }

    fn count(self) -> usize {
        usize::from(self.time) + usize::from(self.component) + usize::from(self.reason)
    }
}

/// Reads a prediction: JSON keyed `"1"`, `"2"`, … with `root cause occurrence datetime`,
/// `root cause component` and `root cause reason`. Unreadable text predicts nothing.
pub fn parse_prediction(text: &str) -> Vec<Failure> {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    map.values()
        .filter(|v| v.is_object())
        .map(|v| Failure {
            datetime: field(v, "root cause occurrence datetime"),
            component: field(v, "root cause component"),
            reason: field(v, "root cause reason"),
        })
        .collect()
}

/// Reads a ground-truth record (`key: value` lines; a repeated key starts the next failure).
pub fn parse_ground_truth(text: &str) -> Vec<Failure> {
    let mut failures = Vec::new();
    let mut current = Failure::default();
    let mut seen: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_owned();
        if seen.contains(&key) {
            failures.push(std::mem::take(&mut current));
            seen.clear();
        }
        let value = Some(value.trim().to_owned());
        match key.as_str() {
            "datetime" => current.datetime = value,
            "component" => current.component = value,
            "reason" => current.reason = value,
            _ => {}
        }
        seen.push(key);
    }
    if !seen.is_empty() {
        failures.push(current);
    }
    failures
}

fn parse_datetime(text: &str) -> Option<jiff::civil::DateTime> {
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text.trim()).ok()
}

fn within_a_minute(a: Option<&str>, b: Option<&str>) -> bool {
    let (Some(a), Some(b)) = (a.and_then(parse_datetime), b.and_then(parse_datetime)) else {
        return false;
    };
    a.duration_since(b).abs() <= jiff::SignedDuration::from_secs(60)
}

/// The OpenRCA score of `predicted` against `truth` with `failures` failures to find: the
/// share of scoring points met under the best assignment of predictions to failures. A
/// prediction with a different number of failures scores 0. Failures the truth does not
/// record count as points no prediction can meet.
pub fn score(predicted: &[Failure], truth: &[Failure], failures: usize, scored: Scored) -> f64 {
    let points = failures * scored.count();
    if points == 0 || predicted.len() != failures {
        return 0.0;
    }
    let mut best = 0;
    let mut order: Vec<usize> = (0..predicted.len()).collect();
    permutations(&mut order, 0, &mut |perm| {
        let mut met = 0;
        for (i, t) in truth.iter().take(failures).enumerate() {
            let p = &predicted[perm[i]];
            if scored.component && p.component.is_some() && p.component == t.component {
                met += 1;
            }
            if scored.reason && p.reason.is_some() && p.reason == t.reason {
                met += 1;
            }
            if scored.time && within_a_minute(t.datetime.as_deref(), p.datetime.as_deref()) {
                met += 1;
            }
        }
        best = best.max(met);
    });
    best as f64 / points as f64
}

fn permutations(items: &mut [usize], k: usize, visit: &mut impl FnMut(&[usize])) {
    if k == items.len() {
        visit(items);
        return;
    }
    for i in k..items.len() {
        items.swap(k, i);
        permutations(items, k + 1, visit);
        items.swap(k, i);
    }
}

/// The number of failures an OpenRCA instruction says there were (`one`, `single`, `two`, …).
pub fn failures_in(instruction: &str) -> Option<usize> {
    let words: Vec<String> = instruction
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let number = |w: &str| -> Option<usize> {
        match w {
            "a" | "one" | "single" => Some(1),
            "two" => Some(2),
            "three" => Some(3),
            "four" => Some(4),
            "five" => Some(5),
            other => other.parse().ok(),
        }
    };
    for (i, w) in words.iter().enumerate() {
        if w.starts_with("failure") {
            // The number is the word before, or the one before an adjective ("two separate").
            for back in 1..=2 {
                if let Some(n) = i.checked_sub(back).and_then(|j| number(&words[j])) {
                    return Some(n);
                }
            }
        }
    }
    None
}
