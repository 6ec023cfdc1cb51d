//! Shared test harness: a real distribution registry, deterministic fixture images, and a
//! scripted upstream for what a real registry cannot be made to do.
#![allow(dead_code)]

pub mod cli;
pub mod faulty;
pub mod fixtures;
pub mod registry;
pub mod server;
