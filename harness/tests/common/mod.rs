//! What the manifest tests share: a copy of `manifests/` that kustomize can build.

use std::path::{Path, PathBuf};

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Copies `manifests/` to `to`, with every `secrets/*.env` made from its `.env.example` (test
/// values only, `test-only-value`) and no real `*.env` copied.
pub fn copy_manifests(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().map(|e| e.unwrap()) {
            let (src, dst) = (entry.path(), to.join(entry.file_name()));
            if src.is_dir() {
                copy(&src, &dst);
            } else if src.extension().is_some_and(|e| e == "example") {
                let text = std::fs::read_to_string(&src).unwrap().replace("CHANGE-ME", "test-only-value");
                std::fs::write(dst.with_extension(""), text).unwrap();
            } else if src.extension().is_none_or(|e| e != "env") {
                std::fs::copy(&src, &dst).unwrap();
            }
        }
    }
    copy(&repo().join("manifests"), to);
}
