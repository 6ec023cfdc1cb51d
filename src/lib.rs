//! stablebuild: an immutable pull-through mirror for container registries.
//!
//! Layers, top to bottom: `commands` (printing, exit codes) → `snapshot` (pin) and `export`
//! (pull) → `upstream` (registries) and `store` (the only code touching the store dir) →
//! `manifest`, `reference`, `dockerfile`, `reflist`, `lock` and `platform` (pure parsing).

pub mod causes;
pub mod cli;
pub mod commands;
pub mod config;
pub mod dashboard;
pub mod dockerfile;
pub mod events;
pub mod export;
pub mod lock;
pub mod logging;
pub mod malloc;
pub mod manifest;
pub mod manual;
pub mod ops;
pub mod platform;
pub mod reference;
pub mod reflist;
pub mod registry;
pub mod remote;
pub mod secret;
pub mod settings;
pub mod shared;
pub mod snapshot;
pub mod store;
pub mod upstream;
