//! The label pipeline: every feedback event, joined with its investigation, becomes a scored
//! candidate label or an explicit non-candidate. Stages: capture the world snapshot before its
//! TTL ([`capture`]), add innocent neighbours ([`noise`]), read the evidence ([`evidence`]),
//! draft and resolve the ground truth ([`draft`], reading text against the entity
//! catalog with [`matching`] and the category [`taxonomy`]), score and route it ([`score`]); [`worker`]
//! runs them as durable jobs, [`catalog`] keeps each tenant's entity catalog fed, and [`redact`]
//! keeps secrets and personal data out of labels.

pub mod capture;
pub mod catalog;
pub mod config;
pub mod draft;
pub mod evidence;
pub mod lexicon;
pub mod llm;
pub mod matching;
pub mod metrics;
pub mod noise;
pub mod redact;
pub mod score;
pub mod structured;
pub mod taxonomy;
pub mod worker;

#[cfg(test)]
mod pipeline_tests;
