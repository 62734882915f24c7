//! The example Grafana dashboard only asks for metrics that the relay and the server export
//! (a renamed metric would leave a panel empty without anyone noticing).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hasocks_test_support::{
    config, echo_server, forward, http_get, id_backend, open_sockd_conf, relay, table,
};

/// Metric names in a scrape (sample lines and `# TYPE` lines).
fn names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter_map(|l| match l.strip_prefix("# TYPE ") {
            Some(t) => t.split_whitespace().next(),
            None if !l.starts_with('#') => l.split(['{', ' ']).next(),
            None => None,
        })
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_uses_is_exported() {
    let b = id_backend(1).await;
    let cfg = config(
        vec![table("pool", &[b.port()])],
        vec![relay(vec![forward(
            "pool",
            hasocks_conf::relayd::Mode::RoundRobin,
            Some(hasocks_conf::relayd::Check::Tcp),
        )])],
    );
    let r = Arc::new(hasocks_relay::RelayHandle::start(cfg).await.expect("relay"));
    assert!(r.wait_ready(Duration::from_secs(20)).await);
    let ra = hasocks_admin::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(hasocks_relay::admin_source::RelayAdmin::new(r.clone())),
        hasocks_admin::Limits::default(),
    )
    .unwrap();
    let _ = echo_server("127.0.0.1").await;
    let scfg = hasocks_conf::sockd::parse(&open_sockd_conf(""), Path::new("d.conf")).unwrap();
    let s = Arc::new(
        hasocks_server::ServerHandle::start(scfg)
            .await
            .expect("server"),
    );
    let sa = hasocks_admin::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(hasocks_server::admin_source::ServerAdmin::new(s.clone())),
        hasocks_admin::Limits::default(),
    )
    .unwrap();
    let mut have = names(&http_get(ra.local_addr(), "/metrics").await.unwrap().1);
    have.extend(names(
        &http_get(sa.local_addr(), "/metrics").await.unwrap().1,
    ));

    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/grafana/hasocks.json");
    let dash: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).expect("dashboard JSON");
    let mut used = BTreeSet::new();
    for p in dash["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"].as_str().unwrap_or_default();
            for (i, _) in expr.match_indices(|c: char| c.is_ascii_lowercase()) {
                let word: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let starts =
                    i == 0 || !expr[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                if starts && (word.starts_with("hasocks_") || word.starts_with("process_")) {
                    used.insert(word);
                }
            }
        }
    }
    assert!(used.len() > 15, "{used:?}");
    let missing: Vec<_> = used.difference(&have).collect();
    assert!(
        missing.is_empty(),
        "the dashboard asks for {missing:?}, not exported"
    );
}
