//! `server.json` in the store: how commands reach the `serve` process that holds the store
//! (sled allows one process per store). Written by the server after it binds, readable only
//! by the owner (it holds the admin token), removed when the server stops.
//! Must not touch: anything else in the store.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::StoreError;

const FILE: &str = "server.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ServerInfo {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

pub fn write_server_info(store: &Path, info: &ServerInfo) -> Result<(), StoreError> {
    let path = store.join(FILE);
    let tmp = store.join(format!(".{FILE}.tmp"));
    let io = |e| StoreError::io(&path, e);
    let mut file = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    file.write_all(&serde_json::to_vec(info).expect("server info serialises"))
        .map_err(io)?;
    fs::rename(&tmp, &path).map_err(io)
}

pub fn read_server_info(store: &Path) -> Option<ServerInfo> {
    serde_json::from_slice(&fs::read(store.join(FILE)).ok()?).ok()
}

pub fn remove_server_info(store: &Path) {
    let _ = fs::remove_file(store.join(FILE));
}
