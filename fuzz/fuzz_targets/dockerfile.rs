//! `dockerfile::parse` and `reflist::parse` for a fixed platform: every span they report
//! lies inside the text on character boundaries and holds what they say it does.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use stablebuild::dockerfile::{self, Dockerfile, Target, UseKind};
use stablebuild::reflist;
use stablebuild_fuzz::{line_of, platform, spanned, text};

fuzz_target!(|data: &[u8]| {
    let Some(text) = text(data) else { return };
    let platform = platform();
    let _ = dockerfile::looks_like_dockerfile(text);
    if let Ok(file) = dockerfile::parse(text, &platform) {
        uses_point_into(text, &file);
    }
    if let Ok(images) = reflist::parse(text, &platform) {
        assert!(!images.is_empty(), "an Ok list names an image");
        assert!(images.iter().all(|i| !i.is_empty()), "{images:?}");
        let unique: HashSet<_> = images.iter().collect();
        assert_eq!(unique.len(), images.len(), "each image once: {images:?}");
    }
});

fn uses_point_into(text: &str, file: &Dockerfile) {
    let lines = line_of(text, text.len());
    for u in &file.uses {
        assert!((1..=lines).contains(&u.line), "line {} of {lines}", u.line);
        if let Some(span) = &u.span {
            assert_eq!(spanned(text, span), u.raw, "{u:?}");
            assert!(
                line_of(text, span.start) >= u.line,
                "{u:?} before its instruction"
            );
        }
        if let Some(arg) = &u.arg {
            assert!(arg.line <= u.line, "{arg:?} comes after its use {u:?}");
            if let Some(span) = &arg.value_span {
                spanned(text, span);
                // The ARG's line is where it starts; a continuation may carry the value on.
                assert!(line_of(text, span.start) >= arg.line, "{arg:?}");
            }
        }
        match &u.target {
            Target::Image(image) => assert!(!image.is_empty(), "{u:?}"),
            Target::Stage(name) => assert_eq!(*name, name.to_lowercase(), "{u:?}"),
            Target::Scratch | Target::Unresolved(_) => {}
        }
    }
    let froms = file.uses.iter().filter(|u| u.kind == UseKind::From).count();
    assert_eq!(froms, file.stages.len(), "one FROM use per stage");
    let ordered = file.stages.windows(2).all(|w| w[0].line < w[1].line);
    assert!(ordered, "stages in order: {:?}", file.stages);
}
