//! Reaching a bucket: `s3://BUCKET[/PREFIX]`, the standard AWS variables (`AWS_ENDPOINT_URL`,
//! `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_ALLOW_HTTP`; `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true` for virtual-hosted addressing,
//! path-style otherwise), `AWS_CA_BUNDLE` (PEM roots added to the system's), and how S3's
//! answers become `SharedError`s that name the endpoint and the S3 error code.
//! Must not touch: the objects themselves (`mod.rs` does).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::AmazonS3Builder;
use object_store::{BackoffConfig, Certificate, ClientOptions, RetryConfig};

use super::{Keys, Shared, SharedError};

/// `s3://BUCKET[/PREFIX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub prefix: String,
}

impl Location {
    /// None when `s` is not an `s3://` URL; Err when it is one but malformed.
    pub fn parse(s: &str) -> Option<Result<Location, String>> {
        let rest = s.strip_prefix("s3://")?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !valid {
            return Some(Err(format!(
                "{s}: {bucket:?} is not a bucket name (3 to 63 characters: a-z, 0-9, '.', '-')"
            )));
        }
        Some(Ok(Location {
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        }))
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.prefix.is_empty() {
            true => write!(f, "s3://{}", self.bucket),
            false => write!(f, "s3://{}/{}", self.bucket, self.prefix),
        }
    }
}

impl Shared {
    /// A client for the bucket, configured from the environment. Nothing is sent yet
    /// (`check` does that).
    pub fn connect(location: &Location) -> Result<Shared, SharedError> {
        let endpoint = std::env::var("AWS_ENDPOINT_URL")
            .or_else(|_| std::env::var("AWS_ENDPOINT"))
            .unwrap_or_else(|_| "https://s3.amazonaws.com".to_string());
        let env_true =
            |name: &str| std::env::var(name).is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        let mut options = ClientOptions::new()
            .with_allow_http(env_true("AWS_ALLOW_HTTP"))
            .with_connect_timeout(Duration::from_secs(5));
        for cert in extra_roots()? {
            options = options.with_root_certificate(cert);
        }
        // Fail within seconds when the store is down: a replica answers 503, not a hang.
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(1),
                base: 2.0,
            },
            max_retries: 3,
            retry_timeout: Duration::from_secs(10),
        };
        let region = std::env::var("AWS_REGION")
            .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|_| "us-east-1".to_string());
        let s3 = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            .with_region(region)
            .with_endpoint(&endpoint)
            .with_virtual_hosted_style_request(env_true("AWS_VIRTUAL_HOSTED_STYLE_REQUEST"))
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .map_err(|e| SharedError::Config(format!("{location}: {e}")))?;
        Ok(Shared {
            s3: Arc::new(s3),
            keys: Keys::new(&location.prefix),
            location: location.clone(),
            endpoint,
        })
    }
}

/// `AWS_CA_BUNDLE`: more trusted roots for the endpoint's certificate.
fn extra_roots() -> Result<Vec<Certificate>, SharedError> {
    let Some(path) = std::env::var_os("AWS_CA_BUNDLE").filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let shown = std::path::Path::new(&path).display().to_string();
    let pem = std::fs::read(&path)
        .map_err(|e| SharedError::Config(format!("AWS_CA_BUNDLE={shown}: {e}")))?;
    Certificate::from_pem_bundle(&pem)
        .map_err(|e| SharedError::Config(format!("AWS_CA_BUNDLE={shown}: {e}")))
}

/// Turns `object_store` errors into ones that say where and what.
#[derive(Clone)]
pub(super) struct ErrorMapper {
    pub endpoint: String,
    pub bucket: String,
}

impl ErrorMapper {
    pub fn map(&self, e: object_store::Error) -> SharedError {
        let chain = crate::causes::chain(&e);
        if let Some(code) = xml_tag(&chain, "Code") {
            let message = xml_tag(&chain, "Message").unwrap_or_default();
            return self.s3(code, message);
        }
        if let Some(status) = http_status(&chain) {
            return self.s3(format!("HTTP {status}"), String::new());
        }
        match &e {
            object_store::Error::NotFound { .. } => self.s3("NotFound".into(), String::new()),
            object_store::Error::Precondition { .. } => {
                self.s3("PreconditionFailed".into(), String::new())
            }
            _ => SharedError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: crate::causes::innermost(&e),
            },
        }
    }

    fn s3(&self, code: String, message: String) -> SharedError {
        SharedError::S3 {
            endpoint: self.endpoint.clone(),
            bucket: self.bucket.clone(),
            code,
            message,
        }
    }
}

fn xml_tag(text: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let end = text[start..].find(&format!("</{tag}>"))? + start;
    Some(text[start..end].trim().to_string())
}

/// "… non-2xx status code: 403 Forbidden: …" → 403.
fn http_status(text: &str) -> Option<u16> {
    let rest = text.split("status code: ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        let l = Location::parse("s3://my-bucket/team/mirror/")
            .unwrap()
            .unwrap();
        assert_eq!(
            (l.bucket.as_str(), l.prefix.as_str()),
            ("my-bucket", "team/mirror")
        );
        assert_eq!(l.to_string(), "s3://my-bucket/team/mirror");
        let root = Location::parse("s3://abc").unwrap().unwrap();
        assert_eq!(root.prefix, "");
        assert!(Location::parse("/var/lib/stablebuild").is_none());
        for bad in ["s3://", "s3://ab", "s3://Upper", "s3://under_score/x"] {
            let err = Location::parse(bad).unwrap().unwrap_err();
            assert!(err.contains("bucket name"), "{bad}: {err}");
        }
    }

    #[test]
    fn s3_answers_become_codes() {
        let body = "Server returned non-2xx status code: 404 Not Found: <?xml version=\"1.0\"?>\
            <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(xml_tag(body, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_tag(body, "Message").as_deref(),
            Some("The specified bucket does not exist")
        );
        assert_eq!(http_status(body), Some(404));
        assert_eq!(http_status("connection refused"), None);
    }
}
