//! The label pipeline: every feedback event, joined with its investigation, becomes a scored
//! candidate label or an explicit non-candidate. Stages: capture the world snapshot before its
//! TTL ([`capture`]), add innocent neighbours ([`noise`]), read the evidence ([`evidence`]),
//! draft and resolve the ground truth ([`draft`]), score and route it ([`score`]); [`worker`]
//! runs them as durable jobs, [`catalog`] keeps each tenant's entity catalog fed, and [`redact`] keeps secrets and personal data out of labels.

pub mod capture;
pub mod catalog;
pub mod config;
pub mod draft;
pub mod evidence;
pub mod lexicon;
pub mod llm;
pub mod metrics;
pub mod noise;
pub mod redact;
pub mod score;
pub mod worker;
