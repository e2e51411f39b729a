//! A caller's place in the region tree: the subtree it may see.

/// The part of the tree a caller may see: the subtree under `path`.
#[derive(Clone, Debug)]
pub struct Scope {
    pub path: String,
}

impl Scope {
    pub fn everything() -> Scope {
        // Every path starts with '/', and '0' sorts after it.
        Scope { path: "/".into() }
    }

    pub fn bounds(&self) -> (String, String) {
        subtree_bounds(&self.path)
    }

    pub fn contains_path(&self, path: &str) -> bool {
        path.starts_with(&self.path)
    }
}

/// The id range of a subtree in `path` order: every descendant's path
/// starts with `prefix`, and '0' is the byte after '/', so
/// `path >= prefix and path < upper` is exactly the subtree.
pub fn subtree_bounds(path: &str) -> (String, String) {
    debug_assert!(path.ends_with('/'));
    let mut upper = path[..path.len() - 1].to_string();
    upper.push('0');
    (path.to_string(), upper)
}
