//! Shared test harness: a real distribution registry, deterministic fixture images, a
//! scripted upstream for what a real registry cannot be made to do, the real client
//! tools (skopeo, podman), a real S3-compatible store (SeaweedFS), and a real headless
//! browser (Debian's Chromium under ChromeDriver).
#![allow(dead_code)]

pub mod browser;
pub mod cli;
pub mod faulty;
pub mod fixtures;
pub mod registry;
pub mod seaweed;
pub mod server;
pub mod tls;
pub mod tools;
