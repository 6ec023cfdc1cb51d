//! `manifest::parse` for every media type it knows (and one it does not), chosen by the
//! first byte: what it reads out holds valid digests, of the kind the media type promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stablebuild::manifest::{self, ACCEPT, DOCKER_V1, DOCKER_V1_SIGNED, Parsed};
use stablebuild_fuzz::valid;

/// Not a manifest type: `parse` reads it as an image manifest.
const UNKNOWN: &str = "application/json";

fuzz_target!(|data: &[u8]| {
    let Some((&first, bytes)) = data.split_first() else {
        return;
    };
    let media_type = ACCEPT
        .get(usize::from(first) % (ACCEPT.len() + 1))
        .unwrap_or(&UNKNOWN);
    let digest = manifest::sha256(bytes);
    if let Some(sniffed) = manifest::media_type_of(bytes, None) {
        assert!(manifest::is_manifest(&sniffed), "{sniffed}");
    }
    let _ = manifest::config_platform(bytes);
    let Ok(parsed) = manifest::parse(&digest, media_type, bytes) else {
        return;
    };
    let schema1 = [DOCKER_V1, DOCKER_V1_SIGNED].contains(media_type);
    match &parsed {
        Parsed::Index(children) => {
            assert!(
                manifest::is_index(media_type),
                "{media_type} read as an index"
            );
            children.iter().for_each(|c| valid(&c.digest));
        }
        Parsed::Schema1 { layers } => {
            assert!(schema1, "{media_type} read as schema 1");
            let mut digests: Vec<_> = layers.iter().map(|l| &l.digest).collect();
            digests.sort();
            digests.dedup();
            assert_eq!(
                digests.len(),
                layers.len(),
                "schema 1 layers are listed once each"
            );
        }
        Parsed::Image { layers, .. } => {
            assert!(!manifest::is_index(media_type) && !schema1, "{media_type}");
            assert_eq!(
                parsed.blobs().len(),
                layers.len() + 1,
                "config, then layers"
            );
        }
    }
    parsed.blobs().iter().for_each(|b| valid(&b.digest));
});
