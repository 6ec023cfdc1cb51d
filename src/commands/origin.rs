//! Who runs a command, as the history records it: user and host of this process.

/// Who runs this command, for the history: the user (`$USER`, `$LOGNAME`, else the
/// password database, else the uid) and the host name.
pub(crate) fn cli_origin() -> crate::store::Origin {
    let user = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .or_else(user_name)
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }));
    crate::store::Origin::Cli {
        user,
        host: host_name().unwrap_or_else(|| "-".into()),
    }
}

fn user_name() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; it is read at once.
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() || (*pw).pw_name.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

fn host_name() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on
    // success (a truncated name is cut at the buffer's end below).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    Some(String::from_utf8_lossy(&buf[..end]).into_owned()).filter(|h| !h.is_empty())
}
