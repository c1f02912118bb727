//! `hub.blockPod(name, namespace)` → the NetworkPolicy the API server
//! created: the pod is isolated, no traffic in or out.
//!
//! A NetworkPolicy selects pods by label, and a pod's own labels are shared
//! with its replicas; so the pod is first labelled `skua.io/blocked-pod:
//! <id>` (a merge patch; `<id>` is its name, or when longer than a label
//! value may be, its first 54 characters and a hash), then a policy
//! `skua-block-<pod>` selecting that label with both policy types and no
//! rule is created: deny all. Blocking a pod twice answers the existing
//! policy. The namespace defaults to `default`.
//!
//! The client is kube-rs' (already skua's for the pod watcher), made on
//! first use from the pod's service account or `KUBECONFIG`; it needs
//! `patch` on pods and `create`/`get` on networkpolicies. Failures: the
//! API's 403/404/422 reject at once with its reason and message; 429, 5xx
//! and connection failures are retried.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicySpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{json, Value};

use super::{retryable_status, IntegrationError};

/// The label the policy selects the pod by.
pub const LABEL: &str = "skua.io/blocked-pod";

/// The label value for a pod name (at most 63 characters, as label values).
pub fn label_value(pod: &str) -> String {
    if pod.len() <= 63 {
        return pod.to_string();
    }
    // A stable hash (the same after a restart, so a second block finds
    // the first policy still selecting the pod).
    let d = ring::digest::digest(&ring::digest::SHA256, pod.as_bytes());
    let hex: String = d.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect();
    let head: String = pod.chars().take(54).collect();
    format!("{}-{hex}", head.trim_end_matches(['-', '.']))
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && n.as_bytes()[0].is_ascii_alphanumeric()
}

/// The policy for one pod.
pub fn policy(pod: &str, namespace: &str) -> Result<NetworkPolicy, IntegrationError> {
    if !valid_name(pod) {
        return Err(IntegrationError::Invalid(format!("hub.blockPod: {pod:?} is not a pod name")));
    }
    if !valid_name(namespace) || namespace.len() > 63 {
        return Err(IntegrationError::Invalid(format!(
            "hub.blockPod: {namespace:?} is not a namespace name"
        )));
    }
    let name: String = format!("skua-block-{pod}").chars().take(253).collect();
    Ok(NetworkPolicy {
        metadata: ObjectMeta {
            name: Some(name.trim_end_matches(['-', '.']).to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/managed-by".to_string(),
                "skua".to_string(),
            )])),
            ..Default::default()
        },
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([(LABEL.to_string(), label_value(pod))])),
                ..Default::default()
            }),
            policy_types: Some(vec!["Ingress".into(), "Egress".into()]),
            ingress: None,
            egress: None,
        }),
    })
}

fn classify(e: kube::Error) -> IntegrationError {
    match e {
        kube::Error::Api(s) => {
            let status = s.code;
            IntegrationError::Service {
                service: "kubernetes",
                code: if s.reason.is_empty() { format!("HTTP {status}") } else { s.reason.clone() },
                message: s.message.clone(),
                retryable: retryable_status(status),
                retry_after: None,
            }
        }
        other => IntegrationError::Connect(format!("kubernetes API: {other}")),
    }
}

/// Labels the pod and creates (or finds) its policy; returns the policy as
/// the API server answered it.
pub async fn block(
    client: &kube::Client,
    pod: &str,
    namespace: &str,
) -> Result<Value, IntegrationError> {
    let namespace = if namespace.trim().is_empty() { "default" } else { namespace.trim() };
    let np = policy(pod, namespace)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"metadata": {"labels": {LABEL: label_value(pod)}}});
    pods.patch(pod, &PatchParams::default(), &Patch::Merge(&patch)).await.map_err(classify)?;
    let policies: Api<NetworkPolicy> = Api::namespaced(client.clone(), namespace);
    let created = match policies.create(&PostParams::default(), &np).await {
        Ok(p) => p,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let name = np.metadata.name.clone().unwrap_or_default();
            policies.get(&name).await.map_err(classify)?
        }
        Err(e) => return Err(classify(e)),
    };
    serde_json::to_value(&created)
        .map_err(|e| IntegrationError::Io(format!("hub.blockPod: the answer: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_denies_all_for_the_pods_label() {
        let p = serde_json::to_value(policy("api-7d9f", "shop").unwrap()).unwrap();
        assert_eq!(p["metadata"]["name"], "skua-block-api-7d9f");
        assert_eq!(p["spec"]["podSelector"]["matchLabels"][LABEL], "api-7d9f");
        assert_eq!(p["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert!(p["spec"].get("ingress").is_none() && p["spec"].get("egress").is_none());
        assert!(policy("Bad_Name", "x").is_err());
        assert!(policy("a", "").is_err());
        let long = "a".repeat(100);
        let v = label_value(&long);
        assert!(v.len() <= 63 && v.starts_with("aaaa"), "{v}");
        assert_ne!(label_value(&long), label_value(&format!("{long}b")));
    }
}
