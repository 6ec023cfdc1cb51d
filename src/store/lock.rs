//! The store's process lock: `lock` in the store, held exclusively while a process uses it
//! (sled allows one process per database). The holder writes its pid and command line into
//! it, so that a second process can say who it is waiting for.
//! Must not touch: anything else in the store.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::StoreError;

/// Who holds a store: as written by the holder into the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    /// `stablebuild pin big:1`
    pub command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.command.is_empty() {
            true => write!(f, "pid {}", self.pid),
            false => write!(f, "pid {} ({})", self.pid, self.command),
        }
    }
}

/// What to do when another process holds the lock.
pub enum Contended<'a> {
    /// Fail with `StoreError::Locked`.
    Fail,
    /// Tell the caller once who holds it, then wait until it is free.
    Wait(&'a dyn Fn(Option<&Holder>)),
}

pub struct Lock {
    _file: File,
}

impl Lock {
    /// Open the lock file for writing (creating it); Err with the OS error when the store
    /// cannot be written.
    pub fn open(store: &Path) -> std::io::Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(store.join("lock"))
    }

    pub fn acquire(store: &Path, file: File, contended: Contended) -> Result<Lock, StoreError> {
        let path = store.join("lock");
        let io = |e| StoreError::io(&path, e);
        let mut file = file;
        if file.try_lock().is_err() {
            let holder = read_holder(&mut file);
            match contended {
                Contended::Fail => {
                    return Err(StoreError::Locked {
                        path: store.to_path_buf(),
                        holder,
                    });
                }
                Contended::Wait(notify) => {
                    notify(holder.as_ref());
                    file.lock().map_err(io)?;
                }
            }
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let me = format!("{}\n{}\n", std::process::id(), command_line());
        file.write_all(me.as_bytes()).map_err(io)?;
        Ok(Lock { _file: file })
    }
}

/// The holder named in a lock file (`PID` alone in stores from before the command line was
/// recorded); None while the holder has not written it yet.
fn read_holder(file: &mut File) -> Option<Holder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    parse_holder(&text)
}

fn parse_holder(text: &str) -> Option<Holder> {
    let mut lines = text.lines();
    let pid = lines.next()?.trim().parse().ok()?;
    let command = lines.next().unwrap_or("").trim().to_string();
    Some(Holder { pid, command })
}

/// This process as a user would have typed it: `stablebuild pin big:1`.
fn command_line() -> String {
    let mut args = std::env::args();
    let program = args.next().unwrap_or_default();
    let name = Path::new(&program)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or(program);
    let line = std::iter::once(name)
        .chain(args)
        .collect::<Vec<_>>()
        .join(" ");
    // One line, and short enough to print in a message.
    let line = line.replace(['\n', '\r'], " ");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_are_read_with_and_without_a_command_line() {
        let h = parse_holder("42\nstablebuild pin big:1\n").unwrap();
        assert_eq!(h.to_string(), "pid 42 (stablebuild pin big:1)");
        assert_eq!(parse_holder("42").unwrap().to_string(), "pid 42");
        assert_eq!(parse_holder(""), None);
        assert_eq!(parse_holder("x\n"), None);
    }

    #[test]
    fn a_second_lock_fails_or_waits_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first =
            Lock::acquire(dir.path(), Lock::open(dir.path()).unwrap(), Contended::Fail).unwrap();
        let again = Lock::acquire(dir.path(), Lock::open(dir.path()).unwrap(), Contended::Fail);
        match again {
            Err(StoreError::Locked { holder, .. }) => {
                assert_eq!(holder.unwrap().pid, std::process::id())
            }
            _ => panic!("the second lock must fail"),
        }
        let path = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let told = std::sync::Mutex::new(0);
            let notify = |_: Option<&Holder>| *told.lock().unwrap() += 1;
            let lock = Lock::acquire(&path, Lock::open(&path).unwrap(), Contended::Wait(&notify));
            (lock.is_ok(), *told.lock().unwrap())
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            !waiter.is_finished(),
            "the waiter waits while the lock is held"
        );
        drop(first);
        assert_eq!(waiter.join().unwrap(), (true, 1), "told once, then locked");
    }
}
