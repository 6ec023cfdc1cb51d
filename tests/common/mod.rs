//! Shared test harness: a real distribution registry, deterministic fixture images, a
//! scripted upstream for what a real registry cannot be made to do, the real client
//! tools (skopeo, podman), and a real S3-compatible store (SeaweedFS).
#![allow(dead_code)]

pub mod cli;
pub mod faulty;
pub mod fixtures;
pub mod registry;
pub mod seaweed;
pub mod server;
pub mod tools;
