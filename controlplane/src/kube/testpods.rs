//! Pod objects as the API server serves them, for the tests.

use serde_json::{json, Value};

/// A running pod with one container, no restarts.
pub fn pod(name: &str, namespace: &str, resource_version: &str, ip: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("uid-{namespace}-{name}"),
            "resourceVersion": resource_version,
            "managedFields": [{"manager": "kubelet", "operation": "Update"}]
        },
        "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:1"}]},
        "status": {
            "phase": "Running",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "containerStatuses": [{
                "name": "app", "image": "app:1", "imageID": "", "ready": true, "restartCount": 0,
                "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
            }]
        }
    })
}

pub fn with_rv(mut pod: Value, resource_version: &str) -> Value {
    pod["metadata"]["resourceVersion"] = resource_version.into();
    pod
}

pub fn restarted(mut pod: Value, restart_count: i32) -> Value {
    pod["status"]["containerStatuses"][0]["restartCount"] = restart_count.into();
    pod
}

pub fn crash_looping(mut pod: Value) -> Value {
    let c = &mut pod["status"]["containerStatuses"][0];
    c["ready"] = false.into();
    c["state"] = json!({"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container"}});
    c["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
    pod
}
