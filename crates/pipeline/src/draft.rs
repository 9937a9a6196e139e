//! Drafting a ground truth from feedback (deterministic, offline): take the correction, or the
//! agent's conclusion when feedback confirms it; read which entities it names or rules out (against
//! the catalog, or by shape when no catalog knows them — see [`crate::matching`]), the mechanism
//! (the [`crate::taxonomy`]), the time and any structured fields; and resolve vague or partial text
//! into a precise statement using the snapshot's evidence. Ambiguity and unverified names are
//! counted, never hidden: scoring turns them into lower specificity and accuracy.

use std::collections::{BTreeMap, BTreeSet};

use evalmint_model::{
    Catalog, CatalogEntry, Category, EntityProvenance, EntityRef, Feedback, GroundTruth,
    Investigation, Timestamp, Verdict,
};

use crate::evidence::Evidence;
use crate::matching::{self, How};
use crate::structured;
use crate::taxonomy::Taxonomy;
use crate::{lexicon, redact};

pub const DRAFTER: &str = "evalmint-deterministic";
pub const DRAFTER_VERSION: &str = "2";

/// Longest reason kept verbatim in a ground truth, in characters.
const MAX_REASON_CHARS: usize = 500;

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

/// How an entity of a reading was recognised.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognised {
    pub provenance: EntityProvenance,
    pub how: How,
    /// For an instance, the workload it belongs to.
    pub workload: Option<String>,
}

/// What one text says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// Entities named as (part of) the cause, in order of appearance (a structured answer's
    /// component first).
    pub named: Vec<String>,
    /// Entities ruled out ("not checkout", "checkout was only a symptom").
    pub ruled_out: Vec<String>,
    /// How each named or ruled-out entity was recognised.
    pub recognised: BTreeMap<String, Recognised>,
    /// Kinds of component the text points at (`postgres`, `redis`, …).
    pub kinds: Vec<&'static str>,
    pub ruled_out_kinds: Vec<&'static str>,
    pub category: Option<Category>,
    /// The reason in the text's own words: a structured reason field, else the whole text.
    pub reason: Option<String>,
    /// A time of day the text gives, as (hour, minute) UTC.
    pub time_of_day: Option<(u8, u8)>,
    /// A full date and time a structured answer gives.
    pub onset: Option<Timestamp>,
    /// "something downstream".
    pub downstream: bool,
    /// The text rejects the agent's answer without naming it ("wrong component", "not that").
    pub rejects_answer: bool,
}

impl Reading {
    /// Whether `entity` was recognised only from the text's shape (no catalog knows it).
    pub fn is_unverified(&self, entity: &str) -> bool {
        self.recognised
            .get(entity)
            .is_some_and(|r| !r.provenance.is_verified())
    }
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

impl Draft {
    /// How the ground truth's component was recognised, for the `recognition` segment:
    /// `catalog_exact`, `catalog_normalised`, `catalog_alias`, `catalog_typo`, `open_vocabulary`
    /// or `evidence` (resolved from vague text).
    pub fn recognition(&self) -> Option<&'static str> {
        let component = self.chosen()?;
        Some(match self.method {
            Method::Resolved => "evidence",
            Method::Named => self
                .reading
                .recognised
                .get(component)
                .map_or("evidence", |r| r.how.as_str()),
        })
    }

    /// The entity the text named or the evidence chose (an instance, when one was named).
    fn chosen(&self) -> Option<&String> {
        let truth = self.ground_truth.as_ref()?;
        truth
            .entities
            .last()
            .map(|e| &e.name)
            .or(truth.components.first())
    }

    /// Whether the ground truth rests on a name no catalog knows.
    pub fn unverified(&self) -> bool {
        self.ground_truth
            .as_ref()
            .is_some_and(|t| t.entities.iter().any(|e| !e.provenance.is_verified()))
    }
}

/// Kind words that narrow vague text to a kind of component the snapshot's topology knows.
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
/// Phrases between a negation and a name that affirm the name after all.
const POSITIVE_LEADS: &[&str] = &[
    "it was ",
    "it's ",
    "it is ",
    "root cause",
    "caused by",
    "because of",
    "due to",
];
/// Phrases that reject the agent's answer without naming it.
const REJECTS_ANSWER: &[&str] = &[
    "wrong component",
    "component is wrong",
    "wrong service",
    "service is wrong",
    "not that",
    "not it",
    "wrong root cause",
];

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '-' || c == '_'
}

/// Whole-word occurrences of `needle` in `haystack` (both lowercase).
fn occurrences(haystack: &str, needle: &str) -> Vec<usize> {
    let mut found = Vec::new();
    for (start, _) in haystack.match_indices(needle) {
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
    }
    found
}

/// Characters that end a clause, for deciding what a negation covers.
const CLAUSE_BREAKS: [char; 8] = [';', ',', '.', '(', ':', '—', '–', '\n'];

/// How far a negation reaches around a mention, in bytes: a clause, not a paragraph.
const CLAUSE_REACH: usize = 240;

/// The nearest character boundary at or before `at`.
fn boundary_before(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The clause around a mention: from the previous to the next clause break or `but`.
fn ruled_out(text: &str, start: usize, end: usize) -> bool {
    let reach_start = boundary_before(text, start.saturating_sub(CLAUSE_REACH));
    let reach_end = boundary_before(text, (end + CLAUSE_REACH).min(text.len()));
    let before = &text[reach_start..start];
    let clause_start = before.rfind(CLAUSE_BREAKS).map_or(0, |i| {
        i + before[i..].chars().next().map_or(1, char::len_utf8)
    });
    let lead = before[clause_start..].rsplit(" but ").next().unwrap_or("");
    let lead = lead.rsplit(" - ").next().unwrap_or(lead);
    // "not checkout" and "wasn't really checkout" rule out; "not sure it was checkout" does not.
    let affirmed = POSITIVE_LEADS.iter().any(|cue| lead.contains(cue));
    if RULED_OUT_BEFORE.iter().any(|cue| {
        lead.ends_with(cue) || (!affirmed && lead.trim_start().starts_with(cue.trim_start()))
    }) {
        return true;
    }
    let after = &text[end..reach_end];
    let clause_end = after
        .find([';', ',', '.', ')', '—', '–', '\n'])
        .unwrap_or(after.len());
    let tail = &after[..clause_end];
    let tail = tail.split(" but ").next().unwrap_or(tail);
    RULED_OUT_AFTER.iter().any(|cue| tail.contains(cue))
}

/// Reads a correction or conclusion against the catalog and the taxonomy. The text is redacted
/// first, so URLs, e-mail addresses, IP addresses and secrets never become entities.
pub fn read(text: &str, catalog: &Catalog, taxonomy: &Taxonomy) -> Reading {
    let text = redact::redact(text).text;
    // ASCII lowercasing keeps byte offsets, so mentions found in `text` index `lower` too.
    let lower = text.to_ascii_lowercase();
    let mut reading = Reading::default();
    let found = matching::mentions(&text, catalog, taxonomy);
    let structured = structured::parse(&text);
    // A structured answer's component field names the cause, wherever it sits.
    let answer = structured
        .as_ref()
        .and_then(|s| s.component.as_deref())
        .and_then(|value| {
            matching::mentions(value, catalog, taxonomy)
                .into_iter()
                .next()
        })
        .map(|m| m.entity);
    // When the text both rules out and names an entity, its last mention decides ("not X at
    // first sight — in the end it was X").
    let mut last_says: Vec<(String, bool)> = Vec::new();
    for mention in &found {
        let negated = answer.as_deref() != Some(mention.entity.as_str())
            && ruled_out(&lower, mention.start, mention.end);
        match last_says.iter_mut().find(|(e, _)| *e == mention.entity) {
            Some(entry) => entry.1 = negated,
            None => last_says.push((mention.entity.clone(), negated)),
        }
        reading
            .recognised
            .entry(mention.entity.clone())
            .or_insert_with(|| Recognised {
                provenance: mention.provenance,
                how: mention.how,
                workload: mention.workload.clone(),
            });
    }
    for (entity, negated) in last_says {
        if negated {
            reading.ruled_out.push(entity);
        } else {
            reading.named.push(entity);
        }
    }
    if let Some(answer) = answer {
        reading.named.retain(|e| *e != answer);
        reading.named.insert(0, answer);
    }
    reading.named.retain(|e| !reading.ruled_out.contains(e));
    for (word, kind) in KIND_WORDS {
        for start in occurrences(&lower, word) {
            if found.iter().any(|m| start >= m.start && start < m.end) {
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
    let stated_reason = structured.as_ref().and_then(|s| s.reason.clone());
    reading.category = stated_reason
        .as_deref()
        .and_then(|r| taxonomy.category_of(r))
        .or_else(|| taxonomy.category_of(&text));
    let reason = stated_reason.unwrap_or_else(|| text.trim().to_owned());
    reading.reason = (!reason.is_empty()).then(|| truncate_chars(&reason, MAX_REASON_CHARS));
    reading.onset = structured.as_ref().and_then(structured::Structured::onset);
    reading.time_of_day = structured
        .as_ref()
        .and_then(|s| s.time.as_deref())
        .and_then(|t| time_of_day(&t.to_ascii_lowercase()))
        .or_else(|| time_of_day(&lower));
    reading.downstream = lower.contains("downstream");
    reading.rejects_answer = REJECTS_ANSWER
        .iter()
        .any(|cue| !occurrences(&lower, cue).is_empty());
    reading
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
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
        let Some(minutes) = text.get(i + 1..i + 3) else {
            continue;
        };
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

/// The snapshot evidence's own view of an entity's category: the taxonomy over its error logs and
/// events, plus what its most-shifted metrics say (a memory metric that doubled weighs more than a
/// CPU metric up by a tenth).
pub(crate) fn evidence_category(
    evidence: &Evidence,
    taxonomy: &Taxonomy,
    entity: &str,
) -> Option<Category> {
    let signals = evidence.signals.get(&entity.to_lowercase())?;
    let mut weights: Vec<(Category, f64)> = Vec::new();
    let mut add =
        |category: Category, weight: f64| match weights.iter_mut().find(|(c, _)| *c == category) {
            Some((_, w)) => *w += weight,
            None => weights.push((category, weight)),
        };
    let onset = signals.onset();
    let mut seen_texts = BTreeSet::new();
    for log in signals
        .error_logs
        .iter()
        .filter(|m| seen_texts.insert(m.text.as_str()))
    {
        for (category, weight) in taxonomy.weights(&log.text) {
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
        for (category, weight) in taxonomy.weights(&event.text) {
            add(category, weight * factor);
        }
    }
    for anomaly in &signals.anomalies {
        if let Some((category, weight)) =
            lexicon::metric_category(taxonomy, &anomaly.metric, anomaly.rising)
        {
            add(category, weight * anomaly.relative.min(4.0));
        }
    }
    lexicon::best(weights)
}

/// The catalog an investigation brings with it: every entity its tool calls and their results
/// name (with kind, owner, dependencies and instances from topology results), and the component
/// of the agent's own structured answer.
pub fn investigation_catalog(
    investigation: &Investigation,
    evidence: &Evidence,
    taxonomy: &Taxonomy,
) -> Catalog {
    let mut catalog = Catalog::default();
    for name in &evidence.entities {
        let mut entry = CatalogEntry::new(name.clone(), EntityProvenance::ToolCall);
        entry.kind = evidence.kind_of(name).map(str::to_owned);
        entry.team = evidence.teams.get(name).cloned();
        entry.depends_on = evidence
            .calls
            .get(name)
            .map(|c| c.iter().cloned().collect())
            .unwrap_or_default();
        catalog.insert(entry);
    }
    for (instance, workload) in evidence.instances() {
        let mut entry = CatalogEntry::new(instance.clone(), EntityProvenance::ToolCall);
        entry.workload = Some(workload.clone());
        catalog.insert(entry);
    }
    for name in investigation.tool_calls().flat_map(|c| c.entities.iter()) {
        catalog.insert(CatalogEntry::new(name.clone(), EntityProvenance::ToolCall));
    }
    if let Some(component) = investigation
        .conclusion
        .as_deref()
        .and_then(|c| agent_answer(c, &catalog, taxonomy))
    {
        catalog.insert(CatalogEntry::new(component, EntityProvenance::Trace));
    }
    catalog
}

/// The component a structured conclusion names (`"root cause component": "MG02"`).
fn agent_answer(conclusion: &str, catalog: &Catalog, taxonomy: &Taxonomy) -> Option<String> {
    let value = structured::parse(conclusion)?.component?;
    matching::mentions(&value, catalog, taxonomy)
        .into_iter()
        .next()
        .map(|m| m.entity)
}

/// The entity the trigger is about: the first verified entity its text or monitor names.
fn trigger_entity(
    investigation: &Investigation,
    catalog: &Catalog,
    taxonomy: &Taxonomy,
) -> Option<String> {
    let trigger = investigation.trigger.as_ref()?;
    let text = format!(
        "{} {}",
        trigger.monitor.as_deref().unwrap_or(""),
        trigger.text
    );
    let reading = read(&text, catalog, taxonomy);
    reading
        .named
        .iter()
        .find(|e| !reading.is_unverified(e))
        .cloned()
}

/// The key of an entity's signals in the evidence: its workload's, for an instance.
fn evidence_key(reading: &Reading, entity: &str) -> String {
    reading
        .recognised
        .get(entity)
        .and_then(|r| r.workload.clone())
        .unwrap_or_else(|| entity.to_owned())
        .to_lowercase()
}

/// Drafts the ground truth for an investigation from its (consenting) feedback. `catalog` holds
/// the entities the pipeline knows for the tenant; the investigation's own (tool calls, their
/// results, the agent's answer) are added to it, so an empty catalog still works.
pub fn draft(
    investigation: &Investigation,
    feedback: &[&Feedback],
    evidence: &Evidence,
    catalog: &Catalog,
    taxonomy: &Taxonomy,
) -> Draft {
    let mut known = catalog.clone();
    for entry in investigation_catalog(investigation, evidence, taxonomy)
        .entries()
        .iter()
        .cloned()
    {
        known.insert(entry);
    }
    let trigger_entity = trigger_entity(investigation, &known, taxonomy);
    let answer = investigation
        .conclusion
        .as_deref()
        .and_then(|c| agent_answer(c, &known, taxonomy));
    let corrections: Vec<&str> = feedback
        .iter()
        .filter_map(|f| f.body.correction.as_deref())
        .filter(|c| !c.trim().is_empty())
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
    let mut reading = read(&text, &known, taxonomy);
    // "Wrong component" refers to the agent's own answer.
    if basis == Basis::Correction
        && reading.rejects_answer
        && let Some(answer) = &answer
        && !reading.ruled_out.contains(answer)
    {
        reading.named.retain(|e| e != answer);
        reading.ruled_out.push(answer.clone());
    }
    let mut draft = Draft {
        basis,
        reading,
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
        named_elsewhere.extend(read(other, &known, taxonomy).named.into_iter().take(1));
    }
    if basis == Basis::Correction
        && confirmed
        && let Some(conclusion) = &investigation.conclusion
    {
        named_elsewhere.extend(read(conclusion, &known, taxonomy).named.into_iter().take(1));
    }

    let Some(component) = choose_component(&mut draft, evidence, taxonomy) else {
        return draft;
    };
    for other in named_elsewhere {
        if other != component {
            draft
                .conflicts
                .push(format!("other feedback points at {other}, not {component}"));
        }
    }

    let key = evidence_key(&draft.reading, &component);
    let signals = evidence.signals.get(&key);
    let category = draft
        .reading
        .category
        .clone()
        .or_else(|| evidence_category(evidence, taxonomy, &key));
    let evidence_onset = signals.and_then(|s| s.onset());
    let stated_onset = draft.reading.onset.or_else(|| {
        draft.reading.time_of_day.and_then(|(h, m)| {
            let day_start = investigation.started_at.as_second().div_euclid(86_400) * 86_400;
            Timestamp::from_second(day_start + i64::from(h) * 3_600 + i64::from(m) * 60).ok()
        })
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

    // An instance is graded at its workload; both are kept.
    let recognised = draft.reading.recognised.get(&component).cloned();
    let provenance = recognised.as_ref().map_or(
        // Resolved from the evidence: the snapshot's tool results named it.
        EntityProvenance::ToolCall,
        |r| r.provenance,
    );
    let mut components = Vec::new();
    let mut entities = Vec::new();
    if let Some(workload) = recognised.as_ref().and_then(|r| r.workload.clone()) {
        components.push(workload.clone());
        entities.push(EntityRef {
            provenance: known.get(&workload).map_or(provenance, |e| e.provenance),
            name: workload,
        });
    }
    components.push(component.clone());
    entities.push(EntityRef {
        name: component.clone(),
        provenance,
    });
    let subject = components[0].clone();

    let mut causal_chain = Vec::new();
    let trigger_text = investigation
        .trigger
        .as_ref()
        .map_or_else(|| "the alert".to_owned(), |t| t.text.clone());
    match draft
        .trigger_entity
        .as_deref()
        .and_then(|t| evidence.path(&t.to_lowercase(), &key))
    {
        Some(path) if path.len() > 1 => {
            causal_chain.push(format!("{}: {trigger_text}", path[0]));
            for pair in path.windows(2) {
                causal_chain.push(format!("{} depends on {}", pair[0], pair[1]));
            }
        }
        _ => causal_chain.push(trigger_text),
    }
    let mechanism = category
        .as_ref()
        .map_or("a fault", |c| taxonomy.describe(c));
    causal_chain.push(format!("{component}: {mechanism}"));

    let mut statement = format!("{component}: {mechanism}");
    if subject != component {
        statement = format!("{component} ({subject}): {mechanism}");
    }
    if let Some(onset) = onset {
        statement += &format!(" starting {} UTC", hhmm(onset));
    }
    if let Some(trigger) = draft
        .trigger_entity
        .as_deref()
        .filter(|t| *t != component && *t != subject)
    {
        statement += &format!("; {trigger} was a downstream symptom");
    }
    draft.ground_truth = Some(GroundTruth {
        statement,
        components,
        category,
        onset,
        causal_chain,
        evidence: signals
            .map(|s| s.query_ids().into_iter().collect())
            .unwrap_or_default(),
        reason: draft.reading.reason.clone(),
        entities,
    });
    draft
}

/// Picks the root-cause component: the one the text names (a catalog name before an unverified
/// one), or, for vague and partial text, the best-supported entity the text does not rule out
/// (earliest onset breaks near-ties, since symptoms follow their cause).
fn choose_component(draft: &mut Draft, evidence: &Evidence, taxonomy: &Taxonomy) -> Option<String> {
    let reading = &draft.reading;
    let verified: Vec<String> = reading
        .named
        .iter()
        .filter(|e| !reading.is_unverified(e))
        .cloned()
        .collect();
    let named = if verified.is_empty() {
        reading.named.clone()
    } else {
        verified
    };
    if named.len() == 1 {
        draft.method = Method::Named;
        return named.into_iter().next();
    }
    let mut pool: Vec<String> = if named.is_empty() {
        draft.method = Method::Resolved;
        evidence
            .signals
            .iter()
            .filter(|(_, s)| s.strength() > 0.0)
            .map(|(e, _)| e.clone())
            .filter(|e| !reading.ruled_out.iter().any(|r| r.eq_ignore_ascii_case(e)))
            .filter(|e| {
                evidence
                    .kind_of(e)
                    .is_none_or(|k| !reading.ruled_out_kinds.contains(&k))
            })
            .collect()
    } else {
        draft.method = Method::Named;
        named
    };
    let narrow = |pool: &mut Vec<String>, keep: &dyn Fn(&String) -> bool| {
        let narrowed: Vec<String> = pool.iter().filter(|e| keep(e)).cloned().collect();
        if !narrowed.is_empty() {
            *pool = narrowed;
        }
    };
    let key = |e: &String| evidence_key(reading, e);
    if !reading.kinds.is_empty() {
        narrow(&mut pool, &|e| {
            evidence
                .kind_of(&key(e))
                .is_some_and(|k| reading.kinds.contains(&k))
        });
    }
    if reading.downstream
        && let Some(trigger) = &draft.trigger_entity
    {
        let below = evidence.downstream(&trigger.to_lowercase());
        narrow(&mut pool, &|e| below.contains_key(&key(e)));
    }
    if let Some(category) = &reading.category {
        narrow(&mut pool, &|e| {
            evidence_category(evidence, taxonomy, &key(e))
                .is_some_and(|seen| taxonomy.agrees(&seen, category))
        });
    }
    let earliest = pool
        .iter()
        .filter_map(|e| evidence.signals.get(&key(e))?.onset())
        .min();
    let score = |entity: &String| evidence.support(&key(entity), earliest);
    // Best supported first; among equals, the order the text gives (or the name's, when resolved).
    let mut ranked: Vec<(f64, String)> = pool.into_iter().map(|e| (score(&e), e)).collect();
    if draft.method == Method::Resolved {
        ranked.sort_by(|a, b| a.1.cmp(&b.1));
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
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

    fn catalog_of(entities: &[&str]) -> Catalog {
        Catalog::new(
            entities
                .iter()
                .map(|e| CatalogEntry::new(*e, EntityProvenance::ToolCall))
                .collect(),
        )
    }

    fn read_with(text: &str, entities: &[&str]) -> Reading {
        read(text, &catalog_of(entities), &Taxonomy::default())
    }

    #[test]
    fn reading_separates_the_cause_from_what_is_ruled_out() {
        let known = ["checkout", "payments", "payments-db"];
        let r = read_with(
            "it was the payments-db connection pool, not checkout",
            &known,
        );
        assert_eq!(r.named, ["payments-db"]);
        assert_eq!(r.ruled_out, ["checkout"]);
        assert_eq!(r.category, Some(Category::RESOURCE_CONNECTION_POOL));

        let r = read_with(
            "Root cause: payments-db pods OOM-killed from 14:02 UTC; checkout errors are a downstream symptom",
            &known,
        );
        assert_eq!(r.named, ["payments-db"]);
        assert_eq!(r.ruled_out, ["checkout"]);
        assert_eq!(r.time_of_day, Some((14, 2)));

        let r = read_with("not sure, but checkout was just reacting", &known);
        assert!(r.named.is_empty());
        assert_eq!(r.ruled_out, ["checkout"]);

        let r = read_with("check the db", &known);
        assert_eq!(r.kinds, ["postgres"]);
        let r = read_with("not the frontend", &known);
        assert_eq!(r.ruled_out_kinds, ["frontend"]);
        assert_eq!(time_of_day("v1.2:30"), None);
        assert_eq!(time_of_day("at 9:05 utc"), Some((9, 5)));
        assert_eq!(time_of_day("é:éé 9:05"), Some((9, 5)));
    }

    #[test]
    fn names_no_catalog_knows_are_read_and_marked_unverified() {
        let r = read_with(
            "Not MG02 — it was Tomcat01: container CPU load.",
            &["checkout"],
        );
        assert_eq!(r.named, ["Tomcat01"]);
        assert_eq!(r.ruled_out, ["MG02"]);
        assert!(r.is_unverified("Tomcat01"));
        assert_eq!(
            r.category.as_ref().map(Category::as_str),
            Some("resource.cpu.container")
        );
        assert_eq!(
            r.reason.as_deref(),
            Some("Not MG02 — it was Tomcat01: container CPU load.")
        );

        let r = read_with("It's os_021. CPU fault, began 00:05.", &[]);
        assert_eq!(r.named, ["os_021"]);
        assert_eq!(r.time_of_day, Some((0, 5)));

        // Contact details and addresses are redacted before reading: never entities.
        let r = read_with(
            "ask ops-lead@example.com or see https://grafana.internal/d/x-1 — 10.0.3.7 was fine",
            &[],
        );
        assert!(r.named.is_empty() && r.ruled_out.is_empty(), "{r:?}");
    }

    #[test]
    fn a_structured_answer_names_its_component_reason_and_onset() {
        let conclusion = r#"{"1": {"root cause occurrence datetime": "2021-03-04 14:20:00",
            "root cause component": "MG02", "root cause reason": "high disk I/O read usage"}}"#;
        let r = read_with(conclusion, &[]);
        assert_eq!(r.named, ["MG02"]);
        assert_eq!(r.reason.as_deref(), Some("high disk I/O read usage"));
        assert_eq!(
            r.category.as_ref().map(Category::as_str),
            Some("resource.disk.read_io")
        );
        assert_eq!(r.onset.unwrap().to_string(), "2021-03-04T14:20:00Z");

        let r = read_with(
            "**Component:** checkout (only a symptom)\n**Reason:** payments-db pool exhausted",
            &["checkout", "payments-db"],
        );
        assert_eq!(r.named[0], "checkout", "the component field decides");
    }
}
