//! `stablebuild inspect IMAGE`: the pinned snapshot as a tree, from the store only (or the
//! server holding it): index → platform manifests → config and layers, with digests, media
//! types and sizes. Exit 1 when the image is not pinned.

use std::process::ExitCode;

use super::{Backend, Need, backend, human_size, parse_refs, print_json};
use crate::cli::InspectArgs;
use crate::config::Config;
use crate::ops::{self, Inspection, Node};

pub async fn run(config: &Config, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let r = parse_refs(std::slice::from_ref(&args.image))?.remove(0);
    let found = match backend(config, Need::Read).await? {
        Backend::Local(store) => ops::inspect(&store, &r)?,
        Backend::Remote(remote) => remote.inspect(&r.to_string()).await?,
        here @ Backend::Shared { .. } => {
            // The bucket's record and manifests, brought into the cache the tree is read from.
            let snap = here.snapshotter(config, 1)?;
            snap.recall(&r).await?;
            ops::inspect(snap.store(), &r)?
        }
    };
    let Some(inspection) = found else {
        anyhow::bail!("{r} is not pinned; inspect reads the store only (pin it first)");
    };
    if config.json {
        print_json(&inspection);
    } else {
        print!("{}", render(&inspection));
    }
    Ok(ExitCode::SUCCESS)
}

/// The tree as text, one node a line:
/// `├─ linux/amd64  manifest  sha256:…  application/…  1.2 KiB`.
fn render(i: &Inspection) -> String {
    let mut out = format!("{}  (pinned {})\n", i.reference, i.pinned_at);
    out.push_str(&line(&i.root));
    out.push('\n');
    children(&i.root, "", &mut out);
    out
}

fn children(node: &Node, prefix: &str, out: &mut String) {
    for (n, child) in node.children.iter().enumerate() {
        let last = n + 1 == node.children.len();
        let (branch, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        out.push_str(&format!("{prefix}{branch}{}\n", line(child)));
        children(child, &format!("{prefix}{next}"), out);
    }
}

fn line(n: &Node) -> String {
    let mut words = Vec::new();
    if let Some(p) = &n.platform {
        words.push(p.clone());
    }
    words.push(n.kind.clone());
    words.push(n.digest.clone());
    words.push(n.media_type.clone());
    words.push(n.size.map(human_size).unwrap_or_else(|| "-".into()));
    if !n.stored && n.kind != "foreign-layer" {
        words.push("(missing from the store)".into());
    }
    words.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(kind: &str, digest: &str, children: Vec<Node>) -> Node {
        Node {
            kind: kind.into(),
            digest: digest.into(),
            media_type: "m".into(),
            size: Some(2048),
            platform: (kind == "manifest").then(|| "linux/amd64".into()),
            stored: digest != "d4",
            children,
        }
    }

    #[test]
    fn the_tree_is_drawn_with_branches() {
        let m1 = node(
            "manifest",
            "d1",
            vec![node("config", "d3", vec![]), node("layer", "d4", vec![])],
        );
        let m2 = node("manifest", "d2", vec![]);
        let i = Inspection {
            reference: "docker.io/library/x:1".into(),
            pinned_at: "2026-12-01T00:00:00Z".into(),
            root: node("index", "d0", vec![m1, m2]),
        };
        let want = "docker.io/library/x:1  (pinned 2026-12-01T00:00:00Z)\n\
            index  d0  m  2.0 KiB\n\
            ├─ linux/amd64  manifest  d1  m  2.0 KiB\n\
            │  ├─ config  d3  m  2.0 KiB\n\
            │  └─ layer  d4  m  2.0 KiB  (missing from the store)\n\
            └─ linux/amd64  manifest  d2  m  2.0 KiB\n";
        assert_eq!(render(&i), want);
    }
}
