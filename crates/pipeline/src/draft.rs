//! Drafting a ground truth from feedback (deterministic, offline): take the correction, or the
//! agent's conclusion when feedback confirms it; read which entities it names or rules out, the
//! mechanism and the time; and resolve vague or partial text into a precise statement using the
//! snapshot's evidence. Ambiguity is counted, never hidden: scoring turns it into lower
//! specificity.

use std::collections::BTreeSet;

use evalmint_model::{Category, Feedback, GroundTruth, Investigation, Timestamp, Verdict};

use crate::evidence::Evidence;
use crate::lexicon;

pub const DRAFTER: &str = "evalmint-deterministic";
pub const DRAFTER_VERSION: &str = "1";

/// What the ground truth was drafted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    Correction,
    ConfirmedConclusion,
    /// Negative feedback without text, or nothing usable.
    Insufficient,
}

impl Basis {
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Correction => "correction",
            Basis::ConfirmedConclusion => "confirmed_conclusion",
            Basis::Insufficient => "none",
        }
    }
}

/// What one text says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Known entities named as (part of) the cause, in order of appearance.
    pub named: Vec<String>,
    /// Known entities ruled out ("not checkout", "checkout was only a symptom").
    pub ruled_out: Vec<String>,
    /// Kinds of component the text points at (`postgres`, `redis`, …).
    pub kinds: Vec<&'static str>,
    pub ruled_out_kinds: Vec<&'static str>,
    pub category: Option<Category>,
    /// A time of day the text gives, as (hour, minute) UTC.
    pub time_of_day: Option<(u8, u8)>,
    /// "something downstream".
    pub downstream: bool,
}

/// How the component was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The text named it.
    Named,
    /// The text was vague or partial; the snapshot's evidence chose it.
    Resolved,
}

/// A drafted ground truth with everything scoring needs to judge it.
#[derive(Debug, Clone)]
pub struct Draft {
    pub basis: Basis,
    pub text: String,
    pub reading: Reading,
    pub ground_truth: Option<GroundTruth>,
    pub method: Method,
    /// Other entities nearly as well supported as the chosen one.
    pub alternatives: Vec<String>,
    /// Disagreements among feedback, or between text and evidence.
    pub conflicts: Vec<String>,
    /// The entity the trigger is about, when known.
    pub trigger_entity: Option<String>,
}

const KIND_WORDS: &[(&str, &str)] = &[
    ("database", "postgres"),
    ("db", "postgres"),
    ("postgres", "postgres"),
    ("sql", "postgres"),
    ("cache", "redis"),
    ("redis", "redis"),
    ("frontend", "frontend"),
    ("front end", "frontend"),
    ("gateway", "frontend"),
];

const RULED_OUT_AFTER: &[&str] = &[
    "symptom",
    "reacting",
    "was fine",
    "is fine",
    "were fine",
    "victim",
    "healthy",
    "innocent",
];
const RULED_OUT_BEFORE: &[&str] = &[
    "not ",
    "not the ",
    "wasn't ",
    "isn't ",
    "rather than ",
    "instead of ",
    "not in ",
];

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Whole-word occurrences of `needle` in `haystack` (both lowercase).
fn occurrences(haystack: &str, needle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = haystack[from..].find(needle) {
        let start = from + offset;
        let end = start + needle.len();
        let before_ok = haystack[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !is_word_char(c));
        let after_ok = haystack[end..]
            .chars()
            .next()
            .is_none_or(|c| !is_word_char(c));
        if before_ok && after_ok {
            found.push(start);
        }
        from = start + needle.len().max(1);
    }
    found
}

/// The clause around a mention: from the previous to the next `;`, `,`, `.` or `but`.
fn ruled_out(text: &str, start: usize, end: usize) -> bool {
    let before = &text[..start];
    let clause_start = before.rfind([';', ',', '.', '(']).map_or(0, |i| i + 1);
    let lead = before[clause_start..].rsplit(" but ").next().unwrap_or("");
    if RULED_OUT_BEFORE
        .iter()
        .any(|cue| lead.trim_start().starts_with(cue.trim_start()) || lead.ends_with(cue))
    {
        return true;
    }
    let after = &text[end..];
    let clause_end = after.find([';', ',', '.', ')']).unwrap_or(after.len());
    let tail = &after[..clause_end];
    let tail = tail.split(" but ").next().unwrap_or(tail);
    RULED_OUT_AFTER.iter().any(|cue| tail.contains(cue))
}

/// Reads a correction or conclusion against the snapshot's entity dictionary.
pub fn read(text: &str, evidence: &Evidence) -> Reading {
    let lower = text.to_ascii_lowercase();
    let mut reading = Reading::default();
    let mut taken: Vec<(usize, usize)> = Vec::new();
    let mut entities: Vec<&String> = evidence.entities.iter().collect();
    entities.sort_by_key(|e| std::cmp::Reverse(e.len()));
    let mut mentions: Vec<(usize, String, bool)> = Vec::new();
    for entity in entities {
        for start in occurrences(&lower, entity) {
            let end = start + entity.len();
            if taken.iter().any(|(s, e)| start < *e && *s < end) {
                continue;
            }
            taken.push((start, end));
            mentions.push((start, entity.clone(), ruled_out(&lower, start, end)));
        }
    }
    mentions.sort();
    for (_, entity, negated) in mentions {
        let list = if negated {
            &mut reading.ruled_out
        } else {
            &mut reading.named
        };
        if !list.contains(&entity) {
            list.push(entity);
        }
    }
    reading.named.retain(|e| !reading.ruled_out.contains(e));
    for (word, kind) in KIND_WORDS {
        for start in occurrences(&lower, word) {
            if taken.iter().any(|(s, e)| start >= *s && start < *e) {
                continue;
            }
            let list = if ruled_out(&lower, start, start + word.len()) {
                &mut reading.ruled_out_kinds
            } else {
                &mut reading.kinds
            };
            if !list.contains(kind) {
                list.push(kind);
            }
        }
    }
    reading.category = lexicon::category_of(&lower);
    reading.time_of_day = time_of_day(&lower);
    reading.downstream = lower.contains("downstream");
    reading
}

fn time_of_day(text: &str) -> Option<(u8, u8)> {
    let bytes = text.as_bytes();
    for (i, _) in text.match_indices(':') {
        let Some(hour_start) = (0..i)
            .rev()
            .take_while(|j| bytes[*j].is_ascii_digit())
            .last()
        else {
            continue;
        };
        let hours = &text[hour_start..i];
        let minutes = text.get(i + 1..i + 3)?;
        let after_ok = text[i + 3..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_ascii_digit());
        let before_ok = text[..hour_start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '.'));
        if !before_ok {
            continue;
        }
        if (1..=2).contains(&hours.len()) && minutes.bytes().all(|b| b.is_ascii_digit()) && after_ok
        {
            let (h, m): (u8, u8) = (hours.parse().ok()?, minutes.parse().ok()?);
            if h < 24 && m < 60 {
                return Some((h, m));
            }
        }
    }
    None
}

fn hhmm(t: Timestamp) -> String {
    t.strftime("%H:%M").to_string()
}

/// The snapshot evidence's own view of an entity's category: the lexicon over its error logs and
/// events, plus what its most-shifted metrics say (a memory metric that doubled weighs more than a
/// CPU metric up by a tenth).
pub(crate) fn evidence_category(evidence: &Evidence, entity: &str) -> Option<Category> {
    let signals = evidence.signals.get(entity)?;
    let mut weights: Vec<(Category, f64)> = Vec::new();
    let mut add =
        |category: Category, weight: f64| match weights.iter_mut().find(|(c, _)| *c == category) {
            Some((_, w)) => *w += weight,
            None => weights.push((category, weight)),
        };
    let onset = signals.onset();
    let mut seen_texts = std::collections::BTreeSet::new();
    for log in signals
        .error_logs
        .iter()
        .filter(|m| seen_texts.insert(m.text.as_str()))
    {
        for (category, weight) in lexicon::category_weights(&log.text) {
            add(category, weight);
        }
    }
    // Deploys and config changes happen all the time; only those just before trouble count fully.
    for event in &signals.events {
        let near_onset = match (event.at, onset) {
            (Some(at), Some(onset)) => {
                let lead = onset.duration_since(at);
                lead >= -jiff::SignedDuration::from_mins(2)
                    && lead <= jiff::SignedDuration::from_mins(30)
            }
            _ => false,
        };
        let factor = if near_onset { 1.0 } else { 0.2 };
        for (category, weight) in lexicon::category_weights(&event.text) {
            add(category, weight * factor);
        }
    }
    for anomaly in &signals.anomalies {
        if let Some((category, weight)) = lexicon::metric_category(&anomaly.metric, anomaly.rising)
        {
            add(category, weight * anomaly.relative.min(4.0));
        }
    }
    lexicon::best(weights)
}

/// The entity the trigger is about: the first known entity its text or monitor names.
fn trigger_entity(investigation: &Investigation, evidence: &Evidence) -> Option<String> {
    let trigger = investigation.trigger.as_ref()?;
    let text = format!(
        "{} {}",
        trigger.monitor.as_deref().unwrap_or(""),
        trigger.text
    );
    read(&text, evidence).named.into_iter().next()
}

/// Drafts the ground truth for an investigation from its (consenting) feedback.
pub fn draft(investigation: &Investigation, feedback: &[&Feedback], evidence: &Evidence) -> Draft {
    let trigger_entity = trigger_entity(investigation, evidence);
    let corrections: Vec<&str> = feedback
        .iter()
        .filter_map(|f| f.body.correction.as_deref())
        .collect();
    let confirmed = feedback
        .iter()
        .any(|f| f.body.verdict == Some(Verdict::Up) || f.body.rating.is_some_and(|r| r >= 4));
    let (basis, text) = if let Some(longest) = corrections.iter().max_by_key(|c| c.len()) {
        (Basis::Correction, (*longest).to_owned())
    } else if confirmed && investigation.conclusion.is_some() {
        (
            Basis::ConfirmedConclusion,
            investigation.conclusion.clone().unwrap_or_default(),
        )
    } else {
        (Basis::Insufficient, String::new())
    };
    let mut draft = Draft {
        basis,
        reading: read(&text, evidence),
        text,
        ground_truth: None,
        method: Method::Named,
        alternatives: Vec::new(),
        conflicts: Vec::new(),
        trigger_entity,
    };
    if basis == Basis::Insufficient {
        return draft;
    }

    // Several feedbacks must agree on what they name.
    let mut named_elsewhere: BTreeSet<String> = BTreeSet::new();
    for other in corrections.iter().filter(|c| **c != draft.text) {
        named_elsewhere.extend(read(other, evidence).named);
    }
    if basis == Basis::Correction
        && confirmed
        && let Some(conclusion) = &investigation.conclusion
    {
        named_elsewhere.extend(read(conclusion, evidence).named.into_iter().take(1));
    }

    let Some(component) = choose_component(&mut draft, evidence) else {
        return draft;
    };
    for other in named_elsewhere {
        if other != component {
            draft
                .conflicts
                .push(format!("other feedback points at {other}, not {component}"));
        }
    }

    let signals = evidence.signals.get(&component);
    let category = draft
        .reading
        .category
        .or_else(|| evidence_category(evidence, &component));
    let evidence_onset = signals.and_then(|s| s.onset());
    let stated_onset = draft.reading.time_of_day.and_then(|(h, m)| {
        let day_start = investigation.started_at.as_second().div_euclid(86_400) * 86_400;
        Timestamp::from_second(day_start + i64::from(h) * 3_600 + i64::from(m) * 60).ok()
    });
    if let (Some(stated), Some(seen)) = (stated_onset, evidence_onset)
        && stated.duration_since(seen).abs() > jiff::SignedDuration::from_mins(15)
    {
        draft.conflicts.push(format!(
            "the feedback says {} but {component}'s signals change at {}",
            hhmm(stated),
            hhmm(seen)
        ));
    }
    let onset = evidence_onset.or(stated_onset);

    let mut causal_chain = Vec::new();
    let trigger_text = investigation
        .trigger
        .as_ref()
        .map_or_else(|| "the alert".to_owned(), |t| t.text.clone());
    match draft
        .trigger_entity
        .as_deref()
        .and_then(|t| evidence.path(t, &component))
    {
        Some(path) if path.len() > 1 => {
            causal_chain.push(format!("{}: {trigger_text}", path[0]));
            for pair in path.windows(2) {
                causal_chain.push(format!("{} depends on {}", pair[0], pair[1]));
            }
        }
        _ => causal_chain.push(trigger_text),
    }
    let mechanism = category.map_or("a fault", lexicon::describe);
    causal_chain.push(format!("{component}: {mechanism}"));

    let mut statement = format!("{component}: {mechanism}");
    if let Some(onset) = onset {
        statement += &format!(" starting {} UTC", hhmm(onset));
    }
    if let Some(trigger) = draft.trigger_entity.as_deref().filter(|t| *t != component) {
        statement += &format!("; {trigger} was a downstream symptom");
    }
    draft.ground_truth = Some(GroundTruth {
        statement,
        components: vec![component],
        category,
        onset,
        causal_chain,
        evidence: signals
            .map(|s| s.query_ids().into_iter().collect())
            .unwrap_or_default(),
    });
    draft
}

/// Picks the root-cause component: the one the text names, or, for vague and partial text, the
/// best-supported entity the text does not rule out (earliest onset breaks near-ties, since
/// symptoms follow their cause).
fn choose_component(draft: &mut Draft, evidence: &Evidence) -> Option<String> {
    let reading = &draft.reading;
    if reading.named.len() == 1 {
        draft.method = Method::Named;
        return reading.named.first().cloned();
    }
    let mut pool: Vec<String> = if reading.named.is_empty() {
        draft.method = Method::Resolved;
        evidence
            .signals
            .iter()
            .filter(|(_, s)| s.strength() > 0.0)
            .map(|(e, _)| e.clone())
            .filter(|e| !reading.ruled_out.contains(e))
            .filter(|e| {
                evidence
                    .kind_of(e)
                    .is_none_or(|k| !reading.ruled_out_kinds.contains(&k))
            })
            .collect()
    } else {
        draft.method = Method::Named;
        reading.named.clone()
    };
    let narrow = |pool: &mut Vec<String>, keep: &dyn Fn(&String) -> bool| {
        let narrowed: Vec<String> = pool.iter().filter(|e| keep(e)).cloned().collect();
        if !narrowed.is_empty() {
            *pool = narrowed;
        }
    };
    if !reading.kinds.is_empty() {
        narrow(&mut pool, &|e| {
            evidence
                .kind_of(e)
                .is_some_and(|k| reading.kinds.contains(&k))
        });
    }
    if reading.downstream
        && let Some(trigger) = &draft.trigger_entity
    {
        let below = evidence.downstream(trigger);
        narrow(&mut pool, &|e| below.contains_key(e));
    }
    if let Some(category) = reading.category {
        narrow(&mut pool, &|e| {
            evidence_category(evidence, e) == Some(category)
        });
    }
    let earliest = pool
        .iter()
        .filter_map(|e| evidence.signals.get(e)?.onset())
        .min();
    let score = |entity: &String| -> f64 {
        let Some(signals) = evidence.signals.get(entity) else {
            return 0.0;
        };
        let first = match (signals.onset(), earliest) {
            (Some(onset), Some(earliest)) if onset <= earliest => 0.5,
            _ => 0.0,
        };
        signals.strength() + first
    };
    let mut ranked: Vec<(f64, String)> = pool.into_iter().map(|e| (score(&e), e)).collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let (best_score, best) = ranked.first().cloned()?;
    draft.alternatives = ranked
        .iter()
        .skip(1)
        .filter(|(s, _)| *s >= best_score * 0.85 && best_score > 0.0)
        .map(|(_, e)| e.clone())
        .collect();
    Some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence_with(entities: &[&str]) -> Evidence {
        let mut evidence = Evidence::default();
        for e in entities {
            evidence.entities.insert((*e).to_owned());
        }
        evidence
    }

    #[test]
    fn reading_separates_the_cause_from_what_is_ruled_out() {
        let evidence = evidence_with(&["checkout", "payments", "payments-db"]);
        let r = read(
            "it was the payments-db connection pool, not checkout",
            &evidence,
        );
        assert_eq!(r.named, ["payments-db"]);
        assert_eq!(r.ruled_out, ["checkout"]);
        assert_eq!(r.category, Some(Category::ResourceConnectionPool));

        let r = read(
            "Root cause: payments-db pods OOM-killed from 14:02 UTC; checkout errors are a downstream symptom",
            &evidence,
        );
        assert_eq!(r.named, ["payments-db"]);
        assert_eq!(r.ruled_out, ["checkout"]);
        assert_eq!(r.time_of_day, Some((14, 2)));

        let r = read("not sure, but checkout was just reacting", &evidence);
        assert!(r.named.is_empty());
        assert_eq!(r.ruled_out, ["checkout"]);

        let r = read("check the db", &evidence);
        assert_eq!(r.kinds, ["postgres"]);
        let r = read("not the frontend", &evidence);
        assert_eq!(r.ruled_out_kinds, ["frontend"]);
        assert_eq!(time_of_day("v1.2:30"), None);
        assert_eq!(time_of_day("at 9:05 utc"), Some((9, 5)));
    }
}
