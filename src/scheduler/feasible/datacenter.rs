//! A job runs only in the datacenters it lists; entries may be globs (`*`, `us-*`).
//!
//! Nomad: `scheduler/util.go` `readyNodesInDCsAndPool` (glob matching of `Datacenters`).

use crate::structs::Node;

pub fn node_in_datacenters(node: &Node, datacenters: &[String]) -> bool {
    datacenters.is_empty()
        || datacenters
            .iter()
            .any(|pattern| glob_matches(pattern, &node.datacenter))
}

/// Matches `text` against `pattern`, where `*` stands for any run of characters.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let cases = [
            ("*", "dc1", true),
            ("dc1", "dc1", true),
            ("dc1", "dc2", false),
            ("dc*", "dc2", true),
            ("us-*-1", "us-east-1", true),
            ("us-*-1", "us-east-2", false),
            ("*-1", "-1", true),
            ("a*b*c", "abc", true),
            ("a*b*c", "acb", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(glob_matches(pattern, text), expected, "{pattern} {text}");
        }
        let node = Node {
            datacenter: "eu-west".to_owned(),
            ..Node::default()
        };
        assert!(node_in_datacenters(
            &node,
            &["dc1".to_owned(), "eu-*".to_owned()]
        ));
        assert!(!node_in_datacenters(&node, &["dc1".to_owned()]));
    }
}
