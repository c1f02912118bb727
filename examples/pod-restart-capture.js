// When a pod restarts or crashes, keep the last 30 seconds of packets this
// node saw, and tell the team where the capture is.
function onPodEvent(event, pod) {
  if (event !== "RESTARTED" && event !== "CRASHED") return;
  var who = pod.metadata.namespace + "/" + pod.metadata.name;
  pcap.snapshot(30).then(function (path) {
    console.log(event, who, "- last 30 s of traffic in", path);
    if (env.SLACK_WEBHOOK_URL) {
      vendor.slack(env.SLACK_WEBHOOK_URL, "Pod " + event.toLowerCase() + ": " + who,
                   "Capture on " + utils.nodeName() + ": " + path, "#e4b400");
    }
  }).catch(function (err) {
    console.error("snapshot for", who, "failed:", err.message);
  });
}
