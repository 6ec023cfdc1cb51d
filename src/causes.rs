//! Error causes as text: the one place that walks `std::error::Error::source` chains, for
//! messages that must say what actually went wrong (reqwest's and object_store's own messages
//! alone say little). Owns nothing else; callers decide what to put around the text.

/// The error and each of its causes, joined with ": ".
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The innermost cause: what actually went wrong ("Connection refused (os error 111)").
pub fn innermost(e: &dyn std::error::Error) -> String {
    let mut last = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        last = s.to_string();
        source = s.source();
    }
    last
}
