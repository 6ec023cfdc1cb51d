//! The store's process lock: `lock` in the store, held exclusively while a process uses it
//! (sled allows one process per database). The holder's pid is written into it so that a
//! second process can say who holds the store.
//! Must not touch: anything else in the store.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use super::StoreError;

pub struct Lock {
    _file: File,
}

impl Lock {
    pub fn acquire(store: &Path) -> Result<Lock, StoreError> {
        let path = store.join("lock");
        let io = |e| StoreError::io(&path, e);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        if file.try_lock().is_err() {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            return Err(StoreError::Locked {
                path: store.to_path_buf(),
                pid: pid.trim().parse().ok(),
            });
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Lock { _file: file })
    }
}
