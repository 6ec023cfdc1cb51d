//! `Reference::parse` and `Digest::parse`: what parses prints in a form that parses back
//! to the same value, and building from the parts agrees with parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stablebuild::reference::{Digest, Reference};
use stablebuild_fuzz::text;

fuzz_target!(|data: &[u8]| {
    let Some(s) = text(data) else { return };
    if let Ok(r) = Reference::parse(s) {
        reference_round_trips(&r);
    }
    if let Ok(d) = Digest::parse(s) {
        assert_eq!(d.to_string(), s, "a digest has one spelling");
        assert_eq!(Digest::from_hex(d.hex()).as_ref(), Ok(&d));
        assert!(d.hex().starts_with(d.short()));
    }
});

fn reference_round_trips(r: &Reference) {
    let shown = r.to_string();
    let again = Reference::parse(&shown).unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    assert_eq!(&again, r, "{shown:?}");
    assert_eq!(again.to_string(), shown);
    let parts = Reference::new(r.registry(), r.repository(), r.tag(), r.digest().cloned());
    assert_eq!(parts.as_ref(), Ok(r), "{shown:?} from its parts");
    assert!(
        r.tag().is_some() || r.digest().is_some(),
        "{shown:?} pins nothing"
    );
    assert!(r.key().starts_with(&r.name()));
}
