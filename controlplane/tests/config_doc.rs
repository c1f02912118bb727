//! docs/config.md lists every configuration key and every drop reason.

use controlplane::config::Config;

fn keys(prefix: &str, v: &serde_yaml::Value, out: &mut Vec<String>) {
    match v {
        serde_yaml::Value::Mapping(m) => {
            for (k, v) in m {
                let k = k.as_str().unwrap();
                let full = if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
                keys(&full, v, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

#[test]
fn every_key_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md")).unwrap();
    let value = serde_yaml::to_value(Config::default()).unwrap();
    let mut all = Vec::new();
    keys("", &value, &mut all);
    assert!(all.len() > 15);
    for k in &all {
        assert!(doc.contains(&format!("`{k}`")), "docs/config.md does not document `{k}`");
    }
}

#[test]
fn every_drop_reason_is_documented() {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/config.md")).unwrap();
    for r in dataplane::DropReason::ALL {
        assert!(
            doc.contains(&format!("`{}`", r.name())),
            "docs/config.md does not document drop reason `{}`",
            r.name()
        );
    }
}
