//! Small blobs kept in memory: manifests and configs, the bytes a pull asks for on every
//! request, served without opening, reading and closing their files each time (five system
//! calls of a request's eight, 1,000 keep-alive connections on one core: bench/scale.sh).
//!
//! Owns: a bounded map from digest to bytes that were read from a blob file (verified before
//! it was renamed in, never modified after), forgotten when the file is removed. When the
//! total would pass the bound, entries leave in no particular order until a quarter is free.
//! Must not touch: files (the caller reads them), the index, or what `verify` reads (it
//! re-hashes the files themselves).

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;

use crate::reference::Digest;

pub struct Hot {
    limit: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<Digest, Bytes>,
    total: usize,
}

impl Hot {
    /// At most `limit` bytes held.
    pub fn new(limit: usize) -> Hot {
        Hot {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.state.lock().expect("hot").entries.contains_key(digest)
    }

    pub fn get(&self, digest: &Digest) -> Option<Bytes> {
        self.state.lock().expect("hot").entries.get(digest).cloned()
    }

    /// Keep `bytes` (a blob file's whole content) for `digest`.
    pub fn put(&self, digest: &Digest, bytes: Bytes) {
        if bytes.len() > self.limit {
            return;
        }
        let mut state = self.state.lock().expect("hot");
        if state.total + bytes.len() > self.limit {
            let goal = self.limit - self.limit / 4;
            let gone: Vec<Digest> = state
                .entries
                .iter()
                .scan(state.total, |total, (d, b)| {
                    (*total + bytes.len() > goal).then(|| {
                        *total -= b.len();
                        d.clone()
                    })
                })
                .collect();
            for d in gone {
                state.forget(&d);
            }
        }
        state.total += bytes.len();
        if let Some(old) = state.entries.insert(digest.clone(), bytes) {
            state.total -= old.len();
        }
    }

    /// The blob's file was removed.
    pub fn forget(&self, digest: &Digest) {
        self.state.lock().expect("hot").forget(digest);
    }
}

impl State {
    fn forget(&mut self, digest: &Digest) {
        if let Some(b) = self.entries.remove(digest) {
            self.total -= b.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(i: u8) -> Digest {
        crate::manifest::sha256(&[i])
    }

    #[test]
    fn holds_what_was_put_until_forgotten() {
        let hot = Hot::new(100);
        hot.put(&digest(1), Bytes::from_static(b"abc"));
        assert_eq!(hot.get(&digest(1)).as_deref(), Some(&b"abc"[..]));
        assert_eq!(hot.get(&digest(2)), None);
        hot.forget(&digest(1));
        assert_eq!(hot.get(&digest(1)), None);
    }

    #[test]
    fn stays_under_its_limit_and_keeps_the_newest() {
        let hot = Hot::new(100);
        for i in 0..50 {
            hot.put(&digest(i), Bytes::from(vec![i; 10]));
            let state = hot.state.lock().unwrap();
            let sum: usize = state.entries.values().map(Bytes::len).sum();
            assert_eq!(sum, state.total);
            assert!(state.total <= 100, "{} held", state.total);
            drop(state);
            assert_eq!(hot.get(&digest(i)).unwrap(), vec![i; 10]);
        }
        hot.put(&digest(99), Bytes::from(vec![0; 101]));
        assert_eq!(
            hot.get(&digest(99)),
            None,
            "larger than the limit: not kept"
        );
        hot.put(&digest(1), Bytes::from(vec![1; 10]));
        hot.put(&digest(1), Bytes::from(vec![1; 10]));
        let state = hot.state.lock().unwrap();
        assert_eq!(
            state.total,
            state.entries.values().map(Bytes::len).sum::<usize>()
        );
    }
}
