//! How often each pinned tag is pulled through this server: a pull is one resolution of the
//! tag (a GET or HEAD of its manifest by tag, as every client starts a pull), counted since
//! this process started (nothing is written to the store on the hot path).
//! Must not touch: anything but its counters (the manifest handler feeds them).

use std::collections::HashMap;
use std::sync::Mutex;

/// Pulls of one tag.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pulls {
    pub count: u64,
    /// Unix seconds of the last one.
    pub last: u64,
}

#[derive(Debug, Default)]
pub struct Usage {
    tags: Mutex<HashMap<String, Pulls>>,
}

impl Usage {
    /// Count one pull of the tag `key` (a reference key, `registry/repo:tag`).
    pub fn pulled(&self, key: &str) {
        let now = crate::store::records::now();
        let mut tags = self.tags.lock().expect("usage");
        match tags.get_mut(key) {
            Some(p) => {
                p.count += 1;
                p.last = now;
            }
            None => {
                tags.insert(
                    key.to_string(),
                    Pulls {
                        count: 1,
                        last: now,
                    },
                );
            }
        }
    }

    /// Every tag pulled so far.
    pub fn all(&self) -> HashMap<String, Pulls> {
        self.tags.lock().expect("usage").clone()
    }

    pub fn get(&self, key: &str) -> Pulls {
        let tags = self.tags.lock().expect("usage");
        tags.get(key).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pulls_are_counted_per_tag() {
        let usage = Usage::default();
        usage.pulled("docker.io/library/a:1");
        usage.pulled("docker.io/library/a:1");
        usage.pulled("docker.io/library/b:1");
        assert_eq!(usage.get("docker.io/library/a:1").count, 2);
        assert!(usage.get("docker.io/library/a:1").last > 0);
        assert_eq!(usage.all().len(), 2);
        assert_eq!(usage.get("docker.io/library/c:1"), Pulls::default());
    }
}
