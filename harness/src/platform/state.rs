//! What the harness has started and changed on this host, recorded on disk (`state.json` in the
//! stack's home) before and after every change, so that `cdc-chaos down` can undo all of it even
//! after the harness crashed.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::platform::Topology;

/// One running process of the stack.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ComponentState {
    pub name: String,
    pub pid: u32,
    /// Address it serves (host:port).
    pub address: String,
    /// Network namespace it runs in, if any.
    pub netns: Option<String>,
    pub log: PathBuf,
    /// Signal that stops it cleanly (SIGTERM; SIGINT for PostgreSQL's fast shutdown).
    pub stop_signal: i32,
}

/// Everything the harness made on this host.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StackState {
    /// Profile the stack was started with (name).
    pub profile: Option<String>,
    /// Where the profile came from.
    pub profile_source: Option<String>,
    /// [`crate::Profile::identity`] of the profile: a stack is reused only by a profile with the
    /// same settings.
    #[serde(default)]
    pub profile_identity: Option<String>,
    pub topology: Option<Topology>,
    pub components: Vec<ComponentState>,
    /// Network namespaces created (deleted by `down`).
    pub namespaces: Vec<String>,
    /// Bridges and root-namespace links created.
    pub links: Vec<String>,
    /// iptables rules added in the root namespace, as `iptables` arguments after `-A`/`-D`.
    pub iptables: Vec<Vec<String>>,
}

impl StackState {
    pub fn load(path: &Path) -> Result<StackState> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| {
                Error::record(path, None, format!("corrupt stack state ({e}); inspect it, then remove it and run `cdc-chaos down`"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StackState::default()),
            Err(e) => Err(Error::io("reading stack state", path, e)),
        }
    }

    /// Writes the state atomically (write to a temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).expect("state serializes");
        crate::platform::write_file(&tmp, &text)?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("saving stack state", path, e))
    }

    pub fn component(&self, name: &str) -> Option<&ComponentState> {
        self.components.iter().find(|c| c.name == name)
    }

    pub fn is_empty(&self) -> bool {
        self.components.is_empty() && self.namespaces.is_empty() && self.links.is_empty() && self.iptables.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_disk() {
        let dir = std::env::temp_dir().join(format!("cdcc-state-{}", std::process::id()));
        let path = dir.join("state.json");
        assert_eq!(StackState::load(&path).unwrap(), StackState::default());
        let mut s = StackState::default();
        s.namespaces.push("cdcc-kafka-1".into());
        s.components.push(ComponentState {
            name: "kafka-1".into(),
            pid: 42,
            address: "10.231.0.11:9092".into(),
            netns: Some("cdcc-kafka-1".into()),
            log: "/x/kafka-1.log".into(),
            stop_signal: 15,
        });
        s.save(&path).unwrap();
        assert_eq!(StackState::load(&path).unwrap(), s);
        std::fs::write(&path, "{not json").unwrap();
        let e = StackState::load(&path).unwrap_err().to_string();
        assert!(e.contains("corrupt") && e.contains("state.json"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
