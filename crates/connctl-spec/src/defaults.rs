//! The layers of `defaults:` — the environment's shared defaults file beneath each file's own —
//! and `connctl render`, which shows the connections with those layers and the variables applied.

use std::path::Path;

use crate::diagnostic::{Report, Sink};
use crate::load::{LoadOptions, each_file, parse_expanded, read_source};
use crate::validate::check_file;
use crate::yaml::Node;

/// The YAML as the environment gets it: one document listing every connection of `paths`
/// with variables expanded and `defaults:` (shared and the file's own) merged into each;
/// secrets stay references. For `connctl render`.
pub fn render(paths: &[impl AsRef<Path>], options: &LoadOptions) -> Result<String, Report> {
    let mut out = String::from("version: 1\nconnections:\n");
    let mut count = 0;
    let report = each_file(paths, options, &mut |sink, tree, shared| {
        let checked = check_file(sink, &tree.root, tree.source);
        let defaults = merged_defaults(shared, checked.defaults);
        for conn in checked.connections {
            let node = match &defaults {
                Some(d) => merge_nodes(d, conn.node),
                None => conn.node.clone(),
            };
            out.push_str(&format!(
                "  # {}:{}\n",
                sink.file().display(),
                conn.key_field.line
            ));
            crate::emit::item(&node, 1, &mut out);
            count += 1;
        }
    });
    if report.has_errors() {
        return Err(report);
    }
    if count == 0 {
        out = "version: 1\nconnections: []\n".into();
    }
    Ok(out)
}

/// The `defaults:` of the shared file, checked; `None` (and errors in `report`) if it has
/// problems or holds connections.
pub(crate) fn shared_defaults(file: &Path, options: &LoadOptions, report: &mut Report) -> Option<Node> {
    let source = read_source(file, report)?;
    let mut sink = Sink::new(file, &source);
    let mut found = None;
    if let Some(root) = parse_expanded(&mut sink, &source, options) {
        let checked = check_file(&mut sink, &root, &source);
        if let Some(list) = root.get("connections").filter(|l| match &l.value {
            crate::yaml::Value::Null => false,
            crate::yaml::Value::Seq(items) => !items.is_empty(),
            _ => true,
        }) {
            sink.error(
                list.pos,
                "the shared defaults file holds connections",
                Some(
                    "keep only `version: 1` and `defaults:` in it; connections belong in the YAML paths"
                        .into(),
                ),
            );
        } else if checked.defaults_ok {
            found = checked.defaults.cloned();
        }
    }
    let errors = sink.error_count() > 0;
    report.extend(sink.into_report());
    if errors { None } else { found }
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// The shared `defaults:` with the file's own over them.
pub(crate) fn merged_defaults(shared: Option<&Node>, own: Option<&Node>) -> Option<Node> {
    match (shared, own) {
        (Some(s), Some(o)) => Some(merge_nodes(s, o)),
        (Some(s), None) => Some(s.clone()),
        (None, Some(o)) => Some(o.clone()),
        (None, None) => None,
    }
}

/// `top` over `base`: mappings merge by key (recursively, `top` winning; `top`'s keys first,
/// then those only `base` has); anything else in `top` replaces `base` (so lists replace,
/// never concatenate).
pub(crate) fn merge_nodes(base: &Node, top: &Node) -> Node {
    let (Some(b), Some(t)) = (base.as_map(), top.as_map()) else {
        return top.clone();
    };
    let mut entries: Vec<(Node, Node)> = Vec::new();
    for (k, v) in t {
        let merged = match base.get(&k.key_text()) {
            Some(under) => merge_nodes(under, v),
            None => v.clone(),
        };
        entries.push((k.clone(), merged));
    }
    for (k, v) in b {
        if top.get(&k.key_text()).is_none() {
            entries.push((k.clone(), v.clone()));
        }
    }
    Node {
        value: crate::yaml::Value::Map(entries),
        pos: top.pos,
    }
}
