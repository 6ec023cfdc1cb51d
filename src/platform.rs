//! Platforms in OCI terms (`linux/amd64`, `linux/arm/v7`) and the one this machine runs.
//! Pure: nothing but strings.

use std::fmt;

/// An OS, architecture and optional variant, as image indexes name them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform a default build or pull on this machine targets: Linux (containers are
    /// Linux even on macOS, in a VM) on this machine's architecture, in OCI naming.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".to_owned(),
            arch: arch.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }
}

/// `os/arch[/variant]`, the form of `TARGETPLATFORM` and `--platform`.
impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}
