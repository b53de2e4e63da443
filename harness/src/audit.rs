//! `cdc-chaos audit`: reads the live cluster and the clients' configurations and prints each
//! setting against the profile, row by row.
//!
//! Live: broker configs and topic configs (Kafka admin API), replication factor of every partition
//! (metadata), connector configs (Connect REST API). Rendered: what the Connect worker and the
//! pipeline's producers and consumers were given (their properties files in the stack's home).

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::Consumer;
use rdkafka::ClientConfig;

use crate::error::{Error, Result};
use crate::platform::{connect, topics, Layout, Topology};
use crate::profile::Profile;
use crate::properties::{self, Properties};

/// One setting of one scope, expected against actual.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditRow {
    /// `broker 1`, `topic crm.public.customers`, `connector crm-source`, `producer`, ...
    pub scope: String,
    pub setting: String,
    pub expected: String,
    /// `None`: not found.
    pub actual: Option<String>,
    pub ok: bool,
    /// `live` (read from the running component) or the file it was read from.
    pub source: String,
}

/// Whether two renderings of a Kafka setting mean the same (`all` is `-1` for `acks`).
pub fn same_value(setting: &str, expected: &str, actual: &str) -> bool {
    let norm = |v: &str| {
        let v = v.trim().to_ascii_lowercase();
        if setting.ends_with("acks") && v == "-1" {
            "all".to_string()
        } else {
            v
        }
    };
    norm(expected) == norm(actual)
}

fn row(scope: &str, setting: &str, expected: &str, actual: Option<String>, source: &str) -> AuditRow {
    let ok = actual.as_deref().map(|a| same_value(setting, expected, a)).unwrap_or(false);
    AuditRow { scope: scope.into(), setting: setting.into(), expected: expected.into(), actual, ok, source: source.into() }
}

/// Compares a map of expected settings with a map of actual ones.
pub fn compare(scope: &str, expected: &Properties, actual: &Properties, source: &str) -> Vec<AuditRow> {
    expected.iter().map(|(k, v)| row(scope, k, v, actual.get(k).cloned(), source)).collect()
}

/// Audits the running stack against `profile`.
pub fn audit(layout: &Layout, topo: &Topology, profile: &Profile) -> Result<Vec<AuditRow>> {
    let bootstrap = topo.bootstrap();
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("log_level", "0")
        .create()
        .map_err(|e| Error::component("kafka", format!("admin client for {bootstrap}: {e}")))?;
    let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(20)));
    let mut rows = Vec::new();

    // Brokers.
    // Broker resources must each go to their own broker: one request per node.
    for node in &topo.nodes {
        let scope = format!("broker {}", node.id);
        let spec = [ResourceSpecifier::Broker(i32::from(node.id))];
        let result = futures_executor::block_on(admin.describe_configs(spec.iter(), &opts))
            .map_err(|e| e.to_string())
            .and_then(|mut v| v.pop().ok_or_else(|| "no answer".to_string()))
            .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(res) => {
                let actual: Properties = res.entries.iter().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect();
                rows.extend(compare(&scope, &profile.broker, &actual, "live"));
            }
            Err(e) => rows.extend(profile.broker.iter().map(|(k, v)| row(&scope, k, v, None, &format!("live: {e}")))),
        }
    }

    // Topics: replication factor of every partition, partition count, topic configs.
    let consumer = crate::platform::kafka::metadata_client(&bootstrap)?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(20))
        .map_err(|e| Error::component("kafka", format!("metadata from {bootstrap}: {e}")))?;
    let plan = topics::plan(profile);
    let specs: Vec<ResourceSpecifier> = plan.iter().map(|t| ResourceSpecifier::Topic(&t.name)).collect();
    let configs = futures_executor::block_on(admin.describe_configs(specs.iter(), &opts))
        .map_err(|e| Error::component("kafka", format!("describing topic configs: {e}")))?;
    for (spec, cfg) in plan.iter().zip(configs) {
        let scope = format!("topic {}", spec.name);
        let meta = md.topics().iter().find(|t| t.name() == spec.name && t.error().is_none());
        let (rf, parts) = match meta {
            Some(t) => {
                let min_rf = t.partitions().iter().map(|p| p.replicas().len()).min();
                (min_rf.map(|r| r.to_string()), Some(t.partitions().len().to_string()))
            }
            None => (None, None),
        };
        rows.push(row(&scope, "replication.factor", &spec.replication_factor.to_string(), rf, "live"));
        rows.push(row(&scope, "partitions", &spec.partitions.to_string(), parts, "live"));
        let expected: Properties = spec.config.iter().cloned().collect();
        let actual: Properties = match cfg {
            Ok(res) => res.entries.iter().filter_map(|e| Some((e.name.clone(), e.value.clone()?))).collect(),
            Err(_) => Properties::new(),
        };
        rows.extend(compare(&scope, &expected, &actual, "live"));
    }

    // Connectors (live) and the Connect worker (rendered).
    for name in [connect::CRM_CONNECTOR, connect::FLEET_CONNECTOR] {
        let scope = format!("connector {name}");
        let actual: Properties = match connect::connector_config(topo, name) {
            Ok(m) => m.into_iter().map(|(k, v)| (k, v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect(),
            Err(_) => Properties::new(),
        };
        rows.extend(compare(&scope, &profile.connector, &actual, "live"));
    }
    let worker_file = layout.dir(connect::NAME).join("worker.properties");
    let worker = read_props(&worker_file);
    let mut expected_worker = profile.connect_worker.clone();
    for (k, v) in &profile.producer {
        expected_worker.insert(format!("producer.{k}"), v.clone());
    }
    rows.extend(compare("connect worker", &expected_worker, &worker, &worker_file.display().to_string()));

    // The pipeline's and checker's clients (rendered).
    for (scope, file, expected) in [
        ("producer", "producer.properties", &profile.producer),
        ("consumer", "consumer.properties", &profile.consumer),
        ("processing", "processing.properties", &profile.processing_properties()),
    ] {
        let path = layout.clients_dir().join(file);
        rows.extend(compare(scope, expected, &read_props(&path), &path.display().to_string()));
    }
    Ok(rows)
}

fn read_props(path: &std::path::Path) -> Properties {
    std::fs::read_to_string(path).map(|t| properties::parse(&t)).unwrap_or_default()
}

/// Renders audit rows as a table, mismatches marked.
pub fn table(rows: &[AuditRow]) -> String {
    let w_scope = rows.iter().map(|r| r.scope.len()).max().unwrap_or(5).max(5);
    let w_set = rows.iter().map(|r| r.setting.len()).max().unwrap_or(7).max(7);
    let mut out = format!("{:<4} {:<w_scope$} {:<w_set$} {:<16} {:<16} {}\n", "OK", "SCOPE", "SETTING", "PROFILE", "ACTUAL", "SOURCE");
    for r in rows {
        out.push_str(&format!(
            "{:<4} {:<w_scope$} {:<w_set$} {:<16} {:<16} {}\n",
            if r.ok { "ok" } else { "DIFF" },
            r.scope,
            r.setting,
            r.expected,
            r.actual.as_deref().unwrap_or("(missing)"),
            r.source
        ));
    }
    let bad = rows.iter().filter(|r| !r.ok).count();
    out.push_str(&format!("{} settings checked, {} differ\n", rows.len(), bad));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_all_is_minus_one() {
        assert!(same_value("acks", "all", "-1"));
        assert!(same_value("producer.acks", "all", "-1"));
        assert!(!same_value("acks", "1", "-1"));
        assert!(same_value("enable.idempotence", "true", "TRUE"));
    }

    #[test]
    fn a_differing_or_missing_setting_is_reported() {
        let mut expected = Properties::new();
        expected.insert("min.insync.replicas".into(), "2".into());
        expected.insert("unclean.leader.election.enable".into(), "false".into());
        let mut actual = Properties::new();
        actual.insert("min.insync.replicas".into(), "1".into());
        let rows = compare("topic t", &expected, &actual, "live");
        assert!(rows.iter().all(|r| !r.ok));
        assert!(table(&rows).contains("2 differ"));
        actual.insert("min.insync.replicas".into(), "2".into());
        actual.insert("unclean.leader.election.enable".into(), "false".into());
        assert!(compare("topic t", &expected, &actual, "live").iter().all(|r| r.ok));
    }
}
